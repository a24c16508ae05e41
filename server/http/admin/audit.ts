/** /api/v1/audit: the append-only, hash-chained audit log. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NetbootError } from '../../errors.js'
import type { Store } from '../../store/store.js'
import { AuditEntryBody, AuditQueryString, ErrorBody } from './schemas.js'

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody }

export function auditRoutes (store: Store): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/v1/audit', {
      config: { right: 'audit:read' },
      schema: {
        tags: ['audit'], summary: 'Audit entries in order; page with after=<last seq>. action=node matches node.*',
        querystring: AuditQueryString, response: { 200: Type.Object({ entries: Type.Array(AuditEntryBody) }), ...errors },
      },
    }, async (req) => ({
      entries: await store.listAudit({
        limit: req.query.limit,
        ...(req.query.after !== undefined ? { afterSeq: req.query.after } : {}),
        ...(req.query.action !== undefined ? { action: req.query.action } : {}),
        ...(req.query.target !== undefined ? { target: req.query.target } : {}),
      }),
    }))

    app.get('/api/v1/audit/:seq', {
      config: { right: 'audit:read' },
      schema: { tags: ['audit'], summary: 'One audit entry with its evidence', params: Type.Object({ seq: Type.Integer({ minimum: 1 }) }), response: { 200: AuditEntryBody, 404: ErrorBody, ...errors } },
    }, async (req) => {
      const e = await store.getAudit(req.params.seq)
      if (e === undefined) throw new NetbootError('NOT_FOUND', `no audit entry ${req.params.seq}`)
      return e
    })

    app.get('/api/v1/audit/verify', {
      config: { right: 'audit:read' },
      schema: {
        tags: ['audit'], summary: 'Verify the whole hash chain',
        response: { 200: Type.Object({ ok: Type.Boolean(), entries: Type.Integer(), brokenAt: Type.Optional(Type.Integer()), reason: Type.Optional(Type.String()) }), ...errors },
      },
    }, async () => await store.verifyAudit())
  }
}
