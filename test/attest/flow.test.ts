/**
 * The attestation protocol end to end: an agent made of tpm2-tools on swtpm (EK
 * certificate from a local CA) enrolls, attests and gets a node token from the
 * node HTTP server; then the attack table, each row refused with its code and
 * an audit entry.
 */
import { X509Certificate, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import t, { type Test } from 'tap'
import { AttestationService, type AttestationConfig } from '../../server/attest/service.js'
import { buildNodeApp } from '../../server/http/node/app.js'
import { createMetrics } from '../../server/metrics.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { KeyRing } from '../../server/tokens/keys.js'
import { NodeTokens } from '../../server/tokens/node-token.js'
import { PROTOBUF_CONTENT_TYPE } from '../../proto/index.js'
import { tempDir } from '../helpers/tmp.js'
import { freePort, netboot, startServe } from '../helpers/cli.js'
import { startSwtpm, type Swtpm } from './swtpm-harness.js'
import { attestOnce, bootKey, dpop, makeKeys, type Keys, type Post } from './tools-agent.js'
import { flipByte, REFERENCE } from './helpers.js'

const MAC = '02:00:00:00:10:01'
const OTHER = '02:00:00:00:10:02'
const PUBLIC_URL = 'http://netboot.test:8080'
const system = { kind: 'system' as const, id: 'test' }

let tpm: Swtpm
let keys: Keys
t.before(async () => {
  tpm = await startSwtpm()
  keys = await makeKeys(tpm)
})
t.teardown(async () => { await tpm?.stop() })

interface Env { app: FastifyInstance; store: SqliteStore; post: Post; tokens: NodeTokens }

async function env (t: Test, cfg: Partial<AttestationConfig> = {}): Promise<Env> {
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  await store.createGroup('compute', '', system)
  await store.createNode({ name: 'nid001', groups: ['compute'], interfaces: [{ mac: MAC, ip: '10.0.0.1' }] }, system)
  await store.createNode({ name: 'nid002', groups: ['compute'], interfaces: [{ mac: OTHER, ip: '10.0.0.2' }] }, system)
  const ring = await KeyRing.open({ dir: join(dir, 'keys'), rotateAfterMs: 30 * 86_400_000, maxTokenTtlMs: 900_000 })
  const tokens = new NodeTokens(ring, PUBLIC_URL, 900)
  const log = pino({ level: 'silent' })
  const service = new AttestationService({
    enrollment: 'tofu', requireEkCert: false,
    anchors: [new X509Certificate(readFileSync(tpm.issuerCert)), new X509Certificate(readFileSync(tpm.rootCert))],
    pcrs: [0, 1, 2, 3, 4, 5, 6, 7], bank: 'sha256', pcrPolicy: 'learn', discover: true, sessionTtlMs: 60_000, maxSessions: 100, ...cfg,
  }, store, tokens, log)
  const app = await buildNodeApp({ store, log, metrics: createMetrics({ processMetrics: false }), bodyLimit: 1 << 20, attestation: { service, keys: ring, tokens, publicUrl: PUBLIC_URL } })
  t.teardown(async () => { await app.close(); await store.close() })
  const post: Post = async (path, body) => {
    const r = await app.inject({ method: 'POST', url: path, headers: { 'content-type': PROTOBUF_CONTENT_TYPE }, payload: Buffer.from(body) })
    return { status: r.statusCode, body: r.rawPayload, ...(r.statusCode !== 200 ? { json: r.json() } : {}) }
  }
  return { app, store, post, tokens }
}

async function lastAudit (store: SqliteStore, action: string) {
  return (await store.listAudit({ action, limit: 10_000 })).at(-1)
}

t.test('tofu: enroll, attest, token; the token works only with its key, for its node', async (t) => {
  const e = await env(t)
  const key = await bootKey()
  const r = await attestOnce(tpm, keys, e.post, [MAC], key)
  if (!r.ok) throw new Error(`attestation failed at ${r.step}: ${r.code}`)
  t.equal(r.node, 'nid001')
  const ids = await e.store.listTpmIdentities({ node: 'nid001' })
  t.match(ids, [{ state: 'enrolled', policy: 'tofu', decidedBy: 'tofu' }])
  t.ok(ids[0]!.ekCertSha256, 'the EK certificate was kept')
  t.match(await lastAudit(e.store, 'attest.finish'), { outcome: 'ok', target: 'nid001', detail: { policy: 'learned-now', ek: ids[0]!.ekSha256 } })
  t.equal((await e.store.listGoldenPcrs()).length, 8, 'learn mode recorded the first boot’s 8 PCRs')

  const url = `${PUBLIC_URL}/node/v1/nodes/nid001/token`
  const ok = await e.app.inject({ method: 'GET', url: '/node/v1/nodes/nid001/token', headers: { authorization: `DPoP ${r.token}`, dpop: await dpop(key, r.token, 'GET', url) } })
  t.equal(ok.statusCode, 200)
  t.match(ok.json(), { node: 'nid001', groups: ['compute'], attestation: r.attestationId })

  // a second attestation of the same TPM: the EK matches the enrolled one, and the learned values are pending approval
  const again = await attestOnce(tpm, keys, e.post, [MAC], await bootKey())
  t.equal(again.ok, true)
  t.match(await lastAudit(e.store, 'attest.finish'), { outcome: 'ok', detail: { policy: 'learned-pending' } })

  await t.test('the attack table: tokens', async (t) => {
    const rows: [string, Record<string, string>, string, string][] = [
      ['no proof', { authorization: `DPoP ${r.token}` }, 'TOKEN_KEY_PROOF', '/node/v1/nodes/nid001/token'],
      ['no token', {}, 'TOKEN_REQUIRED', '/node/v1/nodes/nid001/token'],
      ['bearer instead of DPoP', { authorization: `Bearer ${r.token}` }, 'TOKEN_REQUIRED', '/node/v1/nodes/nid001/token'],
    ]
    for (const [name, headers, code, path] of rows) {
      const res = await e.app.inject({ method: 'GET', url: path, headers })
      t.equal(res.json().error?.code, code, name)
    }
    const other = await bootKey()
    const stolen = await e.app.inject({ method: 'GET', url: '/node/v1/nodes/nid001/token', headers: { authorization: `DPoP ${r.token}`, dpop: await dpop(other, r.token, 'GET', url) } })
    t.equal(stolen.json().error.code, 'TOKEN_KEY_PROOF', 'a sniffed token with the thief’s own key')
    const proof = await dpop(key, r.token, 'GET', url)
    await e.app.inject({ method: 'GET', url: '/node/v1/nodes/nid001/token', headers: { authorization: `DPoP ${r.token}`, dpop: proof } })
    const replay = await e.app.inject({ method: 'GET', url: '/node/v1/nodes/nid001/token', headers: { authorization: `DPoP ${r.token}`, dpop: proof } })
    t.match(replay.json().error, { code: 'TOKEN_KEY_PROOF', message: /replayed/ }, 'a replayed proof')
    const otherUrl = await e.app.inject({ method: 'GET', url: '/node/v1/nodes/nid001/token', headers: { authorization: `DPoP ${r.token}`, dpop: await dpop(key, r.token, 'GET', `${PUBLIC_URL}/elsewhere`) } })
    t.match(otherUrl.json().error, { code: 'TOKEN_KEY_PROOF', message: /another URL/ })
    const stale = await e.app.inject({ method: 'GET', url: '/node/v1/nodes/nid001/token', headers: { authorization: `DPoP ${r.token}`, dpop: await dpop(key, r.token, 'GET', url, Math.floor(Date.now() / 1000) - 3600) } })
    t.equal(stale.json().error.code, 'TOKEN_KEY_PROOF', 'an old proof')
    const urlB = `${PUBLIC_URL}/node/v1/nodes/nid002/token`
    const wrong = await e.app.inject({ method: 'GET', url: '/node/v1/nodes/nid002/token', headers: { authorization: `DPoP ${r.token}`, dpop: await dpop(key, r.token, 'GET', urlB) } })
    t.equal(wrong.statusCode, 403)
    t.equal(wrong.json().error.code, 'TOKEN_WRONG_NODE', "node A's token for node B's data")
    await t.rejects(e.tokens.verifyRequest(`DPoP ${r.token}`, await dpop(key, r.token, 'GET', url, Math.floor(Date.now() / 1000) + 1000), 'GET', url, Date.now() + 1_000_000), { code: 'TOKEN_EXPIRED' }, 'an expired token')
    const forged = r.token.slice(0, -4) + (r.token.endsWith('AAAA') ? 'BBBB' : 'AAAA')
    const bad = await e.app.inject({ method: 'GET', url: '/node/v1/nodes/nid001/token', headers: { authorization: `DPoP ${forged}`, dpop: await dpop(key, forged, 'GET', url) } })
    t.equal(bad.json().error.code, 'TOKEN_INVALID', 'a token whose signature was altered')
    const refused = await e.store.listAudit({ action: 'token.refused', limit: 100 })
    t.ok(refused.length >= 8, 'every token refusal is audited')
    t.match(refused.find((x) => x.detail.reason === 'TOKEN_WRONG_NODE'), { target: 'nid002', outcome: 'denied' })
  })
})

t.test('the attack table: attestation', async (t) => {
  const rows: [string, Partial<AttestationConfig>, (e: Env) => Promise<void>, Parameters<typeof attestOnce>[5], string[], string][] = [
    ['unknown EK (pre-enrolled)', { enrollment: 'pre-enrolled' }, async () => {}, {}, [MAC], 'ATTEST_UNKNOWN_EK'],
    ['EK certificate from an untrusted CA', { enrollment: 'strict', anchors: [] }, async () => {}, {}, [MAC], 'ATTEST_EK_UNTRUSTED'],
    ['EK certificate of another key', { enrollment: 'strict' }, async () => {}, { ekCert: readFileSync(tpm.issuerCert) }, [MAC], 'ATTEST_EK_UNTRUSTED'],
    ['EK differs from the enrolled one', {}, async (e) => {
      await e.store.addTpmIdentity({ node: 'nid001', ekSha256: 'ab'.repeat(32), policy: 'tofu', state: 'enrolled', macs: [MAC] }, { actor: system, action: 'enroll.add' })
    }, {}, [MAC], 'ATTEST_EK_MISMATCH'],
    ['AK without restricted/fixedTPM', {}, async () => {}, { akPublic: clearAttributes(keysNow().akPublic) }, [MAC], 'ATTEST_AK_ATTRIBUTES'],
    ['wrong credential secret', {}, async () => {}, { credential: (c) => flipByte(c, 0) }, [MAC], 'ATTEST_BAD_CREDENTIAL'],
    ['quote over another nonce', {}, async () => {}, { quoteNonce: () => randomBytes(32) }, [MAC], 'ATTEST_NONCE_MISMATCH'],
    ['tampered quote bytes', {}, async () => {}, { attest: (a) => flipByte(a, a.length - 40) }, [MAC], 'ATTEST_BAD_QUOTE'],
    ['PCR values that do not match the digest', {}, async () => {}, { pcrs: (p) => new Map([...p].map(([i, v]) => [i, i === 7 ? flipByte(v, 0) : v])) }, [MAC], 'ATTEST_PCR_MISMATCH'],
    ['an event log that does not replay', {}, async () => {}, { eventLog: readFileSync(join(REFERENCE, 'ubuntu2104.evlog')) }, [MAC], 'ATTEST_EVENTLOG_MISMATCH'],
    ['PCRs outside policy', { pcrPolicy: 'enforce' }, async (e) => {
      await e.store.putGoldenPcrs([0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ scope: 'node', target: 'nid001', bank: 'sha256', pcr, value: 'ff'.repeat(32), state: 'approved', source: 'test' })), { actor: system, action: 'pcr.approve' })
    }, {}, [MAC], 'ATTEST_POLICY_VIOLATION'],
    ['no approved values under enforce', { pcrPolicy: 'enforce' }, async () => {}, {}, [MAC], 'ATTEST_POLICY_VIOLATION'],
    ['strict enrollment awaits an admin', { enrollment: 'strict' }, async () => {}, {}, [MAC], 'ATTEST_PENDING'],
    ['unknown hardware goes to discovery', {}, async () => {}, {}, ['02:00:00:00:99:99'], 'ATTEST_UNKNOWN_NODE'],
  ]
  for (const [name, cfg, prepare, tamper, macs, code] of rows) {
    await t.test(name, async (t) => {
      const e = await env(t, cfg)
      await prepare(e)
      const before = (await e.store.listAudit({ limit: 10_000 })).length
      const r = await attestOnce(tpm, keys, e.post, macs, await bootKey(), tamper)
      t.match(r, { ok: false, code }, `refused with ${code}`)
      const entries = (await e.store.listAudit({ afterSeq: before, limit: 100 })).filter((x) => x.outcome === 'denied')
      t.ok(entries.some((x) => x.detail.reason === code), 'and audited with the reason')
      t.notOk((await e.store.listAudit({ action: 'attest.finish', limit: 100 })).some((x) => x.outcome === 'ok'), 'no token was issued')
    })
  }

  await t.test('a replayed nonce (a finished session used again)', async (t) => {
    const e = await env(t)
    const r = await attestOnce(tpm, keys, e.post, [MAC], await bootKey())
    if (!r.ok) throw new Error(r.code)
    const again = await e.post('/attest/v1/finish', r.finishBody)
    t.equal(again.json?.error?.code, 'ATTEST_SESSION_UNKNOWN')
    t.match(await lastAudit(e.store, 'attest.finish'), { outcome: 'denied', detail: { reason: 'ATTEST_SESSION_UNKNOWN' } })
  })

  await t.test('strict: an admin accepts the pending TPM, then it attests', async (t) => {
    const e = await env(t, { enrollment: 'strict' })
    t.match(await attestOnce(tpm, keys, e.post, [MAC], await bootKey()), { ok: false, code: 'ATTEST_PENDING' })
    const [pending] = await e.store.listTpmIdentities({ state: 'pending' })
    await e.store.decideTpmIdentity(pending!.id, { state: 'enrolled' }, { kind: 'admin', id: 'x', name: 'alice' })
    t.match(await attestOnce(tpm, keys, e.post, [MAC], await bootKey()), { ok: true, node: 'nid001' })
  })

  await t.test('discovered hardware accepted as a node: its MACs join the node and it attests', async (t) => {
    const e = await env(t)
    const NEW = '02:00:00:00:99:98'
    t.match(await attestOnce(tpm, keys, e.post, [NEW], await bootKey()), { ok: false, code: 'ATTEST_UNKNOWN_NODE' })
    const [found] = await e.store.listTpmIdentities({ state: 'pending' })
    t.same(found?.macs, [NEW])
    await e.store.createNode({ name: 'nid003', groups: [], interfaces: [] }, system)
    const accepted = await e.store.decideTpmIdentity(found!.id, { state: 'enrolled', node: 'nid003' }, { kind: 'admin', id: 'x', name: 'alice' })
    t.equal(accepted.node, 'nid003')
    t.same((await e.store.getNode('nid003'))?.interfaces, [{ mac: NEW }], 'the reported MAC now belongs to the node')
    t.match(await attestOnce(tpm, keys, e.post, [NEW], await bootKey()), { ok: true, node: 'nid003' })
    const audit = await e.store.listAudit({ action: 'enroll.accept' })
    t.same(audit.at(-1)?.detail.macsAdded, [NEW])
  })

  await t.test('malformed messages are refused, not crashed on', async (t) => {
    const e = await env(t)
    for (const body of [Buffer.from([0xff, 0xff, 0xff]), randomBytes(200), Buffer.alloc(0)]) {
      for (const path of ['/attest/v1/start', '/attest/v1/finish']) {
        const r = await e.post(path, body)
        t.equal(r.status, 400, `${path} ${body.length} bytes`)
        t.equal(r.json?.error?.code, 'ATTEST_BAD_REQUEST')
      }
    }
  })
})

function keysNow (): Keys { return keys }

/** The AK's TPM2B_PUBLIC with restricted and fixedTPM cleared (objectAttributes at offset 2+2+2). */
function clearAttributes (pub: Buffer): Buffer {
  const b = Buffer.from(pub)
  const attrs = b.readUInt32BE(6) & ~0x10000 & ~0x2
  b.writeUInt32BE(attrs >>> 0, 6)
  return b
}

t.test('against a running netboot serve: the agent-side script enrolls, attests and gets a token over HTTP', async (t) => {
  const dir = tempDir(t)
  const [adminPort, httpPort] = [await freePort(), await freePort()]
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, `data_dir: ${dir}/data\nadmin: {port: ${adminPort}}\nhttp: {listen: 127.0.0.1, port: ${httpPort}}\nserver: {public_url: 'http://127.0.0.1:${httpPort}'}\ntftp: {enabled: false}\nattestation: {enrollment: tofu, ek_ca: ${tpm.dir}/ca}\n`)
  const store = SqliteStore.open(join(dir, 'data', 'netboot.db'))
  await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: MAC }] }, system)
  await store.close()
  const srv = await startServe(t, ['-c', cfg], `http://127.0.0.1:${adminPort}`)
  const post: Post = async (path, body) => {
    const r = await fetch(`http://127.0.0.1:${httpPort}${path}`, { method: 'POST', headers: { 'content-type': PROTOBUF_CONTENT_TYPE }, body })
    const buf = Buffer.from(await r.arrayBuffer())
    return { status: r.status, body: buf, ...(r.status !== 200 ? { json: JSON.parse(buf.toString()) } : {}) }
  }
  const key = await bootKey()
  const r = await attestOnce(tpm, keys, post, [MAC], key)
  t.match(r, { ok: true, node: 'nid001' })
  if (!r.ok) return
  const url = `http://127.0.0.1:${httpPort}/node/v1/nodes/nid001/token`
  const who = await fetch(url, { headers: { authorization: `DPoP ${r.token}`, dpop: await dpop(key, r.token, 'GET', url) } })
  t.equal(who.status, 200)
  const jwks = await (await fetch(`http://127.0.0.1:${httpPort}/.well-known/jwks.json`)).json() as { keys: { kty: string; crv: string }[] }
  t.match(jwks.keys[0], { kty: 'EC', crv: 'P-256' }, 'the signing key is published')
  srv.proc.kill('SIGTERM')
  t.equal(await srv.exited, 0)
  const audit = await netboot(['-c', cfg, '--json', 'audit', 'list', '--local', '--action', 'attest'])
  t.match(JSON.parse(audit.stdout), [{ action: 'attest.finish', outcome: 'ok', target: 'nid001' }])
  t.equal((await netboot(['-c', cfg, 'audit', 'verify', '--local'])).code, 0)
})
