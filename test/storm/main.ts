/**
 * The simulator as a process, run inside the nodes' network namespace (the one
 * holding the provisioning network's client end):
 *
 *   ip netns exec NS node --import tsx test/storm/main.ts CONFIG.json RESULT.json
 *
 * CONFIG.json: a StormConfig (test/storm/sim.ts) plus `swtpmStates`: state
 * directories made by test/storm/swtpm.ts prepareSwtpms, one per sample node (the
 * first nodes), which use a real swtpm through the agent's N-API binding instead of
 * a soft TPM. Those swtpm processes are started here, in this namespace (their TCP
 * ports are on this namespace's loopback), and stopped by pid at the end.
 * RESULT.json: the StormResult. Progress (nodes done, failed) goes to stderr.
 *
 * STORM_CPU_PROF=DIR (environment, passed through bench/storm/run.ts): the
 * simulator's own CPU profile of the storm (node:inspector, from the storm's start
 * to its end, the soft TPMs' creation before it excluded) is written to
 * DIR/sim-<pid>.cpuprofile.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { Tpm } from '../../agent/tpm/index.js'
import { runSwtpm, type RunningSwtpm } from './swtpm.js'
import { DEFAULTS, Storm, type StormConfig } from './sim.js'

export interface MainConfig extends StormConfig { swtpmStates: string[] }

async function main (): Promise<void> {
  const [cfgFile, outFile] = process.argv.slice(2)
  if (cfgFile === undefined || outFile === undefined) throw new Error('usage: main.ts CONFIG.json RESULT.json')
  const given = JSON.parse(readFileSync(cfgFile, 'utf8')) as Partial<MainConfig>
  const cfg = { ...DEFAULTS, ...given } as MainConfig
  const swtpms: RunningSwtpm[] = []
  const states = cfg.swtpmStates ?? []
  const real: Tpm[] = []
  try {
    // TPMs only when the attest phase runs (the anchors' runs do not attest)
    const attests = cfg.phases.includes('attest')
    const tpms = attests ? Storm.softTpms({ ...cfg, nodes: cfg.nodes.slice(states.length) }) : new Map()
    for (const [i, n] of cfg.nodes.slice(0, attests ? states.length : 0).entries()) {
      const s = await runSwtpm(states[i]!)
      swtpms.push(s)
      n.tpm = { tcti: s.tcti }
      const tpm = await Tpm.open(s.tcti)
      real.push(tpm)
      tpms.set(n.mac, tpm)
    }
    const storm = new Storm(cfg, tpms)
    process.stderr.write(`storm: ${cfg.nodes.length} nodes (${states.length} with swtpm), phases ${cfg.phases.join(',')}, ramp ${cfg.rampMs} ms\n`)
    const profDir = process.env.STORM_CPU_PROF
    const session = profDir !== undefined && profDir !== '' ? new Session() : undefined
    if (session !== undefined) { session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start') }
    const r = await storm.run()
    if (session !== undefined) {
      const { profile } = await session.post('Profiler.stop')
      mkdirSync(profDir!, { recursive: true })
      const f = join(profDir!, `sim-${process.pid}.cpuprofile`)
      writeFileSync(f, JSON.stringify(profile))
      session.disconnect()
      process.stderr.write(`storm: simulator CPU profile ${f}\n`)
    }
    writeFileSync(outFile, JSON.stringify(r))
    const failed = r.nodes.filter((n) => n.done === undefined).length
    process.stderr.write(`storm: done in ${(r.wallMs / 1000).toFixed(1)} s, ${r.nodes.length - failed} nodes complete, ${failed} failed\n`)
  } finally {
    for (const t of real) await t.close().catch(() => {})
    for (const s of swtpms) await s.stop().catch(() => {})
  }
}

main().then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`storm: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
