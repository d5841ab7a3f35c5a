/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wire: the envelope codec, its signature and checks, and a few Body builders. */
#include "wire.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "body.h"
#include "wgfleet.pb-c.h"

/* The signed byte string; see wire.h. The domain string includes its NUL. */
#define SIGN_DOMAIN     "wgfleet-envelope"
#define SIGN_DOMAIN_LEN sizeof(SIGN_DOMAIN)
#define SIGN_HEADER_LEN                                                                    \
	(SIGN_DOMAIN_LEN + 4 + WGF_SIGN_PK_LEN + WGF_SIGN_PK_LEN + 8 + WGF_NONCE_LEN + 1 + \
	 WGF_NONCE_LEN + 4)

static_assert(crypto_sign_PUBLICKEYBYTES == WGF_SIGN_PK_LEN, "Ed25519 public key size");
static_assert(crypto_sign_SECRETKEYBYTES == WGF_SIGN_SK_LEN, "Ed25519 secret key size");
static_assert(crypto_sign_BYTES == WGF_SIGNATURE_LEN, "Ed25519 signature size");
static_assert(WGF_WIRE_MSG_MAX < UINT32_MAX, "body_len is signed as a u32");

/* enum wgf_wire_kind and enum wgf_wire_error_code mirror the generated numbers. */
#define SAME_NUMBER(ours, generated) static_assert((int)(ours) == (int)(generated), #ours)
SAME_NUMBER(WGF_WIRE_KIND_NONE, WGFLEET__V1__BODY__KIND__NOT_SET);
SAME_NUMBER(WGF_WIRE_KIND_HINT, WGFLEET__V1__BODY__KIND_HINT);
SAME_NUMBER(WGF_WIRE_KIND_SYNC_REQUEST, WGFLEET__V1__BODY__KIND_SYNC_REQUEST);
SAME_NUMBER(WGF_WIRE_KIND_SYNC_REPLY, WGFLEET__V1__BODY__KIND_SYNC_REPLY);
SAME_NUMBER(WGF_WIRE_KIND_REPORT, WGFLEET__V1__BODY__KIND_REPORT);
SAME_NUMBER(WGF_WIRE_KIND_ERROR, WGFLEET__V1__BODY__KIND_ERROR);
SAME_NUMBER(WGF_WIRE_ERROR_UNSPECIFIED, WGFLEET__V1__ERROR__CODE__CODE_UNSPECIFIED);
SAME_NUMBER(WGF_WIRE_ERROR_UNSUPPORTED_VERSION, WGFLEET__V1__ERROR__CODE__CODE_UNSUPPORTED_VERSION);
SAME_NUMBER(WGF_WIRE_ERROR_BAD_SIGNATURE, WGFLEET__V1__ERROR__CODE__CODE_BAD_SIGNATURE);
SAME_NUMBER(WGF_WIRE_ERROR_UNKNOWN_SENDER, WGFLEET__V1__ERROR__CODE__CODE_UNKNOWN_SENDER);
SAME_NUMBER(WGF_WIRE_ERROR_STALE, WGFLEET__V1__ERROR__CODE__CODE_STALE);
SAME_NUMBER(WGF_WIRE_ERROR_REPLAY, WGFLEET__V1__ERROR__CODE__CODE_REPLAY);
SAME_NUMBER(WGF_WIRE_ERROR_MISADDRESSED, WGFLEET__V1__ERROR__CODE__CODE_MISADDRESSED);
SAME_NUMBER(WGF_WIRE_ERROR_BAD_REQUEST, WGFLEET__V1__ERROR__CODE__CODE_BAD_REQUEST);
SAME_NUMBER(WGF_WIRE_ERROR_INTERNAL, WGFLEET__V1__ERROR__CODE__CODE_INTERNAL);

/* What an empty buffer unpacks from: protobuf-c is not promised a NULL. */
static const uint8_t empty[1];

int wgf_wire_keypair(uint8_t ret_pk[static WGF_SIGN_PK_LEN], uint8_t ret_sk[static WGF_SIGN_SK_LEN])
{
	return crypto_sign_keypair(ret_pk, ret_sk) == 0 ? 0 : -EIO;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return p + n;
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

/*
 * Builds the byte string that is signed (see wire.h) from m's fields into a malloc'd
 * buffer of SIGN_HEADER_LEN + m->body_len bytes. NULL only for -ENOMEM.
 */
static uint8_t *signed_bytes(const struct wgf_wire_msg *m, size_t *ret_len)
{
	static const uint8_t no_reply[WGF_NONCE_LEN];
	size_t len = SIGN_HEADER_LEN + m->body_len;
	uint8_t *buf = malloc(len);
	uint8_t *p = buf;

	if (!buf)
		return NULL;
	p = put_bytes(p, (const uint8_t *)SIGN_DOMAIN, SIGN_DOMAIN_LEN);
	p = put_be(p, m->version, 4);
	p = put_bytes(p, m->sender, WGF_SIGN_PK_LEN);
	p = put_bytes(p, m->recipient, WGF_SIGN_PK_LEN);
	p = put_be(p, m->timestamp_ms, 8);
	p = put_bytes(p, m->nonce, WGF_NONCE_LEN);
	*p++ = m->is_reply ? 1 : 0;
	p = put_bytes(p, m->is_reply ? m->in_reply_to : no_reply, WGF_NONCE_LEN);
	p = put_be(p, m->body_len, 4);
	if (m->body_len > 0)
		memcpy(p, m->body, m->body_len);
	*ret_len = len;
	return buf;
}

int wgf_wire_seal(const uint8_t sk[static WGF_SIGN_SK_LEN],
                  const uint8_t recipient[static WGF_SIGN_PK_LEN], const uint8_t *in_reply_to,
                  uint64_t now_ms, const uint8_t *body, size_t body_len, uint8_t *ret_nonce,
                  uint8_t **ret_buf, size_t *ret_len)
{
	Wgfleet__V1__Envelope env = WGFLEET__V1__ENVELOPE__INIT;
	/* Only the header fields are used from m: the body stays the caller's. */
	struct wgf_wire_msg m = {
	        .version = WGF_PROTOCOL_VERSION,
	        .timestamp_ms = now_ms,
	        .is_reply = in_reply_to != NULL,
	        .body = (uint8_t *)body,
	        .body_len = body_len,
	};
	uint8_t *sbuf = NULL, *out = NULL;
	size_t slen, out_len;
	int r;

	if (!body && body_len > 0)
		return -EINVAL;
	/* Not a full check, just a cheap early one: the packed size is checked below. */
	if (body_len > WGF_WIRE_MSG_MAX)
		return -EMSGSIZE;

	crypto_sign_ed25519_sk_to_pk(m.sender, sk);
	memcpy(m.recipient, recipient, WGF_SIGN_PK_LEN);
	randombytes_buf(m.nonce, WGF_NONCE_LEN);
	if (in_reply_to)
		memcpy(m.in_reply_to, in_reply_to, WGF_NONCE_LEN);

	sbuf = signed_bytes(&m, &slen);
	if (!sbuf)
		return -ENOMEM;
	if (crypto_sign_detached(m.signature, NULL, sbuf, slen, sk) != 0) {
		r = -EIO;
		goto out;
	}

	env.protocol_version = m.version;
	env.sender = (ProtobufCBinaryData){WGF_SIGN_PK_LEN, m.sender};
	env.recipient = (ProtobufCBinaryData){WGF_SIGN_PK_LEN, m.recipient};
	env.timestamp_ms = m.timestamp_ms;
	env.nonce = (ProtobufCBinaryData){WGF_NONCE_LEN, m.nonce};
	if (m.is_reply)
		env.in_reply_to = (ProtobufCBinaryData){WGF_NONCE_LEN, m.in_reply_to};
	env.body = (ProtobufCBinaryData){body_len, m.body};
	env.signature = (ProtobufCBinaryData){WGF_SIGNATURE_LEN, m.signature};

	out_len = wgfleet__v1__envelope__get_packed_size(&env);
	if (out_len > WGF_WIRE_MSG_MAX) {
		r = -EMSGSIZE;
		goto out;
	}
	out = malloc(out_len);
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	if (wgfleet__v1__envelope__pack(&env, out) != out_len) {
		r = -EIO;
		goto out;
	}

	if (ret_nonce)
		memcpy(ret_nonce, m.nonce, WGF_NONCE_LEN);
	*ret_buf = out;
	*ret_len = out_len;
	out = NULL;
	r = 0;
out:
	free(out);
	free(sbuf);
	return r;
}

/* Copies a fixed-size field when its length is exactly n; returns whether it was. */
static bool copy_exact(uint8_t *dst, const ProtobufCBinaryData *src, size_t n)
{
	if (src->len != n)
		return false;
	memcpy(dst, src->data, n);
	return true;
}

/* -EPROTONOSUPPORT: keeps only the fields every version keeps, for the Error answer. */
static int open_other_version(const Wgfleet__V1__Envelope *env, struct wgf_wire_msg **ret,
                              struct wgf_err *err)
{
	struct wgf_wire_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->version = env->protocol_version;
	(void)copy_exact(m->sender, &env->sender, WGF_SIGN_PK_LEN);
	(void)copy_exact(m->nonce, &env->nonce, WGF_NONCE_LEN);
	m->is_reply = env->in_reply_to.len > 0;
	(void)copy_exact(m->in_reply_to, &env->in_reply_to, WGF_NONCE_LEN);
	*ret = m;
	return wgf_err_set(err, -EPROTONOSUPPORT,
	                   "protocol version %" PRIu32
	                   " is not supported; this side speaks version %d",
	                   env->protocol_version, WGF_PROTOCOL_VERSION);
}

static int check_len(const ProtobufCBinaryData *field, const char *name, size_t n,
                     struct wgf_err *err)
{
	if (field->len == n)
		return 0;
	return wgf_err_set(err, -EBADMSG, "envelope field '%s' is %zu bytes, expected %zu", name,
	                   field->len, n);
}

int wgf_wire_open(const uint8_t *buf, size_t len, struct wgf_wire_msg **ret, struct wgf_err *err)
{
	Wgfleet__V1__Envelope *env;
	struct wgf_wire_msg *m = NULL;
	int r;

	if (len > WGF_WIRE_MSG_MAX)
		return wgf_err_set(err, -EMSGSIZE,
		                   "envelope is %zu bytes, more than the %zu allowed", len,
		                   WGF_WIRE_MSG_MAX);
	if (!buf && len > 0)
		return wgf_err_set(err, -EINVAL, "no envelope buffer");

	env = wgfleet__v1__envelope__unpack(NULL, len, buf ? buf : empty);
	if (!env)
		return wgf_err_set(err, -EBADMSG, "envelope is not a valid protobuf Envelope");

	if (env->protocol_version == 0) {
		r = wgf_err_set(err, -EBADMSG, "envelope has no protocol version");
		goto out;
	}
	if (env->protocol_version != WGF_PROTOCOL_VERSION) {
		r = open_other_version(env, ret, err);
		goto out;
	}

	r = check_len(&env->sender, "sender", WGF_SIGN_PK_LEN, err);
	if (r < 0)
		goto out;
	r = check_len(&env->recipient, "recipient", WGF_SIGN_PK_LEN, err);
	if (r < 0)
		goto out;
	r = check_len(&env->nonce, "nonce", WGF_NONCE_LEN, err);
	if (r < 0)
		goto out;
	if (env->in_reply_to.len != 0 && env->in_reply_to.len != WGF_NONCE_LEN) {
		r = wgf_err_set(err, -EBADMSG,
		                "envelope field 'in_reply_to' is %zu bytes, expected 0 or %d",
		                env->in_reply_to.len, WGF_NONCE_LEN);
		goto out;
	}
	r = check_len(&env->signature, "signature", WGF_SIGNATURE_LEN, err);
	if (r < 0)
		goto out;

	m = calloc(1, sizeof(*m));
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	if (env->body.len > 0) {
		m->body = malloc(env->body.len);
		if (!m->body) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(m->body, env->body.data, env->body.len);
		m->body_len = env->body.len;
	}
	m->version = env->protocol_version;
	(void)copy_exact(m->sender, &env->sender, WGF_SIGN_PK_LEN);
	(void)copy_exact(m->recipient, &env->recipient, WGF_SIGN_PK_LEN);
	m->timestamp_ms = env->timestamp_ms;
	(void)copy_exact(m->nonce, &env->nonce, WGF_NONCE_LEN);
	m->is_reply = copy_exact(m->in_reply_to, &env->in_reply_to, WGF_NONCE_LEN);
	(void)copy_exact(m->signature, &env->signature, WGF_SIGNATURE_LEN);

	*ret = m;
	m = NULL;
	r = 0;
out:
	wgf_wire_msg_free(m);
	wgfleet__v1__envelope__free_unpacked(env, NULL);
	return r;
}

int wgf_wire_verify(const struct wgf_wire_msg *m, const uint8_t pk[static WGF_SIGN_PK_LEN],
                    struct wgf_err *err)
{
	uint8_t *sbuf;
	size_t slen;
	int r = 0;

	if (sodium_memcmp(m->sender, pk, WGF_SIGN_PK_LEN) != 0)
		return wgf_err_set(err, -EACCES, "unknown sender");
	sbuf = signed_bytes(m, &slen);
	if (!sbuf)
		return -ENOMEM;
	if (crypto_sign_verify_detached(m->signature, sbuf, slen, pk) != 0)
		r = wgf_err_set(err, -EBADMSG, "bad signature");
	free(sbuf);
	return r;
}

int wgf_wire_check_addressed(const struct wgf_wire_msg *m, const uint8_t me[static WGF_SIGN_PK_LEN],
                             struct wgf_err *err)
{
	if (sodium_memcmp(m->recipient, me, WGF_SIGN_PK_LEN) != 0)
		return wgf_err_set(err, -EXDEV, "envelope is addressed to another key");
	return 0;
}

int wgf_wire_check_fresh(const struct wgf_wire_msg *m, uint64_t now_ms, uint64_t max_skew_ms,
                         struct wgf_err *err)
{
	/* Differences, not sums: neither side of the window may overflow. */
	if (m->timestamp_ms <= now_ms && now_ms - m->timestamp_ms > max_skew_ms)
		return wgf_err_set(err, -ESTALE,
		                   "envelope is %" PRIu64 " ms old, more than the %" PRIu64
		                   " ms allowed",
		                   now_ms - m->timestamp_ms, max_skew_ms);
	if (m->timestamp_ms > now_ms && m->timestamp_ms - now_ms > max_skew_ms)
		return wgf_err_set(err, -ESTALE,
		                   "envelope is dated %" PRIu64
		                   " ms in the future, more than the %" PRIu64 " ms allowed",
		                   m->timestamp_ms - now_ms, max_skew_ms);
	return 0;
}

void wgf_wire_msg_free(struct wgf_wire_msg *m)
{
	if (!m)
		return;
	free(m->body);
	free(m);
}

/* One base-128 varint at buf[*i], at most 10 bytes; false when it runs past len. */
static bool read_varint(const uint8_t *buf, size_t len, size_t *i, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 70 && *i < len; shift += 7) {
		uint8_t b = buf[(*i)++];

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

int wgf_wire_body_peek_kind(const uint8_t *body, size_t len)
{
	size_t i = 0;
	int kind = WGF_WIRE_KIND_NONE;

	if (!body && len > 0)
		return -EBADMSG;
	while (i < len) {
		uint64_t key, n = 0;

		if (!read_varint(body, len, &i, &key))
			return -EBADMSG;
		switch (key & 7) {
		case 0:
			if (!read_varint(body, len, &i, &n))
				return -EBADMSG;
			n = 0;
			break;
		case 1:
			n = 8;
			break;
		case 2:
			if (!read_varint(body, len, &i, &n))
				return -EBADMSG;
			break;
		case 5:
			n = 4;
			break;
		default:
			return -EBADMSG;
		}
		if (n > len - i)
			return -EBADMSG;
		i += n;
		/* The last member of the oneof on the wire is the one set (protobuf's rule). */
		if ((key & 7) == 2 && (key >> 3) >= WGF_WIRE_KIND_HINT &&
		    (key >> 3) <= WGF_WIRE_KIND_ERROR)
			kind = (int)(key >> 3);
	}
	return kind;
}

static const char *const refusal_names[WGF_WIRE_REFUSAL__COUNT] = {
        [WGF_WIRE_ACCEPTED] = "accepted",
        [WGF_WIRE_UNREADABLE] = "unreadable",
        [WGF_WIRE_VERSION] = "unsupported_version",
        [WGF_WIRE_UNKNOWN_SENDER] = "unknown_sender",
        [WGF_WIRE_RATE_LIMITED] = "rate_limited",
        [WGF_WIRE_TOO_LARGE] = "too_large",
        [WGF_WIRE_BAD_SIGNATURE] = "bad_signature",
        [WGF_WIRE_MISADDRESSED] = "misaddressed",
        [WGF_WIRE_STALE] = "stale",
        [WGF_WIRE_REPLAY] = "replay",
        [WGF_WIRE_BAD_BODY] = "bad_body",
};

static const enum wgf_wire_error_code refusal_codes[WGF_WIRE_REFUSAL__COUNT] = {
        [WGF_WIRE_VERSION] = WGF_WIRE_ERROR_UNSUPPORTED_VERSION,
        [WGF_WIRE_UNKNOWN_SENDER] = WGF_WIRE_ERROR_UNKNOWN_SENDER,
        [WGF_WIRE_RATE_LIMITED] = WGF_WIRE_ERROR_INTERNAL,
        [WGF_WIRE_TOO_LARGE] = WGF_WIRE_ERROR_BAD_REQUEST,
        [WGF_WIRE_BAD_SIGNATURE] = WGF_WIRE_ERROR_BAD_SIGNATURE,
        [WGF_WIRE_MISADDRESSED] = WGF_WIRE_ERROR_MISADDRESSED,
        [WGF_WIRE_STALE] = WGF_WIRE_ERROR_STALE,
        [WGF_WIRE_REPLAY] = WGF_WIRE_ERROR_REPLAY,
        [WGF_WIRE_BAD_BODY] = WGF_WIRE_ERROR_BAD_REQUEST,
};

const char *wgf_wire_refusal_name(enum wgf_wire_refusal why)
{
	return why < WGF_WIRE_REFUSAL__COUNT ? refusal_names[why] : "unknown";
}

enum wgf_wire_error_code wgf_wire_refusal_code(enum wgf_wire_refusal why)
{
	return why < WGF_WIRE_REFUSAL__COUNT ? refusal_codes[why] : WGF_WIRE_ERROR_UNSPECIFIED;
}

bool wgf_wire_answerable(const struct wgf_wire_msg *m, enum wgf_wire_refusal why)
{
	static const uint8_t zero[WGF_NONCE_LEN];

	if (!m || why == WGF_WIRE_UNREADABLE || m->is_reply ||
	    sodium_memcmp(m->nonce, zero, WGF_NONCE_LEN) == 0)
		return false;
	return !(why == WGF_WIRE_UNKNOWN_SENDER && m->version != WGF_PROTOCOL_VERSION);
}

static bool addressed_to_another_of_ours(const struct wgf_wire_receiver *r,
                                         const struct wgf_wire_msg *m)
{
	for (size_t i = 0; i < r->n_also_me; i++)
		if (wgf_wire_check_addressed(m, r->also_me[i], NULL) == 0)
			return true;
	return false;
}

/* The checks after the envelope was read, in the contract's order; 0 or the refusal. */
static enum wgf_wire_refusal check(const struct wgf_wire_receiver *r, const struct wgf_wire_msg *m,
                                   uint64_t now_ms, struct wgf_err *err)
{
	size_t body_max = 0;
	int rv, kind = wgf_wire_body_peek_kind(m->body, m->body_len);
	const uint8_t *key =
	        r->find_sender(r->ctx, m, kind < 0 ? WGF_WIRE_KIND_NONE : kind, &body_max);

	if (!key) {
		wgf_err_set(err, -EACCES, "the sender's key is not one this side knows");
		return WGF_WIRE_UNKNOWN_SENDER;
	}
	if (r->admit && !r->admit(r->ctx, m)) {
		wgf_err_set(err, -EBUSY, "this sender sent more messages than it may; slow down");
		return WGF_WIRE_RATE_LIMITED;
	}
	if (kind < 0) {
		wgf_err_set(err, -EBADMSG, "the body is not a valid protobuf Body");
		return WGF_WIRE_BAD_BODY;
	}
	if (m->body_len > body_max) {
		wgf_err_set(err, -EMSGSIZE,
		            "the body is %zu bytes, more than the %zu its kind allows", m->body_len,
		            body_max);
		return WGF_WIRE_TOO_LARGE;
	}
	rv = wgf_wire_verify(m, key, err);
	if (rv == -ENOMEM) {
		/* Our failure, not the sender's: it must not be counted as a bad signature. */
		wgf_err_set(err, -ENOMEM, "out of memory checking a signature");
		return WGF_WIRE_UNREADABLE;
	}
	if (rv < 0)
		return WGF_WIRE_BAD_SIGNATURE;
	if (!addressed_to_another_of_ours(r, m) && wgf_wire_check_addressed(m, r->me, err) < 0)
		return WGF_WIRE_MISADDRESSED;
	if (wgf_wire_check_fresh(m, now_ms, r->max_skew_ms, err) < 0)
		return WGF_WIRE_STALE;
	if (r->reply_to &&
	    (!m->is_reply || sodium_memcmp(m->in_reply_to, r->reply_to, WGF_NONCE_LEN) != 0)) {
		wgf_err_set(err, -EBADMSG, "the answer is not bound to our request");
		return WGF_WIRE_REPLAY;
	}
	if (!r->reply_to && r->take_nonce && !r->take_nonce(r->ctx, m)) {
		wgf_err_set(err, -EALREADY, "this message was seen before");
		return WGF_WIRE_REPLAY;
	}
	return WGF_WIRE_ACCEPTED;
}

int wgf_wire_accept(const struct wgf_wire_receiver *r, const uint8_t *buf, size_t len,
                    uint64_t now_ms, struct wgf_wire_msg **ret_msg, struct wgf_body *ret_body,
                    enum wgf_wire_refusal *ret_why, struct wgf_err *err)
{
	struct wgf_wire_msg *m = NULL;
	struct wgf_err local = {0};
	size_t body_max;
	int rv;

	if (!err)
		err = &local;
	rv = wgf_wire_open(buf, len, &m, err);

	*ret_msg = NULL;
	if (rv == -EPROTONOSUPPORT) {
		*ret_why = r->find_sender(r->ctx, m, WGF_WIRE_KIND_NONE, &body_max)
		                   ? WGF_WIRE_VERSION
		                   : WGF_WIRE_UNKNOWN_SENDER;
		*ret_msg = m;
		return rv;
	}
	if (rv < 0) {
		*ret_why = WGF_WIRE_UNREADABLE;
		if (rv == -ENOMEM)
			wgf_err_set(err, -ENOMEM, "out of memory reading an envelope");
		return rv;
	}
	*ret_msg = m;
	*ret_why = check(r, m, now_ms, err);
	if (*ret_why != WGF_WIRE_ACCEPTED)
		return err->code < 0 ? err->code : -EBADMSG;
	rv = wgf_body_decode(m->body, m->body_len, ret_body, err);
	if (rv < 0)
		*ret_why = rv == -ENOMEM ? WGF_WIRE_UNREADABLE : WGF_WIRE_BAD_BODY;
	return rv;
}
