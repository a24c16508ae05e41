/**
 * Error catalogue of the DHCPv4 codec. Codes are stable API: handlers and logs
 * match on `code`, never on `message`. Every code is documented in
 * DHCP_ERROR_CATALOGUE (test/dhcp/errors.test.ts checks that).
 */

export const DHCP_DECODE_ERROR_CODES = [
  'too-short',
  'too-long',
  'bad-magic-cookie',
  'bad-hlen',
  'htype-hlen-mismatch',
  'option-overrun',
  'missing-end',
  'invalid-overload',
  'missing-message-type',
  'invalid-message-type',
  'invalid-option-length',
  'invalid-option-value',
  'not-bootrequest',
  'server-message-from-client',
  'unsupported-message-type',
] as const

export const DHCP_ENCODE_ERROR_CODES = [
  'invalid-field',
  'field-too-long',
  'not-bootreply',
  'missing-message-type',
  'reply-too-large',
] as const

export type DhcpDecodeErrorCode = (typeof DHCP_DECODE_ERROR_CODES)[number]
export type DhcpEncodeErrorCode = (typeof DHCP_ENCODE_ERROR_CODES)[number]

export interface DhcpDecodeError {
  code: DhcpDecodeErrorCode
  message: string
  /** Byte offset in the input where the problem was detected, when meaningful. */
  offset?: number
}

export interface DhcpEncodeError {
  code: DhcpEncodeErrorCode
  message: string
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: DhcpDecodeError }
export type EncodeResult<T = Uint8Array> = { ok: true; value: T } | { ok: false; error: DhcpEncodeError }

export function decodeError(code: DhcpDecodeErrorCode, message: string, offset?: number): { ok: false; error: DhcpDecodeError } {
  return offset === undefined ? { ok: false, error: { code, message } } : { ok: false, error: { code, message, offset } }
}

export function encodeError(code: DhcpEncodeErrorCode, message: string): { ok: false; error: DhcpEncodeError } {
  return { ok: false, error: { code, message } }
}

/** One line of documentation per code; the catalogue is the reference for operators. */
export const DHCP_ERROR_CATALOGUE: Readonly<Record<DhcpDecodeErrorCode | DhcpEncodeErrorCode, string>> = {
  'too-short': 'Input shorter than the 236-byte BOOTP header plus the 4-byte magic cookie (RFC 2131 §2, §3).',
  'too-long': 'Input longer than the configured maximum (DHCP_MAX_PACKET_SIZE, 1500 bytes by default).',
  'bad-magic-cookie': 'Bytes 236..239 are not 99.130.83.99 (RFC 2131 §3, RFC 2132 §2).',
  'bad-hlen': 'hlen is larger than the 16-byte chaddr field (RFC 2131 §2).',
  'htype-hlen-mismatch': 'hlen does not match the fixed address length of htype (Ethernet/IEEE 802: 6, InfiniBand: 0 per RFC 4390 §2.1).',
  'option-overrun': 'An option length field points past the end of its field (RFC 2132 §2).',
  'missing-end': 'An options area (options, or an overloaded file/sname) is not terminated by END (RFC 2132 §3.2, §9.3).',
  'invalid-overload': 'Option 52 has a bad length or value, or appears outside the options field (RFC 2132 §9.3).',
  'missing-message-type': 'Option 53 is absent: the packet is BOOTP, not DHCP (RFC 2131 §3).',
  'invalid-message-type': 'Option 53 has a length other than 1 or an unassigned value (RFC 2132 §9.6, IANA message types).',
  'invalid-option-length': 'An option value has a length its definition does not allow.',
  'invalid-option-value': 'An option value has the right length but an impossible content.',
  'not-bootrequest': 'A packet received on the server port has op other than BOOTREQUEST (RFC 2131 §2).',
  'server-message-from-client': 'A client sent a server-side message type such as OFFER, ACK or NAK (RFC 2131 §3).',
  'unsupported-message-type': 'A client message type this server does not implement (e.g. LEASEQUERY, RFC 4388).',
  'invalid-field': 'A header field or option to encode is out of range (e.g. an address that is not dotted-quad IPv4).',
  'field-too-long': 'sname or file does not fit its fixed field with a terminating NUL (RFC 2131 §2).',
  'not-bootreply': 'encodeReply was given a packet whose op is not BOOTREPLY.',
  'reply-too-large': 'The options do not fit the client limit (option 57 or 576) even using option 52 overload (RFC 2131 §2, RFC 2132 §9.3).',
}
