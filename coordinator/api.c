/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api: routing, request checks and replies for the portal and admin API. */
#define LOG_MODULE "api"

#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>
#include <uriparser/Uri.h>

#include "apikey.h"
#include "cidr.h"
#include "http.h"
#include "key.h"
#include "log.h"
#include "migrate.h"
#include "setup_text.h"

#define ARG_MAX        128
#define QUERY_MAX      16
#define LIMIT_DEFAULT  100
#define LIMIT_MAX      1000
#define NAME_MAX_LEN   100
#define REQUEST_ID_MAX 64
#define HEX_HASH_LEN   (2 + 2 * 32 + 1) /* "\x" + hex + NUL */

struct api {
	uv_loop_t *loop;
	struct db *db;
	struct api_options o;
};

struct call;
typedef void (*route_fn)(struct call *c, json_t *body);
typedef void (*done_fn)(struct call *c, json_t *result);

struct route {
	const char *method;
	const char *pattern; /* "{}" matches one path segment */
	route_fn fn;
	bool has_body;
};

struct query_param {
	char *key, *value;
};

/* One request in flight: malloc'd, because a database reply may outlive h2o's request. */
struct call {
	struct http_pending pending;
	struct api *api;
	const struct route *route;
	h2o_req_t *req;
	char request_id[REQUEST_ID_MAX + 1];
	char args[2][ARG_MAX];
	unsigned n_args;
	struct query_param query[QUERY_MAX];
	unsigned n_query;
	char key_prefix[APIKEY_PREFIX_LEN + 1];
	char key_hash[HEX_HASH_LEN];
	char method[16];
	char path[256];
	const char *ts_field; /* the parameter a bad-timestamp error names */
	enum setup_format format;
	char *shown_key; /* a new API key's text, shown once */
	done_fn done;
	uint64_t started_ms;
};

/* ---- finishing a call ---- */

static void call_free(struct call *c)
{
	for (unsigned i = 0; i < c->n_query; i++) {
		free(c->query[i].key);
		free(c->query[i].value);
	}
	if (c->shown_key) {
		sodium_memzero(c->shown_key, strlen(c->shown_key));
		free(c->shown_key);
	}
	free(c);
}

static void call_log(struct call *c, int status)
{
	char st[8], ms[24];

	snprintf(st, sizeof(st), "%d", status);
	snprintf(ms, sizeof(ms), "%llu",
	         (unsigned long long)(uv_now(c->api->loop) - c->started_ms));
	log_fields(status >= 500 ? LOG_WARNING : LOG_INFO, "Request", {"method", c->method},
	           {"path", c->path}, {"status", st}, {"ms", ms}, {"request_id", c->request_id});
}

/* Returns the live request to reply to, or NULL when the client is gone. */
static h2o_req_t *call_take(struct call *c)
{
	h2o_req_t *req = c->pending.req;

	http_pending_detach(&c->pending);
	return req;
}

__attribute__((format(printf, 4, 5))) static void call_error(struct call *c, int status,
                                                             const char *code, const char *fmt, ...)
{
	h2o_req_t *req = call_take(c);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (req)
		http_reply_error(req, status, code, msg, c->request_id);
	call_log(c, status);
	call_free(c);
}

static void call_json(struct call *c, int status, const json_t *body)
{
	h2o_req_t *req = call_take(c);

	if (req) {
		if (status == 204)
			http_reply_empty(req, 204, c->request_id);
		else
			http_reply_json(req, status, body, c->request_id);
	}
	call_log(c, status);
	call_free(c);
}

static void call_text(struct call *c, const char *text)
{
	h2o_req_t *req = call_take(c);

	if (req)
		http_reply_text(req, 200, text, c->request_id);
	call_log(c, 200);
	call_free(c);
}

static void invalid(struct call *c, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void invalid(struct call *c, const char *field, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_error(c, 400, "invalid_request", "%s: %s", field, msg);
}

/* ---- the database call ---- */

static void on_db_error(struct call *c, const struct db_error *e)
{
	if (strncmp(e->sqlstate, "WG", 2) == 0) {
		int status = atoi(e->sqlstate + 2);

		if (status == 429 && e->hint[0] && c->pending.req)
			http_add_header(c->pending.req, "retry-after", e->hint);
		call_error(c, status, e->message, "%s", e->detail);
		return;
	}
	if (strncmp(e->sqlstate, "22", 2) == 0) {
		invalid(c, c->ts_field ? c->ts_field : "request", "%s", e->message);
		return;
	}
	if (e->code == -ETIMEDOUT) {
		call_error(c, 503, "timeout", "The database did not answer in time; retry.");
		return;
	}
	if (e->code == -ECONNRESET || e->code == -ECONNREFUSED || e->code == -ECANCELED) {
		call_error(c, 503, "unavailable", "The database is not reachable; retry.");
		return;
	}
	log_fields(LOG_ERR, "Database error", {"request_id", c->request_id},
	           {"sqlstate", e->sqlstate}, {"error", e->message});
	call_error(c, 500, "internal", "Something went wrong; the request id is in the log.");
}

static void on_db_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct call *c = ctx;
	json_error_t jerr;
	json_t *result;

	if (e) {
		on_db_error(c, e);
		return;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		call_error(c, 500, "internal", "Unexpected reply from the database.");
		return;
	}
	result = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, &jerr);
	if (!result) {
		call_error(c, 500, "internal", "Unexpected reply from the database.");
		return;
	}
	c->done(c, result);
	json_decref(result);
}

/* Sends sql with the caller's key prefix and hash as $1 and $2, then params. */
static void call_query(struct call *c, const char *sql, int n, const char *const *params,
                       done_fn done)
{
	const char *all[DB_PARAMS_MAX];
	uint64_t deadline = uv_now(c->api->loop) + c->api->o.request_deadline_ms;
	int r;

	all[0] = c->key_prefix;
	all[1] = c->key_hash;
	for (int i = 0; i < n; i++)
		all[i + 2] = params[i];
	c->done = done;
	r = db_query(c->api->db, sql, n + 2, all, deadline, on_db_result, c);
	if (r == -EAGAIN)
		call_error(c, 503, "overloaded", "Too many requests are waiting; retry.");
	else if (r < 0)
		call_error(c, 503, "unavailable", "The database is not reachable; retry.");
}

/* ---- replies ---- */

static void done_200(struct call *c, json_t *result)
{
	call_json(c, 200, result);
}

static void done_201(struct call *c, json_t *result)
{
	call_json(c, 201, result);
}

/* {"status": 204} from the SQL side. */
static void done_status(struct call *c, json_t *result)
{
	call_json(c, (int)json_integer_value(json_object_get(result, "status")), NULL);
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void fill_setup_input(struct call *c, const json_t *router, struct setup_input *in)
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

/* Replaces the router's "_server" with "setup": {"routeros": ..., "wg_quick": ...}. */
static int add_setup(struct call *c, json_t *router)
{
	struct setup_input in;
	char *ros = NULL, *wgq = NULL;
	int r;

	fill_setup_input(c, router, &in);
	r = setup_text(&in, SETUP_ROUTEROS, &ros);
	if (r == 0)
		r = setup_text(&in, SETUP_WG_QUICK, &wgq);
	if (r == 0)
		json_object_set_new(router, "setup",
		                    json_pack("{s:s,s:s}", "routeros", ros, "wg_quick", wgq));
	json_object_del(router, "_server");
	free(ros);
	free(wgq);
	return r;
}

static void done_router(struct call *c, json_t *router)
{
	if (add_setup(c, router) < 0) {
		call_error(c, 500, "internal", "Could not write the setup text.");
		return;
	}
	call_json(c, 200, router);
}

/* {"status": N, "body": router} from the idempotent functions. */
static void done_router_envelope(struct call *c, json_t *result)
{
	json_t *router = json_object_get(result, "body");
	int status = (int)json_integer_value(json_object_get(result, "status"));

	if (add_setup(c, router) < 0) {
		call_error(c, 500, "internal", "Could not write the setup text.");
		return;
	}
	call_json(c, status, router);
}

static void done_config(struct call *c, json_t *router)
{
	struct setup_input in;
	char *text = NULL;

	fill_setup_input(c, router, &in);
	if (setup_text(&in, c->format, &text) < 0) {
		call_error(c, 500, "internal", "Could not write the setup text.");
		return;
	}
	call_text(c, text);
	free(text);
}

static void done_new_key(struct call *c, json_t *result)
{
	json_object_set_new(result, "key", json_string(c->shown_key));
	call_json(c, 201, result);
}

/* ---- checking input ---- */

static const char *query_get(struct call *c, const char *key)
{
	for (unsigned i = 0; i < c->n_query; i++)
		if (strcmp(c->query[i].key, key) == 0)
			return c->query[i].value;
	return NULL;
}

/* Only the named parameters may appear, each once. */
static bool query_check(struct call *c, const char *const *allowed)
{
	for (unsigned i = 0; i < c->n_query; i++) {
		bool ok = false;

		for (const char *const *a = allowed; *a; a++)
			ok = ok || strcmp(c->query[i].key, *a) == 0;
		if (!ok) {
			invalid(c, c->query[i].key, "unknown query parameter");
			return false;
		}
		for (unsigned j = 0; j < i; j++)
			if (strcmp(c->query[i].key, c->query[j].key) == 0) {
				invalid(c, c->query[i].key, "given more than once");
				return false;
			}
	}
	return true;
}

static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char ch = s[i];

		if (dash ? ch != '-'
		         : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		             (ch >= 'A' && ch <= 'F')))
			return false;
	}
	return true;
}

/* Printable text without quotes or backslashes: safe inside setup text and logs. */
static bool is_plain_text(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
			return false;
	return true;
}

static bool parse_limit(struct call *c, char *buf, size_t size)
{
	const char *v = query_get(c, "limit");
	char *end;
	long n;

	if (!v) {
		snprintf(buf, size, "%d", LIMIT_DEFAULT);
		return true;
	}
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end || n < 1 || n > LIMIT_MAX) {
		invalid(c, "limit", "must be a whole number from 1 to %d", LIMIT_MAX);
		return false;
	}
	snprintf(buf, size, "%ld", n);
	return true;
}

enum field_type {
	F_STRING,
	F_INT,
};

struct field {
	const char *name;
	enum field_type type;
	bool required;
	size_t max_len;      /* strings */
	json_int_t min, max; /* integers */
};

/* The body must be an object holding only these fields, with these types and bounds. */
static bool body_check(struct call *c, json_t *body, const struct field *fields, size_t n)
{
	const char *key;
	json_t *v;

	if (!json_is_object(body)) {
		invalid(c, "body", "must be a JSON object");
		return false;
	}
	json_object_foreach(body, key, v)
	{
		size_t i;

		for (i = 0; i < n && strcmp(fields[i].name, key) != 0; i++)
			;
		if (i == n) {
			invalid(c, key, "unknown field");
			return false;
		}
		if (json_is_null(v) && !fields[i].required)
			continue;
		if (fields[i].type == F_STRING) {
			if (!json_is_string(v)) {
				invalid(c, key, "must be a string");
				return false;
			}
			if (json_string_length(v) > fields[i].max_len) {
				invalid(c, key, "longer than %zu characters", fields[i].max_len);
				return false;
			}
			if (!is_plain_text(json_string_value(v))) {
				invalid(c, key, "holds control characters, quotes or backslashes");
				return false;
			}
		} else if (!json_is_integer(v) || json_integer_value(v) < fields[i].min ||
		           json_integer_value(v) > fields[i].max) {
			invalid(c, key, "must be a whole number from %lld to %lld",
			        (long long)fields[i].min, (long long)fields[i].max);
			return false;
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *f = json_object_get(body, fields[i].name);

		if (fields[i].required && (!f || json_is_null(f))) {
			invalid(c, fields[i].name, "is required");
			return false;
		}
	}
	return true;
}

/* A body string, or NULL when absent or null. */
static const char *bstr(json_t *body, const char *key)
{
	return json_string_value(json_object_get(body, key));
}

/* A body integer as text in buf, or NULL when absent. */
static const char *bint(json_t *body, const char *key, char *buf, size_t size)
{
	json_t *v = json_object_get(body, key);

	if (!json_is_integer(v))
		return NULL;
	snprintf(buf, size, "%lld", (long long)json_integer_value(v));
	return buf;
}

static void hex_bytea(char *out, size_t size, const uint8_t *bin, size_t len)
{
	out[0] = '\\';
	out[1] = 'x';
	sodium_bin2hex(out + 2, size - 2, bin, len);
}

/* BLAKE2b of the method, path and body: what an Idempotency-Key is bound to. */
static void request_hash(struct call *c, char out[static HEX_HASH_LEN])
{
	crypto_generichash_state st;
	uint8_t h[32];

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)c->method, strlen(c->method) + 1);
	crypto_generichash_update(&st, (const uint8_t *)c->path, strlen(c->path) + 1);
	crypto_generichash_update(&st, (const uint8_t *)c->req->entity.base,
	                          c->req->entity.base ? c->req->entity.len : 0);
	crypto_generichash_final(&st, h, sizeof(h));
	hex_bytea(out, HEX_HASH_LEN, h, sizeof(h));
}

/* The Idempotency-Key header, checked; NULL when absent; false when it is malformed. */
static bool idempotency_key(struct call *c, char *buf, size_t size, const char **ret)
{
	*ret = NULL;
	if (!http_header(c->req, "idempotency-key", buf, size)) {
		if (h2o_find_header_by_str(&c->req->headers, H2O_STRLIT("idempotency-key"), -1) >=
		    0) {
			invalid(c, "Idempotency-Key", "longer than %zu characters", size - 1);
			return false;
		}
		return true;
	}
	if (buf[0] == '\0' || !is_plain_text(buf)) {
		invalid(c, "Idempotency-Key", "must be 1-200 printable characters");
		return false;
	}
	*ret = buf;
	return true;
}

static void ms_interval(char *buf, size_t size, uint64_t ms)
{
	snprintf(buf, size, "%llu milliseconds", (unsigned long long)ms);
}

/* ---- routes ---- */

static void route_reserve(struct call *c, json_t *body)
{
	static const struct field fields[] = {
	        {"name", F_STRING, false, NAME_MAX_LEN},
	        {"server", F_STRING, false, 63},
	};
	char ttl[48], cooldown[48], idem_buf[201], hash[HEX_HASH_LEN];
	const char *idem;

	if (!body_check(c, body, fields, 2) ||
	    !idempotency_key(c, idem_buf, sizeof(idem_buf), &idem))
		return;
	ms_interval(ttl, sizeof(ttl), c->api->o.reservation_ttl_ms);
	ms_interval(cooldown, sizeof(cooldown), c->api->o.address_cooldown_ms);
	request_hash(c, hash);
	call_query(c,
	           "SELECT wgf_api_reserve($1, $2::bytea, $3, $4, $5::interval, $6::interval, $7, "
	           "$8, $9::bytea)",
	           7,
	           (const char *[]){bstr(body, "name"), bstr(body, "server"), ttl, cooldown,
	                            c->request_id, idem, hash},
	           done_router_envelope);
}

static bool router_id_arg(struct call *c)
{
	if (!is_uuid(c->args[0])) {
		call_error(c, 404, "router_not_found", "No such router.");
		return false;
	}
	return true;
}

static void route_public_key(struct call *c, json_t *body)
{
	static const struct field fields[] = {{"public_key", F_STRING, true, 64}};
	char idem_buf[201], hash[HEX_HASH_LEN], key_hex[HEX_HASH_LEN], keepalive[16];
	uint8_t key[WGF_KEY_LEN];
	struct wgf_err err = {0};
	const char *idem;

	if (!router_id_arg(c) || !body_check(c, body, fields, 1) ||
	    !idempotency_key(c, idem_buf, sizeof(idem_buf), &idem))
		return;
	if (wgf_key_from_base64(key, bstr(body, "public_key"), WGF_KEY_PUBLIC, &err) < 0) {
		call_error(c, 400, "invalid_public_key", "public_key: %s", err.msg);
		return;
	}
	hex_bytea(key_hex, sizeof(key_hex), key, sizeof(key));
	snprintf(keepalive, sizeof(keepalive), "%u", c->api->o.persistent_keepalive);
	request_hash(c, hash);
	call_query(c,
	           "SELECT wgf_api_set_public_key($1, $2::bytea, $3::uuid, $4::bytea, $5::integer, "
	           "$6, $7, $8::bytea)",
	           6, (const char *[]){c->args[0], key_hex, keepalive, c->request_id, idem, hash},
	           done_router_envelope);
}

static void route_get_router(struct call *c, json_t *body)
{
	(void)body;
	if (!router_id_arg(c) || !query_check(c, (const char *[]){NULL}))
		return;
	call_query(c, "SELECT wgf_api_get_router($1, $2::bytea, $3::uuid)", 1,
	           (const char *[]){c->args[0]}, done_router);
}

static void route_config(struct call *c, json_t *body)
{
	const char *fmt;

	(void)body;
	if (!router_id_arg(c) || !query_check(c, (const char *[]){"format", NULL}))
		return;
	fmt = query_get(c, "format");
	if (setup_format_from_string(fmt ? fmt : "routeros", &c->format) < 0) {
		invalid(c, "format", "must be routeros or wg-quick");
		return;
	}
	call_query(c, "SELECT wgf_api_get_router($1, $2::bytea, $3::uuid)", 1,
	           (const char *[]){c->args[0]}, done_config);
}

static void route_delete_router(struct call *c, json_t *body)
{
	(void)body;
	if (!router_id_arg(c))
		return;
	call_query(c, "SELECT wgf_api_delete_router($1, $2::bytea, $3::uuid, $4)", 2,
	           (const char *[]){c->args[0], c->request_id}, done_status);
}

static void route_list_routers(struct call *c, json_t *body)
{
	const char *status, *cursor;
	char limit[16];

	(void)body;
	if (!query_check(c, (const char *[]){"status", "server", "limit", "cursor", NULL}) ||
	    !parse_limit(c, limit, sizeof(limit)))
		return;
	status = query_get(c, "status");
	cursor = query_get(c, "cursor");
	if (cursor && strlen(cursor) > 200) {
		invalid(c, "cursor", "not a cursor this API gave out");
		return;
	}
	if (status && strlen(status) > 32) {
		invalid(c, "status", "not a router status");
		return;
	}
	call_query(c, "SELECT wgf_api_list_routers($1, $2::bytea, $3, $4, $5::integer, $6)", 4,
	           (const char *[]){status, query_get(c, "server"), limit, cursor}, done_200);
}

static void route_audit(struct call *c, json_t *body)
{
	const char *router;
	char limit[16];

	(void)body;
	if (!query_check(c, (const char *[]){"router", "since", "limit", NULL}) ||
	    !parse_limit(c, limit, sizeof(limit)))
		return;
	router = query_get(c, "router");
	if (router && !is_uuid(router)) {
		invalid(c, "router", "not a router id");
		return;
	}
	c->ts_field = "since";
	call_query(c, "SELECT wgf_api_audit($1, $2::bytea, $3::uuid, $4::timestamptz, $5::integer)",
	           3, (const char *[]){router, query_get(c, "since"), limit}, done_200);
}

static void route_leases(struct call *c, json_t *body)
{
	struct wgf_addr addr;
	struct wgf_err err = {0};
	const char *ip;

	(void)body;
	if (!query_check(c, (const char *[]){"ip", "at", NULL}))
		return;
	ip = query_get(c, "ip");
	if (!ip) {
		invalid(c, "ip", "is required");
		return;
	}
	if (wgf_addr_parse(&addr, ip, &err) < 0) {
		invalid(c, "ip", "%s", err.msg);
		return;
	}
	c->ts_field = "at";
	call_query(c, "SELECT wgf_api_leases($1, $2::bytea, $3::inet, $4::timestamptz)", 2,
	           (const char *[]){ip, query_get(c, "at")}, done_200);
}

static const struct field tenant_limits[] = {
        {"router_quota", F_INT, false, 0, 0, 1000000},
        {"reservations_per_hour", F_INT, false, 0, 0, 1000000},
        {"slug", F_STRING, true, 63},
        {"name", F_STRING, true, 200},
};

static void route_create_tenant(struct call *c, json_t *body)
{
	char quota[24], rate[24];

	if (!body_check(c, body, tenant_limits, 4))
		return;
	call_query(c,
	           "SELECT wgf_api_create_tenant($1, $2::bytea, $3, $4, $5::integer, $6::integer, "
	           "$7)",
	           5,
	           (const char *[]){bstr(body, "slug"), bstr(body, "name"),
	                            bint(body, "router_quota", quota, sizeof(quota)),
	                            bint(body, "reservations_per_hour", rate, sizeof(rate)),
	                            c->request_id},
	           done_201);
}

static void route_list_tenants(struct call *c, json_t *body)
{
	(void)body;
	if (query_check(c, (const char *[]){NULL}))
		call_query(c, "SELECT wgf_api_list_tenants($1, $2::bytea)", 0, NULL, done_200);
}

static void route_update_tenant(struct call *c, json_t *body)
{
	char quota[24], rate[24];

	if (!body_check(c, body, tenant_limits, 2))
		return;
	call_query(c,
	           "SELECT wgf_api_update_tenant($1, $2::bytea, $3, $4::integer, $5::integer, $6)",
	           4,
	           (const char *[]){c->args[0], bint(body, "router_quota", quota, sizeof(quota)),
	                            bint(body, "reservations_per_hour", rate, sizeof(rate)),
	                            c->request_id},
	           done_200);
}

static void route_create_key(struct call *c, json_t *body)
{
	static const struct field fields[] = {{"label", F_STRING, false, 200}};
	char text[APIKEY_TEXT_LEN + 1], hash[HEX_HASH_LEN];
	struct apikey k;

	if (!body_check(c, body, fields, 1))
		return;
	apikey_generate(c->api->o.key_hash_secret, text, &k);
	c->shown_key = strdup(text);
	sodium_memzero(text, sizeof(text));
	if (!c->shown_key) {
		call_error(c, 500, "internal", "Out of memory.");
		return;
	}
	hex_bytea(hash, sizeof(hash), k.hash, sizeof(k.hash));
	call_query(c, "SELECT wgf_api_create_key($1, $2::bytea, $3, $4, $5::bytea, $6, $7)", 5,
	           (const char *[]){c->args[0], k.prefix, hash, bstr(body, "label"), c->request_id},
	           done_new_key);
}

static void route_revoke_key(struct call *c, json_t *body)
{
	char *end;
	long long id;

	(void)body;
	id = strtoll(c->args[0], &end, 10);
	if (*end || id <= 0) {
		call_error(c, 404, "key_not_found", "No such key.");
		return;
	}
	call_query(c, "SELECT wgf_api_revoke_key($1, $2::bytea, $3::bigint, $4)", 2,
	           (const char *[]){c->args[0], c->request_id}, done_status);
}

/* "host:port" with a port from 1 to 65535 and a host of plain characters. */
static bool is_endpoint(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s)
		return false;
	port = strtol(colon + 1, &end, 10);
	return *end == '\0' && colon[1] != '\0' && port >= 1 && port <= 65535 &&
	       strcspn(s, " /@?#") == strlen(s);
}

static bool optional_key(struct call *c, json_t *body, const char *field, bool ed25519, char *hex,
                         size_t size, const char **ret)
{
	const char *text = bstr(body, field);
	uint8_t key[32];
	struct wgf_err err = {0};
	size_t len = 0;

	*ret = NULL;
	if (!text)
		return true;
	if (ed25519) {
		if (sodium_base642bin(key, sizeof(key), text, strlen(text), NULL, &len, NULL,
		                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    len != sizeof(key) || !crypto_core_ed25519_is_valid_point(key)) {
			invalid(c, field, "not an Ed25519 public key in base64");
			return false;
		}
	} else if (wgf_key_from_base64(key, text, WGF_KEY_PUBLIC, &err) < 0) {
		invalid(c, field, "%s", err.msg);
		return false;
	}
	hex_bytea(hex, size, key, sizeof(key));
	*ret = hex;
	return true;
}

static void route_create_server(struct call *c, json_t *body)
{
	static const struct field fields[] = {
	        {"name", F_STRING, true, 63},        {"endpoint", F_STRING, true, 261},
	        {"interface", F_STRING, false, 15},  {"pool", F_STRING, true, 64},
	        {"gateway", F_STRING, true, 64},     {"agent_key", F_STRING, false, 64},
	        {"public_key", F_STRING, false, 64}, {"listen_port", F_INT, false, 0, 1, 65535},
	};
	char agent_hex[HEX_HASH_LEN], wg_hex[HEX_HASH_LEN], port[16];
	const char *agent_key, *wg_key;
	struct wgf_cidr pool;
	struct wgf_addr gw;
	struct wgf_err err = {0};

	if (!body_check(c, body, fields, sizeof(fields) / sizeof(fields[0])))
		return;
	if (!is_endpoint(bstr(body, "endpoint"))) {
		invalid(c, "endpoint", "must be host:port with a port from 1 to 65535");
		return;
	}
	if (wgf_cidr_parse(&pool, bstr(body, "pool"), 0, &err) < 0) {
		invalid(c, "pool", "%s", err.msg);
		return;
	}
	if (wgf_addr_parse(&gw, bstr(body, "gateway"), &err) < 0) {
		invalid(c, "gateway", "%s", err.msg);
		return;
	}
	if (!wgf_cidr_is_usable_host(&pool, &gw)) {
		invalid(c, "gateway", "must be a host address inside the pool");
		return;
	}
	if (!optional_key(c, body, "agent_key", true, agent_hex, sizeof(agent_hex), &agent_key) ||
	    !optional_key(c, body, "public_key", false, wg_hex, sizeof(wg_hex), &wg_key))
		return;
	call_query(c,
	           "SELECT wgf_api_create_server($1, $2::bytea, $3, $4, $5, $6::cidr, $7::inet, "
	           "$8::bytea, $9::bytea, $10::integer, $11)",
	           9,
	           (const char *[]){bstr(body, "name"), bstr(body, "endpoint"),
	                            bstr(body, "interface"), bstr(body, "pool"),
	                            bstr(body, "gateway"), agent_key, wg_key,
	                            bint(body, "listen_port", port, sizeof(port)), c->request_id},
	           done_201);
}

static void route_list_servers(struct call *c, json_t *body)
{
	(void)body;
	if (query_check(c, (const char *[]){NULL}))
		call_query(c, "SELECT wgf_api_list_servers($1, $2::bytea)", 0, NULL, done_200);
}

static void route_status(struct call *c, json_t *body)
{
	char online[48];

	(void)body;
	if (!query_check(c, (const char *[]){NULL}))
		return;
	ms_interval(online, sizeof(online), c->api->o.server_online_ms);
	call_query(c, "SELECT wgf_api_status($1, $2::bytea, $3::interval)", 1,
	           (const char *[]){online}, done_200);
}

static void route_healthz(struct call *c, json_t *body)
{
	json_t *ok = json_pack("{s:s}", "status", "ok");

	(void)body;
	call_json(c, 200, ok);
	json_decref(ok);
}

static void on_ready_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct call *c = ctx;
	int version;

	if (e) {
		call_error(c, 503, "not_ready", "The database is not reachable.");
		return;
	}
	version = PQgetisnull(res, 0, 0) ? 0 : atoi(PQgetvalue(res, 0, 0));
	if (version != (int)migrate_n_steps) {
		call_error(c, 503, "not_ready",
		           "The database schema is at version %d; this coordinator needs %zu.",
		           version, migrate_n_steps);
		return;
	}
	json_t *ok = json_pack("{s:s,s:i}", "status", "ready", "schema_version", version);

	call_json(c, 200, ok);
	json_decref(ok);
}

static void route_readyz(struct call *c, json_t *body)
{
	uint64_t deadline = uv_now(c->api->loop) + c->api->o.request_deadline_ms;

	(void)body;
	if (db_query(c->api->db, "SELECT max(version) FROM wgf_schema_migrations", 0, NULL,
	             deadline, on_ready_result, c) < 0)
		call_error(c, 503, "not_ready", "The database queue is full.");
}

static const struct route routes[] = {
        {"POST", "/v1/routers", route_reserve, true},
        {"GET", "/v1/routers", route_list_routers, false},
        {"GET", "/v1/routers/{}", route_get_router, false},
        {"DELETE", "/v1/routers/{}", route_delete_router, false},
        {"PUT", "/v1/routers/{}/public-key", route_public_key, true},
        {"GET", "/v1/routers/{}/config", route_config, false},
        {"GET", "/v1/audit", route_audit, false},
        {"GET", "/v1/leases", route_leases, false},
        {"POST", "/v1/tenants", route_create_tenant, true},
        {"GET", "/v1/tenants", route_list_tenants, false},
        {"PATCH", "/v1/tenants/{}", route_update_tenant, true},
        {"POST", "/v1/tenants/{}/keys", route_create_key, true},
        {"DELETE", "/v1/keys/{}", route_revoke_key, false},
        {"POST", "/v1/servers", route_create_server, true},
        {"GET", "/v1/servers", route_list_servers, false},
        {"GET", "/v1/status", route_status, false},
        {"GET", "/healthz", route_healthz, false},
        {"GET", "/readyz", route_readyz, false},
};

const char *const api_route_list[] = {
        "POST /v1/routers",
        "GET /v1/routers",
        "GET /v1/routers/{}",
        "DELETE /v1/routers/{}",
        "PUT /v1/routers/{}/public-key",
        "GET /v1/routers/{}/config",
        "GET /v1/audit",
        "GET /v1/leases",
        "POST /v1/tenants",
        "GET /v1/tenants",
        "PATCH /v1/tenants/{}",
        "POST /v1/tenants/{}/keys",
        "DELETE /v1/keys/{}",
        "POST /v1/servers",
        "GET /v1/servers",
        "GET /v1/status",
        "GET /healthz",
        "GET /readyz",
        NULL,
};

/* Matches path against pattern; captures "{}" segments into c->args. */
static bool path_match(struct call *c, const char *pattern, const char *path, size_t len)
{
	const char *end = path + len;

	c->n_args = 0;
	while (*pattern && path < end) {
		if (pattern[0] == '{' && pattern[1] == '}') {
			size_t n = strcspn(path, "/");

			if (n > (size_t)(end - path))
				n = (size_t)(end - path);
			if (n == 0 || n >= ARG_MAX || c->n_args >= 2)
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

static bool parse_query(struct call *c, const char *q, size_t len)
{
	UriQueryListA *list = NULL, *it;
	int count = 0;

	if (len == 0)
		return true;
	if (uriDissectQueryMallocA(&list, &count, q, q + len) != URI_SUCCESS) {
		invalid(c, "query", "not a valid query string");
		return false;
	}
	for (it = list; it; it = it->next) {
		if (c->n_query >= QUERY_MAX) {
			uriFreeQueryListA(list);
			invalid(c, "query", "more than %d parameters", QUERY_MAX);
			return false;
		}
		c->query[c->n_query].key = strdup(it->key);
		c->query[c->n_query].value = strdup(it->value ? it->value : "");
		c->n_query++;
	}
	uriFreeQueryListA(list);
	return true;
}

static bool parse_auth(struct call *c)
{
	char header[256];
	struct apikey k;

	if (!http_header(c->req, "authorization", header, sizeof(header)) ||
	    strncmp(header, "Bearer ", 7) != 0 ||
	    apikey_parse(c->api->o.key_hash_secret, header + 7, &k) < 0) {
		sodium_memzero(header, sizeof(header));
		call_error(c, 401, "unauthorized",
		           "Send a valid API key as 'Authorization: Bearer <key>'.");
		return false;
	}
	sodium_memzero(header, sizeof(header));
	memcpy(c->key_prefix, k.prefix, sizeof(c->key_prefix));
	hex_bytea(c->key_hash, sizeof(c->key_hash), k.hash, sizeof(k.hash));
	return true;
}

static void set_request_id(struct call *c)
{
	uint8_t rnd[12];

	if (http_header(c->req, "x-request-id", c->request_id, sizeof(c->request_id)) &&
	    c->request_id[0] &&
	    strspn(c->request_id,
	           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	            strlen(c->request_id))
		return;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(c->request_id, sizeof(c->request_id), rnd, sizeof(rnd));
}

static const struct route *find_route(struct call *c, h2o_req_t *req, size_t path_len,
                                      bool *ret_path_known)
{
	*ret_path_known = false;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_match(c, routes[i].pattern, req->path_normalized.base, path_len))
			continue;
		*ret_path_known = true;
		if (h2o_memis(req->method.base, req->method.len, routes[i].method,
		              strlen(routes[i].method)))
			return &routes[i];
	}
	return NULL;
}

void api_handle(void *ctx, h2o_req_t *req)
{
	struct api *a = ctx;
	struct call *c = calloc(1, sizeof(*c));
	size_t path_len;
	json_t *body = NULL;
	json_error_t jerr;
	bool known;

	if (!c) {
		http_reply_error(req, 503, "unavailable", "Out of memory.", NULL);
		return;
	}
	c->api = a;
	c->req = req;
	c->started_ms = uv_now(a->loop);
	snprintf(c->method, sizeof(c->method), "%.*s", (int)req->method.len, req->method.base);
	path_len = req->path_normalized.len;
	snprintf(c->path, sizeof(c->path), "%.*s", (int)path_len, req->path_normalized.base);
	set_request_id(c);
	if (http_pending_attach(&c->pending, req) < 0) {
		http_reply_error(req, 503, "unavailable", "Out of memory.", c->request_id);
		call_free(c);
		return;
	}
	c->route = find_route(c, req, path_len, &known);
	if (!c->route) {
		if (known)
			call_error(c, 405, "method_not_allowed", "This path does not take %s.",
			           c->method);
		else
			call_error(c, 404, "not_found", "No such route.");
		return;
	}
	if (req->query_at != SIZE_MAX &&
	    !parse_query(c, req->path.base + req->query_at + 1, req->path.len - req->query_at - 1))
		return;
	if (c->route->fn != route_healthz && c->route->fn != route_readyz && !parse_auth(c))
		return;
	if (req->entity.base && req->entity.len > API_BODY_MAX) {
		call_error(c, 413, "body_too_large", "The body is larger than %d bytes.",
		           API_BODY_MAX);
		return;
	}
	if (c->route->has_body) {
		body = json_loadb(req->entity.base ? req->entity.base : "",
		                  req->entity.base ? req->entity.len : 0, JSON_REJECT_DUPLICATES,
		                  &jerr);
		if (!body) {
			invalid(c, "body", "not valid JSON: %s", jerr.text);
			return;
		}
	}
	c->route->fn(c, body);
	json_decref(body);
}

int api_new(uv_loop_t *loop, struct db *db, const struct api_options *o, struct api **ret)
{
	struct api *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->db = db;
	a->o = *o;
	*ret = a;
	return 0;
}

void api_free(struct api *a)
{
	if (a) {
		sodium_memzero(a->o.key_hash_secret, sizeof(a->o.key_hash_secret));
		free(a);
	}
}

void api_set_reloadable(struct api *a, uint64_t reservation_ttl_ms, uint64_t address_cooldown_ms,
                        unsigned persistent_keepalive, uint64_t server_online_ms)
{
	a->o.reservation_ttl_ms = reservation_ttl_ms;
	a->o.address_cooldown_ms = address_cooldown_ms;
	a->o.persistent_keepalive = persistent_keepalive;
	a->o.server_online_ms = server_online_ms;
}
