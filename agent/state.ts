/**
 * The agent's boot steps as an explicit state machine: a string union of states,
 * the events each step reports, and one pure transition function with guards.
 * agent/run.ts runs the step of the current state and feeds its event here.
 *
 *   netboot.mode=boot
 *
 *     network --up--> attest --attested--> secrets --decrypted--> rootfs --verified--> measure
 *                     ^  |  |                 |                                          |
 *                     |  |  +--stale--> reboot (exit 20)                             extended
 *                     |  |                    +--expired--> attest                       |
 *                     |  +--pending--> pending                                           v
 *                     |                   |          done <--written-- seed <--mounted-- mount
 *                     +-----accepted------+        (exit 0: dracut switches root)
 *
 *   netboot.mode=discover
 *
 *     network --up--> discover --known---------------------------> reboot (exit 20)
 *                        |                                           ^
 *                        +--pending--> pending --known---------------+
 *
 *   every non-final state:
 *     --error [retryable and attempt < maxAttempts(state)]--> the same state, after a jittered backoff
 *     --error [otherwise]--------------------------------------> failed (exit code by failure class)
 *
 *   done, reboot and failed are final: they accept no event.
 *
 * Why measure comes before mount: the chain-of-trust rule of the TCG PC Client
 * Platform Firmware Profile (code and data are measured before they are used): the
 * image is measured once its digest is verified and before the kernel parses it as
 * a file system.
 * `stale`: the server now plans another image than the one this kernel and initrd
 * belong to (an admin changed it while the node booted); rebooting fetches a
 * matching kernel. `known` (discover mode): the node is enrolled now; rebooting
 * gives it its own boot script. `expired`: the token died before it was used.
 */
import type { BootMode } from './cmdline.js'
import type { FailureClass } from './errors.js'

export type AgentState =
  | 'network'
  | 'attest'
  | 'discover'
  | 'pending'
  | 'secrets'
  | 'rootfs'
  | 'measure'
  | 'mount'
  | 'seed'
  | 'done'
  | 'reboot'
  | 'failed'

export const FINAL_STATES: ReadonlySet<AgentState> = new Set(['done', 'reboot', 'failed'])

export type AgentEvent =
  | { readonly type: 'up'; readonly mode: BootMode }
  | { readonly type: 'attested' }
  | { readonly type: 'pending' }
  | { readonly type: 'accepted' }
  | { readonly type: 'known' }
  | { readonly type: 'stale' }
  | { readonly type: 'decrypted' }
  | { readonly type: 'expired' }
  | { readonly type: 'verified' }
  | { readonly type: 'extended' }
  | { readonly type: 'mounted' }
  | { readonly type: 'written' }
  | {
    readonly type: 'error'
    readonly failure: FailureClass
    readonly retryable: boolean
    /** 1 for the first try of this state. */
    readonly attempt: number
    readonly maxAttempts: number
  }

export type EventType = AgentEvent['type']

/**
 * The one transition function. Returns the next state, or undefined when `state`
 * does not accept `event` (a bug in the caller: run.ts treats it as internal).
 */
export function transition (state: AgentState, event: AgentEvent): AgentState | undefined {
  if (FINAL_STATES.has(state)) return undefined
  if (event.type === 'error') {
    // Guard: retry the same step only when the failure says retrying can help and attempts remain.
    return event.retryable && event.attempt < event.maxAttempts ? state : 'failed'
  }
  switch (state) {
    case 'network':
      return event.type === 'up' ? (event.mode === 'boot' ? 'attest' : 'discover') : undefined
    case 'attest':
      return event.type === 'attested' ? 'secrets' : event.type === 'pending' ? 'pending' : event.type === 'stale' ? 'reboot' : undefined
    case 'discover':
      return event.type === 'known' ? 'reboot' : event.type === 'pending' ? 'pending' : undefined
    case 'pending':
      return event.type === 'accepted' ? 'attest' : event.type === 'known' ? 'reboot' : undefined
    case 'secrets':
      return event.type === 'decrypted' ? 'rootfs' : event.type === 'expired' ? 'attest' : undefined
    case 'rootfs':
      return event.type === 'verified' ? 'measure' : undefined
    case 'measure':
      return event.type === 'extended' ? 'mount' : undefined
    case 'mount':
      return event.type === 'mounted' ? 'seed' : undefined
    case 'seed':
      return event.type === 'written' ? 'done' : undefined
    default:
      return undefined
  }
}

/**
 * Machine-level tries per state. Steps that wait on their own (network, pending)
 * or resume on their own (rootfs: Range resume with jittered retries inside the
 * step) get one; a failure they give up on is final.
 */
export const MAX_ATTEMPTS: Readonly<Record<Exclude<AgentState, 'done' | 'reboot' | 'failed'>, number>> = {
  network: 1,
  attest: 10,
  discover: 10,
  pending: 1,
  secrets: 5,
  rootfs: 1,
  measure: 2,
  mount: 2,
  seed: 2,
}

/** The first state: every boot waits for the network first. */
export const INITIAL_STATE: AgentState = 'network'

/** Every edge of the drawing above, for tests and the README: [from, event, to]. */
export const EDGES: readonly (readonly [AgentState, EventType | `up:${BootMode}`, AgentState])[] = [
  ['network', 'up:boot', 'attest'],
  ['network', 'up:discover', 'discover'],
  ['attest', 'attested', 'secrets'],
  ['attest', 'pending', 'pending'],
  ['attest', 'stale', 'reboot'],
  ['discover', 'known', 'reboot'],
  ['discover', 'pending', 'pending'],
  ['pending', 'accepted', 'attest'],
  ['pending', 'known', 'reboot'],
  ['secrets', 'decrypted', 'rootfs'],
  ['secrets', 'expired', 'attest'],
  ['rootfs', 'verified', 'measure'],
  ['measure', 'extended', 'mount'],
  ['mount', 'mounted', 'seed'],
  ['seed', 'written', 'done'],
]
