/**
 * UDP socket buffers (server/net/socket-buffers.ts) and the DHCP server applying
 * them: the effective size is what the kernel grants (capped by
 * net.core.rmem_max / wmem_max, read here from /proc) unless SO_RCVBUFFORCE /
 * SO_SNDBUFFORCE pass the cap (root, CAP_NET_ADMIN: these tests run as root in
 * CI and fail otherwise); without the capability the cap below the request is
 * logged naming the sysctl; and a bigger buffer really holds a burst the default
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
import { forceBufferSize } from '../../server/net/bind-device.js'
import { DHCP_RECV_BUFFER_BYTES, sizeUdpBuffers, UDP_BUFFER_BYTES, type BufferSizing } from '../../server/net/socket-buffers.js'
import { memoryLogger } from '../tftp/helpers.js'

const sysctl = (name: string): number => Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8').trim())
const rmemMax = sysctl('rmem_max')
const wmemMax = sysctl('wmem_max')
const isRoot = process.getuid?.() === 0
/** Acts as a process without CAP_NET_ADMIN: the forced options are refused. */
const noCapability: BufferSizing = { force: () => false }

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

t.test('without CAP_NET_ADMIN a request over net.core.rmem_max is capped and the warning names the sysctl', async (t) => {
  const s = await bound()
  t.teardown(() => s.close())
  const { log, lines } = memoryLogger()
  const got = sizeUdpBuffers(s, { recv: rmemMax * 2, send: wmemMax * 2 }, log, 'dhcp test', noCapability)
  t.equal(got.recv, rmemMax, 'the kernel granted rmem_max')
  t.equal(got.send, wmemMax, 'the kernel granted wmem_max')
  t.same(got.forced, { recv: false, send: false })
  const warns = lines.filter((l) => l.level === 40)
  t.equal(warns.length, 2, 'one warning per buffer')
  t.equal(warns[0]!.sysctl, 'net.core.rmem_max')
  t.equal(warns[0]!.effective, rmemMax)
  t.match(String(warns[0]!.msg), /dhcp test recv buffer .* net\.core\.rmem_max=/)
  t.equal(warns[1]!.sysctl, 'net.core.wmem_max')
  const info = lines.find((l) => l.level === 30 && l.socket === 'dhcp test')
  t.same([info?.recv, info?.send], [rmemMax, wmemMax], 'the effective sizes are logged')
})

t.test('as root a request over net.core.rmem_max is forced past it (SO_RCVBUFFORCE), without a warning', async (t) => {
  t.ok(isRoot, 'this test needs root (CAP_NET_ADMIN), as CI runs it')
  if (!isRoot) return
  const s = await bound()
  t.teardown(() => s.close())
  const { log, lines } = memoryLogger()
  const want = { recv: rmemMax * 4, send: wmemMax * 2 }
  const got = sizeUdpBuffers(s, want, log, 'forced test')
  t.equal(got.recv, want.recv, 'receive buffer as asked, past rmem_max')
  t.equal(got.send, want.send, 'send buffer as asked, past wmem_max')
  t.same(got.forced, { recv: true, send: true })
  t.equal(s.getRecvBufferSize(), want.recv * 2, 'the kernel reports the doubled size it granted')
  t.same(lines.filter((l) => l.level === 40), [], 'no warning')
  const info = lines.find((l) => l.level === 30 && l.socket === 'forced test')
  t.same(info?.forced, { recv: true, send: true }, 'the log says the sizes were forced')
  t.same([info?.recv, info?.send], [want.recv, want.send], 'and gives the effective sizes')
})

t.test('forceBufferSize: bad arguments are TypeErrors naming the call', async (t) => {
  const s = await bound()
  t.teardown(() => s.close())
  t.throws(() => forceBufferSize(s, 'both' as 'recv', 1024), /kind must be "recv" or "send"/)
  t.throws(() => forceBufferSize(s, 'recv', 0), /bytes a positive one/)
})

t.test('the DHCP server sizes its socket at start (past rmem_max as root)', async (t) => {
  t.ok(isRoot, 'this test needs root (CAP_NET_ADMIN), as CI runs it')
  const { log, lines } = memoryLogger()
  const engine = { handle: async () => { throw new Error('no packet expected') } } as unknown as DhcpEngine
  const server = new DhcpServer({ engine, interfaces: [], relays: false, port: 0, log, registry: new Registry() })
  await server.start()
  t.teardown(() => server.close())
  const b = server.socketBuffers()
  t.equal(b?.recv, DHCP_RECV_BUFFER_BYTES, `receive buffer (this host's rmem_max: ${rmemMax})`)
  t.equal(b?.forced?.recv, DHCP_RECV_BUFFER_BYTES > rmemMax, 'forced exactly when rmem_max is lower')
  t.equal(b?.send, UDP_BUFFER_BYTES, 'send buffer')
  t.same(lines.filter((l) => l.sysctl !== undefined), [], 'no warning about a sysctl')
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
  t.same([got.recv, got.send], [0, 0])
  t.ok(lines.some((l) => l.msg === 'udp: cannot set the socket buffer size'), 'the refusal is logged')
  s.close()
})

