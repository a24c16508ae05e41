import t from 'tap'
import { kdfa, kdfe } from '../../server/attest/tpm/kdf.js'

// KDFa self-test vectors of the TCG reference implementation as shipped in libtpms
// (src/tpm2/KdfTestData.h): key, label "KDFSELFTESTLABEL" (the vector's label
// carries the NUL that KDFa appends), contexts U and V, 160 bits, one output per hash.
const KDFA_KEY = Buffer.from('271fa08bbdc5060ec3dfa928ff9b73123a12da0c', 'hex')
const KDFA_U = Buffer.from('ce244f395dca7391', 'hex')
const KDFA_V = Buffer.from('da504031ddf12e83', 'hex')
const KDFA_VECTORS = [
  ['sha1', '55b5a7184aa07423c47dae766c26a2377d7cf851'],
  ['sha256', 'bb0259e1c8ba607e6a2cd704b69a902e9ade84c4'],
  ['sha384', '1dce70c9113eb2dba47bd9cfc72bf46f45b09312'],
  ['sha512', '8be2c1b85b78569b9fa759f5857c56d684810fd3'],
] as const

t.test('KDFa matches the reference implementation self-test vectors', async (t) => {
  for (const [hash, out] of KDFA_VECTORS) {
    t.equal(kdfa(hash, KDFA_KEY, 'KDFSELFTESTLABEL', KDFA_U, KDFA_V, 160).toString('hex'), out, hash)
  }
})

// KDFe vectors from chrisfenner/tpm-test-vectors (vectors/kdfe.json), generated with
// go-tpm's KDFe; they include bit counts that are not multiples of 8 and empty inputs.
const KDFE_VECTORS = [
  { name: '00_SHA1_111', hash: 'sha1', z: 'beefefba63c91e8eb318785c374600', use: 'ATH', u: 'ff8318b65e46b3', v: '32aa861b336c991a52b15c0c72889895e8cad4ff', bits: 111, out: '123decb8050fca8d6585f61946e2' },
  { name: '04_SHA1_253', hash: 'sha1', z: '', use: 'STORAGE', u: '', v: 'c0227aff', bits: 253, out: '0f10d821af67e1ec776b390f3b4572bb433efd2b94fa7842d879d24d825ed2f9' },
  { name: '06_SHA1_32', hash: 'sha1', z: '9b050039c8e5ca60deeb978f2faf573c94af61', use: 'IDENTITY', u: 'ff1a1852db7b60a5c963f17eb306f3a905d100ae', v: '0047ee45771a256d58b091b6d6', bits: 32, out: '94c3c160' },
  { name: '22_SHA1_7', hash: 'sha1', z: '356f9d00d61b54cf010580b1755d1975905c00', use: 'CFB', u: '006c5c2bcdd650f6c836dba98c4734', v: '8849bd3d05d69f', bits: 7, out: '58' },
  { name: '30_SHA256_109', hash: 'sha256', z: 'c3e3c34e82ccfa82d8999bf2635bb7cd01f3d65f03ff', use: 'CFB', u: '55576a51c0e45b86557535e9ea50d5e7f4a80bb426e7ff', v: 'dffdece923181dc335c1e936ff', bits: 109, out: '1106264c89948737c140d2f5b40e' },
  { name: '36_SHA256_359', hash: 'sha256', z: 'ff16189cb377c3dbf0488b66ada0', use: 'STORAGE', u: 'b16cf6dcfb71cc1615c35ed617deb0f6c925eb8828827a675c190c2b0f40', v: 'ff9d00b4', bits: 359, out: '5529ebfa7d4dbdaf0923f36a8f0ac0e2842c1def72e0735d50eb0783494afa5163891c4f08287869a0a5b5fc4c' },
  { name: '37_SHA256_431', hash: 'sha256', z: 'e89fc5304cf46c1cf7d1f5de5d3d1ec7eddc80b0386700', use: 'SECRET', u: 'e602bc959fd97af0405649e0c80e02e9dd64e9d79e698292b043c79dfa9f9261', v: '', bits: 431, out: '3a8e893b8b76cdddbf87845b2567fa7152577829f6a55b73cb82d4a1f0342a051d6e50e20ec2f96bc4de38d7d0d79a9caf99e1d574b9' },
] as const

t.test('KDFe matches published go-tpm vectors', async (t) => {
  for (const v of KDFE_VECTORS) {
    const got = kdfe(v.hash, Buffer.from(v.z, 'hex'), v.use, Buffer.from(v.u, 'hex'), Buffer.from(v.v, 'hex'), v.bits)
    t.equal(got.toString('hex'), v.out, v.name)
  }
})

t.test('KDFa output length and prefix property', async (t) => {
  const k = Buffer.alloc(32, 1)
  const long = kdfa('sha256', k, 'STORAGE', Buffer.from('n'), Buffer.alloc(0), 512)
  t.equal(long.length, 64)
  // bits is an input of every block, so a shorter request is not a prefix.
  const short = kdfa('sha256', k, 'STORAGE', Buffer.from('n'), Buffer.alloc(0), 256)
  t.not(short.toString('hex'), long.subarray(0, 32).toString('hex'))
  t.equal(kdfa('sha256', k, 'X', Buffer.alloc(0), Buffer.alloc(0), 12).length, 2)
  t.ok(kdfa('sha256', k, 'X', Buffer.alloc(0), Buffer.alloc(0), 12)[0]! < 16, 'unused high bits of the first octet are cleared')
})

t.test('KDF bit counts are validated', async (t) => {
  t.throws(() => kdfa('sha256', Buffer.alloc(1), 'X', Buffer.alloc(0), Buffer.alloc(0), 0))
  t.throws(() => kdfe('sha256', Buffer.alloc(1), 'X', Buffer.alloc(0), Buffer.alloc(0), -8))
  t.throws(() => kdfe('sha256', Buffer.alloc(1), 'X', Buffer.alloc(0), Buffer.alloc(0), 1 << 20))
})
