/**
 * Node-bound tokens. After a successful attestation a node gets a short-lived JWT
 * (RFC 7519) whose `cnf.jkt` (RFC 7800, RFC 9449 §6.1) is the thumbprint of the
 * ephemeral P-256 key the agent generated for this boot and bound into its quote.
 * Every request made with the token must carry a DPoP proof (RFC 9449 §4) signed
 * by that key, and secrets are returned encrypted to it (JWE ECDH-ES, RFC 7518
 * §4.6): a token sniffed on the provisioning network is useless without the key,
 * which never leaves the node.
 */
import { createHash, randomUUID, sign } from 'node:crypto'
import {
  CompactEncrypt, calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, errors as joseErrors, type JWK, type JWTPayload,
} from 'jose'
import { NetbootError } from '../errors.js'
import { SIGNING_ALG, type KeyRing } from './keys.js'

export const TOKEN_AUDIENCE = 'netboot-node'

export interface NodeTokenClaims {
  /** node name */
  readonly sub: string
  readonly groups: readonly string[]
  /** attestation id */
  readonly att: string
  /** image the node attested for, NAME@DIGEST */
  readonly img?: string
  readonly cnf: { readonly jkt: string }
}

export interface VerifiedNodeToken extends NodeTokenClaims {
  readonly exp: number
  readonly jti: string
}

/** A bounded set of recently seen DPoP proof ids (RFC 9449 §11.1 replay defence). */
export class ReplayCache {
  private readonly seen = new Map<string, number>()
  constructor (private readonly max = 100_000) {}

  /** False when `id` was already used and has not expired. */
  use (id: string, expiresAt: number, now = Date.now()): boolean {
    const prev = this.seen.get(id)
    if (prev !== undefined && prev > now) return false
    if (this.seen.size >= this.max) {
      for (const [k, exp] of this.seen) if (exp <= now) this.seen.delete(k)
      // still full of live ids: forget the oldest (insertion order), which expire first
      for (const k of this.seen.keys()) { if (this.seen.size < this.max * 0.9) break; this.seen.delete(k) }
    }
    this.seen.set(id, expiresAt)
    return true
  }
}

export class NodeTokens {
  private readonly proofs = new ReplayCache()

  constructor (
    private readonly keys: KeyRing,
    private readonly issuer: string,
    private readonly ttlSeconds: number,
    /** How far a DPoP proof's iat may be from now. */
    private readonly proofWindowSeconds = 60,
  ) {}

  /**
   * The JWK thumbprint (RFC 7638 §3) a token is bound to. An EC key's is hashed
   * here (its required members crv, kty, x, y in lexicographic order, no white
   * space): jose computes it through WebCrypto, a thread-pool round trip for a
   * hundred bytes. Other key types go to jose.
   */
  static async thumbprint (jwk: JWK): Promise<string> {
    if (jwk.kty === 'EC' && typeof jwk.crv === 'string' && typeof jwk.x === 'string' && typeof jwk.y === 'string') {
      return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y })).digest('base64url')
    }
    return await calculateJwkThumbprint(jwk, 'sha256')
  }

  /**
   * A signed token: a JWS compact serialisation (RFC 7515 §7.1) of the JWT, ES256
   * (RFC 7518 §3.4: the signature is R ‖ S), signed with node:crypto on the libuv
   * thread pool. jose verifies these (verifyRequest); signing through jose's
   * SignJWT cost about five times the signature itself.
   */
  async issue (claims: NodeTokenClaims, now = Date.now()): Promise<{ token: string; expiresAt: number; jti: string }> {
    const key = this.keys.current
    const iat = Math.floor(now / 1000)
    const exp = iat + this.ttlSeconds
    const jti = randomUUID()
    const header = { alg: SIGNING_ALG, kid: key.kid, typ: 'at+jwt' }
    const payload = {
      groups: [...claims.groups], att: claims.att, ...(claims.img !== undefined ? { img: claims.img } : {}), cnf: { jkt: claims.cnf.jkt },
      iss: this.issuer, aud: TOKEN_AUDIENCE, sub: claims.sub, iat, exp, jti,
    }
    const input = `${b64json(header)}.${b64json(payload)}`
    const signature = await new Promise<Buffer>((resolve, reject) => {
      sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }, (e, sig) => { if (e !== null) reject(e); else resolve(sig) })
    })
    return { token: `${input}.${signature.toString('base64url')}`, expiresAt: exp, jti }
  }

  /**
   * Verifies `Authorization: DPoP <token>` and its `DPoP` proof for this request.
   * Throws NetbootError TOKEN_* codes; never returns a partially checked token.
   */
  async verifyRequest (authorization: string | undefined, proof: string | undefined, method: string, url: string, now = Date.now()): Promise<VerifiedNodeToken & { key: JWK }> {
    const m = /^DPoP\s+([A-Za-z0-9_.-]+)$/.exec(authorization ?? '')
    if (m === null) throw new NetbootError('TOKEN_REQUIRED', 'this endpoint needs a node token: Authorization: DPoP <token> with a DPoP proof')
    const token = m[1]!
    let payload: JWTPayload
    try {
      const header = decodeProtectedHeader(token)
      const key = typeof header.kid === 'string' ? this.keys.byKid(header.kid) : undefined
      if (key === undefined) throw new NetbootError('TOKEN_INVALID', 'token signed by an unknown key')
      const r = await jwtVerify(token, key.publicKey, { issuer: this.issuer, audience: TOKEN_AUDIENCE, algorithms: [SIGNING_ALG], typ: 'at+jwt', currentDate: new Date(now) })
      payload = r.payload
    } catch (e) {
      if (e instanceof NetbootError) throw e
      if (e instanceof joseErrors.JWTExpired) throw new NetbootError('TOKEN_EXPIRED', 'token has expired; attest again')
      throw new NetbootError('TOKEN_INVALID', 'token does not verify')
    }
    const cnf = payload.cnf as { jkt?: unknown } | undefined
    if (typeof payload.sub !== 'string' || typeof cnf?.jkt !== 'string' || typeof payload.att !== 'string' || typeof payload.jti !== 'string') {
      throw new NetbootError('TOKEN_INVALID', 'token lacks required claims')
    }
    const jwk = await this.verifyProof(proof, token, cnf.jkt, method, url, now)
    return {
      sub: payload.sub,
      groups: Array.isArray(payload.groups) ? payload.groups.filter((g): g is string => typeof g === 'string') : [],
      att: payload.att,
      ...(typeof payload.img === 'string' ? { img: payload.img } : {}),
      cnf: { jkt: cnf.jkt },
      exp: payload.exp ?? 0,
      jti: payload.jti,
      key: jwk,
    }
  }

  /** RFC 9449 §4.3: the proof is a fresh JWT signed by the bound key, for this method and URL. */
  private async verifyProof (proof: string | undefined, token: string, jkt: string, method: string, url: string, now: number): Promise<JWK> {
    if (proof === undefined || proof === '') throw new NetbootError('TOKEN_KEY_PROOF', 'a DPoP proof signed by the boot key is required with this token')
    const fail = (why: string): NetbootError => new NetbootError('TOKEN_KEY_PROOF', `DPoP proof refused: ${why}`)
    let header
    try { header = decodeProtectedHeader(proof) } catch { throw fail('malformed') }
    if (header.typ !== 'dpop+jwt' || header.alg !== 'ES256' || header.jwk === undefined) throw fail('wrong type, algorithm or missing jwk')
    const jwk = header.jwk as JWK
    if (jwk.d !== undefined) throw fail('the proof carries a private key')
    if (await NodeTokens.thumbprint(jwk) !== jkt) throw fail('signed by a key other than the one the token is bound to')
    let claims: JWTPayload
    try {
      claims = (await jwtVerify(proof, await importJWK(jwk, 'ES256'), { typ: 'dpop+jwt', algorithms: ['ES256'], currentDate: new Date(now), clockTolerance: this.proofWindowSeconds })).payload
    } catch { throw fail('signature does not verify') }
    if (claims.htm !== method) throw fail(`made for ${String(claims.htm)}, not ${method}`)
    if (claims.htu !== stripQuery(url)) throw fail('made for another URL')
    if (typeof claims.iat !== 'number' || Math.abs(claims.iat - now / 1000) > this.proofWindowSeconds) throw fail('too old or from the future')
    if (claims.ath !== createHash('sha256').update(token).digest('base64url')) throw fail('made for another token')
    if (typeof claims.jti !== 'string' || claims.jti.length > 128 || !this.proofs.use(claims.jti, now + this.proofWindowSeconds * 2000, now)) throw fail('replayed')
    return jwk
  }
}

/** Encrypts a secret payload to the node's boot key (JWE compact, ECDH-ES + A256GCM). */
export async function encryptToNode (plaintext: Uint8Array, bootKey: JWK): Promise<string> {
  return await new CompactEncrypt(plaintext)
    .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', cty: 'application/json' })
    .encrypt(await importJWK(bootKey, 'ECDH-ES'))
}

function b64json (v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url')
}

function stripQuery (url: string): string {
  const i = url.search(/[?#]/)
  return i < 0 ? url : url.slice(0, i)
}
