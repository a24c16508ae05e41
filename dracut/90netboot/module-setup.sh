#!/bin/bash
# dracut module "netboot": the initramfs half of netboot (see dracut/README.md).
#
# Contract with dracut 059 (dracut.modules(7)): check / depends / installkernel /
# install, sourced by dracut's bash with dracut-init.sh's helpers in scope.
#
# Settings (dracut configuration variables: a dracut.conf(5) file is sourced by
# bash, so `netboot_agent_bundle=/path` in a conf file is seen here):
#   netboot_agent_bundle  the agent bundle (npm run bundle:agent);
#                         default <this module's real dir>/../../dist/agent/netboot-agent.mjs
#   netboot_tpm_addon     the TPM addon (npm run build:agent);
#                         default <this module's real dir>/../../agent/tpm/build/Release/netboot_tpm.node
#   netboot_ca_bundle     PEM bundle the agent trusts for https:// servers (added to
#                         Node's own roots); default /etc/ssl/certs/ca-certificates.crt
#   netboot_node          the node binary; default: `command -v node`
#
# What ends up in the image:
#   /usr/bin/node, /usr/lib/netboot/{netboot-agent.mjs,netboot_tpm.node,exit-codes},
#   /lib/netboot-lib.sh, the tpm2-tss libraries (ESYS via the addon's ELF needs,
#   the TCTIs that tctildr loads with dlopen), /etc/ssl/certs/ca-certificates.crt,
#   a cmdline hook (claims the root) and a pre-mount hook (runs the agent).

_netboot_src() {
    # The project tree this module lives in (the module dir may be a symlink).
    local d
    d=$(readlink -f "$moddir") || return 1
    echo "${d%/*/*}"
}

_netboot_bundle() { echo "${netboot_agent_bundle:-$(_netboot_src)/dist/agent/netboot-agent.mjs}"; }
_netboot_addon() { echo "${netboot_tpm_addon:-$(_netboot_src)/agent/tpm/build/Release/netboot_tpm.node}"; }
_netboot_node() { echo "${netboot_node:-$(command -v node)}"; }

# called by dracut: 255 = only when asked for (-m/--add netboot).
check() {
    local f
    [[ -x $(_netboot_node) ]] || { derror "netboot: no node binary (set netboot_node= or install Node.js >= 20)"; return 1; }
    f=$(_netboot_bundle)
    [[ -s $f ]] || { derror "netboot: agent bundle $f missing (npm run bundle:agent)"; return 1; }
    f=$(_netboot_addon)
    [[ -s $f ]] || { derror "netboot: TPM addon $f missing (npm run build:agent)"; return 1; }
    return 255
}

# called by dracut. network-legacy is named so that 40network picks dhclient and not
# another backend (systemd-networkd, NetworkManager) the build host may have.
depends() {
    echo network-legacy network
    return 0
}

# called by dracut. Returns non-zero (dracut then stops: "installkernel failed") when
# a required module is neither in the kernel's module tree nor built in; instmods
# checks only with -c (by default a missing module is silently skipped).
installkernel() {
    local m
    # TPM: TIS (tpm_tis, tpm_tis_core) on BIOS machines, CRB on UEFI/ACPI ones.
    for m in tpm_tis tpm_tis_core tpm_crb squashfs overlay loop; do
        hostonly='' instmods -c "$m" || { derror "netboot: kernel module $m not found for kernel $kernel"; return 1; }
    done
    # The rest of the TPM drivers and QEMU's NICs (real hardware's NICs come with
    # kernel-network-modules, which 40network pulls in).
    hostonly='' instmods '=drivers/char/tpm'
    hostonly='' instmods e1000 e1000e virtio_net virtio_pci
    return 0
}

# called by dracut.
install() {
    local node bundle addon ca _arch
    node=$(_netboot_node)
    bundle=$(_netboot_bundle)
    addon=$(_netboot_addon)
    ca=${netboot_ca_bundle:-/etc/ssl/certs/ca-certificates.crt}

    # The hook maps exit codes 0 (root ready) and 20 (reboot): refuse a bundle whose table differs.
    "$node" "$bundle" exit-codes > "$DRACUT_TMPDIR/netboot-exit-codes" \
        || { derror "netboot: $node $bundle exit-codes failed"; return 1; }
    grep -qx '0 ok' "$DRACUT_TMPDIR/netboot-exit-codes" && grep -qx '20 reboot' "$DRACUT_TMPDIR/netboot-exit-codes" \
        || { derror "netboot: $bundle exit-codes has no '0 ok' / '20 reboot' (the hook's contract)"; return 1; }

    inst_binary "$node" /usr/bin/node || { derror "netboot: cannot install $node"; return 1; }
    inst_simple "$bundle" /usr/lib/netboot/netboot-agent.mjs || return 1
    inst_simple "$DRACUT_TMPDIR/netboot-exit-codes" /usr/lib/netboot/exit-codes || return 1
    # inst_binary resolves the addon's ELF needs: libtss2-esys, -tctildr, -mu, -rc, -sys, libcrypto.
    inst_binary "$addon" /usr/lib/netboot/netboot_tpm.node || { derror "netboot: cannot install $addon"; return 1; }
    # tctildr finds its TCTI with dlopen (libtss2-tcti-<name>.so.0), which no ELF scan sees.
    _arch=${DRACUT_ARCH:-$(uname -m)}
    inst_libdir_file {"tls/$_arch/",tls/,"$_arch/",}"libtss2-tcti-device.so*" \
        || { derror "netboot: libtss2-tcti-device.so* not found (Debian: libtss2-tcti-device0)"; return 1; }
    # swtpm's socket TCTI: for debugging against a software TPM only; absent is fine.
    inst_libdir_file {"tls/$_arch/",tls/,"$_arch/",}"libtss2-tcti-swtpm.so*" || :
    if [[ -s $ca ]]; then
        inst_simple "$ca" /etc/ssl/certs/ca-certificates.crt
    else
        dwarn "netboot: CA bundle $ca not found: the agent trusts only Node's built-in roots"
    fi

    # mount (squashfs loop, tmpfs, overlay) and umount come with 99base; these are for the hooks.
    inst_multiple mount umount modprobe sleep grep
    inst_simple "$moddir/netboot-lib.sh" /lib/netboot-lib.sh
    # After 99base's parse-root-opts.sh (cmdline 10), before 40network's dhcp-root.sh (91)
    # and network-legacy's parse-ip-opts.sh (98).
    inst_hook cmdline 20 "$moddir/netboot-cmdline.sh"
    # pre-mount runs once the initqueue is finished, i.e. with rd.neednet=1 once an
    # interface is set up (network-legacy's wait-network.sh).
    inst_hook pre-mount 50 "$moddir/netboot-agent.sh"
    dracut_need_initqueue
}
