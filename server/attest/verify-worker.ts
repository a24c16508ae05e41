/**
 * Worker thread of the attestation verifier (verify-pool.ts): runs each batch's
 * jobs (verify.ts, signatures checked in this thread) in order and answers the
 * batch with one message. Jobs never throw by contract; one that does anyway is
 * answered with its message, not with the thread's death.
 */
import { parentPort } from 'node:worker_threads'
import { verifyQuote } from './tpm/index.js'
import { VerifyState, challenge, finish } from './verify.js'
import { Packer, Unpacker, unpackJob, type JobMsg, type ResultMsg } from './verify-pool.js'

const state = new VerifyState()
const port = parentPort!

port.on('message', (msg: { jobs: JobMsg[]; buf: ArrayBuffer }) => {
  void run(msg).then((out) => port.postMessage(out, [out.buf]))
})
// the pool counts this thread as started from here (verify-pool.ts)
port.postMessage({ ready: true })

async function run (msg: { jobs: JobMsg[]; buf: ArrayBuffer }): Promise<{ res: ResultMsg[]; buf: ArrayBuffer }> {
  const u = new Unpacker(msg.buf)
  const p = new Packer()
  const res: ResultMsg[] = []
  for (const m of msg.jobs) {
    try {
      const j = unpackJob(m, u)
      if (j.k === 'c') {
        const r = challenge(state, j.job)
        res.push(r.ok ? { id: m.id, c: { ok: true }, n: [p.add(r.akName), p.add(r.secret), p.add(r.credentialBlob), p.add(r.encryptedSecret)] } : { id: m.id, c: r })
      } else {
        res.push({ id: m.id, f: await finish(state, j.job, verifyQuote) })
      }
    } catch (e) {
      res.push({ id: m.id, e: (e as Error).message })
    }
  }
  return { res, buf: p.finish() }
}
