/**
 * Option 175, iPXE encapsulated options (iPXE include/ipxe/dhcp.h,
 * DHCP_EB_ENCAP): sub-options with PAD/END. In a client request they carry
 * feature markers (0x10–0x4f), the version (235) and the bus id (177); in a
 * reply the server sets e.g. 176 (no-pxedhcp).
 */
import { decodeSubOptions, encodeSubOptions, formatSubOptions, type SubOption } from './suboptions.js'
import { optionError, type OptionCodec } from './types.js'

export const IpxeSubOpt = {
  PRIORITY: 1,
  KEEP_SAN: 8,
  SKIP_SAN_BOOT: 9,
  FEATURE_PXE_EXT: 0x10,
  FEATURE_ISCSI: 0x11,
  FEATURE_AOE: 0x12,
  FEATURE_HTTP: 0x13,
  FEATURE_HTTPS: 0x14,
  FEATURE_TFTP: 0x15,
  FEATURE_DNS: 0x17,
  FEATURE_BZIMAGE: 0x18,
  FEATURE_MULTIBOOT: 0x19,
  FEATURE_PXE: 0x21,
  FEATURE_ELF: 0x22,
  FEATURE_COMBOOT: 0x23,
  FEATURE_EFI: 0x24,
  FEATURE_MENU: 0x27,
  SCRIPTLET: 0x51,
  NO_PXEDHCP: 176,
  BUS_ID: 177,
  USE_CACHED: 178,
  BIOS_DRIVE: 189,
  USERNAME: 190,
  PASSWORD: 191,
  VERSION: 235,
} as const

const NAMES: Record<number, string> = {
  1: 'priority',
  8: 'keep-san',
  9: 'skip-san-boot',
  0x10: 'pxeext',
  0x11: 'iscsi',
  0x12: 'aoe',
  0x13: 'http',
  0x14: 'https',
  0x15: 'tftp',
  0x16: 'ftp',
  0x17: 'dns',
  0x18: 'bzimage',
  0x19: 'multiboot',
  0x1a: 'slam',
  0x1b: 'srp',
  0x20: 'nbi',
  0x21: 'pxe',
  0x22: 'elf',
  0x23: 'comboot',
  0x24: 'efi',
  0x25: 'fcoe',
  0x26: 'vlan',
  0x27: 'menu',
  0x28: 'sdi',
  0x29: 'nfs',
  0x51: 'scriptlet',
  0x55: 'syslogs',
  0x5a: 'trust',
  176: 'no-pxedhcp',
  177: 'bus-id',
  178: 'use-cached',
  189: 'bios-drive',
  190: 'username',
  191: 'password',
  192: 'reverse-username',
  193: 'reverse-password',
  235: 'version',
}

export function ipxeSubOptionName(code: number): string {
  return NAMES[code] ?? `sub-${code}`
}

export const ipxeEncap: OptionCodec<SubOption[]> = {
  code: 175,
  name: 'ipxe-encap',
  decode(data) {
    const r = decodeSubOptions(data, true)
    return r.ok ? r : optionError(ipxeEncap, 'invalid-option-value', r.error.message)
  },
  /** No END terminator: iPXE accepts the list ending with the option. */
  encode: (subs) => encodeSubOptions(subs, false),
  format: (subs) => formatSubOptions(subs, ipxeSubOptionName),
}
