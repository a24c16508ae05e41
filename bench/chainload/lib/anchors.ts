/**
 * The anchors, each a foreground process with its own configuration in the temp
 * dir, on a loopback port, stopped by its pid; the system services are never
 * touched.
 *
 *   nginx     nginx -c DIR/nginx.conf (daemon off; master + 1 worker), serving DIR/www
 *             with the same URLs as netboot: /images/<sha256>/rootfs.squashfs (a
 *             symlink to the very blob file netboot serves, so both read the same
 *             pages of the page cache) and /boot/<mac> (a static file holding the
 *             bytes netboot's GET /boot/<mac> returned).
 *   in.tftpd  tftpd-hpa's in.tftpd -L -s ROOT -a 127.0.0.1:PORT (foreground, chrooted).
 */
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { alive, stopChild, track } from '../../dhcp/lib/sys.js'
import { LOOPBACK, freeTcpPort, freeUdpPort, versionOf } from './common.js'

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))
export const IN_TFTPD = ['/usr/sbin/in.tftpd'].find((p) => existsSync(p))

export interface Anchor { pid: number; proc: ChildProcess; port: number; command: string; version: string; config?: string; stop (): Promise<void> }
export interface Nginx extends Anchor { /** the same, with sendfile off: a reference that reads and writes like netboot */ portNoSendfile: number }

/**
 * The nginx.conf every benchmark's nginx anchor runs with: one worker (netboot is one
 * event loop), no access log, sendfile on, temp paths and pid under `dir`; `http` adds
 * lines to the http block, `servers` the server blocks.
 */
export function nginxConf (dir: string, by: string, workerConnections: number, http: string, servers: string): string {
  return `# written by ${by}
daemon off;
master_process on;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
${http}${servers}}
`
}

/**
 * One worker: netboot is one event loop too. sendfile on (nginx's usual setting for
 * static files, and its fastest); access log off (netboot logs no request at warn).
 * Everything else as nginx ships it. A second server block on another port has
 * sendfile off (nginx then reads into its output buffers and writes, as netboot
 * does): a reference for the image rounds.
 */
export async function startNginx (dir: string, www: string): Promise<Nginx> {
  if (NGINX === undefined) throw new Error('nginx is not installed (apt-get install -y --no-install-recommends nginx)')
  const port = await freeTcpPort()
  const portNoSendfile = await freeTcpPort()
  const conf = join(dir, 'nginx.conf')
  const text = nginxConf(dir, 'bench/chainload/run.ts', 1024, '', `  server {
    listen ${LOOPBACK}:${port};
    root ${www};
    location /boot/ { default_type 'text/plain; charset=utf-8'; add_header cache-control no-store; }
  }
  server {
    listen ${LOOPBACK}:${portNoSendfile};
    root ${www};
    sendfile off;
  }
`)
  writeFileSync(conf, text)
  const args = ['-c', conf, '-p', dir, '-e', join(dir, 'nginx-error.log')]
  const proc = track(NGINX, args, { stdio: ['ignore', 'inherit', 'inherit'] })
  if (proc.pid === undefined) throw new Error('nginx: failed to start')
  const deadline = Date.now() + 10_000
  for (;;) {
    try { await (await fetch(`http://${LOOPBACK}:${port}/`, { signal: AbortSignal.timeout(1000) })).arrayBuffer(); break } catch { /* not yet */ }
    if (!alive(proc)) throw new Error('nginx exited at start (see its error log above)')
    if (Date.now() > deadline) throw new Error(`nginx does not answer on ${port}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    pid: proc.pid, proc, port, portNoSendfile, command: [NGINX, ...args].join(' '), config: text,
    version: versionOf(NGINX, ['-v'], /nginx\/(\S+)/),
    stop: async () => await stopChild(proc, 5000),
  }
}

export async function startTftpd (root: string): Promise<Anchor> {
  if (IN_TFTPD === undefined) throw new Error('in.tftpd is not installed (apt-get install -y --no-install-recommends tftpd-hpa)')
  const port = await freeUdpPort()
  const args = ['-L', '-s', root, '-a', `${LOOPBACK}:${port}`]
  const proc = track(IN_TFTPD, args, { stdio: ['ignore', 'inherit', 'inherit'] })
  if (proc.pid === undefined) throw new Error('in.tftpd: failed to start')
  await new Promise((resolve) => setTimeout(resolve, 300))
  if (!alive(proc)) throw new Error('in.tftpd exited at start')
  return {
    pid: proc.pid, proc, port, command: [IN_TFTPD, ...args].join(' '),
    version: versionOf(IN_TFTPD, ['-V'], /tftp-hpa (\S+)/),
    stop: async () => await stopChild(proc, 5000),
  }
}

/**
 * A reference, not an anchor: bare node:http (same Node as netboot) answering
 * every request with the boot script's bytes from memory and netboot's headers.
 * What one Node event loop does per request on this machine before any
 * framework or application code: the ceiling for netboot's boot-script route.
 */
export async function startNodeHttp (bodyFile: string): Promise<Anchor> {
  const port = await freeTcpPort()
  const code = `const body = require('fs').readFileSync(${JSON.stringify(bodyFile)});
require('http').createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': body.length })
  res.end(body)
}).listen(${port}, '${LOOPBACK}')`
  const proc = track(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit'] })
  if (proc.pid === undefined) throw new Error('node:http reference: failed to start')
  const deadline = Date.now() + 10_000
  for (;;) {
    try { await (await fetch(`http://${LOOPBACK}:${port}/`, { signal: AbortSignal.timeout(1000) })).arrayBuffer(); break } catch { /* not yet */ }
    if (!alive(proc)) throw new Error('node:http reference exited at start')
    if (Date.now() > deadline) throw new Error(`node:http reference does not answer on ${port}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { pid: proc.pid, proc, port, command: `node -e <a node:http server of ${bodyFile}>`, version: process.version, stop: async () => await stopChild(proc, 5000) }
}
