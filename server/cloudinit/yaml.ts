/**
 * YAML 1.1 in and out, as cloud-init's PyYAML (`yaml.safe_load`) reads it.
 *
 * The `yaml` library's 1.1 schema has the right tags, but its tag objects are shared
 * per process and other code may change them (tap-yaml turns `!!timestamp` off for
 * every user in the process). netboot's own timestamp tag keeps the reading fixed:
 * a plain `2024-01-02` is a timestamp on input (payload.ts refuses it) and such a
 * string is quoted on output, whatever else is loaded.
 */
import { parseDocument, stringify, type Document, type LineCounter, type ScalarTag, type Tags } from 'yaml'
import type { JsonMap } from './data.js'

const TIMESTAMP = 'tag:yaml.org,2002:timestamp'

/** YAML 1.1 timestamp (https://yaml.org/type/timestamp.html), as PyYAML's resolver matches it. */
const TIMESTAMP_RE = /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:t|T|[ \t]+)([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2}(\.[0-9]+)?)(?:[ \t]*(Z|[-+][012]?[0-9](?::[0-9]{2})?))?)?$/

const timestamp: ScalarTag = {
  tag: TIMESTAMP,
  default: true,
  test: TIMESTAMP_RE,
  identify: (v) => v instanceof Date,
  resolve: (s) => new Date(s),
  stringify: ({ value }) => value instanceof Date ? value.toISOString() : String(value),
}

function tags (base: Tags): Tags {
  return base.map((t) => typeof t === 'object' && t.tag === TIMESTAMP ? timestamp : t)
}

export function parseYaml11 (text: string, lineCounter: LineCounter): Document.Parsed {
  return parseDocument(text, { version: '1.1', customTags: tags, lineCounter, uniqueKeys: true, prettyErrors: false })
}

/** YAML that PyYAML reads back as the same value: 1.1 quoting, no aliases, no folded lines. */
export function toYaml (doc: JsonMap): string {
  return stringify(doc, { version: '1.1', customTags: tags, aliasDuplicateObjects: false, lineWidth: 0, minContentWidth: 0 })
}
