import { readFileSync } from 'node:fs'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig, parseConfig } from '../../server/config/load.js'
import { ConfigSchema } from '../../server/config/schema.js'
import { NetbootError } from '../../server/errors.js'

const example = readFileSync(new URL('../../netboot.example.yaml', import.meta.url), 'utf8')

function failure (text: string, env: NodeJS.ProcessEnv = {}): NetbootError {
  try {
    parseConfig(text, 'netboot.yaml', env)
  } catch (e) {
    if (e instanceof NetbootError) return e
    throw e
  }
  throw new Error('expected the config to be refused')
}

t.test('the example file loads and documents every key', async (t) => {
  const c = parseConfig(example, 'netboot.example.yaml')
  t.equal(c.config.dhcp.subnets[0]?.name, 'provisioning')
  t.equal(c.publicUrl, 'http://172.16.0.254:8080')
  t.equal(c.dbPath, '/var/lib/netboot/netboot.db')
  const keys: string[] = []
  const walk = (schema: { properties?: Record<string, unknown>; items?: unknown }, prefix: string): void => {
    for (const [k, v] of Object.entries(schema.properties ?? {})) {
      keys.push(k)
      const s = v as { properties?: Record<string, unknown>; items?: { properties?: Record<string, unknown> } }
      if (s.properties !== undefined) walk(s, `${prefix}${k}.`)
      if (s.items?.properties !== undefined) walk(s.items, `${prefix}${k}[].`)
    }
  }
  walk(ConfigSchema as never, '')
  for (const k of new Set(keys)) t.match(example, new RegExp(`^\\s*#?\\s*-?\\s*${k}:`, 'm'), `example documents '${k}'`)
})

t.test('defaults without a file', async (t) => {
  const c = parseConfig('', 'defaults')
  t.equal(c.config.http.port, 8080)
  t.equal(c.config.admin.listen, '127.0.0.1')
  t.equal(c.config.unknown_nodes.action, 'discover')
  t.equal(c.config.dhcp.lease_time, 3600)
  t.equal(c.adminUrl, 'http://127.0.0.1:8081')
})

t.test('errors name the key and line', async (t) => {
  let e = failure('http:\n  port: 8080\n  prot: 1\n')
  t.equal(e.code, 'CONFIG_INVALID')
  t.same(e.details[0], { where: 'netboot.yaml:3', message: 'http.prot: unknown key' })

  e = failure('http:\n  port: eighty\n')
  t.equal(e.details[0]?.where, 'netboot.yaml:2')
  t.match(e.details[0]?.message, /^http\.port: must be integer/)

  e = failure('dhcp:\n  subnets:\n    - name: a\n      network: 172.16.0.0/24\n      router: 172.16.0.300\n')
  t.same(e.details[0], { where: 'netboot.yaml:5', message: 'dhcp.subnets[0].router: expected an IPv4 address such as 172.16.0.254' })

  e = failure('unknown_nodes:\n  action: boot\n')
  t.equal(e.details[0]?.where, 'netboot.yaml:2')
  t.match(e.details[0]?.message, /unknown_nodes\.action: expected one of "discover", "reboot", "ignore"/)

  e = failure('http: [1, 2]\n')
  t.match(e.details[0]?.message, /^http: must be object/)

  e = failure('server:\n  address: 10.0.0.1\n  address: 10.0.0.2\n')
  t.equal(e.details[0]?.where, 'netboot.yaml:3', 'duplicate key')
  t.match(e.details[0]?.message, /YAML/)

  e = failure('http: {port: 1\n')
  t.match(e.details[0]?.message, /^YAML/)
  t.match(e.message, /netboot\.yaml:\d+/)
})

t.test('cross-field rules', async (t) => {
  const base = 'server: {address: 172.16.0.254}\ndhcp:\n  subnets:\n'
  let e = failure(`${base}    - name: a\n      network: 172.16.0.0/24\n      pool: [172.16.1.10-172.16.1.20]\n`)
  t.same(e.details[0], { where: 'netboot.yaml:6', message: 'dhcp.subnets[0].pool[0]: range is not inside 172.16.0.0/24' })
  e = failure(`${base}    - name: a\n      network: 172.16.0.0/24\n    - name: b\n      network: 172.16.0.128/25\n`)
  t.match(e.details[0]?.message, /dhcp\.subnets\[1\]\.network: overlaps dhcp\.subnets\[0\]/)
  e = failure(`${base}    - name: a\n      network: 172.16.0.0/24\n      pool: [172.16.0.20-172.16.0.10]\n`)
  t.match(e.details[0]?.message, /expected an address range FIRST-LAST/)
  e = failure('dhcp:\n  subnets:\n    - name: a\n      network: 172.16.0.0/24\n')
  t.match(e.details[0]?.message, /server\.address: required when DHCP serves subnets/)
  e = failure('http: {port: 9000}\nadmin: {port: 9000, listen: 0.0.0.0}\n')
  t.match(e.details[0]?.message, /admin\.port: must differ from http\.port/)
})

t.test('environment overrides', async (t) => {
  const c = parseConfig('http:\n  port: 8080\n', 'netboot.yaml', { NETBOOT_HTTP__PORT: '9090', NETBOOT_SERVER__INTERFACES: '[eth1, eth2]', NETBOOT_TOKEN: 'ignored', PATH: '/bin' })
  t.equal(c.config.http.port, 9090)
  t.same(c.config.server.interfaces, ['eth1', 'eth2'])
  let e = failure('', { NETBOOT_HTTP__PORT: 'x' })
  t.same(e.details[0], { where: 'NETBOOT_HTTP__PORT (environment)', message: 'http.port: must be integer' })
  e = failure('', { NETBOOT_HTTP__NOPE: '1' })
  t.same(e.details[0], { where: 'NETBOOT_HTTP__NOPE (environment)', message: 'http.nope: unknown key' })
  e = failure('data_dir: /srv\n', { NETBOOT_DATA_DIR__X: '1' })
  t.match(e.details[0]?.message, /'data_dir' is not a section/)
})

t.test('missing file', async (t) => {
  t.throws(() => loadConfig('/nonexistent/netboot.yaml'), { code: 'CONFIG_NOT_FOUND' })
  const dir = mkdtempSync(join(tmpdir(), 'nbcfg-'))
  writeFileSync(join(dir, 'n.yaml'), 'data_dir: /srv/netboot\n')
  t.equal(loadConfig(join(dir, 'n.yaml'), {}).dbPath, '/srv/netboot/netboot.db')
})
