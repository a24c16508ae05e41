#!/usr/bin/env bash
# Builds the boot assets of the firmware end-to-end test (test/e2e/) into a cache
# directory, and prints that directory:
#
#   vmlinuz      Debian 12's kernel (linux-image-amd64 → linux-image-<ver>-amd64),
#                taken out of the .deb (apt-get download): never installed.
#   initrd.img   a gzip'd newc cpio made here: a static busybox (from the
#                busybox-static .deb, also only downloaded: it conflicts with the
#                busybox package the other tests use) and test/fixtures/e2e/init,
#                which prints "NETBOOT-E2E-MARKER <marker= from the kernel command
#                line>" on the console and powers the machine off.
#   modules/lib/modules/<ver>/   the same kernel's modules, from the same .deb, with
#                modules.dep etc. made here by `depmod -b modules <ver>` (the .deb
#                ships none): `netboot initrd build --kver <ver> --kmoddir
#                <cache>/modules/lib/modules/<ver>` builds a netboot initrd for
#                vmlinuz without installing the kernel.
#
# Usage: scripts/e2e-assets.sh [CACHE_DIR]   (default: $E2E_CACHE, else .cache/e2e)
# Idempotent: the kernel and busybox are downloaded once (the .debs are deleted
# after extraction), the initrd is rebuilt only when the init script or busybox
# changed; a second run takes well under a second. Needs apt (Debian 12) and
# cpio, gzip, depmod (kmod); runs `apt-get update` once if apt does not know the
# packages yet.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-${E2E_CACHE:-$root/.cache/e2e}}
init_src=$root/test/fixtures/e2e/init
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# what an interrupted earlier run left behind
rm -rf "$cache"/.dl.* "$cache"/.x.* "$cache"/*.tmp

say () { echo "e2e-assets: $*" >&2; }

# The package a (meta)package depends on, e.g. linux-image-amd64 → linux-image-6.1.0-28-amd64.
depends_on () {
  apt-cache depends --no-recommends --no-suggests "$1" 2>/dev/null | awk -v re="$2" '$1 == "Depends:" && $2 ~ re { print $2; exit }'
}

# Downloads a package's .deb into a fresh directory under the cache; prints its path.
# The caller removes the directory once it has taken what it needs.
fetch_deb () {
  local pkg=$1 tmp
  say "downloading $pkg"
  tmp=$(mktemp -d "$cache/.dl.XXXXXX")
  # apt drops to the _apt user for downloads: let it write here.
  chmod 0777 "$tmp"
  (cd "$tmp" && apt-get download -q "$pkg" >&2)
  ls "$tmp"/*.deb | head -n 1
}

known () { apt-cache show "$1" >/dev/null 2>&1; }

# modules.dep is written last: its presence means the module tree is complete.
modules_ready () {
  local v
  v=$(cat "$cache/kernel-version" 2>/dev/null) || return 1
  [ -s "$cache/modules/lib/modules/$v/modules.dep" ]
}

# Extracts ./lib/modules/<ver> from a kernel .deb into $cache/modules and runs depmod.
extract_modules () {
  local deb=$1 ver=$2 x
  command -v depmod >/dev/null || [ -x /sbin/depmod ] || { say "depmod not found (Debian package: kmod)"; exit 1; }
  say "extracting the kernel modules from $(basename "$deb")"
  x=$(mktemp -d "$cache/.x.XXXXXX")
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards "./lib/modules/$ver/*"
  [ -d "$x/lib/modules/$ver/kernel" ] || { say "$(basename "$deb") has no lib/modules/$ver/kernel"; exit 1; }
  PATH=$PATH:/sbin:/usr/sbin depmod -b "$x" "$ver"
  rm -rf "$cache/modules"
  mv "$x" "$cache/modules"
  chmod 0755 "$cache/modules"
}

if [ ! -s "$cache/vmlinuz" ] || [ ! -s "$cache/busybox" ] || ! modules_ready; then
  if ! known linux-image-amd64 || ! known busybox-static; then
    say "apt-get update (apt does not know the packages yet)"
    apt-get update -q >&2
  fi
fi

# --- kernel ---------------------------------------------------------------------
if [ ! -s "$cache/vmlinuz" ]; then
  kpkg=$(depends_on linux-image-amd64 '^linux-image-[0-9]')
  [ -n "$kpkg" ] || { say "cannot resolve linux-image-amd64 to a kernel package"; exit 1; }
  deb=$(fetch_deb "$kpkg")
  say "extracting the kernel from $(basename "$deb")"
  x=$(mktemp -d "$cache/.x.XXXXXX")
  # /boot/vmlinuz-* here (the busybox initrd loads no module); the modules below.
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards './boot/vmlinuz-*'
  k=$(ls "$x"/boot/vmlinuz-* | head -n 1)
  kver=$(basename "$k" | sed 's/^vmlinuz-//')
  extract_modules "$deb" "$kver"
  echo "$kver" > "$cache/kernel-version"
  mv "$k" "$cache/vmlinuz.tmp" && mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
  rm -rf "$x" "$(dirname "$deb")"
fi

# --- kernel modules (a cache made before they were extracted) -------------------
if ! modules_ready; then
  kver=$(cat "$cache/kernel-version")
  # The package of exactly this kernel, so the modules match vmlinuz.
  deb=$(fetch_deb "linux-image-$kver")
  extract_modules "$deb" "$kver"
  rm -rf "$(dirname "$deb")"
fi

# --- busybox (static) -----------------------------------------------------------
if [ ! -s "$cache/busybox" ]; then
  deb=$(fetch_deb busybox-static)
  x=$(mktemp -d "$cache/.x.XXXXXX")
  dpkg-deb -x "$deb" "$x"
  install -m 0755 "$x/bin/busybox" "$cache/busybox.tmp" && mv "$cache/busybox.tmp" "$cache/busybox"
  rm -rf "$x" "$(dirname "$deb")"
fi

# --- initrd ---------------------------------------------------------------------
stamp=$(cat "$init_src" "$cache/busybox" | sha256sum | cut -d' ' -f1)
if [ ! -s "$cache/initrd.img" ] || [ "$(cat "$cache/initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
  say "building initrd.img"
  x=$(mktemp -d "$cache/.x.XXXXXX")
  mkdir -p "$x"/{bin,sbin,dev,proc,sys,tmp}
  install -m 0755 "$cache/busybox" "$x/bin/busybox"
  ln -s busybox "$x/bin/sh"
  install -m 0755 "$init_src" "$x/init"
  # Fixed order and timestamps: the same inputs give the same bytes (and sha256).
  find "$x" -exec touch -h -d @0 {} +
  (cd "$x" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n > "$cache/initrd.img.tmp"
  mv "$cache/initrd.img.tmp" "$cache/initrd.img"
  echo "$stamp" > "$cache/initrd.stamp"
  rm -rf "$x"
fi

chmod 0644 "$cache/vmlinuz" "$cache/initrd.img"
echo "$cache"
