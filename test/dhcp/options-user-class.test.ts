import t from 'tap'
import { isRfc3004UserClass, userClass } from '../../server/dhcp/codec/index.js'

const b = (...parts: (number | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : [...Buffer.from(p, 'latin1')])))

t.test('form detection table', async (t) => {
  const table: [string, Uint8Array, 'rfc3004' | 'legacy', string[]][] = [
    ['iPXE legacy string', b('iPXE'), 'legacy', ['iPXE']],
    ['dhclient send user-class', b('netboot-agent'), 'legacy', ['netboot-agent']],
    ['RFC 3004 single instance', b(4, 'iPXE'), 'rfc3004', ['iPXE']],
    ['RFC 3004 two instances', b(4, 'iPXE', 3, 'abc'), 'rfc3004', ['iPXE', 'abc']],
    ['zero-length instance is not RFC 3004', b(0, 'ab'), 'legacy', ['\u0000ab']],
    ['length chain short of the end', b(2, 'abc'), 'legacy', ['\u0002abc']],
    ['length chain past the end', b(9, 'ab'), 'legacy', ['\tab']],
  ]
  for (const [name, data, format, classes] of table) {
    t.equal(isRfc3004UserClass(data), format === 'rfc3004', `${name}: detect`)
    t.same(userClass.decode(data), { ok: true, value: { format, classes } }, name)
    const r = userClass.decode(data)
    if (r.ok) t.same(userClass.encode(r.value), data, `${name}: round trip`)
  }
})

t.test('empty is invalid', async (t) => {
  const r = userClass.decode(new Uint8Array(0))
  t.equal(r.ok ? 'ok' : r.error.code, 'invalid-option-length')
})

t.test('format', async (t) => {
  t.equal(userClass.format({ format: 'legacy', classes: ['iPXE'] }), 'legacy "iPXE"')
  t.equal(userClass.format({ format: 'rfc3004', classes: ['a', 'b'] }), 'rfc3004 "a", "b"')
})
