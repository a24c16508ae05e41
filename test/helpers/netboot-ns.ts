/**
 * A netboot server running inside a network namespace: its own data directory,
 * config and log, started with the built CLI and stopped (by pid) at teardown.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import type { Test } from 'tap'
import { CLI } from './cli.js'
import type { Netns } from './netns.js'

export interface NsServer {
  proc: ChildProcess
  log (): string
  exited: Promise<number | null>
  /** Resolves when a log line matches, or rejects after the timeout. */
  waitFor (re: RegExp, timeoutMs?: number): Promise<void>
}

export async function startNsServer (t: Test, ns: Netns, dir: string, configYaml: string): Promise<NsServer> {
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, configYaml)
  let log = ''
  const proc = ns.spawn(process.execPath, [CLI, '-c', cfg, 'serve'])
  proc.stdout!.on('data', (d: Buffer) => { log += d.toString() })
  proc.stderr!.on('data', (d: Buffer) => { log += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, sig) => resolve(code ?? (sig !== null ? -1 : null))))
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  const waitFor = async (re: RegExp, timeoutMs = 20_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!re.test(log)) {
      if (proc.exitCode !== null) throw new Error(`netboot exited (${proc.exitCode}):\n${log}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}:\n${log.slice(-4000)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  await waitFor(/"msg":"netboot serving"/)
  return { proc, log: () => log, exited, waitFor }
}
