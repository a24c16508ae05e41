export { TPM_ALG, TPM_ECC, TPM_GENERATED_VALUE, TPM_ST_ATTEST, MAX, algName, curveInfo, hashInfo } from './alg.js'
export type { CurveInfo, HashInfo, HashName } from './alg.js'
export { Reader, Writer, err, ok, tpm2b } from './marshal.js'
export type { DecodeError, Result } from './marshal.js'
export { kdfa, kdfe } from './kdf.js'
export {
  AK_FORBIDDEN,
  AK_REQUIRED,
  PUBLIC_ERROR_CODES,
  TPMA_OBJECT,
  attributeNames,
  checkAkAttributes,
  computeName,
  decodeObjectAttributes,
  decodeTpm2bPublic,
  decodeTpmtPublic,
  publicKeyObject,
} from './public.js'
export type { AkAttributeVerdict, EccPublic, ObjectAttributeName, ObjectAttributes, PublicErrorCode, RsaPublic, TpmtPublic } from './public.js'
export {
  CREDENTIAL_ERROR_CODES,
  TOOLS_CREDENTIAL_MAGIC,
  TOOLS_FILE_ERROR_CODES,
  decodeToolsCredentialFile,
  encodeToolsCredentialFile,
  makeCredential,
} from './credential.js'
export type { CredentialErrorCode, MakeCredentialInput, MakeCredentialOutput, ToolsFileErrorCode } from './credential.js'
export { computePcrDigest, encodePcrSelection, pcrBanks, readPcrSelection } from './pcr.js'
export type { PcrBanks, PcrSelection } from './pcr.js'
export {
  ATTEST_ERROR_CODES,
  QUOTE_FAILURE_REASONS,
  SIGNATURE_ERROR_CODES,
  decodeAttest,
  decodeSignature,
  verifyQuote,
  verifyQuoteAsync,
  verifySignature,
  verifySignatureAsync,
} from './quote.js'
export type { AttestErrorCode, Attested, ClockInfo, QuoteFailureReason, QuoteVerdict, SignatureErrorCode, TpmsAttest, TpmtSignature, VerifyQuoteInput } from './quote.js'
