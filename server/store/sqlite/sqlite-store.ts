/**
 * The embedded store: SQLite through better-sqlite3, in WAL mode with foreign keys
 * on. better-sqlite3 is synchronous; the methods are async only to fill the Store
 * interface. Each public mutation is one SQLite transaction that also appends its
 * audit entry.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { NetbootError, type ErrorCode } from '../../errors.js'
import { compressHostlist } from '../../inventory/hostlist.js'
import type { Actor, DhcpOverrides, Group, Node, NodeChanges, NodeInterface, NodeSpec } from '../../inventory/model.js'
import type { Role } from '../../auth/roles.js'
import { GENESIS, entryHash, entryHashIfPlain, verifyChain } from '../../audit/chain.js'
import { migrations } from './migrations.js'
import { HotReads } from './hot-reads.js'
import type { Lease } from '../../dhcp/lease/state.js'
import type {
  AuthenticodeDigests, BootConfig, CloudInitRow, DhcpHost, GoldenPcr, Image, IdentityState, TpmIdentity,
  AdminToken, AuditDraft, AuditEntry, AuditQuery, AuditVerdict, ImportResult, NodeFilter, Store, StoredToken,
} from '../store.js'

type Db = Database.Database

interface NodeRow { id: number; name: string; xname: string | null; nid: number | null; dhcp_options: string | null; created_at: string; updated_at: string }
interface AddressRow { node_id: number; kind: 'nic' | 'bmc'; mac: string | null; ip: string | null; network: string | null }
interface GroupLinkRow { node_id: number; group_name: string }
interface TokenRow {
  id: string; name: string; role: string; secret_sha256: string; created_at: string; created_by: string
  expires_at: string | null; revoked_at: string | null; last_used_at: string | null
}
interface AuditRow {
  seq: number; time: string; actor_kind: string; actor_id: string; actor_name: string | null; action: string
  target: string | null; outcome: string; detail: string; prev_hash: string; hash: string
}

export interface SqliteOptions {
  /** `normal` survives a process crash (kill -9); `full` also survives power loss, at a cost per write. */
  readonly synchronous?: 'normal' | 'full'
}

/** Token last-use times are written at most this often per token. */
const TOUCH_INTERVAL_MS = 60_000

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  private changes = 0
  get generation (): number { return this.changes }
  /** onChange's listeners, and whether a notice is queued for this turn of microtasks. */
  private readonly changeListeners = new Set<(generation: number) => void>()
  private changeNoticed = false
  private readonly db: Db
  private readonly touched = new Map<string, number>()
  private readonly statements = new Map<string, Database.Statement>()
  /** The attestation path's reads, kept in memory (hot-reads.ts: what empties or updates them). */
  private readonly hotReads = new HotReads()
  private saveLeasesTx?: (l: Lease[]) => void
  private readonly leaseQueue: { lease: Lease; resolve: () => void; reject: (e: unknown) => void }[] = []
  private readonly attestQueue: { id: number; counters: { resetCount: number; restartCount: number }; audit: AuditDraft; at?: string; resolve: (e: AuditEntry) => void; reject: (e: unknown) => void }[] = []

  static open (path: string, opts: SqliteOptions = {}): SqliteStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    const db = new Database(path)
    try {
      db.pragma('journal_mode = WAL')
      db.pragma('foreign_keys = ON')
      db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
      db.pragma('busy_timeout = 5000')
      migrate(db)
    } catch (e) {
      db.close()
      throw e
    }
    return new SqliteStore(db)
  }

  private constructor (db: Db) {
    this.db = db
  }

  /** The database file this store has open (`:memory:` or '' for a private database). */
  get file (): string {
    return this.db.name
  }

  /**
   * Calls `listener` with the new generation after an admin or system change
   * moved it (the DHCP worker's store follows this one: server/dhcp/worker-host.ts).
   * Contract: better-sqlite3 transactions are synchronous, so the listener,
   * called from a microtask queued when the generation moved, runs after the
   * transaction has committed (or rolled back: a harmless extra move) and before
   * the caller of the mutating method resumes; one call per turn of microtasks
   * whatever the number of changes in it. Writes that nodes cause (leases,
   * attestations, their audit entries) leave the generation alone and call
   * nothing. Listeners must not throw (an exception in a microtask is uncaught).
   * Returns the function that removes the listener.
   */
  onChange (listener: (generation: number) => void): () => void {
    this.changeListeners.add(listener)
    return () => { this.changeListeners.delete(listener) }
  }

  /**
   * Adopts the generation of another connection's writer when it is higher (the
   * DHCP worker's store, which makes no admin changes of its own, following the
   * main store's): what is kept under the older generation (hot reads, the DHCP
   * engine's host answers) is dropped at its next read.
   */
  followGeneration (generation: number): void {
    if (generation > this.changes) this.changes = generation
  }

  private noticeChange (): void {
    if (this.changeListeners.size === 0 || this.changeNoticed) return
    this.changeNoticed = true
    queueMicrotask(() => {
      this.changeNoticed = false
      for (const l of this.changeListeners) l(this.changes)
    })
  }

  /** Schema version after migrations (for `netboot status` and tests). */
  get schemaVersion (): number {
    return this.db.pragma('user_version', { simple: true }) as number
  }

  // ---- nodes ---------------------------------------------------------------

  async listNodes (filter: NodeFilter = {}): Promise<Node[]> {
    return this.readNodes(filter)
  }

  async getNode (name: string): Promise<Node | undefined> {
    return this.readNodes({ names: [name] })[0]
  }

  /** One indexed statement (the node with its addresses and groups), not readNodes' four: boot scripts and attestation ask per request. */
  async findNodeByMac (mac: string): Promise<Node | undefined> {
    const hot = this.hot()
    const kept = hot.node(mac)
    if (kept !== undefined) return kept
    const r = this.stmt(`SELECT n.*, ${NODE_PARTS} FROM addresses a JOIN nodes n ON n.id = a.node_id WHERE a.mac = ?`).get(mac) as NodeWithPartsRow | undefined
    return r === undefined ? undefined : hot.putNode(mac, nodeFromParts(r))
  }

  async findDhcpHost (mac: string): Promise<DhcpHost | undefined> {
    const r = this.stmt('SELECT n.name, n.dhcp_options, a.ip FROM addresses a JOIN nodes n ON n.id = a.node_id WHERE a.mac = ?').get(mac) as { name: string; dhcp_options: string | null; ip: string | null } | undefined
    if (r === undefined) return undefined
    return { node: r.name, ...(r.ip !== null ? { ip: r.ip } : {}), ...(r.dhcp_options !== null ? { dhcp: JSON.parse(r.dhcp_options) as DhcpOverrides } : {}) }
  }

  async isReservedIp (ip: string): Promise<boolean> {
    return this.stmt('SELECT 1 FROM addresses WHERE ip = ?').get(ip) !== undefined
  }

  async findNodeByIp (ip: string): Promise<Node | undefined> {
    const r = this.stmt(`SELECT n.*, ${NODE_PARTS} FROM addresses a JOIN nodes n ON n.id = a.node_id WHERE a.ip = ?`).get(ip) as NodeWithPartsRow | undefined
    return r === undefined ? undefined : nodeFromParts(r)
  }

  async createNode (spec: NodeSpec, actor: Actor): Promise<Node> {
    this.db.transaction(() => {
      if (this.nodeId(spec.name) !== undefined) throw new NetbootError('NODE_EXISTS', `node '${spec.name}' already exists`)
      this.requireGroups(spec.groups, false)
      this.writeNode(spec, undefined, now())
      this.appendAudit({ actor, action: 'node.create', target: spec.name, detail: { node: specDetail(spec) } })
    })()
    return (await this.getNode(spec.name))!
  }

  async importNodes (specs: readonly NodeSpec[], opts: { createGroups: boolean; source: string }, actor: Actor): Promise<ImportResult> {
    const created: string[] = []
    const updated: string[] = []
    const unchanged: string[] = []
    let groupsCreated: string[] = []
    this.db.transaction(() => {
      const t = now()
      groupsCreated = this.requireGroups(specs.flatMap((s) => s.groups), opts.createGroups, t)
      for (const g of groupsCreated) this.appendAudit({ actor, action: 'group.create', target: g, detail: { via: 'node.import', source: opts.source } })
      const existing = new Map(this.readNodes({ names: specs.map((s) => s.name) }).map((n) => [n.name, n]))
      // Free the addresses of every node being rewritten first, so nodes in one
      // file may swap MACs or IPs without tripping over each other.
      const del = this.stmt('DELETE FROM addresses WHERE node_id = ?')
      for (const s of specs) {
        const prev = existing.get(s.name)
        if (prev !== undefined && !sameNode(prev, { ...s, ...(prev.dhcp !== undefined ? { dhcp: prev.dhcp } : {}) })) del.run(this.nodeId(s.name))
      }
      for (const s of specs) {
        const prev = existing.get(s.name)
        if (prev === undefined) {
          this.writeNode(s, undefined, t)
          created.push(s.name)
        } else if (sameNode(prev, { ...s, ...(prev.dhcp !== undefined ? { dhcp: prev.dhcp } : {}) })) {
          unchanged.push(s.name)
        } else {
          // nodes.yaml has no DHCP overrides: an import keeps the ones set with `node set`
          this.writeNode({ ...s, ...(prev.dhcp !== undefined ? { dhcp: prev.dhcp } : {}) }, this.nodeId(s.name), t)
          updated.push(s.name)
        }
      }
      this.appendAudit({
        actor,
        action: 'node.import',
        target: compressHostlist(specs.map((s) => s.name)),
        detail: { source: opts.source, created: compressHostlist(created), updated: compressHostlist(updated), unchanged: unchanged.length, groupsCreated },
      })
    })()
    return { created, updated, unchanged, groupsCreated }
  }

  async updateNodes (names: readonly string[], changes: NodeChanges, actor: Actor): Promise<Node[]> {
    this.db.transaction(() => {
      const current = this.readNodes({ names })
      const missing = names.filter((n) => !current.some((c) => c.name === n))
      if (missing.length > 0) throw new NetbootError('NODE_NOT_FOUND', `no such node: ${compressHostlist(missing)}`)
      this.requireGroups([...(changes.groups ?? []), ...(changes.addGroups ?? [])], false)
      const t = now()
      for (const node of current) {
        const next = applyChanges(node, changes)
        this.stmt('DELETE FROM addresses WHERE node_id = ?').run(this.nodeId(node.name))
        this.writeNode(next, this.nodeId(node.name), t)
      }
      this.appendAudit({ actor, action: 'node.update', target: compressHostlist(names), detail: { changes: { ...changes } } })
    })()
    return this.readNodes({ names })
  }

  async deleteNodes (names: readonly string[], actor: Actor): Promise<string[]> {
    this.db.transaction(() => {
      const ids = names.map((n) => [n, this.nodeId(n)] as const)
      const missing = ids.filter(([, id]) => id === undefined).map(([n]) => n)
      if (missing.length > 0) throw new NetbootError('NODE_NOT_FOUND', `no such node: ${compressHostlist(missing)}`)
      const del = this.stmt('DELETE FROM nodes WHERE id = ?')
      for (const [, id] of ids) del.run(id)
      const ci = this.stmt("DELETE FROM cloud_init WHERE scope = 'node' AND target = ?")
      const bc = this.stmt("DELETE FROM boot_configs WHERE scope = 'node' AND target = ?")
      for (const n of names) { ci.run(n); bc.run(n) }
      this.appendAudit({ actor, action: 'node.delete', target: compressHostlist(names), detail: { count: names.length } })
    })()
    return [...names]
  }

  // ---- groups --------------------------------------------------------------

  async listGroups (): Promise<Group[]> {
    const rows = this.stmt(`SELECT g.name, g.description, g.created_at, COUNT(ng.node_id) AS members
      FROM groups g LEFT JOIN node_groups ng ON ng.group_name = g.name GROUP BY g.name ORDER BY g.name`).all() as GroupRowWithCount[]
    return rows.map(toGroup)
  }

  async getGroup (name: string): Promise<Group | undefined> {
    const row = this.stmt(`SELECT g.name, g.description, g.created_at, COUNT(ng.node_id) AS members
      FROM groups g LEFT JOIN node_groups ng ON ng.group_name = g.name WHERE g.name = ? GROUP BY g.name`).get(name) as GroupRowWithCount | undefined
    return row === undefined ? undefined : toGroup(row)
  }

  async createGroup (name: string, description: string, actor: Actor): Promise<Group> {
    this.db.transaction(() => {
      if (this.groupExists(name)) throw new NetbootError('GROUP_EXISTS', `group '${name}' already exists`)
      this.stmt('INSERT INTO groups (name, description, created_at) VALUES (?, ?, ?)').run(name, description, now())
      this.appendAudit({ actor, action: 'group.create', target: name, detail: { description } })
    })()
    return (await this.getGroup(name))!
  }

  async updateGroup (name: string, changes: { description?: string }, actor: Actor): Promise<Group> {
    this.db.transaction(() => {
      if (!this.groupExists(name)) throw new NetbootError('GROUP_NOT_FOUND', `no such group: ${name}`)
      if (changes.description !== undefined) this.stmt('UPDATE groups SET description = ? WHERE name = ?').run(changes.description, name)
      this.appendAudit({ actor, action: 'group.update', target: name, detail: { changes } })
    })()
    return (await this.getGroup(name))!
  }

  async deleteGroup (name: string, opts: { force: boolean }, actor: Actor): Promise<void> {
    this.db.transaction(() => {
      const g = this.stmt('SELECT COUNT(*) AS n FROM node_groups WHERE group_name = ?').get(name) as { n: number }
      if (!this.groupExists(name)) throw new NetbootError('GROUP_NOT_FOUND', `no such group: ${name}`)
      if (g.n > 0 && !opts.force) throw new NetbootError('GROUP_NOT_EMPTY', `group '${name}' has ${g.n} member node(s); remove them first or force`)
      this.stmt('DELETE FROM node_groups WHERE group_name = ?').run(name)
      this.stmt('DELETE FROM groups WHERE name = ?').run(name)
      this.stmt("DELETE FROM cloud_init WHERE scope = 'group' AND target = ?").run(name)
      this.stmt("DELETE FROM boot_configs WHERE scope = 'group' AND target = ?").run(name)
      this.appendAudit({ actor, action: 'group.delete', target: name, detail: { force: opts.force, members: g.n } })
    })()
  }

  // ---- admin tokens --------------------------------------------------------

  async createToken (tok: Omit<StoredToken, 'createdAt' | 'revokedAt' | 'lastUsedAt'>, actor: Actor): Promise<AdminToken> {
    this.db.transaction(() => {
      this.stmt(`INSERT INTO admin_tokens (id, name, role, secret_sha256, created_at, created_by, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`).run(tok.id, tok.name, tok.role, tok.secretHash, now(), tok.createdBy, tok.expiresAt ?? null)
      this.appendAudit({ actor, action: 'token.create', target: tok.id, detail: { name: tok.name, role: tok.role, expiresAt: tok.expiresAt } })
    })()
    return publicToken((await this.getToken(tok.id))!)
  }

  async getToken (id: string): Promise<StoredToken | undefined> {
    const row = this.stmt('SELECT * FROM admin_tokens WHERE id = ?').get(id) as TokenRow | undefined
    return row === undefined ? undefined : toToken(row)
  }

  async listTokens (): Promise<AdminToken[]> {
    return (this.stmt('SELECT * FROM admin_tokens ORDER BY created_at, id').all() as TokenRow[]).map((r) => publicToken(toToken(r)))
  }

  async revokeToken (id: string, actor: Actor): Promise<AdminToken> {
    this.db.transaction(() => {
      const row = this.stmt('SELECT revoked_at FROM admin_tokens WHERE id = ?').get(id) as { revoked_at: string | null } | undefined
      if (row === undefined) throw new NetbootError('TOKEN_NOT_FOUND', `no such token: ${id}`)
      if (row.revoked_at === null) this.stmt('UPDATE admin_tokens SET revoked_at = ? WHERE id = ?').run(now(), id)
      this.appendAudit({ actor, action: 'token.revoke', target: id, detail: { alreadyRevoked: row.revoked_at !== null } })
    })()
    return publicToken((await this.getToken(id))!)
  }

  async touchToken (id: string): Promise<void> {
    const t = Date.now()
    if (t - (this.touched.get(id) ?? 0) < TOUCH_INTERVAL_MS) return
    this.touched.set(id, t)
    this.stmt('UPDATE admin_tokens SET last_used_at = ? WHERE id = ?').run(new Date(t).toISOString(), id)
  }

  // ---- DHCP leases ---------------------------------------------------------

  async listLeases (filter: { subnet?: string } = {}): Promise<Lease[]> {
    const rows = (filter.subnet === undefined
      ? this.stmt('SELECT * FROM dhcp_leases ORDER BY subnet, ip').all()
      : this.stmt('SELECT * FROM dhcp_leases WHERE subnet = ? ORDER BY ip').all(filter.subnet)) as LeaseRow[]
    return rows.map(toLease)
  }

  /**
   * Group commit: leases saved in the same turn of the event loop are written in
   * one transaction at the next setImmediate, and every caller's promise settles
   * after that commit. Under a boot storm this turns thousands of commits per second
   * into a few hundred, while each ACK still leaves only once its lease is stored.
   */
  async saveLease (l: Lease): Promise<void> {
    return await new Promise<void>((resolve, reject) => {
      this.leaseQueue.push({ lease: l, resolve, reject })
      if (this.leaseQueue.length === 1) setImmediate(() => this.flushLeases())
    })
  }

  private flushLeases (): void {
    const batch = this.leaseQueue.splice(0)
    if (batch.length === 0) return
    try {
      this.saveLeasesTx ??= this.db.transaction((leases: Lease[]) => {
        const del = this.stmt('DELETE FROM dhcp_leases WHERE mac = ? AND subnet = ? AND ip <> ?')
        const up = this.stmt(`INSERT INTO dhcp_leases (ip, mac, client_id, subnet, state, hostname, starts_at, expires_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id,
          subnet = excluded.subnet, state = excluded.state, hostname = excluded.hostname, starts_at = excluded.starts_at, expires_at = excluded.expires_at`)
        for (const x of leases) {
          del.run(x.mac, x.subnet, x.ip)
          up.run(x.ip, x.mac, x.clientId === undefined ? null : Buffer.from(x.clientId, 'hex'), x.subnet, x.state, x.hostname ?? null, x.startsAt, x.expiresAt)
        }
      })
      this.saveLeasesTx(batch.map((b) => b.lease))
    } catch (e) {
      for (const b of batch) b.reject(e)
      return
    }
    for (const b of batch) b.resolve()
  }

  // ---- images and boot configurations -----------------------------------------

  async listImages (name?: string): Promise<Image[]> {
    const rows = this.stmt('SELECT * FROM images WHERE (@name IS NULL OR name = @name) ORDER BY name, created_at, id').all({ name: name ?? null }) as ImageRow[]
    return rows.map(toImage)
  }

  async getImage (name: string, version?: string): Promise<Image | undefined> {
    const r = (version === undefined
      ? this.stmt('SELECT * FROM images WHERE name = ? ORDER BY created_at DESC, id DESC LIMIT 1').get(name)
      : this.stmt('SELECT * FROM images WHERE name = ? AND version = ?').get(name, version)) as ImageRow | undefined
    return r === undefined ? undefined : toImage(r)
  }

  async addImage (i: Omit<Image, 'createdAt'>, actor: Actor): Promise<Image> {
    this.db.transaction(() => {
      if (this.stmt('SELECT 1 FROM images WHERE name = ? AND version = ?').get(i.name, i.version) !== undefined) {
        throw new NetbootError('IMAGE_EXISTS', `image ${i.name} version ${i.version} already exists`)
      }
      if ((i.ukiSha256 === undefined) !== (i.ukiAuthenticode === undefined)) throw new NetbootError('IMAGE_UKI_INVALID', `image ${i.name}: a UKI needs both its sha256 and its Authenticode digests`)
      const ukiDigests = i.ukiAuthenticode === undefined ? null : JSON.stringify({ uki: i.ukiAuthenticode, ...(i.ukiLinuxAuthenticode !== undefined ? { linux: i.ukiLinuxAuthenticode } : {}) })
      this.stmt('INSERT INTO images (name, version, kernel_sha256, initrd_sha256, rootfs_sha256, params, created_at, uki_sha256, uki_digests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(i.name, i.version, i.kernelSha256, i.initrdSha256, i.rootfsSha256 ?? null, i.params, now(), i.ukiSha256 ?? null, ukiDigests)
      this.appendAudit({ actor, action: 'image.add', target: `${i.name}@${i.version}`, detail: { kernel: i.kernelSha256, initrd: i.initrdSha256, rootfs: i.rootfsSha256 ?? null, params: i.params, ...(i.ukiSha256 !== undefined ? { uki: i.ukiSha256, ukiAuthenticodeSha256: i.ukiAuthenticode?.sha256 } : {}) } })
    })()
    return (await this.getImage(i.name, i.version))!
  }

  async deleteImage (name: string, version: string | undefined, actor: Actor): Promise<Image[]> {
    const removed = await this.listImages(name)
    const victims = version === undefined ? removed : removed.filter((i) => i.version === version)
    this.db.transaction(() => {
      if (victims.length === 0) throw new NetbootError('IMAGE_NOT_FOUND', `no image ${name}${version !== undefined ? ` version ${version}` : ''}`)
      const users = (this.stmt('SELECT scope, target, image FROM boot_configs WHERE image IS NOT NULL').all() as { scope: string; target: string; image: string }[])
        .filter((b) => {
          const [n, v] = b.image.split('@')
          if (n !== name) return false
          // an unpinned reference uses the newest version; removing all versions or the newest breaks it
          if (v !== undefined) return victims.some((x) => x.version === v)
          return version === undefined || removed.at(-1)?.version === version
        })
      if (users.length > 0) {
        throw new NetbootError('IMAGE_IN_USE', `image ${name} is used by boot configuration ${users.map((u) => (u.scope === 'default' ? 'default' : `${u.scope} ${u.target}`)).join(', ')}`)
      }
      for (const v of victims) this.stmt('DELETE FROM images WHERE name = ? AND version = ?').run(name, v.version)
      this.appendAudit({ actor, action: 'image.delete', target: name, detail: { versions: victims.map((v) => v.version) } })
    })()
    return victims
  }

  async listBootConfigs (): Promise<BootConfig[]> {
    return (this.stmt('SELECT * FROM boot_configs ORDER BY scope, target').all() as BootRow[]).map(toBoot)
  }

  async setBootConfig (scope: BootConfig['scope'], target: string, c: { image?: string | null; params?: string | null }, actor: Actor): Promise<BootConfig> {
    this.db.transaction(() => {
      if (scope === 'group' && !this.groupExists(target)) throw new NetbootError('GROUP_NOT_FOUND', `no such group: ${target}`)
      if (scope === 'node' && this.nodeId(target) === undefined) throw new NetbootError('NODE_NOT_FOUND', `no such node: ${target}`)
      if (typeof c.image === 'string') {
        const [n, v] = c.image.split('@') as [string, string | undefined]
        const exists = v === undefined ? this.stmt('SELECT 1 FROM images WHERE name = ?').get(n) : this.stmt('SELECT 1 FROM images WHERE name = ? AND version = ?').get(n, v)
        if (exists === undefined) throw new NetbootError('IMAGE_NOT_FOUND', `no image ${c.image}`)
      }
      const cur = this.stmt('SELECT * FROM boot_configs WHERE scope = ? AND target = ?').get(scope, target) as BootRow | undefined
      const image = c.image === undefined ? cur?.image ?? null : c.image
      const params = c.params === undefined ? cur?.params ?? '' : c.params ?? ''
      this.stmt(`INSERT INTO boot_configs (scope, target, image, params, updated_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (scope, target) DO UPDATE SET image = excluded.image, params = excluded.params, updated_at = excluded.updated_at`).run(scope, target, image, params, now())
      this.appendAudit({ actor, action: 'boot.set', target: scope === 'default' ? 'default' : `${scope}:${target}`, detail: { image, params } })
    })()
    return toBoot(this.stmt('SELECT * FROM boot_configs WHERE scope = ? AND target = ?').get(scope, target) as BootRow)
  }

  async deleteBootConfig (scope: BootConfig['scope'], target: string, actor: Actor): Promise<void> {
    this.db.transaction(() => {
      const n = this.stmt('DELETE FROM boot_configs WHERE scope = ? AND target = ?').run(scope, target).changes
      if (n === 0) throw new NetbootError('NOT_FOUND', `no boot configuration for ${scope === 'default' ? 'default' : `${scope} ${target}`}`)
      this.appendAudit({ actor, action: 'boot.delete', target: scope === 'default' ? 'default' : `${scope}:${target}`, detail: {} })
    })()
  }

  // ---- cloud-init payloads ---------------------------------------------------

  async listCloudInit (f: { secure?: boolean } = {}): Promise<CloudInitRow[]> {
    const rows = this.stmt('SELECT * FROM cloud_init WHERE (@secure IS NULL OR secure = @secure) ORDER BY scope, target, secure')
      .all({ secure: f.secure === undefined ? null : f.secure ? 1 : 0 }) as CloudInitDbRow[]
    return rows.map(toCloudInit)
  }

  async getCloudInit (scope: 'group' | 'node', target: string, secure: boolean): Promise<CloudInitRow | undefined> {
    const r = this.stmt('SELECT * FROM cloud_init WHERE scope = ? AND target = ? AND secure = ?').get(scope, target, secure ? 1 : 0) as CloudInitDbRow | undefined
    return r === undefined ? undefined : toCloudInit(r)
  }

  async putCloudInit (rows: readonly Omit<CloudInitRow, 'updatedAt'>[], audit: AuditDraft): Promise<void> {
    this.db.transaction(() => {
      const t = now()
      for (const r of rows) {
        if (r.scope === 'group' ? !this.groupExists(r.target) : this.nodeId(r.target) === undefined) {
          throw new NetbootError(r.scope === 'group' ? 'GROUP_NOT_FOUND' : 'NODE_NOT_FOUND', `no such ${r.scope}: ${r.target}`)
        }
        this.stmt(`INSERT INTO cloud_init (scope, target, secure, user_data, meta_data, vendor_data, network_config, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (scope, target, secure) DO UPDATE SET user_data = excluded.user_data, meta_data = excluded.meta_data, vendor_data = excluded.vendor_data,
          network_config = excluded.network_config, updated_at = excluded.updated_at`)
          .run(r.scope, r.target, r.secure ? 1 : 0, r.userData, r.metaData, r.vendorData, r.networkConfig, t)
      }
      this.appendAudit(audit)
    })()
  }

  async deleteCloudInit (scope: 'group' | 'node', target: string, secure: boolean, actor: Actor): Promise<void> {
    this.db.transaction(() => {
      const n = this.stmt('DELETE FROM cloud_init WHERE scope = ? AND target = ? AND secure = ?').run(scope, target, secure ? 1 : 0).changes
      if (n === 0) throw new NetbootError('NOT_FOUND', `no ${secure ? 'secure ' : ''}cloud-init data for ${scope} ${target}`)
      this.appendAudit({ actor, action: 'cloudinit.delete', target: `${scope}:${target}`, detail: { secure } })
    })()
  }

  // ---- TPM identities and PCR golden values ----------------------------------

  async findTpmIdentity (ekSha256: string): Promise<TpmIdentity | undefined> {
    const hot = this.hot()
    const kept = hot.identity(ekSha256)
    if (kept !== undefined) return kept
    const r = this.stmt(`${IDENTITY_SELECT} WHERE t.ek_pub_sha256 = ?`).get(ekSha256) as IdentityRow | undefined
    return r === undefined ? undefined : hot.putIdentity(toIdentity(r))
  }

  async getTpmIdentity (id: number): Promise<TpmIdentity | undefined> {
    const r = this.stmt(`${IDENTITY_SELECT} WHERE t.id = ?`).get(id) as IdentityRow | undefined
    return r === undefined ? undefined : toIdentity(r)
  }

  /**
   * By node: the node's id from its unique name, then the identities through
   * tpm_identities_node (attestation asks this at every node's first boot). A
   * filter on the joined name (`@node IS NULL OR n.name = @node`) read every
   * identity instead: 7.4 s of a 10,000-node storm's profile.
   */
  async listTpmIdentities (f: { state?: IdentityState; node?: string } = {}): Promise<TpmIdentity[]> {
    const rows = (f.node !== undefined
      ? this.stmt(IDENTITIES_OF_NODE).all({ state: f.state ?? null, node: f.node })
      : this.stmt(`${IDENTITY_SELECT} WHERE (@state IS NULL OR t.state = @state) ORDER BY t.id`)
        .all({ state: f.state ?? null })) as IdentityRow[]
    return rows.map(toIdentity)
  }

  async addTpmIdentity (i: Omit<TpmIdentity, 'id' | 'createdAt'>, audit: AuditDraft): Promise<TpmIdentity> {
    const id = this.db.transaction(() => {
      const nodeId = i.node === undefined ? null : this.nodeId(i.node)
      if (i.node !== undefined && nodeId === undefined) throw new NetbootError('NODE_NOT_FOUND', `no such node: ${i.node}`)
      const r = this.stmt(`INSERT INTO tpm_identities (node_id, ek_pub_sha256, ek_cert_sha256, ek_pub, ek_cert, policy, state, discovery, macs, created_at, decided_at, decided_by)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(nodeId, i.ekSha256, i.ekCertSha256 ?? null, i.ekPublic ?? null, i.ekCert ?? null, i.policy, i.state,
        i.discovery === undefined ? null : JSON.stringify(i.discovery), JSON.stringify(i.macs), now(), i.decidedAt ?? null, i.decidedBy ?? null)
      const newId = Number(r.lastInsertRowid)
      this.appendAudit({ ...audit, detail: { ...audit.detail, identity: newId } })
      return newId
    })()
    this.hotReads.dropIdentity(i.ekSha256)
    return (await this.getTpmIdentity(id))!
  }

  async decideTpmIdentity (id: number, d: { state: 'enrolled' | 'rejected'; node?: string }, actor: Actor): Promise<TpmIdentity> {
    this.db.transaction(() => {
      const cur = this.stmt(`${IDENTITY_SELECT} WHERE t.id = ?`).get(id) as IdentityRow | undefined
      if (cur === undefined) throw new NetbootError('IDENTITY_NOT_FOUND', `no such TPM identity: ${id}`)
      let nodeId = cur.node_id
      if (d.node !== undefined) {
        const n = this.nodeId(d.node)
        if (n === undefined) throw new NetbootError('NODE_NOT_FOUND', `no such node: ${d.node}`)
        nodeId = n
      }
      if (d.state === 'enrolled' && nodeId === null) {
        throw new NetbootError('BAD_REQUEST', `identity ${id} belongs to no node yet: name the node it is (--node NAME)`)
      }
      this.stmt('UPDATE tpm_identities SET state = ?, node_id = ?, decided_at = ?, decided_by = ? WHERE id = ?')
        .run(d.state, nodeId, now(), actor.name ?? actor.id, id)
      // Accepting discovered hardware as a node gives the node the MACs the agent
      // reported, so DHCP, boot scripts and attestation recognise the machine.
      const added: string[] = []
      if (d.state === 'enrolled' && nodeId !== null) {
        const macs = JSON.parse(cur.macs) as string[]
        const pos = (this.stmt("SELECT COUNT(*) AS n FROM addresses WHERE node_id = ? AND kind = 'nic'").get(nodeId) as { n: number }).n
        for (const mac of macs) {
          const owner = this.stmt('SELECT n.name, n.id FROM addresses a JOIN nodes n ON n.id = a.node_id WHERE a.mac = ?').get(mac) as { name: string; id: number } | undefined
          if (owner !== undefined && owner.id !== nodeId) throw new NetbootError('DUPLICATE_MAC', `MAC ${mac} of this hardware belongs to node '${owner.name}'`)
          if (owner === undefined) {
            this.stmt("INSERT INTO addresses (node_id, kind, mac, ip, network, position) VALUES (?, 'nic', ?, NULL, NULL, ?)").run(nodeId, mac, pos + added.length)
            added.push(mac)
          }
        }
      }
      this.appendAudit({ actor, action: d.state === 'enrolled' ? 'enroll.accept' : 'enroll.reject', target: String(id), detail: { ek: cur.ek_pub_sha256, node: d.node ?? cur.node_name ?? null, previous: cur.state, macsAdded: added } })
    })()
    return (await this.getTpmIdentity(id))!
  }

  async recordTpmCounters (id: number, c: { resetCount: number; restartCount: number }): Promise<void> {
    const at = now()
    this.stmt('UPDATE tpm_identities SET reset_count = ?, restart_count = ?, last_attested_at = ? WHERE id = ?').run(c.resetCount, c.restartCount, at, id)
    this.hotReads.counters(id, c, at)
  }

  /** Group commit, as saveLease: one transaction per turn of the event loop for every attestation recorded in it. */
  async recordAttestation (id: number, counters: { resetCount: number; restartCount: number }, audit: AuditDraft): Promise<AuditEntry> {
    return await new Promise<AuditEntry>((resolve, reject) => {
      this.attestQueue.push({ id, counters, audit, resolve, reject })
      if (this.attestQueue.length === 1) setImmediate(() => this.flushAttestations())
    })
  }

  private flushAttestations (): void {
    const batch = this.attestQueue.splice(0)
    if (batch.length === 0) return
    let entries: AuditEntry[]
    try {
      entries = this.db.transaction(() => {
        // the chain's tail is read once: within this write transaction no one else appends
        let tail: AuditEntry | undefined
        return batch.map((b) => {
          b.at = now()
          this.stmt('UPDATE tpm_identities SET reset_count = ?, restart_count = ?, last_attested_at = ? WHERE id = ?').run(b.counters.resetCount, b.counters.restartCount, b.at, b.id)
          tail = this.appendAudit(b.audit, tail)
          return tail
        })
      })()
    } catch (e) {
      for (const b of batch) b.reject(e)
      return
    }
    // committed: the kept identities take the counters (in batch order, as the rows did)
    for (const b of batch) this.hotReads.counters(b.id, b.counters, b.at!)
    batch.forEach((b, i) => b.resolve(entries[i]!))
  }

  async listGoldenPcrs (f: { scope?: 'image' | 'node'; target?: string } = {}): Promise<GoldenPcr[]> {
    const rows = this.stmt('SELECT * FROM pcr_golden WHERE (@scope IS NULL OR scope = @scope) AND (@target IS NULL OR target = @target) ORDER BY scope, target, bank, pcr')
      .all({ scope: f.scope ?? null, target: f.target ?? null }) as GoldenRow[]
    return rows.map(toGolden)
  }

  async goldenPcrsFor (who: { node: string; image?: string }, bank: GoldenPcr['bank']): Promise<GoldenPcr[]> {
    const hot = this.hot()
    const key = JSON.stringify([who.node, who.image ?? null, bank])
    const kept = hot.goldenFor(key)
    if (kept !== undefined) return kept as GoldenPcr[]
    // two primary-key prefix lookups (scope, target, bank)
    const rows = this.stmt(`SELECT * FROM pcr_golden WHERE scope = 'node' AND target = @node AND bank = @bank
      UNION ALL SELECT * FROM pcr_golden WHERE scope = 'image' AND target = @image AND bank = @bank ORDER BY scope, target, bank, pcr`)
      .all({ node: who.node, image: who.image ?? null, bank }) as GoldenRow[]
    return hot.putGolden(key, rows.map(toGolden)) as GoldenPcr[]
  }

  async approveGoldenPcrs (scope: 'image' | 'node', target: string, actor: Actor): Promise<number> {
    return this.db.transaction(() => {
      const n = this.stmt("UPDATE pcr_golden SET state = 'approved' WHERE scope = ? AND target = ? AND state = 'learned'").run(scope, target).changes
      if (n === 0) throw new NetbootError('NOT_FOUND', `no learned PCR values for ${scope} ${target}`)
      const values = this.stmt('SELECT pcr, bank, value FROM pcr_golden WHERE scope = ? AND target = ? ORDER BY bank, pcr').all(scope, target)
      this.appendAudit({ actor, action: 'pcr.approve', target: `${scope}:${target}`, detail: { values } })
      this.hotReads.dropGolden()
      return n
    })()
  }

  async putGoldenPcrs (values: readonly Omit<GoldenPcr, 'createdAt'>[], audit: AuditDraft): Promise<void> {
    this.db.transaction(() => {
      const t = now()
      for (const v of values) {
        this.stmt(`INSERT INTO pcr_golden (scope, target, bank, pcr, value, state, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (scope, target, bank, pcr) DO UPDATE SET value = excluded.value, state = excluded.state, source = excluded.source, created_at = excluded.created_at`)
          .run(v.scope, v.target, v.bank, v.pcr, v.value, v.state, v.source, t)
      }
      this.appendAudit(audit)
      this.hotReads.dropGolden()
    })()
  }

  // ---- audit ---------------------------------------------------------------

  async audit (draft: AuditDraft): Promise<AuditEntry> {
    return this.db.transaction(() => this.appendAudit(draft))()
  }

  async listAudit (q: AuditQuery = {}): Promise<AuditEntry[]> {
    const where: string[] = ['seq > ?']
    const args: unknown[] = [q.afterSeq ?? 0]
    if (q.action !== undefined) {
      // `node` matches node.create, node.update, …; `node.create` matches itself.
      where.push('(action = ? OR action LIKE ?)'); args.push(q.action, `${q.action}.%`)
    }
    if (q.target !== undefined) { where.push('target = ?'); args.push(q.target) }
    args.push(Math.min(q.limit ?? 100, 10_000))
    const rows = this.stmt(`SELECT * FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`).all(...args) as AuditRow[]
    return rows.map(toAudit)
  }

  async getAudit (seq: number): Promise<AuditEntry | undefined> {
    const r = this.stmt('SELECT * FROM audit_log WHERE seq = ?').get(seq) as AuditRow | undefined
    return r === undefined ? undefined : toAudit(r)
  }

  async verifyAudit (): Promise<AuditVerdict> {
    const rows = this.stmt('SELECT * FROM audit_log ORDER BY seq').iterate() as IterableIterator<AuditRow>
    return verifyChain(mapIter(rows, toAudit))
  }

  async close (): Promise<void> {
    this.flushLeases()
    if (this.db.open) this.db.close()
  }

  // ---- internals (call inside a transaction) -------------------------------

  /** `tail`: the entry this transaction appended last, if any (saves reading it back). */
  private appendAudit (d: AuditDraft, tail?: Pick<AuditEntry, 'seq' | 'hash'>): AuditEntry {
    // nodes' own entries (attestations, reads) change no configuration
    if (d.actor.kind !== 'node') { this.changes++; this.noticeChange() }
    const last = tail ?? this.stmt('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined
    // the stored text is this serialisation: JSON.stringify of its own parse gives it back
    const detailJson = JSON.stringify(d.detail ?? {})
    const given = {
      seq: (last?.seq ?? 0) + 1,
      time: now(),
      actor: d.actor,
      action: d.action,
      ...(d.target !== undefined ? { target: d.target } : {}),
      outcome: d.outcome ?? 'ok',
      detail: d.detail ?? {},
    }
    const prevHash = last?.hash ?? GENESIS
    // plain JSON data hashes as it stands (no deep copy); anything else as the parse of its stored text
    let fields = given
    let hash = entryHashIfPlain(prevHash, given)
    if (hash === undefined) {
      fields = { ...given, detail: JSON.parse(detailJson) as Record<string, unknown> }
      hash = entryHash(prevHash, fields)
    }
    this.stmt(`INSERT INTO audit_log (seq, time, actor_kind, actor_id, actor_name, action, target, outcome, detail, prev_hash, hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      fields.seq, fields.time, d.actor.kind, d.actor.id, d.actor.name ?? null, d.action, d.target ?? null, fields.outcome,
      detailJson, prevHash, hash)
    return { ...fields, prevHash, hash }
  }

  /** Prepared statements, compiled once per SQL text (there is a fixed set of them). */
  private stmt (sql: string): Database.Statement {
    let st = this.statements.get(sql)
    if (st === undefined) {
      st = this.db.prepare(sql)
      this.statements.set(sql, st)
    }
    return st
  }

  /** The kept reads, emptied first if an admin or the system changed anything since. */
  private hot (): HotReads {
    return this.hotReads.at(this.changes)
  }

  private nodeId (name: string): number | undefined {
    return (this.stmt('SELECT id FROM nodes WHERE name = ?').get(name) as { id: number } | undefined)?.id
  }

  private groupExists (name: string): boolean {
    return this.stmt('SELECT 1 FROM groups WHERE name = ?').get(name) !== undefined
  }

  /** Raises GROUP_NOT_FOUND for unknown groups, or creates them; returns those created. */
  private requireGroups (names: readonly string[], create: boolean, t = now()): string[] {
    const missing = [...new Set(names)].filter((g) => !this.groupExists(g))
    if (missing.length === 0) return []
    if (!create) {
      throw new NetbootError('GROUP_NOT_FOUND', `no such group: ${missing.join(', ')} (create it with 'netboot group add NAME')`,
        missing.map((g) => ({ where: g, message: 'group does not exist', code: 'GROUP_NOT_FOUND' })))
    }
    const ins = this.stmt('INSERT INTO groups (name, description, created_at) VALUES (?, \'\', ?)')
    for (const g of missing) ins.run(g, t)
    return missing
  }

  /** Insert (id undefined) or rewrite a node; its addresses must already be deleted when rewriting. */
  private writeNode (s: NodeSpec, id: number | undefined, t: string): void {
    let nodeId: number
    try {
      if (id === undefined) {
        nodeId = Number(this.stmt('INSERT INTO nodes (name, xname, nid, dhcp_options, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(s.name, s.xname ?? null, s.nid ?? null, s.dhcp === undefined ? null : JSON.stringify(s.dhcp), t, t).lastInsertRowid)
      } else {
        nodeId = id
        this.stmt('UPDATE nodes SET xname = ?, nid = ?, dhcp_options = ?, updated_at = ? WHERE id = ?').run(s.xname ?? null, s.nid ?? null, s.dhcp === undefined ? null : JSON.stringify(s.dhcp), t, id)
      }
    } catch (e) {
      throw this.conflict(e, s)
    }
    this.stmt('DELETE FROM node_groups WHERE node_id = ?').run(nodeId)
    const link = this.stmt('INSERT INTO node_groups (node_id, group_name, position) VALUES (?, ?, ?)')
    s.groups.forEach((g, i) => link.run(nodeId, g, i))
    const addr = this.stmt('INSERT INTO addresses (node_id, kind, mac, ip, network, position) VALUES (?, ?, ?, ?, ?, ?)')
    try {
      s.interfaces.forEach((ifc, i) => addr.run(nodeId, 'nic', ifc.mac, ifc.ip ?? null, ifc.network ?? null, i))
      if (s.bmcMac !== undefined || s.bmcIp !== undefined) addr.run(nodeId, 'bmc', s.bmcMac ?? null, s.bmcIp ?? null, null, 0)
    } catch (e) {
      throw this.conflict(e, s)
    }
  }

  /** Turns a UNIQUE violation into the catalogue code, naming the other holder. */
  private conflict (e: unknown, s: NodeSpec): unknown {
    if (!(e instanceof Database.SqliteError) || e.code !== 'SQLITE_CONSTRAINT_UNIQUE') return e
    const col = /UNIQUE constraint failed: (\w+)\.(\w+)/.exec(e.message)?.slice(1).join('.')
    const holder = (sql: string, v: unknown): string =>
      (this.stmt(sql).get(v) as { name: string } | undefined)?.name ?? 'another node'
    const byAddr = (field: 'mac' | 'ip', v: string | undefined): string =>
      holder(`SELECT n.name FROM addresses a JOIN nodes n ON n.id = a.node_id WHERE a.${field} = ?`, v)
    const pick = <T>(values: (T | undefined)[], sql: string): T | undefined =>
      values.find((v) => v !== undefined && this.stmt(sql).get(v) !== undefined)
    const fail = (code: ErrorCode, what: string, value: unknown, owner: string): NetbootError =>
      new NetbootError(code, `${what} ${String(value)} of node '${s.name}' is already used by node '${owner}'`,
        [{ where: s.name, message: `${what} ${String(value)} already used by ${owner}`, code }])
    switch (col) {
      case 'addresses.mac': {
        const mac = pick([...s.interfaces.map((i) => i.mac), s.bmcMac], 'SELECT 1 FROM addresses WHERE mac = ?')
        return fail('DUPLICATE_MAC', 'MAC', mac, byAddr('mac', mac))
      }
      case 'addresses.ip': {
        const ip = pick([...s.interfaces.map((i) => i.ip), s.bmcIp], 'SELECT 1 FROM addresses WHERE ip = ?')
        return fail('DUPLICATE_IP', 'IP', ip, byAddr('ip', ip))
      }
      case 'nodes.xname': return fail('DUPLICATE_XNAME', 'xname', s.xname, holder('SELECT name FROM nodes WHERE xname = ?', s.xname))
      case 'nodes.nid': return fail('DUPLICATE_NID', 'NID', s.nid, holder('SELECT name FROM nodes WHERE nid = ?', s.nid))
      case 'nodes.name': return new NetbootError('NODE_EXISTS', `node '${s.name}' already exists`)
      default: return e
    }
  }

  private readNodes (filter: NodeFilter): Node[] {
    const where: string[] = []
    const args: unknown[] = []
    if (filter.names !== undefined) {
      if (filter.names.length === 0) return []
      where.push('n.name IN (SELECT value FROM json_each(?))')
      args.push(JSON.stringify(filter.names))
    }
    if (filter.group !== undefined) {
      where.push('n.id IN (SELECT node_id FROM node_groups WHERE group_name = ?)')
      args.push(filter.group)
    }
    const cond = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const rows = this.stmt(`SELECT n.* FROM nodes n ${cond} ORDER BY n.nid IS NULL, n.nid, n.name`).all(...args) as NodeRow[]
    if (rows.length === 0) return []
    const ids = JSON.stringify(rows.map((r) => r.id))
    const addrs = this.stmt('SELECT * FROM addresses WHERE node_id IN (SELECT value FROM json_each(?)) ORDER BY node_id, kind DESC, position').all(ids) as AddressRow[]
    const links = this.stmt('SELECT * FROM node_groups WHERE node_id IN (SELECT value FROM json_each(?)) ORDER BY node_id, position').all(ids) as GroupLinkRow[]
    const byNode = <T extends { node_id: number }>(list: T[]): Map<number, T[]> => {
      const m = new Map<number, T[]>()
      for (const x of list) { const l = m.get(x.node_id) ?? []; l.push(x); m.set(x.node_id, l) }
      return m
    }
    const addrMap = byNode(addrs)
    const linkMap = byNode(links)
    return rows.map((r) => toNode(r, addrMap.get(r.id) ?? [], (linkMap.get(r.id) ?? []).map((l) => l.group_name)))
  }
}

/** A node row with its addresses (kind DESC, position) and groups (position), as readNodes orders them. */
function toNode (r: NodeRow, a: readonly Pick<AddressRow, 'kind' | 'mac' | 'ip' | 'network'>[], groups: string[]): Node {
  const bmc = a.find((x) => x.kind === 'bmc')
  return {
    name: r.name,
    ...(r.xname !== null ? { xname: r.xname } : {}),
    ...(r.nid !== null ? { nid: r.nid } : {}),
    groups,
    interfaces: a.filter((x) => x.kind === 'nic').map(toInterface),
    ...(bmc?.mac != null ? { bmcMac: bmc.mac } : {}),
    ...(bmc?.ip != null ? { bmcIp: bmc.ip } : {}),
    ...(r.dhcp_options !== null ? { dhcp: JSON.parse(r.dhcp_options) as DhcpOverrides } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

/**
 * Columns that give one node (aliased `n`) its addresses and groups in the same
 * statement, in readNodes' order (aggregate ORDER BY: SQLite ≥ 3.44).
 */
const NODE_PARTS = `(SELECT json_group_array(json_array(x.kind, x.mac, x.ip, x.network) ORDER BY x.kind DESC, x.position) FROM addresses x WHERE x.node_id = n.id) AS addrs_json,
  (SELECT json_group_array(g.group_name ORDER BY g.position) FROM node_groups g WHERE g.node_id = n.id) AS groups_json`

interface NodeWithPartsRow extends NodeRow { addrs_json: string; groups_json: string }

function nodeFromParts (r: NodeWithPartsRow): Node {
  const addrs = (JSON.parse(r.addrs_json) as [AddressRow['kind'], string | null, string | null, string | null][])
    .map(([kind, mac, ip, network]) => ({ kind, mac, ip, network }))
  return toNode(r, addrs, JSON.parse(r.groups_json) as string[])
}

function migrate (db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number
  const latest = migrations.at(-1)?.version ?? 0
  if (current > latest) {
    throw new NetbootError('STORE_SCHEMA_TOO_NEW', `database schema version ${current} is newer than this netboot supports (${latest})`)
  }
  for (const m of migrations) {
    if (m.version <= current) continue
    db.transaction(() => {
      db.exec(m.sql)
      db.pragma(`user_version = ${m.version}`)
    })()
  }
}

interface ImageRow { name: string; version: string; kernel_sha256: string; initrd_sha256: string; rootfs_sha256: string | null; params: string; created_at: string; uki_sha256: string | null; uki_digests: string | null }

function toImage (r: ImageRow): Image {
  const uki = r.uki_sha256 !== null && r.uki_digests !== null ? JSON.parse(r.uki_digests) as { uki: AuthenticodeDigests; linux?: AuthenticodeDigests } : undefined
  return {
    name: r.name, version: r.version, kernelSha256: r.kernel_sha256, initrdSha256: r.initrd_sha256, ...(r.rootfs_sha256 !== null ? { rootfsSha256: r.rootfs_sha256 } : {}),
    ...(uki !== undefined ? { ukiSha256: r.uki_sha256!, ukiAuthenticode: uki.uki, ...(uki.linux !== undefined ? { ukiLinuxAuthenticode: uki.linux } : {}) } : {}),
    params: r.params, createdAt: r.created_at,
  }
}

interface BootRow { scope: BootConfig['scope']; target: string; image: string | null; params: string; updated_at: string }

function toBoot (r: BootRow): BootConfig {
  return { scope: r.scope, target: r.target, ...(r.image !== null ? { image: r.image } : {}), params: r.params, updatedAt: r.updated_at }
}

interface CloudInitDbRow { scope: 'group' | 'node'; target: string; secure: number; user_data: string | null; meta_data: string | null; vendor_data: string | null; network_config: string | null; updated_at: string }

function toCloudInit (r: CloudInitDbRow): CloudInitRow {
  return { scope: r.scope, target: r.target, secure: r.secure === 1, userData: r.user_data, metaData: r.meta_data, vendorData: r.vendor_data, networkConfig: r.network_config, updatedAt: r.updated_at }
}

const IDENTITY_SELECT = 'SELECT t.*, n.name AS node_name FROM tpm_identities t LEFT JOIN nodes n ON n.id = t.node_id'
/** listTpmIdentities by node (@node, @state or null): through tpm_identities_node (test/store/identities-by-node.test.ts reads its query plan). */
export const IDENTITIES_OF_NODE = `${IDENTITY_SELECT} WHERE t.node_id = (SELECT id FROM nodes WHERE name = @node) AND (@state IS NULL OR t.state = @state) ORDER BY t.id`

interface IdentityRow {
  id: number; node_id: number | null; node_name: string | null; ek_pub_sha256: string; ek_cert_sha256: string | null; ek_pub: Buffer | null; ek_cert: Buffer | null
  policy: string; state: string; discovery: string | null; macs: string; created_at: string; decided_at: string | null; decided_by: string | null
  reset_count: number | null; restart_count: number | null; last_attested_at: string | null
}

function toIdentity (r: IdentityRow): TpmIdentity {
  return {
    id: r.id,
    ...(r.node_name !== null ? { node: r.node_name } : {}),
    ekSha256: r.ek_pub_sha256,
    ...(r.ek_cert_sha256 !== null ? { ekCertSha256: r.ek_cert_sha256 } : {}),
    ...(r.ek_pub !== null ? { ekPublic: r.ek_pub } : {}),
    ...(r.ek_cert !== null ? { ekCert: r.ek_cert } : {}),
    policy: r.policy as TpmIdentity['policy'],
    state: r.state as IdentityState,
    ...(r.discovery !== null ? { discovery: JSON.parse(r.discovery) as Record<string, unknown> } : {}),
    macs: JSON.parse(r.macs) as string[],
    createdAt: r.created_at,
    ...(r.decided_at !== null ? { decidedAt: r.decided_at } : {}),
    ...(r.decided_by !== null ? { decidedBy: r.decided_by } : {}),
    ...(r.reset_count !== null ? { resetCount: r.reset_count } : {}),
    ...(r.restart_count !== null ? { restartCount: r.restart_count } : {}),
    ...(r.last_attested_at !== null ? { lastAttestedAt: r.last_attested_at } : {}),
  }
}

interface GoldenRow { scope: 'image' | 'node'; target: string; bank: 'sha1' | 'sha256' | 'sha384'; pcr: number; value: string; state: 'learned' | 'approved'; source: string; created_at: string }

function toGolden (r: GoldenRow): GoldenPcr {
  return { scope: r.scope, target: r.target, bank: r.bank, pcr: r.pcr, value: r.value, state: r.state, source: r.source, createdAt: r.created_at }
}

interface LeaseRow { ip: string; mac: string; client_id: Buffer | null; subnet: string; state: string; hostname: string | null; starts_at: number; expires_at: number }

function toLease (r: LeaseRow): Lease {
  return {
    ip: r.ip, mac: r.mac, subnet: r.subnet, state: r.state as Lease['state'], startsAt: r.starts_at, expiresAt: r.expires_at,
    ...(r.hostname !== null ? { hostname: r.hostname } : {}),
    ...(r.client_id !== null ? { clientId: Buffer.from(r.client_id).toString('hex') } : {}),
  }
}

interface GroupRowWithCount { name: string; description: string; created_at: string; members: number }

function toGroup (r: GroupRowWithCount): Group {
  return { name: r.name, description: r.description, members: r.members, createdAt: r.created_at }
}

function toInterface (a: Pick<AddressRow, 'mac' | 'ip' | 'network'>): NodeInterface {
  return { mac: a.mac!, ...(a.ip !== null ? { ip: a.ip } : {}), ...(a.network !== null ? { network: a.network } : {}) }
}

function toToken (r: TokenRow): StoredToken {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    secretHash: r.secret_sha256,
    createdAt: r.created_at,
    createdBy: r.created_by,
    ...(r.expires_at !== null ? { expiresAt: r.expires_at } : {}),
    ...(r.revoked_at !== null ? { revokedAt: r.revoked_at } : {}),
    ...(r.last_used_at !== null ? { lastUsedAt: r.last_used_at } : {}),
  }
}

function publicToken (t: StoredToken): AdminToken {
  const { secretHash: _, ...rest } = t
  return rest
}

function toAudit (r: AuditRow): AuditEntry {
  return {
    seq: r.seq,
    time: r.time,
    actor: { kind: r.actor_kind as 'admin' | 'system' | 'node', id: r.actor_id, ...(r.actor_name !== null ? { name: r.actor_name } : {}) },
    action: r.action,
    ...(r.target !== null ? { target: r.target } : {}),
    outcome: r.outcome as AuditEntry['outcome'],
    detail: JSON.parse(r.detail) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  }
}

function * mapIter<A, B> (it: Iterable<A>, f: (a: A) => B): Iterable<B> {
  for (const a of it) yield f(a)
}

function now (): string {
  return new Date().toISOString()
}

function specDetail (s: NodeSpec): Record<string, unknown> {
  return { ...s, groups: [...s.groups], interfaces: s.interfaces.map((i) => ({ ...i })) }
}

/** Same inventory facts, ignoring timestamps. */
function sameNode (a: Node, b: NodeSpec): boolean {
  const key = (n: NodeSpec): string => JSON.stringify([n.name, n.xname ?? null, n.nid ?? null, n.groups, n.interfaces.map((i) => [i.mac, i.ip ?? null, i.network ?? null]), n.bmcMac ?? null, n.bmcIp ?? null, n.dhcp ?? null])
  return key(a) === key(b)
}

function applyChanges (n: Node, c: NodeChanges): NodeSpec {
  let groups = c.groups !== undefined ? [...c.groups] : [...n.groups]
  for (const g of c.addGroups ?? []) if (!groups.includes(g)) groups.push(g)
  groups = groups.filter((g) => !(c.removeGroups ?? []).includes(g))
  const pickOpt = <K extends 'xname' | 'nid' | 'bmcMac' | 'bmcIp'>(k: K): Partial<Pick<NodeSpec, K>> => {
    const v = c[k] === undefined ? n[k] : c[k]
    return v === null || v === undefined ? {} : ({ [k]: v } as Partial<Pick<NodeSpec, K>>)
  }
  return {
    name: n.name,
    ...pickOpt('xname'),
    ...pickOpt('nid'),
    ...pickOpt('bmcMac'),
    ...pickOpt('bmcIp'),
    groups,
    interfaces: c.interfaces !== undefined ? [...c.interfaces] : n.interfaces,
    ...(c.dhcp === null ? {} : c.dhcp !== undefined ? { dhcp: c.dhcp } : n.dhcp !== undefined ? { dhcp: n.dhcp } : {}),
  }
}
