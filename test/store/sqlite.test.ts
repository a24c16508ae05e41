import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { migrations } from '../../server/store/sqlite/migrations.js'
import { parseNodesFile } from '../../server/inventory/nodes-file.js'
import type { Actor, NodeSpec } from '../../server/inventory/model.js'
import { tempDir } from '../helpers/tmp.js'

const alice: Actor = { kind: 'admin', id: 'aaaaaaaaaa', name: 'alice' }
const bootcamp = parseNodesFile(readFileSync(new URL('../fixtures/inventory/bootcamp-interfaces.yaml', import.meta.url), 'utf8'), 'bootcamp.yaml')
const spec = (name: string, mac: string, ip?: string, extra: Partial<NodeSpec> = {}): NodeSpec =>
  ({ name, groups: [], interfaces: [{ mac, ...(ip !== undefined ? { ip } : {}) }], ...extra })

t.test('on disk: WAL, foreign keys, migrations, and a restart keeps everything', async (t) => {
  const path = join(tempDir(t), 'db', 'netboot.db')
  let s = SqliteStore.open(path)
  t.equal(s.schemaVersion, migrations.at(-1)!.version)
  const r = await s.importNodes(bootcamp, { createGroups: true, source: 'bootcamp.yaml' }, alice)
  t.equal(r.created.length, 9)
  t.same(r.groupsCreated, ['compute'])
  await s.close()

  const raw = new Database(path, { readonly: true })
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal')
  raw.close()

  s = SqliteStore.open(path)
  t.teardown(async () => await s.close())
  const nodes = await s.listNodes()
  t.same(nodes.map((n) => n.name), bootcamp.map((b) => b.name), 'same nodes, in nid order')
  t.same(nodes[0], { ...bootcamp[0], createdAt: nodes[0]!.createdAt, updatedAt: nodes[0]!.updatedAt })
  t.equal((await s.findNodeByMac('ec:e7:a7:05:a1:fc'))?.name, 'nid001')
  t.equal((await s.findNodeByMac('02:00:00:b0:00:02'))?.name, 'nid002', 'BMC MACs resolve to their node')
  t.equal((await s.findNodeByIp('172.16.0.103'))?.name, 'nid003')
  t.equal(await s.findNodeByMac('02:ff:ff:ff:ff:ff'), undefined)
  t.equal((await s.getGroup('compute'))?.members, 9)
  t.equal((await s.verifyAudit()).ok, true)
  t.same((await s.listAudit()).map((e) => e.action), ['group.create', 'node.import'])
})

t.test('import is all or nothing and idempotent', async (t) => {
  const s = SqliteStore.open(join(tempDir(t), 'n.db'))
  t.teardown(async () => await s.close())
  await s.createGroup('compute', '', alice)
  await s.createNode(spec('head', '02:00:00:00:00:99', '172.16.0.250'), alice)

  // the ninth node collides with an existing node's IP: nothing of the file lands
  const clash = bootcamp.map((b, i) => (i === 8 ? { ...b, interfaces: [{ mac: b.interfaces[0]!.mac, ip: '172.16.0.250' }] } : b))
  await t.rejects(s.importNodes(clash, { createGroups: false, source: 'x' }, alice), { code: 'DUPLICATE_IP', message: /172\.16\.0\.250 of node 'nid009' is already used by node 'head'/ })
  t.same((await s.listNodes()).map((n) => n.name), ['head'])
  t.equal((await s.listAudit()).filter((e) => e.action === 'node.import').length, 0, 'no audit entry for a failed import')

  await t.rejects(s.importNodes([{ ...bootcamp[0]!, groups: ['nosuch'] }], { createGroups: false, source: 'x' }, alice), { code: 'GROUP_NOT_FOUND' })

  let r = await s.importNodes(bootcamp, { createGroups: false, source: 'x' }, alice)
  t.equal(r.created.length, 9)
  r = await s.importNodes(bootcamp, { createGroups: false, source: 'x' }, alice)
  t.same([r.created.length, r.updated.length, r.unchanged.length], [0, 0, 9], 'a second import changes nothing')

  // two nodes swap MACs within one import
  const [a, b] = [bootcamp[0]!, bootcamp[1]!]
  const swapped = [{ ...a, interfaces: [{ ...b.interfaces[0]!, ip: a.interfaces[0]!.ip! }] }, { ...b, interfaces: [{ ...a.interfaces[0]!, ip: b.interfaces[0]!.ip! }] }]
  r = await s.importNodes(swapped, { createGroups: false, source: 'x' }, alice)
  t.same(r.updated, ['nid001', 'nid002'])
  t.equal((await s.findNodeByMac(b.interfaces[0]!.mac))?.name, 'nid001')
})

t.test('uniqueness is enforced and names the holder', async (t) => {
  const s = SqliteStore.open(join(tempDir(t), 'u.db'))
  t.teardown(async () => await s.close())
  await s.createNode(spec('a', '02:00:00:00:00:01', '10.0.0.1', { xname: 'x1c1s1b1n1', nid: 1, bmcMac: '02:00:00:00:01:01' }), alice)
  await t.rejects(s.createNode(spec('a', '02:00:00:00:00:09'), alice), { code: 'NODE_EXISTS' })
  await t.rejects(s.createNode(spec('b', '02:00:00:00:00:01'), alice), { code: 'DUPLICATE_MAC', message: /already used by node 'a'/ })
  await t.rejects(s.createNode(spec('b', '02:00:00:00:01:01'), alice), { code: 'DUPLICATE_MAC' }, 'a NIC cannot take a BMC MAC')
  await t.rejects(s.createNode(spec('b', '02:00:00:00:00:02', '10.0.0.1'), alice), { code: 'DUPLICATE_IP' })
  await t.rejects(s.createNode(spec('b', '02:00:00:00:00:02', undefined, { bmcIp: '10.0.0.1' }), alice), { code: 'DUPLICATE_IP' })
  await t.rejects(s.createNode(spec('b', '02:00:00:00:00:02', undefined, { xname: 'x1c1s1b1n1' }), alice), { code: 'DUPLICATE_XNAME' })
  await t.rejects(s.createNode(spec('b', '02:00:00:00:00:02', undefined, { nid: 1 }), alice), { code: 'DUPLICATE_NID' })
  t.equal((await s.listNodes()).length, 1)
})

t.test('updates, group membership and deletes', async (t) => {
  const s = SqliteStore.open(join(tempDir(t), 'g.db'))
  t.teardown(async () => await s.close())
  await s.importNodes(bootcamp, { createGroups: true, source: 'x' }, alice)
  await s.createGroup('gpu', 'GPU nodes', alice)
  await t.rejects(s.createGroup('gpu', '', alice), { code: 'GROUP_EXISTS' })
  const names = ['nid001', 'nid002', 'nid003']
  const up = await s.updateNodes(names, { addGroups: ['gpu'] }, alice)
  t.same(up.map((n) => n.groups), [['compute', 'gpu'], ['compute', 'gpu'], ['compute', 'gpu']])
  t.same((await s.listNodes({ group: 'gpu' })).map((n) => n.name), names)
  await t.rejects(s.updateNodes(['nid001', 'nid999'], { nid: 100 }, alice), { code: 'NODE_NOT_FOUND' })
  await t.rejects(s.updateNodes(['nid001', 'nid002'], { nid: 100 }, alice), { code: 'DUPLICATE_NID' }, 'a range cannot share one NID')
  t.equal((await s.getNode('nid001'))?.nid, 1, 'nothing half-written')
  await s.updateNodes(['nid001'], { bmcIp: null, xname: null, removeGroups: ['gpu'] }, alice)
  const n1 = (await s.getNode('nid001'))!
  t.equal(n1.bmcIp, undefined); t.equal(n1.xname, undefined); t.same(n1.groups, ['compute'])
  t.equal(n1.bmcMac, '02:00:00:b0:00:01', 'other BMC fields kept')

  await t.rejects(s.deleteGroup('gpu', { force: false }, alice), { code: 'GROUP_NOT_EMPTY' })
  await s.deleteGroup('gpu', { force: true }, alice)
  t.same((await s.getNode('nid002'))?.groups, ['compute'])
  await t.rejects(s.deleteGroup('gpu', { force: false }, alice), { code: 'GROUP_NOT_FOUND' })
  t.same(await s.deleteNodes(['nid008', 'nid009'], alice), ['nid008', 'nid009'])
  await t.rejects(s.deleteNodes(['nid001', 'nid009'], alice), { code: 'NODE_NOT_FOUND' })
  t.equal((await s.listNodes()).length, 7)
  t.equal(await s.findNodeByMac('ec:e7:a7:05:9f:50'), undefined, 'addresses go with the node')
})

t.test('tokens', async (t) => {
  const s = SqliteStore.open(join(tempDir(t), 't.db'))
  t.teardown(async () => await s.close())
  const tok = await s.createToken({ id: 'abcdefghij', name: 'ci', role: 'viewer', secretHash: 'f'.repeat(64), createdBy: 'alice' }, alice)
  t.equal(tok.role, 'viewer')
  t.notOk('secretHash' in tok, 'listing never carries the hash')
  t.equal((await s.getToken('abcdefghij'))?.secretHash, 'f'.repeat(64))
  await s.touchToken('abcdefghij')
  t.ok((await s.getToken('abcdefghij'))?.lastUsedAt)
  t.ok((await s.revokeToken('abcdefghij', alice)).revokedAt)
  await t.rejects(s.revokeToken('nosuchtokn', alice), { code: 'TOKEN_NOT_FOUND' })
})

t.test('the audit log is append-only and tamper-evident', async (t) => {
  const path = join(tempDir(t), 'a.db')
  const s = SqliteStore.open(path)
  await s.createGroup('compute', '', alice)
  await s.importNodes(bootcamp, { createGroups: false, source: 'bootcamp.yaml' }, alice)
  await s.updateNodes(['nid001'], { nid: 101 }, alice)
  await s.deleteNodes(['nid009'], alice)
  const entries = await s.listAudit()
  t.same(entries.map((e) => [e.seq, e.action, e.target, e.actor.name]), [
    [1, 'group.create', 'compute', 'alice'],
    [2, 'node.import', 'nid[001-009]', 'alice'],
    [3, 'node.update', 'nid001', 'alice'],
    [4, 'node.delete', 'nid009', 'alice'],
  ])
  t.same(entries[2]?.detail, { changes: { nid: 101 } })
  t.same((await s.listAudit({ action: 'node' })).length, 3)
  t.same((await s.listAudit({ afterSeq: 3 })).map((e) => e.seq), [4])
  t.same(await s.verifyAudit(), { ok: true, entries: 4 })
  await s.close()

  const db = new Database(path)
  t.throws(() => db.prepare("UPDATE audit_log SET target = 'x' WHERE seq = 2").run(), /append-only/)
  t.throws(() => db.prepare('DELETE FROM audit_log WHERE seq = 4').run(), /append-only/)

  // someone with file access drops the trigger and edits an entry
  db.exec('DROP TRIGGER audit_log_no_update')
  db.prepare("UPDATE audit_log SET detail = '{\"changes\":{\"nid\":7}}' WHERE seq = 3").run()
  db.close()
  const s2 = SqliteStore.open(path)
  t.teardown(async () => await s2.close())
  t.match(await s2.verifyAudit(), { ok: false, brokenAt: 3, reason: /edited/ })
})

t.test('the audit chain detects removal and reordering', async (t) => {
  const path = join(tempDir(t), 'r.db')
  const s = SqliteStore.open(path)
  for (const g of ['a', 'b', 'c']) await s.createGroup(g, '', alice)
  await s.close()
  const db = new Database(path)
  db.exec('DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_no_update')
  db.prepare('DELETE FROM audit_log WHERE seq = 2').run()
  db.close()
  let s2 = SqliteStore.open(path)
  t.match(await s2.verifyAudit(), { ok: false, brokenAt: 3, reason: /removed or reordered/ })
  await s2.close()

  const db2 = new Database(path)
  db2.prepare('UPDATE audit_log SET seq = 2 WHERE seq = 3').run()
  db2.close()
  s2 = SqliteStore.open(path)
  t.teardown(async () => await s2.close())
  t.match(await s2.verifyAudit(), { ok: false, brokenAt: 2, reason: /link/ })
})

t.test('a database from a newer netboot is refused', async (t) => {
  const path = join(tempDir(t), 'new.db')
  const db = new Database(path)
  db.pragma('user_version = 999')
  db.close()
  t.throws(() => SqliteStore.open(path), { code: 'STORE_SCHEMA_TOO_NEW' })
})
