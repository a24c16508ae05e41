/**
 * cloud-init as a service: payloads stored per group and node (plain and secure),
 * checked on the way in (parse rules, template syntax, and the real
 * `cloud-init schema` when it is installed), merged and rendered per node on the
 * way out. The admin API and the node endpoints both go through here.
 */
import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { NetbootError, type ErrorDetail } from '../errors.js'
import type { Actor, Node } from '../inventory/model.js'
import type { CloudInitRow, Store } from '../store/store.js'
import { DOCUMENTS, type CloudInitData } from './data.js'
import { layersForNode, type PayloadSet } from './merge.js'
import { parsePayloadFile, type CloudInitPayload } from './payload.js'
import { renderNoCloud, type NoCloudSeed } from './render.js'
import { fromStored, toStored } from './stored.js'
import { checkValue, type ServerFacts } from './template.js'
import { cloudInitAvailable, validateCloudConfig } from './validate.js'

export interface SetResult { readonly target: string; readonly scope: 'group' | 'node'; readonly secure: boolean; readonly warnings: string[] }

export class CloudInitService {
  private schemaTool: Promise<boolean> | undefined

  constructor (
    private readonly store: Store,
    private readonly server: ServerFacts,
    private readonly log: Logger,
    /** The digest of the image a node boots (enters the instance-id); 'none' when it boots none. */
    private readonly imageDigest: (node: Node) => Promise<string>,
  ) {}

  /**
   * Stores the payloads of a file. With `target`, the file holds one payload for
   * it (its `name` may be omitted); without, each payload's `name` is its target.
   * A name is a group or a node of the inventory, never both, never neither.
   */
  async set (text: string, source: string, opts: { target?: string; secure: boolean }, actor: Actor): Promise<SetResult[]> {
    const parsed = parsePayloadFile(text, source)
    if (!parsed.ok) throw new NetbootError('CLOUDINIT_INVALID', `${source}: ${parsed.problems.length} problem(s), nothing stored`, parsed.problems)
    const payloads: CloudInitPayload[] = parsed.payloads
    if (opts.target !== undefined) {
      if (payloads.length !== 1) throw new NetbootError('CLOUDINIT_INVALID', `${source} holds ${payloads.length} payloads; with a target it must hold one`)
      const p = payloads[0]!
      if (p.name !== '' && p.name !== opts.target) throw new NetbootError('CLOUDINIT_INVALID', `${source} names '${p.name}', not '${opts.target}'`)
      payloads[0] = { ...p, name: opts.target }
    }
    const problems: ErrorDetail[] = []
    const rows: Omit<CloudInitRow, 'updatedAt'>[] = []
    const results: SetResult[] = []
    for (const p of payloads) {
      const scope = await this.scopeOf(p.name)
      if (scope === undefined) { problems.push({ where: p.where, message: `'${p.name}' is neither a group nor a node of the inventory` }); continue }
      for (const { key, label } of DOCUMENTS) {
        const doc = p.data[key]
        if (doc !== undefined) for (const tp of checkValue(doc, label)) problems.push({ where: p.where, message: `${tp.path}: ${tp.message}` })
      }
      const warnings = await this.schemaCheck(p, problems)
      rows.push({ scope, target: p.name, secure: opts.secure, ...toStored(p.data) })
      results.push({ target: p.name, scope, secure: opts.secure, warnings: [...parsed.warnings.map((w) => w.message), ...warnings] })
    }
    if (problems.length > 0) throw new NetbootError('CLOUDINIT_INVALID', `${source}: ${problems.length} problem(s), nothing stored`, problems)
    // the audit entry names what changed and a digest of it, never secure content
    await this.store.putCloudInit(rows, {
      actor, action: 'cloudinit.set', target: rows.map((r) => `${r.scope}:${r.target}`).join(','),
      detail: { source, secure: opts.secure, sha256: createHash('sha256').update(text).digest('hex') },
    })
    return results
  }

  /** The stored data of one group or node, as stored (admins only). */
  async get (target: string, secure: boolean): Promise<{ scope: 'group' | 'node'; data: CloudInitData; updatedAt: string } | undefined> {
    const scope = await this.scopeOf(target)
    if (scope === undefined) return undefined
    const row = await this.store.getCloudInit(scope, target, secure)
    if (row === undefined) return undefined
    const r = fromStored(row, `${scope} ${target}`)
    if (!r.ok) throw new NetbootError('CLOUDINIT_INVALID', `stored data of ${scope} ${target} no longer passes the rules`, r.problems)
    return { scope, data: r.data, updatedAt: row.updatedAt }
  }

  async remove (target: string, secure: boolean, actor: Actor): Promise<void> {
    const scope = await this.scopeOf(target)
    if (scope === undefined) throw new NetbootError('NOT_FOUND', `'${target}' is neither a group nor a node`)
    await this.store.deleteCloudInit(scope, target, secure, actor)
  }

  /** The merged NoCloud seed of a node: plain only, or plain with secure on top. */
  async render (node: Node, withSecure: boolean): Promise<NoCloudSeed> {
    const plain = await this.payloadSet(false)
    const secure = withSecure ? await this.payloadSet(true) : undefined
    const r = renderNoCloud({ node, image: { digest: await this.imageDigest(node) }, server: this.server, layers: layersForNode(node, plain, secure) })
    if (!r.ok) throw new NetbootError('CLOUDINIT_TEMPLATE', `cloud-init data for ${node.name} does not render`, r.problems)
    for (const w of r.warnings) this.log.warn({ node: node.name, warning: w }, 'cloud-init: render warning')
    return r.seed
  }

  private async payloadSet (secure: boolean): Promise<PayloadSet> {
    const groups = new Map<string, CloudInitData>()
    const nodes = new Map<string, CloudInitData>()
    for (const row of await this.store.listCloudInit({ secure })) {
      const r = fromStored(row, `${row.scope} ${row.target}${secure ? ' (secure)' : ''}`)
      if (!r.ok) { this.log.error({ scope: row.scope, target: row.target, problems: r.problems }, 'cloud-init: stored payload skipped'); continue }
      ;(row.scope === 'group' ? groups : nodes).set(row.target, r.data)
    }
    return { groups, nodes }
  }

  private async scopeOf (name: string): Promise<'group' | 'node' | undefined> {
    const [g, n] = await Promise.all([this.store.getGroup(name), this.store.getNode(name)])
    if (g !== undefined && n !== undefined) throw new NetbootError('CLOUDINIT_INVALID', `'${name}' is both a group and a node; rename one`)
    return g !== undefined ? 'group' : n !== undefined ? 'node' : undefined
  }

  /** `cloud-init schema` on each cloud-config document, when the tool is installed. */
  private async schemaCheck (p: CloudInitPayload, problems: ErrorDetail[]): Promise<string[]> {
    this.schemaTool ??= cloudInitAvailable()
    if (!(await this.schemaTool)) return ['cloud-init is not installed on the server: the payload was not checked by `cloud-init schema`']
    const warnings: string[] = []
    const checks: [unknown, 'cloud-config' | 'network-config', string][] = [
      [p.data.userdata, 'cloud-config', 'user-data'], [p.data.vendordata, 'cloud-config', 'vendor-data'], [p.data.networkConfig, 'network-config', 'network-config'],
    ]
    for (const [doc, kind, label] of checks) {
      if (doc === undefined || doc === null || typeof doc !== 'object') continue
      const v = await validateCloudConfig(doc, kind)
      if (!v.ok) for (const m of v.messages) problems.push({ where: p.where, message: `${label}: cloud-init schema: ${m}` })
      else warnings.push(...v.warnings.map((w) => `${label}: ${w}`))
    }
    return warnings
  }
}
