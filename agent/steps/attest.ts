/**
 * Steps `attest` and `pending` (and the TPM half of `discover`): the client side
 * of proto/attest.proto, DESIGN.md "Attestation, in one paragraph".
 *
 *   keys     EK (persistent or from the TCG template) and its certificate; an AK
 *            created under it (TPM.md "Agent side")
 *   start    POST /attest/v1/start  AttestStart{MACs, EK, EK cert, AK, DMI, image}
 *            → AttestChallenge, or a refusal: ATTEST_PENDING / ATTEST_UNKNOWN_NODE
 *            mean "an admin has to decide" (state `pending`)
 *   finish   TPM2_ActivateCredential (Part 3 §12.5) recovers the server's secret;
 *            TPM2_Quote (Part 3 §18.4) over the asked PCRs with qualifyingData =
 *            SHA-256(nonce ‖ boot key); POST /attest/v1/finish → AttestResult
 *
 * The answer is checked before anything trusts it: the token's subject and
 * cnf.jkt (RFC 7800) must be this node and this boot key, its `img` claim must
 * name the same rootfs digest, the rootfs URL must be http(s) and the digest 64
 * hex digits. The rootfs digest comes from here, never from the command line.
 */
import { createHash } from 'node:crypto'
import { decodeJwt } from 'jose'
import { attest as wire, PROTOBUF_CONTENT_TYPE } from '../../proto/index.js'
import type { Tpm, AttestationKey, EndorsementKey, KeyAlg, PcrBank } from '../tpm/index.js'
import { equalJitter, secs, type Backoff, type Random } from '../backoff.js'
import { qualifyingData, type BootKey } from '../bootkey.js'
import type { AgentCmdline } from '../cmdline.js'
import { AgentError, type FailureClass } from '../errors.js'
import type { HardwareFacts } from '../hardware.js'
import { busyError, isBusy, refusalOf, type ServerApi, type ServerRefusal } from '../http.js'
import type { AgentLog } from '../log.js'

export const PROTOCOL_VERSION = 1

export interface TpmKeys {
  readonly ek: EndorsementKey
  readonly ak: AttestationKey
  /** SHA-256 of the EK's TPM2B_PUBLIC: the identity the server keys enrollments on. */
  readonly ekSha256: string
}

export interface Challenge {
  readonly session: string
  readonly credentialBlob: Buffer
  readonly encryptedSecret: Buffer
  readonly nonce: Buffer
  readonly pcrs: readonly number[]
  readonly bank: PcrBank
  /** Local clock when it arrived: a carried challenge is used only while fresh. */
  readonly receivedAt: number
}

export interface Attested {
  readonly token: string
  /** Seconds since the epoch, by the server's clock. */
  readonly expiresAt: number
  readonly node: string
  readonly groups: readonly string[]
  readonly attestationId: string
  readonly rootfs?: { readonly url: string; readonly sha256: string }
}

export interface AttestDeps {
  readonly api: ServerApi
  readonly tpm: Tpm
  readonly bootKey: BootKey
  readonly facts: HardwareFacts
  readonly cmdline: AgentCmdline
  readonly log: AgentLog
}

/** The server's session lifetime is 60 s (server/attest/setup.ts); use a carried challenge only well within it. */
export const CHALLENGE_FRESH_MS = 30_000

function tpmError (what: string, e: unknown): AgentError {
  return new AgentError('AGENT_TPM', 'tpm', `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e })
}

/**
 * Reads the EK (RSA first — the one manufacturers certify — then ECC, unless one is
 * asked for) and creates the AK under it. ECC P-256 AKs by default: a TPM makes one
 * in milliseconds where an RSA-2048 key generation can take seconds.
 */
export async function prepareKeys (tpm: Tpm, log: AgentLog, o: { ekAlg?: KeyAlg; akAlg?: KeyAlg; step?: string } = {}): Promise<TpmKeys> {
  const algs: KeyAlg[] = o.ekAlg !== undefined ? [o.ekAlg] : ['rsa', 'ecc']
  let ek: EndorsementKey | undefined
  let lastError: unknown
  for (const alg of algs) {
    try {
      ek = await tpm.readEk({ alg })
      break
    } catch (e) {
      lastError = e
    }
  }
  if (ek === undefined) throw tpmError('reading the endorsement key', lastError)
  let ak: AttestationKey
  try {
    ak = await tpm.createAk({ alg: o.akAlg ?? 'ecc' })
  } catch (e) {
    throw tpmError('creating the attestation key', e)
  }
  const ekSha256 = createHash('sha256').update(ek.public).digest('hex')
  log.info(o.step ?? 'attest', `TPM: EK ${ak.ek.toUpperCase()} sha256:${ekSha256.slice(0, 16)}… (${ek.handle}${ek.cert !== undefined ? ', with certificate' : ', no certificate'}), AK ${ak.alg.toUpperCase()} created`)
  return { ek, ak, ekSha256 }
}

type Refused = { readonly kind: 'refused'; readonly refusal: ServerRefusal }

async function postProto (api: ServerApi, failure: FailureClass, path: string, body: Uint8Array): Promise<{ kind: 'ok'; body: Buffer } | Refused> {
  const r = await api.request(failure, 'POST', path, { body, headers: { 'content-type': PROTOBUF_CONTENT_TYPE, accept: PROTOBUF_CONTENT_TYPE } })
  if (r.status === 200) return { kind: 'ok', body: r.body }
  const refusal = refusalOf(r.status, r.headers, r.body)
  if (isBusy(r.status)) throw busyError(failure, `POST ${path}`, refusal)
  return { kind: 'refused', refusal }
}

/** Refusals that mean "wait for an admin". */
export function isPendingRefusal (r: ServerRefusal): boolean {
  return r.code === 'ATTEST_PENDING' || r.code === 'ATTEST_UNKNOWN_NODE'
}

/** A refusal that is not "pending", as the error the step fails with. */
export function refusalError (what: string, r: ServerRefusal, failure: FailureClass = 'refused'): AgentError {
  const tail = `${r.code ?? `HTTP ${r.status}`}${r.message !== '' ? `: ${r.message}` : ''}`
  if (r.code === 'ATTEST_REJECTED') return new AgentError('AGENT_ATTEST_REJECTED', failure, `${what}: ${tail}`, { serverCode: r.code })
  if (r.code === undefined) {
    return new AgentError('AGENT_ATTEST_REFUSED', failure, `${what}: HTTP ${r.status} without a netboot error${r.status === 404 ? ' (is attestation enabled on the server?)' : ''}${r.message !== '' ? `: ${r.message}` : ''}`)
  }
  // A session that expired between start and finish, or PCRs that moved between
  // reading and quoting: a fresh attestation can succeed.
  const retryable = r.code === 'ATTEST_SESSION_UNKNOWN' || r.code === 'ATTEST_PCR_MISMATCH'
  return new AgentError('AGENT_ATTEST_REFUSED', failure, `${what}: refused: ${tail}`, { retryable, serverCode: r.code })
}

export function startMessage (d: AttestDeps, keys: TpmKeys): Uint8Array {
  const { cmdline, facts } = d
  return wire.AttestStart.encode({
    version: PROTOCOL_VERSION,
    ...(cmdline.node !== undefined ? { nodeHint: cmdline.node } : {}),
    macs: [...facts.macs],
    ekPublic: keys.ek.public,
    ...(keys.ek.cert !== undefined ? { ekCert: keys.ek.cert } : {}),
    akPublic: keys.ak.public,
    ...(cmdline.image !== undefined ? { image: `${cmdline.image.name}@sha256:${cmdline.image.sha256}` } : {}),
    hardware: { ...facts.hardware },
  }).finish()
}

/** POST /attest/v1/start: a challenge, or the server's refusal as given. */
export async function start (d: AttestDeps, keys: TpmKeys, failure: FailureClass = 'refused'): Promise<{ kind: 'challenge'; challenge: Challenge } | Refused> {
  if (d.facts.macs.length === 0) throw new AgentError('AGENT_ATTEST_INVALID', failure, 'no network interface with a MAC address was found in sysfs: the server identifies nodes by MAC')
  const r = await postProto(d.api, failure, '/attest/v1/start', startMessage(d, keys))
  if (r.kind === 'refused') return r
  let m: ReturnType<typeof wire.AttestChallenge.decode>
  try {
    m = wire.AttestChallenge.decode(r.body)
  } catch (e) {
    throw new AgentError('AGENT_ATTEST_INVALID', failure, `the challenge is not an AttestChallenge: ${(e as Error).message}`)
  }
  const bank = m.bank === '' ? 'sha256' : m.bank
  if (bank !== 'sha256' && bank !== 'sha1') throw new AgentError('AGENT_ATTEST_INVALID', failure, `the server asks for PCR bank '${m.bank}' (only sha256 and sha1 exist here)`)
  if (m.session === '' || m.nonce.length === 0 || m.credentialBlob.length === 0 || m.encryptedSecret.length === 0) {
    throw new AgentError('AGENT_ATTEST_INVALID', failure, 'the challenge lacks a session, nonce, credential blob or secret')
  }
  if (m.pcrs.length === 0 || m.pcrs.length > 24 || !m.pcrs.every((p) => Number.isInteger(p) && p >= 0 && p <= 23)) {
    throw new AgentError('AGENT_ATTEST_INVALID', failure, `the challenge asks for PCRs [${m.pcrs.join(', ')}] (1 to 24 indices 0-23)`)
  }
  return {
    kind: 'challenge',
    challenge: {
      session: m.session, credentialBlob: Buffer.from(m.credentialBlob), encryptedSecret: Buffer.from(m.encryptedSecret), nonce: Buffer.from(m.nonce),
      pcrs: [...new Set(m.pcrs)].sort((a, b) => a - b), bank, receivedAt: d.api.clock.now(),
    },
  }
}

/**
 * Reads the PCRs, quotes them, reads them again: equal reads mean the values sent
 * are the ones quoted (TPM2_Quote does not return them). Three tries.
 */
async function quoteStable (tpm: Tpm, nonce: Buffer, pcrs: readonly number[], bank: PcrBank): Promise<{ attest: Buffer; signature: Buffer; values: Map<number, Buffer> }> {
  for (let i = 0; i < 3; i++) {
    const before = await tpm.pcrRead({ pcrs, bank })
    const q = await tpm.quote({ nonce, pcrs, bank })
    const after = await tpm.pcrRead({ pcrs, bank })
    if ([...before].every(([k, v]) => after.get(k)?.equals(v) === true)) return { attest: q.attest, signature: q.signature, values: after }
  }
  throw new AgentError('AGENT_TPM', 'tpm', 'the quoted PCRs kept changing while they were read (three tries)', { retryable: true })
}

/** ActivateCredential, quote, POST /attest/v1/finish, and the checks on the answer. */
export async function finish (d: AttestDeps, keys: TpmKeys, ch: Challenge): Promise<{ kind: 'attested'; attested: Attested } | Refused> {
  const { tpm, bootKey } = d
  let credential: Buffer
  try {
    credential = await tpm.activateCredential({ credentialBlob: ch.credentialBlob, secret: ch.encryptedSecret })
  } catch (e) {
    throw tpmError('TPM2_ActivateCredential on the server\'s challenge', e)
  }
  let q: Awaited<ReturnType<typeof quoteStable>>
  try {
    q = await quoteStable(tpm, qualifyingData(ch.nonce, bootKey), ch.pcrs, ch.bank)
  } catch (e) {
    throw e instanceof AgentError ? e : tpmError(`TPM2_Quote of ${ch.bank} PCRs ${ch.pcrs.join(',')}`, e)
  }
  const body = wire.AttestFinish.encode({
    session: ch.session, credential, attest: q.attest, signature: q.signature,
    pcrValues: Object.fromEntries([...q.values].map(([i, v]) => [i, v])), eventLog: d.facts.eventLog, bootKey: bootKey.bytes,
  }).finish()
  const r = await postProto(d.api, 'refused', '/attest/v1/finish', body)
  if (r.kind === 'refused') return r
  return { kind: 'attested', attested: checkResult(r.body, bootKey) }
}

/** Decodes and checks an AttestResult against itself and this boot key. */
export function checkResult (body: Uint8Array, bootKey: BootKey): Attested {
  const bad = (why: string): AgentError => new AgentError('AGENT_ATTEST_INVALID', 'refused', `the attestation result ${why}`)
  let m: ReturnType<typeof wire.AttestResult.decode>
  try {
    m = wire.AttestResult.decode(body)
  } catch (e) {
    throw bad(`is not an AttestResult: ${(e as Error).message}`)
  }
  if (m.token === '' || m.node === '') throw bad('lacks the token or the node name')
  let claims: ReturnType<typeof decodeJwt>
  try {
    claims = decodeJwt(m.token)
  } catch {
    throw bad('carries a token that is not a JWT')
  }
  if (claims.sub !== m.node) throw bad(`names node ${m.node} but its token is for ${String(claims.sub)}`)
  const cnf = claims.cnf as { jkt?: unknown } | undefined
  if (cnf?.jkt !== bootKey.thumbprint) throw bad('carries a token bound to another key than this boot key (cnf.jkt)')
  const hasUrl = m.rootfsUrl !== ''
  const hasSha = m.rootfsSha256 !== ''
  if (hasUrl !== hasSha) throw bad('has a rootfs URL without a digest, or a digest without a URL')
  let rootfs: Attested['rootfs']
  if (hasUrl) {
    if (!/^[0-9a-f]{64}$/.test(m.rootfsSha256)) throw bad(`has a rootfs digest that is not 64 lower-case hex digits: ${m.rootfsSha256.slice(0, 80)}`)
    let u: URL
    try { u = new URL(m.rootfsUrl) } catch { throw bad(`has a rootfs URL that is not a URL: ${m.rootfsUrl.slice(0, 200)}`) }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(`has a rootfs URL with scheme ${u.protocol}`)
    if (typeof claims.img === 'string' && !claims.img.endsWith(`@sha256:${m.rootfsSha256}`)) {
      throw bad(`names rootfs sha256:${m.rootfsSha256.slice(0, 16)}… but its token was issued for ${claims.img}`)
    }
    rootfs = { url: u.href, sha256: m.rootfsSha256 }
  }
  // int64: a number, or a Long when protobufjs found the `long` package
  const expiresAt = Number(m.expiresAt)
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0) throw bad(`has no usable expiry (${String(m.expiresAt)})`)
  return { token: m.token, expiresAt, node: m.node, groups: [...m.groups], attestationId: m.attestationId, ...(rootfs !== undefined ? { rootfs } : {}) }
}

export type AttestOutcome =
  | { readonly kind: 'attested'; readonly attested: Attested & { readonly rootfs: { readonly url: string; readonly sha256: string } } }
  | { readonly kind: 'pending'; readonly refusal: ServerRefusal }
  | { readonly kind: 'stale'; readonly attested: Attested; readonly planned: string }

/**
 * The `attest` step (boot mode): start (or a fresh challenge carried over from
 * `pending`), finish, checks. `stale` when the server's rootfs is not the image the
 * command line names: this kernel belongs to another image.
 */
export async function attestStep (d: AttestDeps, keys: TpmKeys, carried?: Challenge): Promise<AttestOutcome> {
  let ch = carried !== undefined && d.api.clock.now() - carried.receivedAt < CHALLENGE_FRESH_MS ? carried : undefined
  if (ch === undefined) {
    const s = await start(d, keys)
    if (s.kind === 'refused') {
      if (isPendingRefusal(s.refusal)) return { kind: 'pending', refusal: s.refusal }
      throw refusalError('attestation start', s.refusal)
    }
    ch = s.challenge
  }
  const f = await finish(d, keys, ch)
  if (f.kind === 'refused') {
    if (isPendingRefusal(f.refusal)) return { kind: 'pending', refusal: f.refusal }
    throw refusalError('attestation finish', f.refusal)
  }
  const a = f.attested
  const expires = new Date(a.expiresAt * 1000).toISOString().replace(/\.\d+Z$/, 'Z')
  d.log.info('attest', `attested as ${a.node}${a.groups.length > 0 ? ` (${a.groups.join(', ')})` : ''}, attestation ${a.attestationId}, token until ${expires}`)
  if (d.cmdline.node !== undefined && d.cmdline.node !== a.node) d.log.warn('attest', `the command line says ${d.cmdline.node}, the server identified this machine as ${a.node}; going on as ${a.node}`)
  if (a.rootfs === undefined) {
    throw new AgentError('AGENT_NO_ROOTFS', 'refused', `the server attested ${a.node} but names no root image for it (its image has no rootfs: netboot image add … --rootfs FILE)`)
  }
  const want = d.cmdline.image
  if (want !== undefined && want.sha256 !== a.rootfs.sha256) {
    return { kind: 'stale', attested: a, planned: a.rootfs.sha256 }
  }
  return { kind: 'attested', attested: { ...a, rootfs: a.rootfs } }
}

export interface PendingPolicy {
  /** Give up after this long (ms): the dracut hook reboots and the node tries again. */
  readonly waitMs: number
  readonly backoff: Backoff
}

/**
 * The `pending` step: polls start with capped exponential backoff and equal jitter
 * until the server answers with a challenge (an admin decided), a refusal that is
 * not "pending" (error), or the wait runs out. Network failures while waiting are
 * part of waiting.
 */
export async function waitForDecision (d: AttestDeps, keys: TpmKeys, p: PendingPolicy, random: Random, first?: ServerRefusal): Promise<Challenge> {
  const { api, log } = d
  const startAt = api.clock.now()
  let lastSaid = first !== undefined ? `${first.code ?? ''}: ${first.message}` : ''
  let lastLineAt = startAt
  if (first !== undefined) {
    log.info('pending', `${first.code}: ${first.message}`)
    log.info('pending', `waiting for an admin decision (netboot enroll list --state pending; netboot enroll accept ID): EK sha256:${keys.ekSha256}`)
  }
  for (let n = 0; ; n++) {
    const elapsed = api.clock.now() - startAt
    if (elapsed >= p.waitMs) {
      throw new AgentError('AGENT_PENDING_TIMEOUT', 'pending', `no admin decision within ${secs(p.waitMs)} (last: ${lastSaid || 'no answer'}); EK sha256:${keys.ekSha256}`)
    }
    const delay = Math.min(equalJitter(p.backoff, n, random), p.waitMs - elapsed)
    if (api.clock.now() - lastLineAt >= 60_000) {
      log.info('pending', `still waiting after ${secs(elapsed)}; next check in ${secs(delay)}`)
      lastLineAt = api.clock.now()
    }
    await api.clock.sleep(delay)
    let s: Awaited<ReturnType<typeof start>>
    try {
      s = await start(d, keys, 'pending')
    } catch (e) {
      if (e instanceof AgentError && e.retryable) {
        const said = e.message
        if (said !== lastSaid) log.info('pending', `check failed, still waiting: ${said}`)
        lastSaid = said
        continue
      }
      throw e
    }
    if (s.kind === 'challenge') {
      log.info('pending', `decided: the server now answers with a challenge after ${secs(api.clock.now() - startAt)}`)
      return s.challenge
    }
    if (!isPendingRefusal(s.refusal)) throw refusalError('waiting for an admin decision', s.refusal, 'refused')
    const said = `${s.refusal.code}: ${s.refusal.message}`
    if (said !== lastSaid) {
      log.info('pending', said)
      lastLineAt = api.clock.now()
    }
    lastSaid = said
  }
}
