/**
 * The steps' logic with injected fakes (no TPM, no server, no root): backoff and
 * jitter, the network wait, the pending poll, the checks on the attestation answer
 * and on the decrypted seed, sysfs readers, console lines, the error catalogue.
 */
import { createHash, generateKeyPairSync } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import t from 'tap'
import { attest as wire } from '../../proto/index.js'
import { ceiling, equalJitter, fullJitter, type Clock } from '../../agent/backoff.js'
import { createBootKey, dpopProof, qualifyingData } from '../../agent/bootkey.js'
import { parseCmdline } from '../../agent/cmdline.js'
import { AGENT_ERROR_CODES, EXIT_CODES, AgentError, asAgentError } from '../../agent/errors.js'
import { readDmi, readEventLog, readMacs, MAX_EVENT_LOG } from '../../agent/hardware.js'
import { ServerApi, describeFetchError, parseRetryAfter, refusalOf } from '../../agent/http.js'
import { formatLine, memoryLog } from '../../agent/log.js'
import { checkResult, refusalError, waitForDecision, type AttestDeps, type TpmKeys } from '../../agent/steps/attest.js'
import { waitForNetwork } from '../../agent/steps/network.js'
import { parseSeed } from '../../agent/steps/secrets.js'
import { extendValue, measureRootfs, ROOTFS_PCR } from '../../agent/steps/measure.js'
import { TpmError, type Tpm } from '../../agent/tpm/index.js'
import { parseContentRange } from '../../agent/steps/rootfs.js'
import { tempDir } from '../helpers/tmp.js'
import { fakeSysfs } from './helpers.js'

/** A clock whose sleeps return at once and move time forward. */
function fakeClock (start = 1_700_000_000_000): Clock & { sleeps: number[] } {
  let now = start
  const sleeps: number[] = []
  return { sleeps, now: () => now, sleep: async (ms) => { sleeps.push(ms); now += ms } }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })

t.test('backoff: exponential ceiling with a cap; full and equal jitter stay in their ranges', async (t) => {
  const b = { baseMs: 100, capMs: 1000 }
  t.same([0, 1, 2, 3, 4, 10, 100].map((n) => ceiling(b, n)), [100, 200, 400, 800, 1000, 1000, 1000])
  t.equal(fullJitter(b, 3, () => 0), 0)
  t.equal(fullJitter(b, 3, () => 0.999999), 799)
  t.equal(equalJitter(b, 3, () => 0), 400, 'equal jitter never less than half the ceiling')
  t.equal(equalJitter(b, 3, () => 0.999999), 799)
})

t.test('network: polls /healthz with equal jitter until it answers, learns the server clock', async (t) => {
  const clock = fakeClock()
  let calls = 0
  const fetchFn = (async (url: string) => {
    calls++
    t.equal(url, 'http://srv:8080/healthz')
    if (calls <= 2) throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })
    if (calls === 3) return new Response('', { status: 503 })
    return new Response('{"status":"ok"}', { status: 200, headers: { date: new Date(clock.now() + 120_000).toUTCString() } })
  }) as unknown as typeof fetch
  const api = new ServerApi({ base: 'http://srv:8080/', fetch: fetchFn, clock, timeoutMs: 1000 })
  const log = memoryLog()
  const r = await waitForNetwork({ api, random: () => 0.5, log }, { waitMs: 60_000, backoff: { baseMs: 1000, capMs: 4000 }, probeTimeoutMs: 500 })
  t.equal(r.tries, 4)
  t.same(clock.sleeps, [750, 1500, 3000], 'equal jitter: ceiling/2 + 0.5·ceiling/2')
  t.ok(Math.abs(api.offsetMs - 120_000) <= 1000, 'the Date header sets the server clock offset')
  t.match(log.lines, [
    'info network: waiting for http://srv:8080: ECONNREFUSED; next try in 0.8 s',
    'info network: waiting for http://srv:8080: HTTP 503; next try in 3.0 s',
    /^info network: http:\/\/srv:8080 answers after 4 tries, 5\.3 s; server clock \+1(19|20)\.\d s from ours$/,
  ], 'one line per change of reason')
  t.equal(log.lines.length, 3)
  const never = new ServerApi({ base: 'http://srv', fetch: (async () => { throw new Error('x') }) as unknown as typeof fetch, clock: fakeClock(), timeoutMs: 1 })
  await t.rejects(waitForNetwork({ api: never, random: () => 0, log }, { waitMs: 5000, backoff: { baseMs: 1000, capMs: 1000 }, probeTimeoutMs: 1 }), { code: 'AGENT_NETWORK_TIMEOUT', failure: 'network' })
})

t.test('pending: polls start with capped backoff until a challenge arrives; network errors are part of waiting', async (t) => {
  const clock = fakeClock()
  const challenge = Buffer.from(wire.AttestChallenge.encode({ session: 's1', credentialBlob: Buffer.alloc(40, 1), encryptedSecret: Buffer.alloc(258, 2), nonce: Buffer.alloc(32, 3), pcrs: [7, 0, 1, 0], bank: 'sha256' }).finish())
  const answers: (() => Response)[] = [
    () => json(403, { error: { code: 'ATTEST_PENDING', message: 'TPM identity 4 awaits an admin decision' } }),
    () => json(403, { error: { code: 'ATTEST_PENDING', message: 'TPM identity 4 awaits an admin decision' } }),
    () => { throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }) },
    () => json(503, { error: { code: 'INTERNAL', message: 'restarting' } }),
    () => json(403, { error: { code: 'ATTEST_PENDING', message: 'TPM identity 4 awaits an admin decision' } }),
    () => new Response(challenge, { status: 200, headers: { 'content-type': 'application/x-protobuf' } }),
  ]
  const bodies: Uint8Array[] = []
  const fetchFn = (async (_url: string, init: RequestInit) => { bodies.push(init.body as Uint8Array); return answers.shift()!() }) as unknown as typeof fetch
  const api = new ServerApi({ base: 'http://srv', fetch: fetchFn, clock, timeoutMs: 1000 })
  const log = memoryLog()
  const keys = { ek: { public: Buffer.from('ekpub'), cert: Buffer.from('cert') }, ak: { public: Buffer.from('akpub') }, ekSha256: 'ab'.repeat(32) } as unknown as TpmKeys
  const d: AttestDeps = {
    api, tpm: undefined as never, bootKey: await createBootKey(), log,
    facts: { macs: ['02:00:00:00:00:01'], hardware: { vendor: 'V' }, eventLog: Buffer.alloc(0) },
    cmdline: parseCmdline(`netboot.server=http://srv netboot.node=n1 netboot.image=i@sha256:${'0'.repeat(64)} netboot.mode=boot`),
  }
  const ch = await waitForDecision(d, keys, { waitMs: 3_600_000, backoff: { baseMs: 5000, capMs: 20_000 } }, () => 0, { status: 403, code: 'ATTEST_PENDING', message: 'recorded as identity 4' })
  t.equal(ch.session, 's1')
  t.same(ch.pcrs, [0, 1, 7], 'PCR list deduplicated and sorted')
  t.same(clock.sleeps, [2500, 5000, 10_000, 10_000, 10_000, 10_000], 'equal jitter, capped at 20 s')
  const start = wire.AttestStart.decode(bodies[0]!)
  t.match(start, { version: 1, nodeHint: 'n1', macs: ['02:00:00:00:00:01'], image: `i@sha256:${'0'.repeat(64)}`, hardware: { vendor: 'V' } })
  t.equal(log.lines.filter((l) => l.includes('ATTEST_PENDING')).length, 3, 'a refusal is printed when it changes (after the reset and the 503), not on every poll')

  // a refusal that is not "pending" ends the wait
  answers.push(() => json(403, { error: { code: 'ATTEST_REJECTED', message: 'an admin rejected this TPM' } }))
  await t.rejects(waitForDecision(d, keys, { waitMs: 60_000, backoff: { baseMs: 10, capMs: 10 } }, () => 0), { code: 'AGENT_ATTEST_REJECTED', failure: 'refused', retryable: false })
  // and the wait is bounded
  for (let i = 0; i < 100; i++) answers.push(() => json(403, { error: { code: 'ATTEST_UNKNOWN_NODE', message: 'x' } }))
  await t.rejects(waitForDecision(d, keys, { waitMs: 60_000, backoff: { baseMs: 10_000, capMs: 10_000 } }, () => 0), { code: 'AGENT_PENDING_TIMEOUT', failure: 'pending' })
})

t.test('refusals: which server codes are retried', async (t) => {
  const r = (code?: string, status = 403) => refusalError('x', { status, ...(code !== undefined ? { code } : {}), message: 'm' })
  t.match(r('ATTEST_SESSION_UNKNOWN'), { code: 'AGENT_ATTEST_REFUSED', retryable: true })
  t.match(r('ATTEST_PCR_MISMATCH'), { retryable: true })
  for (const c of ['ATTEST_EK_MISMATCH', 'ATTEST_POLICY_VIOLATION', 'ATTEST_BAD_QUOTE', 'ATTEST_BAD_REQUEST', 'ATTEST_UNKNOWN_EK']) t.match(r(c), { code: 'AGENT_ATTEST_REFUSED', retryable: false, serverCode: c })
  t.match(r('ATTEST_REJECTED'), { code: 'AGENT_ATTEST_REJECTED', retryable: false })
  t.match(r(undefined, 404).message, /is attestation enabled on the server/)
  t.same(refusalOf(429, new Headers({ 'retry-after': '7' }), Buffer.from('slow down')), { status: 429, retryAfter: 7, message: 'slow down' })
  t.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'), undefined, 'HTTP-date Retry-After is not used')
  t.equal(describeFetchError(Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' } })), 'ECONNREFUSED')
  t.equal(describeFetchError(Object.assign(new Error('x'), { name: 'TimeoutError' }), 5000), 'no answer within 5 s')
})

t.test('the attestation result is checked against itself and this boot key', async (t) => {
  const key = await createBootKey()
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  const D = 'c'.repeat(64)
  const token = async (claims: Record<string, unknown>): Promise<string> => await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(signer)
  const good = { sub: 'nid001', cnf: { jkt: key.thumbprint }, img: `compute@sha256:${D}` }
  const result = async (o: { claims?: Record<string, unknown>; node?: string; url?: string; sha?: string } = {}): Promise<Uint8Array> => wire.AttestResult.encode({
    token: await token(o.claims ?? good), expiresAt: 1_900_000_000, node: o.node ?? 'nid001', groups: ['compute'], attestationId: 'a1',
    rootfsUrl: o.url ?? `http://srv/images/${D}/rootfs.squashfs`, rootfsSha256: o.sha ?? D,
  }).finish()
  t.match(checkResult(await result(), key), { node: 'nid001', expiresAt: 1_900_000_000, rootfs: { url: `http://srv/images/${D}/rootfs.squashfs`, sha256: D } })
  const bad: [string, Parameters<typeof result>[0], RegExp][] = [
    ['token for another node', { claims: { ...good, sub: 'nid002' } }, /token is for nid002/],
    ['token bound to another key', { claims: { ...good, cnf: { jkt: 'x' } } }, /bound to another key/],
    ['token issued for another image', { claims: { ...good, img: `compute@sha256:${'d'.repeat(64)}` } }, /token was issued for compute@sha256:d{64}/],
    ['digest not hex', { sha: 'C'.repeat(64) }, /not 64 lower-case hex/],
    ['file: URL', { url: 'file:///etc/shadow' }, /scheme file:/],
    ['URL without digest', { sha: '' }, /URL without a digest/],
  ]
  for (const [name, o, re] of bad) {
    try {
      checkResult(await result(o), key)
      t.fail(name)
    } catch (e) {
      t.match(e, { code: 'AGENT_ATTEST_INVALID', failure: 'refused' }, name)
      t.match((e as Error).message, re)
    }
  }
  t.throws(() => checkResult(Buffer.from([0xff, 0xff]), key), { code: 'AGENT_ATTEST_INVALID' }, 'garbage')
})

t.test('boot key: quote binding, DPoP proof shape', async (t) => {
  const key = await createBootKey()
  t.same(Object.keys(key.jwk).sort(), ['crv', 'kty', 'x', 'y'], 'the public JWK only')
  t.equal(JSON.parse(key.bytes.toString()).d, undefined)
  t.equal(qualifyingData(Buffer.alloc(32), key).length, 32)
  const proof = await dpopProof(key, 'tok', 'GET', 'http://srv/cloud-init-secure/n1', 1_800_000_000)
  const [h, p] = proof.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url').toString()))
  t.match(h, { alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
  t.match(p, { htm: 'GET', htu: 'http://srv/cloud-init-secure/n1', iat: 1_800_000_000, ath: createHash('sha256').update('tok').digest('base64url') })
  t.ok(typeof p.jti === 'string' && p.jti.length >= 20, 'a fresh jti')
})

t.test('the decrypted seed must be a NoCloud seed', async (t) => {
  const ok = { instanceId: 'iid-1', metaData: 'instance-id: iid-1\nlocal-hostname: n\n', userData: '#cloud-config\n{}\n', vendorData: '' }
  t.same(parseSeed(Buffer.from(JSON.stringify(ok))), ok)
  t.same(parseSeed(Buffer.from(JSON.stringify({ ...ok, networkConfig: 'version: 2\n' }))).networkConfig, 'version: 2\n')
  for (const [name, v, re] of [
    ['not JSON', 'x', /is not JSON/], ['no userData', JSON.stringify({ ...ok, userData: undefined }), /lacks userData/],
    ['no instance-id', JSON.stringify({ ...ok, metaData: 'local-hostname: n\n' }), /meta-data has no instance-id/],
    ['network-config not text', JSON.stringify({ ...ok, networkConfig: {} }), /networkConfig that is not text/],
  ] as const) t.throws(() => parseSeed(Buffer.from(v)), { code: 'AGENT_SECRETS_INVALID', message: re }, name)
})

t.test('sysfs: physical Ethernet NICs only; DMI with placeholders dropped; the event log', async (t) => {
  const dir = tempDir(t)
  const sys = fakeSysfs(dir, { macs: ['02:00:00:00:00:0B', '02:00:00:00:00:0a'], serial: 'To Be Filled By O.E.M.', vendor: 'Acme\u0007 Corp', uuid: 'ABCD' })
  // an InfiniBand port (type 32, 20-byte address) and a NIC whose address reads all zeros
  for (const [name, type, addr] of [['ib0', '32', '80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0f:4e:a1'], ['eth9', '1', '00:00:00:00:00:00']]) {
    mkdirSync(join(sys, 'class/net', name!), { recursive: true })
    writeFileSync(join(sys, 'class/net', name!, 'type'), `${type}\n`)
    writeFileSync(join(sys, 'class/net', name!, 'address'), `${addr}\n`)
    mkdirSync(join(sys, 'class/net', name!, 'device'))
  }
  t.same(await readMacs(sys), ['02:00:00:00:00:0a', '02:00:00:00:00:0b'], 'sorted, lower case; lo, br0, ib0 and the zero MAC left out')
  t.same(await readDmi(sys), { systemUuid: 'abcd', vendor: 'Acme Corp' })
  t.same(await readMacs(join(dir, 'nothing')), [])
  t.match(await readEventLog(sys), { log: Buffer.alloc(0), note: /no firmware event log/ })
  mkdirSync(join(sys, 'kernel/security/tpm0'), { recursive: true })
  writeFileSync(join(sys, 'kernel/security/tpm0/binary_bios_measurements'), Buffer.from('log'))
  t.same((await readEventLog(sys)).log, Buffer.from('log'))
  writeFileSync(join(sys, 'kernel/security/tpm0/binary_bios_measurements'), Buffer.alloc(MAX_EVENT_LOG + 1))
  t.match(await readEventLog(sys), { log: Buffer.alloc(0), note: /more than the 1048576 the server takes/ })
})

t.test('measure: every active bank extended, and the PCR must end at H(before ‖ digest)', async (t) => {
  const image = { sha256: createHash('sha256').update('img').digest(), sha1: createHash('sha1').update('img').digest() }
  const fake = (banks: ('sha256' | 'sha1')[], interfere = false) => {
    const pcr: Record<'sha256' | 'sha1', Buffer> = { sha256: Buffer.alloc(32, 1), sha1: Buffer.alloc(20, 2) }
    const extends_: Record<string, string>[] = []
    const tpm = {
      pcrRead: async ({ bank }: { bank: 'sha256' | 'sha1' }) => {
        if (!banks.includes(bank)) throw new TpmError('ERR_TPM_PCR_UNAVAILABLE', 'no such bank')
        return new Map([[ROOTFS_PCR, pcr[bank]]])
      },
      pcrExtend: async ({ pcr: i, digests }: { pcr: number; digests: { sha256?: Buffer; sha1?: Buffer } }) => {
        t.equal(i, ROOTFS_PCR)
        extends_.push(Object.fromEntries(Object.entries(digests).map(([k, v]) => [k, v.toString('hex')])))
        for (const b of banks) if (digests[b] !== undefined) pcr[b] = extendValue(b, pcr[b], interfere ? Buffer.alloc(b === 'sha1' ? 20 : 32) : digests[b]!)
      },
    } as unknown as Tpm
    return { tpm, extends_ }
  }
  const one = fake(['sha256'])
  const m = await measureRootfs({ tpm: one.tpm, log: memoryLog() }, image)
  t.same(one.extends_, [{ sha256: image.sha256.toString('hex') }], 'only the active SHA-256 bank')
  t.equal(m.after.sha256, extendValue('sha256', Buffer.alloc(32, 1), image.sha256).toString('hex'))
  const both = fake(['sha256', 'sha1'])
  const m2 = await measureRootfs({ tpm: both.tpm, log: memoryLog() }, image)
  t.same(both.extends_, [{ sha256: image.sha256.toString('hex'), sha1: image.sha1.toString('hex') }], 'an active SHA-1 bank gets the SHA-1 of the image')
  t.equal(m2.after.sha1, extendValue('sha1', Buffer.alloc(20, 2), image.sha1).toString('hex'))
  await t.rejects(measureRootfs({ tpm: fake(['sha256'], true).tpm, log: memoryLog() }, image), { code: 'AGENT_MEASURE', message: /something else extended it/ })
  await t.rejects(measureRootfs({ tpm: fake(['sha1']).tpm, log: memoryLog() }, image), { code: 'AGENT_MEASURE', message: /no active SHA-256 bank/ })
})

t.test('small pure pieces: Content-Range, PCR extend, console lines', async (t) => {
  t.same(parseContentRange('bytes 10-19/20'), { start: 10, end: 19, total: 20 })
  t.equal(parseContentRange('bytes 10-19/15'), undefined)
  t.equal(parseContentRange('bytes */20'), undefined)
  t.equal(extendValue('sha256', Buffer.alloc(32), Buffer.alloc(32)).toString('hex'), 'f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b', 'extending zeros into a zero PCR = SHA-256 of 64 zero bytes')
  t.equal(formatLine('error', 'rootfs', 12_345, 'bad\nthing'), 'netboot[rootfs] +12.3s: FAILED: bad | thing')
  t.equal(formatLine('warn', 'attest', 0, 'x'), 'netboot[attest] +0.0s: WARNING: x')
})

t.test('the error catalogue: every code the agent throws is documented, and every documented code is thrown', async (t) => {
  const root = new URL('../../agent/', import.meta.url).pathname
  const files = [...readdirSync(root).filter((f) => f.endsWith('.ts')).map((f) => join(root, f)), ...readdirSync(join(root, 'steps')).map((f) => join(root, 'steps', f))]
  const used = new Set<string>()
  for (const f of files) for (const m of readFileSync(f, 'utf8').matchAll(/'(AGENT_[A-Z_]+)'/g)) used.add(m[1]!)
  const documented = Object.keys(AGENT_ERROR_CODES)
  t.same([...used].sort(), [...documented].sort())
  const main = readFileSync(join(root, 'main.ts'), 'utf8').split('*/')[0]!
  for (const [cls, code] of Object.entries(EXIT_CODES)) t.match(main, new RegExp(`\\b${code} `), `main.ts documents exit ${code} (${cls})`)
  t.equal(new Set(Object.values(EXIT_CODES)).size, Object.keys(EXIT_CODES).length, 'exit codes are distinct')
  t.match(asAgentError(new RangeError('boom')), { code: 'AGENT_INTERNAL', failure: 'internal', message: 'unexpected RangeError: boom' })
  const e = new AgentError('AGENT_MOUNT', 'mount', 'x')
  t.equal(asAgentError(e), e)
})
