import t from 'tap'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TPM_ALG } from '../../server/attest/tpm/alg.js'
import { pcrBanks } from '../../server/attest/tpm/pcr.js'
import {
  EV,
  MAX_EVENTS,
  compareToQuoted,
  dataMatchesDigest,
  dumpEventLog,
  eventTypeName,
  parseEventLog,
  replay,
  type TcgEvent,
} from '../../server/attest/eventlog/index.js'
import { FIXTURES, reference } from './helpers.js'

const sha = (alg: 'sha1' | 'sha256', ...parts: Buffer[]) => {
  const h = createHash(alg)
  for (const p of parts) h.update(p)
  return h.digest()
}

function le32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}
function le16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(n)
  return b
}

/** TCG_PCClientPCREvent (SHA-1 format). */
function sha1Event(pcr: number, type: number, digest: Buffer, data: Buffer): Buffer {
  return Buffer.concat([le32(pcr), le32(type), digest, le32(data.length), data])
}

function specIdData(algs: [number, number][]): Buffer {
  return Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    le32(0), Buffer.from([0, 2, 0, 2]), le32(algs.length),
    ...algs.map(([a, s]) => Buffer.concat([le16(a), le16(s)])),
    Buffer.from([0]),
  ])
}

/** TCG_PCR_EVENT2 with a digest per (alg, digest) pair. */
function agileEvent(pcr: number, type: number, digests: [number, Buffer][], data: Buffer): Buffer {
  return Buffer.concat([le32(pcr), le32(type), le32(digests.length), ...digests.map(([a, d]) => Buffer.concat([le16(a), d])), le32(data.length), data])
}

function measured(pcr: number, type: number, data: Buffer): Buffer {
  return agileEvent(pcr, type, [[TPM_ALG.SHA1, sha('sha1', data)], [TPM_ALG.SHA256, sha('sha256', data)]], data)
}

const HEADER = sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), specIdData([[TPM_ALG.SHA1, 20], [TPM_ALG.SHA256, 32]]))

t.test('ubuntu 21.04 crypto-agile log parses and matches the golden dump', async (t) => {
  const r = parseEventLog(reference('ubuntu2104.evlog'))
  if (!r.ok) return t.fail(`${r.error.code}: ${r.error.message}`)
  const log = r.value
  t.equal(log.format, 'crypto-agile')
  t.equal(log.events.length, 106)
  t.same(log.algorithms, [{ alg: TPM_ALG.SHA1, digestSize: 20 }, { alg: TPM_ALG.SHA256, digestSize: 32 }, { alg: TPM_ALG.SHA384, digestSize: 48 }])
  t.equal(log.specId?.specVersionMajor, 2)
  t.equal(log.specId?.uintnSize, 2)
  for (const e of log.events.slice(1)) t.equal(e.digests.size, 3)
  const types = new Set(log.events.map((e) => eventTypeName(e.type)))
  for (const name of ['EV_S_CRTM_VERSION', 'EV_EFI_VARIABLE_DRIVER_CONFIG', 'EV_SEPARATOR', 'EV_EFI_BOOT_SERVICES_APPLICATION', 'EV_IPL', 'EV_EFI_ACTION']) t.ok(types.has(name), name)

  const banks = replay(log.events)
  t.same([...banks.keys()], [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384])
  // PCR 7 with Secure Boot variables and a separator; an untouched PCR stays zero.
  t.not(banks.get(TPM_ALG.SHA256)![7]!.toString('hex'), '00'.repeat(32))
  t.equal(banks.get(TPM_ALG.SHA256)![10]!.toString('hex'), '00'.repeat(32))

  const dump = dumpEventLog(log)
  const goldenPath = join(FIXTURES, 'ubuntu2104.dump')
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenPath, dump)
  t.equal(dump, readFileSync(goldenPath, 'utf8'), 'dump equals test/fixtures/tpm/ubuntu2104.dump (UPDATE_GOLDEN=1 rewrites it)')
  t.match(dump, /EFI_GLOBAL_VARIABLE:SecureBoot = 00/)
  t.match(dump, /\\EFI\\ubuntu\\shimx64\.efi/)
  t.match(dump, /"grub_cmd: /)
})

t.test('replay of the whole ubuntu log is consistent with extending event by event', async (t) => {
  const r = parseEventLog(reference('ubuntu2104.evlog'))
  if (!r.ok) return t.fail(r.error.message)
  let pcr4 = Buffer.alloc(32)
  for (const e of r.value.events) if (e.pcr === 4 && e.type !== EV.NO_ACTION) pcr4 = sha('sha256', pcr4, e.digests.get(TPM_ALG.SHA256)!)
  t.same(replay(r.value.events).get(TPM_ALG.SHA256)![4], pcr4)
})

t.test('synthetic crypto-agile log: StartupLocality and EV_NO_ACTION', async (t) => {
  const sep = Buffer.alloc(4)
  const locality = sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), Buffer.from('StartupLocality\0\x03', 'latin1'))
  const log = Buffer.concat([
    HEADER,
    agileEvent(0, EV.NO_ACTION, [[TPM_ALG.SHA1, Buffer.alloc(20)], [TPM_ALG.SHA256, Buffer.alloc(32)]], Buffer.from('StartupLocality\0\x03', 'latin1')),
    measured(0, EV.S_CRTM_VERSION, Buffer.from('v1\0\0', 'latin1')),
    agileEvent(1, EV.NO_ACTION, [[TPM_ALG.SHA1, Buffer.alloc(20, 9)], [TPM_ALG.SHA256, Buffer.alloc(32, 9)]], Buffer.from('ignored')),
    measured(7, EV.SEPARATOR, sep),
  ])
  t.ok(locality.length > 0)
  const r = parseEventLog(log)
  if (!r.ok) return t.fail(r.error.message)
  t.equal(r.value.events.length, 5)
  const banks = replay(r.value.events)
  const init0 = Buffer.alloc(32)
  init0[31] = 3
  t.same(banks.get(TPM_ALG.SHA256)![0], sha('sha256', init0, sha('sha256', Buffer.from('v1\0\0', 'latin1'))), 'PCR 0 starts at 0…03')
  const init0s = Buffer.alloc(20)
  init0s[19] = 3
  t.same(banks.get(TPM_ALG.SHA1)![0], sha('sha1', init0s, sha('sha1', Buffer.from('v1\0\0', 'latin1'))))
  t.same(banks.get(TPM_ALG.SHA256)![1], Buffer.alloc(32), 'EV_NO_ACTION is not extended')
  t.same(banks.get(TPM_ALG.SHA256)![7], sha('sha256', Buffer.alloc(32), sha('sha256', sep)))
  t.same(banks.get(TPM_ALG.SHA256)![17], Buffer.alloc(32, 0xff), 'PCR 17 resets to all ones')
  t.ok(dataMatchesDigest(r.value.events[2]!))
  t.match(dumpEventLog(r.value), /StartupLocality 3/)

  // A StartupLocality after PCR 0 has been extended does not rewrite it.
  const late = Buffer.concat([
    HEADER,
    measured(0, EV.S_CRTM_VERSION, Buffer.from('v1')),
    agileEvent(0, EV.NO_ACTION, [[TPM_ALG.SHA1, Buffer.alloc(20)], [TPM_ALG.SHA256, Buffer.alloc(32)]], Buffer.from('StartupLocality\0\x03', 'latin1')),
  ])
  const lr = parseEventLog(late)
  if (!lr.ok) return t.fail(lr.error.message)
  t.same(replay(lr.value.events).get(TPM_ALG.SHA256)![0], sha('sha256', Buffer.alloc(32), sha('sha256', Buffer.from('v1'))))
})

t.test('SHA-1-only log', async (t) => {
  const a = Buffer.from('POST CODE')
  const log = Buffer.concat([sha1Event(0, EV.S_CRTM_VERSION, sha('sha1', a), a), sha1Event(4, EV.SEPARATOR, sha('sha1', Buffer.alloc(4)), Buffer.alloc(4))])
  const r = parseEventLog(log)
  if (!r.ok) return t.fail(r.error.message)
  t.equal(r.value.format, 'sha1')
  t.equal(r.value.specId, undefined)
  const banks = replay(r.value.events)
  t.same([...banks.keys()], [TPM_ALG.SHA1])
  t.same(banks.get(TPM_ALG.SHA1)![0], sha('sha1', Buffer.alloc(20), sha('sha1', a)))

  const e02 = Buffer.concat([Buffer.from('Spec ID Event02\0', 'latin1'), le32(0), Buffer.from([2, 1, 2, 1]), Buffer.from([0])])
  const r2 = parseEventLog(Buffer.concat([sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), e02), sha1Event(4, EV.SEPARATOR, sha('sha1', Buffer.alloc(4)), Buffer.alloc(4))]))
  t.equal(r2.ok && r2.value.format, 'sha1')
  t.equal(r2.ok && r2.value.specId?.signature, 'Spec ID Event02\0')
})

t.test('compareToQuoted reports matches, mismatches and missing banks', async (t) => {
  const r = parseEventLog(Buffer.concat([HEADER, measured(4, EV.EFI_ACTION, Buffer.from('Calling EFI Application from Boot Option'))]))
  if (!r.ok) return t.fail(r.error.message)
  const banks = replay(r.value.events)
  const good = banks.get(TPM_ALG.SHA256)![4]!
  const c = compareToQuoted(banks, pcrBanks([[TPM_ALG.SHA256, [[4, good], [5, Buffer.alloc(32)], [6, Buffer.alloc(32, 1)]]], [TPM_ALG.SHA384, [[4, Buffer.alloc(48)]]]]))
  t.equal(c.ok, false)
  t.same(c.matched, [{ alg: TPM_ALG.SHA256, pcr: 4 }, { alg: TPM_ALG.SHA256, pcr: 5 }])
  t.same(c.mismatched.map((m) => m.pcr), [6])
  t.same(c.missingBanks, [TPM_ALG.SHA384])
  t.equal(compareToQuoted(banks, pcrBanks([[TPM_ALG.SHA256, [[4, good]]]])).ok, true)
  t.equal(compareToQuoted(banks, pcrBanks([[TPM_ALG.SHA256, [[30, good]]]])).ok, false, 'a PCR past the bank is a mismatch')
})

t.test('malformed logs fail with stable codes and never throw', async (t) => {
  const good = Buffer.concat([HEADER, measured(4, EV.EFI_ACTION, Buffer.from('x')), measured(7, EV.SEPARATOR, Buffer.alloc(4))])
  for (let n = 1; n < good.length; n++) {
    const r = parseEventLog(good.subarray(0, n))
    if (n === HEADER.length || n === HEADER.length + measured(4, EV.EFI_ACTION, Buffer.from('x')).length) {
      t.ok(r.ok, `record boundary ${n}`)
      continue
    }
    if (r.ok) t.fail(`prefix ${n} decoded`)
    else if (r.error.code !== 'truncated') t.fail(`prefix ${n}: ${r.error.code}`)
  }
  t.match(parseEventLog(Buffer.alloc(0)), { ok: false, error: { code: 'empty' } })
  t.match(parseEventLog(Buffer.alloc((1 << 20) + 1)), { ok: false, error: { code: 'too-large' } })
  t.match(parseEventLog(Buffer.concat([HEADER, agileEvent(4, 1, [[TPM_ALG.SHA1, Buffer.alloc(20)]], Buffer.alloc(0))])), { ok: false, error: { code: 'digest-count-mismatch' } })
  t.match(parseEventLog(Buffer.concat([HEADER, agileEvent(4, 1, [[TPM_ALG.SHA1, Buffer.alloc(20)], [TPM_ALG.SHA384, Buffer.alloc(48)]], Buffer.alloc(0))])), { ok: false, error: { code: 'unknown-digest-alg' } })
  t.match(parseEventLog(Buffer.concat([HEADER, agileEvent(4, 1, [[TPM_ALG.SHA1, Buffer.alloc(20)], [TPM_ALG.SHA1, Buffer.alloc(20)]], Buffer.alloc(0))])), { ok: false, error: { code: 'duplicate-digest-alg' } })
  t.match(parseEventLog(Buffer.concat([HEADER, measured(24, 1, Buffer.alloc(0))])), { ok: false, error: { code: 'bad-pcr-index' } })
  t.match(parseEventLog(sha1Event(99, 1, Buffer.alloc(20), Buffer.alloc(0))), { ok: false, error: { code: 'bad-pcr-index' } })
  const hugeSize = Buffer.concat([HEADER, le32(4), le32(1), le32(2), le16(TPM_ALG.SHA1), Buffer.alloc(20), le16(TPM_ALG.SHA256), Buffer.alloc(32), le32(0xffffffff)])
  t.match(parseEventLog(hugeSize), { ok: false, error: { code: 'truncated' } })
  t.match(parseEventLog(sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), specIdData([]))), { ok: false, error: { code: 'bad-spec-id' } })
  t.match(parseEventLog(sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), specIdData([[TPM_ALG.SHA256, 20]]))), { ok: false, error: { code: 'bad-spec-id' } })
  t.match(parseEventLog(sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), specIdData([[TPM_ALG.SHA256, 32], [TPM_ALG.SHA256, 32]]))), { ok: false, error: { code: 'bad-spec-id' } })
  t.match(parseEventLog(sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), specIdData([[0x0099, 65]]))), { ok: false, error: { code: 'bad-spec-id' } })
  t.match(parseEventLog(sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), specIdData([[TPM_ALG.SHA256, 32]]).subarray(0, 30))), { ok: false, error: { code: 'bad-spec-id' } })
  const many = Buffer.concat([HEADER, Buffer.concat(Array.from({ length: MAX_EVENTS }, () => measured(4, 1, Buffer.alloc(0))))])
  t.match(parseEventLog(many), { ok: false, error: { code: 'too-many-events' } })
  const unknownAlg = sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), specIdData([[TPM_ALG.SHA256, 32], [0x0099, 16]]))
  const withUnknown = parseEventLog(Buffer.concat([unknownAlg, agileEvent(4, 1, [[TPM_ALG.SHA256, Buffer.alloc(32)], [0x0099, Buffer.alloc(16)]], Buffer.alloc(0))]))
  t.ok(withUnknown.ok, 'an algorithm we cannot hash is parsed')
  if (withUnknown.ok) t.same([...replay(withUnknown.value.events).keys()], [TPM_ALG.SHA256], 'and left out of the replay')
})

t.test('event type names', async (t) => {
  t.equal(eventTypeName(EV.EFI_BOOT_SERVICES_APPLICATION), 'EV_EFI_BOOT_SERVICES_APPLICATION')
  t.equal(eventTypeName(EV.POST_CODE), 'EV_POST_CODE')
  t.equal(eventTypeName(0x12345678), 'EV_UNKNOWN_0x12345678')
  const e: TcgEvent = { index: 0, offset: 0, pcr: 0, type: 1, digests: new Map(), data: Buffer.alloc(0) }
  t.equal(dataMatchesDigest(e), false)
})
