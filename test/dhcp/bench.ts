/**
 * Rough throughput of the codec (not a test; numbers depend on the machine):
 *   node --import @tapjs/typescript/import test/dhcp/bench.ts
 * One "exchange" = decode a real request, validate, classify, pick a boot file,
 * build an OFFER with typical options and encode it.
 */
import { join } from 'node:path'
import {
  decodePacket,
  dnsServers,
  encodeReply,
  leaseTime,
  MessageType,
  newReply,
  routers,
  subnetMask,
  validateClientRequest,
  writeOption,
} from '../../server/dhcp/codec/index.js'
import { classifyClient, ipxeEncapsulatedOptions, selectBootFile } from '../../server/dhcp/decide/index.js'
import { FIXTURES, loadHex } from './helpers.js'

const config = {
  tftpServer: '10.0.0.1',
  httpBase: 'http://10.0.0.1/boot',
  files: { bios: 'undionly.kpxe', x64Uefi: 'ipxe.efi', arm64Uefi: 'ipxe-arm64.efi' },
  scriptUrl: (mac: string) => `http://10.0.0.1/boot/${mac}`,
}

function bench(name: string, n: number, fn: () => void): void {
  for (let i = 0; i < 20_000; i++) fn()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) fn()
  const ms = performance.now() - t0
  console.log(`${name.padEnd(28)} ${Math.round(n / (ms / 1000)).toLocaleString('en')} ops/s`)
}

// `npx tap test/dhcp` loads every file in the folder; the benchmark only runs when invoked directly.
if (process.env.TAP === '1') process.exit(0)

for (const fixture of ['dhclient-discover', 'crafted-ipxe-discover']) {
  const wire = loadHex(join(FIXTURES, `${fixture}.hex`))
  const decoded = decodePacket(wire)
  if (!decoded.ok) throw new Error(decoded.error.message)
  const req = decoded.value
  console.log(fixture)
  bench('  decode', 300_000, () => {
    decodePacket(wire)
  })
  const offer = newReply(req, MessageType.OFFER, '10.0.0.1')
  writeOption(offer.options, subnetMask, '255.255.255.0')
  writeOption(offer.options, routers, ['10.0.0.1'])
  writeOption(offer.options, dnsServers, ['10.0.0.1'])
  writeOption(offer.options, leaseTime, 600)
  bench('  encodeReply', 300_000, () => {
    encodeReply(offer, { request: req })
  })
  bench('  full exchange', 200_000, () => {
    const d = decodePacket(wire)
    if (!d.ok) return
    const v = validateClientRequest(d.value)
    if (!v.ok) return
    const sel = selectBootFile(classifyClient(d.value), config)
    const o = newReply(d.value, MessageType.OFFER, '10.0.0.1')
    o.yiaddr = '10.0.0.50'
    writeOption(o.options, subnetMask, '255.255.255.0')
    writeOption(o.options, routers, ['10.0.0.1'])
    writeOption(o.options, dnsServers, ['10.0.0.1'])
    writeOption(o.options, leaseTime, 600)
    if (sel.kind === 'tftp') o.file = sel.file
    if (d.value.options.has(175)) o.options.set(175, ipxeEncapsulatedOptions())
    encodeReply(o, { request: d.value })
  })
}
