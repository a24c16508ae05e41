#!/usr/bin/env node
/**
 * `netboot`: the one command. `serve` runs the server; every other command talks to
 * a running server's admin API, except `--local` token and audit commands, which
 * open the database directly on the server host (to bootstrap the first token, or
 * to audit a stopped server).
 */
import { existsSync, readFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { Command, CommanderError, Option } from 'commander'
import { stringify as stringifyYaml } from 'yaml'
import { isNetbootError, NetbootError } from '../errors.js'
import { DEFAULT_CONFIG_PATH, loadConfig, type LoadedConfig } from '../config/load.js'
import { createLogger } from '../log.js'
import { startServer } from '../serve.js'
import { SqliteStore } from '../store/sqlite/sqlite-store.js'
import type { AdminToken, AuditEntry, AuditVerdict, BootConfig, GoldenPcr, Image, ImportResult, Store, TpmIdentity } from '../store/store.js'
import type { Group, Node, NodeChanges } from '../inventory/model.js'
import { compressHostlist } from '../inventory/hostlist.js'
import { roleNames, type Role } from '../auth/roles.js'
import { createAdminToken } from '../http/admin/tokens.js'
import { version } from '../version.js'
import { ApiClient } from './client.js'
import { table } from './table.js'
import { uploadFile } from './upload.js'
import { registerImageBuild } from './image-build.js'
import { registerInitrd } from './initrd.js'

interface GlobalOpts { config?: string; url?: string; token?: string; json?: boolean }

const program = new Command()
  .name('netboot')
  .description('Network-boot appliance for bare-metal clusters: DHCP, TFTP, iPXE, images, cloud-init, TPM attestation.')
  .version(version)
  .option('-c, --config <file>', `configuration file (env NETBOOT_CONFIG; default ${DEFAULT_CONFIG_PATH} when it exists)`)
  .option('--url <url>', 'admin API URL (env NETBOOT_URL; default from the config: admin.url or http://admin.listen:admin.port)')
  .option('--token <token>', 'admin token (env NETBOOT_TOKEN, preferred: a flag shows in ps)')
  .option('--json', 'print JSON for scripts instead of tables')
  .showHelpAfterError('(add --help for usage)')
  .exitOverride()
  .addHelpText('after', `
Examples:
  netboot serve -c /etc/netboot/netboot.yaml
  netboot token create --local alice --role admin      # first token, on the server host
  export NETBOOT_TOKEN=nbt_…
  netboot group add compute
  netboot node import nodes.yaml
  netboot node list 'nid[001-004]'
  netboot node set 'nid[001-004]' --add-group gpu
  netboot audit list --action node`)

const g = (): GlobalOpts => program.opts<GlobalOpts>()

function config (): LoadedConfig {
  const path = g().config ?? process.env.NETBOOT_CONFIG ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined)
  return loadConfig(path)
}

function api (): ApiClient {
  // An empty variable counts as unset (`NETBOOT_TOKEN= netboot …`).
  let url = g().url ?? (process.env.NETBOOT_URL || undefined)
  let token = g().token ?? (process.env.NETBOOT_TOKEN || undefined)
  if (url === undefined || token === undefined) {
    const c = config()
    url ??= c.adminUrl
    token ??= c.config.admin.token
  }
  return new ApiClient(url.replace(/\/+$/, ''), token)
}

async function withLocalStore<T> (f: (s: Store) => Promise<T>): Promise<T> {
  const c = config()
  const store = SqliteStore.open(c.dbPath, { synchronous: c.config.database.synchronous })
  try { return await f(store) } finally { await store.close() }
}

const localActor = (): { kind: 'system'; id: string; name: string } => ({ kind: 'system', id: 'cli-local', name: `${userInfo().username}@local` })

function out (data: unknown, human: () => string): void {
  process.stdout.write((g().json === true ? JSON.stringify(data, null, 2) : human()) + '\n')
}

const enc = encodeURIComponent

// ---- serve ----------------------------------------------------------------

program.command('serve')
  .description('run the server: admin API, node HTTP (and DHCP/TFTP as they are enabled)')
  .action(async () => {
    const loaded = config()
    const log = createLogger(loaded.config.log.level)
    const running = await startServer(loaded, log)
    let stopping = false
    const stop = (sig: string): void => {
      if (stopping) return
      stopping = true
      log.info({ signal: sig }, 'shutting down')
      running.close().then(() => process.exit(0), (e: unknown) => { log.error({ err: e }, 'shutdown failed'); process.exit(1) })
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })

program.command('config')
  .description('check the configuration file and print it with defaults filled in')
  .argument('[action]', "'check' (the default)", 'check')
  .action((_action: string) => {
    const c = config()
    const shown = { ...c.config, admin: { ...c.config.admin, ...(c.config.admin.token !== undefined ? { token: '[redacted]' } : {}) } }
    out({ source: c.source, config: shown, database: c.dbPath, publicUrl: c.publicUrl, adminUrl: c.adminUrl },
      () => `${c.source}: ok\ndatabase  ${c.dbPath}\nnode URL  ${c.publicUrl}\nadmin URL ${c.adminUrl}`)
  })

// ---- nodes ----------------------------------------------------------------

const node = program.command('node').description('the node inventory (names accept host ranges like nid[001-009])')

const nodeRows = (nodes: readonly Node[]): string => table(
  ['NAME', 'XNAME', 'NID', 'GROUPS', 'MAC', 'IP', 'BMC_MAC', 'BMC_IP'],
  nodes.map((n) => [n.name, n.xname, n.nid, n.groups.join(','), n.interfaces.map((i) => i.mac).join(','), n.interfaces.map((i) => i.ip ?? '').filter(Boolean).join(','), n.bmcMac, n.bmcIp]))

node.command('import')
  .description('import a nodes.yaml (OpenCHAMI flat or interfaces form); all or nothing')
  .argument('<file>', "the file, or '-' for standard input")
  .option('--create-groups', 'create groups the file names that do not exist yet')
  .action(async (file: string, o: { createGroups?: boolean }) => {
    const document = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8')
    const r = await api().request<ImportResult>('POST', '/api/v1/nodes/import', { document, source: file === '-' ? 'stdin' : file, createGroups: o.createGroups === true })
    out(r, () => [
      `created ${r.created.length}${r.created.length > 0 ? ` (${compressHostlist(r.created)})` : ''}`,
      `updated ${r.updated.length}${r.updated.length > 0 ? ` (${compressHostlist(r.updated)})` : ''}`,
      `unchanged ${r.unchanged.length}`,
      ...(r.groupsCreated.length > 0 ? [`groups created: ${r.groupsCreated.join(', ')}`] : []),
    ].join('\n'))
  })

node.command('list')
  .description('list nodes')
  .argument('[range]', 'names or a host range')
  .option('-g, --group <group>', 'only members of this group')
  .action(async (range: string | undefined, o: { group?: string }) => {
    const q = new URLSearchParams({ ...(range !== undefined ? { select: range } : {}), ...(o.group !== undefined ? { group: o.group } : {}) })
    const r = await api().request<{ nodes: Node[] }>('GET', `/api/v1/nodes${q.size > 0 ? `?${q.toString()}` : ''}`)
    out(r.nodes, () => nodeRows(r.nodes))
  })

node.command('show')
  .description('show one node')
  .argument('<name>')
  .action(async (name: string) => {
    const n = await api().request<Node>('GET', `/api/v1/nodes/${enc(name)}`)
    out(n, () => [
      `name        ${n.name}`, `xname       ${n.xname ?? '-'}`, `nid         ${n.nid ?? '-'}`, `groups      ${n.groups.join(', ') || '-'}`,
      ...n.interfaces.map((i, k) => `interface ${k} ${i.mac}  ${i.ip ?? '-'}${i.network !== undefined ? `  (${i.network})` : ''}`),
      `bmc         ${n.bmcMac ?? '-'}  ${n.bmcIp ?? '-'}`, `created     ${n.createdAt}`, `updated     ${n.updatedAt}`,
    ].join('\n'))
  })

/** `router=IP,dns=IP+IP,domain=D,ntp=IP+IP,mtu=N` → the API's dhcp object. */
function parseDhcpOption (text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [k, v] = part.split('=') as [string, string | undefined]
    if (v === undefined || v === '') throw new NetbootError('BAD_REQUEST', `--dhcp: '${part}' is not key=value`)
    if (k === 'dns' || k === 'ntp') out[k] = v.split('+')
    else if (k === 'mtu') out[k] = Number(v)
    else if (k === 'router' || k === 'domain') out[k] = v
    else throw new NetbootError('BAD_REQUEST', `--dhcp: unknown option '${k}' (router, dns, domain, ntp, mtu)`)
  }
  return out
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)]

node.command('add')
  .description('add one node')
  .argument('<name>')
  .option('--mac <mac>', 'boot interface MAC (repeatable, pairs with --ip in order)', collect)
  .option('--ip <ip>', 'reserved IPv4 for the interface (repeatable)', collect)
  .option('--xname <xname>').option('--nid <n>', 'node id', (v) => Number(v))
  .option('-g, --group <group>', 'group (repeatable)', collect)
  .option('--bmc-mac <mac>').option('--bmc-ip <ip>')
  .action(async (name: string, o: { mac?: string[]; ip?: string[]; xname?: string; nid?: number; group?: string[]; bmcMac?: string; bmcIp?: string }) => {
    const macs = o.mac ?? []
    if ((o.ip ?? []).length > macs.length) throw new NetbootError('BAD_REQUEST', 'each --ip needs a --mac')
    const n = await api().request<Node>('POST', '/api/v1/nodes', {
      name,
      interfaces: macs.map((mac, i) => ({ mac, ...(o.ip?.[i] !== undefined ? { ip: o.ip[i] } : {}) })),
      groups: o.group ?? [],
      ...(o.xname !== undefined ? { xname: o.xname } : {}),
      ...(o.nid !== undefined ? { nid: o.nid } : {}),
      ...(o.bmcMac !== undefined ? { bmcMac: o.bmcMac } : {}),
      ...(o.bmcIp !== undefined ? { bmcIp: o.bmcIp } : {}),
    })
    out(n, () => nodeRows([n]))
  })

node.command('set')
  .description("change nodes; a range changes every node in it, in one transaction ('none' clears a field)")
  .argument('<range>')
  .option('--xname <xname>').option('--nid <n>')
  .option('--groups <list>', 'replace the group list (comma-separated)')
  .option('--add-group <group>', 'add to a group (repeatable)', collect)
  .option('--remove-group <group>', 'remove from a group (repeatable)', collect)
  .option('--bmc-mac <mac>').option('--bmc-ip <ip>')
  .option('--mac <mac>', 'replace the interfaces with these MACs (repeatable; with --ip)', collect)
  .option('--ip <ip>', 'IPv4 for the matching --mac', collect)
  .option('--dhcp <options>', "DHCP options over the subnet's: router=IP,dns=IP+IP,domain=D,ntp=IP+IP,mtu=N ('none' clears)")
  .action(async (range: string, o: Record<string, string | string[] | undefined>) => {
    const clear = <T>(v: string | undefined, f: (s: string) => T): T | null | undefined => (v === undefined ? undefined : v === 'none' ? null : f(v))
    const changes: Record<string, unknown> = {
      xname: clear(o.xname as string | undefined, (s) => s),
      nid: clear(o.nid as string | undefined, Number),
      bmcMac: clear(o.bmcMac as string | undefined, (s) => s),
      bmcIp: clear(o.bmcIp as string | undefined, (s) => s),
      groups: o.groups === undefined ? undefined : collect(o.groups as string),
      addGroups: o.addGroup,
      removeGroups: o.removeGroup,
      interfaces: o.mac === undefined ? undefined : (o.mac as string[]).map((mac, i) => ({ mac, ...((o.ip as string[] | undefined)?.[i] !== undefined ? { ip: (o.ip as string[])[i] } : {}) })),
      dhcp: clear(o.dhcp as string | undefined, parseDhcpOption),
    }
    const body = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as NodeChanges
    if (Object.keys(body).length === 0) throw new NetbootError('BAD_REQUEST', 'nothing to change: give at least one option (see netboot node set --help)')
    const r = await api().request<{ nodes: Node[] }>('PATCH', `/api/v1/nodes/${enc(range)}`, body)
    out(r.nodes, () => nodeRows(r.nodes))
  })

node.command('rm')
  .description('remove nodes (their TPM identities and leases go with them)')
  .argument('<range>')
  .action(async (range: string) => {
    const r = await api().request<{ deleted: string[] }>('DELETE', `/api/v1/nodes/${enc(range)}`)
    out(r, () => `removed ${r.deleted.length} (${compressHostlist(r.deleted)})`)
  })

// ---- groups ---------------------------------------------------------------

const group = program.command('group').description('node groups')
const groupRows = (gs: readonly Group[]): string => table(['NAME', 'MEMBERS', 'DESCRIPTION'], gs.map((x) => [x.name, x.members, x.description]))

group.command('list').description('list groups').action(async () => {
  const r = await api().request<{ groups: Group[] }>('GET', '/api/v1/groups')
  out(r.groups, () => groupRows(r.groups))
})
group.command('show').argument('<name>').description('show a group and its members').action(async (name: string) => {
  const c = api()
  const grp = await c.request<Group>('GET', `/api/v1/groups/${enc(name)}`)
  const members = await c.request<{ nodes: Node[] }>('GET', `/api/v1/nodes?group=${enc(name)}`)
  out({ ...grp, nodes: members.nodes.map((n) => n.name) }, () =>
    `name         ${grp.name}\ndescription  ${grp.description || '-'}\nmembers      ${grp.members} ${compressHostlist(members.nodes.map((n) => n.name))}`)
})
group.command('add').argument('<name>').option('-d, --description <text>', '', '').description('create a group')
  .action(async (name: string, o: { description: string }) => {
    const r = await api().request<Group>('POST', '/api/v1/groups', { name, description: o.description })
    out(r, () => groupRows([r]))
  })
group.command('set').argument('<name>').requiredOption('-d, --description <text>').description('change a group')
  .action(async (name: string, o: { description: string }) => {
    const r = await api().request<Group>('PATCH', `/api/v1/groups/${enc(name)}`, { description: o.description })
    out(r, () => groupRows([r]))
  })
group.command('rm').argument('<name>').option('--force', 'also remove the memberships of its nodes').description('remove a group')
  .action(async (name: string, o: { force?: boolean }) => {
    await api().request('DELETE', `/api/v1/groups/${enc(name)}?force=${o.force === true}`)
    out({ deleted: name }, () => `removed group ${name}`)
  })

// ---- tokens ---------------------------------------------------------------

const token = program.command('token').description('admin API tokens (stored hashed; the value is shown once)')
const tokenRows = (ts: readonly AdminToken[]): string => table(['ID', 'NAME', 'ROLE', 'CREATED', 'EXPIRES', 'LAST_USED', 'REVOKED'],
  ts.map((t) => [t.id, t.name, t.role, t.createdAt, t.expiresAt, t.lastUsedAt, t.revokedAt]))
const localOpt = (): Option => new Option('--local', 'open the database directly (on the server host; bootstraps the first token)')

token.command('create')
  .description('create a token and print its value (once)')
  .argument('<name>', 'who or what will use it')
  .addOption(new Option('-r, --role <role>', 'what it may do').choices(roleNames).default('admin'))
  .option('--expires-days <n>', 'expire after N days', (v) => Number(v))
  .addOption(localOpt())
  .action(async (name: string, o: { role: Role; expiresDays?: number; local?: boolean }) => {
    const req = { name, role: o.role, ...(o.expiresDays !== undefined ? { expiresInDays: o.expiresDays } : {}) }
    const r = o.local === true
      ? await withLocalStore(async (s) => await createAdminToken(s, req, localActor()))
      : await api().request<{ token: AdminToken; value: string }>('POST', '/api/v1/tokens', req)
    out(r, () => `${r.value}\n\n(token ${r.token.id}, role ${r.token.role}; shown once: store it now, e.g. export NETBOOT_TOKEN=…)`)
  })
token.command('list').description('list tokens').addOption(localOpt()).action(async (o: { local?: boolean }) => {
  const ts = o.local === true ? await withLocalStore(async (s) => await s.listTokens()) : (await api().request<{ tokens: AdminToken[] }>('GET', '/api/v1/tokens')).tokens
  out(ts, () => tokenRows(ts))
})
token.command('revoke').argument('<id>').description('revoke a token').addOption(localOpt()).action(async (id: string, o: { local?: boolean }) => {
  const t = o.local === true ? await withLocalStore(async (s) => await s.revokeToken(id, localActor())) : await api().request<AdminToken>('DELETE', `/api/v1/tokens/${enc(id)}`)
  out(t, () => `revoked ${t.id} (${t.name})`)
})

// ---- audit ----------------------------------------------------------------

const audit = program.command('audit').description('the append-only, hash-chained audit log')
audit.command('list')
  .description('list entries, oldest first')
  .option('--after <seq>', 'entries after this sequence number', (v) => Number(v))
  .option('-n, --limit <n>', 'at most this many', (v) => Number(v), 100)
  .option('--action <action>', "an action or its prefix (e.g. 'node' or 'node.update')")
  .option('--target <target>', 'entries about this target')
  .addOption(localOpt())
  .action(async (o: { after?: number; limit: number; action?: string; target?: string; local?: boolean }) => {
    const q = { limit: o.limit, ...(o.after !== undefined ? { afterSeq: o.after } : {}), ...(o.action !== undefined ? { action: o.action } : {}), ...(o.target !== undefined ? { target: o.target } : {}) }
    const entries = o.local === true
      ? await withLocalStore(async (s) => await s.listAudit(q))
      : (await api().request<{ entries: AuditEntry[] }>('GET', `/api/v1/audit?${new URLSearchParams(Object.entries({ limit: o.limit, after: o.after, action: o.action, target: o.target }).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)] as [string, string])).toString()}`)).entries
    out(entries, () => table(['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME', 'DETAIL'],
      entries.map((e) => [e.seq, e.time, e.actor.name ?? e.actor.id, e.action, e.target, e.outcome, JSON.stringify(e.detail).slice(0, 80)])))
  })
audit.command('verify')
  .description('verify the hash chain; exits 1 if any entry was edited, removed or reordered')
  .addOption(localOpt())
  .action(async (o: { local?: boolean }) => {
    const v = o.local === true ? await withLocalStore(async (s) => await s.verifyAudit()) : await api().request<AuditVerdict>('GET', '/api/v1/audit/verify')
    out(v, () => (v.ok ? `audit log ok: ${v.entries} entries verified` : `audit log BROKEN at entry ${v.brokenAt ?? '?'}: ${v.reason ?? ''}`))
    if (!v.ok) process.exitCode = 1
  })

audit.command('show')
  .description('one entry with all its evidence')
  .argument('<seq>', 'sequence number', (v) => Number(v))
  .addOption(localOpt())
  .action(async (seq: number, o: { local?: boolean }) => {
    const e = o.local === true ? await withLocalStore(async (s) => await s.getAudit(seq)) : await api().request<AuditEntry>('GET', `/api/v1/audit/${seq}`)
    if (e === undefined) throw new NetbootError('NOT_FOUND', `no audit entry ${seq}`)
    out(e, () => JSON.stringify(e, null, 2))
  })
audit.command('export')
  .description('every entry (or those after --after) as JSON lines, for a SIEM')
  .option('--after <seq>', 'entries after this sequence number', (v) => Number(v), 0)
  .addOption(localOpt())
  .action(async (o: { after: number; local?: boolean }) => {
    const page = 1000
    let after = o.after
    const fetchPage = async (a: number): Promise<AuditEntry[]> => o.local === true
      ? await withLocalStore(async (s) => await s.listAudit({ afterSeq: a, limit: page }))
      : (await api().request<{ entries: AuditEntry[] }>('GET', `/api/v1/audit?after=${a}&limit=${page}`)).entries
    for (;;) {
      const entries = await fetchPage(after)
      for (const e of entries) process.stdout.write(JSON.stringify(e) + '\n')
      if (entries.length < page) break
      after = entries.at(-1)!.seq
    }
  })

// ---- enrollment -------------------------------------------------------------

const enroll = program.command('enroll').description("nodes' TPMs: discoveries and enrollments awaiting a decision, accepted and rejected TPMs")
const identityRows = (ids: readonly TpmIdentity[]): string => table(['ID', 'STATE', 'NODE', 'POLICY', 'EK_SHA256', 'MACS', 'SERIAL', 'LAST_ATTESTED'],
  ids.map((i) => [i.id, i.state, i.node, i.policy, i.ekSha256.slice(0, 16) + '…', i.macs.join(','), (i.discovery?.hardware as { serial?: string } | undefined)?.serial, i.lastAttestedAt]))
enroll.command('list').description('list TPM identities')
  .addOption(new Option('--state <state>').choices(['pending', 'enrolled', 'rejected']))
  .action(async (o: { state?: string }) => {
    const r = await api().request<{ identities: TpmIdentity[] }>('GET', `/api/v1/enroll${o.state !== undefined ? `?state=${o.state}` : ''}`)
    out(r.identities, () => identityRows(r.identities))
  })
enroll.command('show').argument('<id>').description('one TPM identity with what discovery reported').action(async (id: string) => {
  const i = await api().request<TpmIdentity>('GET', `/api/v1/enroll/${enc(id)}`)
  out(i, () => JSON.stringify(i, null, 2))
})
enroll.command('accept').argument('<id>').option('--node <name>', 'the node this hardware is (for discovered hardware)')
  .description('accept a pending TPM: it may attest from now on').action(async (id: string, o: { node?: string }) => {
    const i = await api().request<TpmIdentity>('POST', `/api/v1/enroll/${enc(id)}/accept`, o.node !== undefined ? { node: o.node } : {})
    out(i, () => identityRows([i]))
  })
enroll.command('reject').argument('<id>').description('reject a TPM: it is refused from now on').action(async (id: string) => {
  const i = await api().request<TpmIdentity>('POST', `/api/v1/enroll/${enc(id)}/reject`)
  out(i, () => identityRows([i]))
})
enroll.command('add').description("pre-enroll a node's TPM by its EK (for enrollment: pre-enrolled)")
  .argument('<node>')
  .option('--ek-pub <file>', 'the EK public area, TPM2B_PUBLIC (as tpm2_createek -u writes it)')
  .option('--ek-sha256 <hex>', 'or the SHA-256 of that file')
  .action(async (node: string, o: { ekPub?: string; ekSha256?: string }) => {
    if (o.ekPub === undefined && o.ekSha256 === undefined) throw new NetbootError('BAD_REQUEST', 'give --ek-pub FILE or --ek-sha256 HEX')
    const i = await api().request<TpmIdentity>('POST', '/api/v1/enroll', {
      node, ...(o.ekPub !== undefined ? { ekPublic: readFileSync(o.ekPub).toString('base64') } : {}), ...(o.ekSha256 !== undefined ? { ekSha256: o.ekSha256 } : {}),
    })
    out(i, () => identityRows([i]))
  })

const pcr = program.command('pcr').description('expected PCR values per image and node (attestation.pcr_policy)')
pcr.command('list').description('learned and approved values')
  .addOption(new Option('--scope <scope>').choices(['image', 'node'])).option('--target <name>')
  .action(async (o: { scope?: string; target?: string }) => {
    const q = new URLSearchParams({ ...(o.scope !== undefined ? { scope: o.scope } : {}), ...(o.target !== undefined ? { target: o.target } : {}) })
    const r = await api().request<{ values: GoldenPcr[] }>('GET', `/api/v1/pcr${q.size > 0 ? `?${q.toString()}` : ''}`)
    out(r.values, () => table(['SCOPE', 'TARGET', 'BANK', 'PCR', 'STATE', 'VALUE', 'SOURCE'], r.values.map((v) => [v.scope, v.target, v.bank, v.pcr, v.state, v.value, v.source])))
  })
pcr.command('approve').description('approve the learned values of an image (or --scope node): enforced from now on')
  .argument('<target>').addOption(new Option('--scope <scope>').choices(['image', 'node']).default('image'))
  .action(async (target: string, o: { scope: string }) => {
    const r = await api().request<{ approved: number }>('POST', '/api/v1/pcr/approve', { scope: o.scope, target })
    out(r, () => `approved ${r.approved} PCR values of ${o.scope} ${target}`)
  })

// ---- cloud-init -------------------------------------------------------------

const ci = program.command('cloud-init').description('cloud-init payloads per group and node (plain, and --secure for secrets)')
ci.command('set')
  .description("store payloads from a file in the OpenCHAMI format (name + cloud-init: userdata/metadata/…); with TARGET the file holds that one payload")
  .argument('[target]', 'a group or node')
  .requiredOption('-f, --file <file>', "payload file, or '-' for standard input")
  .option('--secure', 'secrets: served only to the attested node, encrypted to it')
  .action(async (target: string | undefined, o: { file: string; secure?: boolean }) => {
    const document = o.file === '-' ? readFileSync(0, 'utf8') : readFileSync(o.file, 'utf8')
    const r = await api().request<{ stored: { target: string; scope: string; secure: boolean; warnings: string[] }[] }>('PUT', '/api/v1/cloud-init', {
      document, source: o.file === '-' ? 'stdin' : o.file, secure: o.secure === true, ...(target !== undefined ? { target } : {}),
    })
    out(r.stored, () => r.stored.map((x) => `stored ${x.secure ? 'secure ' : ''}${x.scope} ${x.target}${x.warnings.map((w) => `\n  warning: ${w}`).join('')}`).join('\n'))
  })
ci.command('get').argument('<target>', 'a group or node').option('--secure').description('the payload stored for a group or node')
  .action(async (target: string, o: { secure?: boolean }) => {
    const r = await api().request<{ scope: string; data: unknown }>('GET', `/api/v1/cloud-init/${enc(target)}?secure=${o.secure === true}`)
    out(r, () => stringifyYaml({ name: target, 'cloud-init': r.data }))
  })
ci.command('rm').argument('<target>').option('--secure').description('remove the payload of a group or node')
  .action(async (target: string, o: { secure?: boolean }) => {
    await api().request('DELETE', `/api/v1/cloud-init/${enc(target)}?secure=${o.secure === true}`)
    out({ removed: target }, () => `removed ${o.secure === true ? 'secure ' : ''}cloud-init data of ${target}`)
  })
ci.command('show').argument('<node>').option('--secure', 'include secure data (audited)')
  .addOption(new Option('--doc <doc>', 'one document only').choices(['meta-data', 'user-data', 'vendor-data', 'network-config']))
  .description('what a node gets: its merged documents')
  .action(async (name: string, o: { secure?: boolean; doc?: string }) => {
    const r = await api().request<{ instanceId: string; metaData: string; userData: string; vendorData: string; networkConfig?: string }>('GET', `/api/v1/nodes/${enc(name)}/cloud-init?secure=${o.secure === true}`)
    const docs: [string, string | undefined][] = [['meta-data', r.metaData], ['user-data', r.userData], ['vendor-data', r.vendorData], ['network-config', r.networkConfig]]
    out(r, () => docs.filter(([k, v]) => v !== undefined && (o.doc === undefined || o.doc === k)).map(([k, v]) => (o.doc !== undefined ? v! : `--- ${k}\n${v!}`)).join('\n'))
  })

// ---- images and boot ----------------------------------------------------------

const image = program.command('image').description('the image store: kernels, initrds and root images, by content digest')
const imageRows = (is: readonly Image[]): string => table(['NAME', 'VERSION', 'KERNEL', 'INITRD', 'ROOTFS', 'PARAMS', 'CREATED'],
  is.map((i) => [i.name, i.version, i.kernelSha256.slice(0, 12), i.initrdSha256.slice(0, 12), i.rootfsSha256?.slice(0, 12), i.params, i.createdAt]))

image.command('add')
  .description('upload kernel, initrd and rootfs (each once, by content) and register them as an image version')
  .argument('<name>')
  .requiredOption('--kernel <file>').requiredOption('--initrd <file>').option('--rootfs <file>', 'squashfs root image')
  .option('--uki <file>', 'unified kernel image (kernel + initrd in one PE, `netboot initrd build --uki`) that UEFI nodes boot instead; its PCR 4 digest is checked at attestation')
  .option('--image-version <v>', 'version label (default: a UTC timestamp)')
  .option('--params <text>', 'kernel parameters the image needs', '')
  .action(async (name: string, o: { kernel: string; initrd: string; rootfs?: string; uki?: string; imageVersion?: string; params: string }) => {
    const c = api()
    const upload = async (what: string, file: string): Promise<string> => await uploadFile(c, what, file)
    const kernelSha256 = await upload('kernel', o.kernel)
    const initrdSha256 = await upload('initrd', o.initrd)
    const rootfsSha256 = o.rootfs !== undefined ? await upload('rootfs', o.rootfs) : undefined
    const ukiSha256 = o.uki !== undefined ? await upload('uki', o.uki) : undefined
    const i = await c.request<Image>('POST', '/api/v1/images', {
      name, kernelSha256, initrdSha256, params: o.params, ...(rootfsSha256 !== undefined ? { rootfsSha256 } : {}), ...(ukiSha256 !== undefined ? { ukiSha256 } : {}),
      ...(o.imageVersion !== undefined ? { version: o.imageVersion } : {}),
    })
    out(i, () => imageRows([i]))
  })
registerImageBuild(image, { api, out, imageRows })
registerInitrd(program, out)
image.command('list').description('images and their versions').action(async () => {
  const r = await api().request<{ images: Image[] }>('GET', '/api/v1/images')
  out(r.images, () => imageRows(r.images))
})
image.command('show').argument('<name>').description('the versions of an image, with full digests').action(async (name: string) => {
  const r = await api().request<{ images: Image[] }>('GET', `/api/v1/images/${enc(name)}`)
  out(r.images, () => r.images.map((i) => [`${i.name} ${i.version} (${i.createdAt})`, `  kernel  sha256:${i.kernelSha256}`, `  initrd  sha256:${i.initrdSha256}`,
    `  rootfs  ${i.rootfsSha256 !== undefined ? `sha256:${i.rootfsSha256}` : '-'}`,
    ...(i.ukiSha256 !== undefined ? [`  uki     sha256:${i.ukiSha256}`, `          PCR 4 (Authenticode) sha256:${i.ukiAuthenticode?.sha256 ?? '-'} sha1:${i.ukiAuthenticode?.sha1 ?? '-'}`] : ['  uki     -']),
    `  params  ${i.params || '-'}`].join('\n')).join('\n'))
})
image.command('rm').argument('<name>').option('--image-version <v>', 'only this version').description('remove an image; refused while a boot configuration uses it')
  .action(async (name: string, o: { imageVersion?: string }) => {
    const r = await api().request<{ removed: Image[] }>('DELETE', `/api/v1/images/${enc(name)}${o.imageVersion !== undefined ? `?version=${enc(o.imageVersion)}` : ''}`)
    out(r, () => `removed ${r.removed.map((i) => `${i.name}@${i.version}`).join(', ')}`)
  })

const bootCmd = program.command('boot').description('boot configuration: default → group → node (node wins; first listed group wins)')
const bootRows = (bs: readonly BootConfig[]): string => table(['SCOPE', 'TARGET', 'IMAGE', 'PARAMS', 'UPDATED'], bs.map((b) => [b.scope, b.target, b.image, b.params, b.updatedAt]))

/** `default`, a group, or a node range, in that order of preference. */
async function bootScopes (c: ApiClient, target: string): Promise<{ scope: 'default' | 'group' | 'node'; target: string }[]> {
  if (target === 'default') return [{ scope: 'default', target: '' }]
  try {
    await c.request('GET', `/api/v1/groups/${enc(target)}`)
    return [{ scope: 'group', target }]
  } catch (e) {
    if (!isNetbootError(e, 'GROUP_NOT_FOUND')) throw e
  }
  const nodes = await c.request<{ nodes: Node[] }>('GET', `/api/v1/nodes?select=${enc(target)}`)
  if (nodes.nodes.length === 0) throw new NetbootError('NODE_NOT_FOUND', `'${target}' is not default, a group, or a node`)
  return nodes.nodes.map((n) => ({ scope: 'node' as const, target: n.name }))
}

bootCmd.command('set')
  .description("set the image and/or kernel parameters of 'default', a group, or nodes ('none' clears)")
  .argument('<target>', "default | GROUP | NODE-RANGE")
  .option('--image <name>', 'image name, or NAME@VERSION to pin a version')
  .option('--params <text>', 'kernel parameters (key=value replaces a lower layer; -key removes it)')
  .action(async (target: string, o: { image?: string; params?: string }) => {
    if (o.image === undefined && o.params === undefined) throw new NetbootError('BAD_REQUEST', 'give --image and/or --params')
    const c = api()
    const set: BootConfig[] = []
    for (const s of await bootScopes(c, target)) {
      set.push(await c.request<BootConfig>('PUT', '/api/v1/boot', {
        ...s, ...(o.image !== undefined ? { image: o.image === 'none' ? null : o.image } : {}), ...(o.params !== undefined ? { params: o.params === 'none' ? null : o.params } : {}),
      }))
    }
    out(set, () => bootRows(set))
  })
bootCmd.command('list').description('every boot configuration').action(async () => {
  const r = await api().request<{ configs: BootConfig[] }>('GET', '/api/v1/boot')
  out(r.configs, () => bootRows(r.configs))
})
bootCmd.command('rm').argument('<target>', 'default | GROUP | NODE-RANGE').description('remove boot configurations').action(async (target: string) => {
  const c = api()
  const scopes = await bootScopes(c, target)
  for (const s of scopes) await c.request('DELETE', `/api/v1/boot?scope=${s.scope}&target=${enc(s.target)}`)
  out({ removed: scopes }, () => `removed ${scopes.length} boot configuration(s)`)
})
bootCmd.command('show').argument('<node>').description('the exact iPXE script, image and kernel command line a node gets').action(async (name: string) => {
  const r = await api().request<{ image: string; imageRef: string; cmdline: string; script: string }>('GET', `/api/v1/nodes/${enc(name)}/boot`)
  out(r, () => r.script)
})

// ---- run ------------------------------------------------------------------

try {
  await program.parseAsync(process.argv)
} catch (e) {
  if (e instanceof CommanderError) {
    process.exit(e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 2)
  }
  if (isNetbootError(e)) {
    process.stderr.write(`netboot: ${e.code}: ${e.message}\n`)
    for (const d of e.details) process.stderr.write(`  ${d.where !== undefined ? `${d.where}: ` : ''}${d.message}\n`)
    process.exit(1)
  }
  process.stderr.write(`netboot: ${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
}
