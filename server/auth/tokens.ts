/**
 * Admin bearer tokens: `nbt_<id>_<secret>`. The id (10 base32 chars) is public and
 * names the token in lists and the audit log; the secret (32 random bytes,
 * base64url) is shown once at creation and stored only as its SHA-256. A
 * high-entropy secret needs no slow hash; comparison is constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

const TOKEN_RE = /^nbt_([a-z2-7]{10})_([A-Za-z0-9_-]{43})$/
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

export interface MintedToken { readonly id: string; readonly secretHash: string; readonly value: string }

export function mintToken (): MintedToken {
  const idBytes = randomBytes(10)
  const id = [...idBytes].map((b) => B32[b & 31]).join('')
  const secret = randomBytes(32).toString('base64url')
  return { id, secretHash: hashSecret(secret), value: `nbt_${id}_${secret}` }
}

export function parseToken (value: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(value)
  return m === null ? undefined : { id: m[1]!, secret: m[2]! }
}

export function hashSecret (secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

export function secretMatches (secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex')
  const b = Buffer.from(storedHash, 'hex')
  return a.length === b.length && timingSafeEqual(a, b)
}
