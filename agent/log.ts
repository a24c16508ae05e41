/**
 * The agent's console: one line per event, `netboot[step] +T.Ts: message`, where T
 * is seconds since the agent started. Lines go to the console as they happen (the
 * dracut hook points stdout/stderr at /dev/console); nothing is buffered and
 * nothing secret is ever printed (tokens and keys are never arguments here).
 */
import { oneLine } from './errors.js'

export type LogLevel = 'info' | 'warn' | 'error'

export interface AgentLog {
  info (step: string, message: string): void
  warn (step: string, message: string): void
  error (step: string, message: string): void
}

export interface ConsoleLogOptions {
  /** Where lines go (default process.stderr). */
  readonly out?: { write (s: string): unknown }
  /** Milliseconds clock (default Date.now). */
  readonly now?: () => number
}

export function formatLine (level: LogLevel, step: string, elapsedMs: number, message: string): string {
  const mark = level === 'info' ? '' : level === 'warn' ? 'WARNING: ' : 'FAILED: '
  return `netboot[${step}] +${(elapsedMs / 1000).toFixed(1)}s: ${mark}${oneLine(message)}`
}

export function consoleLog (o: ConsoleLogOptions = {}): AgentLog {
  const out = o.out ?? process.stderr
  const now = o.now ?? Date.now
  const t0 = now()
  const line = (level: LogLevel) => (step: string, message: string): void => {
    out.write(`${formatLine(level, step, now() - t0, message)}\n`)
  }
  return { info: line('info'), warn: line('warn'), error: line('error') }
}

/** A log that keeps its lines (tests), optionally also echoing them. */
export function memoryLog (echo?: AgentLog): AgentLog & { readonly lines: string[] } {
  const lines: string[] = []
  const line = (level: LogLevel) => (step: string, message: string): void => {
    lines.push(`${level} ${step}: ${oneLine(message)}`)
    echo?.[level](step, message)
  }
  return { lines, info: line('info'), warn: line('warn'), error: line('error') }
}

/** Bytes as MiB with one decimal, for progress lines. */
export function mib (n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`
}
