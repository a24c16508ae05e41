/**
 * The DHCP engine keeps the inventory's answer per MAC while the store's
 * generation stands (engine.ts `hostOf`): a DORA reads the inventory once, and an
 * inventory change (a node's address or MAC changed, the node removed, added, its
 * DHCP overrides) is seen by the very next packet. Real SQLite store; the reads
 * are counted by wrapping its findDhcpHost.
 */
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DhcpOptions, MessageType, Opt, decodePacket, hostName, optionValue, requestedIp as requestedIpCodec, serverId, writeOption, type ClientMessageType, type DhcpPacket } from '../../server/dhcp/codec/index.js'
import { DhcpEngine, HOST_CACHE_MAX, type Decision } from '../../server/dhcp/engine.js'
import { engineConfig, subnetRuntimes } from '../../server/dhcp/setup.js'
import { LeaseTable } from '../../server/dhcp/lease/table.js'
import { parseConfig } from '../../server/config/load.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { macToBytes } from '../../server/inventory/addresses.js'
import { tempDir } from '../helpers/tmp.js'

const CONFIG = `
server: { address: 10.99.10.1, interfaces: [prov0] }
http: { port: 8080 }
unknown_nodes: { action: discover, lease_time: 120 }
dhcp:
  lease_time: 3600
  subnets:
    - name: prov
      network: 10.99.10.0/24
      interface: prov0
      pool: [10.99.10.200-10.99.10.230]
      router: 10.99.10.1
`
const MAC = '02:00:00:00:10:01'
const alice = { kind: 'admin' as const, id: 'x', name: 'alice' }

async function setup (t: Test) {
  const loaded = parseConfig(CONFIG, 'test.yaml')
  const store = SqliteStore.open(join(tempDir(t), 'n.db'))
  await store.createGroup('compute', '', alice)
  await store.createNode({ name: 'nid001', groups: ['compute'], interfaces: [{ mac: MAC, ip: '10.99.10.11' }] }, alice)
  const reads: string[] = []
  const find = store.findDhcpHost.bind(store)
  store.findDhcpHost = async (mac: string) => { reads.push(mac); return await find(mac) }
  const leases = await LeaseTable.load(store, Date.now())
  const engine = new DhcpEngine(engineConfig(loaded, subnetRuntimes(loaded, [{ iface: 'prov0', address: '10.99.10.1' }])), store, leases)
  t.teardown(async () => await store.close())
  return { engine, store, reads }
}

let xid = 1
function request (type: ClientMessageType, mac: string, requested?: string): DhcpPacket {
  const options = new DhcpOptions()
  options.set(Opt.MESSAGE_TYPE, new Uint8Array([type]))
  if (requested !== undefined) { writeOption(options, requestedIpCodec, requested); writeOption(options, serverId, '10.99.10.1') }
  const chaddr = new Uint8Array(16)
  chaddr.set(macToBytes(mac))
  return { op: 1, htype: 1, hlen: 6, hops: 0, xid: xid++, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options, overload: 0 }
}

function reply (d: Decision): DhcpPacket {
  if (d.kind !== 'reply') throw new Error(`expected a reply, got drop ${d.reason} ${d.log.reason ?? ''}`)
  const p = decodePacket(d.bytes)
  if (!p.ok) throw new Error(p.error.message)
  return p.value
}

/** DISCOVER then REQUEST of the offered address; the ACK. */
async function dora (engine: DhcpEngine, mac: string): Promise<{ offer: DhcpPacket; ack: DhcpPacket; node?: string }> {
  const offer = reply(await engine.handle(request(MessageType.DISCOVER, mac), MessageType.DISCOVER, 'prov0'))
  const d = await engine.handle(request(MessageType.REQUEST, mac, offer.yiaddr), MessageType.REQUEST, 'prov0')
  return { offer, ack: reply(d), ...(d.log.node !== undefined ? { node: d.log.node } : {}) }
}

t.test('a DORA reads the inventory once; further DORAs of the same MAC read it no more', async (t) => {
  const { engine, reads } = await setup(t)
  const a = await dora(engine, MAC)
  t.equal(a.ack.yiaddr, '10.99.10.11')
  t.equal(a.node, 'nid001')
  t.same(reads, [MAC], 'the REQUEST reused the DISCOVER\'s lookup')
  const b = await dora(engine, MAC)
  t.equal(b.ack.yiaddr, '10.99.10.11')
  t.same(reads, [MAC])
  // an unknown MAC's "no such node" is kept as well
  const u = '02:00:00:00:99:01'
  const c = await dora(engine, u)
  t.equal(c.node, undefined)
  t.ok(c.ack.yiaddr.startsWith('10.99.10.2'), `pool address ${c.ack.yiaddr}`)
  t.same(reads, [MAC, u])
})

t.test("a node's new address is seen by the next packet, even between DISCOVER and REQUEST", async (t) => {
  const { engine, store, reads } = await setup(t)
  t.equal((await dora(engine, MAC)).ack.yiaddr, '10.99.10.11')
  const offer = reply(await engine.handle(request(MessageType.DISCOVER, MAC), MessageType.DISCOVER, 'prov0'))
  t.equal(offer.yiaddr, '10.99.10.11')
  await store.updateNodes(['nid001'], { interfaces: [{ mac: MAC, ip: '10.99.10.12' }] }, alice)
  // the REQUEST for the old address, sent before the change, is NAKed: the reservation moved
  const nak = reply(await engine.handle(request(MessageType.REQUEST, MAC, offer.yiaddr), MessageType.REQUEST, 'prov0'))
  t.equal(optionValue(nak.options, hostName), undefined)
  t.equal(nak.options.get(Opt.MESSAGE_TYPE)?.[0], MessageType.NAK)
  t.equal((await dora(engine, MAC)).ack.yiaddr, '10.99.10.12')
  t.equal(reads.length, 2, 'read again once after the change, then kept')
})

t.test("a node's MAC changed: the old MAC is a stranger at once, the new one gets the reservation", async (t) => {
  const { engine, store } = await setup(t)
  t.equal((await dora(engine, MAC)).node, 'nid001')
  const mac2 = '02:00:00:00:10:02'
  t.equal((await dora(engine, mac2)).node, undefined, 'the new MAC is unknown before the change')
  await store.updateNodes(['nid001'], { interfaces: [{ mac: mac2, ip: '10.99.10.11' }] }, alice)
  const old = await dora(engine, MAC)
  t.equal(old.node, undefined)
  t.not(old.ack.yiaddr, '10.99.10.11')
  // the old MAC's pool lease does not block the reservation: it was never 10.99.10.11's holder after the change
  const now = await dora(engine, mac2)
  t.equal(now.node, 'nid001')
  t.equal(now.ack.yiaddr, '10.99.10.11')
})

t.test('a removed node is unknown at once; one added is known at once', async (t) => {
  const { engine, store } = await setup(t)
  t.equal((await dora(engine, MAC)).node, 'nid001')
  await store.deleteNodes(['nid001'], alice)
  const gone = await dora(engine, MAC)
  t.equal(gone.node, undefined)
  t.not(gone.ack.yiaddr, '10.99.10.11')
  const mac3 = '02:00:00:00:10:03'
  t.equal((await dora(engine, mac3)).node, undefined)
  await store.createNode({ name: 'nid003', groups: [], interfaces: [{ mac: mac3, ip: '10.99.10.13' }] }, alice)
  const fresh = await dora(engine, mac3)
  t.equal(fresh.node, 'nid003')
  t.equal(fresh.ack.yiaddr, '10.99.10.13')
})

t.test('the kept answers are bounded', async (t) => {
  const { engine, reads } = await setup(t)
  t.ok(HOST_CACHE_MAX >= 10_000, 'a 10,000-node storm fits')
  const hosts = (engine as unknown as { hosts: Map<string, unknown> }).hosts
  const first = '02:00:00:00:99:02'
  await engine.handle(request(MessageType.DISCOVER, first), MessageType.DISCOVER, 'prov0')
  t.ok(hosts.has(first))
  // fill to the bound with made-up MACs (no packets: the pool is small)
  for (let i = 0; hosts.size < HOST_CACHE_MAX; i++) hosts.set(`fake-${i}`, null)
  await engine.handle(request(MessageType.DISCOVER, MAC), MessageType.DISCOVER, 'prov0')
  t.equal(hosts.size, HOST_CACHE_MAX, 'one evicted, one added')
  t.notOk(hosts.has(first), 'the oldest went')
  t.ok(hosts.has(MAC))
  t.same(reads, [first, MAC])
})
