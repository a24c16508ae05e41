import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export const CLI = fileURLToPath(new URL('../../dist/server/cli/main.js', import.meta.url))

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs the built `netboot` CLI; never throws on a non-zero exit. */
export async function netboot (args: readonly string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<CliResult> {
  return await new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, NETBOOT_TOKEN: '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
    if (input !== undefined) child.stdin?.end(input)
  })
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Starts `netboot serve` and waits until the admin API answers. Killed (by pid) at teardown. */
export async function startServe (t: Test, args: readonly string[], adminUrl: string): Promise<{ proc: ChildProcess; log: () => string; exited: Promise<number | null> }> {
  let log = ''
  const proc = spawn(process.execPath, [CLI, ...args, 'serve'], { stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout.on('data', (d: Buffer) => { log += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { log += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal === null ? null : -1))))
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      const r = await fetch(`${adminUrl}/healthz`)
      if (r.ok) break
    } catch { /* not up yet */ }
    if (proc.exitCode !== null) throw new Error(`netboot serve exited early:\n${log}`)
    if (Date.now() > deadline) throw new Error(`netboot serve did not come up:\n${log}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { proc, log: () => log, exited }
}
