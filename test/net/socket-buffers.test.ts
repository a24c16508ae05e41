/**
 * UDP socket buffers (server/net/socket-buffers.ts) and the DHCP server applying
 * them: the effective size is what the kernel grants (capped by
 * net.core.rmem_max / wmem_max, read here from /proc), a cap below the request is
 * logged naming the sysctl, and a bigger buffer really holds a burst the default
 * one drops (a child process sends 1,500 DHCP-sized datagrams while this
 * process's event loop is blocked).
 */
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import { Registry } from 'prom-client'
import t from 'tap'
import { DhcpServer } from '../../server/dhcp/server.js'
import type { DhcpEngine } from '../../server/dhcp/engine.js'
import { sizeUdpBuffers, UDP_BUFFER_BYTES } from '../../server/net/socket-buffers.js'
import { memoryLogger } from '../tftp/helpers.js'

const sysctl = (name: string): number => Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8').trim())
const rmemMax = sysctl('rmem_max')
const wmemMax = sysctl('wmem_max')

async function bound (): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  return s
}

t.test('a request under the cap is granted whole, without a warning', async (t) => {
  const s = await bound()
  t.teardown(() => s.close())
  const { log, lines } = memoryLogger()
  const want = Math.min(64 * 1024, rmemMax, wmemMax)
  const got = sizeUdpBuffers(s, { recv: want, send: want }, log, 'test')
  t.equal(got.recv, want, 'receive buffer as asked')
  t.equal(got.send, want, 'send buffer as asked')
  t.same(lines.filter((l) => l.level === 40), [], 'no warning')
})

t.test('a request over net.core.rmem_max is capped and the warning names the sysctl', async (t) => {
  const s = await bound()
  t.teardown(() => s.close())
  const { log, lines } = memoryLogger()
  const got = sizeUdpBuffers(s, { recv: rmemMax * 2, send: wmemMax * 2 }, log, 'dhcp test')
  t.equal(got.recv, rmemMax, 'the kernel granted rmem_max')
  t.equal(got.send, wmemMax, 'the kernel granted wmem_max')
  const warns = lines.filter((l) => l.level === 40)
  t.equal(warns.length, 2, 'one warning per buffer')
  t.equal(warns[0]!.sysctl, 'net.core.rmem_max')
  t.equal(warns[0]!.effective, rmemMax)
  t.match(String(warns[0]!.msg), /dhcp test recv buffer .* net\.core\.rmem_max=/)
  t.equal(warns[1]!.sysctl, 'net.core.wmem_max')
})

t.test('the DHCP server sizes its socket at start (4 MiB, or the cap with a warning)', async (t) => {
  const { log, lines } = memoryLogger()
  const engine = { handle: async () => { throw new Error('no packet expected') } } as unknown as DhcpEngine
  const server = new DhcpServer({ engine, interfaces: [], relays: false, port: 0, log, registry: new Registry() })
  await server.start()
  t.teardown(() => server.close())
  const b = server.socketBuffers()
  t.equal(b?.recv, Math.min(UDP_BUFFER_BYTES, rmemMax), 'receive buffer')
  t.equal(b?.send, Math.min(UDP_BUFFER_BYTES, wmemMax), 'send buffer')
  const capped = lines.filter((l) => l.sysctl === 'net.core.rmem_max')
  t.equal(capped.length, rmemMax < UDP_BUFFER_BYTES ? 1 : 0, 'a warning exactly when rmem_max caps the request')
})

/**
 * Starts a child process that sends `n` datagrams of 548 octets to `port` 50 ms
 * after it says it is ready; resolves (once it is ready) with a promise of its end.
 */
async function burstFromChild (port: number, n: number): Promise<{ done: Promise<void> }> {
  const code = `
const s = require('node:dgram').createSocket('udp4')
const buf = Buffer.alloc(548, 1)
let left = ${n}
const next = () => { if (left-- === 0) { s.close(); return } s.send(buf, ${port}, '127.0.0.1', next) }
process.stdout.write('ready\\n')
setTimeout(next, 50)`
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit') as Promise<[number | null]>
  await once(child.stdout!, 'data')
  return {
    done: exited.then(([status]) => { if (status !== 0) throw new Error(`burst sender exited ${status}`) }),
  }
}

/** Blocks this event loop while the child sends a burst, then counts what the socket held. */
async function heldOfBurst (t: { teardown (fn: () => unknown): void }, recv: number, n: number): Promise<number> {
  const s = await bound()
  t.teardown(() => s.close())
  s.setRecvBufferSize(recv)
  let got = 0
  s.on('message', () => { got++ })
  const sender = await burstFromChild(s.address().port, n)
  // the socket cannot be read while the loop is blocked: only its buffer holds the burst
  const spinUntil = Date.now() + 1500
  while (Date.now() < spinUntil) { /* blocked */ }
  await sender.done
  const deadline = Date.now() + 3000
  while (got < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  return got
}

t.test('the large buffer holds a burst that a small buffer drops', async (t) => {
  // 4 MiB, or rmem_max where it is lower (Debian's default 208 KiB): a burst sized to fit
  const size = Math.min(UDP_BUFFER_BYTES, rmemMax)
  const n = Math.min(1500, Math.floor(size / 1500))
  const small = await heldOfBurst(t, 16 * 1024, n)
  t.ok(small < n, `a 16 KiB buffer drops part of a burst of ${n} (held ${small})`)
  const big = await heldOfBurst(t, size, n)
  t.equal(big, n, `a ${size}-octet buffer holds the whole burst (held ${big} of ${n})`)
})

t.test('sizing an unbound socket is logged, not thrown', async (t) => {
  const s = dgram.createSocket('udp4')
  const { log, lines } = memoryLogger()
  const got = sizeUdpBuffers(s, { recv: 1024, send: 1024 }, log, 'unbound')
  t.same(got, { recv: 0, send: 0 })
  t.ok(lines.some((l) => l.msg === 'udp: cannot set the socket buffer size'), 'the refusal is logged')
  s.close()
})

