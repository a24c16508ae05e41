/**
 * The audit chain's canonical JSON (server/audit/chain.ts) is written directly for
 * plain JSON data; its bytes must be exactly those of the original definition,
 * JSON.stringify of a copy with sorted keys (kept here as the reference), or every
 * chain written before would stop verifying.
 */
import t from 'tap'
import { canonicalJson, entryHash } from '../../server/audit/chain.js'

function reference (value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys)
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>
      return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, sortKeys(o[k])]))
    }
    return v
  }
  return JSON.stringify(sortKeys(value))
}

t.test('an entry hashes as it did before the direct writer (hash computed with the original code)', async (t) => {
  const e = {
    seq: 42, time: '2026-11-21T19:30:00.000Z', actor: { kind: 'node' as const, id: 'nid001' }, action: 'attest.finish', target: 'nid001', outcome: 'ok' as const,
    detail: { peer: '10.1.0.1', pcrs: { 10: 'c', 2: 'b', 0: 'a' }, zeta: [1, null, 'é', { b: 2, a: 1, B: 0 }], alpha: true, 'ünï': '\u2028\u0000"', n: -0.5e-7, big: 1e21 },
  }
  t.equal(entryHash('ab'.repeat(32), e), 'b78be9ff20072c097b18423439ff7f2da641ff6640ad20ca03db08be09378786')
})

t.test('the cases that decide key order and omissions', async (t) => {
  const cases: unknown[] = [
    { 10: 1, 2: 2, 0: 3, a: 4, 1.5: 5, '01': 6, '-1': 7, 4294967294: 8, 4294967295: 9, 99999999999: 10, '': 11, Z: 12, z: 13 },
    { a: undefined, b: null, c: [undefined, 1], d: { e: undefined } },
    { '\ud83d\ude00': 1, '\uffff': 2, '\u00e9': 3, e: 4 },
    [], {}, [[]], [{}], 'x', 0, -0, 1e-7, 1e21, Number.NaN, Number.POSITIVE_INFINITY, true, false, null,
    { s: '\u2028\u2029\u0000\u001f"\\/' },
  ]
  cases.forEach((c, i) => t.equal(canonicalJson(c), reference(c), `case ${i}`))
})

t.test('values that are not plain JSON data take the original path', async (t) => {
  const cases: unknown[] = [
    { b: Buffer.from('hi') }, { d: new Date(0) }, { m: new Map([[1, 2]]) }, { f: () => 1, a: 1 }, [() => 1],
    { t: { toJSON: () => 'x' } }, Object.assign(Object.create({ inherited: 1 }) as object, { own: 2 }),
  ]
  for (const c of cases) t.equal(canonicalJson(c), reference(c))
})

t.test('random JSON values: same bytes as the reference (2,000 values, seeded)', async (t) => {
  let seed = 0x5eed
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n }
  const keyPool = ['a', 'b', 'B', '0', '1', '2', '10', '007', '-3', '1e3', 'é', 'ünï', '\ud83d\ude00', '', 'pcrs', 'zz', '4294967294', '4294967295']
  const value = (depth: number): unknown => {
    switch (depth > 3 ? rnd(5) : rnd(8)) {
      case 0: return null
      case 1: return rnd(2) === 0
      case 2: return [0, -1, 1.5, 1e21, -2e-9, 2 ** 53][rnd(6)]
      case 3: return ['', 'x', 'é"\\\n', '\u2028', 'deadbeef'][rnd(5)]
      case 4: return rnd(4) === 0 ? undefined : 'u'
      case 5: case 6: {
        const o: Record<string, unknown> = {}
        for (let i = rnd(6); i > 0; i--) o[keyPool[rnd(keyPool.length)]!] = value(depth + 1)
        return o
      }
      default: return Array.from({ length: rnd(4) }, () => value(depth + 1))
    }
  }
  let same = 0
  for (let i = 0; i < 2000; i++) {
    const v = { detail: value(0) }
    if (canonicalJson(v) === reference(v)) same++
    else t.fail(`differs for ${JSON.stringify(v)}`)
  }
  t.equal(same, 2000)
})
