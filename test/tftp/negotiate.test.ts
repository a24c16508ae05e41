import t from 'tap'
import type { TftpOption, TransferMode } from '../../server/tftp/codec.js'
import { negotiate, parseDecimal, validateLimits, type NegotiationLimits } from '../../server/tftp/negotiate.js'

const opts = (...pairs: Array<[string, string]>): TftpOption[] => pairs.map(([name, value]) => ({ name, value }))
const limits: NegotiationLimits = { maxBlksize: 1468, maxWindowsize: 64 }

interface Row {
  name: string
  options: TftpOption[]
  mode?: TransferMode
  size?: number | null
  limits?: NegotiationLimits
  oack: Array<[string, string]> | null
  blksize?: number
  windowsize?: number
  timeoutSeconds?: number | null
  tsize?: number | null
}

const rows: Row[] = [
  { name: 'no options: plain RFC 1350', options: [], oack: null, blksize: 512, windowsize: 1 },
  { name: 'blksize granted as asked', options: opts(['blksize', '1024']), oack: [['blksize', '1024']], blksize: 1024 },
  { name: 'blksize clamped to the MTU default', options: opts(['blksize', '65464']), oack: [['blksize', '1468']], blksize: 1468 },
  { name: 'blksize at RFC minimum 8', options: opts(['blksize', '8']), oack: [['blksize', '8']], blksize: 8 },
  { name: 'blksize 0 ignored', options: opts(['blksize', '0']), oack: null, blksize: 512 },
  { name: 'blksize 7 ignored', options: opts(['blksize', '7']), oack: null, blksize: 512 },
  { name: 'blksize 65465 ignored', options: opts(['blksize', '65465']), oack: null, blksize: 512 },
  { name: 'blksize 70000 ignored', options: opts(['blksize', '70000']), oack: null, blksize: 512 },
  { name: 'blksize non-numeric ignored', options: opts(['blksize', 'big']), oack: null, blksize: 512 },
  { name: 'blksize negative ignored', options: opts(['blksize', '-512']), oack: null, blksize: 512 },
  { name: 'blksize with sign ignored', options: opts(['blksize', '+512']), oack: null, blksize: 512 },
  { name: 'blksize hex ignored', options: opts(['blksize', '0x200']), oack: null, blksize: 512 },
  { name: 'blksize exponent ignored', options: opts(['blksize', '1e3']), oack: null, blksize: 512 },
  { name: 'blksize with spaces ignored', options: opts(['blksize', ' 1024']), oack: null, blksize: 512 },
  { name: 'blksize 11 digits ignored', options: opts(['blksize', '00000001024']), oack: null, blksize: 512 },
  { name: 'blksize leading zeros accepted', options: opts(['blksize', '01024']), oack: [['blksize', '1024']], blksize: 1024 },
  {
    name: 'larger configured max',
    options: opts(['blksize', '9000']),
    limits: { maxBlksize: 8192, maxWindowsize: 64 },
    oack: [['blksize', '8192']],
    blksize: 8192,
  },
  { name: 'tsize answered with the real size', options: opts(['tsize', '0']), size: 123456, oack: [['tsize', '123456']], tsize: 123456 },
  { name: 'tsize nonzero request still answered', options: opts(['tsize', '5']), size: 10, oack: [['tsize', '10']] },
  { name: 'tsize non-numeric ignored', options: opts(['tsize', 'x']), size: 10, oack: null, tsize: null },
  { name: 'tsize of an empty file not acknowledged (curl rejects 0)', options: opts(['tsize', '0']), size: 0, oack: null, tsize: null },
  { name: 'tsize unknown size ignored', options: opts(['tsize', '0']), size: null, oack: null, tsize: null },
  { name: 'tsize in netascii ignored', options: opts(['tsize', '0']), mode: 'netascii', size: 10, oack: null },
  { name: 'timeout 1', options: opts(['timeout', '1']), oack: [['timeout', '1']], timeoutSeconds: 1 },
  { name: 'timeout 255', options: opts(['timeout', '255']), oack: [['timeout', '255']], timeoutSeconds: 255 },
  { name: 'timeout 0 ignored', options: opts(['timeout', '0']), oack: null, timeoutSeconds: null },
  { name: 'timeout 256 ignored', options: opts(['timeout', '256']), oack: null, timeoutSeconds: null },
  { name: 'timeout fractional ignored', options: opts(['timeout', '1.5']), oack: null, timeoutSeconds: null },
  { name: 'windowsize granted', options: opts(['windowsize', '16']), oack: [['windowsize', '16']], windowsize: 16 },
  { name: 'windowsize clamped', options: opts(['windowsize', '65535']), oack: [['windowsize', '64']], windowsize: 64 },
  { name: 'windowsize 0 ignored', options: opts(['windowsize', '0']), oack: null, windowsize: 1 },
  { name: 'windowsize 65536 ignored', options: opts(['windowsize', '65536']), oack: null, windowsize: 1 },
  { name: 'unknown options ignored', options: opts(['multicast', ''], ['rollover', '0'], ['utimeout', '500']), oack: null },
  {
    name: 'mixed: order kept, bad ones dropped',
    options: opts(['tsize', '0'], ['foo', 'bar'], ['blksize', '1428'], ['timeout', '999'], ['windowsize', '8']),
    size: 42,
    oack: [['tsize', '42'], ['blksize', '1428'], ['windowsize', '8']],
    blksize: 1428,
    windowsize: 8,
    timeoutSeconds: null,
  },
]

t.test('negotiation table', async (t) => {
  for (const row of rows) {
    const n = negotiate({ mode: row.mode ?? 'octet', options: row.options }, row.size === undefined ? 1000 : row.size, row.limits ?? limits)
    t.same(n.oack === null ? null : n.oack.map((o) => [o.name, o.value]), row.oack, `${row.name}: oack`)
    if (row.blksize !== undefined) t.equal(n.blksize, row.blksize, `${row.name}: blksize`)
    if (row.windowsize !== undefined) t.equal(n.windowsize, row.windowsize, `${row.name}: windowsize`)
    if (row.timeoutSeconds !== undefined) t.equal(n.timeoutSeconds, row.timeoutSeconds, `${row.name}: timeout`)
    if (row.tsize !== undefined) t.equal(n.tsize, row.tsize, `${row.name}: tsize`)
  }
})

t.test('parseDecimal is strict', async (t) => {
  t.equal(parseDecimal('0'), 0)
  t.equal(parseDecimal('9999999999'), 9999999999)
  for (const bad of ['', ' 1', '1 ', '-1', '+1', '1.0', '1e3', '0x10', 'Infinity', 'NaN', '12345678901', '١٢']) {
    t.equal(parseDecimal(bad), undefined, JSON.stringify(bad))
  }
})

t.test('limits are validated at start-up', async (t) => {
  t.equal(validateLimits({ maxBlksize: 1468, maxWindowsize: 64 }), null)
  t.equal(validateLimits({ maxBlksize: 7, maxWindowsize: 64 })?.key, 'maxBlksize')
  t.equal(validateLimits({ maxBlksize: 65465, maxWindowsize: 64 })?.key, 'maxBlksize')
  t.equal(validateLimits({ maxBlksize: 1.5, maxWindowsize: 64 })?.key, 'maxBlksize')
  t.equal(validateLimits({ maxBlksize: 512, maxWindowsize: 0 })?.key, 'maxWindowsize')
  t.equal(validateLimits({ maxBlksize: 512, maxWindowsize: 65536 })?.key, 'maxWindowsize')
})
