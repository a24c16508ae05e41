/**
 * The store: everything netboot keeps. Callers see only this interface, so a
 * PostgreSQL implementation (several servers sharing state) can replace the
 * embedded SQLite one without touching them. Every method is async for that reason.
 *
 * Contracts shared by all implementations:
 * - Every admin change is one transaction together with its audit entry: both land
 *   or neither does.
 * - "Not found" is an `undefined` result for lookups, and a NetbootError with a
 *   `*_NOT_FOUND` code for changes.
 * - Uniqueness (MAC, IP, xname, NID, names) is enforced by the store, which raises
 *   the matching `DUPLICATE_*` code naming both holders.
 */
import type { Actor, DhcpOverrides, Group, Node, NodeChanges, NodeSpec } from '../inventory/model.js'
import type { Role } from '../auth/roles.js'
import type { Lease } from '../dhcp/lease/state.js'

export interface DhcpHost {
  readonly node: string
  /** The address reserved for this MAC (NIC or BMC), if any. */
  readonly ip?: string
  readonly dhcp?: DhcpOverrides
}

export interface NodeFilter {
  /** Exact names (already expanded from a host range). */
  readonly names?: readonly string[]
  readonly group?: string
}

export interface ImportResult {
  readonly created: string[]
  readonly updated: string[]
  readonly unchanged: string[]
  readonly groupsCreated: string[]
}

export interface AdminToken {
  readonly id: string
  readonly name: string
  readonly role: Role
  readonly createdAt: string
  readonly createdBy: string
  readonly expiresAt?: string
  readonly revokedAt?: string
  readonly lastUsedAt?: string
}

export interface StoredToken extends AdminToken {
  /** sha256 of the token's secret part, hex. */
  readonly secretHash: string
}

export type AuditOutcome = 'ok' | 'denied' | 'failed'

export interface AuditDraft {
  readonly actor: Actor
  /** Dotted verb, e.g. `node.create`, `token.revoke`, `auth.forbidden`. */
  readonly action: string
  readonly target?: string
  readonly outcome?: AuditOutcome
  /** What changed or what was decided. Never secrets. */
  readonly detail?: Record<string, unknown>
}

export interface AuditEntry {
  readonly seq: number
  readonly time: string
  readonly actor: Actor
  readonly action: string
  readonly target?: string
  readonly outcome: AuditOutcome
  readonly detail: Record<string, unknown>
  readonly prevHash: string
  readonly hash: string
}

export interface AuditQuery {
  readonly afterSeq?: number
  readonly limit?: number
  readonly action?: string
  readonly target?: string
}

export interface AuditVerdict {
  readonly ok: boolean
  readonly entries: number
  /** First entry whose hash or link does not verify. */
  readonly brokenAt?: number
  readonly reason?: string
}

export type EnrollmentPolicy = 'strict' | 'tofu' | 'pre-enrolled'
export type IdentityState = 'pending' | 'enrolled' | 'rejected'

/** A TPM known to netboot, by its endorsement key. */
export interface TpmIdentity {
  readonly id: number
  /** The node it belongs to; absent for unknown hardware awaiting discovery. */
  readonly node?: string
  /** SHA-256 of the EK's TPM2B_PUBLIC, hex: the TPM's identity. */
  readonly ekSha256: string
  readonly ekCertSha256?: string
  readonly ekPublic?: Buffer
  readonly ekCert?: Buffer
  readonly policy: EnrollmentPolicy
  readonly state: IdentityState
  /** What the agent reported (MACs, DMI) when it was first seen. */
  readonly discovery?: Record<string, unknown>
  readonly macs: string[]
  readonly createdAt: string
  readonly decidedAt?: string
  readonly decidedBy?: string
  readonly resetCount?: number
  readonly restartCount?: number
  readonly lastAttestedAt?: string
}

export interface GoldenPcr {
  readonly scope: 'image' | 'node'
  readonly target: string
  readonly bank: 'sha1' | 'sha256' | 'sha384'
  readonly pcr: number
  /** hex */
  readonly value: string
  readonly state: 'learned' | 'approved'
  readonly source: string
  readonly createdAt: string
}

export interface Image {
  readonly name: string
  readonly version: string
  readonly kernelSha256: string
  readonly initrdSha256: string
  readonly rootfsSha256?: string
  /** SHA-256 of the unified kernel image (kernel + initrd + command line in one PE) served to UEFI nodes, if any (docs/uki.md). */
  readonly ukiSha256?: string
  /** The UKI's Authenticode digests by bank, hex: what UEFI firmware extends into PCR 4 when it starts it. Present with ukiSha256. */
  readonly ukiAuthenticode?: AuthenticodeDigests
  /** The Authenticode digests of the kernel in the UKI's .linux section: stubs that start it with LoadImage measure it into PCR 4 too. */
  readonly ukiLinuxAuthenticode?: AuthenticodeDigests
  /** Kernel parameters the image needs (lowest layer of the command line). */
  readonly params: string
  readonly createdAt: string
}

/** Authenticode image digests (hex) by hash algorithm (server/images/authenticode.ts). */
export type AuthenticodeDigests = Readonly<Record<'sha1' | 'sha256' | 'sha384' | 'sha512', string>>

export interface BootConfig {
  readonly scope: 'default' | 'group' | 'node'
  /** '' for default */
  readonly target: string
  /** Image name, or NAME@VERSION to pin a version. */
  readonly image?: string
  readonly params: string
  readonly updatedAt: string
}

export interface CloudInitRow {
  readonly scope: 'group' | 'node'
  readonly target: string
  readonly secure: boolean
  /** Each document as JSON text, or null (cloudinit/stored.ts). */
  readonly userData: string | null
  readonly metaData: string | null
  readonly vendorData: string | null
  readonly networkConfig: string | null
  readonly updatedAt: string
}

export interface Store {
  readonly kind: string
  /**
   * Grows with every change an admin or the system makes (inventory, images, boot
   * and cloud-init configuration, enrollment decisions): a cache of anything
   * derived from them is valid while this is unchanged. Nodes' own entries
   * (attestations, reads) do not count.
   */
  readonly generation: number

  listNodes (filter?: NodeFilter): Promise<Node[]>
  getNode (name: string): Promise<Node | undefined>
  /** The node owning a NIC or BMC MAC (DHCP, boot scripts). */
  findNodeByMac (mac: string): Promise<Node | undefined>
  /**
   * What DHCP needs to know of a MAC, in one lookup (the hot path): the node it
   * belongs to, the address reserved for that MAC, and the node's DHCP overrides.
   */
  findDhcpHost (mac: string): Promise<DhcpHost | undefined>
  /** Whether any NIC or BMC has this address reserved (pool allocation skips it). */
  isReservedIp (ip: string): Promise<boolean>
  /** The node owning an IP (cloud-init by requester address). */
  findNodeByIp (ip: string): Promise<Node | undefined>
  createNode (spec: NodeSpec, actor: Actor): Promise<Node>
  /** Create or update every node in one transaction; nothing is written on error. */
  importNodes (specs: readonly NodeSpec[], opts: { createGroups: boolean; source: string }, actor: Actor): Promise<ImportResult>
  /** Apply the same changes to every named node, in one transaction. */
  updateNodes (names: readonly string[], changes: NodeChanges, actor: Actor): Promise<Node[]>
  deleteNodes (names: readonly string[], actor: Actor): Promise<string[]>

  listGroups (): Promise<Group[]>
  getGroup (name: string): Promise<Group | undefined>
  createGroup (name: string, description: string, actor: Actor): Promise<Group>
  updateGroup (name: string, changes: { description?: string }, actor: Actor): Promise<Group>
  deleteGroup (name: string, opts: { force: boolean }, actor: Actor): Promise<void>

  createToken (token: Omit<StoredToken, 'createdAt' | 'revokedAt' | 'lastUsedAt'>, actor: Actor): Promise<AdminToken>
  getToken (id: string): Promise<StoredToken | undefined>
  listTokens (): Promise<AdminToken[]>
  revokeToken (id: string, actor: Actor): Promise<AdminToken>
  /** Records use; implementations may coalesce these writes. */
  touchToken (id: string): Promise<void>

  /** Every stored DHCP lease (bound, released, declined), optionally of one subnet. */
  listLeases (filter?: { subnet?: string }): Promise<Lease[]>
  /**
   * Records a lease by address, replacing that address's row and any other row
   * of the same MAC in the same subnet (a client holds one address per subnet).
   */
  saveLease (lease: Lease): Promise<void>

  listImages (name?: string): Promise<Image[]>
  /** One version, or the newest version of `name`. */
  getImage (name: string, version?: string): Promise<Image | undefined>
  addImage (image: Omit<Image, 'createdAt'>, actor: Actor): Promise<Image>
  /** Refuses (IMAGE_IN_USE) while a boot configuration names the image. */
  deleteImage (name: string, version: string | undefined, actor: Actor): Promise<Image[]>
  listBootConfigs (): Promise<BootConfig[]>
  /** Sets image and/or params of one scope; undefined leaves a field, null clears it. */
  setBootConfig (scope: BootConfig['scope'], target: string, changes: { image?: string | null; params?: string | null }, actor: Actor): Promise<BootConfig>
  deleteBootConfig (scope: BootConfig['scope'], target: string, actor: Actor): Promise<void>

  listCloudInit (filter?: { secure?: boolean }): Promise<CloudInitRow[]>
  getCloudInit (scope: 'group' | 'node', target: string, secure: boolean): Promise<CloudInitRow | undefined>
  /** Creates or replaces payloads, in one transaction with their audit entry. */
  putCloudInit (rows: readonly Omit<CloudInitRow, 'updatedAt'>[], audit: AuditDraft): Promise<void>
  deleteCloudInit (scope: 'group' | 'node', target: string, secure: boolean, actor: Actor): Promise<void>

  findTpmIdentity (ekSha256: string): Promise<TpmIdentity | undefined>
  getTpmIdentity (id: number): Promise<TpmIdentity | undefined>
  listTpmIdentities (filter?: { state?: IdentityState; node?: string }): Promise<TpmIdentity[]>
  /** Records a TPM seen for the first time (pending, or enrolled under tofu), with its audit entry. */
  addTpmIdentity (identity: Omit<TpmIdentity, 'id' | 'createdAt'>, audit: AuditDraft): Promise<TpmIdentity>
  /** An admin's decision on a pending identity; `node` assigns discovered hardware to a node. */
  decideTpmIdentity (id: number, decision: { state: 'enrolled' | 'rejected'; node?: string }, actor: Actor): Promise<TpmIdentity>
  /** After a good quote: the TPM's counters, which must never go backwards. */
  recordTpmCounters (id: number, counters: { resetCount: number; restartCount: number }): Promise<void>
  /**
   * A successful attestation: the TPM's counters (as recordTpmCounters) and its audit
   * entry, in one transaction shared with the attestations recorded in the same turn
   * of the event loop (group commit); settles once committed.
   */
  recordAttestation (identityId: number, counters: { resetCount: number; restartCount: number }, audit: AuditDraft): Promise<AuditEntry>

  listGoldenPcrs (filter?: { scope?: 'image' | 'node'; target?: string }): Promise<GoldenPcr[]>
  /** The values one attestation is judged by: the node's own and its image's, of one bank (by key, not a scan: attestation hot path). */
  goldenPcrsFor (who: { node: string; image?: string }, bank: GoldenPcr['bank']): Promise<GoldenPcr[]>
  /** Marks the learned values of one image or node approved; returns how many. */
  approveGoldenPcrs (scope: 'image' | 'node', target: string, actor: Actor): Promise<number>
  /** Writes values (learned or approved), replacing what the same scope/target/bank/pcr had. */
  putGoldenPcrs (values: readonly Omit<GoldenPcr, 'createdAt'>[], audit: AuditDraft): Promise<void>

  /** Append one audit entry in its own transaction (for decisions that change nothing). */
  audit (draft: AuditDraft): Promise<AuditEntry>
  listAudit (query?: AuditQuery): Promise<AuditEntry[]>
  getAudit (seq: number): Promise<AuditEntry | undefined>
  verifyAudit (): Promise<AuditVerdict>

  close (): Promise<void>
}
