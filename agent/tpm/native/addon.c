/*
 * netboot_tpm: N-API binding of the agent's TPM operations (ops.c, tpm2-tss ESAPI).
 *
 *   open(tcti)                      → Promise<handle>   handle: an external, one per TPM connection
 *   close(handle)                   → Promise<void>     flushes the AK and a created EK, finalises ESYS and the TCTI
 *   readEk(handle, alg)             → Promise<{ public, name, cert, certIndex, persistent, handle }>
 *   createAk(handle, akAlg, ekAlg)  → Promise<{ public, name, handle }>
 *   activateCredential(handle, credentialBlob, secret) → Promise<Buffer>
 *   quote(handle, nonce, pcrs, bank)                   → Promise<{ attest, signature }>
 *   pcrRead(handle, pcrs, bank)     → Promise<[pcr, Buffer][]>  ascending PCR order
 *   pcrExtend(handle, pcr, sha256?, sha1?) → Promise<void>
 *   getRandom(handle, n)            → Promise<Buffer>
 *   handles(handle)                 → Promise<{ transient: number[], sessions: number[] }>
 *
 * alg is 'rsa' | 'ecc'; bank is 'sha1' | 'sha256' | 'sha384' | 'sha512'.
 *
 * Every operation is one napi_async_work item: the ESYS context is touched only
 * on the libuv pool thread that runs the item, never on the JavaScript thread.
 * One item per handle at a time: a call while another is queued or running
 * throws ERR_TPM_BUSY (the TypeScript wrapper queues calls so this never
 * happens). Bad arguments throw a TypeError (code ERR_INVALID_ARG_VALUE), calls
 * on a closed handle throw ERR_TPM_CLOSED; TPM and TSS failures reject with an
 * Error whose code is the TSS2_RC as "0x%08x", with `rc`, `command` (the ESAPI
 * function) and `rcText` (Tss2_RC_Decode) properties. A handle collected
 * without close() releases its memory and socket but cannot flush the AK (no
 * TPM commands on the garbage collector's path).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "ops.h"

#define MAX_NONCE 64         /* TPM2B_DATA for qualifyingData: at most one digest */
#define MAX_RANDOM 65536
#define MAX_TCTI 1024

typedef struct {
  tpm_state_t st;
  int live;    /* st holds an open ESYS context */
  int busy;    /* a work item is queued or running */
  int closing; /* close() was called */
} tpm_t;

static const napi_type_tag TPM_TAG = { 0x6e6574626f6f745fULL, 0x74706d5f68616e64ULL };

typedef enum { OP_OPEN, OP_CLOSE, OP_READ_EK, OP_CREATE_AK, OP_ACTIVATE, OP_QUOTE, OP_PCR_READ, OP_PCR_EXTEND,
               OP_GET_RANDOM, OP_HANDLES } op_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref handle_ref;
  tpm_t *tpm;
  op_t op;
  int failed;
  tpm_err_t err;
  /* inputs */
  char tcti[MAX_TCTI];
  key_alg_t alg, ek_alg;
  TPM2B_ID_OBJECT blob;
  TPM2B_ENCRYPTED_SECRET secret;
  TPM2B_DATA nonce;
  uint32_t pcr_mask, pcr;
  TPMI_ALG_HASH bank;
  TPML_DIGEST_VALUES digests;
  size_t n;
  /* outputs */
  ek_info_t ek;
  ak_info_t ak;
  buf_t b0, b1;
  uint8_t pcr_values[PCR_COUNT][PCR_DIGEST_MAX];
  uint16_t pcr_size;
} call_t;

/* ---------------------------------------------------------------- errors */

static napi_value throw_code (napi_env env, int type_error, const char *code, const char *message)
{
  if (type_error) napi_throw_type_error(env, code, message);
  else napi_throw_error(env, code, message);
  return NULL;
}

static napi_value bad_arg (napi_env env, const char *message)
{
  return throw_code(env, 1, "ERR_INVALID_ARG_VALUE", message);
}

static void set_string (napi_env env, napi_value obj, const char *key, const char *value)
{
  napi_value v;
  if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

/* Main thread only: Tss2_RC_Decode formats into a buffer shared by all callers. */
static napi_value make_error (napi_env env, const tpm_err_t *e)
{
  char code[16], message[512];
  const char *text;
  napi_value code_v, msg_v, error, rc_v;

  if (e->rc == 0) {
    napi_create_string_utf8(env, e->code, NAPI_AUTO_LENGTH, &code_v);
    napi_create_string_utf8(env, e->message, NAPI_AUTO_LENGTH, &msg_v);
    napi_create_error(env, code_v, msg_v, &error);
    return error;
  }
  text = Tss2_RC_Decode(e->rc);
  snprintf(code, sizeof code, "0x%08x", e->rc);
  snprintf(message, sizeof message, "%s: %s (%s)", e->command, text != NULL ? text : "unknown response code", code);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg_v);
  napi_create_error(env, code_v, msg_v, &error);
  napi_create_uint32(env, e->rc, &rc_v);
  napi_set_named_property(env, error, "rc", rc_v);
  set_string(env, error, "command", e->command);
  set_string(env, error, "rcText", text != NULL ? text : "");
  return error;
}

/* ---------------------------------------------------------------- arguments */

static int get_tpm (napi_env env, napi_value v, tpm_t **out)
{
  bool ok = false;
  void *p = NULL;
  if (napi_check_object_type_tag(env, v, &TPM_TAG, &ok) != napi_ok || !ok ||
      napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    bad_arg(env, "expected a TPM handle from open()");
    return -1;
  }
  *out = p;
  return 0;
}

static int get_enum (napi_env env, napi_value v, const char *what, const char *const *names, int count, int *out)
{
  char s[16];
  size_t n = 0;
  char msg[128];
  if (napi_get_value_string_utf8(env, v, s, sizeof s, &n) == napi_ok) {
    for (int i = 0; i < count; i++) {
      if (strcmp(s, names[i]) == 0) {
        *out = i;
        return 0;
      }
    }
  }
  snprintf(msg, sizeof msg, "%s must be one of the supported names", what);
  bad_arg(env, msg);
  return -1;
}

static int get_alg (napi_env env, napi_value v, const char *what, key_alg_t *out)
{
  static const char *const names[] = { "rsa", "ecc" };
  int i;
  if (get_enum(env, v, what, names, 2, &i) != 0) return -1;
  *out = i == 0 ? KEY_RSA : KEY_ECC;
  return 0;
}

static int get_bank (napi_env env, napi_value v, TPMI_ALG_HASH *out)
{
  static const char *const names[] = { "sha1", "sha256", "sha384", "sha512" };
  static const TPMI_ALG_HASH algs[] = { TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512 };
  int i;
  if (get_enum(env, v, "bank", names, 4, &i) != 0) return -1;
  *out = algs[i];
  return 0;
}

static int get_bytes (napi_env env, napi_value v, const char *what, const uint8_t **data, size_t *len)
{
  bool is = false;
  napi_typedarray_type type;
  void *p = NULL;
  char msg[128];
  if (napi_is_typedarray(env, v, &is) == napi_ok && is &&
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) == napi_ok && type == napi_uint8_array) {
    *data = p;
    return 0;
  }
  snprintf(msg, sizeof msg, "%s must be a Buffer or Uint8Array", what);
  bad_arg(env, msg);
  return -1;
}

static int is_nullish (napi_env env, napi_value v)
{
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}

static int get_pcr_mask (napi_env env, napi_value v, uint32_t *mask)
{
  bool is = false;
  uint32_t len = 0;
  *mask = 0;
  if (napi_is_array(env, v, &is) != napi_ok || !is || napi_get_array_length(env, v, &len) != napi_ok || len == 0) {
    bad_arg(env, "pcrs must be a non-empty array of PCR indices 0-23");
    return -1;
  }
  for (uint32_t i = 0; i < len; i++) {
    napi_value e;
    uint32_t pcr;
    napi_valuetype t;
    double d;
    if (napi_get_element(env, v, i, &e) != napi_ok || napi_typeof(env, e, &t) != napi_ok || t != napi_number ||
        napi_get_value_double(env, e, &d) != napi_ok || d < 0 || d >= PCR_COUNT || d != (double)(pcr = (uint32_t)d)) {
      bad_arg(env, "pcrs must be a non-empty array of PCR indices 0-23");
      return -1;
    }
    *mask |= 1u << pcr;
  }
  return 0;
}

static int get_uint (napi_env env, napi_value v, const char *what, uint32_t max, uint32_t *out)
{
  napi_valuetype t;
  double d;
  char msg[128];
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_number && napi_get_value_double(env, v, &d) == napi_ok &&
      d >= 0 && d <= max && d == (double)(uint32_t)d) {
    *out = (uint32_t)d;
    return 0;
  }
  snprintf(msg, sizeof msg, "%s must be an integer from 0 to %u", what, max);
  bad_arg(env, msg);
  return -1;
}

/* ---------------------------------------------------------------- work items */

static void execute (napi_env env, void *data)
{
  call_t *c = data;
  tpm_state_t *s = &c->tpm->st;
  int r = -1;
  (void)env;
  switch (c->op) {
  case OP_OPEN: r = op_open(s, c->tcti, &c->err); break;
  case OP_CLOSE: r = op_close(s, &c->err); break;
  case OP_READ_EK: r = op_read_ek(s, c->alg, &c->ek, &c->err); break;
  case OP_CREATE_AK: r = op_create_ak(s, c->alg, c->ek_alg, &c->ak, &c->err); break;
  case OP_ACTIVATE: r = op_activate_credential(s, &c->blob, &c->secret, &c->b0, &c->err); break;
  case OP_QUOTE: r = op_quote(s, &c->nonce, c->pcr_mask, c->bank, &c->b0, &c->b1, &c->err); break;
  case OP_PCR_READ: r = op_pcr_read(s, c->pcr_mask, c->bank, c->pcr_values, &c->pcr_size, &c->err); break;
  case OP_PCR_EXTEND: r = op_pcr_extend(s, c->pcr, &c->digests, &c->err); break;
  case OP_GET_RANDOM: r = op_get_random(s, c->b0.data, c->n, &c->err); break;
  case OP_HANDLES: r = op_handles(s, &c->b0, &c->b1, &c->err); break;
  }
  c->failed = r != 0;
}

static napi_value buffer_of (napi_env env, const buf_t *b)
{
  napi_value v = NULL;
  napi_create_buffer_copy(env, b->len, b->len > 0 ? b->data : (const void *)"", NULL, &v);
  return v;
}

static void set (napi_env env, napi_value obj, const char *key, napi_value v)
{
  if (v != NULL) napi_set_named_property(env, obj, key, v);
}

static napi_value number (napi_env env, uint32_t n)
{
  napi_value v = NULL;
  napi_create_uint32(env, n, &v);
  return v;
}

static napi_value handle_list (napi_env env, const buf_t *b)
{
  napi_value arr = NULL;
  size_t count = b->len / sizeof(uint32_t);
  napi_create_array_with_length(env, count, &arr);
  for (size_t i = 0; i < count; i++) {
    uint32_t h;
    memcpy(&h, b->data + i * sizeof h, sizeof h);
    napi_set_element(env, arr, (uint32_t)i, number(env, h));
  }
  return arr;
}

static void tpm_finalize (napi_env env, void *data, void *hint)
{
  tpm_t *tpm = data;
  (void)env;
  (void)hint;
  /* No TPM commands on the garbage collector's path: release memory and socket only. */
  if (tpm->live) op_release(&tpm->st);
  free(tpm);
}

/* The resolution value of a successful item (main thread). */
static napi_value result_of (napi_env env, call_t *c)
{
  napi_value v = NULL, u;
  switch (c->op) {
  case OP_OPEN:
    if (napi_create_external(env, c->tpm, tpm_finalize, NULL, &v) != napi_ok) return NULL;
    c->tpm->live = 1;
    c->tpm = NULL; /* owned by the external from here on */
    napi_type_tag_object(env, v, &TPM_TAG);
    return v;
  case OP_CLOSE:
  case OP_PCR_EXTEND:
    napi_get_undefined(env, &v);
    return v;
  case OP_READ_EK:
    napi_create_object(env, &v);
    set(env, v, "public", buffer_of(env, &c->ek.public_area));
    set(env, v, "name", buffer_of(env, &c->ek.name));
    if (c->ek.cert_nv.len > 0) set(env, v, "cert", buffer_of(env, &c->ek.cert_nv));
    else if (napi_get_null(env, &u) == napi_ok) set(env, v, "cert", u);
    set(env, v, "certIndex", number(env, c->ek.cert_index));
    if (napi_get_boolean(env, c->ek.persistent, &u) == napi_ok) set(env, v, "persistent", u);
    set(env, v, "handle", number(env, c->ek.handle));
    return v;
  case OP_CREATE_AK:
    napi_create_object(env, &v);
    set(env, v, "public", buffer_of(env, &c->ak.public_area));
    set(env, v, "name", buffer_of(env, &c->ak.name));
    set(env, v, "handle", number(env, c->ak.handle));
    return v;
  case OP_ACTIVATE:
    return buffer_of(env, &c->b0);
  case OP_GET_RANDOM:
    c->b0.len = c->n;
    return buffer_of(env, &c->b0);
  case OP_QUOTE:
    napi_create_object(env, &v);
    set(env, v, "attest", buffer_of(env, &c->b0));
    set(env, v, "signature", buffer_of(env, &c->b1));
    return v;
  case OP_PCR_READ: {
    uint32_t k = 0;
    napi_create_array(env, &v);
    for (uint32_t i = 0; i < PCR_COUNT; i++) {
      napi_value pair, digest = NULL;
      if (!(c->pcr_mask & (1u << i))) continue;
      napi_create_array_with_length(env, 2, &pair);
      napi_set_element(env, pair, 0, number(env, i));
      napi_create_buffer_copy(env, c->pcr_size, c->pcr_values[i], NULL, &digest);
      napi_set_element(env, pair, 1, digest);
      napi_set_element(env, v, k++, pair);
    }
    return v;
  }
  case OP_HANDLES:
    napi_create_object(env, &v);
    set(env, v, "transient", handle_list(env, &c->b0));
    set(env, v, "sessions", handle_list(env, &c->b1));
    return v;
  }
  return NULL;
}

static void call_free (napi_env env, call_t *c)
{
  if (c->handle_ref != NULL) napi_delete_reference(env, c->handle_ref);
  if (c->work != NULL) napi_delete_async_work(env, c->work);
  buf_free(&c->ek.public_area);
  buf_free(&c->ek.name);
  buf_free(&c->ek.cert_nv);
  buf_free(&c->ak.public_area);
  buf_free(&c->ak.name);
  buf_free(&c->b0);
  buf_free(&c->b1);
  free(c);
}

static void complete (napi_env env, napi_status status, void *data)
{
  call_t *c = data;
  napi_value value = NULL;

  if (c->op != OP_OPEN) c->tpm->busy = 0;
  if (c->op == OP_CLOSE) c->tpm->live = 0; /* op_close released everything, even on failure */
  if (status != napi_ok) {
    tpm_err_t e = { 0 };
    snprintf(e.code, sizeof e.code, "ERR_TPM_CANCELLED");
    snprintf(e.message, sizeof e.message, "the TPM operation was cancelled");
    napi_reject_deferred(env, c->deferred, make_error(env, &e));
  } else if (c->failed) {
    napi_reject_deferred(env, c->deferred, make_error(env, &c->err));
  } else if ((value = result_of(env, c)) != NULL) {
    napi_resolve_deferred(env, c->deferred, value);
  } else {
    tpm_err_t e = { 0 };
    snprintf(e.code, sizeof e.code, "ERR_TPM_NAPI");
    snprintf(e.message, sizeof e.message, "could not build the result in JavaScript");
    if (c->op == OP_OPEN && c->tpm != NULL) op_release(&c->tpm->st);
    napi_reject_deferred(env, c->deferred, make_error(env, &e));
  }
  if (c->op == OP_OPEN && c->tpm != NULL) free(c->tpm); /* open failed: nothing owns it */
  call_free(env, c);
}

/*
 * Queues c; on success the call owns nothing any more (complete frees it).
 * handle_value pins the handle's external while the item is in flight.
 */
static napi_value queue (napi_env env, call_t *c, napi_value handle_value)
{
  napi_value promise, name;
  if (napi_create_promise(env, &c->deferred, &promise) != napi_ok ||
      (handle_value != NULL && napi_create_reference(env, handle_value, 1, &c->handle_ref) != napi_ok) ||
      napi_create_string_utf8(env, "netboot_tpm", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, c, &c->work) != napi_ok ||
      napi_queue_async_work(env, c->work) != napi_ok) {
    /* A created promise that is never settled is only garbage. */
    if (c->op == OP_OPEN) free(c->tpm);
    call_free(env, c);
    return throw_code(env, 0, "ERR_TPM_NAPI", "could not queue the TPM operation");
  }
  if (c->op != OP_OPEN) c->tpm->busy = 1;
  if (c->op == OP_CLOSE) c->tpm->closing = 1;
  return promise;
}

/* Parses argv[0] as a usable handle and allocates the call. */
static call_t *begin (napi_env env, napi_callback_info info, op_t op, size_t want, napi_value *argv)
{
  size_t argc = want;
  tpm_t *tpm;
  call_t *c;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < want) {
    bad_arg(env, "missing arguments");
    return NULL;
  }
  if (get_tpm(env, argv[0], &tpm) != 0) return NULL;
  if (tpm->closing || !tpm->live) {
    throw_code(env, 0, "ERR_TPM_CLOSED", "the TPM handle is closed");
    return NULL;
  }
  if (tpm->busy) {
    throw_code(env, 0, "ERR_TPM_BUSY", "another operation is in progress on this TPM handle (calls must be serialised)");
    return NULL;
  }
  c = calloc(1, sizeof *c);
  if (c == NULL) {
    throw_code(env, 0, "ERR_TPM_NO_MEMORY", "out of memory");
    return NULL;
  }
  c->tpm = tpm;
  c->op = op;
  return c;
}

/* ---------------------------------------------------------------- entry points */

static napi_value js_open (napi_env env, napi_callback_info info)
{
  size_t argc = 1, n = 0;
  napi_value argv[1];
  call_t *c;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  c = calloc(1, sizeof *c);
  if (c == NULL) return throw_code(env, 0, "ERR_TPM_NO_MEMORY", "out of memory");
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], c->tcti, sizeof c->tcti, &n) != napi_ok || n == 0 ||
      n >= sizeof c->tcti - 1) {
    free(c);
    return bad_arg(env, "tcti must be a non-empty TCTI configuration string (e.g. device:/dev/tpmrm0)");
  }
  c->op = OP_OPEN;
  c->tpm = calloc(1, sizeof *c->tpm);
  if (c->tpm == NULL) {
    free(c);
    return throw_code(env, 0, "ERR_TPM_NO_MEMORY", "out of memory");
  }
  return queue(env, c, NULL);
}

static napi_value js_close (napi_env env, napi_callback_info info)
{
  napi_value argv[1];
  call_t *c = begin(env, info, OP_CLOSE, 1, argv);
  return c == NULL ? NULL : queue(env, c, argv[0]);
}

static napi_value js_read_ek (napi_env env, napi_callback_info info)
{
  napi_value argv[2];
  call_t *c = begin(env, info, OP_READ_EK, 2, argv);
  if (c == NULL) return NULL;
  if (get_alg(env, argv[1], "alg", &c->alg) != 0) return free(c), NULL;
  return queue(env, c, argv[0]);
}

static napi_value js_create_ak (napi_env env, napi_callback_info info)
{
  napi_value argv[3];
  call_t *c = begin(env, info, OP_CREATE_AK, 3, argv);
  if (c == NULL) return NULL;
  if (get_alg(env, argv[1], "alg", &c->alg) != 0 || get_alg(env, argv[2], "ek", &c->ek_alg) != 0) return free(c), NULL;
  return queue(env, c, argv[0]);
}

static napi_value js_activate (napi_env env, napi_callback_info info)
{
  napi_value argv[3];
  const uint8_t *blob, *secret;
  size_t blob_len, secret_len, off = 0;
  call_t *c = begin(env, info, OP_ACTIVATE, 3, argv);
  if (c == NULL) return NULL;
  if (get_bytes(env, argv[1], "credentialBlob", &blob, &blob_len) != 0 ||
      get_bytes(env, argv[2], "secret", &secret, &secret_len) != 0) return free(c), NULL;
  if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &off, &c->blob) != TSS2_RC_SUCCESS || off != blob_len) {
    free(c);
    return bad_arg(env, "credentialBlob must be exactly one TPM2B_ID_OBJECT (u16 size ‖ integrityHMAC ‖ encIdentity)");
  }
  off = 0;
  if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(secret, secret_len, &off, &c->secret) != TSS2_RC_SUCCESS ||
      off != secret_len) {
    free(c);
    return bad_arg(env, "secret must be exactly one TPM2B_ENCRYPTED_SECRET (u16 size ‖ encrypted seed)");
  }
  return queue(env, c, argv[0]);
}

static napi_value js_quote (napi_env env, napi_callback_info info)
{
  napi_value argv[4];
  const uint8_t *nonce;
  size_t len;
  call_t *c = begin(env, info, OP_QUOTE, 4, argv);
  if (c == NULL) return NULL;
  if (get_bytes(env, argv[1], "nonce", &nonce, &len) != 0 || get_pcr_mask(env, argv[2], &c->pcr_mask) != 0 ||
      get_bank(env, argv[3], &c->bank) != 0) return free(c), NULL;
  if (len > MAX_NONCE) {
    free(c);
    return bad_arg(env, "nonce must be at most 64 bytes");
  }
  c->nonce.size = (UINT16)len;
  memcpy(c->nonce.buffer, nonce, len);
  return queue(env, c, argv[0]);
}

static napi_value js_pcr_read (napi_env env, napi_callback_info info)
{
  napi_value argv[3];
  call_t *c = begin(env, info, OP_PCR_READ, 3, argv);
  if (c == NULL) return NULL;
  if (get_pcr_mask(env, argv[1], &c->pcr_mask) != 0 || get_bank(env, argv[2], &c->bank) != 0) return free(c), NULL;
  return queue(env, c, argv[0]);
}

static int add_digest (napi_env env, call_t *c, napi_value v, TPMI_ALG_HASH alg, size_t size, const char *what)
{
  const uint8_t *d;
  size_t len;
  char msg[96];
  if (is_nullish(env, v)) return 0;
  if (get_bytes(env, v, what, &d, &len) != 0) return -1;
  if (len != size) {
    snprintf(msg, sizeof msg, "the %s digest must be %zu bytes", what, size);
    bad_arg(env, msg);
    return -1;
  }
  c->digests.digests[c->digests.count].hashAlg = alg;
  memcpy((uint8_t *)&c->digests.digests[c->digests.count].digest, d, len);
  c->digests.count++;
  return 0;
}

static napi_value js_pcr_extend (napi_env env, napi_callback_info info)
{
  napi_value argv[4];
  call_t *c = begin(env, info, OP_PCR_EXTEND, 4, argv);
  if (c == NULL) return NULL;
  if (get_uint(env, argv[1], "pcr", PCR_COUNT - 1, &c->pcr) != 0 ||
      add_digest(env, c, argv[2], TPM2_ALG_SHA256, 32, "sha256") != 0 ||
      add_digest(env, c, argv[3], TPM2_ALG_SHA1, 20, "sha1") != 0) return free(c), NULL;
  if (c->digests.count == 0) {
    free(c);
    return bad_arg(env, "pcrExtend needs at least one digest");
  }
  return queue(env, c, argv[0]);
}

static napi_value js_get_random (napi_env env, napi_callback_info info)
{
  napi_value argv[2];
  uint32_t n;
  call_t *c = begin(env, info, OP_GET_RANDOM, 2, argv);
  if (c == NULL) return NULL;
  if (get_uint(env, argv[1], "n", MAX_RANDOM, &n) != 0) return free(c), NULL;
  c->n = n;
  c->b0.data = malloc(n > 0 ? n : 1);
  if (c->b0.data == NULL) {
    free(c);
    return throw_code(env, 0, "ERR_TPM_NO_MEMORY", "out of memory");
  }
  return queue(env, c, argv[0]);
}

static napi_value js_handles (napi_env env, napi_callback_info info)
{
  napi_value argv[1];
  call_t *c = begin(env, info, OP_HANDLES, 1, argv);
  return c == NULL ? NULL : queue(env, c, argv[0]);
}

static napi_value init (napi_env env, napi_value exports)
{
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL },
    { "readEk", NULL, js_read_ek, NULL, NULL, NULL, napi_enumerable, NULL },
    { "createAk", NULL, js_create_ak, NULL, NULL, NULL, napi_enumerable, NULL },
    { "activateCredential", NULL, js_activate, NULL, NULL, NULL, napi_enumerable, NULL },
    { "quote", NULL, js_quote, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pcrRead", NULL, js_pcr_read, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pcrExtend", NULL, js_pcr_extend, NULL, NULL, NULL, napi_enumerable, NULL },
    { "getRandom", NULL, js_get_random, NULL, NULL, NULL, napi_enumerable, NULL },
    { "handles", NULL, js_handles, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
