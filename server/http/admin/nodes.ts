/** /api/v1/nodes: the inventory. Node sets in paths and queries accept host ranges (`nid[001-009]`). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NetbootError } from '../../errors.js'
import { expandHostlist } from '../../inventory/hostlist.js'
import { parseNodesFile } from '../../inventory/nodes-file.js'
import { normalizeChanges, normalizeSpec } from '../../inventory/normalize.js'
import type { Store } from '../../store/store.js'
import { ErrorBody, ImportBody, ImportResultBody, NodeBody, NodeChangesBody, NodeSpecBody } from './schemas.js'

const Selector = Type.Object({ selector: Type.String({ minLength: 1, maxLength: 4096, description: 'a node name or host range, e.g. nid[001-009]' }) })
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody }

export function nodeRoutes (store: Store): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/v1/nodes', {
      config: { right: 'inventory:read' },
      schema: {
        tags: ['nodes'], summary: 'List nodes, optionally a host range or a group',
        querystring: Type.Object({ select: Type.Optional(Type.String({ maxLength: 4096 })), group: Type.Optional(Type.String({ maxLength: 63 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ nodes: Type.Array(NodeBody) }), ...errors },
      },
    }, async (req) => {
      const names = req.query.select === undefined ? undefined : expandHostlist(req.query.select)
      return { nodes: await store.listNodes({ ...(names !== undefined ? { names } : {}), ...(req.query.group !== undefined ? { group: req.query.group } : {}) }) }
    })

    app.get('/api/v1/nodes/:name', {
      config: { right: 'inventory:read' },
      schema: { tags: ['nodes'], summary: 'One node', params: Type.Object({ name: Type.String({ maxLength: 63 }) }), response: { 200: NodeBody, ...errors } },
    }, async (req) => {
      const node = await store.getNode(req.params.name.toLowerCase())
      if (node === undefined) throw new NetbootError('NODE_NOT_FOUND', `no such node: ${req.params.name}`)
      return node
    })

    app.post('/api/v1/nodes', {
      config: { right: 'inventory:write' },
      schema: { tags: ['nodes'], summary: 'Create a node', body: NodeSpecBody, response: { 201: NodeBody, ...errors } },
    }, async (req, reply) => {
      const node = await store.createNode(normalizeSpec(req.body), req.actor)
      return await reply.code(201).send(node)
    })

    app.post('/api/v1/nodes/import', {
      config: { right: 'inventory:write' },
      schema: {
        tags: ['nodes'], summary: 'Import a nodes.yaml document (both OpenCHAMI forms); one transaction, nothing written on any error',
        body: ImportBody, response: { 200: ImportResultBody, ...errors },
      },
    }, async (req) => {
      const specs = parseNodesFile(req.body.document, req.body.source)
      return await store.importNodes(specs, { createGroups: req.body.createGroups, source: req.body.source }, req.actor)
    })

    app.patch('/api/v1/nodes/:selector', {
      config: { right: 'inventory:write' },
      schema: { tags: ['nodes'], summary: 'Change every node in a host range, in one transaction', params: Selector, body: NodeChangesBody, response: { 200: Type.Object({ nodes: Type.Array(NodeBody) }), ...errors } },
    }, async (req) => {
      return { nodes: await store.updateNodes(expandHostlist(req.params.selector.toLowerCase()), normalizeChanges(req.body), req.actor) }
    })

    app.delete('/api/v1/nodes/:selector', {
      config: { right: 'inventory:write' },
      schema: { tags: ['nodes'], summary: 'Remove every node in a host range, in one transaction', params: Selector, response: { 200: Type.Object({ deleted: Type.Array(Type.String()) }), ...errors } },
    }, async (req) => {
      return { deleted: await store.deleteNodes(expandHostlist(req.params.selector.toLowerCase()), req.actor) }
    })
  }
}
