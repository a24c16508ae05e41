/**
 * A relayed subnet: a relay agent in its own namespace forwards a client's DISCOVER
 * and REQUEST (giaddr set, option 82 added) to netboot by unicast; netboot picks the
 * subnet from giaddr, answers the relay on port 67, and echoes option 82. A plain
 * broadcast arriving on that non-provisioning link is not answered.
 */
import { join } from 'node:path'
import t from 'tap'
import { netns, veth } from '../helpers/netns.js'
import { startNsServer } from '../helpers/netboot-ns.js'
import { tempDir } from '../helpers/tmp.js'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'

const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url))
const codec = fileURLToPath(new URL('../../server/dhcp/codec/index.ts', import.meta.url))

function config (dir: string, worker: boolean): string {
  return `
data_dir: ${dir}/data
log: { level: info }
server: { address: 10.99.10.1, interfaces: [prov0] }
http: { listen: 127.0.0.1, port: 18080 }
admin: { port: 18081 }
tftp: { enabled: false }
dhcp:
  worker: ${worker}
  subnets:
    - name: prov
      network: 10.99.10.0/24
      interface: prov0
      pool: [10.99.10.200-10.99.10.210]
    - name: rack7
      network: 10.99.30.0/24
      pool: [10.99.30.100-10.99.30.120]
      router: 10.99.30.1
`
}

// Runs in the relay namespace: plays a relay agent for one client MAC, DISCOVER then REQUEST.
const relay = `
import { createSocket } from 'node:dgram'
import { DhcpOptions, Opt, encodePacket, decodePacket, optionValue, routers } from '${codec}'
const s = createSocket({ type: 'udp4', reuseAddr: true })
const chaddr = new Uint8Array(16); chaddr.set([2, 0, 0, 0, 0x30, 1])
const rai = new Uint8Array([1, 6, ...Buffer.from('rack-7')])
const pkt = (type, extra = []) => {
  const options = new DhcpOptions()
  options.set(Opt.MESSAGE_TYPE, new Uint8Array([type]))
  for (const [c, v] of extra) options.set(c, v)
  options.set(Opt.RELAY_AGENT_INFO, rai)
  const e = encodePacket({ op: 1, htype: 1, hlen: 6, hops: 1, xid: 0x1234, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '10.99.30.1', chaddr, sname: '', file: '', options, overload: 0 })
  return Buffer.from(e.value)
}
s.bind(67, '10.99.30.1', () => s.send(pkt(1), 67, '10.99.40.1'))
s.on('message', (m, r) => {
  const d = decodePacket(m)
  if (!d.ok) { console.log('bad reply'); return }
  const p = d.value
  const type = p.options.get(Opt.MESSAGE_TYPE)[0]
  console.log(JSON.stringify({ type, from: r.address, port: r.port, yiaddr: p.yiaddr, giaddr: p.giaddr, router: optionValue(p.options, routers), rai: Buffer.from(p.options.get(Opt.RELAY_AGENT_INFO) ?? []).toString('hex') }))
  if (type === 2) {
    s.send(pkt(3, [[Opt.REQUESTED_IP, new Uint8Array(p.yiaddr.split('.').map(Number))], [Opt.SERVER_ID, p.options.get(Opt.SERVER_ID)]]), 67, '10.99.40.1')
  } else process.exit(0)
})
setTimeout(() => process.exit(2), 15000)
`

// both ways netboot serves DHCP: its own thread (the default) and the main event loop
for (const worker of [true, false]) {
  t.test(`relayed DISCOVER/REQUEST get the relay subnet and go back to the relay (dhcp.worker: ${worker})`, async (t) => {
    const dir = tempDir(t)
    const srv = await netns(t, 'rsrv')
    const rel = await netns(t, 'rrel')
    const cli = await netns(t, 'rcli')
    await veth(srv, 'prov0', '10.99.10.1/24', cli, 'eth0', undefined)
    await veth(srv, 'relay0', '10.99.40.1/24', rel, 'up0', '10.99.40.2/24')
    await rel.exec('ip', ['addr', 'add', '10.99.30.1/24', 'dev', 'lo'])
    await srv.exec('ip', ['route', 'add', '10.99.30.0/24', 'via', '10.99.40.2'])
    const server = await startNsServer(t, srv, dir, config(dir, worker))
    await server.waitFor(/"relays":true.*dhcp: serving/)

    const p = rel.spawn(tsx, ['-e', relay])
    let out = ''
    p.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr!.on('data', (d: Buffer) => { out += d.toString() })
    const [code] = await once(p, 'exit') as [number]
    t.equal(code, 0, `the relay got OFFER and ACK\n${out}`)
    const replies = out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
    t.match(replies, [
      { type: 2, from: '10.99.40.1', port: 67, giaddr: '10.99.30.1', router: ['10.99.30.1'], rai: '0106' + Buffer.from('rack-7').toString('hex') },
      { type: 5, port: 67, yiaddr: replies[0]?.yiaddr },
    ])
    t.match(replies[0]?.yiaddr, /^10\.99\.30\.1(0\d|1\d|20)$/, 'an address of the relayed subnet')
    t.match(server.log(), /"subnet":"rack7".*"reply":"ACK".*"dest":"giaddr"/)

    // a client broadcasting on the relay link itself (not a provisioning interface) gets nothing
    const script = join(dir, 'u.sh')
    const { writeFileSync, chmodSync, existsSync } = await import('node:fs')
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && touch ${dir}/bound\nexit 0\n`)
    chmodSync(script, 0o755)
    const u = rel.spawn('busybox', ['udhcpc', '-i', 'up0', '-f', '-q', '-n', '-t', '2', '-T', '1', '-A', '1', '-s', script])
    await once(u, 'exit')
    t.notOk(existsSync(join(dir, 'bound')), 'no answer on a non-provisioning link')
  })
}
