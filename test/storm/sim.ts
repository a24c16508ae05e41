/**
 * The boot-storm simulator: N nodes, each its own MAC, each running the whole
 * control-plane sequence of a real node against one boot server (DESIGN.md "The
 * boot path"), with the retry timers real nodes use:
 *
 *   dhcp-firmware      DORA as a PXE ROM (option 93/60), broadcast flag
 *   tftp               the iPXE binary the OFFER names: BIOS nodes as a PXE ROM (lock-step,
 *                      blksize 1432), UEFI nodes as EDK2 (size probe, then blksize 1468,
 *                      RFC 7440 windowsize 4: tftp-client.ts EDK2_TFTP, with its sources)
 *   dhcp-ipxe          DORA as iPXE (77 "iPXE", 175): the answer is the boot-script URL
 *   script             GET the boot script; kernel, initrd and command line parsed from it
 *   kernel             HEAD + GET of the kernel and each initrd, digests checked
 *   dhcp-linux         DORA as the initramfs's DHCP client (dhclient-like)
 *   attest             the agent's own code (agent/steps/attest.ts) over a soft TPM
 *                      (or, for sample nodes, real swtpm through the N-API binding)
 *   cloud-init         plain NoCloud meta-data + user-data by node name
 *   cloud-init-secure  the agent's fetchSecrets: token + DPoP, JWE decrypted by the boot key
 *   rootfs             the image the attestation named, in two Range requests, sha256 checked
 *
 * Timers: DHCP per RFC 2131 §4.1 (4 s before the first retransmission, doubled
 * each time, randomised by ±1 s, `dhcpRetries` retransmissions per message); TFTP
 * see tftp-client.ts; HTTP: a failed request (network error, timeout, 5xx, 429) is
 * retried after "equal jitter" backoff (agent/backoff.ts) from `http.baseMs` to
 * `http.capMs`, at most `http.tries` attempts. Arrivals: node i starts at
 * i/N × rampMs (0 = all at once). Every wait is bounded; the whole storm is bounded
 * by `deadlineMs` (nodes still running then fail with STORM_DEADLINE).
 *
 * A subset of phases can be run (the anchors: DHCP alone against Kea and dnsmasq,
 * TFTP against tftpd-hpa, images against nginx); phases that need an earlier
 * one's result then take it from the configuration (`fixed`).
 */
import dgram from 'node:dgram'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { SoftTpm } from '../sim/soft-tpm.js'
import { forceBufferSize } from '../../server/net/bind-device.js'
import { prepareKeys, attestStep, type AttestDeps } from '../../agent/steps/attest.js'
import { fetchSecrets } from '../../agent/steps/secrets.js'
import { createBootKey } from '../../agent/bootkey.js'
import { ServerApi } from '../../agent/http.js'
import { parseCmdline, type AgentCmdline } from '../../agent/cmdline.js'
import { equalJitter } from '../../agent/backoff.js'
import type { Tpm } from '../../agent/tpm/index.js'
import type { AgentLog } from '../../agent/log.js'
import { DHCPACK, DHCPDISCOVER, DHCPNAK, DHCPOFFER, DHCPREQUEST, decodeReply, encodeRequest, macBytes, type DhcpClientKind, type ServerReply } from './dhcp-wire.js'
import { EDK2_TFTP, literalLookup, tftpGet, TftpFailure, type TftpGet } from './tftp-client.js'
import { HttpPool, type Compare, type HttpAnswer } from './http.js'
import { SoftAgentTpm } from './soft-agent-tpm.js'

export const PHASES = ['dhcp-firmware', 'tftp', 'dhcp-ipxe', 'script', 'kernel', 'dhcp-linux', 'attest', 'cloud-init', 'cloud-init-secure', 'rootfs'] as const
export type Phase = typeof PHASES[number]

export interface SimNodeSpec {
  name: string
  mac: string
  /** the reserved address the inventory gives it; checked in every ACK when set */
  ip?: string
  /** RFC 4578 arch: 0 BIOS (undionly.kpxe), 7 x64 UEFI (ipxe.efi) */
  arch: number
  /** 'soft' (default) or a real TPM through the agent's N-API binding */
  tpm?: 'soft' | { tcti: string }
}

export interface StormConfig {
  nodes: SimNodeSpec[]
  phases: Phase[]
  /** the server's address on the provisioning network */
  server: string
  /** node HTTP base, e.g. http://10.98.0.1:8080 */
  httpBase: string
  tftpPort: number
  dhcpServerPort: number
  dhcpClientPort: number
  /** expected iPXE binaries by file name: sha256 */
  ipxeFiles: Record<string, string>
  /**
   * Where those binaries are (the server's TFTP root): read and checked against
   * `ipxeFiles` once at the start, then every node's TFTP bytes are compared with
   * them (memcmp) instead of hashed. Unset: every node's bytes are hashed.
   */
  ipxeDir?: string
  /** when the OFFER must name a TFTP boot file and iPXE's ACK a script URL (off for plain DHCP servers) */
  requireBootInfo: boolean
  /** what phases take when the phase that would tell them did not run */
  fixed: {
    tftpFile?: string
    kernelUrls?: string[]
    rootfs?: { url: string; sha256: string }
  }
  rampMs: number
  deadlineMs: number
  dhcpRetries: number
  /** RFC 2131 §4.1 first retransmission delay, ms (4000); a test may shorten it */
  dhcpFirstTimeoutMs: number
  /** BIOS nodes' TFTP (a PXE ROM: lock-step, doubling timeout) */
  tftp: { blksize: number; retries: number; firstTimeoutMs: number; deadlineMs: number }
  /** UEFI nodes' TFTP, over `tftp`: EDK2's options and timer (tftp-client.ts EDK2_TFTP) */
  tftpUefi: Partial<Omit<TftpGet, 'server' | 'port' | 'file' | 'expect'>>
  http: { sockets: number; timeoutMs: number; tries: number; baseMs: number; capMs: number }
  /** firmware event log of the soft TPMs: events and bytes per event (a real UEFI log: ~100 events, 20-60 KB) */
  eventLog: { events: number; bytes: number }
  seed: number
}

export const DEFAULTS: Omit<StormConfig, 'nodes' | 'server' | 'httpBase' | 'ipxeFiles'> = {
  phases: [...PHASES],
  tftpPort: 69,
  dhcpServerPort: 67,
  dhcpClientPort: 68,
  requireBootInfo: true,
  fixed: {},
  rampMs: 0,
  deadlineMs: 300_000,
  dhcpRetries: 4,
  dhcpFirstTimeoutMs: 4000,
  tftp: { blksize: 1432, retries: 5, firstTimeoutMs: 1000, deadlineMs: 60_000 },
  tftpUefi: { ...EDK2_TFTP },
  http: { sockets: 256, timeoutMs: 30_000, tries: 6, baseMs: 1000, capMs: 8000 },
  eventLog: { events: 60, bytes: 200 },
  seed: 1,
}

export interface PhaseRecord {
  /** ms since the storm's start */
  start: number
  end: number
  retries: number
  error?: string
}

export interface NodeRecord {
  name: string
  mac: string
  tpm: 'soft' | 'swtpm'
  arrive: number
  /** ms since the storm's start, when the last phase ended (undefined: failed) */
  done?: number
  failedPhase?: Phase
  phases: Partial<Record<Phase, PhaseRecord>>
}

export interface StormResult {
  startedAt: string
  /** wall ms from the first node's arrival to the last node's end */
  wallMs: number
  nodes: NodeRecord[]
  /** this process's CPU (the simulated fleet), ms */
  clientCpuMs: number
  clientPeakRssKb: number
}

/** mulberry32: a seeded PRNG, so two runs draw the same jitter. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class PhaseError extends Error {
  constructor (readonly code: string, message: string) { super(message) }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) }

/** The DHCP client port shared by every simulated node; replies are demultiplexed by xid and chaddr. */
class DhcpPort {
  private readonly waiters = new Map<number, { mac: string; want: number; resolve: (r: ServerReply) => void }>()
  ignored = 0
  private constructor (private readonly sock: dgram.Socket, private readonly cfg: StormConfig) {
    sock.on('message', (msg) => {
      const d = decodeReply(msg)
      if (!d.ok) { this.ignored++; return }
      const w = this.waiters.get(d.reply.xid)
      if (w === undefined || w.mac !== d.reply.mac) return
      // an OFFER while waiting for an ACK (a late duplicate) is not an answer to the REQUEST
      if (w.want === DHCPOFFER ? d.reply.type !== DHCPOFFER : d.reply.type !== DHCPACK && d.reply.type !== DHCPNAK) return
      this.waiters.delete(d.reply.xid)
      w.resolve(d.reply)
    })
  }

  static async open (cfg: StormConfig): Promise<DhcpPort> {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true, lookup: literalLookup })
    await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(cfg.dhcpClientPort, '0.0.0.0', () => { sock.off('error', reject); resolve() }) })
    sock.setBroadcast(true)
    // 10,000 real nodes have 10,000 NICs' worth of buffers; this one socket stands for all of them, so it is
    // sized past net.core.rmem_max (SO_RCVBUFFORCE as root) and the nodes' side drops are not the simulator's artefact
    try { sock.setRecvBufferSize(8 << 20); sock.setSendBufferSize(8 << 20) } catch { /* capped by net.core.rmem_max */ }
    try { forceBufferSize(sock, 'recv', 64 << 20); forceBufferSize(sock, 'send', 16 << 20) } catch { /* not root: the capped size above */ }
    return new DhcpPort(sock, cfg)
  }

  /**
   * Sends `packet` and waits for the answer of type `want`, retransmitting per
   * RFC 2131 §4.1 (4 s, 8 s, 16 s… ±1 s). Counts retransmissions into `rec`.
   */
  async exchange (xid: number, mac: string, packet: () => Buffer, want: number, random: () => number, rec: PhaseRecord): Promise<ServerReply> {
    for (let n = 0; n <= this.cfg.dhcpRetries; n++) {
      if (n > 0) rec.retries++
      const base = this.cfg.dhcpFirstTimeoutMs * 2 ** n
      const wait = Math.min(64_000, base) + (random() * 2 - 1) * Math.min(1000, base / 4)
      const got = await new Promise<ServerReply | undefined>((resolve) => {
        const timer = setTimeout(() => { this.waiters.delete(xid); resolve(undefined) }, wait)
        this.waiters.set(xid, { mac, want, resolve: (r) => { clearTimeout(timer); resolve(r) } })
        this.sock.send(packet(), this.cfg.dhcpServerPort, '255.255.255.255', (e) => { if (e !== null && e !== undefined) { clearTimeout(timer); this.waiters.delete(xid); resolve(undefined) } })
      })
      if (got !== undefined) return got
    }
    throw new PhaseError('DHCP_TIMEOUT', `no ${want === DHCPOFFER ? 'OFFER' : 'ACK'} after ${this.cfg.dhcpRetries} retransmissions`)
  }

  close (): void { this.sock.close() }
}

interface NodeState {
  spec: SimNodeSpec
  rec: NodeRecord
  random: () => number
  ip?: string
  bootfile?: string
  tftpServer?: string
  scriptUrl?: string
  kernelUrls?: string[]
  cmdline?: AgentCmdline
  attested?: { token: string; expiresAt: number; node: string; rootfs: { url: string; sha256: string } }
  api?: ServerApi
  bootKey?: Awaited<ReturnType<typeof createBootKey>>
  tpm?: Tpm
}

const quietLog: AgentLog = { info: () => {}, warn: () => {}, error: () => {} }

/**
 * Bytes already verified against their SHA-256, by digest. A node's bytes for
 * a digest that has a reference are compared with it (memcmp: the same check,
 * a fraction of SHA-256's CPU, which the simulator shares with the server);
 * the first node to bring a digest hashes its bytes, and they become the
 * reference when they match. Every node's bytes are still checked.
 */
export class References {
  private readonly bySha = new Map<string, Buffer>()

  get (sha256: string): Buffer | undefined { return this.bySha.get(sha256) }

  /** Adds `bytes` as the reference for `sha256` if they hash to it; false if they do not. */
  add (sha256: string, bytes: Buffer): boolean {
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) return false
    if (!this.bySha.has(sha256)) this.bySha.set(sha256, bytes)
    return true
  }

  /** True when `parts`, in order, are exactly the bytes whose SHA-256 is `sha256`. */
  matches (sha256: string, parts: readonly Buffer[]): boolean {
    const ref = this.bySha.get(sha256)
    if (ref === undefined) return this.add(sha256, parts.length === 1 ? parts[0]! : Buffer.concat(parts))
    let at = 0
    for (const p of parts) {
      if (at + p.length > ref.length || ref.compare(p, 0, p.length, at, at + p.length) !== 0) return false
      at += p.length
    }
    return at === ref.length
  }
}

export class Storm {
  private readonly t0 = performance.now()
  private readonly refs = new References()
  private readonly http: HttpPool
  private dhcp?: DhcpPort
  private stopped = false
  private xid: number

  constructor (readonly cfg: StormConfig, private readonly tpms: ReadonlyMap<string, Tpm> = new Map()) {
    this.http = new HttpPool(cfg.http.sockets)
    this.xid = Math.floor(prng(cfg.seed)() * 0x7fffffff)
  }

  private now (): number { return performance.now() - this.t0 }

  /** Soft TPMs for the nodes that have none given (made before the storm: a machine's TPM exists before it boots; its keys are the TPM's work, not the node CPU's). */
  static softTpms (cfg: StormConfig): Map<string, Tpm> {
    const out = new Map<string, Tpm>()
    for (const n of cfg.nodes) {
      if (n.tpm !== undefined && n.tpm !== 'soft') continue
      const soft = SoftTpm.create({ ek: 'ecc', ak: 'ecc', banks: ['sha256'], firmware: 'storm firmware 1.0', platform: n.mac, firmwareEvents: cfg.eventLog.events, eventBytes: cfg.eventLog.bytes })
      // the AK the agent will create at this boot, made now (soft-agent-tpm.ts spareAks)
      out.set(n.mac, new SoftAgentTpm(soft, 'ecc', [generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey]).asTpm())
    }
    return out
  }

  async run (): Promise<StormResult> {
    const cfg = this.cfg
    if (cfg.ipxeDir !== undefined && cfg.phases.includes('tftp')) {
      for (const [name, sha] of Object.entries(cfg.ipxeFiles)) {
        if (!this.refs.add(sha, readFileSync(join(cfg.ipxeDir, name)))) throw new Error(`${join(cfg.ipxeDir, name)} does not hash to ${sha}`)
      }
    }
    // the fixed images (phases run alone): each fetched once and hashed before the storm's clock, so every
    // node's copy is compared with a verified reference as it arrives (at once, all nodes' GETs start before
    // any has finished: no node would find a reference otherwise)
    if (cfg.phases.includes('kernel') || cfg.phases.includes('rootfs')) {
      const fixed = [...(cfg.phases.includes('kernel') ? cfg.fixed.kernelUrls ?? [] : []).map((url) => ({ url, sha256: /\/images\/([0-9a-f]{64})/.exec(url)?.[1] })),
        ...(cfg.phases.includes('rootfs') && cfg.fixed.rootfs !== undefined ? [cfg.fixed.rootfs] : [])]
      for (const f of fixed) {
        if (f.sha256 === undefined || this.refs.get(f.sha256) !== undefined) continue
        const r = await this.http.call('GET', f.url, { timeoutMs: cfg.http.timeoutMs })
        if (r.status !== 200 || !this.refs.add(f.sha256, r.body)) throw new Error(`reference ${f.url}: HTTP ${r.status}, ${r.body.length} octets not hashing to ${f.sha256}`)
      }
    }
    const usesDhcp = cfg.phases.some((p) => p.startsWith('dhcp-'))
    if (usesDhcp) this.dhcp = await DhcpPort.open(cfg)
    const startedAt = new Date().toISOString()
    const c0 = process.cpuUsage()
    let peakRss = 0
    const rss = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 200)
    const deadline = setTimeout(() => { this.stopped = true }, cfg.deadlineMs)
    const t0 = this.now()
    try {
      const records = await Promise.all(cfg.nodes.map(async (spec, i) => {
        const arrive = cfg.nodes.length > 1 ? (cfg.rampMs * i) / (cfg.nodes.length - 1) : 0
        const st: NodeState = {
          spec, random: prng(cfg.seed * 7919 + i),
          rec: { name: spec.name, mac: spec.mac, tpm: spec.tpm === undefined || spec.tpm === 'soft' ? 'soft' : 'swtpm', arrive, phases: {} },
        }
        await sleep(t0 + arrive - this.now())
        st.rec.arrive = this.now()
        await this.runNode(st)
        return st.rec
      }))
      const ends = records.map((r) => r.done ?? Math.max(...Object.values(r.phases).map((p) => p?.end ?? 0)))
      const c = process.cpuUsage(c0)
      peakRss = Math.max(peakRss, process.memoryUsage.rss())
      return { startedAt, wallMs: Math.max(0, ...ends) - Math.min(...records.map((r) => r.arrive)), nodes: records, clientCpuMs: (c.user + c.system) / 1000, clientPeakRssKb: Math.round(peakRss / 1024) }
    } finally {
      clearTimeout(deadline)
      clearInterval(rss)
      this.dhcp?.close()
      this.http.close()
    }
  }

  private async runNode (st: NodeState): Promise<void> {
    for (const phase of this.cfg.phases) {
      const rec: PhaseRecord = { start: this.now(), end: 0, retries: 0 }
      st.rec.phases[phase] = rec
      try {
        if (this.stopped) throw new PhaseError('STORM_DEADLINE', `the storm's ${this.cfg.deadlineMs} ms ran out`)
        await this.phase(phase, st, rec)
        rec.end = this.now()
      } catch (e) {
        rec.end = this.now()
        const err = e as { code?: string; message?: string }
        rec.error = `${err.code ?? 'ERROR'}: ${err.message ?? String(e)}`.slice(0, 300)
        st.rec.failedPhase = phase
        return
      }
    }
    st.rec.done = this.now()
  }

  private async phase (phase: Phase, st: NodeState, rec: PhaseRecord): Promise<void> {
    const cfg = this.cfg
    switch (phase) {
      case 'dhcp-firmware': {
        const ack = await this.dora(st, 'firmware', rec)
        if (cfg.requireBootInfo) {
          if (ack.bootfile === undefined || ack.bootfile === '') throw new PhaseError('DHCP_NO_BOOTFILE', 'the ACK names no boot file for PXE firmware')
          if (!(ack.bootfile in cfg.ipxeFiles)) throw new PhaseError('DHCP_BOOTFILE', `the ACK names ${ack.bootfile}, not an iPXE build this run knows`)
        }
        st.bootfile = ack.bootfile
        st.tftpServer = ack.tftpServer
        return
      }
      case 'tftp': {
        const file = st.bootfile ?? cfg.fixed.tftpFile
        if (file === undefined) throw new PhaseError('TFTP_NO_FILE', 'no boot file (no dhcp-firmware phase and no fixed.tftpFile)')
        const want = cfg.ipxeFiles[file]
        try {
          const expect = want !== undefined ? this.refs.get(want) : undefined
          const how = isUefi(st.spec.arch) ? { ...cfg.tftp, ...cfg.tftpUefi } : cfg.tftp
          const r = await tftpGet({ server: st.tftpServer ?? cfg.server, port: cfg.tftpPort, file, ...how, ...(expect !== undefined ? { expect } : {}) })
          rec.retries += r.retransmits
          if (want !== undefined && r.matched !== true && r.sha256 !== want) throw new PhaseError('TFTP_DIGEST', `${file}: sha256 ${r.sha256 ?? '?'} ≠ ${want}`)
        } catch (e) {
          if (e instanceof TftpFailure) rec.retries += e.retransmits
          throw e
        }
        return
      }
      case 'dhcp-ipxe': {
        const ack = await this.dora(st, 'ipxe', rec)
        if (cfg.requireBootInfo) {
          if (ack.bootfile === undefined || !/^https?:\/\//.test(ack.bootfile)) throw new PhaseError('DHCP_NO_SCRIPT', `iPXE was not given an HTTP boot script (bootfile ${ack.bootfile ?? 'none'}): it would chainload itself again`)
          st.scriptUrl = ack.bootfile
        }
        return
      }
      case 'script': {
        const url = st.scriptUrl ?? `${cfg.httpBase}/boot/${st.spec.mac}`
        const r = await this.get(url, rec)
        const text = r.body.toString('utf8')
        if (!text.startsWith('#!ipxe')) throw new PhaseError('SCRIPT_INVALID', 'the boot script does not start with #!ipxe')
        const kernel = /^kernel\s+(?:--name\s+\S+\s+)?(\S+)\s*(.*)$/m.exec(text)
        if (kernel === null) throw new PhaseError('SCRIPT_NO_KERNEL', 'the boot script has no kernel line')
        const initrds = [...text.matchAll(/^initrd\s+(?:--name\s+\S+\s+)?(\S+)/gm)].map((m) => m[1]!)
        st.kernelUrls = [kernel[1]!, ...initrds]
        st.cmdline = parseCmdline(kernel[2]!)
        if (st.cmdline.node !== undefined && st.cmdline.node !== st.spec.name) throw new PhaseError('SCRIPT_WRONG_NODE', `the script boots ${st.cmdline.node}, not ${st.spec.name}`)
        return
      }
      case 'kernel': {
        const urls = st.kernelUrls ?? cfg.fixed.kernelUrls
        if (urls === undefined) throw new PhaseError('KERNEL_NO_URL', 'no kernel URL (no script phase and no fixed.kernelUrls)')
        for (const url of urls) {
          const head = await this.request('HEAD', url, rec)
          const size = Number(head.headers['content-length'])
          const digest = /\/images\/([0-9a-f]{64})/.exec(url)?.[1]
          const ref = digest !== undefined ? this.refs.get(digest) : undefined
          if (ref !== undefined) {
            // compared with the verified bytes as they arrive (http.ts `compare`)
            const c = (await this.request('GET', url, rec, {}, 200, { ref, at: 0 })).compared!
            if (c.length !== size) throw new PhaseError('KERNEL_SIZE', `${url}: HEAD said ${size} bytes, GET gave ${c.length}`)
            if (!c.equal || c.length !== ref.length) throw new PhaseError('KERNEL_DIGEST', `${url}: the bytes do not hash to the digest in the URL`)
            continue
          }
          const body = (await this.get(url, rec)).body
          if (body.length !== size) throw new PhaseError('KERNEL_SIZE', `${url}: HEAD said ${size} bytes, GET gave ${body.length}`)
          if (digest !== undefined && !this.refs.matches(digest, [body])) throw new PhaseError('KERNEL_DIGEST', `${url}: the bytes do not hash to the digest in the URL`)
        }
        return
      }
      case 'dhcp-linux':
        await this.dora(st, 'linux', rec)
        return
      case 'attest': {
        const tpm = this.tpms.get(st.spec.mac)
        if (tpm === undefined) throw new PhaseError('ATTEST_NO_TPM', `no TPM for ${st.spec.mac}`)
        const api = new ServerApi({ base: st.cmdline?.server ?? cfg.httpBase, fetch: this.http.fetchVia(cfg.http.timeoutMs), clock: { now: () => Date.now(), sleep }, timeoutMs: cfg.http.timeoutMs })
        const bootKey = await createBootKey()
        const cmdline: AgentCmdline = st.cmdline ?? { server: cfg.httpBase, mode: 'boot', node: st.spec.name, consoles: [] }
        const d: AttestDeps = { api, tpm, bootKey, facts: { macs: [st.spec.mac], hardware: {}, eventLog: eventLogOf(tpm) }, cmdline, log: quietLog }
        const keys = await prepareKeys(tpm, quietLog, st.rec.tpm === 'soft' ? { ekAlg: 'ecc' } : {})
        const out = await this.retrying(rec, async () => await attestStep(d, keys))
        if (out.kind !== 'attested') throw new PhaseError('ATTEST_NOT_ATTESTED', `attestation ended '${out.kind}'${out.kind === 'pending' ? `: ${out.refusal.code ?? ''} ${out.refusal.message}` : ''}`)
        if (out.attested.node !== st.spec.name) throw new PhaseError('ATTEST_WRONG_NODE', `attested as ${out.attested.node}, not ${st.spec.name}`)
        st.attested = { token: out.attested.token, expiresAt: out.attested.expiresAt, node: out.attested.node, rootfs: out.attested.rootfs }
        st.api = api
        st.bootKey = bootKey
        return
      }
      case 'cloud-init': {
        for (const doc of ['meta-data', 'user-data']) {
          const r = await this.get(`${cfg.httpBase}/cloud-init/${encodeURIComponent(st.spec.name)}/${doc}`, rec)
          if (doc === 'meta-data' && !/instance-id:/.test(r.body.toString())) throw new PhaseError('CLOUDINIT_INVALID', 'meta-data without instance-id')
        }
        return
      }
      case 'cloud-init-secure': {
        if (st.attested === undefined || st.api === undefined || st.bootKey === undefined) throw new PhaseError('SECURE_NO_TOKEN', 'no node token (the attest phase did not run)')
        const d = { api: st.api, bootKey: st.bootKey, log: quietLog }
        const tok = st.attested
        const seed = await this.retrying(rec, async () => await fetchSecrets(d, tok))
        if (!seed.metaData.includes(st.spec.name)) throw new PhaseError('SECURE_WRONG_NODE', `the secure seed is not ${st.spec.name}'s`)
        return
      }
      case 'rootfs': {
        const want = st.attested?.rootfs ?? cfg.fixed.rootfs
        if (want === undefined) throw new PhaseError('ROOTFS_NO_URL', 'no rootfs (no attest phase and no fixed.rootfs)')
        const head = await this.request('HEAD', want.url, rec)
        const size = Number(head.headers['content-length'])
        if (!Number.isInteger(size) || size <= 0) throw new PhaseError('ROOTFS_SIZE', `HEAD ${want.url}: no usable content-length`)
        const parts: Buffer[] = []
        const half = Math.floor(size / 2)
        // with a verified reference each Range is compared with it at its offset as it arrives (http.ts `compare`)
        const ref = this.refs.get(want.sha256)
        let equal = ref === undefined || ref.length === size
        for (const [a, b] of [[0, half - 1], [half, size - 1]] as const) {
          const r = await this.request('GET', want.url, rec, { range: `bytes=${a}-${b}` }, 206, ref !== undefined ? { ref, at: a } : undefined)
          if (r.headers['content-range'] !== `bytes ${a}-${b}/${size}`) throw new PhaseError('ROOTFS_RANGE', `Content-Range ${r.headers['content-range']} for bytes=${a}-${b}`)
          if (r.compared !== undefined) equal &&= r.compared.equal && r.compared.length === b - a + 1
          else parts.push(r.body)
        }
        if (ref !== undefined ? !equal : !this.refs.matches(want.sha256, parts)) throw new PhaseError('ROOTFS_DIGEST', `the ${size} octets do not hash to ${want.sha256}`)
      }
    }
  }

  /** DISCOVER → OFFER → REQUEST (SELECTING) → ACK; a NAK starts over (at most twice). */
  private async dora (st: NodeState, kind: DhcpClientKind, rec: PhaseRecord): Promise<ServerReply> {
    const port = this.dhcp
    if (port === undefined) throw new Error('no DHCP port')
    const mac = macBytes(st.spec.mac)
    const started = performance.now()
    for (let attempt = 0; attempt < 3; attempt++) {
      const xid = this.xid = (this.xid + 1) & 0x7fffffff
      const secs = (): number => Math.floor((performance.now() - started) / 1000)
      const base = { kind, xid, mac, arch: st.spec.arch, ...(kind === 'linux' ? { hostname: st.spec.name } : {}) }
      const offer = await port.exchange(xid, st.spec.mac, () => encodeRequest({ ...base, type: DHCPDISCOVER, secs: secs() }), DHCPOFFER, st.random, rec)
      if (offer.serverId === undefined) throw new PhaseError('DHCP_NO_SERVER_ID', 'OFFER without option 54')
      const ack = await port.exchange(xid, st.spec.mac, () => encodeRequest({ ...base, type: DHCPREQUEST, secs: secs(), serverId: offer.serverId, requestedIp: offer.yiaddr }), DHCPACK, st.random, rec)
      if (ack.type === DHCPNAK) { rec.retries++; continue }
      if (ack.yiaddr !== offer.yiaddr) throw new PhaseError('DHCP_ACK_ADDRESS', `OFFER ${offer.yiaddr}, ACK ${ack.yiaddr}`)
      if (st.spec.ip !== undefined && ack.yiaddr !== st.spec.ip) throw new PhaseError('DHCP_WRONG_ADDRESS', `got ${ack.yiaddr}, reserved ${st.spec.ip}`)
      if (st.ip !== undefined && ack.yiaddr !== st.ip) throw new PhaseError('DHCP_ADDRESS_CHANGED', `${kind} got ${ack.yiaddr}, earlier ${st.ip}`)
      st.ip = ack.yiaddr
      return ack
    }
    throw new PhaseError('DHCP_NAK', 'NAKed three times')
  }

  /** Retries `f` while it fails retryably (network errors, timeouts, 5xx/429, agent errors marked retryable). */
  private async retrying<T> (rec: PhaseRecord, f: () => Promise<T>): Promise<T> {
    const h = this.cfg.http
    for (let n = 0; ; n++) {
      try {
        return await f()
      } catch (e) {
        const err = e as { retryable?: boolean; code?: string; retryAfter?: number }
        const retryable = err.retryable === true || (err.code !== undefined && /^(E[A-Z]+|HTTP_TIMEOUT|HTTP_5\d\d|HTTP_429|UND_ERR.*)$/.test(err.code))
        if (!retryable || n + 1 >= h.tries || this.stopped) throw e
        rec.retries++
        const backoff = equalJitter({ baseMs: h.baseMs, capMs: h.capMs }, n, Math.random)
        await sleep(err.retryAfter !== undefined ? Math.max(backoff, err.retryAfter * 1000) : backoff)
      }
    }
  }

  private async request (method: string, url: string, rec: PhaseRecord, headers: Record<string, string> = {}, want = 200, compare?: Compare): Promise<HttpAnswer> {
    return await this.retrying(rec, async () => {
      const r = await this.http.call(method, url, { headers, timeoutMs: this.cfg.http.timeoutMs, ...(compare !== undefined ? { compare } : {}) })
      if (r.status >= 500 || r.status === 429) throw Object.assign(new Error(`${method} ${url}: HTTP ${r.status}`), { code: `HTTP_${r.status}` })
      if (r.status !== want) throw new PhaseError(`HTTP_${r.status}`, `${method} ${url}: HTTP ${r.status} ${r.body.toString('utf8').slice(0, 200)}`)
      return r
    })
  }

  private async get (url: string, rec: PhaseRecord): Promise<HttpAnswer> { return await this.request('GET', url, rec) }
}

/** RFC 4578 §2.1 / IANA processor architecture types: 0 is x86 BIOS; 6 and up are EFI (7 and 9 x64). */
export function isUefi (arch: number): boolean { return arch >= 6 }

/** The firmware event log a soft TPM's machine would leave in securityfs; real TPMs here (swtpm) have none. */
function eventLogOf (tpm: Tpm): Buffer {
  const s = tpm as unknown as { soft?: SoftTpm }
  return s.soft instanceof SoftTpm ? s.soft.eventLog : Buffer.alloc(0)
}
