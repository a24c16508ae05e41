/**
 * The configuration schema: one typed object, validated once at start-up. The
 * commented example `netboot.example.yaml` is its documentation; a test checks
 * that the example loads and names every key the schema knows.
 * Keys are snake_case, as in the YAML file.
 */
import { Type, type Static } from '@sinclair/typebox'

const Ipv4 = Type.String({ format: 'ipv4addr', description: 'dotted-quad IPv4 address' })
const Listen = Type.String({ format: 'ipv4addr', description: 'address to listen on' })

const Subnet = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 63 }),
  network: Type.String({ format: 'cidr', description: 'network in CIDR form, e.g. 172.16.0.0/24' }),
  interface: Type.Optional(Type.String({ minLength: 1, description: 'local interface this subnet is on (directly attached subnets)' })),
  pool: Type.Array(Type.String({ format: 'ipv4range', description: 'FIRST-LAST' }), { default: [] }),
  router: Type.Optional(Ipv4),
  dns: Type.Array(Ipv4, { default: [] }),
  domain: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
  ntp: Type.Array(Ipv4, { default: [] }),
  mtu: Type.Optional(Type.Integer({ minimum: 576, maximum: 65535 })),
  lease_time: Type.Optional(Type.Integer({ minimum: 60, maximum: 31_536_000 })),
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  server: Type.Object({
    address: Type.Optional(Ipv4),
    interfaces: Type.Array(Type.String({ minLength: 1, maxLength: 15 }), { default: [] }),
    public_url: Type.Optional(Type.String({ format: 'http-url' })),
  }, { additionalProperties: false, default: {} }),
  http: Type.Object({
    listen: Type.String({ format: 'ipv4addr', default: '0.0.0.0' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    body_limit: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024 }),
    /** Reverse proxies whose X-Forwarded-For names the real requester (cloud-init by address). */
    trusted_proxies: Type.Array(Type.String({ format: 'ipv4addr' }), { default: [] }),
  }, { additionalProperties: false, default: {} }),
  admin: Type.Object({
    listen: Type.String({ format: 'ipv4addr', default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8081 }),
    url: Type.Optional(Type.String({ format: 'http-url' })),
    token: Type.Optional(Type.String({ minLength: 1 })),
    metrics_public: Type.Boolean({ default: true }),
  }, { additionalProperties: false, default: {} }),
  data_dir: Type.String({ minLength: 1, default: '/var/lib/netboot' }),
  database: Type.Object({
    driver: Type.Literal('sqlite', { default: 'sqlite' }),
    path: Type.Optional(Type.String({ minLength: 1 })),
    synchronous: Type.Union([Type.Literal('normal'), Type.Literal('full')], { default: 'normal' }),
  }, { additionalProperties: false, default: {} }),
  log: Type.Object({
    level: Type.Union([
      Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
      Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent'),
    ], { default: 'info' }),
  }, { additionalProperties: false, default: {} }),
  unknown_nodes: Type.Object({
    action: Type.Union([Type.Literal('discover'), Type.Literal('reboot'), Type.Literal('ignore')], { default: 'discover' }),
    lease_time: Type.Integer({ minimum: 30, maximum: 86_400, default: 300 }),
    /** The image unknown nodes boot under `discover` (its agent reports the machine). */
    discovery_image: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  }, { additionalProperties: false, default: {} }),
  dhcp: Type.Object({
    enabled: Type.Boolean({ default: true }),
    mode: Type.Union([Type.Literal('server'), Type.Literal('proxy')], { default: 'server' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 67 }),
    lease_time: Type.Integer({ minimum: 60, maximum: 31_536_000, default: 3600 }),
    subnets: Type.Array(Subnet, { default: [] }),
    /** The iPXE build each firmware gets over TFTP (files in tftp.ipxe_dir). */
    boot_files: Type.Object({
      bios: Type.String({ minLength: 1, default: 'undionly.kpxe' }),
      x64_uefi: Type.String({ minLength: 1, default: 'ipxe.efi' }),
      arm64_uefi: Type.String({ minLength: 1, default: 'ipxe-arm64.efi' }),
    }, { additionalProperties: false, default: {} }),
    /** Seconds a DECLINEd address stays out of the pool. */
    decline_hold: Type.Integer({ minimum: 10, maximum: 86_400, default: 600 }),
    /** Serve DHCP from its own thread (event loop, sockets, SQLite connection), so HTTP and attestation work cannot delay a reply (docs/dhcp-worker.md). */
    worker: Type.Boolean({ default: true }),
  }, { additionalProperties: false, default: {} }),
  attestation: Type.Object({
    enabled: Type.Boolean({ default: true }),
    /** strict: EK cert must chain to a trusted CA and an admin approves; tofu: first EK seen is kept; pre-enrolled: admins import EKs. */
    enrollment: Type.Union([Type.Literal('strict'), Type.Literal('tofu'), Type.Literal('pre-enrolled')], { default: 'tofu' }),
    /** Directory (or file) of PEM manufacturer CA certificates that EK certificates must chain to. */
    ek_ca: Type.Optional(Type.String({ minLength: 1 })),
    /** tofu: refuse TPMs whose EK has no certificate. strict always requires one. */
    require_ek_cert: Type.Boolean({ default: false }),
    pcrs: Type.Array(Type.Integer({ minimum: 0, maximum: 23 }), { default: [0, 1, 2, 3, 4, 5, 6, 7], minItems: 1, maxItems: 24, uniqueItems: true }),
    bank: Type.Union([Type.Literal('sha256'), Type.Literal('sha1')], { default: 'sha256' }),
    /** off: identity only; learn: record a first boot's values for approval, enforce approved ones; enforce: approved values required. */
    pcr_policy: Type.Union([Type.Literal('off'), Type.Literal('learn'), Type.Literal('enforce')], { default: 'learn' }),
    /** Node token lifetime, seconds. */
    token_ttl: Type.Integer({ minimum: 60, maximum: 86_400, default: 900 }),
    /** Signing keys are rotated after this many days. */
    key_rotation_days: Type.Integer({ minimum: 1, maximum: 365, default: 30 }),
    /** Threads that verify quotes, event logs and MakeCredential off the event loop. Default: cores − 1 (1–4); 0 verifies in place. */
    verify_threads: Type.Optional(Type.Integer({ minimum: 0, maximum: 16 })),
    /** EFI applications (paths) a UEFI node may run before its UKI besides the EFI binaries in tftp.ipxe_dir. */
    boot_applications: Type.Array(Type.String({ minLength: 1 }), { default: [], maxItems: 64 }),
  }, { additionalProperties: false, default: {} }),
  /** Router advertisements (RFC 4861) on the provisioning interfaces: router lifetime 0, M=0, O=0 (server/ra/). */
  ra: Type.Object({
    enabled: Type.Boolean({ default: true }),
    /** Default: server.interfaces and every dhcp.subnets[].interface. */
    interfaces: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 15 }))),
    /** MaxRtrAdvInterval, seconds (RFC 4861 §6.2.1: 4–1800, default 600). */
    max_interval: Type.Integer({ minimum: 4, maximum: 1800, default: 600 }),
    /** MinRtrAdvInterval, seconds (3 to 0.75 × max_interval). Default 0.33 × max_interval. */
    min_interval: Type.Optional(Type.Integer({ minimum: 3, maximum: 1350 })),
    /** MTU option (§4.6.4), when the link's MTU is not the default. */
    mtu: Type.Optional(Type.Integer({ minimum: 1280, maximum: 65535 })),
    /** On-link, autonomous /64 prefixes (SLAAC, RFC 4862) to advertise. None by default. */
    prefixes: Type.Array(Type.String({ format: 'ipv6prefix', description: 'an IPv6 /64 prefix such as fd00:96::/64' }), { default: [] }),
  }, { additionalProperties: false, default: {} }),
  tftp: Type.Object({
    enabled: Type.Boolean({ default: true }),
    listen: Type.String({ format: 'ipv4addr', default: '0.0.0.0' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 69 }),
    ipxe_dir: Type.String({ minLength: 1, default: '/usr/lib/ipxe' }),
    /** Concurrent transfers; past it a new RRQ is dropped unanswered and the client retransmits it (docs/bench-storm.md). */
    max_transfers: Type.Integer({ minimum: 1, maximum: 65536, default: 1024 }),
    /** Serve TFTP from its own thread (event loop and sockets), so HTTP work cannot delay an ACK (docs/bench-storm.md). */
    worker: Type.Boolean({ default: true }),
  }, { additionalProperties: false, default: {} }),
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
export type SubnetConfig = Static<typeof Subnet>

/** Environment variables override file keys: NETBOOT_<KEY>__<KEY>, e.g. NETBOOT_HTTP__PORT=9090. */
export const ENV_PREFIX = 'NETBOOT_'
/** Variables with this prefix that are not config keys. */
export const ENV_RESERVED = new Set(['NETBOOT_CONFIG', 'NETBOOT_URL', 'NETBOOT_TOKEN'])
