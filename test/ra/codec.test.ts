/**
 * RS/RA codec (RFC 4861 §4.1, §4.2, §4.6): golden solicitations captured from
 * rdisc6 and the Linux kernel (tcpdump -x on a veth, ICMPv6 part), encoded
 * advertisements field by field, malformed input, and a seeded fuzz run that
 * checks the decoder never throws, stays bounded and round-trips what it accepts.
 */
import t from 'tap'
import { decodeNd, encodeRa, encodeRs, ipv6Text, MAX_OPTIONS, parseIpv6, parseIpv6Prefix, type NdMessage, type RouterAdvertisement } from '../../server/ra/codec.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

/** rdisc6 -1 (ndisc6 1.0.7): no source link-layer address option. */
const RS_RDISC6 = hex('8500 2d26 0000 0000')
/** Linux 6.1 on link-up, from fe80::5054:ff:feaa:1: with the option (type 1, length 1, MAC). */
const RS_KERNEL = hex('8500 d92f 0000 0000 0101 5254 00aa 0001')

function ok (b: Uint8Array): NdMessage {
  const d = decodeNd(b)
  if (!d.ok) throw new Error(`decode failed: ${d.error.code} ${d.error.detail}`)
  return d.message
}

t.test('golden router solicitations', async (t) => {
  const a = ok(RS_RDISC6)
  t.equal(a.type, 'rs')
  t.equal(a.type === 'rs' ? a.sourceLinkLayer : 'x', undefined, 'rdisc6 sends no source link-layer address')
  const b = ok(RS_KERNEL)
  t.equal(b.type === 'rs' ? b.sourceLinkLayer : undefined, '52:54:00:aa:00:01', "the kernel's RS names its MAC")
  t.same(encodeRs('52:54:00:aa:00:01').subarray(4), RS_KERNEL.subarray(4), 'encodeRs matches the kernel\'s bytes past the checksum')
})

t.test('router advertisement: the one netboot sends by default', async (t) => {
  const ra = encodeRa({ routerLifetime: 0, sourceLinkLayer: '52:54:00:12:34:56' })
  // type 134, code 0, checksum 0 (the kernel fills it), hop limit 0, flags 0, lifetime 0, reachable 0, retrans 0, SLLA
  t.same(ra, hex('8600 0000 00 00 0000 00000000 00000000 0101 525400123456'))
  const m = ok(ra) as RouterAdvertisement
  t.same({ l: m.routerLifetime, M: m.managed, O: m.other, p: m.prefixes.length, sll: m.sourceLinkLayer }, { l: 0, M: false, O: false, p: 0, sll: '52:54:00:12:34:56' })
})

t.test('router advertisement: every field round-trips', async (t) => {
  const f = {
    curHopLimit: 64, managed: true, other: true, routerLifetime: 1800, reachableTime: 30_000, retransTimer: 1_000,
    sourceLinkLayer: 'aa:bb:cc:dd:ee:ff', mtu: 9000,
    prefixes: [
      { prefix: 'fd00:96::', length: 64, onLink: true, autonomous: true, validLifetime: 2_592_000, preferredLifetime: 604_800 },
      { prefix: '2001:db8:1:2::', length: 64, onLink: false, autonomous: true, validLifetime: 0xffffffff, preferredLifetime: 0 },
    ],
  }
  const bytes = encodeRa(f)
  t.equal(bytes.length, 16 + 8 + 8 + 32 * 2)
  t.equal(bytes[5], 0xc0, 'M and O are the two high bits (§4.2)')
  const m = ok(bytes) as RouterAdvertisement
  t.same({ ...m, options: undefined, type: undefined }, { ...f, options: undefined, type: undefined })
  t.throws(() => encodeRa({ routerLifetime: 70_000 }), RangeError, 'router lifetime is 16 bits')
  t.throws(() => encodeRa({ sourceLinkLayer: 'nonsense' }), RangeError)
  t.throws(() => encodeRa({ prefixes: [{ prefix: 'fd00::zz', length: 64, onLink: true, autonomous: true, validLifetime: 1, preferredLifetime: 1 }] }), RangeError)
})

t.test('malformed input is a typed error naming the problem', async (t) => {
  const cases: [string, Buffer, string, RegExp][] = [
    ['empty', Buffer.alloc(0), 'TOO_SHORT', /0 bytes/],
    ['neighbour solicitation', hex('8700 0000 0000 0000'), 'NOT_RS_OR_RA', /type 135/],
    ['code 1', hex('8501 0000 0000 0000'), 'BAD_CODE', /code 1/],
    ['RS of 7 bytes', hex('8500 0000 0000 00'), 'TOO_SHORT', /at least 8/],
    ['RA of 12 bytes', hex('8600 0000 4000 0000 0000 0000'), 'TOO_SHORT', /at least 16/],
    ['zero-length option (§4.6)', hex('8500 0000 0000 0000 0100 0000 0000 0000'), 'BAD_OPTION', /length 0/],
    ['option longer than the packet', hex('8500 0000 0000 0000 0102 5254 00aa 0001'), 'BAD_OPTION', /16 bytes, 8 left/],
    ['option header cut', hex('8500 0000 0000 0000 01'), 'BAD_OPTION', /truncated/],
    ['short prefix option', hex('8600 0000 0000 0000 0000 0000 0000 0000 0301 4000 0000 0000'), 'BAD_OPTION', /prefix information option of 8 bytes/],
    ['prefix length 200', Buffer.concat([hex('8600 0000 0000 0000 0000 0000 0000 0000 0304 c8c0'), Buffer.alloc(28)]), 'BAD_OPTION', /prefix length 200/],
    ['long MTU option', hex('8600 0000 0000 0000 0000 0000 0000 0000 0502 0000 0000 0000 0000 0000 0000 0000'), 'BAD_OPTION', /MTU option of 16/],
    ['too long', Buffer.concat([hex('8500 0000 0000 0000'), Buffer.alloc(2000)]), 'TOO_LONG', /2008 bytes/],
  ]
  for (const [name, b, code, detail] of cases) {
    const d = decodeNd(b)
    t.equal(d.ok, false, `${name}: refused`)
    if (!d.ok) { t.equal(d.error.code, code, `${name}: ${code}`); t.match(d.error.detail, detail) }
  }
  const many = Buffer.concat([hex('8500 0000 0000 0000'), ...Array.from({ length: MAX_OPTIONS + 1 }, () => hex('ff01 0000 0000 0000'))])
  const d = decodeNd(many)
  t.match(d, { ok: false, error: { code: 'BAD_OPTION', detail: /more than 64 options/ } }, 'the option count is bounded')
  t.equal(ok(Buffer.concat([hex('8500 0000 0000 0000'), hex('ff01 0000 0000 0000')])).type, 'rs', 'unknown options are skipped (§4.6)')
})

t.test('IPv6 text and prefixes', async (t) => {
  for (const [s, want] of [['fe80::1', 'fe80::1'], ['FD00:0096:0:0:0:0:0:0', 'fd00:96::'], ['::', '::'], ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1']] as const) {
    const b = parseIpv6(s)
    t.ok(b, `${s} parses`)
    if (b !== undefined) t.equal(ipv6Text(b), want, `${s} → ${want} (RFC 5952)`)
  }
  for (const bad of ['', ':::', '1::2::3', '12345::', 'fe80::1%eth0', '1:2:3:4:5:6:7:8:9', '1.2.3.4', '1:2:3:4:5:6:7::8']) t.equal(parseIpv6(bad), undefined, `'${bad}' is refused`)
  t.same(parseIpv6Prefix('fd00:96::/64'), { prefix: 'fd00:96::', length: 64 })
  t.equal(parseIpv6Prefix('fd00:96::/48'), undefined, 'only /64 (SLAAC)')
  t.equal(parseIpv6Prefix('fd00:96::1/64'), undefined, 'no host bits')
  t.equal(parseIpv6Prefix('fd00:96::'), undefined, 'a length is required')
})

/** mulberry32: a small seeded PRNG, so a failing input can be replayed from its seed. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('fuzz: the decoder never throws, is bounded, and what it accepts re-encodes to the same fields', async (t) => {
  const seed = Number(process.env.RA_FUZZ_SEED ?? 20261121)
  const count = Number(process.env.RA_FUZZ_COUNT ?? 200_000)
  const rnd = prng(seed)
  const seeds: Buffer[] = [
    RS_RDISC6, RS_KERNEL,
    encodeRa({ routerLifetime: 0, sourceLinkLayer: '52:54:00:12:34:56' }),
    encodeRa({ curHopLimit: 64, managed: true, routerLifetime: 1800, mtu: 1500, sourceLinkLayer: '52:54:00:12:34:56', prefixes: [{ prefix: 'fd00:96::', length: 64, onLink: true, autonomous: true, validLifetime: 1, preferredLifetime: 1 }] }),
  ]
  const failures: string[] = []
  let accepted = 0
  let slowest = 0
  const started = Date.now()
  for (let i = 0; i < count && failures.length < 5; i++) {
    const base = seeds[Math.floor(rnd() * seeds.length)]!
    let b: Buffer
    const how = rnd()
    if (how < 0.1) b = Buffer.from(Array.from({ length: Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256)))
    else {
      b = Buffer.from(base)
      const flips = 1 + Math.floor(rnd() * 4)
      for (let k = 0; k < flips; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256)
      if (how > 0.8) b = b.subarray(0, Math.floor(rnd() * (b.length + 1)))
      else if (how > 0.7) b = Buffer.concat([b, Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)))])
      // keep the type of an RS or RA most of the time, so the option parser is what gets exercised
      if (b.length > 1 && rnd() < 0.8) { b[0] = base[0]!; b[1] = 0 }
    }
    const t0 = performance.now()
    try {
      const d = decodeNd(b)
      if (d.ok) {
        accepted++
        if (d.message.type === 'ra') {
          const m = d.message
          const again = decodeNd(encodeRa({ ...m, ...(m.sourceLinkLayer !== undefined ? { sourceLinkLayer: m.sourceLinkLayer } : {}) }))
          if (!again.ok) failures.push(`re-encode of ${b.toString('hex')} does not decode: ${again.error.code}`)
          else {
            const { options: _a, ...x } = again.message as RouterAdvertisement
            const { options: _b, ...y } = m
            if (JSON.stringify(x) !== JSON.stringify(y)) failures.push(`round trip differs for ${b.toString('hex')}`)
          }
        }
      } else if (typeof d.error.detail !== 'string' || d.error.detail === '') failures.push(`error without detail for ${b.toString('hex')}`)
    } catch (e) {
      failures.push(`threw on ${b.toString('hex')}: ${(e as Error).message}`)
    }
    slowest = Math.max(slowest, performance.now() - t0)
  }
  t.same(failures, [], `seed ${seed}: no failure in ${count} inputs`)
  t.ok(accepted > count / 20, `a fair share decodes (${accepted}), so the option parser is exercised`)
  // Bounded work per input (at most MAX_OPTIONS options, MAX_MESSAGE bytes): the mean stays tiny; one
  // input's wall time is not asserted, a GC pause on a shared machine would fail it.
  const mean = (Date.now() - started) / count
  t.ok(mean < 1, `mean ${mean.toFixed(4)} ms per input`)
  t.comment(`${count} inputs in ${Date.now() - started} ms, ${accepted} accepted, slowest ${slowest.toFixed(3)} ms`)
})
