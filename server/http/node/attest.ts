/**
 * Attestation routes on the node-facing server: protobuf in, protobuf out
 * (proto/attest.proto); a refusal is a 4xx JSON error from the catalogue.
 * The JWKS lets anything that holds a node token check its signature.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { PROTOBUF_CONTENT_TYPE, attest } from '../../../proto/index.js'
import { decodeFinish, decodeStart, MAX_ATTEST_BODY } from '../../attest/wire.js'
import type { AttestationService } from '../../attest/service.js'
import type { KeyRing } from '../../tokens/keys.js'
import type { NodeTokens } from '../../tokens/node-token.js'
import type { Store } from '../../store/store.js'
import { requireNodeToken } from './node-auth.js'
import { NetbootError } from '../../errors.js'

export interface AttestRouteDeps {
  readonly service: AttestationService
  readonly keys: KeyRing
  readonly tokens: NodeTokens
  readonly store: Store
  /** The node server's URL as nodes see it: DPoP proofs name it (htu). */
  readonly publicUrl: string
}

export async function attestRoutes (app: FastifyInstance, d: AttestRouteDeps): Promise<void> {
  const { service, keys } = d
  app.addContentTypeParser(PROTOBUF_CONTENT_TYPE, { parseAs: 'buffer', bodyLimit: MAX_ATTEST_BODY }, (_req, body, done) => done(null, body))

  // Sockets reach fast.ts first; these routes answer inject() and what the fast path hands over.
  app.post('/attest/v1/start', { bodyLimit: MAX_ATTEST_BODY }, async (req, reply) => {
    return await reply.type(PROTOBUF_CONTENT_TYPE).send(await attestStartReply(service, protobufBody(req), req.ip))
  })

  app.post('/attest/v1/finish', { bodyLimit: MAX_ATTEST_BODY }, async (req, reply) => {
    return await reply.type(PROTOBUF_CONTENT_TYPE).send(await attestFinishReply(service, protobufBody(req), req.ip))
  })

  app.get('/.well-known/jwks.json', async () => keys.jwks())

  // What a node token proves, for agents checking their token and for tests of the guard.
  app.get('/node/v1/nodes/:name/token', async (req) => {
    const { name } = req.params as { name: string }
    const tok = await requireNodeToken(req, d.tokens, d.store, d.publicUrl, name)
    return { node: tok.sub, groups: tok.groups, attestation: tok.att, expiresAt: tok.exp }
  })
}

/** POST /attest/v1/start: an AttestStart from `peer` (the client address, audited) → the encoded AttestChallenge. */
export async function attestStartReply (service: AttestationService, body: Buffer, peer: string): Promise<Buffer> {
  const c = await service.start(decodeStart(body), peer)
  const out = attest.AttestChallenge.encode({
    session: c.session, credentialBlob: c.credentialBlob, encryptedSecret: c.encryptedSecret, nonce: c.nonce, pcrs: [...c.pcrs], bank: c.bank,
  }).finish()
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength)
}

/** POST /attest/v1/finish: an AttestFinish from `peer` → the encoded AttestResult. */
export async function attestFinishReply (service: AttestationService, body: Buffer, peer: string): Promise<Buffer> {
  const r = await service.finish(decodeFinish(body), peer)
  const out = attest.AttestResult.encode({
    token: r.token, expiresAt: r.expiresAt, node: r.node, groups: [...r.groups], attestationId: r.attestationId,
    ...(r.rootfsUrl !== undefined ? { rootfsUrl: r.rootfsUrl } : {}), ...(r.rootfsSha256 !== undefined ? { rootfsSha256: r.rootfsSha256 } : {}),
  }).finish()
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength)
}

/**
 * The request's protobuf body. Another media type (RFC 9110 §8.3.1: compared without
 * its parameters, case-insensitively) is 415, also for the types fastify parses
 * itself (text/plain, JSON), which would otherwise reach the decoder as a string.
 */
function protobufBody (req: FastifyRequest): Buffer {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== PROTOBUF_CONTENT_TYPE) throw new NetbootError('UNSUPPORTED_MEDIA_TYPE', `attestation messages are ${PROTOBUF_CONTENT_TYPE}, not ${type === '' ? 'a body without a content type' : type}`)
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
}
