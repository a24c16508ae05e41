/** /api/v1/enroll and /api/v1/pcr: TPM enrollment decisions and approved PCR values. */
import { createHash } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NetbootError } from '../../errors.js'
import { canonName } from '../../inventory/normalize.js'
import type { Store, TpmIdentity } from '../../store/store.js'
import { decodeTpm2bPublic } from '../../attest/tpm/index.js'
import { ErrorBody } from './schemas.js'

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody }

const IdentityBody = Type.Object({
  id: Type.Integer(), node: Type.Optional(Type.String()), ekSha256: Type.String(), ekCertSha256: Type.Optional(Type.String()),
  policy: Type.String(), state: Type.String(), macs: Type.Array(Type.String()), discovery: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  createdAt: Type.String(), decidedAt: Type.Optional(Type.String()), decidedBy: Type.Optional(Type.String()),
  resetCount: Type.Optional(Type.Integer()), restartCount: Type.Optional(Type.Integer()), lastAttestedAt: Type.Optional(Type.String()),
}, { $id: 'TpmIdentity' })

const GoldenBody = Type.Object({
  scope: Type.String(), target: Type.String(), bank: Type.String(), pcr: Type.Integer(), value: Type.String(), state: Type.String(), source: Type.String(), createdAt: Type.String(),
})

function shown (i: TpmIdentity): Omit<TpmIdentity, 'ekPublic' | 'ekCert'> {
  const { ekPublic: _p, ekCert: _c, ...rest } = i
  return rest
}

export function enrollRoutes (store: Store): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/v1/enroll', {
      config: { right: 'inventory:read' },
      schema: {
        tags: ['enrollment'], summary: 'TPM identities: pending discoveries and enrollments, enrolled and rejected TPMs',
        querystring: Type.Object({ state: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('enrolled'), Type.Literal('rejected')])), node: Type.Optional(Type.String({ maxLength: 63 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ identities: Type.Array(IdentityBody) }), ...errors },
      },
    }, async (req) => ({ identities: (await store.listTpmIdentities({ ...(req.query.state !== undefined ? { state: req.query.state } : {}), ...(req.query.node !== undefined ? { node: req.query.node } : {}) })).map(shown) }))

    app.get('/api/v1/enroll/:id', {
      config: { right: 'inventory:read' },
      schema: { tags: ['enrollment'], summary: 'One TPM identity', params: Type.Object({ id: Type.Integer({ minimum: 1 }) }), response: { 200: IdentityBody, ...errors } },
    }, async (req) => {
      const i = await store.getTpmIdentity(req.params.id)
      if (i === undefined) throw new NetbootError('IDENTITY_NOT_FOUND', `no such TPM identity: ${req.params.id}`)
      return shown(i)
    })

    app.post('/api/v1/enroll/:id/accept', {
      config: { right: 'tpm:manage' },
      schema: {
        tags: ['enrollment'], summary: 'Accept a pending TPM (naming the node, for discovered hardware)',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }), body: Type.Object({ node: Type.Optional(Type.String({ maxLength: 63 })) }, { additionalProperties: false }),
        response: { 200: IdentityBody, ...errors },
      },
    }, async (req) => shown(await store.decideTpmIdentity(req.params.id, { state: 'enrolled', ...(req.body.node !== undefined ? { node: canonName(req.body.node, 'node') } : {}) }, req.actor)))

    app.post('/api/v1/enroll/:id/reject', {
      config: { right: 'tpm:manage' },
      schema: { tags: ['enrollment'], summary: 'Reject a TPM: it is refused from now on', params: Type.Object({ id: Type.Integer({ minimum: 1 }) }), response: { 200: IdentityBody, ...errors } },
    }, async (req) => shown(await store.decideTpmIdentity(req.params.id, { state: 'rejected' }, req.actor)))

    app.post('/api/v1/enroll', {
      config: { right: 'tpm:manage' },
      schema: {
        tags: ['enrollment'], summary: "Pre-enroll a node's TPM by its EK: the TPM2B_PUBLIC (base64) or its SHA-256",
        body: Type.Object({
          node: Type.String({ minLength: 1, maxLength: 63 }),
          ekPublic: Type.Optional(Type.String({ maxLength: 2048, description: 'base64 TPM2B_PUBLIC of the EK (tpm2_createek -u)' })),
          ekSha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
        }, { additionalProperties: false }),
        response: { 201: IdentityBody, ...errors },
      },
    }, async (req, reply) => {
      const node = canonName(req.body.node, 'node')
      let ekSha256 = req.body.ekSha256?.toLowerCase()
      let ekPublic: Buffer | undefined
      if (req.body.ekPublic !== undefined) {
        ekPublic = Buffer.from(req.body.ekPublic, 'base64')
        const p = decodeTpm2bPublic(ekPublic)
        if (!p.ok) throw new NetbootError('BAD_REQUEST', `ekPublic is not a TPM2B_PUBLIC: ${p.error.message}`)
        const sha = createHash('sha256').update(ekPublic).digest('hex')
        if (ekSha256 !== undefined && ekSha256 !== sha) throw new NetbootError('BAD_REQUEST', 'ekSha256 does not match ekPublic')
        ekSha256 = sha
      }
      if (ekSha256 === undefined) throw new NetbootError('BAD_REQUEST', 'give ekPublic or ekSha256')
      if (await store.findTpmIdentity(ekSha256) !== undefined) throw new NetbootError('BAD_REQUEST', 'this EK is already known; accept or reject its identity instead')
      const i = await store.addTpmIdentity({
        node, ekSha256, ...(ekPublic !== undefined ? { ekPublic } : {}), policy: 'pre-enrolled', state: 'enrolled', macs: [],
        decidedAt: new Date().toISOString(), decidedBy: req.actor.name ?? req.actor.id,
      }, { actor: req.actor, action: 'enroll.add', target: node, detail: { ek: ekSha256 } })
      return await reply.code(201).send(shown(i))
    })

    app.get('/api/v1/pcr', {
      config: { right: 'inventory:read' },
      schema: {
        tags: ['enrollment'], summary: 'Expected PCR values per image and node, learned or approved',
        querystring: Type.Object({ scope: Type.Optional(Type.Union([Type.Literal('image'), Type.Literal('node')])), target: Type.Optional(Type.String({ maxLength: 256 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ values: Type.Array(GoldenBody) }), ...errors },
      },
    }, async (req) => ({ values: await store.listGoldenPcrs({ ...(req.query.scope !== undefined ? { scope: req.query.scope } : {}), ...(req.query.target !== undefined ? { target: req.query.target } : {}) }) }))

    app.post('/api/v1/pcr/approve', {
      config: { right: 'tpm:manage' },
      schema: {
        tags: ['enrollment'], summary: 'Approve the learned PCR values of an image or node: they are enforced from now on',
        body: Type.Object({ scope: Type.Union([Type.Literal('image'), Type.Literal('node')]), target: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ approved: Type.Integer() }), ...errors },
      },
    }, async (req) => ({ approved: await store.approveGoldenPcrs(req.body.scope, req.body.target, req.actor) }))
  }
}
