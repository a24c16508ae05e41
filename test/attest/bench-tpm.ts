// Quick measurement, not a test: operations per second on one core for
// MakeCredential and verifyQuote next to the raw node:crypto operations they are
// built from. Run:
//   taskset -c 0 node --import=@tapjs/typescript/import test/attest/bench-tpm.ts
import { constants, createPublicKey, publicEncrypt, verify, randomBytes, diffieHellman, generateKeyPairSync } from 'node:crypto'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { makeCredential } from '../../server/attest/tpm/credential.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { decodeTpm2bPublic, publicKeyObject } from '../../server/attest/tpm/public.js'
import { decodeSignature, verifyQuote } from '../../server/attest/tpm/quote.js'
import { fixture } from './helpers.js'

function bench(name: string, fn: () => unknown, ms = 1500): void {
  for (let i = 0; i < 50; i++) fn()
  let n = 0
  const t0 = performance.now()
  let t1 = t0
  while (t1 - t0 < ms) {
    for (let i = 0; i < 20; i++) fn()
    n += 20
    t1 = performance.now()
  }
  console.log(`${name.padEnd(44)} ${((n * 1000) / (t1 - t0)).toFixed(0).padStart(8)} ops/s`)
}

function must<T>(r: { ok: true; value: T } | { ok: false; error: { message: string } }): T {
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

const ekRsa = must(decodeTpm2bPublic(fixture('swtpm-ek-rsa.pub')))
const ekEcc = must(decodeTpm2bPublic(fixture('swtpm-ek-ecc.pub')))
const akName = fixture('swtpm-ak-rsa.name')
const credential = randomBytes(32)
const quotes = JSON.parse(fixture('swtpm-quotes.json').toString('utf8')) as Record<'rsa' | 'ecc', { akPublic: string; attest: string; signature: string; nonceHex: string; pcrs: { sha256: Record<string, string> } }>
const quoteInput = (k: 'rsa' | 'ecc') => {
  const q = quotes[k]
  return {
    akPublic: fixture(q.akPublic),
    attest: fixture(q.attest),
    signature: fixture(q.signature),
    expectedNonce: Buffer.from(q.nonceHex, 'hex'),
    pcrs: pcrBanks([[TPM_ALG.SHA256, Object.entries(q.pcrs.sha256).map(([i, v]) => [Number(i), Buffer.from(v, 'hex')] as const)]]),
  }
}
const qr = quoteInput('rsa')
const qe = quoteInput('ecc')
for (const q of [qr, qe]) if (!verifyQuote(q).ok) throw new Error('fixture quote does not verify')

const rsaKey = must(publicKeyObject(ekRsa))
const eccKey = must(publicKeyObject(ekEcc))
const akRsaKey = must(publicKeyObject(must(decodeTpm2bPublic(qr.akPublic))))
const akEccKey = must(publicKeyObject(must(decodeTpm2bPublic(qe.akPublic))))
const sigRsa = must(decodeSignature(qr.signature))
const sigEcc = must(decodeSignature(qe.signature))
const rsaSigBytes = 'sig' in sigRsa ? sigRsa.sig : Buffer.alloc(0)
const eccSigBytes = 'r' in sigEcc ? Buffer.concat([sigEcc.r, sigEcc.s]) : Buffer.alloc(0)
const seed = randomBytes(32)
const label = Buffer.from('IDENTITY\0', 'latin1')

// `npx tap test/attest` also loads this file: do nothing under the test runner.
if (process.env.TAP === '1') process.exit(0)
console.log(`node ${process.version}, one thread`)
bench('makeCredential, RSA-2048 EK', () => must(makeCredential({ ekPublic: ekRsa, akName, credential })))
bench('makeCredential, ECC P-256 EK', () => must(makeCredential({ ekPublic: ekEcc, akName, credential })))
bench('verifyQuote, RSA-2048 AK (TPM2B_PUBLIC in)', () => verifyQuote(qr).ok || process.exit(1))
bench('verifyQuote, ECC P-256 AK (TPM2B_PUBLIC in)', () => verifyQuote(qe).ok || process.exit(1))
bench('verifyQuote, RSA-2048 AK (cached akKey)', () => verifyQuote({ ...qr, akKey: akRsaKey }).ok || process.exit(1))
bench('verifyQuote, ECC P-256 AK (cached akKey)', () => verifyQuote({ ...qe, akKey: akEccKey }).ok || process.exit(1))
bench('raw RSA-2048 OAEP-SHA256 publicEncrypt', () => publicEncrypt({ key: rsaKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, seed))
bench('raw RSA-2048 PKCS#1 v1.5 SHA-256 verify', () => verify('sha256', qr.attest, akRsaKey, rsaSigBytes))
bench('raw P-256 keygen + ECDH', () => diffieHellman({ privateKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, publicKey: eccKey }))
bench('raw P-256 ECDSA SHA-256 verify', () => verify('sha256', qe.attest, { key: akEccKey, dsaEncoding: 'ieee-p1363' }, eccSigBytes))
bench('createPublicKey from JWK (RSA-2048)', () => createPublicKey({ key: rsaKey.export({ format: 'jwk' }), format: 'jwk' }), 500)
bench('createPublicKey from JWK (P-256)', () => createPublicKey({ key: eccKey.export({ format: 'jwk' }), format: 'jwk' }), 500)
