/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* migrate: compare the database's schema history with the binary's and catch it up. */
#include "migrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "db_sync.h"

/* "wgf1" as a number: the advisory lock that serialises migrators. */
#define MIGRATE_LOCK_KEY "2003265073"
#define CHECKSUM_HEX_LEN (2 * crypto_generichash_BYTES + 1)
#define NAME_MAX_LEN     64
#define HISTORY_MAX      10000

struct applied {
	int version;
	char name[NAME_MAX_LEN];
	char checksum[CHECKSUM_HEX_LEN];
	char applied_at[40];
};

static void step_checksum(const struct migrate_step *s, char out[static CHECKSUM_HEX_LEN])
{
	uint8_t h[crypto_generichash_BYTES];

	crypto_generichash(h, sizeof(h), (const uint8_t *)s->sql, strlen(s->sql), NULL, 0);
	sodium_bin2hex(out, CHECKSUM_HEX_LEN, h, sizeof(h));
}

static void copy_field(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Reads wgf_schema_migrations in version order; an absent table is an empty history. */
static int load_applied(PGconn *conn, struct applied **ret, size_t *ret_n, struct wgf_err *err)
{
	static const char sql[] =
	        "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', "
	        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM wgf_schema_migrations ORDER BY version "
	        "LIMIT 10001";
	PGresult *res = NULL;
	struct applied *rows;
	int r, n;

	r = db_sync_exec(conn, "SELECT to_regclass('wgf_schema_migrations') IS NOT NULL", 0, NULL,
	                 &res, err);
	if (r < 0)
		return r;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	PQclear(res);
	r = db_sync_exec(conn, sql, 0, NULL, &res, err);
	if (r < 0)
		return r;
	n = PQntuples(res);
	if (n > HISTORY_MAX) {
		PQclear(res);
		return wgf_err_set(err, -EPROTO, "schema history has more than %d rows",
		                   HISTORY_MAX);
	}
	rows = calloc(n ? (size_t)n : 1, sizeof(*rows));
	if (!rows) {
		PQclear(res);
		return wgf_err_set(err, -ENOMEM, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		rows[i].version = atoi(PQgetvalue(res, i, 0));
		copy_field(rows[i].name, sizeof(rows[i].name), PQgetvalue(res, i, 1));
		copy_field(rows[i].checksum, sizeof(rows[i].checksum), PQgetvalue(res, i, 2));
		copy_field(rows[i].applied_at, sizeof(rows[i].applied_at), PQgetvalue(res, i, 3));
	}
	PQclear(res);
	*ret = rows;
	*ret_n = (size_t)n;
	return 0;
}

/* Checks the history against the binary; on success *ret_version is the newest applied. */
static int compare_history(const struct applied *rows, size_t n, int *ret_version,
                           struct wgf_err *err)
{
	int newest = n ? rows[n - 1].version : 0;

	if (newest > (int)migrate_n_steps)
		return wgf_err_set(err, -EPROTO,
		                   "the database schema is at version %d, newer than this "
		                   "wgfleet-coordinator knows (%zu); run a newer binary",
		                   newest, migrate_n_steps);
	for (size_t i = 0; i < n; i++) {
		const struct migrate_step *s;
		char sum[CHECKSUM_HEX_LEN];

		if (rows[i].version != (int)i + 1)
			return wgf_err_set(err, -EPROTO,
			                   "the schema history has a gap before version %d",
			                   rows[i].version);
		s = &migrate_steps[i];
		step_checksum(s, sum);
		if (strcmp(rows[i].name, s->name) != 0 || strcmp(rows[i].checksum, sum) != 0)
			return wgf_err_set(
			        err, -EPROTO,
			        "applied migration %s differs from this binary's %s "
			        "(name or checksum); the schema was changed after it was "
			        "applied",
			        rows[i].name, s->name);
	}
	*ret_version = newest;
	return 0;
}

static int apply_step(PGconn *conn, const struct migrate_step *s, struct wgf_err *err)
{
	char version[16], sum[CHECKSUM_HEX_LEN];
	const char *params[3] = {version, s->name, sum};
	int r;

	snprintf(version, sizeof(version), "%d", s->version);
	step_checksum(s, sum);
	r = db_sync_exec_script(conn, "BEGIN", err);
	if (r < 0)
		return r;
	r = db_sync_exec_script(conn, s->sql, err);
	if (r == 0)
		r = db_sync_exec(conn,
		                 "INSERT INTO wgf_schema_migrations (version, name, checksum) "
		                 "VALUES ($1, $2, $3)",
		                 3, params, NULL, err);
	if (r == 0)
		r = db_sync_exec_script(conn, "COMMIT", err);
	if (r < 0) {
		wgf_err_prefix(err, "migration %s failed: ", s->name);
		(void)db_sync_exec_script(conn, "ROLLBACK", NULL);
	}
	return r;
}

int migrate_run(PGconn *conn, struct migrate_result *ret, struct wgf_err *err)
{
	static const char *const lock[1] = {MIGRATE_LOCK_KEY};
	struct applied *rows = NULL;
	size_t n = 0;
	int r, version = 0, from;

	r = db_sync_exec(conn, "SET client_min_messages = warning", 0, NULL, NULL, err);
	if (r == 0)
		r = db_sync_exec(conn, "SELECT pg_advisory_lock($1::bigint)", 1, lock, NULL, err);
	if (r < 0)
		return r;
	r = db_sync_exec(conn,
	                 "CREATE TABLE IF NOT EXISTS wgf_schema_migrations ("
	                 "version integer PRIMARY KEY, name text NOT NULL, "
	                 "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	                 0, NULL, NULL, err);
	if (r < 0)
		goto out;
	r = load_applied(conn, &rows, &n, err);
	if (r < 0)
		goto out;
	r = compare_history(rows, n, &version, err);
	if (r < 0)
		goto out;
	from = version;
	for (; version < (int)migrate_n_steps; version++) {
		r = apply_step(conn, &migrate_steps[version], err);
		if (r < 0)
			goto out;
	}
	if (ret) {
		ret->from_version = from;
		ret->to_version = version;
	}
out:
	free(rows);
	(void)db_sync_exec(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, lock, NULL, NULL);
	return r;
}

int migrate_check(PGconn *conn, struct wgf_err *err)
{
	struct applied *rows = NULL;
	size_t n = 0;
	int r, version = 0;

	r = load_applied(conn, &rows, &n, err);
	if (r == 0)
		r = compare_history(rows, n, &version, err);
	free(rows);
	if (r < 0)
		return r;
	if (version < (int)migrate_n_steps)
		return wgf_err_set(err, -ESTALE,
		                   "the database schema is at version %d, this binary needs %zu; "
		                   "run 'wgfleet-coordinator migrate'",
		                   version, migrate_n_steps);
	return 0;
}

int migrate_print_status(PGconn *conn, FILE *out, struct wgf_err *err)
{
	struct applied *rows = NULL;
	size_t n = 0, total;
	int r;

	r = load_applied(conn, &rows, &n, err);
	if (r < 0)
		return r;
	total = n > migrate_n_steps ? n : migrate_n_steps;
	for (size_t i = 0; i < total; i++) {
		if (i < n)
			fprintf(out, "%04d %s applied %s\n", rows[i].version, rows[i].name,
			        rows[i].applied_at);
		else
			fprintf(out, "%04d %s pending\n", migrate_steps[i].version,
			        migrate_steps[i].name);
	}
	free(rows);
	return 0;
}
