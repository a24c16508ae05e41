import t, { type Test } from 'tap'
import {
  decodePacket,
  encodeAck,
  encodeData,
  encodeError,
  encodeOack,
  encodePacket,
  encodeRequest,
  netasciiEncode,
  TFTP_DECODE_ERRORS,
  type TftpDecodeErrorCode,
  type TftpPacket,
} from '../../server/tftp/codec.js'

const b = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))))

function expectError(t: Test, buf: Uint8Array, code: TftpDecodeErrorCode, name: string = code): void {
  const r = decodePacket(buf)
  t.equal(r.ok ? 'ok' : r.error.code, code, name)
  if (!r.ok) t.type(r.error.message, 'string')
}

function expectOk(t: Test, buf: Uint8Array): TftpPacket {
  const r = decodePacket(buf)
  if (!r.ok) {
    t.fail(`unexpected ${r.error.code}`)
    throw new Error(r.error.code)
  }
  return r.value
}

t.test('RRQ with RFC 2347 options', async (t) => {
  const p = expectOk(t, b([0, 1], 'pxelinux.0\0OcTeT\0BLKSIZE\x001468\0tsize\x000\0'))
  t.same(p, {
    op: 'RRQ',
    filename: 'pxelinux.0',
    mode: 'octet',
    options: [
      { name: 'blksize', value: '1468' },
      { name: 'tsize', value: '0' },
    ],
  })
})

t.test('WRQ and netascii mode (case-insensitive)', async (t) => {
  const p = expectOk(t, b([0, 2], 'up.txt\0NetAscii\0'))
  t.same(p, { op: 'WRQ', filename: 'up.txt', mode: 'netascii', options: [] })
})

t.test('UTF-8 filename decodes exactly', async (t) => {
  const p = expectOk(t, b([0, 1], Buffer.from('répertoire/fïle\0octet\0', 'utf8').toString('latin1')))
  t.equal((p as { filename: string }).filename, 'répertoire/fïle')
})

t.test('trailing NUL padding after the last field is tolerated', async (t) => {
  const padded = Buffer.concat([b([0, 1], 'f\0octet\0blksize\x001024\0'), Buffer.alloc(600)])
  const p = expectOk(t, padded)
  t.same(p, { op: 'RRQ', filename: 'f', mode: 'octet', options: [{ name: 'blksize', value: '1024' }] })
  t.same(expectOk(t, b([0, 1], 'f\0octet\0\0\0\0')), { op: 'RRQ', filename: 'f', mode: 'octet', options: [] })
})

t.test('request size limit: 512 octets without padding (RFC 2347 §2)', async (t) => {
  const base = b([0, 1], 'f\0octet\0')
  const fill = (total: number): Buffer => {
    const valueLen = total - base.length - 'x\0'.length - 1
    return Buffer.concat([base, b('x\0', 'v'.repeat(valueLen), '\0')])
  }
  t.equal(fill(512).length, 512)
  expectOk(t, fill(512))
  expectError(t, fill(513), 'request-too-large')
  expectError(t, b([0, 1], 'a'.repeat(600), '\0octet\0'), 'request-too-large')
})

t.test('every malformed request case', async (t) => {
  const cases: Array<[string, Buffer, TftpDecodeErrorCode]> = [
    ['empty datagram', b([]), 'too-short'],
    ['one octet', b([0]), 'too-short'],
    ['opcode 0', b([0, 0], 'f\0octet\0'), 'unknown-opcode'],
    ['opcode 7', b([0, 7], 'f\0octet\0'), 'unknown-opcode'],
    ['opcode 0x0101', b([1, 1], 'f\0octet\0'), 'unknown-opcode'],
    ['opcode only', b([0, 1]), 'empty-filename'],
    ['only NULs', b([0, 1, 0, 0, 0]), 'empty-filename'],
    ['empty filename', b([0, 1], '\0octet\0'), 'empty-filename'],
    ['unterminated filename', b([0, 1], 'file'), 'unterminated-field'],
    ['unterminated mode', b([0, 1], 'file\0octet'), 'unterminated-field'],
    ['unterminated option value', b([0, 1], 'file\0octet\0blksize\x001024'), 'unterminated-field'],
    ['missing mode', b([0, 1], 'file\0'), 'missing-mode'],
    ['empty mode', b([0, 1], 'file\0\0\0'), 'missing-mode'],
    ['mail mode', b([0, 1], 'file\0MAIL\0'), 'mail-mode'],
    ['unknown mode', b([0, 1], 'file\0binary\0'), 'unknown-mode'],
    ['non-ASCII mode', b([0, 1], 'file\0oct\xe9t\0'), 'unknown-mode'],
    ['control char in filename', b([0, 1], 'fi\x01le\0octet\0'), 'invalid-filename'],
    ['DEL in filename', b([0, 1], 'fi\x7fle\0octet\0'), 'invalid-filename'],
    ['invalid UTF-8 filename', b([0, 1], 'fi\xc3\x28le\0octet\0'), 'invalid-filename'],
    ['overlong UTF-8 filename', b([0, 1], '\xc0\xafetc\0octet\0'), 'invalid-filename'],
    ['option without value', b([0, 1], 'file\0octet\0blksize\0'), 'option-missing-value'],
    ['option with empty value', b([0, 1], 'file\0octet\0blksize\0\0tsize\x000\0'), 'invalid-option'],
    ['empty option name', b([0, 1], 'file\0octet\0\x001024\0'), 'invalid-option'],
    ['non-printable option name', b([0, 1], 'file\0octet\0blk\x01size\x001024\0'), 'invalid-option'],
    ['non-ASCII option value', b([0, 1], 'file\0octet\0blksize\x00\xff\0'), 'invalid-option'],
    ['duplicate option', b([0, 1], 'file\0octet\0blksize\x00512\0BlkSize\x001024\0'), 'duplicate-option'],
    ['DATA without block', b([0, 3, 0]), 'too-short'],
    ['DATA over 65464 octets', Buffer.concat([b([0, 3, 0, 1]), Buffer.alloc(65465)]), 'data-too-large'],
    ['ACK without block', b([0, 4, 0]), 'too-short'],
    ['ACK with trailing garbage', b([0, 4, 0, 1, 7]), 'trailing-bytes'],
    ['ERROR without code', b([0, 5, 0]), 'too-short'],
    ['OACK unterminated', b([0, 6], 'blksize\x001024'), 'unterminated-field'],
    ['OACK odd fields', b([0, 6], 'blksize\0'), 'option-missing-value'],
  ]
  for (const [name, buf, code] of cases) expectError(t, buf, code, name)
})

t.test('DATA, ACK (with padding), ERROR (lenient), OACK', async (t) => {
  t.same(expectOk(t, b([0, 3, 0xff, 0xff], 'abc')), { op: 'DATA', block: 65535, data: Buffer.from('abc') })
  t.same(expectOk(t, b([0, 3, 0, 0])), { op: 'DATA', block: 0, data: Buffer.alloc(0) })
  t.same(expectOk(t, b([0, 4, 0x12, 0x34])), { op: 'ACK', block: 0x1234 })
  t.same(expectOk(t, b([0, 4, 0, 9, 0, 0, 0])), { op: 'ACK', block: 9 }, 'ACK NUL padding tolerated')
  t.same(expectOk(t, b([0, 5, 0, 1], 'nope\0')), { op: 'ERROR', code: 1, message: 'nope' })
  t.same(expectOk(t, b([0, 5, 0, 8], 'no terminator')), { op: 'ERROR', code: 8, message: 'no terminator' })
  t.same(expectOk(t, b([0, 5, 0, 0], 'msg\0junk')), { op: 'ERROR', code: 0, message: 'msg' })
  t.same(expectOk(t, b([0, 5, 0, 0])), { op: 'ERROR', code: 0, message: '' })
  t.same(expectOk(t, b([0, 6], 'Blksize\x001428\0')), { op: 'OACK', options: [{ name: 'blksize', value: '1428' }] })
  t.same(expectOk(t, b([0, 6])), { op: 'OACK', options: [] })
})

t.test('encoders produce the RFC 1350 byte layouts', async (t) => {
  t.same(encodeAck(0x0102), b([0, 4, 1, 2]))
  t.same(encodeData(7, Buffer.from('xy')), b([0, 3, 0, 7], 'xy'))
  t.same(encodeError(1, 'file not found'), b([0, 5, 0, 1], 'file not found\0'))
  t.same(encodeError(0, 'caf\u00e9\n'), b([0, 5, 0, 0], 'caf??\0'), 'non-ASCII in messages replaced')
  t.same(encodeOack([{ name: 'blksize', value: '1468' }]), b([0, 6], 'blksize\x001468\0'))
  t.same(encodeRequest({ op: 'RRQ', filename: 'a', mode: 'octet', options: [] }), b([0, 1], 'a\0octet\0'))
  t.throws(() => encodeAck(65536), RangeError)
  t.throws(() => encodeAck(-1), RangeError)
  t.throws(() => encodeData(1, Buffer.alloc(65465)), RangeError)
  t.throws(() => encodeOack([{ name: 'a\0b', value: '1' }]), RangeError)
  t.throws(() => encodeError(70000, 'x'), RangeError)
})

t.test('decode(encode(p)) round-trips every packet kind', async (t) => {
  const packets: TftpPacket[] = [
    { op: 'RRQ', filename: 'boot/ipxe.efi', mode: 'octet', options: [{ name: 'windowsize', value: '8' }] },
    { op: 'WRQ', filename: 'x', mode: 'netascii', options: [] },
    { op: 'DATA', block: 65535, data: Buffer.alloc(1468, 0xab) },
    { op: 'ACK', block: 0 },
    { op: 'ERROR', code: 5, message: 'unknown transfer ID' },
    { op: 'OACK', options: [{ name: 'tsize', value: '123' }] },
  ]
  for (const p of packets) t.same(expectOk(t, encodePacket(p)), p, p.op)
})

t.test('every decode error code is documented', async (t) => {
  for (const [code, doc] of Object.entries(TFTP_DECODE_ERRORS)) t.ok(doc.length > 10, code)
})

t.test('netascii: LF → CR LF, CR → CR NUL (RFC 1350 §1, RFC 764)', async (t) => {
  t.same(netasciiEncode(Buffer.from('a\nb\rc\r\n')), Buffer.from('a\r\nb\r\0c\r\0\r\n', 'latin1'))
  t.same(netasciiEncode(Buffer.alloc(0)), Buffer.alloc(0))
})
