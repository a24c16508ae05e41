import { execFile } from 'node:child_process'
import t from 'tap'
import type { CloudInitData, Json, JsonMap } from '../../server/cloudinit/data.js'
import { ciMerge, parseMergeHow } from '../../server/cloudinit/merge-how.js'
import { CLOUD_CONFIG_LIST_RULES, layersForNode, mergeCloudConfig, mergeLayers, mergeMaps } from '../../server/cloudinit/merge.js'

t.test('layer order: groups in node order, then the node; plain, then secure', async (t) => {
  const d = (tag: string): CloudInitData => ({ userdata: { runcmd: [tag] } })
  const plain = { groups: new Map([['compute', d('g:compute')], ['gpu', d('g:gpu')], ['other', d('g:other')]]), nodes: new Map([['nid001', d('n:nid001')]]) }
  const secure = { groups: new Map([['compute', d('s:compute')], ['gpu', d('s:gpu')]]), nodes: new Map([['x1000c1s7b2n0', d('s:x1000c1s7b2n0')]]) }

  const nid001 = { name: 'nid001', xname: 'x1000c1s7b1n0', groups: ['gpu', 'compute'] }
  const layers = layersForNode(nid001, plain, secure)
  t.same(layers.map((l) => `${l.secure ? 'secure ' : ''}${l.kind} ${l.name}`), ['group compute', 'group gpu', 'node nid001', 'secure group compute', 'secure group gpu'], 'the first-listed group is the most specific')
  t.same(mergeLayers(layers).userdata?.runcmd, ['g:compute', 'g:gpu', 'n:nid001', 's:compute', 's:gpu'])
  t.same(layersForNode(nid001, plain).map((l) => l.name), ['compute', 'gpu', 'nid001'], 'without secure data: the plain endpoint')

  const nid002 = { name: 'nid002', xname: 'x1000c1s7b2n0', groups: ['compute'] }
  t.same(layersForNode(nid002, plain, secure).map((l) => `${l.kind} ${l.name}`), ['group compute', 'group compute', 'node x1000c1s7b2n0'], "a node's payload may be under its xname")

  const winner = mergeLayers([
    { data: { userdata: { hostname: 'group-plain' }, metadata: { a: 1 } } },
    { data: { userdata: { hostname: 'node-plain' } } },
    { data: { userdata: { hostname: 'group-secure' }, metadata: { a: 2 } } },
  ])
  t.same(winner, { userdata: { hostname: 'group-secure' }, metadata: { a: 2 } }, 'secure data lies on top of all plain data')
})

t.test('cloud-config rules, one table row per rule', async (t) => {
  const rows: [string, JsonMap, JsonMap, JsonMap][] = [
    ['scalars: later wins', { hostname: 'a', ssh_pwauth: true }, { hostname: 'b' }, { hostname: 'b', ssh_pwauth: true }],
    ['new keys are added after the earlier ones', { a: 1 }, { b: 2 }, { a: 1, b: 2 }],
    ['maps merge recursively', { ntp: { enabled: true, servers: ['a'] } }, { ntp: { ntp_client: 'chrony' } }, { ntp: { enabled: true, servers: ['a'], ntp_client: 'chrony' } }],
    ['other lists: later replaces (nested too)', { ntp: { servers: ['a', 'b'] }, mounts: [['a', 'b']] }, { ntp: { servers: ['c'] }, mounts: [['c', 'd']] }, { ntp: { servers: ['c'] }, mounts: [['c', 'd']] }],
    ['a later null removes the key', { runcmd: ['x'], ntp: { enabled: true, pools: ['p'] } }, { runcmd: null, ntp: { pools: null } }, { ntp: { enabled: true } }],
    ['a null with nothing below stays', {}, { a: null }, { a: null }],
    ['type change: later replaces', { ntp: { servers: ['a'] } }, { ntp: 'off' }, { ntp: 'off' }],
    ['runcmd: appended, duplicates kept', { runcmd: ['a', ['b', 'c']] }, { runcmd: ['a', 'd'] }, { runcmd: ['a', ['b', 'c'], 'a', 'd'] }],
    ['bootcmd: appended', { bootcmd: ['a'] }, { bootcmd: ['b'] }, { bootcmd: ['a', 'b'] }],
    ['runcmd as a string is replaced', { runcmd: ['a'] }, { runcmd: 'b' }, { runcmd: 'b' }],
    ['packages: appended, duplicates dropped', { packages: ['a', ['b', '1.0'], 'c'] }, { packages: ['c', ['b', '1.0'], ['b', '2.0'], 'd'] }, { packages: ['a', ['b', '1.0'], 'c', ['b', '2.0'], 'd'] }],
    ['ssh_authorized_keys: appended, duplicates dropped', { ssh_authorized_keys: ['k1', 'k2'] }, { ssh_authorized_keys: ['k2', 'k3'] }, { ssh_authorized_keys: ['k1', 'k2', 'k3'] }],
    ['write_files: by path, later replaces in place', { write_files: [{ path: '/a', content: '1' }, { path: '/b', content: '2' }] }, { write_files: [{ path: '/a', content: '3', permissions: '0600' }, { path: '/c', content: '4' }] }, { write_files: [{ path: '/a', content: '3', permissions: '0600' }, { path: '/b', content: '2' }, { path: '/c', content: '4' }] }],
    ['write_files: a later entry replaces earlier appends to its path', { write_files: [{ path: '/h', content: '1' }, { path: '/x' }, { path: '/h', content: '2', append: true }] }, { write_files: [{ path: '/h', content: '3' }] }, { write_files: [{ path: '/h', content: '3' }, { path: '/x' }] }],
    ['write_files: append: true adds after', { write_files: [{ path: '/h', content: '1' }] }, { write_files: [{ path: '/h', content: '2', append: true }] }, { write_files: [{ path: '/h', content: '1' }, { path: '/h', content: '2', append: true }] }],
    ['write_files: an entry without path is added', { write_files: [{ path: '/a' }] }, { write_files: [{ content: 'x' }] }, { write_files: [{ path: '/a' }, { content: 'x' }] }],
    ['users: by name, later replaces in place; default once', { users: ['default', { name: 'ops', groups: 'wheel' }, 'alice'] }, { users: ['default', { name: 'ops', shell: '/bin/zsh' }, { name: 'alice', lock_passwd: true }, 'bob'] }, { users: ['default', { name: 'ops', shell: '/bin/zsh' }, { name: 'alice', lock_passwd: true }, 'bob'] }],
    ['users: default twice in one layer stays once', {}, { users: ['default', 'default', 'x'] }, { users: ['default', 'x'] }],
    ['the rules apply within one layer', {}, { packages: ['a', 'a'], write_files: [{ path: '/a', content: '1' }, { path: '/a', content: '2' }] }, { packages: ['a'], write_files: [{ path: '/a', content: '2' }] }],
    ['rules are for top-level keys only', { a: { runcmd: ['x'] } }, { a: { runcmd: ['y'] } }, { a: { runcmd: ['y'] } }],
  ]
  for (const [name, earlier, later, want] of rows) {
    const before = JSON.stringify([earlier, later])
    t.same(mergeCloudConfig(earlier, later), want, name)
    t.equal(JSON.stringify([earlier, later]), before, `${name}: inputs untouched`)
  }
  t.same(Object.keys(CLOUD_CONFIG_LIST_RULES).sort(), ['bootcmd', 'packages', 'runcmd', 'ssh_authorized_keys', 'users', 'write_files'], 'every keyed rule has a row above')
})

t.test('meta-data, network-config, vendor-data and the Jinja flags', async (t) => {
  t.same(mergeMaps({ a: 1, b: { c: [1] } }, { b: { c: [2], d: 3 }, e: null }), { a: 1, b: { c: [2], d: 3 }, e: null })
  const merged = mergeLayers([
    { data: { networkConfig: { version: 2, ethernets: { a: { dhcp4: true } } }, vendordata: { runcmd: ['v1'] }, userdataJinja: true } },
    { data: { networkConfig: { version: 1, config: [] }, vendordata: { runcmd: ['v2'] } } },
  ])
  t.same(merged, { vendordata: { runcmd: ['v1', 'v2'] }, networkConfig: { version: 1, config: [] }, userdataJinja: true }, 'network-config is replaced whole')
  t.same(mergeLayers([]), {})
})

t.test('merge_how: the layer is merged with cloud-init\'s mergers', async (t) => {
  const base: JsonMap = { runcmd: ['a'], ntp: { servers: ['s1'] }, hostname: 'h1' }
  t.same(mergeCloudConfig(base, { merge_how: 'dict(replace)+list()+str()', runcmd: ['b'] }), { runcmd: ['b'], ntp: { servers: ['s1'] }, hostname: 'h1' }, "cloud-init's default for parts: a key is replaced whole")
  t.same(mergeCloudConfig(base, { merge_how: 'list(append)+dict(no_replace,recurse_list)+str()', runcmd: ['b'], ntp: { servers: ['s2'] }, hostname: 'h2' }), { runcmd: ['a', 'b'], ntp: { servers: ['s1', 's2'] }, hostname: 'h1' }, 'the documented append recipe')
  t.same(mergeCloudConfig(base, { merge_type: [{ name: 'dict', settings: ['allow_delete', 'no_replace'] }], hostname: null }), { runcmd: ['a'], ntp: { servers: ['s1'] } }, 'list form, merge_type, allow_delete')
  t.notOk('merge_how' in mergeCloudConfig({}, { merge_how: 'dict()', a: 1 }), 'merge_how is not passed on')
})

// Cases run through our port and through the installed cloud-init's Python mergers
// (Debian's cloud-init runs on /usr/bin/python3, not whatever python3 is first on PATH).
const CASES: [Json, Json, Json][] = [
  ['dict(replace)+list()+str()', { a: [1, 2], b: { c: 1 }, s: 'x' }, { a: [3], b: { d: 2 }, s: 'y', n: 1 }],
  ['list()+dict()+str()', { a: [1, 2], b: { c: 1 }, s: 'x' }, { a: [3], b: { d: 2 }, s: 'y', n: 1 }],
  ['dict(no_replace,recurse_list)+list(replace)', { a: [1, 2], n: 1 }, { a: [3, 4, 5], n: 2 }],
  ['dict(no_replace,recurse_list)+list(no_replace)', { a: [1, 2] }, { a: [3, 4, 5] }],
  ['list(append)+dict(no_replace,recurse_list)+str()', { runcmd: ['a'], w: [{ p: 1 }], h: 'x' }, { runcmd: ['b'], w: [{ p: 2 }], h: 'y' }],
  ['list(prepend)+dict(no_replace,recurse_array)', { a: [1], b: [2] }, { a: [0], c: [3] }],
  ['dict(no_replace,recurse_list,recurse_str)+list(append)+str(append)', { s: 'ab', a: ['x'] }, { s: 'cd', a: 'yz' }],
  ['dict(recurse_str)+str()', { s: 'ab' }, { s: 'cd' }],
  ['dict(no_replace,recurse_list)+list(replace,recurse_dict)', { a: [{ x: 1, y: 1 }, { z: 1 }] }, { a: [{ x: 2 }] }],
  ['dict(no_replace,recurse_list)+list(append)', { a: [1] }, { a: { k: 1, j: 2 } }],
  ['dict(replace,allow_delete)', { a: 1, b: 2 }, { a: null, c: null }],
  ['dict(no_replace)', { a: { b: { c: 1 } }, x: [1] }, { a: { b: { d: 2 }, e: 3 }, x: [2] }],
  ['dict(no_replace,recurse_list)+list(replace)', { a: 'text' }, { a: ['l'] }],
  [[{ name: 'list', settings: ['append'] }, { name: 'dict', settings: ['no_replace', 'recurse_list'] }], { a: [1] }, { a: [2] }],
  [[['dict', 'replace'], ['list', 'append']], { a: [1] }, { a: [2] }],
]

function pythonMerge (cases: readonly [Json, Json, Json][]): Promise<Json[]> {
  const script = [
    // cloudinit.importer uses importlib.util without importing it; cloud-init's own entry point has it loaded.
    'import importlib.util, json, sys',
    'from cloudinit import mergers',
    'out = []',
    'for how, a, b in json.load(sys.stdin):',
    '    parsed = mergers.string_extract_mergers(how) if isinstance(how, str) else mergers.dict_extract_mergers({"merge_how": how})',
    '    out.append(mergers.construct(parsed).merge(a, b))',
    'print(json.dumps(out))',
  ].join('\n')
  return new Promise((resolve, reject) => {
    const child = execFile('/usr/bin/python3', ['-c', script], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`python3 with cloud-init's mergers failed (is cloud-init installed?): ${stderr}`))
      else resolve(JSON.parse(stdout) as Json[])
    })
    child.stdin?.end(JSON.stringify(cases))
  })
}

t.test("merge_how port agrees with cloud-init's Python mergers (needs cloud-init)", async (t) => {
  const expected = await pythonMerge(CASES)
  CASES.forEach(([how, a, b], i) => {
    const parsed = parseMergeHow(how)
    t.ok(parsed.ok, `parses ${JSON.stringify(how)}`)
    if (parsed.ok) t.same(ciMerge(parsed.mergers, a, b), expected[i], JSON.stringify(how))
  })
})
