/**
 * Endorsement-key certificates (TCG EK Credential Profile 2.x): the certificate
 * must chain to a trusted manufacturer CA, be within its validity period at every
 * link, carry the EK certificate purpose (tcg-kp-EKCertificate, 2.23.133.8.1),
 * and certify exactly the EK the agent presented.
 */
import { X509Certificate, type KeyObject } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

export const EK_CERTIFICATE_OID = '2.23.133.8.1'

export type EkCertVerdict =
  | { ok: true; subject: string; issuer: string }
  | { ok: false; reason: string }

/** Loads every PEM certificate in the files of `dir` (or one file). */
export function loadCaBundle (path: string): X509Certificate[] {
  const files = statSync(path).isDirectory() ? readdirSync(path).filter((f) => /\.(pem|crt|cer)$/.test(f)).map((f) => join(path, f)) : [path]
  const certs: X509Certificate[] = []
  for (const f of files) {
    const text = readFileSync(f, 'utf8')
    for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)) certs.push(new X509Certificate(m[0]))
  }
  return certs
}

/** Parses DER as TPM NV stores it; a `10 01 00 ‖ len` prefix or trailing padding is tolerated. */
export function parseEkCert (der: Uint8Array): X509Certificate | undefined {
  let b = Buffer.from(der)
  if (b.length > 4 && b[0] === 0x10 && b[1] === 0x01 && b[2] === 0x00) b = b.subarray(4)
  // DER SEQUENCE length tells the real size; drop any NV padding after it
  if (b[0] === 0x30 && b[1] !== undefined && (b[1] & 0x80) !== 0) {
    const n = b[1] & 0x7f
    if (n >= 1 && n <= 3 && b.length >= 2 + n) {
      let len = 0
      for (let i = 0; i < n; i++) len = (len << 8) | b[2 + i]!
      b = b.subarray(0, 2 + n + len)
    }
  }
  try { return new X509Certificate(b) } catch { return undefined }
}

export function verifyEkCert (der: Uint8Array, ekKey: KeyObject, anchors: readonly X509Certificate[], now = new Date()): EkCertVerdict {
  const cert = parseEkCert(der)
  if (cert === undefined) return { ok: false, reason: 'the EK certificate does not parse as X.509' }
  if (!sameKey(cert.publicKey, ekKey)) return { ok: false, reason: 'the EK certificate certifies another key than the EK presented' }
  const eku = cert.keyUsage ?? []
  if (!eku.includes(EK_CERTIFICATE_OID)) return { ok: false, reason: `the certificate lacks the EK purpose ${EK_CERTIFICATE_OID}` }
  if (!within(cert, now)) return { ok: false, reason: 'the EK certificate is outside its validity period' }
  // The anchors are the admin's manufacturer CA files: the certificate's issuer
  // (root or intermediate) must be one of them. EK certificates in TPM NV carry
  // no intermediates, so a manufacturer's intermediates go into the CA directory.
  const issuer = anchors.find((a) => cert.checkIssued(a) && cert.verify(a.publicKey))
  if (issuer === undefined) return { ok: false, reason: `no trusted CA issued it (issuer '${cert.issuer}')` }
  if (!issuer.ca) return { ok: false, reason: `issuer '${issuer.subject}' is not a CA certificate` }
  if (!within(issuer, now)) return { ok: false, reason: `CA '${issuer.subject}' is outside its validity period` }
  return { ok: true, subject: cert.subject, issuer: cert.issuer }
}

function within (c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now <= new Date(c.validTo)
}

function sameKey (a: KeyObject, b: KeyObject): boolean {
  const ja = a.export({ format: 'jwk' })
  const jb = b.export({ format: 'jwk' })
  return ja.kty === jb.kty && ja.n === jb.n && ja.e === jb.e && ja.x === jb.x && ja.y === jb.y && ja.crv === jb.crv
}
