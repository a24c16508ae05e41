/**
 * The DHCP server in its worker thread (server/dhcp/worker-host.ts, worker.ts),
 * through startDhcp (serve's wiring) on a real SQLite file and a real Prometheus
 * registry: a relayed DORA answers with a node's reservation; an admin change
 * through the main store is seen by the very next DISCOVER; the lease the worker
 * writes is read by the main store; log lines and metrics reach the main side,
 * the same as in-process; start-up errors are the in-process ones; a crashed
 * worker is restarted; close() ends the thread and frees the port.
 *
 * Replies go to a relay agent's address (giaddr, RFC 2131 §4.1) on port 67, so
 * the file runs itself again inside a network namespace of its own (loopback
 * with 10.99.30.1/24 on it): nothing leaves it, and binding port 67 there
 * disturbs nobody. Needs root (CI runs as root); without it the test fails.
 */
import dgram from 'node:dgram'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { Registry } from 'prom-client'
import { parseConfig, type LoadedConfig } from '../../server/config/load.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { startDhcp, type DhcpService } from '../../server/dhcp/setup.js'
import type { DhcpWorkerService } from '../../server/dhcp/worker-host.js'
import { DhcpOptions, MessageType, Opt, decodePacket, encodePacket, hostName, optionValue, type DhcpPacket } from '../../server/dhcp/codec/index.js'
import { netns } from '../helpers/netns.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger, waitFor } from '../tftp/helpers.js'

const SELF = fileURLToPath(import.meta.url)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RELAY = '10.99.30.1'
const actor = { kind: 'system' as const, id: 'test' }
const A = '02:00:00:00:30:01'
const B = '02:00:00:00:30:02'

if (process.env.NBT_DHCP_WORKER_NS === undefined) {
  t.test('in a network namespace of its own', async (t) => {
    const ns = await netns(t, 'dwk')
    await ns.exec('ip', ['addr', 'add', `${RELAY}/24`, 'dev', 'lo'])
    await t.spawn('ip', ['netns', 'exec', ns.name, 'env', 'NBT_DHCP_WORKER_NS=1', process.execPath, ...process.execArgv, SELF], { cwd: ROOT, timeout: 300_000 }, 'worker.test.ts in the namespace')
  })
} else {
  inNamespace()
}

function config (dir: string, worker: boolean, extra = ''): string {
  return `
data_dir: ${dir}
log: { level: info }
server: { address: ${RELAY} }
tftp: { enabled: false }
unknown_nodes: { action: discover, lease_time: 300 }
dhcp:
  port: 0
  worker: ${worker}
  subnets:
    - name: rack
      network: 10.99.30.0/24
      pool: [10.99.30.100-10.99.30.120]
      router: ${RELAY}
${extra}`
}

interface Service {
  loaded: LoadedConfig
  store: SqliteStore
  lines: Array<Record<string, unknown>>
  registry: Registry
  dhcp: DhcpService
  port: number
}

/** serve's DHCP wiring on a fresh database holding node nid001 (MAC A, 10.99.30.11); closed (DHCP, then the store) at teardown. */
async function service (t: Test, worker: boolean, opts: Parameters<typeof startDhcp>[4] = {}): Promise<Service> {
  const dir = tempDir(t)
  const loaded = parseConfig(config(dir, worker), 'worker.test')
  const store = SqliteStore.open(loaded.dbPath)
  await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: A, ip: '10.99.30.11' }] }, actor)
  const { log, lines } = memoryLogger('info')
  const registry = new Registry()
  let dhcp: DhcpService
  try {
    dhcp = await startDhcp(loaded, store, log, registry, opts)
  } catch (e) {
    await store.close()
    throw e
  }
  t.teardown(async () => { await dhcp.close(); await store.close() })
  return { loaded, store, lines, registry, dhcp, port: dhcp.ports()[0]! }
}

/** A relay agent at RELAY:67 that forwards one client's messages and returns the server's answer (3 s at most). */
class Relay {
  private xid = 0x5000
  private constructor (private readonly sock: dgram.Socket) {}

  static async open (t: Test): Promise<Relay> {
    const sock = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(67, RELAY, () => { sock.off('error', reject); resolve() }) })
    t.teardown(() => sock.close())
    return new Relay(sock)
  }

  async ask (port: number, type: number, mac: string, extra: Array<[number, Uint8Array]> = []): Promise<DhcpPacket> {
    const xid = this.xid++
    const chaddr = new Uint8Array(16)
    chaddr.set(mac.split(':').map((h) => parseInt(h, 16)))
    const options = new DhcpOptions()
    options.set(Opt.MESSAGE_TYPE, new Uint8Array([type]))
    for (const [c, v] of extra) options.set(c, v)
    const e = encodePacket({ op: 1, htype: 1, hlen: 6, hops: 1, xid, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: RELAY, chaddr, sname: '', file: '', options, overload: 0 })
    if (!e.ok) throw new Error(`encode: ${e.error.message}`)
    return await new Promise<DhcpPacket>((resolve, reject) => {
      const timer = setTimeout(() => { this.sock.off('message', on); reject(new Error(`no answer to xid ${xid.toString(16)} within 3 s`)) }, 3000)
      const on = (m: Buffer): void => {
        const d = decodePacket(m)
        if (!d.ok || d.value.xid !== xid) return
        clearTimeout(timer)
        this.sock.off('message', on)
        resolve(d.value)
      }
      this.sock.on('message', on)
      this.sock.send(Buffer.from(e.value), port, '127.0.0.1')
    })
  }

  async dora (port: number, mac: string): Promise<{ offer: DhcpPacket, ack: DhcpPacket }> {
    const offer = await this.ask(port, MessageType.DISCOVER, mac)
    const sid = offer.options.get(Opt.SERVER_ID)
    if (sid === undefined) throw new Error('OFFER without a server identifier')
    const ack = await this.ask(port, MessageType.REQUEST, mac, [[Opt.REQUESTED_IP, ipBytes(offer.yiaddr)], [Opt.SERVER_ID, sid]])
    return { offer, ack }
  }
}

function ipBytes (ip: string): Uint8Array {
  return new Uint8Array(ip.split('.').map(Number))
}

const typeOf = (p: DhcpPacket): number | undefined => p.options.get(Opt.MESSAGE_TYPE)?.[0]

/** Counter values and histogram counts by name{labels} (bucket counts and sums depend on timing). */
async function metricValues (registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const m of await registry.getMetricsAsJSON()) {
    for (const v of m.values as Array<{ value: number, labels?: Record<string, unknown>, metricName?: string }>) {
      const name = v.metricName ?? m.name
      if (m.name === 'netboot_dhcp_decision_seconds' && !name.endsWith('_count')) continue
      const labels = Object.entries(v.labels ?? {}).map(([k, x]) => `${k}=${String(x)}`).join(',')
      out[`${name}{${labels}}`] = v.value
    }
  }
  return out
}

function inNamespace (): void {
  t.test('config default: dhcp.worker is true', async (t) => {
    t.equal(parseConfig('{}\n', 'default').config.dhcp.worker, true)
  })

  t.test('reservations, admin changes, leases, logs and metrics: the worker as in-process', async (t) => {
    const seen: Record<string, { metrics: Record<string, number>, msgs: string[] }> = {}
    for (const worker of [false, true]) {
      await t.test(worker ? 'worker thread' : 'in-process', async (t) => {
        const s = await service(t, worker)
        const relay = await Relay.open(t)
        if (worker) t.ok((s.dhcp as DhcpWorkerService).threadId()! > 0, 'served from another thread')

        // (1) the node's reservation, from the database
        const first = await relay.dora(s.port, A)
        t.equal(typeOf(first.offer), MessageType.OFFER)
        t.equal(first.offer.yiaddr, '10.99.30.11', 'OFFER: the reserved address')
        t.equal(optionValue(first.offer.options, hostName), 'nid001')
        t.equal(typeOf(first.ack), MessageType.ACK)
        t.equal(first.ack.yiaddr, '10.99.30.11', 'ACK: the reserved address')

        // (3) the worker's lease, committed before its ACK left, is read by the main store
        t.match((await s.store.listLeases()).filter((l) => l.mac === A), [{ ip: '10.99.30.11', state: 'bound', subnet: 'rack' }], 'the lease is in the main store')

        // (2) an admin change through the main store, then at once a DISCOVER: no sleep between them
        const g = s.store.generation
        await s.store.updateNodes(['nid001'], { interfaces: [{ mac: A, ip: '10.99.30.12' }] }, actor)
        t.ok(s.store.generation > g, 'the change moved the generation')
        t.equal((await relay.ask(s.port, MessageType.DISCOVER, A)).yiaddr, '10.99.30.12', 'the new reservation, at the very next DISCOVER')
        const unknown = await relay.ask(s.port, MessageType.DISCOVER, B)
        t.match(unknown.yiaddr, /^10\.99\.30\.1(0\d|1\d|20)$/, 'an unknown MAC: a pool address')
        await s.store.createNode({ name: 'nid002', groups: [], interfaces: [{ mac: B, ip: '10.99.30.21' }] }, actor)
        t.equal((await relay.ask(s.port, MessageType.DISCOVER, B)).yiaddr, '10.99.30.21', 'a node added: its reservation at the next DISCOVER (the "unknown" answer was dropped)')
        for (let i = 0; i < 10; i++) {
          const ip = `10.99.30.${30 + i}`
          await s.store.updateNodes(['nid001'], { interfaces: [{ mac: A, ip }] }, actor)
          t.equal((await relay.ask(s.port, MessageType.DISCOVER, A)).yiaddr, ip, `change ${i + 1} of 10 seen at once`)
        }
        const second = await relay.dora(s.port, A)
        t.equal(second.ack.yiaddr, '10.99.30.39')
        t.match((await s.store.listLeases()).filter((l) => l.mac === A), [{ ip: '10.99.30.39', state: 'bound' }], 'one lease per client, moved')

        // (4) every decision's log line and metric, on the main side
        const replies = 2 + 1 + 1 + 1 + 10 + 2
        t.ok(await waitFor(() => s.lines.filter((l) => l.msg === 'dhcp: reply').length === replies, 5000), `${replies} reply lines`)
        t.match(s.lines.find((l) => l.msg === 'dhcp: reply' && l.reply === 'ACK'), {
          level: 30, component: 'dhcp', mac: A, xid: /^[0-9a-f]{8}$/, type: 'REQUEST', node: 'nid001', ip: '10.99.30.11', subnet: 'rack',
          reply: 'ACK', to: `${RELAY}:67`, dest: 'giaddr', peer: /^127\.0\.0\.1:67$|^10\.99\.30\.1:67$/,
        }, 'the ACK line: fields and level as in-process')
        t.match(s.lines.find((l) => l.msg === 'dhcp: serving'), { level: 30, component: 'dhcp', interfaces: [], relays: true })
        t.match(s.lines.find((l) => l.msg === 'dhcp: ready'), { level: 30, leases: 0, worker })
        const metrics = await metricValues(s.registry)
        t.match(metrics, {
          'netboot_dhcp_requests_total{type=DISCOVER}': 15,
          'netboot_dhcp_requests_total{type=REQUEST}': 2,
          'netboot_dhcp_replies_total{type=OFFER}': 15,
          'netboot_dhcp_replies_total{type=ACK}': 2,
          'netboot_dhcp_decision_seconds_count{type=DISCOVER}': 15,
          'netboot_dhcp_decision_seconds_count{type=REQUEST}': 2,
        }, 'the metrics on the main registry')
        seen[worker ? 'worker' : 'in-process'] = { metrics, msgs: s.lines.map((l) => String(l.msg).replace(/\d+/g, 'N')).sort() }
      })
    }
    t.same(seen.worker?.metrics, seen['in-process']?.metrics, 'the same metrics in both modes')
    t.same(seen.worker?.msgs, seen['in-process']?.msgs, 'the same log lines in both modes')
  })

  t.test('a dropped packet: its line and its drop counter on the main side', async (t) => {
    const s = await service(t, true)
    const relay = await Relay.open(t)
    const sock = dgram.createSocket('udp4')
    t.teardown(() => sock.close())
    sock.send(Buffer.from('not a dhcp packet'), s.port, '127.0.0.1')
    t.ok(await waitFor(() => s.lines.some((l) => l.msg === 'dhcp: dropped malformed packet'), 5000), 'the line arrives')
    t.match(s.lines.find((l) => l.msg === 'dhcp: dropped malformed packet'), { level: 40, component: 'dhcp', peer: /^127\.0\.0\.1:\d+$/, len: 17 })
    // a REQUEST naming another server: a drop the engine decides, logged at info
    await t.rejects(relay.ask(s.port, MessageType.REQUEST, A, [[Opt.REQUESTED_IP, ipBytes('10.99.30.11')], [Opt.SERVER_ID, ipBytes('10.99.30.99')]]), /no answer/)
    t.ok(await waitFor(() => s.lines.some((l) => l.msg === 'dhcp: no reply'), 5000))
    t.match(s.lines.find((l) => l.msg === 'dhcp: no reply'), { level: 30, mac: A, result: 'other-server-selected' })
    const m = await metricValues(s.registry)
    t.equal(m['netboot_dhcp_drops_total{reason=other-server-selected}'], 1)
    const reason = String(s.lines.find((l) => l.msg === 'dhcp: dropped malformed packet')?.reason)
    t.equal(m[`netboot_dhcp_drops_total{reason=${reason}}`], 1, `the malformed packet counted (${reason})`)
  })

  t.test('close() ends the thread and the socket: the port binds again', async (t) => {
    const s = await service(t, true)
    const w = s.dhcp as DhcpWorkerService
    t.ok(w.threadId()! > 0, 'a thread runs')
    await w.close()
    t.equal(w.threadId(), undefined, 'no thread')
    t.same(w.ports(), [], 'no socket')
    const sock = dgram.createSocket('udp4')
    const bound = await new Promise<boolean>((resolve) => {
      sock.once('error', () => resolve(false))
      sock.bind({ address: '0.0.0.0', port: s.port, exclusive: true }, () => resolve(true))
    })
    t.ok(bound, `port ${s.port} is free again`)
    sock.close()
    await w.close()
    t.pass('a second close() is harmless')
  })

  t.test('start-up errors reach startDhcp\'s caller as in-process', async (t) => {
    const got: Record<string, unknown[]> = {}
    for (const worker of [false, true]) {
      const taken = dgram.createSocket({ type: 'udp4' })
      await new Promise<void>((resolve) => taken.bind({ address: '0.0.0.0', port: 0, exclusive: true }, () => resolve()))
      const port = taken.address().port
      const errs: unknown[] = []
      for (const extra of [`  port: ${port}\n`, '']) {
        const dir = tempDir(t)
        const yaml = extra === ''
          ? config(dir, worker).replace('server: { address: 10.99.30.1 }', 'server: { address: 10.99.30.1, interfaces: [nosuch0] }')
          : config(dir, worker).replace('  port: 0\n', extra)
        const loaded = parseConfig(yaml, 'worker.test')
        const store = SqliteStore.open(loaded.dbPath)
        const e = await startDhcp(loaded, store, memoryLogger('info').log, new Registry()).then((d) => { void d.close(); return undefined }, (x: unknown) => x)
        await store.close()
        t.ok(e instanceof Error, `${worker ? 'worker' : 'in-process'}: ${extra === '' ? 'a missing interface' : 'a port in use'} rejects`)
        const x = e as NodeJS.ErrnoException
        errs.push({ name: x?.name, code: x?.code, message: x?.message?.replace(String(port), 'P') })
      }
      taken.close()
      got[worker ? 'worker' : 'in-process'] = errs
    }
    t.match(got['in-process']?.[0], { code: 'EADDRINUSE' }, 'port in use: EADDRINUSE')
    t.same(got.worker, got['in-process'], 'the same errors (name, code, message) in both modes')
  })

  t.test('a crashed worker is logged at error and restarted on its port; too many crashes and it stays down', async (t) => {
    const s = await service(t, true, { restarts: { max: 1, windowMs: 60_000 } })
    const w = s.dhcp as DhcpWorkerService
    const relay = await Relay.open(t)
    const before = w.threadId()
    w.crashForTest('engine bug 1')
    t.ok(await waitFor(() => w.restartCount() === 1, 60_000), 'restarted')
    t.match(s.lines.find((l) => l.msg === 'dhcp worker crashed'), { level: 50, component: 'dhcp', err: 'engine bug 1' })
    t.match(s.lines.find((l) => l.msg === 'dhcp worker restarted'), { level: 40, port: s.port, restarts: 1 })
    t.not(w.threadId(), before, 'a new thread')
    t.equal((await relay.dora(s.port, A)).ack.yiaddr, '10.99.30.11', 'served again, same port, same database')
    w.crashForTest('engine bug 2')
    t.ok(await waitFor(() => s.lines.some((l) => l.msg === 'dhcp worker crashed too often; not restarted: DHCP is not served'), 60_000), 'gave up')
    t.match(s.lines.find((l) => l.msg === 'dhcp worker crashed too often; not restarted: DHCP is not served'), { level: 50, crashes: 2 })
    t.equal(w.threadId(), undefined, 'no thread')
    await t.rejects(relay.ask(s.port, MessageType.DISCOVER, A), /no answer/, 'nothing answers')
  })
}
