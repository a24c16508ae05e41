// What the attestation throughput work changed (docs/bench-attest.md), checked for
// meaning: golden values looked up by node and image, counters and audit entries
// group-committed, quote signatures checked off the event loop with the same
// verdicts, tokens signed with node:crypto that jose verifies, event logs without the
// quoted bank refused, and replays kept by digest without letting another log by.
import t from 'tap'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pino from 'pino'
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { verifyQuote, verifyQuoteAsync } from '../../server/attest/tpm/quote.js'
import { AttestationService } from '../../server/attest/service.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import type { GoldenPcr } from '../../server/store/store.js'
import { KeyRing } from '../../server/tokens/keys.js'
import { NodeTokens, TOKEN_AUDIENCE } from '../../server/tokens/node-token.js'
import { tempDir } from '../helpers/tmp.js'
import { flipByte, publicJwkOf } from '../attest/helpers.js'
import { bootKey } from '../attest/tools-agent.js'
import { SoftTpm } from './soft-tpm.js'

const system = { kind: 'system' as const, id: 'test' }
const PCRS = [0, 1, 2, 3, 4, 5, 6, 7]

t.test('goldenPcrsFor: the node’s and its image’s values of one bank, nothing else', async (t) => {
  const store = SqliteStore.open(join(tempDir(t), 'n.db'))
  t.teardown(async () => await store.close())
  const row = (scope: 'node' | 'image', target: string, bank: GoldenPcr['bank'], pcr: number): Omit<GoldenPcr, 'createdAt'> =>
    ({ scope, target, bank, pcr, value: createHash(bank).update(`${scope}${target}${pcr}`).digest('hex'), state: 'approved', source: 'test' })
  await store.putGoldenPcrs([
    ...[0, 7].map((p) => row('node', 'nid001', 'sha256', p)),
    row('node', 'nid001', 'sha1', 0),
    row('node', 'nid002', 'sha256', 0),
    ...[0, 4].map((p) => row('image', 'compute@1', 'sha256', p)),
    row('image', 'compute@2', 'sha256', 4),
  ], { actor: system, action: 'pcr.approve' })
  const keys = (g: GoldenPcr[]): string[] => g.map((x) => `${x.scope}:${x.target}:${x.bank}:${x.pcr}`)
  t.same(keys(await store.goldenPcrsFor({ node: 'nid001', image: 'compute@1' }, 'sha256')),
    ['image:compute@1:sha256:0', 'image:compute@1:sha256:4', 'node:nid001:sha256:0', 'node:nid001:sha256:7'])
  t.same(keys(await store.goldenPcrsFor({ node: 'nid001' }, 'sha256')), ['node:nid001:sha256:0', 'node:nid001:sha256:7'], 'no image: the node’s only')
  t.same(keys(await store.goldenPcrsFor({ node: 'nid001' }, 'sha1')), ['node:nid001:sha1:0'])
  t.same(keys(await store.goldenPcrsFor({ node: 'nid009', image: 'compute@2' }, 'sha256')), ['image:compute@2:sha256:4'])
  const all = await store.listGoldenPcrs()
  t.same(await store.goldenPcrsFor({ node: 'nid001', image: 'compute@1' }, 'sha256'),
    all.filter((g) => g.bank === 'sha256' && ((g.scope === 'node' && g.target === 'nid001') || (g.scope === 'image' && g.target === 'compute@1'))),
    'the same rows listGoldenPcrs has')
})

t.test('recordAttestation: counters and audit entries of one turn in one transaction, chain intact', async (t) => {
  const store = SqliteStore.open(join(tempDir(t), 'n.db'))
  t.teardown(async () => await store.close())
  await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: '02:00:00:00:00:01' }] }, system)
  const ids: number[] = []
  for (let i = 0; i < 5; i++) {
    ids.push((await store.addTpmIdentity({ ...(i === 0 ? { node: 'nid001' } : {}), ekSha256: `${i}`.repeat(64), policy: 'tofu', state: 'pending', macs: [] }, { actor: system, action: 'enroll.add' })).id)
  }
  const before = (await store.listAudit({ limit: 10_000 })).length
  const entries = await Promise.all(ids.map(async (id, i) => await store.recordAttestation(id, { resetCount: 10 + i, restartCount: i },
    { actor: { kind: 'node', id: `n${i}` }, action: 'attest.finish', target: `n${i}`, outcome: 'ok', detail: { i } })))
  t.same(entries.map((e) => e.seq), ids.map((_, i) => before + 1 + i), 'consecutive entries, in call order')
  t.same(entries.map((e) => e.detail), ids.map((_, i) => ({ i })))
  for (const [i, id] of ids.entries()) t.match(await store.getTpmIdentity(id), { resetCount: 10 + i, restartCount: i, lastAttestedAt: /^\d{4}-/ })
  t.match(await store.verifyAudit(), { ok: true, entries: before + ids.length })

  // a batch fails as a whole: nothing of it is written
  const broken = store.recordAttestation(ids[0]!, { resetCount: 99, restartCount: 0 }, { actor: system, action: 'attest.finish', detail: { bad: 1n } as never })
  const fine = store.recordAttestation(ids[1]!, { resetCount: 99, restartCount: 0 }, { actor: system, action: 'attest.finish' })
  await t.rejects(broken)
  await t.rejects(fine, 'its batch companion too')
  t.equal((await store.getTpmIdentity(ids[1]!))?.resetCount, 11, 'rolled back')
  t.equal((await store.listAudit({ limit: 10_000 })).length, before + ids.length)
})

t.test('verifyQuoteAsync gives verifyQuote’s verdicts', async (t) => {
  for (const kind of ['rsa', 'ecc'] as const) {
    const tpm = SoftTpm.create({ ek: kind, ak: kind })
    const nonce = randomBytes(32)
    const q = tpm.quote(nonce, PCRS)
    const good = { akPublic: tpm.akPublic, attest: q.attest, signature: q.signature, expectedNonce: nonce, pcrs: pcrBanks([[TPM_ALG.SHA256, q.pcrValues]]) }
    const forged = new Map(q.pcrValues)
    forged.set(3, flipByte(forged.get(3)!, 1))
    const cases: [string, typeof good][] = [
      ['good', good],
      ['altered attest', { ...good, attest: flipByte(q.attest, -40) }],
      ['altered signature', { ...good, signature: flipByte(q.signature, -3) }],
      ['truncated signature', { ...good, signature: q.signature.subarray(0, 20) }],
      ['other nonce', { ...good, expectedNonce: randomBytes(32) }],
      ['forged PCR', { ...good, pcrs: pcrBanks([[TPM_ALG.SHA256, forged]]) }],
      ['another AK', { ...good, akPublic: SoftTpm.create({ ek: kind, ak: kind }).akPublic }],
    ]
    for (const [what, input] of cases) {
      const a = await verifyQuoteAsync(input)
      const s = verifyQuote(input)
      t.same(a.ok ? 'ok' : a.reason, s.ok ? 'ok' : s.reason, `${kind}: ${what} (${s.ok ? 'ok' : s.reason})`)
    }
  }
})

t.test('tokens: signed with node:crypto, verified by jose; thumbprints as jose computes them', async (t) => {
  const ring = await KeyRing.open({ dir: join(tempDir(t), 'keys'), rotateAfterMs: 86_400_000, maxTokenTtlMs: 900_000 })
  const tokens = new NodeTokens(ring, 'http://netboot.test', 900)
  const key = await bootKey()
  const jkt = await NodeTokens.thumbprint(key.jwk)
  t.equal(jkt, await calculateJwkThumbprint(key.jwk, 'sha256'))
  const rsaJwk = publicJwkOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey) as JWK
  t.equal(await NodeTokens.thumbprint(rsaJwk), await calculateJwkThumbprint(rsaJwk, 'sha256'), 'other key types: jose’s own')

  const now = Date.now()
  const issued = await tokens.issue({ sub: 'nid001', groups: ['compute', 'gpu'], att: 'att-1', img: 'compute@abc', cnf: { jkt } }, now)
  t.same(decodeProtectedHeader(issued.token), { alg: 'ES256', kid: ring.current.kid, typ: 'at+jwt' })
  const { payload } = await jwtVerify(issued.token, createLocalJWKSet(ring.jwks()), { issuer: 'http://netboot.test', audience: TOKEN_AUDIENCE, typ: 'at+jwt', algorithms: ['ES256'] })
  t.match(payload, { sub: 'nid001', groups: ['compute', 'gpu'], att: 'att-1', img: 'compute@abc', cnf: { jkt }, jti: issued.jti, iat: Math.floor(now / 1000), exp: issued.expiresAt })
  const parts = issued.token.split('.')
  await t.rejects(jwtVerify(`${parts[0]}.${parts[1]}.${flipByte(Buffer.from(parts[2]!, 'base64url'), 5).toString('base64url')}`, createLocalJWKSet(ring.jwks())), 'an altered signature')
})

t.test('AttestationService: event logs by digest, and a log without the quoted bank', async (t) => {
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  t.teardown(async () => await store.close())
  const ring = await KeyRing.open({ dir: join(dir, 'keys'), rotateAfterMs: 86_400_000, maxTokenTtlMs: 900_000 })
  const service = new AttestationService({
    enrollment: 'tofu', requireEkCert: false, anchors: [], pcrs: PCRS, bank: 'sha256', pcrPolicy: 'off', discover: false, sessionTtlMs: 60_000, maxSessions: 100,
  }, store, new NodeTokens(ring, 'http://netboot.test', 900), pino({ level: 'silent' }))
  const attest = async (tpm: SoftTpm, mac: string, eventLog: Buffer) => {
    const ch = await service.start({ macs: [mac], ekPublic: tpm.ekPublic, ekCert: Buffer.alloc(0), akPublic: tpm.akPublic, hardware: {} }, '127.0.0.1')
    const key = await bootKey()
    const q = tpm.quote(createHash('sha256').update(ch.nonce).update(key.bytes).digest(), ch.pcrs)
    return await service.finish({ session: ch.session, credential: tpm.activateCredential(ch.credentialBlob, ch.encryptedSecret), attest: q.attest, signature: q.signature, pcrValues: q.pcrValues, eventLog, bootKey: key.bytes }, '127.0.0.1')
  }
  const a = SoftTpm.create({ ek: 'ecc', ak: 'ecc', banks: ['sha1', 'sha256'], platform: 'a' })
  const b = SoftTpm.create({ ek: 'ecc', ak: 'ecc', banks: ['sha1', 'sha256'], platform: 'b' })
  const shaOneOnly = SoftTpm.create({ ek: 'ecc', ak: 'ecc', banks: ['sha1'], platform: 'c' })
  for (const [i, name] of ['nid001', 'nid002', 'nid003'].entries()) await store.createNode({ name, groups: [], interfaces: [{ mac: `02:00:00:00:00:0${i + 1}` }] }, system)

  t.match(await attest(a, '02:00:00:00:00:01', a.eventLog), { node: 'nid001' })
  t.match(await attest(a, '02:00:00:00:00:01', a.eventLog), { node: 'nid001' }, 'the same log again (kept by digest)')
  await t.rejects(attest(a, '02:00:00:00:00:01', b.eventLog), { code: 'ATTEST_EVENTLOG_MISMATCH', message: /PCR 1$/ }, 'another machine’s log, though valid')
  await t.rejects(attest(a, '02:00:00:00:00:01', flipByte(a.eventLog, -(4 + 4 + 1))), { code: 'ATTEST_EVENTLOG_MISMATCH', message: /PCR 7$/ }, 'an altered copy of a kept log')
  t.match(await attest(b, '02:00:00:00:00:02', b.eventLog), { node: 'nid002' })
  await t.rejects(attest(a, '02:00:00:00:00:01', shaOneOnly.eventLog), { code: 'ATTEST_EVENTLOG_MISMATCH', message: /no sha256 digest/ }, 'a log that cannot speak for the quoted bank')
  t.match((await store.listAudit({ action: 'attest.finish', limit: 100 })).filter((e) => e.outcome === 'ok').map((e) => e.detail.events), [14, 14, 14])
})
