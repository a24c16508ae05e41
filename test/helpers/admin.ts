import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import pino from 'pino'
import type { Test } from 'tap'
import { buildAdminApp } from '../../server/http/admin/app.js'
import { createAdminToken } from '../../server/http/admin/tokens.js'
import { createMetrics } from '../../server/metrics.js'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import type { Role } from '../../server/auth/roles.js'
import { tempDir } from './tmp.js'

export interface AdminFixture {
  app: FastifyInstance
  store: SqliteStore
  tokens: Record<Role, string>
  /** inject with a role's token (or a raw Authorization header value) */
  call (role: Role | { header?: string }, method: string, url: string, payload?: unknown): Promise<LightMyRequestResponse>
}

export async function adminFixture (t: Test): Promise<AdminFixture> {
  const store = SqliteStore.open(join(tempDir(t), 'netboot.db'))
  const app = await buildAdminApp({ store, log: pino({ level: 'silent' }), metrics: createMetrics({ processMetrics: false }), bodyLimit: 1 << 20, metricsPublic: true, version: 'test' })
  t.teardown(async () => { await app.close(); await store.close() })
  const tokens = {} as Record<Role, string>
  for (const role of ['admin', 'operator', 'viewer', 'auditor'] as Role[]) {
    tokens[role] = (await createAdminToken(store, { name: `${role}-token`, role }, { kind: 'system', id: 'test' })).value
  }
  return {
    app,
    store,
    tokens,
    call: async (who, method, url, payload) => {
      const header = typeof who === 'string' ? `Bearer ${tokens[who]}` : who.header
      return await app.inject({
        method: method as 'GET', url,
        headers: header !== undefined ? { authorization: header } : {},
        ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
      })
    },
  }
}
