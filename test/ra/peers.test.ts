/**
 * Router advertisements against real peers, with `netboot serve` in a namespace:
 *   - rdisc6 (Debian ndisc6) solicits on the provisioning segment and prints the
 *     RA: router lifetime 0, M=0, O=0, netboot's MAC, the configured MTU and prefix;
 *   - the Linux kernel as a host (accept_ra) on that segment configures the
 *     prefix by SLAAC and the MTU, and installs no default route;
 *   - on a second segment that is not a provisioning interface, nothing answers;
 *   - a solicitation with hop limit 64 is dropped with a warning naming the peer;
 *   - a real router's RA makes netboot stop advertising there for the router's lifetime
 *     (3 s: it advertises again after; 1800 s: it stays quiet).
 * Needs root and rdisc6 (ndisc6) and python3 (crafted packets); without them it fails.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startNsServer } from '../helpers/netboot-ns.js'
import { netns, veth, type Netns } from '../helpers/netns.js'
import { tempDir } from '../helpers/tmp.js'

const SRV_MAC = '52:54:00:6a:00:01'
const HOST_MAC = '52:54:00:6a:00:02'

/** Sends one ICMPv6 message (hex) to ff02::2 on eth0 with the given IP hop limit (python3's raw socket; the kernel adds the checksum). */
const CRAFT = `
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth0')
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, int(sys.argv[2]))
s.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[3], 0, 0, socket.if_nametoindex('eth0')))
`

async function until (what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function rdisc6 (ns: Netns, waitMs: number, retries = 10): Promise<{ out: string; ms: number }> {
  const t0 = Date.now()
  // -1: stop at the first RA; -r 1: one solicitation; -w: how long to wait for it. Exit 2 = no response.
  const out = await new Promise<string>((resolve) => {
    execFile('ip', ['netns', 'exec', ns.name, 'rdisc6', '-1', '-r', '1', '-w', String(waitMs), 'eth0'], { timeout: waitMs + 10_000 }, (err, stdout, stderr) => {
      resolve(`${stdout}${stderr}${err !== null && !/No response/.test(stdout + stderr) ? `\n(rdisc6: ${err.message})` : ''}`)
    })
  })
  // The namespace's link-local address may still be tentative (DAD): rdisc6 then cannot
  // send ("Cannot assign requested address"). Wait for it, bounded, and ask again.
  if (/Cannot assign requested address/.test(out) && retries > 0) {
    await new Promise((r) => setTimeout(r, 500))
    return await rdisc6(ns, waitMs, retries - 1)
  }
  return { out, ms: Date.now() - t0 }
}

t.test('router advertisements reach real hosts on provisioning interfaces only', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (namespaces, raw sockets): CI runs as root')
  const missing = [['/usr/bin/rdisc6', 'ndisc6'], ['/usr/bin/python3', 'python3']].filter(([f]) => !existsSync(f!)).map(([f, p]) => `${f} (Debian package ${p})`)
  if (missing.length > 0) throw new Error(`missing: ${missing.join(', ')} (scripts/setup.sh installs them)`)

  const srv = await netns(t, 'ra-srv')
  const host = await netns(t, 'ra-host')
  const other = await netns(t, 'ra-oth')
  await veth(srv, 'prov0', '10.97.0.1/24', host, 'eth0', '10.97.0.10/24', { a: SRV_MAC, b: HOST_MAC })
  await veth(srv, 'other0', '10.97.1.1/24', other, 'eth0', '10.97.1.10/24')
  // The kernel host: a plain host that accepts RAs (not forwarding; accept_ra 1 is the default, set it anyway).
  await host.exec('sysctl', ['-qw', 'net.ipv6.conf.eth0.accept_ra=1', 'net.ipv6.conf.eth0.autoconf=1'])

  const dir = tempDir(t, 'netboot-ra-')
  mkdirSync(join(dir, 'data'))
  const server = await startNsServer(t, srv, dir, `
data_dir: ${dir}/data
log: { level: debug }
server: { address: 10.97.0.1, interfaces: [prov0] }
http: { listen: 127.0.0.1, port: 18080 }
admin: { listen: 127.0.0.1, port: 18081 }
tftp: { enabled: false }
attestation: { enabled: false }
dhcp: { enabled: false }
ra: { enabled: true, max_interval: 600, mtu: 1400, prefixes: [fd00:97::/64] }
`)
  await server.waitFor(/"msg":"ra: advertising/)
  t.match(server.log(), /"interfaces":\["prov0"\]/, 'RAs on server.interfaces by default')

  await t.test('rdisc6 solicits and gets netboot\'s RA', async (t) => {
    // The link-local addresses finish DAD ~1-2 s after link-up; netboot retries until it can send.
    let r = await rdisc6(host, 5000)
    if (/No response/.test(r.out)) r = await rdisc6(host, 5000)
    t.comment(`rdisc6 answered in ${r.ms} ms:\n${r.out}`)
    t.match(r.out, /Router lifetime\s*:\s*0 \(0x0+\) seconds/, 'router lifetime 0: not a default router')
    t.match(r.out, /Stateful address conf\.\s*:\s*No/, 'M=0')
    t.match(r.out, /Stateful other conf\.\s*:\s*No/, 'O=0')
    t.match(r.out, new RegExp(`Source link-layer address\\s*:\\s*${SRV_MAC.toUpperCase()}`), "netboot's MAC in the source link-layer option")
    t.match(r.out, /MTU\s*:\s*1400 bytes/, 'the configured MTU option')
    t.match(r.out, /Prefix\s*:\s*fd00:97::\/64/, 'the configured prefix')
    t.match(r.out, /from fe80::5054:ff:fe6a:1/, "from netboot's link-local address")
    // One more solicitation, now that the link is settled: answered within MAX_RA_DELAY_TIME,
    // or at most MIN_DELAY_BETWEEN_RAS after the previous multicast RA (RFC 4861 §6.2.6).
    await new Promise((r) => setTimeout(r, 3_100))
    const again = await rdisc6(host, 3000)
    t.match(again.out, /Router lifetime/, 'answered again')
    t.ok(again.ms < 1_500, `a settled solicitation is answered in ${again.ms} ms (≤ 0.5 s + process start-up)`)
  })

  await t.test('the kernel as a host takes the prefix and the MTU, and no default route', async (t) => {
    // link down/up: the kernel solicits again once its link-local address passes DAD
    await host.exec('ip', ['link', 'set', 'eth0', 'down'])
    await host.exec('ip', ['link', 'set', 'eth0', 'up'])
    await until('a SLAAC address in fd00:97::/64 on the host', async () => /inet6 fd00:97::5054:ff:fe6a:2\/64/.test(await host.exec('ip', ['-6', 'addr', 'show', 'dev', 'eth0'])), 20_000)
    t.pass('the host configured fd00:97::5054:ff:fe6a:2/64 (EUI-64 of its MAC)')
    t.equal((await host.exec('cat', ['/proc/sys/net/ipv6/conf/eth0/mtu'])).trim(), '1400', 'the host applied the MTU option')
    t.equal((await host.exec('ip', ['-6', 'route', 'show', 'default'])).trim(), '', 'no default route (router lifetime 0)')
  })

  await t.test('no RA on an interface that is not a provisioning interface', async (t) => {
    const r = await rdisc6(other, 2000)
    t.match(r.out, /No response/, 'rdisc6 on the other segment hears nothing')
  })

  await t.test('a solicitation with hop limit 64 is dropped and logged with the peer', async (t) => {
    await host.exec('python3', ['-c', CRAFT, '8500000000000000', '64', 'ff02::2'])
    await server.waitFor(/"msg":"ra: bad router solicitation dropped"/, 5_000)
    const line = server.log().split('\n').find((l) => l.includes('bad router solicitation'))!
    t.match(line, /"peer":"fe80::5054:ff:fe6a:2"/, 'the log names the peer')
    t.match(line, /hop limit 64/, 'and why')
  })

  await t.test('a router that stops advertising: netboot is quiet for its router lifetime, then advertises again', async (t) => {
    // RA: hop limit 64, M=0 O=0, router lifetime 3 s: a router (or one forged RA) that is not heard again
    await host.exec('python3', ['-c', CRAFT, '8600000040000003' + '00000000' + '00000000', '255', 'ff02::1'])
    await server.waitFor(/"quietForS":3[,}].*"msg":"ra: a router advertises on this interface/, 5_000)
    const quiet = await rdisc6(host, 1000)
    t.match(quiet.out, /No response/, 'quiet while the router is believed there')
    await server.waitFor(/"msg":"ra: the router on this interface stopped advertising/, 10_000)
    const back = await rdisc6(host, 5000)
    t.match(back.out, /Router lifetime\s*:\s*0/, 'netboot answers solicitations again')
  })

  await t.test('a real router on the segment: netboot stops advertising there', async (t) => {
    // RA: hop limit 64, M=0 O=0, router lifetime 1800 s (0x0708), reachable 0, retrans 0
    await host.exec('python3', ['-c', CRAFT, '8600000040000708' + '00000000' + '00000000', '255', 'ff02::1'])
    await server.waitFor(/"msg":"ra: a router advertises on this interface/, 5_000)
    t.match(server.log(), /"router":"fe80::5054:ff:fe6a:2"/, 'the warning names the router')
    await new Promise((r) => setTimeout(r, 3_100))
    const r = await rdisc6(host, 2000)
    t.match(r.out, /No response/, 'netboot no longer answers solicitations there')
  })
})
