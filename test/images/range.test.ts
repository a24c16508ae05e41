/**
 * The pure parts of send-file.ts: Range (RFC 9110 §14), entity tags and dates,
 * preconditions (§13.2.2), If-Range (§13.1.5), multipart layout (§14.6).
 */
import t from 'tap'
import {
  evaluatePreconditions, formatHttpDate, ifRangeHolds, MAX_RANGES, multipartLayout, parseEntityTags, parseHttpDate, parseRange,
  type RangeDecision,
} from '../../server/http/send-file.js'

const R = (...pairs: [number, number][]): RangeDecision => ({ kind: 'ranges', ranges: pairs.map(([start, end]) => ({ start, end })) })
const IGNORED = { kind: 'ignored' }
const UNSAT = { kind: 'unsatisfiable' }

t.test('parseRange table (size 10000)', async (t) => {
  const size = 10_000
  const table: [field: string | undefined, expected: RangeDecision | typeof IGNORED | typeof UNSAT][] = [
    [undefined, { kind: 'none' }],
    // single ranges
    ['bytes=0-99', R([0, 99])],
    ['bytes=100-', R([100, 9999])],
    ['bytes=-500', R([9500, 9999])],
    ['bytes=0-0', R([0, 0])],
    ['bytes=-1', R([9999, 9999])],
    ['bytes=9999-', R([9999, 9999])],
    ['bytes=9999-9999', R([9999, 9999])],
    ['bytes=0-99999', R([0, 9999])],
    ['bytes=-99999', R([0, 9999])],
    ['bytes=0-', R([0, 9999])],
    ['BYTES=0-1', R([0, 1])],
    ['Bytes=0-1', R([0, 1])],
    ['bytes=000-0099', R([0, 99])],
    // huge numbers are compared exactly
    ['bytes=0-99999999999999999999999999999', R([0, 9999])],
    ['bytes=99999999999999999999999999999-', UNSAT],
    ['bytes=-99999999999999999999999999999', R([0, 9999])],
    ['bytes=99999999999999999999999999998-99999999999999999999999999999', UNSAT],
    ['bytes=99999999999999999999999999999-99999999999999999999999999998', IGNORED],
    ['bytes=9007199254740993-9007199254740992', IGNORED],
    // several ranges
    ['bytes=0-0,-1', R([0, 0], [9999, 9999])],
    ['bytes=0-0, -1', R([0, 0], [9999, 9999])],
    ['bytes=0-0 ,\t-1', R([0, 0], [9999, 9999])],
    ['bytes=500-600,0-99', R([500, 600], [0, 99])],
    ['bytes=0-10,5-20', R([0, 20])],
    ['bytes=0-10,11-20', R([0, 20])],
    ['bytes=0-10,12-20', R([0, 10], [12, 20])],
    ['bytes=5-20,0-10', R([0, 20])],
    ['bytes=100-200,0-10,150-300', R([100, 300], [0, 10])],
    ['bytes=0-,0-,0-,0-', R([0, 9999])],
    ['bytes=-1,9999-', R([9999, 9999])],
    ['bytes=0-1,,2-3', R([0, 3])],
    ['bytes=,0-1', R([0, 1])],
    ['bytes=20000-,0-1', R([0, 1])],
    ['bytes=20000-,-0,5-5', R([5, 5])],
    // unsatisfiable
    ['bytes=10000-', UNSAT],
    ['bytes=10000-20000', UNSAT],
    ['bytes=-0', UNSAT],
    ['bytes=20000-,30000-', UNSAT],
    // ignored: invalid or unknown
    ['bytes=5-1', IGNORED],
    ['bytes=0-1,5-1', IGNORED],
    ['bytes=', IGNORED],
    ['bytes=,,,', IGNORED],
    ['bytes=-', IGNORED],
    ['bytes=a-b', IGNORED],
    ['bytes=0x10-0x20', IGNORED],
    ['bytes=1e3-', IGNORED],
    ['bytes=+1-2', IGNORED],
    ['bytes=-1-2', IGNORED],
    ['bytes=1.5-2', IGNORED],
    ['bytes=0 - 1', IGNORED],
    ['bytes =0-1', IGNORED],
    ['bytes= 0-1', R([0, 1])],
    ['bytes 0-1', IGNORED],
    ['bytes=0-1;x', IGNORED],
    ['bytes=0-1=2', IGNORED],
    ['items=0-1', IGNORED],
    ['=0-1', IGNORED],
    ['0-1', IGNORED],
    ['garbage', IGNORED],
    ['bytes=\u0000-1', IGNORED],
    ['bytes=٠-١', IGNORED],
    ['bytes=0-1, bytes=2-3', IGNORED],
  ]
  for (const [field, expected] of table) {
    const got = parseRange(field, size)
    if (expected.kind === 'ignored') t.equal(got.kind, 'ignored', JSON.stringify(field))
    else t.same(got, expected, JSON.stringify(field))
  }
})

t.test('range count is capped', async (t) => {
  const many = (n: number): string => 'bytes=' + Array.from({ length: n }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',')
  const atCap = parseRange(many(MAX_RANGES), 10_000)
  t.equal(atCap.kind === 'ranges' ? atCap.ranges.length : 0, MAX_RANGES, `${MAX_RANGES} ranges are served`)
  t.equal(parseRange(many(MAX_RANGES + 1), 10_000).kind, 'ignored')
  t.equal(parseRange(many(3), 10_000, 2).kind, 'ignored', 'the cap is a parameter')
  const huge = 'bytes=' + '0-1,'.repeat(100_000)
  const cpu = process.cpuUsage()
  t.equal(parseRange(huge, 10_000).kind, 'ignored', '100 000 ranges: ignored')
  const used = process.cpuUsage(cpu)
  // CPU time, not wall time: a descheduled test on a loaded machine must not fail this
  t.ok(used.user + used.system < 1_000_000, `bounded work: ${((used.user + used.system) / 1000).toFixed(1)} ms of CPU`)
  t.equal(parseRange('bytes=' + ','.repeat(100_000) + '0-1', 10_000).kind, 'ranges', 'empty elements do not count')
})

t.test('zero-length and tiny representations', async (t) => {
  t.equal(parseRange('bytes=0-', 0).kind, 'ignored')
  t.equal(parseRange('bytes=-1', 0).kind, 'ignored')
  t.equal(parseRange('bytes=5-1', 0).kind, 'ignored', 'invalid is still invalid')
  t.same(parseRange('bytes=0-5', 1), R([0, 0]))
  t.same(parseRange('bytes=-5', 1), R([0, 0]))
  t.same(parseRange('bytes=1-', 1), UNSAT)
})

t.test('entity tags', async (t) => {
  t.same(parseEntityTags('*'), { any: true })
  t.same(parseEntityTags('"abc"'), { any: false, tags: [{ weak: false, opaque: 'abc' }] })
  t.same(parseEntityTags('W/"abc", "def" ,"",W/"x"'), { any: false, tags: [{ weak: true, opaque: 'abc' }, { weak: false, opaque: 'def' }, { weak: false, opaque: '' }, { weak: true, opaque: 'x' }] })
  for (const bad of ['abc', '"abc', 'W/abc', '"a" "b"', '"a b"', 'w/"a"', '', ',']) t.equal(parseEntityTags(bad), undefined, JSON.stringify(bad))
})

t.test('HTTP dates', async (t) => {
  const t0 = Date.UTC(1994, 10, 6, 8, 49, 37)
  t.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t0, 'IMF-fixdate')
  t.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t0, 'RFC 850')
  t.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t0, 'asctime')
  for (const bad of ['1994', 'Sun, 06 Nov 1994 08:49:37 UTC', 'Sun, 31 Feb 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 25:49:37 GMT', 'now', '', '0']) {
    t.equal(parseHttpDate(bad), undefined, JSON.stringify(bad))
  }
  t.equal(formatHttpDate(t0), 'Sun, 06 Nov 1994 08:49:37 GMT')
})

t.test('preconditions (§13.2.2)', async (t) => {
  const v = { etag: 'abc', lastModified: Date.UTC(2024, 0, 1, 12, 0, 0, 500) }
  const lm = 'Mon, 01 Jan 2024 12:00:00 GMT'
  const before = 'Mon, 01 Jan 2024 11:59:59 GMT'
  const table: [string, Parameters<typeof evaluatePreconditions>[0], string][] = [
    ['none', {}, 'proceed'],
    ['If-None-Match match', { ifNoneMatch: '"abc"' }, 'not-modified'],
    ['If-None-Match weak match', { ifNoneMatch: 'W/"abc"' }, 'not-modified'],
    ['If-None-Match in a list', { ifNoneMatch: '"x", "abc"' }, 'not-modified'],
    ['If-None-Match *', { ifNoneMatch: '*' }, 'not-modified'],
    ['If-None-Match other', { ifNoneMatch: '"x"' }, 'proceed'],
    ['If-None-Match garbage', { ifNoneMatch: 'abc' }, 'proceed'],
    ['If-Match match', { ifMatch: '"abc"' }, 'proceed'],
    ['If-Match *', { ifMatch: '*' }, 'proceed'],
    ['If-Match weak never matches', { ifMatch: 'W/"abc"' }, 'precondition-failed'],
    ['If-Match other', { ifMatch: '"x"' }, 'precondition-failed'],
    ['If-Match garbage', { ifMatch: 'x' }, 'precondition-failed'],
    ['If-Modified-Since = Last-Modified (second precision)', { ifModifiedSince: lm }, 'not-modified'],
    ['If-Modified-Since before', { ifModifiedSince: before }, 'proceed'],
    ['If-Modified-Since invalid', { ifModifiedSince: 'yesterday' }, 'proceed'],
    ['If-Modified-Since ignored when If-None-Match is there', { ifNoneMatch: '"x"', ifModifiedSince: lm }, 'proceed'],
    ['If-Unmodified-Since = Last-Modified', { ifUnmodifiedSince: lm }, 'proceed'],
    ['If-Unmodified-Since before', { ifUnmodifiedSince: before }, 'precondition-failed'],
    ['If-Unmodified-Since ignored when If-Match is there', { ifMatch: '"abc"', ifUnmodifiedSince: before }, 'proceed'],
    ['If-Match first, then If-None-Match', { ifMatch: '"abc"', ifNoneMatch: '"abc"' }, 'not-modified'],
    ['If-Match failure wins over If-None-Match', { ifMatch: '"x"', ifNoneMatch: '"abc"' }, 'precondition-failed'],
  ]
  for (const [what, f, expected] of table) t.equal(evaluatePreconditions(f, v), expected, what)
  t.equal(evaluatePreconditions({ ifModifiedSince: lm }, { etag: 'abc' }), 'proceed', 'no Last-Modified: date conditions are ignored')
  t.equal(evaluatePreconditions({ ifNoneMatch: '"abc"' }, {}), 'proceed', 'no ETag: nothing matches but *')
})

t.test('If-Range (§13.1.5)', async (t) => {
  const lmMs = Date.UTC(2024, 0, 1, 12, 0, 0)
  const v = { etag: 'abc', lastModified: lmMs }
  const now = lmMs + 60_000
  t.ok(ifRangeHolds(undefined, v, now), 'absent')
  t.ok(ifRangeHolds('"abc"', v, now), 'strong match')
  t.notOk(ifRangeHolds('W/"abc"', v, now), 'weak tag never holds')
  t.notOk(ifRangeHolds('"x"', v, now))
  t.notOk(ifRangeHolds('"abc", "x"', v, now), 'a list is not an If-Range value')
  t.ok(ifRangeHolds('Mon, 01 Jan 2024 12:00:00 GMT', v, now), 'exact date')
  t.notOk(ifRangeHolds('Mon, 01 Jan 2024 12:00:01 GMT', v, now), 'later date: not exact')
  t.notOk(ifRangeHolds('Mon, 01 Jan 2024 12:00:00 GMT', v, lmMs + 500), 'Last-Modified too recent to be strong')
  t.notOk(ifRangeHolds('Mon, 01 Jan 2024 12:00:00 GMT', { etag: 'abc' }, now), 'no Last-Modified')
  t.notOk(ifRangeHolds('garbage', v, now))
})

t.test('multipart layout length is exact', async (t) => {
  const l = multipartLayout([{ start: 0, end: 0 }, { start: 9999, end: 9999 }], 10_000, 'application/octet-stream', 'B')
  const body = l.parts.map((p) => p.head + 'x'.repeat(p.range.end - p.range.start + 1)).join('') + l.tail
  t.equal(l.length, body.length)
  t.equal(l.contentType, 'multipart/byteranges; boundary=B')
  t.equal(l.parts[1]!.head, '\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 9999-9999/10000\r\n\r\n')
  t.equal(l.tail, '\r\n--B--\r\n')
})
