// Real peer: the agent TPM addon's resource and concurrency contract against
// swtpm (3 transient object slots, no resource manager): no transient object,
// session, socket or libuv handle outlives its Tpm; calls from JS are serialised
// per TPM in call order; the event loop keeps running while the TPM works.
// Fails, never skips, when swtpm, tpm2-tools or the built addon is missing.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { verifyQuote } from '../../server/attest/tpm/quote.js'
import { Tpm, TpmError, loadNative, type KeyAlg } from '../../agent/tpm/index.js'
import { startSwtpm, type Swtpm } from '../attest/swtpm-harness.js'
import { expectedTransient, openFds, parseHandleList, realPeerProblems, sha256, tctiOf, withTpm } from './helpers.js'

const problems = realPeerProblems()
if (problems.length > 0) {
  for (const p of problems) t.fail(p)
} else {
  let sw: Swtpm
  t.before(async () => {
    sw = await startSwtpm()
  })
  t.teardown(async () => {
    await sw?.stop()
  })

  /** What tpm2-tools sees loaded, on a fresh connection. */
  const toolsHandles = async () => ({
    transient: parseHandleList((await sw.tool('tpm2_getcap', ['handles-transient'])).stdout),
    loaded: parseHandleList((await sw.tool('tpm2_getcap', ['handles-loaded-session'])).stdout),
    saved: parseHandleList((await sw.tool('tpm2_getcap', ['handles-saved-session'])).stdout),
  })

  t.test('20 open/createAk/quote/close cycles leave no transient object, session, socket or libuv handle', async (t) => {
    // One cycle first, so lazily opened descriptors (the TSS's libraries, …) are counted in the baseline.
    await withTpm(sw, async (tpm) => {
      await tpm.createAk({ alg: 'ecc' })
    })
    const fds = openFds()
    const resources = process.getActiveResourcesInfo().sort()
    for (let i = 0; i < 20; i++) {
      const alg: KeyAlg = i % 2 === 0 ? 'rsa' : 'ecc'
      // swtpm has no persistent ECC EK: the ECC cycles create one, and close() must flush it.
      const loaded = await withTpm(sw, async (tpm) => {
        const ek = await tpm.readEk({ alg })
        const ak = await tpm.createAk({ alg })
        const q = await tpm.quote({ nonce: randomBytes(16), pcrs: [0, 1, 2, 3, 4, 5, 6, 7], bank: 'sha256' })
        const h = await tpm.handles()
        return { ek, ak, q, h }
      })
      if (loaded.q.attest.length === 0) t.fail(`cycle ${i}: empty quote`)
      t.same(loaded.h, { transient: expectedTransient(loaded.ek, loaded.ak), sessions: [] }, `cycle ${i} (${alg}): only the AK and a created EK are loaded while open`)
    }
    t.equal(openFds(), fds, 'no file descriptor leaked')
    t.same(process.getActiveResourcesInfo().sort(), resources, 'no libuv handle or request leaked')
    t.same(await toolsHandles(), { transient: [], loaded: [], saved: [] }, 'tpm2_getcap on a fresh connection: nothing left loaded')
  })

  t.test('createAk twice flushes the first AK; the created EK is made once; a failed call leaves nothing behind', async (t) => {
    await withTpm(sw, async (tpm) => {
      const ek = await tpm.readEk({ alg: 'ecc' })
      t.equal(ek.handle, 'created')
      const a = await tpm.createAk({ alg: 'ecc' })
      const b = await tpm.createAk({ alg: 'ecc' })
      t.same(await tpm.handles(), { transient: expectedTransient(ek, b), sessions: [] }, 'only the EK and the second AK')
      t.equal((await tpm.readEk({ alg: 'ecc' })).tpmHandle, ek.tpmHandle, 'the same created EK, not a second one')
      t.equal(tpm.ak?.handle, b.handle)
      t.not(a.name.toString('hex'), b.name.toString('hex'), 'a new key')
      await t.rejects(tpm.activateCredential({ credentialBlob: Buffer.from('00040002abcd', 'hex'), secret: Buffer.from('0002abcd', 'hex') }), TpmError)
      t.same(await tpm.handles(), { transient: expectedTransient(ek, b), sessions: [] }, 'the failed activation flushed its session')
      // The RSA EK is persistent on swtpm; the ECC one stays until close.
      await tpm.readEk({ alg: 'rsa' })
      t.same(await tpm.handles(), { transient: expectedTransient(ek, b), sessions: [] })
    })
    t.same(await toolsHandles(), { transient: [], loaded: [], saved: [] }, 'close flushed the AK and the created EK')
  })

  t.test('10 overlapping calls run one at a time, in call order, while the event loop keeps running', async (t) => {
    await withTpm(sw, async (tpm) => {
      await tpm.readEk({ alg: 'rsa' })
      const start = (await tpm.pcrRead({ pcrs: [16], bank: 'sha256' })).get(16)!

      let gaps = 0
      let last = performance.now()
      const timer = setInterval(() => {
        const now = performance.now()
        gaps = Math.max(gaps, now - last)
        last = now
      }, 2)
      const d = [randomBytes(32), randomBytes(32), randomBytes(32)]
      const n = [randomBytes(16), randomBytes(16), randomBytes(16)]
      const pcrs = [0, 16]
      const began = performance.now()
      // Issued without awaiting: the Tpm queues them; each depends on the one before.
      const calls = [
        tpm.createAk({ alg: 'rsa' }),                                   // 0: slow (RSA key generation)
        tpm.quote({ nonce: n[0]!, pcrs, bank: 'sha256' }),              // 1: needs the AK of call 0
        tpm.pcrExtend({ pcr: 16, digests: { sha256: d[0]! } }),         // 2
        tpm.quote({ nonce: n[1]!, pcrs, bank: 'sha256' }),              // 3: sees extend 2
        tpm.getRandom(48),                                              // 4
        tpm.pcrExtend({ pcr: 16, digests: { sha256: d[1]! } }),         // 5
        tpm.pcrRead({ pcrs: [16], bank: 'sha256' }),                    // 6: sees extends 2 and 5
        tpm.pcrExtend({ pcr: 16, digests: { sha256: d[2]! } }),         // 7
        tpm.quote({ nonce: n[2]!, pcrs, bank: 'sha256' }),              // 8: sees all three
        tpm.handles(),                                                  // 9
      ] as const
      const r = await Promise.all(calls)
      const elapsed = performance.now() - began
      clearInterval(timer)

      const ak = r[0]
      const pcr0 = (await tpm.pcrRead({ pcrs: [0], bank: 'sha256' })).get(0)!
      const p1 = sha256(start, d[0]!)
      const p2 = sha256(p1, d[1]!)
      const p3 = sha256(p2, d[2]!)
      const expect = [[r[1], n[0], start], [r[3], n[1], p1], [r[8], n[2], p3]] as const
      for (const [i, [q, nonce, v16]] of expect.entries()) {
        const v = verifyQuote({
          akPublic: ak.public, attest: q.attest, signature: q.signature, expectedNonce: nonce!,
          pcrs: pcrBanks([[TPM_ALG.SHA256, new Map([[0, pcr0], [16, v16]])]]),
        })
        t.equal(v.ok, true, v.ok ? `quote ${i + 1} verifies with PCR 16 as of its place in the queue` : `${v.reason}: ${v.message}`)
      }
      t.equal(r[4].length, 48, 'getRandom')
      t.equal(r[6].get(16)?.toString('hex'), p2.toString('hex'), 'pcrRead saw exactly the extends queued before it')
      t.same(r[9], { transient: [ak.handle], sessions: [] }, 'handles')
      t.ok(gaps < Math.max(100, elapsed / 3), `a 2 ms timer kept firing: longest gap ${gaps.toFixed(1)} ms over ${elapsed.toFixed(0)} ms`)
    })
  })

  t.test('a quote runs off the JavaScript thread', async (t) => {
    await withTpm(sw, async (tpm) => {
      await tpm.createAk({ alg: 'rsa' })
      for (let i = 0; i < 5; i++) {
        let turns = 0
        let spinning = true
        const spin = () => {
          if (!spinning) return
          turns++
          setImmediate(spin)
        }
        setImmediate(spin)
        await tpm.quote({ nonce: randomBytes(16), pcrs: [0, 1, 2, 3, 4, 5, 6, 7], bank: 'sha256' })
        spinning = false
        t.ok(turns > 0, `event-loop turns during quote ${i}: ${turns}`)
      }
    })
  })

  t.test('close: refuses new calls at once, lets queued ones finish, is idempotent', async (t) => {
    const tpm = await Tpm.open(tctiOf(sw))
    t.equal(tpm.state, 'open')
    const queued = tpm.createAk({ alg: 'ecc' })
    const closing = tpm.close()
    t.equal(tpm.state, 'closing')
    t.equal(tpm.close(), closing, 'the same promise')
    await t.rejects(tpm.getRandom(8), { code: 'ERR_TPM_CLOSED' }, 'a call after close()')
    const ak = await queued
    t.ok(ak.handle, 'the call queued before close() completed')
    await closing
    t.equal(tpm.state, 'closed')
    t.equal(tpm.ak, undefined)
    await t.rejects(tpm.quote({ nonce: Buffer.alloc(0), pcrs: [0], bank: 'sha256' }), { code: 'ERR_TPM_CLOSED' })
    t.same(await toolsHandles(), { transient: [], loaded: [], saved: [] }, 'the AK was flushed')
  })

  t.test('the addon itself: one work item per handle, type-tagged handles, no use after close', async (t) => {
    const n = loadNative()
    const h = await n.open(tctiOf(sw))
    const first = n.getRandom(h, 16)
    t.throws(() => n.getRandom(h, 16), { code: 'ERR_TPM_BUSY' }, 'a second call while one is in flight')
    t.equal((await first).length, 16)
    t.throws(() => n.quote({} as never, Buffer.alloc(0), [0], 'sha256'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }, 'not a handle')
    t.throws(() => n.readEk(h, 'dsa' as never), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => n.pcrRead(h, [], 'sha256'), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => n.pcrRead(h, [1.5], 'sha256'), { code: 'ERR_INVALID_ARG_VALUE' })
    await n.close(h)
    t.throws(() => n.getRandom(h, 16), { code: 'ERR_TPM_CLOSED' })
    t.throws(() => n.close(h), { code: 'ERR_TPM_CLOSED' })
  })
}
