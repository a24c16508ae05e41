// Test-only builders: TPM structures from node:crypto keys, signatures made in
// software, and a software TPM2_ActivateCredential (the inverse of makeCredential)
// for round-trip tests that need the EK's private key.
import { createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, privateDecrypt, sign, constants, timingSafeEqual, type JsonWebKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST_ATTEST, curveInfo, hashInfo } from '../../server/attest/tpm/alg.js'
import { kdfa, kdfe } from '../../server/attest/tpm/kdf.js'
import { Reader, Writer } from '../../server/attest/tpm/marshal.js'
import { encodePcrSelection } from '../../server/attest/tpm/pcr.js'
import { TPMA_OBJECT, type TpmtPublic } from '../../server/attest/tpm/public.js'

const here = dirname(fileURLToPath(import.meta.url))
export const FIXTURES = join(here, '..', 'fixtures', 'tpm')
export const REFERENCE = join(here, '..', '..', '..', 'shared', 'reference', 'eventlogs')

export function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name))
}

export function reference(name: string): Buffer {
  return readFileSync(join(REFERENCE, name))
}

export const AK_ATTRS = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.restricted | TPMA_OBJECT.sign
/** TCG EK template attributes (L-1/L-2): 0x000300B2. */
export const EK_ATTRS = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.adminWithPolicy | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt
export const EK_POLICY = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex')

export interface PublicSpec {
  nameAlg?: number
  attributes?: number
  authPolicy?: Buffer
  symmetric?: { alg: number; keyBits: number; mode: number }
  scheme?: { scheme: number; hashAlg: number }
  kdf?: { scheme: number; hashAlg: number }
}

/**
 * The public JWK of a key (RSA or EC; a private key gives its public half), safe for
 * keys from generateKeyPairSync. Node 20 (seen on v20.20.2) deadlocks in
 * `export({ format: 'jwk' })` of such a key when a garbage collection during the
 * export frees the sync key-generation job: the job's destructor waits for the key's
 * lock, which the export holds. A loop of generateKeyPairSync('ec') and a JWK export
 * hangs within seconds; it hung the attestation benchmark's fleet. A copy made through
 * SPKI DER shares nothing with the job; DER export and the async generators are not
 * affected (hundreds of thousands of iterations).
 */
export function publicJwkOf(key: KeyObject): JsonWebKey {
  const spki = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' })
  return createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' })
}

/** TPMT_PUBLIC bytes for an RSA or NIST-curve public key. */
export function encodePublic(key: KeyObject, spec: PublicSpec = {}): Buffer {
  const jwk = publicJwkOf(key)
  const w = new Writer()
  const sym = (s: PublicSpec['symmetric']) => {
    if (s === undefined || s.alg === TPM_ALG.NULL) w.u16(TPM_ALG.NULL)
    else w.u16(s.alg).u16(s.keyBits).u16(s.mode)
  }
  const scheme = (s: { scheme: number; hashAlg: number } | undefined) => {
    if (s === undefined || s.scheme === TPM_ALG.NULL) w.u16(TPM_ALG.NULL)
    else w.u16(s.scheme).u16(s.hashAlg)
  }
  if (jwk.kty === 'RSA') {
    const n = Buffer.from(jwk.n!, 'base64url')
    const e = Buffer.from(jwk.e!, 'base64url')
    const exp = e.readUIntBE(0, e.length)
    w.u16(TPM_ALG.RSA).u16(spec.nameAlg ?? TPM_ALG.SHA256).u32(spec.attributes ?? AK_ATTRS).tpm2b(spec.authPolicy ?? Buffer.alloc(0))
    sym(spec.symmetric)
    scheme(spec.scheme)
    w.u16(n.length * 8).u32(exp === 65537 ? 0 : exp).tpm2b(n)
  } else {
    const curve = { 'P-256': 3, 'P-384': 4, 'P-521': 5 }[jwk.crv as string]!
    w.u16(TPM_ALG.ECC).u16(spec.nameAlg ?? TPM_ALG.SHA256).u32(spec.attributes ?? AK_ATTRS).tpm2b(spec.authPolicy ?? Buffer.alloc(0))
    sym(spec.symmetric)
    scheme(spec.scheme)
    w.u16(curve)
    scheme(spec.kdf)
    w.tpm2b(Buffer.from(jwk.x!, 'base64url')).tpm2b(Buffer.from(jwk.y!, 'base64url'))
  }
  return w.finish()
}

export function tpm2bOf(b: Buffer): Buffer {
  return new Writer().tpm2b(b).finish()
}

export interface AttestSpec {
  magic?: number
  type?: number
  qualifiedSigner?: Buffer
  extraData?: Buffer
  clock?: bigint
  resetCount?: number
  restartCount?: number
  safe?: number
  firmwareVersion?: bigint
  pcrSelect?: { hashAlg: number; pcrs: number[] }[]
  pcrDigest?: Buffer
}

/** TPMS_ATTEST of type quote (or any type, with a quote body). */
export function encodeAttest(s: AttestSpec): Buffer {
  return new Writer()
    .u32(s.magic ?? TPM_GENERATED_VALUE)
    .u16(s.type ?? TPM_ST_ATTEST.QUOTE)
    .tpm2b(s.qualifiedSigner ?? Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 7)]))
    .tpm2b(s.extraData ?? Buffer.alloc(0))
    .u64(s.clock ?? 1000n)
    .u32(s.resetCount ?? 1)
    .u32(s.restartCount ?? 0)
    .u8(s.safe ?? 1)
    .u64(s.firmwareVersion ?? 0x2019102300163636n)
    .bytes(encodePcrSelection(s.pcrSelect ?? []))
    .tpm2b(s.pcrDigest ?? Buffer.alloc(0))
    .finish()
}

/** TPMT_SIGNATURE made in software over `data`. */
export function signTpm(privateKey: KeyObject, sigAlg: number, hashAlg: number, data: Buffer): Buffer {
  const h = hashInfo(hashAlg)!
  if (sigAlg === TPM_ALG.ECDSA) {
    const curve = privateKey.asymmetricKeyDetails?.namedCurve
    const size = curveInfo({ prime256v1: 3, secp384r1: 4, secp521r1: 5 }[curve ?? '']!)!.size
    const rs = sign(h.name, data, { key: privateKey, dsaEncoding: 'ieee-p1363' })
    return new Writer().u16(sigAlg).u16(hashAlg).tpm2b(rs.subarray(0, size)).tpm2b(rs.subarray(size)).finish()
  }
  const padding = sigAlg === TPM_ALG.RSAPSS ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: h.size } : { padding: constants.RSA_PKCS1_PADDING }
  const sig = sign(h.name, data, { key: privateKey, ...padding })
  return new Writer().u16(sigAlg).u16(hashAlg).tpm2b(sig).finish()
}

/**
 * TPM2_ActivateCredential in software (Part 3 §12.5), for tests: returns the
 * credential or a string saying which check failed.
 */
export function softwareActivate(ekPrivate: KeyObject, ek: TpmtPublic, akName: Buffer, credentialBlob: Buffer, secret: Buffer): Buffer | string {
  const h = hashInfo(ek.nameAlg)!
  const sr = new Reader(secret)
  const enc = sr.tpm2b(4096)
  if (sr.failed || sr.remaining !== 0) return 'secret-format'
  let seed: Buffer
  try {
    if (ek.type === TPM_ALG.RSA) {
      seed = privateDecrypt({ key: ekPrivate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: h.name, oaepLabel: Buffer.from('IDENTITY\0', 'latin1') }, enc)
    } else {
      const pr = new Reader(enc)
      const x = pr.tpm2b(128)
      const y = pr.tpm2b(128)
      const c = curveInfo(ek.parameters.curveID)!
      const ephPub = createPublicKey({ key: { kty: 'EC', crv: c.jwk, x: x.toString('base64url'), y: y.toString('base64url') }, format: 'jwk' })
      const z = diffieHellman({ privateKey: ekPrivate, publicKey: ephPub })
      seed = kdfe(h.name, z, 'IDENTITY', x, ek.unique.x, h.size * 8)
    }
  } catch {
    return 'seed'
  }
  const br = new Reader(credentialBlob)
  const id = br.tpm2b(4096)
  if (br.failed || br.remaining !== 0) return 'blob-format'
  const ir = new Reader(id)
  const integrity = ir.tpm2b(64)
  const encIdentity = ir.rest()
  if (ir.failed) return 'blob-format'
  const hmacKey = kdfa(h.name, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), h.size * 8)
  const expect = createHmac(h.name, hmacKey).update(encIdentity).update(akName).digest()
  if (expect.length !== integrity.length || !timingSafeEqual(expect, integrity)) return 'integrity'
  const symBits = ek.parameters.symmetric.keyBits
  const symKey = kdfa(h.name, seed, 'STORAGE', akName, Buffer.alloc(0), symBits)
  const d = createDecipheriv(`aes-${symBits}-cfb`, symKey, Buffer.alloc(16))
  const plain = Buffer.concat([d.update(encIdentity), d.final()])
  const pr = new Reader(plain)
  const cred = pr.tpm2b(64)
  if (pr.failed || pr.remaining !== 0) return 'credential-format'
  return Buffer.from(cred)
}

export { createPrivateKey }

/** A copy of `b` with bit 0 of byte `i` flipped (negative i counts from the end). */
export function flipByte(b: Buffer, i: number): Buffer {
  const c = Buffer.from(b)
  const at = i < 0 ? c.length + i : i
  c.writeUInt8(c.readUInt8(at) ^ 1, at)
  return c
}
