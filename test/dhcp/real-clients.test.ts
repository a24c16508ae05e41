/**
 * netboot's DHCP server against real clients (ISC dhclient, busybox udhcpc) in
 * network namespaces: the server in one, clients in others, joined by veth pairs
 * with private addresses that exist only here.
 */
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs'
import { once } from 'node:events'
import { join } from 'node:path'
import t from 'tap'
import { netns, veth, type Netns } from '../helpers/netns.js'
import { startNsServer } from '../helpers/netboot-ns.js'
import { tempDir } from '../helpers/tmp.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'

const KNOWN = '02:00:00:00:10:01'
const UNKNOWN = '02:00:00:00:20:01'
const actor = { kind: 'system' as const, id: 'test' }

function config (dir: string, worker: boolean): string {
  return `
data_dir: ${dir}/data
log: { level: info }
server: { address: 10.99.10.1, interfaces: [prov0] }
http: { listen: 127.0.0.1, port: 18080 }
admin: { port: 18081 }
tftp: { enabled: false }
unknown_nodes: { action: discover, lease_time: 300 }
dhcp:
  worker: ${worker}
  lease_time: 3600
  subnets:
    - name: prov
      network: 10.99.10.0/24
      interface: prov0
      pool: [10.99.10.200-10.99.10.220]
      router: 10.99.10.1
      dns: [10.99.10.1]
      domain: cluster.test
      ntp: [10.99.10.1]
`
}

/** udhcpc once, in the foreground; resolves with the env of its `bound` event, or undefined. */
async function udhcpc (ns: Netns, dir: string, tag: string, extra: string[]): Promise<Record<string, string> | undefined> {
  const script = join(dir, `udhcpc-${tag}.sh`)
  const out = join(dir, `udhcpc-${tag}.env`)
  writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${out}\nexit 0\n`)
  chmodSync(script, 0o755)
  const p = ns.spawn('busybox', ['udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '3', '-T', '1', '-A', '1', '-s', script, ...extra])
  await once(p, 'exit')
  if (!existsSync(out)) return undefined
  return Object.fromEntries(readFileSync(out, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
}

// both ways netboot serves DHCP: its own thread (the default) and the main event loop
for (const worker of [true, false]) {
  t.test(`real DHCP clients get the right address and boot options (dhcp.worker: ${worker})`, async (t) => {
    const dir = tempDir(t)
    const store = SqliteStore.open(join(dir, 'data', 'netboot.db'))
    await store.createNode({ name: 'nid001', groups: [], interfaces: [{ mac: KNOWN, ip: '10.99.10.11' }] }, actor)
    await store.close()

    const srv = await netns(t, 'dsrv')
    const cli = await netns(t, 'dcli')
    const oth = await netns(t, 'doth')
    await veth(srv, 'prov0', '10.99.10.1/24', cli, 'eth0', undefined, { b: KNOWN })
    await veth(srv, 'other0', '10.99.20.1/24', oth, 'eth0', undefined, { b: '02:00:00:00:99:01' })
    const server = await startNsServer(t, srv, dir, config(dir, worker))
    await server.waitFor(/dhcp: serving/)

    await t.test('dhclient, reserved MAC', async (t) => {
      const out = join(dir, 'dhclient.env')
      const script = join(dir, 'dhclient.sh')
      writeFileSync(script, `#!/bin/sh\nif [ "$reason" = BOUND ]; then env | grep '^new_' > ${out}.tmp; mv ${out}.tmp ${out}; fi\nexit 0\n`)
      chmodSync(script, 0o755)
      writeFileSync(join(dir, 'dhclient.conf'), 'timeout 20;\nretry 1;\nrequest subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, ntp-servers;\n')
      const p = cli.spawn('dhclient', ['-4', '-d', '-1', '-v', '-cf', join(dir, 'dhclient.conf'), '-sf', script, '-lf', join(dir, 'dhclient.leases'), '-pf', join(dir, 'dhclient.pid'), 'eth0'])
      let err = ''
      p.stderr!.on('data', (d: Buffer) => { err += d.toString() })
      const deadline = Date.now() + 25_000
      while (!existsSync(out) && Date.now() < deadline && p.exitCode === null) await new Promise((r) => setTimeout(r, 100))
      p.kill('SIGTERM')
      t.ok(existsSync(out), `dhclient got a lease\n${err}`)
      const env = readFileSync(out, 'utf8')
      t.match(env, /^new_ip_address=10\.99\.10\.11$/m)
      t.match(env, /^new_subnet_mask=255\.255\.255\.0$/m)
      t.match(env, /^new_routers=10\.99\.10\.1$/m)
      t.match(env, /^new_domain_name=cluster\.test$/m)
      t.match(env, /^new_domain_name_servers=10\.99\.10\.1$/m)
      t.match(env, /^new_host_name=nid001$/m)
      t.match(env, /^new_ntp_servers=10\.99\.10\.1$/m)
      t.match(env, /^new_dhcp_lease_time=3600$/m)
      t.match(env, /^new_dhcp_server_identifier=10\.99\.10\.1$/m)
    })

    await t.test('udhcpc, reserved MAC, as BIOS PXE firmware', async (t) => {
      const env = await udhcpc(cli, dir, 'bios', ['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', '-O', '66', '-O', '67'])
      t.ok(env, 'udhcpc got a lease')
      t.equal(env?.ip, '10.99.10.11')
      t.equal(env?.hostname, 'nid001')
      t.equal(env?.boot_file, 'undionly.kpxe')
      t.equal(env?.siaddr, '10.99.10.1')
    })

    await t.test('udhcpc as x64 UEFI firmware, and as iPXE', async (t) => {
      const uefi = await udhcpc(cli, dir, 'uefi', ['-V', 'PXEClient:Arch:00007:UNDI:003016', '-x', '0x5d:0007'])
      t.equal(uefi?.boot_file, 'ipxe.efi')
      const ipxe = await udhcpc(cli, dir, 'ipxe', ['-x', '0x4d:69505845', '-x', '0x5d:0007'])
      t.equal(ipxe?.boot_file, `http://10.99.10.1:18080/boot/${KNOWN}`, 'iPXE is sent to its boot script, not iPXE again')
      t.equal(ipxe?.ip, '10.99.10.11')
    })

    await t.test('an unknown MAC gets a short lease from the pool', async (t) => {
      await cli.exec('ip', ['link', 'set', 'eth0', 'address', UNKNOWN])
      const env = await udhcpc(cli, dir, 'unknown', [])
      t.ok(env, 'udhcpc got a lease')
      t.match(env?.ip, /^10\.99\.10\.2(0\d|1\d|20)$/)
      t.equal(env?.lease, '300')
      t.equal(env?.hostname, undefined)
    })

    await t.test('a client on another segment gets no answer', async (t) => {
      const env = await udhcpc(oth, dir, 'other', [])
      t.equal(env, undefined)
      t.notMatch(server.log(), /02:00:00:00:99:01/, 'the request never reached the server')
    })

    const log = server.log()
    t.match(log, /"mac":"02:00:00:00:10:01","xid":"[0-9a-f]{8}","type":"REQUEST".*"node":"nid001".*"ip":"10\.99\.10\.11".*"reply":"ACK".*"msg":"dhcp: reply"/, 'a log line per decision')

    // the leases are on disk
    server.proc.kill('SIGTERM')
    t.equal(await server.exited, 0)
    const after = SqliteStore.open(join(dir, 'data', 'netboot.db'))
    t.teardown(async () => await after.close())
    const leases = await after.listLeases()
    t.same(leases.filter((l) => l.state === 'bound').map((l) => [l.mac, l.ip.startsWith('10.99.10.2') ? 'pool' : l.ip]).sort(),
      [[KNOWN, '10.99.10.11'], [UNKNOWN, 'pool']])
  })
}
