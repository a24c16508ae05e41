// Golden outputs of the agent's TPM addon, captured from swtpm by
// capture-fixtures.ts (readable dumps beside them in test/fixtures/agent/):
// the server's verifier must keep accepting exactly these bytes. No TPM needed.
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { checkAkAttributes, computeName, decodeTpm2bPublic, publicKeyObject } from '../../server/attest/tpm/public.js'
import { verifyQuote } from '../../server/attest/tpm/quote.js'
import { ekCertFromNv } from '../../agent/tpm/ekcert.js'
import type { QuoteFixture } from './capture-fixtures.js'

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'agent')
const hex = (s: string) => Buffer.from(s, 'hex')

for (const alg of ['rsa', 'ecc'] as const) {
  t.test(`quote-${alg}.json verifies with the server's verifier`, async (t) => {
    const f = JSON.parse(readFileSync(join(FIXTURES, `quote-${alg}.json`), 'utf8')) as QuoteFixture
    const ak = decodeTpm2bPublic(hex(f.akPublic))
    t.ok(ak.ok, 'AK TPM2B_PUBLIC decodes')
    if (!ak.ok) return
    t.same(checkAkAttributes(ak.value), { ok: true })
    const name = computeName(ak.value)
    t.equal(name.ok && name.value.toString('hex'), f.akName, 'Name as the TPM reported it')
    const values = new Map(Object.entries(f.pcrs).map(([p, v]) => [Number(p), hex(v)]))
    const input = { akPublic: hex(f.akPublic), attest: hex(f.attest), signature: hex(f.signature), expectedNonce: hex(f.nonce), pcrs: pcrBanks([[TPM_ALG.SHA256, values]]) }
    const v = verifyQuote({ ...input, requiredPcrs: new Map([[TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7]]]) })
    t.equal(v.ok, true, v.ok ? 'verifyQuote accepts it' : `${v.reason}: ${v.message}`)
    t.match(verifyQuote({ ...input, expectedNonce: hex(f.nonce).subarray(1) }), { ok: false, reason: 'nonce-mismatch' })
  })
}

t.test('ekcert-rsa.nv: unwraps to the certificate of the EK captured with it', async (t) => {
  const c = ekCertFromNv(readFileSync(join(FIXTURES, 'ekcert-rsa.nv')))
  t.ok(c.ok)
  if (!c.ok) return
  const cert = new X509Certificate(c.der)
  t.match(cert.issuer, /CN=swtpm-localca/)
  const f = JSON.parse(readFileSync(join(FIXTURES, 'quote-rsa.json'), 'utf8')) as QuoteFixture
  const ek = decodeTpm2bPublic(hex(f.ekPublic))
  const key = ek.ok ? publicKeyObject(ek.value) : undefined
  t.ok(key?.ok && cert.publicKey.equals(key.value), 'certificate key = the RSA EK of quote-rsa.json')
})
