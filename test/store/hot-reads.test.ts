/**
 * SqliteStore keeps the attestation path's reads in memory (server/store/sqlite/
 * hot-reads.ts): the node by MAC, the TPM identity by EK, the golden PCR values.
 * After every kind of write that can change them, each kept answer must equal what
 * a store opened afresh on the same file (nothing kept) reads from SQLite.
 */
import { join } from 'node:path'
import t from 'tap'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import type { Actor, NodeSpec } from '../../server/inventory/model.js'
import type { AuditDraft, GoldenPcr } from '../../server/store/store.js'
import { tempDir } from '../helpers/tmp.js'

const alice: Actor = { kind: 'admin', id: 'aaaaaaaaaa', name: 'alice' }
const nodeActor = (n: string): Actor => ({ kind: 'node', id: n })
const draft = (action: string, node: string): AuditDraft => ({ actor: nodeActor(node), action, target: node, outcome: 'ok', detail: { why: 'test' } })
const hex = (c: string): string => c.repeat(64)
const spec = (name: string, macs: string[], groups: string[] = []): NodeSpec => ({ name, groups, interfaces: macs.map((mac) => ({ mac })) })
const value = (target: string, pcr: number, v: string, scope: 'node' | 'image' = 'node', state: GoldenPcr['state'] = 'learned'): Omit<GoldenPcr, 'createdAt'> =>
  ({ scope, target, bank: 'sha256', pcr, value: hex(v), state, source: 'test' })

const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04', '02:00:00:00:00:0d']
const EKS = [hex('a'), hex('b'), hex('c')]
const GOLDEN: { node: string; image?: string }[] = [{ node: 'n1' }, { node: 'n1', image: 'img@1' }, { node: 'n2', image: 'img@1' }]

t.test('every write that changes a kept read is seen by the next read', async (t) => {
  const path = join(tempDir(t), 'hot.db')
  const s = SqliteStore.open(path)
  t.teardown(async () => await s.close())
  let checks = 0
  /** Reads every key through `s` (filling what it keeps) and compares with a fresh store. */
  const same = async (label: string): Promise<void> => {
    const fresh = SqliteStore.open(path)
    try {
      for (const mac of MACS) t.strictSame(await s.findNodeByMac(mac), await fresh.findNodeByMac(mac), `${label}: node by ${mac}`)
      for (const ek of EKS) t.strictSame(await s.findTpmIdentity(ek), await fresh.findTpmIdentity(ek), `${label}: identity ${ek.slice(0, 4)}`)
      for (const g of GOLDEN) t.strictSame(await s.goldenPcrsFor(g, 'sha256'), await fresh.goldenPcrsFor(g, 'sha256'), `${label}: golden ${JSON.stringify(g)}`)
      checks++
    } finally {
      await fresh.close()
    }
  }

  await s.createGroup('compute', '', alice)
  await s.createNode(spec('n1', [MACS[0]!], ['compute']), alice)
  await same('createNode')
  await s.createNode(spec('n2', [MACS[1]!]), alice)
  await same('second createNode')
  t.equal((await s.findNodeByMac(MACS[1]!))?.name, 'n2')

  await s.updateNodes(['n1'], { addGroups: [], interfaces: [{ mac: MACS[0]! }, { mac: MACS[2]! }] }, alice)
  await same('updateNodes: a MAC added')
  t.equal((await s.findNodeByMac(MACS[2]!))?.name, 'n1')
  await s.importNodes([spec('n1', [MACS[1]!], ['compute']), spec('n2', [MACS[0]!])], { createGroups: false, source: 'swap.yaml' }, alice)
  await same('importNodes: n1 and n2 swap MACs')
  t.equal((await s.findNodeByMac(MACS[0]!))?.name, 'n2')
  t.equal(await s.findNodeByMac(MACS[2]!), undefined, 'a MAC an import removed is gone')
  await s.deleteGroup('compute', { force: true }, alice)
  await same('deleteGroup --force')
  t.same((await s.findNodeByMac(MACS[1]!))?.groups, [])

  // identities: tofu enrolment and discovery are written with a node as the actor (no generation change)
  const tofu = await s.addTpmIdentity({ node: 'n1', ekSha256: EKS[0]!, ekPublic: Buffer.from('ek-a'), policy: 'tofu', state: 'enrolled', macs: [MACS[1]!] }, draft('enroll.tofu', 'n1'))
  await same('addTpmIdentity (tofu, by the node)')
  await s.recordAttestation(tofu.id, { resetCount: 3, restartCount: 1 }, draft('attest.finish', 'n1'))
  await same('recordAttestation')
  t.equal((await s.findTpmIdentity(EKS[0]!))?.resetCount, 3, 'the kept identity has the committed counters')
  await Promise.all([4, 5, 6].map(async (r) => await s.recordAttestation(tofu.id, { resetCount: r, restartCount: 0 }, draft('attest.finish', 'n1'))))
  await same('three attestations in one group commit')
  t.equal((await s.findTpmIdentity(EKS[0]!))?.resetCount, 6)
  await s.recordTpmCounters(tofu.id, { resetCount: 7, restartCount: 2 })
  await same('recordTpmCounters')
  const found = await s.addTpmIdentity({ ekSha256: EKS[1]!, policy: 'tofu', state: 'pending', macs: [MACS[3]!], discovery: { hardware: { vendor: 'x' }, peer: '10.0.0.9' } }, draft('enroll.discover', 'unknown'))
  await same('addTpmIdentity (discovery)')
  await s.decideTpmIdentity(found.id, { state: 'enrolled', node: 'n2' }, alice)
  await same('decideTpmIdentity: accepted as n2, its MAC joins n2')
  t.equal((await s.findNodeByMac(MACS[3]!))?.name, 'n2')
  t.equal((await s.findTpmIdentity(EKS[1]!))?.state, 'enrolled')
  await s.decideTpmIdentity(tofu.id, { state: 'rejected' }, alice)
  await same('decideTpmIdentity: rejected')
  t.equal((await s.findTpmIdentity(EKS[0]!))?.state, 'rejected')

  // golden values: learned by a node (no generation change), approved by an admin
  await s.putGoldenPcrs([value('n1', 0, '1'), value('n1', 7, '2')], draft('pcr.learn', 'n1'))
  await same('putGoldenPcrs (learned, by the node)')
  await s.putGoldenPcrs([value('n1', 0, '3')], draft('pcr.learn', 'n1'))
  await same('putGoldenPcrs replaces a value')
  t.equal((await s.goldenPcrsFor({ node: 'n1' }, 'sha256'))[0]?.value, hex('3'))
  await s.putGoldenPcrs([value('img@1', 4, '4', 'image')], { actor: alice, action: 'pcr.set', target: 'image:img@1', detail: {} })
  await same('putGoldenPcrs for an image')
  t.equal((await s.goldenPcrsFor({ node: 'n2', image: 'img@1' }, 'sha256')).length, 1)
  await s.approveGoldenPcrs('node', 'n1', alice)
  await same('approveGoldenPcrs')
  t.same((await s.goldenPcrsFor({ node: 'n1' }, 'sha256')).map((g) => g.state), ['approved', 'approved'])

  await s.deleteNodes(['n2'], alice)
  await same('deleteNodes: its MACs and (cascade) its identities go')
  t.equal(await s.findNodeByMac(MACS[0]!), undefined)
  t.equal(await s.findTpmIdentity(EKS[1]!), undefined)
  t.equal(checks, 17, 'every step was compared')
})

t.test('what the store keeps is shared: callers cannot change it', async (t) => {
  const s = SqliteStore.open(join(tempDir(t), 'frozen.db'))
  t.teardown(async () => await s.close())
  await s.createGroup('g', '', alice)
  await s.createNode({ ...spec('n1', [MACS[0]!], ['g']), dhcp: { dns: ['10.0.0.53'] } }, alice)
  await s.addTpmIdentity({ node: 'n1', ekSha256: EKS[0]!, policy: 'tofu', state: 'enrolled', macs: [MACS[0]!], discovery: { hardware: { a: 1 } } }, draft('enroll.tofu', 'n1'))
  await s.putGoldenPcrs([value('n1', 0, '1')], draft('pcr.learn', 'n1'))
  const n = (await s.findNodeByMac(MACS[0]!))!
  t.throws(() => { (n.groups).push('x') }, TypeError, 'groups')
  t.throws(() => { (n.dhcp!.dns as string[]).push('x') }, TypeError, 'DHCP overrides')
  const i = (await s.findTpmIdentity(EKS[0]!))!
  t.throws(() => { i.macs.push('x') }, TypeError, 'identity MACs')
  const g = await s.goldenPcrsFor({ node: 'n1' }, 'sha256')
  t.throws(() => { g.push(g[0]!) }, TypeError, 'golden values')
  t.same((await s.findNodeByMac(MACS[0]!))!.groups, ['g'])
})
