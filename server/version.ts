import { readFileSync } from 'node:fs'

/** The package version, read once from package.json beside the build. */
export const version: string = (() => {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string }).version
    } catch { /* try the next layout (source or dist) */ }
  }
  return '0.0.0'
})()
