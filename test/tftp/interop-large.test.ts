/**
 * A file past 65535 blocks at blksize 512 (> 32 MiB), fetched by real clients:
 * block numbers wrap 65535 → 0 and the file must still arrive byte-identical.
 */

import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { atftpGet, CLIENT_TOOLS, curlGet, tftpHpaGet, type ClientRun } from './clients.js'
import { memoryLogger, MODES, pseudoRandomBytes, requireTools, sha256, startServer, tempDir, waitFor } from './helpers.js'

// 65536 full blocks and a short 1000-octet one: 65537 blocks, the last numbered 1 after the wrap.
const SIZE = 512 * 65536 + 1000

for (const mode of MODES) {
  t.test(`rollover past block 65535 with tftp-hpa, curl and atftp (${mode.name})`, async (t) => {
    if (!requireTools(t, CLIENT_TOOLS)) return
    const root = await tempDir(t)
    const work = await tempDir(t)
    const big = pseudoRandomBytes(SIZE, 7)
    const want = sha256(big)
    await writeFile(path.join(root, 'big.bin'), big)
    const { log, lines } = memoryLogger('info')
    const { port } = await startServer(t, { root, log, worker: mode.worker })

    const check = (r: ClientRun, name: string): void => {
      t.equal(r.output?.length, SIZE, `${name}: size`)
      t.equal(r.output ? sha256(r.output) : null, want, `${name}: sha256 (${Math.round(r.ms)} ms)`)
    }
    const out = (n: string): string => path.join(work, n)

    const hpa = await tftpHpaGet(port, 'big.bin', out('hpa'), { timeoutMs: 90_000 })
    t.notMatch(hpa.text, /Error/)
    check(hpa, 'tftp-hpa, blksize 512')

    const curl = await curlGet(port, 'big.bin', out('curl'), { timeoutMs: 90_000 })
    t.equal(curl.code, 0, curl.stderr)
    check(curl, 'curl, blksize 512')

    const atftp = await atftpGet(port, 'big.bin', out('atftp-w'), { options: ['blksize 512', 'windowsize 16'], timeoutMs: 90_000 })
    t.equal(atftp.code, 0, atftp.stderr)
    check(atftp, 'atftp, blksize 512, windowsize 16')

    const curlBig = await curlGet(port, 'big.bin', out('curl-1468'), { blksize: 1468, timeoutMs: 90_000 })
    check(curlBig, 'curl, blksize 1468')

    await waitFor(() => lines.filter((l) => l.msg === 'tftp transfer done').length === 4)
    const done = lines.filter((l) => l.msg === 'tftp transfer done')
    t.equal(done.length, 4)
    for (const l of done) t.equal(l.bytes, SIZE, 'server counted every octet')
  })
}
