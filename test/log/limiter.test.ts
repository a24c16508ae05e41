/**
 * LogLimiter (server/log.ts): a flood of one kind of warning (bad packets from the
 * network, spoofed sources included) writes at most `perSecond` lines a second, and
 * the next line after the flood says how many were suppressed.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger, LogLimiter } from '../../server/log.js'

t.test('a flood is cut to perSecond lines, then the count of what was dropped', async (t) => {
  const out: Array<Record<string, unknown>> = []
  const dest = new Writable({ write (chunk: Buffer, _e, cb) { for (const l of chunk.toString().split('\n')) if (l !== '') out.push(JSON.parse(l) as Record<string, unknown>); cb() } })
  const limiter = new LogLimiter(createLogger('info', dest), 5, 'ra')
  for (let i = 0; i < 100; i++) limiter.warn({ peer: `fe80::${i}` }, 'ra: bad router solicitation dropped')
  await new Promise((r) => setTimeout(r, 1100))
  limiter.warn({ peer: 'fe80::ffff' }, 'ra: bad router solicitation dropped')
  await new Promise((r) => setImmediate(r))
  const flood = out.filter((l) => l.msg === 'ra: bad router solicitation dropped')
  t.equal(flood.length, 6, 'five lines in the first second, one in the next')
  t.same(flood.slice(0, 5).map((l) => l.peer), ['fe80::0', 'fe80::1', 'fe80::2', 'fe80::3', 'fe80::4'], 'the first five are the ones written')
  const summary = out.find((l) => l.msg === 'ra: similar log lines suppressed')
  t.equal(summary?.suppressed, 95, 'the next second starts with the count of the 95 dropped')
})
