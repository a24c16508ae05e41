/**
 * The real server under test: `node dist/server/cli/main.js -c CONFIG serve`
 * (compiled JavaScript, log level warn), on loopback ports, its data in a temp
 * dir. DHCP is off (nothing here needs it); TFTP, the node HTTP server and the
 * admin API run as configured in production. Inventory, images and the boot
 * configuration go in through the admin API, with a token made by the CLI
 * (`netboot token create --local`), as an admin would.
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { closeSync, createReadStream, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { alive, stopChild, track } from '../../dhcp/lib/sys.js'
import { LOOPBACK, freeTcpPort, freeUdpPort, waitForHttp } from './common.js'

export const ROOT = new URL('../../../', import.meta.url).pathname
export const NETBOOT_CLI = join(ROOT, 'dist/server/cli/main.js')

/** The environment without NETBOOT_* (config overrides, the CLI's URL and token): the config file alone decides. */
function serverEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NETBOOT_')))
}

export interface NetbootSetup {
  dir: string
  /** tftp.ipxe_dir */
  ipxeDir: string
}

export interface Netboot {
  pid: number
  proc: ChildProcess
  /** node HTTP server, e.g. http://127.0.0.1:PORT */
  nodeUrl: string
  adminUrl: string
  tftpPort: number
  config: string
  command: string
  token: string
  log (): string
  stop (): Promise<void>
}

export interface NetbootPorts { http: number; admin: number; tftp: number }

export async function netbootPorts (): Promise<NetbootPorts> {
  return { http: await freeTcpPort(), admin: await freeTcpPort(), tftp: await freeUdpPort() }
}

/** Writes the configuration and bootstraps an admin token (CLI, --local) before the first start. */
export function prepareNetboot (s: NetbootSetup, ports: NetbootPorts): { config: string; token: string } {
  const data = join(s.dir, 'data')
  mkdirSync(data, { recursive: true })
  const config = join(s.dir, 'netboot.yaml')
  writeFileSync(config, `# written by bench/chainload/run.ts
data_dir: ${data}
log: { level: warn }
server: { address: ${LOOPBACK}, public_url: 'http://${LOOPBACK}:${ports.http}' }
http: { listen: ${LOOPBACK}, port: ${ports.http} }
admin: { listen: ${LOOPBACK}, port: ${ports.admin} }
dhcp: { enabled: false }
tftp: { enabled: true, listen: ${LOOPBACK}, port: ${ports.tftp}, ipxe_dir: ${s.ipxeDir} }
`)
  const out = execFileSync(process.execPath, [NETBOOT_CLI, '-c', config, 'token', 'create', '--local', 'bench-chainload', '--json'], { encoding: 'utf8', timeout: 30_000, env: serverEnv() })
  const token = (JSON.parse(out) as { value: string }).value
  return { config, token }
}

export async function startNetboot (s: NetbootSetup, ports: NetbootPorts, prepared: { config: string; token: string }, nodeArgs: string[] = []): Promise<Netboot> {
  const logFile = join(s.dir, 'netboot.log')
  const fd = openSync(logFile, 'a')
  const args = [...nodeArgs, NETBOOT_CLI, '-c', prepared.config, 'serve']
  const proc = track(process.execPath, args, { stdio: ['ignore', fd, fd], env: serverEnv() })
  closeSync(fd)
  if (proc.pid === undefined) throw new Error('netboot: failed to start')
  const nb: Netboot = {
    pid: proc.pid,
    proc,
    nodeUrl: `http://${LOOPBACK}:${ports.http}`,
    adminUrl: `http://${LOOPBACK}:${ports.admin}`,
    tftpPort: ports.tftp,
    config: prepared.config,
    command: ['node', ...args.map((a) => a.replace(ROOT, ''))].join(' '),
    token: prepared.token,
    log: () => { try { return readFileSync(logFile, 'utf8') } catch { return '' } },
    stop: async () => await stopChild(proc, 15_000),
  }
  try {
    await waitForHttp(`${nb.nodeUrl}/healthz`, 20_000, () => alive(proc))
  } catch (e) {
    throw new Error(`${(e as Error).message}\nnetboot log:\n${nb.log().slice(-3000)}`)
  }
  return nb
}

/** A call to the admin API; throws with the server's error unless the status is 2xx. */
export async function api<T> (nb: Netboot, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  const init: RequestInit & { duplex?: 'half' } = { method, headers: { authorization: `Bearer ${nb.token}` }, signal: AbortSignal.timeout(timeoutMs) }
  if (body instanceof Readable) {
    init.body = Readable.toWeb(body) as ReadableStream
    init.duplex = 'half'
    ;(init.headers as Record<string, string>)['content-type'] = 'application/octet-stream'
  } else if (body !== undefined) {
    init.body = JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  const r = await fetch(`${nb.adminUrl}${path}`, init)
  const text = await r.text()
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 500)}`)
  return (text === '' ? undefined : JSON.parse(text)) as T
}

/** PUT /api/v1/blobs/<sha256>, streamed from the file. */
export async function uploadBlob (nb: Netboot, file: string, sha256: string): Promise<{ size: number; ms: number }> {
  const t0 = performance.now()
  const r = await api<{ sha256: string; size: number }>(nb, 'PUT', `/api/v1/blobs/${sha256}`, createReadStream(file, { highWaterMark: 1 << 20 }), 300_000)
  if (r.sha256 !== sha256) throw new Error(`blob upload: server says ${r.sha256}, expected ${sha256}`)
  return { size: r.size, ms: performance.now() - t0 }
}

export interface Inventory {
  /** the node whose boot script is measured */
  mac: string
  name: string
  nodes: number
}

/**
 * An inventory of `count` nodes in group `compute` (one import, as from a
 * nodes.yaml), an image with a kernel, an initrd and the rootfs, and a boot
 * configuration in two layers (default names the image, the group adds
 * parameters), so GET /boot/<mac> composes a real script.
 */
export async function configure (nb: Netboot, o: { count: number; kernel: string; initrd: string; rootfs: string }): Promise<Inventory> {
  const mac = (i: number): string => `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`
  const lines = ['nodes:']
  for (let i = 1; i <= o.count; i++) {
    lines.push(`  - { name: nid${String(i).padStart(4, '0')}, group: compute, mac: '${mac(i)}', ipaddr: 10.1.${i >> 8}.${i & 0xff} }`)
  }
  const imp = await api<{ created: string[] }>(nb, 'POST', '/api/v1/nodes/import', { document: lines.join('\n') + '\n', source: 'bench-nodes.yaml', createGroups: true })
  if (imp.created.length !== o.count) throw new Error(`import created ${imp.created.length} nodes, expected ${o.count}`)
  await api(nb, 'POST', '/api/v1/images', {
    name: 'bench', version: '1', kernelSha256: o.kernel, initrdSha256: o.initrd, rootfsSha256: o.rootfs,
    params: 'ip=dhcp rd.neednet=1 root=live:netboot',
  })
  await api(nb, 'PUT', '/api/v1/boot', { scope: 'default', target: '', image: 'bench', params: 'quiet' })
  await api(nb, 'PUT', '/api/v1/boot', { scope: 'group', target: 'compute', params: 'console=tty0 console=ttyS0,115200' })
  const target = Math.ceil(o.count / 2)
  return { mac: mac(target), name: `nid${String(target).padStart(4, '0')}`, nodes: o.count }
}
