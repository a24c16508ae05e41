/**
 * The admin API client the CLI uses, like `ochami` talks to its services: URL and
 * token from flags, the environment (NETBOOT_URL, NETBOOT_TOKEN) or the config.
 * API errors come back as NetbootError with the server's code and details.
 */
import { NetbootError, catalogue, type ErrorCode, type ErrorDetail } from '../errors.js'

export class ApiClient {
  constructor (readonly baseUrl: string, private readonly token: string | undefined) {}

  async request<T> (method: string, path: string, body?: unknown): Promise<T> {
    if (this.token === undefined) {
      throw new NetbootError('AUTH_REQUIRED', "no admin token: set NETBOOT_TOKEN (or admin.token in the config); on the server host create the first one with 'netboot token create --local NAME'")
    }
    let res: Response
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(120_000),
      })
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message
      throw new NetbootError('INTERNAL', `cannot reach the netboot server at ${this.baseUrl} (${cause}); is 'netboot serve' running? (set --url or NETBOOT_URL)`)
    }
    if (res.status === 204) return undefined as T
    const text = await res.text()
    let json: unknown
    try { json = JSON.parse(text) } catch { json = undefined }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string; details?: ErrorDetail[] } } | undefined)?.error
      const code = (err?.code !== undefined && err.code in catalogue ? err.code : 'INTERNAL') as ErrorCode
      throw new NetbootError(code, err?.message ?? `HTTP ${res.status} from ${path}`, err?.details ?? [])
    }
    return json as T
  }
}
