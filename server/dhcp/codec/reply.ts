/**
 * Building and encoding BOOTREPLY messages.
 *
 * newReply fills the fixed fields from the request per RFC 2131 §4.3.1
 * Table 3; encodeReply applies the reply layout rules: options 53 and 54
 * first, 82 last (RFC 3046 §2.2), END, zero padding to the 300-byte BOOTP
 * minimum, and the client's size limit (option 57), spilling into `file` and
 * `sname` with option 52 when needed and possible.
 */
import {
  BOOTP_MIN_PACKET_SIZE,
  BOOTREPLY,
  DHCP_MAX_PACKET_SIZE,
  FLAG_BROADCAST,
  IP_UDP_HEADER_SIZE,
  MIN_MAX_MESSAGE_SIZE,
  MessageType,
  Opt,
} from './constants.js'
import { encodeError, type EncodeResult } from './errors.js'
import { IPV4_ZERO, isZeroIpv4 } from './ipv4.js'
import { DhcpOptions } from './option-list.js'
import { serverId as serverIdCodec } from './options/address.js'
import { maxMessageSize as maxMessageSizeCodec } from './options/integer.js'
import { messageType as messageTypeCodec } from './options/message-type.js'
import { optionValue } from './options/types.js'
import { encodePacket, messageTypeOf, type DhcpPacket } from './packet.js'

export type ServerMessageType = 2 | 5 | 6

/**
 * A reply skeleton for `request` (RFC 2131 §4.3.1 Table 3): op BOOTREPLY,
 * htype/hlen/xid/flags/giaddr/chaddr copied, hops and secs 0, ciaddr copied
 * only in an ACK, yiaddr/siaddr 0 for the caller to set; options 53 and 54,
 * 61 echoed (RFC 6842 §3) and 82 echoed byte-for-byte (RFC 3046 §2.2). A NAK
 * through a relay gets the broadcast bit (RFC 2131 §4.3.2).
 */
export function newReply(request: DhcpPacket, type: ServerMessageType, serverId: string): DhcpPacket {
  const options = new DhcpOptions()
  options.set(Opt.MESSAGE_TYPE, messageTypeCodec.encode(type))
  options.set(Opt.SERVER_ID, serverIdCodec.encode(serverId))
  const cid = request.options.get(Opt.CLIENT_ID)
  if (cid !== undefined) options.set(Opt.CLIENT_ID, new Uint8Array(cid))
  const rai = request.options.get(Opt.RELAY_AGENT_INFO)
  if (rai !== undefined) options.set(Opt.RELAY_AGENT_INFO, new Uint8Array(rai))
  let flags = request.flags
  if (type === MessageType.NAK && !isZeroIpv4(request.giaddr)) flags |= FLAG_BROADCAST
  return {
    op: BOOTREPLY,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags,
    ciaddr: type === MessageType.ACK ? request.ciaddr : IPV4_ZERO,
    yiaddr: IPV4_ZERO,
    siaddr: IPV4_ZERO,
    giaddr: request.giaddr,
    chaddr: new Uint8Array(request.chaddr),
    sname: '',
    file: '',
    options,
    overload: 0,
  }
}

/**
 * Largest reply payload the client accepts, in bytes of DHCP message.
 *
 * Option 57 counts the whole IP datagram (RFC 2132 §9.10 "minimum legal value
 * 576", the IP minimum reassembly size; ISC dhcpd reads it the same way), so
 * 28 bytes of IPv4+UDP header are subtracted. Absent or invalid (< 576) → 576,
 * the size every client must accept (RFC 2131 §2: 312-byte options field).
 * `maxDatagramSize` caps it at the server's own link MTU.
 */
export function replySizeLimit(request: DhcpPacket | undefined, maxDatagramSize = DHCP_MAX_PACKET_SIZE): number {
  const mms = request ? optionValue(request.options, maxMessageSizeCodec) : undefined
  const datagram = Math.min(Math.max(mms ?? MIN_MAX_MESSAGE_SIZE, MIN_MAX_MESSAGE_SIZE), maxDatagramSize)
  return datagram - IP_UDP_HEADER_SIZE
}

export interface ReplyEncodeOptions {
  /** The request being answered; its option 57 sets the size limit. */
  request?: DhcpPacket
  /** The server's link MTU (IP datagram bytes); default 1500. */
  maxDatagramSize?: number
}

export function encodeReply(reply: DhcpPacket, opts: ReplyEncodeOptions = {}): EncodeResult {
  if (reply.op !== BOOTREPLY) return encodeError('not-bootreply', `op ${reply.op}, want 2 (BOOTREPLY)`)
  if (messageTypeOf(reply) === undefined) return encodeError('missing-message-type', 'a reply needs option 53')
  return encodePacket(reply, {
    maxSize: replySizeLimit(opts.request, opts.maxDatagramSize),
    minSize: BOOTP_MIN_PACKET_SIZE,
    allowOverload: true,
    first: [Opt.MESSAGE_TYPE, Opt.SERVER_ID],
    last: [Opt.RELAY_AGENT_INFO],
  })
}
