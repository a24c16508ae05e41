/**
 * Chainload benchmark: the real `netboot serve` (compiled dist/, log level warn)
 * against the anchors, in the same run on the same machine, over loopback:
 *
 *   TFTP          ipxe.efi and a 32 MiB file with atftp, blksize 512 / 1468 ×
 *                 windowsize 1 / 16, netboot vs tftpd-hpa's in.tftpd, back to back
 *   images        a 1 GiB image (an image's rootfs, uploaded through the admin API)
 *                 to 1 and 8 concurrent curl clients, netboot vs nginx serving the
 *                 same file; netboot's peak RSS during the 8-client rounds
 *   boot scripts  wrk against GET /boot/<mac> (a node in a 1,000-node inventory,
 *                 a real image and two boot-configuration layers) vs nginx serving
 *                 the same bytes as a static file; then a CPU profile of netboot
 *
 *   npx tsx bench/chainload/run.ts [--quick] [--build] [--only tftp,http,boot]
 *        [--runs 5] [--mib 1024] [--seconds 10] [--nodes 1000] [--no-profile]
 *        [--no-references] [--nice -10] [--keep]
 *
 * --quick: a smoke run under a minute (8 MiB TFTP file, one run each, 256 MiB
 * image, one 3 s wrk round, no profile). Needs root (in.tftpd chroots), nginx,
 * tftpd-hpa (in.tftpd), atftp, curl, wrk and a built netboot (npm run build, or
 * --build). Every process it starts is stopped by its pid and its temp dir removed
 * at the end, on failure and on Ctrl-C. Prints a table; writes
 * bench/out/chainload-<date>.json (and the profile next to it). Method and figures:
 * docs/bench-chainload.md.
 */
import { copyFileSync, chmodSync, closeSync, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { spawnSync, execFileSync } from 'node:child_process'
import { cpus, hostname, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { cleanup, installCleanupHandlers, onCleanup } from '../dhcp/lib/sys.js'
import { summarize, type ProfileSummary } from '../dhcp/lib/profile.js'
import { staleSources } from '../attest/lib/dist.js'
import { pseudoRandomBytes, sha256 } from '../../test/tftp/helpers.js'
import { LOOPBACK, loadAvg, resetPeakRss, round, statusKb, versionOf } from './lib/common.js'
import { NETBOOT_CLI, ROOT, configure, netbootPorts, prepareNetboot, startNetboot, uploadBlob, type Inventory, type Netboot } from './lib/netboot.js'
import { startNginx, startNodeHttp, startTftpd, type Anchor, type Nginx } from './lib/anchors.js'
import { measureTftp, negotiation, type Negotiation, type TftpCaseResult, type TftpFile } from './lib/tftp.js'
import { measureHttp, netbootGc, rssSampler, type HttpResult, type HttpTarget } from './lib/http.js'
import { measureWrk, wrk, type WrkResult } from './lib/wrk.js'
import { inclusiveTime, type Inclusive } from './lib/profile.js'

// ---- options ---------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (f: string): boolean => argv.includes(f)
const value = (f: string): string | undefined => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined }
if (flag('-h') || flag('--help')) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*?|^ \* ?/gm, '') + '\n')
  process.exit(0)
}
const QUICK = flag('--quick')
const num = (f: string, full: number, quick: number): number => Number(value(f) ?? (QUICK ? quick : full))
const OPTS = {
  quick: QUICK,
  only: (value('--only') ?? 'tftp,http,boot').split(',') as ('tftp' | 'http' | 'boot')[],
  /** TFTP: timed runs per server and case (after one warm-up run each, unless quick) */
  runs: num('--runs', 5, 1),
  /** ipxe.efi (under 4 MiB) gets this many times --runs */
  smallFileFactor: 3,
  tftpBigMiB: QUICK ? 8 : 32,
  blksizes: [512, 1468],
  windowsizes: [1, 16],
  /** HTTP: image size, rounds at 1 and at 8 clients */
  mib: num('--mib', 1024, 256),
  rounds1: QUICK ? 1 : 5,
  rounds8: QUICK ? 1 : 3,
  clients: [1, 8],
  /** boot scripts: wrk -t -c -d, rounds */
  wrkThreads: 2,
  wrkConnections: 64,
  seconds: num('--seconds', 10, 3),
  wrkRounds: QUICK ? 1 : 3,
  wrkWarmup: QUICK ? 1 : 2,
  nodes: num('--nodes', 1000, 1000),
  /** references (no goal) that locate the cost: nginx with sendfile off in the image rounds;
   *  wrk on netboot's /healthz and on a bare node:http server */
  references: !flag('--no-references'),
  profile: !QUICK && !flag('--no-profile'),
  profileSeconds: 5,
  build: flag('--build'),
  /** everything (servers and clients) runs under `nice -n` this: others share the machine; 0 = as is */
  nice: Number(value('--nice') ?? -10),
  keep: flag('--keep'),
}
const GOALS = { images: 0.9, bootScripts: 0.5 }

// Others share this machine: run the whole benchmark and everything it starts under `nice`.
if (OPTS.nice !== 0 && process.env.CHAINLOAD_BENCH_NICED !== '1') {
  const r = spawnSync('nice', ['-n', String(OPTS.nice), process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, CHAINLOAD_BENCH_NICED: '1' },
  })
  process.exit(r.status ?? 1)
}

const log = (msg: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }
const MiB = 1024 * 1024

// ---- files -----------------------------------------------------------------

/** `mib` MiB of incompressible data (a random MiB, each copy stamped with its index), and its sha256. */
function writeImage (file: string, mib: number): string {
  const block = randomBytes(MiB)
  const hash = createHash('sha256')
  const fd = openSync(file, 'w', 0o644)
  try {
    for (let i = 0; i < mib; i++) {
      block.writeUInt32LE(i, 0)
      writeSync(fd, block)
      hash.update(block)
    }
  } finally { closeSync(fd) }
  return hash.digest('hex')
}

function writeRandom (file: string, bytes: number): string {
  const b = randomBytes(bytes)
  writeFileSync(file, b, { mode: 0o644 })
  return sha256(b)
}

// ---- the run ---------------------------------------------------------------

interface Result {
  kind: 'netboot-chainload-bench'
  date: string
  command: string
  durationS?: number
  options: typeof OPTS
  environment: Record<string, unknown>
  loadavg: { start: number[]; perStage: Record<string, number[]>; end?: number[] }
  servers: Record<string, unknown>
  checks: Record<string, unknown>
  tftp?: { files: TftpFile[]; negotiation: Negotiation[]; cases: TftpCaseResult[]; goal: { met: boolean; rule: string; detail: string[] } }
  http?: { sizeBytes: number; url: Record<string, string>; upload: { ms: number; mbps: number }; results: HttpResult[]; netbootRss: { baselineKb?: number; peakKbDuring8Clients?: number; method: string; sampledMaxKb: number }; goal: { met: boolean; rule: string } }
  bootScripts?: { url: Record<string, string>; scriptBytes: number; inventory: Inventory; result: WrkResult; goal: { met: boolean; rule: string } }
  profile?: { file: string; wrkRps: number; seconds: number; summary: ProfileSummary; inclusive: Inclusive[] }
}

async function main (): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: in.tftpd -s chroots into its root')
  for (const bin of ['nginx', 'in.tftpd', 'atftp', 'curl', 'wrk']) {
    if (spawnSync('sh', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin}`]).status !== 0) throw new Error(`${bin} not found; see docs/bench-chainload.md for the packages`)
  }
  if (OPTS.build) { log('npm run build'); execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' }) }
  if (!existsSync(NETBOOT_CLI)) throw new Error(`${NETBOOT_CLI} missing: run npm run build (or pass --build)`)
  const stale = staleSources()
  if (stale.length > 0) throw new Error(`dist/ is older than ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ` and ${stale.length - 5} more` : ''}: run npm run build (or pass --build)`)
  const debianIpxe = '/usr/lib/ipxe/ipxe.efi'
  if (!existsSync(debianIpxe)) throw new Error(`${debianIpxe} missing (apt-get install ipxe)`)

  const started = Date.now()
  const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*/, '')
  const outDir = join(ROOT, 'bench/out')
  mkdirSync(outDir, { recursive: true })
  const res: Result = {
    kind: 'netboot-chainload-bench',
    date: new Date().toISOString(),
    command: `npx tsx bench/chainload/run.ts ${argv.join(' ')}`.trim(),
    options: OPTS,
    environment: {
      host: hostname(), cpus: cpus().length, model: cpus()[0]?.model ?? '?', memGiB: round(totalmem() / 2 ** 30, 1), kernel: release(), node: process.version,
      netbootCommit: gitHead(),
      tools: {
        nginx: versionOf('nginx', ['-v'], /nginx\/(\S+)/), tftpdHpa: versionOf('/usr/sbin/in.tftpd', ['-V'], /tftp-hpa ([^,\s]+)/),
        atftp: versionOf('atftp', ['-V'], /atftp-(\S+)/), curl: versionOf('curl', ['-V'], /curl (\S+)/), wrk: versionOf('wrk', ['-v'], /wrk (\S+)/),
      },
      shared: 'the machine is shared with other work: absolute figures move with its load; read the ratios (both servers measured in turn, round after round)',
      priority: OPTS.nice !== 0 ? `everything under nice -n ${OPTS.nice}` : 'default priority',
    },
    loadavg: { start: loadAvg(), perStage: {} },
    servers: {},
    checks: {},
  }
  log(`load average at start: ${res.loadavg.start.join(' ')} on ${cpus().length} CPUs (the machine is shared)`)

  installCleanupHandlers()
  const dir = mkdtempSync('/tmp/nbb-chainload-')
  chmodSync(dir, 0o755)
  if (!OPTS.keep) onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  log(`state in ${dir}`)

  // --- files: netboot's ipxe_dir holds Debian's layout (ipxe.efi a symlink that
  // leaves the directory) plus the big TFTP file; in.tftpd (chrooted) gets copies.
  const ipxeDir = join(dir, 'ipxe')
  const tftpdRoot = join(dir, 'tftpd')
  const src = join(dir, 'src')
  const www = join(dir, 'www')
  for (const d of [ipxeDir, tftpdRoot, src, www]) { mkdirSync(d, { recursive: true }); chmodSync(d, 0o755) }
  symlinkSync(debianIpxe, join(ipxeDir, 'ipxe.efi'))
  copyFileSync(realpathSync(debianIpxe), join(tftpdRoot, 'ipxe.efi'))
  chmodSync(join(tftpdRoot, 'ipxe.efi'), 0o644)
  const ipxeBytes = readFileSync(realpathSync(debianIpxe))
  const big = pseudoRandomBytes(OPTS.tftpBigMiB * MiB, 11)
  writeFileSync(join(ipxeDir, `big-${OPTS.tftpBigMiB}m.bin`), big, { mode: 0o644 })
  linkSync(join(ipxeDir, `big-${OPTS.tftpBigMiB}m.bin`), join(tftpdRoot, `big-${OPTS.tftpBigMiB}m.bin`))
  const tftpFiles: TftpFile[] = [
    { name: 'ipxe.efi', label: `ipxe.efi ${Math.round(ipxeBytes.length / 1024)} KiB`, size: ipxeBytes.length, sha256: sha256(ipxeBytes) },
    { name: `big-${OPTS.tftpBigMiB}m.bin`, label: `${OPTS.tftpBigMiB} MiB file`, size: big.length, sha256: sha256(big) },
  ]

  // --- netboot
  const ports = await netbootPorts()
  const prepared = prepareNetboot({ dir, ipxeDir }, ports)
  let nb: Netboot = await startNetboot({ dir, ipxeDir }, ports, prepared)
  res.servers.netboot = { command: nb.command, config: readFileSync(nb.config, 'utf8'), pid: nb.pid }
  log(`netboot pid ${nb.pid}: node ${nb.nodeUrl}, admin ${nb.adminUrl}, tftp ${LOOPBACK}:${nb.tftpPort}`)

  // ipxe.efi through Debian's symlink, over HTTP too (the start-up fix)
  const viaHttp = Buffer.from(await (await fetch(`${nb.nodeUrl}/ipxe/ipxe.efi`)).arrayBuffer())
  res.checks.ipxeEfiOverHttp = viaHttp.equals(ipxeBytes) ? 'ok: /ipxe/ipxe.efi has the bytes of /boot/ipxe.efi' : `FAILED: ${viaHttp.length} bytes`

  // --- image: kernel, initrd, and the big rootfs, uploaded through the admin API
  log(`writing a ${OPTS.mib} MiB image and uploading it (PUT /api/v1/blobs/<sha256>)`)
  const rootfsFile = join(src, 'rootfs.img')
  const rootfs = writeImage(rootfsFile, OPTS.mib)
  const kernel = writeRandom(join(src, 'vmlinuz'), 4 * MiB)
  const initrd = writeRandom(join(src, 'initrd.img'), 8 * MiB)
  await uploadBlob(nb, join(src, 'vmlinuz'), kernel)
  await uploadBlob(nb, join(src, 'initrd.img'), initrd)
  const up = await uploadBlob(nb, rootfsFile, rootfs)
  rmSync(rootfsFile) // from here on, only the blob netboot stores exists: both servers serve that file
  const inv = await configure(nb, { count: OPTS.nodes, kernel, initrd, rootfs })
  const { BlobStore } = await import(join(ROOT, 'dist/server/images/blobs.js')) as typeof import('../../server/images/blobs.js')
  const blobPath = new BlobStore(join(dir, 'data', 'images')).path(rootfs)
  if (!existsSync(blobPath)) throw new Error(`the uploaded rootfs is not at ${blobPath}`)
  mkdirSync(join(www, 'images', rootfs), { recursive: true })
  symlinkSync(blobPath, join(www, 'images', rootfs, 'rootfs.squashfs'))
  log(`image uploaded at ${round(OPTS.mib * MiB / 1e6 / (up.ms / 1000), 0)} MB/s; ${inv.nodes} nodes; measured node ${inv.name} ${inv.mac}`)

  // --- the boot script, and the same bytes for nginx
  const bootPath = `/boot/${inv.mac}`
  const scriptRes = await fetch(`${nb.nodeUrl}${bootPath}`)
  const script = Buffer.from(await scriptRes.arrayBuffer())
  if (scriptRes.status !== 200 || !script.toString().startsWith('#!ipxe') || !script.toString().includes(`netboot.node=${inv.name}`) || !script.toString().includes('kernel ')) {
    throw new Error(`GET ${bootPath}: ${scriptRes.status}, not a boot script for ${inv.name}:\n${script.toString().slice(0, 1000)}`)
  }
  mkdirSync(join(www, 'boot'), { recursive: true })
  writeFileSync(join(www, 'boot', inv.mac), script, { mode: 0o644 })
  res.checks.bootScript = { bytes: script.length, text: script.toString() }

  // --- anchors
  const nginx: Nginx = await startNginx(dir, www)
  const tftpd: Anchor = await startTftpd(tftpdRoot)
  res.servers.nginx = { command: nginx.command, version: nginx.version, config: nginx.config, pid: nginx.pid }
  res.servers.tftpdHpa = { command: tftpd.command, version: tftpd.version, pid: tftpd.pid }
  const fromNginx = Buffer.from(await (await fetch(`http://${LOOPBACK}:${nginx.port}${bootPath}`)).arrayBuffer())
  if (!fromNginx.equals(script)) throw new Error('nginx does not return the same bytes as netboot for the boot script')
  log(`nginx pid ${nginx.pid} on ${nginx.port}; in.tftpd pid ${tftpd.pid} on ${tftpd.port}`)

  // --- TFTP
  if (OPTS.only.includes('tftp')) {
    res.loadavg.perStage.tftp = loadAvg()
    log(`TFTP: atftp, ${OPTS.runs * OPTS.smallFileFactor} (ipxe.efi) / ${OPTS.runs} (big file) runs per server and case${QUICK ? '' : ' after a warm-up'}, alternating servers`)
    const tports = { netboot: nb.tftpPort, 'tftpd-hpa': tftpd.port }
    const neg = [await negotiation('netboot', tports.netboot, 'ipxe.efi', join(dir, 'neg')), await negotiation('tftpd-hpa', tports['tftpd-hpa'], 'ipxe.efi', join(dir, 'neg'))]
    for (const n of neg) log(`  ${n.server} answers '${n.asked}' with OACK <${n.oack}>`)
    const cases = await measureTftp({ files: tftpFiles, blksizes: OPTS.blksizes, windowsizes: OPTS.windowsizes, runs: OPTS.runs, smallFileFactor: OPTS.smallFileFactor, warmup: !QUICK, ports: tports, work: dir, progress: log })
    // tftpd-hpa runs lock-step whatever the client asks; the goal: netboot with windowsize 16 beats it
    const detail: string[] = []
    let met = true
    for (const f of tftpFiles) {
      for (const b of OPTS.blksizes) {
        const c = cases.find((x) => x.file === f.name && x.blksize === b && x.windowsize === 16)!
        const ok = c.median.netboot < c.median['tftpd-hpa']
        met &&= ok
        detail.push(`${f.label}, blksize ${b}: netboot (windowsize 16) ${c.median.netboot.toFixed(3)} s vs tftpd-hpa ${c.median['tftpd-hpa'].toFixed(3)} s → ${c.speedup}× ${ok ? 'faster' : 'NOT faster'}`)
      }
    }
    res.tftp = { files: tftpFiles, negotiation: neg, cases, goal: { met, rule: 'for each file and blksize, netboot with windowsize 16 takes less time than tftpd-hpa (which ignores windowsize)', detail } }
  }

  // --- images over HTTP
  if (OPTS.only.includes('http')) {
    res.loadavg.perStage.http = loadAvg()
    const size = OPTS.mib * MiB
    const imagePath = `/images/${rootfs}/rootfs.squashfs`
    const targets: HttpTarget[] = [
      { name: 'netboot', url: `${nb.nodeUrl}${imagePath}`, pid: nb.pid, what: 'netboot GET /images/<sha256>/rootfs.squashfs', gcProbe: async () => await netbootGc(nb.adminUrl, nb.token) },
      { name: 'nginx', url: `http://${LOOPBACK}:${nginx.port}${imagePath}`, pid: nginx.pid, what: 'nginx, the same file (sendfile on)' },
      ...(OPTS.references ? [{ name: 'nginx-nosendfile' as const, url: `http://${LOOPBACK}:${nginx.portNoSendfile}${imagePath}`, pid: nginx.pid, what: 'reference: nginx with sendfile off (reads and writes)' }] : []),
    ]
    log(`images: ${OPTS.mib} MiB to ${OPTS.clients.join(' and ')} concurrent curl clients; ${OPTS.rounds1} / ${OPTS.rounds8} rounds, servers in turn`)
    const timeoutMs = Math.max(60_000, size * 8 / 50e6 * 1000) // 50 MB/s for all 8 is a failure anyway
    // warm-up: one download from each (the page cache already holds the file: it was just written)
    await measureHttp({ targets, size, clients: 1, rounds: 1, timeoutMs, progress: () => {} })
    const results: HttpResult[] = []
    results.push(await measureHttp({ targets, size, clients: 1, rounds: OPTS.rounds1, timeoutMs, progress: log }))
    const baselineKb = statusKb(nb.pid, 'VmRSS')
    const reset = resetPeakRss(nb.pid)
    const sampler = rssSampler(nb.pid)
    results.push(await measureHttp({ targets, size, clients: 8, rounds: OPTS.rounds8, timeoutMs, onNetbootTick: sampler.tick, progress: log }))
    const hwm = statusKb(nb.pid, 'VmHWM')
    const met = results.every((r) => r.ratio >= GOALS.images)
    res.http = {
      sizeBytes: size,
      url: { netboot: targets[0]!.url, nginx: targets[1]!.url },
      upload: { ms: Math.round(up.ms), mbps: round(size / 1e6 / (up.ms / 1000), 0) },
      results,
      netbootRss: {
        ...(baselineKb !== undefined ? { baselineKb } : {}),
        ...(reset && hwm !== undefined ? { peakKbDuring8Clients: hwm } : {}),
        method: reset ? 'VmHWM of /proc/PID/status, reset (clear_refs 5) just before the 8-client rounds and read after them' : 'clear_refs refused: VmRSS sampled every 50 ms during the 8-client rounds',
        sampledMaxKb: sampler.maxKb(),
      },
      goal: { met, rule: `netboot ≥ ${GOALS.images}× nginx's MB/s at 1 and at 8 clients` },
    }
  }

  // --- boot scripts
  if (OPTS.only.includes('boot')) {
    res.loadavg.perStage.boot = loadAvg()
    const nodeHttp = await startNodeHttp(join(www, 'boot', inv.mac))
    res.servers.nodeHttpReference = { command: nodeHttp.command, pid: nodeHttp.pid }
    log(`boot scripts: wrk -t${OPTS.wrkThreads} -c${OPTS.wrkConnections} -d${OPTS.seconds}s, ${OPTS.wrkRounds} round(s) each after ${OPTS.wrkWarmup} s warm-up; script ${script.length} bytes`)
    const targets = [
      { name: 'netboot' as const, url: `${nb.nodeUrl}${bootPath}`, what: `netboot GET /boot/<mac> (node ${inv.name} of ${inv.nodes}, SQLite, composed)` },
      { name: 'nginx' as const, url: `http://${LOOPBACK}:${nginx.port}${bootPath}`, what: 'nginx, static file of the same bytes' },
      ...(OPTS.references
        ? [
            { name: 'netboot-healthz' as const, url: `${nb.nodeUrl}/healthz`, what: 'reference: netboot GET /healthz (the same fastify app, no route work)' },
            { name: 'node-http' as const, url: `http://${LOOPBACK}:${nodeHttp.port}${bootPath}`, what: 'reference: bare node:http, the same bytes from memory' },
          ]
        : []),
    ]
    const result = await measureWrk({ targets, threads: OPTS.wrkThreads, connections: OPTS.wrkConnections, seconds: OPTS.seconds, warmupSeconds: OPTS.wrkWarmup, rounds: OPTS.wrkRounds, progress: log })
    await nodeHttp.stop()
    res.bootScripts = {
      url: { netboot: targets[0]!.url, nginx: targets[1]!.url }, scriptBytes: script.length, inventory: inv, result,
      goal: { met: result.ratio >= GOALS.bootScripts && result.errors.netboot === 0, rule: `netboot ≥ ${GOALS.bootScripts}× nginx's requests/s on a static file of the same bytes, with no error` },
    }
  }

  await nginx.stop()
  await tftpd.stop()

  // --- profile: netboot again under --cpu-prof, the same wrk load on /boot/<mac>
  if (OPTS.profile && OPTS.only.includes('boot')) {
    await nb.stop()
    const name = `chainload-${stamp}-boot.cpuprofile`
    nb = await startNetboot({ dir, ipxeDir }, ports, prepared, ['--cpu-prof', '--cpu-prof-dir', outDir, '--cpu-prof-name', name])
    log(`profile: netboot under --cpu-prof (pid ${nb.pid}), wrk ${OPTS.profileSeconds} s on ${bootPath}`)
    await wrk(`${nb.nodeUrl}${bootPath}`, { threads: OPTS.wrkThreads, connections: OPTS.wrkConnections, seconds: 1 })
    const w = await wrk(`${nb.nodeUrl}${bootPath}`, { threads: OPTS.wrkThreads, connections: OPTS.wrkConnections, seconds: OPTS.profileSeconds })
    await nb.stop()
    const file = join(outDir, name)
    if (existsSync(file)) {
      res.profile = {
        file: `bench/out/${name}`, wrkRps: Math.round(w.rps), seconds: OPTS.profileSeconds,
        summary: summarize(file, ROOT, 25),
        inclusive: inclusiveTime(file, ROOT, [
          { fn: 'scriptForMac' }, { fn: 'findNodeByMac' }, { fn: 'plan' , url: 'boot/service' }, { fn: 'listBootConfigs' }, { fn: 'getImage' },
          { fn: 'boot', url: 'boot/script' }, { fn: 'composeCmdline' }, { fn: 'runPreParsing' }, { fn: 'onSendEnd' },
          { fn: 'parserOnHeadersComplete' }, { fn: 'writeGeneric' }, { fn: 'writevGeneric' }, { fn: '(garbage collector)' },
        ]),
      }
    } else log(`profile: ${file} was not written`)
  }
  await nb.stop()

  res.loadavg.end = loadAvg()
  res.durationS = Math.round((Date.now() - started) / 1000)
  const file = join(outDir, `chainload-${stamp}.json`)
  writeFileSync(file, JSON.stringify(res, null, 1) + '\n')
  process.stdout.write(table(res) + `\nJSON: bench/out/chainload-${stamp}.json\n`)
  cleanup()
}

function gitHead (): string {
  try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim() + (execFileSync('git', ['status', '--porcelain', 'server'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '' ? '+dirty' : '') } catch { return '?' }
}

// ---- the table -------------------------------------------------------------

function table (r: Result): string {
  const out: string[] = []
  const yes = (b: boolean): string => (b ? 'met' : 'NOT met')
  const pad = (s: string | number, n: number): string => String(s).padStart(n)
  const e = r.environment as { cpus: number; model: string; node: string; tools: Record<string, string> }
  out.push('')
  out.push(`netboot chainload benchmark, ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${e.cpus} CPUs (${e.model}), node ${e.node}; nginx ${e.tools.nginx}, tftp-hpa ${e.tools.tftpdHpa}, atftp ${e.tools.atftp}, curl ${e.tools.curl}, wrk ${e.tools.wrk}`)
  out.push(`load average at start ${r.loadavg.start.join(' ')}, at end ${r.loadavg.end?.join(' ')}: the machine is shared; read the ratios${OPTS.quick ? '  [--quick: smoke run, not figures]' : ''}`)
  out.push(`Debian's ipxe.efi (/usr/lib/ipxe/ipxe.efi → /boot/ipxe.efi) from netboot: over HTTP ${String(r.checks.ipxeEfiOverHttp)}; over TFTP every run below is checked by sha256`)
  if (r.tftp !== undefined) {
    out.push('')
    out.push(`TFTP over loopback, atftp, median seconds of ${OPTS.runs * OPTS.smallFileFactor} runs (ipxe.efi) and ${OPTS.runs} (the big file) per server; runs alternate between the servers`)
    for (const n of r.tftp.negotiation) out.push(`  ${n.server} answers ${n.asked} with OACK <${n.oack}>`)
    out.push('  tftpd-hpa ignores windowsize (no windowsize in its OACK): its windowsize-16 rows are lock-step too')
    out.push(`  ${'file'.padEnd(18)} ${pad('blksize', 7)} ${pad('window', 6)} ${pad('netboot', 9)} ${pad('tftpd-hpa', 9)} ${pad('netboot MB/s', 12)} ${pad('tftpd MB/s', 10)} ${pad('speed-up', 9)}`)
    for (const c of r.tftp.cases) {
      out.push(`  ${c.label.padEnd(18)} ${pad(c.blksize, 7)} ${pad(c.windowsize, 6)} ${pad(c.median.netboot.toFixed(3), 9)} ${pad(c.median['tftpd-hpa'].toFixed(3), 9)} ${pad(c.mbps.netboot, 12)} ${pad(c.mbps['tftpd-hpa'], 10)} ${pad(`${c.speedup.toFixed(2)}×`, 9)}`)
    }
    out.push('  speed-up = tftpd-hpa time / netboot time (above 1: netboot faster)')
    out.push(`  goal, TFTP faster than tftpd-hpa thanks to windowsize: ${yes(r.tftp.goal.met)}`)
    for (const d of r.tftp.goal.detail) out.push(`    ${d}`)
  }
  if (r.http !== undefined) {
    out.push('')
    out.push(`Images over HTTP: ${r.http.sizeBytes / MiB} MiB rootfs, curl → /dev/null, aggregate MB/s (10^6 B/s), median of rounds; server CPU and page faults per GiB sent`)
    out.push(`  ${'server'.padEnd(52)} ${pad('clients', 7)} ${pad('MB/s', 6)} ${pad('× nginx', 7)} ${pad('CPU s/GiB', 9)} ${pad('of it sys', 9)} ${pad('minflt/GiB', 10)}`)
    for (const h of r.http.results) {
      for (const [name, t] of Object.entries(h.targets)) {
        out.push(`  ${t.what.padEnd(52)} ${pad(h.clients, 7)} ${pad(h.mbps[name]!, 6)} ${pad((h.mbps[name]! / h.mbps.nginx!).toFixed(2), 7)} ${pad(h.cpuSecondsPerGiB[name]!.total.toFixed(2), 9)} ${pad(h.cpuSecondsPerGiB[name]!.sys.toFixed(2), 9)} ${pad(h.minorFaultsPerGiB[name]!, 10)}`)
      }
    }
    for (const h of r.http.results) out.push(`  ${h.clients} client${h.clients > 1 ? 's' : ''}: netboot / nginx = ${h.ratio.toFixed(2)}, goal ≥ ${GOALS.images}: ${yes(h.ratio >= GOALS.images)}; netboot major GCs per GiB: ${h.netbootMajorGcPerGiB ?? '?'} (rounds: ${h.rounds.netboot!.map((x) => x.gc?.major ?? '?').join(', ')})`)
    const rss = r.http.netbootRss
    out.push(`  netboot peak RSS during the 8-client rounds: ${rss.peakKbDuring8Clients !== undefined ? `${Math.round(rss.peakKbDuring8Clients / 1024)} MiB (VmHWM)` : '?'}, sampled max ${Math.round(rss.sampledMaxKb / 1024)} MiB, before them ${rss.baselineKb !== undefined ? Math.round(rss.baselineKb / 1024) : '?'} MiB`)
    out.push(`  upload through the admin API: ${r.http.upload.mbps} MB/s`)
    out.push(`  goal, images ≥ ${GOALS.images}× nginx: ${yes(r.http.goal.met)}`)
  }
  if (r.bootScripts !== undefined) {
    const b = r.bootScripts.result
    out.push('')
    out.push(`Boot scripts: wrk -t${b.threads} -c${b.connections} -d${b.seconds}s, GET /boot/<mac> (${r.bootScripts.scriptBytes} bytes; node ${r.bootScripts.inventory.name} of ${r.bootScripts.inventory.nodes}), median of ${OPTS.wrkRounds} round(s)`)
    out.push(`  ${'server'.padEnd(70)} ${pad('req/s', 7)} ${pad('× nginx', 7)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('errors', 6)}`)
    for (const [name, t] of Object.entries(b.targets)) {
      out.push(`  ${t.what.padEnd(70)} ${pad(b.rps[name]!, 7)} ${pad((b.rps[name]! / b.rps.nginx!).toFixed(2), 7)} ${pad(b.latencyMs[name]!.p50.toFixed(2), 7)} ${pad(b.latencyMs[name]!.p99.toFixed(2), 7)} ${pad(b.errors[name]!, 6)}`)
    }
    out.push(`  ratio ${b.ratio.toFixed(2)}; goal, boot scripts ≥ ${GOALS.bootScripts}× nginx static: ${yes(r.bootScripts.goal.met)}`)
  }
  if (r.profile !== undefined) {
    const p = r.profile
    out.push('')
    out.push(`Profile of netboot under the same wrk load (${p.wrkRps} req/s with the profiler on; ${p.file}), share of busy time ${p.summary.busyMs} ms:`)
    out.push('  total time under:')
    for (const i of p.inclusive.filter((x) => x.pct > 0)) out.push(`    ${pad(i.pct.toFixed(1), 5)}%  ${i.fn} ${i.where}`)
    out.push('  self time by function:')
    for (const f of p.summary.functions.slice(0, 15)) out.push(`    ${pad(f.pct.toFixed(1), 5)}%  ${f.fn} ${f.where}`)
    out.push('  self time by file:')
    for (const f of p.summary.files.slice(0, 10)) out.push(`    ${pad(f.pct.toFixed(1), 5)}%  ${f.fn}`)
  }
  return out.join('\n') + '\n'
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  cleanup()
  process.exit(1)
})
