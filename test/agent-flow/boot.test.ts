/**
 * The agent end to end against real peers: a running `netboot serve` on loopback
 * (attestation on, the node in the inventory, an image whose rootfs is a real
 * squashfs, plain and secure cloud-init set through the admin API), swtpm with EK
 * certificates from a local CA, real mount/overlayfs into a temp NEWROOT, as root.
 * Fails, never skips, when a real peer is missing.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Tpm } from '../../agent/tpm/index.js'
import { EXIT_CODES } from '../../agent/errors.js'
import { runAgent } from '../../agent/run.js'
import { ROOTFS_PCR } from '../../agent/steps/measure.js'
import { realClock } from '../../agent/backoff.js'
import type { Swtpm } from '../attest/swtpm-harness.js'
import {
  NODE_MAC, NODE_MAC2, PLAIN_MARKER, ROOTFS_MARKER, SECURE_MARKER, agentConfig, bootDirs, cleanupMounts, expectEnd, expectTrace, loopsUnder, mountsUnder,
  realPeerProblems, standardPeers, tctiOf, testLog, type BuiltImage, type Netboot,
} from './helpers.js'

const problems = realPeerProblems()
if (problems.length > 0) {
  for (const p of problems) t.fail(p)
} else {
  let sw: Swtpm
  let image: BuiltImage
  // one server for every boot in this file: the same node and TPM boot again and again
  let nb: Netboot
  t.before(async () => { ({ sw, image, nb } = await standardPeers(t)) })

  const readPcr = async (): Promise<Buffer> => {
    const tpm = await Tpm.open(tctiOf(sw))
    try { return (await tpm.pcrRead({ pcrs: [ROOTFS_PCR], bank: 'sha256' })).get(ROOTFS_PCR)! } finally { await tpm.close() }
  }

  t.test('boot: attest, decrypt the secure seed, download + verify, measure PCR 14, mount ro + overlay, seed, token', async (t) => {
    const b = bootDirs(t, [NODE_MAC, NODE_MAC2])
    const cmdline = await nb.cmdlineFor(NODE_MAC)
    t.match(cmdline, `netboot.server=${nb.httpUrl} netboot.node=nid001 netboot.image=compute@sha256:${image.sha256} netboot.mode=boot`, 'the boot script sets the agent’s parameters')
    const pcrBefore = await readPcr()
    const log = testLog()
    const t0 = Date.now()
    const r = await runAgent(agentConfig(sw, cmdline, b), { log })
    t.comment(`one boot (attest → seed) took ${Date.now() - t0} ms`)
    expectEnd(t, r, log, 'done')
    t.equal(r.exitCode, 0)
    expectTrace(t, r, log, ['network', 'attest', 'secrets', 'rootfs', 'measure', 'mount', 'seed'])

    // attested, and the server agrees
    t.equal(r.attested?.node, 'nid001')
    t.equal(r.attested?.rootfs?.sha256, image.sha256, 'the digest came from the attested answer')
    const ids = await nb.admin<{ identities: { node: string; state: string; ekSha256: string; macs: string[] }[] }>('GET', '/api/v1/enroll?node=nid001')
    t.match(ids.identities, [{ node: 'nid001', state: 'enrolled', ekSha256: r.ekSha256 }], 'tofu enrolled the TPM the agent used')
    t.same([...ids.identities[0]!.macs].sort(), [NODE_MAC, NODE_MAC2], 'the agent reported both physical NICs (not lo, not the bridge)')
    const audit = await nb.admin<{ entries: { action: string; outcome: string; target?: string }[] }>('GET', '/api/v1/audit?action=cloudinit.secure.read')
    t.match(audit.entries, [{ action: 'cloudinit.secure.read', target: 'nid001' }], 'the secure read was audited')

    // rootfs: mounted read-only, overlay writable into the tmpfs upper layer
    t.equal(readFileSync(join(b.newRoot, 'etc/netboot-marker'), 'utf8'), `${ROOTFS_MARKER}\n`, 'the marker file of the squashfs is readable in NEWROOT')
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    const at = (p: string): string | undefined => mounts.find((l) => l.split(' ')[4] === p)
    t.match(at(join(b.workDir, 'lower')), / - squashfs \/dev\/loop\d+ ro/, 'the squashfs is mounted read-only from a loop device')
    t.match(at(b.newRoot), / - overlay netboot-root rw,.*lowerdir=/, 'NEWROOT is an overlay')
    t.match(at(join(b.workDir, 'overlay')), / - tmpfs netboot-overlay rw,.*size=65536k/, 'the upper layer is a tmpfs capped at 64m')
    writeFileSync(join(b.newRoot, 'etc/written-after-boot'), 'hello')
    t.ok(existsSync(join(b.workDir, 'overlay/upper/etc/written-after-boot')), 'a write goes to the upper layer')
    t.notOk(existsSync(join(b.workDir, 'lower/etc/written-after-boot')), 'and not to the squashfs')
    t.equal(spawnSync('touch', [join(b.workDir, 'lower/etc/x')]).status !== 0, true, 'the squashfs itself refuses writes')

    // PCR 14 = H(before ‖ rootfs sha256)
    const pcrAfter = await readPcr()
    const want = createHash('sha256').update(pcrBefore).update(Buffer.from(image.sha256, 'hex')).digest()
    t.equal(pcrAfter.toString('hex'), want.toString('hex'), 'PCR 14 was extended with the rootfs digest (read back from the TPM)')
    t.equal(r.measurement?.after.sha256, want.toString('hex'))

    // NoCloud seed in NEWROOT, merged plain + secure
    const seedDir = join(b.newRoot, 'var/lib/cloud/seed/nocloud')
    t.same(readdirSync(seedDir).sort(), ['meta-data', 'user-data', 'vendor-data'])
    const userData = readFileSync(join(seedDir, 'user-data'), 'utf8')
    t.match(userData, /^#cloud-config/)
    t.match(userData, SECURE_MARKER, 'user-data holds the decrypted secure data')
    t.match(userData, PLAIN_MARKER, 'merged with the plain data')
    const metaData = readFileSync(join(seedDir, 'meta-data'), 'utf8')
    t.match(metaData, /^instance-id: iid-[0-9a-f]{16}$/m)
    t.match(metaData, /local-hostname: nid001/)
    for (const f of ['meta-data', 'user-data', 'vendor-data']) t.equal(statSync(join(seedDir, f)).mode & 0o777, 0o600, `${f} is 0600`)
    t.equal(statSync(seedDir).mode & 0o777, 0o700)
    t.ok(existsSync(join(b.workDir, 'overlay/upper/var/lib/cloud/seed/nocloud/user-data')), 'the seed is in the tmpfs upper layer, not the image')
    if (spawnSync('sh', ['-c', 'command -v cloud-init'], { stdio: 'ignore' }).status === 0) {
      const schema = spawnSync('cloud-init', ['schema', '-c', join(seedDir, 'user-data')], { encoding: 'utf8' })
      t.equal(schema.status, 0, `the seed's user-data passes the real cloud-init schema: ${schema.stdout}${schema.stderr}`)
    }

    // the token, in the initramfs /run (which dracut moves over NEWROOT/run), 0600
    const tokenFile = join(b.runDir, 'netboot/token')
    t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'token 0600')
    t.equal(statSync(join(b.runDir, 'netboot')).mode & 0o777, 0o700)
    t.equal(readFileSync(tokenFile, 'utf8'), r.attested?.token)
    t.notOk(existsSync(join(b.newRoot, 'run/netboot')), 'nothing is written into NEWROOT/run')
    const record = JSON.parse(readFileSync(join(b.runDir, 'netboot/boot.json'), 'utf8')) as Record<string, unknown>
    t.match(record, { node: 'nid001', rootfs: { sha256: image.sha256 }, measurement: { pcr: 14, after: { sha256: want.toString('hex') } } })
    t.notOk(JSON.stringify(record).includes(r.attested!.token), 'boot.json holds no token')
    const who = await fetch(`${nb.httpUrl}/node/v1/nodes/nid001/token`, { headers: { authorization: `DPoP ${r.attested!.token}` } })
    t.equal(who.status, 401, 'the token alone, without the boot key’s DPoP proof, opens nothing')

    // console: one line per event, nothing secret
    t.ok(log.lines.some((l) => /^info attest: attested as nid001/.test(l)))
    t.notOk(log.lines.some((l) => l.includes(r.attested!.token.slice(-20))), 'the token never reaches the console')

    cleanupMounts(b.dir)
    t.same(mountsUnder(b.dir), [], 'no mount left')
    t.same(loopsUnder(b.dir), [], 'no loop device left (mount -o loop autoclears)')
  })

  t.test("a node clock an hour behind: DPoP proofs carry the server's time from its Date header", async (t) => {
    const b = bootDirs(t, [NODE_MAC])
    const log = testLog()
    const behind = { now: () => Date.now() - 3_600_000, sleep: realClock.sleep }
    const r = await runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log, clock: behind })
    expectEnd(t, r, log, 'done')
    t.ok(log.lines.some((l) => /server clock \+(3599|3600)\.\d s from ours/.test(l)), 'the offset is learned and shown')
  })

  t.test('a token that expired before the secure read: attest again, then go on', async (t) => {
    const b = bootDirs(t, [NODE_MAC])
    // the local clock jumps an hour ahead right after the attestation: the token looks
    // expired by the clock offset learned so far, so the agent attests again
    let skew = 0
    const clock = { now: () => Date.now() + skew, sleep: realClock.sleep }
    const lines = testLog()
    const log = { ...lines, info: (s: string, m: string) => { lines.info(s, m); if (/^attested as/.test(m) && skew === 0) skew = 3_600_000 } }
    const r = await runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log, clock })
    expectEnd(t, r, lines, 'done')
    expectTrace(t, r, log, ['network', 'attest', 'secrets', 'attest', 'secrets', 'rootfs', 'measure', 'mount', 'seed'])
    t.ok(lines.lines.some((l) => /^warn secrets: the node token expired .*: attesting again$/.test(l)))
  })

  t.test('the CLI: node dist/agent/main.js run, exit codes', async (t) => {
    const main = new URL('../../dist/agent/main.js', import.meta.url).pathname
    t.ok(existsSync(main), 'built by npm run build')
    const codes = spawnSync(process.execPath, [main, 'exit-codes'], { encoding: 'utf8' })
    t.equal(codes.status, 0)
    t.equal(codes.stdout, Object.entries(EXIT_CODES).map(([k, v]) => `${v} ${k}\n`).join(''), 'exit-codes prints the table')
    const bad = spawnSync(process.execPath, [main, 'run', '--cmdline', 'netboot.server=ftp://x netboot.mode=boot netboot.bogus=1 rd.shell'], { encoding: 'utf8' })
    t.equal(bad.status, EXIT_CODES.usage, 'a bad command line: exit 2')
    t.match(bad.stderr, /^netboot\[cmdline\] \+\d+\.\ds: FAILED: kernel command line: netboot\.bogus: unknown parameter .*netboot\.server=ftp:\/\/x: scheme ftp/)
    t.equal(bad.stderr.trim().split('\n').length, 1, 'in one line')
    const usage = spawnSync(process.execPath, [main, 'run', '--overlay-size', 'lots', '--cmdline', 'x'], { encoding: 'utf8' })
    t.equal(usage.status, EXIT_CODES.usage)
    t.match(usage.stderr, /--overlay-size lots: a tmpfs size/)

    const b = bootDirs(t, [NODE_MAC])
    const child = spawn(process.execPath, [main, 'run', '--cmdline', await nb.cmdlineFor(NODE_MAC), '--tcti', tctiOf(sw), '--newroot', b.newRoot, '--work', b.workDir, '--run', b.runDir, '--sysfs', b.sysfs, '--overlay-size', '32m'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    t.equal(code, 0, err)
    const lines = err.trim().split('\n')
    t.same(lines.filter((l) => !/^netboot\[(network|attest|secrets|rootfs|measure|mount|seed|done)\] \+\d+\.\ds: \S/.test(l)), [], 'every line is `netboot[step] +T.Ts: message`')
    t.match(lines.at(-1), /^netboot\[done\] .*nid001 is ready: switching root to /)
    t.equal(readFileSync(join(b.newRoot, 'etc/netboot-marker'), 'utf8'), `${ROOTFS_MARKER}\n`)
  })
}
