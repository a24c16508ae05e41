/**
 * Boots that must not succeed, against the real server and swtpm: each ends in its
 * own exit code with one console line naming the step and the reason, and leaves
 * nothing mounted.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { EXIT_CODES } from '../../agent/errors.js'
import { runAgent } from '../../agent/run.js'
import { tempDir } from '../helpers/tmp.js'
import { freePort } from '../helpers/cli.js'
import type { Swtpm } from '../attest/swtpm-harness.js'
import {
  FAST_POLICY, NODE_MAC, addImage, agentConfig, bootDirs, buildSquashfs, expectEnd, expectTrace, loopsUnder, mountsUnder, realPeerProblems, setDefaultImage, standardPeers, standardServer, testLog, type BuiltImage, type Netboot,
} from './helpers.js'

const problems = realPeerProblems()
if (problems.length > 0) {
  for (const p of problems) t.fail(p)
} else {
  let sw: Swtpm
  let image: BuiltImage
  // one server for the boots that differ only in what the server holds; each sets it up
  let nb: Netboot
  t.before(async () => { ({ sw, image, nb } = await standardPeers(t)) })

  const failureLines = (log: { lines: string[] }): string[] => log.lines.filter((l) => l.startsWith('error '))

  t.test('a tampered rootfs (bit rot in the server’s blob) is refused before mount', async (t) => {
    await setDefaultImage(nb, 'compute')
    const blob = nb.blobPath(image.sha256)
    const original = readFileSync(blob)
    t.teardown(() => writeFileSync(blob, original))
    const fd = openSync(blob, 'r+')
    writeSync(fd, Buffer.from('tampered'), 0, 8, 4096)
    closeSync(fd)
    const b = bootDirs(t, [NODE_MAC])
    const log = testLog()
    const r = await runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log })
    t.equal(r.state, 'failed')
    t.equal(r.exitCode, EXIT_CODES.integrity, 'exit 9: integrity')
    t.equal(r.error?.code, 'AGENT_ROOTFS_DIGEST_MISMATCH')
    expectTrace(t, r, log, ['network', 'attest', 'secrets', 'rootfs'])
    t.same(mountsUnder(b.dir), [], 'nothing was mounted')
    t.same(readdirSync(b.workDir), [], 'the unverified download was deleted')
    t.notOk(existsSync(join(b.runDir, 'netboot/token')))
    const lines = failureLines(log)
    t.equal(lines.length, 1, 'one failure line')
    t.match(lines[0], /^error rootfs: .*not the attested sha256:[0-9a-f]{64}; deleted, not mounted \[AGENT_ROOTFS_DIGEST_MISMATCH\]; exit 9: the dracut hook reboots the node/)

    // the same failure with rd.shell on the command line: the line says the hook opens the shell
    const b2 = bootDirs(t, [NODE_MAC])
    const log2 = testLog()
    const r2 = await runAgent(agentConfig(sw, `${await nb.cmdlineFor(NODE_MAC)} rd.shell`, b2), { log: log2 })
    t.equal(r2.exitCode, EXIT_CODES.integrity)
    t.match(failureLines(log2)[0], /exit 9: rd\.shell is set: the dracut hook opens the emergency shell$/)
  })

  t.test('attestation refused (pre-enrolled policy, this EK was never enrolled): exit 5 at once, no retry', async (t) => {
    const nb = await standardServer(t, sw, image, { enrollment: 'pre-enrolled' })
    const b = bootDirs(t, [NODE_MAC])
    const log = testLog()
    const r = await runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log })
    t.equal(r.exitCode, EXIT_CODES.refused)
    t.match(r.error, { code: 'AGENT_ATTEST_REFUSED', serverCode: 'ATTEST_UNKNOWN_EK' })
    expectTrace(t, r, log, ['network', 'attest'])
    t.match(failureLines(log), [/^error attest: attestation start: refused: ATTEST_UNKNOWN_EK: .*\[AGENT_ATTEST_REFUSED\]; exit 5/])
  })

  t.test('an image without a rootfs: attested, but nothing to boot: exit 5', async (t) => {
    await addImage(nb, 'bare', image, { withRootfs: false })
    const b = bootDirs(t, [NODE_MAC])
    const log = testLog()
    const r = await runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log })
    expectEnd(t, r, log, 'failed', EXIT_CODES.refused)
    t.equal(r.error?.code, 'AGENT_NO_ROOTFS')
  })

  t.test('the image changed while the node booted: the attested rootfs is not this kernel’s image, so reboot (exit 20)', async (t) => {
    await setDefaultImage(nb, 'compute')
    const cmdline = await nb.cmdlineFor(NODE_MAC)
    const other = buildSquashfs(tempDir(t, 'netboot-image2-'), 'other-marker')
    await addImage(nb, 'compute-v2', other)
    const b = bootDirs(t, [NODE_MAC])
    const log = testLog()
    const r = await runAgent(agentConfig(sw, cmdline, b), { log })
    expectEnd(t, r, log, 'reboot')
    t.equal(r.exitCode, EXIT_CODES.reboot)
    expectTrace(t, r, log, ['network', 'attest'])
    t.ok(log.lines.some((l) => l.includes(`now plans rootfs sha256:${other.sha256.slice(0, 16)}`)), 'the console says why')
  })

  t.test('an image whose /var/lib/cloud is a symlink out of NEWROOT: the seed is refused and everything unmounted', async (t) => {
    const escape = mkdtempSync(join(tmpdir(), 'netboot-escape-'))
    t.teardown(() => rmSync(escape, { recursive: true, force: true }))
    const evil = buildSquashfs(tempDir(t, 'netboot-image3-'), 'evil-marker', (tree) => {
      rmSync(join(tree, 'var/lib/cloud'), { recursive: true })
      symlinkSync(escape, join(tree, 'var/lib/cloud'))
    })
    await addImage(nb, 'evil', evil)
    const b = bootDirs(t, [NODE_MAC])
    const log = testLog()
    const r = await runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log })
    expectEnd(t, r, log, 'failed', EXIT_CODES.seed)
    t.equal(r.error?.code, 'AGENT_SEED')
    t.match(r.error?.message, /var\/lib\/cloud is a symbolic link in the root image/)
    t.same(readdirSync(escape), [], 'nothing was written through the link')
    t.same(mountsUnder(b.dir), [], 'a failed boot unmounts NEWROOT, the tmpfs and the squashfs')
    t.same(loopsUnder(b.dir), [], 'and frees the loop device')
    t.notOk(existsSync(join(b.runDir, 'netboot/token')), 'no token is left behind')
  })

  t.test('no server: the network wait runs out, exit 3', async (t) => {
    const b = bootDirs(t, [NODE_MAC])
    const port = await freePort()
    const log = testLog()
    const policy = { ...FAST_POLICY, network: { ...FAST_POLICY.network, waitMs: 600 } }
    const r = await runAgent(agentConfig(sw, `netboot.server=http://127.0.0.1:${port} netboot.node=nid001 netboot.image=x@sha256:${'0'.repeat(64)} netboot.mode=boot`, b, { policy }), { log })
    t.equal(r.exitCode, EXIT_CODES.network)
    t.equal(r.error?.code, 'AGENT_NETWORK_TIMEOUT')
    t.match(r.error?.message, /did not answer within 0\.6 s \(\d+ tries, last: ECONNREFUSED/)
    t.ok(log.lines.filter((l) => /waiting for/.test(l)).length <= 2, 'one waiting line per reason, not one per try')
  })
}
