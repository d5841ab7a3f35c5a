/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* db: a small pool of asynchronous libpq connections on the coordinator's libuv loop. */
#ifndef WGF_COORDINATOR_DB_H
#define WGF_COORDINATOR_DB_H

/*
 * The coordinator never blocks on PostgreSQL. A query is queued with its parameters
 * (copied) and a callback; an idle connection sends it and a uv_poll_t on the
 * connection's socket drives PQflush, PQconsumeInput and PQgetResult; the callback
 * runs on the loop with the result or an error. There is no locking: everything here
 * belongs to the loop thread.
 *
 * Statements are prepared, so PostgreSQL parses and plans each text once a session
 * rather than at every call: the pool numbers each distinct text it is given, and a
 * connection sends PQsendPrepare the first time it runs one, PQsendQueryPrepared
 * after that. A new connection (after a reconnect, or on another host) starts with
 * nothing prepared. A prepared statement refused because what it calls changed its
 * result type since (a function redefined under a running coordinator) runs again
 * unnamed, once, and stays unnamed on that connection; a failed preparation fails the
 * query with its error, and the next use prepares again. Only the LISTEN statements go
 * by the simple protocol.
 *
 * Connections are made with PQconnectStart/PQconnectPoll, also on the loop. A
 * connection that breaks fails its query with -ECONNRESET (the caller decides whether
 * a retry is safe) and is remade after a jittered backoff of up to 5 s. The queue is
 * bounded: db_query returns -EAGAIN when it is full, so overload becomes a quick 503
 * instead of a growing backlog. Each query also carries a deadline; one that waited
 * past it in the queue fails with -ETIMEDOUT without being sent (a timer checks the
 * queue every DEADLINE_TICK_MS). When no connection is up and none is being made,
 * db_query fails at once with -ECONNREFUSED and the queue is failed with it: nothing
 * waits for a database that is not coming. Server-side, statement_timeout bounds the
 * time a sent query can take. Losing the last connection and getting one back are one
 * log line each; libpq's own notices go to the debug log.
 *
 * Errors reach the callback as a struct db_error: the negative errno from the SQLSTATE
 * (common/err.h), the SQLSTATE itself, and PostgreSQL's message, detail and hint.
 */

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "err.h"

#define DB_PARAMS_MAX 24

struct db;

struct db_error {
	int code; /* negative errno */
	char sqlstate[6];
	char message[256];
	char detail[512];
	char hint[64];
};

/*
 * res is borrowed: valid during the call, cleared after it. On failure res is NULL and
 * e says why; on success e is NULL.
 */
typedef void (*db_result_cb)(void *ctx, const PGresult *res, const struct db_error *e);

/*
 * A NOTIFY arrived (channel and payload borrowed), or, with channel NULL, a connection
 * (re)started listening: notifications sent while it was down are lost, so the
 * receiver should treat everything as possibly changed.
 */
typedef void (*db_notify_cb)(void *ctx, const char *channel, const char *payload);

struct db_options {
	const char *conninfo;
	unsigned connections; /* how many to keep open */
	unsigned queue_max;   /* queued queries beyond which db_query says -EAGAIN */
	uint64_t statement_timeout_ms;
	/* Optional: more session settings for every connection, as libpq options
	 * ("-c name=value ..."; borrowed, fixed by the caller, never user text). */
	const char *settings;
	/* Optional: fixed statements such as "LISTEN wgf_changes; LISTEN wgf_servers" that
	 * every connection runs first; notifications then go to notify(notify_ctx, ...). */
	const char *listen_sql;
	db_notify_cb notify;
	void *notify_ctx;
	const char *name; /* the pool's name in its log lines ("api", "channel", "listener") */
};

int db_new(uv_loop_t *loop, const struct db_options *o, struct db **ret);

/*
 * Queues sql with n parameters (text; NULL entries are SQL NULL; copied). The callback
 * runs exactly once, later, unless db_query fails (then it never runs). deadline_ms is
 * an absolute uv_now() value; 0 means none.
 */
int db_query(struct db *db, const char *sql, int n, const char *const *params, uint64_t deadline_ms,
             db_result_cb cb, void *ctx);

/* A pool right now, for /metrics. */
struct db_stats {
	const char *name;     /* db_options.name, borrowed */
	unsigned connections; /* configured */
	unsigned up;          /* connected, idle or busy */
	unsigned busy;        /* a query in flight */
	unsigned queued;      /* waiting for a connection */
};

void db_get_stats(const struct db *db, struct db_stats *ret);

/* Whether a connection is up (idle or busy) right now. */
bool db_is_up(const struct db *db);

/* Fails every queued query with -ECANCELED, closes the connections and frees db once
 * the loop has closed its handles. */
void db_close(struct db *db);

#endif
