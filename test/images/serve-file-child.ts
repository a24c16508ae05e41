/**
 * A fastify server with sendFile on one file, for tests and the benchmark that
 * need it in a separate process (to measure its memory, or to compare it with
 * nginx). Listens on 127.0.0.1, an ephemeral port; prints `{"port":N}` once
 * ready. Arguments: <file> [highWaterMark bytes]. Exits on SIGTERM.
 */
import Fastify from 'fastify'
import { sendFile } from '../../server/http/send-file.js'

const [file, hwmArg] = process.argv.slice(2)
if (file === undefined) {
  // `npx tap test/images` runs every .ts file in the folder, this one included: nothing to serve then
  if (process.env.TAP_CHILD_ID !== undefined) process.exit(0)
  process.stderr.write('usage: serve-file-child <file> [highWaterMark]\n')
  process.exit(2)
}
const highWaterMark = hwmArg === undefined ? undefined : Number(hwmArg)
const app = Fastify({ logger: false })
app.get('/f', async (req, reply) => { await sendFile(req, reply, { path: file, etag: 'bench', highWaterMark }); return reply })
const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`${JSON.stringify({ port: Number(new URL(address).port) })}\n`)
process.once('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
