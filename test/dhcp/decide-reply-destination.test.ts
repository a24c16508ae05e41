/** replyDestination: RFC 2131 §4.1 as a table. */
import t from 'tap'
import { decodePacket, MessageType, newReply, type DhcpPacket } from '../../server/dhcp/codec/index.js'
import { replyDestination, type ReplyDestination } from '../../server/dhcp/decide/index.js'
import { raw } from './helpers.js'

type Ip = [number, number, number, number]
const Z: Ip = [0, 0, 0, 0]

function pair(giaddr: Ip, ciaddr: Ip, broadcast: boolean, type: 2 | 5 | 6, yiaddr: string): [DhcpPacket, DhcpPacket] {
  const d = decodePacket(raw({ giaddr, ciaddr, flags: broadcast ? 0x8000 : 0, options: [53, 1, type === 2 ? 1 : 3, 255] }))
  if (!d.ok) throw new Error(d.error.message)
  const reply = newReply(d.value, type, '10.0.0.1')
  reply.yiaddr = yiaddr
  return [d.value, reply]
}

const BC = '255.255.255.255'
const { OFFER, ACK, NAK } = MessageType

const table: [string, Ip, Ip, boolean, 2 | 5 | 6, string, ReplyDestination][] = [
  ['relayed OFFER → relay:67', [10, 1, 0, 1], Z, false, OFFER, '10.1.0.50', { kind: 'relay', address: '10.1.0.1', port: 67, reason: 'giaddr' }],
  ['relayed NAK → relay:67', [10, 1, 0, 1], Z, false, NAK, '0.0.0.0', { kind: 'relay', address: '10.1.0.1', port: 67, reason: 'giaddr' }],
  ['relayed ACK with ciaddr → relay wins', [10, 1, 0, 1], [10, 1, 0, 7], false, ACK, '10.1.0.7', { kind: 'relay', address: '10.1.0.1', port: 67, reason: 'giaddr' }],
  ['NAK, no relay → broadcast', Z, Z, false, NAK, '0.0.0.0', { kind: 'broadcast', address: BC, port: 68, reason: 'nak-without-relay' }],
  ['NAK to a renewing client (ciaddr set) → still broadcast', Z, [10, 0, 0, 7], false, NAK, '0.0.0.0', { kind: 'broadcast', address: BC, port: 68, reason: 'nak-without-relay' }],
  ['ACK to a renewing client → unicast ciaddr:68', Z, [10, 0, 0, 7], false, ACK, '10.0.0.7', { kind: 'unicast', address: '10.0.0.7', port: 68, reason: 'ciaddr' }],
  ['ACK to INFORM (ciaddr, broadcast bit) → ciaddr wins', Z, [10, 0, 0, 7], true, ACK, '0.0.0.0', { kind: 'unicast', address: '10.0.0.7', port: 68, reason: 'ciaddr' }],
  ['OFFER, broadcast bit → broadcast', Z, Z, true, OFFER, '10.0.0.50', { kind: 'broadcast', address: BC, port: 68, reason: 'broadcast-flag' }],
  ['OFFER, no broadcast bit → broadcast fallback (no ARP injection from node:dgram)', Z, Z, false, OFFER, '10.0.0.50', { kind: 'broadcast', address: BC, port: 68, reason: 'unicast-to-unconfigured-client' }],
  ['ACK, no broadcast bit, yiaddr 0 → broadcast', Z, Z, false, ACK, '0.0.0.0', { kind: 'broadcast', address: BC, port: 68, reason: 'no-client-address' }],
]

for (const [name, giaddr, ciaddr, bcast, type, yiaddr, want] of table) {
  t.test(name, async (t) => {
    const [req, reply] = pair(giaddr, ciaddr, bcast, type, yiaddr)
    t.same(replyDestination(req, reply), want)
  })
}

t.test('ARP-less unicast when the sender can do it', async (t) => {
  const [req, reply] = pair(Z, Z, false, OFFER, '10.0.0.50')
  t.same(replyDestination(req, reply, { arplessUnicast: true }), {
    kind: 'unicast-no-arp',
    address: '10.0.0.50',
    port: 68,
    mac: '52:54:00:aa:bb:cc',
    reason: 'unicast-to-unconfigured-client',
  })
  const [req2, reply2] = pair(Z, Z, true, OFFER, '10.0.0.50')
  t.equal(replyDestination(req2, reply2, { arplessUnicast: true }).kind, 'broadcast', 'broadcast bit still wins')
})

t.test('ports are configurable for tests', async (t) => {
  const [req, reply] = pair([10, 1, 0, 1], Z, false, OFFER, '10.1.0.50')
  t.equal(replyDestination(req, reply, { serverPort: 1067 }).port, 1067)
  const [req2, reply2] = pair(Z, Z, true, OFFER, '10.1.0.50')
  t.equal(replyDestination(req2, reply2, { clientPort: 1068 }).port, 1068)
})
