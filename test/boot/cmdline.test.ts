import t from 'tap'
import { checkParams, composeCmdline, parseParams, REPEATABLE_KEYS, type ParamLayer } from '../../server/boot/cmdline.js'
import { isNetbootError } from '../../server/errors.js'
import { BSS_PARAMS } from './cases.js'

const NB = { server: 'http://10.0.0.1:8080' }
const NB_TAIL = 'netboot.server=http://10.0.0.1:8080'

const layers = (...params: string[]): ParamLayer[] => params.map((p, i) => ({ scope: `layer${i}`, params: p }))

t.test('composition table', async (t) => {
  const table: [what: string, layers: string[], expected: string][] = [
    ['nothing', [], ''],
    ['one layer kept in order', ['ro quiet ip=dhcp'], 'ro quiet ip=dhcp'],
    ['whitespace of any kind separates', ['ro\tquiet\n  ip=dhcp\r\n'], 'ro quiet ip=dhcp'],
    ['key=value replaced in place by a later layer', ['root=live:http://a/r ro', 'root=live:http://b/r'], 'root=live:http://b/r ro'],
    ['same key twice in one layer: the later wins', ['selinux=0 selinux=1'], 'selinux=1'],
    ['flag deduplicated', ['ro quiet', 'quiet ro'], 'ro quiet'],
    ['flag then key=value of the same key', ['rd.shell', 'rd.shell=0'], 'rd.shell=0'],
    ['key=value then bare flag of the same key', ['quiet=1', 'quiet'], 'quiet'],
    ['console repeats: appended', ['console=ttyS0,115200', 'console=tty0'], 'console=ttyS0,115200 console=tty0'],
    ['console repeated identically: once', ['console=tty0', 'console=tty0'], 'console=tty0'],
    ['-console clears earlier consoles', ['console=ttyS0,115200 console=tty1', '-console console=tty0'], 'console=tty0'],
    ['-key=value removes exactly that token', ['console=ttyS0,115200 console=tty1', '-console=tty1'], 'console=ttyS0,115200'],
    ['-flag removes a flag', ['ro rd.shell quiet', '-rd.shell'], 'ro quiet'],
    ['-key removes key=value', ['selinux=0 ro', '-selinux'], 'ro'],
    ['removing what is not there is fine', ['ro', '-quiet -console'], 'ro'],
    ['a removal acts on earlier layers only', ['ro', '-ro ro'], 'ro'],
    ['ip= repeats (dracut: one per interface)', ['ip=eth0:dhcp', 'ip=eth1:dhcp'], 'ip=eth0:dhcp ip=eth1:dhcp'],
    ['dash and underscore spellings are different keys, later one later', ['log_buf_len=1M', 'log-buf-len=4M'], 'log_buf_len=1M log-buf-len=4M'],
    ['quoted value with spaces is one token', ['dyndbg="file foo.c +p" ro'], 'dyndbg="file foo.c +p" ro'],
    ['quoted value replaced by key', ['dyndbg="file foo.c +p"', 'dyndbg="file bar.c +p"'], 'dyndbg="file bar.c +p"'],
    ['whole token quoted', ['"foo=a b"', 'foo=c'], 'foo=c'],
    ['value with = and :', ['root=live:http://h/x?a=b ro'], 'root=live:http://h/x?a=b ro'],
    ['semicolon inside a token is plain text', ['systemd.setenv=A=x;y'], 'systemd.setenv=A=x;y'],
    ['empty layers', ['', '   ', 'ro'], 'ro'],
  ]
  for (const [what, ls, expected] of table) {
    const r = composeCmdline(layers(...ls), NB)
    t.equal(r.cmdline, expected === '' ? NB_TAIL : `${expected} ${NB_TAIL}`, what)
    t.same(r.dropped, [], `${what}: nothing dropped`)
  }
})

t.test('the BSS parameters users have today pass through unchanged', async (t) => {
  const r = composeCmdline([{ scope: 'group:compute', params: BSS_PARAMS }], NB)
  t.equal(r.cmdline, `${BSS_PARAMS} ${NB_TAIL}`)
  t.same(checkParams(BSS_PARAMS, 'group:compute'), [])
})

t.test("netboot's own parameters come last and cannot be overridden", async (t) => {
  const r = composeCmdline([
    { scope: 'image:x', params: 'ro netboot.server=http://evil/ initrd=evil.img' },
    { scope: 'node:n1', params: 'netboot.node=other -netboot.server -initrd quiet' },
  ], { server: 'http://10.0.0.1:8080', node: 'n1', image: 'compute@sha256:' + 'a'.repeat(64), mode: 'boot' })
  t.equal(r.cmdline, `ro quiet netboot.server=http://10.0.0.1:8080 netboot.node=n1 netboot.image=compute@sha256:${'a'.repeat(64)} netboot.mode=boot`)
  t.same(r.dropped.map((d) => [d.scope, d.token]), [
    ['image:x', 'netboot.server=http://evil/'], ['image:x', 'initrd=evil.img'],
    ['node:n1', 'netboot.node=other'], ['node:n1', '-netboot.server'], ['node:n1', '-initrd'],
  ], 'reserved tokens are dropped and reported')
  t.same(r.tokens.slice(-4).map((x) => x.split('=')[0]), ['netboot.server', 'netboot.node', 'netboot.image', 'netboot.mode'])
  t.equal(composeCmdline([], { server: 'http://h', mode: 'discover' }).cmdline, 'netboot.server=http://h netboot.mode=discover')
  t.throws(() => composeCmdline([], { server: 'http://h x' }), { code: 'BOOT_VALUE_INVALID' }, 'netboot values are checked too')
  t.throws(() => composeCmdline([], { server: 'http://h', node: 'a b' }), { code: 'BOOT_VALUE_INVALID' })
})

t.test('refused parameters name the layer and every problem', async (t) => {
  const bad: [string, string][] = [
    ['newline-free but tab in quotes', 'x="a\tb"'],
    ['unbalanced quote', 'x="a b'],
    ['double space in quotes', 'x="a  b"'],
    ['non-ASCII', 'x=caf\u00e9'],
    ['NUL', 'x=\u0000'],
    ['iPXE ||', 'ro || shell'],
    ['iPXE &&', 'ro && shell'],
    ['iPXE ;', 'ro ; shell'],
    ['iPXE ; inside quotes', 'x="a ; b"'],
    ['iPXE comment', 'ro #x'],
    ['iPXE comment inside quotes', 'x="a #b"'],
    ['settings expansion', 'x=${net0/ip}'],
    ['trailing $', 'x=a$'],
    ['trailing backslash', 'x=a\\'],
    ['-- hands the rest to init', 'ro -- single'],
    ['lone -', 'ro -'],
    ['--key', '--foo'],
    ['empty key', '=x'],
  ]
  for (const [what, params] of bad) {
    try {
      composeCmdline([{ scope: 'group:g', params: 'quiet' }, { scope: 'node:n', params }], NB)
      t.fail(`${what}: accepted`)
    } catch (e) {
      t.ok(isNetbootError(e, 'BOOT_PARAMS_INVALID'), `${what}: BOOT_PARAMS_INVALID`)
      if (isNetbootError(e)) t.equal(e.details[0]?.where, 'node:n', `${what}: names the layer`)
    }
    t.not(checkParams(params, 'node:n').length, 0, `${what}: checkParams reports it`)
  }
  const many = parseParams('a="x ; y" b=${z} ok', 'node:n')
  t.equal(many.problems.length, 2, 'every problem is reported, not just the first')
  t.same(many.tokens.map((x) => x.token), ['ok'])
})

t.test('checkParams also refuses reserved keys on write', async (t) => {
  t.same(checkParams('ro quiet console=ttyS0', 'default'), [])
  t.equal(checkParams('initrd=x', 'default').length, 1)
  t.equal(checkParams('netboot.node=x -netboot.server', 'default').length, 2)
})

t.test('length limit', async (t) => {
  const long = `x=${'a'.repeat(2100)}`
  t.throws(() => composeCmdline([{ scope: 'node:n', params: long }], NB), { code: 'BOOT_PARAMS_INVALID' })
  t.ok(composeCmdline([{ scope: 'node:n', params: `x=${'a'.repeat(1900)}` }], NB))
})

t.test('repeatable keys are a small documented list', async (t) => {
  t.ok(REPEATABLE_KEYS.has('console') && REPEATABLE_KEYS.has('ip'))
  t.notOk(REPEATABLE_KEYS.has('root'))
  t.ok(REPEATABLE_KEYS.size <= 16)
})
