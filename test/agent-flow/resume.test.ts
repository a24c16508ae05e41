/**
 * The root image download under a bad network, end to end: the node reaches the
 * real `netboot serve` through a loopback proxy (server.public_url points at it)
 * that refuses, cuts and stalls image transfers. The agent must resume with Range
 * + If-Range, retry with jitter, and still verify and mount the image.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { runAgent } from '../../agent/run.js'
import { freePort } from '../helpers/cli.js'
import type { Swtpm } from '../attest/swtpm-harness.js'
import {
  FAST_POLICY, NODE_MAC, ROOTFS_MARKER, agentConfig, bootDirs, expectEnd, realPeerProblems, standardPeers, startProxy, testLog, type BuiltImage, type CuttingProxy, type Netboot,
} from './helpers.js'

const problems = realPeerProblems()
if (problems.length > 0) {
  for (const p of problems) t.fail(p)
} else {
  let sw: Swtpm
  let image: BuiltImage
  let nb: Netboot
  let proxy: CuttingProxy
  t.before(async () => {
    const proxyPort = await freePort()
    let httpPort = 0
    ;({ sw, image, nb } = await standardPeers(t, { publicUrl: (p) => { httpPort = p; return `http://127.0.0.1:${proxyPort}` } }))
    proxy = await startProxy(t, proxyPort, () => httpPort)
  })

  /** The server behind the proxy, with the proxy's record of requests cleared. */
  const behindProxy = async (_t: Test) => {
    proxy.requests.length = 0
    proxy.failImages(0)
    proxy.cutImages(0, 0)
    return { nb, proxy }
  }

  t.test('cut twice mid-transfer and one 503: resumed with Range + If-Range, verified, mounted', async (t) => {
    const { nb, proxy } = await behindProxy(t)
    const b = bootDirs(t, [NODE_MAC])
    const cmdline = await nb.cmdlineFor(NODE_MAC)
    t.match(cmdline, `netboot.server=${proxy.url}`, 'the node talks to the server through the proxy')
    const third = Math.floor(image.size / 3)
    proxy.failImages(1)
    proxy.cutImages(2, third)
    const log = testLog()
    const r = await runAgent(agentConfig(sw, cmdline, b), { log })
    expectEnd(t, r, log, 'done')
    const gets = proxy.requests.filter((q) => q.path.startsWith('/images/'))
    t.equal(gets.length, 4, 'a 503, two cut transfers, one that finishes')
    t.match(gets[0], { status: 503 })
    t.match(gets[1], { cut: true, bytes: third, status: 200 })
    t.notOk(gets[1]!.range, 'the first transfer asks for the whole image')
    // the resume offsets are what reached the agent before each cut (at most what the proxy sent)
    const from = (q?: { range?: string }): number => Number(/^bytes=(\d+)-$/.exec(q?.range ?? '')?.[1] ?? NaN)
    t.ok(from(gets[2]) > 0 && from(gets[2]) <= third, `the second transfer resumes where the first broke (${gets[2]?.range})`)
    t.match(gets[2], { ifRange: `"${image.sha256}"`, status: 206, cut: true })
    t.ok(from(gets[3]) > from(gets[2]) && from(gets[3]) <= from(gets[2]) + third, `the third where the second broke (${gets[3]?.range})`)
    t.match(gets[3], { ifRange: `"${image.sha256}"`, status: 206, cut: false, bytes: image.size - from(gets[3]) })
    t.equal(r.image?.resumes, 2)
    t.equal(r.image?.size, image.size)
    t.equal(readFileSync(join(b.newRoot, 'etc/netboot-marker'), 'utf8'), `${ROOTFS_MARKER}\n`, 'the resumed image verified and mounted')
    t.equal(log.lines.filter((l) => /resuming at/.test(l)).length, 2, 'one console line per interruption')
  })

  t.test('a transfer that goes silent is abandoned after the idle timeout and resumed', async (t) => {
    const { nb, proxy } = await behindProxy(t)
    const b = bootDirs(t, [NODE_MAC])
    proxy.stallImages(1, 100_000)
    const log = testLog()
    const policy = { ...FAST_POLICY, download: { ...FAST_POLICY.download, idleTimeoutMs: 400 } }
    const r = await runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b, { policy }), { log })
    expectEnd(t, r, log, 'done')
    const gets = proxy.requests.filter((q) => q.path.startsWith('/images/'))
    t.equal(gets.length, 2)
    t.match(gets[1], { range: 'bytes=100000-', status: 206 })
    t.ok(log.lines.some((l) => /no data for 0\.4 s.*resuming at/.test(l)), 'the console names the stall')
  })

  t.test('every try refused: the download gives up after the bounded retries, exit 8, nothing mounted', async (t) => {
    const { nb, proxy } = await behindProxy(t)
    const b = bootDirs(t, [NODE_MAC])
    proxy.failImages(100)
    const log = testLog()
    const r = await runAgent(agentConfig(sw, await nb.cmdlineFor(NODE_MAC), b), { log })
    t.equal(r.state, 'failed')
    t.equal(r.exitCode, 8)
    t.equal(r.error?.code, 'AGENT_ROOTFS_DOWNLOAD')
    t.equal(proxy.requests.filter((q) => q.path.startsWith('/images/')).length, FAST_POLICY.download.attempts, 'exactly the bounded number of tries')
    t.match(r.error?.message, /gave up after 4 tries without progress .*HTTP 503/)
  })
}
