/**
 * The TFTP service from the configuration: the iPXE binaries directory, read-only,
 * plus the generated `autoexec.ipxe` some NICs ask for first; transfers counted
 * on the server's Prometheus registry. With `tftp.worker` (the default) the
 * engine runs in its own thread (worker-host.ts): the metrics and log lines are
 * the same, written here in the main thread.
 */
import type { Logger } from 'pino'
import { Counter, Histogram, type Registry } from 'prom-client'
import type { LoadedConfig } from '../config/load.js'
import { keptFile, linkedTargets } from './linked.js'
import { createTftpServer, type TftpEvents, type TftpServer } from './server.js'
import { createTftpWorker } from './worker-host.js'

export { keptFile } from './linked.js'

/**
 * How often, in worker mode, autoexec.ipxe is rendered again and sent to the
 * worker when its bytes changed (in-process it is rendered per request).
 */
export const AUTOEXEC_REFRESH_MS = 5000

export async function startTftp (loaded: LoadedConfig, autoexec: () => Buffer, log: Logger, registry: Registry): Promise<TftpServer> {
  const c = loaded.config.tftp
  const transfers = new Counter({ name: 'netboot_tftp_transfers_total', help: 'TFTP transfers by result', labelNames: ['result'], registers: [registry] })
  const refused = new Counter({ name: 'netboot_tftp_refused_total', help: 'TFTP requests refused, by reason', labelNames: ['reason'], registers: [registry] })
  const bytes = new Counter({ name: 'netboot_tftp_bytes_total', help: 'Bytes sent by completed TFTP transfers', registers: [registry] })
  const seconds = new Histogram({ name: 'netboot_tftp_transfer_seconds', help: 'TFTP transfer duration', registers: [registry], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30] })
  const events: TftpEvents = {
    onTransferDone: (n, ms) => { transfers.inc({ result: 'done' }); bytes.inc(n); seconds.observe(ms / 1000) },
    onTransferFailed: (reason) => transfers.inc({ result: reason }),
    onRequestRefused: (reason) => refused.inc({ reason }),
  }
  const links = await linkedTargets(c.ipxe_dir, log)
  const common = { root: c.ipxe_dir, address: c.listen, port: c.port, maxTransfers: c.max_transfers, log: log.child({ component: 'tftp' }), events }
  let server: TftpServer
  if (c.worker) {
    const w = createTftpWorker({ ...common, virtualFiles: { 'autoexec.ipxe': autoexec() }, links })
    server = w
    const refresh = setInterval(() => {
      try {
        w.setVirtualFile('autoexec.ipxe', autoexec())
      } catch (e) {
        log.warn({ component: 'tftp', err: (e as Error).message }, 'tftp: autoexec.ipxe could not be rendered; the worker keeps the last one')
      }
    }, AUTOEXEC_REFRESH_MS)
    refresh.unref()
    const close = w.close.bind(w)
    w.close = async () => { clearInterval(refresh); await close() }
  } else {
    const virtualFiles = { ...Object.fromEntries(Object.entries(links).map(([n, t]) => [n, keptFile(t)])), 'autoexec.ipxe': () => autoexec() }
    server = createTftpServer({ ...common, virtualFiles })
  }
  const { port } = await server.start()
  log.info({ component: 'tftp', root: c.ipxe_dir, port, worker: c.worker }, 'tftp: serving')
  return server
}
