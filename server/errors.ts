/**
 * The error catalogue: every error netboot reports to a person or a client has a
 * stable code listed here. Codes never change meaning; new failures get new codes.
 * `docs/errors.md` documents each one (a test keeps the two in step).
 *
 * Run-time protocol drops (a bad DHCP or TFTP packet) are not errors of this kind:
 * they are logged with a reason and the peer, and the server keeps serving.
 */

export interface ErrorSpec {
  /** HTTP status the admin/node API answers with. */
  readonly status: number
  /** One line: what happened, for the docs and for `--help`. */
  readonly summary: string
}

export const catalogue = {
  // configuration and input files
  CONFIG_INVALID: { status: 500, summary: 'The configuration file is invalid; the message names the key and line.' },
  CONFIG_NOT_FOUND: { status: 500, summary: 'The configuration file does not exist or cannot be read.' },
  IMPORT_INVALID: { status: 400, summary: 'An import document is invalid; nothing was written. Details name each line and key.' },

  // HTTP request shape
  BAD_REQUEST: { status: 400, summary: 'The request body, query or path does not match the route schema.' },
  NOT_FOUND: { status: 404, summary: 'No such route.' },
  PAYLOAD_TOO_LARGE: { status: 413, summary: 'The request body exceeds the configured limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'The request body has a content type the route does not accept.' },

  // authentication and authorisation
  AUTH_REQUIRED: { status: 401, summary: 'No bearer token was presented on an admin route.' },
  AUTH_INVALID: { status: 401, summary: 'The bearer token is malformed, unknown or revoked.' },
  FORBIDDEN: { status: 403, summary: "The token is valid but its role lacks the right this route needs." },

  // inventory
  NODE_NOT_FOUND: { status: 404, summary: 'No node has that name.' },
  NODE_EXISTS: { status: 409, summary: 'A node with that name already exists.' },
  GROUP_NOT_FOUND: { status: 404, summary: 'No group has that name.' },
  GROUP_EXISTS: { status: 409, summary: 'A group with that name already exists.' },
  GROUP_NOT_EMPTY: { status: 409, summary: 'The group still has member nodes; remove them or use force.' },
  DUPLICATE_MAC: { status: 409, summary: 'A MAC address is already used by another interface.' },
  DUPLICATE_IP: { status: 409, summary: 'An IP address is already used by another interface or BMC.' },
  DUPLICATE_XNAME: { status: 409, summary: 'An xname is already used by another node.' },
  DUPLICATE_NID: { status: 409, summary: 'A NID is already used by another node.' },
  INVALID_MAC: { status: 400, summary: 'A MAC address is not six octets in a recognised spelling.' },
  INVALID_IP: { status: 400, summary: 'An IPv4 address is not in dotted-quad form.' },
  INVALID_XNAME: { status: 400, summary: 'An xname does not follow the x<cabinet>c<chassis>s<slot>b<bmc>n<node> form.' },
  INVALID_NAME: { status: 400, summary: 'A node or group name is not a valid hostname label.' },
  INVALID_HOSTLIST: { status: 400, summary: 'A host range such as nid[001-009] is malformed or too large.' },

  IDENTITY_NOT_FOUND: { status: 404, summary: 'No TPM identity has that id.' },

  // tokens and audit
  TOKEN_NOT_FOUND: { status: 404, summary: 'No admin token has that id.' },
  AUDIT_CHAIN_BROKEN: { status: 500, summary: 'The audit log hash chain does not verify: an entry was edited, removed or reordered.' },

  // boot scripts, images, file serving
  BOOT_PARAMS_INVALID: { status: 400, summary: 'Kernel parameters contain a token netboot refuses (initrd=, netboot.*, --, …); details name the layer and token.' },
  BOOT_VALUE_INVALID: { status: 400, summary: 'A value meant for an iPXE script is unsafe, or the kernel command line exceeds 2047 bytes.' },
  BOOT_TEMPLATE_INVALID: { status: 500, summary: 'An iPXE template in ipxe/ is broken; found when the server loads it.' },
  BOOT_NO_IMAGE: { status: 404, summary: 'No boot configuration (default, group or node) names an image for this node.' },
  IMAGE_NOT_FOUND: { status: 404, summary: 'No image has that name (and version).' },
  IMAGE_EXISTS: { status: 409, summary: 'An image with that name and version already exists.' },
  IMAGE_IN_USE: { status: 409, summary: 'A boot configuration uses the image; point it elsewhere first.' },
  IMAGE_DIGEST_INVALID: { status: 400, summary: 'A digest is not 64 lower-case hex digits.' },
  IMAGE_BUILD_INPUT: { status: 400, summary: 'netboot image build cannot use its input: the root, its kernel or modules, or an option (the message names the path).' },
  IMAGE_BUILD_FAILED: { status: 500, summary: 'A tool netboot image build runs (tar, mksquashfs, dracut) failed; the details carry its last lines.' },
  BLOB_NOT_FOUND: { status: 404, summary: 'No stored file has that digest.' },
  BLOB_DIGEST_MISMATCH: { status: 400, summary: 'The content does not hash to the expected digest; nothing was stored.' },
  BLOB_SOURCE_INVALID: { status: 400, summary: 'The file to add is missing or not a regular file.' },
  IMAGE_UKI_INVALID: { status: 400, summary: 'A unified kernel image is not a valid PE/COFF file (the message says which header or section is wrong).' },
  UKI_BUILD_FAILED: { status: 500, summary: 'Building a unified kernel image failed: a missing input or EFI stub, a stub that is not a PE, or objcopy failed.' },
  FILE_NOT_FOUND: { status: 404, summary: 'The file to serve is missing or not a regular file.' },
  FILE_SIZE_MISMATCH: { status: 500, summary: 'The file on disk differs from its recorded size (damaged or replaced).' },
  PRECONDITION_FAILED: { status: 412, summary: 'If-Match or If-Unmodified-Since did not hold.' },
  RANGE_NOT_SATISFIABLE: { status: 416, summary: 'The requested byte range lies outside the file.' },

  // cloud-init
  CLOUDINIT_INVALID: { status: 400, summary: 'A cloud-init payload is invalid (parse rules, templates, or `cloud-init schema`); details name line and key. Nothing was stored.' },
  CLOUDINIT_TEMPLATE: { status: 422, summary: "A payload's template uses a fact this node does not have." },
  CLOUDINIT_NO_NODE: { status: 404, summary: 'The requester address or name matches no node of the inventory.' },

  // attestation (agent ↔ server); each refusal is also an audit entry
  ATTEST_BAD_REQUEST: { status: 400, summary: 'An attestation message is malformed, too large, or of an unsupported version.' },
  ATTEST_BUSY: { status: 503, summary: 'Too many attestations are in flight; the agent retries after a pause.' },
  ATTEST_UNKNOWN_NODE: { status: 403, summary: 'No node in the inventory has any of the MACs the agent reported; it is recorded for discovery.' },
  ATTEST_UNKNOWN_EK: { status: 403, summary: 'The TPM endorsement key is not enrolled for this node and the policy does not enroll it.' },
  ATTEST_EK_UNTRUSTED: { status: 403, summary: 'The EK certificate is missing, expired, lacks the EK usage, or does not chain to a trusted manufacturer CA.' },
  ATTEST_EK_MISMATCH: { status: 403, summary: "The TPM's endorsement key differs from the one enrolled for this node." },
  ATTEST_AK_ATTRIBUTES: { status: 403, summary: 'The attestation key is not a restricted, fixedTPM signing key.' },
  ATTEST_PENDING: { status: 403, summary: 'The node or its TPM awaits an admin decision (netboot enroll accept).' },
  ATTEST_REJECTED: { status: 403, summary: "An admin rejected this node's TPM." },
  ATTEST_SESSION_UNKNOWN: { status: 403, summary: 'The attestation session is unknown, expired or already used (a replayed nonce).' },
  ATTEST_BAD_CREDENTIAL: { status: 403, summary: 'The activated credential is wrong: the AK is not on the TPM that owns the EK.' },
  ATTEST_BAD_QUOTE: { status: 403, summary: 'The quote does not verify: bad signature, structure, or counters gone backwards.' },
  ATTEST_NONCE_MISMATCH: { status: 403, summary: "The quote covers another nonce or boot key than this session's." },
  ATTEST_PCR_MISMATCH: { status: 403, summary: "The reported PCR values do not match the quote's PCR digest." },
  ATTEST_EVENTLOG_MISMATCH: { status: 403, summary: 'The firmware event log is malformed or does not replay to the quoted PCR values.' },
  ATTEST_POLICY_VIOLATION: { status: 403, summary: 'PCR values differ from the approved values for this node and image.' },
  ATTEST_UKI_MISMATCH: { status: 403, summary: "The node was served a unified kernel image, but its event log has no PCR 4 EV_EFI_BOOT_SERVICES_APPLICATION event with that image's Authenticode digest (swapped image, or no event log)." },

  // node tokens
  TOKEN_REQUIRED: { status: 401, summary: 'A node endpoint needs Authorization: DPoP <token> and a DPoP proof.' },
  TOKEN_INVALID: { status: 401, summary: 'The node token is malformed, signed by an unknown key, or lacks claims.' },
  TOKEN_EXPIRED: { status: 401, summary: 'The node token has expired; the agent must attest again.' },
  TOKEN_KEY_PROOF: { status: 401, summary: 'The DPoP proof is missing, replayed, stale, for another request, or not signed by the key the token is bound to.' },
  TOKEN_WRONG_NODE: { status: 403, summary: "The token belongs to another node than the data asked for." },

  // store and server
  STORE_SCHEMA_TOO_NEW: { status: 500, summary: 'The database was written by a newer netboot; refusing to downgrade it.' },
  INTERNAL: { status: 500, summary: 'An unexpected server error; the log has the details.' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof catalogue

export interface ErrorDetail {
  /** Where the problem is: a config key path, `file:line`, a field name. */
  readonly where?: string
  readonly message: string
  readonly code?: ErrorCode
}

/** The one error class netboot throws on purpose. Recognise it by `code`, never by message text. */
export class NetbootError extends Error {
  override readonly name = 'NetbootError'
  readonly status: number

  constructor (
    readonly code: ErrorCode,
    message: string,
    readonly details: readonly ErrorDetail[] = [],
  ) {
    super(message)
    this.status = catalogue[code].status
  }

  toJSON (): { error: { code: ErrorCode; message: string; details?: readonly ErrorDetail[] } } {
    return { error: { code: this.code, message: this.message, ...(this.details.length > 0 ? { details: this.details } : {}) } }
  }
}

export function isNetbootError (e: unknown, code?: ErrorCode): e is NetbootError {
  return e instanceof NetbootError && (code === undefined || e.code === code)
}
