/**
 * The fleet's software TPMs (fleet.ts) in a worker thread (fleet-worker.ts). The
 * server under test runs in this process's main thread: before, the 2,000 TPMs'
 * objects and the garbage of their work (RSA keys, hash objects of every PCR
 * extend at reboot) shared its heap, and collecting them was billed to the timed
 * server phases. The thread's work happens between those phases, as before.
 *
 * What crosses: start requests out, challenges in, finish requests out (bytes are
 * copied, as a real server receives fresh bodies). Buffers arrive as Uint8Array and
 * are turned back into Buffers here.
 */
import { Worker } from 'node:worker_threads'
import type { Challenge } from '../../../server/attest/service.js'
import type { AttestFinishRequest, AttestStartRequest } from '../../../server/attest/wire.js'
import type { KeyKind } from '../../../test/sim/soft-tpm.js'

export type WireChallenge = Pick<Challenge, 'session' | 'credentialBlob' | 'encryptedSecret' | 'nonce' | 'pcrs' | 'bank'>
export type FleetRequest =
  | { op: 'start'; from: number; to: number }
  | { op: 'finish'; from: number; challenges: (WireChallenge | null)[] }
  | { op: 'reboot' }

/** A node of the fleet as the server's inventory knows it. */
export interface FleetNode { readonly name: string; readonly mac: string }

/** A Buffer over a structured clone's Uint8Array (no copy). */
export const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

export class FleetThread {
  private queue: Promise<unknown> = Promise.resolve()

  private constructor (private readonly worker: Worker, readonly nodes: readonly FleetNode[]) {}

  /** `n` nodes with TPMs of `kind` (fleet.ts makeFleet), built in the thread. */
  static async open (kind: KeyKind, n: number, prefix: string, rounds: number): Promise<FleetThread> {
    const worker = new Worker(new URL('./fleet-worker.mjs', import.meta.url), { workerData: { kind, n, prefix, rounds } })
    const nodes = await new Promise<FleetNode[]>((resolve, reject) => {
      const off = (): void => { worker.off('message', ready); worker.off('error', failed); worker.off('exit', exited) }
      const ready = (m: { ready: FleetNode[] }): void => { off(); resolve(m.ready) }
      const failed = (e: Error): void => { off(); reject(e) }
      const exited = (code: number): void => { off(); reject(new Error(`fleet thread exited (${code}) before it was ready`)) }
      worker.on('message', ready).on('error', failed).on('exit', exited)
    })
    return new FleetThread(worker, nodes)
  }

  /** AttestStart requests of nodes [from, to). */
  async startRequests (from: number, to: number): Promise<AttestStartRequest[]> {
    const rs = await this.call<AttestStartRequest[]>({ op: 'start', from, to })
    return rs.map((r) => ({ ...r, ekPublic: buf(r.ekPublic), ekCert: buf(r.ekCert), akPublic: buf(r.akPublic) }))
  }

  /**
   * The TPM side between start and finish (ActivateCredential, a boot key, the quote)
   * for nodes from, from + 1, …: one finish request per challenge, null where the
   * node's start failed.
   */
  async finishes (from: number, challenges: readonly (WireChallenge | null)[]): Promise<(AttestFinishRequest | null)[]> {
    const rs = await this.call<(AttestFinishRequest | null)[]>({ op: 'finish', from, challenges: [...challenges] })
    return rs.map((r) => r === null
      ? null
      : {
          ...r,
          credential: buf(r.credential), attest: buf(r.attest), signature: buf(r.signature), eventLog: buf(r.eventLog), bootKey: buf(r.bootKey),
          pcrValues: new Map([...r.pcrValues].map(([k, v]) => [k, buf(v)])),
        })
  }

  /** Every node reboots: a platform reset and a new AK (fleet.ts rebootAll). */
  async reboot (): Promise<void> { await this.call({ op: 'reboot' }) }

  async close (): Promise<void> { await this.worker.terminate() }

  /** One request at a time, answered in order. */
  private async call<T> (r: FleetRequest): Promise<T> {
    const next = this.queue.then(async () => await new Promise<T>((resolve, reject) => {
      const fail = (e: Error): void => { this.worker.off('message', ok); reject(e) }
      const ok = (m: { ok?: T; error?: string }): void => {
        this.worker.off('error', fail)
        if (m.error !== undefined) reject(new Error(`fleet thread: ${m.error}`)); else resolve(m.ok as T)
      }
      this.worker.once('message', ok)
      this.worker.once('error', fail)
      this.worker.postMessage(r)
    }))
    this.queue = next.catch(() => {})
    return await next
  }
}
