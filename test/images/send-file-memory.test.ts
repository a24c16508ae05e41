/**
 * A 1 GiB file served with flat memory: sendFile in a child process, curl
 * downloading it to /dev/null over loopback; the child's peak RSS (VmHWM) may
 * grow by less than 64 MiB across the download.
 */
import t from 'tap'
import { closeSync, ftruncateSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.js'
import { curl, peakRss, startFileServer } from './helpers.js'

const GiB = 1024 * 1024 * 1024
const BOUND = 64 * 1024 * 1024

t.test('1 GiB sparse file, peak RSS growth under 64 MiB', async (t) => {
  const started = Date.now()
  const file = join(tempDir(t, 'netboot-1gib-'), 'rootfs.squashfs')
  const fd = openSync(file, 'w')
  ftruncateSync(fd, GiB)
  closeSync(fd)

  const server = await startFileServer(t, file)
  const url = `http://127.0.0.1:${server.port}/f`
  // warm up every code path the download takes (JIT, buffers), then take the baseline
  for (const args of [['-r', '0-8388607', '-o', '/dev/null'], ['--head'], ['-o', '/dev/null', '-r', `${GiB - 8388608}-`]]) {
    const r = await curl([...args, url])
    t.equal(r.code, 0, `warm-up ${args.join(' ')}: ${r.stderr}`)
  }
  const before = peakRss(server.pid)

  const r = await curl(['-o', '/dev/null', '-w', '%{http_code} %{size_download} %{speed_download}', url])
  t.equal(r.code, 0, r.stderr)
  const [status, bytes, speed] = r.stdout.toString().split(' ')
  t.equal(status, '200')
  t.equal(Number(bytes), GiB, 'curl received every byte')

  const after = peakRss(server.pid)
  const growth = after - before
  t.ok(growth < BOUND, `server peak RSS ${(before / 1048576).toFixed(1)} → ${(after / 1048576).toFixed(1)} MiB (+${(growth / 1048576).toFixed(1)} MiB) at ${(Number(speed) / 1048576).toFixed(0)} MiB/s`)
  await server.stop()
  t.ok(Date.now() - started < 30_000, `done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
})
