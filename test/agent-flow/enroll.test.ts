/**
 * Waiting for an admin, end to end: strict enrollment (pending until `enroll
 * accept`, or refused after `enroll reject`) and discovery of unknown hardware
 * (MACs, DMI and EK reported; reboot once the admin has named the machine).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { EXIT_CODES } from '../../agent/errors.js'
import { runAgent } from '../../agent/run.js'
import { tempDir } from '../helpers/tmp.js'
import { startSwtpm, type Swtpm } from '../attest/swtpm-harness.js'
import {
  NODE_MAC, NODE_MAC2, ROOTFS_MARKER, SECURE_MARKER, addImage, agentConfig, bootDirs, buildSquashfs, expectEnd, expectTrace, mountsUnder, realPeerProblems, standardServer, startNetboot,
  testLog, type BuiltImage, type Netboot,
} from './helpers.js'

interface Identity { id: number; node?: string; macs: string[]; ekSha256: string; discovery?: { hardware?: Record<string, string> } }

async function pendingIdentity (nb: Netboot): Promise<Identity | undefined> {
  for (let i = 0; i < 200; i++) {
    const l = await nb.admin<{ identities: Identity[] }>('GET', '/api/v1/enroll?state=pending')
    if (l.identities[0] !== undefined) return l.identities[0]
    await new Promise((r) => setTimeout(r, 50))
  }
  return undefined
}

async function until (cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
  return cond()
}

const problems = realPeerProblems()
if (problems.length > 0) {
  for (const p of problems) t.fail(p)
} else {
  let sw: Swtpm
  let image: BuiltImage
  t.before(async () => {
    sw = await startSwtpm()
    image = buildSquashfs(tempDir(t, 'netboot-image-'), ROOTFS_MARKER)
  })
  t.teardown(async () => { await sw?.stop() })

  t.test('strict enrollment: pending until an admin accepts the TPM, then the boot continues', async (t) => {
    const nb = await standardServer(t, sw, image, { enrollment: 'strict' })
    const b = bootDirs(t, [NODE_MAC])
    const log = testLog()
    const run = runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log })
    const ident = await pendingIdentity(nb)
    t.match(ident, { node: 'nid001', macs: [NODE_MAC] }, 'the TPM is pending for nid001')
    t.ok(await until(() => log.lines.filter((l) => l.startsWith('info pending:')).length >= 3), 'the agent polls')
    t.match(log.lines.find((l) => l.startsWith('info pending: ATTEST_PENDING')), /netboot enroll accept \d+/, 'the console tells the admin what to run')
    await nb.admin('POST', `/api/v1/enroll/${ident!.id}/accept`, {})
    const r = await run
    expectEnd(t, r, log, 'done')
    expectTrace(t, r, log, ['network', 'attest', 'pending', 'attest', 'secrets', 'rootfs', 'measure', 'mount', 'seed'])
    t.match(readFileSync(join(b.newRoot, 'var/lib/cloud/seed/nocloud/user-data'), 'utf8'), SECURE_MARKER)

    // a discovery boot of the machine, now known and enrolled: reboot at once into its own boot
    const b2 = bootDirs(t, [NODE_MAC])
    const log2 = testLog()
    const r2 = await runAgent(agentConfig(sw, `netboot.server=${nb.httpUrl} netboot.mode=discover`, b2), { log: log2 })
    expectEnd(t, r2, log2, 'reboot', EXIT_CODES.reboot)
    expectTrace(t, r2, log2, ['network', 'discover'])
  })

  t.test('strict enrollment: an admin rejects the TPM while the node waits: exit 5', async (t) => {
    const nb = await standardServer(t, sw, image, { enrollment: 'strict' })
    const b = bootDirs(t, [NODE_MAC])
    const log = testLog()
    const run = runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log })
    const ident = await pendingIdentity(nb)
    await nb.admin('POST', `/api/v1/enroll/${ident!.id}/reject`)
    const r = await run
    expectEnd(t, r, log, 'failed', EXIT_CODES.refused)
    t.equal(r.error?.code, 'AGENT_ATTEST_REJECTED')
    expectTrace(t, r, log, ['network', 'attest', 'pending'])
  })

  t.test('discover mode: unknown hardware reports MACs, DMI and EK, waits, and reboots once accepted', async (t) => {
    const dir = tempDir(t)
    const nb = await startNetboot(t, dir, sw, { enrollment: 'tofu', groups: ['compute'], discoveryImage: 'discovery' })
    await addImage(nb, 'discovery', image, { makeDefault: false, withRootfs: false })
    const b = bootDirs(t, [NODE_MAC2])
    const cmdline = await nb.cmdlineFor(NODE_MAC2)
    t.match(cmdline, /netboot\.image=discovery@sha256:[0-9a-f]{64} netboot\.mode=discover$/, 'the discovery boot script')
    t.notMatch(cmdline, /netboot\.node=/)
    const log = testLog()
    const run = runAgent(agentConfig(sw, cmdline, b), { log })
    const ident = await pendingIdentity(nb)
    t.same(ident?.macs, [NODE_MAC2], 'the discovery was recorded with the MAC')
    t.same(ident?.discovery?.hardware, { systemUuid: '4c4c4544-0042-3510-8052-b4c04f563032', serial: 'SN-TEST-1', vendor: 'Netboot Labs', product: 'Test Node 1' }, 'and the DMI data')
    t.notOk(ident?.node, 'belonging to no node yet')
    t.ok(await until(() => log.lines.some((l) => l.includes(`EK sha256:${ident!.ekSha256}`))), 'the console shows the EK fingerprint the admin sees')
    t.ok(await until(() => log.lines.some((l) => l.startsWith('info pending: ATTEST_PENDING'))), 'and keeps polling')
    // the admin names the machine: a node with its MAC, then accepts the TPM for it
    await nb.admin('POST', '/api/v1/nodes', { name: 'nid009', groups: ['compute'], interfaces: [{ mac: NODE_MAC2 }] }, 201)
    await nb.admin('POST', `/api/v1/enroll/${ident!.id}/accept`, { node: 'nid009' })
    const r = await run
    expectEnd(t, r, log, 'reboot')
    t.equal(r.exitCode, EXIT_CODES.reboot, 'exit 20: reboot into its own boot')
    expectTrace(t, r, log, ['network', 'discover', 'pending'])
    t.same(mountsUnder(b.dir), [])
  })
}
