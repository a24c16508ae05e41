/**
 * The node server's fast path (server/http/node/fast.ts) over real sockets on
 * loopback, side by side with fastify's own routes (inject() reaches fastify, a
 * socket reaches the fast path first): the same statuses, catalogue bodies and
 * headers, the same metrics labels, the same request log lines (the boot timeline
 * reads them), the same client address with and without trusted proxies, a full
 * attestation with a software TPM, and hostile input (bodies over the limit, slow
 * and aborted bodies, absurd URLs, unknown methods, wrong content types, pipelined
 * requests while the server closes).
 */
import { connect, type Socket } from 'node:net'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { attest, PROTOBUF_CONTENT_TYPE } from '../../proto/index.js'
import { MAX_ATTEST_BODY } from '../../server/attest/wire.js'
import { AttestationService } from '../../server/attest/service.js'
import { buildNodeApp, fastPathOf } from '../../server/http/node/app.js'
import { clientAddress } from '../../server/http/node/fast.js'
import { createMetrics, type Metrics } from '../../server/metrics.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { BlobStore } from '../../server/images/blobs.js'
import { BootService } from '../../server/boot/service.js'
import { IpxeScripts } from '../../server/boot/script.js'
import { KeyRing } from '../../server/tokens/keys.js'
import { NodeTokens } from '../../server/tokens/node-token.js'
import { SoftTpm } from '../sim/soft-tpm.js'
import { bootTimeline } from '../e2e/timeline.js'
import { tempDir } from '../helpers/tmp.js'
import { publicJwkOf } from '../attest/helpers.js'

const system = { kind: 'system' as const, id: 'test' }
const PUBLIC = 'http://10.0.0.1:8080'
const MAC = '02:00:00:00:10:01'
const LOOP = '127.0.0.1'

interface Env {
  app: FastifyInstance
  port: number
  store: SqliteStore
  metrics: Metrics
  lines: Record<string, unknown>[]
}

async function setup (t: Test, o: { level?: 'info' | 'debug'; trustedProxies?: string[]; bodyTimeoutMs?: number } = {}): Promise<Env> {
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  const blobs = new BlobStore(join(dir, 'images'))
  await blobs.init()
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({ write (chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>); cb() } })
  const log = pino({ level: o.level ?? 'info' }, sink)
  const metrics = createMetrics({ processMetrics: false })
  const boot = new BootService(store, await IpxeScripts.load(), { publicUrl: PUBLIC, unknown: { action: 'reboot' } }, log)
  const ring = await KeyRing.open({ dir: join(dir, 'keys'), rotateAfterMs: 86_400_000, maxTokenTtlMs: 900_000 })
  const tokens = new NodeTokens(ring, PUBLIC, 900)
  const service = new AttestationService({
    enrollment: 'tofu', requireEkCert: false, anchors: [], pcrs: [0, 1, 2, 3, 4, 5, 6, 7], bank: 'sha256', pcrPolicy: 'off',
    discover: false, sessionTtlMs: 60_000, maxSessions: 100,
  }, store, tokens, log)
  const app = await buildNodeApp({
    store, log, metrics, bodyLimit: 1 << 20, publicUrl: PUBLIC,
    boot: { boot, blobs, ipxeDir: '/usr/lib/ipxe' },
    attestation: { service, keys: ring, tokens, publicUrl: PUBLIC },
    ...(o.trustedProxies !== undefined ? { trustedProxies: o.trustedProxies } : {}),
    ...(o.bodyTimeoutMs !== undefined ? { attestBodyTimeoutMs: o.bodyTimeoutMs } : {}),
  })
  await app.listen({ host: LOOP, port: 0 })
  t.teardown(async () => { await app.close(); await store.close() })
  await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: MAC, ip: '10.0.0.11' }] }, system)
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { app, port: address.port, store, metrics, lines }
}

interface Res { status: number; headers: Record<string, string>; body: Buffer }

/** Reads HTTP/1.1 responses off `data` (Content-Length framed, as netboot's are); `head` marks HEAD requests in order. */
function parseResponses (data: Buffer, head: boolean[] = []): Res[] {
  const out: Res[] = []
  let off = 0
  while (off < data.length) {
    const end = data.indexOf('\r\n\r\n', off)
    if (end < 0) break
    const [statusLine, ...hl] = data.subarray(off, end).toString('latin1').split('\r\n')
    const headers: Record<string, string> = {}
    for (const h of hl) { const i = h.indexOf(':'); headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim() }
    const len = head[out.length] === true ? 0 : Number(headers['content-length'] ?? 0)
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body: data.subarray(end + 4, end + 4 + len) })
    off = end + 4 + len
  }
  return out
}

/** Opens a socket, writes `data`, and collects what comes back until the server closes or `ms` pass. */
async function raw (port: number, data: Buffer | string, ms = 5000): Promise<{ data: Buffer; closedByServer: boolean }> {
  return await new Promise((resolve, reject) => {
    const s = connect(port, LOOP)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { s.destroy(); resolve({ data: Buffer.concat(chunks), closedByServer: false }) }, ms)
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('end', () => { clearTimeout(timer); s.destroy(); resolve({ data: Buffer.concat(chunks), closedByServer: true }) })
    s.on('error', (e) => { clearTimeout(timer); reject(e) })
    s.write(data)
  })
}

async function request (port: number, method: string, url: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Res> {
  const h = { host: `${LOOP}:${port}`, connection: 'close', ...(body !== undefined ? { 'content-length': String(body.length) } : {}), ...headers }
  const head = `${method} ${url} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
  const r = await raw(port, body !== undefined ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : head)
  const res = parseResponses(r.data, [method === 'HEAD'])
  if (res.length !== 1) throw new Error(`${method} ${url}: ${res.length} responses in ${JSON.stringify(r.data.toString('latin1').slice(0, 300))}`)
  return res[0]!
}

const tick = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

/** What must be equal between the two paths: status, body, and the headers a client acts on. */
function view (r: { status: number; headers: Record<string, unknown>; body: Buffer }): Record<string, unknown> {
  const h = (k: string): unknown => r.headers[k] === undefined ? undefined : String(r.headers[k])
  return { status: r.status, body: r.body.toString('latin1'), type: h('content-type'), length: h('content-length'), cache: h('cache-control') }
}

t.test('the same answers as fastify, and which path gave them', async (t) => {
  const e = await setup(t)
  const fast = fastPathOf(e.app)!
  const garbage = Buffer.from([0xff, 0xff, 0xff, 0x01])
  const cases: { method: string; url: string; headers?: Record<string, string>; body?: Buffer; fast: boolean; status: number; code?: string }[] = [
    { method: 'GET', url: `/boot/${MAC}`, fast: true, status: 200 },
    { method: 'GET', url: '/boot/02-00-00-00-10-01.ipxe', fast: true, status: 200 },
    { method: 'GET', url: `/boot/${MAC}?x=1`, fast: true, status: 200 },
    { method: 'HEAD', url: `/boot/${MAC}`, fast: true, status: 200 },
    { method: 'GET', url: '/boot/02:00:00:00:99:99', fast: true, status: 200 },
    { method: 'GET', url: '/boot/not-a-mac', fast: true, status: 400, code: 'INVALID_MAC' },
    { method: 'HEAD', url: '/boot/not-a-mac', fast: true, status: 400 },
    { method: 'GET', url: '/boot/02%3A00%3A00%3A00%3A10%3A01', fast: false, status: 200 },
    { method: 'GET', url: '/boot/<script>', fast: false, status: 400, code: 'INVALID_MAC' },
    { method: 'GET', url: '/boot/', fast: false, status: 400, code: 'INVALID_MAC' },
    { method: 'GET', url: '/boot/a/b', fast: false, status: 404, code: 'NOT_FOUND' },
    // past find-my-way's maxParamLength (100): fastify's own 414, not a catalogue body (as before the fast path)
    { method: 'GET', url: `/boot/${'a'.repeat(101)}`, fast: false, status: 414 },
    { method: 'GET', url: `/boot/${'%41'.repeat(2000)}`, fast: false, status: 414 },
    { method: 'POST', url: `/boot/${MAC}`, fast: false, status: 404, code: 'NOT_FOUND' },
    { method: 'DELETE', url: `/boot/${MAC}`, fast: false, status: 404, code: 'NOT_FOUND' },
    { method: 'POST', url: '/attest/v1/start', headers: { 'content-type': PROTOBUF_CONTENT_TYPE }, body: garbage, fast: true, status: 400, code: 'ATTEST_BAD_REQUEST' },
    { method: 'POST', url: '/attest/v1/finish', headers: { 'content-type': PROTOBUF_CONTENT_TYPE }, body: garbage, fast: true, status: 400, code: 'ATTEST_BAD_REQUEST' },
    { method: 'POST', url: '/attest/v1/start', headers: { 'content-type': PROTOBUF_CONTENT_TYPE }, body: Buffer.alloc(0), fast: true, status: 400, code: 'ATTEST_BAD_REQUEST' },
    { method: 'POST', url: '/attest/v1/start', headers: { 'content-type': 'application/octet-stream' }, body: garbage, fast: false, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    // fastify parses text/plain itself; the route refuses the media type all the same
    { method: 'POST', url: '/attest/v1/start', headers: { 'content-type': 'text/plain' }, body: garbage, fast: false, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { method: 'POST', url: '/attest/v1/finish', headers: { 'content-type': 'application/json' }, body: Buffer.from('{}'), fast: false, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { method: 'POST', url: '/attest/v1/start', headers: { 'content-type': 'APPLICATION/X-PROTOBUF' }, body: garbage, fast: false, status: 400, code: 'ATTEST_BAD_REQUEST' },
    { method: 'POST', url: '/attest/v1/start?x=1', headers: { 'content-type': PROTOBUF_CONTENT_TYPE }, body: garbage, fast: false, status: 400, code: 'ATTEST_BAD_REQUEST' },
    { method: 'GET', url: '/attest/v1/start', fast: false, status: 404, code: 'NOT_FOUND' },
    { method: 'PUT', url: '/attest/v1/finish', headers: { 'content-type': PROTOBUF_CONTENT_TYPE }, body: garbage, fast: false, status: 404, code: 'NOT_FOUND' },
  ]
  for (const c of cases) {
    const name = `${c.method} ${c.url.slice(0, 60)}${c.headers?.['content-type'] !== undefined ? ` (${c.headers['content-type']})` : ''}`
    const before = { ...fast.stats }
    const viaSocket = await request(e.port, c.method, c.url, c.headers, c.body)
    t.equal(fast.stats.fast - before.fast, c.fast ? 1 : 0, `${name}: ${c.fast ? 'the fast path' : 'fastify'} answered`)
    const viaInject = await e.app.inject({ method: c.method as 'GET', url: c.url, ...(c.headers !== undefined ? { headers: c.headers } : {}), ...(c.body !== undefined ? { payload: c.body } : {}) })
    t.equal(viaSocket.status, c.status, `${name}: status`)
    t.same(view(viaSocket), view({ status: viaInject.statusCode, headers: viaInject.headers, body: viaInject.rawPayload }), `${name}: what fastify answers`)
    t.ok(viaSocket.headers['content-length'] !== undefined, `${name}: Content-Length`)
    if (c.code !== undefined && c.method !== 'HEAD') t.equal((JSON.parse(viaSocket.body.toString()) as { error: { code: string } }).error.code, c.code, `${name}: ${c.code}`)
    if (c.method === 'HEAD') t.equal(viaSocket.body.length, 0, `${name}: no body`)
  }
  const script = await request(e.port, 'GET', `/boot/${MAC}`)
  t.equal(script.headers['cache-control'], 'no-store')
  t.equal(script.headers['content-type'], 'text/plain; charset=utf-8')
  t.match(script.body.toString(), /^#!ipxe/)
  t.equal(Number(script.headers['content-length']), script.body.length)
})

t.test('cached scripts: answered again from the cache, replaced as soon as the inventory changes', async (t) => {
  const e = await setup(t)
  const mac = '02:00:00:00:99:01'
  const first = await request(e.port, 'GET', `/boot/${mac}`)
  const again = await request(e.port, 'GET', `/boot/${mac}`)
  t.equal(again.body.toString(), first.body.toString())
  t.notMatch(first.body.toString(), /nid009/)
  await tick()
  t.equal(e.lines.filter((l) => l.msg === 'boot: script served' && l.mac === mac).length, 2, 'an unknown MAC is logged at info on every request, cached or not')
  await e.store.createNode({ name: 'nid009', groups: [], interfaces: [{ mac, ip: '10.0.0.19' }] }, system)
  const changed = await request(e.port, 'GET', `/boot/${mac}`)
  t.match(changed.body.toString(), /nid009/, 'the new node\'s script, not the cached one')
  t.equal(changed.body.toString(), (await e.app.inject({ method: 'GET', url: `/boot/${mac}` })).body, 'what fastify answers')
  t.equal(Number(changed.headers['content-length']), changed.body.length)
})

t.test('a server failure: 500 INTERNAL as fastify answers it, the error in the log and not in the body', async (t) => {
  const e = await setup(t)
  await e.store.close() // a real fault: the database is gone
  const viaSocket = await request(e.port, 'GET', '/boot/02:00:00:00:77:77')
  const viaInject = await e.app.inject({ method: 'GET', url: '/boot/02:00:00:00:77:78' })
  t.equal(viaSocket.status, 500)
  t.same(view(viaSocket), view({ status: viaInject.statusCode, headers: viaInject.headers, body: viaInject.rawPayload }), 'what fastify answers')
  t.same(JSON.parse(viaSocket.body.toString()), { error: { code: 'INTERNAL', message: 'internal error' } }, 'no stack, no message from inside')
  await tick()
  const failed = e.lines.filter((l) => l.msg === 'request failed' && l.level === 50)
  t.equal(failed.length, 2, 'both paths log the failure at error')
  t.match(failed[0], { reqId: /^req-/, err: { stack: /\n\s+at / } }, 'with its stack, in the log')
})

t.test('metrics: the labels fastify uses, counted once per request', async (t) => {
  const e = await setup(t)
  const count = async (labels: Record<string, string>): Promise<number> =>
    (await e.metrics.httpRequests.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k as 'route'] === x)).reduce((a, v) => a + v.value, 0)
  await request(e.port, 'GET', `/boot/${MAC}`)
  await request(e.port, 'HEAD', `/boot/${MAC}`)
  await request(e.port, 'GET', '/boot/nonsense')
  await request(e.port, 'POST', '/attest/v1/start', { 'content-type': PROTOBUF_CONTENT_TYPE }, Buffer.from([0xff]))
  t.equal(await count({ server: 'node', route: '/boot/:mac', method: 'GET', status: '200' }), 1)
  t.equal(await count({ server: 'node', route: '/boot/:mac', method: 'HEAD', status: '200' }), 1)
  t.equal(await count({ server: 'node', route: '/boot/:mac', method: 'GET', status: '400' }), 1)
  t.equal(await count({ server: 'node', route: '/attest/v1/start', method: 'POST', status: '400' }), 1)
  // fastify's own route for the same request adds to the same series
  await e.app.inject({ method: 'GET', url: `/boot/${MAC}` })
  t.equal(await count({ server: 'node', route: '/boot/:mac', method: 'GET', status: '200' }), 2, 'inject (fastify) counts under the same labels')
  const h = (await e.metrics.httpDuration.get()).values.find((v) => v.metricName === 'netboot_http_request_duration_seconds_count' && v.labels.route === '/boot/:mac')
  t.equal(h?.value, 4, 'durations observed for the three socket requests and the inject')
})

t.test('request log lines: the shape fastify writes, read by the boot timeline', async (t) => {
  const e = await setup(t)
  const viaSocket = await request(e.port, 'GET', `/boot/${MAC}`)
  t.equal(viaSocket.status, 200)
  await e.app.inject({ method: 'GET', url: `/boot/${MAC}`, remoteAddress: LOOP, headers: { host: `${LOOP}:${e.port}` } })
  await tick()
  const incoming = e.lines.filter((l) => l.msg === 'incoming request')
  t.equal(incoming.length, 2)
  const [a, b] = incoming as [Record<string, unknown>, Record<string, unknown>]
  const strip = (l: Record<string, unknown>): unknown => ({ ...l, time: 0, reqId: 0, req: { ...(l.req as object), remotePort: 0 } })
  t.same(strip(a), strip(b), 'the fast path\'s incoming request line is fastify\'s, field for field')
  t.match(a, { server: 'node', req: { method: 'GET', url: `/boot/${MAC}`, remoteAddress: LOOP, host: `${LOOP}:${e.port}` } })
  t.not(a.reqId, b.reqId, 'one request id counter for both paths')
  const completed = e.lines.filter((l) => l.msg === 'request completed')
  t.same(completed.map((l) => [l.reqId, (l.res as { statusCode: number }).statusCode]), [[a.reqId, 200], [b.reqId, 200]])
  t.same(Object.keys(completed[0]!).sort(), Object.keys(completed[1]!).sort(), 'the same fields on request completed')
  t.ok(e.lines.some((l) => l.msg === 'boot: script served' && l.reqId === a.reqId && l.node === 'nid001' && l.kind === 'reboot'), 'the route\'s own line carries the request id')

  const tl = bootTimeline(e.lines.map((l) => ({ ...l, time: Number(l.time), msg: String(l.msg) })), { mac: MAC, ip: LOOP, kernelSha256: '0'.repeat(64), initrdSha256: '1'.repeat(64), viaTftp: false })
  t.match(tl.steps.find((s) => s.name === 'script')?.detail, `GET /boot/${MAC} → 200`, 'the timeline finds the script step')

  const refused = await request(e.port, 'GET', '/boot/nonsense')
  t.equal(refused.status, 400)
  await tick()
  t.ok(e.lines.some((l) => l.msg === 'request refused' && l.code === 'INVALID_MAC' && l.level === 30 && typeof l.reqId === 'string'), 'a refusal at info with its code and request id')
  t.notOk(e.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('at ') && l.level === 50), 'no error line for a refusal')

  const n = e.lines.length
  await request(e.port, 'POST', '/attest/v1/start', { 'content-type': PROTOBUF_CONTENT_TYPE }, Buffer.from([0xff]))
  await tick()
  t.notOk(e.lines.slice(n).some((l) => l.msg === 'incoming request' || l.msg === 'request completed'), '/attest/ request lines are debug only')
  t.ok(e.lines.slice(n).some((l) => l.msg === 'request refused' && l.code === 'ATTEST_BAD_REQUEST'), 'its refusal is logged')
})

t.test('at debug, /attest/ request lines are written', async (t) => {
  const e = await setup(t, { level: 'debug' })
  await request(e.port, 'POST', '/attest/v1/finish', { 'content-type': PROTOBUF_CONTENT_TYPE }, Buffer.from([0xff]))
  await tick()
  t.ok(e.lines.some((l) => l.msg === 'incoming request' && (l.req as { url: string }).url === '/attest/v1/finish'))
  t.ok(e.lines.some((l) => l.msg === 'request completed' && (l.res as { statusCode: number }).statusCode === 400))
})

t.test('the client address is fastify\'s req.ip, X-Forwarded-For only from trusted proxies', async (t) => {
  // the oracle: fastify itself, through inject() with a given peer, logs req.ip as remoteAddress
  const oracle = async (trusted: string[], peer: string, xff: string | undefined, xfh?: string): Promise<{ ip: unknown; host: unknown }> => {
    const lines: Record<string, unknown>[] = []
    const log = pino({ level: 'info' }, new Writable({ write (c: Buffer, _e, cb) { for (const l of c.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>); cb() } }))
    const dir = tempDir(t)
    const store = SqliteStore.open(join(dir, 'n.db'))
    const app = await buildNodeApp({ store, log, metrics: createMetrics({ processMetrics: false }), bodyLimit: 1024, trustedProxies: trusted, boot: { boot: new BootService(store, await IpxeScripts.load(), { publicUrl: PUBLIC, unknown: { action: 'reboot' } }, log), blobs: new BlobStore(join(dir, 'b')), ipxeDir: dir } })
    await app.inject({ method: 'GET', url: '/ipxe/none', remoteAddress: peer, headers: { host: 'h', ...(xff !== undefined ? { 'x-forwarded-for': xff } : {}), ...(xfh !== undefined ? { 'x-forwarded-host': xfh } : {}) } })
    await app.close(); await store.close()
    const req = lines.find((l) => l.msg === 'incoming request')!.req as { remoteAddress: unknown; host: unknown }
    return { ip: req.remoteAddress, host: req.host }
  }
  const rows: [string[], string, string | undefined][] = [
    [[], '10.0.0.5', '10.1.1.1'],
    [['127.0.0.1'], '127.0.0.1', undefined],
    [['127.0.0.1'], '127.0.0.1', '10.1.1.1'],
    [['127.0.0.1'], '127.0.0.1', '10.1.1.1, 10.2.2.2'],
    [['127.0.0.1', '10.2.2.2'], '127.0.0.1', '10.1.1.1, 10.2.2.2'],
    [['127.0.0.1', '10.2.2.2', '10.1.1.1'], '127.0.0.1', '10.1.1.1, 10.2.2.2'],
    [['127.0.0.1'], '127.0.0.1', ' , 10.3.3.3 ,, '],
    [['127.0.0.1'], '127.0.0.1', 'not-an-address'],
    [['127.0.0.1'], '127.0.0.1', ''],
    [['127.0.0.1'], '::ffff:127.0.0.1', '10.4.4.4'],
    [['10.9.9.9'], '127.0.0.1', '10.1.1.1'],
  ]
  for (const [trusted, peer, xff] of rows) {
    const want = await oracle(trusted, peer, xff)
    t.equal(clientAddress(peer, xff, new Set(trusted)), want.ip, `trusted [${trusted.join(' ')}], peer ${peer}, X-Forwarded-For ${JSON.stringify(xff)}`)
  }

  // and over a socket: the fast path's log line and fastify's agree
  const e = await setup(t, { trustedProxies: [LOOP] })
  for (const xff of ['10.1.1.1', '10.1.1.1, 127.0.0.1', 'junk']) {
    const n = e.lines.length
    await request(e.port, 'GET', `/boot/${MAC}`, { 'x-forwarded-for': xff, 'x-forwarded-host': 'a.example, netboot.example' })
    await request(e.port, 'GET', '/ipxe/none', { 'x-forwarded-for': xff, 'x-forwarded-host': 'a.example, netboot.example' })
    await tick()
    const got = e.lines.slice(n).filter((l) => l.msg === 'incoming request').map((l) => l.req as { remoteAddress: string; host: string })
    t.equal(got.length, 2)
    t.equal(got[0]!.remoteAddress, got[1]!.remoteAddress, `X-Forwarded-For ${xff}: fast path and fastify see the same client`)
    t.equal(got[0]!.host, got[1]!.host, 'and the same host')
    t.equal(got[0]!.host, (await oracle([LOOP], LOOP, xff, 'a.example, netboot.example')).host)
  }
})

t.test('a full attestation over the fast path audits the client behind a trusted proxy', async (t) => {
  const e = await setup(t, { trustedProxies: [LOOP] })
  const tpm = SoftTpm.create({ ek: 'ecc', ak: 'ecc' })
  const post = async (path: string, body: Uint8Array): Promise<Res> =>
    await request(e.port, 'POST', path, { 'content-type': PROTOBUF_CONTENT_TYPE, 'x-forwarded-for': '10.77.0.5' }, Buffer.from(body))
  const before = fastPathOf(e.app)!.stats.fast
  const s = await post('/attest/v1/start', attest.AttestStart.encode({ version: 1, macs: [MAC], ekPublic: tpm.ekPublic, akPublic: tpm.akPublic }).finish())
  t.equal(s.status, 200, s.status === 200 ? 'start answered' : s.body.toString())
  t.equal(s.headers['content-type'], PROTOBUF_CONTENT_TYPE)
  const ch = attest.AttestChallenge.decode(s.body)
  const credential = tpm.activateCredential(ch.credentialBlob, ch.encryptedSecret)
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const { kty, crv, x, y } = publicJwkOf(publicKey)
  const bootKey = Buffer.from(JSON.stringify({ kty, crv, x, y }))
  const q = tpm.quote(createHash('sha256').update(ch.nonce).update(bootKey).digest(), ch.pcrs, 'sha256')
  const f = await post('/attest/v1/finish', attest.AttestFinish.encode({
    session: ch.session, credential, attest: q.attest, signature: q.signature, pcrValues: Object.fromEntries(q.pcrValues), eventLog: tpm.eventLog, bootKey,
  }).finish())
  t.equal(f.status, 200, f.status === 200 ? 'finish answered' : f.body.toString())
  const r = attest.AttestResult.decode(f.body)
  t.equal(r.node, 'nid001')
  t.ok(r.token.length > 0, 'a token')
  t.equal(fastPathOf(e.app)!.stats.fast - before, 2, 'both calls on the fast path')
  const audit = (await e.store.listAudit({ action: 'attest.finish', limit: 10 })).at(-1)
  t.match(audit, { outcome: 'ok', target: 'nid001', detail: { peer: '10.77.0.5' } }, 'the audit names the client, not the proxy')
})

t.test('hostile bodies and connections', async (t) => {
  const e = await setup(t, { bodyTimeoutMs: 400 })
  const head = (extra: string): string => `POST /attest/v1/start HTTP/1.1\r\nhost: x\r\ncontent-type: ${PROTOBUF_CONTENT_TYPE}\r\n${extra}\r\n`

  await t.test('a declared length over the limit: 413 at once, the body never read, the connection closed', async (t) => {
    const r = await raw(e.port, head(`content-length: ${MAX_ATTEST_BODY + 1}\r\n`) + 'x'.repeat(100))
    const [res] = parseResponses(r.data)
    t.equal(res?.status, 413)
    t.equal(res?.headers.connection, 'close')
    t.equal((JSON.parse(res!.body.toString()) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE')
    t.ok(r.closedByServer, 'the server closed the connection')
  })

  await t.test('a chunked body that grows past the limit: 413, reading stops, the connection closes', async (t) => {
    const s: Socket = connect(e.port, LOOP)
    const got: Buffer[] = []
    let closed = false
    let sent = 0
    s.on('data', (c: Buffer) => got.push(c))
    s.on('error', () => { /* the server may reset while we write */ })
    const done = new Promise<void>((resolve) => s.on('close', () => { closed = true; resolve() }))
    s.write(head('transfer-encoding: chunked\r\n'))
    const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 1), Buffer.from('\r\n')])
    // at most 64 MiB and 10 s: the server must stop us long before
    for (let i = 0; i < 1024 && !closed && got.length === 0; i++) {
      if (!s.write(chunk)) await new Promise((resolve) => setTimeout(resolve, 5))
      sent += 0x10000
    }
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 10_000))])
    const [res] = parseResponses(Buffer.concat(got))
    t.equal(res?.status, 413)
    t.ok(closed, 'the connection is closed')
    t.ok(sent < 64 << 20, `the client was stopped after ${sent} bytes`)
    s.destroy()
  })

  await t.test('a body that does not arrive in time: the connection is dropped and logged', async (t) => {
    const t0 = Date.now()
    const r = await raw(e.port, head('content-length: 100\r\n') + 'x'.repeat(10), 5000)
    t.ok(r.closedByServer, 'dropped')
    t.ok(Date.now() - t0 < 4000, `after ${Date.now() - t0} ms`)
    t.equal(r.data.length, 0, 'nothing was answered')
    t.ok(e.lines.some((l) => l.msg === 'request aborted: the body did not arrive in time' && l.received === 10))
  })

  await t.test('a client that goes away mid-body: nothing answered, nothing attested, still serving', async (t) => {
    const before = (await e.store.listAudit({ action: 'attest.start', limit: 1000 })).length
    await new Promise<void>((resolve) => {
      const s = connect(e.port, LOOP, () => { s.write(head('content-length: 1000\r\n') + 'x'.repeat(10)); setTimeout(() => { s.destroy(); resolve() }, 50) })
    })
    for (let i = 0; i < 50 && !e.lines.some((l) => l.msg === 'request aborted: the body was not complete'); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.ok(e.lines.some((l) => l.msg === 'request aborted: the body was not complete'), 'logged')
    t.equal((await e.store.listAudit({ action: 'attest.start', limit: 1000 })).length, before, 'no attestation was started')
    t.equal((await request(e.port, 'GET', `/boot/${MAC}`)).status, 200, 'the server still serves')
  })

  await t.test('keep-alive: pipelined requests on one connection, each answered in order', async (t) => {
    const one = `GET /boot/${MAC} HTTP/1.1\r\nhost: x\r\n\r\n`
    const r = await raw(e.port, one + `HEAD /boot/${MAC} HTTP/1.1\r\nhost: x\r\n\r\n` + `GET /boot/nonsense HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)
    const res = parseResponses(r.data, [false, true, false])
    t.same(res.map((x) => x.status), [200, 200, 400])
    t.equal(res[0]!.headers.connection, 'keep-alive')
    t.equal(res[1]!.body.length, 0)
    t.equal(res[1]!.headers['content-length'], res[0]!.headers['content-length'], 'HEAD has the length of GET')
  })
})

t.test('closing: a request arriving on a busy connection gets fastify\'s 503 and Connection: close', async (t) => {
  const e = await setup(t)
  const s = connect(e.port, LOOP)
  const got: Buffer[] = []
  s.on('data', (c: Buffer) => got.push(c))
  const ended = new Promise<void>((resolve) => s.on('close', () => resolve()))
  await new Promise<void>((resolve) => s.on('connect', () => resolve()))
  // request A is in progress (its body incomplete) when the server starts closing
  s.write(Buffer.from(`POST /attest/v1/start HTTP/1.1\r\nhost: x\r\ncontent-type: ${PROTOBUF_CONTENT_TYPE}\r\ncontent-length: 2\r\n\r\n\xff`, 'latin1'))
  for (let i = 0; i < 100 && fastPathOf(e.app)!.stats.fast === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  const closing = e.app.close()
  await tick()
  // the rest of A and a pipelined B
  s.write(Buffer.from(`\xffGET /boot/${MAC} HTTP/1.1\r\nhost: x\r\n\r\n`, 'latin1'))
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 5000))])
  await closing
  const res = parseResponses(Buffer.concat(got))
  t.same(res.map((r) => r.status), [400, 503], 'A finishes; B is refused while closing')
  t.equal(res[1]?.headers.connection, 'close')
  t.equal(res[1]?.body.toString(), '{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}')
  t.equal(fastPathOf(e.app)!.stats.fast, 1, 'B was handed to fastify')
  s.destroy()
})
