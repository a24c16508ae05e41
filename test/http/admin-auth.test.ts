import t from 'tap'
import { adminFixture } from '../helpers/admin.js'

t.test('no token, bad tokens, revoked and expired tokens: 401', async (t) => {
  const f = await adminFixture(t)
  let r = await f.call({}, 'GET', '/api/v1/nodes')
  t.equal(r.statusCode, 401)
  t.equal(r.json().error.code, 'AUTH_REQUIRED')

  for (const header of ['Bearer nbt_aaaaaaaaaa_' + 'A'.repeat(43), 'Bearer garbage', 'Basic YWxpY2U6cHc=', `Bearer ${f.tokens.admin.slice(0, -1)}x`, f.tokens.admin]) {
    r = await f.call({ header }, 'GET', '/api/v1/nodes')
    t.equal(r.statusCode, 401, header.slice(0, 20))
    t.equal(r.json().error.code, 'AUTH_INVALID')
  }

  const created = await f.call('admin', 'POST', '/api/v1/tokens', { name: 'temp', role: 'viewer' })
  t.equal(created.statusCode, 201)
  const { value, token } = created.json()
  t.match(value, /^nbt_[a-z2-7]{10}_[A-Za-z0-9_-]{43}$/)
  t.equal((await f.call({ header: `Bearer ${value}` }, 'GET', '/api/v1/nodes')).statusCode, 200)
  t.equal((await f.call('admin', 'DELETE', `/api/v1/tokens/${token.id}`)).statusCode, 200)
  r = await f.call({ header: `Bearer ${value}` }, 'GET', '/api/v1/nodes')
  t.equal(r.statusCode, 401)
  t.same(r.json().error, { code: 'AUTH_INVALID', message: 'token has been revoked' })

  await f.store.createToken({ id: 'expiredtok', name: 'old', role: 'admin', secretHash: 'x', createdBy: 't', expiresAt: '2000-01-01T00:00:00.000Z' }, { kind: 'system', id: 't' })
  const listed = (await f.call('admin', 'GET', '/api/v1/tokens')).json().tokens
  t.notOk(JSON.stringify(listed).includes('secret'), 'token listing has no secrets or hashes')
  t.equal(listed.length, 6)
})

t.test('a token that lacks the right: 403, audited', async (t) => {
  const f = await adminFixture(t)
  const cases: [role: 'viewer' | 'operator' | 'auditor', method: string, url: string, body?: unknown][] = [
    ['viewer', 'POST', '/api/v1/groups', { name: 'compute' }],
    ['viewer', 'GET', '/api/v1/audit'],
    ['operator', 'POST', '/api/v1/tokens', { name: 'x', role: 'admin' }],
    ['operator', 'GET', '/api/v1/tokens'],
    ['auditor', 'DELETE', '/api/v1/nodes/nid001'],
  ]
  for (const [role, method, url, body] of cases) {
    const r = await f.call(role, method, url, body)
    t.equal(r.statusCode, 403, `${role} ${method} ${url}`)
    t.equal(r.json().error.code, 'FORBIDDEN')
  }
  const denied = (await f.store.listAudit({ action: 'auth.forbidden' }))
  t.equal(denied.length, cases.length)
  t.match(denied[0], { actor: { kind: 'admin', name: 'viewer-token' }, target: 'POST /api/v1/groups', outcome: 'denied', detail: { role: 'viewer', needs: 'inventory:write' } })
  t.equal((await f.call('operator', 'POST', '/api/v1/groups', { name: 'compute' })).statusCode, 201, 'operator may write inventory')
  t.equal((await f.call('auditor', 'GET', '/api/v1/audit')).statusCode, 200, 'auditor may read the audit log')
})

t.test('every /api route declares a right or is public', async (t) => {
  const f = await adminFixture(t)
  const doc = (await f.call({}, 'GET', '/api/v1/openapi.json')).json()
  t.equal(doc.openapi, '3.1.0')
  const paths = Object.keys(doc.paths)
  for (const p of ['/api/v1/nodes', '/api/v1/nodes/import', '/api/v1/nodes/{selector}', '/api/v1/groups', '/api/v1/tokens', '/api/v1/audit', '/api/v1/audit/verify']) t.ok(paths.includes(p), `OpenAPI documents ${p}`)
  // a protected route without a token is refused, route by route
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(item)) {
      const url = path.replace('{selector}', 'nid001').replace('{name}', 'x').replace('{id}', 'x')
      const r = await f.call({}, method.toUpperCase(), url)
      t.equal(r.statusCode, 401, `${method.toUpperCase()} ${path} needs a token`)
    }
  }
})
