/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* metrics: the coordinator's /metrics: what each part counts, and the fleet from SQL. */
#define LOG_MODULE "metrics"

#include "metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "prom.h"
#include "scrape.h"

#define QUERY_DEADLINE_MS 5000
#define SERVERS_MAX       10000
#define CHANGES_PER_READ  10000
#define SERVER_NAME_MAX   64

/* The servers: online, revision lag, pool size and use. */
static const char servers_sql[] =
        "SELECT s.name, (s.last_seen_at IS NOT NULL AND s.last_seen_at > now() - $1::interval)"
        "::int, s.revision - s.applied_revision,"
        " (SELECT count(*) FROM pool_addresses p WHERE p.server_id = s.id),"
        " (SELECT coalesce(sum(u.used), 0) FROM server_usage u WHERE u.server_id = s.id)"
        " FROM servers s WHERE s.deleted_at IS NULL ORDER BY s.name LIMIT $2::integer";

/* Routers by status, every status but deleted, zero included. */
static const char routers_sql[] =
        "SELECT e::text, count(r.status) FROM unnest(enum_range(NULL::router_status)) e"
        " LEFT JOIN routers r ON r.status = e WHERE e <> $1::router_status GROUP BY e ORDER BY e";

/*
 * Changes applied after $1, with the seconds from commit to applied. Recently applied
 * changes are at most the newest few thousand revisions below a server's applied one,
 * so the primary key bounds what is read.
 */
static const char changes_sql[] =
        "SELECT extract(epoch FROM c.applied_at - c.committed_at)::float8, c.applied_at::text"
        " FROM servers s JOIN changes c ON c.server_id = s.id"
        " AND c.revision > s.applied_revision - $2::bigint"
        " WHERE c.applied_at > $1::timestamptz ORDER BY c.applied_at LIMIT $2::bigint";

static const double apply_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                      1,     2.5,  5,     10,   30,  60};

struct server_row {
	char name[SERVER_NAME_MAX];
	bool online;
	int64_t lag, pool_size, pool_used;
};

struct status_row {
	char status[24];
	int64_t n;
};

enum query {
	QUERY_SERVERS,
	QUERY_ROUTERS,
	QUERY_CHANGES,
	QUERY__COUNT,
};

struct metrics;

struct metrics_query {
	struct metrics *m;
	bool in_flight;
};

struct metrics {
	uv_loop_t *loop;
	struct metrics_options o;
	struct wgf_scrape *scrape;
	uv_timer_t refresh;
	struct metrics_query q[QUERY__COUNT];
	unsigned in_flight; /* queries whose callbacks have not run */
	bool stopping, timer_closed;
	struct server_row *servers;
	size_t n_servers;
	bool servers_known;
	struct status_row routers[16];
	size_t n_routers;
	char watermark[64]; /* the newest applied_at counted */
	struct wgf_prom_histogram apply;
	double refreshed_at; /* wall seconds of the last complete servers answer */
	uint64_t refresh_failures;
	uint64_t sweeps_ok, sweeps_failed, expired;
};

static void maybe_free(struct metrics *m)
{
	if (m->stopping && m->timer_closed && m->in_flight == 0 && !m->scrape) {
		free(m->servers);
		free(m);
	}
}

static bool query_done(struct metrics_query *q, const struct db_error *e)
{
	struct metrics *m = q->m;

	q->in_flight = false;
	m->in_flight--;
	if (m->stopping) {
		maybe_free(m);
		return false;
	}
	if (e) {
		m->refresh_failures++;
		log_debug("A metrics refresh failed, keeping the last values: %s", e->message);
		return false;
	}
	return true;
}

static void on_servers(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct metrics_query *q = ctx;
	struct metrics *m = q->m;
	size_t n;
	struct server_row *rows;

	if (!query_done(q, e))
		return;
	n = (size_t)PQntuples(res);
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return;
	for (size_t i = 0; i < n; i++) {
		snprintf(rows[i].name, sizeof(rows[i].name), "%s", PQgetvalue(res, (int)i, 0));
		rows[i].online = atoi(PQgetvalue(res, (int)i, 1)) != 0;
		rows[i].lag = strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
		rows[i].pool_size = strtoll(PQgetvalue(res, (int)i, 3), NULL, 10);
		rows[i].pool_used = strtoll(PQgetvalue(res, (int)i, 4), NULL, 10);
	}
	free(m->servers);
	m->servers = rows;
	m->n_servers = n;
	m->servers_known = true;
	m->refreshed_at = (double)time(NULL);
}

static void on_routers(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct metrics_query *q = ctx;
	struct metrics *m = q->m;

	if (!query_done(q, e))
		return;
	m->n_routers = 0;
	for (int i = 0; i < PQntuples(res) && m->n_routers < WGF_ARRAY_SIZE(m->routers); i++) {
		struct status_row *r = &m->routers[m->n_routers++];

		snprintf(r->status, sizeof(r->status), "%s", PQgetvalue(res, i, 0));
		r->n = strtoll(PQgetvalue(res, i, 1), NULL, 10);
	}
}

static void on_changes(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct metrics_query *q = ctx;
	struct metrics *m = q->m;
	int n;

	if (!query_done(q, e))
		return;
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		wgf_prom_histogram_observe(&m->apply, strtod(PQgetvalue(res, i, 0), NULL));
	if (n > 0)
		snprintf(m->watermark, sizeof(m->watermark), "%s", PQgetvalue(res, n - 1, 1));
}

static void send_query(struct metrics *m, enum query which, const char *sql, int n,
                       const char *const *params, db_result_cb cb)
{
	struct metrics_query *q = &m->q[which];

	if (q->in_flight)
		return;
	if (db_query(m->o.db, sql, n, params, uv_now(m->loop) + QUERY_DEADLINE_MS, cb, q) < 0) {
		m->refresh_failures++;
		return;
	}
	q->in_flight = true;
	m->in_flight++;
}

static void on_refresh(uv_timer_t *t)
{
	struct metrics *m = t->data;
	char online[40], max_servers[16], per_read[16];

	snprintf(online, sizeof(online), "%llu milliseconds",
	         (unsigned long long)m->o.server_online_ms);
	snprintf(max_servers, sizeof(max_servers), "%d", SERVERS_MAX);
	snprintf(per_read, sizeof(per_read), "%d", CHANGES_PER_READ);
	send_query(m, QUERY_SERVERS, servers_sql, 2, WGF_STRINGS(online, max_servers), on_servers);
	send_query(m, QUERY_ROUTERS, routers_sql, 1, WGF_STRINGS("deleted"), on_routers);
	send_query(m, QUERY_CHANGES, changes_sql, 2, WGF_STRINGS(m->watermark, per_read),
	           on_changes);
}

static void write_pools(const struct metrics *m, FILE *f)
{
	static const struct {
		const char *name, *help;
		size_t offset;
	} fams[] = {
	        {"wgfleet_db_pool_connections", "Database connections a pool keeps open.",
	         offsetof(struct db_stats, connections)},
	        {"wgfleet_db_pool_connections_up", "Database connections of a pool connected now.",
	         offsetof(struct db_stats, up)},
	        {"wgfleet_db_pool_in_use", "Database connections of a pool running a query now.",
	         offsetof(struct db_stats, busy)},
	        {"wgfleet_db_pool_waiting", "Queries waiting for a connection of a pool.",
	         offsetof(struct db_stats, queued)},
	};
	struct db_stats st[WGF_ARRAY_SIZE(m->o.pools)];

	for (size_t p = 0; p < WGF_ARRAY_SIZE(m->o.pools); p++)
		if (m->o.pools[p])
			db_get_stats(m->o.pools[p], &st[p]);
	for (size_t i = 0; i < WGF_ARRAY_SIZE(fams); i++) {
		wgf_prom_family(f, fams[i].name, "gauge", fams[i].help);
		for (size_t p = 0; p < WGF_ARRAY_SIZE(m->o.pools); p++) {
			if (!m->o.pools[p])
				continue;
			wgf_prom(f, fams[i].name,
			         *(const unsigned *)((const char *)&st[p] + fams[i].offset),
			         {"pool", st[p].name});
		}
	}
}

static void write_servers(const struct metrics *m, FILE *f)
{
	static const char *const names[] = {
	        "wgfleet_server_online",
	        "wgfleet_server_revision_lag",
	        "wgfleet_server_pool_addresses",
	        "wgfleet_server_pool_addresses_used",
	};
	static const char *const helps[] = {
	        "1 when the server's agent was seen within [api] server_online_within, else 0.",
	        "Revisions of the server's desired set its agent has not reported applied.",
	        "Addresses of the server's pool that routers can be given.",
	        "Addresses of the server's pool held by routers (reserved or live).",
	};
	size_t online = 0;

	for (size_t k = 0; k < WGF_ARRAY_SIZE(names); k++) {
		wgf_prom_family(f, names[k], "gauge", helps[k]);
		for (size_t i = 0; i < m->n_servers; i++) {
			const struct server_row *s = &m->servers[i];
			const int64_t v[] = {s->online, s->lag, s->pool_size, s->pool_used};

			wgf_prom(f, names[k], v[k], {"server", s->name});
		}
	}
	for (size_t i = 0; i < m->n_servers; i++)
		online += m->servers[i].online;
	wgf_prom_family(f, "wgfleet_agents_online", "gauge",
	                "Servers whose agent was seen within [api] server_online_within.");
	if (m->servers_known)
		wgf_prom(f, "wgfleet_agents_online", online);
	wgf_prom_family(f, "wgfleet_routers", "gauge",
	                "Routers by status (deleted ones are not counted).");
	for (size_t i = 0; i < m->n_routers; i++)
		wgf_prom(f, "wgfleet_routers", m->routers[i].n, {"status", m->routers[i].status});
	wgf_prom_family(f, "wgfleet_change_apply_seconds", "histogram",
	                "Time from a change's commit to its agent reporting it applied, for "
	                "changes applied since this coordinator started.");
	wgf_prom_histogram_write(f, "wgfleet_change_apply_seconds", NULL, 0, &m->apply);
	wgf_prom_family(f, "wgfleet_metrics_refreshed_timestamp_seconds", "gauge",
	                "When the values read from the database were last read (Unix time).");
	if (m->servers_known)
		wgf_prom(f, "wgfleet_metrics_refreshed_timestamp_seconds", m->refreshed_at);
	wgf_prom_family(f, "wgfleet_metrics_refresh_failures_total", "counter",
	                "Refresh queries that failed or could not be queued.");
	wgf_prom(f, "wgfleet_metrics_refresh_failures_total", m->refresh_failures);
}

static void render(void *ctx, FILE *f)
{
	const struct metrics *m = ctx;

	wgf_prom_family(f, "wgfleet_build_info", "gauge",
	                "Always 1; the labels say which daemon and version this is.");
	wgf_prom(f, "wgfleet_build_info", 1, {"daemon", "coordinator"}, {"version", WGF_VERSION});
	api_write_metrics(m->o.api, f);
	http_write_metrics(m->o.http, f);
	write_pools(m, f);
	if (m->o.channel)
		channel_write_metrics(m->o.channel, f);
	write_servers(m, f);
	wgf_prom_family(f, "wgfleet_sweeps_total", "counter",
	                "Runs of the reservation sweeper, by result.");
	wgf_prom(f, "wgfleet_sweeps_total", m->sweeps_ok, {"result", "ok"});
	wgf_prom(f, "wgfleet_sweeps_total", m->sweeps_failed, {"result", "failed"});
	wgf_prom_family(f, "wgfleet_reservations_expired_total", "counter",
	                "Reservations the sweeper expired (their addresses released).");
	wgf_prom(f, "wgfleet_reservations_expired_total", m->expired);
}

int metrics_start(uv_loop_t *loop, const struct metrics_options *o, struct metrics **ret,
                  int *ret_port, struct wgf_err *err)
{
	struct metrics *m = calloc(1, sizeof(*m));
	struct tm tm;
	time_t now = time(NULL);
	int r;

	if (!m)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	m->loop = loop;
	m->o = *o;
	for (size_t i = 0; i < QUERY__COUNT; i++)
		m->q[i].m = m;
	wgf_prom_histogram_init(&m->apply, apply_bounds, WGF_ARRAY_SIZE(apply_bounds));
	/* Changes applied before the start are not this coordinator's to count. */
	gmtime_r(&now, &tm);
	strftime(m->watermark, sizeof(m->watermark), "%Y-%m-%d %H:%M:%S+00", &tm);
	r = wgf_scrape_start(loop, o->listen, render, m, &m->scrape, ret_port, err);
	if (r < 0) {
		free(m);
		return r;
	}
	uv_timer_init(loop, &m->refresh);
	m->refresh.data = m;
	uv_timer_start(&m->refresh, on_refresh, 0, o->refresh_ms);
	*ret = m;
	return 0;
}

void metrics_sweep(struct metrics *m, bool ok, uint64_t expired)
{
	if (!m)
		return;
	if (ok)
		m->sweeps_ok++;
	else
		m->sweeps_failed++;
	m->expired += expired;
}

void metrics_set_online_ms(struct metrics *m, uint64_t server_online_ms)
{
	if (m)
		m->o.server_online_ms = server_online_ms;
}

static void refresh_closed(uv_handle_t *h)
{
	struct metrics *m = h->data;

	m->timer_closed = true;
	maybe_free(m);
}

void metrics_stop(struct metrics *m)
{
	if (!m || m->stopping)
		return;
	m->stopping = true;
	wgf_scrape_stop(m->scrape);
	m->scrape = NULL;
	uv_close((uv_handle_t *)&m->refresh, refresh_closed);
}
