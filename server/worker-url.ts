/**
 * The URL of a worker thread's script that sits beside the module starting it:
 * `<name>.ts` when that module runs from source (tsx, the tests), `<name>.js` when
 * compiled. `caller` is the starting module's `import.meta.url`.
 */
export function workerScript (caller: string, name: string): URL {
  return new URL(`./${name}${caller.endsWith('.ts') ? '.ts' : '.js'}`, caller)
}
