/** agent/state.ts: the transition function against the drawn edges, every state × event, and the guards. */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { EDGES, FINAL_STATES, INITIAL_STATE, MAX_ATTEMPTS, transition, type AgentEvent, type AgentState } from '../../agent/state.js'

const STATES: AgentState[] = ['network', 'attest', 'discover', 'pending', 'secrets', 'rootfs', 'measure', 'mount', 'seed', 'done', 'reboot', 'failed']
const EVENTS: AgentEvent[] = [
  { type: 'up', mode: 'boot' }, { type: 'up', mode: 'discover' }, { type: 'attested' }, { type: 'pending' }, { type: 'accepted' }, { type: 'known' },
  { type: 'stale' }, { type: 'decrypted' }, { type: 'expired' }, { type: 'verified' }, { type: 'extended' }, { type: 'mounted' }, { type: 'written' },
]
const label = (e: AgentEvent): string => e.type === 'up' ? `up:${e.mode}` : e.type

t.test('the transition function is exactly the drawn edges', async (t) => {
  for (const s of STATES) {
    for (const e of EVENTS) {
      const edge = EDGES.find(([from, ev]) => from === s && ev === label(e))
      t.equal(transition(s, e), edge?.[2], `${s} --${label(e)}--> ${edge?.[2] ?? 'refused'}`)
    }
  }
})

t.test('the error guard: same state while retryable and tries remain, else failed', async (t) => {
  for (const s of STATES.filter((x) => !FINAL_STATES.has(x))) {
    const err = (retryable: boolean, attempt: number): AgentEvent => ({ type: 'error', failure: 'download', retryable, attempt, maxAttempts: 3 })
    t.equal(transition(s, err(true, 1)), s, `${s}: retryable, try 1 of 3`)
    t.equal(transition(s, err(true, 2)), s, `${s}: retryable, try 2 of 3`)
    t.equal(transition(s, err(true, 3)), 'failed', `${s}: retryable, tries used up`)
    t.equal(transition(s, err(false, 1)), 'failed', `${s}: not retryable`)
  }
  for (const s of FINAL_STATES) t.equal(transition(s, { type: 'error', failure: 'internal', retryable: true, attempt: 1, maxAttempts: 9 }), undefined, `${s} is final`)
})

t.test('every state is reachable from the initial one; every non-final state has a try budget', async (t) => {
  const seen = new Set<AgentState>([INITIAL_STATE])
  const queue: AgentState[] = [INITIAL_STATE]
  while (queue.length > 0) {
    const s = queue.shift()!
    for (const e of EVENTS) {
      const n = transition(s, e)
      if (n !== undefined && !seen.has(n)) { seen.add(n); queue.push(n) }
    }
    const f = transition(s, { type: 'error', failure: 'internal', retryable: false, attempt: 1, maxAttempts: 1 })
    if (f !== undefined && !seen.has(f)) { seen.add(f); queue.push(f) }
  }
  t.same([...seen].sort(), [...STATES].sort())
  for (const s of STATES.filter((x) => !FINAL_STATES.has(x))) t.ok(MAX_ATTEMPTS[s as keyof typeof MAX_ATTEMPTS] >= 1, `${s} has a try budget`)
})

t.test('the drawing in the file header names every edge', async (t) => {
  const header = readFileSync(new URL('../../agent/state.ts', import.meta.url), 'utf8').split('*/')[0]!
  for (const [from, ev, to] of EDGES) {
    const word = ev.startsWith('up:') ? 'up' : ev
    t.ok(header.includes(from) && new RegExp(`\\b${word}\\b`).test(header) && header.includes(to), `${from} --${ev}--> ${to} is drawn`)
  }
})
