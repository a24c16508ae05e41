/**
 * The NoCloud documents for one node (cloud-init's DataSourceNoCloud:
 * https://cloudinit.readthedocs.io/en/22.4/topics/datasources/nocloud.html):
 *
 *   meta-data       YAML: `instance-id`, `local-hostname`, then the merged meta-data
 *   user-data       `#cloud-config` (after `## template: jinja` if a layer had it), YAML
 *   vendor-data     the same, or empty when no layer has vendor-data
 *   network-config  YAML (v1 or v2), absent when no layer has one
 *
 * `instance-id` is `iid-` and the first 16 hex digits of SHA-256(node name, NUL, image
 * digest): stable for a node and image, new when either changes (a changed id is a
 * first boot for cloud-init: per-instance modules run again). `local-hostname` is the
 * inventory name. Payload values for either key are ignored (payload.ts warns).
 *
 * Each layer's strings are rendered as templates (template.ts) with that layer's
 * facts before the layers are merged (merge.ts), so a group payload sees its own
 * `group.name` and merge keys such as a write_files `path` are final. Output is a
 * pure function of the input: keys keep the order in which the lowest layer gave
 * them, YAML is written without aliases or line folding, in YAML 1.1 quoting (what
 * PyYAML would read back as the same value).
 */
import { createHash } from 'node:crypto'
import type { ErrorDetail } from '../errors.js'
import { DOCUMENTS, isJsonMap, put, type CloudInitData, type DocumentKey, type JsonMap } from './data.js'
import { mergeLayers, type Layer } from './merge.js'
import { renderValue, unwrapRaw, type NodeFacts, type ServerFacts } from './template.js'
import { toYaml } from './yaml.js'

export interface RenderInput {
  readonly node: NodeFacts
  /** The image the node boots; its digest (e.g. `sha256:…`) enters the instance-id. */
  readonly image: { readonly digest: string }
  readonly server: ServerFacts
  /** From `layersForNode`, lowest first. */
  readonly layers: readonly Layer[]
}

/** The four files of a NoCloud seed, as text. */
export interface NoCloudSeed {
  readonly instanceId: string
  readonly metaData: string
  readonly userData: string
  readonly vendorData: string
  readonly networkConfig?: string
}

/** The same documents as values (what `validateCloudConfig` takes). */
export interface RenderedDocuments {
  readonly metadata: JsonMap
  readonly userdata: JsonMap
  readonly vendordata?: JsonMap
  readonly networkConfig?: JsonMap
}

export type RenderResult =
  | { readonly ok: true; readonly seed: NoCloudSeed; readonly documents: RenderedDocuments; readonly warnings: string[] }
  | { readonly ok: false; readonly problems: ErrorDetail[] }

export const CLOUD_CONFIG_HEADER = '#cloud-config\n'
export const JINJA_HEADER = '## template: jinja\n'

export function instanceId (nodeName: string, imageDigest: string): string {
  return `iid-${createHash('sha256').update(`${nodeName}\0${imageDigest}`).digest('hex').slice(0, 16)}`
}

/** The layer as it appears in messages: `group compute`, `secure node nid001`. */
export function layerLabel (layer: Pick<Layer, 'kind' | 'name' | 'secure'>): string {
  return `${layer.secure ? 'secure ' : ''}${layer.kind} ${layer.name}`
}

export function renderNoCloud (input: RenderInput): RenderResult {
  const problems: ErrorDetail[] = []
  const nodeSide = { userdata: 0, vendordata: 0 }
  const rendered: Layer[] = []
  for (const layer of input.layers) {
    const facts = { node: input.node, server: input.server, ...(layer.kind === 'group' ? { group: { name: layer.name } } : {}) }
    const data: { -readonly [K in keyof CloudInitData]: CloudInitData[K] } = { ...layer.data }
    for (const { key, label } of DOCUMENTS) {
      const doc = layer.data[key]
      if (doc === undefined) continue
      const r = renderValue(doc, facts, label)
      if (!r.ok) {
        for (const p of r.problems) problems.push({ where: layerLabel(layer), message: `${p.path}: ${p.message}` })
        continue
      }
      if (key === 'userdata' || key === 'vendordata') nodeSide[key] += r.nodeSide
      if (isJsonMap(r.value)) data[key as DocumentKey] = r.value
    }
    rendered.push({ ...layer, data })
  }
  if (problems.length > 0) return { ok: false, problems }

  const merged = mergeLayers(rendered)
  const warnings: string[] = []
  for (const [key, label, jinja] of [['userdata', 'user-data', merged.userdataJinja], ['vendordata', 'vendor-data', merged.vendordataJinja]] as const) {
    if (nodeSide[key] > 0 && jinja !== true) {
      warnings.push(`${label} has {{ }}, {% %} or {# #} that are not netboot's, and no layer's ${label} starts with '## template: jinja': they reach the node as written`)
    }
  }
  const finish = (doc: JsonMap, jinja: boolean | undefined): JsonMap => jinja === true ? doc : unwrapRaw(doc) as JsonMap

  const id = instanceId(input.node.name, input.image.digest)
  const metadata: JsonMap = { 'instance-id': id, 'local-hostname': input.node.name }
  for (const [k, v] of Object.entries(finish(merged.metadata ?? {}, false))) {
    if (k !== 'instance-id' && k !== 'local-hostname') put(metadata, k, v)
  }
  const userdata = finish(merged.userdata ?? {}, merged.userdataJinja)
  const vendordata = merged.vendordata === undefined ? undefined : finish(merged.vendordata, merged.vendordataJinja)
  const networkConfig = merged.networkConfig === undefined ? undefined : finish(merged.networkConfig, false)

  const header = (jinja: boolean | undefined): string => (jinja === true ? JINJA_HEADER : '') + CLOUD_CONFIG_HEADER
  const seed: NoCloudSeed = {
    instanceId: id,
    metaData: toYaml(metadata),
    userData: header(merged.userdataJinja) + toYaml(userdata),
    vendorData: vendordata === undefined ? '' : header(merged.vendordataJinja) + toYaml(vendordata),
    ...(networkConfig !== undefined ? { networkConfig: toYaml(networkConfig) } : {}),
  }
  const documents: RenderedDocuments = {
    metadata,
    userdata,
    ...(vendordata !== undefined ? { vendordata } : {}),
    ...(networkConfig !== undefined ? { networkConfig } : {}),
  }
  return { ok: true, seed, documents, warnings }
}
