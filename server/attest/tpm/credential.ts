/**
 * TPM2_MakeCredential in software (TPM 2.0 Library Part 1 §24 "Credential
 * Protection", Part 3 §12.6): wraps a credential so that only the TPM holding the
 * EK's private key, with the object named `akName` loaded, can recover it through
 * TPM2_ActivateCredential (Part 3 §12.5).
 */
import { createCipheriv, createECDH, createHmac, publicEncrypt, constants, randomBytes, type KeyObject } from 'node:crypto'
import { MAX, TPM_ALG, algName, curveInfo, hashInfo, type HashInfo } from './alg.js'
import { kdfa, kdfe } from './kdf.js'
import { Reader, Writer, err, ok, tpm2b, type Result } from './marshal.js'
import { publicKeyObject, type TpmtPublic } from './public.js'

/**
 * ek-not-storage-key: the EK is not a restricted decryption key; ek-unsupported: its
 * nameAlg, symmetric definition or curve is not supported; bad-ek: node:crypto
 * refuses its public key; bad-name: akName is not nameAlg ‖ digest;
 * credential-too-large / credential-empty: size outside 1…|H_nameAlg|.
 */
export const CREDENTIAL_ERROR_CODES = ['ek-not-storage-key', 'ek-unsupported', 'bad-ek', 'bad-name', 'credential-too-large', 'credential-empty'] as const
export type CredentialErrorCode = (typeof CREDENTIAL_ERROR_CODES)[number]

export interface MakeCredentialInput {
  /** The EK's public area (a restricted decryption key, Part 1 §24.1). */
  readonly ekPublic: TpmtPublic
  /** Name of the object the credential is bound to (the AK): nameAlg ‖ digest. */
  readonly akName: Uint8Array
  /** The secret; 1 to |H_ekNameAlg| bytes (Part 3 §12.6.1, TPM_RC_SIZE). */
  readonly credential: Uint8Array
  /**
   * The KeyObject of an RSA ekPublic, when the caller keeps one per EK: OpenSSL
   * keeps its Montgomery constants with the key, so an OAEP encryption with a kept
   * key costs 23 µs instead of 38 (import included) on the benchmark machine.
   */
  readonly ekKey?: KeyObject
  /** Seed source for RSA EKs; defaults to crypto.randomBytes. Tests only. */
  readonly randomBytes?: (n: number) => Buffer
  /** Ephemeral ECDH private key for ECC EKs; defaults to a fresh one. Tests only. */
  readonly ephemeralPrivateKey?: KeyObject
}

export interface MakeCredentialOutput {
  /** TPM2B_ID_OBJECT (Part 2 §12.4.3): u16 size ‖ TPM2B integrityHMAC ‖ encIdentity. */
  readonly credentialBlob: Buffer
  /** TPM2B_ENCRYPTED_SECRET (Part 2 §11.4.33): u16 size ‖ encrypted seed. */
  readonly secret: Buffer
}

const IDENTITY = 'IDENTITY'
const STORAGE = 'STORAGE'
const INTEGRITY = 'INTEGRITY'

/**
 * The symmetric algorithm of a storage key's protections (Part 1 §24.4: the
 * credential is encrypted with the EK's `symmetric` definition; only AES in CFB mode
 * is supported, which every TCG EK template uses).
 */
function aesCfbName(keyBits: number): 'aes-128-cfb' | 'aes-192-cfb' | 'aes-256-cfb' | undefined {
  if (keyBits === 128) return 'aes-128-cfb'
  if (keyBits === 192) return 'aes-192-cfb'
  if (keyBits === 256) return 'aes-256-cfb'
  return undefined
}

function leftPad(b: Buffer, size: number): Buffer | undefined {
  let i = 0
  while (i < b.length && b[i] === 0) i++
  const s = b.subarray(i)
  if (s.length > size) return undefined
  return s.length === size ? s : Buffer.concat([Buffer.alloc(size - s.length), s])
}

/**
 * Secret-sharing step (Part 1 §24.3; Annex B.10 for RSA, Annex C.6 for ECC):
 * returns the seed and the encrypted seed the TPM decrypts with the EK.
 */
function shareSeed(ek: TpmtPublic, hash: HashInfo, input: MakeCredentialInput): Result<{ seed: Buffer; encSecret: Buffer }, CredentialErrorCode> {
  if (ek.type === TPM_ALG.RSA) {
    const key = input.ekKey !== undefined ? ok(input.ekKey) : publicKeyObject(ek)
    if (!key.ok) return err('bad-ek', key.error.message)
    // RSA-OAEP with the EK's nameAlg for both hash and MGF1, label "IDENTITY\0"
    // (the label includes its terminating NUL, Part 1 Annex B.10).
    const seed = (input.randomBytes ?? randomBytes)(hash.size)
    const encSecret = publicEncrypt(
      { key: key.value, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name, oaepLabel: IDENTITY_LABEL },
      seed,
    )
    return ok({ seed, encSecret })
  }
  const c = curveInfo(ek.parameters.curveID)
  if (c === undefined) return err('ek-unsupported', `EK curve 0x${ek.parameters.curveID.toString(16)} is not supported`)
  const x = leftPad(ek.unique.x, c.size)
  const y = leftPad(ek.unique.y, c.size)
  if (x === undefined || y === undefined) return err('bad-ek', `ECC coordinate longer than ${c.size} bytes`)
  // One-pass Diffie-Hellman, C(1e, 1s, ECC CDH) (Part 1 Annex C.6): Z is the x coordinate
  // of d_e·Q_ek in fixed width; seed = KDFe(nameAlg, Z, "IDENTITY", x_e, x_ek, bits).
  // The EK point goes to OpenSSL raw (uncompressed), which refuses a point off the
  // curve; NIST curves have cofactor 1, so that is the whole public-key validation
  // (SP 800-56A §5.6.2.3.4), without importing a KeyObject (about as costly as the
  // ECDH itself) or generating the ephemeral key through one (twice the cost of
  // ECDH.generateKeys).
  const ecdh = createECDH(c.openssl)
  if (input.ephemeralPrivateKey !== undefined) {
    const j = input.ephemeralPrivateKey.export({ format: 'jwk' })
    if (j.crv !== c.jwk || typeof j.d !== 'string') return err('ek-unsupported', `ephemeral key is not on ${c.jwk}`)
    ecdh.setPrivateKey(Buffer.from(j.d, 'base64url'))
  } else {
    ecdh.generateKeys()
  }
  const eph = ecdh.getPublicKey() // 04 ‖ x ‖ y, each c.size bytes
  const ex = eph.subarray(1, 1 + c.size)
  const ey = eph.subarray(1 + c.size)
  const z = ecdh.computeSecret(Buffer.concat([UNCOMPRESSED, x, y]))
  const zFixed = z.length === c.size ? z : Buffer.concat([Buffer.alloc(c.size - z.length), z])
  const seed = kdfe(hash.name, zFixed, IDENTITY, ex, ek.unique.x, hash.size * 8)
  // TPMS_ECC_POINT: TPM2B x ‖ TPM2B y.
  const encSecret = new Writer().tpm2b(ex).tpm2b(ey).finish()
  return ok({ seed, encSecret })
}

const IDENTITY_LABEL = Buffer.from(`${IDENTITY}\0`, 'latin1')
const UNCOMPRESSED = Buffer.from([0x04])

/**
 * TPM2_MakeCredential (Part 3 §12.6.2 detailed actions; Part 1 §24):
 *   seed, encSecret          ← secret sharing with the EK (above)
 *   symKey  = KDFa(nameAlg_ek, seed, "STORAGE", akName, ∅, symBits)       (§24.4)
 *   encIdentity = AES-CFB(symKey, IV = 0, u16(len) ‖ credential)           (§24.4)
 *   hmacKey = KDFa(nameAlg_ek, seed, "INTEGRITY", ∅, ∅, |H|·8)             (§24.5)
 *   integrityHMAC = HMAC_nameAlg(hmacKey, encIdentity ‖ akName)            (§24.5)
 */
export function makeCredential(input: MakeCredentialInput): Result<MakeCredentialOutput, CredentialErrorCode> {
  const ek = input.ekPublic
  const a = ek.attributes
  if (!a.restricted || !a.decrypt || a.sign) {
    return err('ek-not-storage-key', 'EK must be a restricted decryption key (restricted, decrypt, not sign)')
  }
  const hash = hashInfo(ek.nameAlg)
  if (hash === undefined) return err('ek-unsupported', `EK nameAlg ${algName(ek.nameAlg)} is not supported`)
  const sym = ek.parameters.symmetric
  const cipher = sym.algorithm === TPM_ALG.AES && sym.mode === TPM_ALG.CFB ? aesCfbName(sym.keyBits) : undefined
  if (cipher === undefined) {
    return err('ek-unsupported', `EK symmetric ${algName(sym.algorithm)}-${sym.keyBits}-${algName(sym.mode)} is not supported`)
  }
  const nameHash = input.akName.length >= 2 ? hashInfo((input.akName[0]! << 8) | input.akName[1]!) : undefined
  if (nameHash === undefined || input.akName.length !== 2 + nameHash.size) {
    return err('bad-name', 'akName must be a digest Name: nameAlg ‖ H_nameAlg(TPMT_PUBLIC)')
  }
  if (input.credential.length === 0) return err('credential-empty', 'credential is empty')
  if (input.credential.length > hash.size) {
    return err('credential-too-large', `credential of ${input.credential.length} byte(s) exceeds the ${hash.size}-byte digest of the EK nameAlg`)
  }
  let shared: Result<{ seed: Buffer; encSecret: Buffer }, CredentialErrorCode>
  try {
    shared = shareSeed(ek, hash, input)
  } catch (e) {
    return err('bad-ek', `secret sharing failed: ${(e as Error).message}`)
  }
  if (!shared.ok) return shared
  const { seed, encSecret } = shared.value
  const empty = Buffer.alloc(0)

  const symKey = kdfa(hash.name, seed, STORAGE, input.akName, empty, sym.keyBits)
  const c = createCipheriv(cipher, symKey, Buffer.alloc(16))
  const encIdentity = Buffer.concat([c.update(tpm2b(input.credential)), c.final()])

  const hmacKey = kdfa(hash.name, seed, INTEGRITY, empty, empty, hash.size * 8)
  const integrity = createHmac(hash.name, hmacKey).update(encIdentity).update(input.akName).digest()

  const idObject = new Writer().tpm2b(integrity).bytes(encIdentity).finish()
  return ok({ credentialBlob: tpm2b(idObject), secret: tpm2b(encSecret) })
}

/** tpm2-tools' credential file header (tools/tpm2_makecredential.c, lib/files.c). */
export const TOOLS_CREDENTIAL_MAGIC = 0xbadcc0de
export const TOOLS_CREDENTIAL_VERSION = 1

/**
 * The file `tpm2_makecredential -o` writes and `tpm2_activatecredential -i` reads:
 * `u32 0xBADCC0DE ‖ u32 1 ‖ TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET`, big-endian.
 */
export function encodeToolsCredentialFile(out: MakeCredentialOutput): Buffer {
  return new Writer().u32(TOOLS_CREDENTIAL_MAGIC).u32(TOOLS_CREDENTIAL_VERSION).bytes(out.credentialBlob).bytes(out.secret).finish()
}

export const TOOLS_FILE_ERROR_CODES = ['truncated', 'too-large', 'bad-magic', 'bad-version', 'trailing-bytes'] as const
export type ToolsFileErrorCode = (typeof TOOLS_FILE_ERROR_CODES)[number]

/** Inverse of encodeToolsCredentialFile; the TPM2Bs are returned with their size fields. */
export function decodeToolsCredentialFile(buf: Uint8Array): Result<MakeCredentialOutput, ToolsFileErrorCode> {
  const r = new Reader(buf)
  const magic = r.u32()
  const version = r.u32()
  if (r.failed) return err('truncated', 'credential file header is truncated')
  if (magic !== TOOLS_CREDENTIAL_MAGIC) return err('bad-magic', `magic 0x${magic.toString(16)}`, 0)
  if (version !== TOOLS_CREDENTIAL_VERSION) return err('bad-version', `version ${version}`, 4)
  const s1 = r.offset
  r.tpm2b(MAX.ID_OBJECT, 'TPM2B_ID_OBJECT')
  const credentialBlob = Buffer.from(r.since(s1))
  const s2 = r.offset
  r.tpm2b(MAX.ENCRYPTED_SECRET, 'TPM2B_ENCRYPTED_SECRET')
  const secret = Buffer.from(r.since(s2))
  if (!r.failed && r.remaining !== 0) r.fail('trailing-bytes', `${r.remaining} byte(s) after the secret`)
  const e = r.error
  if (e !== undefined) return err(e.code as ToolsFileErrorCode, e.message, e.offset)
  return ok({ credentialBlob, secret })
}
