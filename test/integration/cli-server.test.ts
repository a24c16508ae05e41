/**
 * The CLI against a real `netboot serve` process on loopback, with the store on
 * disk: the foundation's done-when, end to end.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import t from 'tap'
import { freePort, netboot, startServe } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'

const bootcampFlat = fileURLToPath(new URL('../fixtures/inventory/bootcamp-flat.yaml', import.meta.url))

t.test('bootcamp import and listing from the CLI against a running server', async (t) => {
  const dir = tempDir(t)
  const [adminPort, httpPort] = [await freePort(), await freePort()]
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, `data_dir: ${dir}/data\nadmin: {port: ${adminPort}}\nhttp: {listen: 127.0.0.1, port: ${httpPort}}\nlog: {level: info}\ntftp: {enabled: false}\n`)
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const c = ['-c', cfg]

  const created = await netboot([...c, 'token', 'create', '--local', 'ci-admin', '--json'])
  t.equal(created.code, 0, created.stderr)
  const token = JSON.parse(created.stdout).value as string
  t.match(token, /^nbt_/)
  const env = { NETBOOT_TOKEN: token }

  let srv = await startServe(t, c, adminUrl)

  const noToken = await netboot([...c, 'node', 'list'])
  t.equal(noToken.code, 1)
  t.match(noToken.stderr, /AUTH_REQUIRED: no admin token/)

  const bad = await netboot([...c, 'node', 'import', '-'], env, 'nodes:\n  - name: nid001\n    mac: ec:e7:a7:05:a1:fc\n    group: compute\n    ipaddr: 172.16.0.1.5\n')
  t.equal(bad.code, 1)
  t.match(bad.stderr, /IMPORT_INVALID: stdin: 1 error, nothing imported\n  stdin:5: nodes\[0\]\.ipaddr: invalid IPv4 address '172\.16\.0\.1\.5'/)

  const imp = await netboot([...c, 'node', 'import', '--create-groups', bootcampFlat], env)
  t.equal(imp.code, 0, imp.stderr)
  t.match(imp.stdout, /created 9 \(nid\[001-009\]\)/)

  const list = await netboot([...c, 'node', 'list'], env)
  t.equal(list.code, 0)
  const lines = list.stdout.trim().split('\n')
  t.equal(lines.length, 10, 'a header and nine nodes')
  t.match(lines[0], /^NAME\s+XNAME\s+NID\s+GROUPS\s+MAC\s+IP\s+BMC_MAC\s+BMC_IP$/)
  t.match(lines[1], /^nid001\s+x1000c1s7b1n0\s+1\s+compute\s+ec:e7:a7:05:a1:fc\s+172\.16\.0\.1\s+-\s+172\.16\.0\.101$/)

  const json = await netboot([...c, '--json', 'node', 'list'], env)
  const api = await (await fetch(`${adminUrl}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } })).json() as { nodes: unknown[] }
  t.same(JSON.parse(json.stdout), api.nodes, 'the CLI shows what the API returns')

  const range = await netboot([...c, '--json', 'node', 'list', 'nid[002-003,009]'], env)
  t.same(JSON.parse(range.stdout).map((n: { name: string }) => n.name), ['nid002', 'nid003', 'nid009'])

  t.equal((await netboot([...c, 'group', 'add', 'gpu', '-d', 'GPU nodes'], env)).code, 0)
  const set = await netboot([...c, 'node', 'set', 'nid[001-002]', '--add-group', 'gpu', '--bmc-ip', 'none'], env)
  t.equal(set.code, 0, set.stderr)
  const show = await netboot([...c, 'group', 'show', 'gpu'], env)
  t.match(show.stdout, /members\s+2 nid\[001-002\]/)
  const rm = await netboot([...c, 'node', 'rm', 'nid009'], env)
  t.match(rm.stdout, /removed 1 \(nid009\)/)

  const viewer = JSON.parse((await netboot([...c, 'token', 'create', 'dash', '--role', 'viewer', '--json'], env)).stdout)
  const forbidden = await netboot([...c, 'group', 'add', 'x'], { NETBOOT_TOKEN: viewer.value })
  t.equal(forbidden.code, 1)
  t.match(forbidden.stderr, /FORBIDDEN: role 'viewer' lacks the right 'inventory:write'/)
  t.equal((await netboot([...c, 'token', 'revoke', viewer.token.id], env)).code, 0)
  t.match((await netboot([...c, 'node', 'list'], { NETBOOT_TOKEN: viewer.value })).stderr, /AUTH_INVALID: token has been revoked/)

  const audit = await netboot([...c, '--json', 'audit', 'list'], env)
  t.same(JSON.parse(audit.stdout).map((e: { action: string }) => e.action), [
    'token.create', 'group.create', 'node.import', 'group.create', 'node.update', 'node.delete', 'token.create', 'auth.forbidden', 'token.revoke',
  ])
  t.match((await netboot([...c, 'audit', 'verify'], env)).stdout, /audit log ok: 9 entries verified/)
  t.notMatch(srv.log(), new RegExp(token.slice(15)), 'the token never appears in the server log')

  // graceful stop on SIGTERM
  srv.proc.kill('SIGTERM')
  t.equal(await srv.exited, 0, 'exits 0 on SIGTERM')
  t.match(srv.log(), /"msg":"netboot stopped"/)

  // data survives a restart, and a kill -9
  srv = await startServe(t, c, adminUrl)
  t.equal((await netboot([...c, 'node', 'add', 'head', '--mac', '02:00:00:00:00:fe', '--ip', '172.16.0.250'], env)).code, 0)
  srv.proc.kill('SIGKILL')
  await srv.exited
  srv = await startServe(t, c, adminUrl)
  const after = JSON.parse((await netboot([...c, '--json', 'node', 'list'], env)).stdout) as { name: string }[]
  t.same(after.map((n) => n.name), ['nid001', 'nid002', 'nid003', 'nid004', 'nid005', 'nid006', 'nid007', 'nid008', 'head'])
  srv.proc.kill('SIGTERM')
  t.equal(await srv.exited, 0)

  // audit verify on the stopped server's database, before and after tampering
  t.equal((await netboot([...c, 'audit', 'verify', '--local'])).code, 0)
  const db = new Database(join(dir, 'data', 'netboot.db'))
  db.exec('DROP TRIGGER audit_log_no_update')
  db.prepare("UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 3").run()
  db.close()
  const tampered = await netboot([...c, 'audit', 'verify', '--local'])
  t.equal(tampered.code, 1)
  t.match(tampered.stdout, /audit log BROKEN at entry 3/)
})

t.test('usage and config errors are clear', async (t) => {
  const dir = tempDir(t)
  const help = await netboot(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: netboot/)
  t.match(help.stdout, /Examples:/)
  t.equal((await netboot(['node', 'frobnicate'])).code, 2)
  const cfg = join(dir, 'bad.yaml')
  writeFileSync(cfg, 'http:\n  port: 8080\n  prot: 1\n')
  const r = await netboot(['-c', cfg, 'config', 'check'])
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`CONFIG_INVALID: .*\n  ${cfg.replaceAll('/', '\\/')}:3: http\\.prot: unknown key`))
  const missing = await netboot(['-c', join(dir, 'nope.yaml'), 'serve'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /CONFIG_NOT_FOUND/)
  const unreachable = await netboot(['--url', `http://127.0.0.1:${await freePort()}`, 'node', 'list'], { NETBOOT_TOKEN: 'nbt_x' })
  t.match(unreachable.stderr, /cannot reach the netboot server/)
})

t.test('cloud-init payloads as the seed writes them, and images with boot configuration, from the CLI', async (t) => {
  const dir = tempDir(t)
  const [adminPort, httpPort] = [await freePort(), await freePort()]
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, `data_dir: ${dir}/data\nadmin: {port: ${adminPort}}\nhttp: {listen: 127.0.0.1, port: ${httpPort}}\nserver: {address: 172.16.0.254, public_url: 'http://172.16.0.254:8080'}\ntftp: {enabled: false}\n`)
  const c = ['-c', cfg]
  const token = JSON.parse((await netboot([...c, 'token', 'create', '--local', 'ci', '--json'])).stdout).value as string
  const env = { NETBOOT_TOKEN: token }
  const srv = await startServe(t, c, `http://127.0.0.1:${adminPort}`)
  t.equal((await netboot([...c, 'node', 'import', '--create-groups', bootcampFlat], env)).code, 0)

  const fx = (f: string): string => fileURLToPath(new URL(`../fixtures/cloudinit/bootcamp/${f}`, import.meta.url))
  let r = await netboot([...c, 'cloud-init', 'set', '-f', fx('compute.yaml')], env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /stored group compute/)
  r = await netboot([...c, 'cloud-init', 'set', 'nid001', '-f', fx('nid001.yaml')], env)
  t.equal(r.code, 0, r.stderr)
  r = await netboot([...c, 'cloud-init', 'set', '--secure', '-f', fx('compute-secure.yaml')], env)
  t.match(r.stdout, /stored secure group compute/)
  const plain = await netboot([...c, 'cloud-init', 'show', 'nid002', '--doc', 'user-data'], env)
  t.match(plain.stdout, /^#cloud-config/)
  t.notMatch(plain.stdout, /munge\.key/)
  const secure = await netboot([...c, 'cloud-init', 'show', 'nid002', '--secure', '--doc', 'user-data'], env)
  t.match(secure.stdout, /munge\.key/)
  const served = await fetch(`http://127.0.0.1:${httpPort}/cloud-init/nid002/user-data`)
  t.equal(await served.text(), plain.stdout.replace(/\n$/, ''), 'the CLI shows what the node endpoint serves')
  const bad = await netboot([...c, 'cloud-init', 'set', 'compute', '-f', '-'], env, 'name: compute\ncloud-init:\n  userdata:\n    runcmd: 3\n')
  t.equal(bad.code, 1)
  t.match(bad.stderr, /CLOUDINIT_INVALID[\s\S]*cloud-init schema/)

  const files = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }
  writeFileSync(files.kernel, 'kernel '.repeat(5000))
  writeFileSync(files.initrd, 'initrd '.repeat(5000))
  r = await netboot([...c, 'image', 'add', 'compute', '--kernel', files.kernel, '--initrd', files.initrd, '--image-version', '1', '--params', 'console=ttyS0'], env)
  t.equal(r.code, 0, r.stderr)
  r = await netboot([...c, 'boot', 'set', 'compute', '--image', 'compute', '--params', 'loglevel=3'], env)
  t.match(r.stdout, /group\s+compute\s+compute\s+loglevel=3/)
  r = await netboot([...c, 'boot', 'set', 'nid[001-002]', '--params', 'debug'], env)
  t.equal(r.stdout.trim().split('\n').length, 3, 'one configuration per node of the range')
  const script = await netboot([...c, 'boot', 'show', 'nid001'], env)
  t.match(script.stdout, /^#!ipxe/)
  t.match(script.stdout, /console=ttyS0 loglevel=3 debug netboot\.server=http:\/\/172\.16\.0\.254:8080 netboot\.node=nid001/)
  r = await netboot([...c, 'image', 'rm', 'compute'], env)
  t.match(r.stderr, /IMAGE_IN_USE/)
  srv.proc.kill('SIGTERM')
  t.equal(await srv.exited, 0)
})
