/**
 * What a node boots: its boot configuration (default → group → node), the image
 * it names, the composed kernel command line, and the iPXE script that fetches it
 * all. The boot-script route, the attestation result (which rootfs, which digest)
 * and cloud-init's instance-id all ask here, so they can never disagree.
 */
import type { Logger } from 'pino'
import { NetbootError } from '../errors.js'
import { parseMac } from '../inventory/addresses.js'
import type { Node } from '../inventory/model.js'
import type { Image, Store } from '../store/store.js'
import { composeCmdline } from './cmdline.js'
import { resolveBootConfig, withImageDefaults, type BootConfigEntry } from './resolve.js'
import type { IpxeScripts, RetryPolicy } from './script.js'

export interface BootPlan {
  readonly node: string
  readonly image: Image
  /** NAME@sha256:HEX of the rootfs (or of the initrd when the image has no rootfs): what the agent verifies. */
  readonly imageRef: string
  readonly kernelUrl: string
  readonly initrdUrl: string
  readonly rootfsUrl?: string
  /** The image's unified kernel image, which iPXE on UEFI boots instead of kernel + initrd (docs/uki.md). */
  readonly ukiUrl?: string
  readonly cmdline: string
}

export interface BootServiceConfig {
  /** The node HTTP server as nodes see it. */
  readonly publicUrl: string
  readonly unknown: { readonly action: 'discover' | 'reboot' | 'ignore'; readonly discoveryImage?: string }
  readonly retry?: RetryPolicy
}

/** Boot scripts kept per MAC; a boot storm asks for the same scripts over and over. */
const SCRIPT_CACHE_MAX = 50_000

type ScriptResult = { script: string; node?: string; kind: 'boot' | 'discover' | 'reboot' }

export class BootService {
  private readonly scriptCache = new Map<string, { generation: number; result: ScriptResult }>()

  constructor (
    private readonly store: Store,
    private readonly scripts: IpxeScripts,
    private readonly cfg: BootServiceConfig,
    private readonly log: Logger,
  ) {}

  imageUrl (sha256: string, name: string): string {
    return `${this.cfg.publicUrl}/images/${sha256}/${name}`
  }

  /** The node's boot; BOOT_NO_IMAGE when no scope names an image. */
  async plan (node: Node): Promise<BootPlan> {
    const configs: Record<string, BootConfigEntry> = {}
    for (const b of await this.store.listBootConfigs()) {
      configs[b.scope === 'default' ? 'default' : `${b.scope}:${b.target}`] = { ...(b.image !== undefined ? { image: b.image } : {}), params: b.params }
    }
    const resolved = resolveBootConfig(node, configs)
    if (resolved.image === undefined) throw new NetbootError('BOOT_NO_IMAGE', `no boot configuration names an image for ${node.name} (netboot boot set default --image NAME)`)
    const image = await this.image(resolved.image)
    return this.compose(image, withImageDefaults(image.name, image.params, resolved), { node: node.name, mode: 'boot' })
  }

  /**
   * The iPXE script for whoever has this MAC. Scripts are cached per MAC and
   * thrown away as soon as anything they derive from changes (store.generation).
   */
  async scriptForMac (macText: string): Promise<ScriptResult> {
    const mac = parseMac(macText)
    if (mac === undefined) throw new NetbootError('INVALID_MAC', `'${macText}' is not a MAC address`)
    const generation = this.store.generation
    const hit = this.scriptCache.get(mac)
    if (hit !== undefined && hit.generation === generation) return hit.result
    const result = await this.renderForMac(mac)
    if (this.scriptCache.size >= SCRIPT_CACHE_MAX) this.scriptCache.clear()
    this.scriptCache.set(mac, { generation, result })
    return result
  }

  private async renderForMac (mac: string): Promise<ScriptResult> {
    const node = await this.store.findNodeByMac(mac)
    if (node !== undefined) {
      try {
        const p = await this.plan(node)
        const script = this.scripts.boot({
          node: node.name, image: `${p.image.name}@${p.image.version}`, kernel: p.kernelUrl,
          initrds: [{ url: p.initrdUrl, name: 'initrd.img' }], cmdline: p.cmdline, ...(p.ukiUrl !== undefined ? { uki: p.ukiUrl } : {}),
          ...(this.cfg.retry !== undefined ? { retry: this.cfg.retry } : {}),
        })
        return { script, node: node.name, kind: 'boot' }
      } catch (e) {
        if (!(e instanceof NetbootError) || (e.code !== 'BOOT_NO_IMAGE' && e.code !== 'IMAGE_NOT_FOUND')) throw e
        this.log.warn({ node: node.name, mac, reason: e.code, why: e.message }, 'boot: node has nothing to boot; rebooting it')
        return { script: this.scripts.reboot({ reason: `${node.name} has no image to boot` }), node: node.name, kind: 'reboot' }
      }
    }
    const u = this.cfg.unknown
    const discovery = u.action === 'discover' && u.discoveryImage !== undefined ? await this.store.getImage(...(u.discoveryImage.split('@') as [string, string | undefined])) : undefined
    if (u.action === 'discover' && u.discoveryImage !== undefined && discovery === undefined) {
      this.log.warn({ mac, image: u.discoveryImage }, 'boot: the discovery image does not exist; rebooting the unknown node')
    }
    if (discovery !== undefined) {
      const image = discovery
      const p = this.compose(image, [{ scope: `image:${image.name}`, params: image.params }], { mode: 'discover' })
      const script = this.scripts.discover({
        mac, image: `${image.name}@${image.version}`, kernel: p.kernelUrl, initrds: [{ url: p.initrdUrl, name: 'initrd.img' }], cmdline: p.cmdline,
        ...(p.ukiUrl !== undefined ? { uki: p.ukiUrl } : {}),
        ...(this.cfg.retry !== undefined ? { retry: this.cfg.retry } : {}),
      })
      return { script, kind: 'discover' }
    }
    return { script: this.scripts.reboot({ reason: `${mac} is not in the inventory` }), kind: 'reboot' }
  }

  /** autoexec.ipxe: some NICs fetch it by TFTP first; it hands over to the HTTP boot script. */
  autoexec (): string {
    return this.scripts.autoexec({ scriptUrl: `${this.cfg.publicUrl}/boot/{mac}`, ...(this.cfg.retry !== undefined ? { retry: this.cfg.retry } : {}) })
  }

  /** What enters cloud-init's instance-id: the booted image's digest, or 'none'. */
  async imageDigest (node: Node): Promise<string> {
    try {
      return (await this.plan(node)).imageRef
    } catch (e) {
      if (e instanceof NetbootError && (e.code === 'BOOT_NO_IMAGE' || e.code === 'IMAGE_NOT_FOUND')) return 'none'
      throw e
    }
  }

  private async image (ref: string): Promise<Image> {
    const [name, version] = ref.split('@') as [string, string | undefined]
    const image = await this.store.getImage(name, version)
    if (image === undefined) throw new NetbootError('IMAGE_NOT_FOUND', `no image ${ref}`)
    return image
  }

  private compose (image: Image, layers: Parameters<typeof composeCmdline>[0], who: { node?: string; mode: 'boot' | 'discover' }): BootPlan {
    const digest = image.rootfsSha256 ?? image.initrdSha256
    const imageRef = `${image.name}@sha256:${digest}`
    const c = composeCmdline(layers, { server: this.cfg.publicUrl, image: imageRef, mode: who.mode, ...(who.node !== undefined ? { node: who.node } : {}) })
    for (const d of c.dropped) this.log.warn({ node: who.node, dropped: d }, 'boot: a reserved kernel parameter was not applied')
    return {
      node: who.node ?? '',
      image,
      imageRef,
      kernelUrl: this.imageUrl(image.kernelSha256, 'vmlinuz'),
      initrdUrl: this.imageUrl(image.initrdSha256, 'initrd.img'),
      ...(image.rootfsSha256 !== undefined ? { rootfsUrl: this.imageUrl(image.rootfsSha256, 'rootfs.squashfs') } : {}),
      ...(image.ukiSha256 !== undefined ? { ukiUrl: this.imageUrl(image.ukiSha256, 'uki.efi') } : {}),
      cmdline: c.cmdline,
    }
  }
}
