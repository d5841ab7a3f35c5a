/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* metrics: the agent's /metrics: what its passes did, its link, its peers' handshakes. */
#ifndef WGF_AGENT_METRICS_H
#define WGF_AGENT_METRICS_H

/*
 * The daemon tells this what each pass and interface set-up did, on the loop thread
 * (agent_metrics_pass(), agent_metrics_ensure()); a scrape writes those counts with the
 * session's state and the monitor's last read of the interface (peers by the age of
 * their latest handshake), which are read as they are at that moment. Nothing here
 * touches the backend, so a scrape never waits for a pass.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "monitor.h"
#include "prom.h"
#include "reconcile.h"
#include "session.h"

struct agent_metrics {
	struct wgf_prom_histogram pass_seconds;
	uint64_t passes_ok, passes_failed;
	uint64_t added, updated, removed; /* peer changes applied */
	uint64_t drift;                   /* peers found drifted and put right */
	uint64_t backend_errors;
	bool has_pass; /* a pass read the interface: the gauges below mean something */
	size_t desired, refused;
	size_t unknown; /* adopt mode: unknown peers the last full pass kept */
	uint64_t applied_revision;
	double applied_at; /* unix seconds of the last pass that left nothing pending */
};

void agent_metrics_init(struct agent_metrics *m);

/* Setting the interface up returned r (0 or a negative errno). */
void agent_metrics_ensure(struct agent_metrics *m, int r);

/* A pass returned run_r; res is its result when run_r is 0; it took ms. */
void agent_metrics_pass(struct agent_metrics *m, int run_r, const struct reconcile_result *res,
                        uint64_t ms);

/* Writes every family; sess may be NULL (no coordinator), mon is borrowed. now_ms is the
 * unix time in ms, against which handshakes are aged. */
void agent_metrics_write(const struct agent_metrics *m, struct session *sess,
                         const struct monitor *mon, int64_t now_ms, FILE *f);

#endif
