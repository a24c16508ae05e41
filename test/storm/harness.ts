/**
 * What a storm run needs around the simulator, shared by the suite's test
 * (test/storm/storm.test.ts) and the benchmark (bench/storm/run.ts):
 *
 *  - the fleet: names, MACs and reserved addresses (10.98.16.1 onwards, 250 per /24)
 *  - the netboot configuration for the provisioning namespace (DHCP, TFTP and the
 *    node HTTP server on the veth address; the admin API on the namespace's loopback)
 *  - provisioning through the admin API as an admin would: node import (nodes.yaml),
 *    kernel/initrd/rootfs blobs, an image, the boot configuration, plain and secure
 *    cloud-init payloads for the nodes' group (`provision` — run inside the server's
 *    namespace by `node --import tsx test/storm/harness.ts provision ARGS.json`)
 *  - running a TypeScript entry point inside a namespace with a hard time limit.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { prng, type SimNodeSpec } from './sim.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const NET = { server: '10.98.0.1', client: '10.98.0.2', prefix: 16, network: '10.98.0.0/16', pool: '10.98.200.0-10.98.250.255' }
export const HTTP_PORT = 8080
export const ADMIN_PORT = 8081
export const GROUP = 'compute'

export function macOf (i: number): string {
  return `02:5b:${[(i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`
}

/** `n` nodes: st00001…, reserved addresses 10.98.16.1 onwards (250 per /24, never .0 or .255); a share UEFI (arch 7). */
export function fleet (n: number, uefiShare = 0): SimNodeSpec[] {
  if (n > 250 * 180) throw new Error(`at most ${250 * 180} nodes fit 10.98.16.0-10.98.195.255`)
  const everyUefi = uefiShare > 0 ? Math.round(1 / uefiShare) : 0
  return Array.from({ length: n }, (_, i) => ({
    name: `st${String(i + 1).padStart(5, '0')}`,
    mac: macOf(i + 1),
    ip: `10.98.${16 + Math.floor(i / 250)}.${1 + (i % 250)}`,
    arch: everyUefi > 0 && i % everyUefi === everyUefi - 1 ? 7 : 0,
  }))
}

export function netbootYaml (dataDir: string, o: { logLevel?: string; ipxeDir?: string; pcrPolicy?: string; ekCa?: string } = {}): string {
  return `# written by test/storm/harness.ts: the boot server of a storm run
data_dir: ${dataDir}
log: { level: ${o.logLevel ?? 'warn'} }
database: { synchronous: normal }
server: { address: ${NET.server}, interfaces: [prov0] }
http: { listen: ${NET.server}, port: ${HTTP_PORT} }
admin: { listen: 127.0.0.1, port: ${ADMIN_PORT} }
tftp: { enabled: true, listen: ${NET.server}, port: 69, ipxe_dir: ${o.ipxeDir ?? '/usr/lib/ipxe'} }
unknown_nodes: { action: reboot, lease_time: 300 }
attestation: { enabled: true, enrollment: tofu, require_ek_cert: false, pcr_policy: ${o.pcrPolicy ?? 'learn'}${o.ekCa !== undefined ? `, ek_ca: ${o.ekCa}` : ''} }
dhcp:
  lease_time: 3600
  subnets:
    - name: prov
      network: ${NET.network}
      interface: prov0
      pool: [${NET.pool}]
      router: ${NET.server}
`
}

export interface Blob { file: string; sha256: string; size: number }
export interface Artefacts { kernel: Blob; initrd: Blob; rootfs: Blob }

/** Deterministic pseudo-random files: a "small" kernel, initrd and rootfs (sizes in bytes). */
export function makeArtefacts (dir: string, sizes = { kernel: 64 << 10, initrd: 256 << 10, rootfs: 1 << 20 }): Artefacts {
  const make = (name: string, size: number, seed: number): Blob => {
    const r = prng(seed)
    const b = Buffer.alloc(size)
    for (let i = 0; i < size; i += 4) b.writeUInt32LE(Math.floor(r() * 0x100000000), Math.min(i, size - 4))
    const file = join(dir, name)
    writeFileSync(file, b)
    return { file, size, sha256: createHash('sha256').update(b).digest('hex') }
  }
  return { kernel: make('vmlinuz', sizes.kernel, 11), initrd: make('initrd.img', sizes.initrd, 12), rootfs: make('rootfs.squashfs', sizes.rootfs, 13) }
}

export interface ProvisionArgs { adminUrl: string; token: string; nodes: SimNodeSpec[]; artefacts: Artefacts }

async function api (a: ProvisionArgs, method: string, path: string, body?: unknown, raw?: Buffer): Promise<unknown> {
  const headers: Record<string, string> = { authorization: `Bearer ${a.token}` }
  if (raw !== undefined) headers['content-type'] = 'application/octet-stream'
  else if (body !== undefined) headers['content-type'] = 'application/json'
  const r = await fetch(`${a.adminUrl}${path}`, { method, headers, body: raw ?? (body !== undefined ? JSON.stringify(body) : undefined), signal: AbortSignal.timeout(300_000) })
  const text = await r.text()
  if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${text.slice(0, 500)}`)
  return text === '' ? undefined : JSON.parse(text)
}

/** Inventory, image, boot configuration and cloud-init, through the admin API. */
export async function provision (a: ProvisionArgs): Promise<void> {
  // the server may still be starting: wait (bounded) for its admin API
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${a.adminUrl}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) break } catch { /* not yet */ }
    if (i >= 300) throw new Error(`${a.adminUrl}/healthz did not answer within 30 s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  for (const b of Object.values(a.artefacts)) await api(a, 'PUT', `/api/v1/blobs/${b.sha256}`, undefined, readFileSync(b.file))
  const doc = ['nodes:', ...a.nodes.map((n) => `  - { name: ${n.name}, group: ${GROUP}, mac: '${n.mac}'${n.ip !== undefined ? `, ipaddr: ${n.ip}` : ''} }`)].join('\n') + '\n'
  const imp = await api(a, 'POST', '/api/v1/nodes/import', { document: doc, source: 'storm-nodes.yaml', createGroups: true }) as { created: string[] }
  if (imp.created.length !== a.nodes.length) throw new Error(`import created ${imp.created.length} nodes, expected ${a.nodes.length}`)
  const { kernel, initrd, rootfs } = a.artefacts
  await api(a, 'POST', '/api/v1/images', { name: 'storm', version: '1', kernelSha256: kernel.sha256, initrdSha256: initrd.sha256, rootfsSha256: rootfs.sha256, params: 'ip=dhcp rd.neednet=1' })
  await api(a, 'PUT', '/api/v1/boot', { scope: 'default', target: '', image: 'storm', params: 'quiet' })
  await api(a, 'PUT', '/api/v1/boot', { scope: 'group', target: GROUP, params: 'console=ttyS0,115200' })
  await api(a, 'PUT', '/api/v1/cloud-init', {
    document: `name: ${GROUP}\ncloud-init:\n  userdata: {packages: [chrony], runcmd: ["echo storm"]}\n  metadata: {cluster: storm}\n`, source: 'storm-plain.yaml', secure: false,
  })
  await api(a, 'PUT', '/api/v1/cloud-init', {
    document: `name: ${GROUP}\ncloud-init:\n  userdata: {write_files: [{path: /etc/storm-secret, content: "not a real secret", permissions: "0600"}]}\n`, source: 'storm-secure.yaml', secure: true,
  })
}

export interface NsRun { code: number | null; stderr: string; ms: number }

const running = new Set<number>()

/** SIGKILLs (by pid) every tsxInNs child still running: for a caller's cleanup on failure or Ctrl-C. */
export function killTsxChildren (): void {
  for (const pid of running) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  running.clear()
}

/**
 * `ip netns exec NS [nice -n N] node --import tsx SCRIPT ARGS…` from the repository
 * root (`ip netns exec` and `nice` exec, so the pid is node's own), killed by pid
 * after `timeoutMs`.
 */
export async function tsxInNs (ns: string, script: string, args: readonly string[], timeoutMs: number, onStderr?: (s: string) => void, nice = 0, started?: { marker: string; withinMs: number }): Promise<NsRun> {
  const t0 = Date.now()
  return await new Promise<NsRun>((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...(nice !== 0 ? ['nice', '-n', String(nice)] : []), process.execPath, '--import', 'tsx', join(ROOT, script), ...args], { cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe'] })
    if (child.pid !== undefined) running.add(child.pid)
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => { const s = d.toString(); stderr += s; onStderr?.(s) })
    const kill = (): void => { if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL') }
    const timer = setTimeout(kill, timeoutMs)
    // a child that never reaches its start line (seen once: tsx's esbuild service gone, the loader waiting forever) is killed early
    const startTimer = started !== undefined ? setTimeout(() => { if (!stderr.includes(started.marker)) { stderr += `\n(no '${started.marker.trim()}' line within ${started.withinMs} ms: killed)\n`; kill() } }, started.withinMs) : undefined
    child.once('error', (e) => { clearTimeout(timer); clearTimeout(startTimer); reject(e) })
    child.once('exit', (code) => { clearTimeout(timer); clearTimeout(startTimer); if (child.pid !== undefined) running.delete(child.pid); resolve({ code, stderr, ms: Date.now() - t0 }) })
  })
}

// `node --import tsx test/storm/harness.ts provision ARGS.json`, inside the server's namespace
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1] && process.argv[2] === 'provision') {
  const args = JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as ProvisionArgs
  provision(args).then(() => process.exit(0), (e: unknown) => { process.stderr.write(`provision: ${(e as Error)?.stack ?? String(e)}\n`); process.exit(1) })
}
