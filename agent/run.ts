/**
 * The agent's run loop: the step of the current state (agent/steps/*), its outcome
 * as an event, the next state from `transition` (agent/state.ts), until a final
 * state. Everything the steps touch is injected — HTTP, the TPM, clock, random
 * source, the mount tool, the paths — so tests drive whole boots into a temp NEWROOT.
 *
 * Retries at this level follow the guard in `transition`: a retryable failure runs
 * the same step again after a full-jitter backoff (or the server's Retry-After),
 * until MAX_ATTEMPTS for that state. A boot that fails unmounts what it mounted, so
 * dracut can never switch into a half-made root, and prints one line saying which
 * step failed, why, and what the dracut hook will do.
 */
import { mkdir } from 'node:fs/promises'
import { cryptoRandom, fullJitter, realClock, secs, type Backoff, type Clock, type Random } from './backoff.js'
import { createBootKey, type BootKey } from './bootkey.js'
import type { AgentCmdline } from './cmdline.js'
import { AgentError, asAgentError, EXIT_CODES, type ExitClass } from './errors.js'
import { readHardware, type HardwareFacts } from './hardware.js'
import { ServerApi, type FetchFn } from './http.js'
import type { AgentLog } from './log.js'
import { FINAL_STATES, INITIAL_STATE, MAX_ATTEMPTS, transition, type AgentEvent, type AgentState } from './state.js'
import { attestStep, prepareKeys, waitForDecision, type Attested, type Challenge, type PendingPolicy, type TpmKeys } from './steps/attest.js'
import { discoverStep } from './steps/discover.js'
import { measureRootfs, type Measurement } from './steps/measure.js'
import { mountRoot, unmountRoot, type Exec, type MountedRoot } from './steps/mount.js'
import { waitForNetwork, type NetworkPolicy } from './steps/network.js'
import { downloadRootfs, type DownloadPolicy, type VerifiedImage } from './steps/rootfs.js'
import { fetchSecrets, type NoCloudSeed } from './steps/secrets.js'
import { writeSeed, type SeedWritten } from './steps/seed.js'
import { Tpm, type KeyAlg } from './tpm/index.js'
import type { ServerRefusal } from './http.js'

export interface AgentPolicy {
  readonly network: NetworkPolicy
  readonly pending: PendingPolicy
  readonly download: DownloadPolicy
  /** Backoff between machine-level retries of a step. */
  readonly retry: Backoff
  /** Timeout of one API request (attestation, secrets). */
  readonly requestTimeoutMs: number
  readonly maxAttempts: typeof MAX_ATTEMPTS
}

export const DEFAULT_POLICY: AgentPolicy = {
  network: { waitMs: 300_000, backoff: { baseMs: 1000, capMs: 10_000 }, probeTimeoutMs: 5000 },
  pending: { waitMs: 3_600_000, backoff: { baseMs: 5000, capMs: 60_000 } },
  download: { attempts: 8, backoff: { baseMs: 1000, capMs: 60_000 }, headersTimeoutMs: 30_000, idleTimeoutMs: 30_000 },
  retry: { baseMs: 1000, capMs: 30_000 },
  requestTimeoutMs: 30_000,
  maxAttempts: MAX_ATTEMPTS,
}

export interface AgentConfig {
  readonly cmdline: AgentCmdline
  /** TCTI configuration: `device:/dev/tpmrm0` on hardware. */
  readonly tcti: string
  /** dracut's $NEWROOT (/sysroot). */
  readonly newRoot: string
  /** Where the image is downloaded and the overlay layers live: on the initramfs /run (/run/netboot/root). */
  readonly workDir: string
  /** The initramfs /run: the token goes to <runDir>/netboot/token. */
  readonly runDir: string
  /** sysfs root (/sys): MACs, DMI, the firmware event log. */
  readonly sysfs: string
  /** tmpfs size= of the overlay's upper layer. */
  readonly overlaySize: string
  readonly ekAlg?: KeyAlg
  readonly akAlg?: KeyAlg
  readonly policy?: AgentPolicy
}

export interface AgentDeps {
  readonly log: AgentLog
  readonly fetch?: FetchFn
  readonly clock?: Clock
  readonly random?: Random
  readonly openTpm?: (tcti: string) => Promise<Tpm>
  readonly exec?: Exec
  /** Read the machine's facts (default: from cfg.sysfs). */
  readonly hardware?: () => Promise<HardwareFacts>
}

export interface AgentResult {
  readonly state: 'done' | 'reboot' | 'failed'
  readonly exitCode: number
  readonly error?: AgentError
  /** Every state entered, in order (retries included). */
  readonly trace: readonly AgentState[]
  readonly attested?: Attested
  readonly seed?: NoCloudSeed
  readonly image?: VerifiedImage
  readonly measurement?: Measurement
  readonly mounted?: MountedRoot
  readonly written?: SeedWritten
  readonly ekSha256?: string
}

/** What the dracut hook does with a failure, for the failure line. */
export function hookAction (shell: boolean | undefined): string {
  return shell === true ? 'rd.shell is set: the dracut hook opens the emergency shell' : 'the dracut hook reboots the node (rd.shell=1 would open the emergency shell)'
}

export async function runAgent (cfg: AgentConfig, deps: AgentDeps): Promise<AgentResult> {
  const policy = cfg.policy ?? DEFAULT_POLICY
  const clock = deps.clock ?? realClock
  const random = deps.random ?? cryptoRandom
  const { log } = deps
  const api = new ServerApi({ base: cfg.cmdline.server, clock, timeoutMs: policy.requestTimeoutMs, ...(deps.fetch !== undefined ? { fetch: deps.fetch } : {}) })
  const mode = cfg.cmdline.mode

  let tpm: Tpm | undefined
  let keys: TpmKeys | undefined
  let bootKey: BootKey | undefined
  let facts: HardwareFacts | undefined
  let carried: Challenge | undefined
  let pendingFirst: ServerRefusal | undefined
  let attested: (Attested & { rootfs: { url: string; sha256: string } }) | undefined
  let seed: NoCloudSeed | undefined
  let image: VerifiedImage | undefined
  let measurement: Measurement | undefined
  let mounted: MountedRoot | undefined
  let written: SeedWritten | undefined

  const needTpm = async (): Promise<{ tpm: Tpm; keys: TpmKeys; bootKey: BootKey; facts: HardwareFacts }> => {
    if (facts === undefined) {
      const hw = deps.hardware !== undefined ? { ...(await deps.hardware()), notes: [] as string[] } : await readHardware(cfg.sysfs)
      for (const n of hw.notes) log.info(mode === 'boot' ? 'attest' : 'discover', n)
      facts = { macs: hw.macs, hardware: hw.hardware, eventLog: hw.eventLog }
    }
    if (tpm === undefined) {
      try {
        tpm = await (deps.openTpm ?? Tpm.open)(cfg.tcti)
      } catch (e) {
        // The device node may not exist yet (module still loading): worth another try.
        throw new AgentError('AGENT_TPM', 'tpm', `opening the TPM (${cfg.tcti}): ${(e as Error).message}`, { retryable: true, cause: e })
      }
    }
    keys ??= await prepareKeys(tpm, log, { step: mode === 'boot' ? 'attest' : 'discover', ...(cfg.ekAlg !== undefined ? { ekAlg: cfg.ekAlg } : {}), ...(cfg.akAlg !== undefined ? { akAlg: cfg.akAlg } : {}) })
    bootKey ??= await createBootKey()
    return { tpm, keys, bootKey, facts }
  }
  const attestDeps = async () => {
    const t = await needTpm()
    return { d: { api, tpm: t.tpm, bootKey: t.bootKey, facts: t.facts, cmdline: cfg.cmdline, log }, keys: t.keys }
  }

  const step = async (state: AgentState): Promise<AgentEvent> => {
    switch (state) {
      case 'network':
        await waitForNetwork({ api, random, log }, policy.network)
        return { type: 'up', mode }
      case 'attest': {
        const { d, keys: k } = await attestDeps()
        const use = carried
        carried = undefined
        const o = await attestStep(d, k, use)
        if (o.kind === 'pending') {
          pendingFirst = o.refusal
          return { type: 'pending' }
        }
        if (o.kind === 'stale') {
          log.warn('attest', `the server now plans rootfs sha256:${o.planned.slice(0, 16)}…, not this boot's ${cfg.cmdline.image?.name ?? ''}@sha256:${cfg.cmdline.image?.sha256.slice(0, 16) ?? ''}…: rebooting to boot it with its own kernel`)
          return { type: 'stale' }
        }
        attested = o.attested
        return { type: 'attested' }
      }
      case 'discover': {
        const { d, keys: k } = await attestDeps()
        const o = await discoverStep(d, k)
        if (o.kind === 'known') return { type: 'known' }
        pendingFirst = o.refusal
        return { type: 'pending' }
      }
      case 'pending': {
        const { d, keys: k } = await attestDeps()
        const first = pendingFirst
        pendingFirst = undefined
        const ch = await waitForDecision(d, k, policy.pending, random, first)
        if (mode === 'discover') {
          log.info('pending', 'accepted: rebooting to boot as an enrolled node')
          return { type: 'known' }
        }
        carried = ch
        return { type: 'accepted' }
      }
      case 'secrets': {
        if (attested === undefined || bootKey === undefined) throw new AgentError('AGENT_INTERNAL', 'internal', 'secrets before attestation')
        try {
          seed = await fetchSecrets({ api, bootKey, log }, attested)
        } catch (e) {
          if (e instanceof AgentError && e.code === 'AGENT_TOKEN_EXPIRED') {
            log.warn('secrets', `${e.message}: attesting again`)
            return { type: 'expired' }
          }
          throw e
        }
        return { type: 'decrypted' }
      }
      case 'rootfs': {
        if (attested === undefined) throw new AgentError('AGENT_INTERNAL', 'internal', 'rootfs before attestation')
        try {
          await mkdir(cfg.workDir, { recursive: true, mode: 0o700 })
        } catch (e) {
          throw new AgentError('AGENT_ROOTFS_DOWNLOAD', 'download', `cannot create the work directory ${cfg.workDir}: ${(e as Error).message}`)
        }
        image = await downloadRootfs({ fetch: deps.fetch ?? fetch, clock, random, log }, cfg.workDir, attested.rootfs, policy.download)
        return { type: 'verified' }
      }
      case 'measure': {
        if (image === undefined || tpm === undefined) throw new AgentError('AGENT_INTERNAL', 'internal', 'measure before the image was verified')
        measurement = await measureRootfs({ tpm, log }, image)
        return { type: 'extended' }
      }
      case 'mount': {
        if (image === undefined) throw new AgentError('AGENT_INTERNAL', 'internal', 'mount before the image was verified')
        mounted = await mountRoot({ log, ...(deps.exec !== undefined ? { exec: deps.exec } : {}) }, { image: image.path, workDir: cfg.workDir, newRoot: cfg.newRoot, overlaySize: cfg.overlaySize })
        return { type: 'mounted' }
      }
      case 'seed': {
        if (attested === undefined || seed === undefined || measurement === undefined) throw new AgentError('AGENT_INTERNAL', 'internal', 'seed before secrets and measurement')
        written = await writeSeed({ log }, {
          newRoot: cfg.newRoot, runDir: cfg.runDir, seed, token: attested.token,
          record: {
            node: attested.node, groups: attested.groups, attestationId: attested.attestationId, tokenExpiresAt: attested.expiresAt,
            server: cfg.cmdline.server, rootfs: attested.rootfs, instanceId: seed.instanceId, measurement,
          },
        })
        return { type: 'written' }
      }
      default:
        throw new AgentError('AGENT_INTERNAL', 'internal', `no step for state ${state}`)
    }
  }

  const trace: AgentState[] = []
  let state: AgentState = INITIAL_STATE
  let attempt = 1
  let error: AgentError | undefined
  try {
    while (!FINAL_STATES.has(state)) {
      trace.push(state)
      let event: AgentEvent
      let err: AgentError | undefined
      try {
        event = await step(state)
      } catch (e) {
        err = asAgentError(e)
        const max = policy.maxAttempts[state as keyof typeof MAX_ATTEMPTS] ?? 1
        event = { type: 'error', failure: err.failure, retryable: err.retryable, attempt, maxAttempts: max }
      }
      const next = transition(state, event)
      if (next === undefined) {
        err = new AgentError('AGENT_INTERNAL', 'internal', `state ${state} does not accept event ${event.type}`)
        error = err
        log.error(state, `${err.message} [${err.code}]`)
        state = 'failed'
        break
      }
      if (err !== undefined && next === state) {
        const max = policy.maxAttempts[state as keyof typeof MAX_ATTEMPTS] ?? 1
        const delay = Math.max(fullJitter(policy.retry, attempt - 1, random), Math.min((err.retryAfter ?? 0) * 1000, 300_000))
        log.warn(state, `${err.message} [${err.code}]; try ${attempt + 1} of ${max} in ${secs(delay)}`)
        await clock.sleep(delay)
        attempt++
        continue
      }
      if (err !== undefined) {
        error = err
        const code = EXIT_CODES[err.failure]
        log.error(state, `${err.message} [${err.code}${err.serverCode !== undefined && !err.message.includes(err.serverCode) ? ` ${err.serverCode}` : ''}]; exit ${code}: ${hookAction(cfg.cmdline.shell)}`)
      }
      state = next
      attempt = 1
    }
  } finally {
    if (state !== 'done' && mounted !== undefined) {
      await unmountRoot({ log, ...(deps.exec !== undefined ? { exec: deps.exec } : {}) }, mounted).catch((e: unknown) => log.warn('mount', (e as Error).message))
      mounted = undefined
    }
    await tpm?.close().catch(() => undefined)
  }

  const final = state as 'done' | 'reboot' | 'failed'
  const exitClass: ExitClass = final === 'done' ? 'ok' : final === 'reboot' ? 'reboot' : error?.failure ?? 'internal'
  if (final === 'done') log.info('done', `${attested?.node ?? ''} is ready: switching root to ${cfg.newRoot}`)
  if (final === 'reboot') log.info('reboot', `exit ${EXIT_CODES.reboot}: the dracut hook reboots the node`)
  return {
    state: final,
    exitCode: EXIT_CODES[exitClass],
    ...(error !== undefined ? { error } : {}),
    trace,
    ...(attested !== undefined ? { attested } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(image !== undefined ? { image } : {}),
    ...(measurement !== undefined ? { measurement } : {}),
    ...(mounted !== undefined ? { mounted } : {}),
    ...(written !== undefined ? { written } : {}),
    ...(keys !== undefined ? { ekSha256: keys.ekSha256 } : {}),
  }
}
