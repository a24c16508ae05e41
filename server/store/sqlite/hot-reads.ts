/**
 * What every attestation reads, kept in memory by SqliteStore: the node by MAC, the
 * TPM identity by EK, the golden PCR values by (node, image, bank). Each is an
 * indexed lookup of 10-25 µs; kept, about one.
 *
 * Correctness rests on the store being the only writer of these tables: the server
 * process's SqliteStore (the CLI's `--local` commands write admin tokens and audit
 * entries only). Within it:
 * - every change an admin or the system makes moves the store's generation
 *   (appendAudit), which empties all three maps at the next read;
 * - the writes that nodes cause, which leave the generation alone, update or drop
 *   what they touch: a new TPM identity (tofu, discovery) drops its EK; an
 *   attestation's committed counters replace the cached identity's; learned or
 *   approved PCR values drop every golden entry.
 * Misses are not kept. Entries are frozen: callers share them.
 */
import type { Node } from '../../inventory/model.js'
import type { GoldenPcr, TpmIdentity } from '../store.js'

/** Entries per map; a full map is emptied (a fleet larger than this reads from SQLite part of the time). */
const MAX_ENTRIES = 100_000

export class HotReads {
  private generation = -1
  private readonly nodes = new Map<string, Node>()
  private readonly identities = new Map<string, TpmIdentity>()
  /** identity id → EK digest, to apply counters by id */
  private readonly ekById = new Map<number, string>()
  private readonly golden = new Map<string, readonly GoldenPcr[]>()

  /** Empties everything when the store's generation moved since the last call. */
  at (generation: number): this {
    if (generation !== this.generation) {
      this.clear()
      this.generation = generation
    }
    return this
  }

  clear (): void {
    this.nodes.clear()
    this.identities.clear()
    this.ekById.clear()
    this.golden.clear()
  }

  node (mac: string): Node | undefined { return this.nodes.get(mac) }
  putNode (mac: string, n: Node): Node {
    const frozen = Object.freeze({
      ...n, groups: Object.freeze([...n.groups]) as string[], interfaces: Object.freeze(n.interfaces.map((i) => Object.freeze({ ...i }))) as Node['interfaces'],
      ...(n.dhcp !== undefined ? { dhcp: deepFreeze(n.dhcp) } : {}),
    })
    bounded(this.nodes).set(mac, frozen)
    return frozen
  }

  identity (ekSha256: string): TpmIdentity | undefined { return this.identities.get(ekSha256) }
  putIdentity (i: TpmIdentity): TpmIdentity {
    const frozen = freezeIdentity(i)
    if (this.identities.size >= MAX_ENTRIES) { this.identities.clear(); this.ekById.clear() }
    this.identities.set(i.ekSha256, frozen)
    this.ekById.set(i.id, i.ekSha256)
    return frozen
  }

  dropIdentity (ekSha256: string): void {
    const i = this.identities.get(ekSha256)
    if (i !== undefined) this.ekById.delete(i.id)
    this.identities.delete(ekSha256)
  }

  /** After a commit that wrote these counters for identity `id`. */
  counters (id: number, c: { resetCount: number; restartCount: number }, at: string): void {
    const ek = this.ekById.get(id)
    const i = ek === undefined ? undefined : this.identities.get(ek)
    // the kept identity's MACs and discovery report are frozen already: they are shared, not copied again
    if (i !== undefined) this.identities.set(i.ekSha256, Object.freeze({ ...i, resetCount: c.resetCount, restartCount: c.restartCount, lastAttestedAt: at }))
  }

  goldenFor (key: string): readonly GoldenPcr[] | undefined { return this.golden.get(key) }
  putGolden (key: string, values: readonly GoldenPcr[]): readonly GoldenPcr[] {
    const frozen = Object.freeze(values.map((v) => Object.freeze({ ...v })))
    bounded(this.golden).set(key, frozen)
    return frozen
  }

  dropGolden (): void { this.golden.clear() }
}

function bounded<K, V> (m: Map<K, V>): Map<K, V> {
  if (m.size >= MAX_ENTRIES) m.clear()
  return m
}

/** Buffers (ekPublic, ekCert) cannot be frozen; the identity, its MACs and its discovery report are. */
function freezeIdentity (i: TpmIdentity): TpmIdentity {
  return Object.freeze({
    ...i, macs: Object.freeze([...i.macs]) as string[],
    ...(i.discovery !== undefined ? { discovery: deepFreeze(i.discovery) } : {}),
  })
}

function deepFreeze<T> (v: T): T {
  if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) {
    for (const x of Object.values(v as object)) deepFreeze(x)
    Object.freeze(v)
  }
  return v
}
