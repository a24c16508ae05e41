/**
 * The node-facing HTTP server: what booting nodes talk to (boot scripts, images,
 * cloud-init, attestation). It carries no admin route and no admin credential.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Metrics } from '../../metrics.js'
import type { Store } from '../../store/store.js'
import { installCommon } from '../common.js'
import { attestRoutes, type AttestRouteDeps } from './attest.js'
import { cloudInitRoutes } from './cloudinit.js'
import { bootRoutes, type BootRouteDeps } from './boot.js'
import { NodeFastPath } from './fast.js'
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
  /** How long an attestation body may take to arrive (fast.ts; default ATTEST_BODY_TIMEOUT_MS). */
  readonly attestBodyTimeoutMs?: number
}

/**
 * Routes whose per-request lines ('incoming request', 'request completed') are
 * logged only at debug: called thousands of times a second in a boot storm, each
 * already logs its outcome at info (one line per attestation, warnings for
 * refusals), and pino's two request lines cost more than a route's own work.
 * /boot/, /images/ and /ipxe/ keep them at info: they are the boot timeline that
 * test/e2e/timeline.ts reads.
 */
export function quietRequestLog (url: string): boolean {
  return url.startsWith('/attest/') || url === '/healthz' || url.startsWith('/.well-known/')
}

const fastPaths = new WeakMap<FastifyInstance, NodeFastPath>()

/** The fast path in front of a node app built by buildNodeApp (tests read its stats). */
export function fastPathOf (app: FastifyInstance): NodeFastPath | undefined {
  return fastPaths.get(app)
}

/**
 * The node server: fastify for every route, behind fast.ts's node:http handler,
 * which answers GET /boot/<mac> and POST /attest/v1/* on real sockets itself
 * (inject() and anything the fast path does not recognise reach fastify's routes).
 */
export async function buildNodeApp (o: NodeAppOptions): Promise<FastifyInstance> {
  const debug = o.log.isLevelEnabled('debug')
  const fast = new NodeFastPath({
    metrics: o.metrics, debug,
    ...(o.trustedProxies !== undefined ? { trustedProxies: o.trustedProxies } : {}),
    ...(o.attestBodyTimeoutMs !== undefined ? { bodyTimeoutMs: o.attestBodyTimeoutMs } : {}),
  })
  const app = Fastify({
    serverFactory: fast.serverFactory,
    genReqId: fast.genReqId,
    loggerInstance: o.log.child({ server: 'node' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: (req: { url?: string }) => !debug && quietRequestLog(req.url ?? '') }),
    bodyLimit: o.bodyLimit,
    return503OnClosing: true,
    trustProxy: o.trustedProxies !== undefined && o.trustedProxies.length > 0 ? [...o.trustedProxies] : false,
  })
  installCommon(app, 'node', o.metrics)
  app.addHook('preClose', (done) => { fast.close(); done() })
  app.get('/healthz', async () => ({ status: 'ok' }))
  if (o.boot !== undefined) await bootRoutes(app, o.boot)
  if (o.attestation !== undefined) await attestRoutes(app, { ...o.attestation, store: o.store })
  if (o.cloudInit !== undefined) {
    await cloudInitRoutes(app, {
      service: o.cloudInit, store: o.store, publicUrl: o.publicUrl ?? '',
      ...(o.attestation !== undefined ? { tokens: o.attestation.tokens } : {}),
    })
  }
  fastPaths.set(app, fast)
  fast.attach(app.log as unknown as Logger, {
    ...(o.boot !== undefined ? { boot: o.boot.boot, store: o.store } : {}),
    ...(o.attestation !== undefined ? { attest: o.attestation.service } : {}),
  })
  return app
}
