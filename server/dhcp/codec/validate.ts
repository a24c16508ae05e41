/**
 * Request validation for the server port, separate from decoding so that the
 * codec can also decode replies (tests, a future client).
 */
import { BOOTREQUEST, MessageType, messageTypeName } from './constants.js'
import { decodeError, type DecodeResult } from './errors.js'
import { messageTypeOf, type DhcpPacket } from './packet.js'

/** Message types a client sends (RFC 2131 §3, Table 2). */
export type ClientMessageType = 1 | 3 | 4 | 7 | 8

export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = [
  MessageType.DISCOVER,
  MessageType.REQUEST,
  MessageType.DECLINE,
  MessageType.RELEASE,
  MessageType.INFORM,
]

/** Types only a server (or a leasequery responder) sends. */
const SERVER_TYPES: ReadonlySet<number> = new Set([
  MessageType.OFFER,
  MessageType.ACK,
  MessageType.NAK,
  MessageType.FORCERENEW,
  MessageType.LEASEUNASSIGNED,
  MessageType.LEASEUNKNOWN,
  MessageType.LEASEACTIVE,
  MessageType.LEASEQUERYDONE,
  MessageType.LEASEQUERYSTATUS,
])

export interface ClientRequest {
  packet: DhcpPacket
  messageType: ClientMessageType
}

/**
 * Accepts a decoded packet as a client request: op must be BOOTREQUEST
 * (RFC 2131 §2, 'op'), and option 53 one of DISCOVER, REQUEST, DECLINE,
 * RELEASE, INFORM (RFC 2131 §3). Server-side types are
 * `server-message-from-client`; other assigned types (leasequery, RFC 4388)
 * are `unsupported-message-type`.
 */
export function validateClientRequest(packet: DhcpPacket): DecodeResult<ClientRequest> {
  if (packet.op !== BOOTREQUEST) return decodeError('not-bootrequest', `op ${packet.op}, want 1 (BOOTREQUEST)`, 0)
  const t = messageTypeOf(packet)
  if (t === undefined) return decodeError('missing-message-type', 'no valid option 53')
  if ((CLIENT_MESSAGE_TYPES as readonly number[]).includes(t)) {
    return { ok: true, value: { packet, messageType: t as ClientMessageType } }
  }
  if (SERVER_TYPES.has(t)) return decodeError('server-message-from-client', `DHCP${messageTypeName(t)} (${t}) is sent by servers, not clients`)
  return decodeError('unsupported-message-type', `DHCP${messageTypeName(t)} (${t}) is not served`)
}
