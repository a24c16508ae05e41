#!/usr/bin/env bash
# Builds a real Debian 12 (bookworm) root with cloud-init for netboot's demo and
# end-to-end boots, with mmdebstrap from Debian's own packages, and prints the path
# of the root directory:
#
#   .cache/images/debian-12-cloud/root/         the root, owners, modes and xattrs kept
#   .cache/images/debian-12-cloud/packages.txt  what is in it (dpkg-query), for the record
#   .cache/images/debian-12-cloud/stamp         the inputs it was built from
#
# Turn it into a netboot image with:
#   netboot image build debian-12 --root .cache/images/debian-12-cloud/root
#
# What the root holds, and why (see shared/reference/INITRAMFS.md):
# - variant minbase + linux-image-amd64 (the kernel and its modules: netboot builds the
#   initrd from /lib/modules of the root), systemd-sysv (/sbin/init), udev, dbus
#   (hostnamectl, which cloud-init uses to set the host name), cloud-init, locales,
#   iproute2; no recommends.
# - DHCP on every Ethernet NIC by systemd-networkd with ClientIdentifier=mac: the booted
#   system must ask for the lease the initramfs already holds (a DUID, networkd's
#   default, takes a second address from servers keyed on the client identifier).
#   cloud-init's own network configuration is disabled so that it does not write a
#   second, conflicting networkd file.
# - cloud-init: datasource_list [NoCloud, None]; the netboot agent writes the NoCloud
#   seed (/var/lib/cloud/seed/nocloud/) into the root before switch_root.
# - LANG=C.UTF-8 (built into glibc) and cloud-init's locale set to it: its locale
#   module fails when no locale exists.
# - a serial getty on ttyS0; Debian's own initramfs (/boot/initrd.img-*) is removed:
#   netboot serves its own.
#
# Usage: scripts/debian-image.sh [--force] [CACHE_DIR]
#   (default CACHE_DIR: $DEBIAN_IMAGE_CACHE, else .cache/images/debian-12-cloud)
#   DEBIAN_MIRROR (default http://deb.debian.org/debian) and DEBIAN_SECURITY_MIRROR
#   choose the mirrors. Idempotent: when root/ exists and was built from the same
#   inputs (this script, the mirrors), nothing is done. Needs root (the root's files
#   keep their owners) and the Debian package mmdebstrap; downloads about 150 MB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
cache=${1:-${DEBIAN_IMAGE_CACHE:-$root/.cache/images/debian-12-cloud}}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
packages=linux-image-amd64,systemd-sysv,udev,dbus,cloud-init,locales,iproute2

say () { echo "debian-image: $*" >&2; }

command -v mmdebstrap >/dev/null || { say "mmdebstrap is missing (Debian package mmdebstrap: apt-get install mmdebstrap)"; exit 1; }
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
rm -rf "$cache"/*.tmp
[ "$(id -u)" -eq 0 ] || { say "needs root: the root's files keep their owners"; exit 1; }

stamp=$( { cat "$0"; echo "$mirror $security $suite $packages"; } | sha256sum | cut -d' ' -f1)
if [ "$force" = 0 ] && [ -x "$cache/root/sbin/init" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ]; then
  say "up to date: $cache/root ($(du -sm "$cache/root" | cut -f1) MiB)"
  echo "$cache/root"
  exit 0
fi

# The configuration files the root gets, written into a directory that the
# customize hook copies from (hooks run with the root as $1).
files=$(mktemp -d "$cache/.files.XXXXXX")
trap 'rm -rf "$files"' EXIT
# Paths that go into the hooks' shell commands, quoted for the shell (the cache
# directory is the caller's: it may hold spaces or quotes).
q_files=$(printf %q "$files")
q_list=$(printf %q "$cache/packages.txt.tmp")
mkdir -p "$files/etc/systemd/network" "$files/etc/cloud/cloud.cfg.d" "$files/etc/default"
cat > "$files/etc/systemd/network/10-netboot-dhcp.network" <<'EOF'
# netboot: DHCPv4 on every Ethernet NIC, as the same client the initramfs was
# (client identifier = type 1 + hardware address, RFC 2132 section 9.14), so that the
# server hands back the lease the node already holds instead of a second address.
[Match]
Type=ether

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
ClientIdentifier=mac
EOF
cat > "$files/etc/cloud/cloud.cfg.d/90-netboot.cfg" <<'EOF'
# netboot: the agent in the initramfs writes the NoCloud seed into this root before
# switch_root (plain and secure data merged); no other datasource is probed.
datasource_list: [NoCloud, None]
# The network is configured by systemd-networkd (10-netboot-dhcp.network): cloud-init
# must not write its own configuration beside it.
network: {config: disabled}
locale: C.UTF-8
EOF
printf 'LANG=C.UTF-8\n' > "$files/etc/default/locale"

start=$(date +%s)
say "building Debian 12 ($suite, minbase + $packages) into $cache/root — a few minutes"
mmdebstrap \
  --mode=root --format=directory \
  --variant=minbase \
  --include="$packages" \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="cp -a $q_files/. \"\$1\"/" \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd.service' \
  --customize-hook='chroot "$1" systemctl enable serial-getty@ttyS0.service' \
  --customize-hook='echo debian > "$1/etc/hostname"' \
  --customize-hook='rm -f "$1"/boot/initrd.img-*' \
  --customize-hook="chroot \"\$1\" dpkg-query -W -f='\${Package} \${Version}\n' > $q_list" \
  "$suite" "$cache/root.tmp" \
  "deb $mirror $suite main" \
  "deb $mirror $suite-updates main" \
  "deb $security $suite-security main" \
  2> >(sed -u 's/^/debian-image: mmdebstrap: /' >&2)
mv "$cache/packages.txt.tmp" "$cache/packages.txt"
rm -rf "$cache/root" "$cache/stamp"
mv "$cache/root.tmp" "$cache/root"
echo "$stamp" > "$cache/stamp"
say "done in $(( $(date +%s) - start )) s: $cache/root, $(du -sm "$cache/root" | cut -f1) MiB, $(wc -l < "$cache/packages.txt") packages, kernel $(ls "$cache/root/boot" | sed -n 's/^vmlinuz-//p' | head -n 1)"
echo "$cache/root"
