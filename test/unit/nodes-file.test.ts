import { readFileSync } from 'node:fs'
import t from 'tap'
import { NetbootError } from '../../server/errors.js'
import { parseNodesFile } from '../../server/inventory/nodes-file.js'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/inventory/${name}`, import.meta.url), 'utf8')

function refused (text: string): NetbootError {
  try { parseNodesFile(text, 'nodes.yaml') } catch (e) { if (e instanceof NetbootError) return e; throw e }
  throw new Error('expected the file to be refused')
}

t.test('the bootcamp flat form', async (t) => {
  const specs = parseNodesFile(fixture('bootcamp-flat.yaml'), 'bootcamp-flat.yaml')
  t.equal(specs.length, 9)
  t.same(specs[0], {
    name: 'nid001', xname: 'x1000c1s7b1n0', nid: 1, groups: ['compute'],
    interfaces: [{ mac: 'ec:e7:a7:05:a1:fc', ip: '172.16.0.1' }], bmcIp: '172.16.0.101',
  })
})

t.test('the bootcamp interfaces form', async (t) => {
  const specs = parseNodesFile(fixture('bootcamp-interfaces.yaml'), 'bootcamp-interfaces.yaml')
  t.equal(specs.length, 9)
  t.same(specs[8], {
    name: 'nid009', xname: 'x1000c1s7b9n0', nid: 9, groups: ['compute'],
    interfaces: [{ mac: 'ec:e7:a7:05:9f:50', ip: '172.16.0.9', network: 'management' }], bmcMac: '02:00:00:b0:00:09', bmcIp: '172.16.0.109',
  })
})

t.test('both forms describe the same nodes', async (t) => {
  const strip = (s: ReturnType<typeof parseNodesFile>): unknown => s.map((n) => ({ name: n.name, xname: n.xname, nid: n.nid, groups: n.groups, macs: n.interfaces.map((i) => [i.mac, i.ip]), bmcIp: n.bmcIp }))
  t.same(strip(parseNodesFile(fixture('bootcamp-flat.yaml'), 'a')), strip(parseNodesFile(fixture('bootcamp-interfaces.yaml'), 'b')))
})

t.test('a bare list, groups lists, MAC spellings, xname as name', async (t) => {
  const specs = parseNodesFile('- xname: x1000c1s7b0n0\n  mac: EC-E7-A7-05-A1-FC\n  groups: [compute, gpu]\n', 'n.yaml')
  t.same(specs, [{ name: 'x1000c1s7b0n0', xname: 'x1000c1s7b0n0', groups: ['compute', 'gpu'], interfaces: [{ mac: 'ec:e7:a7:05:a1:fc' }] }])
})

t.test('errors name line and key, all of them', async (t) => {
  let e = refused('nodes:\n  - name: nid001\n    mac: zz:e7:a7:05:a1:fc\n    ipaddr: 172.16.0.999\n    colour: blue\n')
  t.equal(e.code, 'IMPORT_INVALID')
  t.same(e.details, [
    { where: 'nodes.yaml:5', message: 'nodes[0].colour: unknown key (expected one of name, xname, nid, group, groups, mac, ipaddr, bmc_mac, bmc_ipaddr, bmc_ip, interfaces)' },
    { where: 'nodes.yaml:3', message: "nodes[0].mac: invalid MAC address 'zz:e7:a7:05:a1:fc'", code: 'INVALID_MAC' },
    { where: 'nodes.yaml:4', message: "nodes[0].ipaddr: invalid IPv4 address '172.16.0.999'", code: 'INVALID_IP' },
  ])
  t.match(e.message, /nodes\.yaml: 3 errors, nothing imported/)

  e = refused('nodes:\n  - name: a\n    mac: 02:00:00:00:00:01\n  - name: b\n    mac: 02-00-00-00-00-01\n')
  t.same(e.details, [{ where: 'nodes.yaml:5', message: 'nodes[1].mac: mac 02:00:00:00:00:01 already used at nodes.yaml:3', code: 'DUPLICATE_MAC' }])

  e = refused('nodes:\n  - name: a\n    mac: 02:00:00:00:00:01\n    ipaddr: 10.0.0.1\n  - name: b\n    bmc_ip: 10.0.0.1\n')
  t.equal(e.details[0]?.code, 'DUPLICATE_IP')
  t.equal(e.details[0]?.where, 'nodes.yaml:6')

  e = refused('nodes:\n  - name: a\n  - name: a\n')
  t.equal(e.details[0]?.code, 'NODE_EXISTS')
  e = refused('nodes:\n  - name: a\n    xname: x1c1s1b1n1\n  - name: b\n    xname: x1c1s1b1n1\n')
  t.equal(e.details[0]?.code, 'DUPLICATE_XNAME')
  e = refused('nodes:\n  - name: a\n    nid: 1\n  - name: b\n    nid: 1\n')
  t.equal(e.details[0]?.code, 'DUPLICATE_NID')
  e = refused('nodes:\n  - name: a\n    xname: y1000\n')
  t.same(e.details[0], { where: 'nodes.yaml:3', message: "nodes[0].xname: invalid xname 'y1000'", code: 'INVALID_XNAME' })
  e = refused('nodes:\n  - name: Bad_Name\n')
  t.equal(e.details[0]?.code, 'INVALID_NAME')
  e = refused('nodes:\n  - nid: 3\n')
  t.match(e.details[0]?.message, /needs 'name'/)
  e = refused('nodes:\n  - name: a\n    interfaces:\n      - mac_addr: 02:00:00:00:00:01\n        ip_addrs:\n          - {name: a, ip_addr: 10.0.0.1}\n          - {name: b, ip_addr: 10.0.0.2}\n')
  t.match(e.details[0]?.message, /one IPv4 address per interface/)
  e = refused('nodes:\n  - name: a\n    ipaddr: 10.0.0.1\n')
  t.match(e.details[0]?.message, /'ipaddr' needs a 'mac'/)
})

t.test('malformed documents', async (t) => {
  let e = refused('nodes:\n  - name: a\n   mac: [\n')
  t.match(e.details[0]?.where, /^nodes\.yaml:\d+$/)
  t.match(e.details[0]?.message, /^YAML/)
  e = refused('nodes: 3\n')
  t.match(e.details[0]?.message, /expected a list of nodes/)
  e = refused('hosts: []\n')
  t.match(e.details[0]?.message, /unknown top-level key/)
  e = refused('nodes:\n  - just-a-string\n')
  t.match(e.details[0]?.message, /expected a mapping/)
})
