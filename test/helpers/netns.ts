/**
 * Network namespaces for tests that cross a network: each test makes its own,
 * with private addresses that exist only there, and removes them at teardown.
 * Needs root (CI runs as root); without it the test fails, it does not skip.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import type { Test } from 'tap'

const run = promisify(execFile)

export async function sh (cmd: string, args: readonly string[]): Promise<string> {
  try {
    return (await run(cmd, args, { timeout: 30_000 })).stdout
  } catch (e) {
    const err = e as { stderr?: string; message: string }
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr ?? err.message}`)
  }
}

export interface Netns { readonly name: string; exec (cmd: string, args: readonly string[]): Promise<string>; spawn (cmd: string, args: readonly string[]): ChildProcess }

/** A fresh namespace with loopback up, deleted (with everything in it) at teardown. */
export async function netns (t: Test, label: string): Promise<Netns> {
  if (process.getuid?.() !== 0) throw new Error('this test needs root to create network namespaces (CI runs as root)')
  const name = `nbt-${label}-${randomBytes(3).toString('hex')}`
  await sh('ip', ['netns', 'add', name])
  const children: ChildProcess[] = []
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await sh('ip', ['netns', 'del', name]).catch(() => {})
  })
  await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  return {
    name,
    exec: async (cmd, args) => await sh('ip', ['netns', 'exec', name, cmd, ...args]),
    spawn: (cmd, args) => {
      const c = spawn('ip', ['netns', 'exec', name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      children.push(c)
      return c
    },
  }
}

/** A veth pair between two namespaces, each end addressed and up. */
export async function veth (a: Netns, aIf: string, aAddr: string | undefined, b: Netns, bIf: string, bAddr: string | undefined, mac?: { a?: string; b?: string }): Promise<void> {
  const tmpA = `v${randomBytes(4).toString('hex')}`
  const tmpB = `v${randomBytes(4).toString('hex')}`
  await sh('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB])
  await sh('ip', ['link', 'set', tmpA, 'netns', a.name, 'name', aIf])
  await sh('ip', ['link', 'set', tmpB, 'netns', b.name, 'name', bIf])
  if (mac?.a !== undefined) await sh('ip', ['-n', a.name, 'link', 'set', aIf, 'address', mac.a])
  if (mac?.b !== undefined) await sh('ip', ['-n', b.name, 'link', 'set', bIf, 'address', mac.b])
  if (aAddr !== undefined) await sh('ip', ['-n', a.name, 'addr', 'add', aAddr, 'dev', aIf])
  if (bAddr !== undefined) await sh('ip', ['-n', b.name, 'addr', 'add', bAddr, 'dev', bIf])
  await sh('ip', ['-n', a.name, 'link', 'set', aIf, 'up'])
  await sh('ip', ['-n', b.name, 'link', 'set', bIf, 'up'])
}
