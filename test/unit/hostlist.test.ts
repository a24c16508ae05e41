import t from 'tap'
import { compressHostlist, expandHostlist } from '../../server/inventory/hostlist.js'

t.test('expands ranges', async (t) => {
  t.same(expandHostlist('nid[001-003]'), ['nid001', 'nid002', 'nid003'])
  t.same(expandHostlist('nid[001-002,007]'), ['nid001', 'nid002', 'nid007'])
  t.same(expandHostlist('x1000c1s7b[0-1]n0'), ['x1000c1s7b0n0', 'x1000c1s7b1n0'])
  t.same(expandHostlist('r[1-2]n[1-2]'), ['r1n1', 'r1n2', 'r2n1', 'r2n2'])
  t.same(expandHostlist('nid001,nid[008-010]'), ['nid001', 'nid008', 'nid009', 'nid010'])
  t.same(expandHostlist('nid[8-10]'), ['nid8', 'nid9', 'nid10'], 'no padding when the bound has none')
  t.same(expandHostlist('nid001'), ['nid001'])
  t.same(expandHostlist('a,a'), ['a'], 'duplicates collapse')
})

t.test('rejects malformed and huge ranges', async (t) => {
  for (const bad of ['nid[001-', 'nid]1[', 'nid[3-1]', 'nid[a-b]', 'nid[]', '', 'a,,b', 'n[0-99999]x[0-99]']) {
    t.throws(() => expandHostlist(bad), { code: 'INVALID_HOSTLIST' }, bad)
  }
})

t.test('compresses for display', async (t) => {
  t.equal(compressHostlist(['nid001', 'nid002', 'nid003', 'nid007']), 'nid[001-003,007]')
  t.equal(compressHostlist(['nid001']), 'nid001')
  t.equal(compressHostlist([]), '')
  t.equal(compressHostlist(['head', 'nid1', 'nid2']), 'head,nid[1-2]')
  for (const expr of ['nid[001-009]', 'x1000c1s7b[0-3]n0']) t.same(expandHostlist(compressHostlist(expandHostlist(expr))), expandHostlist(expr), `round trip ${expr}`)
})
