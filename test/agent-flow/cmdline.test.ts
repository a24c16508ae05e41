/** agent/cmdline.ts: the kernel command line, split as the kernel splits it and read strictly. */
import t from 'tap'
import { parseCmdline, splitCmdline, parseServerUrl } from '../../agent/cmdline.js'
import { isAgentError } from '../../agent/errors.js'

const D = 'a'.repeat(64)
const BOOT = `netboot.server=http://10.0.0.1:8080 netboot.node=nid001 netboot.image=compute@sha256:${D} netboot.mode=boot`

t.test('what the server composes parses (server/boot/cmdline.ts netbootTokens)', async (t) => {
  const c = parseCmdline(`BOOT_IMAGE=vmlinuz initrd=initrd.img console=tty0 console=ttyS0,115200 ip=dhcp rd.neednet=1 quiet ${BOOT}\n`)
  t.same(c, { server: 'http://10.0.0.1:8080', mode: 'boot', node: 'nid001', image: { name: 'compute', sha256: D }, consoles: ['tty0', 'ttyS0,115200'] })
  const d = parseCmdline(`netboot.server=https://boot.example.org/netboot/ netboot.image=discovery@sha256:${D} netboot.mode=discover rd.shell=0`)
  t.same(d, { server: 'https://boot.example.org/netboot', mode: 'discover', image: { name: 'discovery', sha256: D }, shell: false, consoles: [] })
})

t.test('rd.shell follows dracut getargbool; the last one wins', async (t) => {
  for (const [arg, want] of [['rd.shell', true], ['rd.shell=1', true], ['rd.shell=yes', true], ['rd.shell=on', true], ['rd.shell=0', false], ['rd.shell=no', false], ['rd.shell=off', false], ['rd.shell rd.shell=0', false], ['rd.shell=0 rd.shell', true]] as const) {
    t.equal(parseCmdline(`${BOOT} ${arg}`).shell, want, arg)
  }
  t.equal(parseCmdline(BOOT).shell, undefined, 'absent: the hook’s default (no shell)')
})

t.test('kernel splitting: quotes, "--", NUL separators', async (t) => {
  t.same(splitCmdline('a="b c" "d=e f" g -- netboot.mode=x'), [{ key: 'a', value: 'b c' }, { key: 'd', value: 'e f' }, { key: 'g' }])
  t.same(splitCmdline('x=1\0y=2\n'), [{ key: 'x', value: '1' }, { key: 'y', value: '2' }])
  t.same(parseCmdline(`${BOOT} -- netboot.bogus=1`).mode, 'boot', 'what follows -- is init’s, not ours')
})

t.test('strict: every problem is named, in one error', async (t) => {
  const rows: [string, RegExp][] = [
    ['', /netboot\.server: missing.*netboot\.mode: missing/],
    [`${BOOT} netboot.node=nid002`, /netboot\.node: given more than once/],
    [`${BOOT} netboot.tcti=x`, /netboot\.tcti: unknown parameter \(netboot reads netboot\.server, netboot\.node, netboot\.image, netboot\.mode\)/],
    [BOOT.replace('http://10.0.0.1:8080', 'ftp://h'), /netboot\.server=ftp:\/\/h: scheme ftp/],
    [BOOT.replace('http://10.0.0.1:8080', 'http://u:p@h'), /credentials in the URL/],
    [BOOT.replace('http://10.0.0.1:8080', 'http://h/?a=1'), /a query or fragment/],
    [BOOT.replace('http://10.0.0.1:8080', 'not a url'), /netboot\.server=not: not a URL/],
    [BOOT.replace(`sha256:${D}`, `sha256:${D.toUpperCase()}`), /not NAME@sha256:<64 lower-case hex digits>/],
    [BOOT.replace(`@sha256:${D}`, `@${D}`), /netboot\.image=compute@a+: not NAME@sha256/],
    [BOOT.replace('nid001', 'nid_001'), /netboot\.node=nid_001: not a host name label/],
    [BOOT.replace('netboot.mode=boot', 'netboot.mode=install'), /netboot\.mode=install: not boot or discover/],
    [BOOT.replace(' netboot.node=nid001', ''), /netboot\.node: missing \(required when netboot\.mode=boot\)/],
    [BOOT.replace(` netboot.image=compute@sha256:${D}`, ''), /netboot\.image: missing/],
    [BOOT.replace('netboot.mode=boot', 'netboot.mode=discover'), /netboot\.node: not used when netboot\.mode=discover/],
    [`${BOOT} netboot.node`, /netboot\.node: given more than once/],
    [BOOT.replace('netboot.node=nid001', 'netboot.node='), /netboot\.node: needs a value/],
    [`${BOOT} rd.shell=maybe`, /rd\.shell=maybe: not a boolean/],
  ]
  for (const [line, re] of rows) {
    try {
      parseCmdline(line)
      t.fail(`accepted: ${line}`)
    } catch (e) {
      t.ok(isAgentError(e, 'AGENT_CMDLINE_INVALID') && e.failure === 'usage', `refused: ${line.slice(0, 60)}`)
      t.match((e as Error).message, re)
      t.notMatch((e as Error).message, /\n/, 'one line')
    }
  }
})

t.test('server URLs', async (t) => {
  t.equal(parseServerUrl('http://h:8080///'), 'http://h:8080')
  t.equal(parseServerUrl('HTTPS://H.example/a/b/'), 'https://h.example/a/b')
  t.same(parseServerUrl('http://h#x'), { problem: 'a query or fragment' })
})
