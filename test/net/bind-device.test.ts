/**
 * SO_BINDTODEVICE through the native addon, in namespaces: a socket bound to one
 * interface hears only that segment's broadcasts and its broadcast replies leave
 * by that interface, whatever the routes say.
 */
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import t from 'tap'
import { netns, veth } from '../helpers/netns.js'

const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url))
const server = `
import { createSocket } from 'node:dgram'
import { bindToDevice } from '${fileURLToPath(new URL('../../server/net/bind-device.ts', import.meta.url))}'
const s = createSocket({ type: 'udp4', reuseAddr: true })
s.bind(6767, '0.0.0.0', () => {
  bindToDevice(s, process.argv.at(-1))
  s.setBroadcast(true)
  console.log('ready')
})
s.on('message', (m, r) => {
  console.log('got ' + m.toString() + ' from ' + r.address)
  s.send('reply-to-' + m.toString(), 6868, '255.255.255.255')
})
setTimeout(() => process.exit(0), 15000)
`
const client = `
import { createSocket } from 'node:dgram'
const s = createSocket({ type: 'udp4', reuseAddr: true })
s.bind(6868, '0.0.0.0', () => {
  s.setBroadcast(true)
  s.send(process.argv.at(-1), 6767, '255.255.255.255')
})
s.on('message', (m) => { console.log('heard ' + m.toString()) })
s.on('error', (e) => { console.log('error ' + e.message) })
setTimeout(() => process.exit(0), 2500)
`

t.test('a device-bound socket serves one segment only', async (t) => {
  const srv = await netns(t, 'srv')
  const a = await netns(t, 'a')
  const b = await netns(t, 'b')
  await veth(srv, 'prov0', '10.99.1.1/24', a, 'eth0', '10.99.1.10/24')
  await veth(srv, 'other0', '10.99.2.1/24', b, 'eth0', '10.99.2.10/24')
  // the host's default route points at the other segment, as on a head node
  await srv.exec('ip', ['route', 'add', 'default', 'via', '10.99.2.10'])
  for (const c of [a, b]) await c.exec('ip', ['route', 'add', 'default', 'dev', 'eth0'])

  const p = srv.spawn(tsx, ['-e', server, 'prov0'])
  let out = ''
  p.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  p.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const deadline = Date.now() + 15_000
  while (!out.includes('ready')) {
    if (Date.now() > deadline || p.exitCode !== null) throw new Error(`server did not start: ${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const ca = a.spawn(tsx, ['-e', client, 'from-a'])
  const cb = b.spawn(tsx, ['-e', client, 'from-b'])
  let outA = ''
  let outB = ''
  ca.stdout!.on('data', (d: Buffer) => { outA += d.toString() })
  cb.stdout!.on('data', (d: Buffer) => { outB += d.toString() })
  await Promise.all([once(ca, 'exit'), once(cb, 'exit')])
  p.kill('SIGTERM')
  t.match(out, /got from-a from 10\.99\.1\.10/, 'the provisioning segment is served')
  t.notMatch(out, /from-b/, 'the other segment is not heard')
  t.match(outA, /heard reply-to-from-a/, 'the broadcast reply left by the provisioning interface')
  t.notMatch(outB, /reply/, 'nothing leaks onto the other segment')
})
