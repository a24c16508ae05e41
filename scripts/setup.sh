#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) to build, run and test netboot:
# the system packages in scripts/debian-packages.txt, the npm dependencies, the build.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_major=20
have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$have" -lt "$need_major" ]; then
  echo "setup: Node.js >= $need_major is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

lists=(scripts/debian-packages.txt)
# --bench: also the anchors the benchmarks compare against (Kea, dnsmasq, tftpd-hpa, nginx)
[ "${1:-}" = "--bench" ] && lists+=(scripts/bench-packages.txt)
mapfile -t wanted < <(cat "${lists[@]}" | sed -e 's/#.*//' -e '/^\s*$/d' | awk '{print $1}')
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -q
  # policy-rc.d 101: packages must not start services on this host (dnsmasq, kea, nginx, tftpd)
  policy=/usr/sbin/policy-rc.d
  [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; trap 'rm -f "$policy"' EXIT; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
fi
# cloud-init is here only for `cloud-init schema`: it must never configure this host.
if [ -d /etc/cloud ] && [ ! -e /etc/cloud/cloud-init.disabled ]; then touch /etc/cloud/cloud-init.disabled; fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
echo "setup: build"
npm run --silent build
echo "setup: build the agent's TPM addon (tpm2-tss)"
npm run --silent build:agent >/dev/null
echo "setup: done"
