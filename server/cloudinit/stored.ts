/**
 * `CloudInitData` as four text columns (the store's `cloud_init` table: user_data,
 * meta_data, vendor_data, network_config) and back.
 *
 * Each column is JSON, or NULL for an absent document. user-data and vendor-data are
 * a JSON mapping, or, when the payload carried `## template: jinja`, a JSON string
 * holding that header and the `#cloud-config` text, so the flag survives without a
 * column of its own. Reading back goes through payload.ts, so stored data is checked
 * by the same rules as an upload (a row written by an older netboot that the current
 * rules refuse comes back as problems, not as data).
 */
import type { ErrorDetail } from '../errors.js'
import type { CloudInitData, Json } from './data.js'
import { parsePayloadValue } from './payload.js'
import { JINJA_HEADER, CLOUD_CONFIG_HEADER } from './render.js'
import { toYaml } from './yaml.js'

export interface StoredDocuments {
  readonly userData: string | null
  readonly metaData: string | null
  readonly vendorData: string | null
  readonly networkConfig: string | null
}

export function toStored (data: CloudInitData): StoredDocuments {
  const cloudConfig = (doc: CloudInitData['userdata'], jinja: boolean | undefined): string | null => {
    if (doc === undefined) return null
    return JSON.stringify(jinja === true ? JINJA_HEADER + CLOUD_CONFIG_HEADER + toYaml(doc) : doc)
  }
  return {
    userData: cloudConfig(data.userdata, data.userdataJinja),
    metaData: data.metadata === undefined ? null : JSON.stringify(data.metadata),
    vendorData: cloudConfig(data.vendordata, data.vendordataJinja),
    networkConfig: data.networkConfig === undefined ? null : JSON.stringify(data.networkConfig),
  }
}

export type StoredRead = { readonly ok: true; readonly data: CloudInitData } | { readonly ok: false; readonly problems: ErrorDetail[] }

/** `source` names the row in messages, e.g. `cloud_init group compute (secure)`. */
export function fromStored (row: StoredDocuments, source: string): StoredRead {
  const problems: ErrorDetail[] = []
  const docs: Record<string, Json> = {}
  for (const [column, key] of [['userData', 'userdata'], ['metaData', 'metadata'], ['vendorData', 'vendordata'], ['networkConfig', 'network_config']] as const) {
    const text = row[column]
    if (text === null) continue
    try {
      docs[key] = JSON.parse(text) as Json
    } catch (e) {
      problems.push({ where: source, message: `${key}: not JSON (${e instanceof Error ? e.message : String(e)})` })
    }
  }
  if (problems.length > 0) return { ok: false, problems }
  const r = parsePayloadValue({ name: 'stored', 'cloud-init': docs }, source)
  if (!r.ok) return { ok: false, problems: r.problems }
  return { ok: true, data: r.payloads[0]?.data ?? {} }
}
