/**
 * `netboot serve`: opens the store, starts every enabled server, and stops them in
 * order on SIGTERM/SIGINT (stop accepting, drain in-flight requests up to a
 * deadline, close the store).
 */
import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { LoadedConfig } from './config/load.js'
import { createMetrics, type Metrics } from './metrics.js'
import { SqliteStore } from './store/sqlite/sqlite-store.js'
import type { Store } from './store/store.js'
import { buildAdminApp } from './http/admin/app.js'
import { buildNodeApp } from './http/node/app.js'
import { version } from './version.js'
import { startDhcp, type DhcpService } from './dhcp/setup.js'
import { startTftp } from './tftp/setup.js'
import { setupAttestation } from './attest/setup.js'
import { CloudInitService } from './cloudinit/service.js'
import { BlobStore } from './images/blobs.js'
import { BootService } from './boot/service.js'
import { IpxeScripts } from './boot/script.js'
import { join } from 'node:path'
import type { TftpServer } from './tftp/server.js'
import { startRa } from './ra/setup.js'
import type { RaServer } from './ra/server.js'

export interface Running {
  readonly store: Store
  readonly metrics: Metrics
  readonly adminUrl: string
  readonly nodeUrl: string
  close (): Promise<void>
}

const DRAIN_DEADLINE_MS = 10_000

export async function startServer (loaded: LoadedConfig, log: Logger): Promise<Running> {
  const { config } = loaded
  const metrics = createMetrics()
  const store = SqliteStore.open(loaded.dbPath, { synchronous: config.database.synchronous })
  const apps: FastifyInstance[] = []
  let dhcp: DhcpService | undefined
  let tftp: TftpServer | undefined
  let ra: RaServer | undefined
  try {
    const blobs = new BlobStore(join(config.data_dir, 'images'))
    await blobs.init()
    const boot = new BootService(store, await IpxeScripts.load(), {
      publicUrl: loaded.publicUrl,
      unknown: { action: config.unknown_nodes.action, ...(config.unknown_nodes.discovery_image !== undefined ? { discoveryImage: config.unknown_nodes.discovery_image } : {}) },
    }, log.child({ component: 'boot' }))
    const cloudInit = new CloudInitService(store, { url: loaded.publicUrl, ...(config.server.address !== undefined ? { ip: config.server.address } : {}) }, log.child({ component: 'cloud-init' }), async (n) => await boot.imageDigest(n))
    const admin = await buildAdminApp({ store, log, metrics, bodyLimit: 64 * 1024 * 1024, metricsPublic: config.admin.metrics_public, version, cloudInit, images: { blobs, boot } })
    apps.push(admin)
    const attestation = config.attestation.enabled ? await setupAttestation(loaded, store, log, boot) : undefined
    const node = await buildNodeApp({
      store, log, metrics, bodyLimit: config.http.body_limit, cloudInit, publicUrl: loaded.publicUrl, trustedProxies: config.http.trusted_proxies,
      boot: { boot, blobs, ipxeDir: config.tftp.ipxe_dir },
      ...(attestation !== undefined ? { attestation: { ...attestation, publicUrl: loaded.publicUrl } } : {}),
    })
    apps.push(node)
    await admin.listen({ host: config.admin.listen, port: config.admin.port })
    await node.listen({ host: config.http.listen, port: config.http.port })
    if (config.dhcp.enabled && config.dhcp.subnets.length > 0) dhcp = await startDhcp(loaded, store, log, metrics.registry)
    else log.info('dhcp: not serving (disabled or no subnets configured)')
    ra = startRa(loaded, log)
    if (config.tftp.enabled) tftp = await startTftp(loaded, () => Buffer.from(boot.autoexec()), log, metrics.registry)
    const url = (a: FastifyInstance): string => {
      const addr = a.server.address() as AddressInfo
      return `http://${addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address}:${addr.port}`
    }
    const running: Running = {
      store,
      metrics,
      adminUrl: url(admin),
      nodeUrl: url(node),
      close: async () => {
        const timer = setTimeout(() => {
          log.warn({ deadlineMs: DRAIN_DEADLINE_MS }, 'drain deadline passed; closing connections')
          for (const a of apps) a.server.closeAllConnections()
        }, DRAIN_DEADLINE_MS)
        timer.unref()
        ra?.close()
        await dhcp?.close()
        await tftp?.close()
        await Promise.all(apps.map(async (a) => await a.close()))
        clearTimeout(timer)
        await store.close()
        log.info('netboot stopped')
      },
    }
    const tokens = await store.listTokens()
    log.info({ version, config: loaded.source, db: loaded.dbPath, schema: store.schemaVersion, admin: running.adminUrl, node: running.nodeUrl }, 'netboot serving')
    if (!tokens.some((t) => t.revokedAt === undefined)) {
      log.warn("no usable admin token: create one on this host with 'netboot token create --local NAME'")
    }
    return running
  } catch (e) {
    ra?.close()
    await dhcp?.close()
    await tftp?.close()
    await Promise.allSettled(apps.map(async (a) => await a.close()))
    await store.close()
    throw e
  }
}

