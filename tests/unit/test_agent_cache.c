/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for agent/cache.c: the desired-state file, its errors and its round trip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "body.h"
#include "cache.h"

#define KEY_A "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
#define KEY_B "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="

static int setup(void **state)
{
	(void)state;
	return wgf_key_init();
}

static int parse(const char *text, struct cache_state *st, struct wgf_err *err)
{
	return cache_parse("d.json", text, strlen(text), st, err);
}

static void test_parse_good(void **state)
{
	static const char text[] =
	        "{\"revision\": 7, \"peers\": [\n"
	        " {\"public_key\": \"" KEY_A "\", \"allowed_ips\": [\"10.100.0.2/32\", "
	        "\"fd00:100::2/128\"], \"persistent_keepalive\": 25},\n"
	        " {\"allowed_ips\": [], \"public_key\": \"" KEY_B "\"}\n"
	        "]}\n";
	struct cache_state st;
	char cidr[WGF_CIDR_STRLEN], key[WGF_KEY_B64_LEN];

	(void)state;
	assert_int_equal(parse(text, &st, NULL), 0);
	assert_int_equal(st.revision, 7);
	assert_int_equal(st.n_peers, 2);
	wgf_key_to_base64(key, st.peers[0].public_key);
	assert_string_equal(key, KEY_A);
	assert_int_equal(st.peers[0].n_allowed_ips, 2);
	wgf_cidr_format(&st.peers[0].allowed_ips[1], cidr);
	assert_string_equal(cidr, "fd00:100::2/128");
	assert_int_equal(st.peers[0].persistent_keepalive, 25);
	wgf_key_to_base64(key, st.peers[1].public_key);
	assert_string_equal(key, KEY_B);
	assert_int_equal(st.peers[1].n_allowed_ips, 0);
	assert_int_equal(st.peers[1].persistent_keepalive, 0);
	/* A file from before epoch and routable existed: neither is known. */
	assert_false(cache_state_has_epoch(&st));
	assert_null(st.routable);
	assert_int_equal(st.n_routable, 0);
	cache_state_fini(&st);

	assert_int_equal(parse("{\"revision\":0,\"peers\":[]}", &st, NULL), 0);
	assert_int_equal(st.n_peers, 0);
	cache_state_fini(&st);
}

/* Keys that are well-formed but unusable are the sync engine's to refuse, per peer. */
static void test_unusable_keys_parse(void **state)
{
	static const char text[] =
	        "{\"revision\":1,\"peers\":["
	        "{\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"allowed_ips\":[]},"
	        "{\"public_key\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"allowed_ips\":[]}]}";
	struct cache_state st;

	(void)state;
	assert_int_equal(parse(text, &st, NULL), 0);
	assert_int_equal(st.n_peers, 2);
	assert_true(wgf_key_is_zero(st.peers[0].public_key));
	assert_int_equal(st.peers[1].public_key[0], 1);
	cache_state_fini(&st);
}

#define EPOCH "00112233445566778899aabbccddeeff"

static void test_epoch_and_routable(void **state)
{
	static const char text[] = "{\"revision\": 3, \"epoch\": \"" EPOCH "\", "
	                           "\"routable\": [\"10.100.0.0/24\", \"fd00:100::/64\"], "
	                           "\"peers\": []}";
	static const uint8_t epoch[CACHE_EPOCH_LEN] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
	                                               0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
	                                               0xcc, 0xdd, 0xee, 0xff};
	char cidr[WGF_CIDR_STRLEN];
	struct cache_state st;

	(void)state;
	assert_int_equal(parse(text, &st, NULL), 0);
	assert_true(cache_state_has_epoch(&st));
	assert_memory_equal(st.epoch, epoch, CACHE_EPOCH_LEN);
	assert_int_equal(st.n_routable, 2);
	wgf_cidr_format(&st.routable[0], cidr);
	assert_string_equal(cidr, "10.100.0.0/24");
	wgf_cidr_format(&st.routable[1], cidr);
	assert_string_equal(cidr, "fd00:100::/64");
	cache_state_fini(&st);
	assert_null(st.routable);

	/* An empty list and an all-zero epoch are the same as leaving them out. */
	assert_int_equal(parse("{\"revision\":1,\"epoch\":\"00000000000000000000000000000000\","
	                       "\"routable\":[],\"peers\":[]}",
	                       &st, NULL),
	                 0);
	assert_false(cache_state_has_epoch(&st));
	assert_null(st.routable);
	assert_int_equal(st.n_routable, 0);
	cache_state_fini(&st);
}

static void test_set_routable(void **state)
{
	struct wgf_cidr nets[CACHE_ROUTABLE_MAX + 1];
	struct cache_state st = {0};

	(void)state;
	for (size_t i = 0; i <= CACHE_ROUTABLE_MAX; i++) {
		char text[32];

		snprintf(text, sizeof(text), "10.%zu.0.0/16", i);
		assert_int_equal(wgf_cidr_parse(&nets[i], text, 0, NULL), 0);
	}
	assert_int_equal(cache_state_set_routable(&st, nets, 2), 0);
	assert_int_equal(st.n_routable, 2);
	assert_ptr_not_equal(st.routable, nets);
	assert_memory_equal(st.routable, nets, 2 * sizeof(*nets));
	assert_int_equal(cache_state_set_routable(&st, nets, CACHE_ROUTABLE_MAX + 1), -E2BIG);
	assert_int_equal(st.n_routable, 2); /* unchanged on failure */
	assert_int_equal(cache_state_set_routable(&st, nets, CACHE_ROUTABLE_MAX), 0);
	assert_int_equal(st.n_routable, CACHE_ROUTABLE_MAX);
	assert_int_equal(cache_state_set_routable(&st, NULL, 0), 0);
	assert_null(st.routable);
	assert_int_equal(st.n_routable, 0);
	cache_state_fini(&st);
}

struct bad {
	const char *text;
	int r;
	const char *msg;
};

#define PEER(fields) "{\"revision\":1,\"peers\":[" fields "]}"

static void test_parse_errors(void **state)
{
	static const struct bad cases[] = {
	        {"", -EINVAL, "d.json:1:1: parse error: premature EOF"},
	        {"{\"revision\":1,\"peers\":[]", -EINVAL,
	         "d.json:1:25: parse error: premature EOF"},
	        {"{\"revision\":1,\"peers\":[]} {}", -EINVAL,
	         "d.json:1:27: parse error: trailing garbage"},
	        {"{\"revision\":1,\n\"peers\":[}", -EINVAL,
	         "d.json:2:10: parse error: unallowed token at this point in JSON text"},
	        {"[]", -EINVAL, "d.json: not a JSON object"},
	        {"{\"peers\":[]}", -EINVAL, "d.json: revision is missing"},
	        {"{\"revision\":1}", -EINVAL, "d.json: peers is missing"},
	        {"{\"revision\":-1,\"peers\":[]}", -EINVAL,
	         "d.json: revision: not a whole number from 0 up"},
	        {"{\"revision\":\"7\",\"peers\":[]}", -EINVAL,
	         "d.json: revision: not a whole number from 0 up"},
	        {"{\"revision\":1,\"revision\":2,\"peers\":[]}", -EINVAL,
	         "d.json: revision given twice"},
	        {"{\"revision\":1,\"peers\":{}}", -EINVAL, "d.json: peers: not a list"},
	        {"{\"revision\":1,\"peers\":[],\"extra\":1}", -EINVAL,
	         "d.json: unknown field 'extra'"},
	        {"{\"revision\":1,\"epoch\":7,\"peers\":[]}", -EINVAL,
	         "d.json: epoch: not 32 lower-case hex digits"},
	        {"{\"revision\":1,\"epoch\":\"0011\",\"peers\":[]}", -EINVAL,
	         "d.json: epoch: not 32 lower-case hex digits"},
	        {"{\"revision\":1,\"epoch\":\"00112233445566778899AABBCCDDEEFF\",\"peers\":[]}",
	         -EINVAL, "d.json: epoch: not 32 lower-case hex digits"},
	        {"{\"revision\":1,\"epoch\":\"00112233445566778899aabbccddeeffa\",\"peers\":[]}",
	         -EINVAL, "d.json: epoch: not 32 lower-case hex digits"},
	        {"{\"revision\":1,\"epoch\":\"0011223344556677889 aabbccddeeff\",\"peers\":[]}",
	         -EINVAL, "d.json: epoch: not 32 lower-case hex digits"},
	        {"{\"revision\":1,\"routable\":\"10.0.0.0/8\",\"peers\":[]}", -EINVAL,
	         "d.json: routable: not a list"},
	        {"{\"revision\":1,\"routable\":[\"10.0.0.0/8\",7],\"peers\":[]}", -EINVAL,
	         "d.json: routable[1]: not a string"},
	        {"{\"revision\":1,\"routable\":[\"10.100.0.1/24\"],\"peers\":[]}", -EINVAL,
	         "d.json: routable[0]: '10.100.0.1/24' has host bits set; the network is "
	         "10.100.0.0/24"},
	        {"{\"revision\":1,\"routable\":[\"10.0.0.0/8\"],\"routable\":[],\"peers\":[]}",
	         -EINVAL, "d.json: routable given twice"},
	        {"{\"revision\":1,\"routable\":[\"10.0.0.0/8\"],\"peers\":[],\"pool\":[]}", -EINVAL,
	         "d.json: unknown field 'pool'"},
	        {PEER("7"), -EINVAL, "d.json: peers[0]: not an object"},
	        {PEER("{\"allowed_ips\":[]}"), -EINVAL, "d.json: peers[0]: public_key is missing"},
	        {PEER("{\"public_key\":\"" KEY_A "\"}"), -EINVAL,
	         "d.json: peers[0]: allowed_ips is missing"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ip\":[]}"), -EINVAL,
	         "d.json: peers[0]: unknown field 'allowed_ip'"},
	        {PEER("{\"public_key\":7,\"allowed_ips\":[]}"), -EINVAL,
	         "d.json: peers[0].public_key: not a string"},
	        {PEER("{\"public_key\":\"abc\",\"allowed_ips\":[]}"), -EINVAL,
	         "d.json: peers[0].public_key: key is 3 characters long; a WireGuard key is 44 "
	         "characters of base64"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ips\":\"10.0.0.1/32\"}"), -EINVAL,
	         "d.json: peers[0].allowed_ips: not a list"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[1]}"), -EINVAL,
	         "d.json: peers[0].allowed_ips[0]: not a string"},
	        {PEER("{\"public_key\":\"" KEY_A
	              "\",\"allowed_ips\":[\"10.0.0.0/8\",\"10.0.0.7/24\"]}"),
	         -EINVAL,
	         "d.json: peers[0].allowed_ips[1]: '10.0.0.7/24' has host bits set; the network is "
	         "10.0.0.0/24"},
	        {PEER("{\"public_key\":\"" KEY_A
	              "\",\"allowed_ips\":[\"10.0.0.1/32\",\"10.0.0.2/32\","
	              "\"10.0.0.3/32\",\"10.0.0.4/32\",\"10.0.0.5/32\",\"10.0.0.6/32\","
	              "\"10.0.0.7/32\",\"10.0.0.8/32\",\"10.0.0.9/32\"]}"),
	         -E2BIG, "d.json: peers[0].allowed_ips: more than 8 entries"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[],\"allowed_ips\":[]}"),
	         -EINVAL, "d.json: peers[0]: allowed_ips given twice"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[\"10.0.0.1/32\\u0000x\"]}"),
	         -EINVAL, "d.json: peers[0].allowed_ips[0]: holds a NUL character"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[[]]}"), -EINVAL,
	         "d.json: peers[0].allowed_ips[0]: not a string"},
	        {"{\"revision\":{\"peers\":[]},\"peers\":[]}", -EINVAL,
	         "d.json: revision: not a whole number from 0 up"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[],\"persistent_keepalive\":"
	              "65536}"),
	         -EINVAL,
	         "d.json: peers[0].persistent_keepalive: not a whole number of seconds from 0 to "
	         "65535"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[],\"persistent_keepalive\":"
	              "2.5}"),
	         -EINVAL,
	         "d.json: peers[0].persistent_keepalive: not a whole number of seconds from 0 to "
	         "65535"},
	        {PEER("{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[]},{\"public_key\":\"" KEY_B
	              "\",\"allowed_ips\":[\"10.0.0.1\"]}"),
	         -EINVAL, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cache_state st = {.revision = 99};
		struct wgf_err err = {0};

		assert_int_equal(parse(cases[i].text, &st, &err), cases[i].r);
		if (cases[i].msg)
			assert_string_equal(err.msg, cases[i].msg);
		else
			assert_non_null(strstr(err.msg, "d.json: peers[1].allowed_ips[0]: "));
		assert_int_equal(st.revision, 99); /* untouched on failure */
		assert_null(st.peers);
		assert_null(st.routable);
	}
}

static void test_too_many_peers(void **state)
{
	static const char peer[] = "{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[]},";
	size_t cap = 64 + (WGF_DEVICE_PEERS_MAX + 1) * (sizeof(peer) - 1), n;
	char *text = malloc(cap);
	struct wgf_err err = {0};
	struct cache_state st;

	(void)state;
	assert_non_null(text);
	n = (size_t)snprintf(text, cap, "{\"revision\":1,\"peers\":[");
	for (size_t i = 0; i <= WGF_DEVICE_PEERS_MAX; i++) {
		memcpy(text + n, peer, sizeof(peer) - 1);
		n += sizeof(peer) - 1;
	}
	memcpy(text + n - 1, "]}", 3);
	assert_int_equal(cache_parse("d.json", text, strlen(text), &st, &err), -E2BIG);
	assert_string_equal(err.msg, "d.json: peers: more than 100000 entries");
	assert_int_equal(cache_parse("d.json", text, CACHE_FILE_MAX + 1, &st, &err), -EFBIG);
	assert_string_equal(err.msg, "d.json: larger than 67108864 bytes");
	free(text);
}

static void test_too_many_routable(void **state)
{
	char text[64 * 24 + 128];
	struct wgf_err err = {0};
	struct cache_state st;
	size_t n;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), "{\"revision\":1,\"routable\":[");
	for (size_t i = 0; i <= CACHE_ROUTABLE_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"10.%zu.0.0/16\"",
		                      i ? "," : "", i);
	snprintf(text + n, sizeof(text) - n, "],\"peers\":[]}");
	assert_int_equal(parse(text, &st, &err), -E2BIG);
	assert_string_equal(err.msg, "d.json: routable: more than 64 entries");
}

static void test_format_and_round_trip(void **state)
{
	struct cache_state st = {.revision = 42}, back;
	struct wgf_cidr c;
	char *text = NULL;
	size_t len = 0;

	(void)state;
	st.n_peers = 2;
	st.peers = calloc(2, sizeof(*st.peers));
	assert_non_null(st.peers);
	assert_int_equal(wgf_key_from_base64(st.peers[0].public_key, KEY_A, WGF_KEY_PUBLIC, NULL),
	                 0);
	assert_int_equal(wgf_cidr_parse(&c, "10.100.0.2/32", 0, NULL), 0);
	assert_int_equal(wgf_peer_add_allowed_ip(&st.ips, &st.peers[0], &c), 0);
	assert_int_equal(wgf_cidr_parse(&c, "fd00::/64", 0, NULL), 0);
	assert_int_equal(wgf_peer_add_allowed_ip(&st.ips, &st.peers[0], &c), 0);
	st.peers[0].persistent_keepalive = 25;
	assert_int_equal(wgf_key_from_base64(st.peers[1].public_key, KEY_B, WGF_KEY_PUBLIC, NULL),
	                 0);
	assert_int_equal(cache_format(&st, &text, &len), 0);
	assert_string_equal(text,
	                    "{\"revision\":42,\"peers\":[\n"
	                    "{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[\"10.100.0.2/32\","
	                    "\"fd00::/64\"],\"persistent_keepalive\":25},\n"
	                    "{\"public_key\":\"" KEY_B "\",\"allowed_ips\":[],"
	                    "\"persistent_keepalive\":0}\n"
	                    "]}\n");
	assert_int_equal(len, strlen(text));
	assert_int_equal(cache_parse("t", text, len, &back, NULL), 0);
	assert_int_equal(back.revision, 42);
	assert_int_equal(back.n_peers, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_memory_equal(back.peers[i].public_key, st.peers[i].public_key, WGF_KEY_LEN);
		assert_true(wgf_peer_config_equal(&back.peers[i], &st.peers[i]));
	}
	free(text);
	cache_state_fini(&back);

	/* An epoch and routable networks go before the peers. */
	for (size_t i = 0; i < CACHE_EPOCH_LEN; i++)
		st.epoch[i] = (uint8_t)(i * 17);
	st.n_routable = 2;
	st.routable = calloc(2, sizeof(*st.routable));
	assert_non_null(st.routable);
	assert_int_equal(wgf_cidr_parse(&st.routable[0], "10.100.0.0/24", 0, NULL), 0);
	assert_int_equal(wgf_cidr_parse(&st.routable[1], "fd00:100::/64", 0, NULL), 0);
	assert_int_equal(cache_format(&st, &text, &len), 0);
	assert_non_null(strstr(text, "{\"revision\":42,\"epoch\":\"" EPOCH "\","
	                             "\"routable\":[\"10.100.0.0/24\",\"fd00:100::/64\"],"
	                             "\"peers\":[\n{\"public_key\":\"" KEY_A "\","));
	assert_int_equal(cache_parse("t", text, len, &back, NULL), 0);
	assert_memory_equal(back.epoch, st.epoch, CACHE_EPOCH_LEN);
	assert_int_equal(back.n_routable, 2);
	assert_memory_equal(back.routable, st.routable, 2 * sizeof(*st.routable));
	assert_int_equal(back.n_peers, 2);
	free(text);
	cache_state_fini(&back);

	/* No peers at all, and no epoch or routable networks: neither field is written. */
	memset(st.epoch, 0, sizeof(st.epoch));
	st.n_routable = 0;
	st.n_peers = 0;
	assert_int_equal(cache_format(&st, &text, &len), 0);
	assert_string_equal(text, "{\"revision\":42,\"peers\":[\n]}\n");
	free(text);
	cache_state_fini(&st);
}

/*
 * The layout cache_format() writes, with its flaws: each is an error still, named as in
 * any other layout.
 */
static void test_line_layout(void **state)
{
#define HEAD "{\"revision\":5,\"peers\":[\n"
#define PA   "{\"public_key\":\"" KEY_A "\",\"allowed_ips\":[\"10.1.0.2/32\"]}"
#define PB   "{\"public_key\":\"" KEY_B "\",\"allowed_ips\":[\"10.1.0.3/32\",\"fd00::3/128\"]}"
	static const struct {
		const char *text;
		int code;
		size_t n_peers;
	} cases[] = {
	        {HEAD PA ",\n" PB "\n]}\n", 0, 2},
	        {HEAD PA ",\n" PB "\n]}", 0, 2},             /* no final newline */
	        {HEAD "]}\n", 0, 0},                         /* no peers */
	        {HEAD PA ",\n" PB ",\n]}\n", -EINVAL, 0},    /* a comma after the last */
	        {HEAD PA "\n" PB "\n]}\n", -EINVAL, 0},      /* a comma missing */
	        {HEAD PA ",\n" PB "\n]}\n]}\n", -EINVAL, 0}, /* text after the end */
	        {HEAD PA ",\n" PB "\n", -EINVAL, 0},         /* cut short */
	        {HEAD PA ",\n{\"public_key\":\"" KEY_B "\",\n\"allowed_ips\":[]}\n]}\n", 0, 2},
	        {HEAD PA ",\n" PA "\n]}\n", 0, 2}, /* a key twice is the sync engine's to refuse */
	};
	struct wgf_err err = {0};
	struct cache_state st;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse(cases[i].text, &st, &err);

		if (r != cases[i].code)
			fail_msg("case %zu: %d, not %d (%s)", i, r, cases[i].code, err.msg);
		if (r < 0)
			continue;
		assert_int_equal(st.revision, 5);
		assert_int_equal(st.n_peers, cases[i].n_peers);
		if (st.n_peers == 2 && i == 0) {
			assert_int_equal(st.peers[1].n_allowed_ips, 2);
			assert_int_equal(st.peers[1].allowed_ips[1].prefix, 128);
		}
		cache_state_fini(&st);
	}
	/* A bad peer in that layout is named by its place. */
	assert_int_equal(parse(HEAD PA ",\n{\"public_key\":\"" KEY_B "\"}\n]}\n", &st, &err),
	                 -EINVAL);
	assert_string_equal(err.msg, "d.json: peers[1]: allowed_ips is missing");
#undef HEAD
#undef PA
#undef PB
}

/* A change to key k (0-63) of the test below; IPs from the pool of the reply. */
static void make_change(struct wgf_sync_reply *r, uint64_t rev, unsigned k, bool remove,
                        unsigned ip)
{
	struct wgf_change *c = &r->changes[r->n_changes++];
	struct wgf_cidr cidr;
	char text[32];

	memset(c, 0, sizeof(*c));
	c->op = remove ? WGF_CHANGE_REMOVE : WGF_CHANGE_UPSERT;
	c->revision = rev;
	memset(c->peer.public_key, 0x5a, WGF_KEY_LEN);
	c->peer.public_key[0] = (uint8_t)(k * 4); /* keys sort as k does */
	if (remove)
		return;
	for (unsigned i = 0; i < 1 + ip % 3; i++) {
		snprintf(text, sizeof(text), "10.%u.%u.%u/32", k, ip % 256, i);
		assert_int_equal(wgf_cidr_parse(&cidr, text, 0, NULL), 0);
		assert_int_equal(wgf_peer_add_allowed_ip(&r->ips, &c->peer, &cidr), 0);
	}
}

/*
 * Deltas applied in place against a model (one slot per key): random batches of
 * upserts and removals, a key often changed twice in one batch, from an empty set to a
 * full one and back; the set stays sorted, each peer with its newest networks.
 */
static void test_apply_changes(void **state)
{
	enum { KEYS = 64, ROUNDS = 300 };
	struct cache_state st = {0};
	int model[KEYS]; /* -1: absent, else the ip seed of its last upsert */
	unsigned seed = 7;
	uint64_t rev = 0;

	(void)state;
	for (unsigned k = 0; k < KEYS; k++)
		model[k] = -1;
	for (unsigned round = 0; round < ROUNDS; round++) {
		struct wgf_change changes[24];
		struct wgf_sync_reply r = {.changes = changes};
		unsigned n = 1 + (unsigned)rand_r(&seed) % 24;
		struct wgf_cidr net;
		size_t live = 0;

		assert_int_equal(wgf_cidr_parse(&net, "10.0.0.0/8", 0, NULL), 0);
		r.routable = &net;
		r.n_routable = round % 2;
		for (unsigned i = 0; i < n; i++) {
			unsigned k = (unsigned)rand_r(&seed) % KEYS;
			/* Fill up in the first third, empty out in the last, mix between. */
			unsigned p = round < ROUNDS / 3 ? 80 : round > 2 * ROUNDS / 3 ? 20 : 50;
			bool remove = (unsigned)rand_r(&seed) % 100 >= p;
			unsigned ip = (unsigned)rand_r(&seed) % 1000;

			make_change(&r, ++rev, k, remove, ip);
			model[k] = remove ? -1 : (int)ip;
		}
		r.revision = rev;
		r.epoch[0] = 9;
		assert_int_equal(cache_state_apply(&st, &r), 0);
		wgf_ip_pool_fini(&r.ips);
		assert_int_equal(st.revision, rev);
		assert_int_equal(st.epoch[0], 9);
		assert_int_equal(st.n_routable, round % 2);
		for (unsigned k = 0; k < KEYS; k++) {
			const struct wgf_peer *p = NULL;
			uint8_t key[WGF_KEY_LEN];

			memset(key, 0x5a, WGF_KEY_LEN);
			key[0] = (uint8_t)(k * 4);
			for (size_t i = 0; i < st.n_peers; i++)
				if (memcmp(st.peers[i].public_key, key, WGF_KEY_LEN) == 0)
					p = &st.peers[i];
			if (model[k] < 0) {
				assert_null(p);
				continue;
			}
			live++;
			assert_non_null(p);
			assert_int_equal(p->n_allowed_ips, 1 + model[k] % 3);
			assert_int_equal(p->allowed_ips[p->n_allowed_ips - 1].addr.bytes[2],
			                 model[k] % 256);
		}
		assert_int_equal(st.n_peers, live);
		for (size_t i = 1; i < st.n_peers; i++)
			assert_true(memcmp(st.peers[i - 1].public_key, st.peers[i].public_key,
			                   WGF_KEY_LEN) < 0);
	}
	cache_state_fini(&st);
}

static void append_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/*
 * The journal: records append to the cache; loading replays those of its epoch newer
 * than it, and stops at a record cut short; the next append cuts that record off; a
 * whole write removes the journal.
 */
static void test_journal(void **state)
{
	char dir[] = "/tmp/wgf-journal-XXXXXX", path[64], jp[64];
	struct cache_state st = {.revision = 3}, back;
	uint8_t keys[2][WGF_KEY_LEN];
	struct wgf_err err = {0};
	struct wgf_cidr c;
	size_t records = 0, size = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_FILE);
	snprintf(jp, sizeof(jp), "%s/%s", dir, CACHE_JOURNAL_FILE);
	st.epoch[0] = 1;
	st.n_peers = 1;
	st.peers = calloc(2, sizeof(*st.peers));
	assert_non_null(st.peers);
	assert_int_equal(wgf_key_from_base64(st.peers[0].public_key, KEY_A, WGF_KEY_PUBLIC, NULL),
	                 0);
	assert_int_equal(wgf_key_from_base64(keys[1], KEY_B, WGF_KEY_PUBLIC, NULL), 0);
	memcpy(keys[0], st.peers[0].public_key, WGF_KEY_LEN);
	assert_int_equal(cache_save_desired(path, &st, &err), 0);

	/* Revision 4: peer A gets an address; 5: B comes; 6: A goes. */
	assert_int_equal(wgf_cidr_parse(&c, "10.1.0.2/32", 0, NULL), 0);
	assert_int_equal(wgf_peer_add_allowed_ip(&st.ips, &st.peers[0], &c), 0);
	st.revision = 4;
	assert_int_equal(cache_journal_append(path, &st, keys, 1, &size, &err), 0);
	assert_true(size > 0);
	st.peers[1] = st.peers[0];
	memcpy(st.peers[1].public_key, keys[1], WGF_KEY_LEN);
	st.n_peers = 2;
	if (memcmp(keys[1], keys[0], WGF_KEY_LEN) < 0) {
		struct wgf_peer t = st.peers[0];

		st.peers[0] = st.peers[1];
		st.peers[1] = t;
	}
	st.revision = 5;
	assert_int_equal(cache_journal_append(path, &st, keys + 1, 1, NULL, &err), 0);
	assert_int_equal(cache_load_desired(path, &back, &records, &err), 0);
	assert_int_equal(records, 2);
	assert_int_equal(back.revision, 5);
	assert_int_equal(back.n_peers, 2);
	assert_int_equal(back.peers[0].n_allowed_ips, 1);
	cache_state_fini(&back);

	/* A record cut short by a crash is not replayed, nor anything after it... */
	append_text(jp, "{\"revision\":6,\"epoch\":\"01000000000000000000000000000000\","
	                "\"upsert\":[],\"remove\":[\"" KEY_A "\"");
	assert_int_equal(cache_load_desired(path, &back, &records, &err), 0);
	assert_int_equal(records, 2);
	assert_int_equal(back.revision, 5);
	cache_state_fini(&back);
	/* ... and the next append cuts it off, so its own record counts. */
	st.n_peers = 1; /* A goes: the peer left is B, wherever it sorted */
	if (memcmp(st.peers[0].public_key, keys[0], WGF_KEY_LEN) == 0)
		st.peers[0] = st.peers[1];
	st.revision = 6;
	assert_int_equal(cache_journal_append(path, &st, keys, 1, NULL, &err), 0);
	assert_int_equal(cache_load_desired(path, &back, &records, &err), 0);
	assert_int_equal(records, 3);
	assert_int_equal(back.revision, 6);
	assert_int_equal(back.n_peers, 1);
	assert_memory_equal(back.peers[0].public_key, keys[1], WGF_KEY_LEN);
	cache_state_fini(&back);

	/* Records of another epoch, or not newer than the cache, are skipped. */
	append_text(jp, "{\"revision\":7,\"epoch\":\"02000000000000000000000000000000\","
	                "\"upsert\":[],\"remove\":[\"" KEY_B "\"]}\n");
	append_text(jp, "{\"revision\":2,\"epoch\":\"01000000000000000000000000000000\","
	                "\"upsert\":[],\"remove\":[\"" KEY_B "\"]}\n");
	assert_int_equal(cache_load_desired(path, &back, &records, &err), 0);
	assert_int_equal(records, 3);
	assert_int_equal(back.n_peers, 1);
	cache_state_fini(&back);

	/* A whole write takes the journal's place. */
	assert_int_equal(cache_save_desired(path, &st, &err), 0);
	assert_int_equal(access(jp, F_OK), -1);
	assert_int_equal(cache_load_desired(path, &back, &records, &err), 0);
	assert_int_equal(records, 0);
	assert_int_equal(back.revision, 6);
	cache_state_fini(&back);
	cache_state_fini(&st);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * A journal that another user owns or others may write is refused, by the loader (the
 * whole load fails: its records would decide which peers this server admits) and by
 * the appender (which leaves it as it was).
 */
static void test_journal_others_may_change(void **state)
{
	char dir[] = "/tmp/wgf-journal-XXXXXX", path[64], jp[96], expect[256];
	struct cache_state st = {.revision = 3}, back;
	struct wgf_err err = {0};
	struct stat before, after;
	size_t size = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_FILE);
	snprintf(jp, sizeof(jp), "%s/%s", dir, CACHE_JOURNAL_FILE);
	assert_int_equal(cache_save_desired(path, &st, &err), 0);
	st.revision = 4;
	assert_int_equal(cache_journal_append(path, &st, NULL, 0, &size, &err), 0);
	assert_int_equal(chmod(jp, 0620), 0);
	assert_int_equal(stat(jp, &before), 0);
	snprintf(expect, sizeof(expect), "%s: writable by other users (mode 620); chmod 600 it",
	         jp);
	assert_int_equal(cache_load_desired(path, &back, NULL, &err), -EPERM);
	assert_string_equal(err.msg, expect);
	st.revision = 5;
	assert_int_equal(cache_journal_append(path, &st, NULL, 0, &size, &err), -EPERM);
	assert_string_equal(err.msg, expect);
	assert_int_equal(stat(jp, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	/* Only root can give a file away. */
	if (geteuid() == 0) {
		assert_int_equal(chmod(jp, 0600), 0);
		assert_int_equal(chown(jp, 65534, 65534), 0);
		assert_int_equal(cache_load_desired(path, &back, NULL, &err), -EPERM);
		snprintf(expect, sizeof(expect),
		         "%s: owned by uid 65534, neither this daemon's uid 0 nor root; chown it",
		         jp);
		assert_string_equal(err.msg, expect);
	}
	/* A whole write removes it. */
	assert_int_equal(cache_save_desired(path, &st, &err), 0);
	assert_int_equal(cache_load_desired(path, &back, NULL, &err), 0);
	assert_int_equal(back.revision, 5);
	cache_state_fini(&back);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_save_and_load(void **state)
{
	char dir[] = "/tmp/wgf-cache-XXXXXX", path[64];
	struct cache_state st = {.revision = 3}, back;
	struct wgf_err err = {0};
	struct stat sb;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_FILE);
	assert_int_equal(cache_load(path, &back, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "desired.json: cannot open: No such file or directory"));
	assert_int_equal(cache_save(path, &st, &err), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(cache_load(path, &back, &err), 0);
	assert_int_equal(back.revision, 3);
	assert_int_equal(back.n_peers, 0);
	cache_state_fini(&back);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * A file is read in pieces: 3,000 peers (about 370 KB) load whole, and a flaw far into
 * the file is named at its line, counted across the pieces.
 */
static void test_load_in_pieces(void **state)
{
	char dir[] = "/tmp/wgf-cache-XXXXXX", path[64];
	struct cache_state st = {.revision = 9}, back;
	struct wgf_err err = {0};
	char *text = NULL, *at;
	size_t len = 0, line = 1;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_FILE);
	st.n_peers = 3000;
	st.peers = calloc(st.n_peers, sizeof(*st.peers));
	assert_non_null(st.peers);
	for (size_t i = 0; i < st.n_peers; i++) {
		struct wgf_cidr c = {.addr = {.family = AF_INET}, .prefix = 32};

		st.peers[i].public_key[0] = (uint8_t)(i >> 8);
		st.peers[i].public_key[1] = (uint8_t)i;
		st.peers[i].public_key[2] = 1;
		c.addr.bytes[0] = 10;
		c.addr.bytes[2] = (uint8_t)(i >> 8);
		c.addr.bytes[3] = (uint8_t)i;
		assert_int_equal(wgf_peer_add_allowed_ip(&st.ips, &st.peers[i], &c), 0);
	}
	assert_int_equal(cache_save(path, &st, &err), 0);
	assert_int_equal(cache_load(path, &back, &err), 0);
	assert_int_equal(back.revision, 9);
	assert_int_equal(back.n_peers, st.n_peers);
	for (size_t i = 0; i < st.n_peers; i++)
		assert_true(wgf_peer_config_equal(&back.peers[i], &st.peers[i]));
	cache_state_fini(&back);

	/* Peer 2,500 (line 2,502) loses the colon after its first field. */
	assert_int_equal(cache_format(&st, &text, &len), 0);
	for (at = text; line < 2502; at = strchr(at, '\n') + 1)
		line++;
	assert_true(at - text > 2 * 65536);
	at[strlen("{\"public_key\"")] = ' ';
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(cache_load(path, &back, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "desired.json:2502:"));
	assert_non_null(strstr(err.msg, ": parse error: object key and value must be separated"));
	free(text);
	cache_state_fini(&st);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_good),
	        cmocka_unit_test(test_unusable_keys_parse),
	        cmocka_unit_test(test_parse_errors),
	        cmocka_unit_test(test_epoch_and_routable),
	        cmocka_unit_test(test_set_routable),
	        cmocka_unit_test(test_too_many_peers),
	        cmocka_unit_test(test_too_many_routable),
	        cmocka_unit_test(test_format_and_round_trip),
	        cmocka_unit_test(test_line_layout),
	        cmocka_unit_test(test_apply_changes),
	        cmocka_unit_test(test_journal),
	        cmocka_unit_test(test_journal_others_may_change),
	        cmocka_unit_test(test_save_and_load),
	        cmocka_unit_test(test_load_in_pieces),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
