/**
 * The storm simulator itself, in the suite: 20 nodes (one with a real swtpm through
 * the agent's N-API binding, one UEFI) boot all at once against a real `netboot
 * serve` in a network namespace, across a veth pair, through every phase: DHCP as
 * firmware, TFTP of iPXE, DHCP as iPXE, boot script, kernel and initrd, DHCP as
 * Linux, attestation, plain and secure cloud-init, a Range download of the rootfs.
 * Every node must finish every phase; the records must be coherent (phases in
 * order, reserved addresses given); the server's log shows the UEFI nodes' TFTP
 * requests as EDK2 makes them and the BIOS nodes' as a PXE ROM does.
 * Needs root, swtpm and the built server (CI).
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { netns, sh, veth } from '../helpers/netns.js'
import { startNsServer } from '../helpers/netboot-ns.js'
import { netboot } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'
import { missingTools } from '../attest/swtpm-harness.js'
import { ADMIN_PORT, HTTP_PORT, NET, fleet, makeArtefacts, netbootYaml, tsxInNs, type ProvisionArgs } from './harness.js'
import { PHASES, type StormResult } from './sim.js'
import type { MainConfig } from './main.js'
import { prepareSwtpms } from './swtpm.js'

const N = 20

t.test(`${N} nodes at once: every node completes every phase`, async (t) => {
  const missing = missingTools()
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: apt-get install -y swtpm swtpm-tools tpm2-tools`)
  for (const f of ['undionly.kpxe', 'ipxe.efi']) if (!existsSync(join('/usr/lib/ipxe', f))) throw new Error(`/usr/lib/ipxe/${f} is missing: apt-get install -y ipxe`)
  const dir = tempDir(t, 'netboot-storm-')
  const srv = await netns(t, 'ssrv')
  const cli = await netns(t, 'scli')
  await veth(srv, 'prov0', `${NET.server}/${NET.prefix}`, cli, 'eth0', `${NET.client}/${NET.prefix}`)
  // the limited broadcast (DHCP before an address) leaves through the provisioning link
  await sh('ip', ['-n', cli.name, 'route', 'add', '255.255.255.255/32', 'dev', 'eth0'])

  const tpms = await prepareSwtpms(1, dir)
  const yaml = netbootYaml(join(dir, 'data'), { logLevel: 'info', ekCa: tpms.caDir })
  writeFileSync(join(dir, 'netboot.yaml'), yaml)
  const tok = await netboot(['-c', join(dir, 'netboot.yaml'), 'token', 'create', '--local', 'storm', '--role', 'admin', '--json'])
  t.equal(tok.code, 0, `token create: ${tok.stderr}`)
  const token = (JSON.parse(tok.stdout) as { value: string }).value
  const server = await startNsServer(t, srv, dir, yaml)

  const nodes = fleet(N, 1 / 10)
  const artefacts = makeArtefacts(dir)
  const provisionFile = join(dir, 'provision.json')
  writeFileSync(provisionFile, JSON.stringify({ adminUrl: `http://127.0.0.1:${ADMIN_PORT}`, token, nodes, artefacts } satisfies ProvisionArgs))
  const p = await tsxInNs(srv.name, 'test/storm/harness.ts', ['provision', provisionFile], 120_000)
  t.equal(p.code, 0, `provisioning through the admin API: ${p.stderr}`)

  const ipxe = (f: string): string => createHash('sha256').update(readFileSync(join('/usr/lib/ipxe', f))).digest('hex')
  const cfg: Partial<MainConfig> = {
    nodes, swtpmStates: tpms.states, server: NET.server, httpBase: `http://${NET.server}:${HTTP_PORT}`,
    ipxeFiles: { 'undionly.kpxe': ipxe('undionly.kpxe'), 'ipxe.efi': ipxe('ipxe.efi') },
    ipxeDir: '/usr/lib/ipxe',
    rampMs: 0, deadlineMs: 90_000,
  }
  const cfgFile = join(dir, 'storm.json')
  const outFile = join(dir, 'result.json')
  writeFileSync(cfgFile, JSON.stringify(cfg))
  const run = await tsxInNs(cli.name, 'test/storm/main.ts', [cfgFile, outFile], 150_000)
  t.equal(run.code, 0, `the simulator ran: ${run.stderr.slice(-3000)}`)
  const r = JSON.parse(readFileSync(outFile, 'utf8')) as StormResult

  t.equal(r.nodes.length, N)
  const failed = r.nodes.filter((n) => n.done === undefined).map((n) => `${n.name} ${n.failedPhase}: ${n.phases[n.failedPhase!]?.error}`)
  t.same(failed, [], 'no node failed')
  for (const n of r.nodes) {
    t.same(Object.keys(n.phases), [...PHASES], `${n.name}: every phase, in order`)
    let prev = n.arrive
    for (const ph of PHASES) {
      const rec = n.phases[ph]!
      if (rec.start < prev || rec.end < rec.start || rec.error !== undefined) t.fail(`${n.name} ${ph}: ${JSON.stringify(rec)}`)
      prev = rec.end
    }
  }
  t.equal(r.nodes.filter((n) => n.tpm === 'swtpm' && n.done !== undefined).length, 1, 'the swtpm node attested through the same server')
  const log = server.log()
  for (const n of nodes) t.match(log, new RegExp(`"mac":"${n.mac}".*?"ip":"${n.ip!.replace(/\./g, '\\.')}".*?"reply":"ACK"`), `${n.name} got its reserved address`)
  // TFTP as the firmware does it (tftp-client.ts): UEFI nodes as EDK2 (a tsize probe, then windowsize 4, blksize 1468), BIOS nodes lock-step
  const uefi = nodes.filter((n) => n.arch === 7).length
  const started = log.split('\n').filter((l) => l.includes('"tftp transfer started"')).map((l) => JSON.parse(l) as { file: string; requested: Record<string, string> })
  const efi = started.filter((l) => l.file === 'ipxe.efi')
  t.ok(uefi > 0, `${uefi} UEFI nodes`)
  // (a retransmitted RRQ under load may start a second transfer: counts are at least one per node, every request of the right shape)
  const key = (o: Record<string, string>): string => JSON.stringify(Object.entries(o).sort())
  const probe = { tsize: '0', blksize: '1468', windowsize: '4' }
  const read = { blksize: '1468', windowsize: '4' }
  t.ok(efi.filter((l) => key(l.requested) === key(probe)).length >= uefi, 'an EDK2 size probe per UEFI node')
  t.ok(efi.filter((l) => key(l.requested) === key(read)).length >= uefi, 'then a read in windows of 4')
  t.same(efi.filter((l) => ![probe, read].some((w) => key(w) === key(l.requested))), [], 'no other ipxe.efi request')
  const bios = started.filter((l) => l.file === 'undionly.kpxe')
  t.ok(bios.length >= N - uefi, 'a request per BIOS node')
  t.same(bios.filter((l) => key(l.requested) !== key({ blksize: '1432', tsize: '0' })), [], 'BIOS nodes: lock-step, blksize 1432 and tsize, no windowsize')
  t.ok(log.split('\n').some((l) => l.includes('"tftp transfer done"') && l.includes('"file":"ipxe.efi"') && l.includes('"windowsize":4')), 'an ipxe.efi transfer done in windows of 4')
  t.ok(r.wallMs > 0 && r.wallMs < 90_000, `the storm took ${Math.round(r.wallMs)} ms`)
})
