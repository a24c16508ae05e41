/**
 * The admin API: JSON over HTTP, every route schema-validated and documented in the
 * OpenAPI document it serves at /api/v1/openapi.json. Every /api/v1 route declares
 * the right it needs (`config.right`) or that it is public; a route that declares
 * neither is a start-up error, so no route is ever open by omission.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import swagger from '@fastify/swagger'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Logger } from 'pino'
import { NetbootError } from '../../errors.js'
import type { Metrics } from '../../metrics.js'
import type { Store } from '../../store/store.js'
import type { Actor } from '../../inventory/model.js'
import { roleHas, type Right } from '../../auth/roles.js'
import { parseToken, secretMatches } from '../../auth/tokens.js'
import { installCommon } from '../common.js'
import { nodeRoutes } from './nodes.js'
import { groupRoutes } from './groups.js'
import { tokenRoutes } from './tokens.js'
import { auditRoutes } from './audit.js'
import { enrollRoutes } from './enroll.js'
import { cloudInitAdminRoutes } from './cloudinit.js'
import type { CloudInitService } from '../../cloudinit/service.js'
import { imageRoutes } from './images.js'
import type { BlobStore } from '../../images/blobs.js'
import type { BootService } from '../../boot/service.js'

export interface AdminAppOptions {
  readonly store: Store
  readonly log: Logger
  readonly metrics: Metrics
  readonly bodyLimit: number
  /** Serve /metrics without a token (scrapers usually have none). */
  readonly metricsPublic: boolean
  readonly version: string
  readonly cloudInit?: CloudInitService
  readonly images?: { readonly blobs: BlobStore; readonly boot: BootService }
}

declare module 'fastify' {
  interface FastifyContextConfig { right?: Right; public?: boolean }
  interface FastifyRequest { actor: Actor }
  interface FastifyInstance {
    /** A second right a route needs for some inputs (e.g. secure data): 403 and an audit entry without it. */
    requireRight (req: FastifyRequest, right: Right): Promise<void>
  }
}

export type AdminApp = FastifyInstance

export async function buildAdminApp (o: AdminAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: o.log.child({ server: 'admin' }) as FastifyBaseLogger,
    bodyLimit: o.bodyLimit,
    ajv: { customOptions: { removeAdditional: false, useDefaults: true, coerceTypes: 'array', allErrors: false } },
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>()

  installCommon(app, 'admin', o.metrics)
  app.decorateRequest('actor', null as unknown as Actor)
  app.decorate('requireRight', async (req: FastifyRequest, right: Right) => await authenticate(req, right, o))

  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api/')) return
    const cfg = route.config as { right?: Right; public?: boolean } | undefined
    if (cfg?.right === undefined && cfg?.public !== true) {
      throw new Error(`admin route ${String(route.method)} ${route.url} declares neither a right nor public`)
    }
  })

  app.addHook('onRequest', async (req) => {
    const cfg = req.routeOptions.config
    if (cfg.public === true || cfg.right === undefined) return
    await authenticate(req, cfg.right, o)
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'netboot admin API', version: o.version, description: 'Inventory, tokens and audit of a netboot server. Every route needs `Authorization: Bearer nbt_…` unless marked public.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  })

  app.get('/api/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger())
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }))
  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    if (!o.metricsPublic) await authenticate(req, 'audit:read', o)
    void reply.header('content-type', o.metrics.registry.contentType)
    return await o.metrics.registry.metrics()
  })
  app.get('/api/v1/whoami', { config: { right: 'inventory:read' }, schema: { tags: ['auth'], summary: 'The token presented, as the server sees it' } },
    async (req) => ({ actor: req.actor }))

  await app.register(nodeRoutes(o.store))
  await app.register(groupRoutes(o.store))
  await app.register(tokenRoutes(o.store))
  await app.register(auditRoutes(o.store))
  await app.register(enrollRoutes(o.store))
  if (o.cloudInit !== undefined) await app.register(cloudInitAdminRoutes(o.cloudInit, o.store))
  if (o.images !== undefined) await app.register(imageRoutes(o.store, o.images.blobs, o.images.boot))
  return app
}

async function authenticate (req: FastifyRequest, right: Right, o: AdminAppOptions): Promise<void> {
  const header = req.headers.authorization
  if (header === undefined || header === '') {
    o.metrics.authFailures.inc({ reason: 'missing' })
    throw new NetbootError('AUTH_REQUIRED', 'this route needs a bearer token (Authorization: Bearer nbt_…)')
  }
  const m = /^Bearer\s+(\S+)$/i.exec(header)
  const parsed = m === null ? undefined : parseToken(m[1]!)
  const stored = parsed === undefined ? undefined : await o.store.getToken(parsed.id)
  const now = new Date().toISOString()
  const bad = parsed === undefined ? 'malformed'
    : stored === undefined ? 'unknown'
      : !secretMatches(parsed.secret, stored.secretHash) ? 'wrong-secret'
        : stored.revokedAt !== undefined ? 'revoked'
          : stored.expiresAt !== undefined && stored.expiresAt <= now ? 'expired'
            : undefined
  if (bad !== undefined || stored === undefined) {
    o.metrics.authFailures.inc({ reason: bad ?? 'unknown' })
    req.log.warn({ reason: bad, tokenId: parsed?.id, peer: req.ip }, 'admin token refused')
    throw new NetbootError('AUTH_INVALID', bad === 'revoked' ? 'token has been revoked' : bad === 'expired' ? 'token has expired' : 'invalid token')
  }
  req.actor = { kind: 'admin', id: stored.id, name: stored.name }
  if (!roleHas(stored.role, right)) {
    o.metrics.authFailures.inc({ reason: 'forbidden' })
    await o.store.audit({ actor: req.actor, action: 'auth.forbidden', target: `${req.method} ${req.routeOptions.url ?? req.url}`, outcome: 'denied', detail: { role: stored.role, needs: right, peer: req.ip } })
    throw new NetbootError('FORBIDDEN', `role '${stored.role}' lacks the right '${right}'`)
  }
  await o.store.touchToken(stored.id)
}
