/**
 * Worker thread for measureUkiFile (uki.ts): reads one UKI and computes its
 * Authenticode digests off the event loop that serves DHCP, TFTP and HTTP
 * (a 512 MiB UKI is seconds of hashing). Input: workerData { path }. Output:
 * one message, { ok: true, value } or { ok: false, code, message }.
 */
import { readFile } from 'node:fs/promises'
import { parentPort, workerData } from 'node:worker_threads'
import { NetbootError } from '../errors.js'
import { measureUki } from './uki.js'

const { path } = workerData as { path: string }
try {
  parentPort!.postMessage({ ok: true, value: measureUki(await readFile(path)) })
} catch (e) {
  parentPort!.postMessage(e instanceof NetbootError
    ? { ok: false, code: e.code, message: e.message }
    : { ok: false, code: 'INTERNAL', message: (e as Error).message })
}
