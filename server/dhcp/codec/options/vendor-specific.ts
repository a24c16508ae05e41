/**
 * Option 43, vendor-specific information (RFC 2132 §8.4) in the PXE
 * encapsulation (PXE spec 2.1, vendor options table): sub-options with PAD/END,
 * kept raw and in order so an option from a PXE client or another server is
 * preserved. A value that is not a sub-option list is an error here, while the
 * raw bytes stay in the packet's option list.
 */
import { decodeSubOptions, encodeSubOptions, formatSubOptions, type SubOption } from './suboptions.js'
import { optionError, type OptionCodec } from './types.js'

export const PxeSubOpt = {
  MTFTP_IP: 1,
  MTFTP_CPORT: 2,
  MTFTP_SPORT: 3,
  MTFTP_TMOUT: 4,
  MTFTP_DELAY: 5,
  DISCOVERY_CONTROL: 6,
  DISCOVERY_MCAST_ADDR: 7,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  MCAST_ADDRS_ALLOC: 11,
  CREDENTIAL_TYPES: 12,
  BOOT_ITEM: 71,
} as const

const PXE_NAMES: Record<number, string> = {
  1: 'mtftp-ip',
  2: 'mtftp-cport',
  3: 'mtftp-sport',
  4: 'mtftp-tmout',
  5: 'mtftp-delay',
  6: 'discovery-control',
  7: 'discovery-mcast-addr',
  8: 'boot-servers',
  9: 'boot-menu',
  10: 'menu-prompt',
  11: 'mcast-addrs-alloc',
  12: 'credential-types',
  71: 'boot-item',
}

export function pxeSubOptionName(code: number): string {
  return PXE_NAMES[code] ?? `sub-${code}`
}

export const vendorSpecific: OptionCodec<SubOption[]> = {
  code: 43,
  name: 'vendor-specific',
  decode(data) {
    const r = decodeSubOptions(data, true)
    return r.ok ? r : optionError(vendorSpecific, 'invalid-option-value', r.error.message)
  },
  encode: (subs) => encodeSubOptions(subs, true),
  format: (subs) => formatSubOptions(subs, pxeSubOptionName),
}
