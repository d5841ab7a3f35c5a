/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for coordinator/clients.c: connection caps, the failure bucket, a full table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clients.h"

static struct wgf_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct wgf_addr addr = {.family = AF_INET, .bytes = {a, b, c, d}};

	return addr;
}

static void test_connections_per_address(void **state)
{
	struct clients *t = clients_new(64, &(struct clients_limits){.max_connections = 3});
	struct wgf_addr a = v4(192, 0, 2, 1), b = v4(192, 0, 2, 2);
	struct client *ca, *cb;

	(void)state;
	assert_non_null(t);
	ca = clients_get(t, &a, 0);
	/* Connected first: an idle entry may be given to the next address that probes it. */
	assert_true(clients_connect(t, ca));
	cb = clients_get(t, &b, 0);
	assert_ptr_not_equal(ca, cb);
	assert_ptr_equal(clients_get(t, &a, 0), ca);
	for (int i = 0; i < 2; i++)
		assert_true(clients_connect(t, ca));
	assert_false(clients_connect(t, ca)); /* the fourth from a */
	assert_true(clients_connect(t, cb));  /* b is not a */
	clients_disconnect(t, ca);
	assert_true(clients_connect(t, ca));
	clients_free(t);
}

static void test_failed_authentications_wait_and_refill(void **state)
{
	struct clients *t = clients_new(64, &(struct clients_limits){.auth_failures_burst = 3,
	                                                             .auth_failures_per_min = 60});
	struct wgf_addr a = v4(198, 51, 100, 7);
	struct client *c;
	uint64_t now = 1000000;

	(void)state;
	c = clients_get(t, &a, now);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(clients_auth_wait(t, c, now), 0);
		clients_auth_failed(t, c, now);
	}
	/* The bucket is empty: one token a second at 60 a minute. */
	assert_int_equal(clients_auth_wait(t, c, now), 1);
	assert_int_equal(clients_auth_wait(t, c, now + 500), 1);
	assert_int_equal(clients_auth_wait(t, c, now + 1000), 0);
	/* It refills to the burst and no further. */
	assert_int_equal(clients_auth_wait(t, c, now + 3600 * 1000), 0);
	for (int i = 0; i < 3; i++)
		clients_auth_failed(t, c, now + 3600 * 1000);
	assert_true(clients_auth_wait(t, c, now + 3600 * 1000) > 0);
	clients_free(t);
}

/* More addresses than slots: the ones with state keep it, the rest share the overflow,
 * and idle entries are taken by new addresses. */
static void test_a_full_table_never_grows(void **state)
{
	struct clients *t = clients_new(16, &(struct clients_limits){.max_connections = 1,
	                                                             .auth_failures_burst = 1,
	                                                             .auth_failures_per_min = 1});
	struct client *held[16], *extra;
	struct wgf_addr a;

	(void)state;
	for (int i = 0; i < 16; i++) {
		a = v4(10, 0, 0, (uint8_t)i);
		held[i] = clients_get(t, &a, 0);
		assert_true(clients_connect(t, held[i]));
	}
	/* Every slot holds a connection: a new address gets the shared overflow entry,
	 * which the per-address cap does not limit (its addresses are many). */
	a = v4(10, 0, 1, 1);
	extra = clients_get(t, &a, 0);
	a = v4(10, 0, 1, 2);
	assert_ptr_equal(clients_get(t, &a, 0), extra);
	assert_true(clients_connect(t, extra));
	assert_true(clients_connect(t, extra));
	/* Once an address holds nothing, its slot serves a new one. */
	for (int i = 0; i < 16; i++)
		clients_disconnect(t, held[i]);
	a = v4(10, 0, 2, 1);
	assert_ptr_not_equal(clients_get(t, &a, 0), extra);
	clients_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_connections_per_address),
	        cmocka_unit_test(test_failed_authentications_wait_and_refill),
	        cmocka_unit_test(test_a_full_table_never_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
