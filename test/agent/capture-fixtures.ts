// Regenerates test/fixtures/agent/: real outputs of the agent's TPM addon against
// a freshly provisioned swtpm, with readable dumps beside them. The golden test
// (tpm-golden.test.ts) checks them with the server's verifier, no TPM needed.
//
//   npm run build:agent && npx tsx test/agent/capture-fixtures.ts
import { X509Certificate, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { attributeNames } from '../../server/attest/tpm/public.js'
import { decodeAttest, decodeSignature } from '../../server/attest/tpm/quote.js'
import { loadNative, type KeyAlg } from '../../agent/tpm/index.js'
import { startSwtpm } from '../attest/swtpm-harness.js'
import { decodePublic, tctiOf, withTpm } from './helpers.js'

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'agent')

export interface QuoteFixture {
  readonly source: string
  readonly alg: KeyAlg
  readonly ekPublic: string
  readonly akPublic: string
  readonly akName: string
  readonly nonce: string
  readonly pcrs: Record<string, string>
  readonly attest: string
  readonly signature: string
}

const hex = (b: Buffer) => b.toString('hex')

function dump(f: QuoteFixture): string {
  const ak = decodePublic(Buffer.from(f.akPublic, 'hex'))
  const at = decodeAttest(Buffer.from(f.attest, 'hex'))
  const sig = decodeSignature(Buffer.from(f.signature, 'hex'))
  const lines = [
    `# ${f.source}`,
    `AK: type 0x${ak.type.toString(16).padStart(4, '0')}, nameAlg 0x${ak.nameAlg.toString(16).padStart(4, '0')}, attributes 0x${ak.objectAttributes.toString(16).padStart(8, '0')} (${attributeNames(ak.objectAttributes).join('|')})`,
    `AK scheme: 0x${ak.parameters.scheme.scheme.toString(16)} / hash 0x${ak.parameters.scheme.hashAlg.toString(16)}`,
    `AK Name: ${f.akName}`,
    `nonce: ${f.nonce}`,
  ]
  if (at.ok) {
    const a = at.value
    lines.push(`TPMS_ATTEST: magic 0x${a.magic.toString(16)}, type 0x${a.type.toString(16)}, extraData ${hex(a.extraData)}`)
    lines.push(`  clock ${a.clockInfo.clock}, resetCount ${a.clockInfo.resetCount}, restartCount ${a.clockInfo.restartCount}, safe ${a.clockInfo.safe}`)
    lines.push(`  firmwareVersion 0x${a.firmwareVersion.toString(16)}`)
    if (a.attested.kind === 'quote') {
      for (const s of a.attested.pcrSelect) lines.push(`  pcrSelect: bank 0x${s.hashAlg.toString(16)} PCRs ${s.pcrs.join(',')}`)
      lines.push(`  pcrDigest ${hex(a.attested.pcrDigest)}`)
    }
  }
  if (sig.ok) lines.push(`TPMT_SIGNATURE: sigAlg 0x${sig.value.sigAlg.toString(16)}, hash 0x${sig.value.hashAlg.toString(16)}`)
  for (const [p, v] of Object.entries(f.pcrs)) lines.push(`PCR ${p.padStart(2)} sha256 ${v}`)
  return `${lines.join('\n')}\n`
}

async function main(): Promise<void> {
  loadNative()
  mkdirSync(OUT, { recursive: true })
  const sw = await startSwtpm()
  try {
    const source = `swtpm 0.7.1 via agent/tpm (tcti ${tctiOf(sw).replace(/port=\d+/, 'port=…')}), captured ${new Date().toISOString().slice(0, 10)}`
    for (const alg of ['rsa', 'ecc'] as const) {
      const nonce = randomBytes(32)
      const pcrs = [0, 1, 2, 3, 4, 5, 6, 7]
      const f = await withTpm(sw, async (tpm) => {
        const ek = await tpm.readEk({ alg: 'rsa' })
        await tpm.pcrExtend({ pcr: 4, digests: { sha256: randomBytes(32) } })
        const ak = await tpm.createAk({ alg })
        const q = await tpm.quote({ nonce, pcrs, bank: 'sha256' })
        const values = await tpm.pcrRead({ pcrs, bank: 'sha256' })
        return {
          ek,
          fixture: {
            source,
            alg,
            ekPublic: hex(ek.public),
            akPublic: hex(ak.public),
            akName: hex(ak.name),
            nonce: hex(nonce),
            pcrs: Object.fromEntries([...values].map(([p, v]) => [String(p), hex(v)])),
            attest: hex(q.attest),
            signature: hex(q.signature),
          } satisfies QuoteFixture,
        }
      })
      writeFileSync(join(OUT, `quote-${alg}.json`), `${JSON.stringify(f.fixture, null, 2)}\n`)
      writeFileSync(join(OUT, `quote-${alg}.txt`), dump(f.fixture))
      if (alg === 'rsa' && f.ek.cert !== undefined) {
        // The raw NV contents, as the addon reads them (before ekCertFromNv).
        await sw.tool('tpm2_nvread', ['0x01c00002', '-o', 'ekcert.nv'])
        const nv = readFileSync(join(sw.dir, 'ekcert.nv'))
        writeFileSync(join(OUT, 'ekcert-rsa.nv'), nv)
        const c = new X509Certificate(f.ek.cert)
        writeFileSync(join(OUT, 'ekcert-rsa.txt'), [
          `# ${source}: NV index 0x01C00002, ${nv.length} bytes stored, DER ${f.ek.cert.length} bytes, ${nv.length - f.ek.cert.length} bytes of padding`,
          `subject: ${c.subject.replace(/\n/g, ', ') || '(empty)'}`,
          `issuer: ${c.issuer.replace(/\n/g, ', ')}`,
          `serial: ${c.serialNumber}`,
          `valid: ${c.validFrom} – ${c.validTo}`,
          `subjectAltName: ${c.subjectAltName ?? '(none)'}`,
          `EK public (TPM2B_PUBLIC): ${hex(f.ek.public)}`,
          '',
        ].join('\n'))
      }
    }
  } finally {
    await sw.stop()
  }
}

await main()
