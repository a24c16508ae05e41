/**
 * `netboot image add --uki` and `image show` against a real `netboot serve` on
 * loopback (the built CLI in dist/: `npx tsc -p tsconfig.json` first): the UKI is
 * uploaded by content, measured by the server (the Authenticode digest equals
 * `pesign --hash`), listed, and named in the node's boot script; a file that is not
 * a UKI is refused with IMAGE_UKI_INVALID and nothing is registered.
 */
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildUki } from '../../server/images/uki.js'
import { freePort, netboot, startServe } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'
import { e2eAssets, need, needStub, pesignHash } from './pe-helpers.js'

t.test('image add --uki, image show, boot show', async (t) => {
  need('objcopy', 'binutils')
  needStub()
  const { vmlinuz, initrd } = e2eAssets()
  const dir = tempDir(t, 'netboot-uki-cli-')
  const uki = await buildUki({ kernel: vmlinuz, initrd, cmdline: 'console=ttyS0', output: join(dir, 'uki.efi') })
  const [adminPort, httpPort] = [await freePort(), await freePort()]
  const cfg = join(dir, 'netboot.yaml')
  writeFileSync(cfg, `data_dir: ${dir}/data\nadmin: {port: ${adminPort}}\nhttp: {listen: 127.0.0.1, port: ${httpPort}}\nserver: {address: 172.16.0.254, public_url: 'http://172.16.0.254:8080'}\ntftp: {enabled: false}\n`)
  const c = ['-c', cfg]
  const token = JSON.parse((await netboot([...c, 'token', 'create', '--local', 'ci', '--json'])).stdout).value as string
  const env = { NETBOOT_TOKEN: token }
  await startServe(t, c, `http://127.0.0.1:${adminPort}`)

  writeFileSync(join(dir, 'not-a-uki'), 'plain text, not a PE image\n')
  let r = await netboot([...c, 'image', 'add', 'compute', '--kernel', vmlinuz, '--initrd', initrd, '--uki', join(dir, 'not-a-uki'), '--image-version', '0'], env)
  t.equal(r.code, 1)
  t.match(r.stderr, /IMAGE_UKI_INVALID: the UKI [0-9a-f]{64}: not a PE image/)
  t.match((await netboot([...c, 'image', 'list', '--json'], env)).stdout, /^\[\]/, 'nothing registered')

  r = await netboot([...c, 'image', 'add', 'compute', '--kernel', vmlinuz, '--initrd', initrd, '--uki', uki.path, '--image-version', '1'], env)
  t.equal(r.code, 0, r.stderr)
  const ukiSha = createHash('sha256').update(readFileSync(uki.path)).digest('hex')
  const pcr4 = pesignHash(uki.path)
  r = await netboot([...c, 'image', 'show', 'compute'], env)
  t.match(r.stdout, `  uki     sha256:${ukiSha}`)
  t.match(r.stdout, `PCR 4 (Authenticode) sha256:${pcr4}`)
  const json = JSON.parse((await netboot([...c, '--json', 'image', 'show', 'compute'], env)).stdout) as { ukiSha256: string; ukiAuthenticode: { sha1: string; sha256: string } }[]
  t.match(json[0], { ukiSha256: ukiSha, ukiAuthenticode: { sha256: pcr4, sha1: pesignHash(uki.path, 'sha1') } })

  t.equal((await netboot([...c, 'node', 'add', 'nid001', '--mac', '02:00:00:00:30:01'], env)).code, 0)
  t.equal((await netboot([...c, 'boot', 'set', 'default', '--image', 'compute'], env)).code, 0)
  r = await netboot([...c, 'boot', 'show', 'nid001'], env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, `kernel --name uki.efi http://172.16.0.254:8080/images/${ukiSha}/uki.efi `)
  t.match(r.stdout, 'iseq ${platform} efi && goto boot_uki ||')
})
