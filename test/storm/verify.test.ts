/**
 * How the simulator checks the bytes each node received, cheaply but fully:
 * References (test/storm/sim.ts) hashes the first copy of a digest and compares
 * later copies with it; tftpGet with `expect` (test/storm/tftp-client.ts)
 * compares each DATA block with the verified file as it arrives, here against
 * netboot's own TFTP server on loopback; HttpPool with `compare` (test/storm/http.ts)
 * compares an HTTP body as it arrives. A single flipped octet, a short or a long
 * copy all fail.
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { References } from './sim.js'
import { tftpGet, TftpFailure } from './tftp-client.js'
import { HttpPool, type HttpAnswer } from './http.js'
import { pseudoRandomBytes, startServer, tempDir } from '../tftp/helpers.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('References: the first copy is hashed, later copies compared; any difference fails', async (t) => {
  const data = pseudoRandomBytes(100_000, 4)
  const digest = sha(data)
  const refs = new References()
  t.equal(refs.add(digest, pseudoRandomBytes(100_000, 5)), false, 'bytes that do not hash to the digest are not a reference')
  t.equal(refs.get(digest), undefined)
  t.ok(refs.matches(digest, [data.subarray(0, 40_000), data.subarray(40_000)]), 'the first copy, in two parts, hashes right')
  t.ok(refs.get(digest), 'and is the reference now')
  t.ok(refs.matches(digest, [Buffer.from(data)]), 'a later equal copy matches')
  const flipped = Buffer.from(data)
  flipped[77_777]! ^= 1
  t.notOk(refs.matches(digest, [flipped]), 'one flipped octet fails')
  t.notOk(refs.matches(digest, [data.subarray(0, 99_999)]), 'a short copy fails')
  t.notOk(refs.matches(digest, [data, Buffer.from([0])]), 'a long copy fails')
  t.notOk(refs.matches(sha(flipped), [data]), 'another digest, first seen with the wrong bytes, fails')
})

t.test('tftpGet with expect: every block compared with the verified file', async (t) => {
  const root = await tempDir(t)
  const data = pseudoRandomBytes(74_000, 6)
  await writeFile(path.join(root, 'undionly.kpxe'), data)
  const { port } = await startServer(t, { root })
  const get = { server: '127.0.0.1', port, file: 'undionly.kpxe', blksize: 1432, retries: 3, firstTimeoutMs: 500, deadlineMs: 20_000 }
  const hashed = await tftpGet(get)
  t.equal(hashed.sha256, sha(data), 'without expect the bytes are hashed')
  const ok = await tftpGet({ ...get, expect: data })
  t.same([ok.matched, ok.bytes, ok.sha256], [true, data.length, undefined], 'with expect: compared, not hashed')
  const wrong = Buffer.from(data)
  wrong[50_000]! ^= 0x80
  const bad = await tftpGet({ ...get, expect: wrong }).then(() => null, (e: unknown) => e)
  t.ok(bad instanceof TftpFailure && bad.code === 'TFTP_MISMATCH', `a different octet fails the transfer (${(bad as Error)?.message})`)
  const longer = await tftpGet({ ...get, expect: Buffer.concat([data, Buffer.from([1])]) }).then(() => null, (e: unknown) => e)
  t.ok(longer instanceof TftpFailure && longer.code === 'TFTP_MISMATCH', `fewer octets than the file fails (${(longer as Error)?.message})`)
})

t.test('HttpPool with compare: a body checked against the verified bytes as it arrives, not kept', async (t) => {
  const data = pseudoRandomBytes(300_000, 7)
  const flipped = Buffer.from(data)
  flipped[250_000]! ^= 1
  const server = createServer((req, res) => {
    const body = req.url === '/flipped' ? flipped : req.url === '/long' ? Buffer.concat([data, Buffer.from([0])]) : req.url === '/tail' ? data.subarray(100_000) : data
    res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-length': req.url === '/missing' ? 9 : body.length })
    res.end(req.url === '/missing' ? 'not found' : body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const pool = new HttpPool(4)
  t.teardown(() => pool.close())
  const get = async (path: string, at = 0): Promise<HttpAnswer> => await pool.call('GET', `${base}${path}`, { timeoutMs: 10_000, compare: { ref: data, at } })
  const ok = await get('/same')
  t.same([ok.compared, ok.body.length], [{ length: data.length, equal: true }, 0], 'equal, and the body not kept')
  t.same((await get('/flipped')).compared, { length: data.length, equal: false }, 'one flipped octet')
  t.same((await get('/long')).compared, { length: data.length + 1, equal: false }, 'one octet past the reference')
  t.same((await get('/tail', 100_000)).compared, { length: 200_000, equal: true }, 'a range at its offset')
  t.same((await get('/tail', 99_999)).compared?.equal, false, 'a range at the wrong offset')
  const miss = await get('/missing')
  t.same([miss.status, miss.compared, miss.body.toString()], [404, undefined, 'not found'], 'an error answer is kept, not compared')
})
