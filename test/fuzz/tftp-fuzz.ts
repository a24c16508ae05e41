/**
 * Dedicated TFTP fuzz run (the CI-sized run is test/tftp/fuzz.test.ts).
 *
 *   npx tsx test/fuzz/tftp-fuzz.ts --count 1000000 [--seed N] [--live 100000]
 *
 * 1. `count` random/mutated datagrams into the codec (and negotiation), checking
 *    the invariants in test/tftp/fuzzgen.ts;
 * 2. `count / 20` random event sequences into the transfer state machine;
 * 3. `live` datagrams into a server on a loopback port, then a real download
 *    that must be byte-identical.
 * Exits 1 on any failure, printing the seed and the failing input as hex.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { decodePacket, encodeAck } from '../../server/tftp/codec.js'
import { createTftpServer } from '../../server/tftp/server.js'
import { checkCodec, fuzzPacket, fuzzTransfer, mutate, rng, seedPackets } from '../tftp/fuzzgen.js'
import { fetchWithClient, pseudoRandomBytes, ScriptedClient, sha256 } from '../tftp/helpers.js'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer`)
  return v
}

if (process.env.TAP === '1') {
  // Picked up by `tap test/fuzz`: the CI-sized run is test/tftp/fuzz.test.ts.
  console.log('# tftp-fuzz.ts: dedicated run, start it with npx tsx')
  process.exit(0)
}

const count = arg('count', 1_000_000)
const seed = arg('seed', Date.now() % 2 ** 31)
const live = arg('live', 100_000)
let failures = 0

function fail(what: string, detail: string): void {
  failures++
  if (failures <= 20) console.log(`FAIL ${what}: ${detail}`)
}

console.log(`tftp fuzz: seed ${seed}, ${count} codec inputs, ${Math.floor(count / 20)} transfer sequences, ${live} live datagrams`)

// 1. codec
{
  const r = rng(seed)
  const seeds = seedPackets(['f.bin', 'boot/ipxe.efi'])
  const outcomes = new Map<string, number>()
  let slowest = 0
  const t0 = performance.now()
  for (let i = 0; i < count; i++) {
    const p = fuzzPacket(r, seeds)
    const s = performance.now()
    try {
      checkCodec(p)
    } catch (e) {
      fail(`codec #${i}`, `${(e as Error).message} input=${p.toString('hex')}`)
    }
    slowest = Math.max(slowest, performance.now() - s)
    const d = decodePacket(p)
    const k = d.ok ? `ok:${d.value.op}` : d.error.code
    outcomes.set(k, (outcomes.get(k) ?? 0) + 1)
  }
  const secs = (performance.now() - t0) / 1000
  const summary = [...outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ')
  console.log(`codec: ${(count / secs).toFixed(0)}/s, slowest ${slowest.toFixed(3)} ms\n  ${summary}`)
}

// 2. transfer machine
{
  const r = rng(seed + 1)
  const n = Math.floor(count / 20)
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    try {
      fuzzTransfer(r, 400)
    } catch (e) {
      fail(`transfer #${i}`, (e as Error).message)
    }
  }
  console.log(`transfer: ${n} sequences in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

// 3. live server on loopback
if (live > 0) {
  const root = await mkdtemp(path.join(tmpdir(), 'netboot-tftp-fuzz-'))
  const file = pseudoRandomBytes(200_000, 9)
  await writeFile(path.join(root, 'f.bin'), file)
  const counts = { started: 0, done: 0, failed: 0, refused: 0 }
  const server = createTftpServer({
    root,
    address: '127.0.0.1',
    port: 0,
    timeoutMs: 50,
    retries: 1,
    maxTransfers: 128,
    log: pino({ level: 'silent' }),
    events: {
      onTransferStart: () => counts.started++,
      onTransferDone: () => counts.done++,
      onTransferFailed: () => counts.failed++,
      onRequestRefused: () => counts.refused++,
    },
  })
  const { port } = await server.start()
  const clients = await Promise.all(Array.from({ length: 32 }, () => ScriptedClient.open()))
  const r = rng(seed + 2)
  const seeds = seedPackets(['f.bin'])
  const tids = new Map<number, ScriptedClient>()
  const t0 = performance.now()
  const deadline = Date.now() + 600_000
  let sent = 0
  try {
    while (sent < live && Date.now() < deadline) {
      for (let k = 0; k < 100 && sent < live; k++, sent++) {
        let c = clients[Math.floor(r() * clients.length)]!
        let target = port
        if (tids.size > 0 && r() < 0.3) {
          const [tid, owner] = [...tids][Math.floor(r() * tids.size)]!
          target = tid
          if (r() < 0.8) c = owner
        }
        const pkt = target === port ? fuzzPacket(r, seeds) : r() < 0.5 ? encodeAck(Math.floor(r() * 4)) : mutate(r, encodeAck(1), encodeAck(2))
        void c.send(pkt, target)
      }
      for (const c of clients) for (const got of await c.drain(0)) if (got.from.port !== port) tids.set(got.from.port, c)
      if (tids.size > 64) tids.clear()
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    const drainDeadline = Date.now() + 30_000
    while (server.activeTransfers() > 0 && Date.now() < drainDeadline) await new Promise((resolve) => setTimeout(resolve, 20))
    if (server.activeTransfers() > 0) fail('live', `${server.activeTransfers()} transfers still running 30 s after the fuzz`)
    const got = await fetchWithClient(port, 'f.bin', [{ name: 'blksize', value: '1468' }, { name: 'windowsize', value: '8' }])
    if (sha256(got.data) !== sha256(file)) fail('live', 'download after the fuzz differs')
    const secs = (performance.now() - t0) / 1000
    console.log(`live: ${sent} datagrams in ${secs.toFixed(1)} s; transfers started ${counts.started}, done ${counts.done}, failed ${counts.failed}; refused ${counts.refused}; download after: ok`)
  } catch (e) {
    fail('live', (e as Error).message)
  } finally {
    clients.forEach((c) => c.close())
    await server.close()
    await rm(root, { recursive: true, force: true })
  }
}

console.log(failures === 0 ? 'tftp fuzz: no failures' : `tftp fuzz: ${failures} failures (seed ${seed})`)
process.exitCode = failures === 0 ? 0 : 1
