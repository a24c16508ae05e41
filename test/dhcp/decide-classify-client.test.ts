/** classifyClient: firmware and architecture from options 93, 60, 77 and 175. */
import t from 'tap'
import { join } from 'node:path'
import { decodePacket } from '../../server/dhcp/codec/index.js'
import { archFromCode, classifyClient, type ClientClass } from '../../server/dhcp/decide/index.js'
import { bytes, FIXTURES, loadHex, opt, raw } from './helpers.js'

function classify(options: number[]): Omit<ClientClass, 'mac' | 'vendorClass' | 'userClass'> {
  const d = decodePacket(raw({ options: [53, 1, 1, ...options, 255] }))
  if (!d.ok) throw new Error(d.error.message)
  const { arch, archCode, firmware, isIpxe } = classifyClient(d.value)
  return { arch, archCode, firmware, isIpxe }
}

const arch93 = (code: number): number[] => opt(93, [code >> 8, code & 0xff])
const vc = (s: string): number[] => opt(60, bytes(s))

const table: [string, number[], Omit<ClientClass, 'mac' | 'vendorClass' | 'userClass'>][] = [
  ['PXE BIOS', [...arch93(0), ...vc('PXEClient:Arch:00000:UNDI:002001')], { arch: 'bios', archCode: 0, firmware: 'pxe', isIpxe: false }],
  ['PXE x86 UEFI', [...arch93(6), ...vc('PXEClient:Arch:00006:UNDI:003016')], { arch: 'x86-uefi', archCode: 6, firmware: 'pxe', isIpxe: false }],
  ['PXE x64 UEFI', [...arch93(7), ...vc('PXEClient:Arch:00007:UNDI:003016')], { arch: 'x64-uefi', archCode: 7, firmware: 'pxe', isIpxe: false }],
  ['PXE x64 UEFI sending 9', [...arch93(9), ...vc('PXEClient:Arch:00009:UNDI:003016')], { arch: 'x64-uefi', archCode: 9, firmware: 'pxe', isIpxe: false }],
  ['PXE arm32 UEFI', [...arch93(10)], { arch: 'arm32-uefi', archCode: 10, firmware: 'pxe', isIpxe: false }],
  ['PXE arm64 UEFI', [...arch93(11), ...vc('PXEClient:Arch:00011:UNDI:003000')], { arch: 'arm64-uefi', archCode: 11, firmware: 'pxe', isIpxe: false }],
  ['UEFI HTTP x64', [...arch93(16), ...vc('HTTPClient:Arch:00016:UNDI:003000')], { arch: 'x64-uefi-http', archCode: 16, firmware: 'uefi-http', isIpxe: false }],
  ['UEFI HTTP arm64', [...arch93(19), ...vc('HTTPClient:Arch:00019:UNDI:003000')], { arch: 'arm64-uefi-http', archCode: 19, firmware: 'uefi-http', isIpxe: false }],
  ['HTTP arch without vendor class', [...arch93(16)], { arch: 'x64-uefi-http', archCode: 16, firmware: 'uefi-http', isIpxe: false }],
  ['arch from vendor class only', [...vc('PXEClient:Arch:00007:UNDI:003016')], { arch: 'x64-uefi', archCode: 7, firmware: 'pxe', isIpxe: false }],
  ['93 wins over vendor class', [...arch93(11), ...vc('PXEClient:Arch:00007:UNDI:003016')], { arch: 'arm64-uefi', archCode: 11, firmware: 'pxe', isIpxe: false }],
  ['93 list: first entry is the preference', [...opt(93, [0, 16, 0, 7])], { arch: 'x64-uefi-http', archCode: 16, firmware: 'uefi-http', isIpxe: false }],
  ['PXEClient without arch', [...vc('PXEClient')], { arch: 'unknown', archCode: -1, firmware: 'pxe', isIpxe: false }],
  ['iPXE by user class (legacy form)', [...arch93(7), ...vc('PXEClient:Arch:00007:UNDI:003010'), ...opt(77, bytes('iPXE'))], { arch: 'x64-uefi', archCode: 7, firmware: 'ipxe', isIpxe: true }],
  ['iPXE by user class (RFC 3004 form)', [...arch93(0), ...opt(77, [4, ...bytes('iPXE')])], { arch: 'bios', archCode: 0, firmware: 'ipxe', isIpxe: true }],
  ['iPXE by option 175 only', [...arch93(0), ...opt(175, [0x13, 1, 1])], { arch: 'bios', archCode: 0, firmware: 'ipxe', isIpxe: true }],
  ['user class other than iPXE', [...arch93(7), ...opt(77, bytes('gPXE'))], { arch: 'x64-uefi', archCode: 7, firmware: 'pxe', isIpxe: false }],
  ['busybox udhcpc', [...vc('udhcp 1.35.0')], { arch: 'unknown', archCode: -1, firmware: 'linux', isIpxe: false }],
  ['dhcpcd', [...vc('dhcpcd-9.4.1:Linux-6.1.0:x86_64:GenuineIntel')], { arch: 'unknown', archCode: -1, firmware: 'linux', isIpxe: false }],
  ['Windows', [...vc('MSFT 5.0')], { arch: 'unknown', archCode: -1, firmware: 'unknown', isIpxe: false }],
  ['nothing', [], { arch: 'unknown', archCode: -1, firmware: 'unknown', isIpxe: false }],
  ['malformed 93 is ignored', [...opt(93, [7]), ...vc('PXEClient:Arch:00000:UNDI:002001')], { arch: 'bios', archCode: 0, firmware: 'pxe', isIpxe: false }],
  ['unregistered arch code', [...arch93(0x1234)], { arch: 'unknown', archCode: 0x1234, firmware: 'pxe', isIpxe: false }],
]

for (const [name, options, want] of table) t.same(classify(options), want, name)

t.test('archFromCode covers the IANA registry 0..41', async (t) => {
  for (let c = 0; c <= 41; c++) t.not(archFromCode(c), 'unknown', `code ${c}`)
  t.equal(archFromCode(42), 'unknown')
  t.equal(archFromCode(9), 'x64-uefi', '9 is treated as x64 (DHCP.md)')
})

t.test('fixtures', async (t) => {
  const load = (name: string): ClientClass => {
    const d = decodePacket(loadHex(join(FIXTURES, `${name}.hex`)))
    if (!d.ok) throw new Error(d.error.message)
    return classifyClient(d.value)
  }
  t.same(load('crafted-ipxe-discover'), {
    arch: 'x64-uefi',
    archCode: 7,
    firmware: 'ipxe',
    isIpxe: true,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003010',
    userClass: ['iPXE'],
    mac: '52:54:00:12:34:56',
  })
  t.same(load('udhcpc-discover'), {
    arch: 'unknown',
    archCode: -1,
    firmware: 'linux',
    isIpxe: false,
    vendorClass: 'udhcp 1.35.0',
    userClass: [],
    mac: '52:54:00:99:77:10',
  })
  t.equal(load('dhclient-discover').firmware, 'unknown', 'isc-dhclient sends no vendor class')
})
