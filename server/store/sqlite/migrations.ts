/**
 * Numbered schema migrations, applied in order at start-up inside one transaction
 * each; `PRAGMA user_version` records the last one applied. Never edit a migration
 * that has shipped: add the next number.
 */
export interface Migration { readonly version: number; readonly name: string; readonly sql: string }

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial inventory, images, boot, cloud-init, leases, TPM identities, tokens, audit',
    sql: `
CREATE TABLE groups (
  name        TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE nodes (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  xname      TEXT UNIQUE,
  nid        INTEGER UNIQUE,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE node_groups (
  node_id    INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
  group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE RESTRICT,
  position   INTEGER NOT NULL,
  PRIMARY KEY (node_id, group_name)
) STRICT;
CREATE INDEX node_groups_group ON node_groups(group_name);

-- Every MAC and IP a node owns, NICs and BMC alike, so uniqueness across both
-- is the database's job and DHCP finds any of them with one index lookup.
CREATE TABLE addresses (
  id       INTEGER PRIMARY KEY,
  node_id  INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
  kind     TEXT NOT NULL CHECK (kind IN ('nic', 'bmc')),
  mac      TEXT UNIQUE,
  ip       TEXT UNIQUE,
  network  TEXT,
  position INTEGER NOT NULL,
  CHECK (kind = 'bmc' OR mac IS NOT NULL),
  CHECK (mac IS NOT NULL OR ip IS NOT NULL)
) STRICT;
CREATE INDEX addresses_node ON addresses(node_id);

CREATE TABLE images (
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL,
  version       TEXT NOT NULL,
  kernel_sha256 TEXT NOT NULL,
  initrd_sha256 TEXT NOT NULL,
  rootfs_sha256 TEXT,
  params        TEXT NOT NULL DEFAULT '',
  created_at    TEXT NOT NULL,
  UNIQUE (name, version)
) STRICT;

-- Boot configuration resolves default -> group -> node.
CREATE TABLE boot_configs (
  scope      TEXT NOT NULL CHECK (scope IN ('default', 'group', 'node')),
  target     TEXT NOT NULL,
  image      TEXT,
  params     TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL,
  PRIMARY KEY (scope, target)
) STRICT;

CREATE TABLE cloud_init (
  scope          TEXT NOT NULL CHECK (scope IN ('group', 'node')),
  target         TEXT NOT NULL,
  secure         INTEGER NOT NULL CHECK (secure IN (0, 1)),
  user_data      TEXT,
  meta_data      TEXT,
  vendor_data    TEXT,
  network_config TEXT,
  updated_at     TEXT NOT NULL,
  PRIMARY KEY (scope, target, secure)
) STRICT;

CREATE TABLE dhcp_leases (
  ip         TEXT PRIMARY KEY,
  mac        TEXT NOT NULL,
  client_id  BLOB,
  subnet     TEXT NOT NULL,
  state      TEXT NOT NULL,
  hostname   TEXT,
  starts_at  INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX dhcp_leases_mac ON dhcp_leases(mac);

CREATE TABLE tpm_identities (
  id             INTEGER PRIMARY KEY,
  node_id        INTEGER REFERENCES nodes(id) ON DELETE CASCADE,
  ek_pub_sha256  TEXT NOT NULL UNIQUE,
  ek_cert_sha256 TEXT,
  ek_pub         BLOB,
  ek_cert        BLOB,
  policy         TEXT NOT NULL CHECK (policy IN ('strict', 'tofu', 'pre-enrolled')),
  state          TEXT NOT NULL CHECK (state IN ('pending', 'enrolled', 'rejected')),
  discovery      TEXT,
  created_at     TEXT NOT NULL,
  decided_at     TEXT,
  decided_by     TEXT
) STRICT;

CREATE TABLE admin_tokens (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  role          TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  created_by    TEXT NOT NULL,
  expires_at    TEXT,
  revoked_at    TEXT,
  last_used_at  TEXT
) STRICT;

CREATE TABLE audit_log (
  seq        INTEGER PRIMARY KEY,
  time       TEXT NOT NULL,
  actor_kind TEXT NOT NULL,
  actor_id   TEXT NOT NULL,
  actor_name TEXT,
  action     TEXT NOT NULL,
  target     TEXT,
  outcome    TEXT NOT NULL,
  detail     TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_action ON audit_log(action);
CREATE INDEX audit_log_target ON audit_log(target);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
`,
  },
  {
    version: 2,
    name: 'attestation: TPM counters, hardware reports, PCR golden values',
    sql: `
ALTER TABLE tpm_identities ADD COLUMN reset_count INTEGER;
ALTER TABLE tpm_identities ADD COLUMN restart_count INTEGER;
ALTER TABLE tpm_identities ADD COLUMN last_attested_at TEXT;
ALTER TABLE tpm_identities ADD COLUMN macs TEXT NOT NULL DEFAULT '[]';
CREATE INDEX tpm_identities_node ON tpm_identities(node_id);

-- Expected PCR values, per image or per node (a node's own values win).
CREATE TABLE pcr_golden (
  scope      TEXT NOT NULL CHECK (scope IN ('image', 'node')),
  target     TEXT NOT NULL,
  bank       TEXT NOT NULL CHECK (bank IN ('sha1', 'sha256', 'sha384')),
  pcr        INTEGER NOT NULL CHECK (pcr BETWEEN 0 AND 23),
  value      TEXT NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('learned', 'approved')),
  source     TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (scope, target, bank, pcr)
) STRICT;
`,
  },
  {
    version: 3,
    name: 'per-node DHCP option overrides',
    sql: `ALTER TABLE nodes ADD COLUMN dhcp_options TEXT;`,
  },
  {
    version: 4,
    name: 'unified kernel images: an image version may carry a UKI and its PCR 4 (Authenticode) digests',
    sql: `
ALTER TABLE images ADD COLUMN uki_sha256 TEXT;
-- JSON {"uki": {"sha1": hex, "sha256": hex, ...}, "linux": {...}}: the Authenticode
-- digests of the UKI and of its .linux section, computed on upload (server/images/authenticode.ts).
ALTER TABLE images ADD COLUMN uki_digests TEXT;
`,
  },
]
