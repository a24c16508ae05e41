/**
 * The pure part of an attestation: what `start` and `finish` decide from the
 * request's bytes alone, with no store, session table, clock or log. It runs in
 * worker threads (verify-pool.ts) so that both cores work, or in place; the same
 * code either way, so the verdicts are the same.
 *
 *   challenge  the AK's public area decoded, its attributes checked, its Name
 *              computed (Part 1 §16), a fresh 32-byte secret wrapped for the EK and
 *              that Name by TPM2_MakeCredential (Part 3 §12.6).
 *   finish     the quote verified against the AK and SHA-256(nonce ‖ boot key)
 *              (Part 3 §18.4); the event log's SHA-256; the log replayed in the
 *              quoted bank and compared with the quoted PCRs (TCG PC Client PFP
 *              §10); the PCR 4 rule for a planned UKI (uki-rule.ts).
 *
 * Each answers the first refusal in the order the service has always checked
 * them, with the evidence gathered up to it. Kept state (`VerifyState`): RSA EK
 * KeyObjects by EK digest, replayed logs and UKI rule verdicts by log digest,
 * least recently used out; each is a pure function of what it is kept by.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto'
import type { ErrorCode } from '../errors.js'
import {
  TPM_ALG, algName, checkAkAttributes, computeName, decodeTpm2bPublic, makeCredential, pcrBanks, publicKeyObject,
  type QuoteVerdict, type TpmtPublic, type VerifyQuoteInput,
} from './tpm/index.js'
import { parseEventLog, replay, type TcgEvent } from './eventlog/index.js'
import { BOOT_APPLICATION_PCR, KERNEL_PARAMETERS_PCR, checkUkiCmdline, checkUkiMeasurement } from './uki-rule.js'
import type { AuthenticodeDigests } from '../store/store.js'

/** The unified kernel image the node's image serves to UEFI nodes (docs/uki.md). */
export interface PlannedUki {
  readonly sha256: string
  readonly authenticode: AuthenticodeDigests
  readonly linux?: AuthenticodeDigests
  /** The LoadOptions iPXE passes the UKI: `uki.efi <node command line>`; checked against PCR 12 when it is quoted. */
  readonly loadOptions?: string
  /**
   * The boot applications allowed to run before the UKI (the EFI binaries netboot
   * serves from tftp.ipxe_dir, and attestation.boot_applications): any other
   * application PCR 4 shows before the UKI is refused (uki-rule.ts `before`).
   * Undefined: not checked.
   */
  readonly before?: readonly AuthenticodeDigests[]
}

export interface ChallengeJob {
  /** SHA-256 of ekPublic, hex: the key RSA EK KeyObjects are kept by. */
  readonly ekSha256: string
  /** TPM2B_PUBLIC of the EK (the service has decoded it already and refused it if it does not decode). */
  readonly ekPublic: Uint8Array
  /** TPM2B_PUBLIC of the AK. */
  readonly akPublic: Uint8Array
}

export type ChallengeResult =
  | { readonly ok: true; readonly akName: Buffer; readonly secret: Buffer; readonly credentialBlob: Buffer; readonly encryptedSecret: Buffer }
  | { readonly ok: false; readonly code: ErrorCode; readonly why: string }

export interface FinishJob {
  /** The EK's digest (routes a node's jobs to the same worker, whose kept logs are its). */
  readonly ekSha256: string
  readonly akPublic: Uint8Array
  readonly attest: Uint8Array
  readonly signature: Uint8Array
  /** The session's nonce and the agent's boot key (JWK bytes): the quote's extraData is SHA-256(nonce ‖ bootKey). */
  readonly nonce: Uint8Array
  readonly bootKey: Uint8Array
  /** The claimed PCR values of the quoted bank. */
  readonly pcrValues: readonly (readonly [number, Uint8Array])[]
  /** Empty: the node sent no event log. */
  readonly eventLog: Uint8Array
  readonly pcrs: readonly number[]
  readonly bank: 'sha256' | 'sha1'
  readonly previousCounters?: { readonly resetCount: number; readonly restartCount: number }
  readonly uki?: PlannedUki
}

/**
 * What finish found. `logDigest`, `counters`, `events` and `uki` are the evidence
 * gathered before the verdict (counters once the quote verified, events once the
 * log replayed to it, uki once the rule ran); `refusal` is the first check that
 * failed, with the audit entry's extra fields.
 */
export interface FinishCheck {
  readonly logDigest?: string
  readonly counters?: { readonly resetCount: number; readonly restartCount: number }
  readonly events?: number
  readonly uki?: Record<string, unknown>
  readonly refusal?: { readonly code: ErrorCode; readonly why: string; readonly extra?: Record<string, unknown> }
}

const BANK_ALG = { sha256: TPM_ALG.SHA256, sha1: TPM_ALG.SHA1 } as const

/** Event-log replays kept: about 300 bytes each. */
const REPLAYED_LOGS = 16_384
/** RSA EK keys kept. */
const EK_KEYS = 16_384
/** UKI rule verdicts kept: a few hundred bytes each with their key. */
const UKI_VERDICTS = 16_384

type UkiCheck = { ok: true; evidence: Record<string, unknown> } | { ok: false; why: string; evidence: Record<string, unknown> }

/** Looks `key` up in an insertion-ordered map used as an LRU: a hit moves to the back. */
function lruGet<V> (m: Map<string, V>, key: string): V | undefined {
  const hit = m.get(key)
  if (hit !== undefined) {
    m.delete(key)
    m.set(key, hit)
  }
  return hit
}

function lruSet<V> (m: Map<string, V>, key: string, value: V, max: number): void {
  if (m.size >= max) m.delete(m.keys().next().value!)
  m.set(key, value)
}

/** The kept state of one verifier (one per worker thread, or one in place). */
export class VerifyState {
  private readonly replayed = new Map<string, { values: Buffer; events: number }>()
  private readonly ekKeys = new Map<string, KeyObject>()
  private readonly ukiVerdicts = new Map<string, UkiCheck>()

  /**
   * The KeyObject of an RSA EK, kept by its digest, least recently used out: a
   * node's EK never changes, and a kept key makes MakeCredential's OAEP cheaper
   * (credential.ts). ECC EKs need none (raw points). Undefined when the key does
   * not import: makeCredential then reports why.
   */
  ekKey (ekSha256: string, ek: TpmtPublic): KeyObject | undefined {
    if (ek.type !== TPM_ALG.RSA) return undefined
    const hit = lruGet(this.ekKeys, ekSha256)
    if (hit !== undefined) return hit
    const key = publicKeyObject(ek)
    if (!key.ok) return undefined
    lruSet(this.ekKeys, ekSha256, key.value, EK_KEYS)
    return key.value
  }

  /**
   * What the event log replays to: the policy PCRs of the quoted bank, concatenated
   * in `pcrs` order, and its number of events. Replay is a pure function of the
   * log's bytes, so results are kept by their SHA-256 (`digest`) and the PCR list:
   * a node sends the same log at every boot, and replaying a UEFI log is about a
   * hundred hash operations. `parsed`: the events, when this call parsed them.
   */
  replayLog (eventLog: Uint8Array, digest: string, bankAlg: number, pcrs: readonly number[]): { ok: true; values: Buffer; events: number; parsed?: readonly TcgEvent[] } | { ok: false; why: string } {
    const key = `${digest}:${bankAlg}:${pcrs.join(',')}`
    const hit = lruGet(this.replayed, key)
    if (hit !== undefined) return { ok: true, ...hit }
    const parsed = parseEventLog(Buffer.from(eventLog.buffer, eventLog.byteOffset, eventLog.byteLength))
    if (!parsed.ok) return { ok: false, why: `event log: ${parsed.error.message}` }
    const bank = replay(parsed.value.events, [bankAlg]).get(bankAlg)
    if (bank === undefined) return { ok: false, why: `the event log has no ${algName(bankAlg)} digest in every event: it cannot show how the quoted PCRs came about` }
    const entry = { values: Buffer.concat(pcrs.map((p) => bank[p]!)), events: parsed.value.events.length }
    lruSet(this.replayed, key, entry, REPLAYED_LOGS)
    return { ok: true, ...entry, parsed: parsed.value.events }
  }

  /**
   * The UKI rule's verdict on a log that replayed to the quote, kept by the log's
   * digest, the bank, the quoted PCRs and the expectation (`uki`): the rule is a
   * pure function of these, and without it every UEFI node's kept replay would
   * parse its whole log again for its PCR 4 and 12 events (~200 µs for a 38 KB log).
   */
  ukiVerdict (digest: string, job: FinishJob, check: () => UkiCheck): UkiCheck {
    // the expectation (allowed boot applications, a command line) can be a kilobyte: kept by its digest
    const key = `${digest}:${job.bank}:${job.pcrs.join(',')}:${createHash('sha256').update(JSON.stringify(job.uki)).digest('base64')}`
    const hit = lruGet(this.ukiVerdicts, key)
    if (hit !== undefined) return hit
    const verdict = check()
    lruSet(this.ukiVerdicts, key, verdict, UKI_VERDICTS)
    return verdict
  }
}

/** The AK checked and the credential made (see the header). */
export function challenge (state: VerifyState, job: ChallengeJob): ChallengeResult {
  const ek = decodeTpm2bPublic(job.ekPublic)
  if (!ek.ok) return { ok: false, code: 'ATTEST_BAD_REQUEST', why: `EK public area: ${ek.error.message}` }
  const ak = decodeTpm2bPublic(job.akPublic)
  if (!ak.ok) return { ok: false, code: 'ATTEST_BAD_REQUEST', why: `AK public area: ${ak.error.message}` }
  const attrs = checkAkAttributes(ak.value)
  if (!attrs.ok) return { ok: false, code: 'ATTEST_AK_ATTRIBUTES', why: `AK attributes: missing ${attrs.missing.join(', ') || '-'}, forbidden ${attrs.forbidden.join(', ') || '-'}` }
  const akName = computeName(ak.value)
  if (!akName.ok) return { ok: false, code: 'ATTEST_BAD_REQUEST', why: `AK name: ${akName.error.message}` }
  const secret = randomBytes(32)
  const ekKey = state.ekKey(job.ekSha256, ek.value)
  const cred = makeCredential({ ekPublic: ek.value, akName: akName.value, credential: secret, ...(ekKey !== undefined ? { ekKey } : {}) })
  if (!cred.ok) return { ok: false, code: 'ATTEST_BAD_REQUEST', why: `EK cannot receive a credential: ${cred.error.message}` }
  return { ok: true, akName: akName.value, secret, credentialBlob: cred.value.credentialBlob, encryptedSecret: cred.value.secret }
}

/**
 * The quote, the event log and the UKI rule (see the header). `verifyQuote`:
 * tpm/quote.ts's verifyQuote (in a worker) or verifyQuoteAsync (in place: ECDSA on
 * the libuv pool).
 */
export async function finish (state: VerifyState, job: FinishJob, verifyQuote: (i: VerifyQuoteInput) => QuoteVerdict | Promise<QuoteVerdict>): Promise<FinishCheck> {
  const hasLog = job.eventLog.length > 0
  const logDigest = hasLog ? createHash('sha256').update(job.eventLog).digest('hex') : undefined
  const base = logDigest !== undefined ? { logDigest } : {}
  const bankAlg = BANK_ALG[job.bank]
  const quoted = new Map(job.pcrValues.map(([i, v]) => [i, Buffer.from(v.buffer, v.byteOffset, v.byteLength)] as const))
  const verdict = await verifyQuote({
    akPublic: job.akPublic,
    attest: job.attest,
    signature: job.signature,
    expectedNonce: createHash('sha256').update(job.nonce).update(job.bootKey).digest(),
    pcrs: pcrBanks([[bankAlg, quoted]]),
    requiredPcrs: new Map([[bankAlg, [...job.pcrs]]]),
    ...(job.previousCounters !== undefined ? { previousCounters: job.previousCounters } : {}),
  })
  if (!verdict.ok) {
    const code: ErrorCode = verdict.reason === 'nonce-mismatch' ? 'ATTEST_NONCE_MISMATCH'
      : verdict.reason === 'pcr-digest-mismatch' || verdict.reason === 'pcr-value-missing' || verdict.reason === 'pcr-not-selected' ? 'ATTEST_PCR_MISMATCH'
        : 'ATTEST_BAD_QUOTE'
    return { ...base, refusal: { code, why: `quote: ${verdict.message}`, extra: { quote: verdict.reason } } }
  }
  const clock = verdict.attest.clockInfo
  const counters = { resetCount: clock.resetCount, restartCount: clock.restartCount }

  let parsedEvents: readonly TcgEvent[] | undefined
  let events: number | undefined
  if (logDigest !== undefined) {
    const log = state.replayLog(job.eventLog, logDigest, bankAlg, job.pcrs)
    if (!log.ok) return { ...base, counters, refusal: { code: 'ATTEST_EVENTLOG_MISMATCH', why: log.why } }
    const size = log.values.length / job.pcrs.length
    const bad = job.pcrs.filter((p, i) => !quoted.get(p)!.equals(log.values.subarray(i * size, (i + 1) * size)))
    if (bad.length > 0) return { ...base, counters, refusal: { code: 'ATTEST_EVENTLOG_MISMATCH', why: `the event log does not replay to PCR ${bad.join(', ')}` } }
    events = log.events
    parsedEvents = log.parsed
  }
  const withEvents = events !== undefined ? { ...base, counters, events } : { ...base, counters }
  if (job.uki === undefined) return withEvents
  const uki = logDigest !== undefined
    ? state.ukiVerdict(logDigest, job, () => checkUki(job, parsedEvents, hasLog, bankAlg))
    : checkUki(job, parsedEvents, hasLog, bankAlg)
  return uki.ok
    ? { ...withEvents, uki: uki.evidence }
    : { ...withEvents, uki: uki.evidence, refusal: { code: 'ATTEST_UKI_MISMATCH', why: uki.why, extra: { uki: uki.evidence } } }
}

/**
 * The PCR 4 rule (uki-rule.ts) for a node whose image has a UKI. Needs PCR 4 among
 * the quoted PCRs (else the log's PCR 4 events are unproven) and an event log: a
 * node that sends none cannot show what it booted, so it is refused. Runs after
 * the log has been proven against the quote.
 */
function checkUki (job: FinishJob, events: readonly TcgEvent[] | undefined, hasLog: boolean, bankAlg: number): UkiCheck {
  const uki = job.uki!
  const expected = uki.authenticode[job.bank]
  const base = { sha256: uki.sha256, bank: job.bank, expected }
  if (!job.pcrs.includes(BOOT_APPLICATION_PCR)) return { ok: false, why: `the node's image has a UKI, but PCR ${BOOT_APPLICATION_PCR} is not among attestation.pcrs, so what it booted cannot be checked`, evidence: { ...base, actual: [] } }
  if (!hasLog) return { ok: false, why: "the node's image has a UKI, but the node sent no event log: it cannot show that its firmware started the UKI (docs/uki.md)", evidence: { ...base, actual: [] } }
  // the events replayLog just parsed, or (its result was kept) the log parsed again
  const parsed = events !== undefined ? { ok: true as const, value: { events } } : parseEventLog(Buffer.from(job.eventLog.buffer, job.eventLog.byteOffset, job.eventLog.byteLength))
  if (!parsed.ok) return { ok: false, why: `event log: ${parsed.error.message}`, evidence: { ...base, actual: [] } }
  const linux = uki.linux?.[job.bank]
  const v = checkUkiMeasurement(parsed.value.events, bankAlg, {
    uki: Buffer.from(expected, 'hex'),
    ...(linux !== undefined ? { linux: Buffer.from(linux, 'hex') } : {}),
    ...(uki.before !== undefined ? { before: uki.before.map((d) => Buffer.from(d[job.bank], 'hex')) } : {}),
  })
  if (!v.ok) return { ok: false, why: v.why, evidence: { ...base, actual: v.actual } }
  if (v.basis !== 'uki-measured' || uki.loadOptions === undefined) return { ok: true, evidence: { ...base, basis: v.basis } }
  // the command line: only a quoted PCR 12 proves what the log says of it
  if (!job.pcrs.includes(KERNEL_PARAMETERS_PCR)) return { ok: true, evidence: { ...base, basis: v.basis, cmdline: 'not-quoted' } }
  const c = checkUkiCmdline(parsed.value.events, bankAlg, uki.loadOptions)
  return c.ok
    ? { ok: true, evidence: { ...base, basis: v.basis, cmdline: c.basis } }
    : { ok: false, why: c.why, evidence: { ...base, basis: v.basis, cmdline: { expected: c.expected, actual: c.actual } } }
}
