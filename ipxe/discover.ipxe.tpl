#!ipxe
{{! Discovery boot for a MAC the inventory does not know (server/boot/script.ts).   }}
{{! Same shape as boot.ipxe.tpl: the discovery image's kernel and initrds over HTTP }}
{{! with bounded retries, then boot; the agent in it reports the machine and waits  }}
{{! for an admin. Any failure ends in a reboot, never an iPXE shell.                }}
# netboot: discovery boot for {{mac}}, image {{image}}
echo netboot: {{mac}} is not enrolled; booting discovery image {{image}}
{{#uki}}
iseq ${platform} efi && goto boot_uki ||
{{/uki}}

set kernel-tries:int32 0
:retry_kernel
iseq ${kernel-tries} {{attempts}} && goto failed ||
iseq ${kernel-tries} 0 || echo netboot: kernel download failed (try ${kernel-tries} of {{attempts}}), retrying in {{retryDelay}} s
iseq ${kernel-tries} 0 || sleep {{retryDelay}}
inc kernel-tries
kernel --name vmlinuz {{kernelUrl}} {{kernelArgs}} || goto retry_kernel
{{#initrds}}

set initrd-tries:int32 0
:retry_initrd{{index}}
iseq ${initrd-tries} {{attempts}} && goto failed ||
iseq ${initrd-tries} 0 || echo netboot: initrd {{name}} download failed (try ${initrd-tries} of {{attempts}}), retrying in {{retryDelay}} s
iseq ${initrd-tries} 0 || sleep {{retryDelay}}
inc initrd-tries
initrd --name {{name}} {{url}} || goto retry_initrd{{index}}
{{/initrds}}

echo netboot: starting the discovery kernel
boot || goto failed
{{#uki}}

:boot_uki
set uki-tries:int32 0
:retry_uki
iseq ${uki-tries} {{attempts}} && goto failed ||
iseq ${uki-tries} 0 || echo netboot: unified kernel image download failed (try ${uki-tries} of {{attempts}}), retrying in {{retryDelay}} s
iseq ${uki-tries} 0 || sleep {{retryDelay}}
inc uki-tries
kernel --name {{ukiName}} {{ukiUrl}} {{ukiArgs}} || goto retry_uki
echo netboot: starting the unified kernel image
boot || goto failed
{{/uki}}

:failed
echo netboot: {{mac}} could not boot discovery image {{image}}; rebooting in {{rebootDelay}} s
sleep {{rebootDelay}}
reboot ||
goto failed
