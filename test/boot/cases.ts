/**
 * Representative inputs for the golden scripts: the boot parameters OpenCHAMI
 * users have in BSS today (shared/seeds/002: root=live over HTTP, cloud-init
 * URLs, serial console), composed with netboot's own parameters.
 */
import { composeCmdline } from '../../server/boot/cmdline.js'
import type { AutoexecScriptInput, BootScriptInput, DiscoverScriptInput, RebootScriptInput } from '../../server/boot/script.js'

export const SERVER = 'http://172.16.0.254:8080'
export const DIGEST = '5f0b6e2d2c7b7a8f4f0a3c1e9d8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a'

/** BSS `params` from the bootcamp (002), as a group's parameters. */
export const BSS_PARAMS = 'root=live:http://172.16.0.254:8080/openchami/compute-slurm/latest/rootfs-4.18.0-553.27.1.el8_10.x86_64 ' +
  'ochami_ci_url=http://172.16.0.254:8081/cloud-init/ ochami_ci_url_secure=http://172.16.0.254:8081/cloud-init-secure/ ' +
  'overlayroot=tmpfs overlayroot_cfgdisk=disabled nomodeset ro ip=dhcp apparmor=0 selinux=0 console=ttyS0,115200 ' +
  'ip6=off network-config=disabled rd.shell'

const composed = composeCmdline([
  { scope: 'image:compute-slurm', params: 'ro quiet rd.neednet=1' },
  { scope: 'group:compute', params: BSS_PARAMS },
  { scope: 'node:nid001', params: '-rd.shell -quiet console=tty0' },
], { server: SERVER, node: 'nid001', image: `compute-slurm@sha256:${DIGEST}`, mode: 'boot' })

export const bootCases: Record<string, BootScriptInput> = {
  'boot-bss': {
    node: 'nid001',
    image: `compute-slurm@sha256:${DIGEST.slice(0, 12)}`,
    kernel: `${SERVER}/images/sha256/${DIGEST}/vmlinuz`,
    initrds: [{ url: `${SERVER}/images/sha256/${DIGEST}/initramfs.img`, name: 'initrd.img' }],
    cmdline: composed.cmdline,
  },
  'boot-two-initrds-custom-retry': {
    node: 'gpu-x1000c0s0b0n0',
    image: 'gpu-el9',
    kernel: `${SERVER}/images/gpu-el9/vmlinuz-5.14.0-427.el9.x86_64`,
    initrds: [
      { url: `${SERVER}/images/gpu-el9/initramfs-5.14.0-427.el9.x86_64.img`, name: 'initrd.img' },
      { url: `${SERVER}/agent/netboot-agent.cpio.zst`, name: 'agent.cpio' },
    ],
    cmdline: composeCmdline([{ scope: 'default', params: 'console=ttyS0,115200 console=tty0 ip=dhcp' }], { server: SERVER, node: 'gpu-x1000c0s0b0n0' }).cmdline,
    retry: { attempts: 10, delaySeconds: 3, jitterSeconds: 0, rebootDelaySeconds: 60 },
  },
  'boot-no-params': {
    node: 'n2',
    image: 'tiny',
    kernel: 'http://10.0.0.1/k',
    initrds: [{ url: 'http://10.0.0.1/i', name: 'initrd' }],
    cmdline: '',
  },
}

export const discoverCases: Record<string, DiscoverScriptInput> = {
  'discover-unknown-mac': {
    mac: 'ec:e7:a7:05:a1:fc',
    image: 'netboot-discovery',
    kernel: `${SERVER}/discovery/vmlinuz`,
    initrds: [{ url: `${SERVER}/discovery/initrd.img`, name: 'initrd.img' }],
    cmdline: composeCmdline([{ scope: 'image:discovery', params: 'console=ttyS0,115200 ip=dhcp rd.neednet=1' }], { server: SERVER, mode: 'discover' }).cmdline,
  },
}

export const rebootCases: Record<string, RebootScriptInput> = {
  'reboot-unknown-mac': { reason: 'ec:e7:a7:05:a1:fc is not enrolled (unknown_nodes.action=reboot)', delaySeconds: 30 },
  'reboot-no-image': { reason: 'node nid002 has no image configured', delaySeconds: 5 },
}

export const autoexecCases: Record<string, AutoexecScriptInput> = {
  'autoexec-path': { scriptUrl: `${SERVER}/boot/{mac}.ipxe` },
  'autoexec-query': { scriptUrl: `${SERVER}/boot.ipxe?mac={mac}`, retry: { attempts: 3, delaySeconds: 2, jitterSeconds: 0, rebootDelaySeconds: 20 } },
}
