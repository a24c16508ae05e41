/** Typed codecs by option code, for dump.ts and generic tooling. */
import { broadcastAddress, dnsServers, ntpServers, requestedIp, routers, serverId, subnetMask } from './address.js'
import { clientId } from './client-id.js'
import { interfaceMtu, leaseTime, maxMessageSize, rebindingTime, renewalTime } from './integer.js'
import { ipxeEncap } from './ipxe.js'
import { messageType } from './message-type.js'
import { overload } from './overload.js'
import { parameterRequestList } from './parameter-request-list.js'
import { clientArch, clientGuid, clientNdi } from './pxe-client.js'
import { relayAgentInfo } from './relay-agent.js'
import { bootfileName, domainName, hostName, tftpServerName } from './text.js'
import type { OptionCodec } from './types.js'
import { userClass } from './user-class.js'
import { vendorClass } from './vendor-class.js'
import { vendorSpecific } from './vendor-specific.js'

type AnyCodec = OptionCodec<unknown>

const ALL: readonly AnyCodec[] = [
  subnetMask,
  routers,
  dnsServers,
  hostName,
  domainName,
  interfaceMtu,
  broadcastAddress,
  ntpServers,
  vendorSpecific,
  requestedIp,
  leaseTime,
  overload,
  messageType,
  serverId,
  parameterRequestList,
  maxMessageSize,
  renewalTime,
  rebindingTime,
  vendorClass,
  clientId,
  tftpServerName,
  bootfileName,
  userClass,
  relayAgentInfo,
  clientArch,
  clientNdi,
  clientGuid,
  ipxeEncap,
]

const BY_CODE: (AnyCodec | undefined)[] = new Array(256)
for (const c of ALL) BY_CODE[c.code] = c

export function codecFor(code: number): AnyCodec | undefined {
  return BY_CODE[code]
}

export const TYPED_OPTION_CODES: readonly number[] = ALL.map((c) => c.code)
