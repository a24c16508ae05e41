/**
 * dracut/90netboot/netboot-lib.sh, the pre-mount hook's logic, run by a real /bin/sh
 * with a stub agent (a shell script that exits with a given code, optionally after
 * "mounting" the new root: recording it in the mount table the library reads):
 * the exit-code mapping for every code the agent has, the failure line, rd.shell,
 * the reboot, and the arguments the agent gets. About 2 s, no root needed.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'
import { EXIT_CODES } from '../../agent/errors.js'
import { tempDir } from '../helpers/tmp.js'

const LIB = resolve('dracut/90netboot/netboot-lib.sh')

interface Run { code: number; stdout: string; stderr: string; agentArgs: string[]; reboots: number; shells: string[] }

/**
 * Sources the library in sh and runs `netboot_boot SHELL NEWROOT` with a stub agent
 * whose successive exit codes are `codes` (the last repeats); a code written `0+`
 * means "exit 0 after mounting NEWROOT".
 */
function boot (t: Test, codes: readonly string[], shell: 0 | 1, extraEnv: Record<string, string> = {}): Run {
  const dir = tempDir(t, 'netboot-hook-')
  const newroot = join(dir, 'sysroot')
  mkdirSync(newroot)
  const mounts = join(dir, 'mounts')
  writeFileSync(mounts, 'proc /proc proc rw 0 0\n')
  // The exit-code table the module saves in the image (module-setup.sh), from the agent's own list.
  const libdir = join(dir, 'lib')
  mkdirSync(libdir)
  writeFileSync(join(libdir, 'exit-codes'), Object.entries(EXIT_CODES).map(([k, v]) => `${v} ${k}\n`).join(''))
  writeFileSync(join(dir, 'codes'), codes.join('\n') + '\n')
  const agent = join(dir, 'agent.sh')
  writeFileSync(agent, `#!/bin/sh
# stub agent: argv recorded, the next code from codes (the last repeats)
echo "$*" >> "${dir}/args"
n=$(cat "${dir}/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "${dir}/count"
total=$(wc -l < "${dir}/codes")
[ $n -gt $total ] && n=$total
c=$(sed -n "\${n}p" "${dir}/codes")
case "$c" in
  0+) mkdir -p "$3/proc" "$3/sys" "$3/dev"; echo "netboot-root $3 overlay rw 0 0" >> "${mounts}"; exit 0 ;;
  kill) kill -9 $$ ;;
  *) echo "netboot[stub]: FAILED with $c" >&2; exit "$c" ;;
esac
`, { mode: 0o755 })
  // NETBOOT_REBOOT and NETBOOT_SHELL name commands (the library splits them on spaces, as sh does).
  writeFileSync(join(dir, 'reboot.sh'), `#!/bin/sh\necho reboot >> "${dir}/reboots"\n`, { mode: 0o755 })
  writeFileSync(join(dir, 'shell.sh'), `#!/bin/sh\necho "$*" >> "${dir}/shells"\n`, { mode: 0o755 })
  const r = spawnSync('/bin/sh', ['-c', `. "${LIB}"; netboot_boot "${shell}" "${newroot}"; echo "returned $?"`], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      NETBOOT_NODE: '/bin/sh',
      NETBOOT_AGENT: agent,
      NETBOOT_LIBDIR: libdir,
      NETBOOT_MOUNTS: mounts,
      NETBOOT_FAIL_PAUSE: '0',
      NETBOOT_REBOOT: join(dir, 'reboot.sh'),
      NETBOOT_SHELL: join(dir, 'shell.sh'),
      ...extraEnv,
    },
    encoding: 'utf8',
    timeout: 20_000,
  })
  const lines = (f: string): string[] => { try { return readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean) } catch { return [] } }
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, agentArgs: lines('args'), reboots: lines('reboots').length, shells: lines('shells') }
}

t.test('netboot_action maps every exit code of the agent', async (t) => {
  // dash (Debian's /bin/sh, used below) and bash (the initramfs /bin/sh: dracut's base installs bash).
  const action = (code: number, shell: 0 | 1, sh = '/bin/sh'): string =>
    execFileSync(sh, ['-c', `. "${LIB}"; netboot_action "$1" "$2"`, 'sh', String(code), String(shell)], { encoding: 'utf8' }).trim()
  t.ok(Object.keys(EXIT_CODES).length >= 14, 'the agent has its table')
  for (const sh of ['/bin/sh', '/bin/bash']) {
    for (const [cls, code] of Object.entries(EXIT_CODES)) {
      const want0 = code === 0 ? 'switch' : code === 20 ? 'reboot' : 'fail'
      const want1 = code === 0 ? 'switch' : code === 20 ? 'reboot' : 'shell'
      t.equal(action(code, 0, sh), want0, `${sh}: ${code} ${cls} without rd.shell`)
      t.equal(action(code, 1, sh), want1, `${sh}: ${code} ${cls} with rd.shell`)
    }
  }
  t.equal(action(137, 0), 'fail', 'killed by a signal: a failure')
  t.equal(action(255, 1), 'shell')
})

t.test('exit 0 with the root mounted: the hook returns and nothing else happens', async (t) => {
  const r = boot(t, ['0+'], 0)
  t.match(r.stdout, /returned 0/)
  t.equal(r.reboots, 0)
  t.same(r.shells, [])
  t.equal(r.agentArgs.length, 1, 'the agent ran once')
  t.match(r.agentArgs[0], /^run --newroot \/.*\/sysroot$/, 'the agent is told dracut\'s NEWROOT')
  t.equal(r.stderr, '', 'no failure line')
})

t.test('exit 0 without a mounted root is a failure, not a switch into an empty root', async (t) => {
  const r = boot(t, ['0'], 0)
  t.match(r.stderr, /netboot: the agent exited 0 but .*sysroot is not a mounted root/)
  t.match(r.stderr, /netboot: the agent failed \(exit 1: internal\): rebooting in 0 s/)
  t.equal(r.reboots, 1)
})

t.test('exit 20: reboot, no failure line', async (t) => {
  const r = boot(t, ['20'], 0)
  t.match(r.stderr, /netboot: the agent asked for a reboot: rebooting/)
  t.notMatch(r.stderr, /failed/)
  t.equal(r.reboots, 1)
  t.same(r.shells, [])
  t.match(r.stdout, /returned 1/)
})

t.test('a failure without rd.shell: one line naming the class, then a reboot (no shell)', async (t) => {
  for (const [cls, code] of Object.entries(EXIT_CODES)) {
    if (code === 0 || code === 20) continue
    const r = boot(t, [String(code)], 0)
    const ours = r.stderr.split('\n').filter((l) => l.startsWith('netboot: '))
    t.same(ours, [`netboot: the agent failed (exit ${code}: ${cls}): rebooting in 0 s (rd.shell=1 opens the emergency shell instead)`], `exit ${code}`)
    t.equal(r.reboots, 1, `exit ${code}: reboot`)
    t.same(r.shells, [], `exit ${code}: no shell`)
  }
})

t.test('killed by a signal (e.g. out of memory): named as such', async (t) => {
  const r = boot(t, ['kill'], 0)
  t.match(r.stderr, /netboot: the agent failed \(exit 137: killed by signal 9\)/)
  t.equal(r.reboots, 1)
})

t.test('rd.shell: the emergency shell, then the agent runs again', async (t) => {
  const r = boot(t, ['8', '0+'], 1)
  t.equal(r.shells.length, 1, 'one shell')
  t.match(r.shells[0], /netboot agent failed \(exit 8: download\); leave the shell to run it again/)
  t.equal(r.agentArgs.length, 2, 'the agent ran again after the shell')
  t.equal(r.reboots, 0)
  t.match(r.stdout, /returned 0/)
})

t.test('rd.shell: a root mounted from the shell is taken as it is', async (t) => {
  const dir = tempDir(t, 'netboot-hook-')
  const mounts = join(dir, 'm')
  const newroot = join(dir, 'r')
  mkdirSync(newroot)
  writeFileSync(mounts, '')
  // The "admin" in the shell mounts the root by hand.
  const shell = join(dir, 'shell.sh')
  writeFileSync(shell, `#!/bin/sh\nmkdir -p ${newroot}/proc ${newroot}/sys ${newroot}/dev\necho "x ${newroot} tmpfs rw 0 0" >> ${mounts}\n`, { mode: 0o755 })
  const r = spawnSync('/bin/sh', ['-c', `. "${LIB}"; netboot_boot 1 "${newroot}"; echo "returned $?"`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NETBOOT_NODE: '/bin/sh', NETBOOT_AGENT: '-c', NETBOOT_MOUNTS: mounts, NETBOOT_SHELL: shell, NETBOOT_REBOOT: 'false', NETBOOT_LIBDIR: dir },
    encoding: 'utf8',
    timeout: 20_000,
  })
  // NETBOOT_AGENT=-c makes the "agent" `sh -c run --newroot DIR`: command not found, exit 127.
  t.match(r.stdout, /returned 0/)
  t.match(r.stdout + r.stderr, /not found/)
})

t.test('rd.shell: bounded; after NETBOOT_SHELL_ROUNDS shells the node reboots', async (t) => {
  const r = boot(t, ['3'], 1, { NETBOOT_SHELL_ROUNDS: '2' })
  t.equal(r.shells.length, 2)
  t.equal(r.agentArgs.length, 3)
  t.match(r.stderr, /netboot: the agent failed \(exit 3: network\) 3 times: rebooting/)
  t.equal(r.reboots, 1)
})

t.test('netboot_root_ready follows dracut\'s usable_root: a mount point with ld.so, or with proc, sys and dev', async (t) => {
  const dir = tempDir(t, 'netboot-hook-')
  const mounts = join(dir, 'mounts')
  const check = (root: string): boolean =>
    spawnSync('/bin/sh', ['-c', `. "${LIB}"; netboot_root_ready "$1"`, 'sh', root], { env: { PATH: process.env.PATH ?? '', NETBOOT_MOUNTS: mounts } }).status === 0
  const a = join(dir, 'a')
  mkdirSync(join(a, 'usr', 'lib64'), { recursive: true })
  writeFileSync(join(a, 'usr', 'lib64', 'ld-linux-x86-64.so.2'), '')
  writeFileSync(mounts, '')
  t.notOk(check(a), 'not mounted')
  writeFileSync(mounts, `r ${a} overlay rw 0 0\n`)
  t.ok(check(a), 'mounted, with ld.so')
  const b = join(dir, 'b')
  mkdirSync(join(b, 'proc'), { recursive: true })
  writeFileSync(mounts, `r ${b} overlay rw 0 0\n`)
  t.notOk(check(b), 'mounted but empty apart from proc')
  mkdirSync(join(b, 'sys'))
  mkdirSync(join(b, 'dev'))
  t.ok(check(b), 'proc, sys, dev')
})
