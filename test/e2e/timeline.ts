/**
 * One machine's boot as netboot's JSON log tells it: the requests that carry a
 * network boot, in the order they must come, with their times. Pure: it reads
 * log text (pino lines from `netboot serve`) and returns data.
 *
 *   dhcp      the first DHCP reply to the firmware's client (iPXE in a NIC ROM,
 *             or UEFI's own PXE client)
 *   tftp      UEFI's own PXE only: the TFTP transfer of the iPXE binary
 *   ipxe      the first DHCP reply to iPXE carrying the boot-script URL
 *   script    GET /boot/<mac>
 *   kernel    GET /images/<kernel sha256>/…
 *   initrd    GET /images/<initrd sha256>/…
 *
 * HTTP requests are fastify's `incoming request` lines (req.url, req.remoteAddress),
 * matched to their `request completed` line (res.statusCode) by server and reqId; they are
 * attributed to the machine by its address, TFTP transfers by the peer's address.
 */

export interface LogLine {
  readonly time: number
  readonly msg: string
  readonly [k: string]: unknown
}

/** The JSON lines of a log, in order; other lines (a stack trace, npm noise) are skipped. */
export function parseLog (text: string): LogLine[] {
  const out: LogLine[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const o = JSON.parse(line) as Record<string, unknown>
      const time = typeof o.time === 'string' ? Date.parse(o.time) : typeof o.time === 'number' ? o.time : NaN
      if (Number.isFinite(time) && typeof o.msg === 'string') out.push({ ...o, time, msg: o.msg })
    } catch { /* not a log line */ }
  }
  return out
}

export type StepName = 'dhcp' | 'tftp' | 'ipxe' | 'script' | 'kernel' | 'initrd'

export interface Step {
  readonly name: StepName
  readonly time: number
  /** What the step was: the DHCP reply's boot target, the file, the URL and status. */
  readonly detail: string
}

export interface BootMachine {
  /** Canonical MAC (lower case, colons). */
  readonly mac: string
  /** The address netboot reserved for it. */
  readonly ip: string
  readonly kernelSha256: string
  readonly initrdSha256: string
  /** The first client is UEFI's own PXE, which must be sent iPXE over TFTP. */
  readonly viaTftp: boolean
  /** The iPXE binary it must be given, e.g. ipxe.efi. */
  readonly ipxeFile?: string
}

export interface BootTimeline {
  /** Steps found, in the order of STEP_ORDER (missing ones absent). */
  readonly steps: readonly Step[]
  /** What is wrong: a missing step, a step out of order, an HTTP status other than 200. */
  readonly problems: readonly string[]
}

export const STEP_ORDER: readonly StepName[] = ['dhcp', 'tftp', 'ipxe', 'script', 'kernel', 'initrd']

interface ReqLine { method?: string; url?: string; remoteAddress?: string }

/** The steps of one machine's boot among `lines` (only lines at or after `since`, ms). */
export function bootTimeline (lines: readonly LogLine[], m: BootMachine, since = 0): BootTimeline {
  const problems: string[] = []
  const found = new Map<StepName, Step>()
  const status = new Map<string, number>()
  // Each of netboot's HTTP servers (admin, node) numbers its requests from req-1: key by both.
  const reqKey = (l: LogLine): string | undefined => typeof l.reqId === 'string' ? `${String(l.server)}/${l.reqId}` : undefined
  for (const l of lines) {
    const key = reqKey(l)
    if (l.msg === 'request completed' && key !== undefined) {
      const res = l.res as { statusCode?: number } | undefined
      if (typeof res?.statusCode === 'number') status.set(key, res.statusCode)
    }
  }
  const first = (name: StepName, time: number, detail: string): void => {
    if (!found.has(name)) found.set(name, { name, time, detail })
  }
  const mac = m.mac.toLowerCase()
  let fellBack = false
  const tftpFailures: string[] = []
  for (const l of lines) {
    if (l.time < since) continue
    if (l.msg === 'dhcp: reply' && l.mac === mac) {
      const boot = typeof l.boot === 'string' ? l.boot : ''
      if (l.firmware === 'ipxe') {
        // With a NIC ROM, iPXE is the firmware's client: its first reply is both steps.
        if (!m.viaTftp) first('dhcp', l.time, `${String(l.reply)} to ${String(l.firmware)} (${String(l.arch)}), boot ${boot}`)
        if (boot.startsWith('http://') || boot.startsWith('https://')) first('ipxe', l.time, `${String(l.reply)} to iPXE (${String(l.arch)}), boot ${boot}`)
      } else {
        first('dhcp', l.time, `${String(l.reply)} to ${String(l.firmware)} (${String(l.arch)}), boot ${boot}`)
        if (l.firmware === 'uefi-http' && m.viaTftp && !fellBack) {
          fellBack = true
          problems.push(`dhcp: the firmware gave up on PXE and fell back to UEFI HTTP boot (${boot})`)
        }
      }
      continue
    }
    if (typeof l.peer === 'string' && l.peer.startsWith(`${m.ip}:`)) {
      if (l.msg === 'tftp transfer done') first('tftp', l.time, `${String(l.file)} (${String(l.bytes)} bytes, ${String(l.ms)} ms)`)
      else if (l.msg === 'tftp file refused') problems.push(`tftp: ${String(l.file)} refused (${String(l.reason)}: ${String(l.detail)})`)
      // EDK2's PXE first asks for tsize only and aborts (ERROR 8): a failure counts only when no transfer succeeds.
      else if (l.msg === 'tftp transfer failed') tftpFailures.push(`tftp: transfer of ${String(l.file)} failed (${String(l.reason)}: ${String(l.message)})`)
      continue
    }
    if (l.msg === 'incoming request') {
      const req = (l.req ?? {}) as ReqLine
      if (req.remoteAddress !== m.ip || typeof req.url !== 'string') continue
      const key = reqKey(l)
      const code = key !== undefined ? status.get(key) : undefined
      const detail = `${req.method ?? '?'} ${req.url} → ${code ?? 'no response logged'}`
      const url = safeDecode(req.url).toLowerCase()
      let name: StepName | undefined
      if (url.startsWith('/boot/') && url.replace(/-/g, ':').includes(mac)) name = 'script'
      else if (url.startsWith(`/images/${m.kernelSha256}`)) name = 'kernel'
      else if (url.startsWith(`/images/${m.initrdSha256}`)) name = 'initrd'
      if (name === undefined) continue
      if (!found.has(name) && code !== 200) problems.push(`${name}: ${detail}`)
      first(name, l.time, detail)
    }
  }

  const wanted = STEP_ORDER.filter((s) => s !== 'tftp' || m.viaTftp)
  for (const s of wanted) {
    if (found.has(s)) continue
    problems.push(s === 'dhcp' && m.viaTftp ? "dhcp: no reply to the firmware's own PXE client" : `${s}: not in the log`)
  }
  if (m.viaTftp && !found.has('tftp')) problems.push(...tftpFailures)
  if (!m.viaTftp && found.has('tftp')) problems.push(`tftp: a NIC ROM client fetched ${found.get('tftp')!.detail} over TFTP`)
  if (m.viaTftp && m.ipxeFile !== undefined) {
    const tftp = found.get('tftp')
    if (tftp !== undefined && !tftp.detail.startsWith(`${m.ipxeFile} `)) problems.push(`tftp: expected ${m.ipxeFile}, got ${tftp.detail}`)
    const dhcp = found.get('dhcp')
    if (dhcp !== undefined && !dhcp.detail.endsWith(`boot tftp:${m.ipxeFile}`)) problems.push(`dhcp: the firmware was not sent ${m.ipxeFile} (${dhcp.detail})`)
  }
  const steps = wanted.flatMap((s) => found.has(s) ? [found.get(s)!] : [])
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]!.time < steps[i - 1]!.time) problems.push(`${steps[i]!.name} came before ${steps[i - 1]!.name}`)
  }
  return { steps, problems }
}

function safeDecode (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}

/** "dhcp 3.1 s, script 19.8 s, …": seconds since `t0` (ms). */
export function formatTimeline (steps: readonly { name: string; time: number }[], t0: number): string {
  return steps.map((s) => `${s.name} ${((s.time - t0) / 1000).toFixed(1)} s`).join(', ')
}
