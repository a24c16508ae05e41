#!/bin/sh
# pre-mount hook: runs the netboot agent once the network is up (dracut's initqueue
# has finished: rd.neednet=1 waits for an interface). Sourced by dracut's init: it
# must not exit. On return $NEWROOT is mounted and usable (dracut's mount loop then
# finds it and switches root); otherwise the node reboots, or with rd.shell the
# emergency shell opens (see /lib/netboot-lib.sh netboot_boot).

command -v getarg > /dev/null || . /lib/dracut-lib.sh
# The library's overrides are for tests only. The kernel hands unknown NAME=value
# command-line parameters to init as environment variables, so in the initramfs they
# could name what runs in place of the agent: drop them before the library reads them.
unset NETBOOT_NODE NETBOOT_AGENT NETBOOT_LIBDIR NETBOOT_REBOOT NETBOOT_SHELL NETBOOT_MOUNTS NETBOOT_FAIL_PAUSE NETBOOT_SHELL_ROUNDS
. /lib/netboot-lib.sh

if [ "$root" = netboot ]; then
    netboot_prepare
    if getargbool 0 rd.shell; then _nb_shell=1; else _nb_shell=0; fi
    netboot_boot "$_nb_shell" "$NEWROOT"
    unset _nb_shell
fi
