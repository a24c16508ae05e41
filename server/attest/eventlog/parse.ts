/**
 * TCG event log decoder (TCG PC Client Platform Firmware Profile (PFP) §10.2 event
 * log formats, §10.4.5.1 Specification ID Version Event), in the little-endian binary
 * form Linux exposes as /sys/kernel/security/tpm0/binary_bios_measurements.
 *
 * The first record is always a SHA-1 TCG_PCClientPCREvent (PFP §10.2.1). If it is an
 * EV_NO_ACTION whose data starts with "Spec ID Event03\0", every later record is a
 * TCG_PCR_EVENT2 (PFP §10.2.2) carrying one digest per algorithm the header lists;
 * otherwise the whole log is SHA-1 TCG_PCClientPCREvent records.
 *
 * Contract: never throws, refuses logs over MAX_LOG_BYTES or MAX_EVENTS, checks every
 * length against the bytes that remain, and requires every crypto-agile event to
 * carry exactly the header's algorithms.
 */
import { hashInfo, algName } from '../tpm/alg.js'
import { Reader, err, ok, type Result } from '../tpm/marshal.js'
import { EV, SPEC_ID_EVENT02, SPEC_ID_EVENT03 } from './types.js'

export const MAX_LOG_BYTES = 1 << 20
export const MAX_EVENTS = 10_000
/** PC Client TPMs have 24 PCRs (PC Client Platform TPM Profile). */
export const PCR_COUNT = 24
/** numberOfAlgorithms bound: more banks than any TPM implements. */
const MAX_ALGORITHMS = 16
/** Digest size bound for algorithms the parser does not know. */
const MAX_DIGEST = 64

/**
 * empty; too-large (over MAX_LOG_BYTES); too-many-events (over MAX_EVENTS);
 * truncated (a record or its data runs past the end); bad-spec-id (malformed
 * Spec ID event); bad-pcr-index (≥ PCR_COUNT); digest-count-mismatch /
 * unknown-digest-alg / duplicate-digest-alg (a TCG_PCR_EVENT2 whose digests are not
 * exactly the Spec ID event's algorithms).
 */
export const EVENT_LOG_ERROR_CODES = [
  'empty',
  'too-large',
  'too-many-events',
  'truncated',
  'bad-spec-id',
  'bad-pcr-index',
  'digest-count-mismatch',
  'unknown-digest-alg',
  'duplicate-digest-alg',
] as const
export type EventLogErrorCode = (typeof EVENT_LOG_ERROR_CODES)[number]

export interface AlgorithmSize {
  readonly alg: number
  readonly digestSize: number
}

/** TCG_EfiSpecIDEvent (PFP §10.4.5.1). */
export interface SpecIdEvent {
  readonly signature: string
  readonly platformClass: number
  readonly specVersionMinor: number
  readonly specVersionMajor: number
  readonly specErrata: number
  readonly uintnSize: number
  readonly algorithms: readonly AlgorithmSize[]
  readonly vendorInfo: Buffer
}

export interface TcgEvent {
  /** Position in the log, 0 for the first record. */
  readonly index: number
  /** Byte offset of the record in the log. */
  readonly offset: number
  readonly pcr: number
  readonly type: number
  /** Digest per algorithm (TPM_ALG_ID), in log order. */
  readonly digests: ReadonlyMap<number, Buffer>
  readonly data: Buffer
}

export interface EventLog {
  readonly format: 'crypto-agile' | 'sha1'
  readonly specId?: SpecIdEvent
  /** Algorithms every extending event carries. */
  readonly algorithms: readonly AlgorithmSize[]
  readonly events: readonly TcgEvent[]
}

const SHA1 = 0x0004

function startsWith(data: Buffer, sig: string): boolean {
  return data.length >= sig.length && data.subarray(0, sig.length).toString('latin1') === sig
}

/**
 * TCG_EfiSpecIDEvent (PFP §10.4.5.1), little-endian. "Spec ID Event03" carries the
 * algorithm list; the older "Spec ID Event02" (TCG EFI Platform Specification 1.22)
 * has none and means a SHA-1-only log.
 */
export function decodeSpecIdEvent(data: Buffer): Result<SpecIdEvent, 'bad-spec-id'> {
  const r = new Reader(data, true)
  const signature = r.bytes(16).toString('latin1')
  const platformClass = r.u32()
  const specVersionMinor = r.u8()
  const specVersionMajor = r.u8()
  const specErrata = r.u8()
  const uintnSize = r.u8()
  if (r.failed) return err('bad-spec-id', 'Spec ID event is truncated')
  const algorithms: AlgorithmSize[] = []
  if (signature === SPEC_ID_EVENT02) {
    algorithms.push({ alg: SHA1, digestSize: 20 })
  } else {
    const n = r.u32()
    if (r.failed) return err('bad-spec-id', 'Spec ID event is truncated')
    if (n === 0 || n > MAX_ALGORITHMS) return err('bad-spec-id', `numberOfAlgorithms ${n} is out of range`, 24)
    for (let i = 0; i < n; i++) {
      const at = r.offset
      const alg = r.u16()
      const digestSize = r.u16()
      if (r.failed) return err('bad-spec-id', 'Spec ID algorithm list is truncated', at)
      const known = hashInfo(alg)
      if (known !== undefined ? known.size !== digestSize : digestSize === 0 || digestSize > MAX_DIGEST) {
        return err('bad-spec-id', `digest size ${digestSize} for ${algName(alg)}`, at)
      }
      if (algorithms.some((a) => a.alg === alg)) return err('bad-spec-id', `${algName(alg)} listed twice`, at)
      algorithms.push({ alg, digestSize })
    }
  }
  const vendorInfoSize = r.u8()
  const vendorInfo = r.bytes(vendorInfoSize)
  if (r.failed) return err('bad-spec-id', 'Spec ID vendorInfo is truncated')
  return ok({ signature, platformClass, specVersionMinor, specVersionMajor, specErrata, uintnSize, algorithms, vendorInfo })
}

function fromReader(r: Reader): { ok: false; error: { code: EventLogErrorCode; message: string; offset?: number } } {
  const e = r.error!
  return err(e.code as EventLogErrorCode, e.message, e.offset)
}

/** Decodes a whole event log; see the module contract. */
export function parseEventLog(buf: Uint8Array): Result<EventLog, EventLogErrorCode> {
  if (buf.length === 0) return err('empty', 'event log is empty')
  if (buf.length > MAX_LOG_BYTES) return err('too-large', `event log of ${buf.length} bytes exceeds ${MAX_LOG_BYTES}`)
  const r = new Reader(buf, true)
  const events: TcgEvent[] = []

  // TCG_PCClientPCREvent (PFP §10.2.1): pcrIndex, eventType, digest[20], eventDataSize, event.
  const readSha1Event = (): TcgEvent | undefined => {
    const offset = r.offset
    const pcr = r.u32()
    const type = r.u32()
    const digest = r.bytes(20)
    const size = r.u32()
    const data = r.bytes(size)
    if (r.failed) return undefined
    if (pcr >= PCR_COUNT) {
      r.fail('bad-pcr-index', `PCR index ${pcr}`, offset)
      return undefined
    }
    return { index: events.length, offset, pcr, type, digests: new Map([[SHA1, digest]]), data }
  }

  const first = readSha1Event()
  if (first === undefined) return fromReader(r)
  events.push(first)

  let specId: SpecIdEvent | undefined
  if (first.type === EV.NO_ACTION && first.pcr === 0 && (startsWith(first.data, SPEC_ID_EVENT03) || startsWith(first.data, SPEC_ID_EVENT02))) {
    const s = decodeSpecIdEvent(first.data)
    if (!s.ok) return err('bad-spec-id', s.error.message, first.offset + 32 + (s.error.offset ?? 0))
    specId = s.value
  }
  const agile = specId?.signature === SPEC_ID_EVENT03
  const algorithms: readonly AlgorithmSize[] = specId?.algorithms ?? [{ alg: SHA1, digestSize: 20 }]
  const sizeOf = new Map(algorithms.map((a) => [a.alg, a.digestSize]))

  // TCG_PCR_EVENT2 (PFP §10.2.2): pcrIndex, eventType, TPML_DIGEST_VALUES, eventSize, event.
  const readAgileEvent = (): TcgEvent | undefined => {
    const offset = r.offset
    const pcr = r.u32()
    const type = r.u32()
    const count = r.u32()
    if (r.failed) return undefined
    if (pcr >= PCR_COUNT) {
      r.fail('bad-pcr-index', `PCR index ${pcr}`, offset)
      return undefined
    }
    if (count !== algorithms.length) {
      r.fail('digest-count-mismatch', `event has ${count} digest(s), the Spec ID event lists ${algorithms.length}`, offset + 8)
      return undefined
    }
    const digests = new Map<number, Buffer>()
    for (let i = 0; i < count; i++) {
      const at = r.offset
      const alg = r.u16()
      if (r.failed) return undefined
      const size = sizeOf.get(alg)
      if (size === undefined) {
        r.fail('unknown-digest-alg', `digest algorithm ${algName(alg)} is not in the Spec ID event`, at)
        return undefined
      }
      if (digests.has(alg)) {
        r.fail('duplicate-digest-alg', `${algName(alg)} digest appears twice`, at)
        return undefined
      }
      digests.set(alg, r.bytes(size))
    }
    const size = r.u32()
    const data = r.bytes(size)
    if (r.failed) return undefined
    return { index: events.length, offset, pcr, type, digests, data }
  }

  while (r.remaining > 0) {
    if (events.length >= MAX_EVENTS) return err('too-many-events', `more than ${MAX_EVENTS} events`, r.offset)
    const e = agile ? readAgileEvent() : readSha1Event()
    if (e === undefined) return fromReader(r)
    events.push(e)
  }
  const format = agile ? 'crypto-agile' : 'sha1'
  return ok(specId === undefined ? { format, algorithms, events } : { format, specId, algorithms, events })
}
