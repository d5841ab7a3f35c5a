/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* test_body: every kind of Body through the codec and back, and every way one is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"
#include "cidr.h"
#include "wgfleet.pb-c.h"

/*
 * The malformed bodies are built with the generated protobuf-c structs, since the
 * encoder refuses (or cannot express) most of them. With WGF_BODY_CORPUS set to a
 * directory, every body the round trips encode is also written there, one file each:
 * that is how tests/fuzz/corpus/body/ was made.
 */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t epoch_a[WGF_EPOCH_LEN] = {0xe0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                               0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const uint8_t no_epoch[WGF_EPOCH_LEN];

/* ---- helpers ---- */

static void save_corpus(const char *name, const uint8_t *buf, size_t len)
{
	const char *dir = getenv("WGF_BODY_CORPUS");
	char path[4096];
	FILE *f;

	if (!dir || !name)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A WireGuard key: `first`, then a pattern, so keys sort by their first byte. */
static void fill_key(uint8_t key[static WGF_KEY_LEN], uint8_t first)
{
	key[0] = first;
	for (unsigned i = 1; i < WGF_KEY_LEN; i++)
		key[i] = (uint8_t)(first * 7 + i);
}

static struct wgf_cidr cidr(const char *text)
{
	struct wgf_cidr c;

	assert_int_equal(wgf_cidr_parse(&c, text, 0, NULL), 0);
	return c;
}

/* The allowed IPs of the peers make_peer builds; reachable until exit. */
static struct wgf_ip_pool test_ips;

/* A peer with key `first`, keepalive and up to 8 allowed IPs (a NULL-ended list). */
static struct wgf_peer make_peer(uint8_t first, uint16_t keepalive, const char *const *ips)
{
	struct wgf_peer p = {.persistent_keepalive = keepalive};

	fill_key(p.public_key, first);
	for (; ips && *ips; ips++) {
		struct wgf_cidr c = cidr(*ips);

		assert_int_equal(wgf_peer_add_allowed_ip(&test_ips, &p, &c), 0);
	}
	return p;
}

static void assert_cidr_equal(const struct wgf_cidr *a, const struct wgf_cidr *b)
{
	char ta[WGF_CIDR_STRLEN], tb[WGF_CIDR_STRLEN];

	wgf_cidr_format(a, ta);
	wgf_cidr_format(b, tb);
	assert_string_equal(ta, tb);
	assert_int_equal(a->addr.family, b->addr.family);
}

/* What the wire carries of a peer: key, allowed IPs (in order) and keepalive. */
static void assert_peer_equal(const struct wgf_peer *a, const struct wgf_peer *b)
{
	assert_memory_equal(a->public_key, b->public_key, WGF_KEY_LEN);
	assert_int_equal(a->n_allowed_ips, b->n_allowed_ips);
	for (unsigned i = 0; i < a->n_allowed_ips; i++)
		assert_cidr_equal(&a->allowed_ips[i], &b->allowed_ips[i]);
	assert_int_equal(a->persistent_keepalive, b->persistent_keepalive);
	assert_int_equal(!!(b->flags & WGF_PEER_HAS_KEEPALIVE), b->persistent_keepalive != 0);
}

/* Encodes in (saving it to the corpus as name), decodes it into *out. */
static void round_trip(const struct wgf_body *in, const char *name, struct wgf_body *out)
{
	struct wgf_err err = {0};
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_int_equal(wgf_body_encode(in, &buf, &len, &err), 0);
	assert_int_equal(err.code, 0);
	assert_non_null(buf);
	save_corpus(name, buf, len);
	assert_int_equal(wgf_wire_body_peek_kind(buf, len), (int)in->kind);
	assert_int_equal(wgf_body_decode(buf, len, out, &err), 0);
	assert_int_equal(err.code, 0);
	assert_int_equal(out->kind, in->kind);
	free(buf);
}

/* Packs a hand-built Body; the caller frees *ret. */
static void pack_pb(const Wgfleet__V1__Body *b, uint8_t **ret, size_t *ret_len)
{
	size_t len = wgfleet__v1__body__get_packed_size(b);

	*ret = malloc(len ? len : 1);
	assert_non_null(*ret);
	assert_int_equal(wgfleet__v1__body__pack(b, *ret), len);
	*ret_len = len;
}

/* Decodes buf expecting failure code with message msg, and *ret untouched. */
static void decode_bytes_fails(const uint8_t *buf, size_t len, int code, const char *msg)
{
	struct wgf_body out, canary;
	struct wgf_err err = {0};

	memset(&out, 0xa5, sizeof(out));
	memset(&canary, 0xa5, sizeof(canary));
	assert_int_equal(wgf_body_decode(buf, len, &out, &err), code);
	assert_int_equal(err.code, code);
	if (msg)
		assert_string_equal(err.msg, msg);
	assert_memory_equal(&out, &canary, sizeof(out));
}

static void decode_fails(const Wgfleet__V1__Body *b, int code, const char *msg)
{
	uint8_t *buf;
	size_t len;

	pack_pb(b, &buf, &len);
	decode_bytes_fails(buf, len, code, msg);
	free(buf);
}

/* Decodes a hand-built Body that must be fine; the caller finis *out. */
static void decode_pb_ok(const Wgfleet__V1__Body *b, struct wgf_body *out)
{
	struct wgf_err err = {0};
	uint8_t *buf;
	size_t len;

	pack_pb(b, &buf, &len);
	assert_int_equal(wgf_body_decode(buf, len, out, &err), 0);
	assert_string_equal(err.msg, "");
	free(buf);
}

static void encode_fails(const struct wgf_body *b, int code, const char *msg)
{
	struct wgf_err err = {0};
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_int_equal(wgf_body_encode(b, &buf, &len, &err), code);
	assert_int_equal(err.code, code);
	assert_string_equal(err.msg, msg);
	assert_null(buf);
	assert_int_equal(len, 0);
}

/* ---- round trips ---- */

static void test_hint_coordinator_to_agent(void **state)
{
	struct wgf_body in = {.kind = WGF_WIRE_KIND_HINT}, out;

	(void)state;
	snprintf(in.hint.server, sizeof(in.hint.server), "vps-a");
	in.hint.revision = UINT64_MAX;
	memcpy(in.hint.epoch, epoch_a, WGF_EPOCH_LEN);
	round_trip(&in, "hint-coordinator", &out);
	assert_string_equal(out.hint.server, "vps-a");
	assert_true(out.hint.revision == UINT64_MAX);
	assert_memory_equal(out.hint.epoch, epoch_a, WGF_EPOCH_LEN);
	assert_false(wgf_epoch_is_none(out.hint.epoch));
	wgf_body_fini(&out);
}

/* The answer to a report: the released keys, in order; an empty list is a list too. */
static void test_hint_with_released_keys(void **state)
{
	struct wgf_body in = {.kind = WGF_WIRE_KIND_HINT}, out;
	uint8_t keys[2][WGF_KEY_LEN];
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Hint h = WGFLEET__V1__HINT__INIT;
	ProtobufCBinaryData pk[2];

	(void)state;
	fill_key(keys[0], 1);
	fill_key(keys[1], 2);
	snprintf(in.hint.server, sizeof(in.hint.server), "vps-a");
	in.hint.revision = 7;
	in.hint.has_released = true;
	in.hint.released = keys;
	in.hint.n_released = 2;
	round_trip(&in, "hint-released", &out);
	assert_true(out.hint.has_released);
	assert_int_equal(out.hint.n_released, 2);
	assert_memory_equal(out.hint.released, keys, sizeof(keys));
	wgf_body_fini(&out);
	in.hint.n_released = 0;
	round_trip(&in, NULL, &out);
	assert_true(out.hint.has_released);
	assert_int_equal(out.hint.n_released, 0);
	wgf_body_fini(&out);

	h.server = "vps-a";
	pk[0] = (ProtobufCBinaryData){WGF_KEY_LEN, keys[1]};
	pk[1] = (ProtobufCBinaryData){WGF_KEY_LEN, keys[0]};
	h.released = pk;
	h.n_released = 2;
	b.kind_case = WGFLEET__V1__BODY__KIND_HINT;
	b.hint = &h;
	decode_fails(&b, -EBADMSG, "released keys in a hint that lists none");
	h.released_listed = true;
	decode_fails(&b, -EBADMSG, "released key 1: keys out of order");
	pk[1] = (ProtobufCBinaryData){31, keys[0]};
	decode_fails(&b, -EBADMSG, "released key 1: public key is 31 bytes, expected 32");
}

static void test_hint_agent_to_coordinator(void **state)
{
	struct wgf_body in = {.kind = WGF_WIRE_KIND_HINT}, out;

	(void)state;
	/* A new agent: revision 0, no epoch; and a name of the longest length. */
	memset(in.hint.server, 'n', WGF_SERVER_NAME_MAX);
	round_trip(&in, "hint-agent-new", &out);
	assert_int_equal(strlen(out.hint.server), WGF_SERVER_NAME_MAX);
	assert_string_equal(out.hint.server, in.hint.server);
	assert_int_equal(out.hint.revision, 0);
	assert_memory_equal(out.hint.epoch, no_epoch, WGF_EPOCH_LEN);
	assert_true(wgf_epoch_is_none(out.hint.epoch));
	wgf_body_fini(&out);
}

static void test_sync_request(void **state)
{
	struct wgf_body in = {.kind = WGF_WIRE_KIND_SYNC_REQUEST}, out;
	struct wgf_sync_request *sr = &in.sync_request;
	uint8_t zeros[WGF_KEY_LEN] = {0};

	(void)state;
	snprintf(sr->server, sizeof(sr->server), "vps-b");
	sr->since_revision = 41;
	memcpy(sr->epoch, epoch_a, WGF_EPOCH_LEN);
	round_trip(&in, "sync-request", &out);
	assert_string_equal(out.sync_request.server, "vps-b");
	assert_int_equal(out.sync_request.since_revision, 41);
	assert_false(out.sync_request.want_snapshot);
	assert_memory_equal(out.sync_request.epoch, epoch_a, WGF_EPOCH_LEN);
	assert_int_equal(out.sync_request.page_base, 0);
	assert_memory_equal(out.sync_request.page_after, zeros, WGF_KEY_LEN);
	wgf_body_fini(&out);

	/* The next page of a snapshot, asked for with a snapshot wanted. */
	sr->want_snapshot = true;
	sr->page_base = 40;
	fill_key(sr->page_after, 0x99);
	round_trip(&in, "sync-request-page", &out);
	assert_true(out.sync_request.want_snapshot);
	assert_int_equal(out.sync_request.page_base, 40);
	assert_memory_equal(out.sync_request.page_after, sr->page_after, WGF_KEY_LEN);
	wgf_body_fini(&out);

	/* A page_after without a page_base is not sent at all. */
	sr->page_base = 0;
	memset(sr->epoch, 0, WGF_EPOCH_LEN);
	round_trip(&in, "sync-request-no-epoch", &out);
	assert_int_equal(out.sync_request.page_base, 0);
	assert_memory_equal(out.sync_request.page_after, zeros, WGF_KEY_LEN);
	assert_true(wgf_epoch_is_none(out.sync_request.epoch));
	wgf_body_fini(&out);
}

static void check_reply(const struct wgf_sync_reply *in, const struct wgf_sync_reply *out)
{
	assert_string_equal(out->server, in->server);
	assert_memory_equal(out->epoch, in->epoch, WGF_EPOCH_LEN);
	assert_int_equal(out->revision, in->revision);
	assert_int_equal(out->snapshot, in->snapshot);
	assert_int_equal(out->page_base, in->page_base);
	assert_int_equal(out->more, in->more);
	assert_int_equal(out->n_peers, in->n_peers);
	for (size_t i = 0; i < in->n_peers; i++)
		assert_peer_equal(&in->peers[i], &out->peers[i]);
	assert_int_equal(out->n_changes, in->n_changes);
	for (size_t i = 0; i < in->n_changes; i++) {
		assert_int_equal(out->changes[i].op, in->changes[i].op);
		assert_int_equal(out->changes[i].revision, in->changes[i].revision);
		if (in->changes[i].op == WGF_CHANGE_REMOVE) {
			/* A removal carries the key alone. */
			assert_memory_equal(out->changes[i].peer.public_key,
			                    in->changes[i].peer.public_key, WGF_KEY_LEN);
			assert_int_equal(out->changes[i].peer.n_allowed_ips, 0);
		} else {
			assert_peer_equal(&in->changes[i].peer, &out->changes[i].peer);
		}
	}
	assert_int_equal(out->n_routable, in->n_routable);
	for (size_t i = 0; i < in->n_routable; i++)
		assert_cidr_equal(&in->routable[i], &out->routable[i]);
}

static void test_sync_reply_snapshot_page(void **state)
{
	static const char *const ips_a[] = {"10.100.0.2/32", "fd00:100::2/128", NULL};
	static const char *const ips_b[] = {"10.100.0.3/32", NULL};
	static const char *const ips_c[] = {"10.100.0.4/32", "10.200.0.0/16", "fd00::/64",
	                                    "192.168.7.0/24", NULL};
	static const char *const ips_d[] = {"10.100.0.9/32", NULL};
	struct wgf_peer peers[3];
	struct wgf_change changes[2] = {{.op = WGF_CHANGE_UPSERT, .revision = 12},
	                                {.op = WGF_CHANGE_REMOVE, .revision = 13}};
	struct wgf_cidr routable[2];
	struct wgf_body in = {.kind = WGF_WIRE_KIND_SYNC_REPLY}, out;
	struct wgf_sync_reply *r = &in.sync_reply;

	(void)state;
	peers[0] = make_peer(0x10, 25, ips_a);
	peers[1] = make_peer(0x20, 0, ips_b);
	peers[2] = make_peer(0x30, 65535, ips_c);
	changes[0].peer = make_peer(0x40, 25, ips_d);
	changes[1].peer = make_peer(0x20, 0, NULL);
	routable[0] = cidr("10.100.0.0/24");
	routable[1] = cidr("fd00:100::/64");
	snprintf(r->server, sizeof(r->server), "vps-a");
	memcpy(r->epoch, epoch_a, WGF_EPOCH_LEN);
	r->revision = 13;
	r->snapshot = true;
	r->page_base = 11;
	r->more = true;
	r->peers = peers;
	r->n_peers = ARRAY_SIZE(peers);
	r->routable = routable;
	r->n_routable = ARRAY_SIZE(routable);
	round_trip(&in, "sync-reply-first-page", &out);
	check_reply(r, &out.sync_reply);
	wgf_body_fini(&out);

	/* The last page: more peers, no more pages, the changes since page_base. */
	r->more = false;
	r->peers = peers + 2;
	r->n_peers = 1;
	r->changes = changes;
	r->n_changes = ARRAY_SIZE(changes);
	round_trip(&in, "sync-reply-last-page", &out);
	check_reply(r, &out.sync_reply);
	wgf_body_fini(&out);
}

static void test_sync_reply_deltas(void **state)
{
	static const char *const ips[] = {"10.100.0.7/32", NULL};
	struct wgf_change changes[3] = {{.op = WGF_CHANGE_UPSERT, .revision = 42},
	                                {.op = WGF_CHANGE_REMOVE, .revision = 43},
	                                {.op = WGF_CHANGE_UPSERT, .revision = 43}};
	struct wgf_cidr routable = cidr("10.100.0.0/24");
	struct wgf_body in = {.kind = WGF_WIRE_KIND_SYNC_REPLY}, out;
	struct wgf_sync_reply *r = &in.sync_reply;

	(void)state;
	changes[0].peer = make_peer(0x07, 25, ips);
	changes[1].peer = make_peer(0x07, 0, NULL);
	changes[2].peer = make_peer(0x08, 0, ips);
	snprintf(r->server, sizeof(r->server), "vps-a");
	memcpy(r->epoch, epoch_a, WGF_EPOCH_LEN);
	r->revision = 43;
	r->changes = changes;
	r->n_changes = ARRAY_SIZE(changes);
	r->routable = &routable;
	r->n_routable = 1;
	round_trip(&in, "sync-reply-deltas", &out);
	check_reply(r, &out.sync_reply);
	wgf_body_fini(&out);

	/* An agent that is current: no changes at all. */
	r->n_changes = 0;
	round_trip(&in, "sync-reply-current", &out);
	check_reply(r, &out.sync_reply);
	wgf_body_fini(&out);
}

static void test_report(void **state)
{
	struct wgf_apply_error errors[2] = {{.revision = 9}, {.revision = 9}};
	struct wgf_peer_facts facts[2] = {
	        {.last_handshake_ms = 1795000000123, .rx_bytes = 100, .tx_bytes = UINT64_MAX},
	        {.last_handshake_ms = 0, .rx_bytes = 0, .tx_bytes = 0}};
	struct wgf_drift drift[3] = {{.kind = WGF_DRIFT_EXTRA},
	                             {.kind = WGF_DRIFT_MISSING},
	                             {.kind = WGF_DRIFT_CHANGED}};
	struct wgf_body in = {.kind = WGF_WIRE_KIND_REPORT}, out;
	struct wgf_report *r = &in.report;

	(void)state;
	fill_key(errors[0].public_key, 1);
	snprintf(errors[0].reason, sizeof(errors[0].reason), "allowed IPs overlap");
	fill_key(errors[1].public_key, 2);
	fill_key(facts[0].public_key, 3);
	snprintf(facts[0].endpoint, sizeof(facts[0].endpoint), "[2001:db8::1]:51820");
	fill_key(facts[1].public_key, 4);
	for (unsigned i = 0; i < ARRAY_SIZE(drift); i++)
		fill_key(drift[i].public_key, (uint8_t)(5 + i));
	snprintf(r->server, sizeof(r->server), "vps-a");
	memcpy(r->epoch, epoch_a, WGF_EPOCH_LEN);
	r->applied_revision = 9;
	r->errors = errors;
	r->n_errors = ARRAY_SIZE(errors);
	r->facts = facts;
	r->n_facts = ARRAY_SIZE(facts);
	r->drift = drift;
	r->n_drift = ARRAY_SIZE(drift);
	r->has_interface_key = true;
	fill_key(r->interface_public_key, 0xee);
	r->listen_port = 65535;
	snprintf(r->cache_error, sizeof(r->cache_error), "desired.json: No space left on device");
	round_trip(&in, "report", &out);

	assert_string_equal(out.report.server, "vps-a");
	assert_memory_equal(out.report.epoch, epoch_a, WGF_EPOCH_LEN);
	assert_int_equal(out.report.applied_revision, 9);
	assert_int_equal(out.report.n_errors, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_memory_equal(out.report.errors[i].public_key, errors[i].public_key,
		                    WGF_KEY_LEN);
		assert_int_equal(out.report.errors[i].revision, 9);
		assert_string_equal(out.report.errors[i].reason, errors[i].reason);
	}
	assert_int_equal(out.report.n_facts, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct wgf_peer_facts *f = &out.report.facts[i];

		assert_memory_equal(f->public_key, facts[i].public_key, WGF_KEY_LEN);
		assert_true(f->last_handshake_ms == facts[i].last_handshake_ms);
		assert_string_equal(f->endpoint, facts[i].endpoint);
		assert_true(f->rx_bytes == facts[i].rx_bytes);
		assert_true(f->tx_bytes == facts[i].tx_bytes);
	}
	assert_int_equal(out.report.n_drift, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_memory_equal(out.report.drift[i].public_key, drift[i].public_key,
		                    WGF_KEY_LEN);
		assert_int_equal(out.report.drift[i].kind, drift[i].kind);
	}
	assert_true(out.report.has_interface_key);
	assert_memory_equal(out.report.interface_public_key, r->interface_public_key, WGF_KEY_LEN);
	assert_int_equal(out.report.listen_port, 65535);
	assert_string_equal(out.report.cache_error, r->cache_error);
	wgf_body_fini(&out);
}

static void test_report_minimal(void **state)
{
	struct wgf_body in = {.kind = WGF_WIRE_KIND_REPORT}, out;

	(void)state;
	/* Nothing known yet: no epoch, no interface key, no port, nothing to say. */
	snprintf(in.report.server, sizeof(in.report.server), "vps-a");
	round_trip(&in, "report-minimal", &out);
	assert_true(wgf_epoch_is_none(out.report.epoch));
	assert_int_equal(out.report.applied_revision, 0);
	assert_false(out.report.has_interface_key);
	assert_int_equal(out.report.listen_port, 0);
	assert_string_equal(out.report.cache_error, "");
	assert_int_equal(out.report.n_errors + out.report.n_facts + out.report.n_drift, 0);
	wgf_body_fini(&out);
}

static void test_error(void **state)
{
	struct wgf_body in = {.kind = WGF_WIRE_KIND_ERROR}, out;

	(void)state;
	in.error.code = WGF_WIRE_ERROR_STALE;
	snprintf(in.error.message, sizeof(in.error.message), "envelope is 5 ms old");
	in.error.supported_version = 77; /* not sent: an Error names its sender's version */
	round_trip(&in, "error", &out);
	assert_int_equal(out.error.code, WGF_WIRE_ERROR_STALE);
	assert_string_equal(out.error.message, "envelope is 5 ms old");
	assert_int_equal(out.error.supported_version, WGF_PROTOCOL_VERSION);
	wgf_body_fini(&out);

	in.error.code = WGF_WIRE_ERROR_INTERNAL;
	in.error.message[0] = '\0';
	round_trip(&in, "error-empty", &out);
	assert_int_equal(out.error.code, WGF_WIRE_ERROR_INTERNAL);
	assert_string_equal(out.error.message, "");
	wgf_body_fini(&out);
}

static void test_error_unknown_code(void **state)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Error e = WGFLEET__V1__ERROR__INIT;
	struct wgf_body out;

	(void)state;
	/* A code from a later version is read as unspecified, not refused. */
	e.code = (Wgfleet__V1__Error__Code)42;
	e.message = "from the future";
	e.supported_version = 3;
	b.kind_case = WGFLEET__V1__BODY__KIND_ERROR;
	b.error = &e;
	decode_pb_ok(&b, &out);
	assert_int_equal(out.kind, WGF_WIRE_KIND_ERROR);
	assert_int_equal(out.error.code, WGF_WIRE_ERROR_UNSPECIFIED);
	assert_string_equal(out.error.message, "from the future");
	assert_int_equal(out.error.supported_version, 3);
	wgf_body_fini(&out);
}

/* ---- hand-built bodies to break ---- */

/* A valid snapshot page of n peers (keys 0x10, 0x20, ...; one IP each), one change. */
struct pb_reply {
	Wgfleet__V1__Body body;
	Wgfleet__V1__SyncReply reply;
	Wgfleet__V1__Peer peers[10], change_peer;
	Wgfleet__V1__Peer *peerp[10];
	Wgfleet__V1__PeerChange change;
	Wgfleet__V1__PeerChange *changep[1];
	uint8_t keys[10][WGF_KEY_LEN], change_key[WGF_KEY_LEN], epoch[WGF_EPOCH_LEN];
	char ip_text[10][WGF_CIDR_STRLEN];
	char *ips[10][10];
	char *routable[1];
};

static void pb_reply_init(struct pb_reply *p, size_t n_peers)
{
	memset(p, 0, sizeof(*p));
	wgfleet__v1__body__init(&p->body);
	wgfleet__v1__sync_reply__init(&p->reply);
	p->body.kind_case = WGFLEET__V1__BODY__KIND_SYNC_REPLY;
	p->body.sync_reply = &p->reply;
	p->reply.server = "vps-a";
	p->reply.revision = 20;
	p->reply.snapshot = true;
	p->reply.page_base = 19;
	memcpy(p->epoch, epoch_a, WGF_EPOCH_LEN);
	p->reply.epoch = (ProtobufCBinaryData){WGF_EPOCH_LEN, p->epoch};
	for (size_t i = 0; i < n_peers; i++) {
		wgfleet__v1__peer__init(&p->peers[i]);
		fill_key(p->keys[i], (uint8_t)(0x10 * (i + 1)));
		p->peers[i].public_key = (ProtobufCBinaryData){WGF_KEY_LEN, p->keys[i]};
		snprintf(p->ip_text[i], sizeof(p->ip_text[i]), "10.100.0.%zu/32", i + 2);
		p->ips[i][0] = p->ip_text[i];
		p->peers[i].allowed_ips = p->ips[i];
		p->peers[i].n_allowed_ips = 1;
		p->peers[i].persistent_keepalive = 25;
		p->peerp[i] = &p->peers[i];
	}
	p->reply.peers = p->peerp;
	p->reply.n_peers = n_peers;
	wgfleet__v1__peer__init(&p->change_peer);
	fill_key(p->change_key, 0xf0);
	p->change_peer.public_key = (ProtobufCBinaryData){WGF_KEY_LEN, p->change_key};
	wgfleet__v1__peer_change__init(&p->change);
	p->change.op = WGFLEET__V1__PEER_CHANGE__OP__OP_REMOVE;
	p->change.revision = 20;
	p->change.peer = &p->change_peer;
	p->changep[0] = &p->change;
	p->reply.changes = p->changep;
	p->reply.n_changes = 1;
	p->routable[0] = "10.100.0.0/24";
	p->reply.routable = p->routable;
	p->reply.n_routable = 1;
}

static void test_pb_reply_is_valid(void **state)
{
	struct pb_reply p;
	struct wgf_body out;

	(void)state;
	pb_reply_init(&p, 3);
	decode_pb_ok(&p.body, &out);
	assert_int_equal(out.sync_reply.n_peers, 3);
	assert_int_equal(out.sync_reply.n_changes, 1);
	assert_int_equal(out.sync_reply.n_routable, 1);
	wgf_body_fini(&out);
}

static void test_refuses_short_key(void **state)
{
	struct pb_reply p;

	(void)state;
	pb_reply_init(&p, 2);
	p.peers[1].public_key.len = 31;
	decode_fails(&p.body, -EBADMSG, "peer 1: public key is 31 bytes, expected 32");
	pb_reply_init(&p, 2);
	p.change_peer.public_key.len = 33;
	decode_fails(&p.body, -EBADMSG, "change 0: public key is 33 bytes, expected 32");
}

static void test_refuses_short_epoch(void **state)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Hint h = WGFLEET__V1__HINT__INIT;
	Wgfleet__V1__SyncRequest sr = WGFLEET__V1__SYNC_REQUEST__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	uint8_t epoch[WGF_EPOCH_LEN];
	const ProtobufCBinaryData short_epoch = {WGF_EPOCH_LEN - 1, epoch};
	static const char msg[] = "epoch is 15 bytes, expected 0 or 16";
	struct pb_reply p;

	(void)state;
	memcpy(epoch, epoch_a, sizeof(epoch));
	h.server = sr.server = rep.server = "vps-a";
	h.epoch = sr.epoch = rep.epoch = short_epoch;
	b.kind_case = WGFLEET__V1__BODY__KIND_HINT;
	b.hint = &h;
	decode_fails(&b, -EBADMSG, msg);
	b.kind_case = WGFLEET__V1__BODY__KIND_SYNC_REQUEST;
	b.sync_request = &sr;
	decode_fails(&b, -EBADMSG, msg);
	b.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
	b.report = &rep;
	decode_fails(&b, -EBADMSG, msg);
	pb_reply_init(&p, 1);
	p.reply.epoch.len = 15;
	decode_fails(&p.body, -EBADMSG, msg);
	p.reply.epoch.len = 17;
	decode_fails(&p.body, -EBADMSG, "epoch is 17 bytes, expected 0 or 16");
}

static void test_refuses_host_bits(void **state)
{
	struct pb_reply p;

	(void)state;
	pb_reply_init(&p, 1);
	p.ips[0][0] = "10.100.0.7/24";
	decode_fails(&p.body, -EBADMSG,
	             "peer 0: '10.100.0.7/24' has host bits set; the network is 10.100.0.0/24");
	/* A bare address is not CIDR text either. */
	p.ips[0][0] = "10.100.0.7";
	decode_fails(&p.body, -EBADMSG, "peer 0: '10.100.0.7' has no prefix length (such as /24)");
	pb_reply_init(&p, 1);
	p.routable[0] = "fd00::1/64";
	decode_fails(
	        &p.body, -EBADMSG,
	        "routable network 0: 'fd00::1/64' has host bits set; the network is fd00::/64");
}

static void test_refuses_nine_allowed_ips(void **state)
{
	struct pb_reply p;
	char text[9][WGF_CIDR_STRLEN];
	struct wgf_body out;

	(void)state;
	pb_reply_init(&p, 1);
	for (unsigned i = 0; i < 9; i++) {
		snprintf(text[i], sizeof(text[i]), "10.%u.0.0/16", i);
		p.ips[0][i] = text[i];
	}
	p.peers[0].n_allowed_ips = 8;
	decode_pb_ok(&p.body, &out);
	assert_int_equal(out.sync_reply.peers[0].n_allowed_ips, 8);
	wgf_body_fini(&out);
	p.peers[0].n_allowed_ips = 9;
	decode_fails(&p.body, -EBADMSG, "peer 0 has 9 allowed IPs, more than 8");
}

static void test_refuses_large_keepalive(void **state)
{
	struct pb_reply p;
	struct wgf_body out;

	(void)state;
	pb_reply_init(&p, 1);
	p.peers[0].persistent_keepalive = 65535;
	decode_pb_ok(&p.body, &out);
	assert_int_equal(out.sync_reply.peers[0].persistent_keepalive, 65535);
	wgf_body_fini(&out);
	p.peers[0].persistent_keepalive = 70000;
	decode_fails(&p.body, -EBADMSG, "peer 0: keepalive 70000 is more than 65535");
}

static void test_refuses_change_without_op(void **state)
{
	struct pb_reply p;

	(void)state;
	pb_reply_init(&p, 1);
	p.change.op = WGFLEET__V1__PEER_CHANGE__OP__OP_UNSPECIFIED;
	decode_fails(&p.body, -EBADMSG, "change 0 has no known operation");
	p.change.op = (Wgfleet__V1__PeerChange__Op)3;
	decode_fails(&p.body, -EBADMSG, "change 0 has no known operation");
	pb_reply_init(&p, 1);
	p.change.peer = NULL;
	decode_fails(&p.body, -EBADMSG, "change 0 has no peer");
}

static void test_refuses_changes_out_of_order(void **state)
{
	struct pb_reply p;

	(void)state;
	pb_reply_init(&p, 1);
	p.change.revision = 21; /* past the reply's revision */
	decode_fails(&p.body, -EBADMSG, "change 0: revision 21 is out of order");
	p.change.revision = 0;
	decode_fails(&p.body, -EBADMSG, "change 0: revision 0 is out of order");
}

static void test_refuses_drift_kind(void **state)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	Wgfleet__V1__Drift d = WGFLEET__V1__DRIFT__INIT, *dp = &d;
	uint8_t key[WGF_KEY_LEN];
	struct wgf_body out;

	(void)state;
	fill_key(key, 1);
	d.public_key = (ProtobufCBinaryData){WGF_KEY_LEN, key};
	d.kind = WGFLEET__V1__DRIFT__KIND__KIND_CHANGED_PEER;
	rep.server = "vps-a";
	rep.drift = &dp;
	rep.n_drift = 1;
	b.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
	b.report = &rep;
	decode_pb_ok(&b, &out);
	assert_int_equal(out.report.drift[0].kind, WGF_DRIFT_CHANGED);
	wgf_body_fini(&out);
	d.kind = (Wgfleet__V1__Drift__Kind)7;
	decode_fails(&b, -EBADMSG, "drift 0 has no known kind");
	d.kind = WGFLEET__V1__DRIFT__KIND__KIND_UNSPECIFIED;
	decode_fails(&b, -EBADMSG, "drift 0 has no known kind");
}

static void test_refuses_report_fields(void **state)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	Wgfleet__V1__PeerFacts f = WGFLEET__V1__PEER_FACTS__INIT, *fp = &f;
	uint8_t key[WGF_KEY_LEN];

	(void)state;
	fill_key(key, 1);
	rep.server = "vps-a";
	b.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
	b.report = &rep;
	rep.listen_port = 65536;
	decode_fails(&b, -EBADMSG, "listen port 65536 is more than 65535");
	rep.listen_port = 0;
	rep.interface_public_key = (ProtobufCBinaryData){31, key};
	decode_fails(&b, -EBADMSG, "interface 0: public key is 31 bytes, expected 32");
	rep.interface_public_key = (ProtobufCBinaryData){0, NULL};
	f.public_key = (ProtobufCBinaryData){WGF_KEY_LEN, key};
	f.last_handshake_ms = -1;
	rep.peers = &fp;
	rep.n_peers = 1;
	decode_fails(&b, -EBADMSG, "peer facts 0: handshake time is negative");
}

/*
 * A report's unknown peers go through whole, in key order; one with every field at its
 * largest fits WGF_UNKNOWN_PEER_WIRE_MAX, the bound the coordinator's body cap counts on.
 */
static void test_report_unknown_peers(void **state)
{
	struct wgf_unknown_peer unknown[2];
	struct wgf_body in = {.kind = WGF_WIRE_KIND_REPORT}, out;
	struct wgf_report *r = &in.report;
	struct wgf_err err = {0};
	uint8_t *buf, *big;
	size_t len, big_len;

	(void)state;
	memset(unknown, 0, sizeof(unknown));
	unknown[0].last_handshake_ms = 1795000000123;
	snprintf(r->server, sizeof(r->server), "vps-a");
	fill_key(unknown[0].public_key, 1);
	assert_int_equal(wgf_cidr_parse(&unknown[0].allowed_ips[0], "10.100.0.7/32", 0, NULL), 0);
	assert_int_equal(wgf_cidr_parse(&unknown[0].allowed_ips[1], "fd00::/64", 0, NULL), 0);
	unknown[0].n_allowed_ips = 2;
	snprintf(unknown[0].endpoint, sizeof(unknown[0].endpoint), "192.0.2.1:51820");
	fill_key(unknown[1].public_key, 2);
	r->has_unknown = true;
	r->unknown = unknown;
	r->n_unknown = 2;
	r->n_unknown_total = 5;
	round_trip(&in, "report-unknown", &out);
	assert_true(out.report.has_unknown);
	assert_int_equal(out.report.n_unknown, 2);
	assert_int_equal(out.report.n_unknown_total, 5);
	assert_memory_equal(out.report.unknown[0].public_key, unknown[0].public_key, WGF_KEY_LEN);
	assert_int_equal(out.report.unknown[0].n_allowed_ips, 2);
	assert_int_equal(out.report.unknown[0].allowed_ips[1].prefix, 64);
	assert_int_equal(out.report.unknown[0].last_handshake_ms, 1795000000123);
	assert_string_equal(out.report.unknown[0].endpoint, "192.0.2.1:51820");
	assert_int_equal(out.report.unknown[1].n_allowed_ips, 0);
	wgf_body_fini(&out);

	/* One peer at its largest costs at most the bound over an empty list. */
	r->n_unknown = 0;
	assert_int_equal(wgf_body_encode(&in, &buf, &len, &err), 0);
	unknown[0].last_handshake_ms = INT64_MAX;
	memset(unknown[0].endpoint, '9', sizeof(unknown[0].endpoint) - 1);
	unknown[0].endpoint[sizeof(unknown[0].endpoint) - 1] = '\0';
	for (unsigned i = 0; i < WGF_PEER_ALLOWED_IPS_MAX; i++)
		assert_int_equal(wgf_cidr_parse(&unknown[0].allowed_ips[i],
		                                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 0,
		                                NULL),
		                 0);
	unknown[0].n_allowed_ips = WGF_PEER_ALLOWED_IPS_MAX;
	r->n_unknown = 1;
	assert_int_equal(wgf_body_encode(&in, &big, &big_len, &err), 0);
	assert_true(big_len - len <= WGF_UNKNOWN_PEER_WIRE_MAX);
	free(buf);
	free(big);
}

static void test_refuses_unknown_peers(void **state)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	Wgfleet__V1__UnknownPeer u[2], *up[2] = {&u[0], &u[1]};
	char *ips[1] = {"10.100.0.7/24"};
	uint8_t keys[2][WGF_KEY_LEN];

	(void)state;
	for (int i = 0; i < 2; i++) {
		wgfleet__v1__unknown_peer__init(&u[i]);
		fill_key(keys[i], (uint8_t)(i + 1));
		u[i].public_key = (ProtobufCBinaryData){WGF_KEY_LEN, keys[i]};
	}
	rep.server = "vps-a";
	b.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
	b.report = &rep;
	rep.unknown_peers = up;
	rep.n_unknown_peers = 2;
	rep.unknown_total = 2;
	decode_fails(&b, -EBADMSG, "unknown peers in a report that lists none");
	rep.unknown_listed = true;
	rep.unknown_total = 1;
	decode_fails(&b, -EBADMSG, "unknown_total is less than the peers listed");
	rep.unknown_total = 2;
	up[0] = &u[1];
	up[1] = &u[0];
	decode_fails(&b, -EBADMSG, "unknown peer 1: keys out of order");
	up[0] = &u[0];
	up[1] = &u[1];
	u[1].allowed_ips = ips;
	u[1].n_allowed_ips = 1;
	decode_fails(&b, -EBADMSG, NULL);
	u[1].n_allowed_ips = 0;
	u[0].last_handshake_ms = -1;
	decode_fails(&b, -EBADMSG, "unknown peer 0: handshake time is negative");
}

static void test_refuses_server_names(void **state)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Hint h = WGFLEET__V1__HINT__INIT;
	char name[WGF_SERVER_NAME_MAX + 2];
	struct pb_reply p;

	(void)state;
	b.kind_case = WGFLEET__V1__BODY__KIND_HINT;
	b.hint = &h;
	decode_fails(&b, -EBADMSG, "the body names no server");
	memset(name, 's', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	h.server = name;
	decode_fails(&b, -EBADMSG, "server name is 64 bytes, more than 63");
	pb_reply_init(&p, 1);
	p.reply.server = "";
	decode_fails(&p.body, -EBADMSG, "the body names no server");
}

static void test_refuses_peers_out_of_order(void **state)
{
	struct pb_reply p;

	(void)state;
	pb_reply_init(&p, 3);
	memcpy(p.keys[2], p.keys[0], WGF_KEY_LEN);
	decode_fails(&p.body, -EBADMSG, "peer 2 is out of key order");
	/* A key twice is out of order too. */
	memcpy(p.keys[2], p.keys[1], WGF_KEY_LEN);
	decode_fails(&p.body, -EBADMSG, "peer 2 is out of key order");
}

static void test_refuses_deltas_with_snapshot_fields(void **state)
{
	static const char msg[] = "a reply of deltas carries snapshot fields";
	struct pb_reply p;
	struct wgf_body out;

	(void)state;
	pb_reply_init(&p, 0);
	p.reply.snapshot = false;
	p.reply.page_base = 0;
	decode_pb_ok(&p.body, &out);
	assert_false(out.sync_reply.snapshot);
	wgf_body_fini(&out);
	p.reply.page_base = 3;
	decode_fails(&p.body, -EBADMSG, msg);
	p.reply.page_base = 0;
	p.reply.more = true;
	decode_fails(&p.body, -EBADMSG, msg);
	pb_reply_init(&p, 1);
	p.reply.snapshot = false;
	p.reply.page_base = 0;
	decode_fails(&p.body, -EBADMSG, msg);
}

static void test_refuses_changes_before_the_last_page(void **state)
{
	struct pb_reply p;

	(void)state;
	pb_reply_init(&p, 2);
	p.reply.more = true;
	decode_fails(&p.body, -EBADMSG, "a snapshot page that is not the last has changes");
}

static void test_refuses_page_after_without_base(void **state)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__SyncRequest sr = WGFLEET__V1__SYNC_REQUEST__INIT;
	uint8_t key[WGF_KEY_LEN];
	struct wgf_body out;

	(void)state;
	fill_key(key, 9);
	sr.server = "vps-a";
	sr.page_after = (ProtobufCBinaryData){WGF_KEY_LEN, key};
	b.kind_case = WGFLEET__V1__BODY__KIND_SYNC_REQUEST;
	b.sync_request = &sr;
	decode_fails(&b, -EBADMSG, "page_after without page_base");
	/* A page_base needs the key to continue after. */
	sr.page_base = 5;
	sr.page_after.len = 0;
	decode_fails(&b, -EBADMSG, "page_after 0: public key is 0 bytes, expected 32");
	sr.page_after.len = WGF_KEY_LEN;
	decode_pb_ok(&b, &out);
	assert_int_equal(out.sync_request.page_base, 5);
	assert_memory_equal(out.sync_request.page_after, key, WGF_KEY_LEN);
	wgf_body_fini(&out);
}

static void test_refuses_unknown_kind(void **state)
{
	/* Field 9 as a message: a kind a later version may add. */
	static const uint8_t unknown[] = {0x4a, 0x00};
	static const uint8_t junk[] = {0xff, 0xff, 0xff};

	(void)state;
	decode_bytes_fails(unknown, sizeof(unknown), -ENOTSUP,
	                   "a body of a kind this version does not know");
	decode_bytes_fails(NULL, 0, -ENOTSUP, "a body of a kind this version does not know");
	decode_bytes_fails(junk, sizeof(junk), -EBADMSG, "the body is not a valid protobuf Body");
	decode_bytes_fails(NULL, 3, -EINVAL, "no body buffer");
}

/* ---- long text ---- */

/* Decodes an Error whose message is text, and returns what is left of it. */
static void error_message(const char *text, char out[static WGF_REASON_MAX])
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Error e = WGFLEET__V1__ERROR__INIT;
	struct wgf_body body;

	e.code = WGFLEET__V1__ERROR__CODE__CODE_BAD_REQUEST;
	e.message = (char *)text;
	b.kind_case = WGFLEET__V1__BODY__KIND_ERROR;
	b.error = &e;
	decode_pb_ok(&b, &body);
	memcpy(out, body.error.message, WGF_REASON_MAX);
	wgf_body_fini(&body);
}

/* n 'a's, then tail. */
static char *text_of(size_t n, const char *tail)
{
	char *s = malloc(n + strlen(tail) + 1);

	assert_non_null(s);
	memset(s, 'a', n);
	strcpy(s + n, tail);
	return s;
}

static void test_long_text_is_cut_at_a_character(void **state)
{
	static const struct {
		size_t pad;
		const char *tail;
		size_t kept;
	} cases[] = {
	        {255, "", 255},                  /* fits exactly */
	        {256, "", 255},                  /* one byte too many */
	        {254, "\xc3\xa9zzz", 254},       /* é would straddle the cut */
	        {253, "\xc3\xa9zzz", 255},       /* é ends right at it */
	        {253, "\xe2\x82\xac", 253},      /* € straddles after its first two bytes */
	        {252, "\xe2\x82\xac", 255},      /* € fits */
	        {254, "\xf0\x9f\x94\x91x", 254}, /* a 4-byte key emoji straddles */
	        {251, "\xf0\x9f\x94\x91x", 255}, /* it fits */
	};
	char out[WGF_REASON_MAX];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *text = text_of(cases[i].pad, cases[i].tail);

		error_message(text, out);
		assert_int_equal(strlen(out), cases[i].kept);
		assert_memory_equal(out, text, cases[i].kept);
		free(text);
	}
}

static void test_long_report_text_is_cut(void **state)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	Wgfleet__V1__PeerApplyError e = WGFLEET__V1__PEER_APPLY_ERROR__INIT, *ep = &e;
	Wgfleet__V1__PeerFacts f = WGFLEET__V1__PEER_FACTS__INIT, *fp = &f;
	uint8_t key[WGF_KEY_LEN];
	char *reason = text_of(254, "\xc3\xa9 and more"), *endpoint = text_of(62, "\xc3\xa9:1");
	struct wgf_body out;

	(void)state;
	fill_key(key, 1);
	e.public_key = f.public_key = (ProtobufCBinaryData){WGF_KEY_LEN, key};
	e.reason = reason;
	f.endpoint = endpoint;
	rep.server = "vps-a";
	rep.errors = &ep;
	rep.n_errors = 1;
	rep.peers = &fp;
	rep.n_peers = 1;
	b.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
	b.report = &rep;
	decode_pb_ok(&b, &out);
	assert_int_equal(strlen(out.report.errors[0].reason), 254);
	assert_memory_equal(out.report.errors[0].reason, reason, 254);
	assert_int_equal(strlen(out.report.facts[0].endpoint), 62);
	wgf_body_fini(&out);
	free(reason);
	free(endpoint);
}

static void test_refuses_text_that_is_not_utf8(void **state)
{
	static const char *const bad[] = {
	        "\xff",             /* no sequence starts so */
	        "a\x80",            /* a stray continuation byte */
	        "\xc3",             /* a sequence cut short */
	        "\xe2\x82x",        /* a sequence broken off */
	        "\xc0\xaf",         /* '/' overlong */
	        "\xe0\x80\xaf",     /* '/' overlong, 3 bytes */
	        "\xed\xa0\x80",     /* a UTF-16 surrogate */
	        "\xf4\x90\x80\x80", /* past U+10FFFF */
	};
	static const char good[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 \xf4\x8f\xbf\xbf";
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	Wgfleet__V1__PeerApplyError e = WGFLEET__V1__PEER_APPLY_ERROR__INIT, *ep = &e;
	Wgfleet__V1__PeerFacts f = WGFLEET__V1__PEER_FACTS__INIT, *fp = &f;
	Wgfleet__V1__Error er = WGFLEET__V1__ERROR__INIT;
	uint8_t key[WGF_KEY_LEN];
	struct wgf_body out;

	(void)state;
	fill_key(key, 1);
	e.public_key = f.public_key = (ProtobufCBinaryData){WGF_KEY_LEN, key};
	rep.server = "vps-a";
	rep.errors = &ep;
	rep.peers = &fp;
	b.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
	b.report = &rep;
	e.reason = f.endpoint = (char *)good;
	rep.n_errors = rep.n_peers = 1;
	decode_pb_ok(&b, &out);
	assert_string_equal(out.report.errors[0].reason, good);
	assert_string_equal(out.report.facts[0].endpoint, good);
	wgf_body_fini(&out);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		e.reason = (char *)bad[i];
		f.endpoint = (char *)good;
		decode_fails(&b, -EBADMSG, "error 0: reason is not valid UTF-8");
		e.reason = (char *)good;
		f.endpoint = (char *)bad[i];
		decode_fails(&b, -EBADMSG, "peer facts 0: endpoint is not valid UTF-8");
		rep.server = (char *)bad[i];
		decode_fails(&b, -EBADMSG, "server name is not valid UTF-8");
		rep.server = "vps-a";
		rep.cache_error = (char *)bad[i];
		decode_fails(&b, -EBADMSG, "the cache error is not valid UTF-8");
		rep.cache_error = (char *)"";
	}
	er.code = WGFLEET__V1__ERROR__CODE__CODE_STALE;
	er.message = (char *)bad[0];
	b.kind_case = WGFLEET__V1__BODY__KIND_ERROR;
	b.error = &er;
	decode_fails(&b, -EBADMSG, "the Error's message is not valid UTF-8");
}

static void test_server_name_ends_at_nul(void **state)
{
	/* Body{hint{server: "vps-a\0x", revision: 1}}: protobuf-c reads C strings. */
	static const uint8_t body[] = {0x0a, 0x0b, 0x0a, 0x07, 'v',  'p', 's',
	                               '-',  'a',  0,    'x',  0x10, 0x01};
	struct wgf_body out;

	(void)state;
	assert_int_equal(wgf_body_decode(body, sizeof(body), &out, NULL), 0);
	assert_string_equal(out.hint.server, "vps-a");
	wgf_body_fini(&out);
}

/* ---- encoding refusals ---- */

static void test_encode_refuses(void **state)
{
	struct wgf_change change = {.op = 0, .revision = 1};
	struct wgf_body b = {.kind = WGF_WIRE_KIND_HINT};

	(void)state;
	encode_fails(&b, -EINVAL, "the body names no server");
	b.kind = WGF_WIRE_KIND_REPORT;
	encode_fails(&b, -EINVAL, "the body names no server");
	b.kind = WGF_WIRE_KIND_NONE;
	encode_fails(&b, -EINVAL, "no such kind of body");
	b.kind = (enum wgf_wire_kind)9;
	encode_fails(&b, -EINVAL, "no such kind of body");
	b.kind = WGF_WIRE_KIND_ERROR;
	encode_fails(&b, -EINVAL, "an Error needs a known code");
	b = (struct wgf_body){.kind = WGF_WIRE_KIND_SYNC_REPLY};
	snprintf(b.sync_reply.server, sizeof(b.sync_reply.server), "vps-a");
	fill_key(change.peer.public_key, 1);
	b.sync_reply.changes = &change;
	b.sync_reply.n_changes = 1;
	encode_fails(&b, -EINVAL, "change 0 has no operation");
}

static void test_encode_refuses_oversize(void **state)
{
	static const char *const ips[] = {
	        "fd00:1:2:3:4:5:6:0/112", "fd00:1:2:3:4:5:7:0/112", "fd00:1:2:3:4:5:8:0/112",
	        "fd00:1:2:3:4:5:9:0/112", "fd00:1:2:3:4:5:a:0/112", "fd00:1:2:3:4:5:b:0/112",
	        "fd00:1:2:3:4:5:c:0/112", "fd00:1:2:3:4:5:d:0/112", NULL};
	struct wgf_body b = {.kind = WGF_WIRE_KIND_SYNC_REPLY};
	size_t n = 20000;
	struct wgf_peer *peers = calloc(n, sizeof(*peers));
	struct wgf_err err = {0};
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(peers);
	peers[0] = make_peer(0, 25, ips);
	for (size_t i = 1; i < n; i++)
		peers[i] = peers[0];
	snprintf(b.sync_reply.server, sizeof(b.sync_reply.server), "vps-a");
	b.sync_reply.snapshot = true;
	b.sync_reply.peers = peers;
	b.sync_reply.n_peers = n;
	assert_int_equal(wgf_body_encode(&b, &buf, &len, &err), -EMSGSIZE);
	assert_int_equal(err.code, -EMSGSIZE);
	assert_null(buf);
	free(peers);
}

static void test_fini_zeroed(void **state)
{
	struct wgf_body b = {0};

	(void)state;
	wgf_body_fini(&b);
	b.kind = WGF_WIRE_KIND_SYNC_REPLY;
	wgf_body_fini(&b);
	b.kind = WGF_WIRE_KIND_REPORT;
	wgf_body_fini(&b);
	assert_int_equal(b.kind, WGF_WIRE_KIND_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hint_coordinator_to_agent),
	        cmocka_unit_test(test_hint_agent_to_coordinator),
	        cmocka_unit_test(test_hint_with_released_keys),
	        cmocka_unit_test(test_sync_request),
	        cmocka_unit_test(test_sync_reply_snapshot_page),
	        cmocka_unit_test(test_sync_reply_deltas),
	        cmocka_unit_test(test_report),
	        cmocka_unit_test(test_report_minimal),
	        cmocka_unit_test(test_error),
	        cmocka_unit_test(test_error_unknown_code),
	        cmocka_unit_test(test_pb_reply_is_valid),
	        cmocka_unit_test(test_refuses_short_key),
	        cmocka_unit_test(test_refuses_short_epoch),
	        cmocka_unit_test(test_refuses_host_bits),
	        cmocka_unit_test(test_refuses_nine_allowed_ips),
	        cmocka_unit_test(test_refuses_large_keepalive),
	        cmocka_unit_test(test_refuses_change_without_op),
	        cmocka_unit_test(test_refuses_changes_out_of_order),
	        cmocka_unit_test(test_refuses_drift_kind),
	        cmocka_unit_test(test_refuses_report_fields),
	        cmocka_unit_test(test_report_unknown_peers),
	        cmocka_unit_test(test_refuses_unknown_peers),
	        cmocka_unit_test(test_refuses_server_names),
	        cmocka_unit_test(test_refuses_peers_out_of_order),
	        cmocka_unit_test(test_refuses_deltas_with_snapshot_fields),
	        cmocka_unit_test(test_refuses_changes_before_the_last_page),
	        cmocka_unit_test(test_refuses_page_after_without_base),
	        cmocka_unit_test(test_refuses_unknown_kind),
	        cmocka_unit_test(test_long_text_is_cut_at_a_character),
	        cmocka_unit_test(test_long_report_text_is_cut),
	        cmocka_unit_test(test_refuses_text_that_is_not_utf8),
	        cmocka_unit_test(test_server_name_ends_at_nul),
	        cmocka_unit_test(test_encode_refuses),
	        cmocka_unit_test(test_encode_refuses_oversize),
	        cmocka_unit_test(test_fini_zeroed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
