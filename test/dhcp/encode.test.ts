/** encodePacket: field validation, padding, size limits and option 52 overload on encode. */
import t from 'tap'
import { decodePacket, DhcpOptions, dumpPacket, encodePacket, type DhcpPacket } from '../../server/dhcp/codec/index.js'
import { raw } from './helpers.js'

function base(): DhcpPacket {
  const r = decodePacket(raw({ op: 2, options: [53, 1, 2, 255] }))
  if (!r.ok) throw new Error('fixture')
  return r.value
}

function filler(codes: number[], size: number): DhcpOptions {
  const o = new DhcpOptions()
  o.set(53, Uint8Array.of(2))
  for (const c of codes) o.set(c, new Uint8Array(size).fill(c))
  return o
}

t.test('field validation', async (t) => {
  const cases: [string, Partial<DhcpPacket>, string][] = [
    ['bad ciaddr', { ciaddr: '10.0.0' }, 'invalid-field'],
    ['bad giaddr', { giaddr: '10.0.0.256' }, 'invalid-field'],
    ['leading zero', { yiaddr: '10.0.0.01' }, 'invalid-field'],
    ['negative xid', { xid: -1 }, 'invalid-field'],
    ['xid too big', { xid: 2 ** 32 }, 'invalid-field'],
    ['flags too big', { flags: 0x10000 }, 'invalid-field'],
    ['op 256', { op: 256 }, 'invalid-field'],
    ['hlen 17', { hlen: 17 }, 'invalid-field'],
    ['chaddr 17 bytes', { chaddr: new Uint8Array(17) }, 'invalid-field'],
    ['sname 64 chars', { sname: 'x'.repeat(64) }, 'field-too-long'],
    ['file 128 chars', { file: 'x'.repeat(128) }, 'field-too-long'],
    ['file with NUL', { file: 'a\u0000b' }, 'field-too-long'],
    ['file not latin1', { file: 'é€' }, 'field-too-long'],
  ]
  for (const [name, patch, want] of cases) {
    const r = encodePacket({ ...base(), ...patch })
    t.equal(r.ok ? 'ok' : r.error.code, want, name)
  }
  t.ok(encodePacket({ ...base(), sname: 'x'.repeat(63), file: 'y'.repeat(127) }).ok, '63/127 characters fit')
})

t.test('padding to the BOOTP minimum and maxSize', async (t) => {
  const r = encodePacket(base())
  t.ok(r.ok && r.value.length === 300, 'padded to 300')
  if (r.ok) t.same([...r.value.subarray(240, 244)], [53, 1, 2, 255])
  const noPad = encodePacket(base(), { minSize: 0 })
  t.ok(noPad.ok && noPad.value.length === 244, 'no padding requested')
  const tiny = encodePacket(base(), { maxSize: 240 })
  t.equal(tiny.ok ? 'ok' : tiny.error.code, 'reply-too-large')
})

t.test('overload into file, then sname (RFC 2132 §9.3)', async (t) => {
  // maxSize 548 → options field 308 bytes
  const p = base()
  // options field 308 bytes: 53 (3) + 200 (202) fit, 201 (122) goes to file
  p.options = filler([200], 200)
  p.options.set(201, new Uint8Array(120).fill(201))
  const r = encodePacket(p, { maxSize: 548, minSize: 300 })
  t.ok(r.ok, 'fits with overload')
  if (!r.ok) return
  t.ok(r.value.length <= 548)
  const d = decodePacket(r.value)
  t.ok(d.ok)
  if (!d.ok) return
  t.equal(d.value.overload, 1, 'file only')
  t.same([...d.value.options.codes()], [53, 200, 201])
  t.ok(d.value.options.get(201)!.every((b) => b === 201))

  const p2 = base()
  // 53 + 200 + 201 fill the options field, 202 (122) goes to file, 203 (52) and 204 (7) to sname
  p2.options = filler([200, 201], 100)
  p2.options.set(202, new Uint8Array(120).fill(202))
  p2.options.set(203, new Uint8Array(50).fill(203))
  p2.options.set(204, new Uint8Array(5).fill(204))
  const r2 = encodePacket(p2, { maxSize: 548 })
  t.ok(r2.ok)
  if (!r2.ok) return
  const d2 = decodePacket(r2.value)
  t.ok(d2.ok && d2.value.overload === 3, 'file and sname')
  if (d2.ok) t.equal(dumpPacket(d2.value).split('\n').filter((l) => l.startsWith('option ')).length, 6)
})

t.test('overload uses only unused fields', async (t) => {
  const p = base()
  p.options = filler([200, 201], 250)
  p.file = 'undionly.kpxe'
  const r = encodePacket(p, { maxSize: 548 })
  t.equal(r.ok ? 'ok' : r.error.code, 'reply-too-large', 'file in use and 252 bytes do not fit sname')

  const p2 = base()
  p2.options = filler([200], 250)
  p2.options.set(201, new Uint8Array(55).fill(201))
  p2.file = 'undionly.kpxe'
  const r2 = encodePacket(p2, { maxSize: 548 })
  t.ok(r2.ok)
  if (!r2.ok) return
  const d2 = decodePacket(r2.value)
  t.ok(d2.ok && d2.value.overload === 2 && d2.value.file === 'undionly.kpxe', 'sname only, file name kept')

  const p3 = base()
  p3.options = filler([200, 201], 250)
  p3.file = 'a'
  p3.sname = 'b'
  const r3 = encodePacket(p3, { maxSize: 548 })
  t.equal(r3.ok ? 'ok' : r3.error.code, 'reply-too-large', 'both fields in use')

  const r4 = encodePacket({ ...base(), options: filler([200, 201], 250) }, { maxSize: 548, allowOverload: false })
  t.equal(r4.ok ? 'ok' : r4.error.code, 'reply-too-large', 'overload disabled')
})

t.test('a long option split across options and file keeps its order', async (t) => {
  // 302 bytes → instances of 255 and 47: the first fits the options field, the second goes to file
  const p = base()
  const big = new Uint8Array(302).map((_, i) => i & 0xff)
  p.options.set(250, big)
  const r = encodePacket(p, { maxSize: 548 })
  t.ok(r.ok)
  if (!r.ok) return
  const d = decodePacket(r.value)
  t.ok(d.ok && d.value.overload === 1 && Buffer.from(d.value.options.get(250)!).equals(Buffer.from(big)))
})

t.test('instances are never split to fill space: 255-byte instances do not fit file', async (t) => {
  const p = base()
  p.options = filler([200, 201], 250)
  const r = encodePacket(p, { maxSize: 548 })
  t.equal(r.ok ? 'ok' : r.error.code, 'reply-too-large')
})

t.test('too large even with overload', async (t) => {
  const p = base()
  p.options = filler([200, 201, 202, 203], 200)
  const r = encodePacket(p, { maxSize: 548 })
  t.equal(r.ok ? 'ok' : r.error.code, 'reply-too-large')
})
