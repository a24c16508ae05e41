/**
 * Host ranges in the pdsh/Slurm/powerman notation: `nid[001-009]`, `nid[001-003,007]`,
 * `x1000c1s7b[0-3]n0`, `rack[1-2]-n[01-04]` (brackets multiply), and comma-separated
 * lists of those at top level. Zero padding follows the width of the range's lower
 * bound as written (`[001-010]` → `001 … 010`).
 */
import { NetbootError } from '../errors.js'

/** A selection never expands beyond this many names: a typo must not allocate millions. */
export const MAX_HOSTLIST = 100_000

export function expandHostlist (expr: string, limit = MAX_HOSTLIST): string[] {
  const out: string[] = []
  for (const part of splitTopLevel(expr)) {
    if (part === '') throw invalid(expr, 'empty element')
    for (const name of expandOne(part, expr, limit - out.length)) out.push(name)
  }
  if (out.length === 0) throw invalid(expr, 'no names')
  return [...new Set(out)]
}

export function isHostlist (expr: string): boolean {
  return expr.includes('[') || expr.includes(',')
}

function splitTopLevel (expr: string): string[] {
  const parts: string[] = []
  let depth = 0
  let cur = ''
  for (const ch of expr.trim()) {
    if (ch === '[') depth++
    if (ch === ']') depth--
    if (depth < 0) throw invalid(expr, "']' without '['")
    if (ch === ',' && depth === 0) { parts.push(cur.trim()); cur = '' } else cur += ch
  }
  if (depth !== 0) throw invalid(expr, "'[' without ']'")
  parts.push(cur.trim())
  return parts
}

function expandOne (part: string, whole: string, budget: number): string[] {
  const open = part.indexOf('[')
  if (open < 0) {
    if (part.includes(']')) throw invalid(whole, "']' without '['")
    return [part]
  }
  const close = part.indexOf(']', open)
  const prefix = part.slice(0, open)
  const body = part.slice(open + 1, close)
  const rest = expandOne(part.slice(close + 1), whole, budget)
  const values: string[] = []
  for (const item of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item.trim())
    if (m === null) throw invalid(whole, `bad range '${item}'`)
    const lo = m[1]!
    const hi = m[2] ?? lo
    const a = Number(lo)
    const b = Number(hi)
    if (b < a) throw invalid(whole, `range '${item}' runs backwards`)
    if ((b - a + 1) * rest.length + values.length * rest.length > budget) {
      throw invalid(whole, `expands to more than ${MAX_HOSTLIST} names`)
    }
    for (let i = a; i <= b; i++) values.push(String(i).padStart(lo.length, '0'))
  }
  const out: string[] = []
  for (const v of values) for (const r of rest) out.push(prefix + v + r)
  return out
}

/** Compress names back into ranges for display: `nid001,nid002,nid003` → `nid[001-003]`. */
export function compressHostlist (names: readonly string[]): string {
  const groups = new Map<string, { width: number; nums: number[] }[]>()
  const plain: string[] = []
  for (const n of names) {
    const m = /^(.*?)(\d+)$/.exec(n)
    if (m === null) { plain.push(n); continue }
    const [, prefix, digits] = m as unknown as [string, string, string]
    const list = groups.get(prefix) ?? []
    let g = list.find((x) => x.width === digits.length)
    if (g === undefined) { g = { width: digits.length, nums: [] }; list.push(g) }
    g.nums.push(Number(digits))
    groups.set(prefix, list)
  }
  const out = [...plain]
  for (const [prefix, list] of groups) {
    for (const { width, nums } of list) {
      const sorted = [...new Set(nums)].sort((x, y) => x - y)
      if (sorted.length === 1) { out.push(prefix + String(sorted[0]).padStart(width, '0')); continue }
      const ranges: string[] = []
      let start = sorted[0]!
      let prev = start
      const flush = (): void => {
        const a = String(start).padStart(width, '0')
        ranges.push(prev === start ? a : `${a}-${String(prev).padStart(width, '0')}`)
      }
      for (const n of sorted.slice(1)) {
        if (n === prev + 1) { prev = n; continue }
        flush(); start = n; prev = n
      }
      flush()
      out.push(`${prefix}[${ranges.join(',')}]`)
    }
  }
  return out.join(',')
}

function invalid (expr: string, why: string): NetbootError {
  return new NetbootError('INVALID_HOSTLIST', `invalid host range '${expr}': ${why}`)
}
