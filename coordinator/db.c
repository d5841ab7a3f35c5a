/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* db: asynchronous libpq connections driven by uv_poll_t, and the query queue. */
#define LOG_MODULE "db"

#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"

#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
#define DEADLINE_TICK_MS 100

/* Distinct statement texts a pool prepares (the coordinator has fewer than 64); any
 * beyond are sent unnamed. */
#define STMTS_MAX 128

/* "feature_not_supported", which a prepared statement raises when the result type of
 * what it calls changed since it was prepared. */
#define SQLSTATE_PLAN_CHANGED "0A000"

enum conn_state {
	CONN_DOWN,       /* no socket; the retry timer may be armed */
	CONN_CONNECTING, /* PQconnectPoll in progress */
	CONN_IDLE,
	CONN_BUSY,    /* a job is in flight */
	CONN_CLOSING, /* waiting for the poll handle's close callback */
};

/* Where a statement stands on one connection. */
enum stmt_state {
	STMT_NEW,     /* not prepared on this connection yet */
	STMT_READY,   /* prepared: runs with PQsendQueryPrepared */
	STMT_UNNAMED, /* prepared once, then refused: sent unnamed from now on */
};

/* What a busy connection waits for. */
enum conn_phase {
	PHASE_QUERY,    /* the job's result */
	PHASE_PREPARE,  /* PQsendPrepare's result; the job's execution follows */
	PHASE_PREPARED, /* the job's result, from its prepared statement */
};

struct db_job {
	struct db_job *next;
	const char *sql; /* borrowed: callers pass string literals */
	int stmt;        /* index in db->stmts, or -1: sent unnamed */
	bool retried;    /* sent unnamed again after its prepared statement was refused */
	int n;
	char *params[DB_PARAMS_MAX]; /* owned */
	uint64_t deadline_ms;
	db_result_cb cb;
	void *ctx;
	bool simple; /* the fixed LISTEN statements: the simple protocol, which allows several */
};

struct db_conn {
	struct db *db;
	PGconn *pg;
	uv_poll_t *poll; /* watches poll_fd; libpq may change the socket while connecting */
	int poll_fd;
	uv_timer_t retry;
	enum conn_state state;
	struct db_job *job;
	enum conn_phase phase;
	PGresult *res;
	unsigned failures;
	uint8_t stmt_state[STMTS_MAX]; /* enum stmt_state, by index in db->stmts */
};

/* A statement text the pool has seen, and the name it is prepared under ("wgf_<index>"). */
struct db_stmt {
	char *sql; /* owned */
	uint32_t hash;
};

struct db {
	uv_loop_t *loop;
	char *conninfo;
	char options[192];
	const char *name; /* for the log */
	struct db_conn *conns;
	unsigned n_conns;
	struct db_job *head, *tail;
	unsigned queued, queue_max;
	unsigned open_handles;
	uv_timer_t deadlines; /* fails queued jobs whose deadline passed */
	unsigned up;          /* connections idle or busy */
	bool ever_up, lost;
	uint64_t lost_ms;
	bool closing;
	const char *listen_sql;
	db_notify_cb notify;
	void *notify_ctx;
	struct db_stmt stmts[STMTS_MAX];
	unsigned n_stmts;
};

static void conn_start(struct db_conn *c);
static void retry_cb(uv_timer_t *t);
static void db_dispatch(struct db *db);
static void fail_queue(struct db *db, int code, const char *msg);

/* A connection became usable: one line when the database is back after a loss. */
static void conn_up(struct db_conn *c)
{
	struct db *db = c->db;
	char ms[24];

	if (db->up++ == 0 && db->lost) {
		snprintf(ms, sizeof(ms), "%llu",
		         (unsigned long long)(uv_now(db->loop) - db->lost_ms));
		log_fields(LOG_NOTICE, "Database is back", {"pool", db->name}, {"after_ms", ms});
		db->lost = false;
	}
	db->ever_up = true;
}

/* A usable connection went down: one line when it was the last one, and the queue fails
 * at once if no other connection is being made (none will take it soon). */
static void conn_down(struct db_conn *c, const char *why)
{
	struct db *db = c->db;

	if (--db->up == 0 && !db->closing) {
		db->lost = true;
		db->lost_ms = uv_now(db->loop);
		log_fields(LOG_WARNING, "Database connection lost", {"pool", db->name},
		           {"error", why});
	}
}

/* Whether a queued query could still be sent soon: a connection is up or being made. */
static bool any_hope(const struct db *db)
{
	for (unsigned i = 0; i < db->n_conns; i++)
		if (db->conns[i].state == CONN_IDLE || db->conns[i].state == CONN_BUSY ||
		    db->conns[i].state == CONN_CONNECTING)
			return true;
	return false;
}

/* libpq's notices (connection warnings among them) go to the log at debug level,
 * not to stderr raw. */
static void on_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("libpq: %.*s", (int)strcspn(message, "\n"), message);
}

static void job_free(struct db_job *j)
{
	for (int i = 0; i < j->n; i++)
		free(j->params[i]);
	free(j);
}

static void job_fail(struct db_job *j, int code, const char *msg)
{
	struct db_error e = {.code = code};

	snprintf(e.message, sizeof(e.message), "%s", msg);
	j->cb(j->ctx, NULL, &e);
	job_free(j);
}

static void copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void job_finish(struct db_job *j, PGconn *pg, PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	struct db_error e = {0};

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		j->cb(j->ctx, res, NULL);
	} else {
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

		e.code = wgf_err_from_sqlstate(state);
		copy_field(e.sqlstate, sizeof(e.sqlstate), state);
		copy_field(e.message, sizeof(e.message), msg ? msg : PQerrorMessage(pg));
		if (res) {
			copy_field(e.detail, sizeof(e.detail),
			           PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
			copy_field(e.hint, sizeof(e.hint),
			           PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
		}
		j->cb(j->ctx, NULL, &e);
	}
	job_free(j);
}

static unsigned backoff_ms(unsigned failures)
{
	unsigned ms = BACKOFF_MIN_MS << (failures < 6 ? failures : 6);

	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	/* Full jitter in the upper half, so replicas do not reconnect in step. */
	return ms / 2 + randombytes_uniform(ms / 2 + 1);
}

/* One of db's handles finished closing; the last one after db_close frees db. */
static void db_handle_gone(struct db *db)
{
	if (--db->open_handles == 0 && db->closing) {
		for (unsigned i = 0; i < db->n_stmts; i++)
			free(db->stmts[i].sql);
		free(db->conns);
		free(db->conninfo);
		free(db);
	}
}

static void retry_closed(uv_handle_t *h)
{
	struct db_conn *c = h->data;

	db_handle_gone(c->db);
}

/* A poll handle of a socket libpq left behind. */
static void old_poll_closed(uv_handle_t *h)
{
	struct db_conn *c = h->data;

	free(h);
	db_handle_gone(c->db);
}

static void conn_down_retry(struct db_conn *c)
{
	struct db *db = c->db;

	c->state = CONN_DOWN;
	if (!db->closing)
		uv_timer_start(&c->retry, retry_cb, backoff_ms(c->failures++), 0);
	if (!db->closing && !any_hope(db))
		fail_queue(db, -ECONNREFUSED, "no database connection is up");
}

static void poll_closed(uv_handle_t *h)
{
	struct db_conn *c = h->data;
	struct db *db = c->db;

	free(h);
	conn_down_retry(c);
	db_handle_gone(db);
}

/* Tears the connection down; its job (if any) fails with code. Retries later. */
static void conn_fail(struct db_conn *c, int code)
{
	struct db_job *j = c->job;
	char why[128];

	snprintf(why, sizeof(why), "%.*s", (int)strcspn(PQerrorMessage(c->pg), "\n"),
	         PQerrorMessage(c->pg));
	if (c->state == CONN_IDLE || c->state == CONN_BUSY)
		conn_down(c, why);
	c->job = NULL;
	PQclear(c->res);
	c->res = NULL;
	if (j)
		job_fail(j, code, why);
	PQfinish(c->pg);
	c->pg = NULL;
	c->state = CONN_CLOSING;
	if (c->poll) {
		uv_poll_stop(c->poll);
		uv_close((uv_handle_t *)c->poll, poll_closed);
		c->poll = NULL;
	} else {
		conn_down_retry(c);
	}
}

static void conn_want(struct db_conn *c, int events);

/*
 * Sends what j needs next on c: the first time this connection sees its statement, the
 * statement's preparation (conn_read then sends the execution); after that, its
 * execution by name. Returns 0, or 1 when libpq could not send.
 */
static int job_send(struct db_conn *c, const struct db_job *j)
{
	const char *const *params = (const char *const *)j->params;
	enum stmt_state st = j->stmt < 0 ? STMT_UNNAMED : c->stmt_state[j->stmt];
	char name[16];

	if (j->simple) {
		c->phase = PHASE_QUERY;
		return !PQsendQuery(c->pg, j->sql);
	}
	if (st == STMT_UNNAMED) {
		c->phase = PHASE_QUERY;
		return !PQsendQueryParams(c->pg, j->sql, j->n, NULL, params, NULL, NULL, 0);
	}
	snprintf(name, sizeof(name), "wgf_%d", j->stmt);
	if (st == STMT_NEW) {
		c->phase = PHASE_PREPARE;
		return !PQsendPrepare(c->pg, name, j->sql, j->n, NULL);
	}
	c->phase = PHASE_PREPARED;
	return !PQsendQueryPrepared(c->pg, name, j->n, params, NULL, NULL, 0);
}

static void conn_send(struct db_conn *c, struct db_job *j)
{
	int r;

	c->job = j;
	c->state = CONN_BUSY;
	if (job_send(c, j)) {
		conn_fail(c, -ECONNRESET);
		return;
	}
	r = PQflush(c->pg);
	if (r < 0)
		conn_fail(c, -ECONNRESET);
	else
		conn_want(c, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* Whether res is the error of a prepared statement whose result type changed since it
 * was prepared: raised before anything ran, so the statement can be sent again. */
static bool plan_changed(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *fn = PQresultErrorField(res, PG_DIAG_SOURCE_FUNCTION);

	return state && fn && strcmp(state, SQLSTATE_PLAN_CHANGED) == 0 &&
	       strcmp(fn, "RevalidateCachedQuery") == 0;
}

/*
 * One command of c's job ended with res. Returns true when the job goes on: its
 * statement is now prepared and runs, or its prepared statement no longer fits what it
 * calls and it runs unnamed, once. False when res is the job's result (a failed
 * preparation included: its error is the statement's).
 */
static bool job_continue(struct db_conn *c, const PGresult *res)
{
	struct db_job *j = c->job;

	if (c->phase == PHASE_PREPARE && res && PQresultStatus(res) == PGRES_COMMAND_OK) {
		c->stmt_state[j->stmt] = STMT_READY;
	} else if (c->phase == PHASE_PREPARED && !j->retried && res && plan_changed(res)) {
		c->stmt_state[j->stmt] = STMT_UNNAMED;
		j->retried = true;
	} else {
		return false;
	}
	conn_send(c, j);
	return true;
}

static void conn_read(struct db_conn *c)
{
	PGresult *res;

	if (!PQconsumeInput(c->pg)) {
		conn_fail(c, -ECONNRESET);
		return;
	}
	for (PGnotify *n; (n = PQnotifies(c->pg)) != NULL;) {
		if (c->db->notify)
			c->db->notify(c->db->notify_ctx, n->relname, n->extra);
		PQfreemem(n);
	}
	if (c->state != CONN_BUSY)
		return;
	while (!PQisBusy(c->pg)) {
		res = PQgetResult(c->pg);
		if (!res) {
			struct db_job *j = c->job;

			res = c->res;
			c->res = NULL;
			if (job_continue(c, res)) {
				PQclear(res);
				return;
			}
			/* Idle before the callback runs: it may queue the next query. */
			c->job = NULL;
			c->state = CONN_IDLE;
			conn_want(c, UV_READABLE);
			job_finish(j, c->pg, res);
			PQclear(res);
			db_dispatch(c->db);
			return;
		}
		PQclear(c->res);
		c->res = res;
	}
}

static void on_listening(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct db *db = ctx;

	(void)res;
	if (!e && db->notify)
		db->notify(db->notify_ctx, NULL, NULL);
}

/* Runs the LISTEN statement on this connection before it takes queued queries. */
static void conn_listen(struct db_conn *c)
{
	struct db_job *j = calloc(1, sizeof(*j));

	if (!j) {
		conn_fail(c, -ENOMEM);
		return;
	}
	j->sql = c->db->listen_sql;
	j->stmt = -1;
	j->simple = true;
	j->cb = on_listening;
	j->ctx = c->db;
	conn_send(c, j);
}

static void conn_connect_step(struct db_conn *c)
{
	/* libpq may close this socket and open another: stop watching it first. */
	if (c->poll)
		uv_poll_stop(c->poll);
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		conn_want(c, UV_READABLE);
		break;
	case PGRES_POLLING_WRITING:
		conn_want(c, UV_WRITABLE);
		break;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(c->pg, 1) != 0) {
			conn_fail(c, -ECONNRESET);
			return;
		}
		c->failures = 0;
		memset(c->stmt_state, STMT_NEW, sizeof(c->stmt_state)); /* a new session */
		PQsetNoticeProcessor(c->pg, on_notice, NULL);
		c->state = CONN_IDLE;
		conn_up(c);
		conn_want(c, UV_READABLE);
		if (c->db->listen_sql)
			conn_listen(c);
		else
			db_dispatch(c->db);
		break;
	default:
		conn_fail(c, -ECONNREFUSED);
		break;
	}
}

static void conn_event(uv_poll_t *p, int status, int events)
{
	struct db_conn *c = p->data;

	if (status < 0) {
		conn_fail(c, -ECONNRESET);
		return;
	}
	switch (c->state) {
	case CONN_CONNECTING:
		conn_connect_step(c);
		break;
	case CONN_BUSY:
		if (events & UV_WRITABLE) {
			int r = PQflush(c->pg);

			if (r < 0) {
				conn_fail(c, -ECONNRESET);
				return;
			}
			if (r == 0)
				conn_want(c, UV_READABLE);
		}
		if (events & UV_READABLE)
			conn_read(c);
		break;
	case CONN_IDLE:
		conn_read(c);
		break;
	default:
		break;
	}
}

/*
 * Watches the connection's socket for events. libpq may move to another socket (the
 * next host of a multi-host conninfo) inside PQconnectPoll, and closes the old one:
 * so the socket is read again every time, and a changed one gets a new poll handle
 * (the old one was stopped before libpq could close its socket).
 */
static void conn_want(struct db_conn *c, int events)
{
	int fd = PQsocket(c->pg);

	if (c->poll && c->poll_fd != fd) {
		uv_poll_stop(c->poll);
		uv_close((uv_handle_t *)c->poll, old_poll_closed);
		c->poll = NULL;
	}
	if (!c->poll) {
		c->poll = malloc(sizeof(*c->poll));
		if (fd < 0 || !c->poll || uv_poll_init(c->db->loop, c->poll, fd) < 0) {
			free(c->poll);
			c->poll = NULL;
			conn_fail(c, -ECONNRESET);
			return;
		}
		c->poll->data = c;
		c->poll_fd = fd;
		c->db->open_handles++;
	}
	uv_poll_start(c->poll, events, conn_event);
}

static void conn_start(struct db_conn *c)
{
	struct db *db = c->db;
	const char *const keys[] = {"dbname", "options", "application_name", NULL};
	const char *const values[] = {db->conninfo, db->options, "wgfleet-coordinator", NULL};

	c->pg = PQconnectStartParams(keys, values, 1);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD || PQsocket(c->pg) < 0) {
		PQfinish(c->pg);
		c->pg = NULL;
		conn_down_retry(c);
		return;
	}
	c->state = CONN_CONNECTING;
	conn_want(c, UV_WRITABLE);
}

static void retry_cb(uv_timer_t *t)
{
	conn_start(t->data);
}

int db_new(uv_loop_t *loop, const struct db_options *o, struct db **ret)
{
	struct db *db = calloc(1, sizeof(*db));

	if (!db)
		return -ENOMEM;
	db->loop = loop;
	db->conninfo = strdup(o->conninfo);
	db->n_conns = o->connections ? o->connections : 1;
	db->conns = calloc(db->n_conns, sizeof(*db->conns));
	db->queue_max = o->queue_max;
	db->listen_sql = o->listen_sql;
	db->notify = o->notify;
	db->notify_ctx = o->notify_ctx;
	db->name = o->name ? o->name : "database";
	if (!db->conninfo || !db->conns) {
		free(db->conninfo);
		free(db->conns);
		free(db);
		return -ENOMEM;
	}
	/* No JIT: our statements are short, and a misestimated one (a report's joins over
	 * its facts) spent 1.3 s compiling what ran in 0.1 s. */
	snprintf(db->options, sizeof(db->options), "-c jit=off -c statement_timeout=%llu%s%s",
	         (unsigned long long)o->statement_timeout_ms, o->settings ? " " : "",
	         o->settings ? o->settings : "");
	uv_timer_init(loop, &db->deadlines);
	db->deadlines.data = db;
	db->open_handles++;
	for (unsigned i = 0; i < db->n_conns; i++) {
		struct db_conn *c = &db->conns[i];

		c->db = db;
		uv_timer_init(loop, &c->retry);
		c->retry.data = c;
		db->open_handles++;
		conn_start(c);
	}
	*ret = db;
	return 0;
}

/* Fails every queued job (none is sent). */
static void fail_queue(struct db *db, int code, const char *msg)
{
	struct db_job *j;

	while ((j = db->head) != NULL) {
		db->head = j->next;
		db->queued--;
		job_fail(j, code, msg);
	}
	db->tail = NULL;
}

/* Fails the queued jobs whose deadline passed, wherever they are in the queue. */
static void on_deadlines(uv_timer_t *t)
{
	struct db *db = t->data;
	uint64_t now = uv_now(db->loop);
	struct db_job **link = &db->head, *prev = NULL;

	while (*link) {
		struct db_job *j = *link;

		if (j->deadline_ms && now > j->deadline_ms) {
			*link = j->next;
			if (db->tail == j)
				db->tail = prev;
			db->queued--;
			job_fail(j, -ETIMEDOUT, "waited too long for a database connection");
			continue;
		}
		prev = j;
		link = &j->next;
	}
	if (!db->head)
		uv_timer_stop(&db->deadlines);
}

static void db_dispatch(struct db *db)
{
	for (unsigned i = 0; i < db->n_conns && db->head; i++) {
		struct db_conn *c = &db->conns[i];
		struct db_job *j;

		if (c->state != CONN_IDLE)
			continue;
		while ((j = db->head) != NULL) {
			db->head = j->next;
			if (!db->head)
				db->tail = NULL;
			db->queued--;
			if (j->deadline_ms && uv_now(db->loop) > j->deadline_ms) {
				job_fail(j, -ETIMEDOUT,
				         "waited too long for a database connection");
				continue;
			}
			conn_send(c, j);
			break;
		}
	}
}

/* The index of sql among db's statements, added when new; -1 when the table is full. */
static int stmt_find(struct db *db, const char *sql)
{
	uint32_t hash = 2166136261U; /* FNV-1a */

	for (const char *p = sql; *p; p++)
		hash = (hash ^ (uint8_t)*p) * 16777619U;
	for (unsigned i = 0; i < db->n_stmts; i++)
		if (db->stmts[i].hash == hash && strcmp(db->stmts[i].sql, sql) == 0)
			return (int)i;
	if (db->n_stmts == STMTS_MAX || !(db->stmts[db->n_stmts].sql = strdup(sql)))
		return -1;
	db->stmts[db->n_stmts].hash = hash;
	return (int)db->n_stmts++;
}

int db_query(struct db *db, const char *sql, int n, const char *const *params, uint64_t deadline_ms,
             db_result_cb cb, void *ctx)
{
	struct db_job *j;

	if (db->closing)
		return -ECANCELED;
	if (n < 0 || n > DB_PARAMS_MAX)
		return -E2BIG;
	if (db->queued >= db->queue_max)
		return -EAGAIN;
	if (db->ever_up && !any_hope(db))
		return -ECONNREFUSED; /* nothing would take it soon: say so at once */
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->sql = sql;
	j->stmt = stmt_find(db, sql);
	j->deadline_ms = deadline_ms;
	j->cb = cb;
	j->ctx = ctx;
	for (int i = 0; i < n; i++, j->n++) {
		if (!params[i])
			continue;
		j->params[i] = strdup(params[i]);
		if (!j->params[i]) {
			job_free(j);
			return -ENOMEM;
		}
	}
	if (db->tail)
		db->tail->next = j;
	else
		db->head = j;
	db->tail = j;
	db->queued++;
	db_dispatch(db);
	if (db->head && !uv_is_active((uv_handle_t *)&db->deadlines))
		uv_timer_start(&db->deadlines, on_deadlines, DEADLINE_TICK_MS, DEADLINE_TICK_MS);
	return 0;
}

static void deadlines_closed(uv_handle_t *h)
{
	db_handle_gone(h->data);
}

void db_get_stats(const struct db *db, struct db_stats *ret)
{
	unsigned busy = 0;

	for (unsigned i = 0; i < db->n_conns; i++)
		busy += db->conns[i].state == CONN_BUSY;
	*ret = (struct db_stats){.name = db->name ? db->name : "",
	                         .connections = db->n_conns,
	                         .up = db->up,
	                         .busy = busy,
	                         .queued = db->queued};
}

bool db_is_up(const struct db *db)
{
	return db->up > 0;
}

void db_close(struct db *db)
{
	db->closing = true;
	fail_queue(db, -ECANCELED, "the coordinator is shutting down");
	uv_timer_stop(&db->deadlines);
	uv_close((uv_handle_t *)&db->deadlines, deadlines_closed);
	for (unsigned i = 0; i < db->n_conns; i++) {
		struct db_conn *c = &db->conns[i];

		if (c->state != CONN_DOWN && c->state != CONN_CLOSING)
			conn_fail(c, -ECANCELED);
		uv_timer_stop(&c->retry);
		uv_close((uv_handle_t *)&c->retry, retry_closed);
	}
}
