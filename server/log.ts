/**
 * Structured JSON logs (pino). Secrets never reach a log line: the paths below are
 * censored wherever they appear, and code logs token ids, never token values.
 */
import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-netboot-token"]',
  'res.headers["set-cookie"]',
  'token', '*.token', 'secret', '*.secret', 'password', '*.password', 'authorization', '*.authorization',
  'config.admin.token',
]

export function createLogger (level: LevelWithSilent, dest?: DestinationStream): Logger {
  return pino({
    level,
    base: { svc: 'netboot' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  }, dest ?? pino.destination({ dest: 1, sync: false }))
}
