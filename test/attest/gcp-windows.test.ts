// End-to-end vector nobody on this project made: a Google Cloud VM's recorded
// attestation (google/go-attestation testdata, Apache-2.0). The quote must verify
// with the AK (signature and PCR digest) and the firmware event log must replay to
// every quoted PCR value.
import t from 'tap'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { computeName, checkAkAttributes, decodeTpmtPublic } from '../../server/attest/tpm/public.js'
import { verifyQuote } from '../../server/attest/tpm/quote.js'
import { compareToQuoted, parseEventLog, replay } from '../../server/attest/eventlog/index.js'
import { reference } from './helpers.js'

interface GcpVector {
  AK: { Public: string; CreateAttestation: string; CreateSignature: string }
  Quote: { Nonce: string; Alg: number; Quote: string; Signature: string }
  Log: { PCRs: { Index: number; Digest: string; DigestAlg: number }[]; Raw: string }
}
const d = JSON.parse(reference('gcp_windows.json').toString('utf8')) as GcpVector

t.test('quote verifies and the event log replays to the quoted PCRs', async (t) => {
  // JSON field meanings (go-attestation): AK.Public is a bare TPMT_PUBLIC; Quote.Alg is a
  // TPM_ALG_ID (4 = SHA-1); Log.PCRs[].DigestAlg is Go's crypto.Hash (3 = SHA-1).
  t.equal(d.Quote.Alg, TPM_ALG.SHA1)
  t.ok(d.Log.PCRs.every((p) => p.DigestAlg === 3))
  const ak = decodeTpmtPublic(Buffer.from(d.AK.Public, 'base64'))
  if (!ak.ok) return t.fail(ak.error.message)
  t.same(checkAkAttributes(ak.value), { ok: true })
  t.ok(computeName(ak.value).ok)

  const quoted = pcrBanks([[TPM_ALG.SHA1, d.Log.PCRs.map((p) => [p.Index, Buffer.from(p.Digest, 'base64')] as const)]])
  const v = verifyQuote({
    akPublic: ak.value,
    attest: Buffer.from(d.Quote.Quote, 'base64'),
    signature: Buffer.from(d.Quote.Signature, 'base64'),
    expectedNonce: Buffer.from(d.Quote.Nonce, 'base64'),
    pcrs: quoted,
    requiredPcrs: new Map([[TPM_ALG.SHA1, [0, 2, 4, 7]]]),
  })
  t.equal(v.ok, true, v.ok ? 'quote ok' : `${v.reason}: ${v.message}`)

  const log = parseEventLog(Buffer.from(d.Log.Raw, 'base64'))
  if (!log.ok) return t.fail(log.error.message)
  t.equal(log.value.format, 'sha1', 'a TPM 1.2-style SHA-1 log')
  t.equal(log.value.events.length, 21)
  const banks = replay(log.value.events)
  const c = compareToQuoted(banks, quoted)
  t.equal(c.ok, true)
  t.equal(c.matched.length, 24, 'all 24 quoted SHA-1 PCRs match the replay')
  t.same(c.mismatched, [])

  // One altered event digest breaks exactly the PCR it extends.
  const evs = log.value.events.map((e) => ({ ...e, digests: new Map(e.digests) }))
  const target = evs.find((e) => e.pcr === 4)!
  target.digests.set(TPM_ALG.SHA1, Buffer.alloc(20, 0xee))
  const c2 = compareToQuoted(replay(evs), quoted)
  t.same(c2.mismatched.map((m) => m.pcr), [4])
})
