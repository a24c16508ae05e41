/*
 * TPM operations for the netboot agent over tpm2-tss ESAPI (see ops.h for the
 * threading and ownership contract).
 *
 * Object slots: a TPM without a resource manager (swtpm, /dev/tpm0) holds three
 * transient objects. Between operations this file keeps at most two loaded: the
 * AK, and the EK created from its template when the TPM has no persistent EK of
 * that algorithm (creating an RSA primary key takes seconds on some TPMs, and the
 * attestation flow needs the EK three times: readEk, createAk, activateCredential).
 * At most one created EK is kept: asking for the other algorithm flushes it
 * first. Both are flushed by op_close. Policy sessions live only for the command
 * they authorise and are flushed on every path out of the operation.
 */
#include "ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

void buf_free (buf_t *b)
{
  free(b->data);
  b->data = NULL;
  b->len = 0;
}

static int buf_set (buf_t *b, const void *data, size_t len)
{
  b->data = malloc(len > 0 ? len : 1);
  if (b->data == NULL) return -1;
  if (len > 0) memcpy(b->data, data, len);
  b->len = len;
  return 0;
}

static int fail_rc (tpm_err_t *err, const char *command, TSS2_RC rc)
{
  err->rc = rc;
  snprintf(err->command, sizeof err->command, "%s", command);
  err->code[0] = '\0';
  err->message[0] = '\0';
  return -1;
}

static int fail_code (tpm_err_t *err, const char *code, const char *fmt, ...)
{
  va_list ap;
  err->rc = 0;
  err->command[0] = '\0';
  snprintf(err->code, sizeof err->code, "%s", code);
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return -1;
}

/* Runs one TSS call; on failure records it and jumps to `out`. */
#define TRY(command, call)                            \
  do {                                                \
    TSS2_RC rc_ = (call);                             \
    if (rc_ != TSS2_RC_SUCCESS) {                     \
      fail_rc(err, command, rc_);                     \
      goto out;                                       \
    }                                                 \
  } while (0)

#define NOMEM() do { fail_code(err, "ERR_TPM_NO_MEMORY", "out of memory"); goto out; } while (0)

/*
 * The TPM_RC a TPM returned (directly or relayed by a resource manager), reduced
 * to its base code: format-one codes lose their handle/session/parameter number
 * (Part 2 §6.6.3). Codes from other TSS layers are returned unchanged, so they
 * never compare equal to a TPM2_RC_* constant.
 */
static TSS2_RC tpm_base_rc (TSS2_RC rc)
{
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER) return rc;
  rc &= 0xFFFF;
  return (rc & TPM2_RC_FMT1) ? (rc & (TPM2_RC_FMT1 | 0x3F)) : rc;
}

/* Keeps the first failure; a cleanup step that fails after a success is reported. */
static void cleanup_rc (int *ret, tpm_err_t *err, const char *command, TSS2_RC rc)
{
  if (rc != TSS2_RC_SUCCESS && *ret == 0) *ret = fail_rc(err, command, rc);
}

/* Flushes a transient object or session now; -1 with *err on failure. */
static int flush_now (tpm_state_t *s, ESYS_TR *tr, tpm_err_t *err)
{
  TSS2_RC rc;
  if (*tr == ESYS_TR_NONE || *tr == ESYS_TR_PASSWORD) return 0;
  rc = Esys_FlushContext(s->esys, *tr);
  *tr = ESYS_TR_NONE;
  return rc == TSS2_RC_SUCCESS ? 0 : fail_rc(err, "Esys_FlushContext", rc);
}

/* Flushes on the way out of an op: a failure only counts if the op had succeeded. */
static void flush_cleanup (tpm_state_t *s, ESYS_TR *tr, int *ret, tpm_err_t *err)
{
  TSS2_RC rc;
  if (*tr == ESYS_TR_NONE || *tr == ESYS_TR_PASSWORD) return;
  rc = Esys_FlushContext(s->esys, *tr);
  *tr = ESYS_TR_NONE;
  cleanup_rc(ret, err, "Esys_FlushContext", rc);
}

static int marshal_public (const TPM2B_PUBLIC *pub, buf_t *out, tpm_err_t *err)
{
  uint8_t tmp[sizeof(TPM2B_PUBLIC)];
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, tmp, sizeof tmp, &off);
  if (rc != TSS2_RC_SUCCESS) return fail_rc(err, "Tss2_MU_TPM2B_PUBLIC_Marshal", rc);
  if (buf_set(out, tmp, off) != 0) return fail_code(err, "ERR_TPM_NO_MEMORY", "out of memory");
  return 0;
}

/* ---------------------------------------------------------------- templates */

/* PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: the authPolicy of the TCG
 * default EK templates (TCG EK Credential Profile 2.x, Annex B.3.3 Table 19). */
static const uint8_t EK_POLICY_SHA256[32] = {
  0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
  0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
};

/*
 * TCG EK Credential Profile 2.x, Annex B.3.3 (Template L-1, RSA 2048) and B.3.4
 * (Template L-2, ECC NIST P-256): attributes 0x000300B2 (fixedTPM, fixedParent,
 * sensitiveDataOrigin, adminWithPolicy, restricted, decrypt), AES-128-CFB,
 * scheme NULL, unique = zeros of the key size, so CreatePrimary always yields
 * the key the EK certificate was issued for.
 */
static void ek_template (key_alg_t alg, TPM2B_PUBLIC *t)
{
  TPMT_PUBLIC *p = &t->publicArea;
  memset(t, 0, sizeof *t);
  p->nameAlg = TPM2_ALG_SHA256;
  p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                        TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  p->authPolicy.size = sizeof EK_POLICY_SHA256;
  memcpy(p->authPolicy.buffer, EK_POLICY_SHA256, sizeof EK_POLICY_SHA256);
  if (alg == KEY_RSA) {
    p->type = TPM2_ALG_RSA;
    p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
    p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    p->parameters.rsaDetail.keyBits = 2048;
    p->parameters.rsaDetail.exponent = 0;
    p->unique.rsa.size = 256;
  } else {
    p->type = TPM2_ALG_ECC;
    p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.eccDetail.symmetric.keyBits.aes = 128;
    p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    p->unique.ecc.x.size = 32;
    p->unique.ecc.y.size = 32;
  }
}

/*
 * The attestation key: a restricted signing key (Part 2 §8.3.3.1.4: it signs
 * only digests the TPM computed, such as TPMS_ATTEST) with fixedTPM, fixedParent,
 * sensitiveDataOrigin and userWithAuth (attributes 0x00050072), RSA-2048
 * RSASSA-SHA256 or ECC P-256 ECDSA-SHA256, empty authValue and no policy.
 */
static void ak_template (key_alg_t alg, TPM2B_PUBLIC *t)
{
  TPMT_PUBLIC *p = &t->publicArea;
  memset(t, 0, sizeof *t);
  p->nameAlg = TPM2_ALG_SHA256;
  p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                        TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  if (alg == KEY_RSA) {
    p->type = TPM2_ALG_RSA;
    p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    p->parameters.rsaDetail.keyBits = 2048;
    p->parameters.rsaDetail.exponent = 0;
  } else {
    p->type = TPM2_ALG_ECC;
    p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  }
}

/* ---------------------------------------------------------------- open/close */

int op_open (tpm_state_t *s, const char *tcti_conf, tpm_err_t *err)
{
  TPMS_CAPABILITY_DATA *cap = NULL;
  TPMI_YES_NO more = TPM2_NO;
  int ret = -1;

  memset(s, 0, sizeof *s);
  s->ek_persistent[0] = s->ek_persistent[1] = ESYS_TR_NONE;
  s->ek_created = ESYS_TR_NONE;
  s->ak = ESYS_TR_NONE;
  TRY("Tss2_TctiLdr_Initialize", Tss2_TctiLdr_Initialize(tcti_conf, &s->tcti));
  TRY("Esys_Initialize", Esys_Initialize(&s->esys, s->tcti, NULL));
  /* Also the first round trip: a TPM that does not answer fails open(). */
  TRY("Esys_GetCapability", Esys_GetCapability(s->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                               TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap));
  s->nv_buffer_max = 512;
  if (cap->data.tpmProperties.count >= 1 && cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX) {
    uint32_t v = cap->data.tpmProperties.tpmProperty[0].value;
    if (v > 0) s->nv_buffer_max = (uint16_t)(v < TPM2_MAX_NV_BUFFER_SIZE ? v : TPM2_MAX_NV_BUFFER_SIZE);
  }
  ret = 0;
out:
  Esys_Free(cap);
  if (ret != 0) op_release(s);
  return ret;
}

void op_release (tpm_state_t *s)
{
  if (s->esys != NULL) {
    for (int i = 0; i < 2; i++) {
      if (s->ek_persistent[i] != ESYS_TR_NONE) Esys_TR_Close(s->esys, &s->ek_persistent[i]);
      s->ek_persistent[i] = ESYS_TR_NONE;
    }
    Esys_Finalize(&s->esys);
  }
  if (s->tcti != NULL) Tss2_TctiLdr_Finalize(&s->tcti);
  s->esys = NULL;
  s->tcti = NULL;
  s->ak = ESYS_TR_NONE;
  s->ek_created = ESYS_TR_NONE;
}

int op_close (tpm_state_t *s, tpm_err_t *err)
{
  int ret = 0;
  if (s->esys != NULL) {
    flush_cleanup(s, &s->ak, &ret, err);
    flush_cleanup(s, &s->ek_created, &ret, err);
  }
  op_release(s);
  return ret;
}

/* ---------------------------------------------------------------- EK */

typedef struct {
  ESYS_TR tr;          /* borrowed from s->ek_persistent or s->ek_created: never flushed here */
  int from_template;
  uint32_t handle;
  TPM2B_PUBLIC *pub;
  TPM2B_NAME *name;
} ek_t;

/*
 * The EK of `alg`: the persistent one at its TCG handle when the TPM has it,
 * else CreatePrimary under the endorsement hierarchy with the default template
 * (empty endorsementAuth), kept loaded in s->ek_created until op_close or until
 * the EK of the other algorithm is created.
 */
static int ek_acquire (tpm_state_t *s, key_alg_t alg, ek_t *ek, tpm_err_t *err)
{
  uint32_t handle = alg == KEY_RSA ? EK_HANDLE_RSA : EK_HANDLE_ECC;
  int ret = -1;

  ek->tr = ESYS_TR_NONE;
  ek->from_template = 0;
  ek->pub = NULL;
  ek->name = NULL;
  if (!s->ek_probed[alg]) {
    ESYS_TR tr = ESYS_TR_NONE;
    TSS2_RC rc = Esys_TR_FromTPMPublic(s->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
    if (rc == TSS2_RC_SUCCESS) s->ek_persistent[alg] = tr;
    else if (tpm_base_rc(rc) != TPM2_RC_HANDLE) return fail_rc(err, "Esys_TR_FromTPMPublic", rc);
    s->ek_probed[alg] = 1;
  }
  if (s->ek_persistent[alg] != ESYS_TR_NONE) {
    ek->tr = s->ek_persistent[alg];
    ek->handle = handle;
  } else if (s->ek_created != ESYS_TR_NONE && s->ek_created_alg == alg) {
    ek->tr = s->ek_created;
    ek->from_template = 1;
    TRY("Esys_TR_GetTpmHandle", Esys_TR_GetTpmHandle(s->esys, ek->tr, &ek->handle));
  } else {
    TPM2B_SENSITIVE_CREATE sensitive;
    TPM2B_PUBLIC tmpl;
    TPM2B_DATA outside;
    TPML_PCR_SELECTION creation_pcr;
    ESYS_TR created = ESYS_TR_NONE;
    memset(&sensitive, 0, sizeof sensitive);
    memset(&outside, 0, sizeof outside);
    memset(&creation_pcr, 0, sizeof creation_pcr);
    ek_template(alg, &tmpl);
    if (flush_now(s, &s->ek_created, err) != 0) goto out;
    TRY("Esys_CreatePrimary", Esys_CreatePrimary(s->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                                 ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation_pcr,
                                                 &created, NULL, NULL, NULL, NULL));
    s->ek_created = created;
    s->ek_created_alg = alg;
    ek->tr = s->ek_created;
    ek->from_template = 1;
    TRY("Esys_TR_GetTpmHandle", Esys_TR_GetTpmHandle(s->esys, ek->tr, &ek->handle));
  }
  TRY("Esys_ReadPublic", Esys_ReadPublic(s->esys, ek->tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ek->pub,
                                         &ek->name, NULL));
  ret = 0;
out:
  return ret;
}

static void ek_release (ek_t *ek)
{
  ek->tr = ESYS_TR_NONE;
  Esys_Free(ek->pub);
  Esys_Free(ek->name);
  ek->pub = NULL;
  ek->name = NULL;
}

/*
 * Authorisation for the EK's USER role (Part 1 §19.7: an object with
 * userWithAuth CLEAR needs a policy session). The default templates' authPolicy
 * is PolicySecret(TPM_RH_ENDORSEMENT) (EK Credential Profile Annex B.3.3), so:
 * a fresh policy session with the EK's nameAlg (Part 3 §11.1
 * TPM2_StartAuthSession) that has run TPM2_PolicySecret against the endorsement
 * hierarchy with its (empty) authValue (Part 3 §23.4). A policy session is
 * consumed by the command it authorises, so each EK-authorised command gets a
 * new one. An EK with userWithAuth SET takes its empty authValue instead
 * (ESYS_TR_PASSWORD). The caller flushes *session.
 */
static int ek_session (tpm_state_t *s, const ek_t *ek, ESYS_TR *session, tpm_err_t *err)
{
  TPMT_SYM_DEF symmetric = { .algorithm = TPM2_ALG_NULL };
  int ret = -1;

  *session = ESYS_TR_NONE;
  if (ek->pub->publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH) {
    *session = ESYS_TR_PASSWORD;
    return 0;
  }
  TRY("Esys_StartAuthSession", Esys_StartAuthSession(s->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                                     ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &symmetric,
                                                     ek->pub->publicArea.nameAlg, session));
  /* Keep the session after the command so that every path flushes it the same way. */
  TRY("Esys_TRSess_SetAttributes", Esys_TRSess_SetAttributes(s->esys, *session, TPMA_SESSION_CONTINUESESSION, 0xFF));
  TRY("Esys_PolicySecret", Esys_PolicySecret(s->esys, ESYS_TR_RH_ENDORSEMENT, *session, ESYS_TR_PASSWORD,
                                             ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL));
  ret = 0;
out:
  if (ret != 0 && *session != ESYS_TR_NONE) {
    Esys_FlushContext(s->esys, *session);
    *session = ESYS_TR_NONE;
  }
  return ret;
}

/*
 * Reads an NV index whole, in chunks of at most TPM2_PT_NV_BUFFER_MAX (Part 3
 * §31.13 TPM2_NV_Read). An index that does not exist or was never written
 * yields out->len = 0. Authorised by the index itself (TPMA_NV_AUTHREAD, empty
 * authValue) or else by the owner hierarchy (TPMA_NV_OWNERREAD, empty ownerAuth).
 */
static int nv_read_all (tpm_state_t *s, uint32_t index, buf_t *out, tpm_err_t *err)
{
  ESYS_TR nv = ESYS_TR_NONE, auth;
  TPM2B_NV_PUBLIC *pub = NULL;
  TPM2B_MAX_NV_BUFFER *chunk = NULL;
  TPMA_NV attrs;
  uint16_t size, off = 0;
  int ret = -1;

  TSS2_RC rc = Esys_TR_FromTPMPublic(s->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
  if (rc != TSS2_RC_SUCCESS) {
    nv = ESYS_TR_NONE;
    if (tpm_base_rc(rc) == TPM2_RC_HANDLE) ret = 0;
    else fail_rc(err, "Esys_TR_FromTPMPublic", rc);
    goto out;
  }
  TRY("Esys_NV_ReadPublic", Esys_NV_ReadPublic(s->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL));
  attrs = pub->nvPublic.attributes;
  size = pub->nvPublic.dataSize;
  if (!(attrs & TPMA_NV_WRITTEN)) {
    ret = 0;
    goto out;
  }
  if (attrs & TPMA_NV_AUTHREAD) auth = nv;
  else if (attrs & TPMA_NV_OWNERREAD) auth = ESYS_TR_RH_OWNER;
  else {
    fail_code(err, "ERR_TPM_NV_UNREADABLE", "NV index 0x%08x allows neither AUTHREAD nor OWNERREAD", index);
    goto out;
  }
  out->data = malloc(size > 0 ? size : 1);
  if (out->data == NULL) NOMEM();
  while (off < size) {
    uint16_t want = (uint16_t)(size - off < s->nv_buffer_max ? size - off : s->nv_buffer_max);
    TRY("Esys_NV_Read", Esys_NV_Read(s->esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, want, off, &chunk));
    if (chunk->size != want) {
      fail_code(err, "ERR_TPM_BAD_RESPONSE", "NV_Read of index 0x%08x returned %u of %u bytes", index, chunk->size, want);
      goto out;
    }
    memcpy(out->data + off, chunk->buffer, chunk->size);
    off = (uint16_t)(off + chunk->size);
    Esys_Free(chunk);
    chunk = NULL;
  }
  out->len = size;
  ret = 0;
out:
  Esys_Free(chunk);
  Esys_Free(pub);
  if (nv != ESYS_TR_NONE) Esys_TR_Close(s->esys, &nv);
  if (ret != 0) buf_free(out);
  return ret;
}

int op_read_ek (tpm_state_t *s, key_alg_t alg, ek_info_t *out, tpm_err_t *err)
{
  ek_t ek = { .tr = ESYS_TR_NONE };
  int ret = -1;

  if (ek_acquire(s, alg, &ek, err) != 0) goto out;
  if (marshal_public(ek.pub, &out->public_area, err) != 0) goto out;
  if (buf_set(&out->name, ek.name->name, ek.name->size) != 0) NOMEM();
  out->persistent = !ek.from_template;
  out->handle = ek.handle;
  out->cert_index = alg == KEY_RSA ? EK_CERT_NV_RSA : EK_CERT_NV_ECC;
  if (nv_read_all(s, out->cert_index, &out->cert_nv, err) != 0) goto out;
  ret = 0;
out:
  ek_release(&ek);
  return ret;
}

/* ---------------------------------------------------------------- AK */

int op_create_ak (tpm_state_t *s, key_alg_t ak_alg, key_alg_t ek_alg, ak_info_t *out, tpm_err_t *err)
{
  ek_t ek = { .tr = ESYS_TR_NONE };
  ESYS_TR session = ESYS_TR_NONE, ak = ESYS_TR_NONE;
  TPM2B_SENSITIVE_CREATE sensitive;
  TPM2B_PUBLIC tmpl;
  TPM2B_DATA outside;
  TPML_PCR_SELECTION creation_pcr;
  TPM2B_PRIVATE *priv = NULL;
  TPM2B_PUBLIC *pub = NULL, *loaded = NULL;
  TPM2B_NAME *name = NULL;
  int ret = -1;

  memset(&sensitive, 0, sizeof sensitive);
  memset(&outside, 0, sizeof outside);
  memset(&creation_pcr, 0, sizeof creation_pcr);
  ak_template(ak_alg, &tmpl);

  /* One AK per boot: a new one replaces (and frees the slot of) the old one. */
  if (flush_now(s, &s->ak, err) != 0) goto out;
  if (ek_acquire(s, ek_alg, &ek, err) != 0) goto out;

  /* Part 3 §12.1 TPM2_Create: parentHandle auth role USER → EK policy session. */
  if (ek_session(s, &ek, &session, err) != 0) goto out;
  TRY("Esys_Create", Esys_Create(s->esys, ek.tr, session, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl, &outside,
                                 &creation_pcr, &priv, &pub, NULL, NULL, NULL));
  if (flush_now(s, &session, err) != 0) goto out;

  /* Part 3 §12.2 TPM2_Load: parentHandle auth role USER → a fresh policy session. */
  if (ek_session(s, &ek, &session, err) != 0) goto out;
  TRY("Esys_Load", Esys_Load(s->esys, ek.tr, session, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &ak));
  s->ak = ak;
  s->ak_parent = ek_alg;
  if (flush_now(s, &session, err) != 0) goto out;

  /* The public area and Name as the TPM reports them for the loaded object. */
  TRY("Esys_ReadPublic", Esys_ReadPublic(s->esys, ak, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &loaded, &name, NULL));
  TRY("Esys_TR_GetTpmHandle", Esys_TR_GetTpmHandle(s->esys, ak, &out->handle));
  if (marshal_public(loaded, &out->public_area, err) != 0) goto out;
  if (buf_set(&out->name, name->name, name->size) != 0) NOMEM();
  ret = 0;
out:
  flush_cleanup(s, &session, &ret, err);
  ek_release(&ek);
  Esys_Free(priv);
  Esys_Free(pub);
  Esys_Free(loaded);
  Esys_Free(name);
  return ret;
}

/*
 * Part 3 §12.5 TPM2_ActivateCredential: activateHandle = the AK (auth role
 * ADMIN; the AK has adminWithPolicy CLEAR, so its empty authValue), keyHandle =
 * the EK it was created under (auth role USER: a fresh EK policy session).
 */
int op_activate_credential (tpm_state_t *s, const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *secret,
                            buf_t *out, tpm_err_t *err)
{
  ek_t ek = { .tr = ESYS_TR_NONE };
  ESYS_TR session = ESYS_TR_NONE;
  TPM2B_DIGEST *cert = NULL;
  int ret = -1;

  if (s->ak == ESYS_TR_NONE) {
    fail_code(err, "ERR_TPM_NO_AK", "activateCredential: no AK is loaded (call createAk first)");
    goto out;
  }
  if (ek_acquire(s, s->ak_parent, &ek, err) != 0) goto out;
  if (ek_session(s, &ek, &session, err) != 0) goto out;
  TRY("Esys_ActivateCredential", Esys_ActivateCredential(s->esys, s->ak, ek.tr, ESYS_TR_PASSWORD, session,
                                                         ESYS_TR_NONE, blob, secret, &cert));
  if (buf_set(out, cert->buffer, cert->size) != 0) NOMEM();
  ret = 0;
out:
  flush_cleanup(s, &session, &ret, err);
  ek_release(&ek);
  Esys_Free(cert);
  if (ret != 0) buf_free(out);
  return ret;
}

/* ---------------------------------------------------------------- PCRs */

static uint16_t digest_size (TPMI_ALG_HASH alg)
{
  switch (alg) {
  case TPM2_ALG_SHA1: return 20;
  case TPM2_ALG_SHA256: return 32;
  case TPM2_ALG_SHA384: return 48;
  case TPM2_ALG_SHA512: return 64;
  default: return 0;
  }
}

/* TPML_PCR_SELECTION with one bank (Part 2 §10.6.2, §10.9.7): PCR i is bit i%8 of byte i/8. */
static void pcr_selection (TPML_PCR_SELECTION *sel, TPMI_ALG_HASH bank, uint32_t mask)
{
  memset(sel, 0, sizeof *sel);
  sel->count = 1;
  sel->pcrSelections[0].hash = bank;
  sel->pcrSelections[0].sizeofSelect = 3;
  for (int i = 0; i < PCR_COUNT; i++) {
    if (mask & (1u << i)) sel->pcrSelections[0].pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
  }
}

int op_quote (tpm_state_t *s, const TPM2B_DATA *nonce, uint32_t pcr_mask, TPMI_ALG_HASH bank, buf_t *attest,
              buf_t *signature, tpm_err_t *err)
{
  TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL }; /* the AK's own scheme */
  TPML_PCR_SELECTION sel;
  TPM2B_ATTEST *quoted = NULL;
  TPMT_SIGNATURE *sig = NULL;
  uint8_t tmp[sizeof(TPMT_SIGNATURE)];
  size_t off = 0;
  int ret = -1;

  if (s->ak == ESYS_TR_NONE) {
    fail_code(err, "ERR_TPM_NO_AK", "quote: no AK is loaded (call createAk first)");
    goto out;
  }
  pcr_selection(&sel, bank, pcr_mask);
  /* Part 3 §18.4 TPM2_Quote: signHandle auth role USER (the AK's empty authValue). */
  TRY("Esys_Quote", Esys_Quote(s->esys, s->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, nonce, &scheme, &sel,
                               &quoted, &sig));
  TRY("Tss2_MU_TPMT_SIGNATURE_Marshal", Tss2_MU_TPMT_SIGNATURE_Marshal(sig, tmp, sizeof tmp, &off));
  /* attestationData is TPMS_ATTEST exactly as the TPM signed it. */
  if (buf_set(attest, quoted->attestationData, quoted->size) != 0) NOMEM();
  if (buf_set(signature, tmp, off) != 0) NOMEM();
  ret = 0;
out:
  Esys_Free(quoted);
  Esys_Free(sig);
  if (ret != 0) {
    buf_free(attest);
    buf_free(signature);
  }
  return ret;
}

/*
 * Part 3 §22.4 TPM2_PCR_Read returns at most 8 digests (TPML_DIGEST) and reports
 * in pcrSelectionOut which PCRs it read; the rest is asked for again. All chunks
 * must carry the same pcrUpdateCounter, else the values may mix two states and
 * the read starts over.
 */
int op_pcr_read (tpm_state_t *s, uint32_t pcr_mask, TPMI_ALG_HASH bank, uint8_t values[PCR_COUNT][PCR_DIGEST_MAX],
                 uint16_t *size, tpm_err_t *err)
{
  TPML_PCR_SELECTION in, *sel = NULL;
  TPML_DIGEST *digests = NULL;
  uint16_t dsize = digest_size(bank);
  int ret = -1;

  *size = dsize;
  for (int attempt = 0; attempt < 5; attempt++) {
    uint32_t remaining = pcr_mask, first_counter = 0;
    int first = 1, changed = 0;
    while (remaining != 0) {
      UINT32 counter = 0;
      uint32_t got = 0;
      uint32_t k = 0;
      pcr_selection(&in, bank, remaining);
      TRY("Esys_PCR_Read", Esys_PCR_Read(s->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in, &counter, &sel, &digests));
      if (!first && counter != first_counter) changed = 1;
      first_counter = counter;
      first = 0;
      for (uint32_t j = 0; j < sel->count; j++) {
        const TPMS_PCR_SELECTION *p = &sel->pcrSelections[j];
        for (uint32_t i = 0; i < 8u * p->sizeofSelect && i < 8u * TPM2_PCR_SELECT_MAX; i++) {
          if (!(p->pcrSelect[i / 8] & (1u << (i % 8)))) continue;
          if (k >= digests->count) {
            fail_code(err, "ERR_TPM_BAD_RESPONSE", "PCR_Read selected more PCRs than it returned digests");
            goto out;
          }
          if (p->hash == bank && i < PCR_COUNT && (remaining & (1u << i))) {
            if (digests->digests[k].size != dsize) {
              fail_code(err, "ERR_TPM_BAD_RESPONSE", "PCR_Read returned a %u-byte digest for PCR %u", digests->digests[k].size, i);
              goto out;
            }
            memcpy(values[i], digests->digests[k].buffer, dsize);
            got |= 1u << i;
          }
          k++;
        }
      }
      Esys_Free(sel);
      Esys_Free(digests);
      sel = NULL;
      digests = NULL;
      if (got == 0) {
        char list[96] = "";
        size_t n = 0;
        for (int i = 0; i < PCR_COUNT && n < sizeof list - 4; i++) {
          if (remaining & (1u << i)) n += (size_t)snprintf(list + n, sizeof list - n, n ? ",%d" : "%d", i);
        }
        fail_code(err, "ERR_TPM_PCR_UNAVAILABLE", "PCR_Read: the TPM returned no values for PCR %s of bank 0x%04x (bank not allocated?)", list, bank);
        goto out;
      }
      remaining &= ~got;
    }
    if (!changed) {
      ret = 0;
      goto out;
    }
  }
  fail_code(err, "ERR_TPM_PCR_CHANGING", "PCR_Read: PCRs kept changing while being read");
out:
  Esys_Free(sel);
  Esys_Free(digests);
  return ret;
}

/* Part 3 §22.2 TPM2_PCR_Extend: banks without a digest in `digests` are left alone. */
int op_pcr_extend (tpm_state_t *s, uint32_t pcr, const TPML_DIGEST_VALUES *digests, tpm_err_t *err)
{
  int ret = -1;
  TRY("Esys_PCR_Extend", Esys_PCR_Extend(s->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, digests));
  ret = 0;
out:
  return ret;
}

/* Part 3 §16.1 TPM2_GetRandom returns at most one digest's worth, possibly fewer. */
int op_get_random (tpm_state_t *s, uint8_t *out, size_t n, tpm_err_t *err)
{
  TPM2B_DIGEST *r = NULL;
  size_t off = 0;
  int ret = -1;

  while (off < n) {
    uint16_t want = (uint16_t)(n - off < sizeof(TPMU_HA) ? n - off : sizeof(TPMU_HA));
    TRY("Esys_GetRandom", Esys_GetRandom(s->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, want, &r));
    if (r->size == 0 || r->size > want) {
      fail_code(err, "ERR_TPM_BAD_RESPONSE", "GetRandom returned %u bytes for %u", r->size, want);
      goto out;
    }
    memcpy(out + off, r->buffer, r->size);
    off += r->size;
    Esys_Free(r);
    r = NULL;
  }
  ret = 0;
out:
  Esys_Free(r);
  return ret;
}

/* TPM2_GetCapability(TPM_CAP_HANDLES) from `first` while moreData (Part 3 §30.2). */
static int handles_of (tpm_state_t *s, uint32_t first, buf_t *out, tpm_err_t *err)
{
  TPMS_CAPABILITY_DATA *cap = NULL;
  TPMI_YES_NO more = TPM2_YES;
  uint32_t property = first;
  int ret = -1;

  while (more) {
    TRY("Esys_GetCapability", Esys_GetCapability(s->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                                 property, TPM2_MAX_CAP_HANDLES, &more, &cap));
    const TPML_HANDLE *h = &cap->data.handles;
    if (h->count == 0) more = TPM2_NO;
    if (h->count > 0) {
      uint8_t *grown = realloc(out->data, out->len + h->count * sizeof(uint32_t));
      if (grown == NULL) NOMEM();
      out->data = grown;
      for (uint32_t i = 0; i < h->count; i++) {
        uint32_t v = h->handle[i];
        memcpy(out->data + out->len, &v, sizeof v);
        out->len += sizeof v;
      }
      property = h->handle[h->count - 1] + 1;
    }
    Esys_Free(cap);
    cap = NULL;
  }
  ret = 0;
out:
  Esys_Free(cap);
  return ret;
}

int op_handles (tpm_state_t *s, buf_t *transient, buf_t *sessions, tpm_err_t *err)
{
  if (handles_of(s, TPM2_TRANSIENT_FIRST, transient, err) != 0) return -1;
  if (handles_of(s, TPM2_LOADED_SESSION_FIRST, sessions, err) != 0) return -1;
  if (handles_of(s, TPM2_ACTIVE_SESSION_FIRST, sessions, err) != 0) return -1;
  return 0;
}
