/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* db_sync: blocking libpq calls for the command-line tools (migrate, bootstrap). */
#ifndef WGF_COORDINATOR_DB_SYNC_H
#define WGF_COORDINATOR_DB_SYNC_H

/*
 * The daemon talks to PostgreSQL asynchronously from its event loop; the subcommands
 * that run once and exit (migrate, create-admin-key) use these blocking helpers
 * instead. Every statement goes through PQexecParams with its values as parameters;
 * only fixed text from the binary itself (the migrations) is sent as a simple query.
 *
 * Failures are converted once, here: the SQLSTATE to a negative errno through
 * wgf_err_from_sqlstate(), and PostgreSQL's primary message into the struct wgf_err.
 * Connection strings and passwords never appear in a message.
 */

#include <libpq-fe.h>

#include "err.h"

/* Connects; -ECONNREFUSED with libpq's reason (which holds no password) on failure. */
int db_sync_connect(const char *conninfo, PGconn **ret, struct wgf_err *err);

/*
 * Runs one parameterised statement (all parameters as text; NULL entries are SQL NULL).
 * On success *ret (if ret is not NULL) holds the result, which the caller PQclear()s.
 */
int db_sync_exec(PGconn *conn, const char *sql, int n_params, const char *const *params,
                 PGresult **ret, struct wgf_err *err);

/* Runs fixed, trusted SQL text that may hold several statements (no parameters). */
int db_sync_exec_script(PGconn *conn, const char *sql, struct wgf_err *err);

#endif
