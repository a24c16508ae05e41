/**
 * No secret reaches a log line (server/log.ts): every censored place, in
 * logged objects, child bindings and fastify request lines; the caller's
 * objects are left unchanged; and the cheap path (nothing to censor) returns
 * the object itself.
 */
import { Writable } from 'node:stream'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { CENSOR, censorNested, createLogger } from '../../server/log.js'

const SECRET = 'S3CR3T-value-that-must-not-appear'

function capture (): { dest: Writable; lines: () => string[] } {
  const out: string[] = []
  const dest = new Writable({ write (chunk: Buffer, _e, cb) { out.push(...chunk.toString().split('\n').filter((l) => l !== '')); cb() } })
  return { dest, lines: () => out }
}

t.test('every censored place', async (t) => {
  const c = capture()
  const log = createLogger('info', c.dest)
  const cases: [string, Record<string, unknown>, (o: Record<string, any>) => unknown][] = [
    ['top-level token', { token: SECRET }, (o) => o.token],
    ['top-level secret', { secret: SECRET }, (o) => o.secret],
    ['top-level password', { password: SECRET }, (o) => o.password],
    ['top-level authorization', { authorization: SECRET }, (o) => o.authorization],
    ['nested token', { issued: { token: SECRET, jti: 'abc' } }, (o) => o.issued.token],
    ['nested secret', { x: { secret: SECRET } }, (o) => o.x.secret],
    ['nested password', { user: { password: SECRET } }, (o) => o.user.password],
    ['nested authorization', { headers: { authorization: SECRET } }, (o) => o.headers.authorization],
    ['req.headers.authorization', { req: { headers: { authorization: SECRET } } }, (o) => o.req.headers.authorization],
    ['req.headers.cookie', { req: { headers: { cookie: SECRET } } }, (o) => o.req.headers.cookie],
    ['req.headers["x-netboot-token"]', { req: { headers: { 'x-netboot-token': SECRET } } }, (o) => o.req.headers['x-netboot-token']],
    ['res.headers["set-cookie"]', { res: { headers: { 'set-cookie': SECRET } } }, (o) => o.res.headers['set-cookie']],
    ['config.admin.token', { config: { admin: { token: SECRET } } }, (o) => o.config.admin.token],
  ]
  for (const [name, obj, pick] of cases) {
    const before = JSON.stringify(obj)
    log.info(obj, name)
    t.equal(JSON.stringify(obj), before, `${name}: the caller's object is not modified`)
  }
  log.child({ session: { token: SECRET } }).info('child binding')
  log.child({ token: SECRET }).info('top-level child binding')
  log.flush()
  await new Promise((resolve) => setImmediate(resolve))
  const lines = c.lines()
  t.equal(lines.length, cases.length + 2, 'one line per call')
  for (const l of lines) t.notOk(l.includes(SECRET), `no secret in: ${l.slice(0, 120)}`)
  for (const [i, [name, , pick]] of cases.entries()) t.equal(pick(JSON.parse(lines[i]!)), CENSOR, `${name} censored`)
  t.equal(JSON.parse(lines[cases.length]!).session.token, CENSOR)
  t.equal(JSON.parse(lines[cases.length + 1]!).token, CENSOR)
  const ok = JSON.parse(lines[4]!)
  t.equal(ok.issued.jti, 'abc', 'other keys of a censored object are kept')
})

t.test('fastify request lines carry no credential', async (t) => {
  const c = capture()
  const app = Fastify({ loggerInstance: createLogger('info', c.dest) as FastifyBaseLogger })
  app.get('/x', async (req) => { req.log.info({ token: SECRET, call: { authorization: SECRET } }, 'handler'); return 'ok' })
  t.teardown(() => app.close())
  const r = await app.inject({ method: 'GET', url: '/x', headers: { authorization: `Bearer ${SECRET}`, cookie: SECRET, 'x-netboot-token': SECRET } })
  t.equal(r.statusCode, 200)
  await new Promise((resolve) => setImmediate(resolve))
  const lines = c.lines()
  t.ok(lines.some((l) => l.includes('"handler"')), 'the handler line is there')
  t.ok(lines.some((l) => l.includes('incoming request')), 'the request line is there')
  for (const l of lines) t.notOk(l.includes(SECRET), `no secret in: ${l.slice(0, 120)}`)
})

t.test('censorNested copies only when it must', async (t) => {
  const plain = { mac: '02:00:00:00:00:01', n: 3, list: [{ token: 'in an array: not a key of a top-level object' }], buf: Buffer.from('token') }
  t.equal(censorNested(plain), plain, 'nothing to censor: the same object')
  const withSecret = { a: { token: 'x', keep: 1 }, b: { fine: true } }
  const out = censorNested(withSecret)
  t.not(out, withSecret)
  t.same(out, { a: { token: CENSOR, keep: 1 }, b: { fine: true } })
  t.equal(out.b, withSecret.b, 'untouched values are shared, not copied')
  t.equal(withSecret.a.token, 'x', 'the input is unchanged')
  t.same(censorNested({ a: { token: undefined } }), { a: { token: undefined } }, 'an undefined value is not invented')
})
