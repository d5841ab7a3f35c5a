/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api: the route table, the life of a call, dispatch and replies. */
#define LOG_MODULE "api"

#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api_internal.h"
#include "clock.h"
#include "embedded.h"
#include "http.h"
#include "log.h"
#include "prom.h"
#include "secret.h"

#define AUTH_CLIENT_SLOTS 8192

/* Distinct statuses counted per route; answers with yet another status are not counted. */
#define STATUSES_PER_ROUTE 16

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5};

struct api_route_stats {
	struct {
		int status;
		uint64_t n;
	} answers[STATUSES_PER_ROUTE];
	struct wgf_prom_histogram latency;
};

/* Every route the API has: the dispatcher, the docs test and `routes` read this. */
static const struct route routes[] = {
        {"POST", "/v1/routers", 201, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_reserve", "text", "text", "interval", "interval", "text", "text",
                   "bytea", "interval"),
         .prepare = api_routers_reserve, .finish = api_routers_finish_router},
        {"GET", "/v1/routers", 200, true, false,
         ROUTE_QUERY("status", "server", "tenant", "address", "name", "handshake_before", "limit",
                     "cursor"),
         ROUTE_SQL("wgf_api_list_routers", "text", "text", "text", "inet", "text", "timestamptz",
                   "integer", "text"),
         .prepare = api_routers_list},
        {"GET", "/v1/routers/{}", 200, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_get_router", "uuid"), .prepare = api_routers_one,
         .finish = api_routers_finish_router},
        {"DELETE", "/v1/routers/{}", 204, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_delete_router", "uuid", "text"), .prepare = api_routers_one},
        {"PUT", "/v1/routers/{}/public-key", 200, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_set_public_key", "uuid", "bytea", "integer", "text", "text", "bytea"),
         .prepare = api_routers_public_key, .finish = api_routers_finish_router},
        {"GET", "/v1/routers/{}/config", 200, true, false, ROUTE_QUERY("format"),
         ROUTE_SQL("wgf_api_get_router", "uuid"), .prepare = api_routers_config,
         .finish = api_routers_finish_config},
        {"GET", "/v1/audit", 200, true, false,
         ROUTE_QUERY("router", "tenant", "address", "action", "since", "until", "after", "before",
                     "order", "follow", "limit"),
         ROUTE_SQL("wgf_api_audit", "uuid", "text", "inet", "text", "timestamptz", "timestamptz",
                   "bigint", "bigint", "boolean", "text", "integer"),
         .prepare = api_routers_audit},
        {"GET", "/v1/leases", 200, true, false, ROUTE_QUERY("ip", "at"),
         ROUTE_SQL("wgf_api_leases", "inet", "timestamptz"), .prepare = api_routers_leases},
        {"POST", "/v1/tenants", 201, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_create_tenant", "text", "text", "integer", "integer", "integer",
                   "integer", "text"),
         .prepare = api_admin_create_tenant},
        {"GET", "/v1/tenants", 200, true, false, ROUTE_QUERY(), ROUTE_SQL("wgf_api_list_tenants")},
        {"GET", "/v1/tenants/{}", 200, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_get_tenant", "text"), .prepare = api_admin_tenant_arg},
        {"PATCH", "/v1/tenants/{}", 200, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_update_tenant", "text", "integer", "integer", "integer", "integer",
                   "text"),
         .prepare = api_admin_update_tenant},
        {"POST", "/v1/tenants/{}/keys", 201, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_create_key", "text", "text", "bytea", "text", "text"),
         .prepare = api_admin_create_key, .finish = api_admin_finish_new_key},
        {"GET", "/v1/keys", 200, true, false, ROUTE_QUERY("tenant"),
         ROUTE_SQL("wgf_api_list_keys", "text"), .prepare = api_admin_list_keys},
        {"POST", "/v1/keys", 201, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_create_admin_key", "text", "bytea", "text", "text"),
         .prepare = api_admin_create_admin_key, .finish = api_admin_finish_new_key},
        {"DELETE", "/v1/keys/{}", 204, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_revoke_key", "bigint", "text"), .prepare = api_admin_revoke_key},
        {"POST", "/v1/servers", 201, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_create_server", "text", "text", "text", "cidr", "inet", "bytea",
                   "bytea", "integer", "text"),
         .prepare = api_admin_create_server},
        {"GET", "/v1/servers", 200, true, false, ROUTE_QUERY(), ROUTE_SQL("wgf_api_list_servers")},
        {"GET", "/v1/servers/{}", 200, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_get_server", "text"), .prepare = api_admin_server_arg},
        {"PATCH", "/v1/servers/{}", 200, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_update_server", "text", "text", "text", "bytea", "bytea", "integer",
                   "bytea", "boolean", "text"),
         .prepare = api_admin_update_server},
        {"DELETE", "/v1/servers/{}", 200, true, false, ROUTE_QUERY("force"),
         ROUTE_SQL("wgf_api_delete_server", "text", "boolean", "text"),
         .prepare = api_admin_delete_server},
        {"POST", "/v1/servers/{}/import", 200, true, true, ROUTE_QUERY("apply"),
         ROUTE_SQL("wgf_api_import", "text", "jsonb", "boolean", "text"),
         .prepare = api_admin_import},
        {"GET", "/v1/servers/{}/unknown-peers", 200, true, false, ROUTE_QUERY("after", "limit"),
         ROUTE_SQL("wgf_api_unknown_peers", "text", "bytea", "integer"),
         .prepare = api_admin_unknown_peers},
        {"DELETE", "/v1/servers/{}/unknown-peers/{}", 204, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_release_peer", "text", "bytea", "text"),
         .prepare = api_admin_release_peer},
        {"POST", "/v1/webhooks", 201, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_create_webhook", "text", "text[]", "text", "text", "text"),
         .prepare = api_webhooks_create, .finish = api_webhooks_finish_secret},
        {"GET", "/v1/webhooks", 200, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_list_webhooks")},
        {"PATCH", "/v1/webhooks/{}", 200, true, true, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_update_webhook", "bigint", "text", "text[]", "boolean", "text", "text"),
         .prepare = api_webhooks_update},
        {"DELETE", "/v1/webhooks/{}", 204, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_delete_webhook", "bigint", "text"), .prepare = api_webhooks_one},
        {"POST", "/v1/webhooks/{}/rotate-secret", 200, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_rotate_webhook_secret", "bigint", "text", "text"),
         .prepare = api_webhooks_rotate, .finish = api_webhooks_finish_secret},
        {"POST", "/v1/webhooks/{}/test", 202, true, false, ROUTE_QUERY(),
         ROUTE_SQL("wgf_api_test_webhook", "bigint", "text"), .prepare = api_webhooks_one},
        {"GET", "/v1/webhooks/{}/deliveries", 200, true, false,
         ROUTE_QUERY("status", "after", "limit"),
         ROUTE_SQL("wgf_api_webhook_deliveries", "bigint", "text", "bigint", "integer"),
         .prepare = api_webhooks_deliveries},
        {"GET", "/v1/status", 200, true, false, ROUTE_QUERY("limit", "cursor"),
         ROUTE_SQL("wgf_api_status", "interval", "integer", "text"), .prepare = api_admin_status},
        {"GET", "/healthz", 200, false, false, ROUTE_QUERY(), .finish = api_admin_finish_healthz},
        {"GET", "/dashboard", 200, false, false, ROUTE_QUERY(), .finish = api_admin_finish_static},
        {"GET", "/dashboard/{}", 200, false, false, ROUTE_QUERY(),
         .finish = api_admin_finish_static},
        {"GET", "/readyz", 200, false, false, ROUTE_QUERY(),
         .sql_text = "SELECT coalesce(max(version), 0) FROM wgf_schema_migrations",
         .finish = api_admin_finish_readyz},
};

void api_routes_print(FILE *f)
{
	for (size_t i = 0; i < WGF_ARRAY_SIZE(routes); i++)
		fprintf(f, "%s %s\n", routes[i].method, routes[i].pattern);
}

/* ---- the life of a call ---- */

struct call *call_new(struct api *a, const struct http_request *rq)
{
	struct call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->api = a;
	c->rq = rq;
	return c;
}

void call_free(struct call *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n_query; i++) {
		free(c->query[i].key);
		free(c->query[i].value);
	}
	if (c->shown_key) {
		sodium_memzero(c->shown_key, strlen(c->shown_key));
		free(c->shown_key);
	}
	free(c->long_param);
	sodium_memzero(c->arena, sizeof(c->arena));
	json_decref(c->body);
	json_decref(c->reply_json);
	free(c->reply_text);
	free(c);
}

int call_problem(struct call *c, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	c->problem.status = status;
	c->problem.code = code;
	va_start(ap, fmt);
	vsnprintf(c->problem.message, sizeof(c->problem.message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int call_invalid(struct call *c, const char *field, const char *fmt, ...)
{
	char msg[sizeof(c->problem.message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return call_problem(c, 400, "invalid_request", "%s: %s", field, msg);
}

void call_params_n(struct call *c, const char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* More than the route's row has is caught by call_decode; never overflow. */
		if (c->n_params < DB_PARAMS_MAX)
			c->params[c->n_params] = values[i];
		c->n_params++;
	}
}

const char *call_arena(struct call *c, const char *fmt, ...)
{
	size_t room = sizeof(c->arena) - c->arena_used;
	char *out = c->arena + c->arena_used;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return NULL;
	c->arena_used += (size_t)n + 1;
	return out;
}

const char *call_interval(struct call *c, uint64_t ms)
{
	return call_arena(c, "%llu milliseconds", (unsigned long long)ms);
}

const char *call_query_get(const struct call *c, const char *key)
{
	for (unsigned i = 0; i < c->n_query; i++)
		if (strcmp(c->query[i].key, key) == 0)
			return c->query[i].value;
	return NULL;
}

const char *call_body_text(const struct call *c, const char *key)
{
	return json_string_value(json_object_get(c->body, key));
}

const char *call_body_int(struct call *c, const char *key)
{
	json_t *v = json_object_get(c->body, key);

	if (!json_is_integer(v))
		return NULL;
	return call_arena(c, "%lld", (long long)json_integer_value(v));
}

const char *call_body_bool(const struct call *c, const char *key)
{
	json_t *v = json_object_get(c->body, key);

	if (!json_is_boolean(v))
		return NULL;
	return json_is_true(v) ? "true" : "false";
}

const char *call_body_names(struct call *c, const char *key)
{
	json_t *v = json_object_get(c->body, key), *item;
	char out[API_ARENA_SIZE / 2];
	size_t o = 0, i;

	if (!json_is_array(v))
		return NULL;
	out[o++] = '{';
	json_array_foreach(v, i, item)
	{
		/* input_body() checked each name's characters: nothing here needs quoting. */
		int n = snprintf(out + o, sizeof(out) - o, "%s%s", i ? "," : "",
		                 json_string_value(item));

		if (n < 0 || (size_t)n >= sizeof(out) - o)
			return NULL;
		o += (size_t)n;
	}
	if (o + 2 > sizeof(out))
		return NULL;
	out[o++] = '}';
	out[o] = '\0';
	return call_arena(c, "%s", out);
}

/* ---- decoding ---- */

/* Copies s for the log, with bytes outside printable ASCII as \xNN. */
static void escape_for_log(char *out, size_t size, const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < size; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", ch);
	}
	out[o] = '\0';
}

/* Matches path against pattern; captures "{}" segments into c->args. */
static bool path_match(struct call *c, const char *pattern, const char *path, size_t len)
{
	const char *end = path + len;

	c->n_args = 0;
	while (*pattern && path < end) {
		if (pattern[0] == '{' && pattern[1] == '}') {
			const char *slash = memchr(path, '/', (size_t)(end - path));
			size_t n = (size_t)((slash ? slash : end) - path);

			if (n == 0 || n >= API_ARG_MAX || c->n_args >= API_ARGS_MAX)
				return false;
			memcpy(c->args[c->n_args], path, n);
			c->args[c->n_args++][n] = '\0';
			path += n;
			pattern += 2;
			continue;
		}
		if (*pattern++ != *path++)
			return false;
	}
	return *pattern == '\0' && path == end;
}

static int find_route(struct call *c)
{
	const struct http_request *rq = c->rq;
	bool path_known = false;

	for (size_t i = 0; i < WGF_ARRAY_SIZE(routes); i++) {
		if (!path_match(c, routes[i].pattern, rq->path.base, rq->path.len))
			continue;
		path_known = true;
		if (h2o_memis(rq->method.base, rq->method.len, routes[i].method,
		              strlen(routes[i].method))) {
			c->route = &routes[i];
			return 0;
		}
	}
	if (path_known)
		return call_problem(c, 405, "method_not_allowed", "This path does not take %s.",
		                    c->method);
	return call_problem(c, 404, "not_found", "No such route.");
}

static void set_request_id(struct call *c)
{
	static const char allowed[] =
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	ssize_t i = h2o_find_header_by_str(c->rq->headers, H2O_STRLIT("x-request-id"), -1);
	uint8_t rnd[12];

	if (i >= 0) {
		h2o_iovec_t v = c->rq->headers->entries[i].value;

		size_t ok = 0;

		/* h2o's values are not NUL-terminated: look at v.len bytes, no more. */
		while (ok < v.len && v.base[ok] && strchr(allowed, v.base[ok]))
			ok++;
		if (v.len > 0 && v.len <= API_REQUEST_ID_MAX && ok == v.len) {
			memcpy(c->request_id, v.base, v.len);
			c->request_id[v.len] = '\0';
			return;
		}
	}
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(c->request_id, sizeof(c->request_id), rnd, sizeof(rnd));
}

static int decode_body(struct call *c)
{
	const struct http_request *rq = c->rq;
	json_error_t jerr;
	int r;

	r = input_content_type(c);
	if (r < 0)
		return r;
	if (rq->body.len > API_BODY_MAX)
		return call_problem(c, 413, "body_too_large", "The body is larger than %d bytes.",
		                    API_BODY_MAX);
	c->body = json_loadb(rq->body.base ? rq->body.base : "", rq->body.len,
	                     JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!c->body)
		return call_invalid(c, "body", "not valid JSON (%s at character %d)",
		                    json_error_code(&jerr) == json_error_invalid_utf8
		                            ? "invalid UTF-8"
		                            : "a syntax error",
		                    jerr.position);
	return 0;
}

/* An address that failed to authenticate too often waits before its next try: no
 * database work, no log line of its own. */
static int admit_key(struct call *c)
{
	struct clients *t = c->api->auth;
	uint64_t now = wgf_clock_mono_ms();
	unsigned wait;

	if (!t || !c->client_addr.family)
		return 0;
	wait = clients_auth_wait(t, clients_get(t, &c->client_addr, now), now);
	if (wait == 0)
		return 0;
	c->retry_after = wait;
	return call_problem(c, 429, "too_many_failures",
	                    "Too many failed authentications from this address; retry in %u s.",
	                    wait);
}

int call_decode(struct call *c)
{
	const struct http_request *rq = c->rq;
	size_t expect;
	int r;

	escape_for_log(c->method, sizeof(c->method), rq->method.base, rq->method.len);
	escape_for_log(c->path, sizeof(c->path), rq->path.base, rq->path.len);
	snprintf(c->client, sizeof(c->client), "%s", rq->client ? rq->client : "");
	set_request_id(c);
	if (rq->ambiguous_framing)
		return call_invalid(c, "headers",
		                    "Content-Length given twice or with Transfer-Encoding");
	for (size_t i = 0; i < rq->path.len; i++)
		if ((unsigned char)rq->path.base[i] < 0x20 || rq->path.base[i] == 0x7f)
			return call_invalid(c, "path", "holds control characters");
	c->client_addr = rq->client_addr;
	r = find_route(c);
	if (r == 0 && rq->query.base)
		r = input_query(c, rq->query.base, rq->query.len);
	if (r == 0 && c->route->needs_key)
		r = admit_key(c);
	if (r == 0 && c->route->needs_key) {
		r = input_auth(c);
		call_params(c, c->key_prefix, c->key_hash); /* $1 and $2 */
	}
	if (r == 0 && c->route->has_body)
		r = decode_body(c);
	if (r == 0 && c->route->prepare)
		r = c->route->prepare(c);
	if (r < 0)
		return r;
	expect = c->route->n_sql_types + (c->route->needs_key ? 2 : 0);
	if (c->route->sql_fn && c->n_params != expect)
		return call_problem(c, 500, "internal", "The route made %u parameters for its %zu.",
		                    c->n_params, expect);
	return 0;
}

/* ---- replies ---- */

#define REFUSED_REPORT_MS 10000

/*
 * A request refused for its key (401) or for its address's failures (429) is counted,
 * not logged: a stranger's flood must not become a flood of log lines. The counts are
 * logged at most once every REFUSED_REPORT_MS, with the last address refused. Returns
 * whether the call was such a refusal.
 */
static bool count_refusal(struct call *c)
{
	struct api *a = c->api;
	uint64_t now = wgf_clock_mono_ms();
	char unauthorized[24], throttled[24];

	if (c->problem.status == 401) {
		a->refused.unauthorized++;
		a->unauthorized_total++;
		if (a->auth && c->client_addr.family)
			clients_auth_failed(a->auth, clients_get(a->auth, &c->client_addr, now),
			                    now);
	} else if (c->problem.status == 429 && strcmp(c->problem.code, "too_many_failures") == 0) {
		a->refused.throttled++;
		a->throttled_total++;
	} else {
		return false;
	}
	snprintf(a->refused.last_client, sizeof(a->refused.last_client), "%s", c->client);
	if (now - a->refused.reported_ms >= REFUSED_REPORT_MS) {
		snprintf(unauthorized, sizeof(unauthorized), "%llu",
		         (unsigned long long)a->refused.unauthorized);
		snprintf(throttled, sizeof(throttled), "%llu",
		         (unsigned long long)a->refused.throttled);
		log_fields(LOG_WARNING, "Refused requests", {"unauthorized", unauthorized},
		           {"throttled", throttled}, {"last_client", a->refused.last_client});
		a->refused.unauthorized = a->refused.throttled = 0;
		a->refused.reported_ms = now;
	}
	return true;
}

/* Counts the answer under its route (or under no route), with the time it took. */
static void count_answer(struct call *c, int status)
{
	size_t i = c->route ? (size_t)(c->route - routes) : WGF_ARRAY_SIZE(routes);
	struct api_route_stats *st = &c->api->stats[i];

	wgf_prom_histogram_observe(&st->latency, (double)(uv_hrtime() - c->started_ns) / 1e9);
	for (size_t k = 0; k < STATUSES_PER_ROUTE; k++) {
		if (st->answers[k].status == 0)
			st->answers[k].status = status;
		if (st->answers[k].status == status) {
			st->answers[k].n++;
			return;
		}
	}
}

/* The one place a call ends: reply if the client is still there, log, free. */
static void call_finish(struct call *c)
{
	h2o_req_t *req = c->pending.req;
	int status;

	http_pending_detach(&c->pending);
	if (c->problem.status)
		status = c->problem.status;
	else
		status = c->route->status;
	if (req && c->retry_after)
		http_add_header(req, "retry-after", call_arena(c, "%u", c->retry_after) ?: "60");
	if (req) {
		if (c->problem.status)
			status = http_reply_error(req, status, c->problem.code, c->problem.message,
			                          c->request_id);
		else if (c->reply_text)
			status = http_reply_text(req, status, c->reply_text, c->request_id);
		else if (c->static_file)
			status = http_reply_static(req, status, c->static_file->type,
			                           c->static_file->data, c->static_file->len,
			                           c->request_id);
		else if (status == 204)
			status = http_reply_empty(req, status, c->request_id);
		else
			status = http_reply_json(req, status, c->reply_json, c->request_id);
	}
	count_answer(c, status);
	if (count_refusal(c)) {
		call_free(c);
		return;
	}
	log_fields(status >= 500 ? LOG_WARNING : LOG_INFO, "Request", {"method", c->method},
	           {"path", c->path}, {"status", call_arena(c, "%d", status) ?: "?"},
	           {"ms", call_arena(c, "%llu",
	                             (unsigned long long)(uv_now(c->api->loop) - c->started_ms))
	                          ?: "?"},
	           {"client", c->client}, {"request_id", c->request_id});
	call_free(c);
}

static void on_db_error(struct call *c, const struct db_error *e)
{
	if (c->route->sql_text) {
		/* A readiness probe is not ready, whatever the database said. */
		call_problem(c, 503, "not_ready", "The database is not reachable.");
	} else if (strncmp(e->sqlstate, "WG", 2) == 0) {
		int status = atoi(e->sqlstate + 2);

		if (status == 429 && e->hint[0])
			c->retry_after = (unsigned)strtoul(e->hint, NULL, 10);
		call_problem(c, status, call_arena(c, "%s", e->message) ?: "error", "%s",
		             e->detail);
	} else if (strncmp(e->sqlstate, "22", 2) == 0) {
		call_invalid(c, c->ts_field ? c->ts_field : "request", "%s", e->message);
	} else if (e->code == -ETIMEDOUT) {
		call_problem(c, 503, "timeout", "The database did not answer in time; retry.");
	} else if (e->code == -ECONNRESET || e->code == -ECONNREFUSED || e->code == -ECANCELED) {
		call_problem(c, 503, "unavailable", "The database is not reachable; retry.");
	} else {
		log_fields(LOG_ERR, "Database error", {"request_id", c->request_id},
		           {"sqlstate", e->sqlstate}, {"error", e->message});
		call_problem(c, 500, "internal",
		             "Something went wrong; the request id is in the log.");
	}
}

static void on_db_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct call *c = ctx;
	json_t *result = NULL;
	int r = -EBADMSG;

	if (e) {
		on_db_error(c, e);
		call_finish(c);
		return;
	}
	if (c->route->needs_key && PQntuples(res) == 1 && PQnfields(res) == 1 &&
	    PQgetisnull(res, 0, 0)) {
		/* The key guard of route_sql(): no such key, and the function was not run. */
		call_problem(c, 401, "unauthorized", API_UNKNOWN_KEY_MESSAGE);
		call_finish(c);
		return;
	}
	if (PQntuples(res) == 1 && PQnfields(res) == 1)
		result = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
	if (result && c->route->finish) {
		r = c->route->finish(c, result);
	} else if (result) {
		c->reply_json = json_incref(result);
		r = 0;
	}
	json_decref(result);
	if (r < 0 && !c->problem.status)
		call_problem(c, 500, "internal", "Unexpected reply from the database.");
	call_finish(c);
}

#define READY_DEADLINE_MS 1000

static void call_send(struct call *c)
{
	/* A readiness probe answers within a second, from whatever the pool knows. */
	uint64_t wait = c->route->sql_text ? READY_DEADLINE_MS : c->api->o.request_deadline_ms;
	uint64_t deadline = uv_now(c->api->loop) + wait;
	const char *sql = c->route->sql_text ? c->route->sql_text : c->api->sql[c->route - routes];
	int r;

	if (!sql) {
		/* No database work: finish answers (the health check). */
		if (c->route->finish(c, NULL) < 0 && !c->problem.status)
			call_problem(c, 500, "internal", "The reply could not be made.");
		call_finish(c);
		return;
	}
	r = db_query(c->api->db, sql, (int)c->n_params, c->params, deadline, on_db_result, c);
	if (r == -EAGAIN)
		call_problem(c, 503, "overloaded", "Too many requests are waiting; retry.");
	else if (r < 0 && c->route->sql_text)
		call_problem(c, 503, "not_ready", "The database is not reachable.");
	else if (r < 0)
		call_problem(c, 503, "unavailable", "The database is not reachable; retry.");
	if (r < 0)
		call_finish(c);
}

void api_handle(void *ctx, h2o_req_t *req, const struct http_request *rq)
{
	struct api *a = ctx;
	struct call *c = call_new(a, rq);

	if (!c) {
		http_reply_error(req, 503, "unavailable", "Out of memory.", NULL);
		return;
	}
	c->started_ms = uv_now(a->loop);
	c->started_ns = uv_hrtime();
	if (http_pending_attach(&c->pending, req) < 0) {
		http_reply_error(req, 503, "unavailable", "Out of memory.", NULL);
		call_free(c);
		return;
	}
	if (call_decode(c) < 0) {
		c->rq = NULL;
		call_finish(c);
		return;
	}
	c->rq = NULL;
	call_send(c);
}

/* ---- the api object ---- */

/*
 * "SELECT fn($1, $2::bytea, $3::type...)" for a route's row. A route that needs a key
 * asks wgf_key_known() first, in the same statement, and gets SQL NULL for a key that
 * is unknown or revoked: its function is not run, and nothing is raised, because
 * PostgreSQL logs every error and a stranger's flood must not fill its log.
 */
static char *route_sql(const struct route *rt)
{
	unsigned first = rt->needs_key ? 3 : 1;
	char buf[640];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	bool ok;

	if (!f)
		return NULL;
	if (rt->needs_key)
		fputs("SELECT CASE WHEN wgf_key_known($1, $2::bytea) THEN ", f);
	else
		fputs("SELECT ", f);
	fprintf(f, "%s(%s", rt->sql_fn, rt->needs_key ? "$1, $2::bytea" : "");
	for (size_t i = 0; i < rt->n_sql_types; i++) {
		bool text = strcmp(rt->sql_types[i], "text") == 0;

		fprintf(f, "%s$%zu%s%s", i + first > 1 ? ", " : "", i + first,
		        text ? "" : "::", text ? "" : rt->sql_types[i]);
	}
	fputs(rt->needs_key ? ") END" : ")", f);
	ok = fputc('\0', f) != EOF && fflush(f) == 0 && ftell(f) < (long)sizeof(buf);
	fclose(f);
	return ok ? strdup(buf) : NULL;
}

int api_new(uv_loop_t *loop, struct db *db, const struct api_options *o, struct api **ret)
{
	struct api *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->db = db;
	a->o = *o;
	r = wgf_secret_lock(a->o.key_hash_secret, sizeof(a->o.key_hash_secret));
	if (r < 0)
		log_errno(LOG_WARNING, r, "Cannot lock the API key hashing secret, continuing");
	a->sql = calloc(WGF_ARRAY_SIZE(routes), sizeof(*a->sql));
	a->stats = calloc(WGF_ARRAY_SIZE(routes) + 1, sizeof(*a->stats));
	if (!a->sql || !a->stats)
		goto fail;
	for (size_t i = 0; i <= WGF_ARRAY_SIZE(routes); i++)
		wgf_prom_histogram_init(&a->stats[i].latency, latency_bounds,
		                        WGF_ARRAY_SIZE(latency_bounds));
	for (size_t i = 0; i < WGF_ARRAY_SIZE(routes); i++)
		if (routes[i].sql_fn && !(a->sql[i] = route_sql(&routes[i])))
			goto fail;
	if (o->failed_auth_per_minute) {
		a->auth = clients_new(AUTH_CLIENT_SLOTS,
		                      &(struct clients_limits){
		                              .auth_failures_burst = o->failed_auth_per_minute,
		                              .auth_failures_per_min = o->failed_auth_per_minute,
		                      });
		if (!a->auth)
			goto fail;
	}
	*ret = a;
	return 0;
fail:
	api_free(a);
	return -ENOMEM;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	if (a->sql)
		for (size_t i = 0; i < WGF_ARRAY_SIZE(routes); i++)
			free(a->sql[i]);
	free(a->sql);
	free(a->stats);
	clients_free(a->auth);
	wgf_secret_unlock(a->o.key_hash_secret, sizeof(a->o.key_hash_secret));
	free(a);
}

void api_set_reloadable(struct api *a, const struct api_options *o)
{
	a->o.reservation_ttl_ms = o->reservation_ttl_ms;
	a->o.address_cooldown_ms = o->address_cooldown_ms;
	a->o.persistent_keepalive = o->persistent_keepalive;
	a->o.server_online_ms = o->server_online_ms;
	a->o.placement_any = o->placement_any;
}

void api_write_metrics(const struct api *a, FILE *f)
{
	const size_t n = WGF_ARRAY_SIZE(routes);

	wgf_prom_family(f, "wgfleet_http_requests_total", "counter",
	                "API requests answered, by route and status.");
	for (size_t i = 0; i <= n; i++) {
		const char *method = i < n ? routes[i].method : "other";
		const char *route = i < n ? routes[i].pattern : "none";

		for (size_t k = 0; k < STATUSES_PER_ROUTE && a->stats[i].answers[k].status; k++) {
			char status[8];

			snprintf(status, sizeof(status), "%d", a->stats[i].answers[k].status);
			wgf_prom(f, "wgfleet_http_requests_total", a->stats[i].answers[k].n,
			         {"method", method}, {"route", route}, {"status", status});
		}
	}
	wgf_prom_family(f, "wgfleet_http_request_duration_seconds", "histogram",
	                "Time from a request's arrival to its answer, by route.");
	for (size_t i = 0; i <= n; i++) {
		const struct wgf_prom_label l[] = {{"method", i < n ? routes[i].method : "other"},
		                                   {"route", i < n ? routes[i].pattern : "none"}};

		if (a->stats[i].latency.count == 0)
			continue; /* a route appears once it has answered */
		wgf_prom_histogram_write(f, "wgfleet_http_request_duration_seconds", l,
		                         WGF_ARRAY_SIZE(l), &a->stats[i].latency);
	}
	wgf_prom_family(f, "wgfleet_http_auth_refused_total", "counter",
	                "API requests refused before any work: a wrong key (unauthorized) "
	                "or too many failures from the client's address (throttled).");
	wgf_prom(f, "wgfleet_http_auth_refused_total", a->unauthorized_total,
	         {"reason", "unauthorized"});
	wgf_prom(f, "wgfleet_http_auth_refused_total", a->throttled_total, {"reason", "throttled"});
}
