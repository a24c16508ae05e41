/**
 * Attestation asks for a node's planned boot (its image, rootfs digest, UKI) at
 * start and at finish; planFor (server/attest/setup.ts) keeps each node's plan
 * while the store's generation stands. After every admin change a plan derives
 * from, the kept plan must equal a plan made afresh by the real BootService.
 */
import { join } from 'node:path'
import pino from 'pino'
import t from 'tap'
import { BootService } from '../../server/boot/service.js'
import { IpxeScripts } from '../../server/boot/script.js'
import { planFor, plannedBoot } from '../../server/attest/setup.js'
import type { PlannedBoot } from '../../server/attest/service.js'
import type { Actor, Node } from '../../server/inventory/model.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { tempDir } from '../helpers/tmp.js'

const alice: Actor = { kind: 'admin', id: 'aaaaaaaaaa', name: 'alice' }
const hex = (c: string): string => c.repeat(64)

t.test('a kept plan follows images, boot configurations and the node', async (t) => {
  const store = SqliteStore.open(join(tempDir(t), 'p.db'))
  t.teardown(async () => await store.close())
  const boot = new BootService(store, await IpxeScripts.load(), { publicUrl: 'http://10.0.0.1:8080', unknown: { action: 'reboot' } }, pino({ level: 'silent' }))
  let plans = 0
  const kept = planFor(store, async (node) => { plans++; return plannedBoot(await boot.plan(node)) })
  const fresh = async (node: Node): Promise<PlannedBoot> => plannedBoot(await boot.plan(node))
  const node = async (): Promise<Node> => (await store.getNode('n1'))!

  await store.createGroup('gpu', '', alice)
  await store.createNode({ name: 'n1', groups: ['gpu'], interfaces: [{ mac: '02:00:00:00:00:01' }] }, alice)
  await store.addImage({ name: 'compute', version: '1', kernelSha256: hex('1'), initrdSha256: hex('2'), rootfsSha256: hex('3'), params: '' }, alice)
  await store.setBootConfig('default', '', { image: 'compute' }, alice)

  const first = await kept(await node())
  t.strictSame(first, await fresh(await node()))
  t.match(first.imageRef, /^compute@sha256:3{64}$/)
  t.strictSame(await kept(await node()), first, 'asked again')
  t.equal(plans, 1, 'planned once for two asks')
  await store.audit({ actor: { kind: 'node', id: 'n1' }, action: 'attest.finish', target: 'n1', detail: {} })
  await kept(await node())
  t.equal(plans, 1, "a node's own audit entry changes nothing a plan derives from")

  await store.addImage({ name: 'compute', version: '2', kernelSha256: hex('4'), initrdSha256: hex('5'), rootfsSha256: hex('6'), params: 'quiet', ukiSha256: hex('7'), ukiAuthenticode: { sha1: 'a'.repeat(40), sha256: hex('8'), sha384: 'b'.repeat(96), sha512: 'c'.repeat(128) } }, alice)
  const v2 = await kept(await node())
  t.strictSame(v2, await fresh(await node()), 'a newer image version')
  t.match(v2.rootfsSha256, hex('6'))
  t.equal(v2.uki?.sha256, hex('7'))

  await store.addImage({ name: 'gpu', version: '1', kernelSha256: hex('9'), initrdSha256: hex('a'), params: '' }, alice)
  await store.setBootConfig('group', 'gpu', { image: 'gpu@1', params: 'nvidia.modeset=1' }, alice)
  const g = await kept(await node())
  t.strictSame(g, await fresh(await node()), "the node's group gets its own image")
  t.match(g.imageRef, /^gpu@sha256:a{64}$/)

  await store.updateNodes(['n1'], { removeGroups: ['gpu'] }, alice)
  t.strictSame(await kept(await node()), await fresh(await node()), 'the node leaves the group')
  t.match((await kept(await node())).imageRef, /^compute@/)

  await store.setBootConfig('node', 'n1', { params: 'console=ttyS0' }, alice)
  t.strictSame(await kept(await node()), await fresh(await node()), 'node parameters')

  await store.deleteBootConfig('default', '', alice)
  await t.rejects(kept(await node()), { code: 'BOOT_NO_IMAGE' }, 'no image any more')
  await t.rejects(fresh(await node()), { code: 'BOOT_NO_IMAGE' })
  t.ok(Object.isFrozen(g), 'a kept plan is shared, frozen')
})

t.test('a failed plan is not kept; a plan made while the generation moved is not served', async (t) => {
  const store = { generation: 0 }
  let calls = 0
  const kept = planFor(store, async () => {
    calls++
    if (calls === 1) throw new Error('store busy')
    return { imageRef: `img@${calls}` }
  })
  const n = { name: 'n1' } as Node
  await t.rejects(kept(n), /store busy/)
  t.equal((await kept(n)).imageRef, 'img@2', 'the failure was not kept')
  t.equal((await kept(n)).imageRef, 'img@2')
  store.generation++
  t.equal((await kept(n)).imageRef, 'img@3', 'a new generation plans again')
  t.equal(calls, 3)
})
