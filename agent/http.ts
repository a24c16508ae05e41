/**
 * The agent's HTTP client for the netboot server: node's fetch (undici) with a
 * timeout on every request, the server's refusals decoded into their catalogue
 * codes (`{error: {code, message}}`, server/errors.ts), and the server's clock
 * learned from each answer's Date header (RFC 9110 §6.6.1), because the node's
 * clock in the initramfs is whatever the RTC says and DPoP proofs must carry the
 * server's idea of "now" (RFC 9449 §4.3 iat, checked within ±60 s).
 */
import { AgentError, type FailureClass } from './errors.js'
import type { Clock } from './backoff.js'

export type FetchFn = typeof fetch

export interface ServerApiOptions {
  /** netboot.server: the base every path is appended to (and DPoP's htu). */
  readonly base: string
  readonly fetch?: FetchFn
  readonly clock: Clock
  /** Per-request timeout (whole request, body included) unless the call says otherwise. */
  readonly timeoutMs: number
}

export interface ServerRefusal {
  readonly status: number
  /** The catalogue code, when the body was the server's JSON error. */
  readonly code?: string
  readonly message: string
  readonly retryAfter?: number
}

export class ServerApi {
  readonly base: string
  readonly fetch: FetchFn
  readonly clock: Clock
  readonly timeoutMs: number
  /** Server clock minus local clock, in ms, from the last Date header seen. */
  offsetMs = 0

  constructor (o: ServerApiOptions) {
    this.base = o.base.replace(/\/+$/, '')
    this.fetch = o.fetch ?? fetch
    this.clock = o.clock
    this.timeoutMs = o.timeoutMs
  }

  url (path: string): string {
    return `${this.base}${path.startsWith('/') ? path : `/${path}`}`
  }

  /** Now by the server's clock, in ms. */
  serverNow (): number {
    return this.clock.now() + this.offsetMs
  }

  /**
   * One request. Network failures and timeouts throw AGENT_HTTP (retryable) in
   * `failure`'s class; any HTTP answer is returned, after its body is read.
   */
  async request (failure: FailureClass, method: 'GET' | 'POST', path: string, o: { body?: Uint8Array; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
    const url = this.url(path)
    const timeoutMs = o.timeoutMs ?? this.timeoutMs
    let res: Response
    let body: Buffer
    try {
      res = await this.fetch(url, {
        method,
        headers: o.headers ?? {},
        ...(o.body !== undefined ? { body: o.body } : {}),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      })
      body = Buffer.from(await res.arrayBuffer())
    } catch (e) {
      throw new AgentError('AGENT_HTTP', failure, `${method} ${url}: ${describeFetchError(e, timeoutMs)}`, { retryable: true, cause: e })
    }
    this.learnClock(res.headers)
    return { status: res.status, headers: res.headers, body }
  }

  learnClock (h: Headers): void {
    const d = h.get('date')
    if (d === null) return
    const t = Date.parse(d)
    // Date has one-second resolution: the server's now is within [t, t + 1000).
    if (Number.isFinite(t)) this.offsetMs = t + 500 - this.clock.now()
  }
}

/** The server's error body, if it is one. */
export function refusalOf (status: number, headers: Headers, body: Buffer): ServerRefusal {
  const retryAfter = parseRetryAfter(headers.get('retry-after'))
  const base = { status, ...(retryAfter !== undefined ? { retryAfter } : {}) }
  try {
    const j = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } }
    if (typeof j.error?.code === 'string') {
      return { ...base, code: j.error.code, message: typeof j.error.message === 'string' ? j.error.message : '' }
    }
  } catch { /* not JSON */ }
  return { ...base, message: body.toString('utf8').slice(0, 200) }
}

/** 5xx and 429 are worth retrying (with the server's Retry-After when it gave one). */
export function isBusy (status: number): boolean {
  return status >= 500 || status === 429
}

/** AGENT_SERVER_BUSY for a 5xx/429 answer. */
export function busyError (failure: FailureClass, what: string, r: ServerRefusal): AgentError {
  return new AgentError('AGENT_SERVER_BUSY', failure, `${what}: the server answered ${r.status}${r.code !== undefined ? ` ${r.code}` : ''}${r.message !== '' ? `: ${r.message}` : ''}`, {
    retryable: true, ...(r.code !== undefined ? { serverCode: r.code } : {}), ...(r.retryAfter !== undefined ? { retryAfter: r.retryAfter } : {}),
  })
}

/** Retry-After (RFC 9110 §10.2.3) in seconds: delay-seconds only. */
export function parseRetryAfter (v: string | null): number | undefined {
  if (v === null || !/^\d{1,6}$/.test(v.trim())) return undefined
  return Number(v.trim())
}

/** undici hides the reason in `cause`: ECONNREFUSED, ECONNRESET, a timeout… */
export function describeFetchError (e: unknown, timeoutMs?: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return timeoutMs !== undefined ? `no answer within ${(timeoutMs / 1000).toFixed(0)} s` : 'aborted'
  const c = err?.cause
  if (c?.code !== undefined) return `${c.code}${c.message !== undefined && !c.message.includes(c.code) ? ` (${c.message})` : ''}`
  if (c?.message !== undefined) return c.message
  return err?.message ?? String(e)
}
