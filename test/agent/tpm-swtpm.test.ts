// Real peer: the agent's TPM addon against swtpm provisioned with EK certificates
// from a local CA (test/attest/swtpm-harness.ts), cross-checked with the server's
// verifier (server/attest/tpm) and with tpm2-tools. Fails, never skips, when swtpm,
// tpm2-tools or the built addon (`npm run build:agent`) is missing.
import t from 'tap'
import { X509Certificate, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeCredential } from '../../server/attest/tpm/credential.js'
import { checkAkAttributes, computeName, publicKeyObject } from '../../server/attest/tpm/public.js'
import { decodeAttest, verifyQuote } from '../../server/attest/tpm/quote.js'
import { EK_CERT_INDICES, RC_CODE, TpmError, type KeyAlg } from '../../agent/tpm/index.js'
import { startSwtpm, type Swtpm } from '../attest/swtpm-harness.js'
import { decodePublic, expectedTransient, publicPem, realPeerProblems, sha256, sha256Bank, toolsPcrFile, withTpm } from './helpers.js'

const problems = realPeerProblems()
if (problems.length > 0) {
  for (const p of problems) t.fail(p)
} else {
  let sw: Swtpm
  t.before(async () => {
    sw = await startSwtpm()
  })
  t.teardown(async () => {
    await sw?.stop()
  })
  const file = (name: string) => readFileSync(join(sw.dir, name))
  const put = (name: string, data: string | Uint8Array) => writeFileSync(join(sw.dir, name), data)

  t.test('readEk rsa: the persistent EK, its Name as tpm2_readpublic reports it, a certificate from the local CA', async (t) => {
    const ek = await withTpm(sw, (tpm) => tpm.readEk({ alg: 'rsa' }))
    t.equal(ek.handle, 'persistent', 'swtpm_setup made 0x81010001 persistent')
    t.equal(ek.tpmHandle, 0x81010001)
    t.equal(ek.certIndex, EK_CERT_INDICES.rsa)
    const pub = decodePublic(ek.public)
    t.equal(pub.objectAttributes, 0x000300b2, 'TCG L-1 attributes')
    const name = computeName(pub)
    t.ok(name.ok && name.value.equals(ek.name), 'Name from the addon = nameAlg ‖ H(TPMT_PUBLIC) of its public area')

    await sw.tool('tpm2_readpublic', ['-c', '0x81010001', '-o', 'ek-tools.pub', '-n', 'ek-tools.name'])
    t.equal(ek.name.toString('hex'), file('ek-tools.name').toString('hex'), 'Name = tpm2_readpublic -c 0x81010001 -n')
    t.equal(ek.public.toString('hex'), file('ek-tools.pub').toString('hex'), 'TPM2B_PUBLIC = tpm2_readpublic -o')

    t.ok(ek.cert, 'the EK certificate is returned')
    if (ek.cert === undefined) return
    const cert = new X509Certificate(ek.cert)
    await sw.tool('tpm2_nvread', [`0x${EK_CERT_INDICES.rsa.toString(16)}`, '-o', 'ekcert-nv.bin'])
    const nv = file('ekcert-nv.bin')
    t.ok(nv.subarray(0, ek.cert.length).equals(ek.cert) && nv.subarray(ek.cert.length).every((b) => b === 0 || b === 0xff),
      'the DER is the NV contents without padding')
    const key = publicKeyObject(pub)
    t.ok(key.ok && cert.publicKey.equals(key.value), 'the certificate certifies this EK')
    const issuer = new X509Certificate(readFileSync(sw.issuerCert))
    const root = new X509Certificate(readFileSync(sw.rootCert))
    t.ok(cert.checkIssued(issuer) && cert.verify(issuer.publicKey), 'signed by the local CA issuer')
    t.ok(issuer.checkIssued(root) && issuer.verify(root.publicKey), 'whose certificate is signed by the local CA root')
    t.ok(root.verify(root.publicKey), 'the root is self-signed')
  })

  t.test('readEk ecc: no persistent L-2 EK on swtpm, so CreatePrimary with the L-2 template (= tpm2_createek -G ecc)', async (t) => {
    const ek = await withTpm(sw, (tpm) => tpm.readEk({ alg: 'ecc' }))
    t.equal(ek.handle, 'created')
    t.equal(ek.tpmHandle >>> 24, 0x80, 'a transient handle')
    t.equal(ek.cert, undefined, 'swtpm stores no certificate at 0x01C0000A')
    const pub = decodePublic(ek.public)
    t.equal(pub.objectAttributes, 0x000300b2, 'TCG L-2 attributes')
    t.match(pub, { type: 0x0023, parameters: { curveID: 0x0003 } }, 'ECC P-256')
    const name = computeName(pub)
    t.ok(name.ok && name.value.equals(ek.name), 'Name = computeName(public)')
    await sw.tool('tpm2_createek', ['-c', 'ek-ecc.ctx', '-G', 'ecc', '-u', 'ek-ecc.pub'])
    await sw.flush()
    t.equal(ek.public.toString('hex'), file('ek-ecc.pub').toString('hex'), 'the same key tpm2_createek -G ecc derives')
    t.same(await withTpm(sw, (tpm) => tpm.handles()), { transient: [], sessions: [] }, 'close() flushed the created EK')
  })

  for (const alg of ['rsa', 'ecc'] as const) {
    t.test(`createAk ${alg}: a restricted signing key whose Name the server computes the same way`, async (t) => {
      const { ek, ak, handles } = await withTpm(sw, async (tpm) => {
        const ek = await tpm.readEk({ alg })
        const ak = await tpm.createAk({ alg })
        return { ek, ak, handles: await tpm.handles() }
      })
      const pub = decodePublic(ak.public)
      t.same(checkAkAttributes(pub), { ok: true }, 'checkAkAttributes passes')
      t.equal(pub.objectAttributes, 0x00050072, 'attributes exactly 0x00050072')
      t.equal(pub.type, alg === 'rsa' ? 0x0001 : 0x0023)
      t.match(pub.parameters.scheme, { scheme: alg === 'rsa' ? 0x0014 : 0x0018, hashAlg: 0x000b }, 'RSASSA/ECDSA with SHA-256')
      const name = computeName(pub)
      t.ok(name.ok && name.value.equals(ak.name), 'Name from the addon = computeName(decodeTpm2bPublic(public))')
      t.equal(ak.handle >>> 24, 0x80, 'a transient handle')
      t.same(handles, { transient: expectedTransient(ek, ak), sessions: [] }, 'the AK (and a created EK) loaded, policy sessions flushed')
    })
  }

  // [EK, AK] pairs; ECC EK activation works with the L-2 EK created from its
  // template (PolicySecret-only policy). See the report for swtpm's P-384 EK.
  const pairs: [KeyAlg, KeyAlg][] = [['rsa', 'rsa'], ['ecc', 'ecc'], ['rsa', 'ecc'], ['ecc', 'rsa']]
  for (const [ekAlg, akAlg] of pairs) {
    t.test(`activateCredential: ${ekAlg} EK, ${akAlg} AK recovers the server's makeCredential secret`, async (t) => {
      await withTpm(sw, async (tpm) => {
        const ek = await tpm.readEk({ alg: ekAlg })
        const ak = await tpm.createAk({ alg: akAlg })
        t.equal(ak.ek, ekAlg, 'created under the EK readEk returned')
        for (const size of [16, 32]) {
          const credential = randomBytes(size)
          const made = makeCredential({ ekPublic: decodePublic(ek.public), akName: ak.name, credential })
          if (!made.ok) throw new Error(made.error.message)
          const got = await tpm.activateCredential(made.value)
          t.equal(got.toString('hex'), credential.toString('hex'), `${size}-byte credential recovered`)
        }
        // Bound to another Name: the TPM's integrity check refuses it.
        const other = Buffer.from(ak.name)
        other[other.length - 1]! ^= 1
        const made = makeCredential({ ekPublic: decodePublic(ek.public), akName: other, credential: randomBytes(16) })
        if (!made.ok) throw new Error(made.error.message)
        const e = await tpm.activateCredential(made.value).catch((e: unknown) => e)
        t.ok(e instanceof TpmError, 'a TpmError')
        t.match(e, { code: RC_CODE, command: 'Esys_ActivateCredential', rcName: /^TPM2_RC_INTEGRITY/ })
        t.same(await tpm.handles(), { transient: expectedTransient(ek, ak), sessions: [] }, 'the failed activation left no session loaded')
      })
    })
  }

  for (const alg of ['rsa', 'ecc'] as const) {
    t.test(`quote ${alg}: verifies with verifyQuote (PCR values from pcrRead) and with tpm2_checkquote`, async (t) => {
      const nonce = randomBytes(32)
      const pcrs = [0, 1, 2, 3, 4, 5, 6, 7]
      const { ak, q, values } = await withTpm(sw, async (tpm) => {
        await tpm.readEk({ alg: 'rsa' })
        await tpm.pcrExtend({ pcr: 7, digests: { sha256: randomBytes(32) } })
        const ak = await tpm.createAk({ alg })
        const q = await tpm.quote({ nonce, pcrs, bank: 'sha256' })
        const values = await tpm.pcrRead({ pcrs, bank: 'sha256' })
        return { ak, q, values }
      })
      t.same([...values.keys()], pcrs)
      const input = { akPublic: ak.public, attest: q.attest, signature: q.signature, expectedNonce: nonce, pcrs: sha256Bank(values) }
      const v = verifyQuote({ ...input, requiredPcrs: new Map([[0x000b, pcrs]]) })
      t.equal(v.ok, true, v.ok ? 'verifyQuote accepts it' : `${v.reason}: ${v.message}`)
      const at = decodeAttest(q.attest)
      t.ok(at.ok && at.value.clockInfo.safe, 'clock safe')
      t.match(verifyQuote({ ...input, expectedNonce: randomBytes(32) }), { ok: false, reason: 'nonce-mismatch' })
      const changed = new Map(values)
      changed.set(7, Buffer.alloc(32))
      t.match(verifyQuote({ ...input, pcrs: sha256Bank(changed) }), { ok: false, reason: 'pcr-digest-mismatch' })

      put(`ak-${alg}.pem`, publicPem(ak.public))
      put(`ak-${alg}.tss`, ak.public)
      put(`quote-${alg}.msg`, q.attest)
      put(`quote-${alg}.sig`, q.signature)
      put(`quote-${alg}.pcrs`, toolsPcrFile(0x000b, pcrs, values))
      const check = (pub: string, qual: Buffer, extra: string[] = []) => sw.tool('tpm2_checkquote', [
        '-u', pub, '-m', `quote-${alg}.msg`, '-s', `quote-${alg}.sig`, '-g', 'sha256', '-q', qual.toString('hex'), ...extra,
      ])
      const withPcrs = ['-f', `quote-${alg}.pcrs`]
      await t.resolves(check(`ak-${alg}.pem`, nonce, withPcrs), 'tpm2_checkquote accepts it (AK as PEM)')
      await t.resolves(check(`ak-${alg}.tss`, nonce, withPcrs), 'tpm2_checkquote accepts it (AK as TPM2B_PUBLIC)')
      await t.rejects(check(`ak-${alg}.pem`, randomBytes(32), withPcrs), 'tpm2_checkquote refuses another nonce')
      put(`quote-${alg}.pcrs`, toolsPcrFile(0x000b, pcrs, changed))
      await t.rejects(check(`ak-${alg}.pem`, nonce, withPcrs), 'tpm2_checkquote refuses other PCR values')
      q.attest[q.attest.length - 1]! ^= 1
      put(`quote-${alg}.msg`, q.attest)
      await t.rejects(check(`ak-${alg}.pem`, nonce), 'tpm2_checkquote refuses a changed TPMS_ATTEST')
    })

    t.test(`quote ${alg}: 7 PCRs, checked with tpm2_checkquote -l and bare PCR values`, async (t) => {
      const nonce = randomBytes(20)
      const pcrs = [0, 2, 4, 7, 9, 16, 23]
      const { ak, q, values } = await withTpm(sw, async (tpm) => {
        await tpm.readEk({ alg: 'ecc' })
        const ak = await tpm.createAk({ alg })
        const q = await tpm.quote({ nonce, pcrs, bank: 'sha256' })
        return { ak, q, values: await tpm.pcrRead({ pcrs, bank: 'sha256' }) }
      })
      const v = verifyQuote({ akPublic: ak.public, attest: q.attest, signature: q.signature, expectedNonce: nonce, pcrs: sha256Bank(values) })
      t.equal(v.ok, true, v.ok ? 'verifyQuote accepts it' : `${v.reason}: ${v.message}`)
      put(`q7-${alg}.pem`, publicPem(ak.public))
      put(`q7-${alg}.msg`, q.attest)
      put(`q7-${alg}.sig`, q.signature)
      put(`q7-${alg}.values`, Buffer.concat(pcrs.map((p) => values.get(p)!)))
      await t.resolves(sw.tool('tpm2_checkquote', [
        '-u', `q7-${alg}.pem`, '-m', `q7-${alg}.msg`, '-s', `q7-${alg}.sig`, '-g', 'sha256', '-q', nonce.toString('hex'),
        '-f', `q7-${alg}.values`, '-l', `sha256:${pcrs.join(',')}`,
      ]), 'tpm2_checkquote accepts it')
    })
  }

  t.test('pcrRead agrees with tpm2_pcrread; pcrExtend makes PCR = H(old ‖ digest)', async (t) => {
    const digest = randomBytes(32)
    const { before, after, all } = await withTpm(sw, async (tpm) => {
      const before = (await tpm.pcrRead({ pcrs: [16], bank: 'sha256' })).get(16)!
      await tpm.pcrExtend({ pcr: 16, digests: { sha256: digest } })
      const after = (await tpm.pcrRead({ pcrs: [16], bank: 'sha256' })).get(16)!
      const all = await tpm.pcrRead({ pcrs: [23, 0, 16, 8, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21, 22], bank: 'sha256' })
      return { before, after, all }
    })
    t.equal(after.toString('hex'), sha256(before, digest).toString('hex'), 'H(old ‖ digest)')
    t.same([...all.keys()], Array.from({ length: 24 }, (_, i) => i), 'all 24 PCRs, ascending, over several TPM2_PCR_Read calls')
    const out = await sw.tool('tpm2_pcrread', ['sha256'])
    for (const [pcr, v] of all) {
      const m = new RegExp(`^\\s+${pcr}\\s*:\\s*0x([0-9A-F]+)\\s*$`, 'm').exec(out.stdout)
      t.equal(v.toString('hex').toUpperCase(), m?.[1], `PCR ${pcr} = tpm2_pcrread`)
    }
  })

  t.test('the SHA-1 bank is not allocated on this swtpm: a readable error, not an empty answer', async (t) => {
    await withTpm(sw, async (tpm) => {
      await t.rejects(tpm.pcrRead({ pcrs: [0], bank: 'sha1' }), { code: 'ERR_TPM_PCR_UNAVAILABLE', message: /PCR 0/ })
    })
  })

  t.test('getRandom returns exactly the length asked for, looping over short answers', async (t) => {
    await withTpm(sw, async (tpm) => {
      for (const n of [0, 1, 31, 32, 64, 65, 1000]) {
        const r = await tpm.getRandom(n)
        t.equal(r.length, n, `${n} bytes`)
      }
      const a = await tpm.getRandom(64)
      const b = await tpm.getRandom(64)
      t.not(a.toString('hex'), b.toString('hex'), 'two draws differ')
    })
  })

  t.test('errors: readable, with the ESAPI command and the RC text', async (t) => {
    await withTpm(sw, async (tpm) => {
      await t.rejects(tpm.quote({ nonce: randomBytes(8), pcrs: [0], bank: 'sha256' }), { name: 'TpmError', code: 'ERR_TPM_NO_AK', message: /createAk/ },
        'quote before createAk')
      await t.rejects(tpm.activateCredential({ credentialBlob: Buffer.from('0000', 'hex'), secret: Buffer.from('0000', 'hex') }), { code: 'ERR_TPM_NO_AK' },
        'activateCredential before createAk')

      const ek = await tpm.readEk({ alg: 'rsa' })
      const ak = await tpm.createAk({ alg: 'rsa' })
      const made = makeCredential({ ekPublic: decodePublic(ek.public), akName: ak.name, credential: randomBytes(32) })
      if (!made.ok) throw new Error(made.error.message)
      const blob = Buffer.from(made.value.credentialBlob)
      blob[blob.length - 1]! ^= 0x55 // inside encIdentity: the outer HMAC no longer matches
      const e = await tpm.activateCredential({ credentialBlob: blob, secret: made.value.secret }).catch((e: unknown) => e) as TpmError
      t.ok(e instanceof TpmError)
      t.match(e.code, RC_CODE, 'code = the TSS2_RC in hex')
      t.equal(e.command, 'Esys_ActivateCredential')
      t.match(e.rcName, /^TPM2_RC_INTEGRITY \(parameter 1\)$/)
      t.match(e.rcText, /integrity/)
      t.match(e.message, /^Esys_ActivateCredential: TPM2_RC_INTEGRITY \(parameter 1\): tpm:parameter\(1\):integrity check failed \(0x[0-9a-f]{8}\) in activateCredential\(\)$/)
      t.comment(e.message)

      const secret = Buffer.from(made.value.secret)
      secret[10]! ^= 0xff // the RSA-OAEP seed no longer decrypts
      const e2 = await tpm.activateCredential({ credentialBlob: made.value.credentialBlob, secret }).catch((e: unknown) => e) as TpmError
      t.match(e2, { code: RC_CODE, command: 'Esys_ActivateCredential', rcName: /^TPM2_RC_/ }, 'a corrupted secret')
      t.comment(e2.message)

      await t.rejects(tpm.activateCredential({ credentialBlob: blob.subarray(0, 10), secret: made.value.secret }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
        'a blob that is not one TPM2B_ID_OBJECT is refused before the TPM sees it')
      await t.rejects(tpm.quote({ nonce: randomBytes(65), pcrs: [0], bank: 'sha256' }), { code: 'ERR_INVALID_ARG_VALUE' })
      await t.rejects(tpm.quote({ nonce: randomBytes(8), pcrs: [24], bank: 'sha256' }), { code: 'ERR_INVALID_ARG_VALUE' })
      await t.rejects(tpm.pcrExtend({ pcr: 16, digests: { sha256: randomBytes(20) } }), { code: 'ERR_INVALID_ARG_VALUE' })
      await t.rejects(tpm.getRandom(-1), { code: 'ERR_INVALID_ARG_VALUE' })
      // Still usable after all of that.
      const q = await tpm.quote({ nonce: randomBytes(8), pcrs: [0], bank: 'sha256' })
      t.ok(q.attest.length > 0, 'the Tpm still works')
      t.same(await tpm.handles(), { transient: expectedTransient(ek, ak), sessions: [] }, 'no leftovers from the failures')
    })
  })

  t.test('open: an unreachable TPM fails with the TCTI error', async (t) => {
    const { Tpm } = await import('../../agent/tpm/index.js')
    // A socket path of our own where nothing listens.
    const e = await Tpm.open(`swtpm:path=${join(sw.dir, 'nobody.sock')}`).catch((e: unknown) => e) as TpmError
    t.ok(e instanceof TpmError)
    t.match(e, { code: RC_CODE, command: /^(Tss2_TctiLdr_Initialize|Esys_GetCapability)$/ })
    t.comment(e.message)
    await t.rejects(Tpm.open(''), { code: 'ERR_INVALID_ARG_VALUE' }, 'an empty TCTI string is refused, never "any TPM"')
  })
}
