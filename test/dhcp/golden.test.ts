/**
 * Golden tests: every fixture in test/fixtures/dhcp/*.hex (real captures from
 * capture.sh, plus files marked CRAFTED) decodes, its dump equals the
 * committed *.dump, and decode → encode → decode keeps the dump.
 * Regenerate dumps after an intended format change:
 *   UPDATE_GOLDEN=1 npx tap test/dhcp/golden.test.ts
 */
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodePacket, dumpPacket, encodePacket, validateClientRequest, BOOTREQUEST } from '../../server/dhcp/codec/index.js'
import { FIXTURES, fixtureNames, loadHex } from './helpers.js'

const names = fixtureNames()
t.ok(names.length >= 11, 'captured and crafted fixtures are present')
t.ok(names.some((n) => n.startsWith('dhclient-')) && names.some((n) => n.startsWith('udhcpc-')), 'both real clients are represented')

for (const name of names) {
  t.test(name, async (t) => {
    const wire = loadHex(join(FIXTURES, `${name}.hex`))
    const r = decodePacket(wire)
    if (!r.ok) {
      t.fail(`decode failed: ${r.error.code} ${r.error.message}`)
      return
    }
    const dump = dumpPacket(r.value)
    const dumpPath = join(FIXTURES, `${name}.dump`)
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(dumpPath)) {
      if (process.env.CI) t.fail(`${name}.dump is missing`)
      writeFileSync(dumpPath, dump)
    }
    t.equal(dump, readFileSync(dumpPath, 'utf8'), 'dump matches the golden file')

    if (r.value.op === BOOTREQUEST) t.ok(validateClientRequest(r.value).ok, 'is a valid client request')

    const again = encodePacket(r.value)
    t.ok(again.ok, 'encodes')
    if (!again.ok) return
    const r2 = decodePacket(again.value)
    t.ok(r2.ok, 're-decodes')
    if (r2.ok) t.equal(dumpPacket(r2.value), dump, 'round trip keeps every field and option')
    if (wire.length >= 300 && !name.startsWith('crafted-')) {
      t.equal(Buffer.from(again.value).toString('hex'), Buffer.from(wire).toString('hex'), 'real capture re-encodes byte for byte')
    }
  })
}
