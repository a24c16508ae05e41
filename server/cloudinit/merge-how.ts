/**
 * cloud-init's own mergers, for payloads that carry `merge_how` (or its older name
 * `merge_type`): a port of cloudinit/mergers/{__init__,m_dict,m_list,m_str}.py as
 * shipped in cloud-init 22.4 (Debian 12), documented at
 * https://cloudinit.readthedocs.io/en/22.4/topics/merging.html. A test runs the same
 * cases through the installed Python mergers and compares.
 *
 * Contract: `ciMerge(mergers, earlier, later)` returns what cloud-init returns for
 * `construct(mergers).merge(earlier, later)`, with two deliberate differences where
 * cloud-init raises a Python TypeError (appending a number to a list, appending a
 * non-string to a string): the earlier value is kept. Inputs are never modified.
 * `parseMergeHow` accepts the string form (`list(append)+dict(no_replace,recurse_list)+str()`)
 * and the list form (`[{name: list, settings: [append]}, …]` or `[[list, append], …]`);
 * it is stricter than cloud-init: unknown mergers, unknown options and a merger named
 * twice are refused instead of failing on the node or being ignored, and a merge_how
 * without `dict()` is refused because cloud-init would then drop the whole part.
 */
import { isJsonMap, put, type Json, type JsonMap } from './data.js'

export interface DictMerger {
  readonly method: 'replace' | 'no_replace'
  readonly recurseStr: boolean
  readonly recurseArray: boolean
  readonly allowDelete: boolean
}
export interface ListMerger {
  readonly method: 'append' | 'prepend' | 'replace' | 'no_replace'
  readonly recurseStr: boolean
  readonly recurseDict: boolean
  readonly recurseArray: boolean
}
export interface StrMerger { readonly append: boolean }

export interface Mergers {
  readonly dict?: DictMerger
  readonly list?: ListMerger
  readonly str?: StrMerger
}

const OPTIONS = {
  dict: ['replace', 'no_replace', 'recurse_str', 'recurse_array', 'recurse_list', 'allow_delete'],
  list: ['append', 'prepend', 'replace', 'no_replace', 'recurse_str', 'recurse_dict', 'recurse_array', 'recurse_list'],
  str: ['append'],
} as const
type MergerName = keyof typeof OPTIONS

/** `NAME_MTCH` in cloudinit/mergers/__init__.py. */
const NAME_MATCH = /^([a-zA-Z_][A-Za-z0-9_]*)\((.*?)\)$/

export type MergeHowParse = { readonly ok: true; readonly mergers: Mergers } | { readonly ok: false; readonly message: string }

export function parseMergeHow (value: Json): MergeHowParse {
  const parsed: [string, string[]][] = []
  if (typeof value === 'string') {
    for (const raw of value.split('+')) {
      const m = raw.toLowerCase().trim().replaceAll('-', '_')
      if (m === '') continue
      const match = NAME_MATCH.exec(m)
      if (match === null) return { ok: false, message: `'${raw.trim()}' is not NAME(options), e.g. list(append)` }
      parsed.push([match[1] as string, (match[2] as string).split(',').map((o) => o.trim().toLowerCase()).filter((o) => o !== '')])
    }
  } else if (Array.isArray(value)) {
    for (const item of value) {
      if (isJsonMap(item)) {
        const name = item.name
        const settings = item.settings
        if (typeof name !== 'string') return { ok: false, message: 'each entry needs name: dict, list or str' }
        if (!Array.isArray(settings) || !settings.every((s) => typeof s === 'string')) {
          return { ok: false, message: `${name}: settings must be a list of option names` }
        }
        parsed.push([name.replaceAll('-', '_').trim(), settings as string[]])
      } else if (Array.isArray(item) && item.length > 0 && item.every((s) => typeof s === 'string')) {
        parsed.push([item[0] as string, item.slice(1) as string[]])
      } else {
        return { ok: false, message: 'each entry is {name, settings} or [name, option, …]' }
      }
    }
  } else {
    return { ok: false, message: 'expected a string such as "list(append)+dict(no_replace,recurse_list)+str()" or a list of {name, settings}' }
  }

  const seen = new Map<MergerName, string[]>()
  for (const [rawName, opts] of parsed) {
    const name = rawName.replace(/^m_/, '')
    if (!Object.hasOwn(OPTIONS, name)) return { ok: false, message: `unknown merger '${rawName}' (cloud-init has dict, list, str)` }
    const known: readonly string[] = OPTIONS[name as MergerName]
    const bad = opts.filter((o) => !known.includes(o))
    if (bad.length > 0) return { ok: false, message: `${name}(): unknown option ${bad.join(', ')} (known: ${known.join(', ')})` }
    if (seen.has(name as MergerName)) return { ok: false, message: `${name}() named twice` }
    seen.set(name as MergerName, opts)
  }
  const dict = seen.get('dict')
  if (dict === undefined) return { ok: false, message: 'merge_how without dict(): cloud-init would ignore this whole part' }
  const list = seen.get('list')
  const str = seen.get('str')
  const has = (opts: readonly string[], ...names: string[]): boolean => names.some((n) => opts.includes(n))
  // The method is the first of MERGE_TYPES (in that module's order) present in the options.
  const dictMethod = (['replace', 'no_replace'] as const).find((m) => dict.includes(m)) ?? 'no_replace'
  const mergers: Mergers = {
    dict: { method: dictMethod, recurseStr: has(dict, 'recurse_str'), recurseArray: has(dict, 'recurse_array', 'recurse_list'), allowDelete: has(dict, 'allow_delete') },
    ...(list !== undefined
      ? { list: { method: (['append', 'prepend', 'replace', 'no_replace'] as const).find((m) => list.includes(m)) ?? 'replace', recurseStr: has(list, 'recurse_str'), recurseDict: has(list, 'recurse_dict'), recurseArray: has(list, 'recurse_array', 'recurse_list') } }
      : {}),
    ...(str !== undefined ? { str: { append: str.includes('append') } } : {}),
  }
  return { ok: true, mergers }
}

/** `LookupMerger.merge`: dispatch on the type of the earlier value; a type no merger handles keeps it. */
export function ciMerge (m: Mergers, source: Json, mergeWith: Json): Json {
  if (isJsonMap(source)) return m.dict === undefined ? source : onDict(m, m.dict, source, mergeWith)
  if (Array.isArray(source)) return m.list === undefined ? source : onList(m, m.list, source, mergeWith)
  if (typeof source === 'string') return m.str === undefined ? source : onStr(m.str, source, mergeWith)
  return source
}

/** m_dict.Merger._on_dict / _do_dict_replace. */
function onDict (m: Mergers, d: DictMerger, value: JsonMap, mergeWith: Json): Json {
  if (!isJsonMap(mergeWith)) return value
  const sameKey = (oldV: Json, newV: Json): Json => {
    if (d.method === 'replace') return newV
    if (Array.isArray(newV) && d.recurseArray) return ciMerge(m, oldV, newV)
    if (typeof newV === 'string' && d.recurseStr) return ciMerge(m, oldV, newV)
    if (isJsonMap(newV)) return ciMerge(m, oldV, newV) // _recurse_dict is always on
    return oldV
  }
  const out: JsonMap = { ...value }
  for (const [k, v] of Object.entries(mergeWith)) {
    if (Object.hasOwn(out, k)) {
      if (v === null && d.allowDelete) delete out[k]
      else put(out, k, sameKey(out[k] as Json, v))
    } else {
      put(out, k, v)
    }
  }
  return out
}

/** What Python's `list.extend(x)` adds for a non-list x: a string's characters, a dict's keys. */
function iterate (x: Json): Json[] | undefined {
  if (Array.isArray(x)) return x
  if (typeof x === 'string') return [...x]
  if (isJsonMap(x)) return Object.keys(x)
  return undefined
}

/** m_list.Merger._on_list. */
function onList (m: Mergers, l: ListMerger, value: Json[], mergeWith: Json): Json {
  if (l.method === 'replace' && !Array.isArray(mergeWith)) return mergeWith
  if (l.method === 'prepend' || l.method === 'append') {
    const extra = iterate(mergeWith)
    if (extra === undefined) return value
    return l.method === 'prepend' ? [...extra, ...value] : [...value, ...extra]
  }
  if (!Array.isArray(mergeWith)) return value
  const sameIndex = (oldV: Json, newV: Json): Json => {
    if (l.method === 'no_replace') return oldV
    if (Array.isArray(newV) && l.recurseArray) return ciMerge(m, oldV, newV)
    if (typeof newV === 'string' && l.recurseStr) return ciMerge(m, oldV, newV)
    if (isJsonMap(newV) && l.recurseDict) return ciMerge(m, oldV, newV)
    return newV
  }
  // Only indexes both lists have are merged: cloud-init drops the rest of the later list.
  return value.map((v, i) => i < mergeWith.length ? sameIndex(v, mergeWith[i] as Json) : v)
}

/** m_str.Merger._on_str. */
function onStr (s: StrMerger, value: string, mergeWith: Json): Json {
  if (!s.append) return mergeWith
  return typeof mergeWith === 'string' ? value + mergeWith : value
}
