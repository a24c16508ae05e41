/**
 * What the node is, read from sysfs (Documentation/ABI/testing/sysfs-class-net,
 * sysfs-firmware-dmi-entries, and securityfs for the TPM event log). The root is a
 * parameter so tests point it at a tree of their own.
 *
 *   MACs       /sys/class/net/<if>/address of every interface backed by a device
 *              (a `device` link: no lo, bridges, veths, bonds), ARPHRD_ETHER (`type`
 *              1), not all-zero; lower-case colon form, sorted
 *   DMI        /sys/class/dmi/id/{product_uuid, product_serial, sys_vendor, product_name}
 *   event log  /sys/kernel/security/tpm0/binary_bios_measurements (TCG PC Client PFP
 *              §10 log), as bytes
 */
import { lstat, readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'

export interface Hardware {
  readonly systemUuid?: string
  readonly serial?: string
  readonly vendor?: string
  readonly product?: string
}

export interface HardwareFacts {
  readonly macs: readonly string[]
  readonly hardware: Hardware
  /** Empty when the firmware left no log (BIOS without TCG support, swtpm). */
  readonly eventLog: Buffer
}

/** The server's bound on event_log (proto/attest.proto). */
export const MAX_EVENT_LOG = 1024 * 1024
const ARPHRD_ETHER = '1'
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/

async function text (path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim()
  } catch {
    return undefined
  }
}

export async function readMacs (sysfs: string): Promise<string[]> {
  const dir = join(sysfs, 'class', 'net')
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return []
  }
  const macs = new Set<string>()
  for (const name of names) {
    const ifdir = join(dir, name)
    const hasDevice = await lstat(join(ifdir, 'device')).then(() => true, () => false)
    if (!hasDevice) continue
    if (await text(join(ifdir, 'type')) !== ARPHRD_ETHER) continue
    const mac = (await text(join(ifdir, 'address')))?.toLowerCase()
    if (mac === undefined || !MAC.test(mac) || mac === '00:00:00:00:00:00') continue
    macs.add(mac)
  }
  return [...macs].sort()
}

/** A DMI string as the server takes it: printable, at most 64 characters; placeholders dropped. */
function dmiValue (v: string | undefined): string | undefined {
  if (v === undefined) return undefined
  // eslint-disable-next-line no-control-regex
  const s = v.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 64)
  if (s === '' || /^(to be filled by o\.e\.m\.|default string|not specified|none|0+)$/i.test(s)) return undefined
  return s
}

export async function readDmi (sysfs: string): Promise<Hardware> {
  const dir = join(sysfs, 'class', 'dmi', 'id')
  const [systemUuid, serial, vendor, product] = await Promise.all(
    ['product_uuid', 'product_serial', 'sys_vendor', 'product_name'].map(async (f) => dmiValue(await text(join(dir, f)))),
  )
  return {
    ...(systemUuid !== undefined ? { systemUuid: systemUuid.toLowerCase() } : {}),
    ...(serial !== undefined ? { serial } : {}),
    ...(vendor !== undefined ? { vendor } : {}),
    ...(product !== undefined ? { product } : {}),
  }
}

/** The firmware event log, or empty (absent, unreadable, or larger than the server takes). */
export async function readEventLog (sysfs: string): Promise<{ log: Buffer; note?: string }> {
  const path = join(sysfs, 'kernel', 'security', 'tpm0', 'binary_bios_measurements')
  let log: Buffer
  try {
    log = await readFile(path)
  } catch {
    return { log: Buffer.alloc(0), note: `no firmware event log at ${path}` }
  }
  if (log.length > MAX_EVENT_LOG) return { log: Buffer.alloc(0), note: `the firmware event log is ${log.length} bytes, more than the ${MAX_EVENT_LOG} the server takes: not sent` }
  return { log }
}

export async function readHardware (sysfs: string): Promise<HardwareFacts & { notes: string[] }> {
  const [macs, hardware, ev] = await Promise.all([readMacs(sysfs), readDmi(sysfs), readEventLog(sysfs)])
  return { macs, hardware, eventLog: ev.log, notes: ev.note !== undefined ? [ev.note] : [] }
}
