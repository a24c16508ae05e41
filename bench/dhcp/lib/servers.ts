/**
 * The three servers under test, each a foreground process in the server
 * namespace with its own configuration and state in a fresh directory:
 *
 *   netboot  dist/server/cli/main.js serve; SQLite on disk (synchronous: normal);
 *            reservations imported into its inventory before start.
 *   kea      kea-dhcp4 -c kea.json; memfile lease database with persist: true;
 *            reservations in the subnet.
 *   dnsmasq  dnsmasq -k -C dnsmasq.conf; lease file; reservations as dhcp-host lines;
 *            no-ping (else it pings each address ~3 s before offering it) and
 *            quiet-dhcp (else it logs every packet, as the others do not at warn).
 *
 * Every server gets the same subnet, pool and lease time.
 */
import { openSync, closeSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import type { SqliteStore as SqliteStoreT } from '../../../server/store/sqlite/sqlite-store.js'
import { track, stopChild, alive, procComm, waitFor, inNs } from './sys.js'

export const SUBNET = { network: '10.98.0.0/16', mask: '255.255.0.0', router: '10.98.0.1', server: '10.98.0.1', poolFirst: '10.98.1.0', poolLast: '10.98.127.254', leaseTime: 3600 }

export type ServerName = 'netboot' | 'kea' | 'dnsmasq'

export interface Reservation { mac: string; ip: string }

export interface ServerSetup {
  ns: string
  dir: string
  reservations: readonly Reservation[]
  /** netboot only */
  logLevel?: 'warn' | 'info'
  /** netboot only: write a V8 CPU profile into this directory at exit */
  cpuProfDir?: string
}

export interface Running {
  name: ServerName
  pid: number
  proc: ChildProcess
  logFile: string
  /** what was started, for the report */
  command: string
  stop (): Promise<void>
  log (): string
  /** The bound leases in the server's own persistent store (read after it stops). */
  storedLeases (): Promise<StoredLease[]>
}

export interface StoredLease { mac: string; ip: string }

export const ROOT = new URL('../../../', import.meta.url).pathname
export const NETBOOT_CLI = join(ROOT, 'dist/server/cli/main.js')

function launch (name: ServerName, s: ServerSetup, cmd: string, args: string[], storedLeases: () => Promise<StoredLease[]>, env: NodeJS.ProcessEnv = process.env): Running {
  const logFile = join(s.dir, `${name}.log`)
  const fd = openSync(logFile, 'a')
  const proc = track(...inNs(s.ns, cmd, args), { stdio: ['ignore', fd, fd], env })
  closeSync(fd)
  if (proc.pid === undefined) throw new Error(`${name}: failed to start ${cmd}`)
  return {
    name, pid: proc.pid, proc, logFile, command: [cmd, ...args].join(' '),
    stop: async () => await stopChild(proc),
    log: () => { try { return readFileSync(logFile, 'utf8') } catch { return '' } },
    storedLeases,
  }
}

// ---- netboot ---------------------------------------------------------------

export async function startNetboot (s: ServerSetup): Promise<Running> {
  const data = join(s.dir, 'data')
  mkdirSync(data, { recursive: true })
  if (s.reservations.length > 0) {
    // the inventory, through the store's own import (one transaction), before start; from
    // dist/, the build the server runs, so the schema is the one it expects
    const mod = await import(join(ROOT, 'dist/server/store/sqlite/sqlite-store.js')) as { SqliteStore: typeof SqliteStoreT }
    const store = mod.SqliteStore.open(join(data, 'netboot.db'))
    try {
      const specs = s.reservations.map((r, i) => ({ name: `bench${String(i).padStart(5, '0')}`, groups: ['bench'], interfaces: [{ mac: r.mac, ip: r.ip }] }))
      const res = await store.importNodes(specs, { createGroups: true, source: 'bench/dhcp' }, { kind: 'system', id: 'bench', name: 'bench' })
      if (res.created.length !== s.reservations.length) throw new Error(`netboot import created ${res.created.length} nodes, expected ${s.reservations.length}`)
    } finally {
      await store.close()
    }
  }
  const cfg = join(s.dir, 'netboot.yaml')
  writeFileSync(cfg, `data_dir: ${data}
log: { level: ${s.logLevel ?? 'warn'} }
database: { synchronous: normal }
server: { address: ${SUBNET.server}, interfaces: [prov0] }
http: { listen: 127.0.0.1, port: 18080 }
admin: { port: 18081 }
unknown_nodes: { action: discover, lease_time: ${SUBNET.leaseTime} }
dhcp:
  lease_time: ${SUBNET.leaseTime}
  subnets:
    - name: prov
      network: ${SUBNET.network}
      interface: prov0
      pool: [${SUBNET.poolFirst}-${SUBNET.poolLast}]
      router: ${SUBNET.router}
`)
  const nodeArgs = s.cpuProfDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', s.cpuProfDir] : []
  const leases = async (): Promise<StoredLease[]> => {
    const { default: Database } = await import('better-sqlite3')
    const db = new Database(join(data, 'netboot.db'), { readonly: true })
    try {
      return db.prepare("SELECT mac, ip FROM dhcp_leases WHERE state = 'bound'").all() as StoredLease[]
    } finally { db.close() }
  }
  return launch('netboot', s, process.execPath, [...nodeArgs, NETBOOT_CLI, '-c', cfg, 'serve'], leases)
}

// ---- Kea -------------------------------------------------------------------

export function startKea (s: ServerSetup): Running {
  const cfg = join(s.dir, 'kea-dhcp4.json')
  const conf = {
    Dhcp4: {
      'interfaces-config': { interfaces: ['prov0'] },
      'lease-database': { type: 'memfile', persist: true, name: join(s.dir, 'kea-leases4.csv') },
      'valid-lifetime': SUBNET.leaseTime,
      subnet4: [{
        id: 1,
        subnet: SUBNET.network,
        pools: [{ pool: `${SUBNET.poolFirst} - ${SUBNET.poolLast}` }],
        'option-data': [{ name: 'routers', data: SUBNET.router }],
        reservations: s.reservations.map((r) => ({ 'hw-address': r.mac, 'ip-address': r.ip })),
      }],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'WARN' }],
    },
  }
  writeFileSync(cfg, JSON.stringify(conf, null, 1))
  // pid and lock files in our directory, not /run/kea
  const env = { ...process.env, KEA_PIDFILE_DIR: s.dir, KEA_LOCKFILE_DIR: s.dir }
  // the memfile is a log: a later line for an address replaces an earlier one
  const leases = async (): Promise<StoredLease[]> => {
    const byIp = new Map<string, StoredLease>()
    const [head, ...rows] = readFileSync(join(s.dir, 'kea-leases4.csv'), 'utf8').trim().split('\n')
    const col = head!.split(',')
    const [ia, ih, iv, is] = ['address', 'hwaddr', 'valid_lifetime', 'state'].map((c) => col.indexOf(c))
    for (const r of rows) {
      const f = r.split(',')
      if (f[iv!] === '0' || f[is!] !== '0') byIp.delete(f[ia!]!) // released / declined / expired-reclaimed
      else byIp.set(f[ia!]!, { ip: f[ia!]!, mac: f[ih!]! })
    }
    return [...byIp.values()]
  }
  return launch('kea', s, 'kea-dhcp4', ['-c', cfg], leases, env)
}

// ---- dnsmasq ---------------------------------------------------------------

export function startDnsmasq (s: ServerSetup): Running {
  const cfg = join(s.dir, 'dnsmasq.conf')
  const lines = [
    'port=0', // DHCP only
    'no-resolv', 'no-hosts',
    'interface=prov0', 'except-interface=lo', 'bind-interfaces',
    `dhcp-range=${SUBNET.poolFirst},${SUBNET.poolLast},${SUBNET.mask},${SUBNET.leaseTime}`,
    `dhcp-option=option:router,${SUBNET.router}`,
    `dhcp-leasefile=${join(s.dir, 'dnsmasq.leases')}`,
    'dhcp-lease-max=200000', // the default (1000) would refuse most of our 10,000 clients
    'dhcp-authoritative',
    'no-ping', // else dnsmasq pings every address (~3 s) before offering it
    'quiet-dhcp', // else it logs every packet; the others log none at warn
    `pid-file=${join(s.dir, 'dnsmasq.pid')}`,
    'user=root', 'group=root',
    'log-facility=-',
    ...s.reservations.map((r) => `dhcp-host=${r.mac},${r.ip}`),
  ]
  writeFileSync(cfg, lines.join('\n') + '\n')
  // "expiry mac ip hostname client-id", one line per lease, rewritten on every change
  const leases = async (): Promise<StoredLease[]> => readFileSync(join(s.dir, 'dnsmasq.leases'), 'utf8').trim().split('\n')
    .filter(Boolean).map((l) => l.split(' ')).map((f) => ({ mac: f[1]!, ip: f[2]! }))
  return launch('dnsmasq', s, 'dnsmasq', ['-k', '-C', cfg], leases)
}

export async function startServer (name: ServerName, s: ServerSetup): Promise<Running> {
  mkdirSync(s.dir, { recursive: true })
  const r = name === 'netboot' ? await startNetboot(s) : name === 'kea' ? startKea(s) : startDnsmasq(s)
  // `ip netns exec` execs the command: the pid is the server's own
  await waitFor(`${name} to start`, () => !alive(r.proc) || !['ip', 'nice'].includes(procComm(r.pid)), 5000, 20)
  if (!alive(r.proc)) throw new Error(`${name} exited at start:\n${r.log().slice(-3000)}`)
  const comm = procComm(r.pid)
  const want = name === 'netboot' ? 'node' : name === 'kea' ? 'kea-dhcp4' : 'dnsmasq'
  if (!comm.startsWith(want.slice(0, 15))) throw new Error(`${name}: pid ${r.pid} is '${comm}', not ${want}`)
  return r
}
