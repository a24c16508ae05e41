/** The generated wire types (proto/gen, from proto/attest.proto by scripts/gen-proto.sh). */
import { netboot } from './gen/attest.js'

export const attest = netboot.attest.v1
export type AttestStart = netboot.attest.v1.AttestStart
export type AttestChallenge = netboot.attest.v1.IAttestChallenge
export type AttestFinish = netboot.attest.v1.AttestFinish
export type AttestResult = netboot.attest.v1.IAttestResult

export const PROTOBUF_CONTENT_TYPE = 'application/x-protobuf'
