/**
 * `netboot initrd build --kver V [--kmoddir DIR] [--output FILE] [--uki [FILE] --kernel FILE]`:
 * a netboot initrd built with the host's dracut and netboot's module
 * (server/initrd/build.ts), and optionally a unified kernel image of it
 * (server/images/uki.ts buildUki: kernel + initrd + command line in one PE that UEFI
 * firmware measures into PCR 4 as a whole). Runs on the build host, needs no server.
 * Progress goes to standard error; standard output gets what was built.
 */
import { resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { buildUki, DEFAULT_STUB } from '../images/uki.js'
import { buildInitrd, type BuiltInitrd, type InitrdCompression } from '../initrd/build.js'

interface Opts {
  kver: string
  kmoddir?: string
  output?: string
  kernel?: string
  addDrivers?: string[]
  compress: InitrdCompression
  caBundle?: string
  uki?: string | boolean
  cmdline: string
  stub?: string
  quiet?: boolean
}

const list = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(/[\s,]+/).filter(Boolean)]

/** Where the UKI goes when --uki names no file: the initrd's name with .efi. */
export function ukiPath (initrd: string): string {
  return initrd.replace(/\.(img|initrd|cpio(\.\w+)?)$/, '') + '.efi'
}

export function registerInitrd (program: Command, out: (data: unknown, human: () => string) => void): void {
  const initrd = program.command('initrd').description('the netboot initrd: dracut with the netboot agent (docs/initrd.md)')
  initrd.command('build')
    .description('build a netboot initrd with the host\'s dracut (packages dracut-core, dracut-network) for a kernel, optionally with a unified kernel image')
    .requiredOption('--kver <version>', 'kernel version (the modules directory name, e.g. 6.1.0-28-amd64)')
    .option('--kmoddir <dir>', 'the kernel\'s modules, with modules.dep (default /lib/modules/<version>)')
    .option('-o, --output <file>', 'the initrd to write (default ./netboot-initrd-<version>.img)')
    .option('--kernel <file>', 'the kernel image: checked to be <version>; the UKI\'s kernel (default /boot/vmlinuz-<version> with --uki)')
    .option('--add-drivers <modules>', 'more kernel modules (space or comma separated, repeatable)', list)
    .addOption(new Option('--compress <method>', 'compression (zstd: level 3, fast to build; the kernel unpacks both)').choices(['zstd', 'gzip']).default('zstd'))
    .option('--ca-bundle <file>', 'PEM certificates the agent trusts for an https:// server (default /etc/ssl/certs/ca-certificates.crt)')
    .option('--uki [file]', 'also build a unified kernel image (systemd-boot-efi\'s stub + kernel + initrd + --cmdline); default <output>.efi')
    .option('--cmdline <text>', 'the UKI\'s built-in command line (iPXE passes each node\'s own: usually empty)', '')
    .option('--stub <file>', `the EFI stub for the UKI (default ${DEFAULT_STUB})`)
    .option('-q, --quiet', 'no dracut progress lines')
    .addHelpText('after', `
Examples:
  netboot initrd build --kver "$(uname -r)"
  scripts/e2e-assets.sh                     # a Debian kernel and its modules in .cache/e2e
  netboot initrd build --kver 6.1.0-28-amd64 --kmoddir .cache/e2e/modules/lib/modules/6.1.0-28-amd64 \\
      --kernel .cache/e2e/vmlinuz --output initrd.img --uki`)
    .action(async (o: Opts) => {
      const output = resolve(o.output ?? `netboot-initrd-${o.kver}.img`)
      const wantUki = o.uki !== undefined && o.uki !== false
      const kernel = o.kernel ?? (wantUki ? `/boot/vmlinuz-${o.kver}` : undefined)
      const log = (line: string): void => {
        if (o.quiet !== true || !line.startsWith('dracut: ')) process.stderr.write(`netboot: ${line}\n`)
      }
      const built: BuiltInitrd = await buildInitrd({
        kver: o.kver,
        output,
        compress: o.compress,
        log,
        ...(o.kmoddir !== undefined ? { kmoddir: o.kmoddir } : {}),
        ...(kernel !== undefined ? { kernel } : {}),
        ...(o.addDrivers !== undefined ? { extraDrivers: o.addDrivers } : {}),
        ...(o.caBundle !== undefined ? { caBundle: o.caBundle } : {}),
      })
      let uki: Awaited<ReturnType<typeof buildUki>> | undefined
      if (wantUki) {
        const path = resolve(typeof o.uki === 'string' ? o.uki : ukiPath(output))
        log(`unified kernel image ${path} from ${kernel!} + ${output}`)
        uki = await buildUki({ kernel: kernel!, initrd: output, cmdline: o.cmdline, output: path, ...(o.stub !== undefined ? { stub: o.stub } : {}) })
        log(`UKI ${path}: ${(uki.size / 1048576).toFixed(1)} MiB, Authenticode sha256:${uki.authenticode.sha256}`)
      }
      const result = {
        initrd: { path: built.path, size: built.size, sha256: built.sha256, kver: built.kver, compress: built.compress, seconds: built.ms / 1000 },
        ...(uki !== undefined ? { uki: { path: uki.path, size: uki.size, sha256: uki.sha256, authenticode: uki.authenticode } } : {}),
      }
      out(result, () => [
        `initrd  ${built.path}  ${(built.size / 1048576).toFixed(1)} MiB  sha256:${built.sha256}  (${(built.ms / 1000).toFixed(1)} s)`,
        ...(uki !== undefined ? [`uki     ${uki.path}  ${(uki.size / 1048576).toFixed(1)} MiB  sha256:${uki.sha256}`] : []),
      ].join('\n'))
    })
}
