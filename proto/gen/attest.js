/*eslint-disable block-scoped-var, id-length, no-control-regex, no-magic-numbers, no-prototype-builtins, no-redeclare, no-shadow, no-var, sort-vars*/
import $protobuf from "protobufjs/minimal.js";

// Common aliases
const $Reader = $protobuf.Reader, $Writer = $protobuf.Writer, $util = $protobuf.util;

// Exported root namespace
const $root = $protobuf.roots["default"] || ($protobuf.roots["default"] = {});

export const netboot = $root.netboot = (() => {

    /**
     * Namespace netboot.
     * @exports netboot
     * @namespace
     */
    const netboot = {};

    netboot.attest = (function() {

        /**
         * Namespace attest.
         * @memberof netboot
         * @namespace
         */
        const attest = {};

        attest.v1 = (function() {

            /**
             * Namespace v1.
             * @memberof netboot.attest
             * @namespace
             */
            const v1 = {};

            v1.AttestStart = (function() {

                /**
                 * Properties of an AttestStart.
                 * @memberof netboot.attest.v1
                 * @interface IAttestStart
                 * @property {number|null} [version] AttestStart version
                 * @property {string|null} [nodeHint] AttestStart nodeHint
                 * @property {Array.<string>|null} [macs] AttestStart macs
                 * @property {Uint8Array|null} [ekPublic] AttestStart ekPublic
                 * @property {Uint8Array|null} [ekCert] AttestStart ekCert
                 * @property {Uint8Array|null} [akPublic] AttestStart akPublic
                 * @property {string|null} [image] AttestStart image
                 * @property {netboot.attest.v1.IHardware|null} [hardware] AttestStart hardware
                 */

                /**
                 * Constructs a new AttestStart.
                 * @memberof netboot.attest.v1
                 * @classdesc Represents an AttestStart.
                 * @implements IAttestStart
                 * @constructor
                 * @param {netboot.attest.v1.IAttestStart=} [properties] Properties to set
                 */
                function AttestStart(properties) {
                    this.macs = [];
                    if (properties)
                        for (let keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                            if (properties[keys[i]] != null && keys[i] !== "__proto__")
                                this[keys[i]] = properties[keys[i]];
                }

                /**
                 * AttestStart version.
                 * @member {number} version
                 * @memberof netboot.attest.v1.AttestStart
                 * @instance
                 */
                AttestStart.prototype.version = 0;

                /**
                 * AttestStart nodeHint.
                 * @member {string} nodeHint
                 * @memberof netboot.attest.v1.AttestStart
                 * @instance
                 */
                AttestStart.prototype.nodeHint = "";

                /**
                 * AttestStart macs.
                 * @member {Array.<string>} macs
                 * @memberof netboot.attest.v1.AttestStart
                 * @instance
                 */
                AttestStart.prototype.macs = $util.emptyArray;

                /**
                 * AttestStart ekPublic.
                 * @member {Uint8Array} ekPublic
                 * @memberof netboot.attest.v1.AttestStart
                 * @instance
                 */
                AttestStart.prototype.ekPublic = $util.newBuffer([]);

                /**
                 * AttestStart ekCert.
                 * @member {Uint8Array} ekCert
                 * @memberof netboot.attest.v1.AttestStart
                 * @instance
                 */
                AttestStart.prototype.ekCert = $util.newBuffer([]);

                /**
                 * AttestStart akPublic.
                 * @member {Uint8Array} akPublic
                 * @memberof netboot.attest.v1.AttestStart
                 * @instance
                 */
                AttestStart.prototype.akPublic = $util.newBuffer([]);

                /**
                 * AttestStart image.
                 * @member {string} image
                 * @memberof netboot.attest.v1.AttestStart
                 * @instance
                 */
                AttestStart.prototype.image = "";

                /**
                 * AttestStart hardware.
                 * @member {netboot.attest.v1.IHardware|null|undefined} hardware
                 * @memberof netboot.attest.v1.AttestStart
                 * @instance
                 */
                AttestStart.prototype.hardware = null;

                /**
                 * Encodes the specified AttestStart message. Does not implicitly {@link netboot.attest.v1.AttestStart.verify|verify} messages.
                 * @function encode
                 * @memberof netboot.attest.v1.AttestStart
                 * @static
                 * @param {netboot.attest.v1.IAttestStart} message AttestStart message or plain object to encode
                 * @param {$protobuf.Writer} [writer] Writer to encode to
                 * @returns {$protobuf.Writer} Writer
                 */
                AttestStart.encode = function encode(message, writer, q) {
                    if (!writer)
                        writer = $Writer.create();
                    if (q === undefined)
                        q = 0;
                    if (q > $util.recursionLimit)
                        throw Error("max depth exceeded");
                    if (message.version != null && Object.hasOwnProperty.call(message, "version"))
                        writer.uint32(/* id 1, wireType 0 =*/8).uint32(message.version);
                    if (message.nodeHint != null && Object.hasOwnProperty.call(message, "nodeHint"))
                        writer.uint32(/* id 2, wireType 2 =*/18).string(message.nodeHint);
                    if (message.macs != null && message.macs.length)
                        for (let i = 0; i < message.macs.length; ++i)
                            writer.uint32(/* id 3, wireType 2 =*/26).string(message.macs[i]);
                    if (message.ekPublic != null && Object.hasOwnProperty.call(message, "ekPublic"))
                        writer.uint32(/* id 4, wireType 2 =*/34).bytes(message.ekPublic);
                    if (message.ekCert != null && Object.hasOwnProperty.call(message, "ekCert"))
                        writer.uint32(/* id 5, wireType 2 =*/42).bytes(message.ekCert);
                    if (message.akPublic != null && Object.hasOwnProperty.call(message, "akPublic"))
                        writer.uint32(/* id 6, wireType 2 =*/50).bytes(message.akPublic);
                    if (message.image != null && Object.hasOwnProperty.call(message, "image"))
                        writer.uint32(/* id 7, wireType 2 =*/58).string(message.image);
                    if (message.hardware != null && Object.hasOwnProperty.call(message, "hardware"))
                        $root.netboot.attest.v1.Hardware.encode(message.hardware, writer.uint32(/* id 8, wireType 2 =*/66).fork(), q + 1).ldelim();
                    return writer;
                };

                /**
                 * Decodes an AttestStart message from the specified reader or buffer.
                 * @function decode
                 * @memberof netboot.attest.v1.AttestStart
                 * @static
                 * @param {$protobuf.Reader|Uint8Array} reader Reader or buffer to decode from
                 * @param {number} [length] Message length if known beforehand
                 * @returns {netboot.attest.v1.AttestStart} AttestStart
                 * @throws {Error} If the payload is not a reader or valid buffer
                 * @throws {$protobuf.util.ProtocolError} If required fields are missing
                 */
                AttestStart.decode = function decode(reader, length, error, long) {
                    if (!(reader instanceof $Reader))
                        reader = $Reader.create(reader);
                    if (long === undefined)
                        long = 0;
                    if (long > $Reader.recursionLimit)
                        throw Error("maximum nesting depth exceeded");
                    let end, message;
                    if (length === undefined)
                        end = reader.len;
                    else {
                        end = reader.pos + length;
                        if (end > reader.len)
                            throw RangeError("index out of range");
                        length = reader.len;
                        reader.len = end;
                    }
                    message = new $root.netboot.attest.v1.AttestStart();
                    while (reader.pos < end) {
                        let tag = reader.uint32();
                        if (tag === error)
                            break;
                        switch (tag >>> 3) {
                        case 1: {
                                message.version = reader.uint32();
                                break;
                            }
                        case 2: {
                                message.nodeHint = reader.string();
                                break;
                            }
                        case 3: {
                                if (!(message.macs && message.macs.length))
                                    message.macs = [];
                                message.macs.push(reader.string());
                                break;
                            }
                        case 4: {
                                message.ekPublic = reader.bytes();
                                break;
                            }
                        case 5: {
                                message.ekCert = reader.bytes();
                                break;
                            }
                        case 6: {
                                message.akPublic = reader.bytes();
                                break;
                            }
                        case 7: {
                                message.image = reader.string();
                                break;
                            }
                        case 8: {
                                message.hardware = $root.netboot.attest.v1.Hardware.decode(reader, reader.uint32(), undefined, long + 1);
                                break;
                            }
                        default:
                            reader.skipType(tag & 7, long);
                            break;
                        }
                    }
                    if (length !== undefined) {
                        if (reader.pos !== end)
                            throw RangeError("index out of range");
                        reader.len = length;
                    }
                    return message;
                };

                /**
                 * Gets the default type url for AttestStart
                 * @function getTypeUrl
                 * @memberof netboot.attest.v1.AttestStart
                 * @static
                 * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
                 * @returns {string} The default type url
                 */
                AttestStart.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                    if (typeUrlPrefix === undefined) {
                        typeUrlPrefix = "type.googleapis.com";
                    }
                    return typeUrlPrefix + "/netboot.attest.v1.AttestStart";
                };

                return AttestStart;
            })();

            v1.Hardware = (function() {

                /**
                 * Properties of a Hardware.
                 * @memberof netboot.attest.v1
                 * @interface IHardware
                 * @property {string|null} [systemUuid] Hardware systemUuid
                 * @property {string|null} [serial] Hardware serial
                 * @property {string|null} [vendor] Hardware vendor
                 * @property {string|null} [product] Hardware product
                 */

                /**
                 * Constructs a new Hardware.
                 * @memberof netboot.attest.v1
                 * @classdesc Represents a Hardware.
                 * @implements IHardware
                 * @constructor
                 * @param {netboot.attest.v1.IHardware=} [properties] Properties to set
                 */
                function Hardware(properties) {
                    if (properties)
                        for (let keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                            if (properties[keys[i]] != null && keys[i] !== "__proto__")
                                this[keys[i]] = properties[keys[i]];
                }

                /**
                 * Hardware systemUuid.
                 * @member {string} systemUuid
                 * @memberof netboot.attest.v1.Hardware
                 * @instance
                 */
                Hardware.prototype.systemUuid = "";

                /**
                 * Hardware serial.
                 * @member {string} serial
                 * @memberof netboot.attest.v1.Hardware
                 * @instance
                 */
                Hardware.prototype.serial = "";

                /**
                 * Hardware vendor.
                 * @member {string} vendor
                 * @memberof netboot.attest.v1.Hardware
                 * @instance
                 */
                Hardware.prototype.vendor = "";

                /**
                 * Hardware product.
                 * @member {string} product
                 * @memberof netboot.attest.v1.Hardware
                 * @instance
                 */
                Hardware.prototype.product = "";

                /**
                 * Encodes the specified Hardware message. Does not implicitly {@link netboot.attest.v1.Hardware.verify|verify} messages.
                 * @function encode
                 * @memberof netboot.attest.v1.Hardware
                 * @static
                 * @param {netboot.attest.v1.IHardware} message Hardware message or plain object to encode
                 * @param {$protobuf.Writer} [writer] Writer to encode to
                 * @returns {$protobuf.Writer} Writer
                 */
                Hardware.encode = function encode(message, writer, q) {
                    if (!writer)
                        writer = $Writer.create();
                    if (q === undefined)
                        q = 0;
                    if (q > $util.recursionLimit)
                        throw Error("max depth exceeded");
                    if (message.systemUuid != null && Object.hasOwnProperty.call(message, "systemUuid"))
                        writer.uint32(/* id 1, wireType 2 =*/10).string(message.systemUuid);
                    if (message.serial != null && Object.hasOwnProperty.call(message, "serial"))
                        writer.uint32(/* id 2, wireType 2 =*/18).string(message.serial);
                    if (message.vendor != null && Object.hasOwnProperty.call(message, "vendor"))
                        writer.uint32(/* id 3, wireType 2 =*/26).string(message.vendor);
                    if (message.product != null && Object.hasOwnProperty.call(message, "product"))
                        writer.uint32(/* id 4, wireType 2 =*/34).string(message.product);
                    return writer;
                };

                /**
                 * Decodes a Hardware message from the specified reader or buffer.
                 * @function decode
                 * @memberof netboot.attest.v1.Hardware
                 * @static
                 * @param {$protobuf.Reader|Uint8Array} reader Reader or buffer to decode from
                 * @param {number} [length] Message length if known beforehand
                 * @returns {netboot.attest.v1.Hardware} Hardware
                 * @throws {Error} If the payload is not a reader or valid buffer
                 * @throws {$protobuf.util.ProtocolError} If required fields are missing
                 */
                Hardware.decode = function decode(reader, length, error, long) {
                    if (!(reader instanceof $Reader))
                        reader = $Reader.create(reader);
                    if (long === undefined)
                        long = 0;
                    if (long > $Reader.recursionLimit)
                        throw Error("maximum nesting depth exceeded");
                    let end, message;
                    if (length === undefined)
                        end = reader.len;
                    else {
                        end = reader.pos + length;
                        if (end > reader.len)
                            throw RangeError("index out of range");
                        length = reader.len;
                        reader.len = end;
                    }
                    message = new $root.netboot.attest.v1.Hardware();
                    while (reader.pos < end) {
                        let tag = reader.uint32();
                        if (tag === error)
                            break;
                        switch (tag >>> 3) {
                        case 1: {
                                message.systemUuid = reader.string();
                                break;
                            }
                        case 2: {
                                message.serial = reader.string();
                                break;
                            }
                        case 3: {
                                message.vendor = reader.string();
                                break;
                            }
                        case 4: {
                                message.product = reader.string();
                                break;
                            }
                        default:
                            reader.skipType(tag & 7, long);
                            break;
                        }
                    }
                    if (length !== undefined) {
                        if (reader.pos !== end)
                            throw RangeError("index out of range");
                        reader.len = length;
                    }
                    return message;
                };

                /**
                 * Gets the default type url for Hardware
                 * @function getTypeUrl
                 * @memberof netboot.attest.v1.Hardware
                 * @static
                 * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
                 * @returns {string} The default type url
                 */
                Hardware.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                    if (typeUrlPrefix === undefined) {
                        typeUrlPrefix = "type.googleapis.com";
                    }
                    return typeUrlPrefix + "/netboot.attest.v1.Hardware";
                };

                return Hardware;
            })();

            v1.AttestChallenge = (function() {

                /**
                 * Properties of an AttestChallenge.
                 * @memberof netboot.attest.v1
                 * @interface IAttestChallenge
                 * @property {string|null} [session] AttestChallenge session
                 * @property {Uint8Array|null} [credentialBlob] AttestChallenge credentialBlob
                 * @property {Uint8Array|null} [encryptedSecret] AttestChallenge encryptedSecret
                 * @property {Uint8Array|null} [nonce] AttestChallenge nonce
                 * @property {Array.<number>|null} [pcrs] AttestChallenge pcrs
                 * @property {string|null} [bank] AttestChallenge bank
                 */

                /**
                 * Constructs a new AttestChallenge.
                 * @memberof netboot.attest.v1
                 * @classdesc Represents an AttestChallenge.
                 * @implements IAttestChallenge
                 * @constructor
                 * @param {netboot.attest.v1.IAttestChallenge=} [properties] Properties to set
                 */
                function AttestChallenge(properties) {
                    this.pcrs = [];
                    if (properties)
                        for (let keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                            if (properties[keys[i]] != null && keys[i] !== "__proto__")
                                this[keys[i]] = properties[keys[i]];
                }

                /**
                 * AttestChallenge session.
                 * @member {string} session
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @instance
                 */
                AttestChallenge.prototype.session = "";

                /**
                 * AttestChallenge credentialBlob.
                 * @member {Uint8Array} credentialBlob
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @instance
                 */
                AttestChallenge.prototype.credentialBlob = $util.newBuffer([]);

                /**
                 * AttestChallenge encryptedSecret.
                 * @member {Uint8Array} encryptedSecret
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @instance
                 */
                AttestChallenge.prototype.encryptedSecret = $util.newBuffer([]);

                /**
                 * AttestChallenge nonce.
                 * @member {Uint8Array} nonce
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @instance
                 */
                AttestChallenge.prototype.nonce = $util.newBuffer([]);

                /**
                 * AttestChallenge pcrs.
                 * @member {Array.<number>} pcrs
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @instance
                 */
                AttestChallenge.prototype.pcrs = $util.emptyArray;

                /**
                 * AttestChallenge bank.
                 * @member {string} bank
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @instance
                 */
                AttestChallenge.prototype.bank = "";

                /**
                 * Encodes the specified AttestChallenge message. Does not implicitly {@link netboot.attest.v1.AttestChallenge.verify|verify} messages.
                 * @function encode
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @static
                 * @param {netboot.attest.v1.IAttestChallenge} message AttestChallenge message or plain object to encode
                 * @param {$protobuf.Writer} [writer] Writer to encode to
                 * @returns {$protobuf.Writer} Writer
                 */
                AttestChallenge.encode = function encode(message, writer, q) {
                    if (!writer)
                        writer = $Writer.create();
                    if (q === undefined)
                        q = 0;
                    if (q > $util.recursionLimit)
                        throw Error("max depth exceeded");
                    if (message.session != null && Object.hasOwnProperty.call(message, "session"))
                        writer.uint32(/* id 1, wireType 2 =*/10).string(message.session);
                    if (message.credentialBlob != null && Object.hasOwnProperty.call(message, "credentialBlob"))
                        writer.uint32(/* id 2, wireType 2 =*/18).bytes(message.credentialBlob);
                    if (message.encryptedSecret != null && Object.hasOwnProperty.call(message, "encryptedSecret"))
                        writer.uint32(/* id 3, wireType 2 =*/26).bytes(message.encryptedSecret);
                    if (message.nonce != null && Object.hasOwnProperty.call(message, "nonce"))
                        writer.uint32(/* id 4, wireType 2 =*/34).bytes(message.nonce);
                    if (message.pcrs != null && message.pcrs.length) {
                        writer.uint32(/* id 5, wireType 2 =*/42).fork();
                        for (let i = 0; i < message.pcrs.length; ++i)
                            writer.uint32(message.pcrs[i]);
                        writer.ldelim();
                    }
                    if (message.bank != null && Object.hasOwnProperty.call(message, "bank"))
                        writer.uint32(/* id 6, wireType 2 =*/50).string(message.bank);
                    return writer;
                };

                /**
                 * Decodes an AttestChallenge message from the specified reader or buffer.
                 * @function decode
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @static
                 * @param {$protobuf.Reader|Uint8Array} reader Reader or buffer to decode from
                 * @param {number} [length] Message length if known beforehand
                 * @returns {netboot.attest.v1.AttestChallenge} AttestChallenge
                 * @throws {Error} If the payload is not a reader or valid buffer
                 * @throws {$protobuf.util.ProtocolError} If required fields are missing
                 */
                AttestChallenge.decode = function decode(reader, length, error, long) {
                    if (!(reader instanceof $Reader))
                        reader = $Reader.create(reader);
                    if (long === undefined)
                        long = 0;
                    if (long > $Reader.recursionLimit)
                        throw Error("maximum nesting depth exceeded");
                    let end, message;
                    if (length === undefined)
                        end = reader.len;
                    else {
                        end = reader.pos + length;
                        if (end > reader.len)
                            throw RangeError("index out of range");
                        length = reader.len;
                        reader.len = end;
                    }
                    message = new $root.netboot.attest.v1.AttestChallenge();
                    while (reader.pos < end) {
                        let tag = reader.uint32();
                        if (tag === error)
                            break;
                        switch (tag >>> 3) {
                        case 1: {
                                message.session = reader.string();
                                break;
                            }
                        case 2: {
                                message.credentialBlob = reader.bytes();
                                break;
                            }
                        case 3: {
                                message.encryptedSecret = reader.bytes();
                                break;
                            }
                        case 4: {
                                message.nonce = reader.bytes();
                                break;
                            }
                        case 5: {
                                if (!(message.pcrs && message.pcrs.length))
                                    message.pcrs = [];
                                if ((tag & 7) === 2) {
                                    let end2 = reader.uint32() + reader.pos;
                                    if (end2 > reader.len)
                                        throw RangeError("index out of range");
                                    reader.len = end2;
                                    while (reader.pos < end2)
                                        message.pcrs.push(reader.uint32());
                                    if (reader.pos !== end2)
                                        throw RangeError("index out of range");
                                    reader.len = end;
                                } else
                                    message.pcrs.push(reader.uint32());
                                break;
                            }
                        case 6: {
                                message.bank = reader.string();
                                break;
                            }
                        default:
                            reader.skipType(tag & 7, long);
                            break;
                        }
                    }
                    if (length !== undefined) {
                        if (reader.pos !== end)
                            throw RangeError("index out of range");
                        reader.len = length;
                    }
                    return message;
                };

                /**
                 * Gets the default type url for AttestChallenge
                 * @function getTypeUrl
                 * @memberof netboot.attest.v1.AttestChallenge
                 * @static
                 * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
                 * @returns {string} The default type url
                 */
                AttestChallenge.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                    if (typeUrlPrefix === undefined) {
                        typeUrlPrefix = "type.googleapis.com";
                    }
                    return typeUrlPrefix + "/netboot.attest.v1.AttestChallenge";
                };

                return AttestChallenge;
            })();

            v1.AttestFinish = (function() {

                /**
                 * Properties of an AttestFinish.
                 * @memberof netboot.attest.v1
                 * @interface IAttestFinish
                 * @property {string|null} [session] AttestFinish session
                 * @property {Uint8Array|null} [credential] AttestFinish credential
                 * @property {Uint8Array|null} [attest] AttestFinish attest
                 * @property {Uint8Array|null} [signature] AttestFinish signature
                 * @property {Object.<string,Uint8Array>|null} [pcrValues] AttestFinish pcrValues
                 * @property {Uint8Array|null} [eventLog] AttestFinish eventLog
                 * @property {Uint8Array|null} [bootKey] AttestFinish bootKey
                 */

                /**
                 * Constructs a new AttestFinish.
                 * @memberof netboot.attest.v1
                 * @classdesc Represents an AttestFinish.
                 * @implements IAttestFinish
                 * @constructor
                 * @param {netboot.attest.v1.IAttestFinish=} [properties] Properties to set
                 */
                function AttestFinish(properties) {
                    this.pcrValues = {};
                    if (properties)
                        for (let keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                            if (properties[keys[i]] != null && keys[i] !== "__proto__")
                                this[keys[i]] = properties[keys[i]];
                }

                /**
                 * AttestFinish session.
                 * @member {string} session
                 * @memberof netboot.attest.v1.AttestFinish
                 * @instance
                 */
                AttestFinish.prototype.session = "";

                /**
                 * AttestFinish credential.
                 * @member {Uint8Array} credential
                 * @memberof netboot.attest.v1.AttestFinish
                 * @instance
                 */
                AttestFinish.prototype.credential = $util.newBuffer([]);

                /**
                 * AttestFinish attest.
                 * @member {Uint8Array} attest
                 * @memberof netboot.attest.v1.AttestFinish
                 * @instance
                 */
                AttestFinish.prototype.attest = $util.newBuffer([]);

                /**
                 * AttestFinish signature.
                 * @member {Uint8Array} signature
                 * @memberof netboot.attest.v1.AttestFinish
                 * @instance
                 */
                AttestFinish.prototype.signature = $util.newBuffer([]);

                /**
                 * AttestFinish pcrValues.
                 * @member {Object.<string,Uint8Array>} pcrValues
                 * @memberof netboot.attest.v1.AttestFinish
                 * @instance
                 */
                AttestFinish.prototype.pcrValues = $util.emptyObject;

                /**
                 * AttestFinish eventLog.
                 * @member {Uint8Array} eventLog
                 * @memberof netboot.attest.v1.AttestFinish
                 * @instance
                 */
                AttestFinish.prototype.eventLog = $util.newBuffer([]);

                /**
                 * AttestFinish bootKey.
                 * @member {Uint8Array} bootKey
                 * @memberof netboot.attest.v1.AttestFinish
                 * @instance
                 */
                AttestFinish.prototype.bootKey = $util.newBuffer([]);

                /**
                 * Encodes the specified AttestFinish message. Does not implicitly {@link netboot.attest.v1.AttestFinish.verify|verify} messages.
                 * @function encode
                 * @memberof netboot.attest.v1.AttestFinish
                 * @static
                 * @param {netboot.attest.v1.IAttestFinish} message AttestFinish message or plain object to encode
                 * @param {$protobuf.Writer} [writer] Writer to encode to
                 * @returns {$protobuf.Writer} Writer
                 */
                AttestFinish.encode = function encode(message, writer, q) {
                    if (!writer)
                        writer = $Writer.create();
                    if (q === undefined)
                        q = 0;
                    if (q > $util.recursionLimit)
                        throw Error("max depth exceeded");
                    if (message.session != null && Object.hasOwnProperty.call(message, "session"))
                        writer.uint32(/* id 1, wireType 2 =*/10).string(message.session);
                    if (message.credential != null && Object.hasOwnProperty.call(message, "credential"))
                        writer.uint32(/* id 2, wireType 2 =*/18).bytes(message.credential);
                    if (message.attest != null && Object.hasOwnProperty.call(message, "attest"))
                        writer.uint32(/* id 3, wireType 2 =*/26).bytes(message.attest);
                    if (message.signature != null && Object.hasOwnProperty.call(message, "signature"))
                        writer.uint32(/* id 4, wireType 2 =*/34).bytes(message.signature);
                    if (message.pcrValues != null && Object.hasOwnProperty.call(message, "pcrValues"))
                        for (let keys = Object.keys(message.pcrValues), i = 0; i < keys.length; ++i)
                            writer.uint32(/* id 5, wireType 2 =*/42).fork().uint32(/* id 1, wireType 0 =*/8).uint32(keys[i]).uint32(/* id 2, wireType 2 =*/18).bytes(message.pcrValues[keys[i]]).ldelim();
                    if (message.eventLog != null && Object.hasOwnProperty.call(message, "eventLog"))
                        writer.uint32(/* id 6, wireType 2 =*/50).bytes(message.eventLog);
                    if (message.bootKey != null && Object.hasOwnProperty.call(message, "bootKey"))
                        writer.uint32(/* id 7, wireType 2 =*/58).bytes(message.bootKey);
                    return writer;
                };

                /**
                 * Decodes an AttestFinish message from the specified reader or buffer.
                 * @function decode
                 * @memberof netboot.attest.v1.AttestFinish
                 * @static
                 * @param {$protobuf.Reader|Uint8Array} reader Reader or buffer to decode from
                 * @param {number} [length] Message length if known beforehand
                 * @returns {netboot.attest.v1.AttestFinish} AttestFinish
                 * @throws {Error} If the payload is not a reader or valid buffer
                 * @throws {$protobuf.util.ProtocolError} If required fields are missing
                 */
                AttestFinish.decode = function decode(reader, length, error, long) {
                    if (!(reader instanceof $Reader))
                        reader = $Reader.create(reader);
                    if (long === undefined)
                        long = 0;
                    if (long > $Reader.recursionLimit)
                        throw Error("maximum nesting depth exceeded");
                    let end, message, key, value;
                    if (length === undefined)
                        end = reader.len;
                    else {
                        end = reader.pos + length;
                        if (end > reader.len)
                            throw RangeError("index out of range");
                        length = reader.len;
                        reader.len = end;
                    }
                    message = new $root.netboot.attest.v1.AttestFinish();
                    while (reader.pos < end) {
                        let tag = reader.uint32();
                        if (tag === error)
                            break;
                        switch (tag >>> 3) {
                        case 1: {
                                message.session = reader.string();
                                break;
                            }
                        case 2: {
                                message.credential = reader.bytes();
                                break;
                            }
                        case 3: {
                                message.attest = reader.bytes();
                                break;
                            }
                        case 4: {
                                message.signature = reader.bytes();
                                break;
                            }
                        case 5: {
                                if (message.pcrValues === $util.emptyObject)
                                    message.pcrValues = {};
                                let end2 = reader.uint32() + reader.pos;
                                if (end2 > reader.len)
                                    throw RangeError("index out of range");
                                reader.len = end2;
                                key = 0;
                                value = [];
                                while (reader.pos < end2) {
                                    let tag2 = reader.uint32();
                                    switch (tag2 >>> 3) {
                                    case 1:
                                        key = reader.uint32();
                                        break;
                                    case 2:
                                        value = reader.bytes();
                                        break;
                                    default:
                                        reader.skipType(tag2 & 7, long);
                                        break;
                                    }
                                }
                                if (reader.pos !== end2)
                                    throw RangeError("index out of range");
                                reader.len = end;
                                message.pcrValues[key] = value;
                                break;
                            }
                        case 6: {
                                message.eventLog = reader.bytes();
                                break;
                            }
                        case 7: {
                                message.bootKey = reader.bytes();
                                break;
                            }
                        default:
                            reader.skipType(tag & 7, long);
                            break;
                        }
                    }
                    if (length !== undefined) {
                        if (reader.pos !== end)
                            throw RangeError("index out of range");
                        reader.len = length;
                    }
                    return message;
                };

                /**
                 * Gets the default type url for AttestFinish
                 * @function getTypeUrl
                 * @memberof netboot.attest.v1.AttestFinish
                 * @static
                 * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
                 * @returns {string} The default type url
                 */
                AttestFinish.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                    if (typeUrlPrefix === undefined) {
                        typeUrlPrefix = "type.googleapis.com";
                    }
                    return typeUrlPrefix + "/netboot.attest.v1.AttestFinish";
                };

                return AttestFinish;
            })();

            v1.AttestResult = (function() {

                /**
                 * Properties of an AttestResult.
                 * @memberof netboot.attest.v1
                 * @interface IAttestResult
                 * @property {string|null} [token] AttestResult token
                 * @property {number|Long|null} [expiresAt] AttestResult expiresAt
                 * @property {string|null} [node] AttestResult node
                 * @property {Array.<string>|null} [groups] AttestResult groups
                 * @property {string|null} [rootfsUrl] AttestResult rootfsUrl
                 * @property {string|null} [rootfsSha256] AttestResult rootfsSha256
                 * @property {string|null} [attestationId] AttestResult attestationId
                 */

                /**
                 * Constructs a new AttestResult.
                 * @memberof netboot.attest.v1
                 * @classdesc Represents an AttestResult.
                 * @implements IAttestResult
                 * @constructor
                 * @param {netboot.attest.v1.IAttestResult=} [properties] Properties to set
                 */
                function AttestResult(properties) {
                    this.groups = [];
                    if (properties)
                        for (let keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                            if (properties[keys[i]] != null && keys[i] !== "__proto__")
                                this[keys[i]] = properties[keys[i]];
                }

                /**
                 * AttestResult token.
                 * @member {string} token
                 * @memberof netboot.attest.v1.AttestResult
                 * @instance
                 */
                AttestResult.prototype.token = "";

                /**
                 * AttestResult expiresAt.
                 * @member {number|Long} expiresAt
                 * @memberof netboot.attest.v1.AttestResult
                 * @instance
                 */
                AttestResult.prototype.expiresAt = $util.Long ? $util.Long.fromBits(0,0,false) : 0;

                /**
                 * AttestResult node.
                 * @member {string} node
                 * @memberof netboot.attest.v1.AttestResult
                 * @instance
                 */
                AttestResult.prototype.node = "";

                /**
                 * AttestResult groups.
                 * @member {Array.<string>} groups
                 * @memberof netboot.attest.v1.AttestResult
                 * @instance
                 */
                AttestResult.prototype.groups = $util.emptyArray;

                /**
                 * AttestResult rootfsUrl.
                 * @member {string} rootfsUrl
                 * @memberof netboot.attest.v1.AttestResult
                 * @instance
                 */
                AttestResult.prototype.rootfsUrl = "";

                /**
                 * AttestResult rootfsSha256.
                 * @member {string} rootfsSha256
                 * @memberof netboot.attest.v1.AttestResult
                 * @instance
                 */
                AttestResult.prototype.rootfsSha256 = "";

                /**
                 * AttestResult attestationId.
                 * @member {string} attestationId
                 * @memberof netboot.attest.v1.AttestResult
                 * @instance
                 */
                AttestResult.prototype.attestationId = "";

                /**
                 * Encodes the specified AttestResult message. Does not implicitly {@link netboot.attest.v1.AttestResult.verify|verify} messages.
                 * @function encode
                 * @memberof netboot.attest.v1.AttestResult
                 * @static
                 * @param {netboot.attest.v1.IAttestResult} message AttestResult message or plain object to encode
                 * @param {$protobuf.Writer} [writer] Writer to encode to
                 * @returns {$protobuf.Writer} Writer
                 */
                AttestResult.encode = function encode(message, writer, q) {
                    if (!writer)
                        writer = $Writer.create();
                    if (q === undefined)
                        q = 0;
                    if (q > $util.recursionLimit)
                        throw Error("max depth exceeded");
                    if (message.token != null && Object.hasOwnProperty.call(message, "token"))
                        writer.uint32(/* id 3, wireType 2 =*/26).string(message.token);
                    if (message.expiresAt != null && Object.hasOwnProperty.call(message, "expiresAt"))
                        writer.uint32(/* id 4, wireType 0 =*/32).int64(message.expiresAt);
                    if (message.node != null && Object.hasOwnProperty.call(message, "node"))
                        writer.uint32(/* id 5, wireType 2 =*/42).string(message.node);
                    if (message.groups != null && message.groups.length)
                        for (let i = 0; i < message.groups.length; ++i)
                            writer.uint32(/* id 6, wireType 2 =*/50).string(message.groups[i]);
                    if (message.rootfsUrl != null && Object.hasOwnProperty.call(message, "rootfsUrl"))
                        writer.uint32(/* id 7, wireType 2 =*/58).string(message.rootfsUrl);
                    if (message.rootfsSha256 != null && Object.hasOwnProperty.call(message, "rootfsSha256"))
                        writer.uint32(/* id 8, wireType 2 =*/66).string(message.rootfsSha256);
                    if (message.attestationId != null && Object.hasOwnProperty.call(message, "attestationId"))
                        writer.uint32(/* id 9, wireType 2 =*/74).string(message.attestationId);
                    return writer;
                };

                /**
                 * Decodes an AttestResult message from the specified reader or buffer.
                 * @function decode
                 * @memberof netboot.attest.v1.AttestResult
                 * @static
                 * @param {$protobuf.Reader|Uint8Array} reader Reader or buffer to decode from
                 * @param {number} [length] Message length if known beforehand
                 * @returns {netboot.attest.v1.AttestResult} AttestResult
                 * @throws {Error} If the payload is not a reader or valid buffer
                 * @throws {$protobuf.util.ProtocolError} If required fields are missing
                 */
                AttestResult.decode = function decode(reader, length, error, long) {
                    if (!(reader instanceof $Reader))
                        reader = $Reader.create(reader);
                    if (long === undefined)
                        long = 0;
                    if (long > $Reader.recursionLimit)
                        throw Error("maximum nesting depth exceeded");
                    let end, message;
                    if (length === undefined)
                        end = reader.len;
                    else {
                        end = reader.pos + length;
                        if (end > reader.len)
                            throw RangeError("index out of range");
                        length = reader.len;
                        reader.len = end;
                    }
                    message = new $root.netboot.attest.v1.AttestResult();
                    while (reader.pos < end) {
                        let tag = reader.uint32();
                        if (tag === error)
                            break;
                        switch (tag >>> 3) {
                        case 3: {
                                message.token = reader.string();
                                break;
                            }
                        case 4: {
                                message.expiresAt = reader.int64();
                                break;
                            }
                        case 5: {
                                message.node = reader.string();
                                break;
                            }
                        case 6: {
                                if (!(message.groups && message.groups.length))
                                    message.groups = [];
                                message.groups.push(reader.string());
                                break;
                            }
                        case 7: {
                                message.rootfsUrl = reader.string();
                                break;
                            }
                        case 8: {
                                message.rootfsSha256 = reader.string();
                                break;
                            }
                        case 9: {
                                message.attestationId = reader.string();
                                break;
                            }
                        default:
                            reader.skipType(tag & 7, long);
                            break;
                        }
                    }
                    if (length !== undefined) {
                        if (reader.pos !== end)
                            throw RangeError("index out of range");
                        reader.len = length;
                    }
                    return message;
                };

                /**
                 * Gets the default type url for AttestResult
                 * @function getTypeUrl
                 * @memberof netboot.attest.v1.AttestResult
                 * @static
                 * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
                 * @returns {string} The default type url
                 */
                AttestResult.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                    if (typeUrlPrefix === undefined) {
                        typeUrlPrefix = "type.googleapis.com";
                    }
                    return typeUrlPrefix + "/netboot.attest.v1.AttestResult";
                };

                return AttestResult;
            })();

            return v1;
        })();

        return attest;
    })();

    return netboot;
})();

export { $root as default };
