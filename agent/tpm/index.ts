/**
 * The agent's TPM: a typed wrapper over the netboot_tpm N-API addon (native/,
 * tpm2-tss ESAPI). One Tpm per TPM connection; its calls run one at a time, in
 * call order, each as one work item on the libuv thread pool, so the event loop
 * never waits for the TPM and the (not thread-safe) ESYS context is never used
 * by two threads at once.
 *
 * Lifecycle (explicit state machine, see `transition`):
 *
 *     open ──close()──▶ closing ──(queued calls drain, AK flushed)──▶ closed
 *
 * Attestation flow (DESIGN.md "Attestation, in one paragraph"): readEk() →
 * createAk() under that EK → activateCredential() with the server's
 * MakeCredential output → quote() over the server's nonce → close().
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ekCertFromNv } from './ekcert.js'
import { TpmError, fromNative } from './errors.js'

export { TPM_ERROR_CODES, TpmError, RC_CODE } from './errors.js'
export type { TpmErrorCode, TpmErrorDetail } from './errors.js'
export { describeRc, rcName } from './rc.js'
export type { RcDescription } from './rc.js'
export { ekCertFromNv } from './ekcert.js'
export type { EkCertNv } from './ekcert.js'

export type KeyAlg = 'rsa' | 'ecc'
export type PcrBank = 'sha256' | 'sha1'

/** TCG EK Credential Profile 2.x §2.2.1.4-5: low-range persistent EK handles and certificate indices. */
export const EK_HANDLES = { rsa: 0x81010001, ecc: 0x81010002 } as const
export const EK_CERT_INDICES = { rsa: 0x01c00002, ecc: 0x01c0000a } as const

export interface EndorsementKey {
  /** TPM2B_PUBLIC of the EK (template L-1 RSA-2048 or L-2 ECC P-256, or whatever is persistent at the TCG handle). */
  readonly public: Buffer
  /** The EK's Name as TPM2_ReadPublic reports it: nameAlg ‖ H(TPMT_PUBLIC). */
  readonly name: Buffer
  /** The EK certificate, DER (NV header and padding stripped); absent when the TPM has none at `certIndex`. */
  readonly cert?: Buffer
  /** NV index the certificate was looked for at. */
  readonly certIndex: number
  /**
   * `persistent`: the TPM's key at EK_HANDLES[alg]; `created`: CreatePrimary from
   * the template, kept loaded until close() (or until the other algorithm's EK is
   * created) so the attestation flow creates it once.
   */
  readonly handle: 'persistent' | 'created'
  /** The TPM handle: EK_HANDLES[alg], or the created EK's transient handle (0x80xxxxxx). */
  readonly tpmHandle: number
}

export interface AttestationKey {
  /** TPM2B_PUBLIC of the AK (attributes 0x00050072, RSASSA-SHA256 or ECDSA-SHA256 P-256). */
  readonly public: Buffer
  /** The AK's Name as TPM2_ReadPublic reports it; MakeCredential binds the secret to it. */
  readonly name: Buffer
  /** The AK's transient TPM handle (0x80xxxxxx), loaded until close() or the next createAk(). */
  readonly handle: number
  readonly alg: KeyAlg
  /** The EK the AK was created under; activateCredential() uses it. */
  readonly ek: KeyAlg
}

export interface Quote {
  /** TPMS_ATTEST exactly as signed. */
  readonly attest: Buffer
  /** TPMT_SIGNATURE. */
  readonly signature: Buffer
}

export interface LoadedHandles {
  /** Transient object handles the TPM reports (every client's, on a TPM without a resource manager). */
  readonly transient: readonly number[]
  /** Loaded and saved session handles. */
  readonly sessions: readonly number[]
}

export type TpmState = 'open' | 'closing' | 'closed'
export type TpmEvent = 'close' | 'closed'

/** The lifecycle's transition function: undefined for an event the state does not accept. */
export function transition (state: TpmState, event: TpmEvent): TpmState | undefined {
  if (state === 'open' && event === 'close') return 'closing'
  if (state === 'closing' && event === 'closed') return 'closed'
  return undefined
}

/* ------------------------------------------------------------------ addon */

declare const handleBrand: unique symbol
/** The addon's per-connection external. */
type Handle = { readonly [handleBrand]: true }

interface NativeEk {
  public: Buffer
  name: Buffer
  cert: Buffer | null
  certIndex: number
  persistent: boolean
  handle: number
}

/** The addon's exports (native/addon.c). */
export interface NativeTpm {
  open(tcti: string): Promise<Handle>
  close(h: Handle): Promise<void>
  readEk(h: Handle, alg: KeyAlg): Promise<NativeEk>
  createAk(h: Handle, alg: KeyAlg, ek: KeyAlg): Promise<{ public: Buffer; name: Buffer; handle: number }>
  activateCredential(h: Handle, credentialBlob: Uint8Array, secret: Uint8Array): Promise<Buffer>
  quote(h: Handle, nonce: Uint8Array, pcrs: readonly number[], bank: PcrBank): Promise<Quote>
  pcrRead(h: Handle, pcrs: readonly number[], bank: PcrBank): Promise<[number, Buffer][]>
  pcrExtend(h: Handle, pcr: number, sha256: Uint8Array | null, sha1: Uint8Array | null): Promise<void>
  getRandom(h: Handle, n: number): Promise<Buffer>
  handles(h: Handle): Promise<{ transient: number[]; sessions: number[] }>
}

const ADDON_FILE = 'netboot_tpm.node'
const here = dirname(fileURLToPath(import.meta.url))

/**
 * Where the addon may be: $NETBOOT_TPM_ADDON, next to this module's source
 * (agent/tpm/build/Release) and, when running from dist/agent/tpm, in the
 * source tree's agent/tpm/build/Release.
 */
export function addonCandidates (): string[] {
  const out: string[] = []
  const env = process.env.NETBOOT_TPM_ADDON
  if (env !== undefined && env !== '') out.push(env)
  out.push(join(here, 'build', 'Release', ADDON_FILE))
  out.push(join(here, '..', '..', '..', 'agent', 'tpm', 'build', 'Release', ADDON_FILE))
  return out
}

let native: NativeTpm | undefined

/** Loads the addon once; ERR_TPM_ADDON_NOT_BUILT names the paths tried and how to build it. */
export function loadNative (): NativeTpm {
  if (native !== undefined) return native
  const require = createRequire(import.meta.url)
  const tried: string[] = []
  for (const path of addonCandidates()) {
    try {
      native = require(path) as NativeTpm
      return native
    } catch (e) {
      const code = (e as { code?: unknown }).code
      tried.push(code === 'MODULE_NOT_FOUND' ? `${path} (missing)` : `${path} (${(e as Error).message})`)
    }
  }
  throw new TpmError('ERR_TPM_ADDON_NOT_BUILT',
    `the TPM addon is not built: run \`npm run build:agent\` (node-gyp rebuild -C agent/tpm; needs libtss2-dev). Tried: ${tried.join('; ')}`)
}

/* ------------------------------------------------------------------ validation */

function badArg (message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' })
}

function checkAlg (what: string, v: unknown): asserts v is KeyAlg {
  if (v !== 'rsa' && v !== 'ecc') throw badArg(`${what} must be 'rsa' or 'ecc'`)
}

function checkBank (v: unknown): asserts v is PcrBank {
  if (v !== 'sha256' && v !== 'sha1') throw badArg("bank must be 'sha256' or 'sha1'")
}

function checkPcrs (v: unknown): asserts v is readonly number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((p) => Number.isInteger(p) && p >= 0 && p <= 23)) {
    throw badArg('pcrs must be a non-empty array of PCR indices 0-23')
  }
}

function checkBytes (what: string, v: unknown, min: number, max: number): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw badArg(`${what} must be a Buffer or Uint8Array`)
  if (v.length < min || v.length > max) throw badArg(`${what} must be ${min === max ? min : `${min} to ${max}`} bytes, not ${v.length}`)
}

/** Largest getRandom() request (the addon loops over TPM2_GetRandom's short answers). */
export const MAX_RANDOM = 65536
/** TPM2_Quote qualifyingData is a TPM2B_DATA: at most one SHA-512 digest. */
export const MAX_NONCE = 64

/* ------------------------------------------------------------------ Tpm */

// Every method validates its arguments and queues its work before its first
// await, so calls run in call order and bad arguments reject (never throw).

export class Tpm {
  readonly #native: NativeTpm
  readonly #handle: Handle
  readonly tcti: string
  #state: TpmState = 'open'
  #tail: Promise<unknown> = Promise.resolve()
  #closed: Promise<void> | undefined
  #lastEk: KeyAlg | undefined
  #ak: AttestationKey | undefined

  private constructor (n: NativeTpm, handle: Handle, tcti: string) {
    this.#native = n
    this.#handle = handle
    this.tcti = tcti
  }

  /**
   * Connects to the TPM named by a TCTI configuration string, always explicit:
   * `device:/dev/tpmrm0` on hardware, `swtpm:host=127.0.0.1,port=N` or
   * `swtpm:path=…` in tests (an empty string would let the TSS pick any TPM).
   */
  static async open (tcti: string): Promise<Tpm> {
    if (typeof tcti !== 'string' || tcti.trim() === '') throw badArg('tcti must be a non-empty TCTI configuration string, e.g. device:/dev/tpmrm0')
    const n = loadNative()
    try {
      return new Tpm(n, await n.open(tcti), tcti)
    } catch (e) {
      throw fromNative('open', e)
    }
  }

  get state (): TpmState {
    return this.#state
  }

  /** The loaded AK, if createAk() succeeded since open. */
  get ak (): AttestationKey | undefined {
    return this.#ak
  }

  /** Runs fn after every earlier call on this Tpm has settled. */
  #enqueue<T> (op: string, fn: (h: Handle) => Promise<T>): Promise<T> {
    if (this.#state !== 'open') return Promise.reject(new TpmError('ERR_TPM_CLOSED', `${op}(): the Tpm is ${this.#state}`))
    const run = async (): Promise<T> => {
      try {
        return await fn(this.#handle)
      } catch (e) {
        throw fromNative(op, e)
      }
    }
    const p = this.#tail.then(run, run)
    this.#tail = p.catch(() => undefined)
    return p
  }

  /**
   * The endorsement key of `alg` and its certificate: the persistent key at
   * EK_HANDLES[alg] when the TPM has one, else CreatePrimary with the TCG default
   * template (L-1 / L-2) under the endorsement hierarchy (kept loaded, see
   * EndorsementKey.handle).
   * The certificate is read from EK_CERT_INDICES[alg] in chunks of at most
   * TPM2_PT_NV_BUFFER_MAX. Later createAk() calls without `ek` use this EK.
   */
  async readEk (opts: { alg: KeyAlg }): Promise<EndorsementKey> {
    checkAlg('alg', opts?.alg)
    const { alg } = opts
    return this.#enqueue('readEk', async (h) => {
      const r = await this.#native.readEk(h, alg)
      this.#lastEk = alg
      let cert: Buffer | undefined
      if (r.cert !== null) {
        const c = ekCertFromNv(r.cert)
        if (!c.ok) throw new TpmError('ERR_TPM_EK_CERT_MALFORMED', `readEk(): NV index 0x${r.certIndex.toString(16)}: ${c.reason}`)
        cert = c.der
      }
      const ek: EndorsementKey = {
        public: r.public,
        name: r.name,
        certIndex: r.certIndex,
        handle: r.persistent ? 'persistent' : 'created',
        tpmHandle: r.handle,
      }
      return cert !== undefined ? { ...ek, cert } : ek
    })
  }

  /**
   * Creates and loads an AK (attributes 0x00050072; RSA-2048 RSASSA-SHA256 or
   * ECC P-256 ECDSA-SHA256) under the EK `ek` (default: the EK of the last
   * readEk(), else the same algorithm as the AK), authorised by fresh
   * PolicySecret(TPM_RH_ENDORSEMENT) sessions. The AK stays loaded until close()
   * or the next createAk(), which flushes it first.
   */
  async createAk (opts: { alg: KeyAlg; ek?: KeyAlg }): Promise<AttestationKey> {
    checkAlg('alg', opts?.alg)
    if (opts.ek !== undefined) checkAlg('ek', opts.ek)
    const alg = opts.alg
    return this.#enqueue('createAk', async (h) => {
      const ek = opts.ek ?? this.#lastEk ?? alg
      this.#ak = undefined
      const r = await this.#native.createAk(h, alg, ek)
      this.#ak = { public: r.public, name: r.name, handle: r.handle, alg, ek }
      return this.#ak
    })
  }

  /**
   * TPM2_ActivateCredential (Part 3 §12.5) with the AK and its EK (a fresh EK
   * policy session): returns the credential the server wrapped with
   * MakeCredential for this AK's Name. A blob for another Name or another EK, or
   * a corrupted one, fails with the TPM's RC (TPM2_RC_INTEGRITY and the like).
   */
  async activateCredential (opts: { credentialBlob: Uint8Array; secret: Uint8Array }): Promise<Buffer> {
    checkBytes('credentialBlob', opts?.credentialBlob, 2, 2 + 2 + 64 + 66)
    checkBytes('secret', opts.secret, 2, 2 + 512)
    const { credentialBlob, secret } = opts
    return this.#enqueue('activateCredential', async (h) => {
      if (this.#ak === undefined) throw new TpmError('ERR_TPM_NO_AK', 'activateCredential(): no AK is loaded: call createAk() first')
      return await this.#native.activateCredential(h, credentialBlob, secret)
    })
  }

  /**
   * TPM2_Quote (Part 3 §18.4) with the AK over `pcrs` of `bank`, qualifyingData =
   * nonce, in the AK's own scheme (RSASSA-SHA256 / ECDSA-SHA256).
   */
  async quote (opts: { nonce: Uint8Array; pcrs: readonly number[]; bank: PcrBank }): Promise<Quote> {
    checkBytes('nonce', opts?.nonce, 0, MAX_NONCE)
    checkPcrs(opts.pcrs)
    checkBank(opts.bank)
    const { nonce, pcrs, bank } = opts
    return this.#enqueue('quote', async (h) => {
      if (this.#ak === undefined) throw new TpmError('ERR_TPM_NO_AK', 'quote(): no AK is loaded: call createAk() first')
      return await this.#native.quote(h, nonce, pcrs, bank)
    })
  }

  /** PCR values of `bank`, in ascending PCR order (read ≤ 8 per TPM2_PCR_Read, one consistent state). */
  async pcrRead (opts: { pcrs: readonly number[]; bank: PcrBank }): Promise<Map<number, Buffer>> {
    checkPcrs(opts?.pcrs)
    checkBank(opts.bank)
    const { pcrs, bank } = opts
    return this.#enqueue('pcrRead', async (h) => new Map(await this.#native.pcrRead(h, pcrs, bank)))
  }

  /** TPM2_PCR_Extend (Part 3 §22.2): PCR[bank] = H(PCR[bank] ‖ digest) for each bank given. */
  async pcrExtend (opts: { pcr: number; digests: { sha256?: Uint8Array; sha1?: Uint8Array } }): Promise<void> {
    const pcr = opts?.pcr
    if (!Number.isInteger(pcr) || pcr < 0 || pcr > 23) throw badArg('pcr must be a PCR index 0-23')
    const { sha256, sha1 } = opts.digests ?? {}
    if (sha256 === undefined && sha1 === undefined) throw badArg('pcrExtend needs a sha256 or sha1 digest')
    if (sha256 !== undefined) checkBytes('digests.sha256', sha256, 32, 32)
    if (sha1 !== undefined) checkBytes('digests.sha1', sha1, 20, 20)
    return this.#enqueue('pcrExtend', (h) => this.#native.pcrExtend(h, pcr, sha256 ?? null, sha1 ?? null))
  }

  /** n bytes from the TPM's RNG (TPM2_GetRandom, repeated while it answers short). */
  async getRandom (n: number): Promise<Buffer> {
    if (!Number.isInteger(n) || n < 0 || n > MAX_RANDOM) throw badArg(`n must be an integer from 0 to ${MAX_RANDOM}`)
    return this.#enqueue('getRandom', (h) => this.#native.getRandom(h, n))
  }

  /** Loaded transient objects and sessions (TPM2_GetCapability(TPM_CAP_HANDLES)): for leak checks. */
  async handles (): Promise<LoadedHandles> {
    return this.#enqueue('handles', (h) => this.#native.handles(h))
  }

  /**
   * Refuses new calls at once, lets queued ones finish, then flushes the AK and a
   * created EK and disconnects. Idempotent: later calls return the same promise.
   */
  close (): Promise<void> {
    if (this.#closed !== undefined) return this.#closed
    const run = async (): Promise<void> => {
      try {
        await this.#native.close(this.#handle)
      } catch (e) {
        throw fromNative('close', e)
      } finally {
        this.#state = transition(this.#state, 'closed') ?? 'closed'
        this.#ak = undefined
      }
    }
    this.#state = transition(this.#state, 'close') ?? this.#state
    this.#closed = this.#tail.then(run, run)
    this.#tail = this.#closed.catch(() => undefined)
    return this.#closed
  }
}
