/** Plain-text tables for people; `--json` output is for scripts. */

export function table (headers: readonly string[], rows: readonly (readonly (string | number | undefined)[])[]): string {
  const cells = rows.map((r) => r.map((c) => (c === undefined || c === '' ? '-' : String(c))))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)))
  const line = (r: readonly string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(headers), ...cells.map(line)].join('\n')
}
