#!ipxe
{{! Answer for a machine netboot will not boot now (unknown MAC with            }}
{{! unknown_nodes.action=reboot, no image configured, image unavailable): say   }}
{{! why on the console, wait, reboot. If reboot fails, wait and try again.      }}
# netboot: reboot script
echo netboot: {{reason}}
echo netboot: rebooting in {{delay}} s

:reboot
sleep {{delay}}
reboot ||
echo netboot: reboot failed; trying again in {{delay}} s
goto reboot
