/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* scrape: the /metrics endpoint both daemons serve, h2o on their libuv loop. */
#ifndef WGF_COMMON_SCRAPE_H
#define WGF_COMMON_SCRAPE_H

/*
 * A listener of its own, never the API's: GET /metrics answers with whatever the
 * render callback writes (Prometheus text format 0.0.4), anything else with 404 (405
 * for another method on /metrics). The callback runs on the loop and must not wait:
 * it writes values the daemon already holds. At most SCRAPE_CONNECTIONS_MAX
 * connections are open at once (one more is closed as it is accepted), a request must
 * arrive within a few seconds, bodies are refused, and each connection is closed after
 * its answer (so a stopping daemon has nothing idle to wait for). HTTP/2 is off and there is no
 * Server header, as on the API.
 *
 * This file is not part of wgf-common (which has no event loop): it is the library
 * wgf-scrape, linked by both daemons, which already run libuv and h2o's libuv flavour.
 */

#include <stdio.h>

#include <uv.h>

#include "err.h"

#define SCRAPE_CONNECTIONS_MAX 16

struct wgf_scrape;

/* Writes the exposition to f (an open_memstream, so writes do not fail short). */
typedef void (*wgf_scrape_render_fn)(void *ctx, FILE *f);

/*
 * Listens on "host:port" (an address, port 0 picks one); *ret_port is the bound port.
 * render and ctx are borrowed until wgf_scrape_stop().
 */
int wgf_scrape_start(uv_loop_t *loop, const char *listen, wgf_scrape_render_fn render, void *ctx,
                     struct wgf_scrape **ret, int *ret_port, struct wgf_err *err);

/* A wgf_conf_validate_fn for a [metrics] listen value: "" (off) or an address:port. */
int wgf_scrape_check_listen(const void *value, struct wgf_err *err);

/* Stops listening; the memory goes once the loop has closed the handles. NULL is fine. */
void wgf_scrape_stop(struct wgf_scrape *s);

#endif
