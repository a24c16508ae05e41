/**
 * Structured JSON logs (pino). Secrets never reach a log line: the keys below are
 * censored wherever they appear, and code logs token ids, never token values.
 *
 * What is censored (value replaced by "[redacted]"):
 *  - a top-level `token`, `secret`, `password` or `authorization`;
 *  - the same keys one level down, in any top-level object (`{ x: { token } }`),
 *    in logged objects and in child-logger bindings alike;
 *  - `req.headers.authorization`, `req.headers.cookie`,
 *    `req.headers["x-netboot-token"]`, `res.headers["set-cookie"]`,
 *    `config.admin.token`.
 *
 * The one-level-down rule is done here (`censorNested`, run by pino's log and
 * bindings formatters and on every child's bindings) instead of pino's `*.key` redact paths: with a wildcard
 * first segment pino sends every key of every line through its redactor and
 * JSON.stringify, which measured about 9 µs of a 20 µs line (a DHCP reply line
 * at info); the explicit paths stay with pino, which only touches the keys named.
 * The nested rule sees a value as it was logged, before pino's serializers (req,
 * res, err), whose outputs have no such keys.
 */
import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/** Keys censored at the top level and one level down. */
export const SECRET_KEYS: readonly string[] = ['token', 'secret', 'password', 'authorization']

/** Paths censored by pino's own redaction (no wildcard: see above). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-netboot-token"]',
  'res.headers["set-cookie"]',
  ...SECRET_KEYS,
  'config.admin.token',
]

export const CENSOR = '[redacted]'

const hasOwn = Object.prototype.hasOwnProperty

function isPlainish (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v)
}

/**
 * `obj` with SECRET_KEYS censored in each top-level object value; copies only
 * what it changes (the caller's objects are never modified) and returns `obj`
 * itself when there is nothing to censor.
 */
export function censorNested<T extends Record<string, unknown>> (obj: T): T {
  let out: Record<string, unknown> | undefined
  for (const k in obj) {
    if (!hasOwn.call(obj, k)) continue
    const v = obj[k]
    if (!isPlainish(v)) continue
    let copy: Record<string, unknown> | undefined
    for (const s of SECRET_KEYS) {
      if (hasOwn.call(v, s) && v[s] !== undefined) {
        copy ??= { ...v }
        copy[s] = CENSOR
      }
    }
    if (copy === undefined) continue
    out ??= { ...obj }
    out[k] = copy
  }
  return (out ?? obj) as T
}

export function createLogger (level: LevelWithSilent, dest?: DestinationStream): Logger {
  const root = pino({
    level,
    base: { svc: 'netboot' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: {
      level: (label) => ({ level: label }),
      log: censorNested,
      bindings: censorNested,
    },
  }, dest ?? pino.destination({ dest: 1, sync: false }))
  // pino gives children an identity bindings formatter; every child is an
  // Object.create of its parent, so this one override covers all descendants
  const child = root.child
  root.child = function (this: Logger, bindings, options) {
    return child.call(this, censorNested(bindings), options)
  } as Logger['child']
  return root
}

/**
 * At most `perSecond` lines a second for one noisy kind of warning (bad packets from
 * the network: a flood, spoofed sources included, must not flood the log); the next
 * line after a suppressed stretch says how many were dropped.
 */
export class LogLimiter {
  private windowStart = 0
  private count = 0
  private suppressed = 0

  constructor (
    private readonly log: Logger,
    private readonly perSecond: number,
    /** Prefix of the "suppressed" line, e.g. 'tftp'. */
    private readonly what: string,
  ) {}

  warn (obj: Record<string, unknown>, msg: string): void {
    const now = Date.now()
    if (now - this.windowStart >= 1000) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, `${this.what}: similar log lines suppressed`)
      this.windowStart = now
      this.count = 0
      this.suppressed = 0
    }
    if (this.count++ < this.perSecond) this.log.warn(obj, msg)
    else this.suppressed++
  }
}
