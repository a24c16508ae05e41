/**
 * Attestation throughput benchmark: how many attestations per second the server
 * verifies on this machine, next to the raw node:crypto ceilings of the same
 * operations, measured in the same run. Method and figures: docs/bench-attest.md.
 *
 *   npx tsx bench/attest/run.ts [--quick] [--build] [--nodes N] [--rounds R]
 *        [--kinds rsa,ecc] [--stages ceilings,service,http] [--concurrency 64]
 *        [--batch 1000] [--profile] [--nice -10] [--quiet-wait MS] [--max-minutes M] [--dist DIR]
 *        [--server-node-args '--flag …'] [--verify-threads 0,1]
 *
 * (a) ceilings  node:crypto / jose on one core, and the server's building blocks.
 * (b) service   AttestationService (compiled, from dist/) with SQLite, tokens and
 *               the production logger: first boot of N nodes (tofu + learn), the
 *               admin approves, then R reboot rounds (enforce). The soft TPMs
 *               run in a thread of their own, between the timed server phases.
 * (c) http      the same against the node HTTP server (fastify on 127.0.0.1, in a
 *               child process running dist/ code), protobuf bodies, 64 in flight.
 *
 * The server code must be compiled (npm run build, or --build); the run refuses
 * sources newer than dist/. --dist measures another build instead (docs/bench-attest.md
 * shows how the "before" figures were made from a clean export of an older commit).
 * Writes bench/out/attest-<date>.json.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, hostname, loadavg, release } from 'node:os'
import { join } from 'node:path'
import type { KeyKind } from '../../test/sim/soft-tpm.js'
import { ceilings, type Ceiling } from './lib/ceilings.js'
import { ROOT, build, loadDist, staleSources } from './lib/dist.js'
import { httpRounds, type HttpResult } from './lib/http-stage.js'
import { startProfile, topSelfTime, type SelfTime } from './lib/profile.js'
import { waitQuiet } from './lib/measure.js'
import { approveAll, makeEnv, makeService, planImage, serviceRound, type RoundResult } from './lib/service-stage.js'

const argv = process.argv.slice(2)
const flag = (f: string): boolean => argv.includes(f)
const value = (f: string): string | undefined => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined }
const QUICK = flag('--quick')
const OPTS = {
  quick: QUICK,
  nodes: Number(value('--nodes') ?? (QUICK ? 300 : 2000)),
  rounds: Number(value('--rounds') ?? (QUICK ? 1 : 2)),
  kinds: (value('--kinds') ?? 'rsa,ecc').split(',') as KeyKind[],
  stages: (value('--stages') ?? 'ceilings,service,http').split(','),
  concurrency: Number(value('--concurrency') ?? 64),
  /** nodes per start/TPM/finish cycle: sessions live 60 s */
  batch: Number(value('--batch') ?? 1000),
  ceilingMs: QUICK ? 300 : 1500,
  /** a round stops issuing batches after this long */
  roundDeadlineMs: QUICK ? 60_000 : 300_000,
  /** before each round, wait up to this long for other processes to use less than quietCores */
  quietWaitMs: Number(value('--quiet-wait') ?? (QUICK ? 0 : 30_000)),
  quietCores: 0.3,
  profile: flag('--profile'),
  nice: Number(value('--nice') ?? -10),
  /** the whole run is stopped after this long */
  maxMinutes: Number(value('--max-minutes') ?? (QUICK ? 15 : 90)),
  build: flag('--build'),
  dist: value('--dist'),
  /** node flags for the HTTP server process (stage c), e.g. GC settings */
  serverNodeArgs: (value('--server-node-args') ?? '').split(' ').filter((a) => a !== ''),
  /**
   * The service's verifier threads (AttestationConfig.verifyThreads; 0: in place), one
   * or more: the service stage runs each reboot round once per value, in turn, on a
   * service of its own; the first boot and the HTTP server use the last. Unset: the
   * service's default.
   */
  verifyThreads: (value('--verify-threads') ?? '').split(',').filter((a) => a !== '').map(Number),
}

if (flag('-h') || flag('--help')) {
  process.stdout.write(`${(await import('node:fs')).readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*?|^ \* ?/gm, '')}\n`)
  process.exit(0)
}

// The measuring process is a child of this one: under `nice` (others share this machine, as bench/dhcp
// does), and killed if the whole run takes longer than --max-minutes (rounds are bounded one by one too).
if (process.env.NETBOOT_BENCH_CHILD !== '1') {
  const cmd = [process.execPath, ...process.execArgv, ...process.argv.slice(1)]
  const r = spawnSync(OPTS.nice !== 0 ? 'nice' : cmd[0]!, OPTS.nice !== 0 ? ['-n', String(OPTS.nice), ...cmd] : cmd.slice(1), {
    stdio: 'inherit', env: { ...process.env, NETBOOT_BENCH_CHILD: '1' }, timeout: OPTS.maxMinutes * 60_000, killSignal: 'SIGKILL',
  })
  if (r.error !== undefined || r.signal !== null) console.error(`benchmark stopped: ${r.error?.message ?? r.signal} (--max-minutes ${OPTS.maxMinutes}); the rounds done so far are in bench/out`)
  process.exit(r.status ?? 1)
}

if (OPTS.build) build()
const stale = OPTS.dist === undefined ? staleSources() : []
if (stale.length > 0) {
  console.error(`dist/ is older than ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ` and ${stale.length - 5} more` : ''}: run npm run build (or pass --build)`)
  process.exit(2)
}
const d = await loadDist(OPTS.dist)
const distNote = OPTS.dist === undefined ? 'dist/' : OPTS.dist

const when = new Date()
const stamp = when.toISOString().replace(/:/g, '-').replace(/\..*$/, '')
const OUT = join(ROOT, 'bench', 'out')
mkdirSync(OUT, { recursive: true })
const FILE = join(OUT, `attest-${stamp}.json`)
const log = (s: string): void => { process.stdout.write(`${s}\n`) }
const machine = {
  host: hostname(), cpus: cpus().length, model: cpus()[0]?.model ?? '?', kernel: release(), node: process.version,
  loadavgAtStart: loadavg().map((v) => Math.round(v * 100) / 100), uvThreadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
}
log(`netboot attestation benchmark, ${when.toISOString()}: ${machine.cpus} × ${machine.model}, node ${machine.node}, load ${machine.loadavgAtStart.join(' ')}`)

let ceilingRows: Ceiling[] = []
const serviceRows: RoundResult[] = []
const httpRows: HttpResult[] = []
const profiles: { what: string; file: string; busyMs: number; top: SelfTime[] }[] = []

// ---- (a) ----------------------------------------------------------------------
if (OPTS.stages.includes('ceilings')) {
  log(`\n(a) one core: node:crypto and jose, and the server’s building blocks (${distNote})`)
  ceilingRows = await ceilings(d, OPTS.ceilingMs)
  for (const c of ceilingRows) log(`  ${c.op.padEnd(96)} ${String(c.opsPerSec).padStart(9)} /s ${c.usPerOp.toFixed(1).padStart(8)} µs`)
  save()
}

// ---- (b) ----------------------------------------------------------------------
if (OPTS.stages.includes('service')) {
  log(`\n(b) AttestationService (${distNote}), ${OPTS.nodes} nodes, ${OPTS.concurrency} calls in flight, batches of ${OPTS.batch}`)
  for (const kind of OPTS.kinds) {
    const env = await makeEnv(d, kind, OPTS.nodes, OPTS.rounds)
    try {
      const ro = { concurrency: OPTS.concurrency, batch: OPTS.batch, deadlineMs: OPTS.roundDeadlineMs }
      const settings = OPTS.verifyThreads.length > 0 ? OPTS.verifyThreads : [undefined]
      const label = (t: number | undefined): string => t === undefined ? '' : `, ${t === 0 ? 'in place' : `${t} thread${t > 1 ? 's' : ''}`}`
      await quiet()
      const first = await serviceRound(await makeService(d, env, 'learn', settings.at(-1)), env.fleet, ro, { kind, round: `first boot: tofu enrollment, learn${label(settings.at(-1))}`, policy: 'learn' })
      serviceRows.push(first)
      printRound(first)
      save()
      await approveAll(env.store, env.fleet.nodes)
      await planImage(env.store)
      const svcs = await Promise.all(settings.map(async (t) => await makeService(d, env, 'enforce', t)))
      for (let r = 1; r <= OPTS.rounds; r++) {
        for (const [k, t] of settings.entries()) {
          await env.fleet.reboot()
          await quiet()
          const last = r === OPTS.rounds
          const file = join(OUT, `attest-${stamp}-service-${kind}${t === undefined ? '' : `-t${t}`}.cpuprofile`)
          const stop = OPTS.profile && last ? await startProfile(file) : undefined
          const rr = await serviceRound(svcs[k]!, env.fleet, ro, { kind, round: `reboot ${r}: enforce${label(t)}`, policy: 'enforce' })
          if (stop !== undefined) {
            await stop()
            const p = topSelfTime(file, ROOT)
            profiles.push({ what: `service ${kind} reboot ${r}${label(t)}`, file, busyMs: p.busyMs, top: p.functions })
          }
          serviceRows.push(rr)
          printRound(rr)
          save()
        }
      }
    } finally {
      await env.close()
    }
  }
}

// ---- (c) ----------------------------------------------------------------------
if (OPTS.stages.includes('http')) {
  log(`\n(c) HTTP: node server (fastify, ${distNote}) in a child process on 127.0.0.1, protobuf bodies, ${OPTS.concurrency} requests in flight`)
  for (const kind of OPTS.kinds) {
    const env = await makeEnv(d, kind, OPTS.nodes, OPTS.rounds)
    try {
      const rows = await httpRounds(env, kind, { ...OPTS, out: OUT, stamp, quiet }, (x) => { printHttp(x); httpRows.push(x); save() })
      for (const r of rows) if (r.profile !== undefined) profiles.push(r.profile)
    } finally {
      await env.close()
    }
  }
}

for (const p of profiles) {
  log(`\nprofile ${p.what}: ${p.busyMs} ms busy on the main thread, top self time (${p.file.replace(`${ROOT}/`, '')})`)
  for (const f of p.top) log(`  ${f.pct.toFixed(1).padStart(5)}%  ${f.fn.slice(0, 40).padEnd(40)} ${f.where}`)
}

save()
log(`\nwrote ${FILE.replace(`${ROOT}/`, '')}`)

/** Waits for a quiet machine before a round (bounded by --quiet-wait); says so when it waited or gave up. */
async function quiet (pids: readonly number[] = []): Promise<void> {
  if (OPTS.quietWaitMs <= 0) return
  const q = await waitQuiet(OPTS.quietCores, OPTS.quietWaitMs, pids)
  if (q.waitedMs > 600) log(`  (waited ${(q.waitedMs / 1000).toFixed(1)} s for other processes to calm down: ${q.othersCores} cores busy)`)
}

/** The results so far, rewritten after every round: a run stopped half way keeps what it measured. */
function save (): void {
  writeFileSync(FILE, `${JSON.stringify({
    benchmark: 'attestation', date: when.toISOString(), machine, options: OPTS,
    loadavgAtEnd: loadavg().map((v) => Math.round(v * 100) / 100),
    ceilings: ceilingRows, service: serviceRows, http: httpRows, profiles,
  }, null, 2)}\n`)
}

function printRound (r: RoundResult): void {
  log(`  ${r.kind.toUpperCase()} EK+AK  ${r.round.padEnd(36)} ${String(r.attestationsPerSec).padStart(7)} att/s  CPU ${String(r.cpuUsPerAttestation).padStart(6)} µs/att (start ${r.startCpuUs}, finish ${r.finishCpuUs}; main thread ${r.mainCpuUsPerAttestation})  ELU ${r.elu}  ok ${r.ok}/${r.nodes}${Object.keys(r.failures).length > 0 ? ` failed ${JSON.stringify(r.failures)}` : ''}  [TPM side ${r.tpmUsPerAttestation} µs; others ${r.othersCores} cores]${r.note !== undefined ? ` (${r.note})` : ''}`)
}

function printHttp (r: HttpResult): void {
  log(`  ${r.kind.toUpperCase()} EK+AK  ${r.round.padEnd(36)} ${String(r.attestationsPerSec).padStart(7)} att/s  server CPU ${String(r.serverCpuUsPerAttestation).padStart(6)} µs/att (main thread ${r.serverMainCpuUsPerAttestation})  start p50/p99 ${r.start.p50Ms}/${r.start.p99Ms} ms  finish p50/p99 ${r.finish.p50Ms}/${r.finish.p99Ms} ms  ok ${r.ok}/${r.nodes}${Object.keys(r.failures).length > 0 ? ` failed ${JSON.stringify(r.failures)}` : ''}  [client CPU ${r.clientCpuUsPerAttestation} µs; others ${r.othersCores} cores]`)
}
