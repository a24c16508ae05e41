/**
 * The agent's failures: one error class with a stable `code`, the failure class
 * that decides the process exit code, and whether trying the same step again can
 * help. Recognise an AgentError by `code`, never by message text.
 *
 * The exit code is what the dracut hook acts on (agent/main.ts documents the
 * contract): 0 switch root, 20 reboot, anything else is a failure the hook turns
 * into the emergency shell when `rd.shell` allows it, else a reboot after a pause.
 */

/** Process exit codes, one per failure class. Stable: the dracut hook reads them. */
export const EXIT_CODES = {
  /** NEWROOT is mounted and seeded: dracut switches root. */
  ok: 0,
  /** A bug: an exception no step classified. */
  internal: 1,
  /** The kernel command line or the agent's own options are wrong. */
  usage: 2,
  /** The netboot server never answered within the network wait. */
  network: 3,
  /** The TPM cannot be opened or fails an operation the attestation needs. */
  tpm: 4,
  /** The server refused the attestation (policy, EK mismatch, rejected TPM, no root image) or answered nonsense. */
  refused: 5,
  /** No admin decision came within the pending wait. */
  pending: 6,
  /** The secure cloud-init could not be fetched or decrypted. */
  secrets: 7,
  /** The root image could not be downloaded within the retries. */
  download: 8,
  /** The root image does not hash to the attested digest: it was never mounted. */
  integrity: 9,
  /** mount (squashfs, tmpfs, overlay) failed. */
  mount: 10,
  /** Extending the rootfs measurement into the PCR failed. */
  measure: 11,
  /** Writing the NoCloud seed or the token failed. */
  seed: 12,
  /** Not a failure: reboot so the node boots what the server now plans (discovery accepted, image changed). */
  reboot: 20,
} as const

export type ExitClass = keyof typeof EXIT_CODES
/** Classes an AgentError can have (ok and reboot are outcomes, not failures). */
export type FailureClass = Exclude<ExitClass, 'ok' | 'reboot'>

/** Every code, with when it happens (a test keeps this and the thrown codes in step). */
export const AGENT_ERROR_CODES = {
  AGENT_USAGE: 'an agent option is missing or malformed',
  AGENT_CMDLINE_INVALID: 'a netboot.* or rd.shell kernel parameter is missing, repeated, unknown or malformed',
  AGENT_NETWORK_TIMEOUT: 'the netboot server did not answer /healthz within the network wait',
  AGENT_HTTP: 'an HTTP request failed before an answer (refused, reset, timed out): retried',
  AGENT_SERVER_BUSY: 'the server answered 5xx or 429: retried',
  AGENT_TPM: 'a TPM operation failed (open, EK, AK, ActivateCredential, quote, PCR read)',
  AGENT_ATTEST_REFUSED: 'the server refused the attestation with an error code from its catalogue',
  AGENT_ATTEST_REJECTED: 'an admin rejected this TPM (ATTEST_REJECTED)',
  AGENT_ATTEST_INVALID: "the server's answer is malformed or contradicts itself (token claims, digest, URL)",
  AGENT_NO_ROOTFS: 'the node attested but the server names no root image for it',
  AGENT_PENDING_TIMEOUT: 'the node stayed pending (no admin decision) for the whole pending wait',
  AGENT_TOKEN_EXPIRED: 'the node token expired before the secure cloud-init was fetched: attest again',
  AGENT_SECRETS_REFUSED: 'the secure cloud-init endpoint refused the token or its DPoP proof',
  AGENT_SECRETS_INVALID: 'the secure cloud-init does not decrypt with the boot key, or is not a NoCloud seed',
  AGENT_ROOTFS_DOWNLOAD: 'the root image download failed after every retry',
  AGENT_ROOTFS_NO_SPACE: 'the work directory has no room for the root image',
  AGENT_ROOTFS_DIGEST_MISMATCH: 'the downloaded root image does not hash to the attested digest: deleted, never mounted',
  AGENT_MOUNT: 'mounting the squashfs, the tmpfs or the overlay failed',
  AGENT_MEASURE: 'extending the PCR with the rootfs digest failed, or the PCR did not end where it should',
  AGENT_SEED: 'writing the NoCloud seed or the token failed',
  AGENT_INTERNAL: 'an unexpected exception (a bug)',
} as const

export type AgentErrorCode = keyof typeof AGENT_ERROR_CODES

export interface AgentErrorOptions {
  readonly retryable?: boolean
  /** The server's catalogue code when the server refused (ATTEST_PENDING, TOKEN_EXPIRED, …). */
  readonly serverCode?: string
  /** Seconds the server asked us to wait (Retry-After). */
  readonly retryAfter?: number
  readonly cause?: unknown
}

export class AgentError extends Error {
  override readonly name = 'AgentError'
  readonly retryable: boolean
  readonly serverCode?: string
  readonly retryAfter?: number

  constructor (
    readonly code: AgentErrorCode,
    readonly failure: FailureClass,
    message: string,
    o: AgentErrorOptions = {},
  ) {
    super(message, o.cause !== undefined ? { cause: o.cause } : undefined)
    this.retryable = o.retryable ?? false
    if (o.serverCode !== undefined) this.serverCode = o.serverCode
    if (o.retryAfter !== undefined) this.retryAfter = o.retryAfter
  }
}

export function isAgentError (e: unknown, code?: AgentErrorCode): e is AgentError {
  return e instanceof AgentError && (code === undefined || e.code === code)
}

/** Any thrown value as an AgentError: unclassified exceptions are internal bugs. */
export function asAgentError (e: unknown): AgentError {
  if (e instanceof AgentError) return e
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
  return new AgentError('AGENT_INTERNAL', 'internal', `unexpected ${msg}`, { cause: e })
}

/** An Error's message on one line (console lines are one line each). */
export function oneLine (s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' | ').trim()
}
