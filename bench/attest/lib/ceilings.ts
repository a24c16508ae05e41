/**
 * Stage (a): what node:crypto (and jose) can do on one core, next to the server's
 * own building blocks made of them, measured in the same run. Synchronous
 * operations loop on this thread; jose's ES256 signing is asynchronous
 * (WebCrypto), so it runs one signature at a time, which also keeps it to about
 * one core.
 */
import {
  constants, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, publicEncrypt, randomBytes, sign, verify, createHash, type KeyObject,
} from 'node:crypto'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { SignJWT, importJWK, exportJWK } from 'jose'
import { TPM_ALG } from '../../../server/attest/tpm/alg.js'
import { REFERENCE } from '../../../test/attest/helpers.js'
import { SoftTpm } from '../../../test/sim/soft-tpm.js'
import type { Dist } from './dist.js'
import { FIRMWARE } from './fleet.js'
import { round } from './measure.js'

export interface Ceiling { op: string; kind: 'node:crypto' | 'jose' | 'server'; opsPerSec: number; usPerOp: number; n: number; note?: string }

/** Runs `fn` for about `ms` (at most `maxOps` times) after a warm-up; ops per second. */
function rate (fn: () => unknown, ms: number, maxOps = 2_000_000): { opsPerSec: number; n: number } {
  for (let i = 0; i < 50; i++) fn()
  let n = 0
  const t0 = performance.now()
  let t1 = t0
  while (t1 - t0 < ms && n < maxOps) {
    for (let i = 0; i < 20; i++) fn()
    n += 20
    t1 = performance.now()
  }
  return { opsPerSec: (n * 1000) / (t1 - t0), n }
}

async function rateAsync (fn: () => Promise<unknown>, ms: number, maxOps = 1_000_000): Promise<{ opsPerSec: number; n: number }> {
  for (let i = 0; i < 50; i++) await fn()
  let n = 0
  const t0 = performance.now()
  let t1 = t0
  while (t1 - t0 < ms && n < maxOps) {
    await fn()
    n++
    t1 = performance.now()
  }
  return { opsPerSec: (n * 1000) / (t1 - t0), n }
}

export async function ceilings (d: Dist, ms: number): Promise<Ceiling[]> {
  const out: Ceiling[] = []
  const add = (op: string, kind: Ceiling['kind'], r: { opsPerSec: number; n: number }, note?: string): void => {
    out.push({ op, kind, opsPerSec: round(r.opsPerSec), usPerOp: round(1e6 / r.opsPerSec, 1), n: r.n, ...(note !== undefined ? { note } : {}) })
  }
  const rsa = SoftTpm.create({ ek: 'rsa', ak: 'rsa' })
  const ecc = SoftTpm.create({ ek: 'ecc', ak: 'ecc' })
  const pub = (b: Buffer): KeyObject => {
    const r = d.tpm.publicKeyObject((d.tpm.decodeTpm2bPublic(b) as { ok: true; value: Parameters<typeof d.tpm.publicKeyObject>[0] }).value)
    if (!r.ok) throw new Error(r.error.message)
    return r.value
  }
  const rsaEk = pub(rsa.ekPublic)
  const rsaAk = pub(rsa.akPublic)
  const eccEk = pub(ecc.ekPublic)
  const eccAk = pub(ecc.akPublic)
  const label = Buffer.from('IDENTITY\0', 'latin1')
  const seed = randomBytes(32)
  const nonce = randomBytes(32)
  const qr = rsa.quote(nonce, [0, 1, 2, 3, 4, 5, 6, 7])
  const qe = ecc.quote(nonce, [0, 1, 2, 3, 4, 5, 6, 7])
  const rsaSig = qr.signature.subarray(6) // sigAlg u16 ‖ hash u16 ‖ size u16 ‖ sig
  const eccSig = Buffer.concat([qe.signature.subarray(6, 38), qe.signature.subarray(40, 72)]) // r, s (32 bytes each on P-256)
  const eph = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey

  add('RSA-2048 OAEP-SHA256 encrypt', 'node:crypto', rate(() => publicEncrypt({ key: rsaEk, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, seed), ms))
  add('RSA-2048 PKCS#1 v1.5 SHA-256 verify', 'node:crypto', rate(() => verify('sha256', qr.attest, rsaAk, rsaSig) || fail('rsa verify'), ms))
  add('P-256 ECDSA SHA-256 verify', 'node:crypto', rate(() => verify('sha256', qe.attest, { key: eccAk, dsaEncoding: 'ieee-p1363' }, eccSig) || fail('ecdsa verify'), ms))
  add('P-256 ECDH', 'node:crypto', rate(() => diffieHellman({ privateKey: eph, publicKey: eccEk }), ms))
  add('P-256 key generation + ECDH', 'node:crypto', rate(() => diffieHellman({ privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, publicKey: eccEk }), ms), 'what MakeCredential does for an ECC EK')
  const es = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  add('ES256 sign (P-256 ECDSA)', 'node:crypto', rate(() => sign('sha256', nonce, { key: es.privateKey, dsaEncoding: 'ieee-p1363' }), ms))
  // through PKCS#8: a JWK export of a generateKeyPairSync key can deadlock (test/attest/helpers.ts publicJwkOf)
  const jwk = await exportJWK(createPrivateKey({ key: es.privateKey.export({ format: 'der', type: 'pkcs8' }), format: 'der', type: 'pkcs8' }))
  const joseKey = await importJWK(jwk, 'ES256')
  const claims = { groups: ['compute'], att: 'b3a0c1f2-0000-4000-8000-000000000000', cnf: { jkt: 'x'.repeat(43) } }
  add('ES256 JWT sign (jose SignJWT, one in flight)', 'jose', await rateAsync(async () => await new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'at+jwt' }).setIssuer('http://x').setAudience('netboot-node').setSubject('nid00001')
    .setIssuedAt().setExpirationTime('15m').setJti('j').sign(joseKey), ms))

  const evlog = loadTypicalLog()
  add(`SHA-256 of a typical event log (${evlog.bytes.length} bytes)`, 'node:crypto', rate(() => createHash('sha256').update(evlog.bytes).digest(), ms), evlog.what)
  add('P-256 public key import (JWK)', 'node:crypto', rate(() => createPublicKey({ key: eccAk.export({ format: 'jwk' }), format: 'jwk' }), ms / 2))
  add('RSA-2048 public key import (JWK)', 'node:crypto', rate(() => createPublicKey({ key: rsaAk.export({ format: 'jwk' }), format: 'jwk' }), ms / 2))

  // the server's building blocks (dist/), one call each
  const akName = rsa.akName
  const ekR = (d.tpm.decodeTpm2bPublic(rsa.ekPublic) as { ok: true; value: Parameters<typeof d.tpm.makeCredential>[0]['ekPublic'] }).value
  const ekE = (d.tpm.decodeTpm2bPublic(ecc.ekPublic) as { ok: true; value: Parameters<typeof d.tpm.makeCredential>[0]['ekPublic'] }).value
  add('makeCredential, RSA-2048 EK', 'server', rate(() => d.tpm.makeCredential({ ekPublic: ekR, akName, credential: seed }).ok || fail('mc'), ms))
  add('makeCredential, P-256 EK', 'server', rate(() => d.tpm.makeCredential({ ekPublic: ekE, akName, credential: seed }).ok || fail('mc'), ms))
  const qin = (t: SoftTpm, q: typeof qr) => ({ akPublic: t.akPublic, attest: q.attest, signature: q.signature, expectedNonce: nonce, pcrs: d.tpm.pcrBanks([[TPM_ALG.SHA256, q.pcrValues]]) })
  add('verifyQuote, RSA-2048 AK', 'server', rate(() => d.tpm.verifyQuote(qin(rsa, qr)).ok || fail('vq'), ms))
  add('verifyQuote, P-256 AK', 'server', rate(() => d.tpm.verifyQuote(qin(ecc, qe)).ok || fail('vq'), ms))
  add(`event log parse + replay, every bank (${evlog.what})`, 'server', rate(() => d.eventlog.replay((d.eventlog.parseEventLog(evlog.bytes) as { ok: true; value: { events: Parameters<typeof d.eventlog.replay>[0] } }).value.events), ms))
  const sim = SoftTpm.create({ ek: 'ecc', ak: 'ecc', ...FIRMWARE, banks: [...FIRMWARE.banks] }).eventLog
  const events = (log: Buffer) => (d.eventlog.parseEventLog(log) as { ok: true; value: { events: Parameters<typeof d.eventlog.replay>[0] } }).value.events
  add(`event log parse + replay, every bank (the benchmark's soft TPM log, ${sim.length} bytes, SHA-1/256)`, 'server', rate(() => d.eventlog.replay(events(sim)), ms))
  // what the service asks for: the quoted bank (a build without the bank argument replays every bank here too)
  add('event log parse + replay of the SHA-256 bank (the same log)', 'server', rate(() => d.eventlog.replay(events(sim), [TPM_ALG.SHA256]), ms))
  return out
}

function fail (what: string): never { throw new Error(`ceiling check failed: ${what}`) }

function loadTypicalLog (): { bytes: Buffer; what: string } {
  try {
    return { bytes: readFileSync(`${REFERENCE}/ubuntu2104.evlog`), what: 'real Ubuntu 21.04 UEFI log: 106 events, SHA-1/256/384' }
  } catch {
    const tpm = SoftTpm.create({ ek: 'ecc', ak: 'ecc', ...FIRMWARE, banks: [...FIRMWARE.banks] })
    return { bytes: tpm.eventLog, what: 'soft TPM log (the reference log is not on this machine)' }
  }
}
