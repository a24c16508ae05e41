/**
 * The node-facing HTTP server: what booting nodes talk to (boot scripts, images,
 * cloud-init, attestation). It carries no admin route and no admin credential.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Metrics } from '../../metrics.js'
import type { Store } from '../../store/store.js'
import { installCommon } from '../common.js'
import { attestRoutes, type AttestRouteDeps } from './attest.js'
import { cloudInitRoutes } from './cloudinit.js'
import { bootRoutes, type BootRouteDeps } from './boot.js'
import type { CloudInitService } from '../../cloudinit/service.js'

export interface NodeAppOptions {
  readonly store: Store
  readonly log: Logger
  readonly metrics: Metrics
  readonly bodyLimit: number
  readonly attestation?: Omit<AttestRouteDeps, 'store'>
  readonly cloudInit?: CloudInitService
  readonly boot?: BootRouteDeps
  /** The node URL as nodes see it (DPoP proofs name it). */
  readonly publicUrl?: string
  /** Peers whose X-Forwarded-For is believed (http.trusted_proxies). */
  readonly trustedProxies?: readonly string[]
}

export async function buildNodeApp (o: NodeAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: o.log.child({ server: 'node' }) as FastifyBaseLogger,
    bodyLimit: o.bodyLimit,
    return503OnClosing: true,
    trustProxy: o.trustedProxies !== undefined && o.trustedProxies.length > 0 ? [...o.trustedProxies] : false,
  })
  installCommon(app, 'node', o.metrics)
  app.get('/healthz', async () => ({ status: 'ok' }))
  if (o.boot !== undefined) await bootRoutes(app, o.boot)
  if (o.attestation !== undefined) await attestRoutes(app, { ...o.attestation, store: o.store })
  if (o.cloudInit !== undefined) {
    await cloudInitRoutes(app, {
      service: o.cloudInit, store: o.store, publicUrl: o.publicUrl ?? '',
      ...(o.attestation !== undefined ? { tokens: o.attestation.tokens } : {}),
    })
  }
  return app
}
