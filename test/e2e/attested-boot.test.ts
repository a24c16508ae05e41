/**
 * The attested boot, end to end, in QEMU (TCG) with swtpm, against netboot alone:
 *
 *   DHCP → iPXE → boot script → kernel + netboot initrd (dracut module + agent)
 *   → the agent attests with the VM's TPM (strict enrollment: an EK certificate
 *     from the test's swtpm-localca, which netboot's attestation.ek_ca trusts, and an
 *     admin's approval, given here by an admin-API client while the agent waits)
 *   → node token → secure cloud-init → rootfs downloaded, sha256-verified, mounted
 *     read-only under an overlay → switch root → the root image's /sbin/init prints
 *     the sha256 of the secret the secure cloud-init carried (read from the NoCloud
 *     seed) and the mount at / (overlay), then powers off.
 *
 * Four boots, one after the other (the budget: each is 30–120 s under TCG):
 *   bios       SeaBIOS + iPXE ROM, tpm-tis                           → boots the image
 *   uefi       OVMF + iPXE ROM, tpm-crb; the agent sends the firmware's
 *              event log                                              → boots the image
 *   stranger   a TPM whose EK certificate comes from a CA netboot does not
 *              trust (a foreign manufacturer)                         → refused, no secrets
 *   tampered   the image's blob changed on netboot's disk after it was
 *              registered: the served bytes no longer match the digest → refused before mounting
 *
 * Network: one namespace holds netboot and a bridge (10.97.0.1/24); each VM's NIC is a
 * tap on it. swtpm runs on the host side of a unix socket only QEMU uses.
 * Needs root, qemu-system-x86, ovmf, ipxe-qemu, ipxe, swtpm, swtpm-tools, dracut-core,
 * squashfs-tools, cpio, apt access for the kernel .deb (scripts/e2e-assets.sh), the
 * agent bundle and TPM addon (npm run build:agent): without them it fails, naming them.
 * E2E_ONLY=bios,uefi,stranger,tampered boots only those (for working on one).
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CLI } from '../helpers/cli.js'
import { netns, type Netns } from '../helpers/netns.js'
import { startNsServer, type NsServer } from '../helpers/netboot-ns.js'
import { tempDir } from '../helpers/tmp.js'
import { buildUki, DEFAULT_STUB } from '../../server/images/uki.js'
import { e2eAssets, ROOT, type E2eAssets } from './assets.js'
import { missingFor, runVm, serialTail, type Firmware, type VmResult } from './qemu.js'
import { localCa, missingSwtpmTools, provisionTpm, startVmTpm, type LocalCa } from './swtpm-vm.js'
import { bootTimeline, formatTimeline, parseLog } from './timeline.js'

const SERVER = '10.97.0.1'
const HTTP_PORT = 8080
const ADMIN_PORT = 8081
/** Per VM. UEFI gets more: OVMF loads and measures the 64 MiB UKI under TCG, 50-160 s on a loaded host. */
const BOOT_TIMEOUT_MS: Record<Firmware, number> = { bios: 300_000, 'uefi-rom': 540_000, 'uefi-pxe': 540_000 }
const MEMORY_MIB = 1536

type Run = 'bios' | 'uefi' | 'stranger' | 'tampered'

interface Machine {
  readonly run: Run
  readonly firmware: Firmware
  readonly node: string
  readonly mac: string
  readonly ip: string
  readonly image: string
  /** Which CA issued its TPM's EK certificate. */
  readonly ca: 'trusted' | 'foreign'
  readonly label: string
}

const MACHINES: readonly Machine[] = [
  { run: 'bios', firmware: 'bios', node: 'att-bios', mac: '52:54:00:97:00:01', ip: '10.97.0.11', image: 'e2e-root', ca: 'trusted', label: 'BIOS (SeaBIOS + iPXE ROM, tpm-tis): attested boot' },
  { run: 'uefi', firmware: 'uefi-rom', node: 'att-uefi', mac: '52:54:00:97:00:02', ip: '10.97.0.12', image: 'e2e-root', ca: 'trusted', label: 'UEFI (OVMF + iPXE ROM, tpm-crb): attested boot with the firmware event log' },
  { run: 'stranger', firmware: 'bios', node: 'att-stranger', mac: '52:54:00:97:00:03', ip: '10.97.0.13', image: 'e2e-root', ca: 'foreign', label: 'a TPM netboot does not trust gets no secrets' },
  { run: 'tampered', firmware: 'bios', node: 'att-tampered', mac: '52:54:00:97:00:04', ip: '10.97.0.14', image: 'e2e-tampered', ca: 'trusted', label: 'a tampered root image is refused before it is mounted' },
]

t.setTimeout(MACHINES.reduce((sum, m) => sum + BOOT_TIMEOUT_MS[m.firmware] + 30_000, 0) + 600_000)

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

function config (dir: string, ca: LocalCa): string {
  return `
data_dir: ${dir}/data
log: { level: info }
server: { address: ${SERVER}, interfaces: [br0] }
http: { listen: 0.0.0.0, port: ${HTTP_PORT} }
admin: { listen: 127.0.0.1, port: ${ADMIN_PORT} }
tftp: { enabled: true, port: 69, ipxe_dir: /usr/lib/ipxe }
unknown_nodes: { action: reboot, lease_time: 120 }
attestation: { enabled: true, enrollment: strict, ek_ca: ${ca.dir}, pcr_policy: learn }
dhcp:
  lease_time: 600
  subnets:
    - name: e2e
      network: 10.97.0.0/24
      interface: br0
      pool: [10.97.0.200-10.97.0.220]
      router: ${SERVER}
      dns: [${SERVER}]
`
}

/** The built CLI inside the server's namespace (the admin API listens on its loopback). */
async function cli (ns: Netns, cfg: string, token: string, args: readonly string[], timeout = 120_000): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns.name, process.execPath, CLI, '-c', cfg, ...args], { env: { ...process.env, NETBOOT_TOKEN: token }, timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`netboot ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

async function localToken (cfg: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, '-c', cfg, '--json', 'token', 'create', '--local', 'e2e-attested'], { env: { ...process.env, NETBOOT_TOKEN: '' }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`token create: ${err.message}\n${stderr}`))
      else resolve((JSON.parse(stdout) as { value: string }).value)
    })
  })
}

async function run (cmd: string, args: readonly string[], timeout: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr.slice(-4000)}`))
      else resolve(stdout)
    })
  })
}

/** What is missing on this machine, each named with its Debian package (or the project command that makes it). */
function missing (): string[] {
  const out = [...new Set([...missingFor('bios'), ...missingFor('uefi-rom')])]
  out.push(...missingSwtpmTools())
  for (const [tool, pkg] of [['mksquashfs', 'squashfs-tools'], ['dracut', 'dracut-core'], ['cpio', 'cpio']] as const) {
    if (!existsSync(`/usr/bin/${tool}`) && !existsSync(`/usr/sbin/${tool}`)) out.push(`${tool} (Debian package ${pkg})`)
  }
  if (!existsSync(join(ROOT, 'dist', 'agent', 'netboot-agent.mjs'))) out.push('dist/agent/netboot-agent.mjs (the agent bundle: npm run build:agent, scripts/setup.sh)')
  if (!existsSync(CLI)) out.push(`${CLI} (npm run build)`)
  return out
}

/** The kernel modules scripts/e2e-assets.sh extracted next to the kernel (for dracut --kmoddir). */
function kmodDir (assets: E2eAssets): string {
  const candidates = [join(assets.dir, 'modules', 'lib', 'modules', assets.kernelVersion), join(assets.dir, 'lib', 'modules', assets.kernelVersion), join(assets.dir, 'modules', assets.kernelVersion)]
  const found = candidates.find((d) => existsSync(join(d, 'modules.dep')))
  if (found === undefined) throw new Error(`no kernel modules (with modules.dep) for ${assets.kernelVersion} under ${assets.dir}: scripts/e2e-assets.sh extracts them (tried ${candidates.join(', ')})`)
  return found
}

/**
 * The netboot initrd (`netboot initrd build`: dracut + netboot's module + the agent)
 * for the e2e kernel, kept in the e2e cache under a key of everything that goes
 * into it (the dracut module, the agent bundle, the TPM addon, the builder, the
 * kernel version), so it is rebuilt exactly when one of them changed: a build takes
 * 1–3 minutes on two busy cores. E2E_INITRD=FILE uses that file instead (debugging).
 */
async function netbootInitrd (assets: E2eAssets, log: (line: string) => void): Promise<string> {
  const given = process.env.E2E_INITRD
  if (given !== undefined && given !== '') {
    log(`E2E_INITRD=${given}: using that initrd, not a fresh build`)
    return given
  }
  const h = createHash('sha256').update(assets.kernelVersion)
  const moduleDir = join(ROOT, 'dracut', '90netboot')
  for (const f of readdirSync(moduleDir).sort()) h.update(f).update(readFileSync(join(moduleDir, f)))
  for (const f of [join(ROOT, 'dist', 'agent', 'netboot-agent.mjs'), join(ROOT, 'agent', 'tpm', 'build', 'Release', 'netboot_tpm.node'), join(ROOT, 'server', 'initrd', 'build.ts')]) {
    if (!existsSync(f)) throw new Error(`${f} is missing (npm run build:agent, npm run bundle:agent)`)
    h.update(f).update(readFileSync(f))
  }
  const key = h.digest('hex').slice(0, 16)
  const out = join(assets.dir, `netboot-initrd-${key}.img`)
  if (existsSync(out)) return out
  for (const old of readdirSync(assets.dir).filter((f) => /^netboot-initrd-[0-9a-f]{16}\.img$/.test(f))) rmSync(join(assets.dir, old), { force: true })
  log(`building the netboot initrd (${key}): netboot initrd build --kver ${assets.kernelVersion}`)
  await run(process.execPath, [CLI, 'initrd', 'build', '--kver', assets.kernelVersion, '--kmoddir', kmodDir(assets), '--kernel', assets.kernel, '--output', out], 900_000)
  return out
}

/** The kernel command line built into the UKI; iPXE passes netboot's own, which systemd-stub uses (docs/uki.md). */
const UKI_CMDLINE = 'console=ttyS0,115200 panic=1'

/**
 * The unified kernel image UEFI nodes boot (server/images/uki.ts: the e2e kernel and
 * the netboot initrd in one PE with systemd's EFI stub), cached next to the initrd it
 * wraps, by the digests of its inputs.
 */
async function netbootUki (assets: E2eAssets, initrd: string, initrdSha: string): Promise<string> {
  const key = createHash('sha256').update(assets.kernelSha256).update(initrdSha).update(readFileSync(DEFAULT_STUB)).update(UKI_CMDLINE)
    .update(readFileSync(join(ROOT, 'server', 'images', 'uki.ts'))).digest('hex').slice(0, 16)
  const out = join(assets.dir, `netboot-uki-${key}.efi`)
  if (existsSync(out)) return out
  for (const old of readdirSync(assets.dir).filter((f) => /^netboot-uki-[0-9a-f]{16}\.efi$/.test(f))) rmSync(join(assets.dir, old), { force: true })
  await buildUki({ kernel: assets.kernel, initrd, cmdline: UKI_CMDLINE, output: out })
  return out
}

/**
 * Accepts the pending TPM of `node` as soon as it appears (strict enrollment: the
 * admin's decision), from inside the namespace, through the admin API: what
 * `netboot enroll list --state pending` + `netboot enroll accept ID` do, without a
 * CLI process per poll. Bounded: gives up after `ms`. Prints the accepted identity as JSON.
 */
function acceptWhenPending (ns: Netns, token: string, node: string, ms: number): Promise<{ code: number | null; out: string }> {
  const script = `
const [base, token, node, ms] = process.argv.slice(1)
const h = { authorization: 'Bearer ' + token }
const deadline = Date.now() + Number(ms)
while (Date.now() < deadline) {
  const r = await fetch(base + '/api/v1/enroll?state=pending', { headers: h }).catch(() => undefined)
  const ids = r !== undefined && r.ok ? (await r.json()).identities : []
  const mine = ids.find((i) => i.node === node)
  if (mine !== undefined) {
    const a = await fetch(base + '/api/v1/enroll/' + mine.id + '/accept', { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: '{}' })
    console.log(JSON.stringify({ id: mine.id, node: mine.node, ekSha256: mine.ekSha256, ekCertSha256: mine.ekCertSha256 ?? null, status: a.status, at: Date.now() }))
    process.exit(a.ok ? 0 : 1)
  }
  await new Promise((r) => setTimeout(r, 1000))
}
process.exit(3)
`
  const p = ns.spawn(process.execPath, ['--input-type=module', '-e', script, `http://127.0.0.1:${ADMIN_PORT}`, token, node, String(ms)])
  let out = ''
  p.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  p.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  return new Promise((resolve) => p.once('exit', (code) => resolve({ code, out })))
}

/** Flips bytes in the middle of a stored blob, keeping its size: what a corrupted or swapped file on the server looks like. */
function tamper (file: string): void {
  const size = statSync(file).size
  const fd = openSync(file, 'r+')
  try {
    const at = Math.floor(size / 2)
    const b = Buffer.alloc(64)
    readSync(fd, b, 0, b.length, at)
    for (let i = 0; i < b.length; i++) b[i] = b[i]! ^ 0xff
    writeSync(fd, b, 0, b.length, at)
  } finally {
    closeSync(fd)
  }
}

interface AuditEntry { seq: number; time: string; action: string; target?: string; outcome: string; actor: { kind: string; id: string }; detail: Record<string, unknown> }

// Serial console lines that mark the phases of an attested boot.
const SERIAL = {
  linux: /Linux version \d/,
  dracut: /dracut: Debian|dracut-\d+ \(Initramfs\)/,
  initrdDhcp: /dhcp: BOUND setting up/,
  agent: /netboot\[network\] \+[\d.]+s: /,
  pending: /netboot\[pending\] \+[\d.]+s: decided/,
  attested: /netboot\[attest\] \+[\d.]+s: attested as /,
  secrets: /netboot\[secrets\] \+[\d.]+s: secure cloud-init decrypted/,
  verified: /netboot\[rootfs\] \+[\d.]+s: .*sha256 verified/,
  mounted: /netboot\[mount\] \+[\d.]+s: squashfs read-only/,
  switchRoot: /NETBOOT-E2E-ROOTFS /,
  anyFailure: /netboot\[\w+\] \+[\d.]+s: FAILED: /,
} as const

/**
 * When the agent started: its first line carries its own elapsed time (+T.Ts), so
 * the start is that line's arrival minus T (node and the bundle loading come before).
 */
function agentStart (vm: VmResult): { name: string; time: number }[] {
  const seen = vm.seen.get(SERIAL.agent.source)
  const t = /netboot\[network\] \+([\d.]+)s: /.exec(vm.serial)?.[1]
  return seen !== undefined && t !== undefined ? [{ name: 'agent', time: seen - Number(t) * 1000 }] : []
}

t.test('attested boot end to end: QEMU + swtpm against netboot alone', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (namespaces, taps, QEMU, swtpm): CI runs as root')
  const lacking = missing()
  if (lacking.length > 0) throw new Error(`missing on this machine: ${lacking.join(', ')} (scripts/setup.sh installs them)`)

  const assets = await e2eAssets()
  const dir = tempDir(t, 'netboot-att-')
  mkdirSync(join(dir, 'data'), { recursive: true })
  // Serial consoles, swtpm logs and netboot's log of the last run stay here for a look after a failure.
  const keep = join(assets.dir, 'last-attested')
  rmSync(keep, { recursive: true, force: true })
  mkdirSync(keep, { recursive: true })

  // --- artefacts: the netboot initrd (dracut + the agent), two root images -------
  let t0 = Date.now()
  const initrd = await netbootInitrd(assets, (l) => t.comment(l))
  t.comment(`netboot initrd for ${assets.kernelVersion}: ${(statSync(initrd).size / 1048576).toFixed(1)} MiB (${((Date.now() - t0) / 1000).toFixed(1)} s to build or find)`)
  const initrdSha = sha256(readFileSync(initrd))
  t0 = Date.now()
  const uki = await netbootUki(assets, initrd, initrdSha)
  const ukiSha = sha256(readFileSync(uki))
  t.comment(`unified kernel image for UEFI nodes: ${(statSync(uki).size / 1048576).toFixed(1)} MiB (${((Date.now() - t0) / 1000).toFixed(1)} s to build or find)`)
  const rootfs = (await run('bash', [join(ROOT, 'scripts', 'test-rootfs.sh'), join(assets.dir, 'rootfs-e2e.squashfs'), 'e2e-root', join(assets.dir, 'busybox')], 120_000)).trim().split('\n').pop()!
  const rootfsBad = (await run('bash', [join(ROOT, 'scripts', 'test-rootfs.sh'), join(assets.dir, 'rootfs-tampered.squashfs'), 'e2e-tampered', join(assets.dir, 'busybox')], 120_000)).trim().split('\n').pop()!
  const rootfsSha = sha256(readFileSync(rootfs))
  const rootfsBadSha = sha256(readFileSync(rootfsBad))

  // --- TPMs: a trusted CA (netboot's ek_ca) and a foreign one ---------------------
  t0 = Date.now()
  const trusted = localCa(join(dir, 'ca-trusted'), 'netboot-e2e')
  const foreign = localCa(join(dir, 'ca-foreign'), 'elsewhere')
  const tpmState = new Map<Run, string>()
  for (const m of MACHINES) {
    const state = join(dir, `tpm-${m.run}`)
    provisionTpm(m.ca === 'trusted' ? trusted : foreign, state)
    tpmState.set(m.run, state)
  }
  t.comment(`${MACHINES.length} swtpm states provisioned with EK certificates in ${((Date.now() - t0) / 1000).toFixed(1)} s`)

  // --- netboot in its namespace ---------------------------------------------------
  const cfg = join(dir, 'netboot.yaml')
  const srv = await netns(t, 'att')
  await srv.exec('ip', ['link', 'add', 'br0', 'type', 'bridge'])
  await srv.exec('ip', ['addr', 'add', `${SERVER}/24`, 'dev', 'br0'])
  await srv.exec('ip', ['link', 'set', 'br0', 'up'])
  const server: NsServer = await startNsServer(t, srv, dir, config(dir, trusted))
  t.teardown(() => { writeFileSync(join(keep, 'netboot.log'), server.log()) })
  await server.waitFor(/"msg":"dhcp: serving"/)
  const token = await localToken(cfg)
  const nb = async (args: readonly string[]): Promise<string> => await cli(srv, cfg, token, args)

  await nb(['group', 'add', 'e2e'])
  for (const m of MACHINES) await nb(['node', 'add', m.node, '--mac', m.mac, '--ip', m.ip, '--group', 'e2e'])
  // BIOS nodes boot the kernel and initrd of e2e-root, UEFI nodes its UKI (measured whole into PCR 4).
  await nb(['image', 'add', 'e2e-root', '--kernel', assets.kernel, '--initrd', initrd, '--rootfs', rootfs, '--uki', uki])
  const ukiAuthenticode = (JSON.parse(await nb(['--json', 'image', 'show', 'e2e-root'])) as { ukiAuthenticode?: { sha256?: string } }[])[0]?.ukiAuthenticode?.sha256
  await nb(['image', 'add', 'e2e-tampered', '--kernel', assets.kernel, '--initrd', initrd, '--rootfs', rootfsBad])
  // panic=1: a failure in the initramfs ends the machine (with -no-reboot) instead of hanging to the timeout.
  await nb(['boot', 'set', 'default', '--image', 'e2e-root', '--params', 'console=ttyS0,115200 panic=1 ip=dhcp rd.neednet=1'])
  await nb(['boot', 'set', 'att-tampered', '--image', 'e2e-tampered'])

  // Each node's own secret, only in its secure cloud-init; plain data for the group.
  const secrets = new Map(MACHINES.map((m) => [m.node, `NBSECRET-${randomBytes(16).toString('hex')}`]))
  const plain = join(dir, 'plain.yaml')
  writeFileSync(plain, ['name: e2e', 'cloud-init:', '  userdata:', '    write_files:', '      - path: /etc/netboot-plain', '        content: plain data for every node', '  metadata:', '    rack: e2e', ''].join('\n'))
  await nb(['cloud-init', 'set', '-f', plain])
  for (const m of MACHINES) {
    const f = join(dir, `secure-${m.node}.yaml`)
    writeFileSync(f, [`name: ${m.node}`, 'cloud-init:', '  userdata:', '    write_files:', '      - path: /etc/netboot-secret', `        content: ${secrets.get(m.node)!}`, '        permissions: "0600"', ''].join('\n'))
    await nb(['cloud-init', 'set', '--secure', '-f', f])
  }

  // The tampered image: registered with the digest of its true bytes, then changed on disk.
  const badBlob = join(dir, 'data', 'images', 'sha256', rootfsBadSha.slice(0, 2), rootfsBadSha)
  if (!existsSync(badBlob)) throw new Error(`the image store has no blob at ${badBlob}: where does netboot keep blobs now?`)
  tamper(badBlob)
  t.not(sha256(readFileSync(badBlob)), rootfsBadSha, 'the stored blob of e2e-tampered no longer hashes to its registered digest')

  /** GET /images/<digest>… requests from a machine's address in netboot's log. */
  const imageGets = (m: Machine, digest: string): unknown[] => parseLog(server.log()).filter((l) => {
    const req = l.req as { remoteAddress?: string; url?: string } | undefined
    return l.msg === 'incoming request' && req?.remoteAddress === m.ip && (req.url ?? '').startsWith(`/images/${digest}`)
  })
  const audit = async (): Promise<AuditEntry[]> => JSON.parse(await nb(['--json', 'audit', 'list', '--limit', '1000'])) as AuditEntry[]
  const timelines: string[] = []

  const only = process.env.E2E_ONLY?.split(',').map((s) => s.trim()).filter(Boolean)
  if (only !== undefined && only.length > 0) t.comment(`E2E_ONLY=${only.join(',')}: the other runs are not booted`)
  const unknown = (only ?? []).filter((o) => !MACHINES.some((m) => m.run === o))
  if (unknown.length > 0) throw new Error(`E2E_ONLY names no machine: ${unknown.join(', ')} (known: ${MACHINES.map((m) => m.run).join(', ')})`)
  for (const m of MACHINES.filter((m) => only === undefined || only.length === 0 || only.includes(m.run))) {
    await t.test(m.label, async (t) => {
      const tap = `tap${MACHINES.indexOf(m)}`
      await srv.exec('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap'])
      await srv.exec('ip', ['link', 'set', tap, 'master', 'br0'])
      await srv.exec('ip', ['link', 'set', tap, 'up'])
      t.teardown(async () => { await srv.exec('ip', ['link', 'del', tap]).catch(() => {}) })
      const vtpm = await startVmTpm(tpmState.get(m.run)!, join(dir, `swtpm-${m.run}.sock`), join(keep, `${m.node}-swtpm.log`))
      t.teardown(() => vtpm.stop())
      const auditBefore = (await audit()).at(-1)?.seq ?? 0

      // Strict enrollment: an admin approves a TPM whose EK certificate netboot verified.
      const approval = m.ca === 'trusted' ? acceptWhenPending(srv, token, m.node, BOOT_TIMEOUT_MS[m.firmware]) : undefined
      const scriptEcho = new RegExp(`netboot: node ${m.node} boots image ${m.image}@`)
      const vm: VmResult = await runVm({ firmware: m.firmware, ns: srv, tap, mac: m.mac, dir: keep, timeoutMs: BOOT_TIMEOUT_MS[m.firmware], name: m.node, memoryMiB: MEMORY_MIB, tpmSocket: vtpm.socket },
        [scriptEcho, ...Object.values(SERIAL)])
      await vtpm.stop()
      const accepted = approval !== undefined ? await Promise.race([approval, new Promise<{ code: number | null; out: string }>((r) => setTimeout(() => r({ code: null, out: 'still polling after the VM ended' }), 2000))]) : undefined
      // give pino's asynchronous stdout a moment to flush the last request lines
      await new Promise((r) => setTimeout(r, 500))

      const serial = vm.serial.replace(/\r/g, '')
      const why = `\n--- ${m.node} serial console (${vm.serialFile}), last lines ---\n${serialTail(vm.serial, 80)}\n--- qemu ${vm.argv.join(' ')}`
      t.notOk(vm.timedOut, `QEMU ended by itself within ${BOOT_TIMEOUT_MS[m.firmware] / 1000} s${vm.timedOut ? why : ''}`)
      t.ok(vm.seen.has(scriptEcho.source), "the serial console shows netboot's boot script running in iPXE")
      t.notOk(serial.includes(secrets.get(m.node)!), 'the secret itself never reaches the console')
      const entries = (await audit()).filter((e) => e.seq > auditBefore)
      const mine = (action: string, outcome?: string): AuditEntry[] => entries.filter((e) => e.action === action && (e.target === m.node || e.actor.id === m.node) && (outcome === undefined || e.outcome === outcome))
      const rootfsGets = imageGets(m, m.image === 'e2e-root' ? rootfsSha : rootfsBadSha)

      if (m.run === 'bios' || m.run === 'uefi') {
        t.equal(accepted?.code, 0, `the admin accepted ${m.node}'s pending TPM (${accepted?.out.trim() ?? ''})`)
        t.ok(vm.seen.has(SERIAL.attested.source), `the agent attested${vm.seen.has(SERIAL.attested.source) ? '' : why}`)
        const rootLine = /NETBOOT-E2E-ROOTFS (\S+)/.exec(serial)?.[1]
        t.equal(rootLine, 'e2e-root', `switch root: the root image's /sbin/init ran${rootLine === undefined ? why : ''}`)
        const root = /NETBOOT-E2E-ROOT (\S+) (\S+) (\S+)/.exec(serial)
        t.equal(root?.[2], 'overlay', `its root is the overlay (${root?.[0] ?? 'no NETBOOT-E2E-ROOT line'})`)
        t.match(root?.[3] ?? '', /lowerdir=/, 'an overlay over a lower (the squashfs) layer')
        const got = /NETBOOT-E2E-SECRET-SHA256 (\S+)/.exec(serial)?.[1]
        t.equal(got, sha256(secrets.get(m.node)!), 'the booted system holds the secret of its secure cloud-init (sha256 printed from the NoCloud seed)')
        t.match(/NETBOOT-E2E-TOKEN (\S+)/.exec(serial)?.[1] ?? '', /^\d+$/, 'the node token is in /run/netboot/token')
        t.equal(vm.code, 0, 'QEMU exited 0 (the booted system powered off)')
        t.ok(mine('enroll.pending', 'denied').some((e) => String(e.detail.cert).includes('EK certificate from')), "audit: the TPM's EK certificate chained to netboot's ek_ca, and it waited for an admin (enroll.pending)")
        t.ok(entries.some((e) => e.action === 'enroll.accept' && e.detail.node === m.node), 'audit: an admin accepted it (enroll.accept)')
        const finish = mine('attest.finish', 'ok')
        t.equal(finish.length, 1, 'audit: attestation accepted (attest.finish ok)')
        t.equal(mine('cloudinit.secure.read').length, 1, 'audit: the node read its secure cloud-init once')
        t.equal(rootfsGets.length > 0, true, 'the root image was downloaded from netboot')
        if (m.run === 'uefi') {
          t.type(finish[0]?.detail.eventLog, 'string', "the agent sent the firmware's event log (its sha256 is in the audit entry)")
          t.ok(Number(finish[0]?.detail.events) > 0, `the event log replayed to the quoted PCRs (${String(finish[0]?.detail.events)} events)`)
          const ukiCheck = finish[0]?.detail.uki as { expected?: string; basis?: string } | undefined
          t.match(ukiAuthenticode ?? '', /^[0-9a-f]{64}$/, "netboot computed the UKI's Authenticode digest on upload")
          t.equal(ukiCheck?.expected, ukiAuthenticode, `the PCR 4 rule passed: the firmware measured the served UKI (${JSON.stringify(ukiCheck)})`)
          t.ok(imageGets(m, ukiSha).length > 0 && imageGets(m, initrdSha).length === 0, 'the UEFI node fetched the UKI and no separate initrd')
        } else {
          t.comment(`BIOS: the agent sent ${finish[0]?.detail.eventLog === null || finish[0]?.detail.eventLog === undefined ? 'no event log' : `an event log (${String(finish[0]?.detail.events)} events)`}`)
        }
      } else if (m.run === 'stranger') {
        const line = serial.split('\n').find((l) => SERIAL.anyFailure.test(l))
        t.match(line ?? '', /netboot\[attest\] .*FAILED: .*ATTEST_EK_UNTRUSTED.*; exit 5:/, `the agent printed one line: attestation refused, EK untrusted, exit 5 (${line ?? 'no FAILED line'})${line === undefined ? why : ''}`)
        t.equal(serial.split('\n').filter((l) => SERIAL.anyFailure.test(l)).length, 1, 'exactly one failure line')
        t.notOk(vm.seen.has(SERIAL.attested.source), 'it never attested')
        t.notOk(vm.seen.has(SERIAL.secrets.source) || vm.seen.has(SERIAL.switchRoot.source), 'no secrets, no root image booted')
        const refused = mine('attest.start', 'denied')
        t.ok(refused.some((e) => e.detail.reason === 'ATTEST_EK_UNTRUSTED'), `audit: attest.start denied, reason ATTEST_EK_UNTRUSTED (${refused.map((e) => String(e.detail.why)).join('; ')})`)
        t.same(mine('attest.finish', 'ok'), [], 'audit: no accepted attestation')
        t.same(mine('cloudinit.secure.read'), [], 'audit: no secure cloud-init read')
        t.equal(rootfsGets.length, 0, 'the root image was never requested')
        t.equal(accepted, undefined)
      } else {
        t.equal(accepted?.code, 0, `the admin accepted ${m.node}'s pending TPM (${accepted?.out.trim() ?? ''})`)
        t.ok(vm.seen.has(SERIAL.attested.source), `the agent attested${vm.seen.has(SERIAL.attested.source) ? '' : why}`)
        const line = serial.split('\n').find((l) => SERIAL.anyFailure.test(l))
        t.match(line ?? '', /netboot\[rootfs\] .*FAILED: .*AGENT_ROOTFS_DIGEST_MISMATCH.*; exit 9:/, `the agent printed one line: digest mismatch, exit 9 (${line ?? 'no FAILED line'})${line === undefined ? why : ''}`)
        t.notOk(vm.seen.has(SERIAL.mounted.source), 'nothing was mounted')
        t.notOk(vm.seen.has(SERIAL.switchRoot.source), 'the tampered image never ran')
        t.ok(rootfsGets.length > 0, 'the tampered bytes were served (and refused by the agent)')
        t.equal(mine('attest.finish', 'ok').length, 1, 'audit: it attested (the refusal is the agent\'s, on the digest)')
      }

      // The boot timeline: netboot's log (DHCP, iPXE, boot script, kernel, initrd) and the serial console.
      // A UEFI node's "kernel" is the UKI, and it has no initrd of its own.
      const viaUki = m.firmware !== 'bios' && m.image === 'e2e-root'
      const tl = bootTimeline(parseLog(server.log()), {
        mac: m.mac, ip: m.ip, kernelSha256: viaUki ? ukiSha : assets.kernelSha256, initrdSha256: initrdSha, viaTftp: false,
      }, vm.started)
      t.same(tl.problems.filter((p) => !(viaUki && p === 'initrd: not in the log')), [], `netboot's log shows dhcp (iPXE) → boot script → ${viaUki ? 'UKI' : 'kernel → initrd'}`)
      const at = (re: RegExp, name: string): { name: string; time: number }[] => vm.seen.has(re.source) ? [{ name, time: vm.seen.get(re.source)! }] : []
      const points = [
        ...tl.steps.filter((s) => s.name !== 'tftp').map((s) => ({ name: s.name === 'ipxe' ? 'ipxe-dhcp' : s.name === 'kernel' && viaUki ? 'uki' : s.name, time: s.time })),
        ...at(SERIAL.linux, 'linux'), ...at(SERIAL.dracut, 'dracut'), ...at(SERIAL.initrdDhcp, 'dhcp-initrd'), ...agentStart(vm), ...at(SERIAL.pending, 'approved'), ...at(SERIAL.attested, 'attested'),
        ...at(SERIAL.secrets, 'secrets'), ...at(SERIAL.verified, 'verified'), ...at(SERIAL.mounted, 'mounted'), ...at(SERIAL.switchRoot, 'switch-root'),
        { name: 'exit', time: vm.ended },
      ].sort((a, b) => a.time - b.time)
      const line = `${m.run}: ${formatTimeline(points, vm.started)}`
      timelines.push(line)
      t.comment(`timeline from QEMU start (power-on): ${line}`)
    })
  }
  t.comment(`timelines (seconds from power-on):\n${timelines.join('\n')}`)
})
