/**
 * DHCP benchmark: ISC perfdhcp against netboot, Kea (kea-dhcp4, memfile persisted)
 * and dnsmasq, in the same run on the same machine. Method and figures:
 * docs/bench-dhcp.md.
 *
 *   npx tsx bench/dhcp/run.ts [--quick] [--build] [--servers netboot,kea,dnsmasq]
 *        [--scenarios pool,reserved] [--seconds 10] [--no-info] [--no-profile]
 *        [--nice -10] [--keep]
 *
 * Needs root (network namespaces), perfdhcp, kea-dhcp4, dnsmasq, and a built
 * netboot (npm run build, or --build). Everything it creates (per server, two
 * namespaces joined by a veth pair with 10.98.0.0/16 addresses; the servers;
 * perfdhcp; a temp dir) is removed at the end, on failure and on Ctrl-C.
 * Results: a table on stdout, JSON (and netboot CPU profiles) in bench/out/.
 */
import { cpus, loadavg, hostname, release } from 'node:os'
import { mkdirSync, mkdtempSync, writeFileSync, readdirSync, statSync, copyFileSync, rmSync, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { execFileSync } from 'node:child_process'
import {
  CLK_TCK, cleanup, installCleanupHandlers, machineTicks, makeTopology, onCleanup, procTicks, setNice, sh, waitFor, type Topology,
} from './lib/sys.js'
import { perfdhcp, type PerfRun } from './lib/perfdhcp.js'
import { NETBOOT_CLI, ROOT, SUBNET, startServer, type Reservation, type Running, type ServerName } from './lib/servers.js'
import { summarize, type ProfileSummary } from './lib/profile.js'

// ---- options ---------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (f: string): boolean => argv.includes(f)
const value = (f: string): string | undefined => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined }
if (flag('-h') || flag('--help')) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*?|^ \* ?/gm, '') + '\n')
  process.exit(0)
}
const QUICK = flag('--quick')
const OPTS = {
  quick: QUICK,
  servers: (value('--servers') ?? 'netboot,kea,dnsmasq').split(',') as ServerName[],
  scenarios: (value('--scenarios') ?? 'pool,reserved').split(',') as Scenario[],
  /** a sustained step (bisection and confirmation), seconds */
  seconds: Number(value('--seconds') ?? 10),
  /** a ramp step (screening only; never the reported figure), seconds */
  rampSeconds: 4,
  bisections: 3,
  rampStart: 500,
  minRate: 25,
  maxRate: 16000,
  maxDropPct: 1,
  /** perfdhcp must have sent at least this share of the offered DISCOVERs, else the client was the limit */
  minSendRatio: 0.95,
  clients: 10_000,
  reservations: 10_000,
  info: !QUICK && !flag('--no-info'),
  profile: !QUICK && !flag('--no-profile'),
  build: flag('--build'),
  /** other processes' CPU (cores) above which a step is taken as disturbed */
  quietCores: 0.4,
  /** total time the run may spend waiting for the machine to be quiet, ms */
  quietBudgetMs: QUICK ? 0 : 30_000,
  /** at most this per wait, ms */
  quietWaitMaxMs: 15_000,
  /** servers and perfdhcp run under `nice -n` this (others share the machine); 0 = as is */
  nice: Number(value('--nice') ?? -10),
  keep: flag('--keep'),
  quickRate: 500,
  quickSeconds: 3,
}

type Scenario = 'pool' | 'reserved'
const SCENARIO_LABEL: Record<Scenario, string> = { pool: 'pool only', reserved: '10k reservations' }

// ---- results ---------------------------------------------------------------

interface Step {
  phase: 'warmup' | 'ramp' | 'bisect' | 'confirm' | 'verify' | 'fixed' | 'profile'
  rate: number
  seconds: number
  pass: boolean
  why?: string
  discovers: number
  offers: number
  requests: number
  acks: number
  /** 1 - ACKs / DISCOVERs sent: the share of DORA exchanges that did not complete */
  doraDropPct: number
  /** DISCOVERs sent / (rate × seconds) */
  sendRatio: number
  /** completed DORA exchanges per second */
  acksPerS: number
  latencyMs: { doAvg: number; doMax: number; raAvg: number; raMax: number }
  cpuUsPerExchange: number
  serverCpuPct: number
  clientCpuPct: number | null
  /** machine CPU not used by the server or perfdhcp (other processes, softirq), in cores */
  otherCores: number
  load1: number
  perfdhcpRc: number | null
  report?: string
}

interface Check { rows: number; withMac: number; distinctMacs: number; ok: number; bad: number; examples: string[] }
interface Verify { rule: string; client?: Check; store?: Check }

interface Result {
  server: ServerName
  scenario: Scenario
  logLevel: 'warn' | 'info'
  command: string
  best?: Step
  clientLimited: boolean
  verify?: Verify
  steps: Step[]
  startMs: number
  /** time spent waiting for other processes on the machine to calm down */
  quietWaitMs: number
  error?: string
}

const log = (msg: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }
const round = (x: number, d = 1): number => Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : NaN
const niceRate = (x: number): number => x >= 1000 ? Math.round(x / 50) * 50 : x >= 100 ? Math.round(x / 10) * 10 : Math.max(5, Math.round(x / 5) * 5)

// ---- the run ---------------------------------------------------------------

async function main (): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces')
  for (const bin of ['perfdhcp', 'kea-dhcp4', 'dnsmasq', 'ip']) {
    try { sh('sh', ['-c', `command -v ${bin}`]) } catch { throw new Error(`${bin} not found; see docs/bench-dhcp.md for the packages`) }
  }
  if (OPTS.build) { log('npm run build'); execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' }) }
  if (!existsSync(NETBOOT_CLI)) throw new Error(`${NETBOOT_CLI} missing: run npm run build (or pass --build)`)
  const env = environment()
  if (env.netboot.distStale) log(`warning: server/ has sources newer than dist/ (${env.netboot.newestSource}); run npm run build for current code`)
  if (env.foreignDhcpServers.length > 0) log(`note: other DHCP server processes are running on this machine: ${env.foreignDhcpServers.join(', ')}`)
  log(`load average at start: ${env.loadavg.join(' ')} on ${env.cpus} CPUs`)

  installCleanupHandlers()
  const work = mkdtempSync('/tmp/nbb-dhcp-')
  if (!OPTS.keep) onCleanup(() => rmSync(work, { recursive: true, force: true }))
  setNice(OPTS.nice)
  log(`state in ${work}; each server gets namespaces nbb-srv-* (prov0 10.98.0.1/16) and nbb-cli-* (eth0 10.98.0.2/16)`)

  const { macs, reservations } = clients(OPTS.clients, OPTS.reservations)
  const macFile = join(work, 'macs.txt')
  writeFileSync(macFile, macs.join('\n') + '\n')

  const started = Date.now()
  const results: Result[] = []
  const profiles: { scenario: Scenario; rate: number; summary: ProfileSummary; file: string }[] = []
  const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*/, '')
  const outDir = join(ROOT, 'bench/out')
  mkdirSync(outDir, { recursive: true })

  // One round per scenario; in a round every server runs at once in its own pair of
  // namespaces and the searches advance in lockstep, one step each in turn, so all
  // see the same background load (others share this machine). netboot at log level
  // info joins the pool-only round.
  for (const scenario of OPTS.scenarios) {
    const who: { server: ServerName; level: 'warn' | 'info' }[] = OPTS.servers.map((server) => ({ server, level: 'warn' }))
    if (scenario === 'pool' && OPTS.info && OPTS.servers.includes('netboot')) who.splice(1, 0, { server: 'netboot', level: 'info' })
    results.push(...await runRound(work, macFile, scenario, scenario === 'reserved' ? reservations : [], who))
  }
  if (OPTS.profile && OPTS.servers.includes('netboot')) {
    for (const scenario of OPTS.scenarios) {
      const best = results.find((r) => r.server === 'netboot' && r.scenario === scenario && r.logLevel === 'warn')?.best
      if (best === undefined) continue
      const p = await profile(work, macFile, scenario, scenario === 'reserved' ? reservations : [], best.rate, join(outDir, `dhcp-${stamp}-netboot-${scenario}.cpuprofile`))
      if (p !== undefined) profiles.push({ scenario, ...p })
    }
  }

  const doc = {
    kind: 'netboot-dhcp-bench',
    date: new Date().toISOString(),
    durationS: Math.round((Date.now() - started) / 1000),
    options: OPTS,
    environment: env,
    loadavgAtEnd: loadavg().map((x) => round(x, 2)),
    method: {
      topology: 'per server, two network namespaces joined by a veth pair: server prov0 10.98.0.1/16, perfdhcp on eth0 10.98.0.2/16; all servers of a scenario run at once and their searches advance in lockstep (one step each in turn), so they share the background load',
      subnet: SUBNET,
      clients: `${OPTS.clients} random locally administered MACs (perfdhcp -M), one chosen at random per exchange`,
      reservations: `${OPTS.reservations} of them reserved (10.98.128.1-10.98.167.250, outside the pool) in the reservation scenario`,
      pass: `DORA drops (1 - ACKs / DISCOVERs) < ${OPTS.maxDropPct}% and perfdhcp sent ≥ ${OPTS.minSendRatio * 100}% of the offered DISCOVERs, over a sustained ${OPTS.seconds} s step`,
      search: QUICK ? `quick: one ${OPTS.quickSeconds} s step at ${OPTS.quickRate}/s` : `ramp ×2 from ${OPTS.rampStart}/s in ${OPTS.rampSeconds} s steps, then ${OPTS.bisections} bisections with ${OPTS.seconds} s steps`,
      cpu: 'server utime+stime from /proc/PID/stat (all threads) over the step, divided by ACKs received; 1-core ceiling = 1e6 / that',
      priority: OPTS.nice !== 0 ? `servers and perfdhcp under nice -n ${OPTS.nice}, since other processes share the machine` : 'default priority',
    },
    results,
    ratios: ratios(results),
    profiles,
  }
  const file = join(outDir, `dhcp-${stamp}.json`)
  writeFileSync(file, JSON.stringify(doc, null, 1) + '\n')
  process.stdout.write(table(results, env, doc.ratios, profiles) + `\nJSON: ${file}\n`)
  cleanup()
}

interface Participant {
  label: string
  topo: Topology
  run?: Running
  result: Result
  search?: Generator<StepRequest, Step | undefined, Step>
  next?: StepRequest
  verifyRun?: PerfRun
}

/** All servers of one scenario, side by side: start, probe, warm up, search in lockstep, verify, stop. */
async function runRound (work: string, macFile: string, scenario: Scenario, res: readonly Reservation[], who: { server: ServerName; level: 'warn' | 'info' }[]): Promise<Result[]> {
  log(`${SCENARIO_LABEL[scenario]}: starting ${who.map((w) => w.server === 'netboot' ? `netboot (log ${w.level})` : w.server).join(', ')}`)
  const parts: Participant[] = []
  for (const { server, level } of who) {
    const label = server === 'netboot' ? `netboot/${level}` : server
    const p: Participant = { label, topo: makeTopology(), result: { server, scenario, logLevel: level, command: '', clientLimited: false, steps: [], startMs: 0, quietWaitMs: 0 } }
    parts.push(p)
    const t0 = Date.now()
    try {
      p.run = await startServer(server, { ns: p.topo.server, dir: mkdtempSync(join(work, `${server}-${scenario}-${level}-`)), reservations: res, logLevel: level })
      p.result.command = p.run.command
      await ready(p.topo, macFile, p.run)
      p.result.startMs = Date.now() - t0
    } catch (e) { fail(p, e) }
  }
  const live = (): Participant[] => parts.filter((p) => p.result.error === undefined)
  const step = async (p: Participant, q: StepRequest): Promise<{ s: Step; p: PerfRun } | undefined> => {
    try {
      const x = await measureStep(p.topo, macFile, p.run!, q.phase, q.rate, q.seconds, q.leases === true)
      p.result.steps.push(x.s)
      log(`  ${p.label.padEnd(12)} ${q.phase.padEnd(7)} ${String(q.rate).padStart(5)}/s ${q.seconds}s: ${x.s.pass ? 'pass' : `FAIL (${x.s.why ?? ''})`}; ACK/s ${round(x.s.acksPerS, 0)}, ${round(x.s.cpuUsPerExchange, 0)} µs/exch, server ${round(x.s.serverCpuPct, 0)}%, perfdhcp ${round(x.s.clientCpuPct ?? NaN, 0)}%, others ${round(x.s.otherCores, 2)} cores`)
      return x
    } catch (e) { fail(p, e); return undefined }
  }
  const quietMs = live().length > 0 ? await waitQuiet(live()[0]!.run!.pid) : 0
  for (const p of live()) p.result.quietWaitMs = quietMs
  if (OPTS.quick) {
    for (const p of live()) {
      const x = await step(p, { phase: 'fixed', rate: OPTS.quickRate, seconds: OPTS.quickSeconds, leases: true })
      if (x !== undefined) { p.result.best = x.s; p.verifyRun = x.p } // quick: the one step, pass or not (the table says which)
    }
  } else {
    for (const p of live()) await step(p, { phase: 'warmup', rate: 300, seconds: 3 })
    for (const p of live()) { p.search = findRate(); p.next = p.search.next(undefined as unknown as Step).value as StepRequest | undefined }
    for (let turn = 0; live().some((p) => p.next !== undefined); turn++) {
      // rotate who goes first, so no server always runs right after the same one
      const order = live().filter((p) => p.next !== undefined)
      for (const p of [...order.slice(turn % order.length), ...order.slice(0, turn % order.length)]) {
        const x = await step(p, p.next!)
        if (x === undefined) { p.next = undefined; continue }
        const r = p.search!.next(x.s)
        if (r.done === true) { p.next = undefined; if (r.value !== undefined) p.result.best = r.value } else p.next = r.value
      }
    }
    for (const p of live()) {
      const r = p.result
      // the bound above the reported rate was set by perfdhcp, not the server (or the ramp hit its top)
      const above = r.best === undefined ? [] : r.steps.filter((s) => s.rate > r.best!.rate && (s.phase === 'ramp' || s.phase === 'bisect' || s.phase === 'confirm')).sort((a, b) => a.rate - b.rate)
      r.clientLimited = r.best !== undefined && (above.length === 0 || above[0]!.why?.startsWith('client-limited') === true)
      // an address check (perfdhcp -x l), at half the found rate: not part of the rate figure
      p.verifyRun = (await step(p, { phase: 'verify', rate: niceRate((r.best?.rate ?? OPTS.minRate) / 2), seconds: 3, leases: true }))?.p
    }
  }
  for (const p of parts) {
    if (p.run === undefined) continue
    await p.run.stop()
    if (p.result.error !== undefined) continue
    const r = p.result
    r.verify = { rule: scenario === 'reserved' ? 'reserved MACs get their reserved address' : 'pool addresses, none shared' }
    if (p.verifyRun !== undefined) r.verify.client = checkLeases(clientRows(p.verifyRun), scenario, res, 'client')
    try { r.verify.store = checkLeases(await p.run.storedLeases(), scenario, res, 'store') } catch (e) { log(`  could not read ${p.label}'s lease store: ${(e as Error).message}`) }
    const v = r.verify
    const say = (k: string, c?: Check): string => c === undefined ? `${k} -` : `${k} ${c.ok}/${c.rows} ok${c.withMac < c.rows ? ` (${c.rows - c.withMac} without MAC: address checked only)` : ''}${c.bad > 0 ? `, ${c.bad} BAD: ${c.examples.join('; ')}` : ''}`
    log(`  ${p.label.padEnd(12)} verify (${v.rule}): ${say('ACKs seen by perfdhcp', v.client)}; ${say('leases in its store', v.store)}`)
  }
  return parts.map((p) => p.result)
}

function fail (p: Participant, e: unknown): void {
  p.result.error = (e as Error).message
  p.next = undefined
  log(`  ${p.label}: error: ${p.result.error}`)
  if (p.run !== undefined) log(p.run.log().slice(-2000))
}

/** Probes until the server answers a full DORA (start-up, socket bind, store load). */
async function ready (topo: Topology, macFile: string, run: Running): Promise<void> {
  await waitFor(`${run.name} to answer`, async () => {
    if (run.proc.exitCode !== null) throw new Error(`${run.name} exited (${run.proc.exitCode}):\n${run.log().slice(-3000)}`)
    const p = await perfdhcp({ ns: topo.client, iface: 'eth0', macFile, rate: 20, seconds: 1 })
    return p.ra.received > 0
  }, 30_000, 300)
}

let quietBudget = OPTS.quietBudgetMs

/**
 * Waits until processes other than the server use less than OPTS.quietCores of
 * CPU over 2 s (others share this machine), within what is left of the run's
 * waiting budget. Returns the time waited.
 */
async function waitQuiet (pid: number): Promise<number> {
  if (quietBudget <= 0) return 0
  const t0 = Date.now()
  let other = NaN
  for (;;) {
    const m0 = machineTicks(); const c0 = procTicks(pid) ?? 0
    await sleep(2000)
    const m1 = machineTicks(); const c1 = procTicks(pid) ?? 0
    other = Math.max(0, m1.busy - m0.busy - (c1 - c0)) / CLK_TCK / 2
    if (other < OPTS.quietCores || Date.now() - t0 >= Math.min(quietBudget, OPTS.quietWaitMaxMs)) break
  }
  const waited = Date.now() - t0
  quietBudget = Math.max(0, quietBudget - waited)
  if (waited > 2500) log(`  waited ${round(waited / 1000, 0)} s for other processes to calm down (now ${round(other, 2)} cores busy elsewhere; waiting budget left ${round(quietBudget / 1000, 0)} s)`)
  return waited
}

/** Lets the server finish its backlog (its CPU time stops moving) before the next step. */
async function quiesce (pid: number): Promise<void> {
  await sleep(500)
  const deadline = Date.now() + 15_000
  let last = procTicks(pid)
  while (Date.now() < deadline) {
    await sleep(300)
    const now = procTicks(pid)
    if (now === undefined || last === undefined || now - last <= 1) return
    last = now
  }
}

async function measureStep (topo: Topology, macFile: string, run: Running, phase: Step['phase'], rate: number, seconds: number, leases: boolean): Promise<{ s: Step; p: PerfRun }> {
  await quiesce(run.pid)
  const c0 = procTicks(run.pid)
  const m0 = machineTicks()
  const l1 = loadavg()[0]!
  const p = await perfdhcp({ ns: topo.client, iface: 'eth0', macFile, rate, seconds, leases })
  const c1 = procTicks(run.pid)
  const m1 = machineTicks()
  if (c0 === undefined || c1 === undefined) throw new Error(`${run.name} exited during the run:\n${run.log().slice(-3000)}`)
  const serverTicks = c1 - c0
  const clientTicks = p.clientTicks
  const acks = p.ra.received
  const discovers = p.do.sent
  const doraDropPct = discovers > 0 ? 100 * (1 - acks / discovers) : 100
  const sendRatio = discovers / (rate * seconds)
  const why = p.timedOut ? 'perfdhcp timed out'
    : sendRatio < OPTS.minSendRatio ? `client-limited (perfdhcp sent ${round(100 * sendRatio, 0)}% of the offered rate)`
      : doraDropPct >= OPTS.maxDropPct ? `drops ${round(doraDropPct, 2)}%` : undefined
  const s: Step = {
    phase, rate, seconds,
    pass: why === undefined,
    ...(why !== undefined ? { why } : {}),
    discovers, offers: p.do.received, requests: p.ra.sent, acks,
    doraDropPct,
    sendRatio,
    acksPerS: acks / seconds,
    latencyMs: { doAvg: p.do.avgMs, doMax: p.do.maxMs, raAvg: p.ra.avgMs, raMax: p.ra.maxMs },
    cpuUsPerExchange: acks > 0 ? serverTicks * 1e6 / CLK_TCK / acks : NaN,
    serverCpuPct: 100 * serverTicks / CLK_TCK / seconds,
    clientCpuPct: clientTicks !== undefined ? 100 * clientTicks / CLK_TCK / seconds : null,
    otherCores: Math.max(0, (m1.busy - m0.busy) - serverTicks - (clientTicks ?? 0)) / CLK_TCK / seconds,
    load1: round(l1, 2),
    perfdhcpRc: p.rc,
    report: p.report,
  }
  return { s, p }
}

interface StepRequest { phase: Step['phase']; rate: number; seconds: number; leases?: boolean }

/**
 * The highest offered rate that passes a sustained step: a ×2 ramp of short steps
 * brackets it, bisection with sustained steps narrows it. Only a sustained step
 * is ever reported. A generator: it yields the steps it wants and is given their
 * results, so that several servers' searches can be run in turn.
 */
function * findRate (): Generator<StepRequest, Step | undefined, Step> {
  let lo: number | undefined
  let hi: number | undefined
  let r = OPTS.rampStart
  const ramp = (rate: number): StepRequest => ({ phase: 'ramp', rate, seconds: OPTS.rampSeconds })
  if ((yield ramp(r)).pass) {
    lo = r
    while (r < OPTS.maxRate) {
      r = Math.min(r * 2, OPTS.maxRate)
      if (!(yield ramp(r)).pass) { hi = r; break }
      lo = r
    }
  } else {
    hi = r
    while (r > OPTS.minRate) {
      r = niceRate(r / 2)
      if ((yield ramp(r)).pass) { lo = r; break }
      hi = r
    }
  }
  if (lo === undefined) return undefined
  let best: Step | undefined
  if (hi !== undefined) {
    for (let i = 0; i < OPTS.bisections; i++) {
      const mid = niceRate((lo + hi) / 2)
      if (mid <= lo || mid >= hi) break
      const s = yield { phase: 'bisect', rate: mid, seconds: OPTS.seconds }
      if (s.pass) { lo = mid; best = s } else hi = mid
    }
  }
  // the reported figure comes from a sustained step: confirm the bracket's low end, stepping down if needed
  // (dnsmasq gets slower as its lease file grows, so a rate that passed early may fail later)
  for (let tries = 0; best === undefined && tries < 8 && lo >= OPTS.minRate; tries++) {
    const s = yield { phase: 'confirm', rate: lo, seconds: OPTS.seconds }
    if (s.pass) best = s
    else lo = niceRate(lo * 0.7)
  }
  return best
}

/**
 * Checks the addresses handed out, from both ends: the ACKs perfdhcp saw (-x l;
 * the MAC is known only when the server echoes the client identifier, which
 * dnsmasq does not, so for it only the address is checked), and the bound leases
 * in the server's own store after it stopped. Reserved MACs must have their
 * reserved address; otherwise addresses must be in the pool and never shared.
 */
function checkLeases (rows: readonly { mac?: string; ip: string }[], scenario: Scenario, res: readonly Reservation[], what: string): Check {
  const reserved = new Map(res.map((r) => [r.mac, r.ip]))
  const reservedIps = new Set(res.map((r) => r.ip))
  const [pf, pl] = [ip2n(SUBNET.poolFirst), ip2n(SUBNET.poolLast)]
  let ok = 0; let bad = 0; let withMac = 0
  const examples: string[] = []
  const owner = new Map<string, string>()
  for (const l of rows) {
    let problem: string | undefined
    if (l.mac !== undefined) withMac++
    if (scenario === 'reserved') {
      if (l.mac !== undefined) {
        const want = reserved.get(l.mac)
        if (want !== l.ip) problem = `${l.mac} got ${l.ip}, reserved ${want ?? 'none'}`
      } else if (!reservedIps.has(l.ip)) problem = `${l.ip} is not a reserved address`
    } else {
      const n = ip2n(l.ip)
      if (n < pf || n > pl) problem = `${l.mac ?? '?'} got ${l.ip}, outside the pool`
      if (l.mac !== undefined) {
        const o = owner.get(l.ip)
        if (o !== undefined && o !== l.mac) problem = `${l.ip} given to ${o} and ${l.mac}`
        owner.set(l.ip, l.mac)
      }
    }
    if (problem === undefined) ok++
    else { bad++; if (examples.length < 5) examples.push(problem) }
  }
  const macs = new Set(rows.flatMap((r) => r.mac !== undefined ? [r.mac] : []))
  if (scenario === 'pool' && what === 'store' && macs.size !== rows.length) {
    bad += rows.length - macs.size
    examples.push(`${rows.length - macs.size} MACs hold more than one address`)
  }
  return { rows: rows.length, withMac, distinctMacs: macs.size, ok, bad, examples }
}

function clientRows (p: PerfRun): { mac?: string; ip: string }[] {
  return p.leases.map((l) => l.clientId.startsWith('01') && l.clientId.length === 14
    ? { mac: l.clientId.slice(2).replace(/(..)(?!$)/g, '$1:'), ip: l.address }
    : { ip: l.address })
}

/** netboot with --cpu-prof at a fixed rate; the top self-time functions. */
async function profile (work: string, macFile: string, scenario: Scenario, res: readonly Reservation[], bestRate: number, keep: string): Promise<{ rate: number; summary: ProfileSummary; file: string } | undefined> {
  const dir = mkdtempSync(join(work, `profile-${scenario}-`))
  const profDir = join(dir, 'prof')
  mkdirSync(profDir)
  const rate = niceRate(bestRate * 0.9)
  log(`netboot --cpu-prof (${SCENARIO_LABEL[scenario]}) at ${rate}/s`)
  const topo = makeTopology()
  const run = await startServer('netboot', { ns: topo.server, dir, reservations: res, cpuProfDir: profDir })
  try {
    await ready(topo, macFile, run)
    await measureStep(topo, macFile, run, 'warmup', 300, 3, false)
    const { s } = await measureStep(topo, macFile, run, 'profile', rate, OPTS.seconds, false)
    log(`  profile run: drops ${round(s.doraDropPct, 2)}%, ${round(s.cpuUsPerExchange, 0)} µs/exchange (profiler on)`)
  } finally {
    await run.stop()
  }
  const f = readdirSync(profDir).find((n) => n.endsWith('.cpuprofile'))
  if (f === undefined) { log('  no .cpuprofile written'); return undefined }
  copyFileSync(join(profDir, f), keep)
  return { rate, summary: summarize(keep, ROOT), file: keep }
}

// ---- inputs and environment ------------------------------------------------

/** Deterministic random unicast, locally administered MACs; reservation i → 10.98.(128 + i/250).(1 + i%250). */
function clients (n: number, nReserved: number): { macs: string[]; reservations: Reservation[] } {
  let seed = 0x6e62_6264 // mulberry32
  const rnd = (): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const set = new Set<string>()
  while (set.size < n) {
    const b = [0x02, ...Array.from({ length: 5 }, () => Math.floor(rnd() * 256))]
    set.add(b.map((x) => x.toString(16).padStart(2, '0')).join(':'))
  }
  const macs = [...set]
  const reservations = macs.slice(0, nReserved).map((mac, i) => ({ mac, ip: `10.98.${128 + Math.floor(i / 250)}.${1 + (i % 250)}` }))
  return { macs, reservations }
}

function ip2n (ip: string): number { return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0) }

function environment () {
  const tryRun = (cmd: string, args: string[]): string => { try { return sh(cmd, args).trim() } catch (e) { return `(${(e as Error).message.split('\n')[0]})` } }
  const newest = (dir: string): { file: string; mtime: number } => {
    let best = { file: '', mtime: 0 }
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name)
        if (e.isDirectory()) walk(p)
        else if (e.name.endsWith('.ts')) { const m = statSync(p).mtimeMs; if (m > best.mtime) best = { file: p, mtime: m } }
      }
    }
    walk(dir)
    return best
  }
  const src = newest(join(ROOT, 'server'))
  const distM = statSync(NETBOOT_CLI).mtimeMs
  const foreign: string[] = []
  for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
      if (comm === 'kea-dhcp4' || comm === 'dnsmasq') foreign.push(`${comm}[${pid}]`)
    } catch {}
  }
  return {
    host: hostname(),
    kernel: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '?',
    loadavg: loadavg().map((x) => round(x, 2)),
    node: process.version,
    perfdhcp: tryRun('perfdhcp', ['-v']).replace(/^VERSION:\s*/, ''),
    kea: tryRun('kea-dhcp4', ['-v']),
    dnsmasq: (tryRun('dnsmasq', ['-v']).split('\n')[0] ?? '').replace(/\s+Copyright.*/, ''),
    netboot: {
      commit: tryRun('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
      uncommittedServerFiles: tryRun('git', ['-C', ROOT, 'status', '--porcelain', '--', 'server']).split('\n').filter(Boolean).length,
      distBuilt: new Date(distM).toISOString(),
      newestSource: src.file.replace(ROOT, ''),
      distStale: src.mtime > distM,
    },
    foreignDhcpServers: foreign,
  }
}

// ---- output ----------------------------------------------------------------

function ratios (results: Result[]): Record<string, { rate: number | null; cpuPerExchange: number | null }> {
  const out: Record<string, { rate: number | null; cpuPerExchange: number | null }> = {}
  for (const sc of OPTS.scenarios) {
    const nb = results.find((r) => r.server === 'netboot' && r.scenario === sc && r.logLevel === 'warn')?.best
    const kea = results.find((r) => r.server === 'kea' && r.scenario === sc)?.best
    out[`netboot/kea ${sc}`] = {
      rate: nb !== undefined && kea !== undefined ? round(nb.rate / kea.rate, 2) : null,
      cpuPerExchange: nb !== undefined && kea !== undefined ? round(nb.cpuUsPerExchange / kea.cpuUsPerExchange, 2) : null,
    }
  }
  return out
}

/** CPU per exchange in the 1000/s ramp step, when it passed: the same offered load for every server. */
function at1000 (r: Result): string {
  const s = r.steps.find((x) => x.phase === 'ramp' && x.rate === 1000 && x.pass)
  return s === undefined ? '-' : String(round(s.cpuUsPerExchange, 0))
}

function table (results: Result[], env: ReturnType<typeof environment>, rat: ReturnType<typeof ratios>, profiles: { scenario: Scenario; rate: number; summary: ProfileSummary }[]): string {
  const head = ['scenario', 'server', 'rate/s', 'ACK/s', 'drop %', 'DO avg/max ms', 'RA avg/max ms', 'CPU µs/exch', '@1000/s', '1-core ceil/s', 'srv CPU %', 'perfdhcp %', 'other cores', 'addresses ACK/store']
  const rows = results.map((r) => {
    const b = r.best
    const name = r.server === 'netboot' ? `netboot (${r.logLevel})` : r.server
    const c = (x?: Check): string => x === undefined ? '-' : x.bad === 0 ? `${x.ok}` : `BAD ${x.bad}/${x.rows}`
    const v = r.verify === undefined ? '-' : `${(r.verify.client?.bad ?? 0) + (r.verify.store?.bad ?? 0) === 0 ? 'ok' : 'BAD'} ${c(r.verify.client)} / ${c(r.verify.store)}`
    if (b === undefined) return [SCENARIO_LABEL[r.scenario], name, r.error !== undefined ? 'error' : `< ${OPTS.minRate}`, '', '', '', '', '', '', '', '', '', '', v]
    return [
      SCENARIO_LABEL[r.scenario], name, `${b.pass ? '' : 'FAIL '}${b.rate}${r.clientLimited ? '+' : ''}`, String(round(b.acksPerS, 0)), String(round(b.doraDropPct, 2)),
      `${round(b.latencyMs.doAvg, 2)} / ${round(b.latencyMs.doMax, 1)}`, `${round(b.latencyMs.raAvg, 2)} / ${round(b.latencyMs.raMax, 1)}`,
      String(round(b.cpuUsPerExchange, 0)), at1000(r), String(round(1e6 / b.cpuUsPerExchange / 50, 0) * 50), String(round(b.serverCpuPct, 0)), String(round(b.clientCpuPct ?? NaN, 0)), String(round(b.otherCores, 2)), v,
    ]
  })
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]): string => r.map((c, i) => i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!)).join('  ')
  const out = [
    '',
    `DHCP DORA benchmark (perfdhcp ${env.perfdhcp}, Kea ${env.kea}, ${env.dnsmasq}, node ${env.node}; netboot ${env.netboot.commit})`,
    `${env.cpus} CPUs (${env.cpuModel}); load average at start ${env.loadavg.join(' ')}; servers and perfdhcp ${OPTS.nice !== 0 ? `under nice -n ${OPTS.nice}` : 'at default priority'}; netboot log level warn unless marked`,
    'CPU µs/exch: server CPU (/proc utime+stime) per completed DORA at that rate (@1000/s: in the 1000/s ramp step, the same load for all); 1-core ceil/s = 1e6 / that (what one free core would sustain); other cores = CPU used meanwhile by other processes and the kernel',
    `rate/s: highest offered DORA rate with < ${OPTS.maxDropPct}% drops over ${OPTS.quick ? OPTS.quickSeconds : OPTS.seconds} s${OPTS.quick ? ' (quick: one fixed step, not a search)' : ''}; '+' = perfdhcp was the limit`,
    '',
    line(head),
    line(w.map((n) => '-'.repeat(n))),
    ...rows.map(line),
    '',
    ...results.filter((r) => r.error !== undefined).map((r) => `error: ${r.server} (${SCENARIO_LABEL[r.scenario]}): ${r.error!.split('\n').filter(Boolean).slice(0, 3).join(' | ')}`),
    ...Object.entries(rat).map(([k, v]) => `${k}: rate ${v.rate ?? '-'}×, CPU per exchange ${v.cpuPerExchange ?? '-'}×`),
  ]
  for (const p of profiles) {
    out.push('', `netboot CPU profile (${SCENARIO_LABEL[p.scenario]}, ${p.rate}/s, ${p.summary.busyMs} ms busy of ${p.summary.totalMs} ms), top self time:`)
    for (const f of p.summary.functions.slice(0, 12)) out.push(`  ${String(f.pct).padStart(5)}%  ${f.fn}  ${f.where}`)
    out.push('  by file:')
    for (const f of p.summary.files.slice(0, 8)) out.push(`  ${String(f.pct).padStart(5)}%  ${f.fn}`)
  }
  return out.join('\n') + '\n'
}

await main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  cleanup()
  process.exit(1)
})
