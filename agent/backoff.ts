/**
 * Time and chance, injected: every wait in the agent goes through a Clock and every
 * jitter through a Random, so tests drive them and a mass reboot spreads out.
 *
 * Delays follow "Exponential Backoff And Jitter" (M. Brooker, AWS Architecture Blog,
 * 2015): the exponential ceiling is min(cap, base · 2^n);
 *   full jitter   uniform in [0, ceiling)            — retries of a shared resource
 *                                                      (downloads, attestation) spread
 *                                                      over the whole window
 *   equal jitter  ceiling/2 + uniform [0, ceiling/2) — polling (pending, network) never
 *                                                      comes back sooner than half the
 *                                                      ceiling
 */
import { randomInt } from 'node:crypto'

export interface Clock {
  /** Milliseconds since the epoch (local clock). */
  now (): number
  sleep (ms: number): Promise<void>
}

/** Uniform in [0, 1). */
export type Random = () => number

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms) => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) },
}

/** From the kernel's CSPRNG: nodes that booted at the same instant still draw differently. */
export const cryptoRandom: Random = () => randomInt(0, 2 ** 48 - 1) / 2 ** 48

export interface Backoff {
  readonly baseMs: number
  readonly capMs: number
}

/** The exponential ceiling for retry `n` (0 for the first retry). */
export function ceiling (b: Backoff, n: number): number {
  return Math.min(b.capMs, b.baseMs * 2 ** Math.min(Math.max(0, n), 30))
}

export function fullJitter (b: Backoff, n: number, random: Random): number {
  return Math.floor(random() * ceiling(b, n))
}

export function equalJitter (b: Backoff, n: number, random: Random): number {
  const c = ceiling(b, n)
  return Math.floor(c / 2 + random() * (c / 2))
}

/** Seconds with one decimal, for console lines. */
export function secs (ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}
