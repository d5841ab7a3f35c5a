/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for coordinator/nonces.c: per server, until expiry, a bounded ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nonces.h"

static void nonce_of(uint8_t out[static WGF_NONCE_LEN], unsigned i)
{
	memset(out, 0, WGF_NONCE_LEN);
	memcpy(out, &i, sizeof(i));
}

static void test_per_server_until_expiry(void **state)
{
	struct nonces *n = nonces_new(64);
	uint8_t a[WGF_NONCE_LEN], b[WGF_NONCE_LEN];

	(void)state;
	assert_non_null(n);
	nonce_of(a, 1);
	nonce_of(b, 2);
	assert_false(nonces_has(n, 7, a, 1000));
	nonces_add(n, 7, a, 5000);
	assert_true(nonces_has(n, 7, a, 1000));
	assert_true(nonces_has(n, 7, a, 5000));
	assert_false(nonces_has(n, 7, a, 5001)); /* expired: refused as stale before this */
	assert_false(nonces_has(n, 8, a, 1000)); /* another server's nonce space */
	assert_false(nonces_has(n, 7, b, 1000));
	nonces_free(n);
	nonces_free(NULL);
}

/* A full table reuses its oldest slots: memory stays bounded, the newest are kept. */
static void test_a_full_table_forgets_the_oldest(void **state)
{
	struct nonces *n = nonces_new(10); /* rounded up to 16 */
	uint8_t x[WGF_NONCE_LEN];

	(void)state;
	assert_non_null(n);
	for (unsigned i = 0; i < 40; i++) {
		nonce_of(x, i);
		nonces_add(n, 1, x, 1000);
	}
	for (unsigned i = 0; i < 40; i++) {
		nonce_of(x, i);
		assert_int_equal(nonces_has(n, 1, x, 0), i >= 24);
	}
	/* A nonce added again is found again, in its new slot. */
	nonce_of(x, 3);
	nonces_add(n, 1, x, 2000);
	assert_true(nonces_has(n, 1, x, 1500));
	nonces_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_per_server_until_expiry),
	        cmocka_unit_test(test_a_full_table_forgets_the_oldest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
