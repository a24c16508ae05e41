/**
 * The life of one address lease, as an explicit state machine (RFC 2131 §4.3,
 * §4.4). `next` is the only way a lease changes state; an event that does not
 * apply to a state is refused, never silently ignored.
 *
 *            offer                 ack
 *   (free) ────────▶ offered ─────────────▶ bound ◀──┐ ack (renew/rebind)
 *      ▲                │ hold expires        │  └────┘
 *      │                ▼                     │ release        decline (any state)
 *      └──────────── (free) ◀── released ◀────┘               ───────────────▶ declined
 *                       ▲                     │ lease time ends                   │ hold ends
 *                       └───── expired ◀──────┘                                   ▼
 *                                                                               (free)
 *
 * "free" is the absence of a lease. An offered lease is kept in memory only;
 * bound, released and declined leases are persisted before the reply is sent.
 */

export type LeaseState = 'offered' | 'bound' | 'released' | 'declined' | 'expired'
export type LeaseEvent = 'offer' | 'ack' | 'release' | 'decline' | 'expire'

const table: Record<LeaseState | 'free', Partial<Record<LeaseEvent, LeaseState>>> = {
  free: { offer: 'offered', ack: 'bound', decline: 'declined' },
  offered: { offer: 'offered', ack: 'bound', decline: 'declined', expire: 'expired' },
  bound: { offer: 'offered', ack: 'bound', release: 'released', decline: 'declined', expire: 'expired' },
  released: { offer: 'offered', ack: 'bound', decline: 'declined' },
  declined: { expire: 'expired' },
  expired: { offer: 'offered', ack: 'bound', decline: 'declined' },
}

/** The next state, or undefined when the event does not apply. */
export function next (state: LeaseState | 'free', event: LeaseEvent): LeaseState | undefined {
  return table[state][event]
}

export interface Lease {
  readonly ip: string
  readonly mac: string
  readonly subnet: string
  readonly state: LeaseState
  /** ms since the epoch */
  readonly startsAt: number
  readonly expiresAt: number
  readonly hostname?: string
  /** Option 61 as hex, when the client sent one. Leases are keyed on the MAC (see DHCP.md). */
  readonly clientId?: string
}

/** Whether the lease still holds its address at `now` (no other client may get it). */
export function holdsAddress (l: Lease, now: number): boolean {
  return (l.state === 'offered' || l.state === 'bound' || l.state === 'declined') && l.expiresAt > now
}
