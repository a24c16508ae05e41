/**
 * Boot benchmark (issue #7, "Performance"): one VM's boot timeline, phase by phase,
 * from netboot and from a baseline booted in the same run.
 *
 *   netboot-attested  the product: `netboot serve` with attestation (tofu enrollment,
 *                  PCR policy off), the netboot initrd (`netboot initrd build`: dracut +
 *                  the agent) and a swtpm TPM: the agent attests, gets its token,
 *                  downloads and verifies the root image by digest, mounts it under an
 *                  overlay and switches root (test/e2e/attested-boot.test.ts's path).
 *   netboot        `netboot serve` (DHCP, router advertisements on, HTTP boot script
 *                  and /images) boots Debian's kernel, the baseline's dracut initrd and
 *                  the root image by its digest. No attestation (see docs/bench-boot.md).
 *   netboot-no-ra  the same with ra.enabled false: what the RA saves.
 *   baseline       dnsmasq (DHCP + TFTP) + nginx (HTTP, a static boot.ipxe) with
 *                  dracut's own `root=live:http://…/rootfs.squashfs` (livenet +
 *                  dmsquash-live), the way sites boot a live image today.
 *   baseline-ra    the baseline plus netboot's router advertisements alone (netboot
 *                  serve with DHCP, TFTP off): what is left is iPXE's proxyDHCP wait,
 *                  which netboot's OFFER avoids with no-pxedhcp (175.176).
 *
 * The same machine every time: QEMU TCG, SeaBIOS + the e1000's iPXE ROM (test/e2e/qemu.ts),
 * the same MAC and reserved address, the same kernel, initrd and root image
 * (bench/boot/assets.sh), in a namespace of its own with a bridge and a tap. Times
 * come from the serial console, each marker stamped when its bytes arrive:
 *
 *   ipxe        iPXE's ROM starts ("iPXE initialising devices")
 *   configure   iPXE starts configuring net0 (DHCP, and IPv6 router discovery)
 *   configured  "Configuring (net0 …) ok": DHCP done and, without an RA, the ~16 s IPv6 wait
 *   script      the boot script runs (its echo)
 *   downloaded  iPXE printed "…initrd.img... ok" (the last download)
 *   linux       the kernel starts ("Linux version"): kernel and initrd downloaded
 *   rootfs      the root image's /sbin/init runs (BENCH-ROOTFS-UP): initrd DHCP,
 *               the squashfs downloaded, mounted under an overlay, switch_root
 *   off         QEMU exits (the root image powers off at once)
 *
 *   npx tsx bench/boot/run.ts [--rounds N] [--only netboot-attested,baseline,…] [--out FILE] [--keep DIR]
 *
 * Needs root, qemu-system-x86, ipxe-qemu, seabios, dnsmasq, nginx, dracut-core,
 * dracut-network, dracut-live, squashfs-tools, zstd, and a built netboot (npm run build).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { e2eAssets } from '../../test/e2e/assets.js'
import { missingFor, QEMU, qemuArgs } from '../../test/e2e/qemu.js'
import { localCa, missingSwtpmTools, provisionTpm, startVmTpm } from '../../test/e2e/swtpm-vm.js'
import { nginxConf } from '../chainload/lib/anchors.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = join(ROOT, 'dist', 'server', 'cli', 'main.js')
const SERVER = '10.98.0.1'
const HTTP_PORT = 8080
const MAC = '52:54:00:98:00:01'
const IP = '10.98.0.11'
const BOOT_TIMEOUT_MS = 240_000

export type Variant = 'netboot-attested' | 'netboot' | 'netboot-no-ra' | 'baseline' | 'baseline-ra'
const VARIANTS: readonly Variant[] = ['netboot-attested', 'netboot', 'netboot-no-ra', 'baseline', 'baseline-ra']
/** Enough for the attested initrd (node and the agent); every variant gets the same machine. */
const MEMORY_MIB = 1536

export const MARKERS: readonly { name: string; re: RegExp }[] = [
  { name: 'ipxe', re: /iPXE initialising devices/ },
  { name: 'configure', re: /Configuring \(net0/ },
  { name: 'configured', re: /Configuring \(net0[^\n]*?\bok\b/ },
  { name: 'script', re: /netboot: node \S+ boots image|BENCH-BASELINE-SCRIPT/ },
  { name: 'downloaded', re: /initrd\.img\.\.\. ok/ },
  { name: 'linux', re: /Linux version \d/ },
  { name: 'attested', re: /netboot\[attest\] \+[\d.]+s: attested as / },
  { name: 'rootfs', re: /BENCH-ROOTFS-UP/ },
]

// --- processes and cleanup -------------------------------------------------------

const children = new Set<ChildProcess>()
const finals: (() => void)[] = []
function cleanup (): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) { try { process.kill(c.pid, 'SIGKILL') } catch { /* gone */ } }
  for (const f of finals.splice(0).reverse()) { try { f() } catch { /* best effort */ } }
}
process.once('exit', cleanup)
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { cleanup(); process.exit(130) })

function sh (cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] })
}

function track (cmd: string, args: readonly string[], log: (s: string) => void): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(c)
  c.once('exit', () => children.delete(c))
  c.stdout!.on('data', (d: Buffer) => log(d.toString()))
  c.stderr!.on('data', (d: Buffer) => log(d.toString()))
  return c
}

async function stop (c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  const done = new Promise<void>((resolve) => c.once('exit', () => resolve()))
  c.kill('SIGTERM')
  const t = setTimeout(() => c.kill('SIGKILL'), 10_000)
  await done
  clearTimeout(t)
}

async function waitFor (what: string, fn: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

// --- the servers -------------------------------------------------------------------

interface Assets { kernel: string; initrd: string; rootfs: string; netbootInitrd?: string; ekCa?: string; sha: { kernel: string; initrd: string; rootfs: string } }

/**
 * The netboot initrd (`netboot initrd build`) for the e2e kernel, rebuilt when the
 * agent bundle, the TPM addon, the dracut module or the builder changed.
 */
export function netbootInitrdStamp (kver: string): string {
  const h = createHash('sha256').update(kver)
  const moduleDir = join(ROOT, 'dracut', '90netboot')
  for (const f of readdirSync(moduleDir).sort()) h.update(f).update(readFileSync(join(moduleDir, f)))
  for (const f of [join(ROOT, 'dist', 'agent', 'netboot-agent.mjs'), join(ROOT, 'agent', 'tpm', 'build', 'Release', 'netboot_tpm.node'), join(ROOT, 'server', 'initrd', 'build.ts')]) {
    if (!existsSync(f)) throw new Error(`${f} is missing (npm run build:agent)`)
    h.update(readFileSync(f))
  }
  return h.digest('hex')
}

function netbootInitrd (cache: string, kver: string, kmoddir: string): string {
  const stamp = netbootInitrdStamp(kver)
  const out = join(cache, 'netboot-initrd.img')
  if (existsSync(out) && existsSync(`${out}.stamp`) && readFileSync(`${out}.stamp`, 'utf8') === stamp) return out
  console.log('building the netboot initrd (netboot initrd build)…')
  execFileSync(process.execPath, [CLI, 'initrd', 'build', '--kver', kver, '--kmoddir', kmoddir, '--output', out], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 1_800_000 })
  writeFileSync(`${out}.stamp`, stamp)
  return out
}

const sha256 = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex')

function cmdline (rootUrl: string): string {
  // What both sides give the kernel: dracut's network live boot of the same image.
  return `console=ttyS0,115200 panic=1 rd.neednet=1 ip=dhcp rd.live.overlay.overlayfs=1 root=live:${rootUrl}`
}

interface Server { stop (): Promise<void>; log (): string }

async function startNetboot (ns: string, dir: string, a: Assets, ra: boolean, attested: boolean): Promise<Server> {
  mkdirSync(join(dir, 'data'), { recursive: true })
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, `
data_dir: ${dir}/data
log: { level: info }
server: { address: ${SERVER}, interfaces: [br0] }
http: { listen: 0.0.0.0, port: ${HTTP_PORT} }
admin: { listen: 127.0.0.1, port: 8081 }
tftp: { enabled: true, port: 69, ipxe_dir: /usr/lib/ipxe }
unknown_nodes: { action: reboot, lease_time: 120 }
attestation: { enabled: ${attested}, enrollment: tofu, pcr_policy: off${a.ekCa !== undefined ? `, ek_ca: ${a.ekCa}` : ''} }
ra: { enabled: ${ra} }
dhcp:
  lease_time: 600
  subnets:
    - { name: bench, network: 10.98.0.0/24, interface: br0, pool: [10.98.0.200-10.98.0.220], router: ${SERVER} }
`)
  let log = ''
  const proc = track('ip', ['netns', 'exec', ns, process.execPath, CLI, '-c', cfg, 'serve'], (s) => { log += s })
  await waitFor('netboot serving', () => /"msg":"dhcp: serving"/.test(log) || proc.exitCode !== null, 60_000)
  if (proc.exitCode !== null) throw new Error(`netboot exited:\n${log}`)
  const token = (JSON.parse(sh(process.execPath, [CLI, '-c', cfg, '--json', 'token', 'create', '--local', 'bench'])) as { value: string }).value
  const cli = (args: string[]): string => execFileSync('ip', ['netns', 'exec', ns, process.execPath, CLI, '-c', cfg, ...args], { encoding: 'utf8', env: { ...process.env, NETBOOT_TOKEN: token }, timeout: 120_000 })
  cli(['node', 'add', 'bench', '--mac', MAC, '--ip', IP])
  if (attested) {
    // The netboot initrd's agent finds the root image from the attestation's answer (root=netboot).
    cli(['image', 'add', 'bench', '--kernel', a.kernel, '--initrd', a.netbootInitrd!, '--rootfs', a.rootfs])
    cli(['boot', 'set', 'default', '--image', 'bench', '--params', 'console=ttyS0,115200 panic=1 ip=dhcp rd.neednet=1'])
  } else {
    cli(['image', 'add', 'bench', '--kernel', a.kernel, '--initrd', a.initrd, '--rootfs', a.rootfs])
    cli(['boot', 'set', 'default', '--image', 'bench', '--params', cmdline(`http://${SERVER}:${HTTP_PORT}/images/${a.sha.rootfs}/rootfs.squashfs`)])
  }
  return { log: () => log, stop: async () => { await stop(proc) } }
}

/** netboot with nothing but router advertisements on br0 (for baseline-ra). */
async function startRaOnly (ns: string, dir: string): Promise<Server> {
  mkdirSync(join(dir, 'ra-data'), { recursive: true })
  const cfg = join(dir, 'netboot-ra.yaml')
  writeFileSync(cfg, `
data_dir: ${dir}/ra-data
log: { level: info }
server: { interfaces: [br0] }
http: { listen: 127.0.0.1, port: 18080 }
admin: { listen: 127.0.0.1, port: 18081 }
tftp: { enabled: false }
dhcp: { enabled: false }
attestation: { enabled: false }
ra: { enabled: true }
`)
  let log = ''
  const proc = track('ip', ['netns', 'exec', ns, process.execPath, CLI, '-c', cfg, 'serve'], (s) => { log += s })
  await waitFor('netboot (RA only) serving', () => /"msg":"ra: advertising/.test(log) || proc.exitCode !== null, 60_000)
  if (proc.exitCode !== null) throw new Error(`netboot (RA only) exited:\n${log}`)
  return { log: () => log, stop: async () => { await stop(proc) } }
}

async function startBaseline (ns: string, dir: string, a: Assets): Promise<Server> {
  const www = join(dir, 'www')
  mkdirSync(www, { recursive: true })
  for (const [src, name] of [[a.kernel, 'vmlinuz'], [a.initrd, 'initrd.img'], [a.rootfs, 'rootfs.squashfs']] as const) execFileSync('ln', ['-f', src, join(www, name)])
  const base = `http://${SERVER}:${HTTP_PORT}`
  writeFileSync(join(www, 'boot.ipxe'), `#!ipxe
echo BENCH-BASELINE-SCRIPT
kernel ${base}/vmlinuz initrd=initrd.img ${cmdline(`${base}/rootfs.squashfs`)}
initrd ${base}/initrd.img
boot
`)
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, 'bench/boot/run.ts', 64,
    "  log_format t '$msec $remote_addr \"$request\" $status $body_bytes_sent';\n",
    `  server { listen ${SERVER}:${HTTP_PORT}; root ${www}; access_log ${dir}/nginx-access.log t; }\n`))
  // dnsmasq as sites set it up for iPXE: a reservation for the MAC, the chainload
  // (iPXE's user class → the HTTP script; other PXE clients → undionly.kpxe over TFTP).
  writeFileSync(join(dir, 'dnsmasq.conf'), `port=0
interface=br0
bind-interfaces
dhcp-range=10.98.0.200,10.98.0.220,255.255.255.0,10m
dhcp-host=${MAC},${IP}
dhcp-option=option:router,${SERVER}
dhcp-leasefile=${dir}/dnsmasq.leases
dhcp-userclass=set:ipxe,iPXE
dhcp-boot=tag:ipxe,${base}/boot.ipxe
dhcp-boot=tag:!ipxe,undionly.kpxe,,${SERVER}
enable-tftp
tftp-root=/usr/lib/ipxe
log-dhcp
`)
  let log = ''
  const nginx = track('ip', ['netns', 'exec', ns, '/usr/sbin/nginx', '-c', join(dir, 'nginx.conf'), '-p', dir, '-e', join(dir, 'nginx-error.log')], (s) => { log += s })
  const dnsmasq = track('ip', ['netns', 'exec', ns, '/usr/sbin/dnsmasq', '-k', '-C', join(dir, 'dnsmasq.conf'), '--log-facility=-', '--pid-file=' + join(dir, 'dnsmasq.pid')], (s) => { log += s })
  await waitFor('nginx and dnsmasq', () => {
    try { execFileSync('ip', ['netns', 'exec', ns, 'curl', '-sf', '-o', '/dev/null', `${base}/boot.ipxe`], { timeout: 5_000 }); return /DHCP, IP range|started, version/.test(log) } catch { return false }
  }, 30_000)
  return { log: () => log, stop: async () => { await stop(dnsmasq); await stop(nginx) } }
}

// --- the machine -------------------------------------------------------------------

export interface BootResult {
  readonly variant: Variant
  readonly round: number
  /** Seconds from QEMU's start to each marker, and to its exit. */
  readonly at: Record<string, number>
  readonly ok: boolean
  readonly rootMount?: string
  readonly load1: number
}

async function boot (ns: string, dir: string, variant: Variant, round: number, tpmSocket?: string): Promise<BootResult> {
  const tap = `tapb${round}${VARIANTS.indexOf(variant)}`
  sh('ip', ['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap'])
  sh('ip', ['-n', ns, 'link', 'set', tap, 'master', 'br0'])
  sh('ip', ['-n', ns, 'link', 'set', tap, 'up'])
  const argv = qemuArgs({ firmware: 'bios', tap, mac: MAC, name: `bench-${variant}`, memoryMiB: MEMORY_MIB, ...(tpmSocket !== undefined ? { tpmSocket } : {}) })
  const serialFile = join(dir, `${variant}-${round}-serial.log`)
  const file = createWriteStream(serialFile)
  const seen = new Map<string, number>()
  let serial = ''
  const load1 = loadavg()[0]!
  const started = Date.now()
  const proc = spawn('ip', ['netns', 'exec', ns, 'timeout', '-k', '5', String(BOOT_TIMEOUT_MS / 1000 + 15), QEMU, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(proc)
  const onData = (d: Buffer): void => {
    const now = Date.now()
    file.write(d)
    // eslint-disable-next-line no-control-regex
    const from = Math.max(0, serial.length - 4096)
    serial += d.toString('latin1').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')
    const window = serial.slice(from)
    for (const m of MARKERS) if (!seen.has(m.name) && m.re.test(window)) seen.set(m.name, now)
  }
  proc.stdout!.on('data', onData)
  proc.stderr!.on('data', onData)
  const timer = setTimeout(() => proc.kill('SIGTERM'), BOOT_TIMEOUT_MS)
  await new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  clearTimeout(timer)
  children.delete(proc)
  const ended = Date.now()
  await new Promise<void>((resolve) => file.end(() => resolve()))
  sh('ip', ['-n', ns, 'link', 'del', tap])
  const at: Record<string, number> = {}
  for (const m of MARKERS) { const t = seen.get(m.name); if (t !== undefined) at[m.name] = (t - started) / 1000 }
  at.off = (ended - started) / 1000
  const rootMount = /BENCH-ROOTFS-UP ([^\n]*)/.exec(serial)?.[1]?.trim()
  return { variant, round, at, ok: seen.has('rootfs'), ...(rootMount !== undefined ? { rootMount } : {}), load1 }
}

// --- main ----------------------------------------------------------------------------

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

export function phases (r: BootResult): Record<string, number | undefined> {
  const d = (a: string, b: string): number | undefined => (r.at[a] !== undefined && r.at[b] !== undefined ? Math.round((r.at[b]! - r.at[a]!) * 10) / 10 : undefined)
  return {
    'firmware → iPXE': r.at.ipxe,
    'iPXE → configure': d('ipxe', 'configure'),
    'configure (DHCP, IPv6 wait)': d('configure', 'configured'),
    'configured → script': d('configured', 'script'),
    'script → kernel running (downloads)': d('script', 'linux'),
    'script → initrd downloaded': d('script', 'downloaded'),
    'initrd downloaded → kernel running': d('downloaded', 'linux'),
    'kernel → attested': d('linux', 'attested'),
    'kernel → root image (initrd: DHCP, [attestation,] squashfs, overlay)': d('linux', 'rootfs'),
    'power-on → root image': r.at.rootfs,
  }
}

async function main (): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the boot benchmark needs root (namespaces, taps, QEMU)')
  const rounds = Number(arg('rounds') ?? 1)
  const only = (arg('only')?.split(',') ?? VARIANTS) as Variant[]
  const missing = [...missingFor('bios'), ...(only.includes('netboot-attested') ? missingSwtpmTools() : []), ...[['/usr/sbin/dnsmasq', 'dnsmasq'], ['/usr/sbin/nginx', 'nginx'], [CLI, 'npm run build']].filter(([f]) => !existsSync(f!)).map(([f, p]) => `${f} (${p})`)]
  if (missing.length > 0) throw new Error(`missing: ${missing.join(', ')}`)
  const e2e = await e2eAssets()
  const cache = execFileSync('bash', [join(ROOT, 'bench', 'boot', 'assets.sh'), join(ROOT, '.cache', 'bench-boot')], { encoding: 'utf8', timeout: 900_000, stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!
  const a: Assets = { kernel: e2e.kernel, initrd: join(cache, 'baseline-initrd.img'), rootfs: join(cache, 'rootfs.squashfs'), sha: { kernel: e2e.kernelSha256, initrd: '', rootfs: '' } }
  a.sha.initrd = sha256(a.initrd)
  a.sha.rootfs = sha256(a.rootfs)
  let tpmState: string | undefined

  const ns = `nbb-boot-${randomBytes(3).toString('hex')}`
  sh('ip', ['netns', 'add', ns])
  finals.push(() => { execFileSync('ip', ['netns', 'del', ns]) })
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  sh('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge'])
  sh('ip', ['-n', ns, 'addr', 'add', `${SERVER}/24`, 'dev', 'br0'])
  sh('ip', ['-n', ns, 'link', 'set', 'br0', 'up'])
  const work = mkdtempSync('/tmp/nbb-boot-')
  const keep = arg('keep') ?? join(ROOT, 'bench', 'out', 'boot-last')
  rmSync(keep, { recursive: true, force: true })
  mkdirSync(keep, { recursive: true })
  finals.push(() => { rmSync(work, { recursive: true, force: true }) })
  if (only.includes('netboot-attested')) {
    a.netbootInitrd = netbootInitrd(cache, e2e.kernelVersion, join(e2e.dir, 'modules', 'lib', 'modules', e2e.kernelVersion))
    // One TPM for every attested boot (tofu: the first boot records its EK, later ones match).
    tpmState = join(work, 'tpm')
    const ca = localCa(join(work, 'ca'), 'netboot-bench')
    provisionTpm(ca, tpmState)
    // tofu still checks an EK certificate against ek_ca when the TPM has one: trust the swtpm's local CA.
    a.ekCa = ca.dir
  }

  const results: BootResult[] = []
  const out = arg('out') ?? join(ROOT, 'bench', 'out', `boot-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  mkdirSync(join(out, '..'), { recursive: true })
  // Written after every boot: an interrupted run keeps what it measured.
  const save = (): void => { writeFileSync(out, JSON.stringify({ kind: 'netboot-boot-bench', at: new Date().toISOString(), assets: a, markers: MARKERS.map((m) => ({ name: m.name, re: m.re.source })), results: results.map((r) => ({ ...r, phases: phases(r) })) }, null, 2)) }
  for (let round = 1; round <= rounds; round++) {
    for (const v of VARIANTS.filter((x) => only.includes(x))) {
      const dir = join(work, `${v}-${round}`)
      mkdirSync(dir, { recursive: true })
      const servers = v.startsWith('baseline') ? [await startBaseline(ns, dir, a), ...(v === 'baseline-ra' ? [await startRaOnly(ns, dir)] : [])] : [await startNetboot(ns, dir, a, v !== 'netboot-no-ra', v === 'netboot-attested')]
      const vtpm = v === 'netboot-attested' ? await startVmTpm(tpmState!, join(dir, 'swtpm.sock'), join(keep, `${v}-${round}-swtpm.log`)) : undefined
      const server: Server = { log: () => servers.map((x) => x.log()).join('\n'), stop: async () => { for (const x of servers) await x.stop() } }
      let r: BootResult
      try {
        r = await boot(ns, keep, v, round, vtpm?.socket)
      } finally {
        await vtpm?.stop()
        writeFileSync(join(keep, `${v}-${round}-server.log`), server.log())
        await server.stop()
      }
      results.push(r)
      save()
      const p = phases(r)
      console.log(`${v} #${round} ${r.ok ? 'ok' : 'FAILED'} (load ${r.load1.toFixed(1)}): ${Object.entries(r.at).map(([k, s]) => `${k} ${s.toFixed(1)}`).join(', ')}`)
      console.log(`   ${Object.entries(p).map(([k, s]) => `${k}: ${s?.toFixed(1) ?? '–'}`).join(' | ')}${r.rootMount !== undefined ? ` | / = ${r.rootMount}` : ''}`)
    }
  }
  console.log(`results: ${out}; serial consoles and server logs: ${keep}`)
  if (results.some((r) => !r.ok)) process.exitCode = 1
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => { console.error(e instanceof Error ? e.message : e); process.exitCode = 1 }).finally(cleanup)
}
