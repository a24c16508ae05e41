import { execFile, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { sendFile, type SendFileOptions } from '../../server/http/send-file.js'

/** Bytes that differ at every offset of a small file, so a wrong slice cannot pass. */
export function pattern (size: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 8) * 13) & 0xff
  return b
}

export function writePattern (dir: string, name: string, size: number): { path: string; data: Buffer } {
  const path = join(dir, name)
  const data = pattern(size)
  writeFileSync(path, data)
  return { path, data }
}

/**
 * A fastify app with the file at GET /f (HEAD added by fastify) and at
 * GET + HEAD /explicit (our own HEAD route); options can be changed per test.
 */
export async function fileApp (options: () => SendFileOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  app.get('/f', async (req, reply) => { await sendFile(req, reply, options()); return reply })
  app.route({ method: ['GET', 'HEAD'], url: '/explicit', exposeHeadRoute: false, handler: async (req, reply) => sendFile(req, reply, options()) })
  await app.ready()
  return app
}

export interface Part { headers: Record<string, string>; body: Buffer }

/** Splits a multipart/byteranges body (RFC 9110 §14.6, RFC 2046 §5.1). */
export function parseMultipart (contentType: string, body: Buffer): Part[] {
  const m = /boundary=([^;]+)/.exec(contentType)
  if (m === null) throw new Error(`no boundary in ${contentType}`)
  const delim = Buffer.from(`\r\n--${m[1]}`)
  const parts: Part[] = []
  let at = body.indexOf(delim)
  if (at !== 0) throw new Error('body does not start with the delimiter')
  for (;;) {
    at += delim.length
    if (body.subarray(at, at + 4).toString() === '--\r\n') {
      if (at + 4 !== body.length) throw new Error('bytes after the closing delimiter')
      return parts
    }
    const headEnd = body.indexOf('\r\n\r\n', at)
    const headers: Record<string, string> = {}
    for (const line of body.subarray(at + 2, headEnd).toString('latin1').split('\r\n')) {
      const i = line.indexOf(':')
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
    }
    const next = body.indexOf(delim, headEnd + 4)
    if (next < 0) throw new Error('unterminated part')
    parts.push({ headers, body: body.subarray(headEnd + 4, next) })
    at = next
  }
}

export interface ChildServer { readonly pid: number; readonly port: number; stop: () => Promise<void> }

/** Starts test/images/serve-file-child.ts on `file`; stops it by its pid at teardown. */
export async function startFileServer (t: { teardown: (fn: () => unknown) => void }, file: string, highWaterMark?: number): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./serve-file-child.ts', import.meta.url)), file, ...(highWaterMark === undefined ? [] : [String(highWaterMark)])], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    await exited
  }
  t.teardown(stop)
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`file server did not start in 20 s: ${err}`)), 20_000)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n')[0]
      if (out.includes('\n') && line !== undefined) {
        clearTimeout(timer)
        resolve((JSON.parse(line) as { port: number }).port)
      }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`file server exited (${code}): ${err}`)) })
  })
  return { pid: child.pid!, port, stop }
}

/** Peak resident set size of a process, in bytes (VmHWM in /proc/<pid>/status). */
export function peakRss (pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmHWM for ${pid}`)
  return Number(m[1]) * 1024
}

export interface CurlResult { code: number; stdout: Buffer; stderr: string }

/** Runs curl (no shell, no proxy, bounded time); never throws on a non-zero exit. */
export async function curl (args: readonly string[]): Promise<CurlResult> {
  const env = { ...process.env }
  for (const k of Object.keys(env)) if (/_proxy$/i.test(k)) delete env[k]
  return await new Promise((resolve, reject) => {
    execFile('curl', ['--noproxy', '*', '--max-time', '60', '-s', '-S', ...args], { env, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(err)
        return
      }
      resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr: stderr.toString() })
    })
  })
}
