/*
 * TPM operations on one ESYS context (tpm2-tss ESAPI), free of N-API.
 *
 * Threading contract: an ESYS_CONTEXT is not thread-safe. Every function here
 * runs on a libuv pool thread inside one napi_async_work item, and addon.c lets
 * at most one work item per tpm_state_t be queued or running at a time. Nothing
 * here touches JavaScript values, and nothing here calls Tss2_RC_Decode (its
 * buffer is shared): errors carry the raw TSS2_RC and the ESAPI function name,
 * and the main thread decodes them.
 *
 * Each op returns 0 on success, -1 with *err filled on failure. Outputs that are
 * malloc'd (buf_t) belong to the caller, also on failure (free with buf_free).
 */
#ifndef NETBOOT_TPM_OPS_H
#define NETBOOT_TPM_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_esys.h>

typedef enum { KEY_RSA = 0, KEY_ECC = 1 } key_alg_t;

/* Failure of one op: a TSS2_RC from `command`, or (rc == 0) a netboot code. */
typedef struct {
  TSS2_RC rc;
  char command[48];
  char code[40];
  char message[200];
} tpm_err_t;

typedef struct {
  uint8_t *data;
  size_t len;
} buf_t;

void buf_free (buf_t *b);

typedef struct {
  ESYS_CONTEXT *esys;
  TSS2_TCTI_CONTEXT *tcti;
  /* ESYS_TRs of the persistent EKs (0x81010001 / 0x81010002), once looked up:
   * ek_probed[i] = 1 when the lookup was done (ek_persistent[i] is ESYS_TR_NONE
   * when the TPM has no persistent EK there). Closed with Esys_TR_Close, never
   * flushed (they are not ours). */
  ESYS_TR ek_persistent[2];
  int ek_probed[2];
  /* The EK created from its template (transient, ours: flushed on close, or
   * when the EK of the other algorithm is created). */
  ESYS_TR ek_created;
  key_alg_t ek_created_alg;
  /* The loaded AK (transient, ours: flushed on replace and on close). */
  ESYS_TR ak;
  key_alg_t ak_parent;
  uint16_t nv_buffer_max;
} tpm_state_t;

/* TCG EK Credential Profile 2.x §2.2.1.4-5: low-range EK certificate NV indices
 * and persistent EK handles for the L-1 (RSA-2048) and L-2 (ECC P-256) templates. */
#define EK_CERT_NV_RSA 0x01C00002u
#define EK_CERT_NV_ECC 0x01C0000Au
#define EK_HANDLE_RSA 0x81010001u
#define EK_HANDLE_ECC 0x81010002u

#define PCR_COUNT 24
#define PCR_DIGEST_MAX 64 /* sizeof(TPMU_HA): SHA-512 */

int op_open (tpm_state_t *s, const char *tcti_conf, tpm_err_t *err);
/* Flushes the AK and a created EK, releases ESYS_TRs, finalises ESYS and the
 * TCTI; everything is released even when a flush fails (then -1: the TPM may
 * still hold the object).
 * Safe on a half-opened state. */
int op_close (tpm_state_t *s, tpm_err_t *err);
/* Like op_close without talking to the TPM (finaliser path). */
void op_release (tpm_state_t *s);

typedef struct {
  buf_t public_area; /* TPM2B_PUBLIC as marshalled by Tss2_MU */
  buf_t name;        /* TPM2B_NAME contents as returned by TPM2_ReadPublic */
  buf_t cert_nv;     /* raw NV contents of the EK certificate index (len 0: none) */
  uint32_t cert_index;
  int persistent;    /* 1: persistent EK at handle; 0: created from the template */
  uint32_t handle;   /* persistent handle, or the created EK's transient handle */
} ek_info_t;

int op_read_ek (tpm_state_t *s, key_alg_t alg, ek_info_t *out, tpm_err_t *err);

typedef struct {
  buf_t public_area;
  buf_t name;
  uint32_t handle;
} ak_info_t;

int op_create_ak (tpm_state_t *s, key_alg_t ak_alg, key_alg_t ek_alg, ak_info_t *out, tpm_err_t *err);
int op_activate_credential (tpm_state_t *s, const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *secret, buf_t *out, tpm_err_t *err);
int op_quote (tpm_state_t *s, const TPM2B_DATA *nonce, uint32_t pcr_mask, TPMI_ALG_HASH bank, buf_t *attest, buf_t *signature, tpm_err_t *err);
/* values[i] receives PCR i when bit i of mask is set; *digest_size the bank's size. */
int op_pcr_read (tpm_state_t *s, uint32_t pcr_mask, TPMI_ALG_HASH bank, uint8_t values[PCR_COUNT][PCR_DIGEST_MAX], uint16_t *digest_size, tpm_err_t *err);
int op_pcr_extend (tpm_state_t *s, uint32_t pcr, const TPML_DIGEST_VALUES *digests, tpm_err_t *err);
int op_get_random (tpm_state_t *s, uint8_t *out, size_t n, tpm_err_t *err);
/* Handles the TPM reports as loaded: transient objects and sessions (all
 * clients' on a TPM without a resource manager). Arrays are uint32 in host order. */
int op_handles (tpm_state_t *s, buf_t *transient, buf_t *sessions, tpm_err_t *err);

#endif
