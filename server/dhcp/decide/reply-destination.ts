/**
 * Where a reply goes: RFC 2131 §4.1, "the server ... sends ... to".
 */
import { CLIENT_PORT, FLAG_BROADCAST, MessageType, SERVER_PORT } from '../codec/constants.js'
import { IPV4_BROADCAST, isZeroIpv4 } from '../codec/ipv4.js'
import { macOf, messageTypeOf, type DhcpPacket } from '../codec/packet.js'

export type ReplyDestination =
  | { kind: 'relay'; address: string; port: number; reason: 'giaddr' }
  | { kind: 'unicast'; address: string; port: number; reason: 'ciaddr' }
  | { kind: 'unicast-no-arp'; address: string; port: number; mac: string; reason: 'unicast-to-unconfigured-client' }
  | {
      kind: 'broadcast'
      address: typeof IPV4_BROADCAST
      port: number
      reason: 'nak-without-relay' | 'broadcast-flag' | 'unicast-to-unconfigured-client' | 'no-client-address'
    }

export interface ReplyDestinationOptions {
  /**
   * The sender can deliver a unicast to yiaddr without the client answering
   * ARP (a raw socket or an ARP-cache entry). node:dgram can do neither on
   * Linux, so the default is false and such replies are broadcast instead,
   * which every client accepts (RFC 2131 §4.1 allows broadcast in that case).
   */
  arplessUnicast?: boolean
  /** Relay agent (server) port; 67 unless testing. */
  serverPort?: number
  /** Client port; 68 unless testing. */
  clientPort?: number
}

/**
 * RFC 2131 §4.1, in the order the section gives:
 *  1. giaddr ≠ 0 → the relay agent at giaddr, server port 67 (any message type).
 *  2. NAK with giaddr = 0 → broadcast 255.255.255.255:68.
 *  3. ciaddr ≠ 0 → unicast to ciaddr:68 (the client is configured and answers ARP).
 *  4. broadcast bit set → broadcast.
 *  5. otherwise unicast to yiaddr at chaddr without ARP; when the sender cannot
 *     do that (arplessUnicast false, the default) → broadcast with reason
 *     'unicast-to-unconfigured-client'. With yiaddr = 0 there is nothing to
 *     unicast to → broadcast, 'no-client-address'.
 */
export function replyDestination(request: DhcpPacket, reply: DhcpPacket, opts: ReplyDestinationOptions = {}): ReplyDestination {
  const serverPort = opts.serverPort ?? SERVER_PORT
  const clientPort = opts.clientPort ?? CLIENT_PORT
  if (!isZeroIpv4(request.giaddr)) return { kind: 'relay', address: request.giaddr, port: serverPort, reason: 'giaddr' }
  if (messageTypeOf(reply) === MessageType.NAK) {
    return { kind: 'broadcast', address: IPV4_BROADCAST, port: clientPort, reason: 'nak-without-relay' }
  }
  if (!isZeroIpv4(request.ciaddr)) return { kind: 'unicast', address: request.ciaddr, port: clientPort, reason: 'ciaddr' }
  if (request.flags & FLAG_BROADCAST) return { kind: 'broadcast', address: IPV4_BROADCAST, port: clientPort, reason: 'broadcast-flag' }
  if (isZeroIpv4(reply.yiaddr)) return { kind: 'broadcast', address: IPV4_BROADCAST, port: clientPort, reason: 'no-client-address' }
  if (opts.arplessUnicast) {
    return { kind: 'unicast-no-arp', address: reply.yiaddr, port: clientPort, mac: macOf(request), reason: 'unicast-to-unconfigured-client' }
  }
  return { kind: 'broadcast', address: IPV4_BROADCAST, port: clientPort, reason: 'unicast-to-unconfigured-client' }
}
