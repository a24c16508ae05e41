import t from 'tap'
import { ipxeInt, ipxeLabel, ipxeText, ipxeUrl, isIpxeSafe } from '../../server/boot/ipxe-value.js'
import { parseTemplate, renderTemplate, type TemplateContext } from '../../server/boot/template.js'

const w = (s: string) => ipxeLabel(s, 't')

t.test('values, sections and standalone lines', async (t) => {
  const tpl = parseTemplate('x', [
    '#!ipxe',
    '{{! a comment line disappears }}',
    'echo {{a}} and {{ a }}',
    '  {{#items}}',
    'item {{name}} of {{a}} at {{i}}',
    '  {{/items}}',
    'end {{! inline comment }}',
    '',
  ].join('\n'))
  const out = renderTemplate(tpl, { a: w('A'), items: [{ name: w('one'), i: ipxeInt(0, 'i', 0, 9) }, { name: w('two'), i: ipxeInt(1, 'i', 0, 9), a: w('shadow') }] })
  t.equal(out, '#!ipxe\necho A and A\nitem one of A at 0\nitem two of shadow at 1\nend \n')
  t.equal(renderTemplate(tpl, { a: w('A'), items: [] }), '#!ipxe\necho A and A\nend \n', 'an empty list renders nothing')
})

t.test('only checked values render', async (t) => {
  const tpl = parseTemplate('x', 'echo {{a}}\n')
  t.throws(() => renderTemplate(tpl, {}), { code: 'BOOT_TEMPLATE_INVALID', message: /x:1: field a is missing/ })
  t.throws(() => renderTemplate(tpl, { a: 'raw' as unknown as TemplateContext[string] }), { code: 'BOOT_TEMPLATE_INVALID', message: /not a checked iPXE value/ })
  t.throws(() => renderTemplate(tpl, { a: { text: 'forged', kind: 'label' } as unknown as TemplateContext[string] }), { code: 'BOOT_TEMPLATE_INVALID' }, 'a look-alike object is not a checked value')
  t.throws(() => renderTemplate(parseTemplate('x', '{{#a}}{{/a}}'), { a: w('x') }), { message: /needs a list/ })
  t.notOk(isIpxeSafe({ text: 'x', kind: 'label' }))
  t.ok(isIpxeSafe(ipxeText('hello world', 't')))
})

t.test('parse errors name file and line', async (t) => {
  t.throws(() => parseTemplate('f.tpl', 'a\n{{#s}}\nb'), { message: /f\.tpl:2: \{\{#s\}\} is never closed/ })
  t.throws(() => parseTemplate('f.tpl', '{{/s}}'), { message: /closes nothing/ })
  t.throws(() => parseTemplate('f.tpl', '{{#a}}{{/b}}'), { message: /closes \{\{#a\}\}/ })
  t.throws(() => parseTemplate('f.tpl', 'a\nb {{x-y}}'), { message: /f\.tpl:2: bad field name/ })
  t.throws(() => parseTemplate('f.tpl', 'set u ${{x}}'), { message: /right after '\$'/ })
  t.throws(() => parseTemplate('f.tpl', 'echo {{x}}{y}'), { message: /right before '\{'/ })
  t.throws(() => parseTemplate('f.tpl', 'echo {{'), { message: /stray/ })
})

t.test('value checks', async (t) => {
  t.equal(ipxeUrl('http://h:8080/a/b?c=d&e=f', 'u').text, 'http://h:8080/a/b?c=d&e=f')
  t.equal(ipxeUrl('https://[fd00::1]/x%20y', 'u').text, 'https://[fd00::1]/x%20y')
  t.throws(() => ipxeUrl('HTTP:x', 'u'))
  t.throws(() => ipxeInt(5, 'n', 0, 4))
  t.throws(() => ipxeText('x'.repeat(300), 'r'), { message: /longer than 256/ })
  t.equal(ipxeText('what $ a -n thing', 'r').text, 'what $ a -n thing', 'a lone $ and a leading - are harmless after a fixed word')
})
