/** selectBootFile as a table over classified clients. */
import t from 'tap'
import { joinUrl, selectBootFile, type BootConfig, type BootSelection, type ClientClass } from '../../server/dhcp/decide/index.js'

const config: BootConfig = {
  tftpServer: '10.0.0.1',
  httpBase: 'http://10.0.0.1:8080/boot/',
  files: { bios: 'undionly.kpxe', x64Uefi: 'ipxe.efi', arm64Uefi: 'ipxe-arm64.efi' },
  scriptUrl: (mac) => `http://10.0.0.1:8080/boot/ipxe/${mac}`,
}

function client(patch: Partial<ClientClass>): ClientClass {
  return { arch: 'unknown', archCode: -1, firmware: 'unknown', isIpxe: false, vendorClass: undefined, userClass: [], mac: '52:54:00:aa:bb:cc', ...patch }
}

const table: [string, Partial<ClientClass>, BootSelection][] = [
  ['PXE BIOS → undionly.kpxe over TFTP', { arch: 'bios', archCode: 0, firmware: 'pxe' }, { kind: 'tftp', file: 'undionly.kpxe', server: '10.0.0.1' }],
  ['PXE x64 UEFI → ipxe.efi', { arch: 'x64-uefi', archCode: 7, firmware: 'pxe' }, { kind: 'tftp', file: 'ipxe.efi', server: '10.0.0.1' }],
  ['PXE x64 UEFI (9) → ipxe.efi', { arch: 'x64-uefi', archCode: 9, firmware: 'pxe' }, { kind: 'tftp', file: 'ipxe.efi', server: '10.0.0.1' }],
  ['PXE arm64 UEFI → arm64 iPXE', { arch: 'arm64-uefi', archCode: 11, firmware: 'pxe' }, { kind: 'tftp', file: 'ipxe-arm64.efi', server: '10.0.0.1' }],
  ['PXE x86 UEFI → none', { arch: 'x86-uefi', archCode: 6, firmware: 'pxe' }, { kind: 'none', reason: 'unsupported-arch' }],
  ['PXE arm32 UEFI → none', { arch: 'arm32-uefi', archCode: 10, firmware: 'pxe' }, { kind: 'none', reason: 'unsupported-arch' }],
  ['PXE without arch → none', { firmware: 'pxe' }, { kind: 'none', reason: 'unknown-arch' }],
  ['UEFI HTTP x64 → http URL, HTTPClient echoed', { arch: 'x64-uefi-http', archCode: 16, firmware: 'uefi-http' }, { kind: 'http', url: 'http://10.0.0.1:8080/boot/ipxe.efi', vendorClass: 'HTTPClient' }],
  ['UEFI HTTP arm64', { arch: 'arm64-uefi-http', archCode: 19, firmware: 'uefi-http' }, { kind: 'http', url: 'http://10.0.0.1:8080/boot/ipxe-arm64.efi', vendorClass: 'HTTPClient' }],
  ['HTTPClient with arch 7', { arch: 'x64-uefi', archCode: 7, firmware: 'uefi-http' }, { kind: 'http', url: 'http://10.0.0.1:8080/boot/ipxe.efi', vendorClass: 'HTTPClient' }],
  ['UEFI HTTP x86 → none', { arch: 'x86-uefi-http', archCode: 15, firmware: 'uefi-http' }, { kind: 'none', reason: 'unsupported-arch' }],
  ['HTTPClient without arch → none', { firmware: 'uefi-http' }, { kind: 'none', reason: 'unknown-arch' }],
  ['iPXE (x64) → boot script, never iPXE again', { arch: 'x64-uefi', archCode: 7, firmware: 'ipxe', isIpxe: true }, { kind: 'ipxe-script', url: 'http://10.0.0.1:8080/boot/ipxe/52:54:00:aa:bb:cc' }],
  ['iPXE (BIOS) → boot script', { arch: 'bios', archCode: 0, firmware: 'ipxe', isIpxe: true }, { kind: 'ipxe-script', url: 'http://10.0.0.1:8080/boot/ipxe/52:54:00:aa:bb:cc' }],
  ['Linux DHCP client → none', { firmware: 'linux' }, { kind: 'none', reason: 'not-a-boot-client' }],
  ['unknown client → none', {}, { kind: 'none', reason: 'not-a-boot-client' }],
]

for (const [name, patch, want] of table) t.same(selectBootFile(client(patch), config), want, name)

t.test('a dedicated x64 HTTP-boot image', async (t) => {
  const c = { ...config, files: { ...config.files, x64UefiHttp: 'snponly.efi' } }
  t.same(selectBootFile(client({ arch: 'x64-uefi-http', archCode: 16, firmware: 'uefi-http' }), c), {
    kind: 'http',
    url: 'http://10.0.0.1:8080/boot/snponly.efi',
    vendorClass: 'HTTPClient',
  })
})

t.test('joinUrl', async (t) => {
  t.equal(joinUrl('http://a/b/', '/c'), 'http://a/b/c')
  t.equal(joinUrl('http://a/b', 'c'), 'http://a/b/c')
})
