/**
 * IANA "Processor Architecture Types" (DHCPv4 option 93, RFC 4578 §2.1;
 * registry shared with DHCPv6 option 61, RFC 5970). RFC 4578 printed 7 as
 * "EFI BC" and 9 as "EFI x86-64"; errata 4624 and the registry swapped them,
 * and firmware sends both for x64 UEFI, so 9 is treated as x64 UEFI
 * (DHCP.md).
 */
export type ClientArch =
  | 'bios'
  | 'pc98'
  | 'ia64-uefi'
  | 'alpha'
  | 'arc-x86'
  | 'lean-client'
  | 'x86-uefi'
  | 'x64-uefi'
  | 'xscale-uefi'
  | 'arm32-uefi'
  | 'arm64-uefi'
  | 'ppc-open-firmware'
  | 'ppc-epapr'
  | 'power-opal-v3'
  | 'x86-uefi-http'
  | 'x64-uefi-http'
  | 'ebc-http'
  | 'arm32-uefi-http'
  | 'arm64-uefi-http'
  | 'bios-http'
  | 'arm32-uboot'
  | 'arm64-uboot'
  | 'arm32-uboot-http'
  | 'arm64-uboot-http'
  | 'riscv32-uefi'
  | 'riscv32-uefi-http'
  | 'riscv64-uefi'
  | 'riscv64-uefi-http'
  | 'riscv128-uefi'
  | 'riscv128-uefi-http'
  | 's390-basic'
  | 's390-extended'
  | 'mips32-uefi'
  | 'mips64-uefi'
  | 'sunway32-uefi'
  | 'sunway64-uefi'
  | 'loongarch32-uefi'
  | 'loongarch32-uefi-http'
  | 'loongarch64-uefi'
  | 'loongarch64-uefi-http'
  | 'arm-rpiboot'
  | 'unknown'

const TABLE: readonly ClientArch[] = [
  'bios', // 0
  'pc98', // 1
  'ia64-uefi', // 2
  'alpha', // 3
  'arc-x86', // 4
  'lean-client', // 5
  'x86-uefi', // 6
  'x64-uefi', // 7
  'xscale-uefi', // 8
  'x64-uefi', // 9: EBC in the registry, sent by x64 firmware in practice
  'arm32-uefi', // 10
  'arm64-uefi', // 11
  'ppc-open-firmware', // 12
  'ppc-epapr', // 13
  'power-opal-v3', // 14
  'x86-uefi-http', // 15
  'x64-uefi-http', // 16
  'ebc-http', // 17
  'arm32-uefi-http', // 18
  'arm64-uefi-http', // 19
  'bios-http', // 20
  'arm32-uboot', // 21
  'arm64-uboot', // 22
  'arm32-uboot-http', // 23
  'arm64-uboot-http', // 24
  'riscv32-uefi', // 25
  'riscv32-uefi-http', // 26
  'riscv64-uefi', // 27
  'riscv64-uefi-http', // 28
  'riscv128-uefi', // 29
  'riscv128-uefi-http', // 30
  's390-basic', // 31
  's390-extended', // 32
  'mips32-uefi', // 33
  'mips64-uefi', // 34
  'sunway32-uefi', // 35
  'sunway64-uefi', // 36
  'loongarch32-uefi', // 37
  'loongarch32-uefi-http', // 38
  'loongarch64-uefi', // 39
  'loongarch64-uefi-http', // 40
  'arm-rpiboot', // 41
]

export function archFromCode(code: number): ClientArch {
  return TABLE[code] ?? 'unknown'
}

/** Architecture types whose firmware boots from an HTTP URI (UEFI spec 2.10 §24.7). */
export function isHttpBootArch(arch: ClientArch): boolean {
  return arch.endsWith('-http')
}
