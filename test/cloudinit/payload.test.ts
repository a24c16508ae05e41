import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { MAX_PAYLOAD_BYTES, MAX_PAYLOAD_FILE_BYTES, parsePayloadFile, parsePayloadValue, type PayloadParse } from '../../server/cloudinit/payload.js'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/cloudinit/${name}`, import.meta.url), 'utf8')

function ok (t: Test, r: PayloadParse): Extract<PayloadParse, { ok: true }> {
  if (!r.ok) t.fail(`unexpected problems: ${JSON.stringify(r.problems)}`)
  return r as Extract<PayloadParse, { ok: true }>
}

function problems (r: PayloadParse): string[] {
  return r.ok ? [] : r.problems.map((p) => `${p.where} ${p.message}`)
}

t.test('the bootcamp files: list form, single form, mapping and #cloud-config user-data', async (t) => {
  const compute = ok(t, parsePayloadFile(fixture('bootcamp/compute.yaml'), 'compute.yaml'))
  t.equal(compute.payloads.length, 1)
  const c = compute.payloads[0]!
  t.equal(c.name, 'compute')
  t.equal(c.where, 'compute.yaml:5')
  t.same(Object.keys(c.data), ['userdata', 'metadata', 'vendordata', 'networkConfig'])
  t.equal(c.data.userdata?.ssh_deletekeys, false)
  t.same(c.data.metadata, { 'instance-id': 'ochami-compute', cluster: 'demo', role: 'compute' })
  t.same(compute.warnings, [{ where: 'compute.yaml:61', message: '[0].cloud-init.metadata.instance-id: ignored; netboot sets instance-id per node (and image)' }])

  const nid001 = ok(t, parsePayloadFile(fixture('bootcamp/nid001.yaml'), 'nid001.yaml'))
  const n = nid001.payloads[0]!
  t.equal(n.name, 'nid001')
  t.same(n.data.userdata?.packages, ['slurmd', 'gdb'], '#cloud-config text is parsed into a mapping')
  t.notOk(n.data.userdataJinja)

  const secure = ok(t, parsePayloadFile(fixture('bootcamp/compute-secure.yaml'), 'compute-secure.yaml'))
  const wf = (secure.payloads[0]!.data.userdata?.write_files as { permissions: string; owner: string; encoding: string }[])[0]!
  t.match(wf, { permissions: '0400', owner: 'munge:munge', encoding: 'b64' })
})

t.test('spellings: the seed, ochami and BSS forms all read the same', async (t) => {
  const forms = [
    'name: compute\ncloud-init:\n  userdata: {runcmd: [a]}\n  metadata: {k: v}\n',
    '- name: compute\n  cloud-init:\n    user-data: {runcmd: [a]}\n    meta-data: {k: v}\n    vendor-data: null\n',
    '{"name": "compute", "cloud_init": {"user_data": {"runcmd": ["a"]}, "meta_data": {"k": "v"}}}',
    'name: COMPUTE\ncloud-init:\n  userdata: "#cloud-config\\nruncmd: [a]\\n"\n  metadata: {k: v}\n  network-config: null\n',
  ]
  for (const text of forms) {
    const r = ok(t, parsePayloadFile(text, 'p.yaml'))
    t.same(r.payloads.map((p) => [p.name, p.data]), [['compute', { userdata: { runcmd: ['a'] }, metadata: { k: 'v' } }]], text.split('\n')[0] ?? '')
  }
  const v = ok(t, parsePayloadValue([{ name: 'nid001', 'cloud-init': { userdata: { packages: ['x'] }, network_config: { network: { version: 2, ethernets: {} } } } }], 'request body'))
  t.same(v.payloads[0]!.data, { userdata: { packages: ['x'] }, networkConfig: { version: 2, ethernets: {} } }, 'a JSON body; the network: wrapper is removed')
  const empty = ok(t, parsePayloadFile('name: compute\ncloud-init: {}\n', 'p.yaml'))
  t.same(empty.payloads[0]!.data, {})
})

t.test('a Jinja header is kept as a flag, and the text after it must be cloud-config', async (t) => {
  const r = ok(t, parsePayloadFile('name: g\ncloud-init:\n  userdata: |\n    ## template: jinja\n    #cloud-config\n    runcmd: ["echo {{ v1.local_hostname }}"]\n', 'p.yaml'))
  t.same(r.payloads[0]!.data, { userdata: { runcmd: ['echo {{ v1.local_hostname }}'] }, userdataJinja: true })
  t.match(problems(parsePayloadFile('name: g\ncloud-init:\n  userdata: |\n    ## template: jinja\n    #!/bin/sh\n', 'p.yaml')), [/p\.yaml:3 cloud-init\.userdata: user-data is a script/])
})

t.test('refused user-data formats, each with the reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['#!/bin/bash\necho hi\n', /user-data is a script \(#!\); netboot merges group, node, plain and secure data into one cloud-config document/],
    ['#include\nhttp://x/y\n', /is an #include list/],
    ['#include-once\nhttp://x/y\n', /is an #include list/],
    ['#cloud-boothook\necho\n', /is a #cloud-boothook/],
    ['#cloud-config-archive\n- type: x\n', /is a #cloud-config-archive/],
    ['#cloud-config-jsonp\n[]\n', /is a #cloud-config-jsonp JSON patch/],
    ['#part-handler\n', /is a #part-handler/],
    ['Content-Type: multipart/mixed; boundary="==="\nMIME-Version: 1.0\n', /is MIME multipart/],
    ['runcmd: [a]\n', /text must start with a '#cloud-config' line \(or be a mapping\)/],
    [' #cloud-config\nruncmd: [a]\n', /text must start with a '#cloud-config' line/],
  ]
  for (const [text, re] of cases) {
    const doc = JSON.stringify({ name: 'g', 'cloud-init': { userdata: text } })
    t.match(problems(parsePayloadFile(doc, 'p.json')), [re], JSON.stringify(text.split('\n')[0] ?? ''))
  }
  t.match(problems(parsePayloadFile('name: g\ncloud-init:\n  vendordata: "#!/bin/sh"\n', 'p.yaml')), [/vendor-data is a script/])
  t.match(problems(parsePayloadFile('name: g\ncloud-init:\n  userdata: "#cloud-config\\n- a\\n"\n', 'p.yaml')), [/user-data must be a mapping of cloud-config keys/])
  t.match(problems(parsePayloadFile('name: g\ncloud-init:\n  userdata: [1]\n', 'p.yaml')), [/p\.yaml:3 cloud-init\.userdata: expected a mapping or '#cloud-config' text/])
})

t.test('errors name the file line and the key path', async (t) => {
  const cases: [string, string, (string | RegExp)[]][] = [
    ['not a mapping', '- 3\n', ['p.yaml:1 [0]: expected a mapping with \'name\' and \'cloud-init\'']],
    ['missing name', '- cloud-init: {}\n', ['p.yaml:1 [0].name: missing \'name\'']],
    ['bad name', 'name: a_b\ncloud-init: {}\n', ["p.yaml:1 name: invalid name 'a_b' (a group or node name: letters, digits, '-')"]],
    ['duplicate name', '- name: a\n  cloud-init: {}\n- name: A\n  cloud-init: {}\n', ["p.yaml:3 [1].name: 'a' already given at p.yaml:1"]],
    ['unknown top-level key', 'name: a\ncloud-init: {}\nphone-home: {}\n', ["p.yaml:3 phone-home: unknown key (expected 'name' and 'cloud-init')"]],
    ['missing cloud-init', 'name: a\n', ["p.yaml:1 missing 'cloud-init'"]],
    ['unknown document', 'name: a\ncloud-init:\n  userdata: {}\n  userdatta: {}\n', ['p.yaml:4 cloud-init.userdatta: unknown key (expected userdata, metadata, vendordata, network_config, or the same hyphenated or underscored)']],
    ['two spellings', 'name: a\ncloud-init:\n  userdata: {}\n  user-data: {}\n', ["p.yaml:4 cloud-init.user-data: user-data given twice (also as 'userdata')"]],
    ['metadata not a map', 'name: a\ncloud-init:\n  metadata: [1]\n', ['p.yaml:3 cloud-init.metadata: expected a mapping of meta-data keys']],
    ['YAML syntax', 'name: a\ncloud-init:\n  userdata: {\n', [/^p\.yaml:\d+ YAML: /]],
    ['duplicate key', 'name: a\ncloud-init:\n  userdata:\n    runcmd: []\n    runcmd: []\n', [/^p\.yaml:5 YAML: Map keys must be unique/]],
    ['error inside #cloud-config text', 'name: a\ncloud-init:\n  userdata: |\n    #cloud-config\n    runcmd:\n      - [a\n    x: y\n', [/^p\.yaml:\d+ cloud-init\.userdata: YAML: /]],
    ['base-60 MAC in #cloud-config text', 'name: a\ncloud-init:\n  userdata: |\n    #cloud-config\n    ntp:\n      servers: [a]\n    bootcmd: [x]\n    mac: 52:54:00:12:34:56\n', ["p.yaml:8 cloud-init.userdata: '52:54:00:12:34:56' is a base-60 number (41135085296) in YAML 1.1, as cloud-init reads it; quote it if it is a string (a MAC address, a time)"]],
    ['template error', 'name: a\ncloud-init:\n  userdata:\n    write_files:\n      - path: /x\n        content: "{{ node.nmae }}"\n', [/^p\.yaml:6 cloud-init\.userdata\.write_files\[0\]\.content: '\{\{ node\.nmae \}\}': unknown variable node\.nmae \(known: node\.name, /]],
    ['template error in #cloud-config text', 'name: a\ncloud-init:\n  userdata: |\n    #cloud-config\n    runcmd:\n      - echo {{ server.url | upper(1) }}\n', [/^p\.yaml:6 cloud-init\.userdata\.runcmd\[0\]: .*upper takes no arguments/]],
    ['template error in quoted #cloud-config text', '- name: a\n  cloud-init:\n    userdata: "#cloud-config\\nruncmd: [\\"{{ node.x }}\\"]\\n"\n', [/^p\.yaml:3 \(user-data line 2\) \[0\]\.cloud-init\.userdata\.runcmd\[0\]: '\{\{ node\.x \}\}': unknown variable/]],
    ['network version', 'name: a\ncloud-init:\n  network_config:\n    version: 3\n', ['p.yaml:4 cloud-init.network_config.version: expected version: 1 or version: 2']],
    ['network v1 without config', 'name: a\ncloud-init:\n  network-config:\n    network:\n      version: 1\n', ['p.yaml:5 cloud-init.network-config.network.config: version 1 needs config: a list of interfaces, routes, nameservers']],
  ]
  for (const [name, text, want] of cases) {
    const got = problems(parsePayloadFile(text, 'p.yaml'))
    t.match(got, want, name)
    t.equal(got.length, want.length, `${name}: ${JSON.stringify(got)}`)
  }
})

t.test('YAML 1.1, as cloud-init reads it: surprising values are refused, octal and booleans kept', async (t) => {
  const r = ok(t, parsePayloadFile('name: a\ncloud-init:\n  userdata:\n    write_files:\n      - {path: /x, permissions: 0400, content: x}\n    package_upgrade: yes\n    ssh_pwauth: off\n', 'p.yaml'))
  t.same(r.payloads[0]!.data.userdata, { write_files: [{ path: '/x', permissions: 0o400, content: 'x' }], package_upgrade: true, ssh_pwauth: false })
  const cases: [string, RegExp][] = [
    ['  metadata:\n    when: 2024-01-02\n', /p\.yaml:4 cloud-init\.metadata\.when: read as a timestamp by YAML 1.1/],
    ['  metadata:\n    blob: !!binary aGVsbG8=\n', /p\.yaml:4 cloud-init\.metadata\.blob: !!binary is not supported/],
    ['  metadata:\n    on: 1\n', /cloud-init\.metadata: mapping key true is read as a boolean by YAML 1.1; quote it/],
    ['  metadata:\n    x: .inf\n', /cloud-init\.metadata\.x: Infinity cannot be passed on/],
    ['  metadata:\n    "__proto__": 1\n', /cloud-init\.metadata\.__proto__: this key name is not accepted/],
    ['  metadata:\n    s: !!set {a, b}\n', /cloud-init\.metadata\.s: unsupported value \(!!set\)/],
  ]
  for (const [body, re] of cases) t.match(problems(parsePayloadFile(`name: a\ncloud-init:\n${body}`, 'p.yaml')), [re], body.trim())
})

t.test('merge_how is checked at upload', async (t) => {
  const good = ok(t, parsePayloadFile('name: a\ncloud-init:\n  userdata:\n    merge_how: list(append)+dict(no_replace,recurse_list)+str()\n    runcmd: [x]\n', 'p.yaml'))
  t.equal(good.payloads[0]!.data.userdata?.merge_how, 'list(append)+dict(no_replace,recurse_list)+str()', 'kept for merge.ts')
  const cases: [string, RegExp][] = [
    ['merge_how: list(append)', /p\.yaml:4 cloud-init\.userdata\.merge_how: merge_how without dict\(\): cloud-init would ignore this whole part/],
    ['merge_how: dict(no_replace)+list(apend)', /list\(\): unknown option apend/],
    ['merge_how: dict', /'dict' is not NAME\(options\)/],
    ['merge_how: dict()+yaml()', /unknown merger 'yaml'/],
    ['merge_how: [{name: dict, settings: [replace]}, {name: dict, settings: []}]', /dict\(\) named twice/],
  ]
  for (const [line, re] of cases) t.match(problems(parsePayloadFile(`name: a\ncloud-init:\n  userdata:\n    ${line}\n`, 'p.yaml')), [re], line)
  t.match(problems(parsePayloadFile('name: a\ncloud-init:\n  userdata:\n    merge_how: dict()\n    merge_type: dict()\n', 'p.yaml')), [/merge_type: give merge_how or merge_type, not both/])
})

t.test('sizes are bounded', async (t) => {
  const big = 'x'.repeat(MAX_PAYLOAD_BYTES)
  t.match(problems(parsePayloadFile(`name: a\ncloud-init:\n  metadata: {k: "${big}"}\n`, 'p.yaml')), [/p\.yaml:1 payload 'a' is \d+ bytes as JSON; the limit is 1048576/])
  t.match(problems(parsePayloadFile(' '.repeat(MAX_PAYLOAD_FILE_BYTES + 1), 'p.yaml')), [/p\.yaml file is \d+ bytes; the limit is 8388608/])
  const bomb = 'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n'
  t.match(problems(parsePayloadFile(bomb, 'p.yaml')), [/YAML: .*alias/i], 'alias expansion is bounded')
  let deep = '1'
  for (let i = 0; i < 70; i++) deep = `[${deep}]`
  t.match(problems(parsePayloadFile(`name: a\ncloud-init:\n  metadata: {k: ${deep}}\n`, 'p.yaml')), [/nested deeper than 64 levels/])
})
