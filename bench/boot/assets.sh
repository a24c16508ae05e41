#!/usr/bin/env bash
# The boot benchmark's assets, in CACHE_DIR:
#
#   rootfs.squashfs   a tiny root image (the e2e busybox and bench/boot/rootfs-init,
#                     which prints BENCH-ROOTFS-UP and powers off): the end of
#                     every boot the benchmark times.
#   baseline-initrd.img  the baseline's initrd (below).
#
# The baseline's initrd: Debian's dracut with its own network live boot
# (modules livenet + dmsquash-live over network-legacy's dhclient), for the e2e
# kernel (scripts/e2e-assets.sh), built the way netboot's initrd is
# (server/initrd/build.ts: --no-hostonly, shell init, no systemd, zstd -3), minus
# netboot's module. It boots `root=live:http://…/rootfs.squashfs`: downloads the
# squashfs with curl, mounts it under an overlay and switches root to it.
#
# Usage: bench/boot/assets.sh CACHE_DIR   (prints CACHE_DIR)
# Needs dracut-core, dracut-network, dracut-live, zstd, squashfs-tools (scripts/bench-packages.txt).
# Rebuilt only when the kernel version or dracut's version changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out_dir=${1:?usage: assets.sh CACHE_DIR}
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
e2e=$(bash "$root/scripts/e2e-assets.sh")
kver=$(cat "$e2e/kernel-version")
kmoddir=$e2e/modules/lib/modules/$kver
for d in /usr/lib/dracut/modules.d/90livenet /usr/lib/dracut/modules.d/90dmsquash-live /usr/lib/dracut/modules.d/35network-legacy; do
  [ -d "$d" ] || { echo "baseline-initrd: $d is missing (Debian packages dracut-live, dracut-network)" >&2; exit 1; }
done
command -v zstd >/dev/null || { echo "baseline-initrd: zstd is missing (Debian package zstd)" >&2; exit 1; }
# --- rootfs ---------------------------------------------------------------------
rstamp=$(cat "$root/bench/boot/rootfs-init" "$e2e/busybox" | sha256sum | cut -d' ' -f1)
if [ ! -s "$out_dir/rootfs.squashfs" ] || [ "$(cat "$out_dir/rootfs.squashfs.stamp" 2>/dev/null)" != "$rstamp" ]; then
  x=$(mktemp -d)
  mkdir -p "$x"/{bin,sbin,dev,proc,sys,run,tmp,etc}
  install -m 0755 "$e2e/busybox" "$x/bin/busybox"
  ln -s busybox "$x/bin/sh"
  install -m 0755 "$root/bench/boot/rootfs-init" "$x/sbin/init"
  find "$x" -exec touch -h -d @0 {} +
  mksquashfs "$x" "$out_dir/rootfs.squashfs.tmp" -noappend -quiet -all-root -comp gzip >&2
  chmod 0644 "$out_dir/rootfs.squashfs.tmp"
  mv "$out_dir/rootfs.squashfs.tmp" "$out_dir/rootfs.squashfs"
  echo "$rstamp" > "$out_dir/rootfs.squashfs.stamp"
  rm -rf "$x"
fi

# --- initrd ---------------------------------------------------------------------
stamp="$kver $(dpkg-query -W -f '${Version}' dracut-core dracut-live dracut-network 2>/dev/null | tr '\n' ' ')"
out=$out_dir/baseline-initrd.img
if [ -s "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then echo "$out_dir"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/none"
echo "baseline-initrd: dracut for $kver" >&2
dracut --force --no-hostonly --no-hostonly-cmdline --no-early-microcode --reproducible \
  --kver "$kver" --kmoddir "$kmoddir" --conf /dev/null --confdir "$tmp/none" --tmpdir "$tmp" \
  -m 'base network-legacy livenet dmsquash-live' \
  --compress 'zstd -q -T0 -3' "$out.tmp" "$kver" >&2
chmod 0644 "$out.tmp"
mv "$out.tmp" "$out"
echo "$stamp" > "$out.stamp"
echo "$out_dir"
