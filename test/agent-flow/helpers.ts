/**
 * What the agent-flow tests share: checks that the real peers are here (root,
 * mksquashfs, mount, swtpm, the TPM addon), a running `netboot serve` on loopback
 * with attestation, images and cloud-init set through its admin API, a fake sysfs
 * (NICs and DMI), a squashfs built from a tiny tree, a loopback HTTP proxy that can
 * cut image downloads, and cleanup of every mount and loop device under a dir.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { join } from 'node:path'
import type { Test } from 'tap'
import { SqliteStore } from '../../server/store/sqlite/sqlite-store.js'
import { createAdminToken } from '../../server/http/admin/tokens.js'
import { loadNative } from '../../agent/tpm/index.js'
import { memoryLog, type AgentLog } from '../../agent/log.js'
import { DEFAULT_POLICY, type AgentConfig, type AgentPolicy } from '../../agent/run.js'
import { parseCmdline } from '../../agent/cmdline.js'
import { missingTools, startSwtpm, type Swtpm } from '../attest/swtpm-harness.js'
import { tempDir } from '../helpers/tmp.js'
import { freePort, startServe } from '../helpers/cli.js'

process.env.TSS2_LOG = 'all+none'

export const system = { kind: 'system' as const, id: 'test' }
export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Why these tests cannot run here (empty when they can). They fail with it; they never skip. */
export function realPeerProblems (): string[] {
  const problems: string[] = []
  if (process.getuid?.() !== 0) problems.push('the agent-flow tests mount squashfs and overlayfs: run them as root')
  const tools = ['mksquashfs', 'mount', 'umount', 'losetup']
  const missing = [...missingTools(), ...tools.filter((x) => spawnSync('sh', ['-c', `command -v ${x}`], { stdio: 'ignore' }).status !== 0)]
  if (missing.length > 0) problems.push(`missing ${missing.join(', ')}: apt-get install -y squashfs-tools swtpm swtpm-tools tpm2-tools util-linux`)
  try { loadNative() } catch (e) { problems.push((e as Error).message) }
  return problems
}

export function tctiOf (s: Swtpm): string {
  return `swtpm:host=127.0.0.1,port=${s.port}`
}

/** Short waits so a test's retries and polls take milliseconds. */
export const FAST_POLICY: AgentPolicy = {
  ...DEFAULT_POLICY,
  network: { waitMs: 10_000, backoff: { baseMs: 50, capMs: 200 }, probeTimeoutMs: 2000 },
  pending: { waitMs: 60_000, backoff: { baseMs: 100, capMs: 400 } },
  download: { attempts: 4, backoff: { baseMs: 20, capMs: 100 }, headersTimeoutMs: 10_000, idleTimeoutMs: 5000 },
  retry: { baseMs: 20, capMs: 100 },
  requestTimeoutMs: 10_000,
}

/** A log that keeps lines and echoes them when AGENT_LOG=1. */
export function testLog (): AgentLog & { lines: string[] } {
  return memoryLog(process.env.AGENT_LOG === '1' ? { info: (s, m) => console.error(`[${s}] ${m}`), warn: (s, m) => console.error(`[${s}] WARN ${m}`), error: (s, m) => console.error(`[${s}] ERROR ${m}`) } : undefined)
}

/* ------------------------------------------------------------------ images */

export interface BuiltImage { path: string; sha256: string; size: number; marker: string }

/**
 * A squashfs of a tiny root: /etc/netboot-marker (the marker text), /sbin/init
 * (a script), /proc, /var/lib/cloud (as real images have) and some filler so the
 * download is more than a few TCP segments.
 */
export function buildSquashfs (dir: string, marker: string, prepare?: (tree: string) => void): BuiltImage {
  const tree = join(dir, 'tree')
  for (const d of ['etc', 'sbin', 'proc', 'run', 'var/lib/cloud', 'usr/share/filler']) mkdirSync(join(tree, d), { recursive: true })
  writeFileSync(join(tree, 'etc/netboot-marker'), `${marker}\n`)
  writeFileSync(join(tree, 'sbin/init'), '#!/bin/sh\nexec /bin/sh\n', { mode: 0o755 })
  // incompressible filler: the image is ~1.5 MiB, so a cut mid-transfer is mid-file
  let x = createHash('sha256').update(marker).digest()
  const filler = Buffer.alloc(1536 * 1024)
  for (let i = 0; i < filler.length; i += 32) { x = createHash('sha256').update(x).digest(); x.copy(filler, i) }
  writeFileSync(join(tree, 'usr/share/filler/blob'), filler)
  prepare?.(tree)
  const path = join(dir, 'rootfs.squashfs')
  execFileSync('mksquashfs', [tree, path, '-noappend', '-quiet', '-no-progress', '-all-root', '-comp', 'gzip'], { stdio: ['ignore', 'ignore', 'pipe'] })
  const bytes = readFileSync(path)
  return { path, sha256: sha256(bytes), size: bytes.length, marker }
}

/* ------------------------------------------------------------------ sysfs */

export interface FakeMachine { macs: string[]; uuid?: string; serial?: string; vendor?: string; product?: string }

/** A sysfs tree with one physical NIC per MAC (plus lo and a bridge, which must be ignored) and DMI files. */
export function fakeSysfs (dir: string, m: FakeMachine): string {
  const root = join(dir, 'sys')
  const net = join(root, 'class', 'net')
  mkdirSync(join(root, 'devices', 'pci0000:00'), { recursive: true })
  m.macs.forEach((mac, i) => {
    const ifdir = join(net, `eth${i}`)
    mkdirSync(ifdir, { recursive: true })
    writeFileSync(join(ifdir, 'address'), `${mac}\n`)
    writeFileSync(join(ifdir, 'type'), '1\n')
    symlinkSync(join(root, 'devices', 'pci0000:00'), join(ifdir, 'device'))
  })
  for (const [name, mac] of [['lo', '00:00:00:00:00:00'], ['br0', '02:99:99:99:99:99']] as const) {
    mkdirSync(join(net, name), { recursive: true })
    writeFileSync(join(net, name, 'address'), `${mac}\n`)
    writeFileSync(join(net, name, 'type'), name === 'lo' ? '772\n' : '1\n')
  }
  const dmi = join(root, 'class', 'dmi', 'id')
  mkdirSync(dmi, { recursive: true })
  const files: [string, string | undefined][] = [['product_uuid', m.uuid], ['product_serial', m.serial], ['sys_vendor', m.vendor], ['product_name', m.product]]
  for (const [f, v] of files) if (v !== undefined) writeFileSync(join(dmi, f), `${v}\n`)
  return root
}

/* ------------------------------------------------------------------ netboot serve */

export interface Netboot {
  readonly dir: string
  readonly dataDir: string
  readonly httpUrl: string
  readonly adminUrl: string
  /** Admin API call with an admin token; throws on an unexpected status. */
  admin<T = unknown> (method: string, path: string, body?: unknown, expect?: number): Promise<T>
  /** The kernel arguments of the iPXE script /boot/<mac> (what the agent's /proc/cmdline would be). */
  cmdlineFor (mac: string): Promise<string>
  blobPath (sha256: string): string
  log (): string
}

export interface NetbootOptions {
  readonly enrollment: 'tofu' | 'strict' | 'pre-enrolled'
  /** public_url: defaults to the node server itself; a proxy's URL to route nodes through it. */
  readonly publicUrl?: (httpPort: number) => Promise<string> | string
  readonly nodes?: readonly { name: string; groups?: string[]; macs: string[] }[]
  readonly groups?: readonly string[]
  readonly discoveryImage?: string
}

export async function startNetboot (t: Test, dir: string, tpm: Swtpm, o: NetbootOptions): Promise<Netboot> {
  const [adminPort, httpPort] = [await freePort(), await freePort()]
  const dataDir = join(dir, 'data')
  const httpUrl = `http://127.0.0.1:${httpPort}`
  const publicUrl = o.publicUrl !== undefined ? await o.publicUrl(httpPort) : httpUrl
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, [
    `data_dir: ${dataDir}`,
    `admin: {listen: 127.0.0.1, port: ${adminPort}}`,
    `http: {listen: 127.0.0.1, port: ${httpPort}}`,
    `server: {public_url: '${publicUrl}'}`,
    'tftp: {enabled: false}',
    'dhcp: {enabled: false}',
    `unknown_nodes: {action: discover${o.discoveryImage !== undefined ? `, discovery_image: ${o.discoveryImage}` : ''}}`,
    `attestation: {enrollment: ${o.enrollment}, ek_ca: ${join(tpm.dir, 'ca')}, pcr_policy: learn}`,
    'log: {level: warn}',
    '',
  ].join('\n'))
  mkdirSync(dataDir, { recursive: true })
  const store = SqliteStore.open(join(dataDir, 'netboot.db'))
  for (const g of o.groups ?? []) await store.createGroup(g, '', system)
  for (const n of o.nodes ?? []) await store.createNode({ name: n.name, groups: n.groups ?? [], interfaces: n.macs.map((mac) => ({ mac })) }, system)
  const token = (await createAdminToken(store, { name: 'agent-flow', role: 'admin' }, system)).value
  await store.close()
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const srv = await startServe(t, ['-c', cfg], adminUrl)
  t.teardown(async () => {
    if (srv.proc.exitCode === null && srv.proc.signalCode === null) {
      srv.proc.kill('SIGTERM')
      await Promise.race([srv.exited, new Promise((r) => setTimeout(r, 5000))])
    }
  })
  const admin = async <T>(method: string, path: string, body?: unknown, expect?: number): Promise<T> => {
    const isBuf = Buffer.isBuffer(body)
    const r = await fetch(`${adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': isBuf ? 'application/octet-stream' : 'application/json' } : {}) },
      ...(body !== undefined ? { body: isBuf ? body as Buffer : JSON.stringify(body) } : {}),
    })
    const text = await r.text()
    if (expect !== undefined ? r.status !== expect : r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status}: ${text}`)
    return (text === '' ? undefined : JSON.parse(text)) as T
  }
  return {
    dir, dataDir, httpUrl, adminUrl, admin,
    cmdlineFor: async (mac) => {
      const script = await (await fetch(`${httpUrl}/boot/${mac}`)).text()
      const m = /^kernel --name vmlinuz \S+ (.*?)(?: \|\| goto \S+)?$/m.exec(script)
      if (m === null) throw new Error(`no kernel line in the boot script for ${mac}:\n${script}`)
      return m[1]!
    },
    blobPath: (d) => join(dataDir, 'images', 'sha256', d.slice(0, 2), d),
    log: srv.log,
  }
}

/** Uploads kernel, initrd (placeholders) and the rootfs, registers the image, makes it the default. */
export async function addImage (nb: Netboot, name: string, rootfs: BuiltImage, opts: { makeDefault?: boolean; withRootfs?: boolean } = {}): Promise<void> {
  const kernel = Buffer.from(`kernel of ${name}`)
  const initrd = Buffer.from(`initrd of ${name}`)
  const withRootfs = opts.withRootfs ?? true
  for (const b of [kernel, initrd, ...(withRootfs ? [readFileSync(rootfs.path)] : [])]) {
    await nb.admin('PUT', `/api/v1/blobs/${sha256(b)}`, b)
  }
  await nb.admin('POST', '/api/v1/images', {
    name, version: '1', kernelSha256: sha256(kernel), initrdSha256: sha256(initrd), ...(withRootfs ? { rootfsSha256: rootfs.sha256 } : {}),
    params: 'console=ttyS0,115200 ip=dhcp rd.neednet=1',
  }, 201)
  if (opts.makeDefault ?? true) await nb.admin('PUT', '/api/v1/boot', { scope: 'default', image: name })
}

/** Points the default boot configuration at an image. */
export async function setDefaultImage (nb: Netboot, name: string): Promise<void> {
  await nb.admin('PUT', '/api/v1/boot', { scope: 'default', image: name })
}

/** Plain and secure cloud-init for a group: the secure one carries `secureMarker`. */
export async function setCloudInit (nb: Netboot, group: string, plainMarker: string, secureMarker: string): Promise<void> {
  const doc = (marker: string, path: string): string => [
    `name: ${group}`,
    'cloud-init:',
    '  userdata:',
    '    write_files:',
    `      - path: ${path}`,
    `        content: ${marker}`,
    '        permissions: "0600"',
    '  metadata:',
    '    rack: r1',
    '',
  ].join('\n')
  await nb.admin('PUT', '/api/v1/cloud-init', { document: doc(plainMarker, '/etc/netboot-plain'), source: 'plain.yaml' })
  await nb.admin('PUT', '/api/v1/cloud-init', { document: doc(secureMarker, '/etc/netboot-secret'), source: 'secure.yaml', secure: true })
}

/* ------------------------------------------------------------------ proxy */

/** One request through the proxy; `cut` when the proxy cut or stalled it. */
export interface ProxyRequest { method: string; path: string; range?: string; ifRange?: string; status?: number; bytes: number; cut: boolean }

export interface CuttingProxy {
  readonly url: string
  readonly requests: ProxyRequest[]
  /** Cut the next `count` image responses after `afterBytes` body bytes. */
  cutImages (count: number, afterBytes: number): void
  /** Stall the next `count` image responses after `afterBytes` body bytes: the connection stays open, silent. */
  stallImages (count: number, afterBytes: number): void
  /** Answer the next `count` image requests with 503. */
  failImages (count: number): void
  close (): Promise<void>
}

/**
 * An HTTP proxy on loopback in front of the netboot node server: nodes see it as
 * server.public_url. It forwards everything and can cut image downloads mid-body
 * (the socket is destroyed) or refuse them with 503, to test resume and retries.
 */
export async function startProxy (t: Test, port: number, target: () => number): Promise<CuttingProxy> {
  const requests: ProxyRequest[] = []
  let cuts = { count: 0, after: 0, stall: false }
  let fails = 0
  const server: Server = createServer((req, res) => {
    const isImage = (req.url ?? '').startsWith('/images/')
    const rec: ProxyRequest = { method: req.method ?? '', path: req.url ?? '', bytes: 0, cut: false, ...(req.headers.range !== undefined ? { range: req.headers.range } : {}), ...(typeof req.headers['if-range'] === 'string' ? { ifRange: req.headers['if-range'] } : {}) }
    requests.push(rec)
    if (isImage && fails > 0) {
      fails--
      rec.status = 503
      res.writeHead(503, { 'retry-after': '0', 'content-type': 'text/plain' }).end('busy')
      return
    }
    const cut = isImage && cuts.count > 0 ? cuts.after : undefined
    const stall = cuts.stall
    if (cut !== undefined) cuts = { ...cuts, count: cuts.count - 1 }
    const up = httpRequest({ host: '127.0.0.1', port: target(), method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${target()}` } }, (ur) => {
      rec.status = ur.statusCode
      res.writeHead(ur.statusCode ?? 502, ur.headers)
      ur.on('data', (chunk: Buffer) => {
        if (cut !== undefined && !rec.cut && rec.bytes + chunk.length >= cut) {
          rec.cut = true
          ur.destroy()
          // hand what was written to the kernel, then drop the connection mid-body (or go silent)
          res.write(chunk.subarray(0, Math.max(0, cut - rec.bytes)), () => { if (!stall) setTimeout(() => res.socket?.destroy(), 50) })
          rec.bytes = cut
          return
        }
        if (rec.cut) return
        rec.bytes += chunk.length
        res.write(chunk)
      })
      ur.on('end', () => { if (!rec.cut) res.end() })
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()))
  const close = async (): Promise<void> => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(close)
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    cutImages: (count, afterBytes) => { cuts = { count, after: afterBytes, stall: false } },
    stallImages: (count, afterBytes) => { cuts = { count, after: afterBytes, stall: true } },
    failImages: (count) => { fails = count },
    close,
  }
}

/* ------------------------------------------------------------------ cleanup */

/** Mount points at or under `dir`, deepest first. */
export function mountsUnder (dir: string): string[] {
  const out: string[] = []
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const p = line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (p !== undefined && (p === dir || p.startsWith(`${dir}/`))) out.push(p)
  }
  return out.sort((a, b) => b.length - a.length)
}

/** Loop devices backed by files under `dir`. */
export function loopsUnder (dir: string): string[] {
  const r = spawnSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' })
  return (r.stdout ?? '').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1] !== undefined && f[1].startsWith(`${dir}/`)).map((f) => f[0]!)
}

/** Unmounts everything under dir and detaches its loop devices (teardown of a test that failed midway). */
export function cleanupMounts (dir: string): void {
  for (const p of mountsUnder(dir)) {
    if (spawnSync('umount', [p]).status !== 0) spawnSync('umount', ['-l', p])
  }
  for (const l of loopsUnder(dir)) spawnSync('losetup', ['-d', l])
}

/* ------------------------------------------------------------------ one boot */

export const NODE_MAC = '02:00:00:aa:00:01'
export const NODE_MAC2 = '02:00:00:aa:00:02'
export const PLAIN_MARKER = 'plain-marker-7d1e'
export const SECURE_MARKER = 'secure-marker-93ab'
export const ROOTFS_MARKER = 'rootfs-marker-5f2c'

export interface BootDirs { dir: string; newRoot: string; workDir: string; runDir: string; sysfs: string }

/** A temp dir with newroot/, work/, run/ and a fake sysfs; every mount and loop device under it is undone at teardown. */
export function bootDirs (t: Test, macs: string[]): BootDirs {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-agent-'))
  t.teardown(() => {
    cleanupMounts(dir)
    rmSync(dir, { recursive: true, force: true })
  })
  for (const d of ['newroot', 'work', 'run']) mkdirSync(join(dir, d))
  const sysfs = fakeSysfs(dir, { macs, uuid: '4C4C4544-0042-3510-8052-B4C04F563032', serial: 'SN-TEST-1', vendor: 'Netboot Labs', product: 'Test Node 1' })
  return { dir, newRoot: join(dir, 'newroot'), workDir: join(dir, 'work'), runDir: join(dir, 'run'), sysfs }
}

export function agentConfig (sw: Swtpm, cmdline: string, b: BootDirs, overrides: Partial<AgentConfig> = {}): AgentConfig {
  return { cmdline: parseCmdline(cmdline), tcti: tctiOf(sw), newRoot: b.newRoot, workDir: b.workDir, runDir: b.runDir, sysfs: b.sysfs, overlaySize: '64m', policy: FAST_POLICY, ...overrides }
}

/** netboot serve with node nid001 (group compute, NODE_MAC), image `compute` as default, plain + secure cloud-init. */
/**
 * What most agent-flow files boot against: one swtpm (stopped when `t` ends), a
 * squashfs image holding ROOTFS_MARKER, and the standard server holding both.
 * Call it from t.before: one set of peers for every boot in the file.
 */
export async function standardPeers (t: Test, extra: Partial<NetbootOptions> = {}): Promise<{ sw: Swtpm; image: BuiltImage; nb: Netboot }> {
  const sw = await startSwtpm()
  t.teardown(async () => { await sw.stop() })
  const image = buildSquashfs(tempDir(t, 'netboot-image-'), ROOTFS_MARKER)
  return { sw, image, nb: await standardServer(t, sw, image, extra) }
}

export async function standardServer (t: Test, sw: Swtpm, image: BuiltImage, extra: Partial<NetbootOptions> = {}): Promise<Netboot> {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-srv-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const nb = await startNetboot(t, dir, sw, { enrollment: 'tofu', groups: ['compute'], nodes: [{ name: 'nid001', groups: ['compute'], macs: [NODE_MAC] }], ...extra })
  await addImage(nb, 'compute', image)
  await setCloudInit(nb, 'compute', PLAIN_MARKER, SECURE_MARKER)
  return nb
}

/** Asserts the states a boot went through; on a mismatch the agent's console lines go into the test output. */
export function expectTrace (t: Test, r: { trace: readonly string[] }, log: { lines: string[] }, trace: readonly string[]): void {
  t.same(r.trace, trace, `states: ${trace.join(' → ')}`)
  if (r.trace.join() !== trace.join()) t.comment(log.lines.join('\n'))
}

/** Asserts how a boot ended; when it did not end so, the agent's console lines go into the test output. */
export function expectEnd (t: Test, r: { state: string; exitCode: number; error?: { message: string } }, log: { lines: string[] }, state: string, exitCode?: number): void {
  const ok = r.state === state && (exitCode === undefined || r.exitCode === exitCode)
  t.ok(ok, `the boot ends in ${state}${exitCode !== undefined ? `, exit ${exitCode}` : ''}`)
  if (!ok) t.comment(`ended in ${r.state}, exit ${r.exitCode}${r.error !== undefined ? ` (${r.error.message})` : ''}\n${log.lines.join('\n')}`)
}
