import * as $protobuf from "protobufjs";
import Long = require("long");
export namespace netboot {

    namespace attest {

        namespace v1 {

            interface IAttestStart {
                version?: (number|null);
                nodeHint?: (string|null);
                macs?: (string[]|null);
                ekPublic?: (Uint8Array|null);
                ekCert?: (Uint8Array|null);
                akPublic?: (Uint8Array|null);
                image?: (string|null);
                hardware?: (netboot.attest.v1.IHardware|null);
            }

            class AttestStart implements IAttestStart {
                constructor(properties?: netboot.attest.v1.IAttestStart);
                public version: number;
                public nodeHint: string;
                public macs: string[];
                public ekPublic: Uint8Array;
                public ekCert: Uint8Array;
                public akPublic: Uint8Array;
                public image: string;
                public hardware?: (netboot.attest.v1.IHardware|null);
                public static encode(message: netboot.attest.v1.IAttestStart, writer?: $protobuf.Writer): $protobuf.Writer;
                public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): netboot.attest.v1.AttestStart;
                public static getTypeUrl(typeUrlPrefix?: string): string;
            }

            interface IHardware {
                systemUuid?: (string|null);
                serial?: (string|null);
                vendor?: (string|null);
                product?: (string|null);
            }

            class Hardware implements IHardware {
                constructor(properties?: netboot.attest.v1.IHardware);
                public systemUuid: string;
                public serial: string;
                public vendor: string;
                public product: string;
                public static encode(message: netboot.attest.v1.IHardware, writer?: $protobuf.Writer): $protobuf.Writer;
                public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): netboot.attest.v1.Hardware;
                public static getTypeUrl(typeUrlPrefix?: string): string;
            }

            interface IAttestChallenge {
                session?: (string|null);
                credentialBlob?: (Uint8Array|null);
                encryptedSecret?: (Uint8Array|null);
                nonce?: (Uint8Array|null);
                pcrs?: (number[]|null);
                bank?: (string|null);
            }

            class AttestChallenge implements IAttestChallenge {
                constructor(properties?: netboot.attest.v1.IAttestChallenge);
                public session: string;
                public credentialBlob: Uint8Array;
                public encryptedSecret: Uint8Array;
                public nonce: Uint8Array;
                public pcrs: number[];
                public bank: string;
                public static encode(message: netboot.attest.v1.IAttestChallenge, writer?: $protobuf.Writer): $protobuf.Writer;
                public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): netboot.attest.v1.AttestChallenge;
                public static getTypeUrl(typeUrlPrefix?: string): string;
            }

            interface IAttestFinish {
                session?: (string|null);
                credential?: (Uint8Array|null);
                attest?: (Uint8Array|null);
                signature?: (Uint8Array|null);
                pcrValues?: ({ [k: string]: Uint8Array }|null);
                eventLog?: (Uint8Array|null);
                bootKey?: (Uint8Array|null);
            }

            class AttestFinish implements IAttestFinish {
                constructor(properties?: netboot.attest.v1.IAttestFinish);
                public session: string;
                public credential: Uint8Array;
                public attest: Uint8Array;
                public signature: Uint8Array;
                public pcrValues: { [k: string]: Uint8Array };
                public eventLog: Uint8Array;
                public bootKey: Uint8Array;
                public static encode(message: netboot.attest.v1.IAttestFinish, writer?: $protobuf.Writer): $protobuf.Writer;
                public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): netboot.attest.v1.AttestFinish;
                public static getTypeUrl(typeUrlPrefix?: string): string;
            }

            interface IAttestResult {
                token?: (string|null);
                expiresAt?: (number|Long|null);
                node?: (string|null);
                groups?: (string[]|null);
                rootfsUrl?: (string|null);
                rootfsSha256?: (string|null);
                attestationId?: (string|null);
            }

            class AttestResult implements IAttestResult {
                constructor(properties?: netboot.attest.v1.IAttestResult);
                public token: string;
                public expiresAt: (number|Long);
                public node: string;
                public groups: string[];
                public rootfsUrl: string;
                public rootfsSha256: string;
                public attestationId: string;
                public static encode(message: netboot.attest.v1.IAttestResult, writer?: $protobuf.Writer): $protobuf.Writer;
                public static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): netboot.attest.v1.AttestResult;
                public static getTypeUrl(typeUrlPrefix?: string): string;
            }
        }
    }
}
