#!ipxe
{{! Boot script for a known node (server/boot/script.ts renders it).                }}
{{! Kernel and initrds come over HTTP, each with a bounded retry loop; when a       }}
{{! download keeps failing, or boot returns, the node says why and reboots: it      }}
{{! never stops at an iPXE shell. Every field is an IpxeSafe value.                 }}
{{! The Linux EFI stub finds each initrd by the initrd=NAME arguments in kernelArgs }}
{{! (reference/PXE.md), so each initrd is fetched under that name.                  }}
# netboot: boot script for node {{node}}, image {{image}}
echo netboot: node {{node}} boots image {{image}}

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

:failed
echo netboot: node {{node}} could not boot image {{image}}; rebooting in {{rebootDelay}} s
sleep {{rebootDelay}}
reboot ||
goto failed
