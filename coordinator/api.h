/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api: the /v1 routes: checking requests, calling the SQL API, shaping replies. */
#ifndef WGF_COORDINATOR_API_H
#define WGF_COORDINATOR_API_H

/*
 * Every route is one row of a table (api.c): method, path pattern, success status, the
 * query parameters it takes, its SQL function and the types of its parameters. Before
 * any database work, everything the client controls (path, query, headers, JSON body)
 * is checked, one check per kind of field (api_input.c), and a request that fails
 * gets a 4xx naming the field. Then one call of the route's SQL function
 * (coordinator/sql) authenticates the key, does the work in one transaction and
 * returns the reply body. Errors the SQL raises as SQLSTATE WGnnn become HTTP status
 * nnn with the same code and message. Nothing is kept between requests: two
 * coordinators on one database give the same answers.
 *
 * The caller's API key travels to the database only as its prefix and keyed hash; the
 * key itself is never logged, stored or sent anywhere.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <h2o.h>
#include <uv.h>

#include "db.h"
#include "http.h"
#include "webhook.h"

#define API_BODY_MAX (64 * 1024)

struct api_options {
	uint8_t key_hash_secret[32];
	uint64_t reservation_ttl_ms;
	uint64_t address_cooldown_ms;
	uint64_t server_online_ms;    /* a server seen this recently is online */
	uint64_t request_deadline_ms; /* how long a request may wait for the database */
	unsigned persistent_keepalive;
	bool placement_any; /* a reservation naming no server may go to one not online */
	unsigned failed_auth_per_minute;      /* per client address; 0: no limit */
	struct webhook_policy webhook_policy; /* what a webhook's URL may point at */
};

struct api;

int api_new(uv_loop_t *loop, struct db *db, const struct api_options *o, struct api **ret);
void api_free(struct api *a);

/* Applies the options of o that SIGHUP may change (all but the secret and deadline). */
void api_set_reloadable(struct api *a, const struct api_options *o);

/* The http_handler_fn for every request. */
void api_handle(void *ctx, h2o_req_t *req, const struct http_request *rq);

/* Writes the API's families (Prometheus text): requests by route and status, their
 * latency, refused authentications. */
void api_write_metrics(const struct api *a, FILE *f);

/* Writes "METHOD /pattern" for every route, one a line ({} is one path segment). */
void api_routes_print(FILE *f);

#endif
