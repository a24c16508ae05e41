/**
 * Who is asking: firmware and architecture of a DHCP client, from the options
 * boot firmware sends (DHCP.md "Client identification").
 */
import { Opt } from '../codec/constants.js'
import { clientArch } from '../codec/options/pxe-client.js'
import { optionValue } from '../codec/options/types.js'
import { userClass as userClassCodec } from '../codec/options/user-class.js'
import { parseBootVendorClass, vendorClass as vendorClassCodec } from '../codec/options/vendor-class.js'
import { macOf, type DhcpPacket } from '../codec/packet.js'
import { archFromCode, isHttpBootArch, type ClientArch } from './arch.js'

export type ClientFirmware = 'pxe' | 'uefi-http' | 'ipxe' | 'linux' | 'unknown'

export interface ClientClass {
  arch: ClientArch
  /** RFC 4578 type the arch came from (first entry of option 93, else option 60's Arch field); -1 if none. */
  archCode: number
  firmware: ClientFirmware
  isIpxe: boolean
  vendorClass: string | undefined
  /** User class instances (option 77, either form). */
  userClass: string[]
  /** chaddr as lowercase colon hex (hlen bytes). */
  mac: string
}

/** Vendor-class prefixes of Linux DHCP clients (busybox udhcpc, dhcpcd). */
const LINUX_VENDOR_CLASS = /^(udhcp |dhcpcd[-: ]|Linux)/

/**
 * Classifies a request.
 *  - arch: option 93's first entry (RFC 4578 §2.1: the list is the client's
 *    preference order), else the Arch field of a PXEClient/HTTPClient vendor
 *    class (PXE spec 2.1 client DHCP options; UEFI spec 2.10 §24.7).
 *  - firmware, first match wins:
 *      'ipxe'      user class "iPXE" (option 77) or option 175 present
 *                  (iPXE docs, "DHCP options" / include/ipxe/dhcp.h DHCP_EB_ENCAP);
 *      'uefi-http' vendor class HTTPClient, or an HTTP-boot arch type
 *                  (UEFI spec 2.10 §24.7, RFC 4578 registry 15/16/19…);
 *      'pxe'       vendor class PXEClient or option 93 present (PXE spec 2.1 client DHCP options);
 *      'linux'     vendor class of a Linux client (udhcp, dhcpcd);
 *      'unknown'   anything else (e.g. isc-dhclient, which sends no vendor class).
 */
export function classifyClient(request: DhcpPacket): ClientClass {
  const opts = request.options
  const archs = optionValue(opts, clientArch)
  const vc = optionValue(opts, vendorClassCodec)
  const boot = vc !== undefined ? parseBootVendorClass(vc) : undefined
  const uc = optionValue(opts, userClassCodec)
  const userClass = uc ? uc.classes : []

  let archCode = -1
  if (archs && archs.length > 0) archCode = archs[0]!
  else if (boot?.arch !== undefined) archCode = boot.arch
  const arch = archCode >= 0 ? archFromCode(archCode) : 'unknown'

  const isIpxe = userClass.includes('iPXE') || opts.has(Opt.IPXE_ENCAP)
  let firmware: ClientFirmware
  if (isIpxe) firmware = 'ipxe'
  else if (boot?.kind === 'HTTPClient' || isHttpBootArch(arch)) firmware = 'uefi-http'
  else if (boot?.kind === 'PXEClient' || archs !== undefined) firmware = 'pxe'
  else if (vc !== undefined && LINUX_VENDOR_CLASS.test(vc)) firmware = 'linux'
  else firmware = 'unknown'

  return { arch, archCode, firmware, isIpxe, vendorClass: vc, userClass, mac: macOf(request) }
}
