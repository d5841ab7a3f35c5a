/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* metrics: the coordinator's /metrics: what each part counts, and the fleet from SQL. */
#ifndef WGF_COORDINATOR_METRICS_H
#define WGF_COORDINATOR_METRICS_H

/*
 * A scrape never waits for the database. The API, HTTP server, channel and pools
 * count as they work, on the loop, and write their own families when asked
 * (api_write_metrics() and friends). What only SQL knows (servers online, revision
 * lag, pool use per server, routers by status, how long changes took to be applied)
 * is read every refresh_ms on the API's pool: three small queries with deadlines, one
 * at a time, each sent only while no API query waits for the pool (else the rest waits
 * for the next tick), so the refresh never takes an API request's place in the queue.
 * A scrape writes the last answers, with the time they were read. A refresh that fails
 * keeps the previous values and is counted.
 *
 * The change-to-applied histogram counts the changes applied since this coordinator
 * started: each refresh compares every server's applied revision with the one the
 * previous refresh read, and reads the changes in between (at most the newest 1,000 a
 * server and refresh) through the primary key. With two coordinators on one database,
 * each counts every change.
 *
 * The sources are borrowed and must outlive metrics_stop(); NULL ones (a channel not
 * started) are left out.
 */

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "api.h"
#include "channel.h"
#include "db.h"
#include "delivery.h"
#include "err.h"
#include "http.h"

struct metrics_options {
	const char *listen;        /* host:port of the /metrics listener */
	uint64_t refresh_ms;       /* how often the SQL-backed values are read */
	uint64_t server_online_ms; /* a server seen this recently is online */
	struct db *db;             /* the pool the refresh queries use */
	struct db *pools[2];       /* pools whose use is reported (NULL: none) */
	struct api *api;
	struct http_server *http;
	struct channel *channel;
	struct delivery *delivery;
};

struct metrics;

int metrics_start(uv_loop_t *loop, const struct metrics_options *o, struct metrics **ret,
                  int *ret_port, struct wgf_err *err);

/* A sweep ended: ok, and how many reservations it expired. */
void metrics_sweep(struct metrics *m, bool ok, uint64_t expired);

/* SIGHUP: a new online window. */
void metrics_set_online_ms(struct metrics *m, uint64_t server_online_ms);

/* Stops the listener and the refresh; the memory goes once the loop closed them. NULL
 * is fine. */
void metrics_stop(struct metrics *m);

#endif
