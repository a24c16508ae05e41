// Bundles the initramfs agent (agent/main.ts and everything it imports, jose
// included) into one ESM file for Node 20: dist/agent/netboot-agent.mjs.
// The TPM addon (agent/tpm/build/Release/netboot_tpm.node) is NOT bundled: the
// dracut module installs it beside the bundle and the hook names it in
// $NETBOOT_TPM_ADDON (agent/tpm/index.ts addonCandidates).
//
// Usage: node scripts/bundle-agent.mjs [OUTFILE]   (npm run bundle:agent)
import { build } from 'esbuild'
import { chmod, rename, stat } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outfile = process.argv[2] ?? join(root, 'dist', 'agent', 'netboot-agent.mjs')
const t0 = Date.now()
// Written beside the target and renamed: a dracut run reading the bundle never sees half a file.
const tmp = `${outfile}.tmp-${process.pid}`
const r = await build({
  entryPoints: [join(root, 'agent', 'main.ts')],
  outfile: tmp,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // CommonJS dependencies call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __netbootCreateRequire } from 'node:module';\nconst require = __netbootCreateRequire(import.meta.url);" },
  external: ['*.node'],
  legalComments: 'eof',
  sourcemap: false,
  minify: false,
  logLevel: 'warning',
  metafile: true,
})
await chmod(tmp, 0o644)
await rename(tmp, outfile)
const size = (await stat(outfile)).size
const inputs = Object.keys(r.metafile.inputs).length
process.stderr.write(`bundle-agent: ${relative(process.cwd(), outfile)} ${(size / 1024).toFixed(0)} KiB from ${inputs} sources in ${Date.now() - t0} ms\n`)
