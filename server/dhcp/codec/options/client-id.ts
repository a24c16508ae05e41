/**
 * Option 61, client identifier (RFC 2132 §9.14): a type byte and at least one
 * identifier byte. Type 1..255 is an ARP hardware type (the identifier is then
 * usually chaddr); 255 is RFC 4361 IAID+DUID; 0 is an opaque identifier.
 * Leases are keyed on chaddr+htype by default (see DHCP.md), so this stays
 * informative.
 */
import { colonHex, optionError, type OptionCodec } from './types.js'

export interface ClientId {
  type: number
  id: Uint8Array
}

export const clientId: OptionCodec<ClientId> = {
  code: 61,
  name: 'client-id',
  decode(data) {
    if (data.length < 2) return optionError(clientId, 'invalid-option-length', `length ${data.length}, want at least 2`)
    return { ok: true, value: { type: data[0]!, id: data.subarray(1) } }
  },
  encode(v) {
    const out = new Uint8Array(1 + v.id.length)
    out[0] = v.type
    out.set(v.id, 1)
    return out
  },
  format(v) {
    const kind = v.type === 1 ? 'ethernet' : v.type === 255 ? 'iaid-duid' : v.type === 0 ? 'opaque' : `htype-${v.type}`
    return `${kind} ${colonHex(v.id)}`
  },
}
