/**
 * NoCloud rendering: golden files for the bootcamp set, instance-id stability,
 * determinism, meta-data contents, Jinja handling. Regenerate the golden files after
 * an intended output change:
 *   UPDATE_GOLDEN=1 npx tap test/cloudinit/render.test.ts
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import t from 'tap'
import type { CloudInitData } from '../../server/cloudinit/data.js'
import { layersForNode, type Layer } from '../../server/cloudinit/merge.js'
import { instanceId, renderNoCloud, type RenderResult } from '../../server/cloudinit/render.js'
import { fromStored, toStored } from '../../server/cloudinit/stored.js'
import { FIXTURES, image, input, node, plain, secure, server } from '../fixtures/cloudinit/bootcamp.js'

function rendered (r: RenderResult): Extract<RenderResult, { ok: true }> {
  if (!r.ok) throw new Error(`render failed: ${JSON.stringify(r.problems)}`)
  return r
}

const FILES = [['meta-data', 'metaData'], ['user-data', 'userData'], ['vendor-data', 'vendorData'], ['network-config', 'networkConfig']] as const

t.test('golden NoCloud seeds for the bootcamp set', async (t) => {
  const cases: [string, string, boolean][] = [
    ['nid001-secure', 'nid001', true],
    ['nid002-plain', 'nid002', false],
  ]
  for (const [dirName, name, withSecure] of cases) {
    const r = rendered(renderNoCloud(input(name, withSecure)))
    t.same(r.warnings, [], `${dirName}: no warnings`)
    const dir = new URL(`golden/${dirName}/`, FIXTURES)
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(dir)) {
      if (process.env.CI !== undefined) t.fail(`golden/${dirName} is missing`)
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      for (const [file, key] of FILES) {
        const text = r.seed[key]
        if (text !== undefined) writeFileSync(new URL(file, dir), text)
      }
    }
    for (const [file, key] of FILES) {
      const path = new URL(file, dir)
      const text = r.seed[key]
      if (text === undefined) t.notOk(existsSync(path), `${dirName}/${file} is absent`)
      else t.equal(text, readFileSync(path, 'utf8'), `${dirName}/${file} matches the golden file`)
    }
  }
})

t.test('what the bootcamp seed holds', async (t) => {
  const r = rendered(renderNoCloud(input('nid001', true)))
  const ud = r.documents.userdata as { write_files: { path: string; content: string }[]; runcmd: string[]; packages: string[]; ssh_authorized_keys: string[] }
  t.ok(r.seed.userData.startsWith('#cloud-config\n'))
  t.same(ud.write_files.map((f) => f.path), ['/etc/sysconfig/slurmd', '/etc/default/slurmd', '/etc/hosts', '/etc/netboot/node.env', '/etc/munge/munge.key'])
  t.equal(ud.write_files[0]!.content, 'SLURMD_OPTIONS=--conf-server 172.16.0.254:6817 -vvv\n', "nid001's own slurmd options win")
  t.equal(ud.write_files[1]!.content, 'SLURMD_OPTIONS=--conf-server 172.16.0.254:6817\n')
  t.equal(ud.write_files[3]!.content, 'NODE=nid001\nXNAME=x1000c1s7b1n0\nNID=1\nGROUP=compute\nBMC=172.16.0.101\n')
  for (let i = 1; i <= 9; i++) t.match(ud.write_files[2]!.content, new RegExp(`^172\\.16\\.0\\.${i}\\s+nid00${i}$`, 'm'), `/etc/hosts has nid00${i}`)
  t.match(ud.write_files[4], { path: '/etc/munge/munge.key', permissions: '0400', owner: 'munge:munge', encoding: 'b64' })
  t.equal(Buffer.from(ud.write_files[4]!.content, 'base64').length, 1024, 'the munge key decodes to 1024 bytes')
  t.same(ud.runcmd, ['systemctl restart chrony', 'echo "debug slurmd on nid001" > /etc/motd', 'systemctl start munge', 'systemctl start slurmd'])
  t.same(ud.packages, ['chrony', 'munge', 'slurmd', 'gdb'])
  t.equal(ud.ssh_authorized_keys.length, 2)
  t.same(r.documents.metadata, { 'instance-id': instanceId('nid001', image.digest), 'local-hostname': 'nid001', cluster: 'demo', role: 'compute-debug' })
  t.match(r.seed.networkConfig, /macaddress: ec:e7:a7:05:a1:fc\n/)

  const plainOnly = rendered(renderNoCloud(input('nid001', false)))
  t.notMatch(plainOnly.seed.userData, /munge\.key|systemctl start munge/, 'the plain seed carries no secure data')
  const nid005 = rendered(renderNoCloud(input('nid005', true)))
  t.match(nid005.seed.userData, /NODE=nid005\n/)
  t.notMatch(nid005.seed.userData, /-vvv|gdb/, "nid001's payload is nid001's only")
})

t.test('instance-id: stable per node and image', async (t) => {
  const a = instanceId('nid001', image.digest)
  t.match(a, /^iid-[0-9a-f]{16}$/)
  t.equal(a, 'iid-' + (await import('node:crypto')).createHash('sha256').update(`nid001\0${image.digest}`).digest('hex').slice(0, 16), 'iid- and 16 hex of SHA-256(name NUL digest)')
  t.equal(instanceId('nid001', image.digest), a, 'same node and image: same id')
  t.not(instanceId('nid001', 'sha256:' + '0'.repeat(64)), a, 'another image: another id')
  t.not(instanceId('nid002', image.digest), a, 'another node: another id')
  t.not(instanceId('nid00', '1' + image.digest), instanceId('nid001', image.digest), 'name and digest are separated')
  const r1 = rendered(renderNoCloud(input('nid001', true)))
  const r2 = rendered(renderNoCloud({ ...input('nid001', false), layers: [] }))
  t.equal(r1.seed.instanceId, r2.seed.instanceId, 'the payloads do not enter the id')
  t.match(r1.seed.metaData, /^instance-id: iid-[0-9a-f]{16}\nlocal-hostname: nid001\n/)
})

t.test('deterministic: the same input gives the same bytes, also after a round trip through the store columns', async (t) => {
  const first = rendered(renderNoCloud(input('nid001', true)))
  const again = rendered(renderNoCloud(input('nid001', true)))
  t.same(again.seed, first.seed)
  // What the store does: keep each payload as four JSON columns, read them back later.
  const roundTrip = (m: ReadonlyMap<string, CloudInitData>): Map<string, CloudInitData> => {
    const out = new Map<string, CloudInitData>()
    for (const [k, v] of m) {
      const r = fromStored(toStored(v), k)
      if (!r.ok) throw new Error(JSON.stringify(r.problems))
      out.set(k, r.data)
    }
    return out
  }
  const n = node('nid001')
  const layers = layersForNode(n, { groups: roundTrip(plain.groups), nodes: roundTrip(plain.nodes) }, { groups: roundTrip(secure.groups), nodes: new Map() })
  t.same(rendered(renderNoCloud({ node: n, image, server, layers })).seed, first.seed)
})

t.test('empty, and meta-data keys netboot owns', async (t) => {
  const bare = rendered(renderNoCloud({ node: { name: 'n1', groups: [], interfaces: [] }, image, server, layers: [] }))
  t.same(bare.seed, { instanceId: instanceId('n1', image.digest), metaData: `instance-id: ${instanceId('n1', image.digest)}\nlocal-hostname: n1\n`, userData: '#cloud-config\n{}\n', vendorData: '' })
  const layers: Layer[] = [{ kind: 'node', name: 'n1', secure: false, data: { metadata: { 'instance-id': 'mine', 'local-hostname': 'other', zone: 'a', when: '2024-01-02', octal: '0400' } } }]
  const r = rendered(renderNoCloud({ node: { name: 'n1', groups: [], interfaces: [] }, image, server, layers }))
  t.equal(r.seed.metaData, `instance-id: ${instanceId('n1', image.digest)}\nlocal-hostname: n1\nzone: a\nwhen: "2024-01-02"\noctal: "0400"\n`, 'payload values for the owned keys are ignored; YAML 1.1 look-alikes are quoted')
})

t.test('Jinja: the header travels, node-side expressions pass, raw blocks unwrap only without it', async (t) => {
  const n = { name: 'n1', groups: ['g'], interfaces: [] }
  const group: Layer = { kind: 'group', name: 'g', secure: false, data: { userdata: { runcmd: ['echo {{ group.name }} {{ v1.local_hostname }} {% raw %}{{ x }}{% endraw %}'] } } }
  const jinjaNode: Layer = { kind: 'node', name: 'n1', secure: false, data: { userdata: { bootcmd: ['true'] }, userdataJinja: true } }

  const withHeader = rendered(renderNoCloud({ node: n, image, server, layers: [group, jinjaNode] }))
  t.equal(withHeader.seed.userData, "## template: jinja\n#cloud-config\nruncmd:\n  - echo g {{ v1.local_hostname }} {% raw %}{{ x }}{% endraw %}\nbootcmd:\n  - \"true\"\n")
  t.same(withHeader.warnings, [])

  const without = rendered(renderNoCloud({ node: n, image, server, layers: [group] }))
  t.equal(without.seed.userData, '#cloud-config\nruncmd:\n  - echo g {{ v1.local_hostname }} {{ x }}\n')
  t.same(without.warnings, ["user-data has {{ }}, {% %} or {# #} that are not netboot's, and no layer's user-data starts with '## template: jinja': they reach the node as written"])
})

t.test('template problems name the layer and the key path', async (t) => {
  const layers: Layer[] = [
    { kind: 'group', name: 'compute', secure: false, data: { userdata: { runcmd: ['{{ group.name }}'] } } },
    { kind: 'node', name: 'n1', secure: true, data: { userdata: { runcmd: ['{{ group.name }}'] }, metadata: { x: '{{ node.xname }}' } } },
  ]
  const r = renderNoCloud({ node: { name: 'n1', groups: ['compute'], interfaces: [] }, image, server, layers })
  t.same(r, {
    ok: false,
    problems: [
      { where: 'secure node n1', message: "user-data.runcmd[0]: '{{ group.name }}': group.name is not set outside a group payload; add | default(\"…\")" },
      { where: 'secure node n1', message: "meta-data.x: '{{ node.xname }}': node.xname is not set for n1; add | default(\"…\")" },
    ],
  })
})
