/**
 * The TFTP worker thread: an I/O shell around createTftpServer (server.ts) on its
 * own event loop, so HTTP, DHCP and attestation work in the main thread cannot
 * delay an ACK (docs/bench-storm.md, "Third pass"). The engine is unchanged; this
 * module only carries what crosses the thread boundary (protocol in
 * worker-host.ts):
 *
 * - in: workerData (settings, log level, virtual file bytes, links out of the
 *   root), then messages: new virtual file bytes, close, and a test-only crash
 *   (../thread-relay.ts runService);
 * - out: `listening` or `start-failed`, then batches of log records and event
 *   hook calls (one postMessage per turn of the loop, in the order they
 *   happened), and `closed`. Counts of running and queued transfers are written
 *   to a shared Int32Array every COUNTS_MS, read by the host without a message.
 *
 * The worker ends when close() has closed every socket and file: nothing else
 * keeps its loop alive (the parentPort listener is removed).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { createTftpServer, type TftpEvents } from './server.js'
import { keptFile } from './linked.js'
import type { VirtualFile } from './files.js'
import { Outbox, runService, workerLogger } from '../thread-relay.js'
import { COUNTS_MS, type FilesMessage, type FromWorker, type WorkerInit } from './worker-host.js'

const init = workerData as WorkerInit
const port = parentPort!
const counts = new Int32Array(init.counts)

const outbox = new Outbox<FromWorker>(port, 'tftp')
const send = (m: FromWorker): void => { outbox.send(m) }

// ---- the server -------------------------------------------------------------

const bytes = new Map<string, Buffer>(Object.entries(init.files).map(([k, v]) => [k, Buffer.from(v.buffer, v.byteOffset, v.byteLength)]))
const virtualFiles = new Map<string, VirtualFile>()
for (const name of bytes.keys()) {
  // the same Buffer until its bytes change: files.ts serves a Buffer seen again from preformatted packets
  virtualFiles.set(name, () => {
    const b = bytes.get(name)
    if (b === undefined) throw new Error(`virtual file ${name} was removed`)
    return b
  })
}
for (const [name, target] of Object.entries(init.links)) virtualFiles.set(name, keptFile(target))

const hook = (name: keyof TftpEvents) => (...args: unknown[]): void => send({ t: 'event', name, args })
const events: TftpEvents = {}
for (const name of init.events) (events as Record<string, unknown>)[name] = hook(name)

const server = createTftpServer({ ...init.options, virtualFiles, log: workerLogger(init.level, send), events })

const countTimer = setInterval(() => {
  Atomics.store(counts, 0, server.activeTransfers())
  Atomics.store(counts, 1, server.queuedRequests())
}, COUNTS_MS)

await runService<FromWorker, FilesMessage>(port, outbox, {
  start: async () => ({ t: 'listening', port: (await server.start()).port }),
  stop: async () => {
    await server.close()
    clearInterval(countTimer)
    Atomics.store(counts, 0, 0)
    Atomics.store(counts, 1, 0)
  },
  abandon: async () => { clearInterval(countTimer) },
  onMessage: (m) => {
    for (const [name, v] of Object.entries(m.files)) {
      if (!virtualFiles.has(name) || name in init.links) {
        send({ t: 'log', level: 'warn', obj: { file: name }, msg: 'tftp worker: not a virtual file of this server; update ignored' })
        continue
      }
      bytes.set(name, Buffer.from(v.buffer, v.byteOffset, v.byteLength))
    }
  },
})
