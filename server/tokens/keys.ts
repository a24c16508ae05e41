/**
 * The server's token-signing keys: ES256 (P-256) key pairs generated on first
 * start, kept as private JWKs (mode 0600) under <data_dir>/keys, rotated when the
 * newest is older than the rotation period. New tokens are signed with the newest
 * key; verification accepts every key still on disk, and keys are removed once
 * no token signed by them can still be valid. The public half is the JWKS.
 */
import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'

export type Key = Awaited<ReturnType<typeof importJWK>>

export const SIGNING_ALG = 'ES256'

export interface SigningKey {
  readonly kid: string
  readonly createdAt: number
  /** node:crypto signs tokens with it (node-token.ts). */
  readonly privateKey: KeyObject
  readonly publicJwk: JWK
  readonly publicKey: Key
}

export interface KeyRingOptions {
  readonly dir: string
  /** Generate a new key when the newest is older than this (ms). */
  readonly rotateAfterMs: number
  /** Longest token lifetime (ms): a retired key is kept this long after the next one appears. */
  readonly maxTokenTtlMs: number
}

interface StoredKey { kid: string; createdAt: number; jwk: JWK }

export class KeyRing {
  private keys: SigningKey[] = []

  private constructor (private readonly o: KeyRingOptions) {}

  static async open (o: KeyRingOptions, now = Date.now()): Promise<KeyRing> {
    const ring = new KeyRing(o)
    await mkdir(o.dir, { recursive: true, mode: 0o700 })
    for (const f of (await readdir(o.dir)).filter((n) => n.endsWith('.jwk.json')).sort()) {
      const s = JSON.parse(await readFile(join(o.dir, f), 'utf8')) as StoredKey
      ring.keys.push(await toSigningKey(s))
    }
    ring.keys.sort((a, b) => a.createdAt - b.createdAt)
    await ring.rotate(now)
    return ring
  }

  /** The key new tokens are signed with. */
  get current (): SigningKey { return this.keys.at(-1)! }

  byKid (kid: string): SigningKey | undefined { return this.keys.find((k) => k.kid === kid) }

  jwks (): { keys: JWK[] } {
    return { keys: this.keys.map((k) => ({ ...k.publicJwk, kid: k.kid, alg: SIGNING_ALG, use: 'sig' })) }
  }

  /** Adds a key when due and drops keys no valid token can reference. Idempotent. */
  async rotate (now = Date.now()): Promise<void> {
    const newest = this.keys.at(-1)
    if (newest === undefined || now - newest.createdAt >= this.o.rotateAfterMs) {
      const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true })
      const jwk = await exportJWK(privateKey)
      const kid = (await calculateJwkThumbprint(jwk)).slice(0, 16)
      const stored: StoredKey = { kid, createdAt: now, jwk }
      const file = join(this.o.dir, `${now}-${kid}.jwk.json`)
      await writeFile(`${file}.tmp`, JSON.stringify(stored), { mode: 0o600 })
      await rename(`${file}.tmp`, file)
      this.keys.push(await toSigningKey(stored))
    }
    // a key is retired once its successor has signed for longer than any token lives
    const keep: SigningKey[] = []
    for (let i = 0; i < this.keys.length; i++) {
      const next = this.keys[i + 1]
      if (next !== undefined && now - next.createdAt > this.o.maxTokenTtlMs) {
        await unlink(join(this.o.dir, `${this.keys[i]!.createdAt}-${this.keys[i]!.kid}.jwk.json`)).catch(() => {})
      } else keep.push(this.keys[i]!)
    }
    this.keys = keep
  }
}

async function toSigningKey (s: StoredKey): Promise<SigningKey> {
  const { d: _d, ...pub } = s.jwk
  return {
    kid: s.kid,
    createdAt: s.createdAt,
    privateKey: createPrivateKey({ key: s.jwk as JsonWebKey, format: 'jwk' }),
    publicJwk: pub,
    publicKey: await importJWK(pub, SIGNING_ALG) as Key,
  }
}
