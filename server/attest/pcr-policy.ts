/**
 * What a node may have booted: its quoted PCR values against the golden values
 * for the node (which win) or its image. Pure: the caller loads the golden values
 * and records what `learn` returns.
 *
 *   off      no PCR policy; attestation proves which TPM is asking.
 *   learn    values never seen for this image are recorded as `learned` (an admin
 *            approves them with `netboot pcr approve`) and accepted this time;
 *            approved values are enforced.
 *   enforce  approved values are required; anything else is refused.
 */
import type { GoldenPcr } from '../store/store.js'

export type PcrPolicyMode = 'off' | 'learn' | 'enforce'

export type PcrPolicyVerdict =
  | { ok: true; basis: 'off' | 'approved' | 'learned-now' | 'learned-pending'; learn?: Omit<GoldenPcr, 'createdAt'>[] }
  | { ok: false; reason: string; mismatched: { pcr: number; expected: string; actual: string }[] }

export function evaluatePcrPolicy (
  mode: PcrPolicyMode,
  bank: GoldenPcr['bank'],
  quoted: ReadonlyMap<number, Uint8Array>,
  golden: readonly GoldenPcr[],
  who: { node: string; image?: string },
): PcrPolicyVerdict {
  if (mode === 'off') return { ok: true, basis: 'off' }
  const forNode = golden.filter((g) => g.scope === 'node' && g.target === who.node && g.bank === bank)
  const forImage = golden.filter((g) => g.scope === 'image' && g.target === who.image && g.bank === bank)
  const pick = (state: GoldenPcr['state']): GoldenPcr[] => {
    const n = forNode.filter((g) => g.state === state)
    return n.length > 0 ? n : forImage.filter((g) => g.state === state)
  }
  const approved = pick('approved')
  if (approved.length > 0) {
    const mismatched = approved.flatMap((g) => {
      const actual = hexOf(quoted.get(g.pcr))
      return actual === g.value ? [] : [{ pcr: g.pcr, expected: g.value, actual }]
    })
    return mismatched.length === 0
      ? { ok: true, basis: 'approved' }
      : { ok: false, reason: `PCR ${mismatched.map((m) => m.pcr).join(', ')} differ from the approved values`, mismatched }
  }
  if (mode === 'enforce') return { ok: false, reason: `no approved PCR values for node ${who.node}${who.image !== undefined ? ` or image ${who.image}` : ''}`, mismatched: [] }
  if (pick('learned').length > 0) return { ok: true, basis: 'learned-pending' }
  const scope = who.image !== undefined ? 'image' : 'node'
  const target = who.image ?? who.node
  return {
    ok: true,
    basis: 'learned-now',
    learn: [...quoted].sort(([a], [b]) => a - b).map(([pcr, v]) => ({ scope, target, bank, pcr, value: hexOf(v), state: 'learned', source: `first boot of ${who.node}` })),
  }
}

function hexOf (v: Uint8Array | undefined): string {
  return v === undefined ? '' : Buffer.isBuffer(v) ? v.toString('hex') : Buffer.from(v).toString('hex')
}
