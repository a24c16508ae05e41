/** /api/v1/tokens: admin bearer tokens. The token value is returned once, at creation. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NetbootError } from '../../errors.js'
import { mintToken } from '../../auth/tokens.js'
import type { Role } from '../../auth/roles.js'
import type { Actor } from '../../inventory/model.js'
import type { AdminToken, Store } from '../../store/store.js'
import { ErrorBody, TokenBody, TokenCreateBody } from './schemas.js'

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody }

/** Mint and store a token; shared by the API and `netboot token create --local`. */
export async function createAdminToken (store: Store, req: { name: string; role: Role; expiresInDays?: number }, actor: Actor): Promise<{ token: AdminToken; value: string }> {
  const minted = mintToken()
  const expiresAt = req.expiresInDays === undefined ? undefined : new Date(Date.now() + req.expiresInDays * 86_400_000).toISOString()
  const token = await store.createToken({
    id: minted.id, name: req.name, role: req.role, secretHash: minted.secretHash,
    createdBy: actor.name ?? actor.id, ...(expiresAt !== undefined ? { expiresAt } : {}),
  }, actor)
  return { token, value: minted.value }
}

export function tokenRoutes (store: Store): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/v1/tokens', {
      config: { right: 'tokens:manage' },
      schema: { tags: ['tokens'], summary: 'List admin tokens (never their values)', response: { 200: Type.Object({ tokens: Type.Array(TokenBody) }), ...errors } },
    }, async () => ({ tokens: await store.listTokens() }))

    app.post('/api/v1/tokens', {
      config: { right: 'tokens:manage' },
      schema: {
        tags: ['tokens'], summary: 'Create an admin token; the value is in this response only',
        body: TokenCreateBody, response: { 201: Type.Object({ token: TokenBody, value: Type.String() }), ...errors },
      },
    }, async (req, reply) => reply.code(201).send(await createAdminToken(store, req.body, req.actor)))

    app.delete('/api/v1/tokens/:id', {
      config: { right: 'tokens:manage' },
      schema: { tags: ['tokens'], summary: 'Revoke a token (it stays listed, revoked)', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 200: TokenBody, ...errors } },
    }, async (req) => {
      if (req.params.id === req.actor.id) throw new NetbootError('BAD_REQUEST', 'a token cannot revoke itself; use another admin token')
      return await store.revokeToken(req.params.id, req.actor)
    })
  }
}
