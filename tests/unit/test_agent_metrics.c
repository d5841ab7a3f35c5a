/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for agent/metrics.c: what passes count, and peers by handshake age. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

#define NOW_MS 1795604061825LL
#define MINUTE (60 * 1000LL)

/* Everything written with no session; the caller frees it. */
static char *written(const struct agent_metrics *m, const struct monitor *mon)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	agent_metrics_write(m, NULL, mon, NOW_MS, f);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void assert_has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("no '%s' in:\n%s", line, text);
}

static void test_passes(void **state)
{
	struct agent_metrics m;
	struct monitor mon = {0};
	struct reconcile_result ok = {.revision = 7,
	                              .n_desired = 3,
	                              .n_added = 2,
	                              .n_removed = 1,
	                              .n_failed = 1,
	                              .n_drift = 1};
	struct reconcile_result broken = {.revision = 8, .n_added = 5, .apply_error = -EIO};
	char *text;

	(void)state;
	agent_metrics_init(&m);
	text = written(&m, &mon);
	/* Before any pass: counters at zero, no gauge that would claim a state. */
	assert_has(text, "wgfleet_agent_passes_total{result=\"ok\"} 0\n");
	assert_null(strstr(text, "wgfleet_agent_peers_desired"));
	free(text);

	agent_metrics_pass(&m, 0, &ok, 250);
	agent_metrics_pass(&m, 0, &broken, 3);
	agent_metrics_pass(&m, -ENODEV, NULL, 1);
	agent_metrics_ensure(&m, -EPERM);
	agent_metrics_ensure(&m, 0);
	text = written(&m, &mon);
	assert_has(text, "wgfleet_agent_passes_total{result=\"ok\"} 1\n");
	assert_has(text, "wgfleet_agent_passes_total{result=\"failed\"} 2\n");
	assert_has(text, "wgfleet_agent_pass_duration_seconds_count 3\n");
	assert_has(text, "wgfleet_agent_pass_duration_seconds_bucket{le=\"0.005\"} 2\n");
	assert_has(text, "wgfleet_agent_pass_duration_seconds_sum 0.254\n");
	/* The broken pass's changes did not all go in: not counted. */
	assert_has(text, "wgfleet_agent_peer_changes_total{kind=\"add\"} 2\n");
	assert_has(text, "wgfleet_agent_peer_changes_total{kind=\"remove\"} 1\n");
	assert_has(text, "wgfleet_agent_drift_repairs_total 1\n");
	assert_has(text, "wgfleet_agent_backend_errors_total 3\n");
	/* The gauges are the last pass that read the interface; the revision the last
	 * one that applied completely. */
	assert_has(text, "wgfleet_agent_peers_desired 0\n");
	assert_has(text, "wgfleet_agent_peers_refused 0\n");
	assert_has(text, "wgfleet_agent_applied_revision 7\n");
	free(text);
}

static void test_handshake_ages(void **state)
{
	struct monitor_fact facts[6] = {
	        {.last_handshake_ms = 0},
	        {.last_handshake_ms = NOW_MS - 10 * 1000},
	        {.last_handshake_ms = NOW_MS - 3 * MINUTE}, /* on the bound: still under */
	        {.last_handshake_ms = NOW_MS - 3 * MINUTE - 1},
	        {.last_handshake_ms = NOW_MS - 25 * 60 * MINUTE},
	        {.last_handshake_ms = NOW_MS + 5000}, /* a clock step: counted as recent */
	};
	struct monitor mon = {.facts = facts, .n_facts = 6, .has_read = true};
	struct agent_metrics m;
	char *text;

	(void)state;
	agent_metrics_init(&m);
	text = written(&m, &mon);
	assert_has(text, "wgfleet_agent_peers_actual 6\n");
	assert_has(text, "wgfleet_agent_peers_by_handshake_age{age=\"under_3m\"} 3\n");
	assert_has(text, "wgfleet_agent_peers_by_handshake_age{age=\"under_1h\"} 1\n");
	assert_has(text, "wgfleet_agent_peers_by_handshake_age{age=\"under_1d\"} 0\n");
	assert_has(text, "wgfleet_agent_peers_by_handshake_age{age=\"over_1d\"} 1\n");
	assert_has(text, "wgfleet_agent_peers_by_handshake_age{age=\"never\"} 1\n");
	assert_has(text, "wgfleet_build_info{daemon=\"agent\",version=\"" WGF_VERSION "\"} 1\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_passes),
	        cmocka_unit_test(test_handshake_ages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
