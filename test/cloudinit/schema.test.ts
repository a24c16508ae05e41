/**
 * Real-peer tests: what netboot renders passes the installed cloud-init's own
 * validation, and what cloud-init rejects comes back with cloud-init's message.
 * These need Debian's `cloud-init` package (apt-get install --no-install-recommends
 * cloud-init) and fail without it.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { layersForNode } from '../../server/cloudinit/merge.js'
import { parsePayloadFile } from '../../server/cloudinit/payload.js'
import { renderNoCloud, type RenderResult } from '../../server/cloudinit/render.js'
import { cloudInitAvailable, cloudInitVersion, validateCloudConfig } from '../../server/cloudinit/validate.js'
import { tempDir } from '../helpers/tmp.js'
import { image, input, server } from '../fixtures/cloudinit/bootcamp.js'

function rendered (r: RenderResult): Extract<RenderResult, { ok: true }> {
  if (!r.ok) throw new Error(`render failed: ${JSON.stringify(r.problems)}`)
  return r
}

// Other test files validate at the same time in the shared /tmp: this file counts
// scratch directories in a TMPDIR of its own (os.tmpdir() reads TMPDIR at each call).
process.env.TMPDIR = mkdtempSync(join(tmpdir(), 'netboot-schema-test-'))
t.teardown(() => rmSync(process.env.TMPDIR!, { recursive: true, force: true }))

const scratch = (): Set<string> => new Set(readdirSync(tmpdir()).filter((d) => d.startsWith('netboot-cloudinit-')))
/** Scratch directories made since `before` and still there. */
const leftSince = (before: Set<string>): string[] => [...scratch()].filter((d) => !before.has(d))

t.test('cloud-init is installed', async (t) => {
  t.ok(await cloudInitAvailable(), 'cloud-init runs (Debian: apt-get install --no-install-recommends cloud-init)')
  t.match(await cloudInitVersion(), /^\d+\.\d+/)
})

t.test('the bootcamp seeds pass cloud-init schema', async (t) => {
  const before = scratch()
  const full = rendered(renderNoCloud(input('nid001', true)))
  const plain = rendered(renderNoCloud(input('nid002', false)))
  const checks: [string, object, 'cloud-config' | 'network-config'][] = [
    ['nid001 user-data (group, node override, secure munge key)', full.documents.userdata, 'cloud-config'],
    ['nid001 vendor-data', full.documents.vendordata ?? {}, 'cloud-config'],
    ['nid001 network-config', full.documents.networkConfig ?? {}, 'network-config'],
    ['nid002 plain user-data', plain.documents.userdata, 'cloud-config'],
  ]
  for (const [name, doc, kind] of checks) t.same(await validateCloudConfig(doc, kind), { ok: true, warnings: [] }, name)
  t.same(leftSince(before), [], 'scratch files are removed')
})

t.test('what cloud-init rejects comes back with its message, naming the key', async (t) => {
  const before = scratch()
  const text = [
    'name: compute',
    'cloud-init:',
    '  userdata:',
    '    runcmd: 3',
    '    write_files:',
    '      - path: /etc/munge/munge.key',
    '        content: S3CRETS3CRETS3CRET',
    '        encoding: b64',
    '        mode: "0400"',
    '',
  ].join('\n')
  const parsed = parsePayloadFile(text, 'bad.yaml')
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems))
  const n = { name: 'nid001', groups: ['compute'], interfaces: [] }
  const r = rendered(renderNoCloud({ node: n, image, server, layers: layersForNode(n, { groups: new Map([['compute', parsed.payloads[0]!.data]]), nodes: new Map() }) }))
  const v = await validateCloudConfig(r.documents.userdata, 'cloud-config')
  t.same(v, {
    ok: false,
    messages: [
      "runcmd: 3 is not of type 'array'",
      "write_files.0: Additional properties are not allowed ('mode' was unexpected)",
    ],
  })
  t.notMatch(JSON.stringify(v), /S3CRET/, 'the document is not echoed')

  t.same(await validateCloudConfig({ version: 1, config: [{ type: 'bogus', name: 'eth0' }] }, 'network-config'),
    { ok: false, messages: ["No handler found for  command 'bogus'"] }, 'network-config: cloud-init\'s parser refuses an unknown v1 type')
  t.same(await validateCloudConfig({ network: { version: 3 } }, 'network-config'), { ok: false, messages: ['version: expected 1 or 2'] })
  t.same(leftSince(before), [], 'scratch files are removed')
})

t.test('deprecations are warnings', async (t) => {
  const v = await validateCloudConfig({ users: ['default', { name: 'ops', sudo: false }] }, 'cloud-config')
  t.equal(v.ok, true)
  if (v.ok) t.match(v.warnings, [/^users\.1\.sudo: DEPRECATED/])
})

t.test('a missing or hung cloud-init is an error, and runs are one at a time', async (t) => {
  const dir = tempDir(t)
  t.equal(await cloudInitAvailable({ command: join(dir, 'nope') }), false)
  await t.rejects(validateCloudConfig({}, 'cloud-config', { command: join(dir, 'nope') }), { name: 'NetbootError', code: 'INTERNAL', message: /is not installed/ })

  const slow = join(dir, 'slow')
  writeFileSync(slow, '#!/bin/sh\nexec sleep 5\n')
  chmodSync(slow, 0o755)
  await t.rejects(validateCloudConfig({}, 'cloud-config', { command: slow, timeoutMs: 200 }), { name: 'NetbootError', code: 'INTERNAL', message: /did not finish within 200 ms/ })

  const log = join(dir, 'log')
  const fake = join(dir, 'fake')
  writeFileSync(fake, `#!/bin/sh\necho start >> ${log}\nsleep 0.1\necho end >> ${log}\necho "Valid cloud-config: $3"\n`)
  chmodSync(fake, 0o755)
  const results = await Promise.all([1, 2, 3].map(() => validateCloudConfig({ a: 1 }, 'cloud-config', { command: fake })))
  t.same(results, [1, 2, 3].map(() => ({ ok: true, warnings: [] })))
  t.equal(readFileSync(log, 'utf8'), 'start\nend\n'.repeat(3), 'never two at once')
})
