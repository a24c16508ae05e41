/**
 * What every netboot HTTP server shares: the error mapping onto the catalogue
 * (4xx with a stable code, never a stack trace), request metrics, and the
 * health endpoint.
 */
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { NetbootError, type ErrorDetail } from '../errors.js'
import type { Metrics } from '../metrics.js'

export function installCommon (app: FastifyInstance, server: string, metrics: Metrics): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const e = toNetbootError(err)
    logRequestError(req.log, err, e)
    void reply.code(e.status).send(e.toJSON())
  })
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new NetbootError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`).toJSON())
  })
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    metrics.httpRequests.inc({ server, route, method: req.method, status: String(reply.statusCode) })
    metrics.httpDuration.observe({ server, route }, reply.elapsedTime / 1000)
  })
}

/** The log line of a failed request: a refusal (4xx) at info with its code, a failure (5xx) at error with the error. */
export function logRequestError (log: FastifyBaseLogger, err: unknown, e: NetbootError): void {
  if (e.status >= 500) log.error({ err }, 'request failed')
  else log.info({ code: e.code, why: e.message }, 'request refused')
}

/** Maps fastify's own errors (validation, body limits, content types) onto catalogue codes. */
export function toNetbootError (err: FastifyError | Error): NetbootError {
  if (err instanceof NetbootError) return err
  const fe = err as FastifyError
  if (fe.validation !== undefined) {
    const details: ErrorDetail[] = fe.validation.map((v) => ({
      where: `${fe.validationContext ?? 'body'}${v.instancePath.replaceAll('/', '.')}`,
      message: v.keyword === 'additionalProperties'
        ? `unknown property '${(v.params as { additionalProperty?: string }).additionalProperty ?? ''}'`
        : v.message ?? 'invalid',
    }))
    return new NetbootError('BAD_REQUEST', `invalid request: ${details.map((d) => `${d.where ?? ''} ${d.message}`).join('; ')}`, details)
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new NetbootError('PAYLOAD_TOO_LARGE', 'request body too large')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new NetbootError('UNSUPPORTED_MEDIA_TYPE', 'unsupported content type')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new NetbootError('BAD_REQUEST', 'request body is not valid JSON')
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new NetbootError('BAD_REQUEST', fe.message)
  }
  return new NetbootError('INTERNAL', 'internal error')
}
