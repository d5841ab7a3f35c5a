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
#define CHANGES_PER_READ  1000 /* per server and refresh; more are left uncounted */
#define SERVER_NAME_MAX   64

/*
 * The servers (by id): online, revision lag, pool size and use, applied revision. A
 * pool never changes size, so it is counted only for servers newer than $3, the
 * highest id already known (ids only grow); the others' is NULL. Joins to grouped
 * subqueries, not a subquery a row: the planner's estimate for those grew with the
 * fleet and set off JIT compilation (half a second a refresh at 1,000 servers).
 */
static const char servers_sql[] =
        "SELECT s.id, s.name,"
        " (s.last_seen_at IS NOT NULL AND s.last_seen_at > now() - $1::interval)::int,"
        " s.revision - s.applied_revision, p.n, coalesce(u.used, 0), s.applied_revision"
        " FROM servers s"
        " LEFT JOIN (SELECT server_id, sum(used) AS used FROM server_usage GROUP BY server_id) u"
        " ON u.server_id = s.id"
        " LEFT JOIN (SELECT server_id, count(*) AS n FROM pool_addresses"
        " WHERE server_id > $3::bigint GROUP BY server_id) p ON p.server_id = s.id"
        " WHERE s.deleted_at IS NULL ORDER BY s.id LIMIT $2::integer";

/* Routers by status, every status but deleted, zero included. */
static const char routers_sql[] =
        "SELECT e::text, count(r.status) FROM unnest(enum_range(NULL::router_status)) e"
        " LEFT JOIN routers r ON r.status = e WHERE e <> $1::router_status GROUP BY e ORDER BY e";

/*
 * The seconds from commit to applied of the changes each listed server applied since
 * the last refresh: revisions in (lo, hi], read through the primary key, so only the
 * new rows are touched however long the change log is.
 */
static const char changes_sql[] =
        "SELECT extract(epoch FROM c.applied_at - c.committed_at)::float8"
        " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS w(server_id, lo, hi)"
        " JOIN changes c ON c.server_id = w.server_id AND c.revision > w.lo"
        " AND c.revision <= w.hi WHERE c.applied_at IS NOT NULL";

static const double apply_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                      1,     2.5,  5,     10,   30,  60};

struct server_row {
	int64_t id;
	char name[SERVER_NAME_MAX];
	bool online;
	int64_t lag, pool_size, pool_used;
	int64_t applied; /* its applied revision */
};

struct status_row {
	char status[24];
	int64_t n;
};

struct metrics {
	uv_loop_t *loop;
	struct metrics_options o;
	struct wgf_scrape *scrape;
	uv_timer_t refresh;
	bool in_flight; /* a query of the refresh has not been answered */
	bool stopping, timer_closed;
	struct server_row *servers;
	size_t n_servers;
	bool servers_known;
	int64_t max_id; /* the highest server id whose pool size is known */
	struct status_row routers[16];
	size_t n_routers;
	struct wgf_prom_histogram apply;
	double refreshed_at; /* wall seconds of the last complete servers answer */
	uint64_t refresh_failures, refresh_deferred;
	uint64_t sweeps_ok, sweeps_failed, expired;
};

static void maybe_free(struct metrics *m)
{
	if (m->stopping && m->timer_closed && !m->in_flight && !m->scrape) {
		free(m->servers);
		free(m);
	}
}

static bool query_done(struct metrics *m, const struct db_error *e)
{
	m->in_flight = false;
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

static void send_query(struct metrics *m, const char *sql, int n, const char *const *params,
                       db_result_cb cb);
static void on_changes(void *ctx, const PGresult *res, const struct db_error *e);
static void send_servers(struct metrics *m);

/* Appends ",v" (or "{v" first) to the array text at *f. */
static void array_add(FILE *f, bool *first, int64_t v)
{
	fprintf(f, "%c%lld", *first ? '{' : ',', (long long)v);
	*first = false;
}

/*
 * Asks for the changes each server applied between the old rows' applied revisions
 * and the new ones'. Both lists are sorted by id; a server new to the list, or whose
 * applied revision went back (a new epoch), starts counting from now.
 */
static void count_applied(struct metrics *m, const struct server_row *old, size_t n_old,
                          const struct server_row *cur, size_t n_cur)
{
	char *text[3] = {NULL};
	size_t len[3];
	FILE *f[3];
	bool first[3] = {true, true, true}, any = false;
	size_t j = 0;

	for (int k = 0; k < 3; k++)
		f[k] = open_memstream(&text[k], &len[k]);
	for (size_t i = 0; i < n_cur && f[0] && f[1] && f[2]; i++) {
		while (j < n_old && old[j].id < cur[i].id)
			j++;
		if (j == n_old || old[j].id != cur[i].id || cur[i].applied <= old[j].applied)
			continue;
		array_add(f[0], &first[0], cur[i].id);
		array_add(f[1], &first[1],
		          cur[i].applied - old[j].applied > CHANGES_PER_READ
		                  ? cur[i].applied - CHANGES_PER_READ
		                  : old[j].applied);
		array_add(f[2], &first[2], cur[i].applied);
		any = true;
	}
	for (int k = 0; k < 3; k++) {
		if (f[k]) {
			fputc('}', f[k]);
			if (fclose(f[k]) != 0)
				any = false;
		} else {
			any = false;
		}
	}
	if (any)
		send_query(m, changes_sql, 3, WGF_STRINGS(text[0], text[1], text[2]), on_changes);
	for (int k = 0; k < 3; k++)
		free(text[k]);
}

/* Pool sizes the query left out (NULL: -1) are the previous rows' (both sorted by id). */
static void carry_pool_sizes(struct metrics *m, struct server_row *cur, size_t n_cur)
{
	size_t j = 0;

	for (size_t i = 0; i < n_cur; i++) {
		while (j < m->n_servers && m->servers[j].id < cur[i].id)
			j++;
		if (cur[i].pool_size < 0 && j < m->n_servers && m->servers[j].id == cur[i].id)
			cur[i].pool_size = m->servers[j].pool_size;
		if (cur[i].pool_size >= 0 && cur[i].id > m->max_id)
			m->max_id = cur[i].id;
	}
}

static void on_servers(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct metrics *m = ctx;
	size_t n;
	struct server_row *rows;

	if (!query_done(m, e))
		return;
	n = (size_t)PQntuples(res);
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return;
	for (size_t i = 0; i < n; i++) {
		rows[i].id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
		snprintf(rows[i].name, sizeof(rows[i].name), "%s", PQgetvalue(res, (int)i, 1));
		rows[i].online = atoi(PQgetvalue(res, (int)i, 2)) != 0;
		rows[i].lag = strtoll(PQgetvalue(res, (int)i, 3), NULL, 10);
		rows[i].pool_size = PQgetisnull(res, (int)i, 4)
		                            ? -1
		                            : strtoll(PQgetvalue(res, (int)i, 4), NULL, 10);
		rows[i].pool_used = strtoll(PQgetvalue(res, (int)i, 5), NULL, 10);
		rows[i].applied = strtoll(PQgetvalue(res, (int)i, 6), NULL, 10);
	}
	carry_pool_sizes(m, rows, n);
	if (m->servers_known)
		count_applied(m, m->servers, m->n_servers, rows, n);
	free(m->servers);
	m->servers = rows;
	m->n_servers = n;
	m->servers_known = true;
	m->refreshed_at = (double)time(NULL);
}

static void on_routers(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct metrics *m = ctx;

	if (!query_done(m, e))
		return;
	m->n_routers = 0;
	for (int i = 0; i < PQntuples(res) && m->n_routers < WGF_ARRAY_SIZE(m->routers); i++) {
		struct status_row *r = &m->routers[m->n_routers++];

		snprintf(r->status, sizeof(r->status), "%s", PQgetvalue(res, i, 0));
		r->n = strtoll(PQgetvalue(res, i, 1), NULL, 10);
	}
	send_servers(m);
}

static void on_changes(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct metrics *m = ctx;
	int n;

	if (!query_done(m, e))
		return;
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		wgf_prom_histogram_observe(&m->apply, strtod(PQgetvalue(res, i, 0), NULL));
}

/*
 * Queues one query of the refresh, unless the pool has queries waiting: the API's own
 * come first, and the rest of this refresh waits for the next tick.
 */
static void send_query(struct metrics *m, const char *sql, int n, const char *const *params,
                       db_result_cb cb)
{
	struct db_stats st;

	db_get_stats(m->o.db, &st);
	if (st.queued > 0) {
		m->refresh_deferred++;
		return;
	}
	if (db_query(m->o.db, sql, n, params, uv_now(m->loop) + QUERY_DEADLINE_MS, cb, m) < 0) {
		m->refresh_failures++;
		return;
	}
	m->in_flight = true;
}

static void send_servers(struct metrics *m)
{
	char online[40], max_servers[16], max_id[24];

	snprintf(online, sizeof(online), "%llu milliseconds",
	         (unsigned long long)m->o.server_online_ms);
	snprintf(max_servers, sizeof(max_servers), "%d", SERVERS_MAX);
	snprintf(max_id, sizeof(max_id), "%lld", (long long)m->max_id);
	send_query(m, servers_sql, 3, WGF_STRINGS(online, max_servers, max_id), on_servers);
}

/* One query at a time, each after the last one's answer: routers, servers, changes. */
static void on_refresh(uv_timer_t *t)
{
	struct metrics *m = t->data;

	if (!m->in_flight)
		send_query(m, routers_sql, 1, WGF_STRINGS("deleted"), on_routers);
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

			if (v[k] >= 0) /* a pool size not read (yet) is left out */
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
	wgf_prom_single(f, "wgfleet_metrics_refresh_failures_total", "counter",
	                "Refresh queries that failed or could not be queued.", m->refresh_failures);
	wgf_prom_single(f, "wgfleet_metrics_refresh_deferred_total", "counter",
	                "Refresh queries put off to the next interval because API queries were "
	                "waiting for the pool.",
	                m->refresh_deferred);
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
	if (m->o.delivery)
		delivery_write_metrics(m->o.delivery, f);
	write_servers(m, f);
	wgf_prom_family(f, "wgfleet_sweeps_total", "counter",
	                "Runs of the reservation sweeper, by result.");
	wgf_prom(f, "wgfleet_sweeps_total", m->sweeps_ok, {"result", "ok"});
	wgf_prom(f, "wgfleet_sweeps_total", m->sweeps_failed, {"result", "failed"});
	wgf_prom_single(f, "wgfleet_reservations_expired_total", "counter",
	                "Reservations the sweeper expired (their addresses released).", m->expired);
}

int metrics_start(uv_loop_t *loop, const struct metrics_options *o, struct metrics **ret,
                  int *ret_port, struct wgf_err *err)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	m->loop = loop;
	m->o = *o;
	wgf_prom_histogram_init(&m->apply, apply_bounds, WGF_ARRAY_SIZE(apply_bounds));
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
