/**
 * The boot timeline read from netboot's log (timeline.ts), on real logs of the
 * firmware end-to-end test (test/fixtures/e2e/README.md): no QEMU, no root.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { bootTimeline, formatTimeline, parseLog, STEP_ORDER, type BootMachine, type LogLine } from './timeline.js'

const fixture = (name: string): LogLine[] => parseLog(readFileSync(new URL(`../fixtures/e2e/${name}`, import.meta.url), 'utf8'))
const KERNEL = '26f2e57c99338feaf71c46fa4babdc7e1a6c115943002d109fdb746667104f5f'
const INITRD = '592e91720b0ae262bbf3e31fcc6a2ae50cfbf0df55a50578c516f78c3bd7d230'
const machine = (n: 1 | 2 | 3): BootMachine => ({
  mac: `52:54:00:96:00:0${n}`, ip: `10.96.0.1${n}`, kernelSha256: KERNEL, initrdSha256: INITRD,
  viaTftp: n === 3, ...(n === 3 ? { ipxeFile: 'ipxe.efi' } : {}),
})
const names = (tl: ReturnType<typeof bootTimeline>): string[] => tl.steps.map((s) => s.name)

t.test('parseLog keeps JSON lines only, with their time in ms', async (t) => {
  const lines = parseLog('npm noise\n{"time":"2026-01-01T00:00:01.500Z","msg":"a"}\n{"time":5,"msg":"b"}\n{broken\n{"msg":"no time"}\n')
  t.same(lines.map((l) => [l.msg, l.time]), [['a', Date.parse('2026-01-01T00:00:01.500Z')], ['b', 5]])
})

t.test('NIC ROM boots: iPXE is the first DHCP client, then script, kernel, initrd', async (t) => {
  const log = fixture('netboot-three-boots-tftp-refused.log')
  for (const n of [1, 2] as const) {
    const tl = bootTimeline(log, machine(n))
    t.same(tl.problems, [], `machine ${n}`)
    t.same(names(tl), ['dhcp', 'ipxe', 'script', 'kernel', 'initrd'])
    t.equal(tl.steps[0]!.detail, `OFFER to ipxe (${n === 1 ? 'bios' : 'x64-uefi'}), boot http://10.96.0.1:8080/boot/52:54:00:96:00:0${n}`)
    t.match(tl.steps[3]!.detail, new RegExp(`^GET /images/${KERNEL}/vmlinuz → 200$`))
  }
})

t.test("UEFI's own PXE: ipxe.efi over TFTP, then iPXE", async (t) => {
  const tl = bootTimeline(fixture('netboot-uefi-pxe-tftp.log'), machine(3))
  t.same(tl.problems, [], "EDK2's tsize probe (aborted with ERROR 8) is not a failure")
  t.same(names(tl), ['dhcp', 'tftp', 'ipxe', 'script', 'kernel', 'initrd'])
  t.equal(tl.steps[0]!.detail, 'OFFER to pxe (x64-uefi), boot tftp:ipxe.efi')
  t.match(tl.steps[1]!.detail, /^ipxe\.efi \(850528 bytes, \d+ ms\)$/)
  t.match(formatTimeline(tl.steps, tl.steps[0]!.time), /^dhcp 0\.0 s, tftp \d+\.\d s, ipxe /)
})

t.test("UEFI's own PXE refused ipxe.efi: the problems say why", async (t) => {
  const tl = bootTimeline(fixture('netboot-three-boots-tftp-refused.log'), machine(3))
  t.same(tl.problems, [
    'tftp: ipxe.efi refused (traversal: resolves outside the root)',
    'dhcp: the firmware gave up on PXE and fell back to UEFI HTTP boot (http://10.96.0.1:8080/ipxe/ipxe.efi)',
    'tftp: not in the log',
  ])
  t.same(names(tl), ['dhcp', 'ipxe', 'script', 'kernel', 'initrd'], 'the boot went on by UEFI HTTP boot')
})

t.test('a machine expected through TFTP that came with a ROM, and the reverse', async (t) => {
  const log = fixture('netboot-three-boots-tftp-refused.log')
  t.same(bootTimeline(log, { ...machine(1), viaTftp: true }).problems, ["dhcp: no reply to the firmware's own PXE client", 'tftp: not in the log'])
  t.match(bootTimeline(fixture('netboot-uefi-pxe-tftp.log'), { ...machine(3), viaTftp: false }).problems, [/^tftp: a NIC ROM client fetched ipxe\.efi/])
})

t.test('a failed download and a step out of order are problems', async (t) => {
  const log = fixture('netboot-uefi-pxe-tftp.log')
  const failed = log.map((l) => l.msg === 'request completed' && l.server === 'node' && l.reqId === 'req-2' ? { ...l, res: { statusCode: 404 } } : l)
  t.match(bootTimeline(failed, machine(3)).problems, [new RegExp(`^kernel: GET /images/${KERNEL}/vmlinuz → 404$`)])
  const script = log.find((l) => l.msg === 'incoming request' && String((l.req as { url: string }).url).startsWith('/boot/'))!
  const early = log.map((l) => l === script ? { ...l, time: 0 } : l)
  t.match(bootTimeline(early, machine(3)).problems, ['script came before ipxe'])
  t.same(bootTimeline(log, machine(3), Infinity).problems.length, STEP_ORDER.length, 'nothing before `since` counts')
})
