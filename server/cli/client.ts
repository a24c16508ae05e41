/**
 * The admin API client the CLI uses, like `ochami` talks to its services: URL and
 * token from flags, the environment (NETBOOT_URL, NETBOOT_TOKEN) or the config.
 * API errors come back as NetbootError with the server's code and details.
 */
import { NetbootError, catalogue, type ErrorCode, type ErrorDetail } from '../errors.js'

export class ApiClient {
  constructor (readonly baseUrl: string, private readonly token: string | undefined) {}

  /** HEAD: whether the resource exists (2xx) or not (404). */
  async exists (path: string): Promise<boolean> {
    const res = await this.send('HEAD', path)
    if (res.status === 404) return false
    if (res.ok) return true
    throw new NetbootError(res.status === 401 ? 'AUTH_INVALID' : res.status === 403 ? 'FORBIDDEN' : 'INTERNAL', `HTTP ${res.status} from HEAD ${path}`)
  }

  async request<T> (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const res = await this.send(method, path, body, contentType)
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

  private async send (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<Response> {
    if (this.token === undefined) {
      throw new NetbootError('AUTH_REQUIRED', "no admin token: set NETBOOT_TOKEN (or admin.token in the config); on the server host create the first one with 'netboot token create --local NAME'")
    }
    const stream = body instanceof ReadableStream
    try {
      return await fetch(this.baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
        ...(body !== undefined ? { body: stream ? body : JSON.stringify(body) } : {}),
        ...(stream ? { duplex: 'half' } : {}),
        // uploads of large images take as long as they take
        ...(stream ? {} : { signal: AbortSignal.timeout(120_000) }),
      } as RequestInit)
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message
      throw new NetbootError('INTERNAL', `cannot reach the netboot server at ${this.baseUrl} (${cause}); is 'netboot serve' running? (set --url or NETBOOT_URL)`)
    }
  }
}
