/**
 * `netboot image build NAME --root DIR|TARBALL`: squashfs + kernel + netboot initrd
 * from a root (server/images/build.ts), then registered as an image version through
 * the admin API exactly as `image add` does (server/cli/upload.ts). Progress goes to
 * standard error; standard output gets the registered image (or, with --no-register,
 * the built files).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { NetbootError } from '../errors.js'
import type { Image } from '../store/store.js'
import { buildImage, COMPRESSIONS, type BuiltImage, type Compression, type InitrdBuilder } from '../images/build.js'
import { buildInitrd } from '../initrd/build.js'
import { buildUki, DEFAULT_STUB } from '../images/uki.js'
import type { ApiClient } from './client.js'
import { registerImage } from './upload.js'

export interface ImageBuildContext {
  readonly api: () => ApiClient
  readonly out: (data: unknown, human: () => string) => void
  readonly imageRows: (is: readonly Image[]) => string
}

interface Opts {
  root: string
  kver?: string
  kernel?: string
  initrd?: string
  imageVersion?: string
  params: string
  compression: Compression
  register: boolean
  output?: string
  uki?: boolean
  cmdline: string
}

/** dracut with netboot's module (server/initrd/build.ts), for the root's own kernel and modules. */
const initrdBuilder: InitrdBuilder = async (o) => { await buildInitrd({ kver: o.kver, kmoddir: o.kmoddir, kernel: o.kernel, output: o.output, log: o.log }) }

export function registerImageBuild (image: Command, ctx: ImageBuildContext): void {
  image.command('build')
    .description('build an image from a root directory or tarball: squashfs (mksquashfs) + its kernel + a netboot initrd (dracut), then register it as `image add` does')
    .argument('<name>')
    .requiredOption('--root <dir|tarball>', 'the root file system: a directory, or a tar archive (gzip/xz/zstd recognised)')
    .option('--kver <version>', 'the kernel to use when ROOT/boot has several (vmlinuz-<version>)')
    .option('--kernel <file>', 'a kernel from outside the root (default: ROOT/boot/vmlinuz-*)')
    .option('--initrd <file>', 'a ready initrd (default: build the netboot initrd from ROOT/lib/modules/<kver>)')
    .option('--image-version <v>', 'version label (default: a UTC timestamp)')
    .option('--params <text>', 'kernel parameters the image needs', '')
    .addOption(new Option('--compression <algo>', 'squashfs compression').choices(COMPRESSIONS as string[]).default('zstd'))
    .option('--no-register', 'only build the files (into --output, default ./NAME)')
    .option('--output <dir>', 'keep the built files here (rootfs.squashfs, vmlinuz, initrd.img, uki.efi)')
    .option('--uki', "also build a unified kernel image (systemd-boot-efi's stub + kernel + initrd) that UEFI nodes boot instead")
    .option('--cmdline <text>', "the UKI's built-in command line (iPXE passes each node's own: usually empty)", '')
    .addHelpText('after', `
Examples:
  netboot image build debian-12 --root .cache/images/debian-12-cloud/root --params 'console=ttyS0,115200'
  netboot image build tiny --root rootfs.tar.gz --kernel vmlinuz --initrd initrd.img --no-register --output out/`)
    .action(async (name: string, o: Opts) => {
      const say = (line: string): void => { process.stderr.write(`image build: ${line}\n`) }
      // Fail on a missing stub, token or server before the slow part, not after it.
      if (o.uki === true && !existsSync(DEFAULT_STUB)) {
        throw new NetbootError('IMAGE_BUILD_INPUT', `--uki needs the EFI stub ${DEFAULT_STUB} (Debian package systemd-boot-efi)`, [{ where: '--uki', message: `${DEFAULT_STUB} is missing` }])
      }
      const c = o.register ? ctx.api() : undefined
      if (c !== undefined) await c.request('GET', '/api/v1/images')
      const keep = o.output !== undefined || !o.register
      const outputDir = o.output !== undefined ? resolve(o.output) : o.register ? mkdtempSync(join(tmpdir(), `netboot-build-${name}-`)) : resolve(name)
      try {
        const t0 = Date.now()
        const built: BuiltImage = await buildImage({
          root: o.root, outputDir, compression: o.compression, log: say,
          ...(o.kver !== undefined ? { kver: o.kver } : {}),
          ...(o.kernel !== undefined ? { kernel: o.kernel } : {}),
          ...(o.initrd !== undefined ? { initrd: o.initrd } : {}),
          buildInitrd: initrdBuilder,
        })
        let uki: string | undefined
        if (o.uki === true) {
          const u = await buildUki({ kernel: built.kernel, initrd: built.initrd, cmdline: o.cmdline, output: join(outputDir, 'uki.efi') })
          uki = u.path
          say(`UKI ${u.path}: ${(u.size / 1048576).toFixed(1)} MiB, Authenticode sha256:${u.authenticode.sha256}`)
        }
        say(`built in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
        const files = { rootfs: built.rootfs, kernel: built.kernel, initrd: built.initrd, uki, kver: built.kver, rootfsBytes: built.rootfsBytes, warnings: built.warnings }
        if (c === undefined) {
          ctx.out({ built: files }, () => [`rootfs  ${built.rootfs}`, `kernel  ${built.kernel}`, `initrd  ${built.initrd}`, ...(uki !== undefined ? [`uki     ${uki}`] : [])].join('\n'))
          return
        }
        say('uploading and registering')
        const img = await registerImage<Image>(c, {
          name, kernel: built.kernel, initrd: built.initrd, rootfs: built.rootfs, params: o.params, ...(uki !== undefined ? { uki } : {}),
          ...(o.imageVersion !== undefined ? { version: o.imageVersion } : {}),
        })
        ctx.out({ image: img, built: keep ? files : undefined }, () => ctx.imageRows([img]))
      } finally {
        if (!keep) rmSync(outputDir, { recursive: true, force: true })
      }
    })
}
