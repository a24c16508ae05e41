/**
 * The store's share of one attestation, call by call: what AttestationService asks
 * of SqliteStore per attestation (the node by MAC, the TPM identity by EK, the
 * golden PCR values, the group-committed counters + audit entry), and the node's
 * planned boot it asks for at start and at finish (BootService.plan: the boot
 * configurations and the image), measured alone on a store with N enrolled nodes,
 * as main-thread CPU µs per call.
 *
 *   npx tsx bench/attest/store.ts [--nodes 2000] [--calls 20000] [--batch 64]
 *
 * Runs the sources through tsx (a side-by-side of one build against another is
 * bench/attest/run.ts --dist); figures move ±30% with the VM's neighbours, so it
 * runs each measurement three times and prints the lowest.
 */
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { BootService } from '../../server/boot/service.js'
import { IpxeScripts } from '../../server/boot/script.js'
import * as setup from '../../server/attest/setup.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import type { AuditDraft } from '../../server/store/store.js'

const argv = process.argv.slice(2)
const value = (f: string): string | undefined => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined }
const NODES = Number(value('--nodes') ?? 2000)
const CALLS = Number(value('--calls') ?? 20_000)
const BATCH = Number(value('--batch') ?? 64)
const ADMIN = { kind: 'admin' as const, id: 'bench', name: 'bench' }
const macOf = (i: number): string => `02:5e:${[(i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`
const hex = (s: string): string => createHash('sha256').update(s).digest('hex')

const dir = mkdtempSync(join(tmpdir(), 'netboot-bench-store-'))
try {
  const store = SqliteStore.open(join(dir, 'netboot.db'))
  const names = Array.from({ length: NODES }, (_, i) => `n${String(i).padStart(5, '0')}`)
  await store.importNodes(names.map((name, i) => ({ name, groups: ['compute'], interfaces: [{ mac: macOf(i) }] })), { createGroups: true, source: 'bench' }, ADMIN)
  const ids: number[] = []
  for (const [i, node] of names.entries()) {
    const idn = await store.addTpmIdentity({ node, ekSha256: hex(`ek${i}`), ekPublic: Buffer.alloc(314, i), policy: 'tofu', state: 'enrolled', macs: [macOf(i)], discovery: { hardware: {}, peer: '10.0.0.1' } },
      { actor: { kind: 'node', id: node }, action: 'enroll.tofu', target: node, outcome: 'ok', detail: { ek: hex(`ek${i}`) } })
    ids.push(idn.id)
    await store.putGoldenPcrs([0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ scope: 'node' as const, target: node, bank: 'sha256' as const, pcr, value: hex(`${node}${pcr}`), state: 'approved' as const, source: 'bench' })),
      { actor: { kind: 'node', id: node }, action: 'pcr.learn', target: node, outcome: 'ok', detail: { values: 8 } })
  }

  /** Main-thread CPU µs per call of `f`, lowest of three runs of `n` calls. */
  const measure = async (label: string, n: number, f: (i: number) => Promise<unknown>): Promise<void> => {
    const runs: number[] = []
    for (let r = 0; r < 3; r++) {
      const c0 = process.cpuUsage()
      for (let i = 0; i < n; i++) await f(i)
      const c = process.cpuUsage(c0)
      runs.push((c.user + c.system) / n)
    }
    process.stdout.write(`${label.padEnd(60)} ${Math.min(...runs).toFixed(1).padStart(7)} µs  (runs ${runs.map((x) => x.toFixed(1)).join(', ')})\n`)
  }

  const finishDetail = (i: number): AuditDraft => {
    const node = names[i % NODES]!
    return {
      actor: { kind: 'node', id: node }, action: 'attest.finish', target: node, outcome: 'ok',
      detail: {
        peer: '10.1.0.1', attestation: randomUUID(), ek: hex(`ek${i % NODES}`), ak: `000b${hex(`ak${i}`)}`, image: null,
        pcrs: Object.fromEntries([0, 1, 2, 3, 4, 5, 6, 7].map((p) => [p, hex(`${node}${p}`)])), eventLog: hex('log'),
        counters: { resetCount: i, restartCount: 0 }, events: 114, policy: 'approved values of node', token: randomUUID(), jkt: 'x'.repeat(43), expiresAt: 1_800_000_000,
      },
    }
  }

  process.stdout.write(`store calls per attestation, ${NODES} nodes (${new Date().toISOString()})\n`)
  await measure('findNodeByMac', CALLS, async (i) => await store.findNodeByMac(macOf(i % NODES)))
  await measure('findTpmIdentity', CALLS, async (i) => await store.findTpmIdentity(hex(`ek${i % NODES}`)))
  await measure('goldenPcrsFor (node, sha256: 8 rows)', CALLS, async (i) => await store.goldenPcrsFor({ node: names[i % NODES]! }, 'sha256'))
  // the entries are made before the clock runs: only the store's work is measured
  const batches = Math.max(1, Math.floor(CALLS / 4 / BATCH))
  const drafts = Array.from({ length: 3 * batches * BATCH }, (_, i) => finishDetail(i))
  let k = 0
  await measure(`recordAttestation, ${BATCH} per group commit (per batch)`, batches, async () => {
    await Promise.all(Array.from({ length: BATCH }, () => { const i = k++; return store.recordAttestation(ids[i % NODES]!, { resetCount: i, restartCount: 0 }, drafts[i]!) }))
  })
  process.stdout.write(`  (that line is per batch of ${BATCH}: divide by ${BATCH})\n`)
  const single = drafts.slice(0, Math.floor(CALLS / 12))
  await measure('audit (one entry, own transaction)', single.length, async (i) => await store.audit(single[i]!))
  await store.addImage({ name: 'compute', version: '1', kernelSha256: 'a'.repeat(64), initrdSha256: 'b'.repeat(64), rootfsSha256: 'c'.repeat(64), params: 'quiet' }, ADMIN)
  await store.setBootConfig('default', '', { image: 'compute' }, ADMIN)
  const boot = new BootService(store, await IpxeScripts.load(), { publicUrl: 'http://127.0.0.1:8080', unknown: { action: 'reboot' } }, pino({ level: 'silent' }))
  const nodes = await store.listNodes()
  const plan = async (i: number): Promise<unknown> => setup.plannedBoot(await boot.plan(nodes[i % NODES]!))
  await measure('planned boot (BootService.plan), uncached', CALLS, plan)
  const kept = setup.planFor(store, async (n) => setup.plannedBoot(await boot.plan(n)))
  await measure('planned boot, kept (planFor)', CALLS, async (i) => await kept(nodes[i % NODES]!))
  const v = await store.verifyAudit()
  if (!v.ok) throw new Error(`audit chain broken: ${JSON.stringify(v)}`)
  process.stdout.write(`audit chain verifies: ${v.entries} entries\n`)
  await store.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
