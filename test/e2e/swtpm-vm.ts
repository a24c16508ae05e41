/**
 * Software TPMs for QEMU machines: a local EK certificate authority (swtpm-localca)
 * whose state lives in the test's own directory, TPMs provisioned by it with EK
 * certificates (swtpm_setup --create-ek-cert), and one `swtpm socket` per machine
 * run, which QEMU reaches over a control socket (reference/TPM.md, "swtpm in tests").
 *
 * Contract: a CA made by `localCa` issues the EK certificates of every TPM
 * provisioned with it; its directory holds the root (swtpm-localca-rootca-cert.pem)
 * and the intermediate that signs EK certificates (issuercert.pem), and is what
 * netboot's attestation.ek_ca points at. A second CA made the same way is a foreign
 * manufacturer: netboot does not trust its TPMs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { writeLocalCaConfig } from '../attest/swtpm-harness.js'

/** The executables this file runs, with the Debian package of each. */
const TOOLS: readonly [string, string][] = [['swtpm', 'swtpm'], ['swtpm_setup', 'swtpm-tools'], ['swtpm_localca', 'swtpm-tools'], ['certtool', 'gnutls-bin']]

/** "swtpm_setup (Debian package swtpm-tools)" for each tool missing from PATH. */
export function missingSwtpmTools (): string[] {
  return TOOLS.filter(([tool]) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0)
    .map(([tool, pkg]) => `${tool} (Debian package ${pkg})`)
}

export interface LocalCa {
  /** The directory netboot's attestation.ek_ca names: root and issuer certificates (and the CA's key). */
  readonly dir: string
  readonly rootCert: string
  readonly issuerCert: string
  /** swtpm_setup --config file that makes swtpm_setup use this CA. */
  readonly setupConf: string
}

/** A swtpm-localca configuration under `dir`; the CA itself is created by the first provisioning. */
export function localCa (dir: string, manufacturer: string): LocalCa {
  const ca = join(dir, 'ca')
  mkdirSync(ca, { recursive: true })
  const setupConf = writeLocalCaConfig(dir, ca, `--platform-manufacturer ${manufacturer}\n--platform-version 2.1\n--platform-model e2e\n`)
  return { dir: ca, rootCert: join(ca, 'swtpm-localca-rootca-cert.pem'), issuerCert: join(ca, 'issuercert.pem'), setupConf }
}

/**
 * A TPM 2.0 state in `stateDir` with an RSA-2048 EK (and an ECC P-384 one), EK and
 * platform certificates issued by `ca`, and only the SHA-256 PCR bank active.
 */
export function provisionTpm (ca: LocalCa, stateDir: string): void {
  mkdirSync(stateDir, { recursive: true })
  const r = spawnSync('swtpm_setup', [
    '--tpm2', '--tpm-state', stateDir, '--create-ek-cert', '--create-platform-cert', '--pcr-banks', 'sha256',
    '--config', ca.setupConf, '--logfile', join(stateDir, 'setup.log'), '--overwrite',
  ], { encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0) throw new Error(`swtpm_setup for ${stateDir} failed (${r.status ?? r.signal}): ${r.stderr}${r.error?.message ?? ''}`)
  if (!existsSync(ca.rootCert) || !existsSync(ca.issuerCert)) throw new Error(`swtpm_setup left no CA certificates in ${ca.dir}`)
}

export interface VmTpm {
  readonly socket: string
  readonly pid: number
  /** Kills it (by pid) if it is still running; swtpm normally ends when QEMU closes the socket. */
  stop (): Promise<void>
}

/**
 * Starts `swtpm socket` for one machine run. QEMU sends the TPM's init and startup
 * itself, so no --flags; --terminate ends swtpm when QEMU closes the connection.
 */
export async function startVmTpm (stateDir: string, socket: string, logFile: string): Promise<VmTpm> {
  const proc: ChildProcess = spawn('swtpm', [
    'socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--ctrl', `type=unixio,path=${socket}`,
    '--terminate', '--log', `file=${logFile},level=1`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const pid = proc.pid
  if (pid === undefined) throw new Error('swtpm did not start')
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const alive = (): boolean => proc.exitCode === null && proc.signalCode === null
  const stop = async (): Promise<void> => {
    if (!alive()) return
    process.kill(pid, 'SIGTERM')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
    if (alive()) process.kill(pid, 'SIGKILL')
  }
  // The control socket appears once swtpm listens: bounded wait (5 s).
  for (let i = 0; i < 100 && !existsSync(socket); i++) {
    if (!alive()) throw new Error(`swtpm exited (${proc.exitCode ?? proc.signalCode}) before listening on ${socket}: ${stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  if (!existsSync(socket)) {
    await stop()
    throw new Error(`swtpm did not create ${socket} within 5 s: ${stderr}`)
  }
  return { socket, pid, stop }
}
