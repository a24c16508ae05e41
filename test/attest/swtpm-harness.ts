// swtpm + tpm2-tools harness for real-peer tests: a provisioned swtpm (EK
// certificates from a local CA kept in the test's own temp directory) listening on
// loopback ports of its own, and a runner for tpm2-tools pointed at it.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const REQUIRED_TOOLS = ['swtpm', 'swtpm_setup', 'swtpm_localca', 'tpm2_createek', 'tpm2_createak', 'tpm2_activatecredential', 'tpm2_quote']

/** Names of required executables that are not on PATH. */
export function missingTools(): string[] {
  return REQUIRED_TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0)
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = 20000 + 2 * Math.floor(Math.random() * 15000)
    if ((await portFree(p)) && (await portFree(p + 1))) return p
  }
  throw new Error('no free loopback port pair')
}

function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const c = connect(port, '127.0.0.1')
      c.once('connect', () => {
        c.destroy()
        resolve()
      })
      c.once('error', () => {
        c.destroy()
        if (Date.now() > deadline) reject(new Error(`swtpm did not listen on ${port}`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })
}

export interface ToolResult {
  stdout: string
  stderr: string
}

export interface Swtpm {
  readonly dir: string
  readonly port: number
  readonly pid: number
  /** CA certificates the EK certificate chains to: the local CA's issuer and root. */
  readonly issuerCert: string
  readonly rootCert: string
  /** Runs a tpm2-tools command against this swtpm in `dir`; rejects on non-zero exit. */
  tool(cmd: string, args: string[]): Promise<ToolResult>
  /** Flushes all transient objects (swtpm has no resource manager: 3 slots). */
  flush(): Promise<void>
  stop(): Promise<void>
}

/**
 * swtpm-localca's configuration in `dir` for a CA whose state lives in `ca`:
 * swtpm-localca.conf, swtpm-localca.options (`options`) and the swtpm_setup.conf that
 * makes swtpm_setup issue EK and platform certificates from it (SHA-256 bank only).
 * Returns the swtpm_setup.conf path.
 */
export function writeLocalCaConfig (dir: string, ca: string, options: string): string {
  writeFileSync(join(dir, 'swtpm-localca.conf'), [
    `statedir = ${ca}`,
    `signingkey = ${join(ca, 'signkey.pem')}`,
    `issuercert = ${join(ca, 'issuercert.pem')}`,
    `certserial = ${join(ca, 'certserial')}`,
    '',
  ].join('\n'))
  writeFileSync(join(dir, 'swtpm-localca.options'), options)
  const setupConf = join(dir, 'swtpm_setup.conf')
  writeFileSync(setupConf, [
    'create_certs_tool = /usr/bin/swtpm_localca',
    `create_certs_tool_config = ${join(dir, 'swtpm-localca.conf')}`,
    `create_certs_tool_options = ${join(dir, 'swtpm-localca.options')}`,
    'active_pcr_banks = sha256',
    '',
  ].join('\n'))
  return setupConf
}

/**
 * Provisions and starts an swtpm: `swtpm_setup --tpm2 --create-ek-cert
 * --create-platform-cert` with swtpm-localca state under the temp dir, then
 * `swtpm socket` on two free loopback ports. Call stop() to kill it (by pid) and
 * remove the directory.
 */
export async function startSwtpm(): Promise<Swtpm> {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-swtpm-'))
  const state = join(dir, 'state')
  const ca = join(dir, 'ca')
  spawnSync('mkdir', ['-p', state, ca])
  writeLocalCaConfig(dir, ca, existsSync('/etc/swtpm-localca.options')
    ? readFileSync('/etc/swtpm-localca.options', 'utf8')
    : '--platform-manufacturer netboot\n--platform-version 2.1\n--platform-model test\n')
  const setup = spawnSync('swtpm_setup', [
    '--tpm2', '--tpm-state', state, '--create-ek-cert', '--create-platform-cert', '--pcr-banks', 'sha256',
    '--config', join(dir, 'swtpm_setup.conf'), '--logfile', join(dir, 'setup.log'),
  ], { encoding: 'utf8', timeout: 60_000 })
  if (setup.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`swtpm_setup failed (${setup.status}): ${setup.stderr}`)
  }
  const port = await freePortPair()
  const proc: ChildProcess = spawn('swtpm', [
    'socket', '--tpm2', '--tpmstate', `dir=${state}`,
    '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
    '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    '--flags', 'not-need-init,startup-clear',
  ], { stdio: 'ignore' })
  const pid = proc.pid
  if (pid === undefined) throw new Error('swtpm did not start')
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      process.kill(pid, 'SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
      if (proc.exitCode === null && proc.signalCode === null) process.kill(pid, 'SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await waitForPort(port, 10_000)
  } catch (e) {
    await stop()
    throw e
  }
  const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}`, TSS2_LOG: 'all+none' }
  const tool = (cmd: string, args: string[]) =>
    new Promise<ToolResult>((resolve, reject) => {
      execFile(cmd, args, { cwd: dir, env, timeout: 30_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`))
        else resolve({ stdout, stderr })
      })
    })
  return {
    dir,
    port,
    pid,
    issuerCert: join(ca, 'issuercert.pem'),
    rootCert: join(ca, 'swtpm-localca-rootca-cert.pem'),
    tool,
    flush: async () => {
      await tool('tpm2_flushcontext', ['-t'])
    },
    stop,
  }
}

/** PCR values from the `pcrs:` section tpm2_quote prints (only when given `-o`) or tpm2_pcrread prints. */
export function parsePcrYaml(out: string, bank = 'sha256'): Map<number, Buffer> {
  const m = new Map<number, Buffer>()
  const lines = out.split('\n')
  let inBank = false
  for (const line of lines) {
    const head = /^\s*(sha1|sha256|sha384|sha512):\s*$/.exec(line)
    if (head) {
      inBank = head[1] === bank
      continue
    }
    const v = /^\s+(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line)
    if (v && inBank) m.set(Number(v[1]), Buffer.from(v[2]!, 'hex'))
  }
  return m
}
