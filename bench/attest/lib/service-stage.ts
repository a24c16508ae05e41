/**
 * Stage (b): attestations through AttestationService (dist/), no HTTP. Each round
 * runs in phases over batches of nodes: every start (timed, `concurrency` calls
 * in flight), then the soft TPMs' side for the batch (in their own thread,
 * fleet-thread.ts; timed apart, the server idle), then every finish (timed). The server's figures are the start and
 * finish phases only: attestations/s = attestations ÷ (start + finish wall
 * time), CPU µs = this process's CPU (all threads, the libuv pool included) in
 * those phases ÷ attestations.
 *
 * Rounds: the fleet's first boot (tofu enrollment, PCR policy `learn` records
 * each node's values), an admin approves every node's values, then reboot rounds
 * under `enforce` (the steady state of a reboot storm).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import type { AttestationConfig, AttestationService, PlannedBoot } from '../../../server/attest/service.js'
import type { Node } from '../../../server/inventory/model.js'
import type { AttestFinishRequest } from '../../../server/attest/wire.js'
import type { SqliteStore } from '../../../server/store/sqlite/sqlite-store.js'
import type { KeyKind } from '../../../test/sim/soft-tpm.js'
import type { Dist } from './dist.js'
import { FleetThread, type FleetNode } from './fleet-thread.js'
import { failures, pool, round, span, type Span } from './measure.js'

export const PCRS = [0, 1, 2, 3, 4, 5, 6, 7]
const ADMIN = { kind: 'admin' as const, id: 'bench', name: 'bench' }
export const PUBLIC_URL = 'http://127.0.0.1:8080'

export interface PhaseTotals { wallMs: number; cpuMs: number; mainCpuMs: number; eluWeighted: number; gcMs: number; othersCoreMs: number }

export interface RoundResult {
  kind: KeyKind
  round: string
  policy: string
  nodes: number
  ok: number
  failures: Record<string, number>
  /** attestations ÷ server wall time (start + finish phases) */
  attestationsPerSec: number
  /** server CPU (all threads) per attestation, start + finish */
  cpuUsPerAttestation: number
  /** the main thread's (the event loop's) share of it: what bounds throughput when the other threads have cores of their own */
  mainCpuUsPerAttestation: number
  startCpuUs: number
  finishCpuUs: number
  /** wall time per attestation the server was busy with, µs */
  wallUsPerAttestation: number
  /** event-loop utilisation during the server phases */
  elu: number
  /** garbage-collection pauses (wall time as V8 reports them; inflated when the machine is busy) per attestation */
  gcPauseUsPerAttestation: number
  /** other processes' CPU during the server phases, cores */
  othersCores: number
  /** the soft TPMs' side (activate, boot key, quote), CPU µs per attestation; not in the figures above */
  tpmUsPerAttestation: number
  note?: string
}

function add (t: PhaseTotals, s: Span): void {
  t.wallMs += s.wallMs
  t.cpuMs += s.cpuMs
  t.mainCpuMs += s.mainCpuMs
  t.eluWeighted += s.elu * s.wallMs
  t.gcMs += s.gcMs
  t.othersCoreMs += s.othersCores * s.wallMs
}
const zero = (): PhaseTotals => ({ wallMs: 0, cpuMs: 0, mainCpuMs: 0, eluWeighted: 0, gcMs: 0, othersCoreMs: 0 })

export interface Env {
  readonly dir: string
  readonly dbPath: string
  readonly keysDir: string
  readonly store: SqliteStore
  /** the nodes' TPMs, in a thread of their own */
  readonly fleet: FleetThread
  close (): Promise<void>
}

/** A fresh store with the fleet's nodes in the inventory (group `compute`). */
export async function makeEnv (d: Dist, kind: KeyKind, nodes: number, rounds: number): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), `netboot-bench-attest-${kind}-`))
  const fleet = await FleetThread.open(kind, nodes, kind === 'rsa' ? 'r' : 'e', rounds)
  const dbPath = join(dir, 'netboot.db')
  const store = d.sqlite.SqliteStore.open(dbPath)
  await store.importNodes(fleet.nodes.map((n) => ({ name: n.name, groups: ['compute'], interfaces: [{ mac: n.mac }] })), { createGroups: true, source: 'bench' }, ADMIN)
  return {
    dir, dbPath, keysDir: join(dir, 'keys'), store, fleet,
    close: async () => { await fleet.close(); await store.close(); rmSync(dir, { recursive: true, force: true }) },
  }
}

/** `verifyThreads`: AttestationConfig.verifyThreads (0: in place; undefined: the service's default). */
export function attestationConfig (policy: 'learn' | 'enforce', verifyThreads?: number): AttestationConfig {
  return {
    enrollment: 'tofu', requireEkCert: false, anchors: [], pcrs: PCRS, bank: 'sha256', pcrPolicy: policy,
    discover: true, sessionTtlMs: 60_000, maxSessions: 50_000, ...(verifyThreads !== undefined ? { verifyThreads } : {}),
  }
}

/** The admin's approval of every node's learned values (`netboot pcr approve`), between rounds; how many nodes had some. */
export async function approveAll (store: SqliteStore, fleet: readonly FleetNode[]): Promise<number> {
  let approved = 0
  for (const n of fleet) {
    try {
      await store.approveGoldenPcrs('node', n.name, ADMIN)
      approved++
    } catch (e) {
      if ((e as { code?: string }).code !== 'NOT_FOUND') throw e // a node whose first boot failed learned nothing
    }
  }
  return approved
}

/**
 * What every node boots from the reboot rounds on (an image and the default boot
 * configuration): the service then asks for each node's plan (image, rootfs digest)
 * at start and at finish, as `netboot serve` does. Not before the first boot: with an
 * image, learn mode records the first node's values for the image, and these nodes
 * differ in PCR 1 (each measures its own MAC), so the admin approves each node's own.
 */
export async function planImage (store: SqliteStore): Promise<void> {
  await store.addImage({ name: 'compute', version: '1', kernelSha256: 'a'.repeat(64), initrdSha256: 'b'.repeat(64), rootfsSha256: 'c'.repeat(64), params: 'quiet' }, ADMIN)
  await store.setBootConfig('default', '', { image: 'compute' }, ADMIN)
}

export interface RoundOptions { concurrency: number; batch: number; deadlineMs: number }

/** One attestation of every node of the fleet through `svc`, in batches (see the header). */
export async function serviceRound (svc: AttestationService, fleet: FleetThread, o: RoundOptions, label: { kind: KeyKind; round: string; policy: string }): Promise<RoundResult> {
  const start = zero()
  const finish = zero()
  let tpmMs = 0
  let ok = 0
  let done = 0
  const fails: Record<string, number> = {}
  const merge = (f: Record<string, number>): void => { for (const [k, v] of Object.entries(f)) fails[k] = (fails[k] ?? 0) + v }
  const t0 = Date.now()
  const n = fleet.nodes.length
  for (let b = 0; b < n && Date.now() - t0 < o.deadlineMs; b += o.batch) {
    const size = Math.min(o.batch, n - b)
    const reqs = await fleet.startRequests(b, b + size)
    let s = span()
    const chs = await pool(reqs, o.concurrency, async (r, i) => await svc.start(r, `10.1.${(b + i) >> 8 & 0xff}.${(b + i) & 0xff}`))
    add(start, s())
    merge(failures(chs))

    const tp = span()
    const fins = (await fleet.finishes(b, chs.map((c) => c.status === 'fulfilled' ? c.value : null))).filter((f) => f !== null)
    tpmMs += tp().cpuMs

    s = span()
    const rs = await pool(fins, o.concurrency, async (r) => await svc.finish(r, '10.1.0.1'))
    add(finish, s())
    merge(failures(rs))
    ok += rs.filter((r) => r.status === 'fulfilled').length
    done += size
  }
  const wallMs = start.wallMs + finish.wallMs
  const per = Math.max(1, ok)
  return {
    ...label,
    nodes: done,
    ok,
    failures: fails,
    attestationsPerSec: round((ok * 1000) / wallMs),
    cpuUsPerAttestation: round(((start.cpuMs + finish.cpuMs) * 1000) / per),
    mainCpuUsPerAttestation: round(((start.mainCpuMs + finish.mainCpuMs) * 1000) / per),
    startCpuUs: round((start.cpuMs * 1000) / per),
    finishCpuUs: round((finish.cpuMs * 1000) / per),
    wallUsPerAttestation: round((wallMs * 1000) / per),
    elu: round((start.eluWeighted + finish.eluWeighted) / wallMs, 2),
    gcPauseUsPerAttestation: round(((start.gcMs + finish.gcMs) * 1000) / per),
    othersCores: round((start.othersCoreMs + finish.othersCoreMs) / wallMs, 2),
    tpmUsPerAttestation: round((tpmMs * 1000) / per),
    ...(done < n ? { note: `stopped after ${done} of ${n} nodes at the ${o.deadlineMs / 1000} s deadline` } : {}),
  }
}

export async function makeService (d: Dist, env: Env, policy: 'learn' | 'enforce', verifyThreads?: number): Promise<AttestationService> {
  const ring = await d.keys.KeyRing.open({ dir: env.keysDir, rotateAfterMs: 30 * 86_400_000, maxTokenTtlMs: 900_000 })
  const tokens = new d.tokens.NodeTokens(ring, PUBLIC_URL, 900)
  // the production logger (redaction, ISO time) writing to /dev/null: log lines cost what they cost in `netboot serve`
  const log = d.log.createLogger('info', pino.destination({ dest: '/dev/null', sync: false }))
  // the reboot rounds' service plans each node's boot (planImage) as server/attest/setup.ts wires it in the build
  // under test (kept per node since planFor); the first boot's has no boot service, as before planImage
  const boot = new d.boot.BootService(env.store, await d.script.IpxeScripts.load(), { publicUrl: PUBLIC_URL, unknown: { action: 'reboot' } }, log)
  const plan = async (node: Node): Promise<PlannedBoot> => d.setup.plannedBoot(await boot.plan(node))
  const rootfs = policy === 'learn' ? undefined : d.setup.planFor !== undefined ? d.setup.planFor(env.store, plan) : plan
  return new d.service.AttestationService(attestationConfig(policy, verifyThreads), env.store, tokens, log.child({ component: 'attest' }), rootfs)
}
