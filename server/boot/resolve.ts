/**
 * Which image a node boots and which kernel-parameter layers apply, from boot
 * configurations at three scopes: `default`, `group:<name>`, `node:<name>`.
 *
 * Precedence: node over groups over default. Among the node's groups the FIRST
 * group in the node's list wins. This is xCAT's rule for attributes set on
 * several groups (the first group in a node's `groups` attribute that has a
 * value wins), so lists written the xCAT way, most specific first
 * (`gpu,compute,all`), mean what their authors expect; it also lets an admin
 * make one group win for one node by moving it to the front, without touching
 * the groups. For the image, the highest-precedence scope that sets one wins.
 * Parameters are not replaced wholesale but layered token by token
 * (cmdline.ts): the layers come back lowest precedence first (default, last
 * group … first group, node), which is the order composeCmdline applies them.
 *
 * An empty string counts as unset. Pure: no store, no I/O.
 */
import type { ParamLayer } from './cmdline.js'

export type BootScope = 'default' | `group:${string}` | `node:${string}`

export interface BootConfigEntry {
  /** Image name (the store resolves it to a digest). */
  readonly image?: string
  /** Kernel parameters, as an admin wrote them (checked by cmdline.ts checkParams). */
  readonly params?: string
}

/** Boot configurations keyed by scope (`default`, `group:compute`, `node:n01`). */
export type BootConfigs = ReadonlyMap<string, BootConfigEntry> | Readonly<Record<string, BootConfigEntry>>

export interface ResolvedBootConfig {
  /** The image to boot, or undefined when no scope names one. */
  readonly image: string | undefined
  /** Admin parameter layers, lowest precedence first; only scopes that set parameters. */
  readonly params: readonly ParamLayer[]
  readonly sources: {
    readonly image: BootScope | undefined
    /** Scopes whose parameters apply, lowest precedence first. */
    readonly params: readonly BootScope[]
  }
}

export interface BootTarget {
  readonly name: string
  /** The node's groups in the node's order; the first has the highest precedence. */
  readonly groups: readonly string[]
}

/** Scopes from lowest to highest precedence for a node. Repeated groups count once, at their first position. */
export function scopesFor (node: BootTarget): BootScope[] {
  const groups = [...new Set(node.groups)]
  return ['default', ...groups.reverse().map((g): BootScope => `group:${g}`), `node:${node.name}`]
}

export function resolveBootConfig (node: BootTarget, configs: BootConfigs): ResolvedBootConfig {
  const get = (scope: BootScope): BootConfigEntry | undefined =>
    configs instanceof Map ? configs.get(scope) : Object.hasOwn(configs, scope) ? (configs as Readonly<Record<string, BootConfigEntry>>)[scope] : undefined
  let image: string | undefined
  let imageSource: BootScope | undefined
  const params: ParamLayer[] = []
  const paramSources: BootScope[] = []
  for (const scope of scopesFor(node)) {
    const entry = get(scope)
    if (entry === undefined) continue
    if (entry.image !== undefined && entry.image !== '') {
      image = entry.image
      imageSource = scope
    }
    if (entry.params !== undefined && entry.params.trim() !== '') {
      params.push({ scope, params: entry.params })
      paramSources.push(scope)
    }
  }
  return { image, params, sources: { image: imageSource, params: paramSources } }
}

/** The image's own default parameters under the admin layers: the full input of composeCmdline. */
export function withImageDefaults (imageName: string, imageParams: string | undefined, resolved: ResolvedBootConfig): ParamLayer[] {
  const base: ParamLayer[] = imageParams === undefined || imageParams.trim() === '' ? [] : [{ scope: `image:${imageName}`, params: imageParams }]
  return [...base, ...resolved.params]
}
