/**
 * Real TPMs for a storm's sample nodes. The server loads its EK CAs
 * (attestation.ek_ca) at start, and each swtpm gets its own local CA from
 * swtpm_setup, so the TPMs are made before the server starts:
 *
 *   prepareSwtpms (root namespace, before the server)  provisions each with
 *       test/attest/swtpm-harness.ts startSwtpm (EK + EK certificate), keeps a copy
 *       of its state and its CA certificates (the ek_ca directory), stops it;
 *   runSwtpm (the simulator, in the nodes' namespace)  `swtpm socket` on that state,
 *       on the namespace's loopback, stopped by its pid.
 */
import { spawn } from 'node:child_process'
import { copyFileSync, cpSync, mkdirSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { startSwtpm } from '../attest/swtpm-harness.js'

export interface SwtpmStates { states: string[]; caDir: string }

export async function prepareSwtpms (n: number, dir: string): Promise<SwtpmStates> {
  const caDir = join(dir, 'ek-ca')
  mkdirSync(caDir, { recursive: true })
  const states: string[] = []
  for (let i = 0; i < n; i++) {
    const s = await startSwtpm()
    try {
      // an orderly TPM2_Shutdown first, else the restarted TPM's quotes say
      // clockInfo.safe = NO (Part 1 §36.7) and the server refuses them; and the
      // harness removes its directory at stop: copy before that
      await s.tool('tpm2_shutdown', [])
      const state = join(dir, `swtpm-${i}`)
      cpSync(join(s.dir, 'state'), state, { recursive: true })
      copyFileSync(s.issuerCert, join(caDir, `issuer-${i}.pem`))
      copyFileSync(s.rootCert, join(caDir, `root-${i}.pem`))
      states.push(state)
    } finally {
      await s.stop()
    }
  }
  return { states, caDir }
}

async function freePortPair (): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)) })
    })
    if (port >= 65535) continue
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer()
      s.once('error', () => resolve(false))
      s.listen(port + 1, '127.0.0.1', () => s.close(() => resolve(true)))
    })
    if (free) return port
  }
  throw new Error('no free pair of loopback ports in 50 tries')
}

export interface RunningSwtpm { tcti: string; pid: number; stop (): Promise<void> }

export async function runSwtpm (state: string): Promise<RunningSwtpm> {
  const port = await freePortPair()
  const proc = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${state}`,
    '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    '--flags', 'not-need-init,startup-clear'], { stdio: 'ignore' })
  if (proc.pid === undefined) throw new Error('swtpm did not start (apt-get install -y swtpm)')
  const pid = proc.pid
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    process.kill(pid, 'SIGTERM')
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))])
    if (proc.exitCode === null && proc.signalCode === null) process.kill(pid, 'SIGKILL')
  }
  const deadline = Date.now() + 10_000
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => { c.destroy(); resolve(true) })
      c.once('error', () => resolve(false))
    })
    if (up) break
    if (Date.now() > deadline || proc.exitCode !== null) { await stop(); throw new Error(`swtpm on ${state} did not listen on ${port} within 10 s`) }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { tcti: `swtpm:host=127.0.0.1,port=${port}`, pid, stop }
}
