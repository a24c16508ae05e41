/**
 * The simulated nodes' TPMs in a thread of their own (see fleet-thread.ts): the
 * fleet's keys, PCR banks and event logs live in this isolate, so the server's
 * heap and its garbage collections are the server's alone, as on a real network.
 * Requests are answered in order, one at a time.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { AttestFinishRequest, AttestStartRequest } from '../../../server/attest/wire.js'
import type { KeyKind } from '../../../test/sim/soft-tpm.js'
import { agentFinish, makeFleet, rebootAll, startRequest } from './fleet.js'
import { buf, type FleetRequest, type WireChallenge } from './fleet-thread.js'

const { kind, n, prefix, rounds } = workerData as { kind: KeyKind; n: number; prefix: string; rounds: number }
const fleet = makeFleet(kind, n, prefix, rounds)

function answer (r: FleetRequest): AttestStartRequest[] | (AttestFinishRequest | null)[] | null {
  switch (r.op) {
    case 'start': return fleet.slice(r.from, r.to).map(startRequest)
    case 'finish': return r.challenges.map((c: WireChallenge | null, i) => c === null
      ? null
      : agentFinish(fleet[r.from + i]!, { ...c, credentialBlob: buf(c.credentialBlob), encryptedSecret: buf(c.encryptedSecret), nonce: buf(c.nonce) }))
    case 'reboot': rebootAll(fleet); return null
  }
}

parentPort!.postMessage({ ready: fleet.map((x) => ({ name: x.name, mac: x.mac })) })
parentPort!.on('message', (r: FleetRequest) => {
  try {
    parentPort!.postMessage({ ok: answer(r) })
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).stack ?? String(e) })
  }
})
