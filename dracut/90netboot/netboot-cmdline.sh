#!/bin/sh
# cmdline hook (dracut.cmdline(7)), sourced by dracut's init after 99base's
# parse-root-opts.sh. When netboot.server= is on the kernel command line, netboot
# owns the root: root=netboot rootok=1 (else init stops with "No or empty root=
# argument"), and the network is required: rd.neednet=1 and ip=dhcp unless given.
# Additions go to /etc/cmdline.d/, which getarg reads (before /proc/cmdline).

command -v getarg > /dev/null || . /lib/dracut-lib.sh

if [ -n "$(getarg netboot.server=)" ]; then
    _nb_root=$(getarg root=)
    if [ -n "$_nb_root" ] && [ "$_nb_root" != netboot ]; then
        warn "netboot: netboot.server= is set: ignoring root=$_nb_root (the netboot agent mounts the root)"
    fi
    root=netboot
    rootok=1
    {
        [ -z "$_nb_root" ] && echo "root=netboot"
        [ -z "$(getarg rd.neednet)" ] && echo "rd.neednet=1"
        [ -z "$(getarg ip=)" ] && echo "ip=dhcp"
    } > /etc/cmdline.d/90-netboot.conf
    unset _nb_root
fi
