/**
 * Boot-storm benchmark (issue #8): N simulated nodes (test/storm/sim.ts) boot at
 * once through the whole control plane of a real `netboot serve` (compiled dist/,
 * log level warn) across a veth pair into the namespace where it runs; then, in
 * the same run and under the same simulated load, the anchors: the DHCP phases
 * alone against netboot, Kea (memfile, persisted) and dnsmasq; the TFTP phase
 * against netboot and tftpd-hpa; image delivery (kernel + initrd HEAD/GET, the
 * rootfs in two Ranges) against netboot and nginx. Method and figures:
 * docs/bench-storm.md.
 *
 *   npx tsx bench/storm/run.ts [--nodes 1000[,10000]] [--ramp-ms 0] [--swtpm 3]
 *        [--anchors kea,dnsmasq,tftpd,nginx | --no-anchors] [--uefi 0.1]
 *        [--profile] [--nice -10] [--build] [--keep] [--skip-full] [--alone dhcp,tftp,images]
 *        [--tftp-worker on|off] [--dhcp-worker on|off]
 *
 * --skip-full: only the phase-alone runs (netboot and the anchors); --alone: which
 * phase groups run alone (default all three, each with its anchors); --keep: keep
 * the state directory (server logs, databases, simulator results) in /tmp;
 * --tftp-worker off: netboot's TFTP on its main event loop (tftp.worker: false); --dhcp-worker
 * off: the same for DHCP (dhcp.worker: false).
 *
 * Needs root (namespaces), swtpm, kea-dhcp4, dnsmasq, in.tftpd, nginx
 * (scripts/setup.sh --bench) and a built netboot (npm run build, or --build).
 * Every namespace, server and simulator it starts is removed or stopped by pid at
 * the end, on failure and on Ctrl-C. Writes a table to stdout, JSON and one SVG
 * (nodes completed over time) per N to bench/out/.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, hostname, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { alive, cleanup, installCleanupHandlers, inNs, makeTopology, onCleanup, procTicks, setNice, sh, stopChild, track, CLK_TCK, type Topology } from '../dhcp/lib/sys.js'
import { startServer, type Running } from '../dhcp/lib/servers.js'
import { resetPeakRss, statusKb, treeCounters, versionOf } from '../chainload/lib/common.js'
import { nginxConf } from '../chainload/lib/anchors.js'
import { staleSources } from '../attest/lib/dist.js'
import { topSelfTime } from '../attest/lib/profile.js'
import { ADMIN_PORT, HTTP_PORT, NET, ROOT, fleet, killTsxChildren, makeArtefacts, netbootYaml, tsxInNs, type Artefacts, type ProvisionArgs } from '../../test/storm/harness.js'
import { prepareSwtpms } from '../../test/storm/swtpm.js'
import { PHASES, type Phase, type SimNodeSpec, type StormResult } from '../../test/storm/sim.js'
import { completionSvg, completions, phaseTable, summarize, type StormSummary } from '../../test/storm/report.js'
import type { MainConfig } from '../../test/storm/main.js'

// ---- options ---------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (f: string): boolean => argv.includes(f)
const value = (f: string): string | undefined => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined }
if (flag('-h') || flag('--help')) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*?|^ \* ?/gm, '') + '\n')
  process.exit(0)
}
const OPTS = {
  nodes: (value('--nodes') ?? '1000').split(',').map(Number),
  rampMs: Number(value('--ramp-ms') ?? 0),
  swtpm: Number(value('--swtpm') ?? 3),
  anchors: flag('--no-anchors') ? [] : (value('--anchors') ?? 'kea,dnsmasq,tftpd,nginx').split(',') as Anchor[],
  uefiShare: Number(value('--uefi') ?? 0.1),
  profile: flag('--profile'),
  nice: Number(value('--nice') ?? -10),
  build: flag('--build'),
  keep: flag('--keep'),
  skipFull: flag('--skip-full'),
  alone: (value('--alone') ?? 'dhcp,tftp,images').split(','),
  /** the whole storm, per run */
  deadlineMs: Number(value('--deadline-ms') ?? 600_000),
  httpSockets: Number(value('--http-sockets') ?? 256),
  tftpWorker: value('--tftp-worker') === 'off' ? 'off' : 'on',
  dhcpWorker: value('--dhcp-worker') === 'off' ? 'off' : 'on',
}
type Anchor = 'kea' | 'dnsmasq' | 'tftpd' | 'nginx'
const DHCP_PHASES: Phase[] = ['dhcp-firmware', 'dhcp-ipxe', 'dhcp-linux']
const IMAGE_PHASES: Phase[] = ['kernel', 'rootfs']
const IN_TFTPD = '/usr/sbin/in.tftpd'
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))

const log = (msg: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }
const round = (x: number, d = 2): number => Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : NaN
const load = (): number[] => loadavg().map((x) => round(x))

// ---- servers in the provisioning namespace --------------------------------

interface Server { name: string; pid: number; command: string; version: string; stop (): Promise<void>; cpuTicks (): number; peakRssKb (): number | undefined; resetPeak (): void; log (): string }

function netbootEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NETBOOT_')))
  // --tftp-worker / --dhcp-worker off: the same build with that service on the main event loop, for A/B runs
  if (OPTS.tftpWorker === 'off') env.NETBOOT_TFTP__WORKER = 'false'
  if (OPTS.dhcpWorker === 'off') env.NETBOOT_DHCP__WORKER = 'false'
  return env
}

/** A fresh netboot: config, admin token (CLI --local), `serve` in the namespace, provisioned through its admin API. */
async function startNetboot (topo: Topology, dir: string, nodes: SimNodeSpec[], art: Artefacts, ekCa: string | undefined, profileDir?: string): Promise<Server & { dataDir: string }> {
  const dataDir = join(dir, 'data')
  mkdirSync(dataDir, { recursive: true })
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, netbootYaml(dataDir, ekCa !== undefined ? { ekCa } : {}))
  const tok = execFileSync(process.execPath, [join(ROOT, 'dist/server/cli/main.js'), '-c', cfg, 'token', 'create', '--local', 'storm', '--role', 'admin', '--json'], { encoding: 'utf8', env: netbootEnv(), timeout: 60_000 })
  const token = (JSON.parse(tok) as { value: string }).value
  const logFile = join(dir, 'netboot.log')
  const fd = openSync(logFile, 'a')
  const nodeArgs = profileDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []
  const args = [...nodeArgs, join(ROOT, 'dist/server/cli/main.js'), '-c', cfg, 'serve']
  const proc = track(...inNs(topo.server, process.execPath, args), { stdio: ['ignore', fd, fd], env: netbootEnv() })
  closeSync(fd)
  const provFile = join(dir, 'provision.json')
  writeFileSync(provFile, JSON.stringify({ adminUrl: `http://127.0.0.1:${ADMIN_PORT}`, token, nodes, artefacts: art } satisfies ProvisionArgs))
  const p = await tsxInNs(topo.server, 'test/storm/harness.ts', ['provision', provFile], 600_000)
  const readLog = (): string => { try { return readFileSync(logFile, 'utf8') } catch { return '' } }
  if (p.code !== 0 || !alive(proc)) throw new Error(`netboot provisioning failed (${p.code}): ${p.stderr.slice(-2000)}\n${readLog().slice(-2000)}`)
  const pid = proc.pid!
  return {
    name: 'netboot', pid, dataDir, command: ['node', ...args.map((a) => a.replace(ROOT, ''))].join(' '), version: process.version,
    stop: async () => await stopChild(proc, 20_000), cpuTicks: () => procTicks(pid) ?? 0, peakRssKb: () => statusKb(pid, 'VmHWM'), resetPeak: () => { resetPeakRss(pid) }, log: readLog,
  }
}

function fromRunning (r: Running, version: string): Server {
  return { name: r.name, pid: r.pid, command: r.command, version, stop: r.stop, cpuTicks: () => procTicks(r.pid) ?? 0, peakRssKb: () => statusKb(r.pid, 'VmHWM'), resetPeak: () => { resetPeakRss(r.pid) }, log: r.log }
}

async function startTftpd (topo: Topology, dir: string): Promise<Server> {
  if (!existsSync(IN_TFTPD)) throw new Error('in.tftpd is not installed (apt-get install -y --no-install-recommends tftpd-hpa)')
  // in.tftpd -L: foreground, one process for the whole run (it forks per transfer); chrooted to the iPXE directory
  const args = ['-L', '-s', '/usr/lib/ipxe', '-a', `${NET.server}:69`]
  const logFile = join(dir, 'tftpd.log')
  const fd = openSync(logFile, 'a')
  const proc = track(...inNs(topo.server, IN_TFTPD, args), { stdio: ['ignore', fd, fd] })
  closeSync(fd)
  await new Promise((resolve) => setTimeout(resolve, 500))
  if (!alive(proc)) throw new Error(`in.tftpd exited at start: ${readFileSync(logFile, 'utf8')}`)
  const pid = proc.pid!
  return {
    name: 'tftpd-hpa', pid, command: [IN_TFTPD, ...args].join(' '), version: versionOf(IN_TFTPD, ['-V'], /tftp-hpa (\S+)/),
    stop: async () => await stopChild(proc, 5000),
    // the forked children that served transfers have exited and were reaped: their time is in cutime/cstime
    cpuTicks: () => treeTicksWithChildren(pid), peakRssKb: () => statusKb(pid, 'VmHWM'), resetPeak: () => { resetPeakRss(pid) }, log: () => readFileSync(logFile, 'utf8'),
  }
}

/** utime+stime+cutime+cstime of a process (reaped children included), plus its live children's. */
function treeTicksWithChildren (pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    const own = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
    const c = treeCounters(pid)
    const ownOnly = Number(f[11]) + Number(f[12])
    return own + (c.utime + c.stime - ownOnly)
  } catch { return 0 }
}

async function startNginx (topo: Topology, dir: string, art: Artefacts): Promise<Server> {
  if (NGINX === undefined) throw new Error('nginx is not installed (apt-get install -y --no-install-recommends nginx)')
  const www = join(dir, 'www')
  mkdirSync(join(www, 'images'), { recursive: true })
  for (const b of Object.values(art)) writeFileSync(join(www, 'images', b.sha256), readFileSync(b.file))
  // as bench/chainload's nginx: one worker (netboot is one event loop), sendfile on, no access log
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, nginxConf(dir, 'bench/storm/run.ts', 4096, '  keepalive_requests 100000;\n', `  server { listen ${NET.server}:${HTTP_PORT}; root ${www}; }\n`))
  const args = ['-c', conf, '-p', dir, '-e', join(dir, 'nginx-error.log')]
  const proc = track(...inNs(topo.server, NGINX, args), { stdio: ['ignore', 'inherit', 'inherit'] })
  await new Promise((resolve) => setTimeout(resolve, 700))
  if (!alive(proc)) throw new Error(`nginx exited at start: ${readFileSync(join(dir, 'nginx-error.log'), 'utf8')}`)
  const pid = proc.pid!
  const workerRss = (): number | undefined => treeRss(pid)
  return {
    name: 'nginx', pid, command: [NGINX, ...args].join(' '), version: versionOf(NGINX, ['-v'], /nginx\/(\S+)/),
    stop: async () => await stopChild(proc, 5000), cpuTicks: () => { const c = treeCounters(pid); return c.utime + c.stime }, peakRssKb: workerRss, resetPeak: () => {}, log: () => '',
  }
}

function treeRss (pid: number): number | undefined {
  let kids: number[] = []
  try { kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) } catch {}
  const v = [pid, ...kids].map((p) => statusKb(p, 'VmHWM') ?? 0)
  return v.reduce((a, b) => a + b, 0)
}

// ---- one storm -------------------------------------------------------------

interface Run {
  label: string
  server: string
  phases: Phase[]
  summary: StormSummary
  serverCpuS: number
  /** server CPU per node, µs */
  serverCpuUsPerNode: number
  serverPeakRssKb?: number
  dbBytes?: number
  loadBefore: number[]
  loadAfter: number[]
  /** UDP datagrams the kernel dropped for a full socket receive buffer (/proc/net/snmp RcvbufErrors), per namespace */
  udpRcvbufErrors: { server: number; client: number }
  completions: number[]
}

/** UDP RcvbufErrors of a namespace (/proc/net/snmp is per network namespace). */
function rcvbufErrors (ns: string): number {
  try {
    const lines = sh('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp:'))
    const head = lines[0]!.split(/\s+/); const vals = lines[1]!.split(/\s+/)
    return Number(vals[head.indexOf('RcvbufErrors')])
  } catch { return NaN }
}

interface StormSetup { topo: Topology; dir: string; nodes: SimNodeSpec[]; ipxeFiles: Record<string, string>; swtpmStates: string[]; art: Artefacts }

async function storm (s: StormSetup, srv: Server, label: string, phases: Phase[], extra: Partial<MainConfig>, dbDir?: string): Promise<Run> {
  const cfg: Partial<MainConfig> = {
    nodes: s.nodes, phases, swtpmStates: phases.includes('attest') ? s.swtpmStates : [], server: NET.server, httpBase: `http://${NET.server}:${HTTP_PORT}`,
    ipxeFiles: s.ipxeFiles, ipxeDir: '/usr/lib/ipxe', rampMs: OPTS.rampMs, deadlineMs: OPTS.deadlineMs, http: { sockets: OPTS.httpSockets, timeoutMs: 30_000, tries: 6, baseMs: 1000, capMs: 8000 }, ...extra,
  }
  const tag = label.replace(/[^a-z0-9]+/gi, '-')
  const cfgFile = join(s.dir, `storm-${tag}.json`)
  const outFile = join(s.dir, `result-${tag}.json`)
  writeFileSync(cfgFile, JSON.stringify(cfg))
  const loadBefore = load()
  srv.resetPeak()
  const drops0 = { server: rcvbufErrors(s.topo.server), client: rcvbufErrors(s.topo.client) }
  const c0 = srv.cpuTicks()
  log(`${label}: ${s.nodes.length} nodes, phases ${phases.join(',')} (load ${loadBefore.join(' ')})`)
  const say = (t: string): void => { for (const l of t.split('\n')) if (l.trim() !== '') log(`  ${l.trim()}`) }
  // the simulator prints 'storm: N nodes' once its TPMs exist and the storm starts; one retry if it never does
  let r = await tsxInNs(s.topo.client, 'test/storm/main.ts', [cfgFile, outFile], OPTS.deadlineMs + 600_000, say, OPTS.nice, { marker: 'storm: ', withinMs: 300_000 })
  if (r.code !== 0 && !r.stderr.includes('storm: ')) {
    log(`${label}: the simulator did not start; once more`)
    r = await tsxInNs(s.topo.client, 'test/storm/main.ts', [cfgFile, outFile], OPTS.deadlineMs + 600_000, say, OPTS.nice, { marker: 'storm: ', withinMs: 300_000 })
  }
  const c1 = srv.cpuTicks()
  const udpRcvbufErrors = { server: rcvbufErrors(s.topo.server) - drops0.server, client: rcvbufErrors(s.topo.client) - drops0.client }
  if (r.code !== 0) throw new Error(`${label}: the simulator failed (${r.code}): ${r.stderr.slice(-2000)}`)
  const result = JSON.parse(readFileSync(outFile, 'utf8')) as StormResult
  const summary = summarize(result, phases)
  let dbBytes: number | undefined
  if (dbDir !== undefined) dbBytes = ['netboot.db', 'netboot.db-wal', 'netboot.db-shm'].map((f) => { try { return statSync(join(dbDir, f)).size } catch { return 0 } }).reduce((a, b) => a + b, 0)
  const serverCpuS = (c1 - c0) / CLK_TCK
  const peak = srv.peakRssKb()
  const run: Run = {
    label, server: srv.name, phases, summary, serverCpuS: round(serverCpuS), serverCpuUsPerNode: Math.round((serverCpuS * 1e6) / s.nodes.length),
    ...(peak !== undefined ? { serverPeakRssKb: peak } : {}), ...(dbBytes !== undefined ? { dbBytes } : {}), loadBefore, loadAfter: load(), udpRcvbufErrors, completions: completions(result.nodes).map((x) => Math.round(x)),
  }
  log(`${label}: ${summary.completed}/${summary.nodes} complete, last done ${summary.lastDoneMs ?? '—'} ms, server CPU ${run.serverCpuS} s, peak RSS ${peak ?? '?'} kB, UDP receive-buffer drops: server side ${udpRcvbufErrors.server}, nodes' side ${udpRcvbufErrors.client}`)
  process.stderr.write(phaseTable(summary) + '\n')
  return run
}

// ---- the run ---------------------------------------------------------------

async function main (): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces')
  if (OPTS.build) { log('npm run build'); execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' }) }
  if (!existsSync(join(ROOT, 'dist/server/cli/main.js'))) throw new Error('dist/ missing: run npm run build (or pass --build)')
  const stale = staleSources()
  if (stale.length > 0) log(`warning: ${stale.length} source files newer than dist/ (e.g. ${stale[0]}): the run measures the built code`)
  for (const bin of ['swtpm', 'swtpm_setup', ...(OPTS.anchors.includes('kea') ? ['kea-dhcp4'] : []), ...(OPTS.anchors.includes('dnsmasq') ? ['dnsmasq'] : [])]) {
    try { sh('sh', ['-c', `command -v ${bin}`]) } catch { throw new Error(`${bin} not found: scripts/setup.sh --bench installs it`) }
  }
  installCleanupHandlers()
  onCleanup(killTsxChildren)
  setNice(OPTS.nice)
  const work = mkdtempSync('/tmp/nb-storm-')
  if (!OPTS.keep) onCleanup(() => rmSync(work, { recursive: true, force: true }))
  const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*/, '')
  const outDir = join(ROOT, 'bench/out')
  mkdirSync(outDir, { recursive: true })
  const ipxeFiles = Object.fromEntries(['undionly.kpxe', 'ipxe.efi'].map((f) => [f, createHash('sha256').update(readFileSync(join('/usr/lib/ipxe', f))).digest('hex')]))
  const art = makeArtefacts(work)
  const swtpm = await prepareSwtpms(OPTS.swtpm, work)
  const env = {
    date: new Date().toISOString(), host: hostname(), kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: round(totalmem() / 2 ** 30, 1), node: process.version,
    loadavgAtStart: load(), command: `npx tsx bench/storm/run.ts ${argv.join(' ')}`.trim(), git: gitHead(),
  }
  log(`load average at start: ${env.loadavgAtStart.join(' ')} on ${env.cpus} CPUs; state in ${work}`)

  const all: { n: number; runs: Run[]; ratios: Record<string, number>; profile?: unknown; phasesProfile?: unknown }[] = []
  /**
   * Copies the server's CPU profiles (written at its exit, one per thread: Node names them
   * CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile, thread 0 the main one) to bench/out and
   * summarises their self time: the main thread's as `name`, each worker thread's (TFTP, DHCP,
   * verifiers) beside it as `<name>-thread<N>`, labelled by the server folder its time is in.
   */
  const keepProfile = (profDir: string, name: string): unknown => {
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => ({ f, thread: Number(f.split('.').at(-3)) }))
      .sort((a, b) => a.thread - b.thread)
    const threads = files.map(({ f, thread }) => {
      const dest = join(outDir, thread === 0 ? name : name.replace(/\.cpuprofile$/, `-thread${thread}.cpuprofile`))
      execFileSync('cp', [join(profDir, f), dest])
      const p = topSelfTime(dest, ROOT)
      const folders = new Map<string, number>()
      for (const x of p.functions) {
        const m = /dist\/server\/([a-z-]+)\//.exec(x.where)
        if (m !== null) folders.set(m[1]!, (folders.get(m[1]!) ?? 0) + x.ms)
      }
      const label = thread === 0 ? 'main' : [...folders].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'worker'
      log(`profile (${label} thread) ${dest}: ${Math.round(p.busyMs)} ms busy; top: ${p.functions.slice(0, thread === 0 ? 12 : 6).map((x) => JSON.stringify(x)).join('; ')}`)
      return { thread, label, file: dest, busyMs: p.busyMs, top: p.functions.slice(0, 15) }
    })
    const main = threads.find((t) => t.thread === 0)
    return { ...main, threads: threads.filter((t) => t.thread !== 0).map(({ top, ...rest }) => ({ ...rest, top: top.slice(0, 8) })) }
  }
  for (const n of OPTS.nodes) {
    const nodes = fleet(n, OPTS.uefiShare)
    const runs: Run[] = []
    const topoSetup = (name: string): StormSetup => {
      const topo = makeTopology()
      sh('ip', ['-n', topo.client, 'route', 'add', '255.255.255.255/32', 'dev', 'eth0'])
      const dir = join(work, `${n}-${name}`)
      mkdirSync(dir, { recursive: true })
      return { topo, dir, nodes, ipxeFiles, swtpmStates: swtpm.states, art }
    }
    let profile: unknown
    // 1. the whole control plane against netboot
    if (!OPTS.skipFull) {
      const s = topoSetup('netboot')
      const profDir = OPTS.profile ? join(s.dir, 'prof') : undefined
      if (profDir !== undefined) mkdirSync(profDir, { recursive: true })
      const nb = await startNetboot(s.topo, s.dir, nodes, art, swtpm.caDir, profDir)
      try {
        runs.push(await storm(s, nb, 'netboot: whole control plane', [...PHASES], {}, nb.dataDir))
      } finally { await nb.stop() }
      if (profDir !== undefined) profile = keepProfile(profDir, `storm-${stamp}-${n}-netboot.cpuprofile`)
    }
    let phasesProfile: unknown
    // 2. each phase group alone against a fresh netboot, then against its anchors
    if (OPTS.anchors.length > 0) {
      const s = topoSetup('netboot-phases')
      // --profile: the phases-alone server is profiled too (its own file: DHCP, TFTP and images alone)
      const profDir = OPTS.profile ? join(s.dir, 'prof') : undefined
      if (profDir !== undefined) mkdirSync(profDir, { recursive: true })
      const nb = await startNetboot(s.topo, s.dir, nodes, art, swtpm.caDir, profDir)
      try {
        if (OPTS.alone.includes('dhcp')) runs.push(await storm(s, nb, 'netboot: DHCP only', DHCP_PHASES, { requireBootInfo: false }, nb.dataDir))
        if (OPTS.alone.includes('tftp') && OPTS.anchors.includes('tftpd')) runs.push(await storm(s, nb, 'netboot: TFTP only', ['tftp'], { fixed: { tftpFile: 'undionly.kpxe' } }))
        if (OPTS.alone.includes('images') && OPTS.anchors.includes('nginx')) runs.push(await storm(s, nb, 'netboot: images only', IMAGE_PHASES, { fixed: imageUrls(art) }))
      } finally { await nb.stop() }
      if (profDir !== undefined) phasesProfile = keepProfile(profDir, `storm-${stamp}-${n}-netboot-phases.cpuprofile`)
    }
    for (const a of ['kea', 'dnsmasq'] as const) {
      if (!OPTS.anchors.includes(a) || !OPTS.alone.includes('dhcp')) continue
      const s = topoSetup(a)
      const r = await startServer(a, { ns: s.topo.server, dir: s.dir, reservations: nodes.map((x) => ({ mac: x.mac, ip: x.ip! })) })
      const srv = fromRunning(r, a === 'kea' ? versionOf('kea-dhcp4', ['-v'], /(\S+)/) : versionOf('dnsmasq', ['-v'], /version (\S+)/))
      try {
        await new Promise((resolve) => setTimeout(resolve, a === 'kea' ? 1500 : 500))
        runs.push(await storm(s, srv, `${a}: DHCP only`, DHCP_PHASES, { requireBootInfo: false }))
      } finally { await srv.stop() }
    }
    if (OPTS.anchors.includes('tftpd') && OPTS.alone.includes('tftp')) {
      const s = topoSetup('tftpd')
      const srv = await startTftpd(s.topo, s.dir)
      try { runs.push(await storm(s, srv, 'tftpd-hpa: TFTP only', ['tftp'], { fixed: { tftpFile: 'undionly.kpxe' } })) } finally { await srv.stop() }
    }
    if (OPTS.anchors.includes('nginx') && OPTS.alone.includes('images')) {
      const s = topoSetup('nginx')
      const srv = await startNginx(s.topo, s.dir, art)
      try { runs.push(await storm(s, srv, 'nginx: images only', IMAGE_PHASES, { fixed: imageUrls(art) })) } finally { await srv.stop() }
    }
    const ratios = ratiosOf(runs)
    all.push({ n, runs, ratios, ...(profile !== undefined ? { profile } : {}), ...(phasesProfile !== undefined ? { phasesProfile } : {}) })
    const curves: { label: string; color: string; times: number[]; total: number }[] = []
    for (const r of runs) curves.push({ label: r.label, color: COLORS[curves.length % COLORS.length]!, times: r.completions, total: n })
    if (!OPTS.keep) log(`(state directory ${work} is removed at exit; --keep keeps it)`)
    const svg = join(outDir, `storm-${stamp}-${n}.svg`)
    writeFileSync(svg, completionSvg(`Boot storm, ${n} nodes at once (${env.date.slice(0, 10)}, ${env.cpus} CPUs)`, curves))
    log(`plot: ${svg}`)
  }
  const doc = { kind: 'netboot-storm-bench', environment: env, options: OPTS, loadavgAtEnd: load(), results: all }
  const file = join(outDir, `storm-${stamp}.json`)
  writeFileSync(file, JSON.stringify(doc, null, 1) + '\n')
  process.stdout.write(report(all, env) + `\nJSON: ${file}\n`)
  cleanup()
}

const COLORS = ['#1f77b4', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22']

function imageUrls (art: Artefacts): { kernelUrls: string[]; rootfs: { url: string; sha256: string } } {
  const base = `http://${NET.server}:${HTTP_PORT}/images`
  return { kernelUrls: [`${base}/${art.kernel.sha256}`, `${base}/${art.initrd.sha256}`], rootfs: { url: `${base}/${art.rootfs.sha256}`, sha256: art.rootfs.sha256 } }
}

/**
 * anchor time ÷ netboot time for the same phases under the same load (> 1: netboot
 * finished sooner), from the time until the last node was done (when neither failed
 * a node; else the ratio of nodes completed); the worst phase p99 over the nodes that
 * got through; and the server CPU per node, netboot ÷ anchor.
 */
function ratiosOf (runs: Run[]): Record<string, number> {
  const by = (l: string): Run | undefined => runs.find((r) => r.label === l)
  const out: Record<string, number> = {}
  const pair = (key: string, nb: string, anchor: string): void => {
    const a = by(anchor); const b = by(nb)
    if (a === undefined || b === undefined) return
    // a time ratio means nothing when a side failed nodes (a refusal ends a node sooner than a boot)
    if (a.summary.failed === 0 && b.summary.failed === 0) out[`${key}: anchor/netboot time to last done`] = round(a.summary.wallMs / b.summary.wallMs)
    else out[`${key}: nodes completed, anchor/netboot`] = round(a.summary.completed / Math.max(1, b.summary.completed))
    out[`${key}: anchor/netboot p99 of the phase(s)`] = round(Math.max(...a.summary.phases.map((p) => p.p99Ms)) / Math.max(...b.summary.phases.map((p) => p.p99Ms)))
    out[`${key}: netboot/anchor server CPU per node`] = round(b.serverCpuUsPerNode / Math.max(1, a.serverCpuUsPerNode))
  }
  pair('kea DHCP', 'netboot: DHCP only', 'kea: DHCP only')
  pair('dnsmasq DHCP', 'netboot: DHCP only', 'dnsmasq: DHCP only')
  pair('tftpd-hpa TFTP', 'netboot: TFTP only', 'tftpd-hpa: TFTP only')
  pair('nginx images', 'netboot: images only', 'nginx: images only')
  return out
}

function report (all: { n: number; runs: Run[]; ratios: Record<string, number> }[], env: { date: string; host: string; cpus: number; loadavgAtStart: number[] }): string {
  const out: string[] = [`Boot storm — ${env.date} on ${env.host} (${env.cpus} CPUs), load at start ${env.loadavgAtStart.join(' ')}`]
  for (const { n, runs, ratios } of all) {
    out.push('', `==== N = ${n} ====`)
    for (const r of runs) {
      const s = r.summary
      out.push('', `${r.label}: ${s.completed}/${s.nodes} complete, ${s.failed} failed; last done ${s.lastDoneMs !== null ? `${round(s.lastDoneMs / 1000)} s` : '—'} (wall ${round(s.wallMs / 1000)} s) after the first arrival`,
        `  server ${r.server}: CPU ${r.serverCpuS} s (${r.serverCpuUsPerNode} µs/node), peak RSS ${r.serverPeakRssKb !== undefined ? `${round(r.serverPeakRssKb / 1024, 1)} MiB` : '?'}${r.dbBytes !== undefined ? `, database ${round(r.dbBytes / 2 ** 20, 1)} MiB` : ''}; simulator CPU ${round(s.clientCpuMs / 1000)} s; UDP drops (full receive buffer) server side ${r.udpRcvbufErrors.server}, nodes' side ${r.udpRcvbufErrors.client}; load ${r.loadBefore.join(' ')} → ${r.loadAfter.join(' ')}`,
        phaseTable(s).split('\n').map((l) => `  ${l}`).join('\n'))
    }
    if (Object.keys(ratios).length > 0) {
      out.push('', 'ratios (same run, same simulated load):')
      for (const [k, v] of Object.entries(ratios)) out.push(`  ${k.padEnd(52)} ${v}`)
    }
  }
  return out.join('\n') + '\n'
}

function gitHead (): string {
  try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim() } catch { return '?' }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`)
  cleanup()
  process.exit(1)
})
