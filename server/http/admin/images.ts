/**
 * /api/v1/blobs, /api/v1/images, /api/v1/boot: the image store and the boot
 * configuration. Files are uploaded once by content (PUT /blobs/<sha256>, the
 * server checks the digest while streaming to disk); an image names its kernel,
 * initrd and rootfs by digest.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NetbootError } from '../../errors.js'
import { checkParams } from '../../boot/cmdline.js'
import type { BootService } from '../../boot/service.js'
import type { BlobStore } from '../../images/blobs.js'
import { MAX_UKI_BYTES, measureUkiFile, type UkiMeasurements } from '../../images/uki.js'
import { canonName } from '../../inventory/normalize.js'
import type { Store } from '../../store/store.js'
import { ErrorBody } from './schemas.js'

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody }
const Digest = Type.String({ pattern: '^[0-9a-f]{64}$' })
const Authenticode = Type.Object({ sha1: Type.String(), sha256: Type.String(), sha384: Type.String(), sha512: Type.String() })
const ImageBody = Type.Object({
  name: Type.String(), version: Type.String(), kernelSha256: Type.String(), initrdSha256: Type.String(), rootfsSha256: Type.Optional(Type.String()),
  ukiSha256: Type.Optional(Type.String()), ukiAuthenticode: Type.Optional(Authenticode), ukiLinuxAuthenticode: Type.Optional(Authenticode),
  params: Type.String(), createdAt: Type.String(),
})
const BootBody = Type.Object({ scope: Type.String(), target: Type.String(), image: Type.Optional(Type.String()), params: Type.String(), updatedAt: Type.String() })
const Scope = Type.Object({ scope: Type.Union([Type.Literal('default'), Type.Literal('group'), Type.Literal('node')]), target: Type.String({ maxLength: 63, default: '' }) })

/** Largest file one upload may carry. */
const MAX_UPLOAD = 64 * 1024 * 1024 * 1024

export function imageRoutes (store: Store, blobs: BlobStore, boot: BootService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addContentTypeParser('application/octet-stream', { bodyLimit: MAX_UPLOAD }, (_req, payload, done) => done(null, payload))

    app.head('/api/v1/blobs/:sha256', {
      config: { right: 'inventory:read' },
      schema: { tags: ['images'], summary: 'Whether the store already has a file (200) or not (404)', params: Type.Object({ sha256: Digest }) },
    }, async (req, reply) => {
      const s = await blobs.stat(req.params.sha256)
      return await reply.code(s === undefined ? 404 : 200).header('content-length', s?.size ?? 0).send()
    })

    app.put('/api/v1/blobs/:sha256', {
      config: { right: 'inventory:write' },
      bodyLimit: MAX_UPLOAD,
      schema: {
        tags: ['images'], summary: 'Upload a file (application/octet-stream); stored only if it hashes to the digest in the path',
        params: Type.Object({ sha256: Digest }), response: { 200: Type.Object({ sha256: Type.String(), size: Type.Integer(), added: Type.Boolean() }), ...errors },
      },
    }, async (req) => {
      const r = await blobs.addStream(req.body as AsyncIterable<Uint8Array>, { expectSha256: req.params.sha256 })
      if (r.added) await store.audit({ actor: req.actor, action: 'blob.add', target: r.sha256, detail: { size: r.size } })
      return r
    })

    app.get('/api/v1/images', {
      config: { right: 'inventory:read' },
      schema: { tags: ['images'], summary: 'Images (every version)', response: { 200: Type.Object({ images: Type.Array(ImageBody) }), ...errors } },
    }, async () => ({ images: await store.listImages() }))

    app.get('/api/v1/images/:name', {
      config: { right: 'inventory:read' },
      schema: { tags: ['images'], summary: 'Versions of one image, oldest first', params: Type.Object({ name: Type.String({ maxLength: 63 }) }), response: { 200: Type.Object({ images: Type.Array(ImageBody) }), ...errors } },
    }, async (req) => {
      const images = await store.listImages(req.params.name)
      if (images.length === 0) throw new NetbootError('IMAGE_NOT_FOUND', `no image ${req.params.name}`)
      return { images }
    })

    app.post('/api/v1/images', {
      config: { right: 'inventory:write' },
      schema: {
        tags: ['images'], summary: 'Register an image from uploaded files',
        body: Type.Object({
          name: Type.String({ minLength: 1, maxLength: 63 }),
          version: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._+-]+$' })),
          kernelSha256: Digest, initrdSha256: Digest, rootfsSha256: Type.Optional(Digest),
          /** A unified kernel image served to UEFI nodes (docs/uki.md); its PCR 4 digests are computed here. */
          ukiSha256: Type.Optional(Digest),
          params: Type.String({ maxLength: 2000, default: '' }),
        }, { additionalProperties: false }),
        response: { 201: ImageBody, ...errors },
      },
    }, async (req, reply) => {
      const b = req.body
      for (const [what, d] of [['kernel', b.kernelSha256], ['initrd', b.initrdSha256], ['rootfs', b.rootfsSha256], ['UKI', b.ukiSha256]] as const) {
        if (d !== undefined && !(await blobs.has(d))) throw new NetbootError('BLOB_NOT_FOUND', `the ${what} ${d} has not been uploaded`)
      }
      let uki: UkiMeasurements | undefined
      if (b.ukiSha256 !== undefined) {
        const st = await blobs.stat(b.ukiSha256)
        if (st !== undefined && st.size > MAX_UKI_BYTES) throw new NetbootError('IMAGE_UKI_INVALID', `the UKI ${b.ukiSha256} is ${st.size} bytes; at most ${MAX_UKI_BYTES} are measured`)
        try {
          uki = await measureUkiFile(blobs.path(b.ukiSha256))
        } catch (e) {
          if (e instanceof NetbootError) throw new NetbootError(e.code, `the UKI ${b.ukiSha256}: ${e.message}`)
          throw e
        }
      }
      const problems = checkParams(b.params, `image:${b.name}`)
      if (problems.length > 0) throw new NetbootError('BOOT_PARAMS_INVALID', 'refused kernel parameters', problems)
      const version = b.version ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '.')
      const image = await store.addImage({
        name: canonName(b.name), version, kernelSha256: b.kernelSha256, initrdSha256: b.initrdSha256, ...(b.rootfsSha256 !== undefined ? { rootfsSha256: b.rootfsSha256 } : {}),
        ...(b.ukiSha256 !== undefined && uki !== undefined ? { ukiSha256: b.ukiSha256, ukiAuthenticode: uki.authenticode, ...(uki.linux !== undefined ? { ukiLinuxAuthenticode: uki.linux } : {}) } : {}),
        params: b.params,
      }, req.actor)
      return await reply.code(201).send(image)
    })

    app.delete('/api/v1/images/:name', {
      config: { right: 'inventory:write' },
      schema: {
        tags: ['images'], summary: 'Remove an image (one version, or all); refused while a boot configuration uses it',
        params: Type.Object({ name: Type.String({ maxLength: 63 }) }), querystring: Type.Object({ version: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ removed: Type.Array(ImageBody) }), ...errors },
      },
    }, async (req) => ({ removed: await store.deleteImage(req.params.name, req.query.version, req.actor) }))

    app.get('/api/v1/boot', {
      config: { right: 'inventory:read' },
      schema: { tags: ['boot'], summary: 'Boot configurations: default, per group, per node', response: { 200: Type.Object({ configs: Type.Array(BootBody) }), ...errors } },
    }, async () => ({ configs: await store.listBootConfigs() }))

    app.put('/api/v1/boot', {
      config: { right: 'inventory:write' },
      schema: {
        tags: ['boot'], summary: 'Set the image and/or kernel parameters of default, a group or a node (null clears)',
        body: Type.Composite([Scope, Type.Object({ image: Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Null()])), params: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Null()])) })], { additionalProperties: false }),
        response: { 200: BootBody, ...errors },
      },
    }, async (req) => {
      const { scope, target, image, params } = req.body
      if ((scope === 'default') !== (target === '')) throw new NetbootError('BAD_REQUEST', scope === 'default' ? 'default takes no target' : `a ${scope} scope needs a target`)
      if (typeof params === 'string') {
        const problems = checkParams(params, scope === 'default' ? 'default' : `${scope}:${target}`)
        if (problems.length > 0) throw new NetbootError('BOOT_PARAMS_INVALID', 'refused kernel parameters', problems)
      }
      return await store.setBootConfig(scope, scope === 'default' ? '' : target.toLowerCase(), { ...(image !== undefined ? { image } : {}), ...(params !== undefined ? { params } : {}) }, req.actor)
    })

    app.delete('/api/v1/boot', {
      config: { right: 'inventory:write' },
      schema: { tags: ['boot'], summary: 'Remove a boot configuration', querystring: Scope, response: { 204: Type.Null(), ...errors } },
    }, async (req, reply) => {
      await store.deleteBootConfig(req.query.scope, req.query.scope === 'default' ? '' : req.query.target.toLowerCase(), req.actor)
      return await reply.code(204).send(null)
    })

    app.get('/api/v1/nodes/:name/boot', {
      config: { right: 'inventory:read' },
      schema: {
        tags: ['boot'], summary: 'What a node boots: image, command line, and the exact iPXE script it gets',
        params: Type.Object({ name: Type.String({ maxLength: 63 }) }),
        response: { 200: Type.Object({ image: Type.String(), imageRef: Type.String(), cmdline: Type.String(), uki: Type.Optional(Type.String()), script: Type.String() }), ...errors },
      },
    }, async (req) => {
      const node = await store.getNode(req.params.name.toLowerCase())
      if (node === undefined) throw new NetbootError('NODE_NOT_FOUND', `no such node: ${req.params.name}`)
      const plan = await boot.plan(node)
      const mac = node.interfaces[0]?.mac
      const script = mac === undefined ? '' : (await boot.scriptForMac(mac)).script
      return { image: `${plan.image.name}@${plan.image.version}`, imageRef: plan.imageRef, cmdline: plan.cmdline, ...(plan.ukiUrl !== undefined ? { uki: plan.ukiUrl } : {}), script }
    })
  }
}
