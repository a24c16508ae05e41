/**
 * The attestation messages as the server accepts them: protobuf decoded, then
 * every field bounded and checked (proto/attest.proto states the bounds). A
 * message that fails is an ATTEST_BAD_REQUEST naming the field; protobufjs's own
 * decode errors (truncated or malformed input) are caught and reported the same.
 */
import { NetbootError } from '../errors.js'
import { parseMac } from '../inventory/addresses.js'
import { attest } from '../../proto/index.js'

export const PROTOCOL_VERSION = 1
/** Largest request body on the attestation routes (an event log is at most 1 MiB). */
export const MAX_ATTEST_BODY = 1024 * 1024 + 64 * 1024

export interface AttestStartRequest {
  readonly nodeHint?: string
  readonly macs: string[]
  readonly ekPublic: Buffer
  readonly ekCert: Buffer
  readonly akPublic: Buffer
  readonly image?: string
  readonly hardware: { systemUuid?: string; serial?: string; vendor?: string; product?: string }
}

export interface AttestFinishRequest {
  readonly session: string
  readonly credential: Buffer
  readonly attest: Buffer
  readonly signature: Buffer
  readonly pcrValues: Map<number, Buffer>
  readonly eventLog: Buffer
  readonly bootKey: Buffer
}

function bad (field: string, why: string): NetbootError {
  return new NetbootError('ATTEST_BAD_REQUEST', `${field}: ${why}`, [{ where: field, message: why }])
}

function bytes (v: Uint8Array | null | undefined, field: string, max: number, required: boolean): Buffer {
  const b = Buffer.from(v ?? new Uint8Array())
  if (required && b.length === 0) throw bad(field, 'required')
  if (b.length > max) throw bad(field, `longer than ${max} bytes`)
  return b
}

function text (v: string | null | undefined, field: string, max: number): string | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (v.length > max) throw bad(field, `longer than ${max} characters`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) throw bad(field, 'control characters')
  return v
}

function decode<T> (f: () => T): T {
  try { return f() } catch (e) { throw new NetbootError('ATTEST_BAD_REQUEST', `malformed protobuf: ${(e as Error).message.slice(0, 120)}`) }
}

export function decodeStart (body: Uint8Array): AttestStartRequest {
  const m = decode(() => attest.AttestStart.decode(body))
  if (m.version !== PROTOCOL_VERSION) throw bad('version', `this server speaks version ${PROTOCOL_VERSION}, not ${m.version}`)
  if (m.macs.length === 0 || m.macs.length > 32) throw bad('macs', 'between 1 and 32 MACs')
  const macs = m.macs.map((s, i) => {
    const mac = parseMac(s.slice(0, 32))
    if (mac === undefined) throw bad(`macs[${i}]`, 'not a MAC address')
    return mac
  })
  const hw = m.hardware ?? {}
  const hardware: AttestStartRequest['hardware'] = {}
  for (const k of ['systemUuid', 'serial', 'vendor', 'product'] as const) {
    const v = text(hw[k], `hardware.${k}`, 64)
    if (v !== undefined) hardware[k] = v
  }
  const nodeHint = text(m.nodeHint, 'node_hint', 63)
  const image = text(m.image, 'image', 200)
  return {
    ...(nodeHint !== undefined ? { nodeHint } : {}),
    macs: [...new Set(macs)],
    ekPublic: bytes(m.ekPublic, 'ek_public', 1024, true),
    ekCert: bytes(m.ekCert, 'ek_cert', 4096, false),
    akPublic: bytes(m.akPublic, 'ak_public', 1024, true),
    ...(image !== undefined ? { image } : {}),
    hardware,
  }
}

export function decodeFinish (body: Uint8Array): AttestFinishRequest {
  const m = decode(() => attest.AttestFinish.decode(body))
  const session = text(m.session, 'session', 64)
  if (session === undefined) throw bad('session', 'required')
  const entries = Object.entries(m.pcrValues ?? {})
  if (entries.length > 24) throw bad('pcr_values', 'more than 24 PCRs')
  const pcrValues = new Map<number, Buffer>()
  for (const [k, v] of entries) {
    const i = Number(k)
    if (!Number.isInteger(i) || i < 0 || i > 23) throw bad('pcr_values', `PCR index ${k} out of range`)
    pcrValues.set(i, bytes(v, `pcr_values[${k}]`, 64, true))
  }
  return {
    session,
    credential: bytes(m.credential, 'credential', 64, true),
    attest: bytes(m.attest, 'attest', 1024, true),
    signature: bytes(m.signature, 'signature', 1024, true),
    pcrValues,
    eventLog: bytes(m.eventLog, 'event_log', 1024 * 1024, false),
    bootKey: bytes(m.bootKey, 'boot_key', 1024, true),
  }
}
