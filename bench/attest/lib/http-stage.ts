/**
 * Stage (c): attestations through the node HTTP server. The server runs in a
 * child process (bench/attest/server.mjs: dist/ code, plain node); this process
 * is the fleet's agents, speaking protobuf over keep-alive HTTP/1.1 on 127.0.0.1
 * with `concurrency` requests in flight. Same phases as stage (b): all starts of
 * a batch, the TPM side (untimed, server idle), all finishes. Server CPU is the
 * child's own account (process.cpuUsage over IPC); both processes share the
 * machine's cores, so the client's CPU is reported too.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { attest, PROTOBUF_CONTENT_TYPE } from '../../../proto/index.js'
import type { KeyKind } from '../../../test/sim/soft-tpm.js'
import { DIST, ROOT } from './dist.js'
import type { FleetThread } from './fleet-thread.js'
import { percentile, pool, round, span, threadSeconds } from './measure.js'
import { topSelfTime, type SelfTime } from './profile.js'
import { PUBLIC_URL, approveAll, type Env } from './service-stage.js'

export interface Latency { p50Ms: number; p99Ms: number; maxMs: number }

export interface HttpResult {
  kind: KeyKind
  round: string
  policy: string
  nodes: number
  ok: number
  failures: Record<string, number>
  /** attestations ÷ wall time of the start and finish phases */
  attestationsPerSec: number
  /** the server process's CPU (all threads) per attestation */
  serverCpuUsPerAttestation: number
  /** the server's main thread (its event loop) */
  serverMainCpuUsPerAttestation: number
  /** the server's event-loop utilisation during the phases */
  serverElu: number
  /** this process's CPU per attestation in the phases (HTTP client, protobuf) */
  clientCpuUsPerAttestation: number
  start: Latency
  finish: Latency
  othersCores: number
}

interface Usage { cpuMs: number; elu: { idle: number; active: number } }

class ServerChild {
  private constructor (private readonly proc: ChildProcess, readonly port: number) {}

  static async start (env: Env, policy: 'learn' | 'enforce', nodeArgs: readonly string[], cpuProf?: { dir: string; name: string }, verifyThreads?: number): Promise<ServerChild> {
    const proc = fork(join(ROOT, 'bench', 'attest', 'server.mjs'), [], {
      execPath: process.execPath,
      execArgv: [...nodeArgs, ...(cpuProf !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf.dir}`, `--cpu-prof-name=${cpuProf.name}`] : [])],
      env: { ...process.env, NETBOOT_BENCH_SERVER: JSON.stringify({ dist: DIST, dbPath: env.dbPath, keysDir: env.keysDir, policy, publicUrl: PUBLIC_URL, verifyThreads }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bench server did not start in 30 s')), 30_000)
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bench server exited with ${code}`)) })
      proc.once('message', (m) => { clearTimeout(timer); resolve((m as { port: number }).port) })
    })
    return new ServerChild(proc, port)
  }

  get pid (): number { return this.proc.pid! }

  async usage (): Promise<Usage> {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no usage report in 10 s')), 10_000)
      this.proc.once('message', (m) => { clearTimeout(timer); resolve((m as { usage: Usage }).usage) })
      this.proc.send('usage')
    })
  }

  async stop (): Promise<void> {
    // a server that is gone already (crashed, killed) emits no more 'exit': waiting for one hung a run (21:29)
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()))
    this.proc.send('stop')
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }
}

function post (agent: Agent, port: number, path: string, body: Uint8Array): Promise<{ status: number; body: Buffer; ms: number }> {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, timeout: 30_000, headers: { 'content-type': PROTOBUF_CONTENT_TYPE, 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - t0 }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    req.end(body)
  })
}

function refusal (r: { status: number; body: Buffer }): Error & { code: string } {
  let code = `HTTP ${r.status}`
  try { code = (JSON.parse(r.body.toString()) as { error?: { code?: string } }).error?.code ?? code } catch { /* not JSON */ }
  return Object.assign(new Error(code), { code })
}

export interface HttpOptions {
  concurrency: number; batch: number; rounds: number; roundDeadlineMs: number; profile: boolean; out: string; stamp: string; serverNodeArgs: readonly string[]; verifyThreads: readonly number[]
  /** called before each round with the server's pid */
  quiet: (pids: readonly number[]) => Promise<void>
}

async function httpRound (srv: ServerChild, fleet: FleetThread, o: HttpOptions, label: { kind: KeyKind; round: string; policy: string }): Promise<HttpResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency })
  const lat = { start: [] as number[], finish: [] as number[] }
  const fails: Record<string, number> = {}
  const fail = (e: unknown): void => { const k = (e as { code?: string }).code ?? String(e); fails[k] = (fails[k] ?? 0) + 1 }
  let wallMs = 0
  let clientMs = 0
  let serverMs = 0
  let serverMainMs = 0
  let eluActive = 0
  let eluTotal = 0
  let othersCoreMs = 0
  let ok = 0
  let done = 0
  const timed = async <T>(f: () => Promise<T>): Promise<T> => {
    const u0 = await srv.usage()
    const m0 = threadSeconds(srv.pid)
    const s = span([srv.pid])
    const r = await f()
    const sp = s()
    serverMainMs += (threadSeconds(srv.pid) - m0) * 1000
    const u1 = await srv.usage()
    wallMs += sp.wallMs
    clientMs += sp.cpuMs
    othersCoreMs += sp.othersCores * sp.wallMs
    serverMs += u1.cpuMs - u0.cpuMs
    eluActive += u1.elu.active - u0.elu.active
    eluTotal += u1.elu.active - u0.elu.active + u1.elu.idle - u0.elu.idle
    return r
  }
  const t0 = Date.now()
  try {
    const n = fleet.nodes.length
    for (let b = 0; b < n && Date.now() - t0 < o.roundDeadlineMs; b += o.batch) {
      const size = Math.min(o.batch, n - b)
      const bodies = (await fleet.startRequests(b, b + size)).map((r) => attest.AttestStart.encode({ version: 1, macs: r.macs, ekPublic: r.ekPublic, akPublic: r.akPublic }).finish())
      const chs = await timed(async () => await pool(bodies, o.concurrency, async (body) => {
        const r = await post(agent, srv.port, '/attest/v1/start', body)
        if (r.status !== 200) throw refusal(r)
        lat.start.push(r.ms)
        return attest.AttestChallenge.decode(r.body)
      }))
      for (const c of chs) if (c.status === 'rejected') fail(c.reason)
      const fins = (await fleet.finishes(b, chs.map((c) => c.status === 'rejected'
        ? null
        : { session: c.value.session, credentialBlob: Buffer.from(c.value.credentialBlob), encryptedSecret: Buffer.from(c.value.encryptedSecret), nonce: Buffer.from(c.value.nonce), pcrs: c.value.pcrs, bank: c.value.bank })))
        .filter((f) => f !== null)
        .map((f) => attest.AttestFinish.encode({ ...f, pcrValues: Object.fromEntries(f.pcrValues) }).finish())
      const rs = await timed(async () => await pool(fins, o.concurrency, async (body) => {
        const r = await post(agent, srv.port, '/attest/v1/finish', body)
        if (r.status !== 200) throw refusal(r)
        lat.finish.push(r.ms)
        return attest.AttestResult.decode(r.body)
      }))
      for (const r of rs) if (r.status === 'rejected') fail(r.reason); else ok++
      done += size
    }
  } finally {
    agent.destroy()
  }
  const l = (xs: number[]): Latency => {
    const s = [...xs].sort((a, b) => a - b)
    return { p50Ms: round(percentile(s, 50), 2), p99Ms: round(percentile(s, 99), 2), maxMs: round(s.at(-1) ?? NaN, 2) }
  }
  const n = Math.max(1, ok)
  return {
    ...label, nodes: done, ok, failures: fails,
    attestationsPerSec: round((ok * 1000) / wallMs),
    serverCpuUsPerAttestation: round((serverMs * 1000) / n),
    serverMainCpuUsPerAttestation: round((serverMainMs * 1000) / n),
    serverElu: round(eluTotal > 0 ? eluActive / eluTotal : 0, 2),
    clientCpuUsPerAttestation: round((clientMs * 1000) / n),
    start: l(lat.start), finish: l(lat.finish),
    othersCores: round(othersCoreMs / wallMs, 2),
  }
}

export interface HttpRound { result: HttpResult; profile?: { what: string; file: string; busyMs: number; top: SelfTime[] } }

/** First boot (learn), approval, then `rounds` reboot rounds (enforce), each printed as it completes. */
export async function httpRounds (env: Env, kind: KeyKind, o: HttpOptions, print: (r: HttpResult) => void): Promise<HttpRound[]> {
  const out: HttpRound[] = []
  let srv = await ServerChild.start(env, 'learn', o.serverNodeArgs, undefined, o.verifyThreads.at(-1))
  try {
    await o.quiet([srv.pid])
    const r = await httpRound(srv, env.fleet, o, { kind, round: 'first boot: tofu enrollment, learn', policy: 'learn' })
    print(r)
    out.push({ result: r })
  } finally {
    await srv.stop()
  }
  await approveAll(env.store, env.fleet.nodes)
  const name = `attest-${o.stamp}-http-${kind}.cpuprofile`
  srv = await ServerChild.start(env, 'enforce', o.serverNodeArgs, o.profile ? { dir: o.out, name } : undefined, o.verifyThreads.at(-1))
  try {
    for (let i = 1; i <= o.rounds; i++) {
      await env.fleet.reboot()
      await o.quiet([srv.pid])
      const r = await httpRound(srv, env.fleet, o, { kind, round: `reboot ${i}: enforce`, policy: 'enforce' })
      print(r)
      out.push({ result: r })
    }
  } finally {
    await srv.stop()
  }
  if (o.profile) {
    const file = join(o.out, name)
    const p = topSelfTime(file, ROOT)
    out[out.length - 1]!.profile = { what: `HTTP server ${kind}, enforce rounds`, file, busyMs: p.busyMs, top: p.functions }
  }
  return out
}
