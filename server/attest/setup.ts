/** Builds the attestation service and the node-token issuer from the configuration. */
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

const DAY_MS = 86_400_000

/** What attestation needs of a node's boot plan: its root image and, if the image has one, its UKI's measurements. */
export function plannedBoot (p: BootPlan): PlannedBoot {
  const i = p.image
  return {
    ...(p.rootfsUrl !== undefined ? { rootfsUrl: p.rootfsUrl } : {}), ...(i.rootfsSha256 !== undefined ? { rootfsSha256: i.rootfsSha256 } : {}), imageRef: p.imageRef,
    ...(i.ukiSha256 !== undefined && i.ukiAuthenticode !== undefined
      ? { uki: { sha256: i.ukiSha256, authenticode: i.ukiAuthenticode, ...(i.ukiLinuxAuthenticode !== undefined ? { linux: i.ukiLinuxAuthenticode } : {}), loadOptions: p.cmdline === '' ? UKI_IMAGE_NAME : `${UKI_IMAGE_NAME} ${p.cmdline}` } } : {}),
  }
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
  }, store, tokens, log.child({ component: 'attest' }), boot === undefined ? undefined : planFor(store, async (node) => plannedBoot(await boot.plan(node))))
  log.info({ component: 'attest', enrollment: a.enrollment, cas: anchors.length, pcrs: a.pcrs, policy: a.pcr_policy, kid: keys.current.kid }, 'attest: ready')
  return { service, keys, tokens }
}
