/**
 * A test certificate authority for EK certificates: a self-signed P-256 root that
 * issues X.509 v3 EK certificates in the shape of the TCG EK Credential Profile 2.x
 * (§3.2): empty subject with a critical subjectAltName directoryName naming the
 * TPM manufacturer, model and version; keyUsage keyEncipherment (RSA EK) or
 * keyAgreement (ECC EK); extKeyUsage tcg-kp-EKCertificate (2.23.133.8.1);
 * basicConstraints CA:FALSE. node:crypto can verify certificates but not make
 * them, so the DER (X.690) is written here; `openssl verify` cross-checks it in
 * test/sim/soft-tpm.test.ts.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto'

// ---- DER (X.690 §8, definite lengths) -----------------------------------------

function tlv (tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content)
  const n = body.length
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff]) : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff])
  return Buffer.concat([Buffer.from([tag]), len, body])
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c)
const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c)
const explicit = (n: number, ...c: Buffer[]): Buffer => tlv(0xa0 | n, ...c)
const octets = (b: Buffer): Buffer => tlv(0x04, b)
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'))
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]))
/** BIT STRING with `unused` trailing bits in the last octet. */
const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.from([unused]), b)

/** A non-negative INTEGER from big-endian magnitude bytes. */
function uint (b: Buffer): Buffer {
  let i = 0
  while (i < b.length - 1 && b[i] === 0) i++
  const m = b.subarray(i)
  return tlv(0x02, (m[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), m]) : m)
}

function oid (dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => BigInt(s))
  const out: number[] = []
  const push = (v: bigint): void => {
    const tmp: number[] = [Number(v & 0x7fn)]
    for (v >>= 7n; v > 0n; v >>= 7n) tmp.unshift(Number(v & 0x7fn) | 0x80)
    out.push(...tmp)
  }
  push(arcs[0]! * 40n + arcs[1]!)
  for (const a of arcs.slice(2)) push(a)
  return tlv(0x06, Buffer.from(out))
}

/** UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
function time (d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, 'latin1')) : tlv(0x18, Buffer.from(`${iso}Z`, 'latin1'))
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  tcgEkCertificate: '2.23.133.8.1',
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
} as const

function name (attrs: readonly (readonly [string, string])[]): Buffer {
  return seq(...attrs.map(([o, v]) => set(seq(oid(o), utf8(v)))))
}

function extension (o: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(o), ...(critical ? [bool(true)] : []), octets(value))
}

/** A key identifier: SHA-1 of the whole SubjectPublicKeyInfo (RFC 5280 §4.2.1.2 allows any unique value). */
function keyId (spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest()
}

// ---- the CA --------------------------------------------------------------------

export interface EkCertOptions {
  readonly serial?: Buffer
  readonly notBefore?: Date
  readonly notAfter?: Date
  /** Leave out extKeyUsage tcg-kp-EKCertificate (for refusal tests). */
  readonly withoutEkPurpose?: boolean
}

export class SoftCa {
  private constructor (
    private readonly key: KeyObject,
    private readonly subject: Buffer,
    private readonly keyIdentifier: Buffer,
    /** The root certificate, DER. */
    readonly der: Buffer,
  ) {}

  /** A self-signed P-256 root valid from a day ago for `years`. */
  static create (o: { commonName?: string; years?: number; now?: Date } = {}): SoftCa {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const spki = publicKey.export({ format: 'der', type: 'spki' })
    const subject = name([[OID.organization, 'netboot test'], [OID.commonName, o.commonName ?? 'soft-tpm EK CA']])
    const ski = keyId(spki)
    const now = o.now ?? new Date()
    const tbs = seq(
      explicit(0, uint(Buffer.from([2]))),
      uint(randomBytes(12)),
      seq(oid(OID.ecdsaWithSha256)),
      subject,
      seq(time(new Date(now.getTime() - 86_400_000)), time(new Date(now.getTime() + (o.years ?? 10) * 365 * 86_400_000))),
      subject,
      spki,
      explicit(3, seq(
        extension(OID.basicConstraints, true, seq(bool(true))),
        extension(OID.keyUsage, true, bits(Buffer.from([0x06]), 1)), // keyCertSign, cRLSign
        extension(OID.subjectKeyIdentifier, false, octets(ski)),
      )),
    )
    return new SoftCa(privateKey, subject, ski, signed(tbs, privateKey))
  }

  get pem (): string {
    return `-----BEGIN CERTIFICATE-----\n${this.der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`
  }

  get certificate (): X509Certificate {
    return new X509Certificate(this.der)
  }

  /** An EK certificate (DER) for `ekPublicKey`, an RSA or EC public key. */
  issueEkCert (ekPublicKey: KeyObject, o: EkCertOptions = {}): Buffer {
    const spki = ekPublicKey.export({ format: 'der', type: 'spki' })
    const rsa = ekPublicKey.asymmetricKeyType === 'rsa'
    const now = new Date()
    const san = seq(explicit(4, name([[OID.tpmManufacturer, 'id:534F4654'], [OID.tpmModel, 'soft-tpm'], [OID.tpmVersion, 'id:00010000']])))
    const tbs = seq(
      explicit(0, uint(Buffer.from([2]))),
      uint(o.serial ?? randomBytes(12)),
      seq(oid(OID.ecdsaWithSha256)),
      this.subject,
      seq(time(o.notBefore ?? new Date(now.getTime() - 86_400_000)), time(o.notAfter ?? new Date(Date.UTC(2049, 11, 31)))),
      seq(), // empty subject: the TPM is named by the subjectAltName (EK Credential Profile §3.2.9)
      spki,
      explicit(3, seq(
        extension(OID.basicConstraints, true, seq()),
        extension(OID.keyUsage, true, rsa ? bits(Buffer.from([0x20]), 5) : bits(Buffer.from([0x08]), 3)), // keyEncipherment | keyAgreement
        extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, this.keyIdentifier))),
        extension(OID.subjectAltName, true, san),
        ...(o.withoutEkPurpose === true ? [] : [extension(OID.extKeyUsage, false, seq(oid(OID.tcgEkCertificate)))]),
      )),
    )
    return signed(tbs, this.key)
  }
}

function signed (tbs: Buffer, key: KeyObject): Buffer {
  return seq(tbs, seq(oid(OID.ecdsaWithSha256)), bits(sign('sha256', tbs, key)))
}
