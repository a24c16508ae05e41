/**
 * The boot key: a P-256 key pair made fresh for this boot and kept in this
 * process's memory only. The quote binds its public half (qualifyingData =
 * SHA-256(nonce ‖ boot key bytes), proto/attest.proto), the node token is bound to
 * it (`cnf.jkt`, RFC 7800 / RFC 9449 §6.1), it signs the DPoP proofs (RFC 9449 §4,
 * ES256) and the secure cloud-init is encrypted to it (JWE ECDH-ES + A256GCM,
 * RFC 7518 §4.6, §5.3).
 */
import { createHash, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { calculateJwkThumbprint, compactDecrypt, exportJWK, SignJWT, type JWK } from 'jose'

const generate = promisify(generateKeyPair)

export interface BootKey {
  /** The public JWK: kty, crv, x, y. */
  readonly jwk: JWK
  readonly privateKey: KeyObject
  /** UTF-8 JSON of `jwk`: AttestFinish.boot_key, hashed into the quote's qualifyingData. */
  readonly bytes: Buffer
  /** RFC 7638 SHA-256 thumbprint: the token's cnf.jkt. */
  readonly thumbprint: string
}

export async function createBootKey (): Promise<BootKey> {
  const { publicKey, privateKey } = await generate('ec', { namedCurve: 'P-256' })
  const full = await exportJWK(publicKey)
  const jwk: JWK = { kty: 'EC', crv: 'P-256', x: full.x!, y: full.y! }
  return { jwk, privateKey, bytes: Buffer.from(JSON.stringify(jwk), 'utf8'), thumbprint: await calculateJwkThumbprint(jwk, 'sha256') }
}

/** TPM2_Quote qualifyingData: SHA-256(nonce ‖ boot key bytes). */
export function qualifyingData (nonce: Uint8Array, key: BootKey): Buffer {
  return createHash('sha256').update(nonce).update(key.bytes).digest()
}

/**
 * A DPoP proof for one request (RFC 9449 §4.2): typ dpop+jwt, ES256, the public
 * JWK in the header; htm, htu (no query or fragment), iat by the server's clock, a
 * fresh jti, and ath = base64url(SHA-256(token)) (§4.1 when a token is sent).
 */
export async function dpopProof (key: BootKey, token: string, method: string, htu: string, iatSeconds: number): Promise<string> {
  return await new SignJWT({ htm: method, htu, ath: createHash('sha256').update(token).digest('base64url'), jti: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
    .setIssuedAt(iatSeconds)
    .sign(key.privateKey)
}

/** Decrypts a compact JWE made for the boot key; only ECDH-ES + A256GCM is accepted. */
export async function decryptForBootKey (jwe: string, key: BootKey): Promise<Uint8Array> {
  const r = await compactDecrypt(jwe, key.privateKey, { keyManagementAlgorithms: ['ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'] })
  return r.plaintext
}
