/**
 * The store hashes an audit entry whose detail is plain JSON data as it stands
 * (entryHashIfPlain), without the deep copy through its JSON text: the hash must be
 * exactly that of the parsed copy (what verifyChain reads back), for seeded random
 * values and the edge cases of JSON's round trip; anything that is not plain data
 * is left to the copy; and a store written that way verifies.
 */
import { join } from 'node:path'
import t from 'tap'
import { entryHash, entryHashIfPlain } from '../../server/audit/chain.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { tempDir } from '../helpers/tmp.js'

const PREV = 'ab'.repeat(32)
const entry = (detail: unknown): Parameters<typeof entryHash>[1] =>
  ({ seq: 7, time: '2026-11-21T21:00:00.000Z', actor: { kind: 'node', id: 'n1' }, action: 'attest.finish', target: 'n1', outcome: 'ok', detail: detail as Record<string, unknown> })
const viaCopy = (detail: unknown): string => entryHash(PREV, entry(JSON.parse(JSON.stringify(detail))))

t.test('plain data: the hash of the parsed copy', async (t) => {
  const edge: unknown[] = [
    { a: undefined, b: [undefined, 1], c: { d: undefined } },
    { n: Number.NaN, i: Number.POSITIVE_INFINITY, z: -0, big: 1e21, small: 1e-7, max: 2 ** 53 },
    { s: '\ud800 lone surrogate', l: '\u2028\u0000"\\', e: '' },
    { 10: 1, 2: 2, '01': 3, '-1': 4, 4294967295: 5, a: 6 },
    Object.assign(Object.create(null) as object, { x: 1 }),
    { nested: [[{ b: 1, a: [null, true, false] }]] },
  ]
  for (const [i, d] of edge.entries()) t.equal(entryHashIfPlain(PREV, entry(d)), viaCopy(d), `edge case ${i}`)

  let seed = 0xa0d1
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n }
  const keys = ['a', 'B', '0', '10', '007', 'é', '', 'pcrs', '4294967294']
  const value = (depth: number): unknown => {
    switch (depth > 3 ? rnd(5) : rnd(8)) {
      case 0: return null
      case 1: return rnd(2) === 0
      case 2: return [0, -0, 1.5, 1e21, -2e-9, Number.NaN][rnd(6)]
      case 3: return ['', 'x', 'é"\\\n', '\u2028'][rnd(4)]
      case 4: return undefined
      case 5: case 6: { const o: Record<string, unknown> = {}; for (let k = rnd(5); k > 0; k--) o[keys[rnd(keys.length)]!] = value(depth + 1); return o }
      default: return Array.from({ length: rnd(4) }, () => value(depth + 1))
    }
  }
  let same = 0
  for (let i = 0; i < 2000; i++) {
    const d = { v: value(0) }
    if (entryHashIfPlain(PREV, entry(d)) === viaCopy(d)) same++
    else t.fail(`differs for ${JSON.stringify(d)}`)
  }
  t.equal(same, 2000, '2,000 random values')
})

t.test('not plain data: left to the copy', async (t) => {
  for (const d of [{ b: Buffer.from('hi') }, { d: new Date(0) }, { t: { toJSON: () => 'x' } }, { f: () => 1 }, { m: new Map() }]) {
    t.equal(entryHashIfPlain(PREV, entry(d)), undefined, Object.keys(d)[0]!)
  }
})

t.test('a store that hashed plain details in place verifies, Buffers and all', async (t) => {
  const s = SqliteStore.open(join(tempDir(t), 'a.db'))
  t.teardown(async () => await s.close())
  const node = { kind: 'node' as const, id: 'n1' }
  const e1 = await s.audit({ actor: node, action: 'attest.finish', target: 'n1', detail: { pcrs: { 0: 'aa', 10: 'bb' }, gone: undefined, n: Number.NaN } })
  await s.audit({ actor: node, action: 'attest.finish', detail: { raw: Buffer.from('x'), when: new Date(0) } })
  await s.recordAttestation(1, { resetCount: 1, restartCount: 0 }, { actor: node, action: 'attest.finish', target: 'n1', outcome: 'ok', detail: { counters: { resetCount: 1 }, u: undefined } })
  t.same(await s.verifyAudit(), { ok: true, entries: 3 })
  t.equal((await s.getAudit(e1.seq))!.hash, e1.hash, 'the returned hash is the stored one')
})
