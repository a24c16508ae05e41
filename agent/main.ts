/**
 * `netboot-agent`: the initramfs agent's command line, run by the dracut module's
 * hook after the network is up.
 *
 *   node agent/main.js run [options]     boot this node (reads /proc/cmdline)
 *   node agent/main.js exit-codes        the exit code table, one `CODE CLASS` per line
 *
 * Options (defaults are the initramfs paths; tests override them):
 *   --cmdline STRING        the kernel command line instead of /proc/cmdline
 *   --tcti CONF             TPM (default device:/dev/tpmrm0)
 *   --newroot DIR           dracut's $NEWROOT (default /sysroot)
 *   --work DIR              image and overlay layers (default /run/netboot/root)
 *   --run DIR               the initramfs /run: token in DIR/netboot/token (default /run)
 *   --sysfs DIR             MACs, DMI, event log (default /sys)
 *   --overlay-size SIZE     tmpfs size= of the writable layer (default 50%)
 *   --ek rsa|ecc, --ak ecc|rsa   key algorithms (default: RSA EK, else ECC; ECC AK)
 *   --network-wait S, --pending-wait S   how long to wait for the server / an admin
 *
 * Exit codes (agent/errors.ts EXIT_CODES): 0 root ready, switch root; 20 reboot (not
 * a failure); 1 internal, 2 usage/command line, 3 network, 4 TPM, 5 attestation
 * refused, 6 no admin decision in time, 7 secure cloud-init, 8 download, 9 rootfs
 * digest mismatch, 10 mount, 11 PCR extend, 12 seed. On a failure the hook opens the
 * emergency shell only when rd.shell allows it, else it reboots after a pause.
 */
import { realpathSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { parseCmdline } from './cmdline.js'
import { AgentError, asAgentError, EXIT_CODES } from './errors.js'
import { consoleLog, type AgentLog } from './log.js'
import { DEFAULT_POLICY, hookAction, runAgent, type AgentConfig } from './run.js'
import { OVERLAY_SIZE } from './steps/mount.js'
import type { KeyAlg } from './tpm/index.js'

const USAGE = `usage: netboot-agent run [--cmdline STRING] [--tcti CONF] [--newroot DIR] [--work DIR] [--run DIR] [--sysfs DIR]
                         [--overlay-size SIZE] [--ek rsa|ecc] [--ak ecc|rsa] [--network-wait S] [--pending-wait S]
       netboot-agent exit-codes`

const OPTIONS = {
  cmdline: { type: 'string' },
  tcti: { type: 'string', default: 'device:/dev/tpmrm0' },
  newroot: { type: 'string', default: '/sysroot' },
  work: { type: 'string', default: '/run/netboot/root' },
  run: { type: 'string', default: '/run' },
  sysfs: { type: 'string', default: '/sys' },
  'overlay-size': { type: 'string', default: '50%' },
  ek: { type: 'string' },
  ak: { type: 'string' },
  'network-wait': { type: 'string' },
  'pending-wait': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

function usage (why: string): AgentError {
  return new AgentError('AGENT_USAGE', 'usage', `${why}\n${USAGE}`)
}

function alg (flag: string, v: string | undefined): KeyAlg | undefined {
  if (v === undefined) return undefined
  if (v !== 'rsa' && v !== 'ecc') throw usage(`--${flag} ${v}: rsa or ecc`)
  return v
}

function seconds (flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d{1,7}$/.test(v)) throw usage(`--${flag} ${v}: whole seconds`)
  return Number(v) * 1000
}

/** Parses argv into the agent's configuration (reading /proc/cmdline unless --cmdline). */
export async function configFromArgs (argv: readonly string[]): Promise<{ command: 'run'; config: AgentConfig } | { command: 'exit-codes' | 'help' }> {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
  } catch (e) {
    throw usage((e as Error).message)
  }
  const { values: v, positionals } = parsed
  if (v.help === true) return { command: 'help' }
  const command = positionals[0]
  if (positionals.length !== 1 || (command !== 'run' && command !== 'exit-codes')) throw usage(`expected one command, run or exit-codes; got ${positionals.join(' ') || 'none'}`)
  if (command === 'exit-codes') return { command }
  let line = v.cmdline
  if (line === undefined) {
    try {
      line = await readFile('/proc/cmdline', 'utf8')
    } catch (e) {
      throw usage(`cannot read /proc/cmdline: ${(e as Error).message}`)
    }
  }
  const overlaySize = v['overlay-size']
  if (!OVERLAY_SIZE.test(overlaySize)) throw usage(`--overlay-size ${overlaySize}: a tmpfs size such as 2g, 512m or 50%`)
  const ekAlg = alg('ek', v.ek)
  const akAlg = alg('ak', v.ak)
  const networkWait = seconds('network-wait', v['network-wait'])
  const pendingWait = seconds('pending-wait', v['pending-wait'])
  const config: AgentConfig = {
    cmdline: parseCmdline(line),
    tcti: v.tcti,
    newRoot: v.newroot,
    workDir: v.work,
    runDir: v.run,
    sysfs: v.sysfs,
    overlaySize,
    ...(ekAlg !== undefined ? { ekAlg } : {}),
    ...(akAlg !== undefined ? { akAlg } : {}),
    policy: {
      ...DEFAULT_POLICY,
      network: { ...DEFAULT_POLICY.network, ...(networkWait !== undefined ? { waitMs: networkWait } : {}) },
      pending: { ...DEFAULT_POLICY.pending, ...(pendingWait !== undefined ? { waitMs: pendingWait } : {}) },
    },
  }
  return { command: 'run', config }
}

/** Runs the CLI; returns the exit code (never throws). */
export async function main (argv: readonly string[], log: AgentLog = consoleLog(), out: { write (s: string): unknown } = process.stdout): Promise<number> {
  let c: Awaited<ReturnType<typeof configFromArgs>>
  try {
    c = await configFromArgs(argv)
  } catch (e) {
    const err = asAgentError(e)
    // The command line is unreadable, so rd.shell is unknown: say what the hook does by default.
    const [first, ...rest] = err.message.split('\n')
    log.error('cmdline', `${first ?? ''} [${err.code}]; exit ${EXIT_CODES[err.failure]}: ${hookAction(undefined)}`)
    if (rest.length > 0) out.write(`${rest.join('\n')}\n`)
    return EXIT_CODES[err.failure]
  }
  if (c.command === 'help') {
    out.write(`${USAGE}\n`)
    return 0
  }
  if (c.command === 'exit-codes') {
    for (const [k, code] of Object.entries(EXIT_CODES)) out.write(`${code} ${k}\n`)
    return 0
  }
  const config = c.command === 'run' ? c.config : undefined
  if (config === undefined) return EXIT_CODES.internal
  try {
    const r = await runAgent(config, { log })
    return r.exitCode
  } catch (e) {
    const err = asAgentError(e)
    log.error('agent', `${err.message} [${err.code}]; exit ${EXIT_CODES[err.failure]}: ${hookAction(config.cmdline.shell)}`)
    return EXIT_CODES[err.failure]
  }
}

/** True when this module is the program node was started with (also through a symlink), not an import. */
function isEntryPoint (): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  process.env.TSS2_LOG ??= 'all+none'
  const code = await main(process.argv.slice(2))
  // Keep-alive sockets and the TPM's thread pool must not hold the initramfs.
  process.stderr.write('', () => process.exit(code))
}
