/**
 * JSON schemas of the admin API (TypeBox: one definition gives the validator, the
 * OpenAPI document and the TypeScript type).
 */
import { Type, type Static } from '@sinclair/typebox'
import { roleNames } from '../../auth/roles.js'

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Array(Type.Object({ where: Type.Optional(Type.String()), message: Type.String(), code: Type.Optional(Type.String()) }))),
  }),
}, { $id: 'Error' })

const Mac = Type.String({ minLength: 12, maxLength: 17, description: 'MAC address; colons, dashes, dots or bare hex' })
const Ip = Type.String({ minLength: 7, maxLength: 15, description: 'IPv4 address' })
const Name = Type.String({ minLength: 1, maxLength: 63 })

export const NodeInterface = Type.Object({
  mac: Mac,
  ip: Type.Optional(Ip),
  network: Type.Optional(Type.String({ maxLength: 63 })),
}, { additionalProperties: false })

const DhcpOverridesBody = Type.Object({
  router: Type.Optional(Ip),
  dns: Type.Optional(Type.Array(Ip, { maxItems: 8 })),
  domain: Type.Optional(Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.-]+$' })),
  ntp: Type.Optional(Type.Array(Ip, { maxItems: 8 })),
  mtu: Type.Optional(Type.Integer({ minimum: 576, maximum: 65535 })),
}, { additionalProperties: false, description: "DHCP options for this node, over its subnet's" })

export const NodeSpecBody = Type.Object({
  name: Name,
  xname: Type.Optional(Type.String({ maxLength: 32 })),
  nid: Type.Optional(Type.Integer({ minimum: 0 })),
  groups: Type.Array(Name, { default: [], maxItems: 256 }),
  interfaces: Type.Array(NodeInterface, { default: [], maxItems: 64 }),
  bmcMac: Type.Optional(Mac),
  bmcIp: Type.Optional(Ip),
  dhcp: Type.Optional(DhcpOverridesBody),
}, { additionalProperties: false })
export type NodeSpecBody = Static<typeof NodeSpecBody>

export const NodeBody = Type.Composite([NodeSpecBody, Type.Object({ createdAt: Type.String(), updatedAt: Type.String() })], { $id: 'Node' })

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) => Type.Union([t, Type.Null()])

export const NodeChangesBody = Type.Object({
  xname: Type.Optional(Nullable(Type.String({ maxLength: 32 }))),
  nid: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
  bmcMac: Type.Optional(Nullable(Mac)),
  bmcIp: Type.Optional(Nullable(Ip)),
  groups: Type.Optional(Type.Array(Name, { maxItems: 256 })),
  addGroups: Type.Optional(Type.Array(Name, { maxItems: 256 })),
  removeGroups: Type.Optional(Type.Array(Name, { maxItems: 256 })),
  interfaces: Type.Optional(Type.Array(NodeInterface, { maxItems: 64 })),
  dhcp: Type.Optional(Type.Union([DhcpOverridesBody, Type.Null()])),
}, { additionalProperties: false, minProperties: 1 })
export type NodeChangesBody = Static<typeof NodeChangesBody>

export const ImportBody = Type.Object({
  document: Type.String({ maxLength: 32 * 1024 * 1024, description: 'the nodes.yaml text' }),
  source: Type.String({ maxLength: 256, default: 'nodes.yaml', description: 'file name, for error messages and the audit log' }),
  createGroups: Type.Boolean({ default: false }),
}, { additionalProperties: false })

export const ImportResultBody = Type.Object({
  created: Type.Array(Type.String()),
  updated: Type.Array(Type.String()),
  unchanged: Type.Array(Type.String()),
  groupsCreated: Type.Array(Type.String()),
})

export const GroupBody = Type.Object({
  name: Type.String(), description: Type.String(), members: Type.Integer(), createdAt: Type.String(),
}, { $id: 'Group' })

export const GroupCreateBody = Type.Object({
  name: Name,
  description: Type.String({ maxLength: 1024, default: '' }),
}, { additionalProperties: false })

export const GroupChangesBody = Type.Object({
  description: Type.Optional(Type.String({ maxLength: 1024 })),
}, { additionalProperties: false })

export const RoleSchema = Type.Union(roleNames.map((r) => Type.Literal(r)))

export const TokenBody = Type.Object({
  id: Type.String(), name: Type.String(), role: Type.String(), createdAt: Type.String(), createdBy: Type.String(),
  expiresAt: Type.Optional(Type.String()), revokedAt: Type.Optional(Type.String()), lastUsedAt: Type.Optional(Type.String()),
}, { $id: 'Token' })

export const TokenCreateBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' }),
  role: RoleSchema,
  expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
}, { additionalProperties: false })

export const AuditEntryBody = Type.Object({
  seq: Type.Integer(),
  time: Type.String(),
  actor: Type.Object({ kind: Type.String(), id: Type.String(), name: Type.Optional(Type.String()) }),
  action: Type.String(),
  target: Type.Optional(Type.String()),
  outcome: Type.String(),
  detail: Type.Record(Type.String(), Type.Unknown()),
  prevHash: Type.String(),
  hash: Type.String(),
}, { $id: 'AuditEntry' })

export const AuditQueryString = Type.Object({
  after: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  action: Type.Optional(Type.String({ maxLength: 64 })),
  target: Type.Optional(Type.String({ maxLength: 256 })),
}, { additionalProperties: false })
