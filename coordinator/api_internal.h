/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api_internal: what api.c, api_input.c and the route files share. */
#ifndef WGF_COORDINATOR_API_INTERNAL_H
#define WGF_COORDINATOR_API_INTERNAL_H

/*
 * A request becomes a struct call, and every call goes the same way:
 *
 *   decode   (api.c, api_input.c) the route is found, the path, query, headers and
 *            body are checked against the route's row, then the route's prepare
 *            function checks what is particular to it and fills the SQL parameters;
 *   query    one call of the route's SQL function (coordinator/sql), which
 *            authenticates, does the work in one transaction and returns the body;
 *   finish   the route's finish function (if any) shapes that body, the dispatcher
 *            replies with the status the route's row names, logs one line and frees
 *            the call.
 *
 * Who replies and who frees: only api.c, in call_finish(). Route functions never
 * reply and never free: prepare and finish return 0, or a negative errno after
 * call_problem() or call_invalid() has recorded what to answer. So decoding is a pure
 * function of the request (no database, no loop), and the fuzzer runs it as it is.
 *
 * A route's SQL function takes the caller's key prefix and hash as $1 and $2 (when the
 * route needs a key), then the parameters prepare appends with call_params(), whose
 * count the compiler takes from the list; the route's row lists their SQL types, and
 * decoding refuses (500) a prepare that appended a different number. The query of a
 * route that needs a key asks wgf_key_known() first, and is NULL, not an error, for a
 * key the database does not know: a 401 that leaves no line in PostgreSQL's log.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <jansson.h>

#include "api.h"
#include "apikey.h"
#include "cidr.h"
#include "clients.h"
#include "db.h"
#include "http.h"
#include "macro.h"
#include "setup_text.h"

#define API_ARG_MAX        128
#define API_ARGS_MAX       2
#define API_QUERY_MAX      16
#define API_REQUEST_ID_MAX 64
#define API_PATH_LOG_MAX   256
#define API_HEX32_LEN      (2 + 2 * 32 + 1) /* "\x" + hex + NUL */
#define API_ARENA_SIZE     1024

/* The 401 for a key the database does not know (or knows as revoked); a header that
 * holds no key at all is answered by input_auth(). */
#define API_UNKNOWN_KEY_MESSAGE "The API key is missing, wrong or revoked."

enum field_type {
	F_TEXT,  /* a string: UTF-8 without control or format characters */
	F_INT,   /* a whole number within [min, max] */
	F_FIXED, /* a field that exists but cannot be changed on this route */
	F_LIST,  /* an array, whose items the route checks (input_object()) */
	F_BOOL,  /* true or false */
	F_NAMES, /* an array of at most max names: lower-case letters, digits, '.' and '_' */
};

struct field {
	const char *name;
	enum field_type type;
	bool required;
	size_t max_chars;    /* F_TEXT, F_NAMES (each) */
	json_int_t min, max; /* F_INT; max: F_NAMES' length */
};

struct query_param {
	char *key, *value;
};

struct call;
struct embedded_file;
/* Checks what is particular to the route and appends its SQL parameters. */
typedef int (*route_prepare_fn)(struct call *c);
/* Shapes the SQL function's result (borrowed) into c->reply_json or c->reply_text.
 * NULL in a route's row: the result is the reply. */
typedef int (*route_finish_fn)(struct call *c, json_t *result);

struct route {
	const char *method;
	const char *pattern; /* "{}" matches one path segment */
	int status;          /* the success status: decided here and nowhere else */
	bool needs_key;
	bool has_body;            /* prepare checks it with input_body() */
	const char *const *query; /* the query parameters it takes */
	size_t n_query;
	const char *sql_fn;           /* "wgf_api_reserve" */
	const char *const *sql_types; /* after $1 text and $2 bytea when needs_key */
	size_t n_sql_types;
	const char *sql_text; /* instead of sql_fn: a fixed query without parameters */
	route_prepare_fn prepare;
	route_finish_fn finish;
};

#define ROUTE_QUERY(...) .query = WGF_STRINGS(__VA_ARGS__), .n_query = WGF_NSTRINGS(__VA_ARGS__)
#define ROUTE_SQL(fn, ...)                                     \
	.sql_fn = (fn), .sql_types = WGF_STRINGS(__VA_ARGS__), \
	.n_sql_types = WGF_NSTRINGS(__VA_ARGS__)

struct api {
	uv_loop_t *loop;
	struct db *db;
	struct api_options o;
	char **sql;           /* per route of the table: the query text built from sql_fn */
	struct clients *auth; /* failed authentications per client address; NULL: no limit */
	/* Refused requests since the last report: counted, logged once per interval. */
	struct {
		uint64_t unauthorized, throttled, reported_ms;
		char last_client[48];
	} refused;
	/* The same, since start, for /metrics. */
	uint64_t unauthorized_total, throttled_total;
	struct api_route_stats *stats; /* per route of the table, then one for no route */
};

struct api_problem {
	int status;
	const char *code; /* a string literal */
	char message[400];
};

/* One request in flight: malloc'd, because a database reply may outlive h2o's request. */
struct call {
	struct http_pending pending;
	struct api *api;
	const struct http_request *rq; /* NULL once the HTTP layer's request is gone */
	const struct route *route;
	char request_id[API_REQUEST_ID_MAX + 1];
	char method[16];
	char path[API_PATH_LOG_MAX]; /* for the log: escaped, never holds a control byte */
	char client[48];
	struct wgf_addr client_addr;
	unsigned retry_after; /* seconds, for a 429's Retry-After; 0: none */
	char args[API_ARGS_MAX][API_ARG_MAX];
	unsigned n_args;
	struct query_param query[API_QUERY_MAX];
	unsigned n_query;
	json_t *body;
	char key_prefix[APIKEY_PREFIX_LEN + 1];
	char key_hash[API_HEX32_LEN];
	const char *params[DB_PARAMS_MAX];
	unsigned n_params;
	char arena[API_ARENA_SIZE]; /* call_arena() strings; they live as long as c */
	size_t arena_used;
	const char *ts_field; /* the parameter a database "invalid time" error names */
	enum setup_format format;
	char *shown_key;  /* a new API key's text, shown once; wiped on free */
	char *long_param; /* a parameter too long for the arena (an import's JSON) */
	const struct embedded_file *static_file; /* the dashboard's file to answer with */
	struct api_problem problem;
	json_t *reply_json;
	char *reply_text;
	uint64_t started_ms;
	uint64_t started_ns; /* uv_hrtime(), for the latency histogram */
};

/* ---- api.c ---- */

struct call *call_new(struct api *a, const struct http_request *rq);
/* Finds the route and runs every check and the route's prepare: 0 when the call is
 * ready for its query, or -errno with c->problem set. Touches no database. */
int call_decode(struct call *c);
void call_free(struct call *c);

__attribute__((format(printf, 4, 5))) int call_problem(struct call *c, int status, const char *code,
                                                       const char *fmt, ...);
/* 400 invalid_request "field: ..." */
__attribute__((format(printf, 3, 4))) int call_invalid(struct call *c, const char *field,
                                                       const char *fmt, ...);
/* Appends SQL parameters (NULL is SQL NULL); the compiler counts them. */
void call_params_n(struct call *c, const char *const *values, size_t n);
#define call_params(c, ...) call_params_n((c), WGF_STRINGS(__VA_ARGS__), WGF_NSTRINGS(__VA_ARGS__))
/* A copy of printf's output that lives as long as c; NULL when the arena is full. */
__attribute__((format(printf, 2, 3))) const char *call_arena(struct call *c, const char *fmt, ...);
/* The value of query parameter key, or NULL. */
const char *call_query_get(const struct call *c, const char *key);
/* A body member as text or NULL (absent or null); an integer as decimal text. */
const char *call_body_text(const struct call *c, const char *key);
const char *call_body_int(struct call *c, const char *key);

/* A boolean body member as "true" or "false", or NULL (absent or null). */
const char *call_body_bool(const struct call *c, const char *key);
/* An F_NAMES body member as a PostgreSQL array literal, or NULL (absent or null). */
const char *call_body_names(struct call *c, const char *key);

/* ---- api_input.c: one check per kind of field; each returns 0 or call_invalid() ---- */

/* Text: valid UTF-8, no control, format (bidi overrides among them) or line-separator
 * characters, no quotes or backslashes, at most max_chars characters. */
int input_text(struct call *c, const char *field, const char *s, size_t max_chars);
/* A router id: a UUID in canonical form (lower-case hex, dashes at 8-4-4-4-12). */
int input_uuid(struct call *c, const char *field, const char *s);
/* A key id: a decimal from 1 to 2^63-1 without sign, space or leading zero. */
int input_id(struct call *c, const char *field, const char *s);

/* A follow cursor of GET /v1/audit: two whole numbers, "XACT.ID". */
int input_follow_cursor(struct call *c, const char *field, const char *s);
/* A whole number in [min, max] in plain decimal; *ret written on success. */
int input_uint(struct call *c, const char *field, const char *s, unsigned long min,
               unsigned long max, unsigned long *ret);
/* An RFC 3339 date-time with an offset ("2026-12-01T08:00:00Z"). */
int input_timestamp(struct call *c, const char *field, const char *s);
/* "true" or "false"; absent is false. */
int input_bool(struct call *c, const char *field, const char *s, bool *ret);
/* A tenant slug or a server name, as the database's CHECK constraints define them. */
int input_slug(struct call *c, const char *field, const char *s);
int input_server_name(struct call *c, const char *field, const char *s);
/* An IPv4 or IPv6 address, without a prefix length. */
int input_address(struct call *c, const char *field, const char *s);
/* host:port (common/endpoint.h). */
int input_endpoint(struct call *c, const char *field, const char *s);
/* A WireGuard public key (Curve25519) or an agent key (Ed25519), base64, as "\x.." hex
 * in the arena for a bytea parameter; NULL text gives *ret NULL. */
int input_wg_key(struct call *c, const char *field, const char *s, int status, const char *code,
                 const char **ret);
int input_agent_key(struct call *c, const char *field, const char *s, const char **ret);
/*
 * A public key in a URL path or query: base64 in the URL-safe alphabet ('-' and '_' for
 * '+' and '/', which the path's decoding would otherwise turn into a separator), or the
 * standard one where it survives (a percent-encoded query).
 */
int input_url_key(struct call *c, const char *field, const char *s, const char **ret);

/* The body against the route's fields: an object with only those members, of those
 * types and bounds, and the required ones present. */
int input_body(struct call *c, const struct field *fields, size_t n);
/* The same checks for obj, a member of the body; where names it in errors ("routers[3]"). */
int input_object(struct call *c, json_t *obj, const char *where, const struct field *fields,
                 size_t n);
/* The query string into c->query: valid UTF-8 without control characters, each
 * parameter one the route takes, at most once. */
int input_query(struct call *c, const char *q, size_t len);
/* The Authorization header into c->key_prefix and c->key_hash. */
int input_auth(struct call *c);
/* Content-Type of a route with a body: application/json (any case, parameters ok). */
int input_content_type(struct call *c);
/* The Idempotency-Key header, or NULL when absent. */
int input_idempotency_key(struct call *c, const char **ret);

/* "\x" and hex, for a bytea parameter. */
void input_hex_bytea(char *out, size_t size, const uint8_t *bin, size_t len);

/* "N milliseconds" for an interval parameter. */
const char *call_interval(struct call *c, uint64_t ms);

/* ---- api_routers.c: the portal's routes ---- */

int api_routers_reserve(struct call *c);
int api_routers_list(struct call *c);
int api_routers_one(struct call *c); /* GET and DELETE /v1/routers/{id} */
int api_routers_public_key(struct call *c);
int api_routers_config(struct call *c);
int api_routers_audit(struct call *c);
int api_routers_leases(struct call *c);
int api_routers_finish_router(struct call *c, json_t *router);
int api_routers_finish_config(struct call *c, json_t *router);

/* ---- api_admin.c: tenants, keys, servers, status and health ---- */

int api_admin_create_tenant(struct call *c);
int api_admin_update_tenant(struct call *c);
int api_admin_tenant_arg(struct call *c); /* GET /v1/tenants/{slug} */
int api_admin_server_arg(struct call *c); /* GET /v1/servers/{name} */
int api_admin_create_key(struct call *c);
int api_admin_create_admin_key(struct call *c);
int api_admin_list_keys(struct call *c);
int api_admin_finish_new_key(struct call *c, json_t *result);
int api_admin_revoke_key(struct call *c);
int api_admin_create_server(struct call *c);
int api_admin_update_server(struct call *c);
int api_admin_delete_server(struct call *c);
int api_admin_import(struct call *c);
int api_admin_finish_static(struct call *c, json_t *result);
int api_admin_status(struct call *c);
int api_admin_unknown_peers(struct call *c);
int api_admin_release_peer(struct call *c);
int api_admin_finish_healthz(struct call *c, json_t *result);
int api_admin_finish_readyz(struct call *c, json_t *result);

/* ---- api_webhooks.c: webhooks and their delivery logs ---- */

int api_webhooks_create(struct call *c);
int api_webhooks_update(struct call *c);
int api_webhooks_one(struct call *c); /* DELETE and test */
int api_webhooks_rotate(struct call *c);
int api_webhooks_deliveries(struct call *c);
int api_webhooks_finish_secret(struct call *c, json_t *result);

#endif
