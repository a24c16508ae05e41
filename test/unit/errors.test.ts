import { readFileSync } from 'node:fs'
import t from 'tap'
import { catalogue, NetbootError } from '../../server/errors.js'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')

t.test('every code is documented with its status, and the doc lists no other', async (t) => {
  for (const [code, spec] of Object.entries(catalogue)) {
    t.match(doc, new RegExp(`^\\| \`${code}\` \\| ${spec.status} \\| .+ \\|$`, 'm'), code)
  }
  const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1])
  t.same(documented.sort(), Object.keys(catalogue).sort())
})

t.test('NetbootError carries the status and serialises without a stack', async (t) => {
  const e = new NetbootError('DUPLICATE_MAC', 'MAC x used', [{ where: 'nodes.yaml:3', message: 'dup' }])
  t.equal(e.status, 409)
  t.same(JSON.parse(JSON.stringify(e)), { error: { code: 'DUPLICATE_MAC', message: 'MAC x used', details: [{ where: 'nodes.yaml:3', message: 'dup' }] } })
})
