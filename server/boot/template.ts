/**
 * The template language of ipxe/*.ipxe.tpl: a small subset of mustache.
 *
 *   {{name}}              the text of an IpxeSafe value (ipxe-value.ts); nothing else is accepted
 *   {{#name}} … {{/name}} the body once per item of a list; an item's fields shadow outer fields
 *   {{! comment }}        for template maintainers; not rendered
 *
 * A line holding only a section tag or a comment disappears entirely (mustache's
 * "standalone" rule), so templates can be laid out one tag per line. There is
 * no escaping and no raw output: safety comes from the values themselves.
 * A placeholder directly after `$` or before `{` is refused when the template is
 * parsed, because the value could then form an iPXE `${…}` expansion with the
 * template text around it.
 */
import { NetbootError } from '../errors.js'
import { isIpxeSafe, type IpxeSafe } from './ipxe-value.js'

export interface TemplateContext {
  readonly [field: string]: IpxeSafe | readonly TemplateContext[]
}

type Node =
  | { readonly t: 'text'; readonly text: string }
  | { readonly t: 'var'; readonly name: string; readonly line: number }
  | { readonly t: 'section'; readonly name: string; readonly line: number; readonly body: readonly Node[] }

export interface Template {
  readonly name: string
  readonly nodes: readonly Node[]
}

const TAG = /\{\{\s*([#/!]?)\s*([^}]*?)\s*\}\}/g
const FIELD = /^[A-Za-z][A-Za-z0-9]*$/

function bad (template: string, line: number, message: string): never {
  const where = `${template}:${line}`
  throw new NetbootError('BOOT_TEMPLATE_INVALID', `${where}: ${message}`, [{ where, message }])
}

/** Parses a template; throws BOOT_TEMPLATE_INVALID naming the file and line. */
export function parseTemplate (name: string, source: string): Template {
  const text = source
  const lineAt = (offset: number): number => {
    let n = 1
    for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) n++
    return n
  }
  const root: Node[] = []
  const stack: { name: string; line: number; body: Node[] }[] = []
  const current = (): Node[] => stack.length > 0 ? stack[stack.length - 1]!.body : root
  let last = 0
  for (const m of text.matchAll(TAG)) {
    const at = m.index
    const line = lineAt(at)
    const kind = m[1]!
    const field = m[2]!
    let textEnd = at
    let next = at + m[0].length
    if (kind !== '') {
      // standalone tag: its line (indentation and newline included) is not output
      const lineStart = text.lastIndexOf('\n', at - 1) + 1
      const after = /^[ \t]*(?:\r?\n|$)/.exec(text.slice(next))
      if (/^[ \t]*$/.test(text.slice(lineStart, at)) && after !== null) {
        textEnd = Math.max(lineStart, last)
        next += after[0].length
      }
    }
    if (textEnd > last) current().push({ t: 'text', text: text.slice(last, textEnd) })
    last = next
    if (kind === '!') continue
    if (!FIELD.test(field)) bad(name, line, `bad field name ${JSON.stringify(field)}`)
    if (kind === '#') {
      stack.push({ name: field, line, body: [] })
    } else if (kind === '/') {
      const open = stack.pop()
      if (open === undefined || open.name !== field) bad(name, line, `{{/${field}}} closes ${open === undefined ? 'nothing' : `{{#${open.name}}}`}`)
      current().push({ t: 'section', name: open.name, line: open.line, body: open.body })
    } else {
      if (text[at - 1] === '$') bad(name, line, `{{${field}}} right after '$' could form an iPXE \${…} expansion`)
      if (text[next] === '{') bad(name, line, `{{${field}}} right before '{' could form an iPXE \${…} expansion`)
      current().push({ t: 'var', name: field, line })
    }
  }
  if (stack.length > 0) bad(name, stack[stack.length - 1]!.line, `{{#${stack[stack.length - 1]!.name}}} is never closed`)
  if (last < text.length) current().push({ t: 'text', text: text.slice(last) })
  for (const n of root) checkText(name, n)
  return { name, nodes: root }

  function checkText (tpl: string, n: Node): void {
    if (n.t === 'text' && (n.text.includes('{{') || n.text.includes('}}'))) bad(tpl, 0, `stray '{{' or '}}' in ${JSON.stringify(n.text.slice(0, 40))}`)
    if (n.t === 'section') for (const c of n.body) checkText(tpl, c)
  }
}

/** Renders a template. A missing field, or a field of the wrong shape, throws BOOT_TEMPLATE_INVALID. */
export function renderTemplate (tpl: Template, ctx: TemplateContext): string {
  let out = ''
  const walk = (nodes: readonly Node[], scopes: readonly TemplateContext[]): void => {
    for (const n of nodes) {
      if (n.t === 'text') {
        out += n.text
        continue
      }
      const v = lookup(scopes, n.name)
      if (n.t === 'var') {
        if (!isIpxeSafe(v)) bad(tpl.name, n.line, `field ${n.name} is ${v === undefined ? 'missing' : 'not a checked iPXE value'}`)
        out += v.text
      } else {
        if (!Array.isArray(v)) bad(tpl.name, n.line, `section ${n.name} needs a list`)
        for (const item of v as readonly TemplateContext[]) walk(n.body, [item, ...scopes])
      }
    }
  }
  walk(tpl.nodes, [ctx])
  return out
}

function lookup (scopes: readonly TemplateContext[], name: string): unknown {
  for (const s of scopes) if (Object.hasOwn(s, name)) return s[name]
  return undefined
}
