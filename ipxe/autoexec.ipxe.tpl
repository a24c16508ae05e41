#!ipxe
{{! autoexec.ipxe: iPXE on some UEFI NICs fetches this over TFTP first, before  }}
{{! it has configured the network itself. Configure it, then chain to the HTTP  }}
{{! boot script of the NIC that got the lease. netX is the last interface       }}
{{! opened, i.e. the one dhcp succeeded on: net0 would be wrong on a machine    }}
{{! that boots from its second port.                                            }}
# netboot: hand over to this NIC's HTTP boot script
set dhcp-tries:int32 0
:retry_dhcp
iseq ${dhcp-tries} {{attempts}} && goto failed ||
iseq ${dhcp-tries} 0 || echo netboot: DHCP failed (try ${dhcp-tries} of {{attempts}}), retrying in {{retryDelay}} s
iseq ${dhcp-tries} 0 || sleep {{retryDelay}}
inc dhcp-tries
dhcp || goto retry_dhcp

set chain-tries:int32 0
:retry_chain
iseq ${chain-tries} {{attempts}} && goto failed ||
iseq ${chain-tries} 0 || echo netboot: boot script download failed (try ${chain-tries} of {{attempts}}), retrying in {{retryDelay}} s
iseq ${chain-tries} 0 || sleep {{retryDelay}}
inc chain-tries
chain {{scriptUrl}} || goto retry_chain

:failed
echo netboot: no boot script for ${netX/mac}; rebooting in {{rebootDelay}} s
sleep {{rebootDelay}}
reboot ||
goto failed
