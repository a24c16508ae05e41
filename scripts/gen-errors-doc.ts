/** Rewrites the table of docs/errors.md from the catalogue in server/errors.ts (test/unit/errors.test.ts checks they agree). */
import { readFileSync, writeFileSync } from 'node:fs'
import { catalogue } from '../server/errors.js'

const path = new URL('../docs/errors.md', import.meta.url)
const head = readFileSync(path, 'utf8').split('| code | HTTP | meaning |')[0]
const rows = Object.entries(catalogue).map(([code, s]) => `| \`${code}\` | ${s.status} | ${s.summary} |`)
writeFileSync(path, `${head}| code | HTTP | meaning |\n|---|---|---|\n${rows.join('\n')}\n`)
