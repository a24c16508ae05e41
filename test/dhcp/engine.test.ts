/**
 * The DHCP decision engine over a real SQLite store, without sockets: every
 * branch of RFC 2131 §4.3 the server takes, and the lease rules of netboot.
 */
import { join } from 'node:path'
import t, { type Test } from 'tap'
import {
  DhcpOptions, MessageType, Opt, decodePacket, messageTypeOf, optionValue, requestedIp as requestedIpCodec, serverId, textBytes,
  writeOption, bootfileName, leaseTime, hostName, routers, type DhcpPacket, type ClientMessageType,
} from '../../server/dhcp/codec/index.js'
import { DhcpEngine, type Decision } from '../../server/dhcp/engine.js'
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
      pool: [10.99.10.200-10.99.10.202]
      router: 10.99.10.1
      dns: [10.99.10.1]
      domain: cluster.test
      mtu: 1500
    - name: relayed
      network: 10.99.30.0/24
      pool: [10.99.30.100-10.99.30.150]
      router: 10.99.30.1
`
const KNOWN = '02:00:00:00:10:01'
const alice = { kind: 'admin' as const, id: 'x', name: 'alice' }

async function setup (t: Test, action: 'discover' | 'ignore' = 'discover') {
  const loaded = parseConfig(CONFIG.replace('action: discover', `action: ${action}`), 'test.yaml')
  const store = SqliteStore.open(join(tempDir(t), 'n.db'))
  await store.createGroup('compute', '', alice)
  await store.createNode({ name: 'nid001', groups: ['compute'], interfaces: [{ mac: KNOWN, ip: '10.99.10.11' }] }, alice)
  const leases = await LeaseTable.load(store, Date.now())
  const subnets = subnetRuntimes(loaded, [{ iface: 'prov0', address: '10.99.10.1' }])
  const engine = new DhcpEngine(engineConfig(loaded, subnets), store, leases)
  t.teardown(async () => await store.close())
  return { engine, store, leases, loaded, subnets }
}

let xid = 1
function request (type: ClientMessageType, mac: string, o: { requested?: string; ciaddr?: string; giaddr?: string; server?: string; opts?: [number, Uint8Array][] } = {}): DhcpPacket {
  const options = new DhcpOptions()
  options.set(Opt.MESSAGE_TYPE, new Uint8Array([type]))
  if (o.requested !== undefined) writeOption(options, requestedIpCodec, o.requested)
  if (o.server !== undefined) writeOption(options, serverId, o.server)
  for (const [c, v] of o.opts ?? []) options.set(c, v)
  const chaddr = new Uint8Array(16)
  chaddr.set(macToBytes(mac))
  return {
    op: 1, htype: 1, hlen: 6, hops: o.giaddr !== undefined ? 1 : 0, xid: xid++, secs: 0, flags: 0,
    ciaddr: o.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: o.giaddr ?? '0.0.0.0',
    chaddr, sname: '', file: '', options, overload: 0,
  }
}

function reply (d: Decision): DhcpPacket {
  if (d.kind !== 'reply') throw new Error(`expected a reply, got drop ${d.reason} ${d.log.reason ?? ''}`)
  const p = decodePacket(d.bytes)
  if (!p.ok) throw new Error(p.error.message)
  return p.value
}

t.test('a known node gets its reserved address, the subnet options and its host name', async (t) => {
  const { engine } = await setup(t)
  const offer = reply(await engine.handle(request(MessageType.DISCOVER, KNOWN), MessageType.DISCOVER, 'prov0'))
  t.equal(messageTypeOf(offer), MessageType.OFFER)
  t.equal(offer.yiaddr, '10.99.10.11')
  t.equal(optionValue(offer.options, serverId), '10.99.10.1')
  t.same(optionValue(offer.options, routers), ['10.99.10.1'])
  t.equal(optionValue(offer.options, hostName), 'nid001')
  t.equal(optionValue(offer.options, leaseTime), 3600)
  const ack = await engine.handle(request(MessageType.REQUEST, KNOWN, { requested: '10.99.10.11', server: '10.99.10.1' }), MessageType.REQUEST, 'prov0')
  t.equal(messageTypeOf(reply(ack)), MessageType.ACK)
  t.equal(reply(ack).yiaddr, '10.99.10.11')
  t.match(ack.log, { node: 'nid001', ip: '10.99.10.11', type: 'REQUEST', subnet: 'prov' })
})

t.test('unknown MACs get short pool leases; the pool never gives one address twice', async (t) => {
  const { engine, leases } = await setup(t)
  const macs = ['02:00:00:00:20:01', '02:00:00:00:20:02', '02:00:00:00:20:03', '02:00:00:00:20:04']
  const got: string[] = []
  for (const mac of macs.slice(0, 3)) {
    const o = reply(await engine.handle(request(MessageType.DISCOVER, mac), MessageType.DISCOVER, 'prov0'))
    t.equal(optionValue(o.options, leaseTime), 120, 'unknown nodes get unknown_nodes.lease_time')
    const a = reply(await engine.handle(request(MessageType.REQUEST, mac, { requested: o.yiaddr }), MessageType.REQUEST, 'prov0'))
    t.equal(a.yiaddr, o.yiaddr)
    got.push(a.yiaddr)
  }
  t.same([...got].sort(), ['10.99.10.200', '10.99.10.201', '10.99.10.202'])
  const full = await engine.handle(request(MessageType.DISCOVER, macs[3]!), MessageType.DISCOVER, 'prov0')
  t.match(full, { kind: 'drop', reason: 'no-address-available' })
  // the same client asking again keeps its address
  const again = reply(await engine.handle(request(MessageType.DISCOVER, macs[1]!), MessageType.DISCOVER, 'prov0'))
  t.equal(again.yiaddr, got[1])
  // another client asking for a held address is NAKed
  const steal = reply(await engine.handle(request(MessageType.REQUEST, macs[3]!, { requested: got[0] }), MessageType.REQUEST, 'prov0'))
  t.equal(messageTypeOf(steal), MessageType.NAK)
  t.equal(leases.byIp(got[0]!)?.mac, macs[0])
})

t.test('a DISCOVER may ask for a free pool address (option 50); wrong REQUESTs are NAKed', async (t) => {
  const { engine } = await setup(t)
  const mac = '02:00:00:00:30:01'
  const o = reply(await engine.handle(request(MessageType.DISCOVER, mac, { requested: '10.99.10.202' }), MessageType.DISCOVER, 'prov0'))
  t.equal(o.yiaddr, '10.99.10.202')
  const outside = reply(await engine.handle(request(MessageType.DISCOVER, '02:00:00:00:30:02', { requested: '10.99.10.50' }), MessageType.DISCOVER, 'prov0'))
  t.equal(outside.yiaddr, '10.99.10.200', 'an address outside the pool is not given')
  for (const [asked, why] of [['10.99.10.50', /not in the pool/], ['10.99.99.5', /not on subnet/], ['10.99.10.11', /not in the pool/]] as const) {
    const d = await engine.handle(request(MessageType.REQUEST, mac, { requested: asked }), MessageType.REQUEST, 'prov0')
    t.equal(messageTypeOf(reply(d)), MessageType.NAK, asked)
    t.match(d.log.reason, why)
  }
  const kn = await engine.handle(request(MessageType.REQUEST, KNOWN, { requested: '10.99.10.200' }), MessageType.REQUEST, 'prov0')
  t.equal(messageTypeOf(reply(kn)), MessageType.NAK)
  t.match(kn.log.reason, /has reserved address 10\.99\.10\.11/)
})

t.test('a pool lease of a MAC the inventory learns is NAKed, and the node comes back for its reserved address', async (t) => {
  const { engine, store } = await setup(t)
  const mac = '02:00:00:00:40:01'
  const o = reply(await engine.handle(request(MessageType.DISCOVER, mac), MessageType.DISCOVER, 'prov0'))
  reply(await engine.handle(request(MessageType.REQUEST, mac, { requested: o.yiaddr }), MessageType.REQUEST, 'prov0'))
  await store.createNode({ name: 'nid002', groups: [], interfaces: [{ mac, ip: '10.99.10.12' }] }, alice)
  const renew = reply(await engine.handle(request(MessageType.REQUEST, mac, { ciaddr: o.yiaddr }), MessageType.REQUEST, 'prov0'))
  t.equal(messageTypeOf(renew), MessageType.NAK)
  const back = reply(await engine.handle(request(MessageType.DISCOVER, mac), MessageType.DISCOVER, 'prov0'))
  t.equal(back.yiaddr, '10.99.10.12')
})

t.test('DECLINE holds the address; RELEASE frees it; INFORM gives options only', async (t) => {
  const { engine, leases } = await setup(t)
  const a = '02:00:00:00:50:01'
  const b = '02:00:00:00:50:02'
  const o = reply(await engine.handle(request(MessageType.DISCOVER, a), MessageType.DISCOVER, 'prov0'))
  reply(await engine.handle(request(MessageType.REQUEST, a, { requested: o.yiaddr }), MessageType.REQUEST, 'prov0'))
  const dec = await engine.handle(request(MessageType.DECLINE, a, { requested: o.yiaddr }), MessageType.DECLINE, 'prov0')
  t.match(dec, { kind: 'drop', reason: 'no-reply-needed' })
  t.equal(leases.byIp(o.yiaddr)?.state, 'declined')
  const next = reply(await engine.handle(request(MessageType.DISCOVER, a), MessageType.DISCOVER, 'prov0'))
  t.not(next.yiaddr, o.yiaddr, 'a declined address is not offered again')
  const other = reply(await engine.handle(request(MessageType.DISCOVER, b), MessageType.DISCOVER, 'prov0'))
  t.not(other.yiaddr, o.yiaddr, 'nor to anyone else')

  reply(await engine.handle(request(MessageType.REQUEST, a, { requested: next.yiaddr }), MessageType.REQUEST, 'prov0'))
  t.match(await engine.handle(request(MessageType.RELEASE, b, { ciaddr: next.yiaddr }), MessageType.RELEASE, 'prov0'), { kind: 'drop', reason: 'not-our-lease' }, 'only the holder may release')
  await engine.handle(request(MessageType.RELEASE, a, { ciaddr: next.yiaddr }), MessageType.RELEASE, 'prov0')
  t.equal(leases.byIp(next.yiaddr)?.state, 'released')

  const inf = reply(await engine.handle(request(MessageType.INFORM, '02:00:00:00:50:03', { ciaddr: '10.99.10.77' }), MessageType.INFORM, 'prov0'))
  t.equal(messageTypeOf(inf), MessageType.ACK)
  t.equal(inf.yiaddr, '0.0.0.0')
  t.equal(optionValue(inf.options, leaseTime), undefined, 'no lease time in an INFORM ACK (RFC 2131 §4.3.5)')
  t.same(optionValue(inf.options, routers), ['10.99.10.1'])
})

t.test('relayed requests are served from the giaddr subnet and answered to the relay', async (t) => {
  const { engine } = await setup(t)
  const d = await engine.handle(request(MessageType.DISCOVER, '02:00:00:00:60:01', { giaddr: '10.99.30.1' }), MessageType.DISCOVER, undefined)
  const o = reply(d)
  t.equal(o.yiaddr, '10.99.30.100')
  t.same(optionValue(o.options, routers), ['10.99.30.1'])
  t.match(d, { kind: 'reply', dest: { kind: 'relay', address: '10.99.30.1', port: 67 } })
  t.match(await engine.handle(request(MessageType.DISCOVER, '02:00:00:00:60:02', { giaddr: '10.99.77.1' }), MessageType.DISCOVER, undefined), { kind: 'drop', reason: 'no-subnet' })
})

t.test('boot files by firmware, and iPXE gets its script URL and no-pxedhcp', async (t) => {
  const { engine } = await setup(t)
  const arch = (n: number): [number, Uint8Array] => [Opt.CLIENT_ARCH, new Uint8Array([n >> 8, n & 255])]
  const vc = (s: string): [number, Uint8Array] => [Opt.VENDOR_CLASS, textBytes(s)]
  const cases: [string, [number, Uint8Array][], RegExp | string][] = [
    ['BIOS PXE', [arch(0), vc('PXEClient:Arch:00000:UNDI:002001')], 'undionly.kpxe'],
    ['x64 UEFI PXE', [arch(7), vc('PXEClient:Arch:00007:UNDI:003016')], 'ipxe.efi'],
    ['iPXE', [arch(7), [Opt.USER_CLASS, textBytes('iPXE')]], `http://10.99.10.1:8080/boot/${KNOWN}`],
    ['UEFI HTTP', [arch(16), vc('HTTPClient:Arch:00016:UNDI:003001')], 'http://10.99.10.1:8080/ipxe/ipxe.efi'],
  ]
  for (const [name, opts, file] of cases) {
    const o = reply(await engine.handle(request(MessageType.DISCOVER, KNOWN, { opts }), MessageType.DISCOVER, 'prov0'))
    t.equal(o.file, file, name)
    if (name === 'iPXE') {
      t.same([...o.options.get(Opt.IPXE_ENCAP)!], [176, 1, 1], 'iPXE: 175.176 = 1')
      t.equal(optionValue(o.options, bootfileName), file)
    }
    if (name.includes('PXE') && !name.startsWith('iPXE')) t.equal(o.siaddr, '10.99.10.1', `${name}: next-server`)
    if (name === 'UEFI HTTP') t.equal(Buffer.from(o.options.get(Opt.VENDOR_CLASS)!).toString(), 'HTTPClient')
  }
  const linux = reply(await engine.handle(request(MessageType.DISCOVER, KNOWN), MessageType.DISCOVER, 'prov0'))
  t.equal(linux.file, '', 'a plain Linux client gets no boot file')
})

t.test('policy: unknown nodes ignored; requests for another server dropped; another interface served by nothing', async (t) => {
  const { engine } = await setup(t, 'ignore')
  t.match(await engine.handle(request(MessageType.DISCOVER, '02:00:00:00:70:01'), MessageType.DISCOVER, 'prov0'), { kind: 'drop', reason: 'unknown-node-ignored' })
  t.match(reply(await engine.handle(request(MessageType.DISCOVER, KNOWN), MessageType.DISCOVER, 'prov0')), { yiaddr: '10.99.10.11' })
  t.match(await engine.handle(request(MessageType.REQUEST, KNOWN, { requested: '10.99.10.11', server: '10.99.10.9' }), MessageType.REQUEST, 'prov0'), { kind: 'drop', reason: 'other-server-selected' })
  t.match(await engine.handle(request(MessageType.DISCOVER, KNOWN), MessageType.DISCOVER, 'eth9'), { kind: 'drop', reason: 'no-subnet' })
})

t.test('leases survive a restart of the table', async (t) => {
  const { engine, store } = await setup(t)
  const mac = '02:00:00:00:80:01'
  const o = reply(await engine.handle(request(MessageType.DISCOVER, mac), MessageType.DISCOVER, 'prov0'))
  reply(await engine.handle(request(MessageType.REQUEST, mac, { requested: o.yiaddr }), MessageType.REQUEST, 'prov0'))
  const reloaded = await LeaseTable.load(store, Date.now())
  t.equal(reloaded.byIp(o.yiaddr)?.mac, mac)
  t.equal(reloaded.byIp(o.yiaddr)?.state, 'bound')
  const offeredOnly = reply(await engine.handle(request(MessageType.DISCOVER, '02:00:00:00:80:02'), MessageType.DISCOVER, 'prov0'))
  t.equal((await LeaseTable.load(store, Date.now())).byIp(offeredOnly.yiaddr), undefined, 'offers are not persisted')
})

t.test('proxyDHCP: PXE clients get boot information only, on 67 and 4011', async (t) => {
  const loaded = parseConfig(CONFIG.replace('dhcp:\n', 'dhcp:\n  mode: proxy\n'), 'test.yaml')
  const store = SqliteStore.open(join(tempDir(t), 'p.db'))
  t.teardown(async () => await store.close())
  await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: KNOWN, ip: '10.99.10.11' }] }, alice)
  const subnets = subnetRuntimes(loaded, [{ iface: 'prov0', address: '10.99.10.1' }])
  const engine = new DhcpEngine(engineConfig(loaded, subnets), store, await LeaseTable.load(store, Date.now()))
  const pxe: [number, Uint8Array][] = [[Opt.CLIENT_ARCH, new Uint8Array([0, 7])], [Opt.VENDOR_CLASS, textBytes('PXEClient:Arch:00007:UNDI:003016')]]
  const offer = reply(await engine.handle(request(MessageType.DISCOVER, KNOWN, { opts: pxe }), MessageType.DISCOVER, 'prov0'))
  t.equal(messageTypeOf(offer), MessageType.OFFER)
  t.equal(offer.yiaddr, '0.0.0.0', 'no address from a proxy')
  t.equal(offer.file, 'ipxe.efi')
  t.equal(Buffer.from(offer.options.get(Opt.VENDOR_CLASS)!).toString(), 'PXEClient')
  t.same([...offer.options.get(Opt.VENDOR_SPECIFIC)!], [6, 1, 8, 255], 'PXE discovery control: use the boot file name')
  t.equal(offer.options.get(Opt.LEASE_TIME), undefined, 'no lease time')
  const binl = await engine.handle(request(MessageType.REQUEST, KNOWN, { ciaddr: '10.99.10.77', opts: pxe }), MessageType.REQUEST, 'prov0', Date.now(), 4011)
  t.equal(messageTypeOf(reply(binl)), MessageType.ACK)
  t.equal(reply(binl).file, 'ipxe.efi')
  t.match(await engine.handle(request(MessageType.REQUEST, KNOWN, { requested: '10.99.10.11', server: '10.99.10.254', opts: pxe }), MessageType.REQUEST, 'prov0'), { kind: 'drop', reason: 'no-reply-needed' }, "the site server's REQUEST is not ours")
  t.match(await engine.handle(request(MessageType.DISCOVER, '02:00:00:00:90:01'), MessageType.DISCOVER, 'prov0'), { kind: 'drop', reason: 'not-a-boot-client' })
  const ipxe = reply(await engine.handle(request(MessageType.DISCOVER, KNOWN, { opts: [[Opt.USER_CLASS, textBytes('iPXE')]] }), MessageType.DISCOVER, 'prov0'))
  t.equal(ipxe.file, `http://10.99.10.1:8080/boot/${KNOWN}`)
  t.notOk(ipxe.options.has(Opt.IPXE_ENCAP), 'a proxy does not tell iPXE to skip proxy offers')
})

t.test("a node's DHCP overrides win over its subnet's options, and an import keeps them", async (t) => {
  const { engine, store } = await setup(t)
  await store.updateNodes(['nid001'], { dhcp: { router: '10.99.10.254', mtu: 9000, dns: ['10.99.10.53'] } }, alice)
  const o = reply(await engine.handle(request(MessageType.DISCOVER, KNOWN), MessageType.DISCOVER, 'prov0'))
  t.same(optionValue(o.options, routers), ['10.99.10.254'])
  t.equal(Buffer.from(o.options.get(Opt.INTERFACE_MTU)!).readUInt16BE(0), 9000)
  t.equal(Buffer.from(o.options.get(Opt.DOMAIN_NAME)!).toString(), 'cluster.test', 'options not overridden come from the subnet')
  await store.importNodes([{ name: 'nid001', groups: ['compute'], interfaces: [{ mac: KNOWN, ip: '10.99.10.11' }] }], { createGroups: false, source: 'x' }, alice)
  t.same((await store.getNode('nid001'))?.dhcp, { router: '10.99.10.254', mtu: 9000, dns: ['10.99.10.53'] })
  await store.updateNodes(['nid001'], { dhcp: null }, alice)
  t.equal((await store.getNode('nid001'))?.dhcp, undefined)
})
