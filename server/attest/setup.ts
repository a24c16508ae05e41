/** Builds the attestation service and the node-token issuer from the configuration. */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { LoadedConfig } from '../config/load.js'
import type { Node } from '../inventory/model.js'
import type { Store } from '../store/store.js'
import { KeyRing } from '../tokens/keys.js'
import { NodeTokens } from '../tokens/node-token.js'
import { loadCaBundle } from './ekcert.js'
import { AttestationService, type PlannedBoot } from './service.js'
import type { BootPlan, BootService } from '../boot/service.js'
import { UKI_IMAGE_NAME } from '../boot/script.js'
import { NetbootError } from '../errors.js'
import { authenticodeDigests } from '../images/authenticode.js'
import type { AuthenticodeDigests } from '../store/store.js'

const DAY_MS = 86_400_000

/**
 * What attestation needs of a node's boot plan: its root image and, if the image
 * has one, its UKI's measurements and the boot applications allowed before it.
 */
export function plannedBoot (p: BootPlan, before?: readonly AuthenticodeDigests[]): PlannedBoot {
  const i = p.image
  return {
    ...(p.rootfsUrl !== undefined ? { rootfsUrl: p.rootfsUrl } : {}), ...(i.rootfsSha256 !== undefined ? { rootfsSha256: i.rootfsSha256 } : {}), imageRef: p.imageRef,
    ...(i.ukiSha256 !== undefined && i.ukiAuthenticode !== undefined
      ? {
          uki: {
            sha256: i.ukiSha256,
            authenticode: i.ukiAuthenticode,
            ...(i.ukiLinuxAuthenticode !== undefined ? { linux: i.ukiLinuxAuthenticode } : {}),
            loadOptions: p.cmdline === '' ? UKI_IMAGE_NAME : `${UKI_IMAGE_NAME} ${p.cmdline}`,
            ...(before !== undefined ? { before } : {}),
          },
        }
      : {}),
  }
}

/** A boot application larger than this is not an iPXE build (Debian's ipxe.efi: 850 KB). */
const MAX_BOOT_APPLICATION_BYTES = 64 << 20

/**
 * The boot applications a UEFI node may run before its UKI (docs/uki.md): the EFI
 * binaries netboot serves from `ipxeDir` (UEFI PXE and HTTP boot chainload one of
 * them; nodes with iPXE in the NIC ROM run none) and the files an admin lists in
 * attestation.boot_applications (a shim or loader of the site's own). Files in
 * ipxeDir that are not PE images are skipped; a listed file that is not one is a
 * configuration error naming it.
 */
export function bootApplications (ipxeDir: string, listed: readonly string[]): { digests: AuthenticodeDigests[]; files: string[] } {
  const digests: AuthenticodeDigests[] = []
  const files: string[] = []
  const add = (file: string, key: string | undefined): void => {
    let bytes: Buffer
    try {
      const st = statSync(file)
      if (!st.isFile() || st.size > MAX_BOOT_APPLICATION_BYTES) throw new Error(st.isFile() ? `larger than ${MAX_BOOT_APPLICATION_BYTES} bytes` : 'not a file')
      bytes = readFileSync(file)
    } catch (e) {
      if (key === undefined) return
      throw new NetbootError('CONFIG_INVALID', `${key}: ${file}: ${(e as Error).message}`, [{ where: key, message: (e as Error).message }])
    }
    const d = authenticodeDigests(bytes)
    if (!d.ok) {
      if (key === undefined) return
      throw new NetbootError('CONFIG_INVALID', `${key}: ${file} is not a PE image (${d.error.message})`, [{ where: key, message: 'not a PE image' }])
    }
    digests.push(Object.freeze({ sha1: d.value.sha1.toString('hex'), sha256: d.value.sha256.toString('hex'), sha384: d.value.sha384.toString('hex'), sha512: d.value.sha512.toString('hex') }))
    files.push(file)
  }
  let names: string[] = []
  try { names = readdirSync(ipxeDir).filter((f) => f.endsWith('.efi')).sort() } catch { /* no ipxe_dir: TFTP setup reports it */ }
  for (const f of names) add(join(ipxeDir, f), undefined)
  listed.forEach((f, i) => add(f, `attestation.boot_applications[${i}]`))
  return { digests, files }
}

/** Plans kept (planFor); a fuller map is emptied. */
const KEPT_PLANS = 100_000

/**
 * The planned boot per node, kept while the store's generation stands: a plan
 * derives from boot configurations, images and the node itself, which change only
 * by admin (or system) changes, and those move the generation. Attestation asks
 * twice per node (start and finish); each plan is a scan of the boot
 * configurations and an image lookup. A plan that fails is not kept (the next call
 * tries again); one made while the generation moved is dropped at the next call.
 */
export function planFor (store: Pick<Store, 'generation'>, plan: (node: Node) => Promise<PlannedBoot>): (node: Node) => Promise<PlannedBoot> {
  let generation = -1
  const kept = new Map<string, Promise<PlannedBoot>>()
  return async (node) => {
    if (store.generation !== generation) {
      kept.clear()
      generation = store.generation
    }
    let p = kept.get(node.name)
    if (p === undefined) {
      p = plan(node).then((b) => Object.freeze({ ...b, ...(b.uki !== undefined ? { uki: Object.freeze({ ...b.uki }) } : {}) }))
      if (kept.size >= KEPT_PLANS) kept.clear()
      kept.set(node.name, p)
      const mine = p
      p.catch(() => { if (kept.get(node.name) === mine) kept.delete(node.name) })
    }
    return await p
  }
}

export async function setupAttestation (loaded: LoadedConfig, store: Store, log: Logger, boot?: BootService): Promise<{ service: AttestationService; keys: KeyRing; tokens: NodeTokens }> {
  const a = loaded.config.attestation
  const keys = await KeyRing.open({ dir: join(loaded.config.data_dir, 'keys'), rotateAfterMs: a.key_rotation_days * DAY_MS, maxTokenTtlMs: a.token_ttl * 1000 })
  const tokens = new NodeTokens(keys, loaded.publicUrl, a.token_ttl)
  const anchors = a.ek_ca !== undefined ? loadCaBundle(a.ek_ca) : []
  const apps = bootApplications(loaded.config.tftp.ipxe_dir, a.boot_applications)
  const before = Object.freeze(apps.digests)
  if (a.enrollment === 'strict' && anchors.length === 0) log.warn('attestation: strict enrollment with no EK CA certificates (attestation.ek_ca): every TPM will be refused')
  const service = new AttestationService({
    enrollment: a.enrollment,
    requireEkCert: a.require_ek_cert,
    anchors,
    pcrs: a.pcrs,
    bank: a.bank,
    pcrPolicy: a.pcr_policy,
    discover: loaded.config.unknown_nodes.action === 'discover',
    sessionTtlMs: 60_000,
    maxSessions: 50_000,
    ...(a.verify_threads !== undefined ? { verifyThreads: a.verify_threads } : {}),
  }, store, tokens, log.child({ component: 'attest' }), boot === undefined ? undefined : planFor(store, async (node) => plannedBoot(await boot.plan(node), before)))
  log.info({ component: 'attest', enrollment: a.enrollment, cas: anchors.length, pcrs: a.pcrs, policy: a.pcr_policy, kid: keys.current.kid, bootApplications: apps.files }, 'attest: ready')
  return { service, keys, tokens }
}
