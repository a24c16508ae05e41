/**
 * The attestation verifier's worker threads (server/attest/verify-pool.ts) give
 * the verdicts of the same code run in place, for good requests and for every
 * altered one below, RSA and ECC: the challenge a soft TPM activates, the quote,
 * the event log and its replay, counters, refusal codes, messages and evidence.
 * The jobs really run in a worker thread (not the in-place fallback), many jobs
 * submitted at once come back each to its own caller, a thread that cannot load
 * falls back to in place without losing a job, and jobs after close fail.
 * About 10 s.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { InPlaceVerifier, WorkerVerifier, type Verifier } from '../../server/attest/verify-pool.js'
import type { ChallengeJob, FinishJob } from '../../server/attest/verify.js'
import { SoftTpm, type KeyKind } from '../sim/soft-tpm.js'

const PCRS = [0, 1, 2, 3, 4, 5, 6, 7]
const sha256hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const flip = (b: Uint8Array, at: number): Buffer => { const c = Buffer.from(b); c[at < 0 ? c.length + at : at]! ^= 1; return c }

function tpmOf (kind: KeyKind, platform = '02:00:00:00:00:01'): SoftTpm {
  return SoftTpm.create({ ek: kind, ak: kind, firmware: 'test firmware', banks: ['sha1', 'sha256'], firmwareEvents: 20, eventBytes: 64, platform })
}

/** A UKI's Authenticode digests (none of which the soft TPM's firmware measures). */
const AUTH = { sha1: 'a'.repeat(40), sha256: 'b'.repeat(64), sha384: 'c'.repeat(96), sha512: 'd'.repeat(128) }
const bootKey = Buffer.from(JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'B'.repeat(43) }))

/** A challenge job for `tpm`, and the finish job a correct agent answers it with. */
function finishJob (tpm: SoftTpm, nonce: Buffer, over: Partial<FinishJob> = {}): FinishJob {
  const q = tpm.quote(createHash('sha256').update(nonce).update(bootKey).digest(), PCRS, 'sha256')
  return {
    ekSha256: sha256hex(tpm.ekPublic), akPublic: tpm.akPublic, attest: q.attest, signature: q.signature, nonce, bootKey,
    pcrValues: [...q.pcrValues], eventLog: tpm.eventLog, pcrs: PCRS, bank: 'sha256', ...over,
  }
}

const inPlace = new InPlaceVerifier()
const threads = new WorkerVerifier(1)
t.teardown(async () => { await threads.close() })

for (const kind of ['rsa', 'ecc'] as const) {
  t.test(`${kind}: threads and in place agree`, async (t) => {
    const tpm = tpmOf(kind)
    const ch: ChallengeJob = { ekSha256: sha256hex(tpm.ekPublic), ekPublic: tpm.ekPublic, akPublic: tpm.akPublic }
    for (const [name, v] of [['in place', inPlace], ['threads', threads]] as [string, Verifier][]) {
      const c = await v.challenge(ch)
      if (!c.ok) throw new Error(`${name}: challenge refused: ${c.why}`)
      t.same(c.akName, tpm.akName, `${name}: the AK's Name`)
      t.same(tpm.activateCredential(c.credentialBlob, c.encryptedSecret), c.secret, `${name}: the TPM activates the credential to the secret`)
    }
    t.equal(threads.mode, 'threads', 'the jobs ran in a worker thread')
    t.equal(threads.running, 1, 'one thread started')

    // the AK's refusals at start
    const badAk: [string, ChallengeJob][] = [
      ['AK truncated', { ...ch, akPublic: tpm.akPublic.subarray(0, 20) }],
      ['AK attributes (the EK as AK)', { ...ch, akPublic: tpm.ekPublic }],
      ['AK name alg', { ...ch, akPublic: Buffer.concat([tpm.akPublic.subarray(0, 4), Buffer.from([0x00, 0x99]), tpm.akPublic.subarray(6)]) }],
    ]
    for (const [name, job] of badAk) {
      const a = await inPlace.challenge(job)
      t.equal(a.ok, false, `${name}: refused`)
      t.strictSame(await threads.challenge(job), a, `${name}: same refusal in a thread`)
    }

    const nonce = Buffer.alloc(32, 7)
    const good = finishJob(tpm, nonce)
    const g = await inPlace.finish(good)
    t.equal(g.refusal, undefined, 'a correct finish passes')
    t.equal(g.logDigest, sha256hex(tpm.eventLog), 'the log digest')
    t.same(g.counters, { resetCount: tpm.resetCount, restartCount: tpm.restartCount }, 'the counters')
    t.ok((g.events ?? 0) > 20, 'the log replayed')
    t.strictSame(await threads.finish(good), g, 'a correct finish: same in a thread')
    t.strictSame(await threads.finish(good), g, 'again, the replay kept')

    const other = tpmOf(kind, '02:00:00:00:00:02')
    const pv = good.pcrValues.map(([i, v]) => [i, i === 3 ? flip(v, 0) : v] as const)
    const rows: [string, FinishJob, string | undefined][] = [
      ['attest altered', { ...good, attest: flip(good.attest, -3) }, 'ATTEST_BAD_QUOTE'],
      ['signature altered', { ...good, signature: flip(good.signature, -5) }, 'ATTEST_BAD_QUOTE'],
      ['signature truncated', { ...good, signature: good.signature.subarray(0, 10) }, 'ATTEST_BAD_QUOTE'],
      ['another AK', { ...good, akPublic: other.akPublic }, 'ATTEST_BAD_QUOTE'],
      ['another nonce', { ...good, nonce: Buffer.alloc(32, 8) }, 'ATTEST_NONCE_MISMATCH'],
      ['another boot key', { ...good, bootKey: Buffer.from(bootKey.toString().replace('AAAA', 'AAAB')) }, 'ATTEST_NONCE_MISMATCH'],
      ['a PCR value altered', { ...good, pcrValues: pv }, 'ATTEST_PCR_MISMATCH'],
      ['a PCR value missing', { ...good, pcrValues: good.pcrValues.filter(([i]) => i !== 5) }, 'ATTEST_PCR_MISMATCH'],
      ['a PCR not quoted', { ...good, pcrs: [...PCRS, 9] }, 'ATTEST_PCR_MISMATCH'],
      ['counters rolled back', { ...good, previousCounters: { resetCount: tpm.resetCount + 1, restartCount: 0 } }, 'ATTEST_BAD_QUOTE'],
      ['another machine’s log', { ...good, eventLog: other.eventLog }, 'ATTEST_EVENTLOG_MISMATCH'],
      ['log truncated', { ...good, eventLog: good.eventLog.subarray(0, good.eventLog.length - 7) }, 'ATTEST_EVENTLOG_MISMATCH'],
      ['the sha1 bank asked, sha256 quoted', { ...good, bank: 'sha1', pcrValues: [...tpm.pcrValues('sha1', PCRS)] }, 'ATTEST_PCR_MISMATCH'],
      ['a UKI planned, the log shows no UEFI boot option (BIOS): passes, the rule’s evidence kept', { ...good, uki: { sha256: 'c'.repeat(64), authenticode: AUTH } }, undefined],
      ['a UKI planned, no log', { ...good, eventLog: Buffer.alloc(0), uki: { sha256: 'c'.repeat(64), authenticode: AUTH } }, 'ATTEST_UKI_MISMATCH'],
    ]
    for (const [name, job, code] of rows) {
      const a = await inPlace.finish(job)
      t.equal(a.refusal?.code, code, `${name}: ${code ?? 'no refusal'}`)
      t.strictSame(await threads.finish(job), a, `${name}: same verdict and evidence in a thread`)
    }
    t.match((await threads.finish(rows.find(([n]) => n.includes('BIOS'))![1])).uki, { basis: 'not-uefi' }, 'the UKI rule ran in the thread')
    const noLog = await threads.finish({ ...good, eventLog: Buffer.alloc(0) })
    t.strictSame(noLog, await inPlace.finish({ ...good, eventLog: Buffer.alloc(0) }), 'no event log: same')
    t.equal(noLog.logDigest, undefined, 'no event log: no digest')
  })
}

t.test('many jobs at once come back to their own callers', async (t) => {
  const tpms = Array.from({ length: 40 }, (_, i) => tpmOf(i % 2 === 0 ? 'ecc' : 'rsa', `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`))
  const cs = await Promise.all(tpms.map(async (tpm) => await threads.challenge({ ekSha256: sha256hex(tpm.ekPublic), ekPublic: tpm.ekPublic, akPublic: tpm.akPublic })))
  let activated = 0
  cs.forEach((c, i) => { if (c.ok && tpms[i]!.activateCredential(c.credentialBlob, c.encryptedSecret).equals(c.secret)) activated++ })
  t.equal(activated, tpms.length, 'each challenge is for its own TPM')
  const fs = await Promise.all(tpms.map(async (tpm, i) => await threads.finish(finishJob(tpm, Buffer.alloc(32, i)))))
  t.same(fs.map((f) => f.logDigest), tpms.map((tpm) => sha256hex(tpm.eventLog)), 'each finish is its own')
  t.ok(fs.every((f) => f.refusal === undefined), 'all pass')
})

t.test('a thread that cannot load its script: every job runs in place, the first ones too', async (t) => {
  const v = new WorkerVerifier(1, new URL('./no-such-verify-worker.js', import.meta.url))
  t.teardown(async () => { await v.close() })
  const tpm = tpmOf('ecc')
  const job = { ekSha256: sha256hex(tpm.ekPublic), ekPublic: tpm.ekPublic, akPublic: tpm.akPublic }
  const [a, b] = await Promise.all([v.challenge(job), v.challenge(job)])
  t.ok(a.ok && b.ok, 'both answered')
  if (a.ok) t.same(tpm.activateCredential(a.credentialBlob, a.encryptedSecret), a.secret, 'a credential the TPM activates')
  t.equal(v.mode, 'in-place')
  const f = await v.finish(finishJob(tpm, Buffer.alloc(32, 3)))
  t.equal(f.refusal, undefined, 'a finish in place passes')
})

t.test('node flags a worker thread refuses (a V8 flag given with a named CPU profile): every job runs in place', async (t) => {
  const saved = process.execArgv.slice()
  process.execArgv.push('--expose-gc', '--cpu-prof-name=verify-pool-test.cpuprofile')
  t.teardown(() => { process.execArgv.splice(0, process.execArgv.length, ...saved) })
  const v = new WorkerVerifier(1)
  t.teardown(async () => { await v.close() })
  const tpm = tpmOf('rsa')
  const c = await v.challenge({ ekSha256: sha256hex(tpm.ekPublic), ekPublic: tpm.ekPublic, akPublic: tpm.akPublic })
  t.ok(c.ok, 'the challenge is answered')
  t.equal(v.mode, 'in-place', 'in place')
  t.equal(v.running, 0, 'no thread')
  t.equal((await v.finish(finishJob(tpm, Buffer.alloc(32, 4)))).refusal, undefined, 'a finish in place passes')
})

t.test('inherited V8 flags (no explicit execArgv) reach the threads: a server run with --expose-gc still verifies in threads', async (t) => {
  process.execArgv.push('--expose-gc')
  t.teardown(() => { process.execArgv.splice(process.execArgv.indexOf('--expose-gc'), 1) })
  const v = new WorkerVerifier(1)
  t.teardown(async () => { await v.close() })
  const tpm = tpmOf('rsa')
  t.ok((await v.challenge({ ekSha256: sha256hex(tpm.ekPublic), ekPublic: tpm.ekPublic, akPublic: tpm.akPublic })).ok)
  t.equal(v.mode, 'threads')
})

t.test('after close, jobs fail', async (t) => {
  const v = new WorkerVerifier(2)
  const tpm = tpmOf('rsa')
  t.ok((await v.challenge({ ekSha256: sha256hex(tpm.ekPublic), ekPublic: tpm.ekPublic, akPublic: tpm.akPublic })).ok)
  await v.close()
  t.equal(v.running, 0)
  await t.rejects(v.challenge({ ekSha256: sha256hex(tpm.ekPublic), ekPublic: tpm.ekPublic, akPublic: tpm.akPublic }), /closed/)
})

t.test('UKI rule verdicts are kept by log digest, bank, quoted PCRs and the expectation, nothing less', async (t) => {
  const { VerifyState } = await import('../../server/attest/verify.js')
  const state = new VerifyState()
  const tpm = tpmOf('rsa')
  const job = finishJob(tpm, Buffer.alloc(32, 9), { uki: { sha256: 'c'.repeat(64), authenticode: AUTH } })
  let runs = 0
  const verdict = (ok: boolean) => () => { runs++; return ok ? { ok: true as const, evidence: { basis: 'uki-measured' } } : { ok: false as const, why: 'no', evidence: {} } }
  const digest = sha256hex(tpm.eventLog)
  t.equal(state.ukiVerdict(digest, job, verdict(true)).ok, true)
  t.equal(state.ukiVerdict(digest, job, verdict(false)).ok, true, 'the same log and expectation: the kept verdict')
  t.equal(runs, 1, 'the rule ran once')
  const changes: [string, string, FinishJob][] = [
    ['another log', 'e'.repeat(64), job],
    ['another UKI', digest, { ...job, uki: { sha256: 'f'.repeat(64), authenticode: AUTH } }],
    ['boot applications allowed before it', digest, { ...job, uki: { ...job.uki!, before: [AUTH] } }],
    ['a served command line', digest, { ...job, uki: { ...job.uki!, loadOptions: 'uki.efi quiet' } }],
    ['another bank', digest, { ...job, bank: 'sha1' }],
    ['other quoted PCRs', digest, { ...job, pcrs: [...PCRS, 12] }],
  ]
  for (const [name, d, j] of changes) {
    t.equal(state.ukiVerdict(d, j, verdict(false)).ok, false, `${name}: judged again`)
  }
  t.equal(runs, 1 + changes.length, 'the rule ran once per expectation')
})
