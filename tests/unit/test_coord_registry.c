/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for coordinator/registry.c: built from wgf_channel_registry() rows (made
 * with libpq's own result constructors), looked up by key and by server id. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "registry.h"

#define COLS 7

struct row {
	const char *id, *name, *key, *pool_size, *pool, *revision;
	const char *next_key; /* NULL: none */
};

/* A result shaped like SELECT * FROM wgf_channel_registry(), in text format. */
static PGresult *result(const struct row *rows, size_t n, int cols)
{
	static PGresAttDesc attrs[COLS] = {
	        {.name = "server_id"},      {.name = "name"}, {.name = "agent_key"},
	        {.name = "pool_size"},      {.name = "pool"}, {.name = "revision"},
	        {.name = "next_agent_key"},
	};
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	assert_non_null(res);
	assert_int_equal(PQsetResultAttrs(res, cols, attrs), 1);
	for (size_t i = 0; i < n; i++) {
		const char *v[COLS] = {rows[i].id,        rows[i].name, rows[i].key,
		                       rows[i].pool_size, rows[i].pool, rows[i].revision,
		                       rows[i].next_key};

		/* A NULL value is SQL NULL (length -1). */
		for (int c = 0; c < cols; c++)
			assert_int_equal(PQsetvalue(res, (int)i, c, (char *)v[c],
			                            v[c] ? (int)strlen(v[c]) : -1),
			                 1);
	}
	return res;
}

/* A key's bytea text: 32 bytes of b. */
static const char *key_text(char buf[static 67], uint8_t b)
{
	int n = snprintf(buf, 67, "\\x");

	for (int i = 0; i < 32; i++)
		n += snprintf(buf + n, 67 - (size_t)n, "%02x", b);
	return buf;
}

static void test_lookups(void **state)
{
	char k1[67], k2[67], k4[67];
	const struct row rows[] = {
	        {"3", "vps-a", key_text(k1, 0x11), "254", "10.100.0.0/24", "7", NULL},
	        {"5", "vps-b", key_text(k2, 0x22), "65534", "10.101.0.0/16", "0",
	         key_text(k4, 0x44)},
	};
	PGresult *res = result(rows, 2, COLS);
	struct registry *r = NULL;
	struct registry_entry *e, *all;
	uint8_t key[32];
	size_t n = 0;

	(void)state;
	assert_int_equal(registry_from_result(res, &r), 0);
	assert_int_equal(registry_size(r), 2);
	memset(key, 0x22, sizeof(key));
	e = registry_find(r, key);
	assert_non_null(e);
	assert_int_equal(e->server_id, 5);
	assert_string_equal(e->name, "vps-b");
	assert_int_equal(e->pool_size, 65534);
	assert_int_equal(e->pool.prefix, 16);
	assert_int_equal(e->revision, 0);
	assert_null(e->poll);
	assert_int_equal(e->tokens_at, 0);
	memset(key, 0x11, sizeof(key));
	assert_ptr_equal(registry_find_server(r, 3), registry_find(r, key));
	assert_ptr_equal(registry_find_server(r, 5), e);
	assert_null(registry_find_server(r, 4));
	/* vps-b's next key finds vps-b too (its agent's key is being rotated). */
	memset(key, 0x44, sizeof(key));
	assert_ptr_equal(registry_find(r, key), e);
	assert_true(e->has_next_key);
	assert_memory_equal(e->next_key, key, sizeof(key));
	assert_false(registry_find_server(r, 3)->has_next_key);
	memset(key, 0x33, sizeof(key));
	assert_null(registry_find(r, key));
	all = registry_entries(r, &n);
	assert_int_equal(n, 2);
	assert_int_equal(all[0].server_id, 3);
	assert_int_equal(all[0].revision, 7);
	registry_free(r);
	PQclear(res);
	/* No registry yet: nothing is known. */
	assert_null(registry_find(NULL, key));
	assert_null(registry_entries(NULL, &n));
	assert_int_equal(n, 0);
}

static void test_empty(void **state)
{
	PGresult *res = result(NULL, 0, COLS);
	struct registry *r = NULL;
	uint8_t key[32] = {0};

	(void)state;
	assert_int_equal(registry_from_result(res, &r), 0);
	assert_int_equal(registry_size(r), 0);
	assert_null(registry_find(r, key));
	registry_free(r);
	PQclear(res);
}

/* Each malformed row refuses the whole result. */
static void test_refusals(void **state)
{
	char k1[67], k2[67];
	char long_name[80];
	const char *good_key = key_text(k1, 0x11), *other_key = key_text(k2, 0x22);
	struct row cases[][2] = {
	        /* a key, or a next key, that is not 32 bytes of hex bytea */
	        {{"1", "a", good_key, "254", "10.0.0.0/24", "0", "\\x11"}, {0}},
	        {{"1", "a", "\\x1111", "254", "10.0.0.0/24", "0"}, {0}},
	        {{"1", "a", "1111", "254", "10.0.0.0/24", "0"}, {0}},
	        /* a pool that is not a network */
	        {{"1", "a", good_key, "254", "10.0.0.1/24", "0"}, {0}},
	        /* a name longer than an entry holds */
	        {{"1", long_name, good_key, "254", "10.0.0.0/24", "0"}, {0}},
	        /* ids out of order, or repeated */
	        {{"2", "a", good_key, "254", "10.0.0.0/24", "0"},
	         {"1", "b", other_key, "254", "10.1.0.0/24", "0"}},
	        {{"2", "a", good_key, "254", "10.0.0.0/24", "0"},
	         {"2", "b", other_key, "254", "10.1.0.0/24", "0"}},
	};

	(void)state;
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i][1].id ? 2 : 1;
		PGresult *res = result(cases[i], n, COLS);
		struct registry *r = NULL;

		assert_int_equal(registry_from_result(res, &r), -EBADMSG);
		assert_null(r);
		PQclear(res);
	}
	/* Another shape of result altogether. */
	{
		PGresult *res = result(cases[0], 1, COLS - 1);
		struct registry *r = NULL;

		assert_int_equal(registry_from_result(res, &r), -EBADMSG);
		PQclear(res);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_lookups),
	        cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
