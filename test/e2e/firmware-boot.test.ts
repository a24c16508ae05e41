/**
 * Firmware end-to-end: real firmware in QEMU boots a real Debian kernel through
 * netboot alone — netboot's DHCP, TFTP (iPXE for UEFI's own PXE), the HTTP boot
 * script and the images by digest — into a busybox initrd whose /init prints the
 * marker netboot put on the kernel command line and powers the machine off.
 *
 *   bios      SeaBIOS + the e1000's iPXE ROM
 *   uefi-rom  OVMF + the e1000's iPXE ROM (its EFI driver)
 *   uefi-pxe  OVMF's own PXE client (virtio-net, no ROM) → TFTP ipxe.efi → iPXE
 *
 * Network: one namespace holds netboot and a bridge (10.96.0.1/24, netboot's
 * server.interfaces); each machine's NIC is a tap on that bridge, created in the
 * namespace, with QEMU run there. Nothing touches the host's interfaces.
 * Three TCG boots of 20–60 s each, one after the other (PXE.md: no KVM here).
 * Needs root, qemu-system-x86, ovmf, ipxe-qemu, ipxe, cpio and apt access for the
 * kernel and busybox-static .debs (scripts/e2e-assets.sh): without them it fails.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CLI } from '../helpers/cli.js'
import { netns, type Netns } from '../helpers/netns.js'
import { startNsServer, type NsServer } from '../helpers/netboot-ns.js'
import { tempDir } from '../helpers/tmp.js'
import { e2eAssets, type E2eAssets } from './assets.js'
import { missingFor, runVm, serialTail, type Firmware } from './qemu.js'
import { bootTimeline, formatTimeline, parseLog } from './timeline.js'

const SERVER = '10.96.0.1'
const HTTP_PORT = 8080
const BOOT_TIMEOUT_MS = 180_000

interface Machine { readonly firmware: Firmware; readonly node: string; readonly mac: string; readonly ip: string; readonly label: string }

const MACHINES: readonly Machine[] = [
  { firmware: 'bios', node: 'e2e-bios', mac: '52:54:00:96:00:01', ip: '10.96.0.11', label: 'BIOS (SeaBIOS + iPXE ROM)' },
  { firmware: 'uefi-rom', node: 'e2e-uefi', mac: '52:54:00:96:00:02', ip: '10.96.0.12', label: 'UEFI (OVMF + iPXE ROM)' },
  { firmware: 'uefi-pxe', node: 'e2e-uefipxe', mac: '52:54:00:96:00:03', ip: '10.96.0.13', label: "UEFI's own PXE (OVMF, TFTP ipxe.efi)" },
]

// Three boots plus set-up, each boot capped; tap's default per-file timeout is far shorter.
t.setTimeout(MACHINES.length * BOOT_TIMEOUT_MS + 180_000)

function config (dir: string): string {
  return `
data_dir: ${dir}/data
log: { level: info }
server: { address: ${SERVER}, interfaces: [br0] }
http: { listen: 0.0.0.0, port: ${HTTP_PORT} }
admin: { listen: 127.0.0.1, port: 8081 }
tftp: { enabled: true, port: 69, ipxe_dir: /usr/lib/ipxe }
unknown_nodes: { action: reboot, lease_time: 120 }
attestation: { enabled: false }
dhcp:
  lease_time: 600
  subnets:
    - name: e2e
      network: 10.96.0.0/24
      interface: br0
      pool: [10.96.0.200-10.96.0.220]
      router: ${SERVER}
      dns: [${SERVER}]
`
}

/** The built CLI inside the server's namespace (the admin API listens on its loopback). */
async function cli (ns: Netns, cfg: string, token: string, args: readonly string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns.name, process.execPath, CLI, '-c', cfg, ...args], { env: { ...process.env, NETBOOT_TOKEN: token }, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`netboot ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

async function localToken (cfg: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, '-c', cfg, '--json', 'token', 'create', '--local', 'e2e'], { env: { ...process.env, NETBOOT_TOKEN: '' }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`token create: ${err.message}\n${stderr}`))
      else resolve((JSON.parse(stdout) as { value: string }).value)
    })
  })
}

t.test('firmware boots a kernel through netboot alone', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (namespaces, taps, QEMU): CI runs as root')
  const missing = [...new Set(MACHINES.flatMap((m) => missingFor(m.firmware)))]
  if (missing.length > 0) throw new Error(`missing on this machine: ${missing.join(', ')} (scripts/setup.sh installs them)`)

  const assets: E2eAssets = await e2eAssets()
  t.comment(`kernel ${assets.kernelVersion} (sha256 ${assets.kernelSha256.slice(0, 12)}), initrd sha256 ${assets.initrdSha256.slice(0, 12)}`)

  const dir = tempDir(t, 'netboot-e2e-')
  mkdirSync(join(dir, 'data'), { recursive: true })
  // Serial consoles, UEFI variable stores and netboot's log of the last run stay here for a look after a failure.
  const keep = join(assets.dir, 'last-run')
  rmSync(keep, { recursive: true, force: true })
  mkdirSync(keep, { recursive: true })
  const cfg = join(dir, 'netboot.yaml')
  const srv = await netns(t, 'e2e')
  await srv.exec('ip', ['link', 'add', 'br0', 'type', 'bridge'])
  await srv.exec('ip', ['addr', 'add', `${SERVER}/24`, 'dev', 'br0'])
  await srv.exec('ip', ['link', 'set', 'br0', 'up'])

  const server: NsServer = await startNsServer(t, srv, dir, config(dir))
  t.teardown(() => { writeFileSync(join(keep, 'netboot.log'), server.log()) })
  await server.waitFor(/"msg":"dhcp: serving"/)
  await server.waitFor(/"msg":"tftp: serving"/)
  const token = await localToken(cfg)

  const nonces = new Map(MACHINES.map((m) => [m.node, randomBytes(8).toString('hex')]))
  for (const m of MACHINES) await cli(srv, cfg, token, ['node', 'add', m.node, '--mac', m.mac, '--ip', m.ip])
  await cli(srv, cfg, token, ['image', 'add', 'e2e', '--kernel', assets.kernel, '--initrd', assets.initrd])
  // panic=1: an /init that fails ends the machine (with -no-reboot) instead of hanging until the timeout.
  await cli(srv, cfg, token, ['boot', 'set', 'default', '--image', 'e2e', '--params', 'console=ttyS0,115200 panic=1'])
  for (const m of MACHINES) await cli(srv, cfg, token, ['boot', 'set', m.node, '--params', `marker=${nonces.get(m.node)!}`])

  // E2E_ONLY=bios,uefi-pxe boots only those (for working on one firmware); CI sets nothing.
  const only = process.env.E2E_ONLY?.split(',').map((s) => s.trim()).filter(Boolean)
  if (only !== undefined && only.length > 0) t.comment(`E2E_ONLY=${only.join(',')}: the other firmware is not booted in this run`)
  const unknown = (only ?? []).filter((o) => !MACHINES.some((m) => m.firmware === o))
  if (unknown.length > 0) throw new Error(`E2E_ONLY names no machine: ${unknown.join(', ')} (known: ${MACHINES.map((m) => m.firmware).join(', ')})`)
  for (const m of MACHINES.filter((m) => only === undefined || only.length === 0 || only.includes(m.firmware))) {
    await t.test(m.label, async (t) => {
      const nonce = nonces.get(m.node)!
      const tap = `tap${MACHINES.indexOf(m)}`
      await srv.exec('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap'])
      await srv.exec('ip', ['link', 'set', tap, 'master', 'br0'])
      await srv.exec('ip', ['link', 'set', tap, 'up'])
      t.teardown(async () => { await srv.exec('ip', ['link', 'del', tap]).catch(() => {}) })

      const marker = new RegExp(`NETBOOT-E2E-MARKER ${nonce}\\b`)
      const scriptEcho = new RegExp(`netboot: node ${m.node} boots image e2e@`)
      const kernelStart = /Linux version \d/
      const vm = await runVm({ firmware: m.firmware, ns: srv, tap, mac: m.mac, dir: keep, timeoutMs: BOOT_TIMEOUT_MS, name: m.node }, [scriptEcho, kernelStart, marker])

      const seenMarker = vm.seen.get(marker.source)
      const why = `\n--- ${m.node} serial console (${vm.serialFile}), last lines ---\n${serialTail(vm.serial)}\n--- qemu ${vm.argv.join(' ')}`
      t.ok(seenMarker !== undefined, `the marker ${nonce} reached the serial console${seenMarker === undefined ? why : ''}`)
      t.notOk(vm.timedOut, `QEMU powered off by itself within ${BOOT_TIMEOUT_MS / 1000} s`)
      t.equal(vm.code, 0, 'QEMU exited 0 (the guest powered off)')
      t.ok(vm.seen.has(scriptEcho.source), "the serial console shows netboot's boot script running in iPXE")
      const cmdline = /NETBOOT-E2E-CMDLINE ([^\r\n]*)/.exec(vm.serial)?.[1] ?? ''
      t.match(cmdline, `netboot.server=http://${SERVER}:${HTTP_PORT} netboot.node=${m.node} netboot.image=e2e@sha256:${assets.initrdSha256}`, "the kernel got netboot's own parameters")
      t.match(cmdline, /(^| )initrd=initrd\.img /, 'the command line names the initrd (the EFI stub finds it by initrd=)')

      // give pino's asynchronous stdout a moment to flush the last request lines
      await new Promise((r) => setTimeout(r, 300))
      const tl = bootTimeline(parseLog(server.log()), {
        mac: m.mac, ip: m.ip, kernelSha256: assets.kernelSha256, initrdSha256: assets.initrdSha256,
        viaTftp: m.firmware === 'uefi-pxe', ...(m.firmware === 'uefi-pxe' ? { ipxeFile: 'ipxe.efi' } : {}),
      }, vm.started)
      t.same(tl.problems, [], `netboot's log shows ${m.firmware === 'uefi-pxe' ? 'dhcp → tftp ipxe.efi → dhcp (iPXE) → ' : 'dhcp (iPXE) → '}boot script → kernel → initrd`)
      // Router advertisements (server/ra) end iPXE's IPv6 wait: without them iPXE asks for its
      // script ~16 s after its DHCP reply, with them ~1 s. The bound is wide on purpose (a
      // loaded TCG guest is slow); it separates the two behaviours, it does not time them.
      const ipxeAt = tl.steps.find((s) => s.name === 'ipxe')?.time
      const scriptAt = tl.steps.find((s) => s.name === 'script')?.time
      t.ok(ipxeAt !== undefined && scriptAt !== undefined && scriptAt - ipxeAt < 10_000,
        `iPXE asked for its script ${ipxeAt !== undefined && scriptAt !== undefined ? ((scriptAt - ipxeAt) / 1000).toFixed(1) : '?'} s after its DHCP reply (< 10 s: netboot's router advertisement ended iPXE's IPv6 wait, which takes ~16 s)`)
      const arch = m.firmware === 'bios' ? 'bios' : 'x64-uefi'
      t.match(tl.steps[0]?.detail, `(${arch})`, `netboot saw the firmware as ${arch}`)
      for (const s of tl.steps) t.comment(`  ${s.name.padEnd(6)} ${((s.time - vm.started) / 1000).toFixed(1).padStart(5)} s  ${s.detail}`)
      const points = [
        ...tl.steps,
        ...(vm.seen.has(kernelStart.source) ? [{ name: 'linux', time: vm.seen.get(kernelStart.source)! }] : []),
        ...(seenMarker !== undefined ? [{ name: 'marker', time: seenMarker }] : []),
        { name: 'exit', time: vm.ended },
      ].sort((a, b) => a.time - b.time)
      t.comment(`${m.label} timeline from QEMU start: ${formatTimeline(points, vm.started)}`)
      if (seenMarker === undefined || tl.problems.length > 0) {
        t.comment(`netboot's log and the serial consoles of this run are in ${keep}; the lines about ${m.mac}:`)
        t.comment(server.log().split('\n').filter((l) => l.includes(m.mac) || l.includes(`"${m.ip}:`) || l.includes(`"${m.ip}"`)).slice(-40).join('\n'))
      }
    })
  }
})
