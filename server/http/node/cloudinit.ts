/**
 * cloud-init for nodes (NoCloud, cloud-init's `ds=nocloud-net;s=URL/` form):
 *
 *   GET /cloud-init/<node>/{meta-data,user-data,vendor-data,network-config}
 *   GET /cloud-init/{meta-data,…}             the node is the requester's address
 *   GET /cloud-init-secure/<node>             plain + secure, merged, as a JWE to the
 *                                             node's boot key; needs its token + DPoP
 *
 * The plain documents are public on the provisioning network, as in the tools this
 * replaces; secrets live only in secure payloads. The requester's address comes from
 * X-Forwarded-For only when the peer is a configured trusted proxy (fastify trustProxy).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { NetbootError } from '../../errors.js'
import type { Node } from '../../inventory/model.js'
import type { Store } from '../../store/store.js'
import type { CloudInitService } from '../../cloudinit/service.js'
import type { NoCloudSeed } from '../../cloudinit/render.js'
import { encryptToNode, type NodeTokens } from '../../tokens/node-token.js'
import { requireNodeToken } from './node-auth.js'

const DOCS = ['meta-data', 'user-data', 'vendor-data', 'network-config'] as const
type Doc = typeof DOCS[number]

export interface CloudInitRouteDeps {
  readonly service: CloudInitService
  readonly store: Store
  /** Absent when attestation is off: then there is no secure endpoint. */
  readonly tokens?: NodeTokens
  readonly publicUrl: string
}

export async function cloudInitRoutes (app: FastifyInstance, d: CloudInitRouteDeps): Promise<void> {
  const send = async (reply: FastifyReply, node: Node, doc: string): Promise<FastifyReply> => {
    if (!(DOCS as readonly string[]).includes(doc)) throw new NetbootError('NOT_FOUND', `no cloud-init document '${doc}' (one of ${DOCS.join(', ')})`)
    const seed = await d.service.render(node, false)
    const text = pick(seed, doc as Doc)
    if (text === undefined) throw new NetbootError('NOT_FOUND', `${node.name} has no ${doc}`)
    return await reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(text)
  }

  app.get('/cloud-init/:node/:doc', async (req, reply) => {
    const { node: name, doc } = req.params as { node: string; doc: string }
    const node = await d.store.getNode(name.toLowerCase())
    if (node === undefined) throw new NetbootError('CLOUDINIT_NO_NODE', `no node named ${name}`)
    return await send(reply, node, doc)
  })

  app.get('/cloud-init/:doc', async (req, reply) => {
    const { doc } = req.params as { doc: string }
    return await send(reply, await requester(req, d.store), doc)
  })

  const tokens = d.tokens
  if (tokens === undefined) return
  app.get('/cloud-init-secure/:node', async (req, reply) => {
    const { node: name } = req.params as { node: string }
    const tok = await requireNodeToken(req, tokens, d.store, d.publicUrl, name)
    const node = await d.store.getNode(name)
    if (node === undefined) throw new NetbootError('CLOUDINIT_NO_NODE', `no node named ${name}`)
    const seed = await d.service.render(node, true)
    const jwe = await encryptToNode(Buffer.from(JSON.stringify(seed)), tok.key)
    await d.store.audit({ actor: { kind: 'node', id: node.name }, action: 'cloudinit.secure.read', target: node.name, detail: { attestation: tok.att, token: tok.jti, instanceId: seed.instanceId, peer: req.ip } })
    return await reply.type('application/jose').header('cache-control', 'no-store').send(jwe)
  })
}

function pick (s: NoCloudSeed, doc: Doc): string | undefined {
  switch (doc) {
    case 'meta-data': return s.metaData
    case 'user-data': return s.userData
    case 'vendor-data': return s.vendorData
    case 'network-config': return s.networkConfig
  }
}

async function requester (req: FastifyRequest, store: Store): Promise<Node> {
  const ip = req.ip.replace(/^::ffff:/, '')
  const node = await store.findNodeByIp(ip)
  if (node === undefined) throw new NetbootError('CLOUDINIT_NO_NODE', `no node has the address ${ip}`)
  return node
}
