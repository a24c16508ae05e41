import t from 'tap'
import { Reader, Writer, tpm2b } from '../../server/attest/tpm/marshal.js'

t.test('reader decodes big-endian integers and TPM2Bs', async (t) => {
  const r = new Reader(Buffer.from('01020304050607080900000000000000010003aabbcc', 'hex'))
  t.equal(r.u8(), 0x01)
  t.equal(r.u16(), 0x0203)
  t.equal(r.u32(), 0x04050607)
  t.equal(r.u64(), 0x0809000000000000n)
  t.equal(r.u8(), 0x00)
  t.equal(r.u8(), 0x01)
  t.same(r.tpm2b(3), Buffer.from('aabbcc', 'hex'))
  t.equal(r.remaining, 0)
  t.notOk(r.failed)
})

t.test('reader in little-endian mode (event log)', async (t) => {
  const r = new Reader(Buffer.from('0100020003000000', 'hex'), true)
  t.equal(r.u16(), 1)
  t.equal(r.u16(), 2)
  t.equal(r.u32(), 3)
})

t.test('first underrun is recorded once and later reads return zeros', async (t) => {
  const r = new Reader(Buffer.from('0102', 'hex'))
  t.equal(r.u8(), 1)
  t.equal(r.u32(), 0)
  t.ok(r.failed)
  t.equal(r.error?.code, 'truncated')
  t.equal(r.error?.offset, 1)
  t.equal(r.u8(), 0, 'reads after a failure return zero, even with bytes left')
  t.equal(r.bytes(1).length, 0)
  t.equal(r.error?.offset, 1, 'the first failure is kept')
})

t.test('a TPM2B over its maximum fails before reading its body', async (t) => {
  const r = new Reader(Buffer.from('0005aabbccddee', 'hex'))
  t.equal(r.tpm2b(4).length, 0)
  t.equal(r.error?.code, 'too-large')
  t.equal(r.error?.offset, 0)
})

t.test('a TPM2B longer than the input is truncated, not over-read', async (t) => {
  const r = new Reader(Buffer.from('ffffaabb', 'hex'))
  t.equal(r.tpm2b(0xffff).length, 0)
  t.equal(r.error?.code, 'truncated')
})

t.test('negative or fractional byte counts fail cleanly', async (t) => {
  const r = new Reader(Buffer.alloc(8))
  r.bytes(-1)
  t.equal(r.error?.code, 'truncated')
  const r2 = new Reader(Buffer.alloc(8))
  r2.bytes(1.5)
  t.equal(r2.error?.code, 'truncated')
})

t.test('reader over a subarray does not see the parent buffer', async (t) => {
  const parent = Buffer.from('ffff0001aaff', 'hex')
  const r = new Reader(parent.subarray(2, 5))
  t.same(r.tpm2b(10), Buffer.from('aa', 'hex'))
  t.equal(r.remaining, 0)
  t.equal(r.u8(), 0)
  t.ok(r.failed)
})

t.test('writer round-trips through the reader', async (t) => {
  const b = new Writer().u8(1).u16(0x0203).u32(0xfffffffe).u64(0x0102030405060708n).tpm2b(Buffer.from('xyz')).finish()
  t.equal(b.toString('hex'), '010203fffffffe0102030405060708000378797a')
  const r = new Reader(b)
  t.equal(r.u8(), 1)
  t.equal(r.u16(), 0x0203)
  t.equal(r.u32(), 0xfffffffe)
  t.equal(r.u64(), 0x0102030405060708n)
  t.same(r.tpm2b(10), Buffer.from('xyz'))
  t.same(tpm2b(Buffer.from('ab')), Buffer.from('00026162', 'hex'))
  t.throws(() => new Writer().tpm2b(Buffer.alloc(0x10000)))
})
