/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/prom.c: samples, escaping, numbers and histograms as written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "prom.h"

/* What fn wrote, as one string (the caller frees it). */
#define WRITTEN(stmt)                                    \
	({                                               \
		char *text_ = NULL;                      \
		size_t len_ = 0;                         \
		FILE *f = open_memstream(&text_, &len_); \
		assert_non_null(f);                      \
		stmt;                                    \
		assert_int_equal(fclose(f), 0);          \
		text_;                                   \
	})

static void assert_written(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

static void test_family_and_samples(void **state)
{
	(void)state;
	assert_written(WRITTEN(wgf_prom_family(f, "wgfleet_x_total", "counter", "Things.")),
	               "# HELP wgfleet_x_total Things.\n# TYPE wgfleet_x_total counter\n");
	assert_written(WRITTEN(wgf_prom(f, "wgfleet_up", 1)), "wgfleet_up 1\n");
	assert_written(WRITTEN(wgf_prom_single(f, "wgfleet_n", "gauge", "N.", 7)),
	               "# HELP wgfleet_n N.\n# TYPE wgfleet_n gauge\nwgfleet_n 7\n");
	assert_written(WRITTEN(wgf_prom(f, "wgfleet_x_total", 12345678901234ULL, {"kind", "hint"},
	                                {"result", "ok"})),
	               "wgfleet_x_total{kind=\"hint\",result=\"ok\"} 12345678901234\n");
}

static void test_label_values_escaped(void **state)
{
	(void)state;
	assert_written(WRITTEN(wgf_prom(f, "m", 0, {"v", "a\"b\\c\nd"})),
	               "m{v=\"a\\\"b\\\\c\\nd\"} 0\n");
}

static void test_numbers(void **state)
{
	(void)state;
	assert_written(WRITTEN(wgf_prom(f, "m", 0.25)), "m 0.25\n");
	assert_written(WRITTEN(wgf_prom(f, "m", -3)), "m -3\n");
	assert_written(WRITTEN(wgf_prom(f, "m", 1e300 * 1e300)), "m +Inf\n");
	assert_written(WRITTEN(wgf_prom(f, "m", 1796135883.5)), "m 1796135883.5\n");
}

static void test_histogram_cumulative(void **state)
{
	static const double bounds[] = {0.1, 1, 10};
	const struct wgf_prom_label l[] = {{"route", "/v1/x"}};
	struct wgf_prom_histogram h;

	(void)state;
	wgf_prom_histogram_init(&h, bounds, WGF_ARRAY_SIZE(bounds));
	wgf_prom_histogram_observe(&h, 0.05);
	wgf_prom_histogram_observe(&h, 0.1); /* on the bound: in that bucket */
	wgf_prom_histogram_observe(&h, 5);
	wgf_prom_histogram_observe(&h, 50); /* only in +Inf */
	assert_written(WRITTEN(wgf_prom_histogram_write(f, "d_seconds", l, 1, &h)),
	               "d_seconds_bucket{route=\"/v1/x\",le=\"0.1\"} 2\n"
	               "d_seconds_bucket{route=\"/v1/x\",le=\"1\"} 2\n"
	               "d_seconds_bucket{route=\"/v1/x\",le=\"10\"} 3\n"
	               "d_seconds_bucket{route=\"/v1/x\",le=\"+Inf\"} 4\n"
	               "d_seconds_sum{route=\"/v1/x\"} 55.15\n"
	               "d_seconds_count{route=\"/v1/x\"} 4\n");
	wgf_prom_histogram_init(&h, bounds, WGF_ARRAY_SIZE(bounds));
	assert_written(WRITTEN(wgf_prom_histogram_write(f, "e", NULL, 0, &h)),
	               "e_bucket{le=\"0.1\"} 0\ne_bucket{le=\"1\"} 0\ne_bucket{le=\"10\"} 0\n"
	               "e_bucket{le=\"+Inf\"} 0\ne_sum 0\ne_count 0\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_family_and_samples),
	        cmocka_unit_test(test_label_values_escaped),
	        cmocka_unit_test(test_numbers),
	        cmocka_unit_test(test_histogram_cumulative),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
