/**
 * The sending side of one TFTP read transfer as an explicit state machine.
 *
 * Pure: no sockets, no clock, no file system. Time enters as `timeout` events
 * (the driver owns the timer and obeys `Step.timer`); file data enters through
 * the `ReadBlock` callback, which must return block `index` (0-based; wire block
 * number `index + 1` modulo 65536) synchronously. `blocksNeeded` tells the driver
 * which blocks the next transition may read, so it can load them beforehand.
 *
 *   idle ──start──▶ oack-sent ──ack 0──▶ sending ⇄ awaiting-final-ack ──ack final──▶ done
 *     └──start (no options)──────────────▶ ┘            any state ──error/abort/retries exhausted──▶ failed
 *
 * - Blocks are sent in windows of `windowsize` (RFC 7440 §4; 1 = RFC 1350
 *   lock-step). An ACK of block n ahead of the last acknowledged block moves the
 *   window to start at n + 1, even if n is short of the last block sent (RFC
 *   7440 §4: the receiver acknowledges the last block received in order).
 * - A timeout resends the window starting at the last acknowledged block + 1 (or
 *   the OACK); `maxRetries` consecutive timeouts without progress are allowed,
 *   the next one fails the transfer.
 * - A duplicate or stale ACK changes nothing and sends nothing: answering it
 *   would be the Sorcerer's Apprentice bug (RFC 1123 §4.2.3.1).
 * - Block numbers wrap from 65535 to 0 (as tftp-hpa and iPXE expect past
 *   65535 blocks); an ACK is matched against the blocks in flight, which never
 *   span more than 65535 blocks, so the mapping is unambiguous.
 * - The last block is the first one shorter than blksize; a stream whose length
 *   is a multiple of blksize ends with a zero-length block (RFC 1350 §6).
 */

import { TFTP_ERROR, type DataPacket, type ErrorPacket, type OackPacket, type TftpOption } from './codec.js'

export type TransferPhase = 'idle' | 'oack-sent' | 'sending' | 'awaiting-final-ack' | 'done' | 'failed'

export type TransferFailureReason = 'timeout' | 'peer-error' | 'aborted'

export interface TransferConfig {
  readonly blksize: number
  readonly windowsize: number
  /** Consecutive retransmissions allowed before the transfer fails. */
  readonly maxRetries: number
  /** The OACK to send first, or null for an RFC 1350 transfer. */
  readonly oack: readonly TftpOption[] | null
}

export interface TransferState {
  readonly phase: TransferPhase
  readonly config: TransferConfig
  /** Index of the highest block acknowledged; -1 before any. */
  readonly lastAcked: number
  /** Index of the highest block sent; -1 before any. */
  readonly highestSent: number
  /** Index of the last block once it has been read, else null. */
  readonly finalIndex: number | null
  /** Length of the last block once known. */
  readonly finalLength: number
  /** Consecutive timeouts since the last progress. */
  readonly retries: number
  /** Packets sent more than once, in total. */
  readonly retransmitted: number
  readonly failure: { readonly reason: TransferFailureReason; readonly message: string } | null
}

export type TransferEvent =
  | { readonly type: 'start' }
  | { readonly type: 'ack'; readonly block: number }
  | { readonly type: 'timeout' }
  /** The peer sent an ERROR packet: stop, send nothing (RFC 1350 §7). */
  | { readonly type: 'error'; readonly code: number; readonly message: string }
  /** A local failure (read error, shutdown): tell the peer with ERROR `code`, or say nothing if `code` is null. */
  | { readonly type: 'abort'; readonly code: number | null; readonly message: string }

export type OutPacket = DataPacket | OackPacket | ErrorPacket

/** What the driver does with its retransmission timer: start it afresh, leave it running, or cancel it. */
export type TimerAction = 'restart' | 'keep' | 'stop'

export interface Step {
  readonly state: TransferState
  readonly send: readonly OutPacket[]
  readonly timer: TimerAction
}

export type ReadBlock = (index: number) => Buffer

/** Wire block number of block `index` (RFC 1350 §5; wraps 65535 → 0). */
export function blockNumber(index: number): number {
  return (index + 1) & 0xffff
}

export function initialState(config: TransferConfig): TransferState {
  return {
    phase: 'idle',
    config,
    lastAcked: -1,
    highestSent: -1,
    finalIndex: null,
    finalLength: 0,
    retries: 0,
    retransmitted: 0,
    failure: null,
  }
}

export function isTerminal(state: TransferState): boolean {
  return state.phase === 'done' || state.phase === 'failed'
}

/** Octets of file data acknowledged by the peer so far. */
export function bytesAcknowledged(state: TransferState): number {
  const { lastAcked, finalIndex, finalLength, config } = state
  if (state.phase === 'done' && finalIndex !== null) return finalIndex * config.blksize + finalLength
  return (lastAcked + 1) * config.blksize
}

/**
 * Index of the block that wire number `block` acknowledges among those in
 * flight ([lastAcked, highestSent]), or null if it matches none.
 */
export function ackedIndex(state: TransferState, block: number): number | null {
  const base = state.lastAcked
  const delta = (block - blockNumber(base) + 0x10000) & 0xffff
  const index = base + delta
  return index <= state.highestSent ? index : null
}

/** First block the event makes the machine send, or null if it sends no DATA. */
function windowStart(state: TransferState, event: TransferEvent): number | null {
  switch (state.phase) {
    case 'idle':
      return event.type === 'start' && state.config.oack === null ? 0 : null
    case 'oack-sent':
      return event.type === 'ack' && event.block === 0 ? 0 : null
    case 'sending':
    case 'awaiting-final-ack': {
      if (event.type === 'timeout') return state.retries < state.config.maxRetries ? state.lastAcked + 1 : null
      if (event.type !== 'ack') return null
      const index = ackedIndex(state, event.block)
      if (index === null || index === state.lastAcked || index === state.finalIndex) return null
      return index + 1
    }
    default:
      return null
  }
}

/** Inclusive block range the transition for `event` may read, or null if it reads none. */
export function blocksNeeded(state: TransferState, event: TransferEvent): { first: number; last: number } | null {
  const first = windowStart(state, event)
  if (first === null) return null
  let last = first + state.config.windowsize - 1
  if (state.finalIndex !== null && last > state.finalIndex) last = state.finalIndex
  return { first, last }
}

function sendWindow(state: TransferState, from: number, readBlock: ReadBlock): Step {
  const { blksize, windowsize } = state.config
  const send: DataPacket[] = []
  let finalIndex = state.finalIndex
  let finalLength = state.finalLength
  let highest = from - 1
  for (let index = from; index < from + windowsize; index++) {
    if (finalIndex !== null && index > finalIndex) break
    const data = readBlock(index)
    if (data.length > blksize) throw new RangeError(`block ${index} is ${data.length} octets, blksize ${blksize}`)
    send.push({ op: 'DATA', block: blockNumber(index), data })
    highest = index
    if (data.length < blksize) {
      finalIndex = index
      finalLength = data.length
      break
    }
  }
  const resent = Math.max(0, Math.min(highest, state.highestSent) - from + 1)
  const next: TransferState = {
    ...state,
    phase: finalIndex !== null && highest === finalIndex ? 'awaiting-final-ack' : 'sending',
    highestSent: highest,
    finalIndex,
    finalLength,
    retransmitted: state.retransmitted + resent,
  }
  return { state: next, send, timer: 'restart' }
}

function failed(state: TransferState, reason: TransferFailureReason, message: string, send: readonly OutPacket[]): Step {
  return { state: { ...state, phase: 'failed', failure: { reason, message } }, send, timer: 'stop' }
}

const unchanged = (state: TransferState): Step => ({ state, send: [], timer: isTerminal(state) ? 'stop' : 'keep' })

/**
 * The transition function. Throws only if `readBlock` throws or returns more
 * than blksize octets (a driver bug); the driver turns that into an `abort`.
 */
export function transition(state: TransferState, event: TransferEvent, readBlock: ReadBlock): Step {
  if (isTerminal(state)) return unchanged(state)

  if (event.type === 'error') return failed(state, 'peer-error', `peer sent ERROR ${event.code}: ${event.message}`, [])
  if (event.type === 'abort') {
    if (state.phase === 'idle' || event.code === null) return failed(state, 'aborted', event.message, [])
    return failed(state, 'aborted', event.message, [{ op: 'ERROR', code: event.code, message: event.message }])
  }

  switch (state.phase) {
    case 'idle': {
      if (event.type !== 'start') return unchanged(state)
      const { oack } = state.config
      if (oack === null) return sendWindow(state, 0, readBlock)
      return { state: { ...state, phase: 'oack-sent' }, send: [{ op: 'OACK', options: oack }], timer: 'restart' }
    }

    case 'oack-sent': {
      if (event.type === 'timeout') {
        if (state.retries >= state.config.maxRetries) return timedOut(state)
        const next = { ...state, retries: state.retries + 1, retransmitted: state.retransmitted + 1 }
        return { state: next, send: [{ op: 'OACK', options: state.config.oack ?? [] }], timer: 'restart' }
      }
      // RFC 2347 §2: the client acknowledges the OACK with ACK 0.
      if (event.type === 'ack' && event.block === 0) return sendWindow(state, 0, readBlock)
      return unchanged(state)
    }

    case 'sending':
    case 'awaiting-final-ack': {
      if (event.type === 'timeout') {
        if (state.retries >= state.config.maxRetries) return timedOut(state)
        return sendWindow({ ...state, retries: state.retries + 1 }, state.lastAcked + 1, readBlock)
      }
      if (event.type !== 'ack') return unchanged(state)
      const index = ackedIndex(state, event.block)
      // RFC 1123 §4.2.3.1: never answer a duplicate ACK.
      if (index === null || index === state.lastAcked) return unchanged(state)
      if (index === state.finalIndex) {
        return { state: { ...state, phase: 'done', lastAcked: index, retries: 0 }, send: [], timer: 'stop' }
      }
      return sendWindow({ ...state, lastAcked: index, retries: 0 }, index + 1, readBlock)
    }
  }
  return unchanged(state)
}

function timedOut(state: TransferState): Step {
  const message = `no acknowledgement after ${state.config.maxRetries} retransmissions`
  return failed(state, 'timeout', message, [{ op: 'ERROR', code: TFTP_ERROR.NOT_DEFINED, message: 'transfer timed out' }])
}
