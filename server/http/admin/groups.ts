/** /api/v1/groups: node groups (boot and cloud-init configuration attach to them). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NetbootError } from '../../errors.js'
import { canonName } from '../../inventory/normalize.js'
import type { Store } from '../../store/store.js'
import { ErrorBody, GroupBody, GroupChangesBody, GroupCreateBody } from './schemas.js'

const NameParam = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) })
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody }

export function groupRoutes (store: Store): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/v1/groups', {
      config: { right: 'inventory:read' },
      schema: { tags: ['groups'], summary: 'List groups with member counts', response: { 200: Type.Object({ groups: Type.Array(GroupBody) }), ...errors } },
    }, async () => ({ groups: await store.listGroups() }))

    app.get('/api/v1/groups/:name', {
      config: { right: 'inventory:read' },
      schema: { tags: ['groups'], summary: 'One group', params: NameParam, response: { 200: GroupBody, ...errors } },
    }, async (req) => {
      const g = await store.getGroup(req.params.name.toLowerCase())
      if (g === undefined) throw new NetbootError('GROUP_NOT_FOUND', `no such group: ${req.params.name}`)
      return g
    })

    app.post('/api/v1/groups', {
      config: { right: 'inventory:write' },
      schema: { tags: ['groups'], summary: 'Create a group', body: GroupCreateBody, response: { 201: GroupBody, ...errors } },
    }, async (req, reply) => reply.code(201).send(await store.createGroup(canonName(req.body.name), req.body.description, req.actor)))

    app.patch('/api/v1/groups/:name', {
      config: { right: 'inventory:write' },
      schema: { tags: ['groups'], summary: 'Change a group', params: NameParam, body: GroupChangesBody, response: { 200: GroupBody, ...errors } },
    }, async (req) => await store.updateGroup(req.params.name.toLowerCase(), req.body, req.actor))

    app.delete('/api/v1/groups/:name', {
      config: { right: 'inventory:write' },
      schema: {
        tags: ['groups'], summary: 'Remove a group; refused while it has members unless force=true (which removes the memberships)',
        params: NameParam, querystring: Type.Object({ force: Type.Boolean({ default: false }) }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...errors },
      },
    }, async (req, reply) => {
      await store.deleteGroup(req.params.name.toLowerCase(), { force: req.query.force }, req.actor)
      return await reply.code(204).send(null)
    })
  }
}
