#!/bin/sh
# netboot's initramfs functions (installed as /lib/netboot-lib.sh). POSIX sh, no
# dracut-lib needed: test/initrd/hook.test.ts runs them in a real sh with a stub agent.
#
# The agent's exit codes (agent/errors.ts EXIT_CODES, `netboot-agent exit-codes`,
# saved at build time in /usr/lib/netboot/exit-codes):
#   0   root ready at $NEWROOT: switch root
#   20  reboot (not a failure: e.g. the server now plans another image)
#   any other: failure; the emergency shell only when rd.shell allows it (netboot's
#   default is no shell), else one line on the console and a reboot after a pause.
#
# Overridable (tests, debugging): NETBOOT_NODE, NETBOOT_AGENT, NETBOOT_LIBDIR,
# NETBOOT_REBOOT (command), NETBOOT_SHELL (command), NETBOOT_MOUNTS (mount table),
# NETBOOT_FAIL_PAUSE (seconds before the reboot), NETBOOT_SHELL_ROUNDS.

NETBOOT_LIBDIR=${NETBOOT_LIBDIR:-/usr/lib/netboot}
NETBOOT_NODE=${NETBOOT_NODE:-/usr/bin/node}
NETBOOT_AGENT=${NETBOOT_AGENT:-$NETBOOT_LIBDIR/netboot-agent.mjs}
NETBOOT_MOUNTS=${NETBOOT_MOUNTS:-/proc/self/mounts}
NETBOOT_FAIL_PAUSE=${NETBOOT_FAIL_PAUSE:-10}
NETBOOT_SHELL_ROUNDS=${NETBOOT_SHELL_ROUNDS:-3}

netboot_say() {
    echo "netboot: $*" >&2
}

# netboot_action EXIT_CODE SHELL_ALLOWED(0|1) -> switch | reboot | shell | fail
netboot_action() {
    case "$1" in
        0) echo switch ;;
        20) echo reboot ;;
        *) if [ "$2" = 1 ]; then echo shell; else echo fail; fi ;;
    esac
}

# netboot_class EXIT_CODE -> the agent's name for it (internal, network, download, ...)
netboot_class() {
    if [ "$1" -gt 128 ] 2> /dev/null; then
        echo "killed by signal $(($1 - 128))"
        return 0
    fi
    if [ -r "$NETBOOT_LIBDIR/exit-codes" ]; then
        while read -r _nb_c _nb_n; do
            if [ "$_nb_c" = "$1" ]; then
                echo "$_nb_n"
                return 0
            fi
        done < "$NETBOOT_LIBDIR/exit-codes"
    fi
    echo "unknown"
}

# netboot_root_ready DIR: DIR is a mount point and looks like a root (dracut's usable_root).
netboot_root_ready() {
    _nb_found=0
    while read -r _nb_dev _nb_mnt _nb_rest; do
        [ "$_nb_mnt" = "$1" ] && _nb_found=1
    done < "$NETBOOT_MOUNTS"
    [ "$_nb_found" = 1 ] || return 1
    for _nb_i in "$1"/usr/lib*/ld-*.so* "$1"/lib*/ld-*.so*; do
        [ -e "$_nb_i" ] && return 0
    done
    [ -e "$1/proc" ] && [ -e "$1/sys" ] && [ -e "$1/dev" ]
}

netboot_reboot() {
    if [ -n "$NETBOOT_REBOOT" ]; then
        $NETBOOT_REBOOT
        return 1
    fi
    # No init to ask: sync and reboot through sysrq (works whatever kernel.sysrq says).
    echo s > /proc/sysrq-trigger
    sleep 1
    echo b > /proc/sysrq-trigger
    sleep 30
    return 1
}

netboot_shell() {
    if [ -n "$NETBOOT_SHELL" ]; then
        $NETBOOT_SHELL "$@"
    else
        emergency_shell -n netboot "$*"
    fi
}

# netboot_prepare: what the agent needs from the initramfs before it starts.
netboot_prepare() {
    # The UEFI event log: /sys/kernel/security/tpm0/binary_bios_measurements.
    if [ -d /sys/kernel/security ] && ! grep -q ' /sys/kernel/security ' /proc/self/mounts; then
        mount -t securityfs securityfs /sys/kernel/security || netboot_say "cannot mount securityfs: no firmware event log"
    fi
    # udev loads the TPM driver from the ACPI/PNP alias; load both anyway (no device: no harm).
    modprobe -q tpm_crb 2> /dev/null
    modprobe -q tpm_tis 2> /dev/null
    _nb_i=0
    while [ ! -e /dev/tpmrm0 ] && [ "$_nb_i" -lt 20 ]; do
        sleep 0.5
        _nb_i=$((_nb_i + 1))
    done
    [ -e /dev/tpmrm0 ] || netboot_say "no /dev/tpmrm0 after 10 s (the agent retries)"
    export NETBOOT_TPM_ADDON="$NETBOOT_LIBDIR/netboot_tpm.node"
    [ -s /etc/ssl/certs/ca-certificates.crt ] && export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
    export TSS2_LOG=all+none
}

# netboot_boot SHELL_ALLOWED(0|1) NEWROOT: runs the agent until NEWROOT is ready.
# Returns 0 with NEWROOT mounted and usable; returns non-zero only when the reboot
# could not be made (the caller's dracut then fails to find a root and stops).
netboot_boot() {
    _nb_rounds=0
    while :; do
        "$NETBOOT_NODE" "$NETBOOT_AGENT" run --newroot "$2"
        _nb_rc=$?
        _nb_do=$(netboot_action "$_nb_rc" "$1")
        if [ "$_nb_do" = switch ]; then
            netboot_root_ready "$2" && return 0
            netboot_say "the agent exited 0 but $2 is not a mounted root"
            _nb_rc=1
            _nb_do=$(netboot_action 1 "$1")
        fi
        case "$_nb_do" in
            reboot)
                netboot_say "the agent asked for a reboot: rebooting"
                netboot_reboot
                return 1
                ;;
            shell)
                _nb_rounds=$((_nb_rounds + 1))
                if [ "$_nb_rounds" -gt "$NETBOOT_SHELL_ROUNDS" ]; then
                    netboot_say "the agent failed (exit $_nb_rc: $(netboot_class "$_nb_rc")) $_nb_rounds times: rebooting"
                    netboot_reboot
                    return 1
                fi
                netboot_shell "netboot agent failed (exit $_nb_rc: $(netboot_class "$_nb_rc")); leave the shell to run it again"
                netboot_root_ready "$2" && return 0
                ;;
            *)
                netboot_say "the agent failed (exit $_nb_rc: $(netboot_class "$_nb_rc")): rebooting in $NETBOOT_FAIL_PAUSE s (rd.shell=1 opens the emergency shell instead)"
                sleep "$NETBOOT_FAIL_PAUSE"
                netboot_reboot
                return 1
                ;;
        esac
    done
}
