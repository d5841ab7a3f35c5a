/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for coordinator/webhook.c: target policy, signatures, retry delays. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <sodium.h>

#include "webhook.h"

static bool allowed(const struct webhook_policy *p, const char *addr)
{
	struct wgf_addr a;

	assert_int_equal(wgf_addr_parse(&a, addr, NULL), 0);
	return webhook_address_allowed(p, &a);
}

static void test_internal_ranges_are_refused_unless_allowed(void **state)
{
	static const char *const refused[] = {
	        "127.0.0.1",  "10.1.2.3", "172.31.0.1", "192.168.1.1",     "169.254.169.254",
	        "100.64.0.1", "0.0.0.0",  "224.0.0.1",  "255.255.255.255", "::1",
	        "::",         "fd00::1",  "fe80::1",    "::ffff:127.0.0.1"};
	struct webhook_policy none = {0}, lo;
	struct wgf_err err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_false(allowed(&none, refused[i]));
	assert_true(allowed(&none, "93.184.216.34"));
	assert_true(allowed(&none, "2001:db8::1"));
	assert_int_equal(webhook_policy_parse(&lo, "127.0.0.1/32, ::1", &err), 0);
	assert_true(allowed(&lo, "127.0.0.1"));
	assert_true(allowed(&lo, "::1"));
	assert_false(allowed(&lo, "127.0.0.2"));
	assert_int_equal(webhook_policy_parse(&lo, "not-a-prefix", &err), -EINVAL);
}

static void test_urls(void **state)
{
	static const struct {
		const char *url;
		const char *why; /* NULL: accepted */
	} cases[] = {
	        {"https://hooks.example.com/wgfleet", NULL},
	        {"http://93.184.216.34:8080/x?y=1", NULL},
	        {"ftp://example.com/", "http or https"},
	        {"HTTPS://example.com/", "http or https"},
	        {"https:///x", "no host"},
	        {"https://user:pw@example.com/", "user name"},
	        {"https://user@example.com/", "user name"},
	        {"http://127.0.0.1/", "may not call"},
	        {"http://[::1]:80/", "may not call"},
	        {"http://[fd00::5]/", "may not call"},
	        {"http://10.0.0.1/", "may not call"},
	        {"https://exa mple.com/", "not a valid URL"},
	};
	struct webhook_policy none = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wgf_err err = {0};
		int r = webhook_url_check(&none, cases[i].url, &err);

		if (!cases[i].why) {
			assert_int_equal(r, 0);
			continue;
		}
		assert_int_equal(r, -EINVAL);
		if (!strstr(err.msg, cases[i].why))
			fail_msg("%s: '%s' does not say '%s'", cases[i].url, err.msg, cases[i].why);
	}
}

static void test_signature_is_hmac_sha256_of_time_dot_body(void **state)
{
	char sig[WEBHOOK_SIGNATURE_SIZE], secret[WEBHOOK_SECRET_SIZE], other[WEBHOOK_SECRET_SIZE];

	(void)state;
	/* The value Python's hmac module gives for the same key and message. */
	webhook_sign("whsec_test", 1700000000, "{\"a\":1}", 7, sig);
	assert_string_equal(
	        sig,
	        "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
	webhook_secret_new(secret);
	webhook_secret_new(other);
	assert_int_equal(strlen(secret), strlen(WEBHOOK_SECRET_PREFIX) + 64);
	assert_memory_equal(secret, WEBHOOK_SECRET_PREFIX, strlen(WEBHOOK_SECRET_PREFIX));
	assert_string_not_equal(secret, other);
}

static void test_retry_doubles_within_bounds_with_jitter(void **state)
{
	(void)state;
	for (int k = 0; k < 200; k++) {
		uint64_t d1 = webhook_retry_ms(1, 1000, 60000);
		uint64_t d3 = webhook_retry_ms(3, 1000, 60000);
		uint64_t d20 = webhook_retry_ms(20, 1000, 60000);

		assert_in_range(d1, 500, 1000);
		assert_in_range(d3, 2000, 4000);
		assert_in_range(d20, 30000, 60000);
	}
	assert_int_equal(webhook_retry_ms(1000000, 1000, 60000) <= 60000, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_internal_ranges_are_refused_unless_allowed),
	        cmocka_unit_test(test_urls),
	        cmocka_unit_test(test_signature_is_hmac_sha256_of_time_dot_body),
	        cmocka_unit_test(test_retry_doubles_within_bounds_with_jitter),
	};

	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
