/**
 * The Authenticode image hash (server/images/authenticode.ts): what it covers and
 * skips on hand-made images, typed errors for malformed ones, agreement with two
 * independent implementations on real files (pesign --hash; the digest sbsign
 * embeds when it signs), and a bounded mutation fuzz.
 *
 * Needs pesign, sbsigntool, openssl, binutils and systemd-boot-efi (scripts/
 * debian-packages.txt) and Debian's kernel from scripts/e2e-assets.sh; a missing
 * tool fails the test with the package to install.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { authenticodeDigest, authenticodeDigests, authenticodeRanges, parsePe, type PeErrorCode } from '../../server/images/authenticode.js'
import { buildUki } from '../../server/images/uki.js'
import { tempDir } from '../helpers/tmp.js'
import { buildPe, e2eAssets, need, needStub, pesignHash } from './pe-helpers.js'
import { fuzzPe } from './pe-fuzz-core.js'

const hex = (b: Buffer): string => b.toString('hex')
const sha = (alg: string, ...parts: Buffer[]): string => { const h = createHash(alg); for (const p of parts) h.update(p); return h.digest('hex') }
const digest = (b: Buffer, alg: 'sha1' | 'sha256' | 'sha384' | 'sha512' = 'sha256'): string => {
  const d = authenticodeDigest(b, alg)
  if (!d.ok) throw d.error
  return hex(d.value)
}

t.test('hand-made image: the hash is exactly the spec\'s byte ranges', async (t) => {
  const cert = Buffer.alloc(48, 0xc3)
  const trailing = Buffer.from('trailing data after the last section')
  const { bytes: b, checksumOffset: cs, certDirOffset: cd } = buildPe({ certTable: cert, trailing, checksum: 0x1234 })
  const pe = parsePe(b)
  if (!pe.ok) throw pe.error
  const hdr = pe.value.sizeOfHeaders
  const secs = pe.value.sections
  t.equal(secs.length, 2)
  t.same(pe.value.certTable, { offset: b.length - cert.length, size: cert.length })
  // written out independently of authenticodeRanges: headers minus CheckSum and the
  // Certificate Table entry, each section's raw data, the trailing data, no certificate
  const expected = sha('sha256', b.subarray(0, cs), b.subarray(cs + 4, cd), b.subarray(cd + 8, hdr),
    ...secs.map((s) => b.subarray(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData)), trailing)
  t.equal(digest(b), expected)
  for (const alg of ['sha1', 'sha384', 'sha512'] as const) {
    t.equal(digest(b, alg), sha(alg, b.subarray(0, cs), b.subarray(cs + 4, cd), b.subarray(cd + 8, hdr), ...secs.map((s) => b.subarray(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData)), trailing), alg)
  }
  const all = authenticodeDigests(b)
  t.ok(all.ok && hex(all.value.sha256) === expected, 'all four in one pass agree')

  const changed = (at: number): string => { const c = Buffer.from(b); c[at] = c[at]! ^ 0xff; return digest(c) }
  t.equal(changed(cs), expected, 'CheckSum is not covered')
  t.equal(changed(cs + 3), expected, 'CheckSum is not covered (last byte)')
  // a changed entry no longer points at the certificate (the parser then refuses the file), so hash over the original layout
  const entry = Buffer.from(b)
  entry.fill(0xaa, cd, cd + 8)
  const h = createHash('sha256')
  for (const [a, z] of authenticodeRanges(entry, pe.value)) h.update(entry.subarray(a, z))
  t.equal(h.digest('hex'), expected, 'the Certificate Table entry is not covered')
  t.equal(changed(b.length - 1), expected, 'the certificate table is not covered')
  t.not(changed(cs - 5), expected, 'header bytes before CheckSum (SizeOfImage) are covered')
  t.not(changed(cd + 8), expected, 'the byte after the Certificate Table entry is covered')
  t.not(changed(secs[1]!.pointerToRawData + 5), expected, 'section data is covered')
  t.not(changed(b.length - cert.length - 1), expected, 'trailing data is covered')
})

t.test('no Certificate Table entry (NumberOfRvaAndSizes 4), PE32, and sections hashed in file order', async (t) => {
  const { bytes: b, checksumOffset: cs } = buildPe({ numberOfRvaAndSizes: 4 })
  const pe = parsePe(b)
  if (!pe.ok) throw pe.error
  t.equal(pe.value.certDirOffset, undefined)
  const hdr = pe.value.sizeOfHeaders
  t.equal(digest(b), sha('sha256', b.subarray(0, cs), b.subarray(cs + 4, hdr), ...pe.value.sections.map((s) => b.subarray(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData))))

  const pe32 = buildPe({ pe32plus: false })
  const p32 = parsePe(pe32.bytes)
  t.ok(p32.ok && !p32.value.pe32plus && p32.value.imageBase === 0x400000, 'PE32 optional header')
  t.equal(pe32.checksumOffset, p32.ok ? p32.value.checksumOffset : -1)

  // swap the two section headers: the table order changes, the file order does not
  const swapped = Buffer.from(b)
  const table = pe.value.optionalHeaderOffset + b.readUInt16LE(pe.value.optionalHeaderOffset - 4)
  b.copy(swapped, table, table + 40, table + 80)
  b.copy(swapped, table + 40, table, table + 40)
  const ps = parsePe(swapped)
  if (!ps.ok) throw ps.error
  t.equal(ps.value.sections[0]!.name, '.data')
  const ranges = authenticodeRanges(swapped, ps.value)
  const starts = ranges.map((r) => r[0])
  t.same(starts, [...starts].sort((x, y) => x - y), 'ranges ascend through the file')
  t.same(ranges.slice(-2).map((r) => r[0]), [pe.value.sections[0]!.pointerToRawData, pe.value.sections[1]!.pointerToRawData])
})

t.test('malformed images: a typed error naming the field, never a throw', async (t) => {
  const good = buildPe({ certTable: Buffer.alloc(16, 1) })
  const b = good.bytes
  const lfanew = b.readUInt32LE(0x3c)
  const opt = lfanew + 24
  const edit = (f: (c: Buffer) => Buffer | void): Buffer => { const c = Buffer.from(b); return f(c) ?? c }
  const cases: [string, Buffer, PeErrorCode, RegExp][] = [
    ['empty', Buffer.alloc(0), 'too-small', /0 bytes/],
    ['no MZ', edit((c) => { c[0] = 0 }), 'not-mz', /MZ/],
    ['e_lfanew past the end', edit((c) => { c.writeUInt32LE(0xfffffff0, 0x3c) }), 'bad-lfanew', /e_lfanew/],
    ['e_lfanew inside the DOS header', edit((c) => { c.writeUInt32LE(4, 0x3c) }), 'bad-lfanew', /e_lfanew 4/],
    ['no PE signature', edit((c) => { c.write('XX', lfanew, 'latin1') }), 'not-pe', /PE/],
    ['bad magic', edit((c) => { c.writeUInt16LE(0x107, opt) }), 'bad-optional-header', /magic 0x107/],
    ['SizeOfOptionalHeader past the end', edit((c) => { c.writeUInt16LE(0xffff, lfanew + 20) }), 'bad-optional-header', /SizeOfOptionalHeader/],
    ['SizeOfOptionalHeader too small', edit((c) => { c.writeUInt16LE(100, lfanew + 20) }), 'bad-optional-header', /too small/],
    ['NumberOfRvaAndSizes too large', edit((c) => { c.writeUInt32LE(0xffffffff, opt + 108) }), 'bad-optional-header', /NumberOfRvaAndSizes/],
    ['too many sections', edit((c) => { c.writeUInt16LE(97, lfanew + 6) }), 'bad-section-table', /97/],
    ['section table past the end', edit((c) => { c.writeUInt16LE(60, lfanew + 6) }).subarray(0, 2000), 'bad-section-table', /section headers/],
    ['SizeOfHeaders past the end', edit((c) => { c.writeUInt32LE(0x7fffffff, opt + 60) }), 'bad-headers', /SizeOfHeaders/],
    ['SizeOfHeaders before CheckSum', edit((c) => { c.writeUInt32LE(16, opt + 60) }), 'bad-headers', /CheckSum/],
    ['section raw data past the end', edit((c) => { c.writeUInt32LE(0xfffff000, opt + 240 + 40 + 20) }), 'bad-section', /section 1 \(".data"\)/],
    ['certificate table past the end', edit((c) => { c.writeUInt32LE(0xffff, good.certDirOffset + 4) }), 'bad-cert-table', /Certificate Table/],
    ['certificate table inside the headers', edit((c) => { c.writeUInt32LE(8, good.certDirOffset) }), 'bad-cert-table', /Certificate Table at 8/],
  ]
  for (const [name, input, code, msg] of cases) {
    const r = parsePe(input)
    t.equal(r.ok ? 'ok' : r.error.code, code, name)
    if (!r.ok) t.match(r.error.message, msg, `${name}: message`)
    const d = authenticodeDigest(input)
    t.equal(d.ok, false, `${name}: no digest`)
  }
})

t.test('real files: pesign --hash agrees (Debian kernel, systemd stub, a UKI built here)', async (t) => {
  need('pesign', 'pesign')
  need('objcopy', 'binutils')
  const stub = needStub()
  const { vmlinuz, initrd } = e2eAssets()
  const dir = tempDir(t, 'netboot-authenticode-')
  const uki = await buildUki({ kernel: vmlinuz, initrd, cmdline: 'console=ttyS0 netboot.test=1', output: join(dir, 'uki.efi') })
  for (const [name, file] of [['vmlinuz', vmlinuz], ['stub', stub], ['uki', uki.path]] as const) {
    const bytes = readFileSync(file)
    t.equal(digest(bytes), pesignHash(file, 'sha256'), `${name} sha256`)
    t.equal(digest(bytes, 'sha1'), pesignHash(file, 'sha1'), `${name} sha1`)
  }
  t.equal(uki.authenticode.sha256, pesignHash(uki.path), 'buildUki reports the digest pesign computes')
  t.not(digest(readFileSync(vmlinuz)), createHash('sha256').update(readFileSync(vmlinuz)).digest('hex'), 'the Authenticode hash is not the file hash')
})

t.test('sbsign round trip: the digest sbsign signs is ours; signing changes nothing we hash but its padding', async (t) => {
  need('sbsign', 'sbsigntool')
  need('sbattach', 'sbsigntool')
  need('openssl', 'openssl')
  const stub = needStub()
  const dir = tempDir(t, 'netboot-sbsign-')
  const run = (cmd: string, args: string[]): void => { execFileSync(cmd, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 }) }
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '1', '-subj', '/CN=netboot test'])
  run('sbsign', ['--key', 'k.pem', '--cert', 'c.pem', '--output', 'signed.efi', stub])
  run('sbattach', ['--detach', 'sig.p7', 'signed.efi'])
  const signed = readFileSync(join(dir, 'signed.efi'))
  const pe = parsePe(signed)
  if (!pe.ok) throw pe.error
  t.ok(pe.value.certTable.size > 0, 'the signed image has a certificate table')
  const ours = authenticodeDigest(signed)
  if (!ours.ok) throw ours.error
  t.ok(readFileSync(join(dir, 'sig.p7')).includes(ours.value), 'the SpcIndirectDataContent digest in the signature is our hash of the signed file')
  t.equal(hex(ours.value), pesignHash(join(dir, 'signed.efi')), 'and pesign agrees')
  // sbsign pads the image to 8 bytes before the certificate table; that padding is hashed
  const unsigned = readFileSync(stub)
  const padded = Buffer.concat([unsigned, Buffer.alloc((8 - (unsigned.length % 8)) % 8)])
  t.equal(digest(padded), hex(ours.value), 'CheckSum, the Certificate Table entry and the certificate are excluded')
  writeFileSync(join(dir, 'padded.efi'), padded)
})

t.test('fuzz: 20,000 mutated images, no throw, typed errors, ranges inside the file', async (t) => {
  const seed = 0x5eed_0007
  const r = fuzzPe(20_000, seed, 250)
  t.same(r.failures.slice(0, 5), [], `seed ${seed}`)
  t.ok((r.outcomes.get('ok') ?? 0) > 100, `some mutants still parse (${r.outcomes.get('ok') ?? 0})`)
  t.ok([...r.outcomes.keys()].filter((k) => k.startsWith('error:')).length >= 6, `many error kinds reached: ${[...r.outcomes.keys()].join(' ')}`)
})
