/**
 * The attestation protocol, server side (DESIGN.md "Attestation, in one paragraph"):
 *
 *   start   identify the node by its MACs, check its TPM (EK) against the
 *           enrollment policy, check the AK's attributes, and answer with a
 *           credential only that TPM can activate for that AK (MakeCredential)
 *           and a nonce for the quote.
 *   finish  the activated credential proves EK and AK share a TPM; the quote over
 *           SHA-256(nonce ‖ boot key) proves the PCR values and binds the boot key;
 *           the event log must replay to them; the PCR policy must accept them.
 *           Then a node token bound to the boot key is issued.
 *
 * Every decision, refusals included, is one audit entry with its evidence.
 * Sessions are single use and short-lived: a replayed nonce finds no session.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual, type X509Certificate } from 'node:crypto'
import type { JWK } from 'jose'
import type { Logger } from 'pino'
import { NetbootError, type ErrorCode } from '../errors.js'
import type { Actor, Node } from '../inventory/model.js'
import type { AuditDraft, EnrollmentPolicy, Store, TpmIdentity } from '../store/store.js'
import { NodeTokens } from '../tokens/node-token.js'
import { decodeTpm2bPublic, publicKeyObject, type TpmtPublic } from './tpm/index.js'
import { verifyEkCert } from './ekcert.js'
import { evaluatePcrPolicy, type PcrPolicyMode } from './pcr-policy.js'
import type { AttestFinishRequest, AttestStartRequest } from './wire.js'
import type { PlannedUki } from './verify.js'
import { sharedVerifier, type Verifier } from './verify-pool.js'

export type { PlannedUki } from './verify.js'

/** What the server plans for a node: its root image (the agent trusts these, never its command line) and its UKI. */
export interface PlannedBoot {
  readonly rootfsUrl?: string
  readonly rootfsSha256?: string
  readonly imageRef?: string
  readonly uki?: PlannedUki
}

export interface AttestationConfig {
  readonly enrollment: EnrollmentPolicy
  readonly requireEkCert: boolean
  readonly anchors: readonly X509Certificate[]
  readonly pcrs: readonly number[]
  readonly bank: 'sha256' | 'sha1'
  readonly pcrPolicy: PcrPolicyMode
  /** Record unknown hardware as pending discovery (unknown_nodes.action = discover). */
  readonly discover: boolean
  readonly sessionTtlMs: number
  readonly maxSessions: number
  /**
   * Worker threads for the pure verification (verify.ts: MakeCredential, the
   * quote, the event log); 0 runs it on the event loop. Default: one fewer than
   * the cores (verify-pool.ts), shared by every service of the process.
   */
  readonly verifyThreads?: number
}

export interface Challenge {
  readonly session: string
  readonly credentialBlob: Buffer
  readonly encryptedSecret: Buffer
  readonly nonce: Buffer
  readonly pcrs: readonly number[]
  readonly bank: string
}

export interface Attested {
  readonly rootfsUrl?: string
  readonly rootfsSha256?: string
  readonly token: string
  readonly expiresAt: number
  readonly node: string
  readonly groups: readonly string[]
  readonly attestationId: string
}

interface Session {
  readonly node: Node
  readonly identity: TpmIdentity
  readonly akRaw: Buffer
  readonly akName: Buffer
  readonly secret: Buffer
  readonly nonce: Buffer
  readonly image?: string
  readonly uki?: PlannedUki
  readonly peer: string
  readonly expiresAt: number
}

export class AttestationService {
  private readonly sessions = new Map<string, Session>()
  private readonly verifier: Verifier

  constructor (
    private readonly cfg: AttestationConfig,
    private readonly store: Store,
    private readonly tokens: NodeTokens,
    private readonly log: Logger,
    /** Where the node's root image is and its digest: the agent trusts these, never its command line. */
    private readonly rootfs?: (node: Node) => Promise<PlannedBoot>,
  ) {
    this.verifier = sharedVerifier(cfg.verifyThreads)
  }

  async start (req: AttestStartRequest, peer: string, now = Date.now()): Promise<Challenge> {
    const ekSha256 = sha256hex(req.ekPublic)
    const evidence = { peer, macs: req.macs, ek: ekSha256, hint: req.nodeHint, image: req.image }
    const deny = async (code: ErrorCode, why: string, node?: string, extra: Record<string, unknown> = {}): Promise<never> =>
      await this.refuse('attest.start', code, why, node, { ...evidence, ...extra })

    const ek = decodeTpm2bPublic(req.ekPublic)
    if (!ek.ok) return await deny('ATTEST_BAD_REQUEST', `EK public area: ${ek.error.message}`)
    const node = await this.nodeByMacs(req.macs)
    let identity = await this.store.findTpmIdentity(ekSha256)

    if (identity?.state === 'rejected') return await deny('ATTEST_REJECTED', 'an admin rejected this TPM', identity.node)
    if (identity?.state === 'pending') return await deny('ATTEST_PENDING', `TPM identity ${identity.id} awaits an admin decision`, identity.node)
    if (node === undefined) {
      if (identity === undefined && this.cfg.discover) {
        const added = await this.store.addTpmIdentity({
          ekSha256, ...this.certFields(req), ekPublic: req.ekPublic, policy: this.cfg.enrollment, state: 'pending', macs: req.macs,
          discovery: { hardware: req.hardware, hint: req.nodeHint, peer },
        }, this.auditDraft('enroll.discover', undefined, 'denied', { ...evidence, reason: 'ATTEST_UNKNOWN_NODE' }))
        throw new NetbootError('ATTEST_UNKNOWN_NODE', `unknown hardware recorded for discovery as identity ${added.id}; an admin decides with 'netboot enroll accept ${added.id} --node NAME'`)
      }
      return await deny('ATTEST_UNKNOWN_NODE', 'no node in the inventory has any of these MACs')
    }
    if (identity !== undefined && identity.node !== node.name) {
      return await deny('ATTEST_EK_MISMATCH', `this TPM is enrolled for ${identity.node ?? 'no node'}, but the MACs are ${node.name}'s`, node.name)
    }
    if (identity === undefined) {
      const enrolled = (await this.store.listTpmIdentities({ node: node.name })).filter((i) => i.state !== 'rejected')
      if (enrolled.length > 0) return await deny('ATTEST_EK_MISMATCH', `${node.name} has another TPM enrolled (identity ${enrolled.map((i) => i.id).join(', ')})`, node.name)
      identity = await this.enroll(req, node, ekSha256, ek.value, evidence)
    }

    // the AK's checks and MakeCredential (verify.ts), on a verifier thread
    const cred = await this.verifier.challenge({ ekSha256, ekPublic: req.ekPublic, akPublic: req.akPublic })
    if (!cred.ok) return await deny(cred.code, cred.why, node.name)

    // The image is the one the server plans for this node, not what the command line claimed.
    const planned = await this.rootfs?.(node).catch(() => undefined)
    const image = planned?.imageRef ?? req.image
    if (planned?.imageRef !== undefined && req.image !== undefined && req.image !== planned.imageRef) {
      this.log.warn({ node: node.name, claimed: req.image, planned: planned.imageRef }, 'attest: the agent names another image than planned; using the planned one')
    }
    this.expire(now)
    if (this.sessions.size >= this.cfg.maxSessions) throw new NetbootError('ATTEST_BUSY', 'too many attestations in flight; retry shortly')
    const session = randomUUID()
    const nonce = randomBytes(32)
    this.sessions.set(session, {
      node, identity, akRaw: req.akPublic, akName: cred.akName, secret: cred.secret, nonce, peer,
      ...(image !== undefined ? { image } : {}), ...(planned?.uki !== undefined ? { uki: planned.uki } : {}), expiresAt: now + this.cfg.sessionTtlMs,
    })
    return { session, credentialBlob: cred.credentialBlob, encryptedSecret: cred.encryptedSecret, nonce, pcrs: this.cfg.pcrs, bank: this.cfg.bank }
  }

  async finish (req: AttestFinishRequest, peer: string, now = Date.now()): Promise<Attested> {
    const s = this.sessions.get(req.session)
    this.sessions.delete(req.session)
    if (s === undefined || s.expiresAt <= now) {
      return await this.refuse('attest.finish', 'ATTEST_SESSION_UNKNOWN', 'no such session (expired, or already used)', undefined, { peer, session: req.session })
    }
    const attestationId = randomUUID()
    const evidence: Record<string, unknown> = {
      peer, attestation: attestationId, ek: s.identity.ekSha256, ak: s.akName.toString('hex'), image: s.image ?? null,
      pcrs: Object.fromEntries([...req.pcrValues].map(([i, v]) => [i, v.toString('hex')])),
      // the log's SHA-256: the verifier computes it (below), a refusal before it here
      eventLog: null,
    }
    const deny = async (code: ErrorCode, why: string, extra: Record<string, unknown> = {}): Promise<never> =>
      await this.refuse('attest.finish', code, why, s.node.name, { ...evidence, ...extra })
    const denyEarly = async (code: ErrorCode, why: string): Promise<never> => {
      evidence.eventLog = req.eventLog.length > 0 ? sha256hex(req.eventLog) : null
      return await deny(code, why)
    }

    if (req.credential.length !== s.secret.length || !timingSafeEqual(req.credential, s.secret)) {
      return await denyEarly('ATTEST_BAD_CREDENTIAL', 'the activated credential is wrong: this AK is not on the TPM of this EK')
    }
    const bootKey = parseBootKey(req.bootKey)
    if (bootKey === undefined) return await denyEarly('ATTEST_BAD_REQUEST', 'boot_key must be an EC P-256 public JWK')

    // the quote, the event log and the UKI rule (verify.ts), on a verifier thread
    const check = await this.verifier.finish({
      ekSha256: s.identity.ekSha256, akPublic: s.akRaw, attest: req.attest, signature: req.signature, nonce: s.nonce, bootKey: req.bootKey,
      pcrValues: [...req.pcrValues], eventLog: req.eventLog, pcrs: this.cfg.pcrs, bank: this.cfg.bank,
      ...(s.identity.resetCount !== undefined && s.identity.restartCount !== undefined
        ? { previousCounters: { resetCount: s.identity.resetCount, restartCount: s.identity.restartCount } } : {}),
      ...(s.uki !== undefined ? { uki: s.uki } : {}),
    })
    evidence.eventLog = check.logDigest ?? null
    if (check.counters !== undefined) evidence.counters = check.counters
    if (check.events !== undefined) evidence.events = check.events
    if (check.uki !== undefined) evidence.uki = check.uki
    if (check.refusal !== undefined) return await deny(check.refusal.code, check.refusal.why, check.refusal.extra)
    const counters = check.counters!
    const quoted = req.pcrValues

    const golden = await this.store.goldenPcrsFor({ node: s.node.name, ...(s.image !== undefined ? { image: s.image } : {}) }, this.cfg.bank)
    const policy = evaluatePcrPolicy(this.cfg.pcrPolicy, this.cfg.bank, quoted, golden, { node: s.node.name, ...(s.image !== undefined ? { image: s.image } : {}) })
    if (!policy.ok) return await deny('ATTEST_POLICY_VIOLATION', policy.reason, { mismatched: policy.mismatched })
    if (policy.learn !== undefined) {
      await this.store.putGoldenPcrs(policy.learn, this.auditDraft('pcr.learn', policy.learn[0]?.target, 'ok', { values: policy.learn.length, from: s.node.name, attestation: attestationId }))
    }

    const jkt = await NodeTokens.thumbprint(bootKey)
    const issued = await this.tokens.issue({ sub: s.node.name, groups: s.node.groups, att: attestationId, ...(s.image !== undefined ? { img: s.image } : {}), cnf: { jkt } }, now)
    // the token leaves only once the counters and its audit entry are committed
    await this.store.recordAttestation(s.identity.id, counters,
      this.auditDraft('attest.finish', s.node.name, 'ok', { ...evidence, policy: policy.basis, token: issued.jti, jkt, expiresAt: issued.expiresAt }))
    this.log.info({ node: s.node.name, attestation: attestationId, policy: policy.basis, peer }, 'attest: node attested, token issued')
    const root = await this.rootfs?.(s.node).catch((e: unknown) => {
      this.log.warn({ node: s.node.name, err: e }, 'attest: no root image for this node')
      return undefined
    })
    return { token: issued.token, expiresAt: issued.expiresAt, node: s.node.name, groups: s.node.groups, attestationId, ...(root?.rootfsUrl !== undefined ? { rootfsUrl: root.rootfsUrl } : {}), ...(root?.rootfsSha256 !== undefined ? { rootfsSha256: root.rootfsSha256 } : {}) }
  }

  /** Applies the enrollment policy to a known node's first TPM. */
  private async enroll (req: AttestStartRequest, node: Node, ekSha256: string, ek: TpmtPublic, evidence: Record<string, unknown>): Promise<TpmIdentity> {
    const policy = this.cfg.enrollment
    if (policy === 'pre-enrolled') return await this.refuse('attest.start', 'ATTEST_UNKNOWN_EK', 'this TPM was not pre-enrolled for the node (netboot enroll add)', node.name, evidence)
    let certNote = 'no EK certificate'
    if (req.ekCert.length > 0 || policy === 'strict' || this.cfg.requireEkCert) {
      if (req.ekCert.length === 0) return await this.refuse('attest.start', 'ATTEST_EK_UNTRUSTED', 'the TPM has no EK certificate', node.name, evidence)
      const key = publicKeyObject(ek)
      if (!key.ok) return await this.refuse('attest.start', 'ATTEST_BAD_REQUEST', `EK key: ${key.error.message}`, node.name, evidence)
      const v = verifyEkCert(req.ekCert, key.value, this.cfg.anchors)
      if (!v.ok) return await this.refuse('attest.start', 'ATTEST_EK_UNTRUSTED', `EK certificate: ${v.reason}`, node.name, evidence)
      certNote = `EK certificate from '${v.issuer}'`
    }
    const state = policy === 'tofu' ? 'enrolled' : 'pending'
    const identity = await this.store.addTpmIdentity({
      node: node.name, ekSha256, ...this.certFields(req), ekPublic: req.ekPublic, policy, state, macs: req.macs,
      discovery: { hardware: req.hardware, peer: evidence.peer },
      ...(state === 'enrolled' ? { decidedAt: new Date().toISOString(), decidedBy: 'tofu' } : {}),
    }, state === 'enrolled'
      ? this.auditDraft('enroll.tofu', node.name, 'ok', { ...evidence, cert: certNote })
      : this.auditDraft('enroll.pending', node.name, 'denied', { ...evidence, cert: certNote, reason: 'ATTEST_PENDING' }))
    if (state === 'pending') throw new NetbootError('ATTEST_PENDING', `TPM of ${node.name} recorded as identity ${identity.id}; an admin approves it with 'netboot enroll accept ${identity.id}'`)
    return identity
  }

  private certFields (req: AttestStartRequest): { ekCert?: Buffer; ekCertSha256?: string } {
    return req.ekCert.length > 0 ? { ekCert: req.ekCert, ekCertSha256: sha256hex(req.ekCert) } : {}
  }

  /** The node owning the MACs; all MACs that are known must agree on one node. */
  private async nodeByMacs (macs: readonly string[]): Promise<Node | undefined> {
    let found: Node | undefined
    for (const mac of macs) {
      const n = await this.store.findNodeByMac(mac)
      if (n === undefined) continue
      if (found !== undefined && found.name !== n.name) throw new NetbootError('ATTEST_BAD_REQUEST', `the MACs belong to different nodes (${found.name}, ${n.name})`)
      found = n
    }
    return found
  }

  private async refuse (action: string, code: ErrorCode, why: string, node: string | undefined, evidence: Record<string, unknown>): Promise<never> {
    await this.store.audit(this.auditDraft(action, node, 'denied', { ...evidence, reason: code, why }))
    this.log.warn({ action, node, reason: code, why, peer: evidence.peer }, 'attest: refused')
    throw new NetbootError(code, why)
  }

  private auditDraft (action: string, target: string | undefined, outcome: 'ok' | 'denied', detail: Record<string, unknown>): AuditDraft {
    const actor: Actor = target !== undefined ? { kind: 'node', id: target } : { kind: 'node', id: String(detail.peer ?? 'unknown') }
    return { actor, action, ...(target !== undefined ? { target } : {}), outcome, detail }
  }

  private expire (now: number): void {
    if (this.sessions.size < this.cfg.maxSessions / 2) return
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id)
  }
}

function sha256hex (b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex')
}

/** The agent's boot key: an EC P-256 public JWK (no private part). */
export function parseBootKey (bytes: Uint8Array): JWK | undefined {
  let jwk: unknown
  try { jwk = JSON.parse(Buffer.from(bytes).toString('utf8')) } catch { return undefined }
  const k = jwk as Record<string, unknown>
  if (k === null || typeof k !== 'object' || k.kty !== 'EC' || k.crv !== 'P-256' || typeof k.x !== 'string' || typeof k.y !== 'string' || 'd' in k) return undefined
  if (!/^[A-Za-z0-9_-]{43}$/.test(k.x) || !/^[A-Za-z0-9_-]{43}$/.test(k.y)) return undefined
  return { kty: 'EC', crv: 'P-256', x: k.x, y: k.y }
}
