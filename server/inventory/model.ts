/**
 * The inventory model as callers see it. Identifiers are canonical (see
 * addresses.ts): lower-case names, colon MACs, dotted-quad IPv4.
 */

export interface NodeInterface {
  readonly mac: string
  /** Reserved IPv4 address handed out by DHCP; absent for an interface that only boots. */
  readonly ip?: string
  /** Network name, as in the OpenCHAMI `ip_addrs[].name` (e.g. `management`). */
  readonly network?: string
}

/** DHCP options for one node, over its subnet's (RFC 2132 §3, §5, §8). */
export interface DhcpOverrides {
  readonly router?: string
  readonly dns?: string[]
  readonly domain?: string
  readonly ntp?: string[]
  readonly mtu?: number
}

export interface Node {
  readonly name: string
  readonly xname?: string
  readonly nid?: number
  readonly groups: string[]
  readonly interfaces: NodeInterface[]
  readonly bmcMac?: string
  readonly bmcIp?: string
  readonly dhcp?: DhcpOverrides
  readonly createdAt: string
  readonly updatedAt: string
}

/** What an admin supplies to create a node; timestamps are the store's. */
export type NodeSpec = Omit<Node, 'createdAt' | 'updatedAt'>

/** Fields `node set` may change. `null` clears an optional field. */
export interface NodeChanges {
  readonly xname?: string | null
  readonly nid?: number | null
  readonly bmcMac?: string | null
  readonly bmcIp?: string | null
  /** Replace the group list. */
  readonly groups?: readonly string[]
  readonly addGroups?: readonly string[]
  readonly removeGroups?: readonly string[]
  /** Replace the interface list. */
  readonly interfaces?: readonly NodeInterface[]
  /** Replace the node's DHCP overrides; null clears them. */
  readonly dhcp?: DhcpOverrides | null
}

export interface Group {
  readonly name: string
  readonly description: string
  readonly members: number
  readonly createdAt: string
}

/** Who did something: an admin token, the server itself, or a node. */
export interface Actor {
  readonly kind: 'admin' | 'system' | 'node'
  /** Token id and name for admins, node name for nodes, a component for the system. */
  readonly id: string
  readonly name?: string
}
