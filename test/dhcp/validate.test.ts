import t from 'tap'
import { decodePacket, validateClientRequest } from '../../server/dhcp/codec/index.js'
import { raw } from './helpers.js'

function check(op: number, type: number): string {
  const d = decodePacket(raw({ op, options: [53, 1, type, 255] }))
  if (!d.ok) return `decode:${d.error.code}`
  const v = validateClientRequest(d.value)
  return v.ok ? `ok:${v.value.messageType}` : v.error.code
}

t.test('message types from a client (RFC 2131 §3)', async (t) => {
  const table: [string, number, string][] = [
    ['DISCOVER', 1, 'ok:1'],
    ['OFFER', 2, 'server-message-from-client'],
    ['REQUEST', 3, 'ok:3'],
    ['DECLINE', 4, 'ok:4'],
    ['ACK', 5, 'server-message-from-client'],
    ['NAK', 6, 'server-message-from-client'],
    ['RELEASE', 7, 'ok:7'],
    ['INFORM', 8, 'ok:8'],
    ['FORCERENEW', 9, 'server-message-from-client'],
    ['LEASEQUERY', 10, 'unsupported-message-type'],
    ['LEASEACTIVE', 13, 'server-message-from-client'],
    ['BULKLEASEQUERY', 14, 'unsupported-message-type'],
    ['TLS', 18, 'unsupported-message-type'],
  ]
  for (const [name, type, want] of table) t.equal(check(1, type), want, name)
})

t.test('op must be BOOTREQUEST', async (t) => {
  t.equal(check(2, 1), 'not-bootrequest', 'a BOOTREPLY carrying DISCOVER')
  t.equal(check(2, 2), 'not-bootrequest', 'an OFFER from another server')
  t.equal(check(0, 1), 'not-bootrequest')
  t.equal(check(3, 1), 'not-bootrequest')
})

t.test('a hand-built packet without 53 is rejected, not thrown on', async (t) => {
  const d = decodePacket(raw())
  t.ok(d.ok)
  if (!d.ok) return
  d.value.options.delete(53)
  const v = validateClientRequest(d.value)
  t.equal(v.ok ? 'ok' : v.error.code, 'missing-message-type')
})
