/**
 * What to boot: maps a classified client to the file or URL its firmware can
 * load next. Only iPXE itself goes over TFTP; everything after it is HTTP
 * (DHCP.md: TFTP timeouts are a hard failure on some firmware).
 */
import type { ClientClass } from './classify-client.js'

export interface BootConfig {
  /** TFTP server address or name given to PXE firmware (siaddr / option 66). */
  tftpServer: string
  /** Base URL for HTTP boot, e.g. "http://10.0.0.1:8080/boot" (no trailing slash needed). */
  httpBase: string
  files: {
    /** iPXE for PXE BIOS, e.g. "undionly.kpxe". */
    bios: string
    /** iPXE for x64 UEFI, e.g. "ipxe.efi". */
    x64Uefi: string
    /** iPXE for arm64 UEFI, e.g. "ipxe-arm64.efi". */
    arm64Uefi: string
    /** Image for x64 UEFI HTTP boot; defaults to files.x64Uefi. */
    x64UefiHttp?: string
  }
  /** The iPXE boot-script URL for a client MAC (lowercase colon hex). */
  scriptUrl: (mac: string) => string
}

export type BootSelection =
  | { kind: 'tftp'; file: string; server: string }
  | { kind: 'http'; url: string; vendorClass: 'HTTPClient' }
  | { kind: 'ipxe-script'; url: string }
  | { kind: 'none'; reason: 'not-a-boot-client' | 'unsupported-arch' | 'unknown-arch' }

export function joinUrl(base: string, file: string): string {
  return `${base.replace(/\/+$/, '')}/${file.replace(/^\/+/, '')}`
}

/**
 * Branches, first match wins:
 *  1. Client is already iPXE → its HTTP boot script (iPXE docs "Breaking the
 *     infinite loop": a chainloaded iPXE must not be handed iPXE again).
 *  2. UEFI HTTP boot (vendor class HTTPClient / arch 16, 19) → an http:// URI
 *     as the boot file, with "HTTPClient" echoed in option 60 (UEFI spec 2.10
 *     §24.7: the offer must carry it or the client ignores the offer).
 *  3. PXE firmware by RFC 4578 §2.1 arch type: 0 BIOS → files.bios
 *     (undionly.kpxe); 7/9 x64 UEFI → files.x64Uefi; 11 arm64 UEFI →
 *     files.arm64Uefi; over TFTP (PXE spec 2.1 boot server reply, siaddr + file).
 *  4. Anything else → none, with the reason.
 */
export function selectBootFile(client: ClientClass, config: BootConfig): BootSelection {
  if (client.isIpxe) return { kind: 'ipxe-script', url: config.scriptUrl(client.mac) }

  if (client.firmware === 'uefi-http') {
    let file: string | undefined
    if (client.arch === 'x64-uefi-http' || client.arch === 'x64-uefi') file = config.files.x64UefiHttp ?? config.files.x64Uefi
    else if (client.arch === 'arm64-uefi-http' || client.arch === 'arm64-uefi') file = config.files.arm64Uefi
    if (file === undefined) return { kind: 'none', reason: client.arch === 'unknown' ? 'unknown-arch' : 'unsupported-arch' }
    return { kind: 'http', url: joinUrl(config.httpBase, file), vendorClass: 'HTTPClient' }
  }

  if (client.firmware === 'pxe') {
    switch (client.arch) {
      case 'bios':
        return { kind: 'tftp', file: config.files.bios, server: config.tftpServer }
      case 'x64-uefi':
        return { kind: 'tftp', file: config.files.x64Uefi, server: config.tftpServer }
      case 'arm64-uefi':
        return { kind: 'tftp', file: config.files.arm64Uefi, server: config.tftpServer }
      case 'unknown':
        return { kind: 'none', reason: 'unknown-arch' }
      default:
        return { kind: 'none', reason: 'unsupported-arch' }
    }
  }

  return { kind: 'none', reason: 'not-a-boot-client' }
}
