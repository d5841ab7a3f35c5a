/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api: the /v1 routes: checking requests, calling the SQL API, shaping replies. */
#ifndef WGF_COORDINATOR_API_H
#define WGF_COORDINATOR_API_H

/*
 * Every route is one row of a table: method, path pattern, handler. A handler checks
 * everything the client controls (path, query, JSON body, headers) and answers 400 with
 * the field's name when something is wrong, before any database work. Then it makes one
 * call to the route's SQL function (coordinator/sql/0002_api.sql), which authenticates,
 * does the work in one transaction and returns the reply body. Errors the SQL raises as
 * SQLSTATE WGnnn become HTTP status nnn with the same code and message. Nothing is kept
 * between requests: two coordinators on one database give the same answers.
 *
 * The caller's API key travels to the database only as its prefix and keyed hash; the
 * key itself is never logged, stored or sent anywhere.
 */

#include <stdint.h>

#include <h2o.h>
#include <uv.h>

#include "db.h"

#define API_BODY_MAX (64 * 1024)

struct api_options {
	uint8_t key_hash_secret[32];
	uint64_t reservation_ttl_ms;
	uint64_t address_cooldown_ms;
	uint64_t server_online_ms;    /* a server seen this recently is online */
	uint64_t request_deadline_ms; /* how long a request may wait for the database */
	unsigned persistent_keepalive;
};

struct api;

int api_new(uv_loop_t *loop, struct db *db, const struct api_options *o, struct api **ret);
void api_free(struct api *a);

/* Applies the options SIGHUP may change. */
void api_set_reloadable(struct api *a, uint64_t reservation_ttl_ms, uint64_t address_cooldown_ms,
                        unsigned persistent_keepalive, uint64_t server_online_ms);

/* The http_handler_fn for every request. */
void api_handle(void *ctx, h2o_req_t *req);

/* Patterns of every route, "METHOD /v1/routers/{}"; NULL-terminated (for the docs test). */
extern const char *const api_route_list[];

#endif
