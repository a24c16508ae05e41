// Shared by the agent TPM tests: what a real-peer test needs (the built addon,
// swtpm and tpm2-tools), connecting a Tpm to the test's own swtpm, and turning
// TPM outputs into what the server's verifier and tpm2-tools take.
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { decodeTpm2bPublic, publicKeyObject, type TpmtPublic } from '../../server/attest/tpm/public.js'
import { Tpm, loadNative, type AttestationKey, type EndorsementKey } from '../../agent/tpm/index.js'
import { missingTools, type Swtpm } from '../attest/swtpm-harness.js'

// tpm2-tss logs every failed command to stderr; the tests provoke failures on
// purpose and read them from the rejected errors instead.
process.env.TSS2_LOG = 'all+none'

/** tpm2-tools the agent tests use beyond the harness's own list. */
export const AGENT_TOOLS = ['tpm2_checkquote', 'tpm2_getcap', 'tpm2_readpublic', 'tpm2_pcrread']

/**
 * Why a real-peer test cannot run here (empty when it can): tools missing, or the
 * addon not built. The test fails with these messages; it never skips.
 */
export function realPeerProblems(): string[] {
  const problems: string[] = []
  const missing = [
    ...missingTools(),
    ...AGENT_TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0),
  ]
  if (missing.length > 0) problems.push(`missing ${missing.join(', ')}: apt-get install -y swtpm swtpm-tools tpm2-tools`)
  try {
    loadNative()
  } catch (e) {
    problems.push(`${(e as Error).message}`)
  }
  return problems
}

export function tctiOf(s: Swtpm): string {
  return `swtpm:host=127.0.0.1,port=${s.port}`
}

/**
 * Runs fn with a Tpm connected to s, closed afterwards. swtpm serves one
 * connection at a time: run tpm2-tools only outside withTpm.
 */
export async function withTpm<T>(s: Swtpm, fn: (tpm: Tpm) => Promise<T>): Promise<T> {
  const tpm = await Tpm.open(tctiOf(s))
  try {
    return await fn(tpm)
  } finally {
    await tpm.close()
  }
}

export function decodePublic(buf: Buffer): TpmtPublic {
  const r = decodeTpm2bPublic(buf)
  if (!r.ok) throw new Error(`TPM2B_PUBLIC: ${r.error.code} ${r.error.message}`)
  return r.value
}

/** SubjectPublicKeyInfo PEM of a TPM2B_PUBLIC, for tpm2_checkquote -u. */
export function publicPem(buf: Buffer): string {
  const k = publicKeyObject(decodePublic(buf))
  if (!k.ok) throw new Error(`public key: ${k.error.message}`)
  return k.value.export({ type: 'spki', format: 'pem' }).toString()
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** A verifyQuote `pcrs` argument from one SHA-256 bank. */
export function sha256Bank(values: ReadonlyMap<number, Buffer>) {
  return pcrBanks([[TPM_ALG.SHA256, values]])
}

/** Open file descriptors of this process (Linux). */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

/** `- 0x80000000` lines of tpm2_getcap handles-* output. */
export function parseHandleList(out: string): number[] {
  return [...out.matchAll(/^\s*-\s*(0x[0-9a-fA-F]+)\s*$/gm)].map((m) => Number(m[1]))
}

/**
 * The PCR file tpm2_checkquote -f reads without -l (tpm2-tools 5.4
 * "serialized" format, what tpm2_quote -o writes): a dump of the tools' C
 * structs on a little-endian host. TPML_PCR_SELECTION (u32 count, 16 ×
 * TPMS_PCR_SELECTION {u16 hash, u8 sizeofSelect, u8 pcrSelect[4], 1 pad byte}),
 * u32 number of lists, then per 8 digests a TPML_DIGEST (u32 count, 8 ×
 * TPM2B_DIGEST {u16 size, u8 buffer[64]}).
 *
 * (With -l, tpm2-tools 5.4 reads bare concatenated values instead, but drops the
 * 8th digest of every 8: parse_selection_data_from_selection_string moves to a
 * new list without counting the digest it just stored. So -l works for at most
 * 7 PCRs.)
 */
export function toolsPcrFile(hashAlg: number, pcrs: readonly number[], values: ReadonlyMap<number, Buffer>): Buffer {
  const sel = Buffer.alloc(4 + 16 * 8)
  sel.writeUInt32LE(1, 0)
  sel.writeUInt16LE(hashAlg, 4)
  sel.writeUInt8(3, 6)
  for (const p of pcrs) sel[7 + (p >> 3)]! |= 1 << (p & 7)
  const sorted = [...pcrs].sort((a, b) => a - b)
  const lists: Buffer[] = []
  for (let i = 0; i < sorted.length; i += 8) {
    const chunk = sorted.slice(i, i + 8)
    const l = Buffer.alloc(4 + 8 * 66)
    l.writeUInt32LE(chunk.length, 0)
    chunk.forEach((p, k) => {
      const v = values.get(p)
      if (v === undefined) throw new Error(`no value for PCR ${p}`)
      l.writeUInt16LE(v.length, 4 + k * 66)
      v.copy(l, 4 + k * 66 + 2)
    })
    lists.push(l)
  }
  const n = Buffer.alloc(4)
  n.writeUInt32LE(lists.length)
  return Buffer.concat([sel, n, ...lists])
}

/** The transient handles a Tpm should hold: the AK, and the EK when it was created from its template. */
export function expectedTransient(ek: EndorsementKey, ak: AttestationKey): number[] {
  return (ek.handle === 'created' ? [ek.tpmHandle, ak.handle] : [ak.handle]).sort((a, b) => a - b)
}
