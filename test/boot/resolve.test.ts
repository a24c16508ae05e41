import t from 'tap'
import { composeCmdline } from '../../server/boot/cmdline.js'
import { resolveBootConfig, scopesFor, withImageDefaults, type BootConfigEntry } from '../../server/boot/resolve.js'

const configs: Record<string, BootConfigEntry> = {
  default: { image: 'base', params: 'console=ttyS0,115200 ip=dhcp' },
  'group:compute': { image: 'compute', params: 'selinux=0 rd.shell' },
  'group:gpu': { image: 'gpu', params: 'nomodeset selinux=1' },
  'group:rack1': { params: 'console=tty1' },
  'group:empty': { image: '', params: '  ' },
  'node:n-special': { image: 'debug', params: '-rd.shell rd.debug' },
}

t.test('resolution table', async (t) => {
  const table: [what: string, groups: string[], name: string, image: string | undefined, imageFrom: string | undefined, paramsFrom: string[]][] = [
    ['default only', [], 'n1', 'base', 'default', ['default']],
    ['one group overrides default', ['compute'], 'n1', 'compute', 'group:compute', ['default', 'group:compute']],
    ['first group wins', ['gpu', 'compute'], 'n1', 'gpu', 'group:gpu', ['default', 'group:compute', 'group:gpu']],
    ['first group wins, other order', ['compute', 'gpu'], 'n1', 'compute', 'group:compute', ['default', 'group:gpu', 'group:compute']],
    ['a group with params only leaves the image to the next', ['rack1', 'compute'], 'n1', 'compute', 'group:compute', ['default', 'group:compute', 'group:rack1']],
    ['empty strings count as unset', ['empty'], 'n1', 'base', 'default', ['default']],
    ['unknown group contributes nothing', ['nope', 'gpu'], 'n1', 'gpu', 'group:gpu', ['default', 'group:gpu']],
    ['node overrides everything', ['gpu', 'compute'], 'n-special', 'debug', 'node:n-special', ['default', 'group:compute', 'group:gpu', 'node:n-special']],
    ['repeated group counts once, at its first position', ['gpu', 'compute', 'gpu'], 'n1', 'gpu', 'group:gpu', ['default', 'group:compute', 'group:gpu']],
  ]
  for (const [what, groups, name, image, imageFrom, paramsFrom] of table) {
    const r = resolveBootConfig({ name, groups }, configs)
    t.equal(r.image, image, `${what}: image`)
    t.equal(r.sources.image, imageFrom, `${what}: image source`)
    t.same(r.sources.params, paramsFrom, `${what}: parameter layers, lowest first`)
    t.same(r.params.map((p) => p.scope), paramsFrom)
  }
})

t.test('no configuration at all', async (t) => {
  const r = resolveBootConfig({ name: 'n1', groups: ['a'] }, new Map())
  t.same(r, { image: undefined, params: [], sources: { image: undefined, params: [] } })
})

t.test('a Map works like a record', async (t) => {
  t.same(resolveBootConfig({ name: 'n1', groups: ['gpu', 'compute'] }, new Map(Object.entries(configs))), resolveBootConfig({ name: 'n1', groups: ['gpu', 'compute'] }, configs))
})

t.test('inherited properties of a record are not scopes', async (t) => {
  const r = resolveBootConfig({ name: 'n1', groups: ['constructor', '__proto__'] }, configs)
  t.equal(r.image, 'base')
})

t.test('scope order', async (t) => {
  t.same(scopesFor({ name: 'n', groups: ['a', 'b', 'c'] }), ['default', 'group:c', 'group:b', 'group:a', 'node:n'])
})

t.test('end to end with composition: first group beats later groups token by token', async (t) => {
  const r = resolveBootConfig({ name: 'n-special', groups: ['gpu', 'compute', 'rack1'] }, configs)
  const layers = withImageDefaults('debug', 'ro quiet', r)
  t.same(layers.map((l) => l.scope), ['image:debug', 'default', 'group:rack1', 'group:compute', 'group:gpu', 'node:n-special'])
  const c = composeCmdline(layers, { server: 'http://h', node: 'n-special' })
  t.equal(c.cmdline, 'ro quiet console=ttyS0,115200 ip=dhcp console=tty1 selinux=1 nomodeset rd.debug netboot.server=http://h netboot.node=n-special')
  t.same(withImageDefaults('x', undefined, r).map((l) => l.scope)[0], 'default', 'no image layer without image parameters')
})
