import { readFileSync } from 'node:fs'
import t from 'tap'
import { adminFixture } from '../helpers/admin.js'

const bootcamp = readFileSync(new URL('../fixtures/inventory/bootcamp-flat.yaml', import.meta.url), 'utf8')

t.test('import, list, show, set, rm through the API, each audited with who and what', async (t) => {
  const f = await adminFixture(t)
  let r = await f.call('operator', 'POST', '/api/v1/nodes/import', { document: bootcamp, source: 'nodes.yaml' })
  t.equal(r.statusCode, 404)
  t.equal(r.json().error.code, 'GROUP_NOT_FOUND', 'groups must exist unless asked to create them')

  r = await f.call('operator', 'POST', '/api/v1/nodes/import', { document: bootcamp, source: 'nodes.yaml', createGroups: true })
  t.equal(r.statusCode, 200)
  t.equal(r.json().created.length, 9)

  r = await f.call('viewer', 'GET', '/api/v1/nodes?select=nid[001-003]')
  t.same(r.json().nodes.map((n: { name: string }) => n.name), ['nid001', 'nid002', 'nid003'])
  r = await f.call('viewer', 'GET', '/api/v1/nodes?group=compute')
  t.equal(r.json().nodes.length, 9)
  r = await f.call('viewer', 'GET', '/api/v1/nodes/NID004')
  t.match(r.json(), { name: 'nid004', nid: 4, xname: 'x1000c1s7b4n0', interfaces: [{ mac: 'ec:e7:a7:02:d9:90', ip: '172.16.0.4' }], bmcIp: '172.16.0.104' })

  t.equal((await f.call('operator', 'POST', '/api/v1/groups', { name: 'gpu', description: 'GPU nodes' })).statusCode, 201)
  r = await f.call('operator', 'PATCH', `/api/v1/nodes/${encodeURIComponent('nid[001-002]')}`, { addGroups: ['gpu'], bmcIp: null })
  t.equal(r.statusCode, 200)
  t.same(r.json().nodes.map((n: { groups: string[]; bmcIp?: string }) => [n.groups, n.bmcIp]), [[['compute', 'gpu'], undefined], [['compute', 'gpu'], undefined]])

  r = await f.call('operator', 'POST', '/api/v1/nodes', { name: 'head', interfaces: [{ mac: 'EC-E7-A7-00-00-01', ip: '172.16.0.254' }] })
  t.equal(r.statusCode, 201)
  t.equal(r.json().interfaces[0].mac, 'ec:e7:a7:00:00:01', 'MACs are stored canonical')

  r = await f.call('operator', 'DELETE', `/api/v1/nodes/${encodeURIComponent('nid[008-009]')}`)
  t.same(r.json(), { deleted: ['nid008', 'nid009'] })

  const entries = (await f.call('auditor', 'GET', '/api/v1/audit?action=node')).json().entries
  t.same(entries.map((e: { action: string; target: string; actor: { name: string } }) => [e.action, e.target, e.actor.name]), [
    ['node.import', 'nid[001-009]', 'operator-token'],
    ['node.update', 'nid[001-002]', 'operator-token'],
    ['node.create', 'head', 'operator-token'],
    ['node.delete', 'nid[008-009]', 'operator-token'],
  ])
  t.same(entries[1].detail, { changes: { addGroups: ['gpu'], bmcIp: null } })
  t.same((await f.call('auditor', 'GET', '/api/v1/audit/verify')).json().ok, true)
})

t.test('bad requests get a 4xx with a catalogue code, never a stack trace', async (t) => {
  const f = await adminFixture(t)
  await f.call('admin', 'POST', '/api/v1/groups', { name: 'compute' })
  const cases: [string, string, unknown, number, string][] = [
    ['POST', '/api/v1/nodes', { name: 'a', interfaces: [{ mac: 'nope-nope-nope' }] }, 400, 'INVALID_MAC'],
    ['POST', '/api/v1/nodes', { name: 'a', interfaces: [{ mac: '02:00:00:00:00:01', ip: '10.0.0.256' }] }, 400, 'INVALID_IP'],
    ['POST', '/api/v1/nodes', { name: 'a', xname: 'q1' }, 400, 'INVALID_XNAME'],
    ['POST', '/api/v1/nodes', { name: 'a_b' }, 400, 'INVALID_NAME'],
    ['POST', '/api/v1/nodes', { name: 'a', groups: ['nosuch'] }, 404, 'GROUP_NOT_FOUND'],
    ['POST', '/api/v1/nodes', { name: 'a', colour: 'blue' }, 400, 'BAD_REQUEST'],
    ['POST', '/api/v1/nodes', { interfaces: [] }, 400, 'BAD_REQUEST'],
    ['PATCH', '/api/v1/nodes/a', {}, 400, 'BAD_REQUEST'],
    ['PATCH', `/api/v1/nodes/${encodeURIComponent('nid[3-1]')}`, { nid: 1 }, 400, 'INVALID_HOSTLIST'],
    ['DELETE', '/api/v1/nodes/ghost', undefined, 404, 'NODE_NOT_FOUND'],
    ['GET', '/api/v1/nodes/ghost', undefined, 404, 'NODE_NOT_FOUND'],
    ['GET', '/api/v1/nodes?limit=3', undefined, 400, 'BAD_REQUEST'],
    ['POST', '/api/v1/groups', { name: 'compute' }, 409, 'GROUP_EXISTS'],
    ['POST', '/api/v1/tokens', { name: 'x', role: 'root' }, 400, 'BAD_REQUEST'],
    ['DELETE', '/api/v1/tokens/nosuch', undefined, 404, 'TOKEN_NOT_FOUND'],
    ['GET', '/api/v1/audit?limit=0', undefined, 400, 'BAD_REQUEST'],
    ['GET', '/api/v1/nope', undefined, 404, 'NOT_FOUND'],
    ['POST', '/api/v1/nodes/import', { document: 'nodes:\n  - name: a\n    mac: zz\n', source: 'n.yaml' }, 400, 'IMPORT_INVALID'],
  ]
  for (const [method, url, body, status, code] of cases) {
    const r = await f.call('admin', method, url, body)
    t.equal(r.statusCode, status, `${method} ${url} → ${status}`)
    t.equal(r.json().error.code, code, `${method} ${url} → ${code}`)
    t.notMatch(r.body, /at \w+ \(|node_modules|\.ts:\d+/, 'no stack trace')
  }
  const imp = await f.call('admin', 'POST', '/api/v1/nodes/import', { document: 'nodes:\n  - name: a\n    mac: zz\n', source: 'n.yaml' })
  t.same(imp.json().error.details, [{ where: 'n.yaml:3', message: "nodes[0].mac: invalid MAC address 'zz'", code: 'INVALID_MAC' }])

  const raw = await f.app.inject({ method: 'POST', url: '/api/v1/groups', headers: { authorization: `Bearer ${f.tokens.admin}`, 'content-type': 'application/json' }, payload: '{"name": ' })
  t.equal(raw.statusCode, 400)
  t.equal(raw.json().error.code, 'BAD_REQUEST')
  const big = await f.app.inject({ method: 'POST', url: '/api/v1/groups', headers: { authorization: `Bearer ${f.tokens.admin}`, 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'x', description: 'y'.repeat(2 << 20) }) })
  t.equal(big.statusCode, 413)
  t.equal(big.json().error.code, 'PAYLOAD_TOO_LARGE')
  const xml = await f.app.inject({ method: 'POST', url: '/api/v1/groups', headers: { authorization: `Bearer ${f.tokens.admin}`, 'content-type': 'application/xml' }, payload: '<a/>' })
  t.equal(xml.statusCode, 415)
  t.equal(xml.json().error.code, 'UNSUPPORTED_MEDIA_TYPE')
  t.equal((await f.store.listNodes()).length, 0, 'nothing was written by any refused request')
})

t.test('health and metrics', async (t) => {
  const f = await adminFixture(t)
  t.same((await f.call({}, 'GET', '/healthz')).json(), { status: 'ok' })
  await f.call({}, 'GET', '/api/v1/nodes')
  const m = await f.call({}, 'GET', '/metrics')
  t.equal(m.statusCode, 200)
  t.match(m.body, /netboot_admin_auth_failures_total\{reason="missing"\} 1/)
  t.match(m.body, /netboot_http_requests_total\{server="admin",route="\/api\/v1\/nodes",method="GET",status="401"\} 1/)
})
