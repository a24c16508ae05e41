/**
 * Router-side decisions of RFC 4861 §6 as pure functions: validity of a
 * solicitation (§6.1.1), timing of solicited and unsolicited advertisements
 * (§6.2.4, §6.2.6), and when netboot yields to a real router (§6.2.7).
 */
import t from 'tap'
import { decodeNd, encodeRa, encodeRs, type RouterAdvertisement, type RouterSolicitation } from '../../server/ra/codec.js'
import {
  defaultMinInterval, invalidAdvertisement, invalidSolicitation, isRealRouter, MAX_INITIAL_RTR_ADVERT_INTERVAL_MS, MAX_RA_DELAY_TIME_MS,
  MAX_RTR_ADV_INTERVAL_LIMIT_MS, MIN_DELAY_BETWEEN_RAS_MS, nextUnsolicitedDelay, rateLimited, solicitedSendTime, yieldHoldMs,
} from '../../server/ra/decide.js'

const rs = (mac?: string): RouterSolicitation => { const d = decodeNd(encodeRs(mac)); if (!d.ok || d.message.type !== 'rs') throw new Error('rs'); return d.message }
const ra = (f: Parameters<typeof encodeRa>[0]): RouterAdvertisement => { const d = decodeNd(encodeRa(f)); if (!d.ok || d.message.type !== 'ra') throw new Error('ra'); return d.message }

t.test('§6.1.1 solicitation validity', async (t) => {
  t.equal(invalidSolicitation(rs('52:54:00:00:00:01'), 255, 'fe80::1'), undefined)
  t.equal(invalidSolicitation(rs(), 255, '::'), undefined, 'from :: without the option: valid')
  t.match(invalidSolicitation(rs(), 254, 'fe80::1'), /hop limit 254/)
  t.match(invalidSolicitation(rs(), -1, 'fe80::1'), /hop limit -1/, 'an unknown hop limit is not trusted')
  t.match(invalidSolicitation(rs('52:54:00:00:00:01'), 255, '::'), /unspecified source/)
  t.match(invalidSolicitation(rs('52:54:00:00:00:01'), 255, '0:0::0'), /unspecified source/)
})

t.test('§6.1.2 other routers\' advertisements; §6.2.7 yield to a real router only', async (t) => {
  t.equal(invalidAdvertisement(255, 'fe80::1'), undefined)
  t.match(invalidAdvertisement(64, 'fe80::1'), /hop limit/)
  t.match(invalidAdvertisement(255, '2001:db8::1'), /not link-local/)
  t.equal(isRealRouter(ra({ routerLifetime: 0 })), false, 'another netboot: keep advertising')
  t.equal(isRealRouter(ra({ routerLifetime: 0, prefixes: [{ prefix: 'fd00::', length: 64, onLink: true, autonomous: true, validLifetime: 1, preferredLifetime: 1 }] })), false)
  t.equal(isRealRouter(ra({ routerLifetime: 1800 })), true, 'a default router')
  t.equal(isRealRouter(ra({ managed: true })), true, 'DHCPv6 addresses')
  t.equal(isRealRouter(ra({ other: true })), true, 'DHCPv6 other configuration')
  t.equal(yieldHoldMs(ra({ routerLifetime: 1800 })), 1_800_000, 'quiet for the router lifetime')
  t.equal(yieldHoldMs(ra({ routerLifetime: 9000 })), 9_000_000, 'at most 9,000 s (§6.2.1 AdvDefaultLifetime limit)')
  t.equal(yieldHoldMs(ra({ routerLifetime: 0, managed: true })), MAX_RTR_ADV_INTERVAL_LIMIT_MS, 'a DHCPv6-only router: the longest interval between its RAs')
})

t.test('§6.2.1 MinRtrAdvInterval default', async (t) => {
  t.equal(defaultMinInterval(600), 198)
  t.equal(defaultMinInterval(9), 3)
  t.equal(defaultMinInterval(4), 4, 'below 9 s, min = max')
})

t.test('§6.2.4 unsolicited intervals', async (t) => {
  t.equal(nextUnsolicitedDelay(198_000, 600_000, 0, () => 0.5), MAX_INITIAL_RTR_ADVERT_INTERVAL_MS, 'the first three are at most 16 s apart')
  t.equal(nextUnsolicitedDelay(198_000, 600_000, 2, () => 0), MAX_INITIAL_RTR_ADVERT_INTERVAL_MS)
  t.equal(nextUnsolicitedDelay(198_000, 600_000, 3, () => 0), 198_000, 'then uniformly in [min, max]')
  t.equal(nextUnsolicitedDelay(198_000, 600_000, 3, () => 1), 600_000)
  t.equal(nextUnsolicitedDelay(4_000, 8_000, 0, () => 0.5), 6_000, 'short intervals are not raised')
})

t.test('§6.2.6 solicited answers: random delay, rate limit, one answer for many', async (t) => {
  const now = 1_000_000
  t.equal(solicitedSendTime(now, undefined, undefined, () => 0), now, 'random 0: at once')
  t.equal(solicitedSendTime(now, undefined, undefined, () => 1), now + MAX_RA_DELAY_TIME_MS, 'at most MAX_RA_DELAY_TIME')
  t.equal(solicitedSendTime(now, now - 1_000, undefined, () => 0), now - 1_000 + MIN_DELAY_BETWEEN_RAS_MS, 'at least 3 s after the last multicast RA')
  t.equal(solicitedSendTime(now, now - 10_000, undefined, () => 0.5), now + 250, 'an old RA does not delay')
  t.equal(solicitedSendTime(now, undefined, now + 100, () => 0.5), undefined, 'an RA already due sooner answers this one too')
  t.equal(solicitedSendTime(now, undefined, now + 400, () => 0.5), now + 250, 'a later one does not')
  t.equal(rateLimited(now, now - 500), now - 500 + MIN_DELAY_BETWEEN_RAS_MS, 'unsolicited RAs obey the same limit')
  t.equal(rateLimited(now, undefined), now)
})
