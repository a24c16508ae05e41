/**
 * The audit log's hash chain. Entry n commits to entry n-1:
 *
 *   hash(n) = SHA-256( prevHash(n) ‖ canonical-JSON(fields of n) )
 *
 * with prevHash(1) = 64 zeros. Editing, removing or reordering any entry breaks
 * every later link, which `verifyChain` reports by sequence number. The chain does
 * not stop someone with write access from rewriting the whole tail consistently;
 * exporting the head hash elsewhere (a SIEM) is what pins it.
 */
import { hash } from 'node:crypto'
import type { AuditEntry, AuditVerdict } from '../store/store.js'

export const GENESIS = '0'.repeat(64)

/**
 * JSON with object keys sorted at every level, so equal values hash equally. The
 * format is that of `JSON.stringify` of a copy whose keys were inserted in sorted
 * order, which is what the chain has always hashed: array-index keys ("0", "7",
 * "10": JavaScript objects list them first, in numeric order), then the other keys
 * by UTF-16 code units; undefined members are left out. Plain JSON data (what the
 * store parses back from its own text) is written directly, without the copy;
 * anything else (Buffers, Dates, objects with toJSON) goes through the copy.
 */
export function canonicalJson (value: unknown): string {
  const direct = writeJson(value)
  return direct ?? JSON.stringify(sortKeys(value))
}

function sortKeys (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, sortKeys(o[k])]))
  }
  return v
}

const MAX_ARRAY_INDEX = 4_294_967_294 // 2^32 - 2 (ECMA-262 §6.1.7: array index)

/** Whether V8 orders `k` as an array index: the canonical decimal form of an integer up to 2^32 - 2. */
function isArrayIndex (k: string): boolean {
  const c = k.charCodeAt(0)
  if (c < 48 || c > 57 || k.length > 10 || (c === 48 && k.length > 1)) return false
  for (let i = 1; i < k.length; i++) { const d = k.charCodeAt(i); if (d < 48 || d > 57) return false }
  return Number(k) <= MAX_ARRAY_INDEX
}

/** canonicalJson of plain JSON data, or undefined when `v` holds anything else. */
function writeJson (v: unknown): string | undefined {
  switch (typeof v) {
    case 'string': return JSON.stringify(v)
    case 'number': return JSON.stringify(v)
    case 'boolean': return v ? 'true' : 'false'
    case 'object': break
    default: return undefined
  }
  if (v === null) return 'null'
  if (Array.isArray(v)) {
    let out = '['
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i]
      const w = x === undefined ? 'null' : writeJson(x)
      if (w === undefined) return undefined
      out += i === 0 ? w : `,${w}`
    }
    return `${out}]`
  }
  const proto = Object.getPrototypeOf(v) as unknown
  if (proto !== Object.prototype && proto !== null) return undefined
  const o = v as Record<string, unknown>
  const keys = Object.keys(o)
  // Object.keys lists array indices first, in numeric order: only the rest needs sorting
  let n = 0
  while (n < keys.length && isArrayIndex(keys[n]!)) n++
  const named = keys.slice(n).sort()
  let out = '{'
  let first = true
  for (let i = 0; i < keys.length; i++) {
    const k = i < n ? keys[i]! : named[i - n]!
    const x = o[k]
    if (x === undefined) continue
    const w = writeJson(x)
    if (w === undefined) return undefined
    out += `${first ? '' : ','}${JSON.stringify(k)}:${w}`
    first = false
  }
  return `${out}}`
}

export type HashedFields = Omit<AuditEntry, 'hash' | 'prevHash'>

export function entryHash (prevHash: string, e: HashedFields): string {
  const body = canonicalJson({
    seq: e.seq, time: e.time, actor: e.actor, action: e.action, target: e.target ?? null, outcome: e.outcome, detail: e.detail,
  })
  return hash('sha256', prevHash + body, 'hex')
}

/**
 * entryHash of an entry whose fields are plain JSON data, as they stand: the hash
 * of the parse of their JSON text (what the store keeps and verifyChain reads
 * back) without the parse, since canonical JSON of plain data equals that of its
 * JSON round trip (undefined members left out, numbers as JSON.stringify writes
 * them, keys sorted either way). Undefined when a field holds anything else
 * (Buffers, Dates, objects with toJSON): hash the parsed copy instead.
 */
export function entryHashIfPlain (prevHash: string, e: HashedFields): string | undefined {
  const body = writeJson({
    seq: e.seq, time: e.time, actor: e.actor, action: e.action, target: e.target ?? null, outcome: e.outcome, detail: e.detail,
  })
  return body === undefined ? undefined : hash('sha256', prevHash + body, 'hex')
}

/** Verifies entries in sequence order, starting from the genesis link. */
export function verifyChain (entries: Iterable<AuditEntry>): AuditVerdict {
  let prev = GENESIS
  let expectedSeq = 1
  let n = 0
  for (const e of entries) {
    n++
    if (e.seq !== expectedSeq) return { ok: false, entries: n, brokenAt: e.seq, reason: `expected entry ${expectedSeq}, found ${e.seq} (removed or reordered)` }
    if (e.prevHash !== prev) return { ok: false, entries: n, brokenAt: e.seq, reason: 'link to the previous entry does not match' }
    if (entryHash(prev, e) !== e.hash) return { ok: false, entries: n, brokenAt: e.seq, reason: 'entry content does not match its hash (edited)' }
    prev = e.hash
    expectedSeq++
  }
  return { ok: true, entries: n }
}
