/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* daemon: `wgfleet-coordinator serve`: the event loop and everything attached to it. */
#ifndef WGF_COORDINATOR_DAEMON_H
#define WGF_COORDINATOR_DAEMON_H

/*
 * One libuv loop owns all state (DESIGN.md principle 8): the HTTP server, the
 * database pool, the sweeper's timer and the signal handlers. SIGTERM and SIGINT stop
 * accepting, close the database and leave the loop; SIGHUP reloads the options marked
 * reloadable. Start-up refuses a schema that is not exactly this binary's, and tells
 * systemd it is ready (NOTIFY_SOCKET) only once it listens.
 */

#include "settings.h"

/* Runs until a stop signal. config_path may be NULL (no file; SIGHUP then only logs). */
int daemon_run(const struct settings *s, const char *config_path, bool config_given);

#endif
