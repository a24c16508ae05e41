/**
 * The node server's fast path: a node:http handler in front of fastify that
 * answers the hot routes itself and hands every other request, untouched, to
 * fastify's handler (fastify's `serverFactory` option gives us the server).
 *
 *   GET|HEAD /boot/<mac>[.ipxe]      the node's iPXE script (boot.ts: the same route on fastify)
 *   POST     /attest/v1/start        protobuf in, protobuf out (attest.ts: the same routes on fastify)
 *   POST     /attest/v1/finish
 *
 * In a boot storm these are called thousands of times a second and fastify's
 * per-request pipeline (router, hooks, content-type parser, reply) cost more than
 * the work itself (docs/bench-chainload.md). A boot script is kept as response
 * bytes per URL segment while store.generation holds (BootService's own cache
 * rule), so a repeated request is answered in its request callback.
 * What a client and an operator see is
 * fastify's behaviour, kept on purpose and checked side by side with fastify by
 * test/http/node-fast-path.test.ts:
 *
 *  - status codes and catalogue JSON bodies (common.ts toNetbootError; 4xx logged
 *    at info 'request refused', 5xx at error 'request failed', no stack to the client);
 *  - metrics netboot_http_requests_total / _duration_seconds with fastify's route
 *    labels ('/boot/:mac', '/attest/v1/start', '/attest/v1/finish');
 *  - the client address of fastify's `req.ip` with trustProxy = http.trusted_proxies
 *    (clientAddress below);
 *  - the request log lines 'incoming request' / 'request completed' with fastify's
 *    fields and request ids from the same counter (test/e2e/timeline.ts reads them
 *    for /boot/); for /attest/ only when the log level is debug (quietRequestLog);
 *  - while the server closes, requests go to fastify, which answers 503 with
 *    Connection: close (return503OnClosing).
 *
 * Anything the fast path does not recognise exactly (another method, a query
 * string on /attest/, a percent-escape or unusual character in the MAC, a
 * content type other than exactly application/x-protobuf) goes to fastify, which
 * answers it as before (404 for an unknown method on these paths, 415 for a wrong
 * content type). Better than before: a body over MAX_ATTEST_BODY is refused with
 * 413 and the connection closed without reading the rest (fastify drained it),
 * and an attestation body that does not arrive within bodyTimeoutMs drops the
 * connection (fastify waited forever).
 */
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import { PROTOBUF_CONTENT_TYPE } from '../../../proto/index.js'
import { MAX_ATTEST_BODY } from '../../attest/wire.js'
import type { AttestationService } from '../../attest/service.js'
import type { BootService } from '../../boot/service.js'
import { NetbootError } from '../../errors.js'
import type { Metrics } from '../../metrics.js'
import { logRequestError, toNetbootError } from '../common.js'
import { attestFinishReply, attestStartReply } from './attest.js'
import { bootLogScript, SCRIPT_CONTENT_TYPE } from './boot.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void
type ScriptResult = Awaited<ReturnType<BootService['scriptForMac']>>

/** How long an attestation body may take to arrive, from its headers (1.1 MiB at most). */
export const ATTEST_BODY_TIMEOUT_MS = 30_000

export interface FastPathOptions {
  readonly metrics: Metrics
  /** http.trusted_proxies: peers whose X-Forwarded-For is believed (fastify's trustProxy list). */
  readonly trustedProxies?: readonly string[]
  /** Log the request lines of /attest/ (only when the log level is debug, as on fastify). */
  readonly debug: boolean
  readonly bodyTimeoutMs?: number
}

export interface FastPathRoutes {
  readonly boot?: BootService
  /** The store behind `boot`: its generation says when a cached script is stale (BootService's own rule). */
  readonly store?: { readonly generation: number }
  readonly attest?: AttestationService
}

/** Scripts kept as response bytes per URL segment (BootService keeps the same number per MAC). */
export const FAST_SCRIPT_CACHE_MAX = 50_000

/** The options fastify hands its serverFactory (its own, lib/server.js reads these). */
interface ServerFactoryOptions {
  readonly http?: ServerOptions
  readonly keepAliveTimeout?: number
  readonly requestTimeout?: number
  readonly connectionTimeout?: number
  readonly maxRequestsPerSocket?: number
}

const JSON_TYPE = 'application/json; charset=utf-8'
/** A MAC as iPXE's ${net0/mac} or a person writes it, optionally `.ipxe`; anything else goes to fastify. */
const MAC_SEGMENT = /^[0-9A-Za-z:._-]{1,100}$/
const SERVER = 'node'

/**
 * fastify's `req.ip` with trustProxy = a list of addresses (@fastify/proxy-addr):
 * walk from the socket's peer back through X-Forwarded-For (right to left) while
 * the hop is trusted; the answer is the first untrusted hop, or the leftmost one.
 * An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches its IPv4 entry.
 */
export function clientAddress (socketAddress: string, xff: string | undefined, trusted: ReadonlySet<string>): string {
  if (trusted.size === 0 || xff === undefined || xff === '' || !isTrusted(socketAddress, trusted)) return socketAddress
  const hops = xff.split(',')
  let addr = socketAddress
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim()
    if (hop === '') continue
    addr = hop
    if (!isTrusted(hop, trusted)) return hop
  }
  return addr
}

function isTrusted (addr: string, trusted: ReadonlySet<string>): boolean {
  return trusted.has(addr) || (addr.startsWith('::ffff:') && trusted.has(addr.slice(7)))
}

/** The request as fastify's log serializer reads it (method, url, host, ip, socket). */
interface LoggedRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  readonly host: string
  readonly ip: string
  readonly socket: IncomingMessage['socket']
}

export class NodeFastPath {
  private log: Logger | undefined
  private routes: FastPathRoutes = {}
  private infoEnabled = false
  private debugEnabled = false
  private closing = false
  /** Requests answered here and handed to fastify, for tests and debugging. */
  readonly stats = { fast: 0, handedOver: 0 }
  private nextId = 0
  private readonly trusted: ReadonlySet<string>
  private readonly bodyTimeoutMs: number
  /**
   * The answer for a /boot/ segment while store.generation stays the same: a hit is
   * answered in the request's own callback, without a promise (measured: the
   * asynchronous answer cost ~40% more CPU per request, mostly in writev).
   */
  private readonly scripts = new Map<string, { generation: number; result: ScriptResult; body: Buffer }>()

  constructor (private readonly o: FastPathOptions) {
    this.trusted = new Set(o.trustedProxies ?? [])
    this.bodyTimeoutMs = o.bodyTimeoutMs ?? ATTEST_BODY_TIMEOUT_MS
  }

  /** fastify's `serverFactory`: the server fastify would build (lib/server.js), with the fast handler in front. */
  readonly serverFactory = (handler: Handler, opts: ServerFactoryOptions): Server => {
    const server = createServer(opts.http ?? {}, (req, res) => { this.handle(req, res, handler) })
    if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout
    if (opts.requestTimeout !== undefined) server.requestTimeout = opts.requestTimeout
    if (opts.connectionTimeout !== undefined) server.setTimeout(opts.connectionTimeout)
    if (opts.maxRequestsPerSocket !== undefined && opts.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = opts.maxRequestsPerSocket
    return server
  }

  /** fastify's `genReqId`: one counter for both paths, so request ids never repeat in the log. */
  readonly genReqId = (): string => {
    this.nextId = (this.nextId + 1) & 0x7fffffff
    return `req-${this.nextId.toString(36)}`
  }

  /** Once fastify is built: its logger (with its serializers) and the routes to serve. */
  attach (log: Logger, routes: FastPathRoutes): void {
    this.log = log
    this.routes = routes
    this.infoEnabled = log.isLevelEnabled('info')
    this.debugEnabled = log.isLevelEnabled('debug')
  }

  /** From fastify's preClose hook: from now on fastify answers everything (503 while closing). */
  close (): void { this.closing = true }

  private handle (req: IncomingMessage, res: ServerResponse, fallback: Handler): void {
    const url = req.url ?? ''
    const method = req.method ?? ''
    if (!this.closing && this.log !== undefined) {
      if (url.startsWith('/boot/') && (method === 'GET' || method === 'HEAD') && this.routes.boot !== undefined) {
        const q = url.indexOf('?')
        const seg = q < 0 ? url.slice(6) : url.slice(6, q)
        if (MAC_SEGMENT.test(seg)) { this.stats.fast++; this.boot(req, res, url, method, seg, this.routes.boot); return }
      } else if (method === 'POST' && this.routes.attest !== undefined && req.headers['content-type'] === PROTOBUF_CONTENT_TYPE) {
        if (url === '/attest/v1/start' || url === '/attest/v1/finish') { this.stats.fast++; this.attest(req, res, url, this.routes.attest); return }
      }
    }
    this.stats.handedOver++
    fallback(req, res)
  }

  private begin (req: IncomingMessage, url: string, method: string, quiet: boolean): Exchange {
    const log = this.log!
    const ip = clientAddress(req.socket.remoteAddress ?? '', headerValue(req.headers['x-forwarded-for']), this.trusted)
    const x = new Exchange(this.genReqId(), log, ip, performance.now(), !quiet && this.infoEnabled)
    if (x.logLines) log.info({ reqId: x.id, req: this.logged(req, url, method, ip) }, 'incoming request')
    return x
  }

  private logged (req: IncomingMessage, url: string, method: string, ip: string): LoggedRequest {
    const xfh = req.headers['x-forwarded-host']
    const host = typeof xfh === 'string' && xfh !== '' && isTrusted(req.socket.remoteAddress ?? '', this.trusted)
      ? xfh.slice(xfh.lastIndexOf(',') + 1).trim()
      : req.headers.host ?? ''
    return { method, url, headers: req.headers, host, ip, socket: req.socket }
  }

  private boot (req: IncomingMessage, res: ServerResponse, url: string, method: string, seg: string, boot: BootService): void {
    const x = this.begin(req, url, method, false)
    const generation = this.routes.store?.generation
    const hit = this.scripts.get(seg)
    if (hit !== undefined && generation !== undefined && hit.generation === generation) { this.script(x, res, method, seg, hit.result, hit.body); return }
    boot.scriptForMac(seg.endsWith('.ipxe') ? seg.slice(0, -5) : seg).then((r) => {
      const body = Buffer.from(r.script, 'utf8')
      if (generation !== undefined) {
        if (this.scripts.size >= FAST_SCRIPT_CACHE_MAX) this.scripts.clear()
        this.scripts.set(seg, { generation, result: r, body })
      }
      this.script(x, res, method, seg, r, body)
    }, (err: unknown) => { this.fail(x, res, '/boot/:mac', method, err) })
  }

  private script (x: Exchange, res: ServerResponse, method: string, seg: string, r: ScriptResult, body: Buffer): void {
    // a request logger only when the line is written (a child per request costs as much as the route)
    if (r.kind === 'boot' ? this.debugEnabled : this.infoEnabled) bootLogScript(x.child(), seg, r)
    this.send(x, res, '/boot/:mac', method, 200, { 'content-type': SCRIPT_CONTENT_TYPE, 'cache-control': 'no-store', 'content-length': body.length }, body)
  }

  private attest (req: IncomingMessage, res: ServerResponse, url: string, service: AttestationService): void {
    const x = this.begin(req, url, 'POST', !this.o.debug)
    const route = url
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > MAX_ATTEST_BODY) {
      this.tooLarge(x, req, res, route)
      return
    }
    const chunks: Buffer[] = []
    let received = 0
    let done = false
    const finish = (): void => {
      done = true
      clearTimeout(timer)
      req.removeListener('data', onData)
      req.removeListener('end', onEnd)
      req.removeListener('error', onAbort)
      req.removeListener('close', onClose)
    }
    const onData = (c: Buffer): void => {
      received += c.length
      if (received > MAX_ATTEST_BODY) { finish(); req.pause(); this.tooLarge(x, req, res, route); return }
      chunks.push(c)
    }
    const onEnd = (): void => {
      finish()
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received)
      const reply = route === '/attest/v1/start' ? attestStartReply(service, body, x.ip) : attestFinishReply(service, body, x.ip)
      reply.then(
        (out) => { this.send(x, res, route, 'POST', 200, { 'content-type': PROTOBUF_CONTENT_TYPE, 'content-length': out.length }, out) },
        (err: unknown) => { this.fail(x, res, route, 'POST', err) },
      )
    }
    // The client went away before its body was complete: nobody to answer.
    const onAbort = (): void => { if (!done) { finish(); x.child().info({ received }, 'request aborted: the body was not complete') } }
    const onClose = (): void => { if (!done && !req.complete) onAbort() }
    const timer = setTimeout(() => {
      if (done) return
      finish()
      x.child().info({ received, ms: this.bodyTimeoutMs }, 'request aborted: the body did not arrive in time')
      req.socket.destroy()
    }, this.bodyTimeoutMs)
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onAbort)
    req.on('close', onClose)
  }

  /** 413 without reading (the rest of) the body; Connection: close, so the unread bytes die with the socket. */
  private tooLarge (x: Exchange, req: IncomingMessage, res: ServerResponse, route: string): void {
    res.shouldKeepAlive = false
    res.on('finish', () => { req.socket.destroySoon() })
    this.fail(x, res, route, 'POST', new NetbootError('PAYLOAD_TOO_LARGE', 'request body too large'))
  }

  private fail (x: Exchange, res: ServerResponse, route: string, method: string, err: unknown): void {
    const e = toNetbootError(err instanceof Error ? err : new Error(String(err)))
    logRequestError(x.child(), err, e)
    const body = Buffer.from(JSON.stringify(e.toJSON()))
    this.send(x, res, route, method, e.status, { 'content-type': JSON_TYPE, 'content-length': body.length }, body)
  }

  private send (x: Exchange, res: ServerResponse, route: string, method: string, status: number, headers: Record<string, string | number>, body: Buffer): void {
    if (res.headersSent || res.destroyed) return
    res.writeHead(status, headers)
    res.end(body)
    const ms = performance.now() - x.start
    this.o.metrics.httpRequests.inc({ server: SERVER, route, method, status: String(status) })
    this.o.metrics.httpDuration.observe({ server: SERVER, route }, ms / 1000)
    if (x.logLines) this.log!.info({ reqId: x.id, res: { statusCode: status }, responseTime: ms }, 'request completed')
  }
}

/** One request on the fast path: its id, peer, start time, and a request logger made only when needed. */
class Exchange {
  private logger: Logger | undefined
  constructor (
    readonly id: string,
    private readonly log: Logger,
    readonly ip: string,
    readonly start: number,
    readonly logLines: boolean,
  ) {}

  /** Like fastify's req.log: the server's logger with this request's reqId. */
  child (): Logger {
    this.logger ??= this.log.child({ reqId: this.id })
    return this.logger
  }
}

function headerValue (h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h.join(', ') : h
}
