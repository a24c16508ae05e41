import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { Writer } from '../../server/attest/tpm/marshal.js'
import {
  attributeNames,
  checkAkAttributes,
  computeName,
  decodeTpm2bPublic,
  decodeTpmtPublic,
  publicKeyObject,
  type TpmtPublic,
} from '../../server/attest/tpm/public.js'
import { AK_ATTRS, EK_POLICY, encodePublic, fixture, publicJwkOf, reference, tpm2bOf } from './helpers.js'

function decoded(buf: Buffer): TpmtPublic {
  const r = decodeTpm2bPublic(buf)
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  return r.value
}

t.test('swtpm RSA EK: TCG L-1 template', async (t) => {
  const ek = decoded(fixture('swtpm-ek-rsa.pub'))
  t.equal(ek.type, TPM_ALG.RSA)
  t.equal(ek.nameAlg, TPM_ALG.SHA256)
  t.equal(ek.objectAttributes, 0x000300b2)
  t.same(attributeNames(ek.objectAttributes), ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'adminWithPolicy', 'restricted', 'decrypt'])
  t.same(ek.authPolicy, EK_POLICY)
  if (ek.type !== TPM_ALG.RSA) return
  t.same(ek.parameters.symmetric, { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB })
  t.equal(ek.parameters.scheme.scheme, TPM_ALG.NULL)
  t.equal(ek.parameters.keyBits, 2048)
  t.equal(ek.parameters.exponent, 0)
  t.equal(ek.unique.n.length, 256)
  const key = publicKeyObject(ek)
  t.ok(key.ok)
  if (key.ok) {
    t.equal(key.value.asymmetricKeyType, 'rsa')
    t.equal(key.value.asymmetricKeyDetails?.modulusLength, 2048)
    t.equal(key.value.asymmetricKeyDetails?.publicExponent, 65537n)
  }
})

t.test('swtpm ECC EK: TCG L-2 template and the persistent P-384 EK', async (t) => {
  const ek = decoded(fixture('swtpm-ek-ecc.pub'))
  t.equal(ek.type, TPM_ALG.ECC)
  if (ek.type !== TPM_ALG.ECC) return
  t.equal(ek.objectAttributes, 0x000300b2)
  t.equal(ek.parameters.curveID, 0x0003)
  t.equal(ek.parameters.kdf.scheme, TPM_ALG.NULL)
  t.equal(ek.unique.x.length, 32)
  t.ok(publicKeyObject(ek).ok)

  const ek384 = decoded(fixture('swtpm-ek-p384-persistent.pub'))
  if (ek384.type !== TPM_ALG.ECC) return t.fail('not ECC')
  t.equal(ek384.nameAlg, TPM_ALG.SHA384)
  t.equal(ek384.parameters.curveID, 0x0004)
  t.same(ek384.parameters.symmetric, { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB })
  t.equal(ek384.authPolicy.length, 48)
  const k = publicKeyObject(ek384)
  t.equal(k.ok && k.value.asymmetricKeyDetails?.namedCurve, 'secp384r1')
})

t.test('Name of tools-made AKs equals tpm2_createak -n', async (t) => {
  for (const [pub, name] of [
    ['swtpm-ak-rsa.pub', 'swtpm-ak-rsa.name'],
    ['swtpm-ak-ecc.pub', 'swtpm-ak-ecc.name'],
    ['swtpm-plain-sign.pub', 'swtpm-plain-sign.name'],
  ] as const) {
    const n = computeName(decoded(fixture(pub)))
    t.ok(n.ok, pub)
    if (n.ok) t.equal(n.value.toString('hex'), fixture(name).toString('hex'), pub)
  }
})

t.test('Name of the GCP AK equals the objectName of its creation attestation', async (t) => {
  const d = JSON.parse(reference('gcp_windows.json').toString('utf8'))
  const ak = decodeTpmtPublic(Buffer.from(d.AK.Public, 'base64'))
  t.ok(ak.ok)
  if (!ak.ok) return
  const n = computeName(ak.value)
  // TPMS_ATTEST (creation): magic 4, type 2, qualifiedSigner TPM2B(34), extraData TPM2B(0),
  // clockInfo 17, firmwareVersion 8, then TPM2B objectName.
  const attest = Buffer.from(d.AK.CreateAttestation, 'base64')
  const objectName = attest.subarray(4 + 2 + 36 + 2 + 17 + 8 + 2, 4 + 2 + 36 + 2 + 17 + 8 + 2 + 34)
  t.equal(n.ok && n.value.toString('hex'), objectName.toString('hex'))
  t.equal(ak.value.parameters.scheme.scheme, TPM_ALG.RSASSA)
  t.equal(ak.value.parameters.scheme.hashAlg, TPM_ALG.SHA1)
})

t.test('AK attribute checks', async (t) => {
  t.same(checkAkAttributes(decoded(fixture('swtpm-ak-rsa.pub'))), { ok: true })
  t.same(checkAkAttributes(decoded(fixture('swtpm-ak-ecc.pub'))), { ok: true })
  t.same(checkAkAttributes(decoded(fixture('swtpm-plain-sign.pub'))), { ok: false, missing: ['restricted'], forbidden: [] })
  t.same(checkAkAttributes(decoded(fixture('swtpm-ek-rsa.pub'))), {
    ok: false,
    missing: ['userWithAuth', 'sign'],
    forbidden: ['decrypt'],
  })
})

t.test('software keys round-trip through TPMT_PUBLIC', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const p = decodeTpmtPublic(encodePublic(rsa.publicKey, { scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 } }))
  t.ok(p.ok)
  if (p.ok) {
    const k = publicKeyObject(p.value)
    t.ok(k.ok && k.value.equals(rsa.publicKey))
  }
  const rsa3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })
  const p3 = decodeTpmtPublic(encodePublic(rsa3.publicKey))
  t.equal(p3.ok && p3.value.type === TPM_ALG.RSA && p3.value.parameters.exponent, 3)
  for (const curve of ['P-256', 'P-384', 'P-521']) {
    const ec = generateKeyPairSync('ec', { namedCurve: curve })
    const pe = decodeTpmtPublic(encodePublic(ec.publicKey, { scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 } }))
    t.ok(pe.ok, curve)
    if (pe.ok) {
      const k = publicKeyObject(pe.value)
      t.ok(k.ok && k.value.equals(ec.publicKey), curve)
    }
  }
})

t.test('malformed public areas', async (t) => {
  const good = fixture('swtpm-ak-rsa.pub')
  const body = good.subarray(2)
  for (let n = 0; n < good.length; n++) {
    const r = decodeTpm2bPublic(good.subarray(0, n))
    t.equal(r.ok, false, `prefix ${n}`)
  }
  for (let n = 0; n < body.length; n++) {
    const r = decodeTpmtPublic(body.subarray(0, n))
    if (r.ok) t.fail(`TPMT prefix ${n} decoded`)
    else if (r.error.code !== 'truncated') t.fail(`TPMT prefix ${n}: ${r.error.code}`)
  }
  const sizeBig = Buffer.from(good)
  sizeBig.writeUInt16BE(good.length - 1)
  t.match(decodeTpm2bPublic(sizeBig), { ok: false, error: { code: 'truncated' } })
  const sizeSmall = Buffer.from(good)
  sizeSmall.writeUInt16BE(good.length - 3)
  t.match(decodeTpm2bPublic(sizeSmall), { ok: false, error: { code: 'size-mismatch' } })
  t.match(decodeTpmtPublic(Buffer.concat([body, Buffer.of(0)])), { ok: false, error: { code: 'trailing-bytes' } })
  t.match(decodeTpm2bPublic(Buffer.alloc(2000)), { ok: false, error: { code: 'too-large' } })

  const keyedHash = new Writer().u16(TPM_ALG.KEYEDHASH).u16(TPM_ALG.SHA256).u32(0).tpm2b(Buffer.alloc(0)).u16(TPM_ALG.NULL).tpm2b(Buffer.alloc(32)).finish()
  t.match(decodeTpmtPublic(keyedHash), { ok: false, error: { code: 'unsupported-type', offset: 0 } })

  const badNameAlg = Buffer.from(body)
  badNameAlg.writeUInt16BE(0x0099, 2)
  t.match(decodeTpmtPublic(badNameAlg), { ok: false, error: { code: 'unsupported-alg', offset: 2 } })

  const bigPolicy = new Writer().u16(TPM_ALG.RSA).u16(TPM_ALG.SHA256).u32(AK_ATTRS).tpm2b(Buffer.alloc(65)).finish()
  t.match(decodeTpmtPublic(bigPolicy), { ok: false, error: { code: 'too-large' } })

  const badScheme = Buffer.from(body)
  // RSA AK layout: type 2, nameAlg 2, attrs 4, authPolicy 2, symmetric 2 (NULL), scheme at 12.
  badScheme.writeUInt16BE(0x0777, 12)
  t.match(decodeTpmtPublic(badScheme), { ok: false, error: { code: 'unsupported-scheme', offset: 12 } })

  const hugeModulus = new Writer().u16(TPM_ALG.RSA).u16(TPM_ALG.SHA256).u32(AK_ATTRS).tpm2b(Buffer.alloc(0)).u16(TPM_ALG.NULL).u16(TPM_ALG.NULL).u16(8192).u32(0).tpm2b(Buffer.alloc(1024, 0xff)).finish()
  t.match(decodeTpmtPublic(hugeModulus), { ok: false, error: { code: 'too-large' } })
})

t.test('public areas that decode but are not usable keys', async (t) => {
  const short = decodeTpmtPublic(new Writer().u16(TPM_ALG.RSA).u16(TPM_ALG.SHA256).u32(AK_ATTRS).tpm2b(Buffer.alloc(0)).u16(TPM_ALG.NULL).u16(TPM_ALG.NULL).u16(2048).u32(0).tpm2b(Buffer.alloc(255, 0xff)).finish())
  t.ok(short.ok)
  if (short.ok) t.match(publicKeyObject(short.value), { ok: false, error: { code: 'bad-key' } })

  const evenExp = decodeTpmtPublic(new Writer().u16(TPM_ALG.RSA).u16(TPM_ALG.SHA256).u32(AK_ATTRS).tpm2b(Buffer.alloc(0)).u16(TPM_ALG.NULL).u16(TPM_ALG.NULL).u16(2048).u32(4).tpm2b(Buffer.alloc(256, 0xff)).finish())
  if (evenExp.ok) t.match(publicKeyObject(evenExp.value), { ok: false, error: { code: 'bad-key' } })

  const offCurve = decodeTpmtPublic(new Writer().u16(TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(AK_ATTRS).tpm2b(Buffer.alloc(0)).u16(TPM_ALG.NULL).u16(TPM_ALG.NULL).u16(3).u16(TPM_ALG.NULL).tpm2b(Buffer.alloc(32, 1)).tpm2b(Buffer.alloc(32, 2)).finish())
  t.ok(offCurve.ok)
  if (offCurve.ok) t.match(publicKeyObject(offCurve.value), { ok: false, error: { code: 'bad-key' } })

  const badCurve = decodeTpmtPublic(new Writer().u16(TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(AK_ATTRS).tpm2b(Buffer.alloc(0)).u16(TPM_ALG.NULL).u16(TPM_ALG.NULL).u16(0x0010).u16(TPM_ALG.NULL).tpm2b(Buffer.alloc(32, 1)).tpm2b(Buffer.alloc(32, 2)).finish())
  if (badCurve.ok) t.match(publicKeyObject(badCurve.value), { ok: false, error: { code: 'unsupported-curve' } })

  const nullName = decodeTpmtPublic(new Writer().u16(TPM_ALG.ECC).u16(TPM_ALG.NULL).u32(AK_ATTRS).tpm2b(Buffer.alloc(0)).u16(TPM_ALG.NULL).u16(TPM_ALG.NULL).u16(3).u16(TPM_ALG.NULL).tpm2b(Buffer.alloc(32, 1)).tpm2b(Buffer.alloc(32, 2)).finish())
  t.ok(nullName.ok)
  if (nullName.ok) t.match(computeName(nullName.value), { ok: false, error: { code: 'unsupported-alg' } })
  t.same(tpm2bOf(Buffer.from('a')), Buffer.from('000161', 'hex'))
})

t.test('the Name hashes the received bytes, not a re-encoding', async (t) => {
  // A leading zero in the modulus field is kept in the bytes the Name covers.
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicJwkOf(ec.publicKey)
  const padded = new Writer().u16(TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(AK_ATTRS).tpm2b(Buffer.alloc(0)).u16(TPM_ALG.NULL).u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).u16(3).u16(TPM_ALG.NULL)
    .tpm2b(Buffer.concat([Buffer.of(0), Buffer.from(jwk.x!, 'base64url')])).tpm2b(Buffer.from(jwk.y!, 'base64url')).finish()
  const p = decodeTpmtPublic(padded)
  t.ok(p.ok)
  if (!p.ok) return
  t.same(p.value.raw, padded)
  const k = publicKeyObject(p.value)
  t.ok(k.ok && k.value.equals(ec.publicKey), 'leading zero accepted for the key')
})
