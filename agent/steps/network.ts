/**
 * Step `network`: wait until the netboot server answers. dracut brings the
 * interface up (ip=dhcp rd.neednet=1) before the agent runs, but a DHCP lease is
 * not a reachable server: links settle, switches run STP, and after a mass reboot
 * the server may still be starting. So the step polls `GET /healthz` on the node
 * server (server/http/node/app.ts) with equal-jitter backoff until it answers 200
 * or the wait runs out. The answer's Date header gives the server's clock.
 */
import { equalJitter, secs, type Backoff, type Random } from '../backoff.js'
import { AgentError } from '../errors.js'
import { describeFetchError, type ServerApi } from '../http.js'
import type { AgentLog } from '../log.js'

export interface NetworkPolicy {
  /** Give up after this long (ms). */
  readonly waitMs: number
  readonly backoff: Backoff
  /** Per-probe timeout (ms). */
  readonly probeTimeoutMs: number
}

export interface NetworkDeps {
  readonly api: ServerApi
  readonly random: Random
  readonly log: AgentLog
}

export async function waitForNetwork (d: NetworkDeps, p: NetworkPolicy): Promise<{ tries: number; elapsedMs: number }> {
  const { api, log } = d
  const start = api.clock.now()
  let last = ''
  for (let n = 0; ; n++) {
    let why: string
    try {
      const r = await api.fetch(api.url('/healthz'), { signal: AbortSignal.timeout(p.probeTimeoutMs), redirect: 'error' })
      await r.arrayBuffer().catch(() => undefined)
      api.learnClock(r.headers)
      if (r.ok) {
        const elapsedMs = api.clock.now() - start
        log.info('network', `${api.base} answers${n > 0 ? ` after ${n + 1} tries, ${secs(elapsedMs)}` : ''}; server clock ${api.offsetMs >= 0 ? '+' : ''}${secs(api.offsetMs)} from ours`)
        return { tries: n + 1, elapsedMs }
      }
      why = `HTTP ${r.status}`
    } catch (e) {
      why = describeFetchError(e, p.probeTimeoutMs)
    }
    const elapsed = api.clock.now() - start
    if (elapsed >= p.waitMs) {
      throw new AgentError('AGENT_NETWORK_TIMEOUT', 'network', `${api.base}/healthz did not answer within ${secs(p.waitMs)} (${n + 1} tries, last: ${why})`)
    }
    const delay = Math.min(equalJitter(p.backoff, n, d.random), p.waitMs - elapsed)
    // One line when the reason changes, not one per try: the console stays readable.
    if (why !== last) log.info('network', `waiting for ${api.base}: ${why}; next try in ${secs(delay)}`)
    last = why
    await api.clock.sleep(delay)
  }
}
