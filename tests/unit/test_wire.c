/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* test_wire: sealing, opening and checking envelopes, and every way one is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "body.h"
#include "key.h"
#include "wgfleet.pb-c.h"
#include "wire.h"

/*
 * tests/unit/meson.build links this test with -Wl,--wrap=malloc,--wrap=calloc, so the
 * allocations of the code under test (the static libraries, and this file) come here
 * and one of them can be made to fail; the shared libraries keep libc's.
 */
void *__real_malloc(size_t size);           /* NOLINT(bugprone-reserved-identifier) */
void *__real_calloc(size_t n, size_t size); /* NOLINT(bugprone-reserved-identifier) */
void *__wrap_malloc(size_t size);           /* NOLINT(bugprone-reserved-identifier) */
void *__wrap_calloc(size_t n, size_t size); /* NOLINT(bugprone-reserved-identifier) */

static unsigned fail_in; /* > 0: the allocation this many from now fails */

static bool fail_now(void)
{
	return fail_in > 0 && --fail_in == 0;
}

void *__wrap_malloc(size_t size) /* NOLINT(bugprone-reserved-identifier) */
{
	return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size) /* NOLINT(bugprone-reserved-identifier) */
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

#define NOW  1795000000000ULL /* 2026-11-18, in ms */
#define SKEW 30000ULL

struct party {
	uint8_t pk[WGF_SIGN_PK_LEN];
	uint8_t sk[WGF_SIGN_SK_LEN];
};

static struct party coord, agent, mallory;

static int group_setup(void **state)
{
	(void)state;
	if (wgf_key_init() < 0)
		return -1;
	if (wgf_wire_keypair(coord.pk, coord.sk) < 0 || wgf_wire_keypair(agent.pk, agent.sk) < 0 ||
	    wgf_wire_keypair(mallory.pk, mallory.sk) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sodium_memzero(coord.sk, sizeof(coord.sk));
	sodium_memzero(agent.sk, sizeof(agent.sk));
	sodium_memzero(mallory.sk, sizeof(mallory.sk));
	return 0;
}

/* A serialized Hint body (body.h). */
static int body_hint(const char *server, uint64_t revision, uint8_t **ret, size_t *ret_len)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_HINT, .hint.revision = revision};

	snprintf(b.hint.server, sizeof(b.hint.server), "%s", server);
	return wgf_body_encode(&b, ret, ret_len, NULL);
}

/* The kind of a body as the decoder sees it, or its error. */
static int body_kind(const uint8_t *body, size_t len)
{
	struct wgf_body b;
	int r = wgf_body_decode(body, len, &b, NULL);

	if (r < 0)
		return r;
	r = (int)b.kind;
	wgf_body_fini(&b);
	return r;
}

/* A Hint envelope from coord to agent, sealed at NOW. */
static void seal_hint(uint8_t **ret_buf, size_t *ret_len, uint8_t ret_nonce[WGF_NONCE_LEN])
{
	uint8_t *body;
	size_t body_len;

	assert_int_equal(body_hint("vps-1", 42, &body, &body_len), 0);
	assert_int_equal(wgf_wire_seal(coord.sk, agent.pk, NULL, NOW, body, body_len, ret_nonce,
	                               ret_buf, ret_len),
	                 0);
	free(body);
}

static struct wgf_wire_msg *open_ok(const uint8_t *buf, size_t len)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m = NULL;

	assert_int_equal(wgf_wire_open(buf, len, &m, &err), 0);
	assert_non_null(m);
	assert_int_equal(err.code, 0);
	return m;
}

/* Opens buf, expecting failure r with message msg, and that no message was returned. */
static void open_fails(const uint8_t *buf, size_t len, int r, const char *msg)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m = NULL;

	assert_int_equal(wgf_wire_open(buf, len, &m, &err), r);
	assert_int_equal(err.code, r);
	assert_string_equal(err.msg, msg);
	assert_null(m);
}

typedef void mutate_fn(Wgfleet__V1__Envelope *env);

/* Decodes *buf with protobuf-c, changes it in place, and packs it again into *buf. */
static void repack(uint8_t **buf, size_t *len, mutate_fn *mutate)
{
	Wgfleet__V1__Envelope *env = wgfleet__v1__envelope__unpack(NULL, *len, *buf);
	uint8_t *out;
	size_t n;

	assert_non_null(env);
	mutate(env);
	n = wgfleet__v1__envelope__get_packed_size(env);
	out = malloc(n);
	assert_non_null(out);
	assert_int_equal(wgfleet__v1__envelope__pack(env, out), n);
	wgfleet__v1__envelope__free_unpacked(env, NULL);
	free(*buf);
	*buf = out;
	*len = n;
}

/* Packs an envelope built by hand; the caller frees *ret. */
static void pack_by_hand(const Wgfleet__V1__Envelope *env, uint8_t **ret, size_t *ret_len)
{
	size_t n = wgfleet__v1__envelope__get_packed_size(env);

	*ret = malloc(n);
	assert_non_null(*ret);
	assert_int_equal(wgfleet__v1__envelope__pack(env, *ret), n);
	*ret_len = n;
}

static void test_round_trip_hint(void **state)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m;
	Wgfleet__V1__Body *b;
	uint8_t nonce[WGF_NONCE_LEN], zeros[WGF_NONCE_LEN] = {0};
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_hint(&buf, &len, nonce);
	assert_true(len <= WGF_WIRE_MSG_MAX);
	m = open_ok(buf, len);

	assert_int_equal(m->version, WGF_PROTOCOL_VERSION);
	assert_memory_equal(m->sender, coord.pk, WGF_SIGN_PK_LEN);
	assert_memory_equal(m->recipient, agent.pk, WGF_SIGN_PK_LEN);
	assert_int_equal(m->timestamp_ms, NOW);
	assert_memory_equal(m->nonce, nonce, WGF_NONCE_LEN);
	assert_false(m->is_reply);
	assert_memory_equal(m->in_reply_to, zeros, WGF_NONCE_LEN);

	assert_int_equal(wgf_wire_verify(m, coord.pk, &err), 0);
	assert_int_equal(wgf_wire_check_addressed(m, agent.pk, &err), 0);
	assert_int_equal(wgf_wire_check_fresh(m, NOW, SKEW, &err), 0);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");

	assert_int_equal(body_kind(m->body, m->body_len), WGF_WIRE_KIND_HINT);
	b = wgfleet__v1__body__unpack(NULL, m->body_len, m->body);
	assert_non_null(b);
	assert_int_equal(b->kind_case, WGFLEET__V1__BODY__KIND_HINT);
	assert_string_equal(b->hint->server, "vps-1");
	assert_int_equal(b->hint->revision, 42);
	wgfleet__v1__body__free_unpacked(b, NULL);

	wgf_wire_msg_free(m);
	free(buf);
}

static void test_nonces_differ(void **state)
{
	uint8_t n1[WGF_NONCE_LEN], n2[WGF_NONCE_LEN];
	uint8_t *b1, *b2;
	size_t l1, l2;

	(void)state;
	seal_hint(&b1, &l1, n1);
	seal_hint(&b2, &l2, n2);
	assert_memory_not_equal(n1, n2, WGF_NONCE_LEN);
	assert_memory_not_equal(b1, b2, l1 < l2 ? l1 : l2);
	free(b1);
	free(b2);
}

static void test_empty_body(void **state)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(wgf_wire_seal(coord.sk, agent.pk, NULL, NOW, NULL, 0, NULL, &buf, &len),
	                 0);
	m = open_ok(buf, len);
	assert_null(m->body);
	assert_int_equal(m->body_len, 0);
	assert_int_equal(wgf_wire_verify(m, coord.pk, &err), 0);
	assert_int_equal(body_kind(m->body, m->body_len), -ENOTSUP);
	wgf_wire_msg_free(m);
	free(buf);
}

static void test_reply_bound_to_request(void **state)
{
	Wgfleet__V1__Body req = WGFLEET__V1__BODY__INIT, *rb;
	Wgfleet__V1__SyncRequest sr = WGFLEET__V1__SYNC_REQUEST__INIT;
	struct wgf_err err = {0};
	struct wgf_wire_msg *m, *reply;
	uint8_t req_nonce[WGF_NONCE_LEN], reply_nonce[WGF_NONCE_LEN];
	uint8_t *body, *buf, *rbuf;
	size_t body_len, len, rlen;

	(void)state;
	/* The agent asks. */
	sr.server = "vps-1";
	sr.since_revision = 40;
	req.kind_case = WGFLEET__V1__BODY__KIND_SYNC_REQUEST;
	req.sync_request = &sr;
	body_len = wgfleet__v1__body__get_packed_size(&req);
	body = malloc(body_len);
	assert_non_null(body);
	wgfleet__v1__body__pack(&req, body);
	assert_int_equal(
	        wgf_wire_seal(agent.sk, coord.pk, NULL, NOW, body, body_len, req_nonce, &buf, &len),
	        0);
	free(body);

	/* The coordinator opens, checks and answers (here with an Error). */
	m = open_ok(buf, len);
	assert_int_equal(wgf_wire_verify(m, agent.pk, &err), 0);
	assert_int_equal(wgf_wire_check_addressed(m, coord.pk, &err), 0);
	assert_int_equal(body_kind(m->body, m->body_len), WGF_WIRE_KIND_SYNC_REQUEST);
	assert_int_equal(wgf_body_encode_error(WGF_WIRE_ERROR_INTERNAL, "database unavailable",
	                                       &body, &body_len),
	                 0);
	assert_int_equal(wgf_wire_seal(coord.sk, m->sender, m->nonce, NOW + 5, body, body_len,
	                               reply_nonce, &rbuf, &rlen),
	                 0);
	free(body);
	wgf_wire_msg_free(m);

	/* The agent matches the reply to its request. */
	reply = open_ok(rbuf, rlen);
	assert_int_equal(wgf_wire_verify(reply, coord.pk, &err), 0);
	assert_int_equal(wgf_wire_check_addressed(reply, agent.pk, &err), 0);
	assert_true(reply->is_reply);
	assert_memory_equal(reply->in_reply_to, req_nonce, WGF_NONCE_LEN);
	assert_memory_equal(reply->nonce, reply_nonce, WGF_NONCE_LEN);
	assert_memory_not_equal(reply->nonce, req_nonce, WGF_NONCE_LEN);
	assert_int_equal(reply->timestamp_ms, NOW + 5);
	assert_int_equal(body_kind(reply->body, reply->body_len), WGF_WIRE_KIND_ERROR);
	rb = wgfleet__v1__body__unpack(NULL, reply->body_len, reply->body);
	assert_non_null(rb);
	assert_int_equal(rb->error->code, WGFLEET__V1__ERROR__CODE__CODE_INTERNAL);
	assert_string_equal(rb->error->message, "database unavailable");
	assert_int_equal(rb->error->supported_version, WGF_PROTOCOL_VERSION);
	wgfleet__v1__body__free_unpacked(rb, NULL);

	wgf_wire_msg_free(reply);
	free(buf);
	free(rbuf);
}

/* Seals a hint (or a reply when reply is true), mutates it, and expects "bad signature". */
static void expect_bad_signature(mutate_fn *mutate, bool reply)
{
	static const uint8_t req_nonce[WGF_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	struct wgf_err err = {0};
	struct wgf_wire_msg *m;
	uint8_t *body, *buf;
	size_t body_len, len;

	assert_int_equal(body_hint("vps-1", 42, &body, &body_len), 0);
	assert_int_equal(wgf_wire_seal(coord.sk, agent.pk, reply ? req_nonce : NULL, NOW, body,
	                               body_len, NULL, &buf, &len),
	                 0);
	free(body);
	repack(&buf, &len, mutate);
	m = open_ok(buf, len);
	assert_int_equal(wgf_wire_verify(m, coord.pk, &err), -EBADMSG);
	assert_int_equal(err.code, -EBADMSG);
	assert_string_equal(err.msg, "bad signature");
	wgf_wire_msg_free(m);
	free(buf);
}

static void flip_body_byte(Wgfleet__V1__Envelope *env)
{
	env->body.data[env->body.len - 1] ^= 0x01;
}

static void bump_timestamp(Wgfleet__V1__Envelope *env)
{
	env->timestamp_ms++;
}

static void flip_nonce_byte(Wgfleet__V1__Envelope *env)
{
	env->nonce.data[7] ^= 0x80;
}

static void flip_recipient_byte(Wgfleet__V1__Envelope *env)
{
	env->recipient.data[0] ^= 0x01;
}

static void flip_in_reply_to_byte(Wgfleet__V1__Envelope *env)
{
	env->in_reply_to.data[15] ^= 0x01;
}

static void drop_in_reply_to(Wgfleet__V1__Envelope *env)
{
	/* The data stays allocated for free_unpacked; proto3 omits an empty field. */
	env->in_reply_to.len = 0;
}

static void flip_signature_byte(Wgfleet__V1__Envelope *env)
{
	env->signature.data[0] ^= 0x01;
}

static void test_tampered_body(void **state)
{
	(void)state;
	expect_bad_signature(flip_body_byte, false);
}

static void test_tampered_timestamp(void **state)
{
	(void)state;
	expect_bad_signature(bump_timestamp, false);
}

static void test_tampered_nonce(void **state)
{
	(void)state;
	expect_bad_signature(flip_nonce_byte, false);
}

static void test_tampered_recipient(void **state)
{
	(void)state;
	expect_bad_signature(flip_recipient_byte, false);
}

static void test_tampered_in_reply_to(void **state)
{
	(void)state;
	expect_bad_signature(flip_in_reply_to_byte, true);
}

static void test_dropped_in_reply_to(void **state)
{
	(void)state;
	expect_bad_signature(drop_in_reply_to, true);
}

static void test_tampered_signature(void **state)
{
	(void)state;
	expect_bad_signature(flip_signature_byte, false);
}

static void claim_coord_as_sender(Wgfleet__V1__Envelope *env)
{
	memcpy(env->sender.data, coord.pk, WGF_SIGN_PK_LEN);
}

static void claim_agent_as_sender(Wgfleet__V1__Envelope *env)
{
	memcpy(env->sender.data, agent.pk, WGF_SIGN_PK_LEN);
}

static void test_signed_by_another_key(void **state)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m;
	uint8_t *body, *buf;
	size_t body_len, len;

	(void)state;
	/* Mallory signs with her key and claims to be the coordinator. */
	assert_int_equal(body_hint("vps-1", 9999, &body, &body_len), 0);
	assert_int_equal(
	        wgf_wire_seal(mallory.sk, agent.pk, NULL, NOW, body, body_len, NULL, &buf, &len),
	        0);
	free(body);
	repack(&buf, &len, claim_coord_as_sender);
	m = open_ok(buf, len);
	assert_memory_equal(m->sender, coord.pk, WGF_SIGN_PK_LEN);
	assert_int_equal(wgf_wire_verify(m, coord.pk, &err), -EBADMSG);
	assert_string_equal(err.msg, "bad signature");
	wgf_wire_msg_free(m);
	free(buf);
}

static void test_unknown_sender(void **state)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_hint(&buf, &len, NULL);
	m = open_ok(buf, len);
	assert_int_equal(wgf_wire_verify(m, mallory.pk, &err), -EACCES);
	assert_int_equal(err.code, -EACCES);
	assert_string_equal(err.msg, "unknown sender");
	wgf_wire_msg_free(m);
	free(buf);
}

static void test_other_version(void **state)
{
	static const char msg[] = "protocol version 2 is not supported; this side speaks version 1";
	Wgfleet__V1__Envelope env = WGFLEET__V1__ENVELOPE__INIT;
	uint8_t nonce[WGF_NONCE_LEN], rcpt[WGF_SIGN_PK_LEN], sig[WGF_SIGNATURE_LEN];
	uint8_t zeros[WGF_SIGNATURE_LEN] = {0};
	uint8_t body[] = "a version 2 body";
	struct wgf_err err = {0};
	struct wgf_wire_msg *m = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	memset(nonce, 0x5a, sizeof(nonce));
	memset(rcpt, 0x77, sizeof(rcpt));
	memset(sig, 0x33, sizeof(sig));
	env.protocol_version = 2;
	env.sender = (ProtobufCBinaryData){WGF_SIGN_PK_LEN, agent.pk};
	env.recipient = (ProtobufCBinaryData){sizeof(rcpt), rcpt};
	env.timestamp_ms = NOW;
	env.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	env.body = (ProtobufCBinaryData){sizeof(body), body};
	env.signature = (ProtobufCBinaryData){sizeof(sig), sig};
	pack_by_hand(&env, &buf, &len);

	assert_int_equal(wgf_wire_open(buf, len, &m, &err), -EPROTONOSUPPORT);
	assert_int_equal(err.code, -EPROTONOSUPPORT);
	assert_string_equal(err.msg, msg);
	/* Enough to answer with an Error, and nothing more. */
	assert_non_null(m);
	assert_int_equal(m->version, 2);
	assert_memory_equal(m->sender, agent.pk, WGF_SIGN_PK_LEN);
	assert_memory_equal(m->nonce, nonce, WGF_NONCE_LEN);
	assert_int_equal(m->timestamp_ms, 0);
	assert_false(m->is_reply);
	assert_memory_equal(m->in_reply_to, zeros, WGF_NONCE_LEN);
	assert_memory_equal(m->recipient, zeros, WGF_SIGN_PK_LEN);
	assert_memory_equal(m->signature, zeros, WGF_SIGNATURE_LEN);
	assert_null(m->body);
	assert_int_equal(m->body_len, 0);
	wgf_wire_msg_free(m);
	free(buf);
}

static void test_other_version_odd_fields(void **state)
{
	Wgfleet__V1__Envelope env = WGFLEET__V1__ENVELOPE__INIT;
	uint8_t bytes[40], zeros[WGF_SIGN_PK_LEN] = {0};
	struct wgf_err err = {0};
	struct wgf_wire_msg *m = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	/* A future version with a longer sender, a reply: the caller must not answer. */
	memset(bytes, 0x42, sizeof(bytes));
	env.protocol_version = 7;
	env.sender = (ProtobufCBinaryData){33, bytes};
	env.nonce = (ProtobufCBinaryData){WGF_NONCE_LEN, bytes};
	env.in_reply_to = (ProtobufCBinaryData){WGF_NONCE_LEN, bytes};
	pack_by_hand(&env, &buf, &len);
	assert_int_equal(wgf_wire_open(buf, len, &m, &err), -EPROTONOSUPPORT);
	assert_string_equal(err.msg,
	                    "protocol version 7 is not supported; this side speaks version 1");
	assert_non_null(m);
	assert_int_equal(m->version, 7);
	assert_memory_equal(m->sender, zeros, WGF_SIGN_PK_LEN);
	assert_memory_equal(m->nonce, bytes, WGF_NONCE_LEN);
	assert_true(m->is_reply);
	assert_memory_equal(m->in_reply_to, bytes, WGF_NONCE_LEN);
	wgf_wire_msg_free(m);
	free(buf);

	/* An in_reply_to of another length still marks it as a reply. */
	env.in_reply_to = (ProtobufCBinaryData){3, bytes};
	pack_by_hand(&env, &buf, &len);
	m = NULL;
	assert_int_equal(wgf_wire_open(buf, len, &m, &err), -EPROTONOSUPPORT);
	assert_non_null(m);
	assert_true(m->is_reply);
	assert_memory_equal(m->in_reply_to, zeros, WGF_NONCE_LEN);
	wgf_wire_msg_free(m);
	free(buf);
}

static void test_no_version(void **state)
{
	Wgfleet__V1__Envelope env = WGFLEET__V1__ENVELOPE__INIT;
	uint8_t bytes[WGF_SIGNATURE_LEN] = {0};
	uint8_t *buf;
	size_t len;

	(void)state;
	/* Every field the right length, but no version: that is not version 0 of anything. */
	env.sender = (ProtobufCBinaryData){WGF_SIGN_PK_LEN, bytes};
	env.recipient = (ProtobufCBinaryData){WGF_SIGN_PK_LEN, bytes};
	env.nonce = (ProtobufCBinaryData){WGF_NONCE_LEN, bytes};
	env.signature = (ProtobufCBinaryData){WGF_SIGNATURE_LEN, bytes};
	pack_by_hand(&env, &buf, &len);
	open_fails(buf, len, -EBADMSG, "envelope has no protocol version");
	free(buf);
	/* The empty buffer is a valid, empty Envelope to protobuf. */
	open_fails(NULL, 0, -EBADMSG, "envelope has no protocol version");
	open_fails((const uint8_t *)"", 0, -EBADMSG, "envelope has no protocol version");
}

static void test_truncated(void **state)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_hint(&buf, &len, NULL);
	/* Every proper prefix is refused: mid-field cuts do not decode, and cuts between
	 * fields lose the signature (the last field) at least. */
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(wgf_wire_open(buf, cut, &m, &err), -EBADMSG);
		assert_null(m);
	}
	open_fails(buf, 0, -EBADMSG, "envelope has no protocol version");
	open_fails(buf, len - 1, -EBADMSG, "envelope is not a valid protobuf Envelope");
	/* The signature is the last field: a tag, a length and 64 bytes. */
	open_fails(buf, len - (2 + WGF_SIGNATURE_LEN), -EBADMSG,
	           "envelope field 'signature' is 0 bytes, expected 64");
	free(buf);
}

static void test_junk(void **state)
{
	uint8_t junk[64];

	(void)state;
	memset(junk, 0xff, sizeof(junk));
	open_fails(junk, sizeof(junk), -EBADMSG, "envelope is not a valid protobuf Envelope");
	/* A field tag of wire type 7 does not exist. */
	open_fails((const uint8_t *)"\x0f", 1, -EBADMSG,
	           "envelope is not a valid protobuf Envelope");
}

static void test_oversize(void **state)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m;
	uint8_t *big, *buf;
	size_t len;

	(void)state;
	big = calloc(1, WGF_WIRE_MSG_MAX + 1);
	assert_non_null(big);
	open_fails(big, WGF_WIRE_MSG_MAX + 1, -EMSGSIZE,
	           "envelope is 4194305 bytes, more than the 4194304 allowed");

	/* Sealing refuses what opening would refuse... */
	assert_int_equal(wgf_wire_seal(coord.sk, agent.pk, NULL, NOW, big, WGF_WIRE_MSG_MAX, NULL,
	                               &buf, &len),
	                 -EMSGSIZE);
	assert_int_equal(wgf_wire_seal(coord.sk, agent.pk, NULL, NOW, big, WGF_WIRE_MSG_MAX + 1,
	                               NULL, &buf, &len),
	                 -EMSGSIZE);

	/* ...and a body just under the limit goes through both. */
	big[0] = 0x55;
	assert_int_equal(wgf_wire_seal(coord.sk, agent.pk, NULL, NOW, big, WGF_WIRE_MSG_MAX - 256,
	                               NULL, &buf, &len),
	                 0);
	assert_true(len <= WGF_WIRE_MSG_MAX);
	m = open_ok(buf, len);
	assert_int_equal(m->body_len, WGF_WIRE_MSG_MAX - 256);
	assert_int_equal(m->body[0], 0x55);
	assert_int_equal(wgf_wire_verify(m, coord.pk, &err), 0);
	wgf_wire_msg_free(m);
	free(buf);
	free(big);
}

/* The lengths of a hand-built version 1 envelope; the right ones unless changed. */
struct lens {
	size_t sender, recipient, nonce, in_reply_to, signature;
};

static void open_with_lens(const struct lens *l, int r, const char *msg)
{
	static uint8_t bytes[128];
	Wgfleet__V1__Envelope env = WGFLEET__V1__ENVELOPE__INIT;
	uint8_t *buf;
	size_t len;

	memset(bytes, 0x11, sizeof(bytes));
	env.protocol_version = WGF_PROTOCOL_VERSION;
	env.sender = (ProtobufCBinaryData){l->sender, bytes};
	env.recipient = (ProtobufCBinaryData){l->recipient, bytes};
	env.timestamp_ms = NOW;
	env.nonce = (ProtobufCBinaryData){l->nonce, bytes};
	env.in_reply_to = (ProtobufCBinaryData){l->in_reply_to, bytes};
	env.body = (ProtobufCBinaryData){4, bytes};
	env.signature = (ProtobufCBinaryData){l->signature, bytes};
	pack_by_hand(&env, &buf, &len);
	if (r == 0) {
		struct wgf_wire_msg *m = open_ok(buf, len);

		assert_int_equal(m->is_reply, l->in_reply_to == WGF_NONCE_LEN);
		wgf_wire_msg_free(m);
	} else {
		open_fails(buf, len, r, msg);
	}
	free(buf);
}

static void test_field_lengths(void **state)
{
	static const struct {
		struct lens lens;
		const char *msg;
	} cases[] = {
	        {{32, 32, 16, 0, 64}, NULL},
	        {{32, 32, 16, 16, 64}, NULL},
	        {{31, 32, 16, 0, 64}, "envelope field 'sender' is 31 bytes, expected 32"},
	        {{33, 32, 16, 0, 64}, "envelope field 'sender' is 33 bytes, expected 32"},
	        {{0, 32, 16, 0, 64}, "envelope field 'sender' is 0 bytes, expected 32"},
	        {{32, 0, 16, 0, 64}, "envelope field 'recipient' is 0 bytes, expected 32"},
	        {{32, 64, 16, 0, 64}, "envelope field 'recipient' is 64 bytes, expected 32"},
	        {{32, 32, 15, 0, 64}, "envelope field 'nonce' is 15 bytes, expected 16"},
	        {{32, 32, 0, 0, 64}, "envelope field 'nonce' is 0 bytes, expected 16"},
	        {{32, 32, 16, 8, 64}, "envelope field 'in_reply_to' is 8 bytes, expected 0 or 16"},
	        {{32, 32, 16, 17, 64},
	         "envelope field 'in_reply_to' is 17 bytes, expected 0 or 16"},
	        {{32, 32, 16, 0, 63}, "envelope field 'signature' is 63 bytes, expected 64"},
	        {{32, 32, 16, 0, 65}, "envelope field 'signature' is 65 bytes, expected 64"},
	        {{32, 32, 16, 0, 0}, "envelope field 'signature' is 0 bytes, expected 64"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		open_with_lens(&cases[i].lens, cases[i].msg ? -EBADMSG : 0, cases[i].msg);
}

static void test_misaddressed(void **state)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_hint(&buf, &len, NULL);
	m = open_ok(buf, len);
	/* Validly signed, but for the agent: the coordinator and Mallory refuse it. */
	assert_int_equal(wgf_wire_verify(m, coord.pk, &err), 0);
	assert_int_equal(wgf_wire_check_addressed(m, mallory.pk, &err), -EXDEV);
	assert_int_equal(err.code, -EXDEV);
	assert_string_equal(err.msg, "envelope is addressed to another key");
	assert_int_equal(wgf_wire_check_addressed(m, coord.pk, NULL), -EXDEV);
	assert_int_equal(wgf_wire_check_addressed(m, agent.pk, NULL), 0);
	wgf_wire_msg_free(m);
	free(buf);
}

static void test_stale_and_future(void **state)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_hint(&buf, &len, NULL);
	m = open_ok(buf, len);

	/* The window is inclusive on both sides. */
	assert_int_equal(wgf_wire_check_fresh(m, NOW + SKEW, SKEW, &err), 0);
	assert_int_equal(wgf_wire_check_fresh(m, NOW - SKEW, SKEW, &err), 0);
	assert_int_equal(err.code, 0);

	assert_int_equal(wgf_wire_check_fresh(m, NOW + SKEW + 1, SKEW, &err), -ESTALE);
	assert_int_equal(err.code, -ESTALE);
	assert_string_equal(err.msg, "envelope is 30001 ms old, more than the 30000 ms allowed");

	assert_int_equal(wgf_wire_check_fresh(m, NOW - SKEW - 1, SKEW, &err), -ESTALE);
	assert_string_equal(
	        err.msg,
	        "envelope is dated 30001 ms in the future, more than the 30000 ms allowed");

	assert_int_equal(wgf_wire_check_fresh(m, NOW, 0, &err), 0);
	assert_int_equal(wgf_wire_check_fresh(m, NOW + 1, 0, &err), -ESTALE);
	wgf_wire_msg_free(m);
	free(buf);
}

static void test_fresh_extremes(void **state)
{
	struct wgf_wire_msg m = {.version = WGF_PROTOCOL_VERSION};
	struct wgf_err err = {0};

	(void)state;
	/* Nothing overflows at the ends of the clock. */
	m.timestamp_ms = UINT64_MAX;
	assert_int_equal(wgf_wire_check_fresh(&m, 0, UINT64_MAX, &err), 0);
	assert_int_equal(wgf_wire_check_fresh(&m, 0, SKEW, &err), -ESTALE);
	assert_string_equal(err.msg,
	                    "envelope is dated 18446744073709551615 ms in the future, more "
	                    "than the 30000 ms allowed");
	assert_int_equal(wgf_wire_check_fresh(&m, UINT64_MAX - SKEW, SKEW, &err), 0);
	m.timestamp_ms = 0;
	assert_int_equal(wgf_wire_check_fresh(&m, UINT64_MAX, SKEW, &err), -ESTALE);
	assert_string_equal(
	        err.msg, "envelope is 18446744073709551615 ms old, more than the 30000 ms allowed");
	assert_int_equal(wgf_wire_check_fresh(&m, SKEW, SKEW, &err), 0);
}

static void test_seal_arguments(void **state)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(wgf_wire_seal(coord.sk, agent.pk, NULL, NOW, NULL, 5, NULL, &buf, &len),
	                 -EINVAL);
	assert_null(buf);
	assert_int_equal(len, 0);
}

static void test_body_helpers(void **state)
{
	Wgfleet__V1__Body *b;
	uint8_t *body = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(body_hint("", 1, &body, &len), -EINVAL);
	assert_int_equal(wgf_body_encode_error(WGF_WIRE_ERROR_UNSPECIFIED, "x", &body, &len),
	                 -EINVAL);
	assert_int_equal(wgf_body_encode_error((enum wgf_wire_error_code)9, "x", &body, &len),
	                 -EINVAL);
	assert_null(body);

	assert_int_equal(
	        wgf_body_encode_error(WGF_WIRE_ERROR_UNSUPPORTED_VERSION, NULL, &body, &len), 0);
	assert_int_equal(body_kind(body, len), WGF_WIRE_KIND_ERROR);
	b = wgfleet__v1__body__unpack(NULL, len, body);
	assert_non_null(b);
	assert_int_equal(b->error->code, WGFLEET__V1__ERROR__CODE__CODE_UNSUPPORTED_VERSION);
	assert_string_equal(b->error->message, "");
	assert_int_equal(b->error->supported_version, WGF_PROTOCOL_VERSION);
	wgfleet__v1__body__free_unpacked(b, NULL);
	free(body);

	/* A revision of 0 packs to a Hint with only a server. */
	assert_int_equal(body_hint("s", 0, &body, &len), 0);
	assert_int_equal(body_kind(body, len), WGF_WIRE_KIND_HINT);
	free(body);
}

static void test_body_kind(void **state)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff};
	/* Field 9, a varint: a kind added by a later version. */
	static const uint8_t unknown_kind[] = {0x48, 0x01};
	/* Field 1 (hint) declared 10 bytes long, with 1 present. */
	static const uint8_t cut_hint[] = {0x0a, 0x0a, 0x0a};

	(void)state;
	assert_int_equal(body_kind(NULL, 0), -ENOTSUP);
	assert_int_equal(body_kind(unknown_kind, sizeof(unknown_kind)), -ENOTSUP);
	assert_int_equal(body_kind(junk, sizeof(junk)), -EBADMSG);
	assert_int_equal(body_kind(cut_hint, sizeof(cut_hint)), -EBADMSG);
	assert_int_equal(body_kind(NULL, 3), -EINVAL);

	/* The tag scan reads the same kinds without decoding, and refuses bad framing. */
	assert_int_equal(wgf_wire_body_peek_kind(NULL, 0), WGF_WIRE_KIND_NONE);
	assert_int_equal(wgf_wire_body_peek_kind(unknown_kind, sizeof(unknown_kind)),
	                 WGF_WIRE_KIND_NONE);
	assert_int_equal(wgf_wire_body_peek_kind(junk, sizeof(junk)), -EBADMSG);
	assert_int_equal(wgf_wire_body_peek_kind(cut_hint, sizeof(cut_hint)), -EBADMSG);
	assert_int_equal(wgf_wire_body_peek_kind(NULL, 3), -EBADMSG);
}

static void test_body_peek_kind(void **state)
{
	/* Field 4 (an empty report), then field 1 (an empty hint): the last one wins. */
	static const uint8_t two[] = {0x22, 0x00, 0x0a, 0x00};
	uint8_t *body = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(body_hint("vps-a", 7, &body, &len), 0);
	assert_int_equal(wgf_wire_body_peek_kind(body, len), WGF_WIRE_KIND_HINT);
	assert_int_equal(wgf_wire_body_peek_kind(body, len - 1), -EBADMSG);
	free(body);
	assert_int_equal(wgf_body_encode_error(WGF_WIRE_ERROR_STALE, "old", &body, &len), 0);
	assert_int_equal(wgf_wire_body_peek_kind(body, len), WGF_WIRE_KIND_ERROR);
	free(body);
	assert_int_equal(wgf_wire_body_peek_kind(two, sizeof(two)), WGF_WIRE_KIND_HINT);
	/* The decoder agrees on the kind, and refuses a Hint that names no server. */
	assert_int_equal(body_kind(two, sizeof(two)), -EBADMSG);
}

static void test_msg_free_null(void **state)
{
	(void)state;
	wgf_wire_msg_free(NULL);
}

/* ---- wgf_wire_accept() ---- */

/* A receiver that knows one sender and remembers the nonces it took. */
struct rx_state {
	const uint8_t *known; /* the registered key, or NULL */
	size_t body_max;
	bool over_rate; /* admit() says no */
	unsigned admits;
	int kind_seen;
	unsigned finds, takes;
	uint8_t seen[8][WGF_NONCE_LEN];
	size_t n_seen;
};

static const uint8_t *rx_find(void *ctx, const struct wgf_wire_msg *m, int kind,
                              size_t *ret_body_max)
{
	struct rx_state *st = ctx;

	st->finds++;
	st->kind_seen = kind;
	if (!st->known || memcmp(m->sender, st->known, WGF_SIGN_PK_LEN) != 0)
		return NULL;
	*ret_body_max = st->body_max;
	return st->known;
}

static bool rx_admit(void *ctx, const struct wgf_wire_msg *m)
{
	struct rx_state *st = ctx;

	assert_memory_equal(m->sender, st->known, WGF_SIGN_PK_LEN);
	st->admits++;
	return !st->over_rate;
}

static bool rx_take(void *ctx, const struct wgf_wire_msg *m)
{
	struct rx_state *st = ctx;

	st->takes++;
	for (size_t i = 0; i < st->n_seen; i++)
		if (memcmp(st->seen[i], m->nonce, WGF_NONCE_LEN) == 0)
			return false;
	assert_true(st->n_seen < 8);
	memcpy(st->seen[st->n_seen++], m->nonce, WGF_NONCE_LEN);
	return true;
}

/* The coordinator's receiver: agent registered, requests' nonces remembered. */
static struct wgf_wire_receiver coord_rx(struct rx_state *st)
{
	*st = (struct rx_state){.known = agent.pk, .body_max = 4096};
	return (struct wgf_wire_receiver){.me = coord.pk,
	                                  .max_skew_ms = SKEW,
	                                  .find_sender = rx_find,
	                                  .take_nonce = rx_take,
	                                  .ctx = st};
}

/* An agent's receiver for the answer to the request whose nonce is reply_to. */
static struct wgf_wire_receiver agent_rx(struct rx_state *st, const uint8_t *reply_to)
{
	*st = (struct rx_state){.known = coord.pk, .body_max = WGF_WIRE_MSG_MAX};
	return (struct wgf_wire_receiver){.me = agent.pk,
	                                  .max_skew_ms = SKEW,
	                                  .find_sender = rx_find,
	                                  .reply_to = reply_to,
	                                  .ctx = st};
}

/* A SyncRequest for vps-1 since 40, encoded. */
static void body_sync_request(uint8_t **ret, size_t *ret_len)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_SYNC_REQUEST};

	snprintf(b.sync_request.server, sizeof(b.sync_request.server), "vps-1");
	b.sync_request.since_revision = 40;
	assert_int_equal(wgf_body_encode(&b, ret, ret_len, NULL), 0);
}

/* An envelope from `from` to `to` carrying body (NULL: a SyncRequest), sealed at at. */
static void seal_from(const struct party *from, const uint8_t *to, const uint8_t *in_reply_to,
                      uint64_t at, const uint8_t *body, size_t body_len, uint8_t **ret,
                      size_t *ret_len)
{
	uint8_t *own = NULL;

	if (!body) {
		body_sync_request(&own, &body_len);
		body = own;
	}
	assert_int_equal(
	        wgf_wire_seal(from->sk, to, in_reply_to, at, body, body_len, NULL, ret, ret_len),
	        0);
	free(own);
}

struct accepted {
	int r;
	enum wgf_wire_refusal why;
	struct wgf_wire_msg *m;
	struct wgf_body body;
	struct wgf_err err;
};

static struct accepted accept_at(const struct wgf_wire_receiver *rx, const uint8_t *buf, size_t len,
                                 uint64_t now)
{
	struct accepted a = {.why = WGF_WIRE_REFUSAL__COUNT};

	memset(&a.body, 0xa5, sizeof(a.body));
	a.r = wgf_wire_accept(rx, buf, len, now, &a.m, &a.body, &a.why, &a.err);
	if (a.r < 0)
		assert_int_equal(a.err.code, a.r);
	return a;
}

static void accepted_fini(struct accepted *a)
{
	if (a->r == 0)
		wgf_body_fini(&a->body);
	wgf_wire_msg_free(a->m);
}

/* Accepts buf at NOW and expects refusal why with code r and message msg. */
static void expect_refusal(const struct wgf_wire_receiver *rx, const uint8_t *buf, size_t len,
                           int r, enum wgf_wire_refusal why, const char *msg)
{
	struct accepted a = accept_at(rx, buf, len, NOW);
	struct wgf_body canary;

	assert_int_equal(a.r, r);
	assert_int_equal(a.why, why);
	if (msg)
		assert_string_equal(a.err.msg, msg);
	/* The body is written on success only. */
	memset(&canary, 0xa5, sizeof(canary));
	assert_memory_equal(&a.body, &canary, sizeof(canary));
	accepted_fini(&a);
}

static void test_accept_request(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	struct accepted a;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_from(&agent, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	a = accept_at(&rx, buf, len, NOW + SKEW);
	assert_int_equal(a.r, 0);
	assert_int_equal(a.why, WGF_WIRE_ACCEPTED);
	assert_non_null(a.m);
	assert_memory_equal(a.m->sender, agent.pk, WGF_SIGN_PK_LEN);
	assert_int_equal(a.body.kind, WGF_WIRE_KIND_SYNC_REQUEST);
	assert_string_equal(a.body.sync_request.server, "vps-1");
	assert_int_equal(a.body.sync_request.since_revision, 40);
	assert_int_equal(st.kind_seen, WGF_WIRE_KIND_SYNC_REQUEST);
	assert_int_equal(st.finds, 1);
	assert_int_equal(st.takes, 1);
	accepted_fini(&a);
	free(buf);
}

static void test_accept_unreadable(void **state)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	struct accepted a;

	(void)state;
	a = accept_at(&rx, junk, sizeof(junk), NOW);
	assert_int_equal(a.r, -EBADMSG);
	assert_int_equal(a.why, WGF_WIRE_UNREADABLE);
	assert_null(a.m);
	assert_false(wgf_wire_answerable(a.m, a.why));
	a = accept_at(&rx, junk, WGF_WIRE_MSG_MAX + 1, NOW); /* not read at all */
	assert_int_equal(a.r, -EMSGSIZE);
	assert_int_equal(a.why, WGF_WIRE_UNREADABLE);
	assert_null(a.m);
	assert_int_equal(st.finds, 0);
}

static void set_version_2(Wgfleet__V1__Envelope *env)
{
	env->protocol_version = 2;
}

static void test_accept_other_version(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	struct accepted a;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_from(&agent, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	repack(&buf, &len, set_version_2);
	a = accept_at(&rx, buf, len, NOW);
	assert_int_equal(a.r, -EPROTONOSUPPORT);
	assert_int_equal(a.why, WGF_WIRE_VERSION);
	assert_non_null(a.m);
	assert_int_equal(a.m->version, 2);
	assert_int_equal(st.kind_seen, WGF_WIRE_KIND_NONE);
	assert_true(wgf_wire_answerable(a.m, a.why));
	accepted_fini(&a);
	/* From a key nobody registered: unknown, and not worth an answer. */
	st.known = mallory.pk;
	a = accept_at(&rx, buf, len, NOW);
	assert_int_equal(a.r, -EPROTONOSUPPORT);
	assert_int_equal(a.why, WGF_WIRE_UNKNOWN_SENDER);
	assert_false(wgf_wire_answerable(a.m, a.why));
	accepted_fini(&a);
	free(buf);
}

static void test_accept_unknown_sender(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	struct accepted a;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_from(&mallory, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	a = accept_at(&rx, buf, len, NOW);
	assert_int_equal(a.r, -EACCES);
	assert_int_equal(a.why, WGF_WIRE_UNKNOWN_SENDER);
	assert_string_equal(a.err.msg, "the sender's key is not one this side knows");
	assert_non_null(a.m);
	/* Of this version, a stranger may be told (at a rate the caller bounds). */
	assert_true(wgf_wire_answerable(a.m, a.why));
	assert_int_equal(st.takes, 0);
	accepted_fini(&a);
	free(buf);
}

static void test_accept_too_large_before_signature(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	uint8_t *buf;
	size_t len, body_len;
	uint8_t *body;

	(void)state;
	body_sync_request(&body, &body_len);
	seal_from(&agent, coord.pk, NULL, NOW, body, body_len, &buf, &len);
	st.body_max = body_len - 1;
	expect_refusal(&rx, buf, len, -EMSGSIZE, WGF_WIRE_TOO_LARGE, NULL);
	/* The size is bounded before the signature is checked. */
	repack(&buf, &len, flip_signature_byte);
	expect_refusal(&rx, buf, len, -EMSGSIZE, WGF_WIRE_TOO_LARGE, NULL);
	st.body_max = body_len;
	expect_refusal(&rx, buf, len, -EBADMSG, WGF_WIRE_BAD_SIGNATURE, "bad signature");
	assert_int_equal(st.takes, 0);
	free(body);
	free(buf);
}

static void test_accept_rate_limited_before_body_and_signature(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	uint8_t *buf;
	size_t len;

	(void)state;
	rx.admit = rx_admit;
	seal_from(&agent, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	st.over_rate = true;
	expect_refusal(&rx, buf, len, -EBUSY, WGF_WIRE_RATE_LIMITED,
	               "this sender sent more messages than it may; slow down");
	/* Neither a body too large nor a bad signature is looked at first. */
	st.body_max = 1;
	repack(&buf, &len, flip_signature_byte);
	expect_refusal(&rx, buf, len, -EBUSY, WGF_WIRE_RATE_LIMITED, NULL);
	assert_int_equal(st.admits, 2);
	assert_int_equal(st.takes, 0);
	/* Within the rate, the checks go on as before. */
	st.over_rate = false;
	expect_refusal(&rx, buf, len, -EMSGSIZE, WGF_WIRE_TOO_LARGE, NULL);
	st.body_max = 4096;
	expect_refusal(&rx, buf, len, -EBADMSG, WGF_WIRE_BAD_SIGNATURE, "bad signature");
	free(buf);
	/* A stranger is refused as unknown and admit() never sees it. */
	seal_from(&mallory, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	expect_refusal(&rx, buf, len, -EACCES, WGF_WIRE_UNKNOWN_SENDER, NULL);
	assert_int_equal(st.admits, 4);
	free(buf);
}

static void test_accept_bad_signature(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_from(&agent, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	repack(&buf, &len, flip_body_byte);
	expect_refusal(&rx, buf, len, -EBADMSG, WGF_WIRE_BAD_SIGNATURE, "bad signature");
	free(buf);
	/* Mallory signs and names the agent as the sender: her signature gives her away. */
	seal_from(&mallory, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	repack(&buf, &len, claim_agent_as_sender);
	expect_refusal(&rx, buf, len, -EBADMSG, WGF_WIRE_BAD_SIGNATURE, "bad signature");
	assert_int_equal(st.takes, 0);
	free(buf);
}

static void test_accept_misaddressed(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_from(&agent, mallory.pk, NULL, NOW, NULL, 0, &buf, &len);
	expect_refusal(&rx, buf, len, -EXDEV, WGF_WIRE_MISADDRESSED,
	               "envelope is addressed to another key");
	/* Checked before freshness: a stale, misaddressed envelope is misaddressed. */
	free(buf);
	seal_from(&agent, mallory.pk, NULL, NOW - 10 * SKEW, NULL, 0, &buf, &len);
	expect_refusal(&rx, buf, len, -EXDEV, WGF_WIRE_MISADDRESSED, NULL);
	assert_int_equal(st.takes, 0);
	free(buf);
}

static void test_accept_stale(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	struct accepted a;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_from(&agent, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	a = accept_at(&rx, buf, len, NOW + SKEW + 1);
	assert_int_equal(a.r, -ESTALE);
	assert_int_equal(a.why, WGF_WIRE_STALE);
	assert_string_equal(a.err.msg, "envelope is 30001 ms old, more than the 30000 ms allowed");
	accepted_fini(&a);
	a = accept_at(&rx, buf, len, NOW - SKEW - 1);
	assert_int_equal(a.why, WGF_WIRE_STALE);
	accepted_fini(&a);
	/* A nonce is taken only once the envelope is fresh: it still counts later. */
	assert_int_equal(st.takes, 0);
	a = accept_at(&rx, buf, len, NOW);
	assert_int_equal(a.r, 0);
	accepted_fini(&a);
	free(buf);
}

static void test_accept_replayed_request(void **state)
{
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	struct accepted a;
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_from(&agent, coord.pk, NULL, NOW, NULL, 0, &buf, &len);
	a = accept_at(&rx, buf, len, NOW);
	assert_int_equal(a.r, 0);
	accepted_fini(&a);
	expect_refusal(&rx, buf, len, -EALREADY, WGF_WIRE_REPLAY, "this message was seen before");
	assert_int_equal(st.takes, 2);
	free(buf);
}

static void test_accept_answer_bound_to_request(void **state)
{
	static const uint8_t asked[WGF_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
	static const uint8_t other[WGF_NONCE_LEN] = {9, 9, 9};
	struct rx_state st;
	struct wgf_wire_receiver rx = agent_rx(&st, asked);
	struct accepted a;
	uint8_t *body, *buf;
	size_t body_len, len;

	(void)state;
	assert_int_equal(body_hint("vps-1", 42, &body, &body_len), 0);
	/* Not an answer at all. */
	seal_from(&coord, agent.pk, NULL, NOW, body, body_len, &buf, &len);
	expect_refusal(&rx, buf, len, -EBADMSG, WGF_WIRE_REPLAY,
	               "the answer is not bound to our request");
	free(buf);
	/* An answer to another request (an old one replayed, say). */
	seal_from(&coord, agent.pk, other, NOW, body, body_len, &buf, &len);
	expect_refusal(&rx, buf, len, -EBADMSG, WGF_WIRE_REPLAY,
	               "the answer is not bound to our request");
	free(buf);
	seal_from(&coord, agent.pk, asked, NOW, body, body_len, &buf, &len);
	a = accept_at(&rx, buf, len, NOW);
	assert_int_equal(a.r, 0);
	assert_true(a.m->is_reply);
	assert_int_equal(a.body.kind, WGF_WIRE_KIND_HINT);
	assert_int_equal(a.body.hint.revision, 42);
	accepted_fini(&a);
	/* Answers are matched, not remembered: take_nonce is for requests. */
	rx.take_nonce = rx_take;
	a = accept_at(&rx, buf, len, NOW);
	assert_int_equal(a.r, 0);
	accepted_fini(&a);
	assert_int_equal(st.takes, 0);
	free(buf);
	free(body);
}

static void test_accept_bad_body(void **state)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff};
	static const uint8_t unknown_kind[] = {0x4a, 0x00};
	/* Field 1 (a Hint) holding field 2 (revision 5) and no server. */
	static const uint8_t no_server[] = {0x0a, 0x02, 0x10, 0x05};
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	uint8_t *buf;
	size_t len;

	(void)state;
	seal_from(&agent, coord.pk, NULL, NOW, no_server, sizeof(no_server), &buf, &len);
	expect_refusal(&rx, buf, len, -EBADMSG, WGF_WIRE_BAD_BODY, "the body names no server");
	free(buf);
	seal_from(&agent, coord.pk, NULL, NOW, unknown_kind, sizeof(unknown_kind), &buf, &len);
	expect_refusal(&rx, buf, len, -ENOTSUP, WGF_WIRE_BAD_BODY,
	               "a body of a kind this version does not know");
	free(buf);
	/* Framing that does not hold is refused before the signature is checked. */
	seal_from(&agent, coord.pk, NULL, NOW, junk, sizeof(junk), &buf, &len);
	repack(&buf, &len, flip_signature_byte);
	expect_refusal(&rx, buf, len, -EBADMSG, WGF_WIRE_BAD_BODY,
	               "the body is not a valid protobuf Body");
	assert_int_equal(st.kind_seen, WGF_WIRE_KIND_NONE);
	free(buf);
}

static void test_accept_out_of_memory(void **state)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_REPORT};
	struct wgf_peer_facts facts[2] = {{.rx_bytes = 1}, {.tx_bytes = 2}};
	struct rx_state st;
	struct wgf_wire_receiver rx = coord_rx(&st);
	struct accepted a;
	uint8_t *body, *buf;
	size_t body_len, len;
	unsigned n;

	(void)state;
	snprintf(b.report.server, sizeof(b.report.server), "vps-1");
	b.report.facts = facts;
	b.report.n_facts = 2;
	assert_int_equal(wgf_body_encode(&b, &body, &body_len, NULL), 0);
	seal_from(&agent, coord.pk, NULL, NOW, body, body_len, &buf, &len);
	/* Each allocation in turn fails: always -ENOMEM and "unreadable", never a refusal
	 * that blames the sender. */
	for (n = 1; n < 100; n++) {
		st.n_seen = 0;
		fail_in = n;
		a = accept_at(&rx, buf, len, NOW);
		fail_in = 0;
		if (a.r == 0)
			break;
		assert_int_equal(a.r, -ENOMEM);
		assert_int_equal(a.why, WGF_WIRE_UNREADABLE);
		accepted_fini(&a);
	}
	assert_int_equal(a.body.report.n_facts, 2);
	accepted_fini(&a);
	assert_true(n > 3); /* the envelope, its body, the signed bytes, the arrays */
	free(body);
	free(buf);
}

static void test_answerable(void **state)
{
	struct wgf_wire_msg m = {.version = WGF_PROTOCOL_VERSION};

	(void)state;
	assert_false(wgf_wire_answerable(NULL, WGF_WIRE_BAD_SIGNATURE));
	/* Without a nonce there is nothing to bind an answer to. */
	assert_false(wgf_wire_answerable(&m, WGF_WIRE_BAD_SIGNATURE));
	m.nonce[3] = 1;
	for (int why = WGF_WIRE_VERSION; why < WGF_WIRE_REFUSAL__COUNT; why++)
		assert_true(wgf_wire_answerable(&m, (enum wgf_wire_refusal)why));
	assert_false(wgf_wire_answerable(&m, WGF_WIRE_UNREADABLE));
	/* Another version from a stranger: no answer; from a known key: one. */
	m.version = 2;
	assert_false(wgf_wire_answerable(&m, WGF_WIRE_UNKNOWN_SENDER));
	assert_true(wgf_wire_answerable(&m, WGF_WIRE_VERSION));
	/* Never an answer to an answer (it may be an Error). */
	m.version = WGF_PROTOCOL_VERSION;
	m.is_reply = true;
	for (int why = WGF_WIRE_ACCEPTED; why < WGF_WIRE_REFUSAL__COUNT; why++)
		assert_false(wgf_wire_answerable(&m, (enum wgf_wire_refusal)why));
}

static void test_refusal_names_and_codes(void **state)
{
	static const struct {
		enum wgf_wire_refusal why;
		const char *name;
		enum wgf_wire_error_code code;
	} cases[] = {
	        {WGF_WIRE_ACCEPTED, "accepted", WGF_WIRE_ERROR_UNSPECIFIED},
	        {WGF_WIRE_UNREADABLE, "unreadable", WGF_WIRE_ERROR_UNSPECIFIED},
	        {WGF_WIRE_VERSION, "unsupported_version", WGF_WIRE_ERROR_UNSUPPORTED_VERSION},
	        {WGF_WIRE_UNKNOWN_SENDER, "unknown_sender", WGF_WIRE_ERROR_UNKNOWN_SENDER},
	        {WGF_WIRE_RATE_LIMITED, "rate_limited", WGF_WIRE_ERROR_INTERNAL},
	        {WGF_WIRE_TOO_LARGE, "too_large", WGF_WIRE_ERROR_BAD_REQUEST},
	        {WGF_WIRE_BAD_SIGNATURE, "bad_signature", WGF_WIRE_ERROR_BAD_SIGNATURE},
	        {WGF_WIRE_MISADDRESSED, "misaddressed", WGF_WIRE_ERROR_MISADDRESSED},
	        {WGF_WIRE_STALE, "stale", WGF_WIRE_ERROR_STALE},
	        {WGF_WIRE_REPLAY, "replay", WGF_WIRE_ERROR_REPLAY},
	        {WGF_WIRE_BAD_BODY, "bad_body", WGF_WIRE_ERROR_BAD_REQUEST},
	        {WGF_WIRE_REFUSAL__COUNT, "unknown", WGF_WIRE_ERROR_UNSPECIFIED},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(wgf_wire_refusal_name(cases[i].why), cases[i].name);
		assert_int_equal(wgf_wire_refusal_code(cases[i].why), cases[i].code);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip_hint),
	        cmocka_unit_test(test_nonces_differ),
	        cmocka_unit_test(test_empty_body),
	        cmocka_unit_test(test_reply_bound_to_request),
	        cmocka_unit_test(test_tampered_body),
	        cmocka_unit_test(test_tampered_timestamp),
	        cmocka_unit_test(test_tampered_nonce),
	        cmocka_unit_test(test_tampered_recipient),
	        cmocka_unit_test(test_tampered_in_reply_to),
	        cmocka_unit_test(test_dropped_in_reply_to),
	        cmocka_unit_test(test_tampered_signature),
	        cmocka_unit_test(test_signed_by_another_key),
	        cmocka_unit_test(test_unknown_sender),
	        cmocka_unit_test(test_other_version),
	        cmocka_unit_test(test_other_version_odd_fields),
	        cmocka_unit_test(test_no_version),
	        cmocka_unit_test(test_truncated),
	        cmocka_unit_test(test_junk),
	        cmocka_unit_test(test_oversize),
	        cmocka_unit_test(test_field_lengths),
	        cmocka_unit_test(test_misaddressed),
	        cmocka_unit_test(test_stale_and_future),
	        cmocka_unit_test(test_fresh_extremes),
	        cmocka_unit_test(test_seal_arguments),
	        cmocka_unit_test(test_body_helpers),
	        cmocka_unit_test(test_body_kind),
	        cmocka_unit_test(test_body_peek_kind),
	        cmocka_unit_test(test_msg_free_null),
	        cmocka_unit_test(test_accept_request),
	        cmocka_unit_test(test_accept_rate_limited_before_body_and_signature),
	        cmocka_unit_test(test_accept_unreadable),
	        cmocka_unit_test(test_accept_other_version),
	        cmocka_unit_test(test_accept_unknown_sender),
	        cmocka_unit_test(test_accept_too_large_before_signature),
	        cmocka_unit_test(test_accept_bad_signature),
	        cmocka_unit_test(test_accept_misaddressed),
	        cmocka_unit_test(test_accept_stale),
	        cmocka_unit_test(test_accept_replayed_request),
	        cmocka_unit_test(test_accept_answer_bound_to_request),
	        cmocka_unit_test(test_accept_bad_body),
	        cmocka_unit_test(test_accept_out_of_memory),
	        cmocka_unit_test(test_answerable),
	        cmocka_unit_test(test_refusal_names_and_codes),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
