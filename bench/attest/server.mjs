// @ts-check
/**
 * The benchmark's HTTP server process: the node-facing fastify app with the
 * attestation routes, built from dist/ exactly as `netboot serve` builds it
 * (server/serve.ts, server/attest/setup.ts) minus the boot service, with the
 * production logger writing to /dev/null. Plain JavaScript run by plain node, so
 * no loader sits in the measured process.
 *
 * Configuration comes in NETBOOT_BENCH_SERVER (JSON: dist, dbPath, keysDir,
 * policy, publicUrl, verifyThreads: AttestationConfig.verifyThreads or absent). Over IPC it reports {port} once listening, answers
 * 'usage' with its CPU time and event-loop utilisation, and exits on 'stop'.
 */
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import pino from 'pino'

const cfg = JSON.parse(process.env.NETBOOT_BENCH_SERVER ?? '{}')
/** @param {string} p */
const dist = async (p) => await import(pathToFileURL(join(cfg.dist, p)).href)

const { SqliteStore } = await dist('server/store/sqlite/sqlite-store.js')
const { KeyRing } = await dist('server/tokens/keys.js')
const { NodeTokens } = await dist('server/tokens/node-token.js')
const { AttestationService } = await dist('server/attest/service.js')
const { buildNodeApp } = await dist('server/http/node/app.js')
const { createMetrics } = await dist('server/metrics.js')
const { createLogger } = await dist('server/log.js')

const log = createLogger('info', pino.destination({ dest: '/dev/null', sync: false }))
const store = SqliteStore.open(cfg.dbPath)
const keys = await KeyRing.open({ dir: cfg.keysDir, rotateAfterMs: 30 * 86_400_000, maxTokenTtlMs: 900_000 })
const tokens = new NodeTokens(keys, cfg.publicUrl, 900)
const service = new AttestationService({
  enrollment: 'tofu', requireEkCert: false, anchors: [], pcrs: [0, 1, 2, 3, 4, 5, 6, 7], bank: 'sha256', pcrPolicy: cfg.policy,
  discover: true, sessionTtlMs: 60_000, maxSessions: 50_000, ...(cfg.verifyThreads !== undefined && cfg.verifyThreads !== null ? { verifyThreads: cfg.verifyThreads } : {}),
}, store, tokens, log.child({ component: 'attest' }))
const app = await buildNodeApp({ store, log, metrics: createMetrics(), bodyLimit: 1 << 20, publicUrl: cfg.publicUrl, attestation: { service, keys, tokens, publicUrl: cfg.publicUrl } })
await app.listen({ host: '127.0.0.1', port: 0 })

const send = (/** @type {unknown} */ m) => { if (process.send !== undefined) process.send(m) }
send({ port: app.server.address().port })
process.on('message', async (m) => {
  if (m === 'usage') {
    const c = process.cpuUsage()
    send({ usage: { cpuMs: (c.user + c.system) / 1000, elu: performance.eventLoopUtilization() } })
  } else if (m === 'stop') {
    await app.close()
    await store.close()
    process.exit(0)
  }
})
process.on('disconnect', () => process.exit(0))
