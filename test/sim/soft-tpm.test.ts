// The software TPM model is honest: what it produces is accepted by the server's
// verifier and by independent tools (tpm2-tools, openssl), and anything altered is
// refused. Real-peer checks fail, never skip, when the tools are missing.
import t from 'tap'
import { X509Certificate, constants, createHash, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, sign, verify } from 'node:crypto'
import { execFile, spawnSync } from 'node:child_process'
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pino from 'pino'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { decodeToolsCredentialFile, makeCredential } from '../../server/attest/tpm/credential.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { checkAkAttributes, computeName, decodeTpm2bPublic, publicKeyObject } from '../../server/attest/tpm/public.js'
import { decodeAttest, verifyQuote } from '../../server/attest/tpm/quote.js'
import { EV, compareToQuoted, parseEventLog, replay } from '../../server/attest/eventlog/index.js'
import { verifyEkCert } from '../../server/attest/ekcert.js'
import { AttestationService } from '../../server/attest/service.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { KeyRing } from '../../server/tokens/keys.js'
import { NodeTokens } from '../../server/tokens/node-token.js'
import { tempDir } from '../helpers/tmp.js'
import { EK_POLICY, flipByte, publicJwkOf } from '../attest/helpers.js'
import { bootKey } from '../attest/tools-agent.js'
import { RsaKeyFactory, SoftTpm, SoftTpmError, type KeyKind } from './soft-tpm.js'
import { SoftCa } from './soft-ca.js'

const run = promisify(execFile)
const PCRS = [0, 1, 2, 3, 4, 5, 6, 7]
const TOOLS = ['tpm2_checkquote', 'tpm2_print', 'tpm2_makecredential', 'tpm2_eventlog', 'openssl']

function must<T> (r: { ok: true; value: T } | { ok: false; error: { message: string } }): T {
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

const sha256Values = (tpm: SoftTpm) => pcrBanks([[TPM_ALG.SHA256, tpm.pcrValues('sha256')]])
const ca = SoftCa.create()

for (const [ek, ak] of [['rsa', 'rsa'], ['ecc', 'ecc'], ['rsa', 'ecc'], ['ecc', 'rsa']] as [KeyKind, KeyKind][]) {
  t.test(`EK ${ek}, AK ${ak}`, async (t) => {
    const tpm = SoftTpm.create({ ek, ak, ca })
    const ekPub = must(decodeTpm2bPublic(tpm.ekPublic))
    const akPub = must(decodeTpm2bPublic(tpm.akPublic))

    t.test('public areas have the TCG EK template and AK shape', async (t) => {
      t.equal(ekPub.type, ek === 'rsa' ? TPM_ALG.RSA : TPM_ALG.ECC)
      t.equal(ekPub.nameAlg, TPM_ALG.SHA256)
      t.equal(ekPub.objectAttributes, 0x000300b2)
      t.same(ekPub.authPolicy, EK_POLICY)
      t.match(ekPub.parameters, { symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: { scheme: TPM_ALG.NULL } })
      if (ekPub.type === TPM_ALG.RSA) t.match(ekPub.parameters, { keyBits: 2048, exponent: 0 })
      else t.match(ekPub.parameters, { curveID: 3, kdf: { scheme: TPM_ALG.NULL } })
      t.equal(akPub.objectAttributes, 0x00050072)
      t.same(checkAkAttributes(akPub), { ok: true })
      t.match(akPub.parameters.scheme, { scheme: ak === 'rsa' ? TPM_ALG.RSASSA : TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 })
      t.same(must(computeName(akPub)), tpm.akName, 'the AK name is the server’s computeName')
    })

    t.test('the EK certificate verifies against its CA, and not against another', async (t) => {
      const key = must(publicKeyObject(ekPub))
      t.match(verifyEkCert(tpm.ekCert!, key, [ca.certificate]), { ok: true })
      t.match(verifyEkCert(tpm.ekCert!, key, [SoftCa.create().certificate]), { ok: false, reason: /no trusted CA/ })
      t.match(verifyEkCert(ca.issueEkCert(key, { withoutEkPurpose: true }), key, [ca.certificate]), { ok: false, reason: /EK purpose/ })
      const other = SoftTpm.create({ ek: 'ecc', ak: 'ecc', ca })
      t.match(verifyEkCert(other.ekCert!, key, [ca.certificate]), { ok: false, reason: /another key/ })
    })

    t.test('MakeCredential by the server, ActivateCredential by the model', async (t) => {
      const secret = randomBytes(32)
      const cred = must(makeCredential({ ekPublic: ekPub, akName: tpm.akName, credential: secret }))
      t.same(tpm.activateCredential(cred.credentialBlob, cred.secret), secret)
      const forOtherAk = must(makeCredential({ ekPublic: ekPub, akName: Buffer.concat([Buffer.from([0, 0x0b]), randomBytes(32)]), credential: secret }))
      t.throws(() => tpm.activateCredential(forOtherAk.credentialBlob, forOtherAk.secret), { name: 'SoftTpmError', message: /^TPM_RC_INTEGRITY/ }, 'a credential for another AK')
      const otherTpm = SoftTpm.create({ ek, ak: 'ecc' })
      const forOtherEk = must(makeCredential({ ekPublic: must(decodeTpm2bPublic(otherTpm.ekPublic)), akName: tpm.akName, credential: secret }))
      t.throws(() => tpm.activateCredential(forOtherEk.credentialBlob, forOtherEk.secret), SoftTpmError, 'a credential for another EK')
      t.throws(() => tpm.activateCredential(flipByte(cred.credentialBlob, 10), cred.secret), { name: 'SoftTpmError', message: /^TPM_RC_INTEGRITY/ }, 'a tampered blob')
    })

    t.test('quotes verify with the server’s verifyQuote; altered ones do not', async (t) => {
      const nonce = randomBytes(32)
      const q = tpm.quote(nonce, PCRS)
      t.same([...q.pcrValues.keys()], PCRS)
      const input = {
        akPublic: tpm.akPublic, attest: q.attest, signature: q.signature, expectedNonce: nonce,
        pcrs: pcrBanks([[TPM_ALG.SHA256, q.pcrValues]]), requiredPcrs: new Map([[TPM_ALG.SHA256, PCRS]]),
        previousCounters: { resetCount: 1, restartCount: 0 },
      }
      const v = verifyQuote(input)
      t.match(v, { ok: true })
      if (v.ok) {
        t.same(v.attest.qualifiedSigner, tpm.akQualifiedName)
        t.match(v.attest.clockInfo, { resetCount: 1, restartCount: 0, safe: true })
      }
      t.match(verifyQuote({ ...input, attest: flipByte(q.attest, -40) }), { ok: false, reason: 'bad-signature' })
      t.match(verifyQuote({ ...input, signature: flipByte(q.signature, -1) }), { ok: false, reason: 'bad-signature' })
      t.match(verifyQuote({ ...input, expectedNonce: randomBytes(32) }), { ok: false, reason: 'nonce-mismatch' })
      const forged = new Map(q.pcrValues)
      forged.set(7, flipByte(forged.get(7)!, 0))
      t.match(verifyQuote({ ...input, pcrs: pcrBanks([[TPM_ALG.SHA256, forged]]) }), { ok: false, reason: 'pcr-digest-mismatch' })
      t.match(verifyQuote({ ...input, previousCounters: { resetCount: 2, restartCount: 0 } }), { ok: false, reason: 'counter-rollback' })
      t.throws(() => tpm.quote(randomBytes(65), PCRS), { name: 'SoftTpmError', message: /^TPM_RC_SIZE/ })
    })

    t.test('the event log replays to the PCRs; a tampered log does not', async (t) => {
      const log = must(parseEventLog(tpm.eventLog))
      t.equal(log.format, 'crypto-agile')
      t.same(log.algorithms, [{ alg: TPM_ALG.SHA256, digestSize: 32 }])
      t.ok(log.events.some((e) => e.type === EV.POST_CODE) && log.events.filter((e) => e.type === EV.SEPARATOR).length === 8)
      t.match(compareToQuoted(replay(log.events), sha256Values(tpm)), { ok: true, mismatched: [] })
      // the last event's SHA-256 digest sits 4 (size) + 4 (data) bytes before the end, 32 long
      const tampered = flipByte(tpm.eventLog, -(4 + 4 + 1))
      const cmp = compareToQuoted(replay(must(parseEventLog(tampered)).events), sha256Values(tpm))
      t.same(cmp.mismatched.map((m) => m.pcr), [7])
    })
  })
}

t.test('measure, reboot and banks', async (t) => {
  const tpm = SoftTpm.create({ ek: 'ecc', ak: 'ecc', banks: ['sha256', 'sha1'] })
  t.same(tpm.banks, ['sha1', 'sha256'])
  const before = tpm.pcrValues('sha256').get(9)!
  tpm.measure(9, Buffer.from('rootfs sha256:abc'))
  t.not(tpm.pcrValues('sha256').get(9)!.toString('hex'), before.toString('hex'))
  const log = must(parseEventLog(tpm.eventLog))
  t.same(log.algorithms.map((a) => a.alg), [TPM_ALG.SHA1, TPM_ALG.SHA256])
  const replayed = replay(log.events)
  t.match(compareToQuoted(replayed, pcrBanks([[TPM_ALG.SHA256, tpm.pcrValues('sha256')], [TPM_ALG.SHA1, tpm.pcrValues('sha1')]])), { ok: true })
  t.equal(replayed.get(TPM_ALG.SHA256)![17]!.toString('hex'), 'ff'.repeat(32), 'dynamic-launch PCRs reset to ones')

  const pcr0 = tpm.pcrValues('sha256').get(0)!
  tpm.reboot()
  t.equal(tpm.resetCount, 2)
  t.same(tpm.pcrValues('sha256').get(0), pcr0, 'the same firmware measures the same PCR 0 after a reset')
  t.same(tpm.pcrValues('sha256').get(9), Buffer.alloc(32), 'PCR 9 is back to zero')
  t.equal(must(decodeAttest(tpm.quote(Buffer.alloc(0), [0]).attest)).clockInfo.resetCount, 2)
  t.not(SoftTpm.create({ ek: 'ecc', ak: 'ecc', firmware: 'other firmware' }).pcrValues().get(0)!.toString('hex'), pcr0.toString('hex'))
  t.equal(SoftTpm.create({ ek: 'ecc', ak: 'ecc', firmware: false }).eventLog.length, 0)
  const uefiSized = SoftTpm.create({ ek: 'ecc', ak: 'ecc', banks: ['sha1', 'sha256'], firmwareEvents: 100, eventBytes: 300 })
  t.ok(uefiSized.eventLog.length > 30_000, 'a UEFI-sized log')
  t.match(compareToQuoted(replay(must(parseEventLog(uefiSized.eventLog)).events), sha256Values(uefiSized)), { ok: true })
  t.throws(() => tpm.pcrValues('sha384'), { name: 'SoftTpmError', message: /^TPM_RC_PCR/ })
})

t.test('a new AK per boot, and per-machine platform measurements', async (t) => {
  const tpm = SoftTpm.create({ ek: 'ecc', ak: 'ecc', platform: '02:00:00:00:00:01' })
  const ek = must(decodeTpm2bPublic(tpm.ekPublic))
  const oldName = tpm.akName
  const secret = randomBytes(32)
  const forOld = must(makeCredential({ ekPublic: ek, akName: oldName, credential: secret }))
  tpm.createAk()
  t.not(tpm.akName.toString('hex'), oldName.toString('hex'))
  t.throws(() => tpm.activateCredential(forOld.credentialBlob, forOld.secret), { name: 'SoftTpmError', message: /^TPM_RC_INTEGRITY/ }, 'the old AK is gone')
  const forNew = must(makeCredential({ ekPublic: ek, akName: tpm.akName, credential: secret }))
  t.same(tpm.activateCredential(forNew.credentialBlob, forNew.secret), secret)
  const nonce = randomBytes(32)
  const q = tpm.quote(nonce, PCRS)
  t.match(verifyQuote({ akPublic: tpm.akPublic, attest: q.attest, signature: q.signature, expectedNonce: nonce, pcrs: pcrBanks([[TPM_ALG.SHA256, q.pcrValues]]) }), { ok: true })
  tpm.createAk('rsa', new RsaKeyFactory(1).next())
  t.equal(must(decodeTpm2bPublic(tpm.akPublic)).type, TPM_ALG.RSA)

  const twin = SoftTpm.create({ ek: 'ecc', ak: 'ecc', platform: '02:00:00:00:00:02' })
  const a = tpm.pcrValues('sha256', PCRS)
  const b = twin.pcrValues('sha256', PCRS)
  t.same(PCRS.filter((i) => !a.get(i)!.equals(b.get(i)!)), [1], 'machines differ in PCR 1 only')
})

t.test('RsaKeyFactory: distinct working RSA-2048 keys', async (t) => {
  const f = new RsaKeyFactory(6)
  const keys = Array.from({ length: 6 }, () => f.next())
  const moduli = new Set(keys.map((k) => createPublicKey(k).export({ format: 'jwk' }).n))
  t.equal(moduli.size, 6)
  for (const k of keys) {
    t.equal(k.asymmetricKeyDetails?.modulusLength, 2048)
    const pub = createPublicKey(k)
    const seed = randomBytes(32)
    const label = Buffer.from('IDENTITY\0', 'latin1')
    t.same(privateDecrypt({ key: k, oaepHash: 'sha256', oaepLabel: label }, publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, seed)), seed)
    t.ok(verify('sha256', seed, pub, sign('sha256', seed, k)))
  }
  const tpm = SoftTpm.create({ ek: 'rsa', ak: 'rsa', rsaKeys: f })
  const secret = randomBytes(16)
  const cred = must(makeCredential({ ekPublic: must(decodeTpm2bPublic(tpm.ekPublic)), akName: tpm.akName, credential: secret }))
  t.same(tpm.activateCredential(cred.credentialBlob, cred.secret), secret)
})

t.test('one attestation through AttestationService: tofu with EK certificate, event log replay, token', async (t) => {
  const dir = tempDir(t)
  const store = SqliteStore.open(join(dir, 'n.db'))
  t.teardown(async () => await store.close())
  const system = { kind: 'system' as const, id: 'test' }
  await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: '02:00:00:00:00:01' }] }, system)
  const ring = await KeyRing.open({ dir: join(dir, 'keys'), rotateAfterMs: 86_400_000, maxTokenTtlMs: 900_000 })
  const service = new AttestationService({
    enrollment: 'strict', requireEkCert: true, anchors: [ca.certificate], pcrs: PCRS, bank: 'sha256', pcrPolicy: 'learn',
    discover: false, sessionTtlMs: 60_000, maxSessions: 100,
  }, store, new NodeTokens(ring, 'http://netboot.test', 900), pino({ level: 'silent' }))
  const tpm = SoftTpm.create({ ek: 'rsa', ak: 'ecc', ca })
  const start = { macs: ['02:00:00:00:00:01'], ekPublic: tpm.ekPublic, ekCert: tpm.ekCert!, akPublic: tpm.akPublic, hardware: {} }
  await t.rejects(service.start(start, '127.0.0.1'), { code: 'ATTEST_PENDING' }, 'strict: recorded pending')
  const [pending] = await store.listTpmIdentities({ state: 'pending' })
  await store.decideTpmIdentity(pending!.id, { state: 'enrolled' }, { kind: 'admin', id: 'a' })

  const attestOnce = async (eventLog: Buffer) => {
    const ch = await service.start(start, '127.0.0.1')
    const key = await bootKey()
    const q = tpm.quote(createHash('sha256').update(ch.nonce).update(key.bytes).digest(), ch.pcrs, 'sha256')
    return await service.finish({
      session: ch.session, credential: tpm.activateCredential(ch.credentialBlob, ch.encryptedSecret),
      attest: q.attest, signature: q.signature, pcrValues: q.pcrValues, eventLog, bootKey: key.bytes,
    }, '127.0.0.1')
  }
  t.match(await attestOnce(tpm.eventLog), { node: 'nid001', token: /^ey/ })
  const ok = (await store.listAudit({ action: 'attest.finish', limit: 10 })).at(-1)
  t.match(ok, { outcome: 'ok', detail: { events: 14, policy: 'learned-now' } })
  await t.rejects(attestOnce(flipByte(tpm.eventLog, -(4 + 4 + 1))), { code: 'ATTEST_EVENTLOG_MISMATCH' })
})

// ---- independent cross-checks ----------------------------------------------------

const missing = TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0)
t.test('cross-checked with tpm2-tools and openssl', async (t) => {
  if (missing.length > 0) return t.fail(`missing ${missing.join(', ')}: apt-get install -y tpm2-tools openssl`)
  const dir = tempDir(t)
  const f = (n: string): string => join(dir, n)
  for (const kind of ['rsa', 'ecc'] as const) {
    await t.test(kind, async (t) => {
      const tpm = SoftTpm.create({ ek: kind, ak: kind, ca, banks: ['sha1', 'sha256'] })
      writeFileSync(f('ak.pub'), tpm.akPublic)
      writeFileSync(f('ek.pub'), tpm.ekPublic)

      // tpm2_checkquote: signature and qualifying data; tpm2_print: the selection and pcrDigest
      const nonce = randomBytes(32)
      const q = tpm.quote(nonce, PCRS)
      writeFileSync(f('q.msg'), q.attest)
      writeFileSync(f('q.sig'), q.signature)
      await run('tpm2_checkquote', ['-u', f('ak.pub'), '-m', f('q.msg'), '-s', f('q.sig'), '-g', 'sha256', '-q', nonce.toString('hex')])
      await t.rejects(run('tpm2_checkquote', ['-u', f('ak.pub'), '-m', f('q.msg'), '-s', f('q.sig'), '-g', 'sha256', '-q', randomBytes(32).toString('hex')]), 'another nonce')
      writeFileSync(f('bad.msg'), flipByte(q.attest, -40))
      await t.rejects(run('tpm2_checkquote', ['-u', f('ak.pub'), '-m', f('bad.msg'), '-s', f('q.sig'), '-g', 'sha256', '-q', nonce.toString('hex')]), 'altered quote')
      const printed = (await run('tpm2_print', ['-t', 'TPMS_ATTEST', f('q.msg')])).stdout
      const digest = createHash('sha256').update(Buffer.concat([...q.pcrValues.values()])).digest('hex')
      t.match(printed, new RegExp(`pcrDigest: ${digest}`))
      t.match(printed, /pcrSelect: ff0000/)
      t.match(printed, new RegExp(`qualifiedSigner: ${tpm.akQualifiedName.toString('hex')}`))

      // tpm2_makecredential (offline, its own implementation) → the model's ActivateCredential
      const secret = randomBytes(32)
      writeFileSync(f('secret'), secret)
      await run('tpm2_makecredential', ['-T', 'none', '-u', f('ek.pub'), '-s', f('secret'), '-n', tpm.akName.toString('hex'), '-o', f('cred')])
      const file = must(decodeToolsCredentialFile(readFileSync(f('cred'))))
      t.same(tpm.activateCredential(file.credentialBlob, file.secret), secret)

      // tpm2_eventlog replays the log to the model's PCRs
      writeFileSync(f('log.bin'), tpm.eventLog)
      const yaml = (await run('tpm2_eventlog', [f('log.bin')])).stdout
      for (const bank of ['sha1', 'sha256'] as const) {
        const section = yaml.slice(yaml.indexOf(`  ${bank}:`))
        for (const [i, v] of tpm.pcrValues(bank, PCRS)) t.match(section, new RegExp(`\\n\\s+${i}\\s+: 0x${v.toString('hex')}`), `${bank} PCR ${i}`)
      }

      // openssl: the EK certificate chains to the CA
      writeFileSync(f('ca.pem'), ca.pem)
      writeFileSync(f('ek.pem'), new X509Certificate(tpm.ekCert!).toString())
      t.match((await run('openssl', ['verify', '-CAfile', f('ca.pem'), f('ek.pem')])).stdout, /OK/)
      writeFileSync(f('other.pem'), SoftCa.create().pem)
      await t.rejects(run('openssl', ['verify', '-CAfile', f('other.pem'), f('ek.pem')]), 'another CA')
    })
  }
})

t.test('public JWKs of sync-generated keys do not deadlock (Node 20, test/attest/helpers.ts publicJwkOf)', async (t) => {
  // export({ format: 'jwk' }) of a generateKeyPairSync key hung within a second in such a loop on node v20.20.2
  // (a GC during the export frees the key-generation job, whose destructor waits for the lock the export holds);
  // the soft TPMs encode every key through publicJwkOf. A hang here fails the test at tap's timeout.
  let same = 0
  const n = 20_000
  for (let i = 0; i < n; i++) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = publicJwkOf(privateKey)
    const point = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-64)
    if (Buffer.from(jwk.x!, 'base64url').equals(point.subarray(0, 32)) && Buffer.from(jwk.y!, 'base64url').equals(point.subarray(32))) same++
  }
  t.equal(same, n, 'every JWK is the key’s point')
})
