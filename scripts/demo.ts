/**
 * The demo: one Debian 12 VM booted through netboot's whole attested path, on this
 * machine, in a network namespace of its own. Run by scripts/demo.sh (`sudo npm run
 * demo`), which installs what it needs first. Steps:
 *
 *   1. the Debian 12 root with cloud-init (scripts/debian-image.sh, mmdebstrap)
 *   2. a namespace with a bridge (10.98.0.1/24) and a tap; `netboot serve` in it with
 *      DHCP, TFTP, attestation (tofu enrollment, EK certificates checked against the
 *      demo's own swtpm CA)
 *   3. `netboot image build`: squashfs + the root's kernel + the netboot initrd (dracut)
 *      (+ a UKI for UEFI), registered; a secure cloud-init with a munge key and a plain
 *      one whose runcmd prints proof lines on the console
 *   4. QEMU (TCG) with swtpm boots the VM from the network: firmware → DHCP → iPXE →
 *      kernel + initrd → agent attests → secure cloud-init → rootfs verified, mounted
 *      under an overlay → switch root → systemd → cloud-init → power off
 *   5. the boot timeline and the audit trail; everything it started is stopped and
 *      the namespace removed (--keep: the VM stays up until Ctrl-C, the work
 *      directory stays).
 *
 * Usage: scripts/demo.sh [--firmware uefi|bios] [--keep]
 * Reuses the end-to-end test's parts: test/e2e/qemu.ts, timeline.ts, swtpm-vm.ts and
 * the namespace helpers.
 */
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { netns, type Netns } from '../test/helpers/netns.js'
import { startNsServer } from '../test/helpers/netboot-ns.js'
import { missingFor, runVm, serialTail, type Firmware } from '../test/e2e/qemu.js'
import { localCa, missingSwtpmTools, provisionTpm, startVmTpm } from '../test/e2e/swtpm-vm.js'
import { bootTimeline, formatTimeline, parseLog } from '../test/e2e/timeline.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const CLI = join(ROOT, 'dist', 'server', 'cli', 'main.js')
const SERVER = '10.98.0.1'
const NODE = { name: 'demo01', mac: '52:54:00:98:00:01', ip: '10.98.0.11' }
const MEMORY_MIB = 2048
// TCG on a busy 2-core machine: the full Debian boot (systemd, cloud-init in Python) can take half an hour
const BOOT_TIMEOUT_MS = 45 * 60_000
// net.ifnames=0: the NIC keeps the name the initramfs brought up (eth0). Without it
// udev's rename of the already-up interface fails after switch root, systemd-networkd
// leaves the link 'pending' and systemd-networkd-wait-online holds the boot for 2 minutes.
const PARAMS = 'console=ttyS0,115200 panic=1 ip=dhcp rd.neednet=1 net.ifnames=0'

// ---- arguments ----------------------------------------------------------------
const argv = process.argv.slice(2)
let firmware: 'uefi' | 'bios' = 'uefi'
let keep = false
let uki = false
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!
  if (a === '--keep') keep = true
  else if (a === '--uki') uki = true
  else if (a === '--firmware' || a.startsWith('--firmware=')) {
    const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]
    if (v !== 'uefi' && v !== 'bios') fail(`--firmware must be uefi or bios, not '${v ?? ''}'`)
    firmware = v
  } else if (a === '-h' || a === '--help') {
    process.stdout.write('usage: scripts/demo.sh [--firmware uefi|bios] [--uki] [--keep]\n')
    process.exit(0)
  } else fail(`unknown argument '${a}' (usage: scripts/demo.sh [--firmware uefi|bios] [--uki] [--keep])`)
}
const fw: Firmware = firmware === 'uefi' ? 'uefi-rom' : 'bios'
if (uki && firmware !== 'uefi') fail('--uki is for --firmware uefi (BIOS iPXE boots kernel + initrd)')

// ---- output -----------------------------------------------------------------------
const T0 = Date.now()
const clock = (): string => `${((Date.now() - T0) / 1000).toFixed(0).padStart(4)}s`
function step (s: string): void { process.stdout.write(`\n[${clock()}] == ${s}\n`) }
function say (s: string): void { process.stdout.write(`[${clock()}]    ${s}\n`) }
function fail (s: string): never { process.stderr.write(`demo: ${s}\n`); process.exit(1) }

// ---- cleanup: everything started here is stopped here, in reverse order ------------------------
const cleanups: (() => unknown)[] = []
/** The test helpers want a tap Test only for its teardown: the demo's cleanup list is one. */
const scope = { teardown: (f: () => unknown) => { cleanups.push(f) } } as unknown as Test
let cleaning: Promise<void> | undefined
async function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    for (const f of cleanups.reverse()) {
      try { await f() } catch (e) { process.stderr.write(`demo: cleanup: ${(e as Error).message}\n`) }
    }
  })()
  await cleaning
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => { process.stderr.write(`\ndemo: ${sig}: stopping\n`); void cleanup().then(() => process.exit(130)) })
}

/** Runs a command, its stderr (progress) passed through indented; resolves with stdout. */
async function run (cmd: string, args: readonly string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; quiet?: boolean } = {}): Promise<string> {
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString()
      if (o.quiet !== true) for (const l of d.toString().split('\n')) if (l.trim() !== '') say(`  ${l.replace(/\r/g, '')}`)
    })
    const timer = setTimeout(() => p.kill('SIGTERM'), o.timeoutMs ?? 3_600_000)
    p.once('error', reject)
    p.once('close', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${String(code)})\n${err.slice(-3000)}`))
    })
  })
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

// ---- checks -------------------------------------------------------------------------
if (process.getuid?.() !== 0) fail('run as root: it creates a network namespace, a bridge and a tap, and runs QEMU (sudo npm run demo)')
const lacking = [...missingFor(fw), ...missingSwtpmTools()]
for (const [tool, pkg] of [['mksquashfs', 'squashfs-tools'], ['dracut', 'dracut'], ['mmdebstrap', 'mmdebstrap']] as const) {
  if (!existsSync(`/usr/bin/${tool}`) && !existsSync(`/usr/sbin/${tool}`)) lacking.push(`${tool} (Debian package ${pkg})`)
}
if (!existsSync(CLI)) lacking.push(`${CLI} (npm run build)`)
if (lacking.length > 0) fail(`missing: ${lacking.join(', ')} — scripts/demo.sh installs them (scripts/setup.sh and mmdebstrap)`)

const work = mkdtempSync('/tmp/netboot-demo-')
const cache = join(ROOT, '.cache', 'demo')
mkdirSync(cache, { recursive: true })
cleanups.push(() => { if (!keep) rmSync(work, { recursive: true, force: true }) })

try {
  await main()
} catch (e) {
  process.stderr.write(`\ndemo: FAILED: ${(e as Error).message}\n`)
  process.exitCode = 1
} finally {
  await cleanup()
  if (keep) say(`work directory kept: ${work}`)
}

async function main (): Promise<void> {
  // ---- 1. the Debian root ------------------------------------------------------------
  step('1/5 Debian 12 root with cloud-init (scripts/debian-image.sh, mmdebstrap)')
  let t = Date.now()
  const rootDir = (await run('bash', [join(ROOT, 'scripts', 'debian-image.sh')])).trim().split('\n').pop()!
  say(`root: ${rootDir} (${((Date.now() - t) / 1000).toFixed(0)} s)`)

  // ---- 2. the netboot image -----------------------------------------------------------
  // Cached in two parts, each under a key of everything that goes into it: the root
  // image and kernel (the root's stamp, the image builder: mksquashfs is the slow part),
  // and the initrd (+ UKI) (that key, the dracut module, the agent, the TPM addon, the
  // initrd builder), so a change to the agent rebuilds only the initrd.
  const hash = (parts: readonly (string | Buffer)[]): string => { const h = createHash('sha256'); for (const p of parts) h.update(p); return h.digest('hex').slice(0, 16) }
  const input = (f: string): Buffer => {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing (scripts/setup.sh builds it)`)
    return Buffer.concat([Buffer.from(f), readFileSync(join(ROOT, f))])
  }
  const rootKey = hash([readFileSync(join(rootDir, '..', 'stamp')), input('dist/server/images/build.js')])
  const moduleDir = join(ROOT, 'dracut', '90netboot')
  const initrdKey = hash([rootKey, ...readdirSync(moduleDir).sort().flatMap((f) => [f, readFileSync(join(moduleDir, f))]),
    input('dist/agent/netboot-agent.mjs'), input('agent/tpm/build/Release/netboot_tpm.node'), input('dist/server/initrd/build.js'), uki ? 'uki' : 'no-uki'])
  const rootfsDir = join(cache, `rootfs-${rootKey}`)
  const initrdDir = join(cache, `initrd-${initrdKey}`)
  const kver = readdirSync(join(rootDir, 'boot')).find((f) => f.startsWith('vmlinuz-'))?.slice('vmlinuz-'.length)
  if (kver === undefined) throw new Error(`no kernel in ${rootDir}/boot`)

  // ---- 3. network, TPM, server -------------------------------------------------------
  step('2/5 network namespace, software TPM, netboot serve')
  const ns: Netns = await netns(scope, 'demo')
  await ns.exec('ip', ['link', 'add', 'br0', 'type', 'bridge'])
  await ns.exec('ip', ['addr', 'add', `${SERVER}/24`, 'dev', 'br0'])
  await ns.exec('ip', ['link', 'set', 'br0', 'up'])
  await ns.exec('ip', ['tuntap', 'add', 'dev', 'tap0', 'mode', 'tap'])
  await ns.exec('ip', ['link', 'set', 'tap0', 'master', 'br0'])
  await ns.exec('ip', ['link', 'set', 'tap0', 'up'])
  say(`namespace ${ns.name}: br0 ${SERVER}/24, tap0 for the VM`)
  const ca = localCa(join(work, 'ca'), 'netboot-demo')
  provisionTpm(ca, join(work, 'tpm'))
  say(`swtpm provisioned with an EK certificate from the demo's CA (${ca.dir})`)

  mkdirSync(join(work, 'data'), { recursive: true })
  const cfg = join(work, 'netboot.yaml')
  const server = await startNsServer(scope, ns, work, `
data_dir: ${work}/data
log: { level: info }
server: { address: ${SERVER}, interfaces: [br0] }
http: { listen: 0.0.0.0, port: 8080 }
admin: { listen: 127.0.0.1, port: 8081 }
tftp: { enabled: true, port: 69, ipxe_dir: /usr/lib/ipxe }
unknown_nodes: { action: reboot, lease_time: 120 }
attestation: { enabled: true, enrollment: tofu, require_ek_cert: true, ek_ca: ${ca.dir}, pcr_policy: learn }
dhcp:
  lease_time: 600
  subnets:
    - name: demo
      network: 10.98.0.0/24
      interface: br0
      pool: [10.98.0.200-10.98.0.220]
      router: ${SERVER}
      dns: [${SERVER}]
`)
  await server.waitFor(/"msg":"dhcp: serving"/)
  say(`netboot serve is up in the namespace (log: ${join(work, 'netboot.log')})`)
  cleanups.push(() => { writeFileSync(join(work, 'netboot.log'), server.log()) })
  const token = (JSON.parse(await run(process.execPath, [CLI, '-c', cfg, '--json', 'token', 'create', '--local', 'demo'], { env: { NETBOOT_TOKEN: '' }, quiet: true })) as { value: string }).value
  const nb = async (args: readonly string[], quiet = true): Promise<string> =>
    await run('ip', ['netns', 'exec', ns.name, process.execPath, CLI, '-c', cfg, ...args], { env: { NETBOOT_TOKEN: token }, quiet })

  step(`3/5 netboot image build: squashfs + kernel + netboot initrd${uki ? ' + UKI' : ''} (mksquashfs, dracut), registered`)
  const haveRootfs = ['rootfs.squashfs', 'vmlinuz'].every((f) => existsSync(join(rootfsDir, f)))
  const haveInitrd = ['initrd.img', ...(uki ? ['uki.efi'] : [])].every((f) => existsSync(join(initrdDir, f)))
  const prune = (prefix: string, keepDir: string): void => {
    for (const old of readdirSync(cache).filter((f) => f.startsWith(prefix) && join(cache, f) !== keepDir)) rmSync(join(cache, old), { recursive: true, force: true })
  }
  t = Date.now()
  if (!haveRootfs) {
    // the whole of `netboot image build`: squashfs, kernel, initrd (+ UKI), registered
    prune('rootfs-', rootfsDir)
    prune('initrd-', initrdDir)
    const out = `${cache}/build.tmp`
    rmSync(out, { recursive: true, force: true })
    await nb(['image', 'build', 'debian-12', '--root', rootDir, ...(uki ? ['--uki'] : []), '--output', out], false)
    mkdirSync(rootfsDir, { recursive: true })
    mkdirSync(initrdDir, { recursive: true })
    for (const f of ['rootfs.squashfs', 'vmlinuz']) renameSync(join(out, f), join(rootfsDir, f))
    for (const f of ['initrd.img', ...(uki ? ['uki.efi'] : [])]) renameSync(join(out, f), join(initrdDir, f))
    rmSync(out, { recursive: true, force: true })
    say(`built and registered in ${((Date.now() - t) / 1000).toFixed(0)} s`)
  } else {
    say(`root image and kernel built earlier from the same inputs: ${rootfsDir}`)
    if (!haveInitrd) {
      // the root image is unchanged: only the initrd (the agent, the module) is rebuilt
      prune('initrd-', initrdDir)
      mkdirSync(`${initrdDir}.tmp`, { recursive: true })
      await nb(['initrd', 'build', '--kver', kver, '--kmoddir', join(rootDir, 'usr', 'lib', 'modules', kver), '--kernel', join(rootfsDir, 'vmlinuz'),
        '--output', join(`${initrdDir}.tmp`, 'initrd.img'), ...(uki ? ['--uki', join(`${initrdDir}.tmp`, 'uki.efi')] : [])], false)
      rmSync(initrdDir, { recursive: true, force: true })
      renameSync(`${initrdDir}.tmp`, initrdDir)
      say(`netboot initrd built in ${((Date.now() - t) / 1000).toFixed(0)} s`)
    } else {
      say(`netboot initrd built earlier from the same inputs: ${initrdDir}`)
    }
    await nb(['image', 'add', 'debian-12', '--kernel', join(rootfsDir, 'vmlinuz'), '--initrd', join(initrdDir, 'initrd.img'), '--rootfs', join(rootfsDir, 'rootfs.squashfs'),
      ...(uki ? ['--uki', join(initrdDir, 'uki.efi')] : [])])
  }
  const kernelSha = sha256(readFileSync(join(rootfsDir, 'vmlinuz')))
  const initrdSha = sha256(readFileSync(join(initrdDir, 'initrd.img')))
  say(`rootfs ${(statSync(join(rootfsDir, 'rootfs.squashfs')).size / 1048576).toFixed(0)} MiB, initrd ${(statSync(join(initrdDir, 'initrd.img')).size / 1048576).toFixed(0)} MiB`)
  for (const l of (await nb(['image', 'show', 'debian-12'])).trim().split('\n')) say(l)

  await nb(['group', 'add', 'demo'])
  await nb(['node', 'add', NODE.name, '--mac', NODE.mac, '--ip', NODE.ip, '--group', 'demo'])
  await nb(['boot', 'set', 'default', '--image', 'debian-12', '--params', PARAMS])
  // secure: the munge key, only for the attested node; plain: proof lines on the console
  const mungeKey = randomBytes(1024)
  writeFileSync(join(work, 'secure.yaml'), [
    `name: ${NODE.name}`, 'cloud-init:', '  userdata:', '    write_files:',
    '      - path: /etc/munge/munge.key', '        encoding: b64', `        content: ${mungeKey.toString('base64')}`, '        permissions: "0400"', '',
  ].join('\n'))
  writeFileSync(join(work, 'plain.yaml'), [
    'name: demo', 'cloud-init:', '  userdata:', '    runcmd:',
    `      - [sh, -c, 'echo "NETBOOT-DEMO munge.key sha256 $(sha256sum /etc/munge/munge.key | cut -d" " -f1)" > /dev/console']`,
    `      - [sh, -c, 'echo "NETBOOT-DEMO root $(findmnt -n -o SOURCE,FSTYPE /)" > /dev/console']`,
    ...(keep ? [] : ['    power_state: {mode: poweroff, delay: now, message: "NETBOOT-DEMO powering off"}']),
    '  metadata:', '    cluster: demo', '',
  ].join('\n'))
  await nb(['cloud-init', 'set', '-f', join(work, 'plain.yaml')])
  await nb(['cloud-init', 'set', '--secure', '-f', join(work, 'secure.yaml')])
  say(`node ${NODE.name} ${NODE.mac} ${NODE.ip}; secure cloud-init: /etc/munge/munge.key (sha256 ${sha256(mungeKey).slice(0, 16)}…)`)

  // ---- 4. the boot ----------------------------------------------------------------------
  step(`4/5 boot ${NODE.name} (${firmware === 'uefi' ? 'UEFI: OVMF + iPXE ROM, tpm-crb' : 'BIOS: SeaBIOS + iPXE ROM, tpm-tis'}; QEMU TCG, a few minutes)`)
  const vtpm = await startVmTpm(join(work, 'tpm'), join(work, 'swtpm.sock'), join(work, 'swtpm.log'))
  cleanups.push(() => vtpm.stop())
  const marks: [string, RegExp][] = [
    ['linux', /Linux version \d/],
    ['agent', /netboot\[network\] \+/],
    ['attested', /netboot\[attest\] \+[\d.]+s: attested as /],
    ['secrets', /netboot\[secrets\] \+[\d.]+s: secure cloud-init decrypted/],
    ['verified', /netboot\[rootfs\] \+[\d.]+s: .*sha256 verified/],
    ['mounted', /netboot\[mount\] \+[\d.]+s: squashfs read-only/],
    ['switch-root', /Welcome to .*Debian/],
    ['cloud-init', /Cloud-init v\. \S+ finished/],
  ]
  // shown as progress only (the timeline takes these steps from netboot's log)
  const early: [string, RegExp][] = [['ipxe', /Configuring \(net0 /], ['boot script', /netboot: node \S+ boots image /], ['kernel start', /netboot: starting the kernel/]]
  const failure = /netboot\[\w+\] \+[\d.]+s: FAILED: .*/
  // Progress: the serial log as QEMU writes it, each mark shown once as it appears.
  const serialFile = join(work, `${NODE.name}-serial.log`)
  const shown = new Set<string>()
  const watcher = setInterval(() => {
    let text = ''
    try { text = readFileSync(serialFile, 'latin1').replace(/\r/g, '') } catch { return }
    for (const [name, re] of [...early, ...marks]) {
      if (shown.has(name)) continue
      const m = text.split('\n').find((l) => re.test(l))
      if (m !== undefined) { shown.add(name); say(`${name.padEnd(12)} ${m.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trim().slice(0, 110)}`) }
    }
    const f = failure.exec(text)
    if (f !== null && !shown.has('failure')) { shown.add('failure'); say(`FAILURE      ${f[0]}`) }
    for (const l of text.split('\n').filter((x) => x.includes('NETBOOT-DEMO'))) if (!shown.has(l)) { shown.add(l); say(`console      ${l.trim()}`) }
  }, 500)
  cleanups.push(() => clearInterval(watcher))
  const vm = await runVm({ firmware: fw, ns, tap: 'tap0', mac: NODE.mac, dir: work, timeoutMs: keep ? 24 * 3_600_000 : BOOT_TIMEOUT_MS, name: NODE.name, memoryMiB: MEMORY_MIB, tpmSocket: vtpm.socket },
    marks.map(([, re]) => re))
  clearInterval(watcher)
  await vtpm.stop()
  await new Promise((r) => setTimeout(r, 500)) // pino's last lines

  // ---- 5. results --------------------------------------------------------------------
  step('5/5 results')
  const serial = vm.serial.replace(/\r/g, '')
  const gotKey = /NETBOOT-DEMO munge\.key sha256 ([0-9a-f]{64})/.exec(serial)?.[1]
  const gotRoot = /NETBOOT-DEMO root (.*)/.exec(serial)?.[1]?.trim()
  const ok = gotKey === sha256(mungeKey) && gotRoot !== undefined && /overlay/.test(gotRoot)
  say(`munge.key on the VM: ${gotKey ?? 'not printed'} (${gotKey === sha256(mungeKey) ? 'the secret sent, intact' : 'NOT the secret sent'})`)
  say(`root on the VM:      ${gotRoot ?? 'not printed'}`)
  if (vm.timedOut) say(`the VM did not finish within ${BOOT_TIMEOUT_MS / 60000} minutes`)

  // With a UKI, UEFI iPXE fetches one file (kernel + initrd in one PE): its GET is the 'kernel' step, and there is no initrd step.
  const ukiSha = uki ? sha256(readFileSync(join(initrdDir, 'uki.efi'))) : undefined
  const tl = bootTimeline(parseLog(server.log()), { mac: NODE.mac, ip: NODE.ip, kernelSha256: ukiSha ?? kernelSha, initrdSha256: initrdSha, viaTftp: false }, vm.started)
  const problems = tl.problems.filter((p) => ukiSha === undefined || !p.startsWith('initrd:'))
  const points = [
    { name: 'power-on', time: vm.started },
    ...tl.steps.filter((s) => s.name !== 'tftp').map((s) => ({ name: s.name === 'ipxe' ? 'ipxe-dhcp' : s.name === 'kernel' && ukiSha !== undefined ? 'uki' : s.name, time: s.time })),
    ...marks.flatMap(([name, re]) => vm.seen.has(re.source) ? [{ name, time: vm.seen.get(re.source)! }] : []),
    { name: 'power-off', time: vm.ended },
  ].sort((a, b) => a.time - b.time)
  process.stdout.write('\nboot timeline (seconds from power-on; netboot\'s log and the serial console):\n')
  let prev = vm.started
  for (const p of points) {
    process.stdout.write(`  ${((p.time - vm.started) / 1000).toFixed(1).padStart(7)}  +${((p.time - prev) / 1000).toFixed(1).padStart(6)}  ${p.name}\n`)
    prev = p.time
  }
  if (problems.length > 0) process.stdout.write(`  (from netboot's log: ${problems.join('; ')})\n`)
  writeFileSync(join(cache, 'last-timeline.txt'), `${new Date().toISOString()} ${firmware}: ${formatTimeline(points, vm.started)}\n`)

  process.stdout.write('\naudit trail (netboot audit list):\n')
  process.stdout.write(await nb(['audit', 'list', '--limit', '200']))
  process.stdout.write(await nb(['audit', 'verify']))
  if (!ok) {
    throw new Error(`the VM did not prove the attested boot; serial console ${vm.serialFile} (last lines below)\n${serialTail(vm.serial, 40)}`)
  }
  process.stdout.write(`\ndemo: done in ${((Date.now() - T0) / 1000).toFixed(0)} s — ${NODE.name} booted Debian 12 through netboot, attested, with its secret\n`)
}
