/**
 * Option 175 for replies to iPXE clients (iPXE include/ipxe/dhcp.h).
 */
import { IpxeSubOpt } from '../codec/options/ipxe.js'
import { encodeSubOptions } from '../codec/options/suboptions.js'

/**
 * The option 175 payload with 176 (no-pxedhcp) = 1: iPXE then skips waiting
 * for ProxyDHCP offers (DHCP_EB_NO_PXEDHCP; saves 2–3 s per boot, DHCP.md).
 * Bytes: b0 01 01.
 */
export function ipxeEncapsulatedOptions(): Uint8Array {
  return encodeSubOptions([{ code: IpxeSubOpt.NO_PXEDHCP, data: Uint8Array.of(1) }], false)
}
