/**
 * Interop with real clients (tftp-hpa, curl, atftp) on loopback. These tools
 * are required: a missing one fails the suite (apt-get install tftp-hpa atftp curl).
 */

import { chmod, readFile, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { atftpGet, atftpPut, CLIENT_TOOLS, curlGet, curlPut, tftpHpaGet, tftpHpaInteractive, tftpHpaPut, type ClientRun } from './clients.js'
import { memoryLogger, MODES, pseudoRandomBytes, requireTools, sha256, startServer, tempDir, waitFor, writeFiles } from './helpers.js'

const FILES: Record<string, Buffer> = {
  'small.bin': pseudoRandomBytes(1000, 1),
  'one-byte': Buffer.from('x'),
  empty: Buffer.alloc(0),
  'exact512.bin': pseudoRandomBytes(512 * 8, 2),
  'exact1468.bin': pseudoRandomBytes(1468 * 5, 3),
  'exact1428.bin': pseudoRandomBytes(1428 * 6, 4),
  'multi.bin': pseudoRandomBytes(300_001, 5),
}
const TEXT = Buffer.from('#!ipxe\nchain http://10.0.0.1/boot.ipxe\r\nbare\rcr\n\n')
const AUTOEXEC = '#!ipxe\necho generated\n'

async function setup(t: Test, worker: boolean) {
  if (!requireTools(t, CLIENT_TOOLS)) throw new Error('real TFTP clients missing')
  const root = await tempDir(t)
  const outside = await tempDir(t)
  const work = await tempDir(t)
  await writeFiles(root, { ...FILES, 'text.txt': TEXT })
  await writeFile(path.join(outside, 'secret'), 'top secret\n')
  await symlink(path.join(outside, 'secret'), path.join(root, 'escape'))
  await chmod(root, 0o755)
  const { log, lines } = memoryLogger('info')
  const { port } = await startServer(t, { root, log, virtualFiles: { 'autoexec.ipxe': () => Buffer.from(AUTOEXEC) }, worker })
  let n = 0
  const out = (): string => path.join(work, `out-${n++}`)
  return { root, work, port, out, lines }
}

function same(t: Test, r: ClientRun, want: Buffer, name: string): void {
  if (r.output === null) {
    t.fail(`${name}: no output file (exit ${r.code}): ${r.text.trim()}`)
    return
  }
  t.equal(sha256(r.output), sha256(want), `${name}: byte-identical (${want.length} octets)`)
}

for (const mode of MODES) {
  t.test(mode.name, async (t) => {
    t.test('tftp-hpa (RFC 1350, 512-octet blocks)', async (t) => {
      const { port, out } = await setup(t, mode.worker)
      for (const [name, content] of Object.entries(FILES)) {
        const r = await tftpHpaGet(port, name, out())
        t.notMatch(r.text, /Error code/, `${name}: no error`)
        same(t, r, content, `tftp ${name}`)
      }
      const v = await tftpHpaGet(port, 'multi.bin', out(), { verbose: true })
      t.match(v.text, /Received 300001 bytes/, 'verbose mode reports the size')
      same(t, v, FILES['multi.bin']!, 'tftp -v multi.bin')
      same(t, await tftpHpaGet(port, '/small.bin', out()), FILES['small.bin']!, 'leading slash')
      same(t, await tftpHpaGet(port, 'autoexec.ipxe', out()), Buffer.from(AUTOEXEC), 'virtual file')
      const it = out()
      same(t, await tftpHpaInteractive(port, ['binary', 'verbose', `get exact512.bin ${it}`], it), FILES['exact512.bin']!, 'interactive')
    })

    t.test('tftp-hpa netascii mode round-trips a text file', async (t) => {
      const { port, out } = await setup(t, mode.worker)
      const r = await tftpHpaGet(port, 'text.txt', out(), { mode: 'ascii' })
      t.notMatch(r.text, /Error code/)
      same(t, r, TEXT, 'netascii text.txt')
    })

    t.test('curl with and without --tftp-blksize', async (t) => {
      const { port, out } = await setup(t, mode.worker)
      for (const [name, content] of Object.entries(FILES)) {
        for (const blksize of [undefined, 1468, 1024, 8192]) {
          const r = await curlGet(port, name, out(), { blksize })
          t.equal(r.code, 0, `curl ${name} blksize ${blksize}: exit 0 ${r.stderr}`)
          same(t, r, content, `curl ${name} blksize ${blksize}`)
        }
      }
      const plain = await curlGet(port, 'multi.bin', out(), { noOptions: true })
      same(t, plain, FILES['multi.bin']!, 'curl --tftp-no-options')
      same(t, await curlGet(port, 'autoexec.ipxe', out(), { blksize: 1468 }), Buffer.from(AUTOEXEC), 'curl virtual file')
    })

    t.test('atftp with blksize, tsize and RFC 7440 windowsize', async (t) => {
      const { port, out, lines } = await setup(t, mode.worker)
      const variants: string[][] = [
        [],
        ['blksize 1428'],
        ['blksize 1428', 'tsize enable'],
        ['windowsize 8'],
        ['blksize 1468', 'windowsize 8', 'tsize enable'],
        ['blksize 512', 'windowsize 16', 'timeout 2'],
        ['blksize 8', 'windowsize 3'],
      ]
      for (const [name, content] of Object.entries(FILES)) {
        for (const options of variants) {
          const r = await atftpGet(port, name, out(), { options })
          t.equal(r.code, 0, `atftp ${name} [${options.join(', ')}]: exit 0 ${r.stderr}`)
          same(t, r, content, `atftp ${name} [${options.join(', ')}]`)
        }
      }
      // The server really negotiated what atftp asked for.
      await waitFor(() => lines.filter((l) => l.msg === 'tftp transfer done').length >= variants.length * Object.keys(FILES).length)
      const started = lines.filter((l) => l.msg === 'tftp transfer started')
      t.ok(started.some((l) => l.windowsize === 8 && l.blksize === 1468), 'windowsize 8 with blksize 1468 negotiated')
      t.ok(started.some((l) => l.windowsize === 3 && l.blksize === 8), 'blksize 8 windowsize 3 negotiated')
    })

    t.test('not found: every client sees ERROR 1', async (t) => {
      const { port, out } = await setup(t, mode.worker)
      t.match((await tftpHpaGet(port, 'missing.bin', out())).text, /Error code 1: file not found/)
      const c = await curlGet(port, 'missing.bin', out())
      t.equal(c.code, 68, 'curl exit 68: TFTP file not found')
      const a = await atftpGet(port, 'missing.bin', out())
      t.not(a.code, 0)
      t.match(a.text, /file not found/)
    })

    t.test('traversal attempts are refused and never leak the file', async (t) => {
      const { port, out } = await setup(t, mode.worker)
      const passwd = await readFile('/etc/passwd')
      const leaked = (r: ClientRun): boolean => r.output !== null && r.output.length > 0 && (r.output.equals(passwd) || r.output.includes('top secret'))

      for (const name of ['../etc/passwd', '../../../../../../etc/passwd', 'a/../../etc/passwd', 'escape', '//etc/passwd']) {
        const h = await tftpHpaGet(port, name, out())
        t.match(h.text, /Error code 2: access violation/, `tftp ${name}: ERROR 2`)
        t.notOk(leaked(h), `tftp ${name}: nothing leaked`)
        const c = await curlGet(port, name, out())
        t.equal(c.code, 69, `curl ${name}: exit 69 (access violation)`)
        t.notOk(leaked(c), `curl ${name}: nothing leaked`)
        const a = await atftpGet(port, name, out())
        t.not(a.code, 0, `atftp ${name}: failed`)
        t.match(a.text, /access violation/, `atftp ${name}: access violation`)
        t.notOk(leaked(a), `atftp ${name}: nothing leaked`)
      }
      // An absolute name is relative to the root: the host's /etc/passwd is not there.
      const abs = await tftpHpaGet(port, '/etc/passwd', out())
      t.match(abs.text, /Error code 1: file not found/, '/etc/passwd is <root>/etc/passwd: not found')
      t.notOk(leaked(abs))
      const absCurl = await curlGet(port, '/etc/passwd', out())
      t.equal(absCurl.code, 68)
      t.notOk(leaked(absCurl))
    })

    t.test('writes are refused: read-only server', async (t) => {
      const { port, work } = await setup(t, mode.worker)
      const local = path.join(work, 'upload.bin')
      await writeFile(local, 'data')
      t.match((await tftpHpaPut(port, local, 'up.bin')).text, /Error code 2: read-only server/)
      const c = await curlPut(port, local, 'up.bin')
      t.equal(c.code, 69, 'curl -T: exit 69 (access violation)')
      const a = await atftpPut(port, local, 'up.bin')
      t.not(a.code, 0)
      t.match(a.text, /read-only server/)
    })
  })
}
