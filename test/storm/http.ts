/**
 * HTTP for the simulated nodes: node:http over one keep-alive Agent whose socket
 * count is bounded (`maxSockets`), so 10,000 nodes do not need 10,000 descriptors
 * in this one process. Every request has a timeout from the moment it has a socket,
 * and a bound on the wait for one. `fetchVia` adapts it to the
 * fetch signature the agent's ServerApi takes (agent/http.ts), so the real agent
 * code runs unchanged over the same bounded pool.
 *
 * `compare`: a 2xx body is compared chunk by chunk with bytes already verified
 * (the file's reference, at the body's offset in it) as it arrives, and not kept:
 * the same check as hashing or comparing a collected body, without gathering
 * 10,000 nodes' megabytes into new Buffers (the copies and the GC they cost are the
 * simulator's, which shares the cores with the server).
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http'

export interface HttpAnswer {
  status: number
  headers: IncomingHttpHeaders
  /** the body; empty when it was compared (a 2xx answer with `compare`) */
  body: Buffer
  /** with `compare` and a 2xx status: octets received, and whether every one equalled the reference at its place */
  compared?: { length: number; equal: boolean }
}

/** Compare a body with `ref` from offset `at` instead of keeping it. */
export interface Compare { ref: Buffer; at: number }

const EMPTY = Buffer.alloc(0)

export class HttpPool {
  readonly agent: Agent
  /** longest wait for a pooled socket before a request fails, ms */
  constructor (maxSockets: number, readonly queueMs = 300_000) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'fifo' })
  }

  /** One request; rejects on a network error or when no complete answer came within `timeoutMs`. */
  async call (method: string, url: string, o: { headers?: Record<string, string>; body?: Uint8Array; timeoutMs: number; compare?: Compare }): Promise<HttpAnswer> {
    const u = new URL(url)
    return await new Promise<HttpAnswer>((resolve, reject) => {
      const headers: Record<string, string | number> = { ...(o.headers ?? {}) }
      if (o.body !== undefined) headers['content-length'] = o.body.length
      const req = request({ host: u.hostname, port: u.port === '' ? 80 : Number(u.port), path: `${u.pathname}${u.search}`, method, agent: this.agent, headers }, (res) => {
        const status = res.statusCode ?? 0
        const cmp = o.compare !== undefined && status >= 200 && status < 300 ? o.compare : undefined
        if (cmp !== undefined) {
          const { ref } = cmp
          let at = cmp.at
          let length = 0
          let equal = true
          res.on('data', (c: Buffer) => {
            const n = c.length
            if (equal && (at + n > ref.length || ref.compare(c, 0, n, at, at + n) !== 0)) equal = false
            at += n
            length += n
          })
          res.on('end', () => { clearTimeout(timer); resolve({ status, headers: res.headers, body: EMPTY, compared: { length, equal } }) })
          res.on('error', (e) => { clearTimeout(timer); reject(e) })
          return
        }
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => { clearTimeout(timer); resolve({ status, headers: res.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }) })
        res.on('error', (e) => { clearTimeout(timer); reject(e) })
      })
      // A real node's timeout starts when it has a connection: the wait for one of the
      // pool's sockets (a simulator artefact) does not count against it, but is itself
      // bounded (queueMs) so no request waits forever.
      const fail = (what: string, ms: number) => (): void => { req.destroy(Object.assign(new Error(`${method} ${u.pathname}: ${what} within ${ms} ms`), { code: 'HTTP_TIMEOUT' })) }
      let timer = setTimeout(fail('no pooled socket', this.queueMs), this.queueMs)
      req.once('socket', () => { clearTimeout(timer); timer = setTimeout(fail('no complete answer', o.timeoutMs), o.timeoutMs) })
      req.on('error', (e) => { clearTimeout(timer); reject(e) })
      req.end(o.body)
    })
  }

  /** fetch(url, init) over this pool: what ServerApi needs (method, headers, body, status, headers, arrayBuffer). */
  fetchVia (timeoutMs: number): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
      const h: Record<string, string> = {}
      new Headers(init?.headers).forEach((v, k) => { h[k] = v })
      const body = init?.body === undefined || init.body === null ? undefined : Buffer.from(init.body as Uint8Array)
      const a = await this.call(init?.method ?? 'GET', url, { headers: h, ...(body !== undefined ? { body } : {}), timeoutMs })
      const out = new Headers()
      for (const [k, v] of Object.entries(a.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v)
      return new Response(a.status === 204 || a.status === 304 ? null : a.body, { status: a.status, headers: out })
    }) as typeof fetch
  }

  close (): void { this.agent.destroy() }
}
