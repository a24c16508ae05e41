#!ipxe
{{! Boot script for a known node (server/boot/script.ts renders it).                }}
{{! Kernel and initrds come over HTTP, each with a bounded retry loop; when a       }}
{{! download keeps failing, or boot returns, the node says why and reboots: it      }}
{{! never stops at an iPXE shell. Every field is an IpxeSafe value.                 }}
{{! The Linux EFI stub finds each initrd by the initrd=NAME arguments in kernelArgs }}
{{! (reference/PXE.md), so each initrd is fetched under that name.                  }}
{{! When the image has a unified kernel image (docs/uki.md), iPXE running on UEFI  }}
{{! (its platform setting is efi) boots that instead: kernel, initrd and command   }}
{{! line in one PE that the firmware measures into PCR 4. BIOS iPXE (pcbios) goes  }}
{{! on to the kernel and initrd below.                                             }}
# netboot: boot script for node {{node}}, image {{image}}
echo netboot: node {{node}} boots image {{image}}
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

echo netboot: starting the kernel
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
echo netboot: node {{node}} could not boot image {{image}}; rebooting in {{rebootDelay}} s
sleep {{rebootDelay}}
reboot ||
goto failed
