/**
 * findNodeByMac and findNodeByIp read a node in one statement (JSON aggregates
 * with ORDER BY) instead of readNodes' four: they must return exactly what
 * getNode returns, interface and group order included, for every MAC and IP a
 * node owns (NICs and BMC), and nothing for unknown ones.
 */
import { join } from 'node:path'
import t from 'tap'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import type { Actor, NodeSpec } from '../../server/inventory/model.js'
import { tempDir } from '../helpers/tmp.js'

const alice: Actor = { kind: 'admin', id: 'aaaaaaaaaa', name: 'alice' }

const nodes: NodeSpec[] = [
  {
    name: 'nid001', xname: 'x1000c0s0b0n0', nid: 1, groups: ['zeta', 'alpha', 'compute'],
    interfaces: [
      { mac: '02:00:00:00:01:03', ip: '10.0.1.3', network: 'management' },
      { mac: '02:00:00:00:01:01' },
      { mac: '02:00:00:00:01:02', ip: '10.0.1.2', network: 'hsn' },
    ],
    bmcMac: '02:00:00:00:0b:01', bmcIp: '10.0.2.1',
    dhcp: { router: '10.0.0.254', dns: ['10.0.0.53', '10.0.0.54'], mtu: 9000 },
  },
  { name: 'plain', groups: [], interfaces: [{ mac: '02:00:00:00:02:01' }] },
  { name: 'with-bmc', groups: ['compute'], interfaces: [{ mac: '02:00:00:00:03:01', ip: '10.0.3.1' }], bmcMac: '02:00:00:00:0b:03' },
]

t.test('one-statement lookups equal getNode', async (t) => {
  const s = SqliteStore.open(join(tempDir(t), 'n.db'))
  t.teardown(async () => await s.close())
  for (const g of ['zeta', 'alpha', 'compute']) await s.createGroup(g, '', alice)
  for (const n of nodes) await s.createNode(n, alice)

  let checked = 0
  for (const n of nodes) {
    const full = await s.getNode(n.name)
    t.ok(full, `${n.name} exists`)
    t.same(full!.groups, n.groups, `${n.name}: groups in the order given`)
    for (const mac of [...n.interfaces.map((i) => i.mac), ...(n.bmcMac !== undefined ? [n.bmcMac] : [])]) {
      t.strictSame(await s.findNodeByMac(mac), full, `${n.name} by MAC ${mac}`)
      checked++
    }
    for (const ip of [...n.interfaces.flatMap((i) => i.ip !== undefined ? [i.ip] : []), ...(n.bmcIp !== undefined ? [n.bmcIp] : [])]) {
      t.strictSame(await s.findNodeByIp(ip), full, `${n.name} by IP ${ip}`)
      checked++
    }
  }
  t.equal(checked, 11, 'every address was looked up')
  t.equal(await s.findNodeByMac('02:ff:ff:ff:ff:ff'), undefined)
  t.equal(await s.findNodeByIp('10.9.9.9'), undefined)

  // a change is seen at once (the store drops the node it kept: hot-reads.test.ts covers every write)
  await s.updateNodes(['nid001'], { removeGroups: ['zeta'] }, alice)
  t.same((await s.findNodeByMac('02:00:00:00:01:01'))?.groups, ['alpha', 'compute'])
})
