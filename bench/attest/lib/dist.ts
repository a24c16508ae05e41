/**
 * The server code under test, loaded compiled from dist/ (npm run build): the
 * same JavaScript `netboot serve` runs, not tsx's transpilation of the sources
 * (docs/bench-attest.md compares the two).
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** Source files (server/, proto/) newer than their compiled .js in dist/. */
export function staleSources (): string[] {
  const out: string[] = []
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (/\.ts$/.test(e.name) && !e.name.endsWith('.d.ts')) {
        const js = join(ROOT, 'dist', relative(ROOT, p)).replace(/\.ts$/, '.js')
        let built = 0
        try { built = statSync(js).mtimeMs } catch { /* missing */ }
        if (statSync(p).mtimeMs > built) out.push(relative(ROOT, p))
      }
    }
  }
  walk(join(ROOT, 'server'))
  walk(join(ROOT, 'proto'))
  return out
}

export function build (): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' })
}

/** The compiled tree the benchmark measures: ROOT/dist, or another build (--dist, e.g. of an older commit). */
export let DIST = join(ROOT, 'dist')

async function load<T> (path: string): Promise<T> {
  return await import(pathToFileURL(join(DIST, path)).href) as T
}

export interface Dist {
  service: typeof import('../../../server/attest/service.js')
  tpm: typeof import('../../../server/attest/tpm/index.js')
  eventlog: typeof import('../../../server/attest/eventlog/index.js')
  sqlite: typeof import('../../../server/store/sqlite/sqlite-store.js')
  keys: typeof import('../../../server/tokens/keys.js')
  tokens: typeof import('../../../server/tokens/node-token.js')
  log: typeof import('../../../server/log.js')
  setup: typeof import('../../../server/attest/setup.js')
  boot: typeof import('../../../server/boot/service.js')
  script: typeof import('../../../server/boot/script.js')
}

export async function loadDist (dir?: string): Promise<Dist> {
  if (dir !== undefined) DIST = dir
  return {
    service: await load('server/attest/service.js'),
    tpm: await load('server/attest/tpm/index.js'),
    eventlog: await load('server/attest/eventlog/index.js'),
    sqlite: await load('server/store/sqlite/sqlite-store.js'),
    keys: await load('server/tokens/keys.js'),
    tokens: await load('server/tokens/node-token.js'),
    log: await load('server/log.js'),
    setup: await load('server/attest/setup.js'),
    boot: await load('server/boot/service.js'),
    script: await load('server/boot/script.js'),
  }
}
