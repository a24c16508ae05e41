import t from 'tap'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import {
  decodeToolsCredentialFile,
  encodeToolsCredentialFile,
  makeCredential,
  TOOLS_CREDENTIAL_MAGIC,
} from '../../server/attest/tpm/credential.js'
import { computeName, decodeTpm2bPublic, decodeTpmtPublic, publicKeyObject, type TpmtPublic } from '../../server/attest/tpm/public.js'
import { EK_ATTRS, EK_POLICY, encodePublic, fixture, flipByte, softwareActivate } from './helpers.js'

function pub(b: Buffer): TpmtPublic {
  const r = decodeTpmtPublic(b)
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

const akName = (() => {
  const p = decodeTpm2bPublic(fixture('swtpm-ak-rsa.pub'))
  if (!p.ok) throw new Error('fixture')
  const n = computeName(p.value)
  if (!n.ok) throw new Error('name')
  return n.value
})()

const AES128 = { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }
const AES256 = { alg: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB }

const cases = [
  { what: 'RSA-2048 EK (L-1 shape)', gen: () => generateKeyPairSync('rsa', { modulusLength: 2048 }), nameAlg: TPM_ALG.SHA256, sym: AES128, hashLen: 32, secretLen: 2 + 256 },
  { what: 'ECC P-256 EK (L-2 shape)', gen: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), nameAlg: TPM_ALG.SHA256, sym: AES128, hashLen: 32, secretLen: 2 + 2 + 32 + 2 + 32 },
  { what: 'ECC P-384 EK (SHA-384, AES-256)', gen: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }), nameAlg: TPM_ALG.SHA384, sym: AES256, hashLen: 48, secretLen: 2 + 2 + 48 + 2 + 48 },
  { what: 'RSA-2048 EK (SHA-384, AES-256)', gen: () => generateKeyPairSync('rsa', { modulusLength: 2048 }), nameAlg: TPM_ALG.SHA384, sym: AES256, hashLen: 48, secretLen: 2 + 256 },
]

for (const c of cases) {
  t.test(`MakeCredential round trip: ${c.what}`, async (t) => {
    const { publicKey, privateKey } = c.gen()
    const ek = pub(encodePublic(publicKey, { nameAlg: c.nameAlg, attributes: EK_ATTRS, authPolicy: EK_POLICY, symmetric: c.sym }))
    for (const len of [1, 16, c.hashLen]) {
      const credential = randomBytes(len)
      const out = makeCredential({ ekPublic: ek, akName, credential })
      if (!out.ok) {
        t.fail(out.error.message)
        continue
      }
      // TPM2B_ID_OBJECT: u16 ‖ TPM2B(HMAC) ‖ encIdentity (u16 ‖ credential, encrypted).
      t.equal(out.value.credentialBlob.length, 2 + 2 + c.hashLen + 2 + len)
      t.equal(out.value.credentialBlob.readUInt16BE(0), out.value.credentialBlob.length - 2)
      t.equal(out.value.secret.length, c.secretLen)
      const got = softwareActivate(privateKey, ek, akName, out.value.credentialBlob, out.value.secret)
      t.same(got, credential, `credential of ${len} byte(s) recovered`)
    }
    const out = makeCredential({ ekPublic: ek, akName, credential: Buffer.from('secret') })
    if (!out.ok) return t.fail(out.error.message)
    const tampered = flipByte(out.value.credentialBlob, -1)
    t.equal(softwareActivate(privateKey, ek, akName, tampered, out.value.secret), 'integrity', 'a flipped encIdentity bit fails the HMAC')
    const otherName = flipByte(akName, 5)
    t.equal(softwareActivate(privateKey, ek, otherName, out.value.credentialBlob, out.value.secret), 'integrity', 'another object name fails the HMAC')
  })
}

t.test('a kept RSA EK key (ekKey) is the key the secret is encrypted to', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const ek = pub(encodePublic(publicKey, { attributes: EK_ATTRS, authPolicy: EK_POLICY, symmetric: AES128 }))
  const kept = publicKeyObject(ek)
  if (!kept.ok) return t.fail(kept.error.message)
  for (let i = 0; i < 3; i++) {
    const out = makeCredential({ ekPublic: ek, akName, credential: Buffer.from(`secret ${i}`), ekKey: kept.value })
    if (!out.ok) return t.fail(out.error.message)
    t.same(softwareActivate(privateKey, ek, akName, out.value.credentialBlob, out.value.secret), Buffer.from(`secret ${i}`), `use ${i + 1} of the kept key`)
  }
  // the key really is the one used: another EK's key makes a secret this TPM cannot recover
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const out = makeCredential({ ekPublic: ek, akName, credential: Buffer.from('x'), ekKey: other.publicKey })
  if (!out.ok) return t.fail(out.error.message)
  t.equal(softwareActivate(privateKey, ek, akName, out.value.credentialBlob, out.value.secret), 'seed', 'this TPM cannot decrypt the seed')
  t.same(softwareActivate(other.privateKey, ek, akName, out.value.credentialBlob, out.value.secret), Buffer.from('x'), 'the other key recovers it')
})

t.test('the seed is the only randomness for RSA EKs', async (t) => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const ek = pub(encodePublic(publicKey, { attributes: EK_ATTRS, symmetric: AES128 }))
  const seed = Buffer.alloc(32, 0x5a)
  const a = makeCredential({ ekPublic: ek, akName, credential: Buffer.from('x'), randomBytes: () => seed })
  const b = makeCredential({ ekPublic: ek, akName, credential: Buffer.from('x'), randomBytes: () => seed })
  t.ok(a.ok && b.ok)
  if (a.ok && b.ok) {
    t.same(a.value.credentialBlob, b.value.credentialBlob)
    t.not(a.value.secret.toString('hex'), b.value.secret.toString('hex'), 'OAEP padding is randomised')
  }
})

t.test('MakeCredential refuses what a TPM would refuse', async (t) => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const ek = pub(encodePublic(publicKey, { attributes: EK_ATTRS, symmetric: AES128 }))
  t.match(makeCredential({ ekPublic: ek, akName, credential: Buffer.alloc(33) }), { ok: false, error: { code: 'credential-too-large' } })
  t.match(makeCredential({ ekPublic: ek, akName, credential: Buffer.alloc(0) }), { ok: false, error: { code: 'credential-empty' } })
  t.match(makeCredential({ ekPublic: ek, akName: akName.subarray(0, 20), credential: Buffer.alloc(1) }), { ok: false, error: { code: 'bad-name' } })
  t.match(makeCredential({ ekPublic: ek, akName: Buffer.from('40000001', 'hex'), credential: Buffer.alloc(1) }), { ok: false, error: { code: 'bad-name' } })
  t.match(makeCredential({ ekPublic: ek, akName: Buffer.alloc(0), credential: Buffer.alloc(1) }), { ok: false, error: { code: 'bad-name' } })

  const ak = decodeTpm2bPublic(fixture('swtpm-ak-rsa.pub'))
  if (ak.ok) t.match(makeCredential({ ekPublic: ak.value, akName, credential: Buffer.alloc(1) }), { ok: false, error: { code: 'ek-not-storage-key' } })
  const cbc = pub(encodePublic(publicKey, { attributes: EK_ATTRS, symmetric: { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CBC } }))
  t.match(makeCredential({ ekPublic: cbc, akName, credential: Buffer.alloc(1) }), { ok: false, error: { code: 'ek-unsupported' } })
  const noSym = pub(encodePublic(publicKey, { attributes: EK_ATTRS }))
  t.match(makeCredential({ ekPublic: noSym, akName, credential: Buffer.alloc(1) }), { ok: false, error: { code: 'ek-unsupported' } })
  const badPoint = { ...ek, unique: { x: Buffer.alloc(32, 1), y: Buffer.alloc(32, 2) } } as TpmtPublic
  t.match(makeCredential({ ekPublic: badPoint, akName, credential: Buffer.alloc(1) }), { ok: false, error: { code: 'bad-ek' } })
  const wrongEph = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
  t.match(makeCredential({ ekPublic: ek, akName, credential: Buffer.alloc(1), ephemeralPrivateKey: wrongEph }), { ok: false })
})

t.test('MakeCredential for the swtpm EKs produces well-formed output', async (t) => {
  for (const f of ['swtpm-ek-rsa.pub', 'swtpm-ek-ecc.pub', 'swtpm-ek-p384-persistent.pub']) {
    const ek = decodeTpm2bPublic(fixture(f))
    if (!ek.ok) return t.fail(f)
    const out = makeCredential({ ekPublic: ek.value, akName, credential: Buffer.from('0123456789abcdef') })
    t.ok(out.ok, f)
  }
})

t.test('tpm2-tools credential file format', async (t) => {
  const real = fixture('tpm2-makecredential-rsa.cred')
  const d = decodeToolsCredentialFile(real)
  t.ok(d.ok)
  if (!d.ok) return
  t.equal(real.readUInt32BE(0), TOOLS_CREDENTIAL_MAGIC)
  t.equal(d.value.credentialBlob.length, 2 + 2 + 32 + 2 + 32, 'tools made a 32-byte credential')
  t.equal(d.value.secret.length, 2 + 256)
  t.same(encodeToolsCredentialFile(d.value), real, 'our encoder reproduces the tools file byte for byte')

  t.match(decodeToolsCredentialFile(real.subarray(0, 6)), { ok: false, error: { code: 'truncated' } })
  const badMagic = Buffer.from(real)
  badMagic[0] = 0
  t.match(decodeToolsCredentialFile(badMagic), { ok: false, error: { code: 'bad-magic' } })
  const badVersion = Buffer.from(real)
  badVersion[7] = 2
  t.match(decodeToolsCredentialFile(badVersion), { ok: false, error: { code: 'bad-version' } })
  t.match(decodeToolsCredentialFile(Buffer.concat([real, Buffer.of(0)])), { ok: false, error: { code: 'trailing-bytes' } })
  t.match(decodeToolsCredentialFile(real.subarray(0, real.length - 1)), { ok: false, error: { code: 'truncated' } })
  const bigBlob = Buffer.from(real)
  bigBlob.writeUInt16BE(0x1000, 8)
  t.match(decodeToolsCredentialFile(bigBlob), { ok: false, error: { code: 'too-large' } })
})
