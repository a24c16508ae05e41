/**
 * A QEMU machine that boots from the network and nothing else, run inside a test
 * namespace on a tap device the test created there. TCG only: KVM cannot boot a
 * kernel on these machines (shared/reference/PXE.md). Its serial console is read
 * from stdio, each chunk stamped with the time it arrived, and mirrored to a file.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, createWriteStream, existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Netns } from '../helpers/netns.js'

/**
 * bios:      SeaBIOS + the iPXE ROM of an e1000 NIC (ipxe-qemu)
 * uefi-rom:  OVMF + the same NIC, whose ROM's EFI driver is iPXE
 * uefi-pxe:  OVMF's own PXE client: virtio-net with no option ROM, so the
 *            firmware's PXE asks for ipxe.efi over TFTP
 */
export type Firmware = 'bios' | 'uefi-rom' | 'uefi-pxe'

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'
export const QEMU = 'qemu-system-x86_64'
/** The iPXE ROM QEMU gives an e1000 by default (BIOS and EFI images in one file). */
export const E1000_ROM = '/usr/lib/ipxe/qemu/efi-e1000.rom'

/** What a machine of this firmware needs on the host; empty when all is there. */
export function missingFor (fw: Firmware): string[] {
  const need: [string, string][] = [['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'], ['/usr/bin/timeout', 'coreutils']]
  if (fw !== 'uefi-pxe') need.push([E1000_ROM, 'ipxe-qemu'])
  if (fw !== 'bios') need.push([OVMF_CODE, 'ovmf'], [OVMF_VARS, 'ovmf'])
  else need.push(['/usr/share/seabios/bios-256k.bin', 'seabios'])
  return need.filter(([f]) => !existsSync(f)).map(([f, pkg]) => `${f} (Debian package ${pkg})`)
}

export interface VmOptions {
  readonly firmware: Firmware
  readonly ns: Netns
  readonly tap: string
  readonly mac: string
  /** Where the serial log and the writable UEFI variable store go. */
  readonly dir: string
  /** Hard limit; the machine is killed (by pid) when it is reached. */
  readonly timeoutMs: number
  readonly name: string
  /** Guest RAM in MiB (default 512; an initrd carrying node needs 1024 or more). */
  readonly memoryMiB?: number
  /**
   * A TPM 2.0 backed by an swtpm listening on this control socket (swtpm socket
   * --ctrl type=unixio): tpm-tis on BIOS (SeaBIOS drives TIS), tpm-crb on UEFI.
   */
  readonly tpmSocket?: string
}

export interface VmResult {
  readonly started: number
  readonly ended: number
  /** Exit code, or undefined when it was killed at the timeout. */
  readonly code: number | null | undefined
  readonly timedOut: boolean
  readonly serial: string
  readonly serialFile: string
  /** When the first serial line matching a pattern of `watch` arrived (ms), by pattern source. */
  readonly seen: ReadonlyMap<string, number>
  readonly argv: readonly string[]
}

/** Machines still running: stopped (by pid) if this process exits while one runs. */
const running = new Set<ChildProcess>()
process.once('exit', () => { for (const p of running) p.kill('SIGTERM') })

export function qemuArgs (o: Pick<VmOptions, 'firmware' | 'tap' | 'mac' | 'name' | 'memoryMiB' | 'tpmSocket'>, varsFile?: string): string[] {
  const args = [
    '-name', o.name,
    '-machine', 'q35,accel=tcg',
    '-m', String(o.memoryMiB ?? 512),
    '-nographic', '-nodefaults', '-monitor', 'none',
    '-chardev', 'stdio,id=s0', '-serial', 'chardev:s0',
    '-no-reboot',
    '-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
  ]
  if (o.firmware !== 'bios') {
    if (varsFile === undefined) throw new Error('UEFI needs a writable copy of OVMF_VARS')
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${varsFile}`)
  }
  if (o.firmware === 'uefi-pxe') args.push('-device', `virtio-net-pci,netdev=n0,romfile=,mac=${o.mac}`)
  else args.push('-device', `e1000,netdev=n0,mac=${o.mac},romfile=${E1000_ROM}`)
  if (o.firmware === 'bios') args.push('-boot', 'order=n')
  if (o.tpmSocket !== undefined) {
    args.push('-chardev', `socket,id=chrtpm,path=${o.tpmSocket}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm',
      '-device', `${o.firmware === 'bios' ? 'tpm-tis' : 'tpm-crb'},tpmdev=tpm0`)
  }
  return args
}

/** Boots the machine and resolves when QEMU exits or is killed at the timeout. */
export async function runVm (o: VmOptions, watch: readonly RegExp[]): Promise<VmResult> {
  let vars: string | undefined
  if (o.firmware !== 'bios') {
    vars = join(o.dir, `${o.name}-OVMF_VARS.fd`)
    copyFileSync(OVMF_VARS, vars)
  }
  const argv = qemuArgs(o, vars)
  const serialFile = join(o.dir, `${o.name}-serial.log`)
  const file = createWriteStream(serialFile)
  const seen = new Map<string, number>()
  let serial = ''
  let pending = ''
  const started = Date.now()
  // coreutils timeout bounds QEMU's life even if this process dies without cleaning
  // up (a runner's SIGKILL); a SIGTERM to it reaches QEMU, and -k kills QEMU 5 s later.
  const limit = Math.ceil(o.timeoutMs / 1000) + 15
  const proc = spawn('ip', ['netns', 'exec', o.ns.name, 'timeout', '-k', '5', String(limit), QEMU, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] })
  running.add(proc)
  proc.once('exit', () => running.delete(proc))
  const onData = (d: Buffer): void => {
    const now = Date.now()
    const s = d.toString('latin1')
    serial += s
    file.write(d)
    pending += s
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) for (const re of watch) if (!seen.has(re.source) && re.test(line)) seen.set(re.source, now)
  }
  proc.stdout!.on('data', onData)
  proc.stderr!.on('data', onData)
  let timedOut = false
  let killer: NodeJS.Timeout | undefined
  const timer = setTimeout(() => {
    timedOut = true
    proc.kill('SIGTERM')
    killer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
  }, o.timeoutMs)
  const code = await new Promise<number | null>((resolve) => {
    proc.once('error', () => resolve(null))
    proc.once('exit', (c) => resolve(c))
  }).finally(() => { clearTimeout(timer); clearTimeout(killer) })
  const ended = Date.now()
  for (const re of watch) if (!seen.has(re.source) && re.test(pending)) seen.set(re.source, ended)
  await new Promise<void>((resolve) => file.end(() => resolve()))
  return { started, ended, code: timedOut ? undefined : code, timedOut, serial, serialFile, seen, argv }
}

/** The serial console for a failure message: escape sequences out, the last lines only. */
export function serialTail (serial: string, lines = 60): string {
  // eslint-disable-next-line no-control-regex
  const clean = serial.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')
  return clean.split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n')
}
