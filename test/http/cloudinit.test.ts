/**
 * cloud-init through the HTTP servers: payloads set through the admin API, the
 * NoCloud endpoints (by name and by requester address, trusted proxies), the
 * secure endpoint (token + DPoP, JWE to the boot key, audited) and its refusals.
 * What the endpoints serve passes the real `cloud-init schema`.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPairSync } from 'node:crypto'
import { compactDecrypt, type JWK } from 'jose'
import pino from 'pino'
import t, { type Test } from 'tap'
import { parse as parseYaml } from 'yaml'
import { CloudInitService } from '../../server/cloudinit/service.js'
import { validateCloudConfig } from '../../server/cloudinit/validate.js'
import { buildAdminApp } from '../../server/http/admin/app.js'
import { createAdminToken } from '../../server/http/admin/tokens.js'
import { buildNodeApp } from '../../server/http/node/app.js'
import { createMetrics } from '../../server/metrics.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { KeyRing } from '../../server/tokens/keys.js'
import { NodeTokens } from '../../server/tokens/node-token.js'
import { AttestationService } from '../../server/attest/service.js'
import { parseNodesFile } from '../../server/inventory/nodes-file.js'
import { tempDir } from '../helpers/tmp.js'
import { publicJwkOf } from '../attest/helpers.js'
import { dpop } from '../attest/tools-agent.js'

const PUBLIC = 'http://172.16.0.254:8080'
const fixture = (f: string): string => readFileSync(new URL(`../fixtures/cloudinit/bootcamp/${f}`, import.meta.url), 'utf8')
const system = { kind: 'system' as const, id: 'test' }

async function setup (t: Test, trustedProxies: string[] = []) {
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  const log = pino({ level: 'silent' })
  const metrics = createMetrics({ processMetrics: false })
  await store.importNodes(parseNodesFile(readFileSync(new URL('../fixtures/inventory/bootcamp-interfaces.yaml', import.meta.url), 'utf8'), 'b.yaml'), { createGroups: true, source: 'b.yaml' }, system)
  const cloudInit = new CloudInitService(store, { url: PUBLIC, ip: '172.16.0.254' }, log, async () => 'sha256:feed')
  const ring = await KeyRing.open({ dir: join(dir, 'keys'), rotateAfterMs: 86_400_000, maxTokenTtlMs: 900_000 })
  const tokens = new NodeTokens(ring, PUBLIC, 900)
  const service = new AttestationService({ enrollment: 'tofu', requireEkCert: false, anchors: [], pcrs: [0], bank: 'sha256', pcrPolicy: 'off', discover: false, sessionTtlMs: 1000, maxSessions: 10 }, store, tokens, log)
  const admin = await buildAdminApp({ store, log, metrics, bodyLimit: 8 << 20, metricsPublic: true, version: 't', cloudInit })
  const node = await buildNodeApp({ store, log, metrics, bodyLimit: 1 << 20, cloudInit, publicUrl: PUBLIC, trustedProxies, attestation: { service, keys: ring, tokens, publicUrl: PUBLIC } })
  t.teardown(async () => { await admin.close(); await node.close(); await store.close() })
  const operator = (await createAdminToken(store, { name: 'ops', role: 'operator' }, system)).value
  const viewer = (await createAdminToken(store, { name: 'dash', role: 'viewer' }, system)).value
  const put = async (tok: string, body: Record<string, unknown>) => await admin.inject({ method: 'PUT', url: '/api/v1/cloud-init', headers: { authorization: `Bearer ${tok}` }, payload: body })
  return { store, admin, node, tokens, operator, viewer, put }
}

t.test('the bootcamp payloads, as the seed writes them, merged per node on both endpoints', async (t) => {
  const s = await setup(t)
  let r = await s.put(s.operator, { document: fixture('compute.yaml'), source: 'compute.yaml' })
  t.equal(r.statusCode, 200, r.body)
  r = await s.put(s.operator, { document: fixture('nid001.yaml'), source: 'nid001.yaml' })
  t.equal(r.statusCode, 200, r.body)
  r = await s.put(s.viewer, { document: fixture('compute-secure.yaml'), source: 'compute-secure.yaml', secure: true })
  t.equal(r.statusCode, 403, 'a viewer may not store secrets')
  r = await s.put(s.operator, { document: fixture('compute-secure.yaml'), source: 'compute-secure.yaml', secure: true })
  t.equal(r.statusCode, 200, r.body)
  t.same(r.json().stored.map((x: { target: string; scope: string; secure: boolean }) => [x.target, x.scope, x.secure]), [['compute', 'group', true]])

  const get = async (url: string, remoteAddress = '10.9.9.9', headers: Record<string, string> = {}) => await s.node.inject({ method: 'GET', url, remoteAddress, headers })
  const ud2 = await get('/cloud-init/nid002/user-data')
  t.equal(ud2.statusCode, 200)
  t.match(ud2.body, /^#cloud-config\n/)
  t.match(ud2.body, /SLURMD_OPTIONS=--conf-server 172\.16\.0\.254:6817/, 'templates rendered with server facts')
  t.notMatch(ud2.body, /munge\.key/, 'the plain endpoint carries no secure data')
  const md2 = parseYaml((await get('/cloud-init/nid002/meta-data')).body) as Record<string, string>
  t.equal(md2['local-hostname'], 'nid002')
  t.match(md2['instance-id'], /^iid-[0-9a-f]{16}$/)
  const ud1 = (await get('/cloud-init/nid001/user-data')).body
  t.not(ud1, ud2.body, 'nid001 gets its override')

  for (const [url, kind] of [['/cloud-init/nid001/user-data', 'cloud-config'], ['/cloud-init/nid002/user-data', 'cloud-config'], ['/cloud-init/nid002/vendor-data', 'cloud-config']] as const) {
    const doc = parseYaml((await get(url)).body) as object | null
    if (doc === null) continue
    const v = await validateCloudConfig(doc, kind)
    t.ok(v.ok, `${url} passes cloud-init schema${v.ok ? '' : `: ${v.messages.join('; ')}`}`)
  }

  // by requester address: the node is whoever has that IP
  t.equal((await get('/cloud-init/meta-data', '172.16.0.3')).statusCode, 200)
  t.match((await get('/cloud-init/meta-data', '172.16.0.3')).body, /local-hostname: nid003/)
  const stranger = await get('/cloud-init/meta-data', '10.1.1.1')
  t.equal(stranger.statusCode, 404)
  t.equal(stranger.json().error.code, 'CLOUDINIT_NO_NODE')
  const spoof = await get('/cloud-init/meta-data', '10.1.1.1', { 'x-forwarded-for': '172.16.0.3' })
  t.equal(spoof.statusCode, 404, 'X-Forwarded-For from an untrusted peer is ignored')
  const unknownDoc = await get('/cloud-init/nid002/passwords')
  t.equal(unknownDoc.statusCode, 404)

  // the admin view of what a node gets, with the secure part audited
  const shown = await s.admin.inject({ method: 'GET', url: '/api/v1/nodes/nid002/cloud-init?secure=true', headers: { authorization: `Bearer ${s.operator}` } })
  t.match(shown.json().userData, /munge\.key/)
  t.ok((await s.store.listAudit({ action: 'cloudinit.secure.read' })).some((e) => e.target === 'nid002' && e.actor.name === 'ops'))
  const audit = await s.store.listAudit({ action: 'cloudinit.set' })
  t.equal(audit.length, 3)
  t.notMatch(JSON.stringify(audit), /LxBydX4JWv/, 'the audit log never holds secure content')
})

t.test('trusted proxies', async (t) => {
  const s = await setup(t, ['127.0.0.1'])
  await s.put(s.operator, { document: fixture('compute.yaml'), source: 'compute.yaml' })
  const r = await s.node.inject({ method: 'GET', url: '/cloud-init/meta-data', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '172.16.0.5' } })
  t.match(r.body, /local-hostname: nid005/, 'X-Forwarded-For from a trusted proxy names the node')
})

t.test('the secure endpoint: only the attested node, with its key, encrypted to it, audited', async (t) => {
  const s = await setup(t)
  await s.put(s.operator, { document: fixture('compute.yaml'), source: 'compute.yaml' })
  await s.put(s.operator, { document: fixture('compute-secure.yaml'), source: 'compute-secure.yaml', secure: true })
  const key = await bootKeyPair()
  const { token } = await s.tokens.issue({ sub: 'nid001', groups: ['compute'], att: 'att-1', cnf: { jkt: await NodeTokens.thumbprint(key.jwk) } })
  const url = `${PUBLIC}/cloud-init-secure/nid001`
  const ok = await s.node.inject({ method: 'GET', url: '/cloud-init-secure/nid001', headers: { authorization: `DPoP ${token}`, dpop: await dpop(key, token, 'GET', url) } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['content-type'], 'application/jose')
  t.notMatch(ok.body, /munge/, 'the response is ciphertext')
  const plain = JSON.parse(Buffer.from((await compactDecrypt(ok.body, key.privateKey)).plaintext).toString()) as { userData: string; metaData: string }
  t.match(plain.userData, /\/etc\/munge\/munge\.key/)
  t.match(plain.userData, /SLURMD_OPTIONS/, 'plain and secure data merged')
  t.ok((await s.store.listAudit({ action: 'cloudinit.secure.read' })).some((e) => e.target === 'nid001' && e.detail.attestation === 'att-1'))

  const refusals: [string, Record<string, string>, string, number, string][] = [
    ['no token', {}, '/cloud-init-secure/nid001', 401, 'TOKEN_REQUIRED'],
    ['token without its key', { authorization: `DPoP ${token}` }, '/cloud-init-secure/nid001', 401, 'TOKEN_KEY_PROOF'],
    ["nid001's token for nid002's data", { authorization: `DPoP ${token}`, dpop: await dpop(key, token, 'GET', `${PUBLIC}/cloud-init-secure/nid002`) }, '/cloud-init-secure/nid002', 403, 'TOKEN_WRONG_NODE'],
  ]
  const old = await s.tokens.issue({ sub: 'nid001', groups: [], att: 'att-0', cnf: { jkt: await NodeTokens.thumbprint(key.jwk) } }, Date.now() - 7_200_000)
  refusals.push(['an expired token', { authorization: `DPoP ${old.token}`, dpop: await dpop(key, old.token, 'GET', url) }, '/cloud-init-secure/nid001', 401, 'TOKEN_EXPIRED'])
  for (const [name, headers, path, status, code] of refusals) {
    const r = await s.node.inject({ method: 'GET', url: path, headers })
    t.equal(r.statusCode, status, name)
    t.equal(r.json().error.code, code, name)
    t.notMatch(r.body, /munge/, 'nothing secret in the refusal')
  }
  const refused = await s.store.listAudit({ action: 'token.refused' })
  t.same(refused.map((e) => e.detail.reason), ['TOKEN_REQUIRED', 'TOKEN_KEY_PROOF', 'TOKEN_WRONG_NODE', 'TOKEN_EXPIRED'], 'every refusal audited')
})

t.test('bad payloads are refused with the line, and nothing is stored', async (t) => {
  const s = await setup(t)
  const cases: [string, RegExp][] = [
    ['name: compute\ncloud-init:\n  userdata: [1, 2\n', /YAML|line/i],
    ['name: nosuch\ncloud-init:\n  userdata: {runcmd: [ls]}\n', /neither a group nor a node/],
    ['name: compute\ncloud-init:\n  userdata: {runcmd: 3}\n', /cloud-init schema/],
    ['name: compute\ncloud-init:\n  userdata: "#!/bin/sh\\necho hi"\n', /cloud-config|script/i],
  ]
  for (const [doc, why] of cases) {
    const r = await s.put(s.operator, { document: doc, source: 'bad.yaml' })
    t.equal(r.statusCode, 400, doc.split('\n')[1] ?? doc)
    t.equal(r.json().error.code, 'CLOUDINIT_INVALID')
    t.match(JSON.stringify(r.json().error), why)
  }
  t.equal((await s.store.listCloudInit()).length, 0)
})

/** The agent's boot key: one P-256 key that signs DPoP proofs (ES256) and receives JWEs (ECDH-ES). */
async function bootKeyPair () {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicJwkOf(publicKey) as JWK
  return { jwk, privateKey, bytes: Buffer.from(JSON.stringify(jwk)) }
}
