/** Real TFTP clients (Debian: tftp-hpa, atftp, curl) driven against a server on loopback. */

import { readFile } from 'node:fs/promises'
import { LOOPBACK, run, type RunResult } from './helpers.js'

export const CLIENT_TOOLS = ['tftp', 'atftp', 'curl'] as const

export interface ClientRun extends RunResult {
  /** What the client wrote to the local file, or null if it wrote none. */
  output: Buffer | null
  /** stdout and stderr together, for matching error messages. */
  text: string
}

async function finish(r: RunResult, local: string): Promise<ClientRun> {
  const output = await readFile(local).catch(() => null)
  return { ...r, output, text: r.stdout + r.stderr }
}

/** tftp-hpa: RFC 1350 only (5.2 negotiates no options); exits 0 even on error, so callers check `text`. */
export async function tftpHpaGet(
  port: number,
  remote: string,
  local: string,
  opts: { mode?: 'binary' | 'ascii'; verbose?: boolean; timeoutMs?: number } = {},
): Promise<ClientRun> {
  const args = [...(opts.verbose ? ['-v'] : []), '-m', opts.mode ?? 'binary', LOOPBACK, String(port), '-c', 'get', remote, local]
  return finish(await run('tftp', args, { timeoutMs: opts.timeoutMs ?? 60_000 }), local)
}

/** tftp-hpa driven through its interactive prompt on stdin. */
export async function tftpHpaInteractive(port: number, commands: readonly string[], local: string): Promise<ClientRun> {
  return finish(await run('tftp', [LOOPBACK, String(port)], { input: commands.join('\n') + '\nquit\n' }), local)
}

export async function tftpHpaPut(port: number, local: string, remote: string): Promise<ClientRun> {
  return finish(await run('tftp', ['-m', 'binary', LOOPBACK, String(port), '-c', 'put', local, remote]), local)
}

/** curl's TFTP: blksize via --tftp-blksize (sends tsize and timeout too); exit 68 not found, 69 access violation. */
export async function curlGet(
  port: number,
  remote: string,
  local: string,
  opts: { blksize?: number; noOptions?: boolean; timeoutMs?: number } = {},
): Promise<ClientRun> {
  const args = ['-sS', '--path-as-is', '--max-time', '120']
  if (opts.blksize !== undefined) args.push('--tftp-blksize', String(opts.blksize))
  if (opts.noOptions) args.push('--tftp-no-options')
  args.push(`tftp://${LOOPBACK}:${port}/${remote}`, '-o', local)
  return finish(await run('curl', args, { timeoutMs: opts.timeoutMs ?? 60_000 }), local)
}

export async function curlPut(port: number, local: string, remote: string): Promise<ClientRun> {
  return finish(await run('curl', ['-sS', '--max-time', '20', '-T', local, `tftp://${LOOPBACK}:${port}/${remote}`]), local)
}

/** atftp (0.8): options as "name value" (blksize, tsize, timeout, windowsize); non-zero exit on error. */
export async function atftpGet(
  port: number,
  remote: string,
  local: string,
  opts: { options?: readonly string[]; timeoutMs?: number } = {},
): Promise<ClientRun> {
  const args = ['--get', '-r', remote, '-l', local]
  for (const o of opts.options ?? []) args.push('--option', o)
  args.push(LOOPBACK, String(port))
  return finish(await run('atftp', args, { timeoutMs: opts.timeoutMs ?? 60_000 }), local)
}

export async function atftpPut(port: number, local: string, remote: string): Promise<ClientRun> {
  return finish(await run('atftp', ['--put', '-r', remote, '-l', local, LOOPBACK, String(port)]), local)
}
