/** ~20,000 random and mutated datagrams into the codec and into a live server; it must keep serving. */

import t from 'tap'
import { encodeAck, encodeError } from '../../server/tftp/codec.js'
import { CLIENT_TOOLS, curlGet } from './clients.js'
import { checkCodec, fuzzPacket, fuzzTransfer, mutate, rng, seedPackets } from './fuzzgen.js'
import { fetchWithClient, pseudoRandomBytes, requireTools, ScriptedClient, sha256, startServer, tempDir, waitFor, writeFiles } from './helpers.js'

const COUNT = 20_000
const SEED = Number(process.env.TFTP_FUZZ_SEED ?? 0x7f7f)

t.test(`codec: ${COUNT} datagrams, seed ${SEED}`, async (t) => {
  const r = rng(SEED)
  const seeds = seedPackets()
  let failures = 0
  for (let i = 0; i < COUNT && failures < 5; i++) {
    const p = fuzzPacket(r, seeds)
    try {
      checkCodec(p)
    } catch (e) {
      failures++
      t.fail(`#${i}: ${(e as Error).message}`)
    }
  }
  t.equal(failures, 0)
})

t.test(`transfer machine: 2,000 random event sequences, seed ${SEED}`, async (t) => {
  const r = rng(SEED + 1)
  let failures = 0
  for (let i = 0; i < 2000 && failures < 5; i++) {
    try {
      fuzzTransfer(r, 300)
    } catch (e) {
      failures++
      t.fail(`#${i}: ${(e as Error).message}`)
    }
  }
  t.equal(failures, 0)
})

t.test(`live server: ${COUNT} datagrams, then a real download`, async (t) => {
  if (!requireTools(t, CLIENT_TOOLS)) return
  const root = await tempDir(t)
  const file = pseudoRandomBytes(70_000, 3)
  await writeFiles(root, { 'f.bin': file, 'small': 'hello\n' })
  const seen = { started: 0, done: 0, failed: new Map<string, number>(), refused: new Map<string, number>() }
  const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1)
  const { server, port } = await startServer(t, {
    root,
    timeoutMs: 50,
    retries: 1,
    maxTransfers: 64,
    events: {
      onTransferStart: () => seen.started++,
      onTransferDone: () => seen.done++,
      onTransferFailed: (reason) => bump(seen.failed, reason),
      onRequestRefused: (reason) => bump(seen.refused, reason),
    },
  })
  const r = rng(SEED + 2)
  const seeds = seedPackets(['f.bin', 'small'])
  const clients = await Promise.all(Array.from({ length: 32 }, () => ScriptedClient.open()))
  t.teardown(() => clients.forEach((c) => c.close()))
  /** Running transfers seen so far: server TID → the client it serves. */
  const tids = new Map<number, ScriptedClient>()
  const deadline = Date.now() + 60_000
  let sent = 0
  while (sent < COUNT && Date.now() < deadline) {
    for (let k = 0; k < 100 && sent < COUNT; k++, sent++) {
      let c = clients[Math.floor(r() * clients.length)]!
      let target = port
      if (tids.size > 0 && r() < 0.3) {
        // A mutated ACK/ERROR into a running transfer, mostly from its own peer, else from a wrong TID.
        const [tid, owner] = [...tids][Math.floor(r() * tids.size)]!
        target = tid
        if (r() < 0.8) c = owner
      }
      const pkt =
        target === port
          ? fuzzPacket(r, seeds)
          : r() < 0.5
            ? encodeAck(Math.floor(r() * 4))
            : mutate(r, r() < 0.9 ? encodeAck(Math.floor(r() * 4)) : encodeError(0, 'x'), encodeAck(1))
      void c.send(pkt, target)
    }
    for (const c of clients) for (const got of await c.drain(0)) if (got.from.port !== port) tids.set(got.from.port, c)
    if (tids.size > 64) tids.clear()
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  t.equal(sent, COUNT, 'all datagrams sent within the time bound')
  t.ok(await waitFor(() => server.activeTransfers() === 0, 10_000), 'fuzz-started transfers all end')
  t.comment(`started ${seen.started}, failed ${JSON.stringify([...seen.failed])}, refused ${JSON.stringify([...seen.refused])}`)
  t.ok(seen.started > 100, 'the fuzz reached the transfer path')
  t.ok((seen.failed.get('peer-error') ?? 0) > 0 && seen.done > 0, 'fuzzed packets drove running transfers')
  const got = await fetchWithClient(port, 'f.bin', [{ name: 'blksize', value: '1468' }])
  t.equal(sha256(got.data), sha256(file), 'scripted client download after the fuzz')
  const out = `${root}-curl.out`
  const c = await curlGet(port, 'f.bin', out, { blksize: 1468 })
  t.teardown(() => import('node:fs/promises').then((fs) => fs.rm(out, { force: true })))
  t.equal(c.code, 0, c.stderr)
  t.equal(c.output ? sha256(c.output) : null, sha256(file), 'curl download after the fuzz')
})
