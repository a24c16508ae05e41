/**
 * Step `secrets`: the node's cloud-init, plain and secure merged by the server,
 * from GET /cloud-init-secure/<node> (server/http/node/cloudinit.ts).
 *
 * The request carries `Authorization: DPoP <token>` and a DPoP proof signed by the
 * boot key (RFC 9449 §4, §7.1) for exactly this method and URL (htu = netboot.server
 * + path, what the server compares with its public URL), iat by the server's clock.
 * The answer is a compact JWE (RFC 7516) encrypted to the boot key with ECDH-ES +
 * A256GCM; its plaintext is JSON `{instanceId, metaData, userData, vendorData,
 * networkConfig?}` (server/cloudinit/render.ts NoCloudSeed).
 */
import { AgentError } from '../errors.js'
import { decryptForBootKey, dpopProof, type BootKey } from '../bootkey.js'
import { busyError, isBusy, refusalOf, type ServerApi } from '../http.js'
import type { AgentLog } from '../log.js'

export interface NoCloudSeed {
  readonly instanceId: string
  readonly metaData: string
  readonly userData: string
  readonly vendorData: string
  readonly networkConfig?: string
}

export interface SecretsDeps {
  readonly api: ServerApi
  readonly bootKey: BootKey
  readonly log: AgentLog
}

/** Seconds of token life below which the agent attests again rather than use it. */
export const TOKEN_MARGIN_S = 10

export function secureSeedPath (node: string): string {
  return `/cloud-init-secure/${encodeURIComponent(node)}`
}

/** Checks the decrypted plaintext is a NoCloud seed cloud-init will accept. */
export function parseSeed (plaintext: Uint8Array): NoCloudSeed {
  const bad = (why: string): AgentError => new AgentError('AGENT_SECRETS_INVALID', 'secrets', `the secure cloud-init ${why}`)
  let j: Record<string, unknown>
  try {
    j = JSON.parse(Buffer.from(plaintext).toString('utf8')) as Record<string, unknown>
  } catch {
    throw bad('is not JSON')
  }
  if (j === null || typeof j !== 'object') throw bad('is not a JSON object')
  for (const k of ['instanceId', 'metaData', 'userData', 'vendorData'] as const) {
    if (typeof j[k] !== 'string') throw bad(`lacks ${k}`)
  }
  if (j.networkConfig !== undefined && typeof j.networkConfig !== 'string') throw bad('has a networkConfig that is not text')
  const seed = j as unknown as NoCloudSeed
  // cloud-init's NoCloud needs instance-id in meta-data (DataSourceNoCloud), and ds-identify needs user-data to exist.
  if (!/^instance-id:/m.test(seed.metaData)) throw bad('meta-data has no instance-id')
  return { instanceId: seed.instanceId, metaData: seed.metaData, userData: seed.userData, vendorData: seed.vendorData, ...(typeof j.networkConfig === 'string' ? { networkConfig: j.networkConfig } : {}) }
}

export async function fetchSecrets (d: SecretsDeps, token: { token: string; expiresAt: number; node: string }): Promise<NoCloudSeed> {
  const { api, bootKey } = d
  const nowS = api.serverNow() / 1000
  if (token.expiresAt - nowS < TOKEN_MARGIN_S) {
    throw new AgentError('AGENT_TOKEN_EXPIRED', 'secrets', `the node token expired (or expires within ${TOKEN_MARGIN_S} s) before the secure cloud-init was fetched`)
  }
  const path = secureSeedPath(token.node)
  const htu = api.url(path)
  const proof = await dpopProof(bootKey, token.token, 'GET', htu, Math.floor(api.serverNow() / 1000))
  const r = await api.request('secrets', 'GET', path, { headers: { authorization: `DPoP ${token.token}`, dpop: proof, accept: 'application/jose' } })
  if (r.status !== 200) {
    const refusal = refusalOf(r.status, r.headers, r.body)
    if (isBusy(r.status)) throw busyError('secrets', `GET ${path}`, refusal)
    if (refusal.code === 'TOKEN_EXPIRED') throw new AgentError('AGENT_TOKEN_EXPIRED', 'secrets', `GET ${path}: the server says the token expired`, { serverCode: refusal.code })
    // A proof "too old or from the future" is a clock question; the refusal's Date header
    // has just corrected our idea of the server's clock, so one more try can pass.
    const retryable = refusal.code === 'TOKEN_KEY_PROOF'
    throw new AgentError('AGENT_SECRETS_REFUSED', 'secrets', `GET ${path}: refused: ${refusal.code ?? `HTTP ${r.status}`}${refusal.message !== '' ? `: ${refusal.message}` : ''}`, {
      retryable, ...(refusal.code !== undefined ? { serverCode: refusal.code } : {}),
    })
  }
  const jwe = r.body.toString('utf8').trim()
  let plaintext: Uint8Array
  try {
    plaintext = await decryptForBootKey(jwe, bootKey)
  } catch (e) {
    throw new AgentError('AGENT_SECRETS_INVALID', 'secrets', `the secure cloud-init does not decrypt with this boot key: ${(e as Error).message}`, { cause: e })
  }
  const seed = parseSeed(plaintext)
  d.log.info('secrets', `secure cloud-init decrypted: ${seed.instanceId}, user-data ${Buffer.byteLength(seed.userData)} bytes${seed.networkConfig !== undefined ? ', with network-config' : ''}`)
  return seed
}
