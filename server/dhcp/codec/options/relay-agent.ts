/**
 * Option 82, relay agent information (RFC 3046 §2.0): sub-options without PAD
 * or END, at least one. The server never interprets them for the reply: it
 * echoes the request's raw value unchanged (RFC 3046 §2.2), which the reply
 * builder does by copying bytes, not by re-encoding.
 */
import { decodeSubOptions, encodeSubOptions, formatSubOptions, type SubOption } from './suboptions.js'
import { optionError, type OptionCodec } from './types.js'

const NAMES: Record<number, string> = {
  1: 'circuit-id',
  2: 'remote-id',
  5: 'link-selection',
  6: 'subscriber-id',
  9: 'vendor-specific',
  11: 'server-id-override',
  151: 'vss',
  152: 'vss-control',
}

export function relaySubOptionName(code: number): string {
  return NAMES[code] ?? `sub-${code}`
}

export const relayAgentInfo: OptionCodec<SubOption[]> = {
  code: 82,
  name: 'relay-agent-info',
  decode(data) {
    if (data.length < 2) return optionError(relayAgentInfo, 'invalid-option-length', `length ${data.length}, want at least 2`)
    const r = decodeSubOptions(data, false)
    return r.ok ? r : optionError(relayAgentInfo, 'invalid-option-value', r.error.message)
  },
  encode: (subs) => encodeSubOptions(subs, false),
  format: (subs) => formatSubOptions(subs, relaySubOptionName),
}
