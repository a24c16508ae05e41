// Pure parts of agent/tpm, no TPM needed: response-code names (checked against
// tpm2-tss's own headers), EK certificate NV unwrapping, the error catalogue, the
// lifecycle transitions, and the message when the addon is not built.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeRc, ekCertFromNv, rcName } from '../../agent/tpm/index.js'
import { TPM_ERROR_CODES, TpmError, fromNative } from '../../agent/tpm/errors.js'
import { transition } from '../../agent/tpm/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const AGENT_TPM = join(here, '..', '..', 'agent', 'tpm')
const FIXTURES = join(here, '..', 'fixtures', 'agent')
const TSS_HEADERS = '/usr/include/tss2'

t.test('rcName: format-one codes carry the handle, session or parameter they refer to', async (t) => {
  t.equal(rcName(0x000001df), 'TPM2_RC_INTEGRITY (parameter 1)')
  t.equal(rcName(0x000002d5), 'TPM2_RC_SIZE (parameter 2)')
  t.equal(rcName(0x0000018b), 'TPM2_RC_HANDLE (handle 1)')
  t.equal(rcName(0x0000098e), 'TPM2_RC_AUTH_FAIL (session 1)')
  t.equal(rcName(0x0000008b), 'TPM2_RC_HANDLE')
  t.equal(rcName(0x00000101), 'TPM2_RC_FAILURE')
  t.equal(rcName(0x00000902), 'TPM2_RC_OBJECT_MEMORY')
  t.equal(rcName(0x00000922), 'TPM2_RC_RETRY')
  t.equal(rcName(0x000a000a), 'TSS2_TCTI_RC_IO_ERROR')
  t.equal(rcName(0x00070018), 'TSS2_ESYS_RC_BAD_TR')
  t.equal(rcName(0x000c0101), 'TPM2_RC_FAILURE', 'TPM codes relayed by a resource manager')
  t.equal(rcName(0x0000001e), 'TPM 1.2 response 0x001e')
  t.equal(rcName(0), 'TPM2_RC_SUCCESS')
  t.match(describeRc(0x00ff0001), { layer: 'LAYER_255', name: /^TSS2_LAYER_255_RC_GENERAL_FAILURE$/ })
})

t.test('rcName knows every TPM2_RC_* and TSS2_BASE_RC_* constant of the installed tpm2-tss headers', async (t) => {
  if (!existsSync(join(TSS_HEADERS, 'tss2_tpm2_types.h'))) {
    t.fail(`${TSS_HEADERS} missing: apt-get install -y libtss2-dev`)
    return
  }
  const types = readFileSync(join(TSS_HEADERS, 'tss2_tpm2_types.h'), 'utf8')
  const bases: Record<string, number> = { VER1: 0x100, FMT1: 0x080, WARN: 0x900 }
  let n = 0
  for (const m of types.matchAll(/^#define (TPM2_RC_\w+)\s+\(\(TPM2_RC\)\s*\(TPM2_RC_(VER1|FMT1|WARN)\s*\+\s*(0x[0-9A-Fa-f]+)\)\)/gm)) {
    const value = bases[m[2]!]! + Number(m[3])
    if (rcName(value) !== m[1]) t.fail(`${m[1]} = 0x${value.toString(16)} is named ${rcName(value)}`)
    n++
  }
  t.ok(n > 90, `${n} TPM2_RC_* constants checked`)
  const common = readFileSync(join(TSS_HEADERS, 'tss2_common.h'), 'utf8')
  let k = 0
  for (const m of common.matchAll(/^#define TSS2_BASE_RC_(\w+)\s+(\d+)U/gm)) {
    const name = rcName(0x00070000 + Number(m[2]))
    if (name !== `TSS2_ESYS_RC_${m[1]}`) t.fail(`TSS2_BASE_RC_${m[1]} is named ${name}`)
    k++
  }
  t.ok(k > 40, `${k} TSS2_BASE_RC_* constants checked`)
})

t.test('ekCertFromNv: DER as stored, padded, or behind the 10 01 00 ‖ len header', async (t) => {
  const nv = readFileSync(join(FIXTURES, 'ekcert-rsa.nv'))
  const plain = ekCertFromNv(nv)
  t.match(plain, { ok: true, prefixed: false, padding: 0 }, 'swtpm stores the bare DER')
  if (!plain.ok) return
  const der = plain.der
  t.match(ekCertFromNv(Buffer.concat([der, Buffer.alloc(200, 0xff)])), { ok: true, padding: 200 }, '0xFF padding')
  t.match(ekCertFromNv(Buffer.concat([der, Buffer.alloc(7)])), { ok: true, padding: 7 }, 'zero padding')
  const header = Buffer.from([0x10, 0x01, 0x00, der.length >> 8, der.length & 0xff])
  const prefixed = ekCertFromNv(Buffer.concat([header, der, Buffer.alloc(30, 0xff)]))
  t.match(prefixed, { ok: true, prefixed: true, padding: 30 })
  t.ok(prefixed.ok && prefixed.der.equals(der), 'the same DER')
  t.match(ekCertFromNv(der.subarray(0, der.length - 1)), { ok: false, reason: /claims \d+ bytes but \d+ are stored/ }, 'truncated')
  t.match(ekCertFromNv(Buffer.from([0xff, 0xff, 0xff])), { ok: false, reason: /not a DER SEQUENCE/ }, 'an erased index')
  t.match(ekCertFromNv(Buffer.alloc(0)), { ok: false, reason: /shorter than a DER header/ })
  t.match(ekCertFromNv(Buffer.from([0x30, 0x80, 0, 0])), { ok: false, reason: /indefinite/ })
  t.match(ekCertFromNv(Buffer.from([0x30, 0x05, 1, 2, 3, 4, 5])), { ok: true, padding: 0 }, 'short-form length')
  // A header that claims less than the DER needs.
  t.match(ekCertFromNv(Buffer.concat([Buffer.from([0x10, 0x01, 0x00, 0x00, 0x10]), der])), { ok: false })
})

t.test('fromNative: TSS failures become TpmErrors named by command, symbol and text', async (t) => {
  const native = Object.assign(new Error('Esys_Quote: tpm:handle(1):the handle is not correct for the use (0x0000018b)'), {
    code: '0x0000018b', rc: 0x18b, command: 'Esys_Quote', rcText: 'tpm:handle(1):the handle is not correct for the use',
  })
  const e = fromNative('quote', native)
  t.ok(e instanceof TpmError)
  t.match(e, {
    name: 'TpmError', code: '0x0000018b', rc: 0x18b, command: 'Esys_Quote', rcName: 'TPM2_RC_HANDLE (handle 1)',
    message: 'Esys_Quote: TPM2_RC_HANDLE (handle 1): tpm:handle(1):the handle is not correct for the use (0x0000018b) in quote()',
  })
  t.equal((e as TpmError).cause, native)
  t.match(fromNative('pcrRead', Object.assign(new Error('no values'), { code: 'ERR_TPM_PCR_UNAVAILABLE' })), { name: 'TpmError', code: 'ERR_TPM_PCR_UNAVAILABLE', message: 'pcrRead(): no values' })
  const te = Object.assign(new TypeError('bad'), { code: 'ERR_INVALID_ARG_VALUE' })
  t.equal(fromNative('quote', te), te, 'argument errors stay TypeErrors')
})

t.test('every error code the addon or the wrapper can produce is in the catalogue, and only those', async (t) => {
  const sources = [
    ...readdirSync(join(AGENT_TPM, 'native')).filter((f) => f.endsWith('.c')).map((f) => join(AGENT_TPM, 'native', f)),
    ...readdirSync(AGENT_TPM).filter((f) => f.endsWith('.ts') && f !== 'errors.ts').map((f) => join(AGENT_TPM, f)),
  ]
  const used = new Set<string>()
  for (const f of sources) for (const m of readFileSync(f, 'utf8').matchAll(/["'](ERR_[A-Z_]+)["']/g)) used.add(m[1]!)
  const documented = new Set(Object.keys(TPM_ERROR_CODES))
  t.same([...used].filter((c) => !documented.has(c)).sort(), [], 'no undocumented code')
  t.same([...documented].filter((c) => !used.has(c)).sort(), [], 'no code documented but never produced')
})

t.test('lifecycle transitions', async (t) => {
  t.equal(transition('open', 'close'), 'closing')
  t.equal(transition('closing', 'closed'), 'closed')
  t.equal(transition('open', 'closed'), undefined)
  t.equal(transition('closing', 'close'), undefined)
  t.equal(transition('closed', 'close'), undefined)
})

t.test('without the built addon, open() fails with ERR_TPM_ADDON_NOT_BUILT saying how to build it', async (t) => {
  // A copy of the wrapper three levels deep in a temp dir: no build/ next to it or above it.
  const root = mkdtempSync(join(tmpdir(), 'netboot-agent-tpm-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dir = join(root, 'a', 'b', 'c')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n')
  for (const f of ['index.ts', 'errors.ts', 'rc.ts', 'ekcert.ts']) copyFileSync(join(AGENT_TPM, f), join(dir, f))
  writeFileSync(join(dir, 'probe.ts'), [
    "import { Tpm } from './index.js'",
    "Tpm.open('swtpm:path=/nonexistent').then(() => console.log('{}'), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })))",
    '',
  ].join('\n'))
  const env = { ...process.env }
  delete env.NETBOOT_TPM_ADDON
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(dir, 'probe.ts')], { cwd: join(here, '..', '..'), env, encoding: 'utf8', timeout: 60_000 })
  const e = JSON.parse(out.trim()) as { name: string; code: string; message: string }
  t.match(e, { name: 'TpmError', code: 'ERR_TPM_ADDON_NOT_BUILT' })
  t.match(e.message, /run `npm run build:agent`/)
  t.match(e.message, /libtss2-dev/)
})
