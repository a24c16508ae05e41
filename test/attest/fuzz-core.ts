// Mutation fuzzer shared by test/attest/fuzz.test.ts (≈10,000 inputs per run) and
// test/fuzz/tpm-fuzz.ts (standalone, bigger runs). Deterministic for a given seed.
// Every decoder facing the network must return a typed result for every input:
// no throw, an error code from its catalogue, bounded time.
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { CREDENTIAL_ERROR_CODES, TOOLS_FILE_ERROR_CODES, decodeToolsCredentialFile, makeCredential } from '../../server/attest/tpm/credential.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { PUBLIC_ERROR_CODES, computeName, decodeTpm2bPublic, decodeTpmtPublic, publicKeyObject, checkAkAttributes } from '../../server/attest/tpm/public.js'
import { ATTEST_ERROR_CODES, QUOTE_FAILURE_REASONS, SIGNATURE_ERROR_CODES, decodeAttest, decodeSignature, verifyQuote } from '../../server/attest/tpm/quote.js'
import { EVENT_LOG_ERROR_CODES, compareToQuoted, describeEventData, parseEventLog, replay } from '../../server/attest/eventlog/index.js'
import { fixture, reference } from './helpers.js'

/** mulberry32: small deterministic PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const INTERESTING16 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff]
const INTERESTING32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 24, 23, 3, 10000]

export function mutate(seed: Buffer, rand: () => number, other?: Buffer): Buffer {
  const int = (n: number) => Math.floor(rand() * n)
  let b = Buffer.from(seed)
  const rounds = 1 + int(4)
  for (let i = 0; i < rounds; i++) {
    const at = b.length === 0 ? 0 : int(b.length)
    switch (int(10)) {
      case 0: // bit flip
        if (b.length > 0) b.writeUInt8(b.readUInt8(at) ^ (1 << int(8)), at)
        break
      case 1: // interesting byte
        if (b.length > 0) b.writeUInt8([0, 0xff, 0x7f, 0x80, 1][int(5)]!, at)
        break
      case 2: // interesting u16 (big-endian sizes in TPM structures)
        if (at + 2 <= b.length) b.writeUInt16BE(INTERESTING16[int(INTERESTING16.length)]!, at)
        break
      case 3: // interesting u32, either endianness (event log is little-endian)
        if (at + 4 <= b.length) {
          const v = INTERESTING32[int(INTERESTING32.length)]!
          if (rand() < 0.5) b.writeUInt32BE(v, at)
          else b.writeUInt32LE(v, at)
        }
        break
      case 4: // truncate
        b = b.subarray(0, at)
        break
      case 5: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(16)))])
        break
      case 6: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256))), b.subarray(at)])
        break
      case 7: // duplicate a chunk
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + int(64)), b.subarray(at)])
        break
      case 8: // splice with another seed
        if (other !== undefined && other.length > 0) b = Buffer.concat([b.subarray(0, at), other.subarray(int(other.length))])
        break
      default: // size field off by ±1 at a 2-byte boundary
        if (at + 2 <= b.length) b.writeUInt16BE((b.readUInt16BE(at) + (rand() < 0.5 ? 1 : 0xffff)) & 0xffff, at)
    }
  }
  return b
}

export interface Target {
  readonly name: string
  readonly seeds: readonly Buffer[]
  /** Runs the decoder; returns an error code on failure or 'ok'. Must not throw. */
  readonly run: (input: Buffer) => string
  readonly codes: ReadonlySet<string>
}

function gcp() {
  return JSON.parse(reference('gcp_windows.json').toString('utf8')) as {
    AK: { Public: string; CreateAttestation: string; CreateSignature: string }
    Quote: { Quote: string; Signature: string }
    Log: { Raw: string }
  }
}

export function targets(): Target[] {
  const g = gcp()
  const b64 = (s: string) => Buffer.from(s, 'base64')
  const akRsa = decodeTpm2bPublic(fixture('swtpm-ak-rsa.pub'))
  const ekEcc = decodeTpm2bPublic(fixture('swtpm-ek-ecc.pub'))
  const akName = fixture('swtpm-ak-rsa.name')
  const quoteRsa = { attest: fixture('swtpm-quote-rsa.attest'), sig: fixture('swtpm-quote-rsa.sig') }
  const pcrs = pcrBanks([[TPM_ALG.SHA256, [0, 1, 2].map((i) => [i, Buffer.alloc(32)] as const).concat([[16, Buffer.from('bb2275c49f28ad52cae6d55e34a974a58c7a3ba26f976e8ecbbe7a536918dc73', 'hex')]])]])
  const ubuntu = reference('ubuntu2104.evlog')
  const set = (a: readonly string[]) => new Set<string>(a)
  const publicSeeds = ['swtpm-ak-rsa.pub', 'swtpm-ak-ecc.pub', 'swtpm-ek-rsa.pub', 'swtpm-ek-ecc.pub', 'swtpm-ek-p384-persistent.pub', 'swtpm-plain-sign.pub'].map(fixture)
  return [
    {
      name: 'TPM2B_PUBLIC',
      seeds: publicSeeds,
      codes: set(PUBLIC_ERROR_CODES),
      run: (input) => {
        const r = decodeTpm2bPublic(input)
        if (!r.ok) return r.error.code
        computeName(r.value)
        checkAkAttributes(r.value)
        const k = publicKeyObject(r.value)
        return k.ok ? 'ok' : k.error.code
      },
    },
    {
      name: 'TPMT_PUBLIC',
      seeds: [b64(g.AK.Public), ...publicSeeds.map((s) => s.subarray(2))],
      codes: set(PUBLIC_ERROR_CODES),
      run: (input) => {
        const r = decodeTpmtPublic(input)
        if (!r.ok) return r.error.code
        const k = publicKeyObject(r.value)
        return k.ok ? 'ok' : k.error.code
      },
    },
    {
      name: 'TPMS_ATTEST',
      seeds: [quoteRsa.attest, fixture('swtpm-quote-ecc.attest'), b64(g.Quote.Quote), b64(g.AK.CreateAttestation)],
      codes: set(ATTEST_ERROR_CODES),
      run: (input) => {
        const r = decodeAttest(input)
        return r.ok ? 'ok' : r.error.code
      },
    },
    {
      name: 'TPMT_SIGNATURE',
      seeds: [quoteRsa.sig, fixture('swtpm-quote-ecc.sig'), b64(g.Quote.Signature)],
      codes: set(SIGNATURE_ERROR_CODES),
      run: (input) => {
        const r = decodeSignature(input)
        return r.ok ? 'ok' : r.error.code
      },
    },
    {
      name: 'verifyQuote(attest)',
      seeds: [quoteRsa.attest],
      codes: set(QUOTE_FAILURE_REASONS),
      run: (input) => {
        if (!akRsa.ok) throw new Error('fixture')
        const v = verifyQuote({ akPublic: akRsa.value, attest: input, signature: quoteRsa.sig, expectedNonce: Buffer.from('abcdef0123456789'), pcrs })
        return v.ok ? 'ok' : v.reason
      },
    },
    {
      name: 'verifyQuote(signature)',
      seeds: [quoteRsa.sig],
      codes: set(QUOTE_FAILURE_REASONS),
      run: (input) => {
        if (!akRsa.ok) throw new Error('fixture')
        const v = verifyQuote({ akPublic: akRsa.value, attest: quoteRsa.attest, signature: input, expectedNonce: Buffer.from('abcdef0123456789'), pcrs })
        return v.ok ? 'ok' : v.reason
      },
    },
    {
      name: 'event log',
      seeds: [ubuntu.subarray(0, 4096 + 512), ubuntu.subarray(0, 18779 + 1000), b64(g.Log.Raw).subarray(0, 3000), ubuntu.subarray(0, 32 + 41)],
      codes: set(EVENT_LOG_ERROR_CODES),
      run: (input) => {
        const r = parseEventLog(input)
        if (!r.ok) return r.error.code
        const banks = replay(r.value.events)
        compareToQuoted(banks, pcrs)
        for (const e of r.value.events) describeEventData(e)
        return 'ok'
      },
    },
    {
      name: 'tpm2-tools credential file',
      seeds: [fixture('tpm2-makecredential-rsa.cred')],
      codes: set(TOOLS_FILE_ERROR_CODES),
      run: (input) => {
        const r = decodeToolsCredentialFile(input)
        return r.ok ? 'ok' : r.error.code
      },
    },
    {
      name: 'makeCredential(akName)',
      seeds: [akName, Buffer.from('000b', 'hex')],
      codes: set(CREDENTIAL_ERROR_CODES),
      run: (input) => {
        if (!ekEcc.ok) throw new Error('fixture')
        const r = makeCredential({ ekPublic: ekEcc.value, akName: input, credential: input.subarray(0, 32).length > 0 ? input.subarray(0, 32) : Buffer.of(1) })
        return r.ok ? 'ok' : r.error.code
      },
    },
  ]
}

export interface FuzzReport {
  readonly target: string
  readonly runs: number
  readonly outcomes: Map<string, number>
  readonly maxMs: number
  readonly failures: string[]
}

/** Runs `runs` inputs (mutated seeds, some purely random) through one target. */
export function fuzzTarget(target: Target, runs: number, seed: number, maxCallMs: number): FuzzReport {
  const rand = prng(seed)
  const outcomes = new Map<string, number>()
  const failures: string[] = []
  let maxMs = 0
  for (let i = 0; i < runs; i++) {
    const s = target.seeds[Math.floor(rand() * target.seeds.length)]!
    const other = target.seeds[Math.floor(rand() * target.seeds.length)]
    const input = rand() < 0.05 ? Buffer.from(Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256))) : mutate(s, rand, other)
    const t0 = performance.now()
    let outcome: string
    try {
      outcome = target.run(input)
    } catch (e) {
      failures.push(`threw ${(e as Error).message} on ${input.toString('hex').slice(0, 200)}`)
      continue
    }
    const ms = performance.now() - t0
    maxMs = Math.max(maxMs, ms)
    if (ms > maxCallMs) failures.push(`took ${ms.toFixed(1)} ms on ${input.toString('hex').slice(0, 200)}`)
    if (outcome !== 'ok' && !target.codes.has(outcome)) failures.push(`code ${outcome} not in the catalogue`)
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
  }
  return { target: target.name, runs, outcomes, maxMs, failures }
}
