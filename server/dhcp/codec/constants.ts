/** Wire constants of BOOTP/DHCPv4 (RFC 951, RFC 2131, RFC 2132). */

export const BOOTREQUEST = 1
export const BOOTREPLY = 2

/** RFC 2131 §3: the first four octets of the options field. */
export const MAGIC_COOKIE = 0x63825363

/** Fixed BOOTP header length up to (not including) the magic cookie (RFC 2131 §2, Figure 1). */
export const HEADER_LENGTH = 236
/** Header plus magic cookie: the smallest decodable DHCP message. */
export const MIN_PACKET_SIZE = HEADER_LENGTH + 4
/** RFC 951: a BOOTP message is at least 300 bytes (236-byte header + 64-byte vend field). */
export const BOOTP_MIN_PACKET_SIZE = 300
/** Default upper bound on accepted input (one Ethernet MTU); configurable per decode call. */
export const DHCP_MAX_PACKET_SIZE = 1500
/** RFC 2132 §9.10: smallest legal maximum-message-size value (an IP datagram, headers included). */
export const MIN_MAX_MESSAGE_SIZE = 576
/** IPv4 (without options) plus UDP header bytes counted by option 57. */
export const IP_UDP_HEADER_SIZE = 28

export const SERVER_PORT = 67
export const CLIENT_PORT = 68

/** Field offsets in the fixed header (RFC 2131 §2). */
export const OFF = {
  op: 0,
  htype: 1,
  hlen: 2,
  hops: 3,
  xid: 4,
  secs: 8,
  flags: 10,
  ciaddr: 12,
  yiaddr: 16,
  siaddr: 20,
  giaddr: 24,
  chaddr: 28,
  sname: 44,
  file: 108,
  cookie: 236,
  options: 240,
} as const

export const CHADDR_LENGTH = 16
export const SNAME_LENGTH = 64
export const FILE_LENGTH = 128

/** RFC 2131 §2: the leftmost bit of `flags`. */
export const FLAG_BROADCAST = 0x8000

/** ARP hardware types (IANA) whose address length is fixed. */
export const HTYPE_ETHERNET = 1
export const HTYPE_IEEE802 = 6
export const HTYPE_INFINIBAND = 32

/** DHCP message types (RFC 2132 §9.6, RFC 3203, RFC 4388, RFC 6926, RFC 7724). */
export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
  FORCERENEW: 9,
  LEASEQUERY: 10,
  LEASEUNASSIGNED: 11,
  LEASEUNKNOWN: 12,
  LEASEACTIVE: 13,
  BULKLEASEQUERY: 14,
  LEASEQUERYDONE: 15,
  ACTIVELEASEQUERY: 16,
  LEASEQUERYSTATUS: 17,
  TLS: 18,
} as const
export type MessageTypeName = keyof typeof MessageType
export const MAX_MESSAGE_TYPE = 18

const MESSAGE_TYPE_NAMES: readonly string[] = (() => {
  const names: string[] = []
  for (const [k, v] of Object.entries(MessageType)) names[v] = k
  return names
})()

export function messageTypeName(t: number): string {
  return MESSAGE_TYPE_NAMES[t] ?? `UNKNOWN-${t}`
}

/** Option codes this codec knows by name (RFC 2132 unless noted). */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTERS: 3,
  DNS_SERVERS: 6,
  HOST_NAME: 12,
  DOMAIN_NAME: 15,
  INTERFACE_MTU: 26,
  BROADCAST_ADDRESS: 28,
  NTP_SERVERS: 42,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77,
  RELAY_AGENT_INFO: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_GUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const
