/** /api/v1/cloud-init: payloads per group and node, plain and secure, and a node's merged result. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NetbootError } from '../../errors.js'
import type { CloudInitService } from '../../cloudinit/service.js'
import type { Store } from '../../store/store.js'
import { ErrorBody } from './schemas.js'

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody }
const Secure = Type.Object({ secure: Type.Boolean({ default: false }) }, { additionalProperties: false })

export function cloudInitAdminRoutes (service: CloudInitService, store: Store): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Secure payloads are secrets: reading or writing them also needs tpm:manage, and reads are audited.
    const SECRETS = 'tpm:manage'

    app.put('/api/v1/cloud-init', {
      config: { right: 'inventory:write' },
      schema: {
        tags: ['cloud-init'], summary: 'Store payloads (the OpenCHAMI format: name + cloud-init.userdata/metadata…, one or a list)',
        body: Type.Object({
          document: Type.String({ maxLength: 8 * 1024 * 1024 }),
          source: Type.String({ maxLength: 256, default: 'payload.yaml' }),
          target: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
          secure: Type.Boolean({ default: false }),
        }, { additionalProperties: false }),
        response: { 200: Type.Object({ stored: Type.Array(Type.Object({ target: Type.String(), scope: Type.String(), secure: Type.Boolean(), warnings: Type.Array(Type.String()) })) }), ...errors },
      },
    }, async (req) => {
      if (req.body.secure) await req.server.requireRight(req, SECRETS)
      return { stored: await service.set(req.body.document, req.body.source, { ...(req.body.target !== undefined ? { target: req.body.target } : {}), secure: req.body.secure }, req.actor) }
    })

    app.get('/api/v1/cloud-init/:target', {
      config: { right: 'inventory:read' },
      schema: {
        tags: ['cloud-init'], summary: 'The payload stored for a group or node', params: Type.Object({ target: Type.String({ maxLength: 63 }) }), querystring: Secure,
        response: { 200: Type.Object({ scope: Type.String(), data: Type.Record(Type.String(), Type.Unknown()), updatedAt: Type.String() }), ...errors },
      },
    }, async (req) => {
      if (req.query.secure) {
        await req.server.requireRight(req, SECRETS)
        await store.audit({ actor: req.actor, action: 'cloudinit.secure.read', target: req.params.target, detail: { via: 'admin api' } })
      }
      const r = await service.get(req.params.target, req.query.secure)
      if (r === undefined) throw new NetbootError('NOT_FOUND', `no ${req.query.secure ? 'secure ' : ''}cloud-init data for ${req.params.target}`)
      return r as unknown as { scope: string; data: Record<string, unknown>; updatedAt: string }
    })

    app.delete('/api/v1/cloud-init/:target', {
      config: { right: 'inventory:write' },
      schema: { tags: ['cloud-init'], summary: 'Remove the payload of a group or node', params: Type.Object({ target: Type.String({ maxLength: 63 }) }), querystring: Secure, response: { 204: Type.Null(), ...errors } },
    }, async (req, reply) => {
      if (req.query.secure) await req.server.requireRight(req, SECRETS)
      await service.remove(req.params.target, req.query.secure, req.actor)
      return await reply.code(204).send(null)
    })

    app.get('/api/v1/nodes/:name/cloud-init', {
      config: { right: 'inventory:read' },
      schema: {
        tags: ['cloud-init'], summary: 'What a node gets: its merged NoCloud documents (with secure data: tpm:manage, audited)',
        params: Type.Object({ name: Type.String({ maxLength: 63 }) }), querystring: Secure,
        response: { 200: Type.Object({ instanceId: Type.String(), metaData: Type.String(), userData: Type.String(), vendorData: Type.String(), networkConfig: Type.Optional(Type.String()) }), ...errors },
      },
    }, async (req) => {
      const node = await store.getNode(req.params.name.toLowerCase())
      if (node === undefined) throw new NetbootError('NODE_NOT_FOUND', `no such node: ${req.params.name}`)
      if (req.query.secure) {
        await req.server.requireRight(req, SECRETS)
        await store.audit({ actor: req.actor, action: 'cloudinit.secure.read', target: node.name, detail: { via: 'admin api render' } })
      }
      return await service.render(node, req.query.secure)
    })
  }
}
