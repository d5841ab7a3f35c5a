/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for coordinator/api_input.c and decoding: each kind of field, no database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api_internal.h"

static struct api api; /* no loop, no database: decoding needs neither */

static struct call *new_call(void)
{
	struct call *c = call_new(&api, NULL);

	assert_non_null(c);
	return c;
}

/* f(c, field, s) must accept s. */
#define assert_accepts(f, s, ...)                                                      \
	do {                                                                           \
		struct call *c_ = new_call();                                          \
		if (f(c_, "x", (s), ##__VA_ARGS__) != 0)                               \
			fail_msg("%s refused '%s': %s", #f, (s), c_->problem.message); \
		call_free(c_);                                                         \
	} while (0)

/* f(c, field, s) must refuse s with a 400 whose message holds want. */
#define assert_refuses(f, s, want, ...)                                                           \
	do {                                                                                      \
		struct call *c_ = new_call();                                                     \
		if (f(c_, "x", (s), ##__VA_ARGS__) == 0)                                          \
			fail_msg("%s accepted '%s'", #f, (s));                                    \
		assert_int_equal(c_->problem.status, 400);                                        \
		if (strncmp(c_->problem.message, "x: ", 3) || !strstr(c_->problem.message, want)) \
			fail_msg("%s('%s'): '%s' lacks 'x: ...%s'", #f, (s), c_->problem.message, \
			         want);                                                           \
		call_free(c_);                                                                    \
	} while (0)

static void test_text(void **state)
{
	static const char *const hidden[] = {
	        "a\u2028b",   "a\u2029b", "a\u202eb", "a\u200bb", "a\ufeffb",
	        "a\302\205b", /* U+0085, NEL */
	        "a\u2066b",   "a\x01z",   "a\x7fz",   "a\nb",     "a\tb",
	};
	char s[400];

	(void)state;
	assert_accepts(input_text, "Shop 1 / Zürich (Ost) – 東京 🚀", 100);
	for (size_t i = 0; i < WGF_ARRAY_SIZE(hidden); i++)
		assert_refuses(input_text, hidden[i], "control or formatting", 100);
	assert_refuses(input_text, "a\xff", "not valid UTF-8", 100);
	assert_refuses(input_text, "a\xc3\x28", "not valid UTF-8", 100);
	assert_refuses(input_text, "\xed\xa0\x80", "not valid UTF-8", 100); /* a surrogate */
	assert_refuses(input_text, "say \"hi\"", "quotes", 100);
	/* Characters, not bytes: 100 two-byte characters pass, 101 do not. */
	s[0] = '\0';
	for (int i = 0; i < 100; i++)
		strcat(s, "é");
	assert_accepts(input_text, s, 100);
	strcat(s, "é");
	assert_refuses(input_text, s, "longer than 100 characters", 100);
}

static void test_ids(void **state)
{
	unsigned long v = 0;

	(void)state;
	assert_accepts(input_uuid, "0b1e5a8c-3f6d-4e2a-9c7b-1d2e3f4a5b6c");
	assert_refuses(input_uuid, "0B1E5A8C-3F6D-4E2A-9C7B-1D2E3F4A5B6C", "UUID in lower case");
	assert_refuses(input_uuid, " 0b1e5a8c-3f6d-4e2a-9c7b-1d2e3f4a5b6c", "UUID");
	assert_refuses(input_uuid, "0b1e5a8c-3f6d-4e2a-9c7b-1d2e3f4a5b6c0", "UUID");
	assert_refuses(input_uuid, "0b1e5a8c3f6d4e2a9c7b1d2e3f4a5b6c", "UUID");
	assert_refuses(input_uuid, "", "UUID");
	assert_accepts(input_id, "5");
	assert_accepts(input_id, "9223372036854775807");
	for (const char *const *p = (const char *const[]){" 5", "+5", "05", "5x", "0", "-1", "",
	                                                  "9223372036854775808", NULL};
	     *p; p++)
		assert_refuses(input_id, *p, "not an id");
	assert_accepts(input_uint, "1000", 1, 1000, &v);
	assert_int_equal(v, 1000);
	assert_refuses(input_uint, "1001", "from 1 to 1000", 1, 1000, &v);
	assert_refuses(input_uint, " 5", "whole number", 1, 1000, &v);
	assert_refuses(input_uint, "5 ", "whole number", 1, 1000, &v);
}

static void test_timestamps(void **state)
{
	static const char *const good[] = {
	        "2026-12-01T08:00:00Z",      "2026-12-01t08:00:00z",
	        "2026-12-01T08:00:00.1Z",    "2026-12-01T08:00:00.123456789+01:00",
	        "2024-02-29T23:59:59-12:00",
	};
	static const char *const bad[] = {
	        "now",
	        "epoch",
	        "infinity",
	        "-infinity",
	        "today",
	        "2026-12-01",
	        "2026-12-01 08:00:00Z",
	        "2026-12-01T08:00:00",
	        "2026-13-01T00:00:00Z",
	        "2026-12-01T25:00:00Z",
	        "2026-02-30T00:00:00Z",
	        "2025-02-29T00:00:00Z",
	        "2026-12-01T08:00:60Z",
	        "2026-12-01T08:00:00.Z",
	        "2026-12-01T08:00:00+1:00",
	        "2026-12-01T08:00:00+24:00",
	        "2026-12-01T08:00:00Zjunk",
	        "+2026-12-01T08:00:00Z",
	        "2026-12-1T08:00:00Z",
	        "2026-12-01T08:00:00.1234567890Z",
	};

	(void)state;
	for (size_t i = 0; i < WGF_ARRAY_SIZE(good); i++)
		assert_accepts(input_timestamp, good[i]);
	for (size_t i = 0; i < WGF_ARRAY_SIZE(bad); i++)
		assert_refuses(input_timestamp, bad[i], "RFC 3339");
}

static void test_names_and_endpoints(void **state)
{
	(void)state;
	assert_accepts(input_slug, "acme-2");
	assert_refuses(input_slug, "-acme", "lower-case");
	assert_refuses(input_slug, "Acme", "lower-case");
	assert_accepts(input_server_name, "vpn1.fra");
	assert_refuses(input_server_name, "vpn 1", "lower-case");
	assert_accepts(input_endpoint, "[2001:db8::1]:51820");
	assert_refuses(input_endpoint, "[2001:db8::1:51820", "[address]:port");
	assert_refuses(input_endpoint, "vpn.example.net:+1", "port");
}

/* A request for call_decode, with headers given as "name", "value" pairs. */
static int decode(struct call **ret, const char *method, const char *path, const char *query,
                  const char *body, const char *const *headers)
{
	static h2o_mem_pool_t pool;
	static h2o_headers_t hs;
	static struct http_request rq;
	struct call *c;

	h2o_mem_clear_pool(&pool);
	h2o_mem_init_pool(&pool);
	memset(&hs, 0, sizeof(hs));
	for (; headers && *headers; headers += 2)
		h2o_add_header_by_str(&pool, &hs, headers[0], strlen(headers[0]), 0, NULL,
		                      headers[1], strlen(headers[1]));
	rq = (struct http_request){
	        .method = h2o_iovec_init(method, strlen(method)),
	        .path = h2o_iovec_init(path, strlen(path)),
	        .query = query ? h2o_iovec_init(query, strlen(query)) : h2o_iovec_init(NULL, 0),
	        .headers = &hs,
	        .body = body ? h2o_iovec_init(body, strlen(body)) : h2o_iovec_init(NULL, 0),
	};
	c = call_new(&api, &rq);
	assert_non_null(c);
	*ret = c;
	return call_decode(c);
}

static void test_decode(void **state)
{
	char key[APIKEY_TEXT_LEN + 1], bearer[APIKEY_TEXT_LEN + 16];
	struct apikey k;
	struct call *c;

	(void)state;
	apikey_generate(api.o.key_hash_secret, key, &k);
	snprintf(bearer, sizeof(bearer), "bEaReR  %s", key);
	/* The scheme in any case, then the key: a reservation decodes to its parameters. */
	if (decode(&c, "POST", "/v1/routers", NULL, "{\"name\":\"shop\"}",
	           WGF_STRINGS("authorization", bearer, "content-type",
	                       "Application/JSON; charset=utf-8", NULL)) != 0)
		fail_msg("refused: %d %s", c->problem.status, c->problem.message);
	assert_string_equal(c->route->pattern, "/v1/routers");
	assert_int_equal(c->n_params, 2 + c->route->n_sql_types);
	assert_string_equal(c->params[2], "shop");
	call_free(c);
	/* No JSON content type: 415, after the key was checked. */
	assert_int_not_equal(decode(&c, "POST", "/v1/routers", NULL, "{}",
	                            WGF_STRINGS("authorization", bearer, NULL)),
	                     0);
	assert_int_equal(c->problem.status, 415);
	call_free(c);
	assert_int_not_equal(decode(&c, "POST", "/v1/routers", NULL, "{}",
	                            WGF_STRINGS("authorization", "Basic abc", "content-type",
	                                        "application/json", NULL)),
	                     0);
	assert_int_equal(c->problem.status, 401);
	call_free(c);
	/* Query strings: %00, invalid UTF-8, unknown and repeated parameters. */
	for (const char *const *q =
	             WGF_STRINGS("ip=10.0.0.1%00x", "ip=%FF", "%FF=1", "x=1", "ip=1&ip=2", NULL);
	     *q; q++) {
		assert_int_not_equal(decode(&c, "GET", "/v1/leases", *q, NULL,
		                            WGF_STRINGS("authorization", bearer, NULL)),
		                     0);
		assert_int_equal(c->problem.status, 400);
		call_free(c);
	}
	/* A control character in the path: 400, and the log's copy is escaped. */
	assert_int_not_equal(decode(&c, "GET", "/v1/routers/\nabc", NULL, NULL, NULL), 0);
	assert_int_equal(c->problem.status, 400);
	assert_string_equal(c->path, "/v1/routers/\\x0aabc");
	call_free(c);
	/* Unknown paths and methods. */
	assert_int_not_equal(decode(&c, "GET", "/v1/nothing", NULL, NULL, NULL), 0);
	assert_int_equal(c->problem.status, 404);
	call_free(c);
	assert_int_not_equal(decode(&c, "PUT", "/v1/routers", NULL, NULL, NULL), 0);
	assert_int_equal(c->problem.status, 405);
	call_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_text),       cmocka_unit_test(test_ids),
	        cmocka_unit_test(test_timestamps), cmocka_unit_test(test_names_and_endpoints),
	        cmocka_unit_test(test_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
