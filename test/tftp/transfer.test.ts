import t from 'tap'
import {
  ackedIndex,
  blockNumber,
  blocksNeeded,
  bytesAcknowledged,
  initialState,
  transition,
  type OutPacket,
  type ReadBlock,
  type Step,
  type TransferConfig,
  type TransferEvent,
  type TransferState,
} from '../../server/tftp/transfer.js'

/** A readBlock over an in-memory stream that records every index it is asked for. */
function source(size: number, blksize: number): { read: ReadBlock; reads: number[]; data: Buffer } {
  const data = Buffer.alloc(size)
  for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 9)) & 0xff
  const reads: number[] = []
  const read: ReadBlock = (index) => {
    reads.push(index)
    const start = index * blksize
    if (start > size) throw new RangeError(`block ${index} past end`)
    return data.subarray(start, Math.min(start + blksize, size))
  }
  return { read, reads, data }
}

const cfg = (over: Partial<TransferConfig> = {}): TransferConfig => ({ blksize: 512, windowsize: 1, maxRetries: 5, oack: null, ...over })

/** Runs events in order, checking blocksNeeded covers every read of each step. */
function drive(state: TransferState, events: TransferEvent[], src: { read: ReadBlock; reads: number[] }): Step[] {
  const steps: Step[] = []
  for (const ev of events) {
    const need = blocksNeeded(state, ev)
    const before = src.reads.length
    const step = transition(state, ev, src.read)
    for (const i of src.reads.slice(before)) {
      if (need === null || i < need.first || i > need.last) throw new Error(`read ${i} outside blocksNeeded ${JSON.stringify(need)}`)
    }
    steps.push(step)
    state = step.state
  }
  return steps
}

const blocks = (send: readonly OutPacket[]): number[] => send.map((p) => (p.op === 'DATA' ? p.block : -1))

t.test('blockNumber wraps 65535 → 0', async (t) => {
  t.equal(blockNumber(0), 1)
  t.equal(blockNumber(65534), 65535)
  t.equal(blockNumber(65535), 0)
  t.equal(blockNumber(65536), 1)
  t.equal(blockNumber(-1), 0)
})

t.test('lock-step RFC 1350 transfer of a short file', async (t) => {
  const src = source(1000, 512)
  const s0 = initialState(cfg())
  const [a, b, c] = drive(s0, [{ type: 'start' }, { type: 'ack', block: 1 }, { type: 'ack', block: 2 }], src)
  t.equal(a!.state.phase, 'sending')
  t.same(blocks(a!.send), [1])
  t.equal(a!.timer, 'restart')
  t.equal(b!.state.phase, 'awaiting-final-ack')
  t.same(blocks(b!.send), [2])
  t.equal((b!.send[0] as { data: Buffer }).data.length, 1000 - 512)
  t.equal(c!.state.phase, 'done')
  t.same(c!.send, [])
  t.equal(c!.timer, 'stop')
  t.equal(bytesAcknowledged(c!.state), 1000)
})

t.test('exact multiple of blksize ends with a zero-length block (RFC 1350 §6)', async (t) => {
  const src = source(1024, 512)
  const steps = drive(initialState(cfg()), [{ type: 'start' }, { type: 'ack', block: 1 }, { type: 'ack', block: 2 }, { type: 'ack', block: 3 }], src)
  t.same(steps.map((s) => blocks(s.send)), [[1], [2], [3], []])
  t.equal((steps[2]!.send[0] as { data: Buffer }).data.length, 0)
  t.equal(steps[3]!.state.phase, 'done')
  t.equal(bytesAcknowledged(steps[3]!.state), 1024)
})

t.test('empty file is one zero-length block', async (t) => {
  const src = source(0, 512)
  const [a, b] = drive(initialState(cfg()), [{ type: 'start' }, { type: 'ack', block: 1 }], src)
  t.equal(a!.state.phase, 'awaiting-final-ack')
  t.equal((a!.send[0] as { data: Buffer }).data.length, 0)
  t.equal(b!.state.phase, 'done')
})

t.test('OACK first, then DATA after ACK 0 (RFC 2347)', async (t) => {
  const src = source(100, 512)
  const oack = [{ name: 'tsize', value: '100' }]
  const [a, b, c, d] = drive(
    initialState(cfg({ oack })),
    [{ type: 'start' }, { type: 'ack', block: 5 }, { type: 'ack', block: 0 }, { type: 'ack', block: 1 }],
    src,
  )
  t.same(a!.send, [{ op: 'OACK', options: oack }])
  t.equal(a!.state.phase, 'oack-sent')
  t.same(b!.send, [], 'ACK other than 0 ignored while waiting for ACK 0')
  t.equal(b!.timer, 'keep')
  t.same(blocks(c!.send), [1])
  t.equal(d!.state.phase, 'done')
})

t.test('OACK retransmitted on timeout, then fails after maxRetries', async (t) => {
  const src = source(100, 512)
  const events: TransferEvent[] = [{ type: 'start' }, { type: 'timeout' }, { type: 'timeout' }, { type: 'timeout' }]
  const steps = drive(initialState(cfg({ oack: [{ name: 'blksize', value: '8' }], maxRetries: 2 })), events, src)
  t.same(
    steps.map((s) => s.send.map((p) => p.op)),
    [['OACK'], ['OACK'], ['OACK'], ['ERROR']],
  )
  t.equal(steps[3]!.state.phase, 'failed')
  t.equal(steps[3]!.state.failure?.reason, 'timeout')
  t.equal(steps[3]!.timer, 'stop')
})

t.test('timeout resends the same block; retries reset on progress; exhaustion fails', async (t) => {
  const src = source(4000, 512)
  const ev: TransferEvent[] = [
    { type: 'start' },
    { type: 'timeout' },
    { type: 'timeout' },
    { type: 'ack', block: 1 },
    { type: 'timeout' },
    { type: 'timeout' },
    { type: 'timeout' },
    { type: 'timeout' },
  ]
  const steps = drive(initialState(cfg({ maxRetries: 3 })), ev, src)
  t.same(steps.map((s) => blocks(s.send)), [[1], [1], [1], [2], [2], [2], [2], [-1]])
  t.equal(steps[2]!.state.retries, 2)
  t.equal(steps[3]!.state.retries, 0, 'progress resets the retry count')
  t.equal(steps[7]!.state.phase, 'failed')
  t.equal(steps[7]!.state.failure?.reason, 'timeout')
  t.equal(steps[7]!.send[0]!.op, 'ERROR')
  t.equal(steps[6]!.state.retransmitted, 5)
})

t.test('duplicate ACKs send nothing (Sorcerer’s Apprentice, RFC 1123 §4.2.3.1)', async (t) => {
  const src = source(5000, 512)
  const ev: TransferEvent[] = [
    { type: 'start' },
    { type: 'ack', block: 1 },
    { type: 'ack', block: 1 },
    { type: 'ack', block: 1 },
    { type: 'ack', block: 0 },
    { type: 'ack', block: 2 },
  ]
  const steps = drive(initialState(cfg()), ev, src)
  t.same(steps.map((s) => blocks(s.send)), [[1], [2], [], [], [], [3]])
  t.equal(steps[2]!.timer, 'keep', 'a duplicate ACK does not restart the timer')
  t.same(src.reads, [0, 1, 2])
})

t.test('ACK for a block never sent is ignored', async (t) => {
  const src = source(5000, 512)
  const steps = drive(initialState(cfg()), [{ type: 'start' }, { type: 'ack', block: 2 }, { type: 'ack', block: 999 }], src)
  t.same(steps.map((s) => blocks(s.send)), [[1], [], []])
  t.equal(steps[2]!.state.lastAcked, -1)
})

t.test('windowed sending (RFC 7440)', async (t) => {
  const blk = 512
  const src = source(blk * 10 + 100, blk) // 11 blocks
  const c = cfg({ windowsize: 4, oack: [{ name: 'windowsize', value: '4' }] })
  const ev: TransferEvent[] = [
    { type: 'start' },
    { type: 'ack', block: 0 },
    { type: 'ack', block: 4 }, // full window acknowledged
    { type: 'ack', block: 6 }, // 7 lost: receiver acknowledges 6, continue from 7
    { type: 'ack', block: 6 }, // duplicate: nothing
    { type: 'timeout' }, // resend from 7
    { type: 'ack', block: 10 },
    { type: 'ack', block: 11 },
  ]
  const steps = drive(initialState(c), ev, src)
  t.same(steps.map((s) => blocks(s.send)), [[-1], [1, 2, 3, 4], [5, 6, 7, 8], [7, 8, 9, 10], [], [7, 8, 9, 10], [11], []])
  t.same(
    steps.map((s) => s.state.phase),
    ['oack-sent', 'sending', 'sending', 'sending', 'sending', 'sending', 'awaiting-final-ack', 'done'],
  )
  t.equal(steps[3]!.state.retransmitted, 2, 'blocks 7 and 8 went out twice')
  t.equal(bytesAcknowledged(steps[7]!.state), blk * 10 + 100)
})

t.test('window stops at the final block; a partial ACK inside the last window resends the tail', async (t) => {
  const src = source(512 * 5 + 10, 512) // 6 blocks
  const c = cfg({ windowsize: 8, oack: [{ name: 'windowsize', value: '8' }] })
  const steps = drive(initialState(c), [{ type: 'start' }, { type: 'ack', block: 0 }, { type: 'ack', block: 3 }, { type: 'ack', block: 6 }], src)
  t.same(steps.map((s) => blocks(s.send)), [[-1], [1, 2, 3, 4, 5, 6], [4, 5, 6], []])
  t.equal(steps[1]!.state.phase, 'awaiting-final-ack')
  t.equal(steps[2]!.state.phase, 'awaiting-final-ack')
  t.equal(steps[3]!.state.phase, 'done')
})

t.test('block numbers roll over past 65535 (wrap to 0)', async (t) => {
  const blk = 8
  const total = 65540 // blocks 1..65535, 0, 1, 2, 3, 4, and a short one
  const src = source(blk * total + 3, blk)
  let state = initialState(cfg({ blksize: blk, oack: [{ name: 'blksize', value: '8' }] }))
  let step = transition(state, { type: 'start' }, src.read)
  step = transition(step.state, { type: 'ack', block: 0 }, src.read)
  const seen: number[] = []
  for (let i = 0; i < total + 5 && step.state.phase !== 'done'; i++) {
    const p = step.send[0]
    if (p?.op !== 'DATA') break
    seen.push(p.block)
    state = step.state
    step = transition(state, { type: 'ack', block: p.block }, src.read)
  }
  t.equal(step.state.phase, 'done')
  t.equal(seen.length, total + 1)
  t.same(seen.slice(65533, 65538), [65534, 65535, 0, 1, 2])
  t.equal(bytesAcknowledged(step.state), blk * total + 3)
  // After the wrap an old ACK 65535 is a duplicate, not progress.
  let s = initialState(cfg({ blksize: blk }))
  s = { ...s, phase: 'sending', lastAcked: 65536, highestSent: 65537 } // acked wire block 1 (second lap), sent wire block 2
  t.equal(ackedIndex(s, 2), 65537)
  t.equal(ackedIndex(s, 1), 65536)
  t.equal(ackedIndex(s, 65535), null)
  t.equal(ackedIndex(s, 0), null)
})

t.test('windowed rollover: window straddling 65535/0', async (t) => {
  const blk = 8
  const src = source(blk * 65540, blk)
  const base = initialState(cfg({ blksize: blk, windowsize: 4, oack: [{ name: 'windowsize', value: '4' }] }))
  const s: TransferState = { ...base, phase: 'sending', lastAcked: 65532, highestSent: 65532 } // wire block 65533 acked
  const step = transition(s, { type: 'timeout' }, src.read)
  t.same(blocks(step.send), [65534, 65535, 0, 1])
  const next = transition(step.state, { type: 'ack', block: 0 }, src.read)
  t.equal(next.state.lastAcked, 65535)
  t.same(blocks(next.send), [1, 2, 3, 4])
})

t.test('ERROR from the peer mid-transfer ends it silently', async (t) => {
  const src = source(5000, 512)
  const steps = drive(initialState(cfg()), [{ type: 'start' }, { type: 'ack', block: 1 }, { type: 'error', code: 0, message: 'user abort' }, { type: 'ack', block: 2 }], src)
  t.equal(steps[2]!.state.phase, 'failed')
  t.equal(steps[2]!.state.failure?.reason, 'peer-error')
  t.same(steps[2]!.send, [], 'no reply to an ERROR (RFC 1350 §7)')
  t.equal(steps[2]!.timer, 'stop')
  t.same(steps[3]!.send, [], 'terminal: later events do nothing')
  t.equal(steps[3]!.state.phase, 'failed')
})

t.test('local abort sends ERROR to the peer', async (t) => {
  const src = source(5000, 512)
  const steps = drive(initialState(cfg()), [{ type: 'start' }, { type: 'abort', code: 0, message: 'error reading file' }], src)
  t.same(steps[1]!.send, [{ op: 'ERROR', code: 0, message: 'error reading file' }])
  t.equal(steps[1]!.state.failure?.reason, 'aborted')
})

t.test('a silent abort (code null) sends nothing', async (t) => {
  const src = source(5000, 512)
  const steps = drive(initialState(cfg()), [{ type: 'start' }, { type: 'abort', code: null, message: 'superseded' }], src)
  t.same(steps[1]!.send, [])
  t.equal(steps[1]!.state.phase, 'failed')
  t.equal(steps[1]!.timer, 'stop')
})

t.test('events before start and after done change nothing', async (t) => {
  const src = source(10, 512)
  const s0 = initialState(cfg())
  t.same(transition(s0, { type: 'ack', block: 1 }, src.read).send, [])
  t.same(transition(s0, { type: 'timeout' }, src.read).send, [])
  const done = drive(s0, [{ type: 'start' }, { type: 'ack', block: 1 }], src)[1]!.state
  t.equal(done.phase, 'done')
  const after = transition(done, { type: 'timeout' }, src.read)
  t.equal(after.state, done)
  t.equal(after.timer, 'stop')
})

t.test('a source returning more than blksize is a driver bug and throws', async (t) => {
  t.throws(() => transition(initialState(cfg()), { type: 'start' }, () => Buffer.alloc(513)), RangeError)
})
