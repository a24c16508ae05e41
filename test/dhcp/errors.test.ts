import t from 'tap'
import { DHCP_DECODE_ERROR_CODES, DHCP_ENCODE_ERROR_CODES, DHCP_ERROR_CATALOGUE } from '../../server/dhcp/codec/index.js'

t.test('every error code is documented', async (t) => {
  for (const code of [...DHCP_DECODE_ERROR_CODES, ...DHCP_ENCODE_ERROR_CODES]) {
    t.ok((DHCP_ERROR_CATALOGUE[code] ?? '').length > 20, code)
  }
  t.same(
    Object.keys(DHCP_ERROR_CATALOGUE).sort(),
    [...new Set([...DHCP_DECODE_ERROR_CODES, ...DHCP_ENCODE_ERROR_CODES])].sort(),
    'the catalogue has no stale entries',
  )
})

t.test('codes are kebab-case and unique per list', async (t) => {
  for (const list of [DHCP_DECODE_ERROR_CODES, DHCP_ENCODE_ERROR_CODES]) {
    t.equal(new Set(list).size, list.length)
    for (const c of list) t.match(c, /^[a-z0-9]+(-[a-z0-9]+)*$/)
  }
})
