/** Option 53, DHCP message type (RFC 2132 §9.6; values 9–18 from later RFCs via IANA). */
import { MAX_MESSAGE_TYPE, messageTypeName } from '../constants.js'
import { optionError, type OptionCodec } from './types.js'

export const messageType: OptionCodec<number> = {
  code: 53,
  name: 'message-type',
  decode(data) {
    if (data.length !== 1) return optionError(messageType, 'invalid-message-type', `length ${data.length}, want 1`)
    const t = data[0]!
    if (t < 1 || t > MAX_MESSAGE_TYPE) return optionError(messageType, 'invalid-message-type', `unassigned value ${t}`)
    return { ok: true, value: t }
  },
  encode: (t) => Uint8Array.of(t & 0xff),
  format: (t) => `DHCP${messageTypeName(t)} (${t})`,
}
