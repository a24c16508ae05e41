#!/usr/bin/env bash
# Builds the root image of the attested end-to-end test (test/e2e/attested-boot.test.ts):
# a squashfs holding a static busybox (the one scripts/e2e-assets.sh takes out of
# Debian's busybox-static .deb) and test/fixtures/e2e/rootfs-init as /sbin/init,
# plus /etc/netboot-e2e-label = LABEL, so two labels give two images with different
# digests. Prints the image's path.
#
# Usage: scripts/test-rootfs.sh OUTPUT LABEL [BUSYBOX]
#   BUSYBOX defaults to the busybox in scripts/e2e-assets.sh's cache.
# Reproducible: fixed timestamps and owners, so the same inputs give the same bytes;
# rebuilt only when the inputs changed. Needs squashfs-tools (mksquashfs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: test-rootfs.sh OUTPUT LABEL [BUSYBOX]}
label=${2:?usage: test-rootfs.sh OUTPUT LABEL [BUSYBOX]}
case $label in *[!A-Za-z0-9._-]*) echo "test-rootfs: LABEL must be [A-Za-z0-9._-]+, got '$label'" >&2; exit 2 ;; esac
busybox=${3:-$(bash "$root/scripts/e2e-assets.sh" | tail -n 1)/busybox}
init_src=$root/test/fixtures/e2e/rootfs-init
command -v mksquashfs >/dev/null || { echo "test-rootfs: mksquashfs missing (Debian package squashfs-tools)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "test-rootfs: no executable busybox at $busybox" >&2; exit 1; }

stamp=$( (cat "$init_src" "$busybox"; echo "$label") | sha256sum | cut -d' ' -f1)
if [ -s "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$out"
  exit 0
fi
echo "test-rootfs: building $out ($label)" >&2
x=$(mktemp -d "${TMPDIR:-/tmp}/netboot-rootfs.XXXXXX")
trap 'rm -rf "$x"' EXIT
mkdir -p "$x"/{bin,sbin,etc,proc,sys,dev,run,tmp,var/lib/cloud}
install -m 0755 "$busybox" "$x/bin/busybox"
for applet in sh cat ls mount umount grep awk; do ln -s busybox "$x/bin/$applet"; done
install -m 0755 "$init_src" "$x/sbin/init"
echo "$label" > "$x/etc/netboot-e2e-label"
chmod 0755 "$x"
chmod 1777 "$x/tmp"
mkdir -p "$(dirname "$out")"
mksquashfs "$x" "$out.tmp" -noappend -quiet -no-progress -all-root -comp gzip -mkfs-time 0 -all-time 0 >/dev/null
chmod 0644 "$out.tmp"
mv "$out.tmp" "$out"
echo "$stamp" > "$out.stamp"
echo "$out"
