/**
 * Throughput of one large file to one client over loopback: sendFile on fastify
 * (at several read sizes) against nginx serving the same file. Not a test.
 *
 *   npx tsx bench/http/send-file-bench.ts [--mib 1024] [--runs 5]
 *
 * Needs curl and nginx (Debian: apt-get install --no-install-recommends nginx).
 * nginx runs in the foreground (`daemon off;`) from a config written to a
 * temporary directory, on an ephemeral loopback port, and is stopped by its pid;
 * the system service is never touched. The file holds real (non-sparse) data,
 * so both servers read it from the page cache. All servers run side by side
 * and are measured in turn, round after round; medians are reported.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2)
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : dflt
}
const MIB = opt('mib', 1024)
const RUNS = opt('runs', 5)
const CHUNKS = [64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024]
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))

const children = new Set<ChildProcess>()
const stopAll = (): void => { for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL') }
process.once('exit', stopAll)
process.once('SIGINT', () => { stopAll(); process.exit(130) })

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

async function curlSpeed (url: string, expected: number): Promise<number> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k)))
  return await new Promise((resolve, reject) => {
    execFile('curl', ['--noproxy', '*', '--max-time', '120', '-s', '-S', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{speed_download}', url], { env }, (err, stdout, stderr) => {
      if (err !== null) { reject(new Error(`curl: ${stderr}`)); return }
      const [code, size, speed] = stdout.split(' ')
      if (code !== '200' || Number(size) !== expected) { reject(new Error(`curl got ${stdout}`)); return }
      resolve(Number(speed))
    })
  })
}

async function waitForPort (port: number, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer()
      s.once('error', () => resolve(true))
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)))
    })
    if (ok) return
    if (proc.exitCode !== null) throw new Error('server exited before listening')
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after 20 s`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function stop (proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.pid === undefined) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  process.kill(proc.pid, 'SIGTERM')
  const timer = setTimeout(() => { if (proc.exitCode === null && proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL') }, 5000)
  await exited
  clearTimeout(timer)
  children.delete(proc)
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

interface Target { readonly label: string; readonly url: string; readonly speeds: number[] }

/**
 * All servers run at once and each round downloads once from every one, in
 * turn: on a shared machine, load that comes and goes then hits every server
 * alike instead of whichever happened to run at that moment.
 */
async function measureAll (targets: Target[], size: number): Promise<void> {
  for (const tg of targets) await curlSpeed(tg.url, size) // warm-up
  for (let round = 0; round < RUNS; round++) {
    for (const tg of targets) tg.speeds.push(await curlSpeed(tg.url, size))
  }
  for (const tg of targets) {
    console.log(`${tg.label.padEnd(34)} median ${(median(tg.speeds) / 1048576).toFixed(0).padStart(6)} MiB/s   runs: ${tg.speeds.map((x) => (x / 1048576).toFixed(0)).join(', ')}`)
  }
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * Compiles the file server (test/images/serve-file-child.ts and what it
 * imports) with the project's tsc into `dir`, to run as plain JavaScript the
 * way `node dist/…` runs in production. (Under tsx's loader the same code
 * measured about half as fast.)
 */
async function compileServer (dir: string): Promise<string> {
  const out = join(dir, 'js')
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '--outDir', out, '--rootDir', ROOT, '--module', 'nodenext',
      '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023', '--types', 'node', '--skipLibCheck', '--strict',
      join(ROOT, 'test/images/serve-file-child.ts')], (err, stdout) => { if (err !== null) reject(new Error(`tsc: ${stdout}`)); else resolve() })
  })
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n')
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'))
  return join(out, 'test/images/serve-file-child.js')
}

async function sendFileServer (server: string, file: string, hwm: number): Promise<{ proc: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [server, file, String(hwm)], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.add(child)
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { port: number }).port)
    })
    child.once('exit', (code) => reject(new Error(`sendFile server exited ${code}`)))
  })
  return { proc: child, port }
}

async function nginxServer (dir: string, sendfile: boolean): Promise<{ proc: ChildProcess; port: number }> {
  if (NGINX === undefined) throw new Error('nginx is not installed (apt-get install -y --no-install-recommends nginx)')
  const port = await freePort()
  const conf = join(dir, `nginx-${port}.conf`)
  writeFileSync(conf, `
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx-${port}.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  types { application/octet-stream bin; }
  default_type application/octet-stream;
  sendfile ${sendfile ? 'on' : 'off'};
  tcp_nopush on;
  output_buffers 2 1m;
  server {
    listen 127.0.0.1:${port};
    root ${dir};
    location / { }
  }
}
`)
  const child = spawn(NGINX, ['-c', conf, '-p', dir, '-e', join(dir, 'nginx-error.log')], { stdio: ['ignore', 'inherit', 'inherit'] })
  children.add(child)
  await waitForPort(port, child)
  return { proc: child, port }
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-bench-'))
  chmodSync(dir, 0o755) // nginx workers may run as another user
  try {
    const file = join(dir, 'rootfs.bin')
    const size = MIB * 1024 * 1024
    const block = randomBytes(1024 * 1024)
    const fd = openSync(file, 'w', 0o644)
    for (let i = 0; i < MIB; i++) writeSync(fd, block)
    closeSync(fd)
    console.log(`file: ${MIB} MiB of data, ${RUNS} runs after one warm-up, curl → /dev/null over 127.0.0.1`)

    const targets: Target[] = []
    const procs: ChildProcess[] = []
    const server = await compileServer(dir)
    for (const hwm of CHUNKS) {
      const sv = await sendFileServer(server, file, hwm)
      procs.push(sv.proc)
      targets.push({ label: `sendFile, highWaterMark ${hwm / 1024} KiB`, url: `http://127.0.0.1:${sv.port}/f`, speeds: [] })
    }
    for (const sf of [true, false]) {
      const n = await nginxServer(dir, sf)
      procs.push(n.proc)
      targets.push({ label: `nginx 1.22, sendfile ${sf ? 'on' : 'off'}`, url: `http://127.0.0.1:${n.port}/rootfs.bin`, speeds: [] })
    }
    await measureAll(targets, size)
    for (const p of procs) await stop(p)
    const nginxOn = median(targets[CHUNKS.length]!.speeds)
    const nginxOff = median(targets[CHUNKS.length + 1]!.speeds)
    console.log('\nratio of medians, sendFile / nginx (sendfile on | off):')
    CHUNKS.forEach((hwm, i) => {
      const r = median(targets[i]!.speeds)
      console.log(`  ${String(hwm / 1024).padStart(4)} KiB: ${(r / nginxOn).toFixed(2)} | ${(r / nginxOff).toFixed(2)}`)
    })
  } finally {
    stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
