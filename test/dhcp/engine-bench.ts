/**
 * CPU of the DHCP engine per DORA (not a test; numbers depend on the machine):
 *   node --import tsx test/dhcp/engine-bench.ts [nodes]
 * A real SQLite store with `nodes` nodes (reserved addresses), the engine as serve
 * builds it, and for every node a DISCOVER then a REQUEST of the offered address,
 * decided and encoded (no sockets). Run twice in one process: with the inventory
 * answers kept per MAC (engine.ts hostOf), and with them defeated (a store whose
 * generation moves at every read, so every identify reads SQLite as before the
 * cache). Three DORAs per node, as a booting node does (firmware, iPXE, Linux).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DhcpOptions, MessageType, Opt, decodePacket, requestedIp, serverId, writeOption, type ClientMessageType, type DhcpPacket } from '../../server/dhcp/codec/index.js'
import { DhcpEngine } from '../../server/dhcp/engine.js'
import { engineConfig, subnetRuntimes } from '../../server/dhcp/setup.js'
import { LeaseTable } from '../../server/dhcp/lease/table.js'
import { parseConfig } from '../../server/config/load.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { macToBytes } from '../../server/inventory/addresses.js'
import type { Store } from '../../server/store/store.js'

if (process.env.TAP === '1') process.exit(0)

const N = Number(process.argv[2] ?? 10_000)
const CONFIG = `
server: { address: 10.98.0.1, interfaces: [prov0] }
http: { port: 8080 }
database: { synchronous: normal }
unknown_nodes: { action: reboot, lease_time: 300 }
dhcp:
  lease_time: 3600
  subnets:
    - { name: prov, network: 10.98.0.0/16, interface: prov0, pool: [10.98.200.0-10.98.250.255], router: 10.98.0.1 }
`
const mac = (i: number): string => `02:5b:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`
const ip = (i: number): string => `10.98.${16 + Math.floor(i / 250)}.${1 + (i % 250)}`

let xid = 1
function request (type: ClientMessageType, m: string, requested?: string): DhcpPacket {
  const options = new DhcpOptions()
  options.set(Opt.MESSAGE_TYPE, new Uint8Array([type]))
  if (requested !== undefined) { writeOption(options, requestedIp, requested); writeOption(options, serverId, '10.98.0.1') }
  const chaddr = new Uint8Array(16)
  chaddr.set(macToBytes(m))
  return { op: 1, htype: 1, hlen: 6, hops: 0, xid: xid++, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options, overload: 0 }
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dhcp-engine-bench-'))
  try {
    const loaded = parseConfig(CONFIG, 'bench.yaml')
    const store = SqliteStore.open(join(dir, 'n.db'))
    const admin = { kind: 'admin' as const, id: 'b', name: 'bench' }
    await store.createGroup('compute', '', admin)
    const specs = Array.from({ length: N }, (_, i) => ({ name: `n${i}`, groups: ['compute'], interfaces: [{ mac: mac(i), ip: ip(i) }] }))
    await store.importNodes(specs, { createGroups: true, source: 'bench' }, admin)
    const subnets = subnetRuntimes(loaded, [{ iface: 'prov0', address: '10.98.0.1' }])
    const run = async (label: string, s: Store): Promise<void> => {
      const engine = new DhcpEngine(engineConfig(loaded, subnets), s, await LeaseTable.load(store, Date.now()))
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      const one = async (i: number): Promise<void> => {
        const d = await engine.handle(request(MessageType.DISCOVER, mac(i)), MessageType.DISCOVER, 'prov0')
        if (d.kind !== 'reply') throw new Error(`${label}: DISCOVER ${mac(i)} dropped: ${d.reason}`)
        const offer = decodePacket(d.bytes)
        if (!offer.ok || offer.value.yiaddr !== ip(i)) throw new Error(`${label}: ${mac(i)} offered ${offer.ok ? offer.value.yiaddr : '?'}`)
        const a = await engine.handle(request(MessageType.REQUEST, mac(i), offer.value.yiaddr), MessageType.REQUEST, 'prov0')
        if (a.kind !== 'reply' || a.type !== 'ACK') throw new Error(`${label}: REQUEST ${mac(i)} not ACKed`)
      }
      // 100 nodes in flight at a time, as a storm keeps the server busy (the ACKs' lease writes group-commit per loop turn)
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: Math.min(100, N - i) }, async (_, k) => await one(i + k)))
      }
      const c = process.cpuUsage(c0)
      const dora = 3 * N
      console.log(`${label.padEnd(34)} ${((c.user + c.system) / dora).toFixed(1)} µs CPU per DORA, ${((performance.now() - t0) * 1000 / dora).toFixed(1)} µs wall (${dora} DORAs, ${N} nodes)`)
    }
    // before: the generation moves at every read, so every identify goes to SQLite
    let bump = 0
    const uncached = new Proxy(store, { get: (target, p) => p === 'generation' ? target.generation + ++bump : Reflect.get(target, p, target) as unknown })
    // the read itself, N distinct MACs, three times over
    for (let k = 0; k < 3; k++) {
      const c0 = process.cpuUsage()
      for (let i = 0; i < N; i++) if ((await store.findDhcpHost(mac(i))) === undefined) throw new Error(`no host for ${mac(i)}`)
      const c = process.cpuUsage(c0)
      console.log(`${'findDhcpHost alone'.padEnd(34)} ${((c.user + c.system) / N).toFixed(1)} µs CPU per call`)
    }
    for (let k = 0; k < 2; k++) {
      await run('inventory read per packet (before)', uncached as Store)
      await run('kept per MAC (after)', store)
    }
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e: unknown) => { console.error(e); process.exit(1) })
