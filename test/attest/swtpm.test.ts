// Real-peer cross-checks against swtpm + tpm2-tools (see swtpm-harness.ts). These
// fail, never skip, when the tools are missing: install swtpm, swtpm-tools and
// tpm2-tools (Debian).
import t from 'tap'
import { X509Certificate, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { encodeToolsCredentialFile, makeCredential } from '../../server/attest/tpm/credential.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import { checkAkAttributes, computeName, decodeTpm2bPublic, publicKeyObject, type TpmtPublic } from '../../server/attest/tpm/public.js'
import { verifyQuote } from '../../server/attest/tpm/quote.js'
import { flipByte } from './helpers.js'
import { missingTools, parsePcrYaml, startSwtpm, type Swtpm } from './swtpm-harness.js'

const missing = missingTools()
if (missing.length > 0) {
  t.fail(`missing ${missing.join(', ')}: apt-get install -y swtpm swtpm-tools tpm2-tools`)
} else {
  let tpm: Swtpm
  t.before(async () => {
    tpm = await startSwtpm()
  })
  t.teardown(async () => {
    await tpm?.stop()
  })

  const file = (name: string) => readFileSync(join(tpm.dir, name))
  const pub = (name: string): TpmtPublic => {
    const r = decodeTpm2bPublic(file(name))
    if (!r.ok) throw new Error(`${name}: ${r.error.code} ${r.error.message}`)
    return r.value
  }

  /** Activates `credFile` with ActivateCredential under an EK policy session. */
  const activate = async (ak: string, ek: string, credFile: string, out: string) => {
    await tpm.tool('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx'])
    try {
      await tpm.tool('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e'])
      await tpm.tool('tpm2_activatecredential', ['-c', ak, '-C', ek, '-i', credFile, '-o', out, '-P', 'session:session.ctx'])
    } finally {
      await tpm.tool('tpm2_flushcontext', ['session.ctx'])
      await tpm.flush()
    }
    return file(out)
  }

  for (const alg of ['rsa', 'ecc'] as const) {
    t.test(`${alg}: EK, AK, Name, MakeCredential → ActivateCredential, quote`, async (t) => {
      const scheme = alg === 'rsa' ? 'rsassa' : 'ecdsa'
      await tpm.tool('tpm2_createek', ['-c', `ek-${alg}.ctx`, '-G', alg, '-u', `ek-${alg}.pub`])
      await tpm.flush()
      await tpm.tool('tpm2_createak', ['-C', `ek-${alg}.ctx`, '-c', `ak-${alg}.ctx`, '-u', `ak-${alg}.pub`, '-n', `ak-${alg}.name`, '-G', alg, '-g', 'sha256', '-s', scheme])
      await tpm.flush()

      // (a) the EK is a TCG default-template key; our Name equals the tools' AK Name.
      const ek = pub(`ek-${alg}.pub`)
      t.equal(ek.objectAttributes, 0x000300b2, 'EK attributes are the TCG template')
      const ak = pub(`ak-${alg}.pub`)
      const name = computeName(ak)
      t.ok(name.ok)
      if (!name.ok) return
      t.equal(name.value.toString('hex'), file(`ak-${alg}.name`).toString('hex'), 'Name = nameAlg ‖ H(TPMT_PUBLIC) as tpm2_createak -n')
      // (d) the tools' AK passes the AK attribute policy.
      t.same(checkAkAttributes(ak), { ok: true })

      // (b) our MakeCredential output is accepted by the TPM and yields the secret.
      for (const size of [16, 32]) {
        const credential = randomBytes(size)
        const made = makeCredential({ ekPublic: ek, akName: name.value, credential })
        if (!made.ok) return t.fail(made.error.message)
        writeFileSync(join(tpm.dir, `cred-${alg}.bin`), encodeToolsCredentialFile(made.value))
        const got = await activate(`ak-${alg}.ctx`, `ek-${alg}.ctx`, `cred-${alg}.bin`, `out-${alg}.bin`)
        t.equal(got.toString('hex'), credential.toString('hex'), `${size}-byte credential activated by the TPM`)
      }
      // A credential bound to another Name is refused by the TPM (integrity check).
      const other = makeCredential({ ekPublic: ek, akName: flipByte(name.value, -1), credential: Buffer.from('x') })
      if (!other.ok) return t.fail(other.error.message)
      writeFileSync(join(tpm.dir, `cred-${alg}-other.bin`), encodeToolsCredentialFile(other.value))
      await t.rejects(activate(`ak-${alg}.ctx`, `ek-${alg}.ctx`, `cred-${alg}-other.bin`, `out-${alg}-other.bin`), 'credential for another Name is refused')

      // (c) a quote over a fresh nonce verifies; wrong nonce, flipped byte, wrong PCRs fail.
      await tpm.tool('tpm2_pcrextend', [`16:sha256=${randomBytes(32).toString('hex')}`])
      const nonce = randomBytes(20)
      const q = await tpm.tool('tpm2_quote', ['-c', `ak-${alg}.ctx`, '-l', 'sha256:0,1,2,3,7,16', '-q', nonce.toString('hex'), '-m', `quote-${alg}.msg`, '-s', `quote-${alg}.sig`, '-o', `quote-${alg}.pcrs`, '-g', 'sha256'])
      await tpm.flush()
      const values = parsePcrYaml(q.stdout)
      t.same([...values.keys()], [0, 1, 2, 3, 7, 16])
      const pcrs = pcrBanks([[TPM_ALG.SHA256, values]])
      const input = { akPublic: file(`ak-${alg}.pub`), attest: file(`quote-${alg}.msg`), signature: file(`quote-${alg}.sig`), expectedNonce: nonce, pcrs }
      const v = verifyQuote({ ...input, requiredPcrs: new Map([[TPM_ALG.SHA256, [0, 7, 16]]]) })
      t.equal(v.ok, true, v.ok ? 'quote verifies' : `${v.reason}: ${v.message}`)
      t.match(verifyQuote({ ...input, expectedNonce: randomBytes(20) }), { ok: false, reason: 'nonce-mismatch' })
      t.match(verifyQuote({ ...input, attest: flipByte(input.attest, -10) }), { ok: false, reason: 'bad-signature' })
      const wrong = new Map(values)
      wrong.set(16, Buffer.alloc(32))
      t.match(verifyQuote({ ...input, pcrs: pcrBanks([[TPM_ALG.SHA256, wrong]]) }), { ok: false, reason: 'pcr-digest-mismatch' })
    })
  }

  t.test('(d) a signing key created without restricted fails the AK policy', async (t) => {
    await tpm.tool('tpm2_createprimary', ['-C', 'o', '-G', 'rsa2048:rsassa-sha256', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-c', 'plain.ctx'])
    await tpm.tool('tpm2_readpublic', ['-c', 'plain.ctx', '-o', 'plain.pub', '-n', 'plain.name'])
    const nonce = randomBytes(16)
    const q = await tpm.tool('tpm2_quote', ['-c', 'plain.ctx', '-l', 'sha256:0', '-q', nonce.toString('hex'), '-m', 'plain.msg', '-s', 'plain.sig', '-o', 'plain.pcrs', '-g', 'sha256'])
    await tpm.flush()
    const p = pub('plain.pub')
    const n = computeName(p)
    t.equal(n.ok && n.value.toString('hex'), file('plain.name').toString('hex'))
    t.same(checkAkAttributes(p), { ok: false, missing: ['restricted'], forbidden: [] })
    const input = { akPublic: file('plain.pub'), attest: file('plain.msg'), signature: file('plain.sig'), expectedNonce: nonce, pcrs: pcrBanks([[TPM_ALG.SHA256, parsePcrYaml(q.stdout)]]) }
    t.match(verifyQuote(input), { ok: false, reason: 'ak-attributes' }, 'a quote signed by an unrestricted key is refused')
    t.match(verifyQuote({ ...input, skipAkAttributeCheck: true }), { ok: true }, 'though its signature is valid')
  })

  t.test('EK certificate from the local CA certifies the EK we decode', async (t) => {
    await tpm.tool('tpm2_readpublic', ['-c', '0x81010001', '-o', 'ek-persistent.pub'])
    await tpm.tool('tpm2_nvread', ['0x01c00002', '-o', 'ekcert.der'])
    const cert = new X509Certificate(file('ekcert.der'))
    const ek = publicKeyObject(pub('ek-persistent.pub'))
    t.ok(ek.ok && cert.publicKey.equals(ek.value), 'certificate key = persistent EK 0x81010001')
    const createdEk = publicKeyObject(pub('ek-rsa.pub'))
    t.ok(createdEk.ok && cert.publicKey.equals(createdEk.value), 'tpm2_createek -G rsa recreates the same EK')
    const issuer = new X509Certificate(readFileSync(tpm.issuerCert))
    const root = new X509Certificate(readFileSync(tpm.rootCert))
    t.ok(cert.verify(issuer.publicKey), 'EK certificate is signed by the local CA issuer')
    t.ok(issuer.verify(root.publicKey), 'issuer is signed by the local CA root')
  })
}
