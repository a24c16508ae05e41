/**
 * The raw ICMPv6 socket addon (server/net/native/icmp6.c) on its own, in a
 * namespace: errors name what failed, a datagram sent to a second socket's
 * interface arrives with its source and hop limit, close is idempotent and a
 * closed socket refuses to send. Needs root (CAP_NET_RAW, namespaces).
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { netns, veth } from '../helpers/netns.js'

const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url))
const icmp6 = fileURLToPath(new URL('../../server/net/icmp6.ts', import.meta.url))

/** Runs in namespace a: opens a socket on eth0 hearing type 200 (a private experimentation type, RFC 4443 §2.1), prints what arrives. */
const listener = `
import { Icmp6Socket } from '${icmp6}'
try { new Icmp6Socket({ ifname: 'nosuch0', types: [200], joinAllRouters: false, onPacket: () => {} }) } catch (e) { console.log('missing:', e.code, e.message) }
const s = new Icmp6Socket({ ifname: 'eth0', types: [200], joinAllRouters: true, onPacket: (p) => { console.log('got', p.source, p.hopLimit, p.data.toString('hex')); s.close(); s.close(); try { s.send(Buffer.from([200, 0, 0, 0]), 'ff02::1', 'fe80::1') } catch (e) { console.log('after close:', e.code) } ; process.exit(0) } })
console.log('ready')
setTimeout(() => { console.log('timeout'); process.exit(1) }, 15000)
`
/** Runs in namespace b: sends type 201 (filtered out) then type 200 to ff02::2 from its link-local address. */
const sender = `
import { Icmp6Socket } from '${icmp6}'
import { networkInterfaces } from 'node:os'
const ll = networkInterfaces().eth0.find((a) => a.family === 'IPv6' && a.address.startsWith('fe80')).address
const s = new Icmp6Socket({ ifname: 'eth0', types: [], joinAllRouters: false, onPacket: () => {} })
s.send(Buffer.from([201, 0, 0, 0, 1, 2, 3, 4]), 'ff02::2', ll)
s.send(Buffer.from([200, 0, 0, 0, 5, 6, 7, 8]), 'ff02::2', ll)
s.close()
console.log('sent from', ll)
`

t.test('raw ICMPv6 socket: filter, ancillary data, errors, close', async (t) => {
  const a = await netns(t, 'icmp6a')
  const b = await netns(t, 'icmp6b')
  await veth(a, 'eth0', undefined, b, 'eth0', undefined, { a: '52:54:00:6b:00:01', b: '52:54:00:6b:00:02' })
  // link-local addresses finish DAD before they can be a source
  const deadline = Date.now() + 10_000
  for (;;) {
    const addrs = await b.exec('ip', ['-6', 'addr', 'show', 'dev', 'eth0'])
    if (addrs.includes('fe80::5054:ff:fe6b:2/64') && !addrs.includes('tentative')) break
    if (Date.now() > deadline) throw new Error(`the link-local address stayed tentative:\n${addrs}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  const l = a.spawn(tsx, ['-e', listener])
  let out = ''
  l.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  l.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const until = async (re: RegExp): Promise<void> => {
    const end = Date.now() + 20_000
    while (!re.test(out)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${re}:\n${out}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  await until(/ready/)
  const sent = await b.exec(tsx, ['-e', sender])
  t.match(sent, /sent from fe80::5054:ff:fe6b:2/)
  await until(/after close:|timeout/)
  t.match(out, /missing: ENODEV .*if_nametoindex/, 'a missing interface is ENODEV')
  t.match(out, /got fe80::5054:ff:fe6b:2 255 c800(?!0000)[0-9a-f]{4}05060708/, 'type 200 arrived with its source and hop limit 255 (the kernel filled the checksum)')
  t.notMatch(out, /got .* c9/, 'type 201 was filtered out by ICMP6_FILTER')
  t.match(out, /after close: EBADF/, 'close is idempotent and a closed socket refuses to send')
})
