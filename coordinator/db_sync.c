/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* db_sync: blocking libpq helpers and the one place their errors are converted. */
#include "db_sync.h"

#include <errno.h>
#include <string.h>

static int result_error(PGconn *conn, PGresult *res, struct wgf_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	int r;

	if (!msg)
		msg = PQerrorMessage(conn);
	r = PQstatus(conn) == CONNECTION_BAD ? -ECONNRESET : wgf_err_from_sqlstate(state);
	wgf_err_set(err, r, "%.*s", (int)strcspn(msg, "\n"), msg);
	PQclear(res);
	return r;
}

int db_sync_connect(const char *conninfo, PGconn **ret, struct wgf_err *err)
{
	PGconn *conn = PQconnectdb(conninfo);
	const char *msg;

	if (!conn)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		msg = PQerrorMessage(conn);
		wgf_err_set(err, -ECONNREFUSED, "cannot connect to the database: %.*s",
		            (int)strcspn(msg, "\n"), msg);
		PQfinish(conn);
		return -ECONNREFUSED;
	}
	*ret = conn;
	return 0;
}

int db_sync_exec(PGconn *conn, const char *sql, int n_params, const char *const *params,
                 PGresult **ret, struct wgf_err *err)
{
	PGresult *res = PQexecParams(conn, sql, n_params, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return result_error(conn, res, err);
	if (ret)
		*ret = res;
	else
		PQclear(res);
	return 0;
}

int db_sync_exec_script(PGconn *conn, const char *sql, struct wgf_err *err)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return result_error(conn, res, err);
	PQclear(res);
	return 0;
}
