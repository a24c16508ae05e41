/**
 * Leases under a crash: perfdhcp drives DORA exchanges at a netboot in a
 * namespace; netboot is killed with SIGKILL mid-load and restarted. Every ACK it
 * logged before dying must be in the lease database (a lease is written before
 * its ACK is sent), no address may be held twice, and after the restart the same
 * clients get the same addresses, none duplicated.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { netns, veth } from '../helpers/netns.js'
import { startNsServer } from '../helpers/netboot-ns.js'
import { tempDir } from '../helpers/tmp.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'

function config (dir: string, worker: boolean): string {
  return `
data_dir: ${dir}/data
log: { level: info }
server: { address: 10.97.0.1, interfaces: [prov0] }
http: { listen: 127.0.0.1, port: 18080 }
admin: { port: 18081 }
tftp: { enabled: false }
unknown_nodes: { action: discover, lease_time: 3600 }
dhcp:
  worker: ${worker}
  subnets:
    - name: prov
      network: 10.97.0.0/16
      interface: prov0
      pool: [10.97.1.0-10.97.8.255]
`
}

interface Perf { out: string; code: number | null }

async function perfdhcp (ns: Awaited<ReturnType<typeof netns>>, args: string[]): Promise<Perf> {
  const p = ns.spawn('perfdhcp', ['-4', '-l', 'eth0', ...args])
  let out = ''
  p.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  p.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => p.once('exit', (c) => resolve(c)))
  return { out, code }
}

const stat = (out: string, section: string, key: string): number => {
  const part = out.split(`***Statistics for: ${section}***`)[1] ?? ''
  const m = new RegExp(`${key}: ([0-9.]+)`).exec(part)
  return m === null ? NaN : Number(m[1])
}

// both ways netboot serves DHCP: its own thread (the default) and the main event loop
for (const worker of [true, false]) {
  t.test(`kill -9 under perfdhcp load loses no lease and duplicates no address (dhcp.worker: ${worker})`, async (t) => {
    const dir = tempDir(t)
    const srv = await netns(t, 'csrv')
    const cli = await netns(t, 'ccli')
    await veth(srv, 'prov0', '10.97.0.1/16', cli, 'eth0', '10.97.0.2/16')
    const macs = Array.from({ length: 600 }, (_, i) => `02:77:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`)
    const macFile = join(dir, 'macs.txt')
    writeFileSync(macFile, macs.join('\n') + '\n')

    let server = await startNsServer(t, srv, dir, config(dir, worker))
    await server.waitFor(/dhcp: serving/)
    const load = perfdhcp(cli, ['-r', '200', '-M', macFile, '-p', '6'])
    await server.waitFor(/"reply":"ACK"/, 10_000)
    await new Promise((r) => setTimeout(r, 1500))
    server.proc.kill('SIGKILL')
    await server.exited
    const before = server.log()
    await load

    const acked = [...before.matchAll(/"mac":"([0-9a-f:]+)".*?"ip":"([0-9.]+)".*?"reply":"ACK"/g)].map((m) => [m[1]!, m[2]!] as const)
    t.ok(acked.length > 50, `load reached the server before the kill (${acked.length} ACKs logged)`)

    const store = SqliteStore.open(join(dir, 'data', 'netboot.db'))
    const leases = await store.listLeases()
    await store.close()
    const byIp = new Map(leases.map((l) => [l.ip, l]))
    const missing = acked.filter(([mac, ip]) => byIp.get(ip)?.mac !== mac)
    t.same(missing, [], 'every ACK the server sent is in the lease database')
    t.equal(new Set(leases.map((l) => l.mac)).size, leases.length, 'no client holds two addresses')
    t.equal(new Set(leases.map((l) => l.ip)).size, leases.length, 'no address is held twice')

    // restart: the same clients come back for the same addresses, none duplicated
    server = await startNsServer(t, srv, dir, config(dir, worker))
    await server.waitFor(/dhcp: serving/)
    const again = await perfdhcp(cli, ['-r', '200', '-M', macFile, '-p', '3'])
    t.equal(stat(again.out, 'REQUEST-ACK', 'non unique addresses'), 0, 'perfdhcp saw no address given twice')
    t.equal(stat(again.out, 'REQUEST-ACK', 'rejected leases'), 0)
    t.ok(stat(again.out, 'REQUEST-ACK', 'received packets') > 100, 'exchanges completed after the restart')
    const relog = server.log()
    const moved = [...relog.matchAll(/"mac":"([0-9a-f:]+)".*?"ip":"([0-9.]+)".*?"reply":"ACK"/g)]
      .filter((m) => byIp.has(m[2]!) === false && leases.some((l) => l.mac === m[1]))
    t.same(moved.map((m) => `${m[1]} ${m[2]}`), [], 'a client with a lease got the same address back')
    server.proc.kill('SIGTERM')
    t.equal(await server.exited, 0)
  })
}
