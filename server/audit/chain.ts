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
import { createHash } from 'node:crypto'
import type { AuditEntry, AuditVerdict } from '../store/store.js'

export const GENESIS = '0'.repeat(64)

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson (value: unknown): string {
  return JSON.stringify(sortKeys(value))
}

function sortKeys (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, sortKeys(o[k])]))
  }
  return v
}

export type HashedFields = Omit<AuditEntry, 'hash' | 'prevHash'>

export function entryHash (prevHash: string, e: HashedFields): string {
  const body = canonicalJson({
    seq: e.seq, time: e.time, actor: e.actor, action: e.action, target: e.target ?? null, outcome: e.outcome, detail: e.detail,
  })
  return createHash('sha256').update(prevHash).update(body).digest('hex')
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
