/**
 * Admin roles and the rights they carry. A route names the one right it needs;
 * a token's role either has it (the request goes on) or not (403 FORBIDDEN).
 */

export const rights = ['inventory:read', 'inventory:write', 'tpm:manage', 'tokens:manage', 'audit:read'] as const
export type Right = typeof rights[number]

export const roles = {
  /** Everything, including creating and revoking tokens. */
  admin: ['inventory:read', 'inventory:write', 'tpm:manage', 'tokens:manage', 'audit:read'],
  /** Day-to-day inventory and enrollment work; cannot mint tokens. */
  operator: ['inventory:read', 'inventory:write', 'tpm:manage', 'audit:read'],
  /** Read-only inventory. */
  viewer: ['inventory:read'],
  /** Security team: the audit log and read-only inventory. */
  auditor: ['inventory:read', 'audit:read'],
} as const satisfies Record<string, readonly Right[]>

export type Role = keyof typeof roles
export const roleNames = Object.keys(roles) as Role[]

export function roleHas (role: Role, right: Right): boolean {
  return (roles[role] as readonly Right[]).includes(right)
}
