/**
 * `netboot image build NAME --root DIR|TARBALL`: squashfs + kernel + netboot initrd
 * from a root (server/images/build.ts), then registered as an image version through
 * the admin API exactly as `image add` does (server/cli/upload.ts). Progress goes to
 * standard error; standard output gets the registered image (or, with --no-register,
 * the built files).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { NetbootError } from '../errors.js'
import type { Image } from '../store/store.js'
import { buildImage, COMPRESSIONS, type BuiltImage, type Compression, type InitrdBuilder } from '../images/build.js'
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
}

/**
 * The initrd builder of the dracut module (server/initrd/build.ts), when this build
 * of netboot has it; undefined otherwise (then --initrd is required).
 */
async function initrdBuilder (): Promise<InitrdBuilder | undefined> {
  const spec = '../initrd/build.js'
  let mod: { buildInitrd?: (o: Record<string, unknown>) => Promise<unknown> }
  try {
    mod = await import(spec) as typeof mod
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return undefined
    throw e
  }
  const build = mod.buildInitrd
  if (build === undefined) return undefined
  return async (o) => { await build({ kver: o.kver, kmoddir: o.kmoddir, output: o.output, log: o.log }) }
}

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
    .option('--output <dir>', 'keep the built files here (rootfs.squashfs, vmlinuz, initrd.img)')
    .addHelpText('after', `
Examples:
  netboot image build debian-12 --root .cache/images/debian-12-cloud/root --params 'console=ttyS0,115200'
  netboot image build tiny --root rootfs.tar.gz --kernel vmlinuz --initrd initrd.img --no-register --output out/`)
    .action(async (name: string, o: Opts) => {
      const say = (line: string): void => { process.stderr.write(`image build: ${line}\n`) }
      // Fail on a missing token or server before the slow part, not after it.
      const c = o.register ? ctx.api() : undefined
      if (c !== undefined) await c.request('GET', '/api/v1/images')
      const keep = o.output !== undefined || !o.register
      const outputDir = o.output !== undefined ? resolve(o.output) : o.register ? mkdtempSync(join(tmpdir(), `netboot-build-${name}-`)) : resolve(name)
      try {
        const t0 = Date.now()
        const buildInitrd = o.initrd === undefined ? await initrdBuilder() : undefined
        if (o.initrd === undefined && buildInitrd === undefined) {
          throw new NetbootError('IMAGE_BUILD_INPUT', 'this netboot has no initrd builder (server/initrd/build.ts): give --initrd', [{ where: '--initrd', message: 'required' }])
        }
        const built: BuiltImage = await buildImage({
          root: o.root, outputDir, compression: o.compression, log: say,
          ...(o.kver !== undefined ? { kver: o.kver } : {}),
          ...(o.kernel !== undefined ? { kernel: o.kernel } : {}),
          ...(o.initrd !== undefined ? { initrd: o.initrd } : {}),
          ...(buildInitrd !== undefined ? { buildInitrd } : {}),
        })
        say(`built in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
        const files = { rootfs: built.rootfs, kernel: built.kernel, initrd: built.initrd, kver: built.kver, rootfsBytes: built.rootfsBytes, warnings: built.warnings }
        if (c === undefined) {
          ctx.out({ built: files }, () => [`rootfs  ${built.rootfs}`, `kernel  ${built.kernel}`, `initrd  ${built.initrd}`].join('\n'))
          return
        }
        say('uploading and registering')
        const img = await registerImage<Image>(c, {
          name, kernel: built.kernel, initrd: built.initrd, rootfs: built.rootfs, params: o.params,
          ...(o.imageVersion !== undefined ? { version: o.imageVersion } : {}),
        })
        ctx.out({ image: img, built: keep ? files : undefined }, () => ctx.imageRows([img]))
      } finally {
        if (!keep) rmSync(outputDir, { recursive: true, force: true })
      }
    })
}
