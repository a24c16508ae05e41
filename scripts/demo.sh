#!/usr/bin/env bash
# The demo in one command, on a fresh Debian 12 machine, as root (docs/demo.md):
#   sudo npm run demo [-- --firmware uefi|bios] [--uki] [--keep]
# Installs what it needs (scripts/setup.sh: the project's Debian packages, npm ci,
# the build, the agent's TPM addon and bundle; plus the demo's own: mmdebstrap), then runs
# scripts/demo.ts: Debian image, netboot image, namespace, server, one attested VM
# boot, the boot timeline and the audit trail; it cleans up what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (sudo npm run demo)" >&2; exit 1; }
./scripts/setup.sh
# The demo's own packages, beyond scripts/debian-packages.txt.
extra=(mmdebstrap)
missing=()
for p in "${extra[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
fi
exec npx --no-install tsx scripts/demo.ts "$@"
