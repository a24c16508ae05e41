/**
 * An attestation agent made of tpm2-tools against swtpm: the "agent-side script"
 * that proves the server's protocol with a TPM stack netboot did not write. Each
 * step can be bent to play an attacker (wrong credential, other nonce, tampered
 * quote, forged PCRs) for the attack table.
 */
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT, type JWK } from 'jose'
import { attest } from '../../proto/index.js'
import { encodeToolsCredentialFile } from '../../server/attest/tpm/index.js'
import { publicJwkOf } from './helpers.js'
import { parsePcrYaml, type Swtpm } from './swtpm-harness.js'

export interface Keys { ekPublic: Buffer; ekCert: Buffer; akPublic: Buffer }

/** EK (RSA, with its certificate from NV) and an AK under it, as tpm2-tools makes them. */
export async function makeKeys (tpm: Swtpm): Promise<Keys> {
  await tpm.tool('tpm2_createek', ['-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub'])
  await tpm.tool('tpm2_createak', ['-C', 'ek.ctx', '-c', 'ak.ctx', '-u', 'ak.pub', '-n', 'ak.name', '-G', 'rsa', '-g', 'sha256', '-s', 'rsassa'])
  await tpm.flush()
  await tpm.tool('tpm2_nvread', ['0x1c00002', '-o', 'ekcert.der'])
  const f = (n: string): Buffer => readFileSync(join(tpm.dir, n))
  return { ekPublic: f('ek.pub'), ekCert: f('ekcert.der'), akPublic: f('ak.pub') }
}

export interface Post { (path: string, body: Uint8Array): Promise<{ status: number; body: Buffer; json?: { error?: { code: string; message: string } } }> }

export interface Tamper {
  credential?: (c: Buffer) => Buffer
  quoteNonce?: (n: Buffer) => Buffer
  attest?: (a: Buffer) => Buffer
  pcrs?: (p: Map<number, Buffer>) => Map<number, Buffer>
  eventLog?: Buffer
  akPublic?: Buffer
  ekPublic?: Buffer
  ekCert?: Buffer
}

/** The agent's boot key: one P-256 key that signs DPoP proofs (ES256) and decrypts JWEs (ECDH-ES). */
export interface BootKey { jwk: JWK; privateKey: KeyObject; bytes: Buffer }

export async function bootKey (): Promise<BootKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicJwkOf(publicKey) as JWK
  return { jwk, privateKey, bytes: Buffer.from(JSON.stringify(jwk)) }
}

export type Step = { ok: true; token: string; node: string; attestationId: string; session: string; finishBody: Buffer } | { ok: false; status: number; code: string; step: 'start' | 'finish' }

/** One attestation: start, ActivateCredential, quote, finish. */
export async function attestOnce (tpm: Swtpm, keys: Keys, post: Post, macs: string[], key: BootKey, tamper: Tamper = {}): Promise<Step> {
  const start = attest.AttestStart.encode({
    version: 1, macs, ekPublic: tamper.ekPublic ?? keys.ekPublic, ekCert: tamper.ekCert ?? keys.ekCert, akPublic: tamper.akPublic ?? keys.akPublic,
  }).finish()
  const r1 = await post('/attest/v1/start', start)
  if (r1.status !== 200) return { ok: false, status: r1.status, code: r1.json?.error?.code ?? '?', step: 'start' }
  const ch = attest.AttestChallenge.decode(r1.body)
  writeFileSync(join(tpm.dir, 'cred.in'), encodeToolsCredentialFile({ credentialBlob: Buffer.from(ch.credentialBlob), secret: Buffer.from(ch.encryptedSecret) }))
  await tpm.tool('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx'])
  try {
    await tpm.tool('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e'])
    await tpm.tool('tpm2_activatecredential', ['-c', 'ak.ctx', '-C', 'ek.ctx', '-i', 'cred.in', '-o', 'cred.out', '-P', 'session:session.ctx'])
  } finally {
    await tpm.tool('tpm2_flushcontext', ['session.ctx'])
    await tpm.flush()
  }
  let credential: Buffer = readFileSync(join(tpm.dir, 'cred.out'))
  if (tamper.credential !== undefined) credential = tamper.credential(credential)

  const nonce = tamper.quoteNonce?.(Buffer.from(ch.nonce)) ?? Buffer.from(ch.nonce)
  const qualifying = createHash('sha256').update(nonce).update(key.bytes).digest()
  const q = await tpm.tool('tpm2_quote', ['-c', 'ak.ctx', '-l', `${ch.bank}:${ch.pcrs.join(',')}`, '-q', qualifying.toString('hex'), '-m', 'q.msg', '-s', 'q.sig', '-o', 'q.pcrs', '-g', 'sha256'])
  await tpm.flush()
  let pcrs = parsePcrYaml(q.stdout, ch.bank)
  if (tamper.pcrs !== undefined) pcrs = tamper.pcrs(pcrs)
  let att: Buffer = readFileSync(join(tpm.dir, 'q.msg'))
  if (tamper.attest !== undefined) att = tamper.attest(att)
  const finish = Buffer.from(attest.AttestFinish.encode({
    session: ch.session, credential, attest: att, signature: readFileSync(join(tpm.dir, 'q.sig')),
    pcrValues: Object.fromEntries([...pcrs].map(([i, v]) => [i, v])), eventLog: tamper.eventLog ?? Buffer.alloc(0), bootKey: key.bytes,
  }).finish())
  const r2 = await post('/attest/v1/finish', finish)
  if (r2.status !== 200) return { ok: false, status: r2.status, code: r2.json?.error?.code ?? '?', step: 'finish' }
  const res = attest.AttestResult.decode(r2.body)
  return { ok: true, token: res.token, node: res.node, attestationId: res.attestationId, session: ch.session, finishBody: finish }
}

/** A DPoP proof (RFC 9449) for one request, signed by the boot key. */
export async function dpop (key: BootKey, token: string, method: string, url: string, iat = Math.floor(Date.now() / 1000)): Promise<string> {
  return await new SignJWT({ htm: method, htu: url, ath: createHash('sha256').update(token).digest('base64url'), jti: randomBytes(12).toString('hex') })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
    .setIssuedAt(iat)
    .sign(key.privateKey)
}
