import t from 'tap'
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { TPM_ALG, TPM_ST_ATTEST } from '../../server/attest/tpm/alg.js'
import { computePcrDigest, encodePcrSelection, pcrBanks, type PcrBanks } from '../../server/attest/tpm/pcr.js'
import { decodeTpmtPublic, publicKeyObject, type TpmtPublic } from '../../server/attest/tpm/public.js'
import { QUOTE_FAILURE_REASONS, decodeAttest, decodeSignature, verifyQuote, type QuoteFailureReason, type VerifyQuoteInput } from '../../server/attest/tpm/quote.js'
import { Reader } from '../../server/attest/tpm/marshal.js'
import { AK_ATTRS, encodeAttest, encodePublic, fixture, flipByte, signTpm } from './helpers.js'

interface QuoteFixture { akPublic: string; attest: string; signature: string; nonceHex: string; pcrs: { sha256: Record<string, string> } }
const quotes = JSON.parse(fixture('swtpm-quotes.json').toString('utf8')) as Record<'rsa' | 'ecc', QuoteFixture>

function fixturePcrs(q: QuoteFixture): PcrBanks {
  return pcrBanks([[TPM_ALG.SHA256, Object.entries(q.pcrs.sha256).map(([k, v]) => [Number(k), Buffer.from(v, 'hex')] as const)]])
}

function reason(v: ReturnType<typeof verifyQuote>): QuoteFailureReason | 'ok' {
  return v.ok ? 'ok' : v.reason
}

for (const kind of ['rsa', 'ecc'] as const) {
  t.test(`swtpm ${kind} quote (recorded) verifies and fails for the right reasons`, async (t) => {
    const q = quotes[kind]
    const base: VerifyQuoteInput = {
      akPublic: fixture(q.akPublic),
      attest: fixture(q.attest),
      signature: fixture(q.signature),
      expectedNonce: Buffer.from(q.nonceHex, 'hex'),
      pcrs: fixturePcrs(q),
    }
    const v = verifyQuote(base)
    t.equal(reason(v), 'ok')
    if (v.ok) {
      t.same(v.pcrSelect.map((s) => s.hashAlg), [TPM_ALG.SHA256])
      t.equal(v.attest.clockInfo.safe, true)
      t.equal(v.signature.sigAlg, kind === 'rsa' ? TPM_ALG.RSASSA : TPM_ALG.ECDSA)
      t.equal(v.attest.firmwareVersion, 0x2019102300163636n, 'swtpm 0.7 firmware version is not obfuscated for an AK under the EK')
    }
    t.equal(reason(verifyQuote({ ...base, expectedNonce: Buffer.from('nonce') })), 'nonce-mismatch')
    t.equal(reason(verifyQuote({ ...base, expectedNonce: Buffer.alloc(0) })), 'nonce-mismatch')
    const flipped = flipByte(Buffer.from(base.attest), -40)
    t.equal(reason(verifyQuote({ ...base, attest: flipped })), 'bad-signature')
    const magic = flipByte(Buffer.from(base.attest), 0)
    t.equal(reason(verifyQuote({ ...base, attest: magic })), 'bad-magic')
    const bad16 = new Map([[TPM_ALG.SHA256, new Map(fixturePcrs(q).get(TPM_ALG.SHA256)!)]])
    bad16.get(TPM_ALG.SHA256)!.set(16, Buffer.alloc(32))
    t.equal(reason(verifyQuote({ ...base, pcrs: bad16 })), 'pcr-digest-mismatch')
    const missing = new Map([[TPM_ALG.SHA256, new Map([[0, Buffer.alloc(32)]])]])
    t.equal(reason(verifyQuote({ ...base, pcrs: missing })), 'pcr-value-missing')
    t.equal(reason(verifyQuote({ ...base, requiredPcrs: new Map([[TPM_ALG.SHA256, [0, 7]]]) })), 'pcr-not-selected')
    t.equal(reason(verifyQuote({ ...base, requiredPcrs: new Map([[TPM_ALG.SHA1, [0]]]) })), 'pcr-not-selected')
    t.equal(reason(verifyQuote({ ...base, requiredPcrs: new Map([[TPM_ALG.SHA256, [0, 16]]]) })), 'ok')
    if (v.ok) {
      const { resetCount, restartCount } = v.attest.clockInfo
      t.equal(reason(verifyQuote({ ...base, previousCounters: { resetCount, restartCount } })), 'ok')
      t.equal(reason(verifyQuote({ ...base, previousCounters: { resetCount: resetCount + 1, restartCount: 0 } })), 'counter-rollback')
      t.equal(reason(verifyQuote({ ...base, previousCounters: { resetCount, restartCount: restartCount + 1 } })), 'counter-rollback')
    }
    const other = kind === 'rsa' ? quotes.ecc : quotes.rsa
    t.equal(reason(verifyQuote({ ...base, akPublic: fixture(other.akPublic) })), 'scheme-mismatch')
    t.equal(reason(verifyQuote({ ...base, signature: fixture(other.signature) })), 'scheme-mismatch')
    t.equal(reason(verifyQuote({ ...base, akPublic: fixture('swtpm-plain-sign.pub') })), 'ak-attributes')
    t.equal(reason(verifyQuote({ ...base, akPublic: fixture('swtpm-ak-rsa.pub').subarray(1) })), 'bad-ak-public')
    t.equal(reason(verifyQuote({ ...base, signature: fixture(q.signature).subarray(0, 10) })), 'malformed-signature')
    t.equal(reason(verifyQuote({ ...base, attest: fixture(q.attest).subarray(0, 50) })), 'malformed-attest')
  })
}

t.test('GCP Windows quote: SHA-1 RSASSA AK, 24 SHA-1 PCRs, empty nonce', async (t) => {
  const d = JSON.parse((await import('node:fs')).readFileSync(new URL('../../../shared/reference/eventlogs/gcp_windows.json', import.meta.url), 'utf8'))
  const ak = decodeTpmtPublic(Buffer.from(d.AK.Public, 'base64'))
  if (!ak.ok) return t.fail(ak.error.message)
  const pcrs = pcrBanks([[TPM_ALG.SHA1, (d.Log.PCRs as { Index: number; Digest: string }[]).map((p) => [p.Index, Buffer.from(p.Digest, 'base64')] as const)]])
  const base: VerifyQuoteInput = {
    akPublic: ak.value,
    attest: Buffer.from(d.Quote.Quote, 'base64'),
    signature: Buffer.from(d.Quote.Signature, 'base64'),
    expectedNonce: Buffer.from(d.Quote.Nonce, 'base64'),
    pcrs,
  }
  const v = verifyQuote(base)
  t.equal(reason(v), 'ok')
  if (v.ok) {
    t.same(v.pcrSelect, [{ hashAlg: TPM_ALG.SHA1, sizeofSelect: 3, pcrs: Array.from({ length: 24 }, (_, i) => i) }])
    t.equal(v.pcrDigest.length, 20)
    t.same(v.signature.hashAlg, TPM_ALG.SHA1)
  }
  // The AK's creation attestation is signed by the same key but is not a quote.
  t.equal(reason(verifyQuote({ ...base, attest: Buffer.from(d.AK.CreateAttestation, 'base64'), signature: Buffer.from(d.AK.CreateSignature, 'base64') })), 'wrong-type')
  const creation = decodeAttest(Buffer.from(d.AK.CreateAttestation, 'base64'))
  t.equal(creation.ok && creation.value.attested.kind, 'creation')
})

function softAk(kind: 'rsa' | 'p256' | 'p384'): { priv: KeyObject; pub: TpmtPublic; sigAlg: number; hashAlg: number } {
  const pair = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: kind === 'p256' ? 'P-256' : 'P-384' })
  const sigAlg = kind === 'rsa' ? TPM_ALG.RSASSA : TPM_ALG.ECDSA
  const hashAlg = kind === 'p384' ? TPM_ALG.SHA384 : TPM_ALG.SHA256
  const p = decodeTpmtPublic(encodePublic(pair.publicKey, { scheme: { scheme: sigAlg, hashAlg } }))
  if (!p.ok) throw new Error(p.error.message)
  return { priv: pair.privateKey, pub: p.value, sigAlg, hashAlg }
}

t.test('software-signed quotes exercise every failure reason', async (t) => {
  const nonce = Buffer.from('0123456789abcdef0123456789abcdef', 'hex')
  const pcrs = pcrBanks([
    [TPM_ALG.SHA256, [[0, Buffer.alloc(32, 1)], [7, Buffer.alloc(32, 7)]]],
    [TPM_ALG.SHA1, [[4, Buffer.alloc(20, 4)]]],
  ])
  const sel = [{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 7] }, { hashAlg: TPM_ALG.SHA1, pcrs: [4] }]
  const seen = new Set<string>()
  for (const kind of ['rsa', 'p256', 'p384'] as const) {
    const ak = softAk(kind)
    const hashName = kind === 'p384' ? 'sha384' : 'sha256'
    const digest = computePcrDigest(hashName, sel.map((s) => ({ ...s, sizeofSelect: 3 })), pcrs)
    if (!digest.ok) return t.fail('digest')
    t.equal(digest.value.toString('hex'), createHash(hashName).update(Buffer.concat([Buffer.alloc(32, 1), Buffer.alloc(32, 7), Buffer.alloc(20, 4)])).digest('hex'), 'selection order: banks in order, PCRs ascending')
    const make = (spec: Parameters<typeof encodeAttest>[0] = {}, sigAlg = ak.sigAlg, hashAlg = ak.hashAlg) => {
      const attest = encodeAttest({ extraData: nonce, pcrSelect: sel, pcrDigest: digest.value, ...spec })
      return { attest, signature: signTpm(ak.priv, sigAlg, hashAlg, attest) }
    }
    const check = (want: QuoteFailureReason | 'ok', input: Partial<VerifyQuoteInput>, what: string) => {
      const v = verifyQuote({ akPublic: ak.pub, expectedNonce: nonce, pcrs, ...make(), ...input })
      t.equal(reason(v), want, `${kind}: ${what}`)
      seen.add(reason(v))
    }
    check('ok', {}, 'valid')
    check('bad-magic', make({ magic: 0xff544348 }), 'a key that would sign anything still needs the magic')
    check('wrong-type', make({ type: TPM_ST_ATTEST.CERTIFY + 0x100 }), 'unknown attestation type')
    check('nonce-mismatch', make({ extraData: Buffer.alloc(32) }), 'other nonce')
    check('pcr-digest-mismatch', make({ pcrDigest: Buffer.alloc(32) }), 'zero digest')
    check('pcr-not-selected', { requiredPcrs: new Map([[TPM_ALG.SHA256, [0, 7, 8]]]) }, 'policy PCR 8 not quoted')
    check('clock-not-safe', make({ safe: 0 }), 'unsafe clock')
    check('ok', { ...make({ safe: 0 }), requireSafeClock: false }, 'unsafe clock allowed')
    check('counter-rollback', { ...make({ resetCount: 3, restartCount: 9 }), previousCounters: { resetCount: 4, restartCount: 0 } }, 'reset count went back')
    check('ok', { ...make({ resetCount: 5, restartCount: 0 }), previousCounters: { resetCount: 4, restartCount: 9 } }, 'reset count went forward')
    check('scheme-mismatch', make({}, ak.sigAlg, TPM_ALG.SHA512), 'hash other than the key scheme')
    check('bad-signature', { signature: make().signature, attest: make({ clock: 7n }).attest }, 'signature over other bytes')
    check('malformed-attest', { attest: Buffer.concat([make().attest, Buffer.of(0)]) }, 'trailing byte')
    check('pcr-value-missing', { pcrs: pcrBanks([[TPM_ALG.SHA256, [[0, Buffer.alloc(32, 1)], [7, Buffer.alloc(32, 7)]]]]) }, 'SHA-1 bank missing')
    check('pcr-value-missing', { pcrs: pcrBanks([[TPM_ALG.SHA256, [[0, Buffer.alloc(32, 1)], [7, Buffer.alloc(20, 7)]]], [TPM_ALG.SHA1, [[4, Buffer.alloc(20, 4)]]]]) }, 'wrong value length')
    check('ak-attributes', { akPublic: { ...ak.pub, attributes: { ...ak.pub.attributes, restricted: false } } }, 'unrestricted AK')
    check('ok', { akPublic: { ...ak.pub, attributes: { ...ak.pub.attributes, restricted: false } }, skipAkAttributeCheck: true }, 'attribute check skipped')
    check('ak-attributes', { akPublic: { ...ak.pub, attributes: { ...ak.pub.attributes, decrypt: true } } }, 'AK that decrypts')
    const k = publicKeyObject(ak.pub)
    if (k.ok) check('ok', { akKey: k.value }, 'cached KeyObject')
    check('bad-signature', { akKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey }, 'cached KeyObject of another key')
  }
  const rsa = softAk('rsa')
  const attest = encodeAttest({ extraData: nonce, pcrSelect: sel, pcrDigest: Buffer.alloc(32) })
  // An AK with scheme NULL accepts RSASSA and RSAPSS; PSS with salt = hash length.
  const nullScheme = { ...rsa.pub, parameters: { ...rsa.pub.parameters, scheme: { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL, count: 0 } } } as TpmtPublic
  for (const sigAlg of [TPM_ALG.RSASSA, TPM_ALG.RSAPSS]) {
    const digest = computePcrDigest('sha256', sel.map((s) => ({ ...s, sizeofSelect: 3 })), pcrs)
    const a = encodeAttest({ extraData: nonce, pcrSelect: sel, pcrDigest: digest.ok ? digest.value : Buffer.alloc(0) })
    t.equal(reason(verifyQuote({ akPublic: nullScheme, attest: a, signature: signTpm(rsa.priv, sigAlg, TPM_ALG.SHA256, a), expectedNonce: nonce, pcrs })), 'ok', `sigAlg 0x${sigAlg.toString(16)}`)
  }
  t.equal(reason(verifyQuote({ akPublic: nullScheme, attest, signature: signTpm(softAk('p256').priv, TPM_ALG.ECDSA, TPM_ALG.SHA256, attest), expectedNonce: nonce, pcrs })), 'scheme-mismatch')
  for (const r of QUOTE_FAILURE_REASONS) if (!['bad-ak-public', 'malformed-signature'].includes(r)) t.ok(seen.has(r), `reason ${r} exercised`)
})

t.test('TPMS_ATTEST decoder: every prefix of a real quote fails cleanly', async (t) => {
  const a = fixture('swtpm-quote-rsa.attest')
  const d = decodeAttest(a)
  t.ok(d.ok)
  if (d.ok) {
    t.equal(d.value.type, TPM_ST_ATTEST.QUOTE)
    t.equal(d.value.extraData.toString('latin1'), 'abcdef0123456789')
    t.equal(d.value.qualifiedSigner.length, 34)
  }
  for (let n = 0; n < a.length; n++) {
    const r = decodeAttest(a.subarray(0, n))
    if (r.ok) t.fail(`prefix ${n} decoded`)
    else if (!['truncated', 'bad-magic'].includes(r.error.code)) t.fail(`prefix ${n}: ${r.error.code}`)
  }
  t.match(decodeAttest(Buffer.alloc(4096)), { ok: false, error: { code: 'too-large' } })
  t.match(decodeAttest(Buffer.from('ff54434780ff', 'hex')), { ok: false, error: { code: 'truncated' } })
  t.match(decodeAttest(encodeAttest({ type: 0x80ff })), { ok: false, error: { code: 'unsupported-type' } })
  const bigSel = encodeAttest({ pcrSelect: Array.from({ length: 17 }, () => ({ hashAlg: TPM_ALG.SHA256, pcrs: [0] })) })
  t.match(decodeAttest(bigSel), { ok: false, error: { code: 'too-large' } })
  const wideSelect = encodeAttest({ pcrSelect: [{ hashAlg: TPM_ALG.SHA256, pcrs: [80] }] })
  t.match(decodeAttest(wideSelect), { ok: false, error: { code: 'too-large' } })
  const longNonce = encodeAttest({ extraData: Buffer.alloc(67) })
  t.match(decodeAttest(longNonce), { ok: false, error: { code: 'too-large' } })
  t.same(encodePcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 9, 23] }]).toString('hex'), '00000001000b03010280')
})

t.test('TPMS_ATTEST decoder: other attestation types', async (t) => {
  const w = (type: number, body: Buffer) => {
    const head = encodeAttest({ type }).subarray(0, 4 + 2 + 36 + 2 + 17 + 8)
    return Buffer.concat([head, body])
  }
  const name = Buffer.concat([Buffer.from('0022000b', 'hex'), Buffer.alloc(32, 1)])
  t.match(decodeAttest(w(TPM_ST_ATTEST.CERTIFY, Buffer.concat([name, name]))), { ok: true, value: { attested: { kind: 'certify' } } })
  t.match(decodeAttest(w(TPM_ST_ATTEST.TIME, Buffer.alloc(8 + 17 + 8))), { ok: true, value: { attested: { kind: 'time' } } })
  t.match(decodeAttest(w(TPM_ST_ATTEST.COMMAND_AUDIT, Buffer.alloc(8 + 2 + 2 + 2))), { ok: true, value: { attested: { kind: 'command-audit' } } })
  t.match(decodeAttest(w(TPM_ST_ATTEST.SESSION_AUDIT, Buffer.alloc(1 + 2))), { ok: true, value: { attested: { kind: 'session-audit' } } })
  t.match(decodeAttest(w(TPM_ST_ATTEST.NV, Buffer.concat([name, Buffer.alloc(4)]))), { ok: true, value: { attested: { kind: 'nv' } } })
  t.match(decodeAttest(w(TPM_ST_ATTEST.NV_DIGEST, Buffer.concat([name, Buffer.alloc(2)]))), { ok: true, value: { attested: { kind: 'nv-digest' } } })
})

t.test('TPMT_SIGNATURE decoder', async (t) => {
  const rsa = fixture('swtpm-quote-rsa.sig')
  const ecc = fixture('swtpm-quote-ecc.sig')
  t.match(decodeSignature(rsa), { ok: true, value: { sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 } })
  t.match(decodeSignature(ecc), { ok: true, value: { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 } })
  for (const s of [rsa, ecc]) {
    for (let n = 0; n < s.length; n++) {
      const r = decodeSignature(s.subarray(0, n))
      if (r.ok) t.fail(`prefix ${n} decoded`)
      else if (r.error.code !== 'truncated') t.fail(`prefix ${n}: ${r.error.code}`)
    }
  }
  t.match(decodeSignature(Buffer.concat([ecc, Buffer.of(0)])), { ok: false, error: { code: 'trailing-bytes' } })
  t.match(decodeSignature(Buffer.from('0005000b0020', 'hex')), { ok: false, error: { code: 'unsupported-scheme' } })
  t.match(decodeSignature(Buffer.from('001400990000', 'hex')), { ok: false, error: { code: 'unsupported-alg' } })
  t.match(decodeSignature(Buffer.from('0018000b00450000', 'hex')), { ok: false, error: { code: 'too-large' } })
  t.match(decodeSignature(Buffer.alloc(2000)), { ok: false, error: { code: 'too-large' } })
  const r = new Reader(rsa)
  t.equal(r.u16(), TPM_ALG.RSASSA)
  t.same(AK_ATTRS, 0x00050072)
})
