/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api_routers: the portal's routes: reservations, keys, setup text, audit, leases. */
#include "api_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cidr.h"

#define NAME_MAX_CHARS 100
#define LIMIT_DEFAULT  100
#define LIMIT_MAX      1000

/* BLAKE2b of the method, path and body: what an Idempotency-Key is bound to. */
static const char *request_hash(struct call *c)
{
	crypto_generichash_state st;
	char hex[API_HEX32_LEN];
	uint8_t h[32];

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)c->method, strlen(c->method) + 1);
	crypto_generichash_update(&st, (const uint8_t *)c->path, strlen(c->path) + 1);
	crypto_generichash_update(&st, (const uint8_t *)c->rq->body.base,
	                          c->rq->body.base ? c->rq->body.len : 0);
	crypto_generichash_final(&st, h, sizeof(h));
	input_hex_bytea(hex, sizeof(hex), h, sizeof(h));
	return call_arena(c, "%s", hex);
}

static int limit_param(struct call *c, const char **ret)
{
	const char *v = call_query_get(c, "limit");
	unsigned long n = LIMIT_DEFAULT;

	if (v && input_uint(c, "limit", v, 1, LIMIT_MAX, &n) < 0)
		return -EINVAL;
	*ret = call_arena(c, "%lu", n);
	return 0;
}

int api_routers_reserve(struct call *c)
{
	static const struct field fields[] = {
	        {"name", F_TEXT, false, NAME_MAX_CHARS},
	        {"server", F_TEXT, false, 63},
	};
	const struct api_options *o = &c->api->o;
	const char *server, *idem;

	if (input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0 ||
	    input_idempotency_key(c, &idem) < 0)
		return -EINVAL;
	server = call_body_text(c, "server");
	if (server && input_server_name(c, "server", server) < 0)
		return -EINVAL;
	call_params(c, call_body_text(c, "name"), server, call_interval(c, o->reservation_ttl_ms),
	            call_interval(c, o->address_cooldown_ms), c->request_id, idem, request_hash(c),
	            o->placement_any ? NULL : call_interval(c, o->server_online_ms));
	return 0;
}

/* GET and DELETE /v1/routers/{id}: the id, and for DELETE the request id. */
int api_routers_one(struct call *c)
{
	if (input_uuid(c, "id", c->args[0]) < 0)
		return -EINVAL;
	if (strcmp(c->route->method, "DELETE") == 0)
		call_params(c, c->args[0], c->request_id);
	else
		call_params(c, c->args[0]);
	return 0;
}

int api_routers_public_key(struct call *c)
{
	static const struct field fields[] = {{"public_key", F_TEXT, true, 64}};
	const char *idem, *key;

	if (input_uuid(c, "id", c->args[0]) < 0 ||
	    input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0 ||
	    input_idempotency_key(c, &idem) < 0 ||
	    input_wg_key(c, "public_key", call_body_text(c, "public_key"), 400,
	                 "invalid_public_key", &key) < 0)
		return -EINVAL;
	call_params(c, c->args[0], key, call_arena(c, "%u", c->api->o.persistent_keepalive),
	            c->request_id, idem, request_hash(c));
	return 0;
}

int api_routers_config(struct call *c)
{
	const char *fmt = call_query_get(c, "format");

	if (input_uuid(c, "id", c->args[0]) < 0)
		return -EINVAL;
	if (setup_format_from_string(fmt ? fmt : "routeros", &c->format) < 0)
		return call_invalid(c, "format", "must be routeros or wg-quick");
	call_params(c, c->args[0]);
	return 0;
}

/* The filters a listing shares: each checked only when given. */
static int filter_params(struct call *c, const char **ret_tenant, const char **ret_address)
{
	const char *tenant = call_query_get(c, "tenant"), *address = call_query_get(c, "address");

	if ((tenant && input_slug(c, "tenant", tenant) < 0) ||
	    (address && input_address(c, "address", address) < 0))
		return -EINVAL;
	*ret_tenant = tenant;
	*ret_address = address;
	return 0;
}

int api_routers_list(struct call *c)
{
	const char *status = call_query_get(c, "status"), *server = call_query_get(c, "server");
	const char *cursor = call_query_get(c, "cursor"), *limit, *tenant, *address;
	const char *before = call_query_get(c, "handshake_before"),
	           *name = call_query_get(c, "name");

	if (limit_param(c, &limit) < 0 || filter_params(c, &tenant, &address) < 0)
		return -EINVAL;
	if (cursor && strlen(cursor) > 200)
		return call_invalid(c, "cursor", "not a cursor this API gave out");
	if (status && strlen(status) > 32)
		return call_invalid(c, "status", "not a router status");
	if ((server && input_server_name(c, "server", server) < 0) ||
	    (name && input_text(c, "name", name, 100) < 0) ||
	    (before && input_timestamp(c, "handshake_before", before) < 0))
		return -EINVAL;
	c->ts_field = "handshake_before";
	call_params(c, status, server, tenant, address, name, before, limit, cursor);
	return 0;
}

int api_routers_audit(struct call *c)
{
	const char *router = call_query_get(c, "router"), *action = call_query_get(c, "action");
	const char *since = call_query_get(c, "since"), *until = call_query_get(c, "until");
	const char *after = call_query_get(c, "after"), *follow = call_query_get(c, "follow");
	const char *before = call_query_get(c, "before"), *order = call_query_get(c, "order");
	const char *limit, *tenant, *address;
	bool newest = order && strcmp(order, "newest") == 0;

	if (after && follow)
		return call_invalid(c, "follow", "and after do not go together");
	if (order && !newest && strcmp(order, "oldest") != 0)
		return call_invalid(c, "order", "must be oldest or newest");
	if (follow && (newest || before))
		return call_invalid(c, "follow", "goes with neither order=newest nor before");
	if (limit_param(c, &limit) < 0 || filter_params(c, &tenant, &address) < 0 ||
	    (follow && follow[0] && input_follow_cursor(c, "follow", follow) < 0) ||
	    (router && input_uuid(c, "router", router) < 0) ||
	    (action && input_text(c, "action", action, 64) < 0) ||
	    (since && input_timestamp(c, "since", since) < 0) ||
	    (until && input_timestamp(c, "until", until) < 0) ||
	    (after && input_id(c, "after", after) < 0) ||
	    (before && input_id(c, "before", before) < 0))
		return -EINVAL;
	c->ts_field = until && !since ? "until" : "since";
	call_params(c, router, tenant, address, action, since, until, after, before,
	            newest ? "true" : "false", follow, limit);
	return 0;
}

int api_routers_leases(struct call *c)
{
	const char *ip = call_query_get(c, "ip"), *at = call_query_get(c, "at");

	if (!ip)
		return call_invalid(c, "ip", "is required");
	if (input_address(c, "ip", ip) < 0 || (at && input_timestamp(c, "at", at) < 0))
		return -EINVAL;
	c->ts_field = "at";
	call_params(c, ip, at);
	return 0;
}

/* ---- replies ---- */

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void fill_setup_input(const struct call *c, const json_t *router, struct setup_input *in)
{
	const json_t *s = json_object_get(router, "_server");

	in->router_id = jstr(router, "id");
	in->router_name = jstr(router, "name");
	in->vpn_ip = jstr(router, "vpn_ip");
	in->server_name = jstr(router, "server");
	in->pool = jstr(s, "pool");
	in->server_endpoint = jstr(s, "endpoint");
	in->server_public_key = jstr(s, "public_key");
	in->keepalive = c->api->o.persistent_keepalive;
}

/* The router with "_server" replaced by "setup": {"routeros": ..., "wg_quick": ...}. */
int api_routers_finish_router(struct call *c, json_t *router)
{
	struct setup_input in;
	char *ros = NULL, *wgq = NULL;
	int r;

	fill_setup_input(c, router, &in);
	r = setup_text(&in, SETUP_ROUTEROS, &ros);
	if (r == 0)
		r = setup_text(&in, SETUP_WG_QUICK, &wgq);
	if (r == 0 &&
	    json_object_set_new(router, "setup",
	                        json_pack("{s:s,s:s}", "routeros", ros, "wg_quick", wgq)) < 0)
		r = -ENOMEM;
	free(ros);
	free(wgq);
	if (r < 0)
		return call_problem(c, 500, "internal", "Could not write the setup text.");
	json_object_del(router, "_server");
	c->reply_json = json_incref(router);
	return 0;
}

int api_routers_finish_config(struct call *c, json_t *router)
{
	struct setup_input in;

	fill_setup_input(c, router, &in);
	if (setup_text(&in, c->format, &c->reply_text) < 0)
		return call_problem(c, 500, "internal", "Could not write the setup text.");
	return 0;
}
