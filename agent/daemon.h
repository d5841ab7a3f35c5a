/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* daemon: `wgfleet-agent run`: the loop that keeps the interface in step. */
#ifndef WGF_AGENT_DAEMON_H
#define WGF_AGENT_DAEMON_H

/*
 * One libuv loop (DESIGN.md principle 8) holds two timers and three signals. At start
 * the daemon loads the desired-state cache and applies it before anything else, so a
 * reboot with the coordinator down restores every tunnel; then it tells systemd it is
 * ready (READY=1 on NOTIFY_SOCKET, no libsystemd). With a coordinator configured, the
 * cache may be older than the interface (it could not be written), so until the
 * coordinator's first desired set arrives the cache's peers are added and updated but
 * nothing is removed (RECONCILE_F_NO_REMOVE); without one, the cache is the truth and
 * is applied whole. A cache that cannot be written is logged once per change of its
 * state and counted in the "Interface facts" line. The reconcile timer repairs drift
 * every reconcile_interval; the monitor timer reads per-peer facts every
 * [monitor] interval. SIGTERM and SIGINT close every handle and leave the loop
 * (uv_loop_close() must succeed); SIGHUP reloads the reloadable options, warns about
 * the others, and takes a newer desired set from the cache file if one was written
 * there (by `wgfleet-agent apply`, say).
 *
 * A pass runs on libuv's thread pool, so the loop keeps answering signals while
 * wireguard-go takes seconds over 10,000 new peers; the loop leaves the backend and the
 * reconciler alone until the pass is done (a desired set or a static-peer list that
 * arrives meanwhile waits for it, and a monitor tick is skipped). A stop signal makes
 * the pass end at its next chunk of RECONCILE_CHUNK peers, so the agent exits within
 * a second even then. Readiness is signalled when the first pass is done.
 *
 * daemon_set_desired() is where the coordinator channel hands over a new desired set.
 */

#include <stdbool.h>

#include "cache.h"
#include "settings.h"

struct daemon;

/*
 * Runs until a stop signal. config_path is re-read on SIGHUP. When ready_fd is not
 * -1, one byte is written to it and it is closed once the daemon is ready (the parent
 * of a daemonised agent waits for it). Returns 0 after a clean stop or a negative
 * errno (logged) when it could not start.
 */
int daemon_run(const struct settings *s, const char *config_path, bool config_given, int ready_fd);

/*
 * The seam for the coordinator channel: offers a new desired set at st->revision. A
 * set that is not newer than the current one is ignored (returns 0; st stays the
 * caller's); a newer one is taken (returns 1; *st is zeroed), cached and applied at
 * once.
 */
int daemon_set_desired(struct daemon *d, struct cache_state *st, unsigned flags);

#endif
