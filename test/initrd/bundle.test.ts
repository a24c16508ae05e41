/**
 * The agent bundle (scripts/bundle-agent.mjs, esbuild): one self-contained ESM file
 * that runs alone (copied into an empty directory: no import reaches the source tree
 * or node_modules), prints the agent's exit-code table, its usage, refuses a bad
 * command line with exit 2, and leaves the TPM addon outside (found through
 * NETBOOT_TPM_ADDON). About 3 s.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { EXIT_CODES } from '../../agent/errors.js'
import { tempDir } from '../helpers/tmp.js'

const dir = tempDir(t, 'netboot-bundle-')
const out = join(dir, 'build', 'netboot-agent.mjs')
const log = execFileSync('node', [resolve('scripts/bundle-agent.mjs'), out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const alone = join(dir, 'alone')
execFileSync('mkdir', ['-p', alone])
const bundle = join(alone, 'netboot-agent.mjs')
copyFileSync(out, bundle)
// Run with a clean environment: tap's NODE_OPTIONS (its --import hooks) must not help the bundle along.
const run = (args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, bundle, ...args], { cwd: alone, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } })

t.test('one ESM file, readable, no sources or node_modules needed', async (t) => {
  t.equal(log, '', 'nothing on stdout')
  const st = statSync(out)
  t.equal(st.mode & 0o777, 0o644)
  t.ok(st.size > 50_000 && st.size < 5_000_000, `${st.size} bytes`)
  const text = readFileSync(out, 'utf8')
  const imports = [...text.matchAll(/^\s*import\s.*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!)
  t.same(imports.filter((s) => !s.startsWith('node:')), [], `only node: built-ins are imported (${[...new Set(imports)].join(', ')})`)
  t.notMatch(text, /from ['"](\.{1,2}\/|jose)/, 'no relative or package import left')
  t.notMatch(readFileSync(out).toString('latin1'), /\x7fELF/, 'the TPM addon is not inside (the hook names it in NETBOOT_TPM_ADDON)')
  t.match(text, /NETBOOT_TPM_ADDON/, 'the addon lookup is')
})

t.test('exit-codes: the agent\'s table', async (t) => {
  const r = run(['exit-codes'])
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout, Object.entries(EXIT_CODES).map(([k, v]) => `${v} ${k}\n`).join(''))
})

t.test('--help and a bad command', async (t) => {
  const h = run(['--help'])
  t.equal(h.status, 0)
  t.match(h.stdout, /^usage: netboot-agent run \[--cmdline STRING\]/)
  const b = run(['bogus'])
  t.equal(b.status, EXIT_CODES.usage)
  t.match(b.stderr, /expected one command, run or exit-codes; got bogus/)
  const c = run(['run', '--cmdline', 'netboot.server=ftp://x netboot.mode=boot'])
  t.equal(c.status, EXIT_CODES.usage)
  t.match(c.stderr, /FAILED: kernel command line: .*scheme ftp.*\[AGENT_CMDLINE_INVALID\]; exit 2: the dracut hook reboots the node/)
})

t.test('importing the bundle runs nothing: only the program node starts runs the agent', async (t) => {
  const probe = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '--input-type=module', '-e',
    `await import(${JSON.stringify(bundle)}); console.log('imported')`], { cwd: alone, encoding: 'utf8', timeout: 30_000 })
  t.equal(probe.status, 0, probe.stderr)
  t.equal(probe.stdout, 'imported\n')
})
