/** proto/gen is generated from proto/*.proto; the committed output must match a fresh generation. */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { tempDir } from '../helpers/tmp.js'
import { attest } from '../../proto/index.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

t.test('proto/gen matches a fresh generation', async (t) => {
  const out = tempDir(t)
  execFileSync('bash', [join(root, 'scripts/gen-proto.sh'), out], { cwd: root, stdio: 'pipe' })
  const files = readdirSync(join(root, 'proto/gen')).sort()
  t.same(readdirSync(out).sort(), files)
  for (const f of files) t.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(root, 'proto/gen', f), 'utf8'), `${f} is up to date (run scripts/gen-proto.sh)`)
})

t.test('messages round-trip', async (t) => {
  const msg = { version: 1, nodeHint: 'nid001', macs: ['02:00:00:00:00:01'], ekPublic: new Uint8Array([1, 2, 3]), hardware: { serial: 'S1' } }
  const back = attest.AttestStart.decode(attest.AttestStart.encode(msg).finish())
  t.equal(back.nodeHint, 'nid001')
  t.same([...back.ekPublic], [1, 2, 3])
  t.equal(back.hardware?.serial, 'S1')
  const fin = attest.AttestFinish.decode(attest.AttestFinish.encode({ session: 's', pcrValues: { 0: new Uint8Array(32), 7: new Uint8Array([9]) } }).finish())
  t.same(Object.keys(fin.pcrValues).sort(), ['0', '7'])
})
