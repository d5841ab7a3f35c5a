/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* migrate: the schema migrations the binary carries, and applying them. */
#ifndef WGF_COORDINATOR_MIGRATE_H
#define WGF_COORDINATOR_MIGRATE_H

/*
 * The SQL files coordinator/sql/NNNN_<what>.sql are compiled into the binary (see
 * embed_sql.py), numbered 1..migrate_n_steps. The database records what it has applied
 * in wgf_schema_migrations (version, name, checksum, applied_at).
 *
 * migrate_run() takes a session advisory lock, so two coordinators started at once
 * apply each step exactly once; applies every missing step in order, each in its own
 * transaction together with its row in wgf_schema_migrations; and refuses to touch a
 * database that is ahead of the binary (a step it does not know) or whose applied steps
 * differ from the binary's (a name or checksum mismatch: someone edited an applied
 * file). migrate_check() makes the same comparison without changing anything; the
 * daemon runs it at start and /readyz reports it.
 *
 * Applied files are immutable: a change to a function is a new step that replaces it.
 * Every function runs with search_path = pg_catalog, <schema>, pg_temp, so that no
 * object earlier on a caller's search_path can stand in for ours; a step that creates
 * or replaces functions ends with CALL wgf_pin_search_paths(current_schema()) (made
 * in 0004_api_v2.sql), which pins every function that has none (CREATE OR REPLACE
 * drops a SET clause it does not repeat). test_sql_api.py checks that none is left
 * unpinned.
 */

#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "err.h"

struct migrate_step {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migrate_step migrate_steps[];
extern const size_t migrate_n_steps;

struct migrate_result {
	int from_version; /* highest version applied before the run */
	int to_version;   /* highest version applied after it */
};

/* Brings the schema up to date. -EPROTO: the database is newer or differs. */
int migrate_run(PGconn *conn, struct migrate_result *ret, struct wgf_err *err);

/*
 * 0 when the schema is exactly the binary's; -ESTALE when steps are missing (run
 * migrate); -EPROTO when the database is newer or differs; other errors from libpq.
 */
int migrate_check(PGconn *conn, struct wgf_err *err);

/* Writes one line per known or applied step: version, name, applied time or "pending". */
int migrate_print_status(PGconn *conn, FILE *out, struct wgf_err *err);

#endif
