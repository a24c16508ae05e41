/**
 * listTpmIdentities by node is what attestation asks at every node's first boot
 * (is another TPM enrolled for this node?). It must return exactly the identities
 * whose node is the one named (every state, discovered ones without a node never),
 * filtered by state when asked, in id order; and SQLite must answer it through the
 * tpm_identities_node index, not by reading every identity (the filter on the
 * joined name did: 7.4 s of a 10,000-node storm's profile).
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { IDENTITIES_OF_NODE, SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import type { Actor } from '../../server/inventory/model.js'
import type { AuditDraft, TpmIdentity } from '../../server/store/store.js'
import { tempDir } from '../helpers/tmp.js'

const alice: Actor = { kind: 'admin', id: 'aaaaaaaaaa', name: 'alice' }
const draft = (node: string): AuditDraft => ({ actor: { kind: 'node', id: node }, action: 'enroll.tofu', target: node, outcome: 'ok', detail: {} })
const ek = (i: number): string => i.toString(16).padStart(64, '0')

t.test('identities by node: the same as a filter over all, through the index', async (t) => {
  const path = join(tempDir(t), 'i.db')
  const s = SqliteStore.open(path)
  t.teardown(async () => await s.close())
  const names = ['n1', 'n2', 'n3', 'n10']
  for (const [i, name] of names.entries()) await s.createNode({ name, groups: [], interfaces: [{ mac: `02:00:00:00:00:0${i}` }] }, alice)
  // n1: enrolled, then a second TPM pending and a third rejected; n2: one; n3: none; n10 (a name n1 prefixes): one
  let e = 0
  const add = async (node: string | undefined, state: TpmIdentity['state']): Promise<TpmIdentity> =>
    await s.addTpmIdentity({ ...(node !== undefined ? { node } : {}), ekSha256: ek(++e), policy: 'tofu', state, macs: [] }, draft(node ?? 'unknown'))
  await add('n1', 'enrolled')
  await add('n2', 'enrolled')
  await add(undefined, 'pending') // discovered hardware, no node yet
  await add('n1', 'pending')
  const rejected = await add('n1', 'rejected')
  await add('n10', 'enrolled')
  await add(undefined, 'pending')

  const all = await s.listTpmIdentities()
  t.equal(all.length, 7, 'every identity without a filter')
  t.same(all.map((i) => i.id), [...all.map((i) => i.id)].sort((a, b) => a - b), 'in id order')
  for (const state of [undefined, 'pending', 'enrolled', 'rejected'] as const) {
    t.strictSame(await s.listTpmIdentities(state !== undefined ? { state } : {}), all.filter((i) => state === undefined || i.state === state), `state ${state ?? 'any'}`)
    for (const node of [...names, 'nosuchnode']) {
      const f = { node, ...(state !== undefined ? { state } : {}) }
      t.strictSame(await s.listTpmIdentities(f), all.filter((i) => i.node === node && (state === undefined || i.state === state)), `node ${node}, state ${state ?? 'any'}`)
    }
  }
  t.same((await s.listTpmIdentities({ node: 'n1' })).map((i) => i.state), ['enrolled', 'pending', 'rejected'])
  t.same((await s.listTpmIdentities({ node: 'n1', state: 'rejected' })).map((i) => i.id), [rejected.id])
  t.same(await s.listTpmIdentities({ node: 'n3' }), [], 'a node with no TPM has none')

  // what SQLite does for the statement listTpmIdentities prepares for a node
  const db = new Database(path, { readonly: true })
  t.teardown(() => db.close())
  const plan = (db.prepare(`EXPLAIN QUERY PLAN ${IDENTITIES_OF_NODE}`).all({ node: 'n1', state: null }) as { detail: string }[]).map((r) => r.detail)
  t.ok(plan.some((d) => /SEARCH t USING INDEX tpm_identities_node/.test(d)), `identities through tpm_identities_node: ${plan.join('; ')}`)
  t.notOk(plan.some((d) => /^SCAN t\b/.test(d)), 'no scan of tpm_identities')
})
