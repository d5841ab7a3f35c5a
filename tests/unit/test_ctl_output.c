/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for ctl/output.c: durations, RFC 3339 times, relative times, dotted paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "ctl.h"

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		double seconds;
	} good[] = {{"0", 0},     {"5", 5},      {"2.5", 2.5},    {"90s", 90},  {"15m", 900},
	            {"2h", 7200}, {"1d", 86400}, {"250ms", 0.25}, {"0.5m", 30}, {"1.5h", 5400}};
	static const char *const bad[] = {"",    "s",  "-1", "5 m", "5x",
	                                  "5mm", "m5", " 5", "1e",  NULL};
	double v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		if (output_parse_duration(good[i].text, &v) < 0)
			fail_msg("'%s' refused", good[i].text);
		assert_float_equal(v, good[i].seconds, 1e-9);
	}
	for (const char *const *p = bad; *p; p++) {
		v = 42;
		if (output_parse_duration(*p, &v) == 0)
			fail_msg("'%s' accepted", *p);
		assert_float_equal(v, 42, 0);
	}
	assert_int_not_equal(output_parse_duration(NULL, &v), 0);
}

static void test_times(void **state)
{
	static const struct {
		const char *text;
		double epoch;
	} good[] = {
	        {"2026-12-01T08:00:00Z", 1796112000},
	        {"2026-12-01T08:00:00+00:00", 1796112000},
	        {"2026-12-01T09:30:00+01:30", 1796112000},
	        {"2026-12-01T06:00:00-02:00", 1796112000},
	        {"2026-12-01T08:00:00.25+00:00", 1796112000.25},
	        {"2026-12-01T08:00:00.123456+00", 1796112000.123456},
	};
	static const char *const bad[] = {
	        "yesterday", "2026-12-01", "2026-12-01 08:00:00Z", "2026-12-01T08:00:00Q",
	        "15m",       NULL};
	char out[40];
	double v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (output_parse_time(good[i].text, &v) < 0)
			fail_msg("'%s' refused", good[i].text);
		assert_float_equal(v, good[i].epoch, 1e-6);
	}
	for (const char *const *p = bad; *p; p++)
		if (output_parse_time(*p, &v) == 0)
			fail_msg("'%s' accepted", *p);
	output_format_time(1796112000.25, out, sizeof(out));
	assert_string_equal(out, "2026-12-01T08:00:00.250Z");
	assert_int_equal(output_parse_time(out, &v), 0);
	assert_float_equal(v, 1796112000.25, 1e-6);
}

/* The relative form of now + offset seconds. */
static void assert_relative(double offset, const char *want)
{
	char ts[40], out[64];

	output_format_time((double)wgf_clock_wall_ms() / 1000.0 + offset, ts, sizeof(ts));
	output_reltime(ts, out, sizeof(out));
	if (strcmp(out, want) != 0)
		fail_msg("%+.1f s: '%s', not '%s'", offset, out, want);
}

static void test_relative(void **state)
{
	char out[64];

	(void)state;
	assert_relative(0, "now");
	assert_relative(-12.2, "12s ago");
	assert_relative(-90.3, "1m ago");
	assert_relative(-3 * 3600 - 5, "3h ago");
	assert_relative(-2 * 86400 - 5, "2d ago");
	assert_relative(23 * 3600 + 1800, "in 23h");
	assert_relative(300.5, "in 5m");
	output_reltime(NULL, out, sizeof(out));
	assert_string_equal(out, "never");
	output_reltime("not a time", out, sizeof(out));
	assert_string_equal(out, "not a time");
}

static void test_dotted_paths(void **state)
{
	json_t *o = json_pack("{s:{s:i,s:{s:s}},s:n}", "pool", "used", 3, "deep", "x", "y", "z");

	(void)state;
	assert_int_equal(json_integer_value(output_get(o, "pool.used")), 3);
	assert_string_equal(json_string_value(output_get(o, "pool.deep.x")), "y");
	assert_true(json_is_null(output_get(o, "z")));
	assert_null(output_get(o, "pool.none"));
	assert_null(output_get(o, "none.used"));
	assert_null(output_get(NULL, "pool"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_durations),
	        cmocka_unit_test(test_times),
	        cmocka_unit_test(test_relative),
	        cmocka_unit_test(test_dotted_paths),
	};

	output_init(true);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
