import t from 'tap'
import { TEMPLATE_VARIABLES, checkValue, renderString, renderValue, unwrapRaw, type TemplateFacts } from '../../server/cloudinit/template.js'

const facts: TemplateFacts = {
  node: {
    name: 'nid001',
    xname: 'x1000c1s7b1n0',
    nid: 1,
    groups: ['compute', 'gpu'],
    interfaces: [{ mac: 'ec:e7:a7:05:a1:fc' }, { mac: 'ec:e7:a7:05:a1:fd', ip: '172.16.0.1', network: 'management' }],
    bmcMac: '02:00:00:b0:00:01',
    bmcIp: '172.16.0.101',
  },
  server: { url: 'http://172.16.0.254:8080', ip: '172.16.0.254' },
  group: { name: 'compute' },
}
const bare: TemplateFacts = { node: { name: 'n9', groups: [], interfaces: [] }, server: { url: 'http://s' } }

const render = (text: string, f: TemplateFacts = facts): string => {
  const r = renderString(text, f)
  return r.ok ? r.value : `ERROR ${r.message}`
}

t.test('every documented variable renders', async (t) => {
  const want: Record<string, string> = {
    'node.name': 'nid001',
    'node.xname': 'x1000c1s7b1n0',
    'node.nid': '1',
    'node.groups': 'compute,gpu',
    'node.ip': '172.16.0.1',
    'node.mac': 'ec:e7:a7:05:a1:fc',
    'node.bmc_ip': '172.16.0.101',
    'node.bmc_mac': '02:00:00:b0:00:01',
    'server.url': 'http://172.16.0.254:8080',
    'server.ip': '172.16.0.254',
    'group.name': 'compute',
  }
  t.same(TEMPLATE_VARIABLES.map((v) => v.name).sort(), Object.keys(want).sort(), 'the table covers every variable')
  for (const [name, value] of Object.entries(want)) t.equal(render(`{{ ${name} }}`), value, name)
})

t.test('syntax: spacing, filters, whitespace control, literals', async (t) => {
  const cases: [string, string, TemplateFacts?][] = [
    ['{{node.name}}', 'nid001'],
    ['host-{{  node.name  }}.cluster', 'host-nid001.cluster'],
    ['{{ node.name | upper }}', 'NID001'],
    ['{{ node.xname | default("none") }}', 'x1000c1s7b1n0'],
    ['{{ node.xname | default("none") }}', 'none', bare],
    ["{{ node.bmc_ip | d('-') }}", '-', bare],
    ['{{ node.nid | default(0) }}', '0', bare],
    ['{{ node.groups | default("none") }}', '', bare],
    ['{{ node.groups | default("none", true) }}', 'none', bare],
    ['{{ node.groups | default("a}}b", true) }}', 'a}}b', bare],
    ['{{ node.groups | default("say \\"hi\\"", true) }}', 'say "hi"', bare],
    ['{{ node.xname | default("X") | lower }}', 'x', bare],
    ['a \n  {{- node.name -}}  \n b', 'anid001b'],
    ['{{+ node.name +}}', 'nid001'],
    ['{{ server.url }}/cloud-init/{{ node.name }}/', 'http://172.16.0.254:8080/cloud-init/nid001/'],
  ]
  for (const [text, want, f] of cases) t.equal(render(text, f), want, JSON.stringify(text))
})

t.test("what is not netboot's passes to the node byte for byte", async (t) => {
  const same = [
    '{{ v1.local_hostname }}',
    '{{ ds.meta_data.public_keys[0] }}',
    '{{ v1["availability_zone"] }}',
    '{% if v1.distro == "debian" %}apt{% endif %}',
    '{# {{ node.name }} in a comment #}',
    '{% raw %}{{ node.name }}{% endraw %}',
    '{%- raw -%} {{ node.nmae }} {%- endraw -%}',
    'a { b } {{ c',
    'echo ${{ x }} ${HOME} {',
    'nodes{{ .Values.x }}',
    '{{ nodes.name }}',
  ]
  for (const text of same) {
    const r = renderString(text, facts)
    t.ok(r.ok && r.value === text, JSON.stringify(text))
  }
  const anywhere: [string, string][] = [
    ["{{ '{{ node.name }}' }}", "{{ 'nid001' }}"],
    ['echo ${#arr[@]} {{ node.name }}', 'echo ${#arr[@]} nid001'],
    ['{{ x {{ node.name }}', '{{ x nid001'],
    ['{% if x {{ node.name }}', '{% if x nid001'],
  ]
  for (const [text, want] of anywhere) t.equal(render(text), want, `netboot's own expressions are found anywhere: ${text}`)
  const r = renderString('{{ v1.local_hostname }} {% if x %}{% endif %} {# c #} {{ node.name }}', facts)
  t.same(r, { ok: true, value: '{{ v1.local_hostname }} {% if x %}{% endif %} {# c #} nid001', nodeSide: 4 }, 'node-side expressions are counted')
})

t.test('refusals name the problem', async (t) => {
  const cases: [string, RegExp, TemplateFacts?][] = [
    ['{{ node.nmae }}', /unknown variable node\.nmae \(known: node\.name, node\.xname, /],
    ['{{ server.hostname }}', /unknown variable server\.hostname \(known: server\.url, server\.ip\)/],
    ['{{ node }}', /unknown variable node \(known:/],
    ['{{ node.name', /expression without closing \}\}/],
    ['{{ node.name() }}', /unexpected '\(' after node\.name/],
    ["{{ node['name'] }}", /unexpected '\['/],
    ['{{ node.name + 1 }}', /unexpected '\+'/],
    ['{{ node.name | title }}', /unknown filter title \(netboot has default, upper, lower\)/],
    ['{{ node.name | default }}', /default takes a string or number/],
    ['{{ node.name | default(node.xname) }}', /expected a literal argument to default/],
    ['{{ node.name | upper("x") }}', /upper takes no arguments/],
    ['{{ node.name | default("x }}', /unterminated string|without closing/],
    ['{{ node.xname }}', /node\.xname is not set for n9; add \| default\("…"\)/, bare],
    ['{{ server.ip }}', /server\.ip is not set for n9/, bare],
    ['{{ group.name }}', /group\.name is not set outside a group payload/, bare],
    ['{% if node.nid > 3 %}x{% endif %}', /netboot renders only \{\{ \}\} expressions; a \{% %\} statement is left for the node, where node\.\* is undefined/],
    ['{% raw %}never closed', /\{% raw %\} without \{% endraw %\}/],
  ]
  for (const [text, re, f] of cases) {
    const r = renderString(text, f ?? facts)
    t.ok(!r.ok, JSON.stringify(text))
    if (!r.ok) t.match(r.message, re, JSON.stringify(text))
  }
})

t.test('values: every string below, never keys; problems carry the key path', async (t) => {
  const value = { write_files: [{ path: '/etc/{{ node.name }}', content: 'ip={{ node.ip }}\n', permissions: '0644' }], n: 3, b: true, z: null }
  t.same(renderValue(value, facts, 'userdata'), {
    ok: true,
    value: { write_files: [{ path: '/etc/nid001', content: 'ip=172.16.0.1\n', permissions: '0644' }], n: 3, b: true, z: null },
    nodeSide: 0,
  })
  t.same(renderValue({ runcmd: ['echo {{ node.xname }}', 'ok', '{{ node.bad }}'], '{{ node.name }}': 1 }, bare, 'userdata'), {
    ok: false,
    problems: [
      { path: 'userdata.runcmd[0]', message: "'{{ node.xname }}': node.xname is not set for n9; add | default(\"…\")" },
      { path: 'userdata.runcmd[2]', message: "'{{ node.bad }}': unknown variable node.bad (known: node.name, node.xname, node.nid, node.groups, node.ip, node.mac, node.bmc_ip, node.bmc_mac)" },
      { path: 'userdata."{{ node.name }}"', message: 'templates are rendered in values only, not in mapping keys' },
    ],
  })
  t.same(checkValue({ a: '{{ node.xname }} {{ group.name }}', b: ['{{ node.nope }}'] }, 'userdata'), [
    { path: 'userdata.b[0]', message: "'{{ node.nope }}': unknown variable node.nope (known: node.name, node.xname, node.nid, node.groups, node.ip, node.mac, node.bmc_ip, node.bmc_mac)" },
  ], 'the upload check knows names, not nodes')
  const input = { a: '{{ node.name }}' }
  renderValue(input, facts, '')
  t.same(input, { a: '{{ node.name }}' }, 'the input is not modified')
})

t.test('raw blocks: kept for a node that renders Jinja, unwrapped for one that does not', async (t) => {
  const text = 'a {% raw %}{{ node.name }}{% endraw %} b {%- raw %}{{ x }}{% endraw -%} c {% if y %}'
  t.equal(render(text), text)
  t.same(unwrapRaw({ k: [text], n: 1 }), { k: ['a {{ node.name }} b {{ x }} c {% if y %}'], n: 1 })
})
