/**
 * The guard for node endpoints that serve secrets: a valid node token, proven by
 * a DPoP proof from the boot key it is bound to, for the node whose data is asked
 * for. Every refusal and every granted read is audited by the caller's route.
 */
import type { FastifyRequest } from 'fastify'
import { NetbootError } from '../../errors.js'
import type { NodeTokens, VerifiedNodeToken } from '../../tokens/node-token.js'
import type { Store } from '../../store/store.js'
import type { JWK } from 'jose'

export async function requireNodeToken (req: FastifyRequest, tokens: NodeTokens, store: Store, publicUrl: string, forNode?: string): Promise<VerifiedNodeToken & { key: JWK }> {
  const proof = req.headers.dpop
  const url = publicUrl + req.url
  try {
    const tok = await tokens.verifyRequest(req.headers.authorization, Array.isArray(proof) ? proof[0] : proof, req.method, url)
    if (forNode !== undefined && tok.sub !== forNode) throw new NetbootError('TOKEN_WRONG_NODE', `this token is ${tok.sub}'s, not ${forNode}'s`)
    return tok
  } catch (e) {
    if (e instanceof NetbootError) {
      await store.audit({ actor: { kind: 'node', id: req.ip }, action: 'token.refused', ...(forNode !== undefined ? { target: forNode } : {}), outcome: 'denied', detail: { reason: e.code, why: e.message, method: req.method, url: req.url, peer: req.ip } })
    }
    throw e
  }
}
