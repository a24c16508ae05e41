/**
 * Where the pure part of an attestation (verify.ts) runs: worker threads, so the
 * event loop keeps serving (store, sessions, audit, tokens, HTTP) while another
 * core does MakeCredential, the quote's signature and the event log; or in place.
 *
 * Jobs submitted in one turn of the event loop go to a worker as one message
 * (a round trip costs 30-40 µs of event-loop time; a batch shares it). A node's
 * jobs always go to the same worker (by its EK digest), whose kept EK keys and
 * replayed logs are then that node's. Byte fields travel packed into one
 * ArrayBuffer per batch, transferred, not cloned: a Buffer view is cloned with its
 * whole backing store (the request body, or an 8 KiB pool slab, per field).
 *
 * A worker is referenced only while it has jobs in flight (an idle pool does not
 * keep the process alive). A worker that dies fails its jobs in flight (their
 * requests get a 500) and is replaced at the next job; one that fails before its
 * modules have loaded (no build, a TypeScript loader that does not reach worker
 * threads, no threads at all) makes the pool run every job in place, these too.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { verifyQuoteAsync } from './tpm/index.js'
import { VerifyState, challenge, finish, type ChallengeJob, type ChallengeResult, type FinishCheck, type FinishJob } from './verify.js'
import { workerScript } from '../worker-url.js'

export interface Verifier {
  challenge (job: ChallengeJob): Promise<ChallengeResult>
  finish (job: FinishJob): Promise<FinishCheck>
  /** Stops the worker threads (jobs in flight fail). */
  close (): Promise<void>
}

/** Worker threads by default: one fewer than the cores (the event loop has one), at least one, at most four. */
export function defaultVerifyThreads (): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1))
}

/** In place, on the event loop (ECDSA signatures on the libuv pool, as verifyQuoteAsync does). */
export class InPlaceVerifier implements Verifier {
  private readonly state = new VerifyState()
  async challenge (job: ChallengeJob): Promise<ChallengeResult> { return challenge(this.state, job) }
  async finish (job: FinishJob): Promise<FinishCheck> { return await finish(this.state, job, verifyQuoteAsync) }
  async close (): Promise<void> {}
}

// ---- the messages --------------------------------------------------------------

/** One job as it travels: its byte fields are `n` lengths into the batch's buffer, in the order of jobBytes. */
export type JobMsg =
  | { readonly id: number; readonly k: 'c'; readonly ek: string; readonly n: readonly number[] }
  | { readonly id: number; readonly k: 'f'; readonly m: FinishMeta; readonly n: readonly number[] }
export type FinishMeta = Omit<FinishJob, 'akPublic' | 'attest' | 'signature' | 'nonce' | 'bootKey' | 'eventLog' | 'pcrValues'> & { readonly pcrIdx: readonly number[] }
export type ResultMsg =
  | { readonly id: number; readonly c: { readonly ok: true }; readonly n: readonly number[] }
  | { readonly id: number; readonly c: Extract<ChallengeResult, { ok: false }> }
  | { readonly id: number; readonly f: FinishCheck }
  | { readonly id: number; readonly e: string }

/** Packs byte fields, in order, into one new ArrayBuffer (to transfer). */
export class Packer {
  private readonly parts: Uint8Array[] = []
  private size = 0
  add (b: Uint8Array): number {
    this.parts.push(b)
    this.size += b.length
    return b.length
  }

  finish (): ArrayBuffer {
    // a buffer of its own (never the shared pool's: it is transferred), not zero-filled: every byte is written below
    const out = Buffer.allocUnsafeSlow(this.size)
    let at = 0
    for (const p of this.parts) { out.set(p, at); at += p.length }
    return out.buffer
  }
}

/** Reads back what a Packer packed: views into `buf`, no copies. */
export class Unpacker {
  private at = 0
  constructor (private readonly buf: ArrayBuffer) {}
  take (n: number): Buffer {
    const b = Buffer.from(this.buf, this.at, n)
    this.at += n
    return b
  }
}

/** A job's byte fields in travel order, and the rest. */
export function packJob (id: number, job: { k: 'c'; job: ChallengeJob } | { k: 'f'; job: FinishJob }, p: Packer): JobMsg {
  if (job.k === 'c') {
    const j = job.job
    return { id, k: 'c', ek: j.ekSha256, n: [p.add(j.ekPublic), p.add(j.akPublic)] }
  }
  const { akPublic, attest, signature, nonce, bootKey, eventLog, pcrValues, ...rest } = job.job
  const n = [p.add(akPublic), p.add(attest), p.add(signature), p.add(nonce), p.add(bootKey), p.add(eventLog), ...pcrValues.map(([, v]) => p.add(v))]
  return { id, k: 'f', m: { ...rest, pcrIdx: pcrValues.map(([i]) => i) }, n }
}

export function unpackJob (m: JobMsg, u: Unpacker): { k: 'c'; job: ChallengeJob } | { k: 'f'; job: FinishJob } {
  if (m.k === 'c') return { k: 'c', job: { ekSha256: m.ek, ekPublic: u.take(m.n[0]!), akPublic: u.take(m.n[1]!) } }
  const { pcrIdx, ...meta } = m.m
  const [ak, at, sig, nonce, bk, log] = m.n.slice(0, 6).map((len) => u.take(len))
  const pcrValues = pcrIdx.map((i, k) => [i, u.take(m.n[6 + k]!)] as const)
  return { k: 'f', job: { ...meta, akPublic: ak!, attest: at!, signature: sig!, nonce: nonce!, bootKey: bk!, eventLog: log!, pcrValues } }
}

// ---- the pool --------------------------------------------------------------------

type AnyJob = { k: 'c'; job: ChallengeJob } | { k: 'f'; job: FinishJob }
interface Pending { resolve: (v: never) => void; reject: (e: unknown) => void; job: AnyJob }

interface Thread {
  worker: Worker
  queue: { id: number; job: AnyJob }[]
  inflight: Map<number, Pending>
  online: boolean
  dead: boolean
}

export class WorkerVerifier implements Verifier {
  private readonly threads: (Thread | undefined)[]
  private seq = 0
  private fallback?: InPlaceVerifier
  private closed = false

  /** `script`: the worker's module (tests name one that cannot load). */
  constructor (threads: number, private readonly script?: URL) {
    this.threads = new Array<Thread | undefined>(Math.max(1, threads)).fill(undefined)
  }

  /** Where jobs run now: worker threads, or in place since a thread failed to start. */
  get mode (): 'threads' | 'in-place' { return this.fallback !== undefined ? 'in-place' : 'threads' }
  /** Messages posted to the threads and jobs they carried, since the start (how well batching works). */
  readonly stats = { messages: 0, jobs: 0 }
  /** Threads started and alive (0 before the first job). */
  get running (): number { return this.threads.filter((t) => t !== undefined && !t.dead).length }

  async challenge (job: ChallengeJob): Promise<ChallengeResult> {
    if (this.fallback !== undefined) return await this.fallback.challenge(job)
    return await this.submit(job.ekSha256, { k: 'c', job })
  }

  async finish (job: FinishJob): Promise<FinishCheck> {
    if (this.fallback !== undefined) return await this.fallback.finish(job)
    return await this.submit(job.ekSha256, { k: 'f', job })
  }

  async close (): Promise<void> {
    this.closed = true
    await Promise.all(this.threads.map(async (t) => { if (t !== undefined) await t.worker.terminate() }))
    this.threads.fill(undefined)
  }

  private async submit<T> (route: string, job: AnyJob): Promise<T> {
    if (this.closed) throw new Error('attestation verifier closed')
    const i = parseInt(route.slice(0, 8), 16) % this.threads.length
    const t = this.thread(Number.isNaN(i) ? 0 : i)
    if (t === undefined) return await (job.k === 'c' ? this.fallback!.challenge(job.job) : this.fallback!.finish(job.job)) as T
    const id = ++this.seq
    return await new Promise<T>((resolve, reject) => {
      t.inflight.set(id, { resolve: resolve as (v: never) => void, reject, job })
      t.queue.push({ id, job })
      if (t.inflight.size === 1) t.worker.ref()
      if (t.queue.length === 1) setImmediate(() => this.flush(t))
    })
  }

  private flush (t: Thread): void {
    const batch = t.queue.splice(0)
    if (batch.length === 0 || t.dead) return
    const p = new Packer()
    const jobs = batch.map((b) => packJob(b.id, b.job, p))
    const buf = p.finish()
    this.stats.messages++
    this.stats.jobs += jobs.length
    t.worker.postMessage({ jobs, buf }, [buf])
  }

  /** Thread `i`, started if need be; undefined when no thread can be constructed (jobs then run in place). */
  private thread (i: number): Thread | undefined {
    const have = this.threads[i]
    if (have !== undefined && !have.dead) return have
    // Node flags are inherited, but a named CPU profile gets a name of its own (it would overwrite the
    // main thread's). Flags given explicitly are checked, and V8 ones (--expose-gc, --max-old-space-size)
    // are refused there (ERR_WORKER_INVALID_EXEC_ARGV): then, or for any other failure to construct the
    // thread, everything runs in place as for a thread that never started.
    const named = process.execArgv.some((a) => a.startsWith('--cpu-prof-name='))
    const execArgv = named ? process.execArgv.map((a) => a.startsWith('--cpu-prof-name=') ? `${a.replace(/\.cpuprofile$/, '')}-verify${i}.cpuprofile` : a) : undefined
    let worker: Worker
    try {
      worker = new Worker(this.script ?? workerScript(import.meta.url, 'verify-worker'), execArgv !== undefined ? { execArgv } : {})
    } catch {
      this.fallback ??= new InPlaceVerifier()
      return undefined
    }
    worker.unref()
    const t: Thread = { worker, queue: [], inflight: new Map(), online: false, dead: false }
    this.threads[i] = t
    // started = its modules loaded (it says so); Node's 'online' comes before that, so a thread whose
    // script cannot load (no build, a loader that does not reach workers) would look started
    worker.on('message', (msg: { ready: true } | { res: ResultMsg[]; buf: ArrayBuffer }) => { if ('ready' in msg) t.online = true; else this.answer(t, msg) })
    const die = (e: Error): void => {
      if (t.dead) return
      t.dead = true
      if (this.threads[i] === t) this.threads[i] = undefined
      const pending = [...t.inflight.values()]
      t.inflight.clear()
      if (!t.online && !this.closed) {
        // the worker never started: run everything in place from now on, these jobs included
        this.fallback ??= new InPlaceVerifier()
        const fb = this.fallback
        t.queue.length = 0
        for (const q of pending) {
          const r: Promise<unknown> = q.job.k === 'c' ? fb.challenge(q.job.job) : fb.finish(q.job.job)
          r.then(q.resolve as (v: unknown) => void, q.reject)
        }
        return
      }
      for (const q of pending) q.reject(e)
    }
    worker.on('error', die)
    worker.on('exit', (code) => die(new Error(`attestation verifier thread exited (code ${code})`)))
    return t
  }

  private answer (t: Thread, msg: { res: ResultMsg[]; buf: ArrayBuffer }): void {
    const u = new Unpacker(msg.buf)
    for (const r of msg.res) {
      const p = t.inflight.get(r.id)
      if (p === undefined) continue
      t.inflight.delete(r.id)
      if ('e' in r) p.reject(new Error(`attestation verifier: ${r.e}`))
      else if ('f' in r) (p.resolve as (v: FinishCheck) => void)(r.f)
      else if (r.c.ok) {
        const n = (r as { n: readonly number[] }).n
        ;(p.resolve as (v: ChallengeResult) => void)({ ok: true, akName: u.take(n[0]!), secret: u.take(n[1]!), credentialBlob: u.take(n[2]!), encryptedSecret: u.take(n[3]!) })
      } else (p.resolve as (v: ChallengeResult) => void)(r.c)
    }
    if (t.inflight.size === 0) t.worker.unref()
  }
}

let shared: { threads: number; verifier: Verifier } | undefined

/**
 * The process's verifier for `threads` worker threads (0: in place). Services
 * share one pool: a server has one attestation service, tests make many.
 */
export function sharedVerifier (threads = defaultVerifyThreads()): Verifier {
  if (threads <= 0) return new InPlaceVerifier()
  if (shared?.threads !== threads) shared = { threads, verifier: new WorkerVerifier(threads) }
  return shared.verifier
}
