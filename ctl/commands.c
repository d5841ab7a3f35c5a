/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* commands: wgfleetctl's commands, each one or a few calls of the admin API. */
#include "ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "key.h"

#define ARRAY_SIZE(a)       (sizeof(a) / sizeof((a)[0]))
#define PAGE_MAX            1000
#define FOLLOW_INTERVAL_MIN 0.2
#define FOLLOW_INTERVAL_MAX 60.0

/* ---- helpers ---- */

/* GET path and print the reply: as JSON, or its "items" as a table. */
static int list(struct ctx *c, const char *path, const struct column *cols, size_t n_cols)
{
	json_t *reply = NULL;
	int r = client_call(c->client, "GET", path, NULL, &reply, NULL);

	if (r == CTL_OK && c->json)
		output_json(reply);
	else if (r == CTL_OK)
		output_table(json_object_get(reply, "items"), cols, n_cols, true);
	json_decref(reply);
	return r;
}

/* Call and print the object the API answers (nothing for 204). */
static int call_show(struct ctx *c, const char *method, const char *path, json_t *body)
{
	json_t *reply = NULL;
	int r = client_call(c->client, method, path, body, &reply, NULL);

	if (r == CTL_OK && c->json)
		output_json(reply);
	else if (r == CTL_OK && reply)
		output_object(reply);
	json_decref(reply);
	return r;
}

/* prefix, then a segment from the command line percent-encoded, then suffix. */
int path_with(struct ctx *c, struct query *q, const char *prefix, const char *arg,
              const char *suffix)
{
	struct query seg;
	char *eq;

	query_init(&seg, "");
	query_add(&seg, "x", arg);
	eq = strchr(seg.buf, '=');
	if (seg.overflow || !eq)
		return ctx_usage(c, "the argument is too long");
	query_init(q, "");
	q->len = (size_t)snprintf(q->buf, sizeof(q->buf), "%s%s%s", prefix, eq + 1, suffix);
	if (q->len >= sizeof(q->buf))
		return ctx_usage(c, "the argument is too long");
	return CTL_OK;
}

enum body_kind { B_TEXT, B_INT };

struct body_field {
	const char *opt;   /* the command-line option */
	const char *field; /* the API's member */
	enum body_kind kind;
};

/* A JSON body from the options given; ret_n counts the members set. */
static int make_body(struct ctx *c, const struct body_field *f, size_t n, json_t **ret,
                     size_t *ret_n)
{
	json_t *body = json_object();
	size_t set = 0;

	if (!body)
		return ctx_usage(c, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *v = ctx_opt(c, f[i].opt);
		char *end;
		long long num;

		if (!v)
			continue;
		if (f[i].kind == B_INT) {
			errno = 0;
			num = strtoll(v, &end, 10);
			if (errno || end == v || *end || !strchr("0123456789", v[0])) {
				json_decref(body);
				return ctx_usage(c, "--%s: not a whole number: '%s'", f[i].opt, v);
			}
			json_object_set_new(body, f[i].field, json_integer(num));
		} else {
			json_object_set_new(body, f[i].field, json_string(v));
		}
		set++;
	}
	*ret = body;
	if (ret_n)
		*ret_n = set;
	return CTL_OK;
}

/* A time option: RFC 3339 as it is, or a duration meaning that long ago ("15m"). */
static int time_opt(struct ctx *c, const char *name, char *out, size_t size, const char **ret)
{
	const char *v = ctx_opt(c, name);
	double ago, at;

	*ret = NULL;
	if (!v)
		return CTL_OK;
	if (output_parse_time(v, &at) == 0) {
		*ret = v;
		return CTL_OK;
	}
	if (output_parse_duration(v, &ago) < 0)
		return ctx_usage(c, "--%s: an RFC 3339 time or a duration ago ('15m', '2h'): '%s'",
		                 name, v);
	output_format_time((double)wgf_clock_wall_ms() / 1000.0 - ago, out, size);
	*ret = out;
	return CTL_OK;
}

/* A reply that held a secret: wipe it before the reply is freed. */
static void wipe_member(json_t *reply, const char *name)
{
	json_t *v = json_object_get(reply, name);

	if (json_is_string(v))
		explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

/* --limit N (1..max), or def. */
static int limit_opt(struct ctx *c, long def, long max, long *ret)
{
	const char *v = ctx_opt(c, "limit");
	char *end;
	long n;

	*ret = def;
	if (!v)
		return CTL_OK;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 1 || n > max)
		return ctx_usage(c, "--limit: a whole number from 1 to %ld", max);
	*ret = n;
	return CTL_OK;
}

/* ---- status ---- */

static const struct opt_spec status_opts[] = {
        {"max-lag", "N", "a server more than N revisions behind is lagging (default 0)"},
        {NULL, NULL, NULL},
};

static int cmd_status(struct ctx *c)
{
	static const struct column cols[] = {
	        {"SERVER", "name", COL_TEXT},
	        {"STATE", "_state", COL_STATUS},
	        {"LAST SEEN", "last_seen_at", COL_TIME},
	        {"REVISION", "revision", COL_TEXT},
	        {"LAG", "revision_lag", COL_TEXT},
	        {"PEERS", "peers", COL_TEXT},
	        {"CONNECTED", "connected", COL_TEXT},
	        {"UNKNOWN", "unknown_peers", COL_TEXT},
	        {"POOL", "_pool", COL_TEXT},
	        {"P50 MS", "apply_latency.p50_ms", COL_TEXT},
	        {"P99 MS", "apply_latency.p99_ms", COL_TEXT},
	};
	const char *max_lag_text = ctx_opt(c, "max-lag");
	json_t *reply = NULL, *servers, *s;
	long long max_lag = 0;
	unsigned problems = 0;
	size_t i;
	int r;

	if (max_lag_text) {
		char *end;

		errno = 0;
		max_lag = strtoll(max_lag_text, &end, 10);
		if (errno || end == max_lag_text || *end || max_lag < 0)
			return ctx_usage(c, "--max-lag: a whole number from 0");
	}
	r = client_call(c->client, "GET", "/v1/status", NULL, &reply, NULL);
	if (r != CTL_OK)
		return r;
	servers = json_object_get(reply, "servers");
	json_array_foreach(servers, i, s)
	{
		bool online = json_is_true(json_object_get(s, "online"));
		bool lagging = json_integer_value(json_object_get(s, "revision_lag")) > max_lag;
		char pool[64];

		if (!online || lagging)
			problems++;
		if (c->json)
			continue;
		json_object_set_new(s, "_state",
		                    json_string(!online   ? "offline"
		                                : lagging ? "lagging"
		                                          : "online"));
		snprintf(pool, sizeof(pool), "%lld/%lld",
		         (long long)json_integer_value(output_get(s, "pool.used")),
		         (long long)json_integer_value(output_get(s, "pool.size")));
		json_object_set_new(s, "_pool", json_string(pool));
	}
	if (c->json) {
		output_json(reply);
	} else {
		const char *status;
		json_t *n;
		bool first = true;

		output_table(servers, cols, ARRAY_SIZE(cols), true);
		printf("\nrouters:");
		json_object_foreach(json_object_get(reply, "routers"), status, n)
		{
			const char *sgr = output_colour_for(status);

			printf("%s %s%s%s%s %lld", first ? "" : ",", sgr ? "\033[" : "",
			       sgr ? sgr : "", sgr ? "m" : "", status,
			       (long long)json_integer_value(n));
			if (sgr)
				printf("\033[0m");
			first = false;
		}
		printf("%s\n", first ? " none" : "");
		if (problems)
			printf("%u server%s offline or lagging\n", problems,
			       problems == 1 ? "" : "s");
		fflush(stdout);
	}
	json_decref(reply);
	return problems ? CTL_PROBLEM : CTL_OK;
}

/* ---- servers ---- */

static const struct body_field server_body[] = {
        {"endpoint", "endpoint", B_TEXT},
        {"interface", "interface", B_TEXT},
        {"pool", "pool", B_TEXT},
        {"gateway", "gateway", B_TEXT},
        {"agent-key", "agent_key", B_TEXT},
        {"next-agent-key", "next_agent_key", B_TEXT},
        {"public-key", "public_key", B_TEXT},
        {"listen-port", "listen_port", B_INT},
};

#define SERVER_SET_OPTS                                                           \
	{"endpoint", "HOST:PORT", "where routers reach the server"},              \
	        {"interface", "NAME", "its WireGuard interface (default wg0)"},   \
	        {"agent-key", "BASE64", "the agent's Ed25519 public key"},        \
	        {"public-key", "BASE64", "the interface's WireGuard public key"}, \
	{                                                                         \
		"listen-port", "PORT", "the interface's UDP port"                 \
	}

static const struct opt_spec servers_add_opts[] = {
        SERVER_SET_OPTS,
        {"pool", "CIDR", "the routers' address pool (required)"},
        {"gateway", "ADDRESS", "the server's own address in the pool (required)"},
        {NULL, NULL, NULL},
};
static const struct opt_spec servers_set_opts[] = {
        SERVER_SET_OPTS,
        {"next-agent-key", "BASE64",
         "a second agent key, accepted while the agent's is rotated ('' drops it)"},
        {NULL, NULL, NULL},
};
static const struct opt_spec servers_remove_opts[] = {
        {"force", NULL, "remove it even with live routers, releasing them"},
        {NULL, NULL, NULL},
};

static int cmd_servers_list(struct ctx *c)
{
	static const struct column cols[] = {
	        {"NAME", "name", COL_TEXT},
	        {"ENDPOINT", "endpoint", COL_TEXT},
	        {"INTERFACE", "interface", COL_TEXT},
	        {"POOL", "pool", COL_TEXT},
	        {"REVISION", "revision", COL_TEXT},
	        {"APPLIED", "applied_revision", COL_TEXT},
	        {"LAST SEEN", "last_seen_at", COL_TIME},
	};

	return list(c, "/v1/servers", cols, ARRAY_SIZE(cols));
}

static int cmd_servers_add(struct ctx *c)
{
	json_t *body;
	int r;

	if (!ctx_opt(c, "pool") || !ctx_opt(c, "gateway") || !ctx_opt(c, "endpoint"))
		return ctx_usage(c, "--endpoint, --pool and --gateway are required");
	r = make_body(c, server_body, ARRAY_SIZE(server_body), &body, NULL);
	if (r != CTL_OK)
		return r;
	json_object_set_new(body, "name", json_string(c->args[0]));
	r = call_show(c, "POST", "/v1/servers", body);
	json_decref(body);
	return r;
}

static int cmd_servers_remove(struct ctx *c)
{
	static const struct column cols[] = {
	        {"ROUTER", "id", COL_TEXT},
	        {"TENANT", "tenant", COL_TEXT},
	        {"ADDRESS", "vpn_ip", COL_TEXT},
	        {"STATUS", "vpn_status", COL_STATUS},
	};
	bool force = ctx_opt(c, "force") != NULL;
	json_t *live = NULL, *reply = NULL;
	struct query q, lq;
	int r = path_with(c, &q, "/v1/servers/", c->args[0], "");

	if (r != CTL_OK)
		return r;
	if (force) {
		/* Say what it releases: the routers live on it now (the first page). */
		query_init(&lq, "/v1/routers");
		query_add(&lq, "server", c->args[0]);
		query_add(&lq, "limit", "1000");
		r = client_call(c->client, "GET", lq.buf, NULL, &live, NULL);
		if (r != CTL_OK)
			return r;
		query_add(&q, "force", "true");
	}
	r = client_call(c->client, "DELETE", q.buf, NULL, &reply, NULL);
	if (r == CTL_OK && c->json) {
		output_json(reply);
	} else if (r == CTL_OK) {
		long long n = json_integer_value(json_object_get(reply, "released_routers"));

		printf("removed server %s; released %lld router%s\n", c->args[0], n,
		       n == 1 ? "" : "s");
		if (n > 0)
			output_table(json_object_get(live, "items"), cols, ARRAY_SIZE(cols), true);
	}
	json_decref(live);
	json_decref(reply);
	return r;
}

/* ---- tenants ---- */

static const struct body_field tenant_body[] = {
        {"name", "name", B_TEXT},
        {"router-quota", "router_quota", B_INT},
        {"reservations-per-hour", "reservations_per_hour", B_INT},
        {"key-changes-per-hour", "key_changes_per_hour", B_INT},
        {"router-key-changes-per-hour", "router_key_changes_per_hour", B_INT},
};

#define TENANT_LIMIT_OPTS                                                             \
	{"router-quota", "N", "live routers it may have"},                            \
	        {"reservations-per-hour", "N", "reservations it may make an hour"},   \
	        {"key-changes-per-hour", "N", "key changes and deletions an hour"},   \
	{                                                                             \
		"router-key-changes-per-hour", "N", "key changes an hour, per router" \
	}

static const struct opt_spec tenants_add_opts[] = {
        {"name", "NAME", "its display name (required)"},
        TENANT_LIMIT_OPTS,
        {NULL, NULL, NULL},
};
static const struct opt_spec tenants_set_opts[] = {TENANT_LIMIT_OPTS, {NULL, NULL, NULL}};

static int cmd_tenants_list(struct ctx *c)
{
	static const struct column cols[] = {
	        {"SLUG", "slug", COL_TEXT},
	        {"NAME", "name", COL_TEXT},
	        {"ROUTERS", "routers", COL_TEXT},
	        {"QUOTA", "router_quota", COL_TEXT},
	        {"RESERVATIONS/H", "reservations_per_hour", COL_TEXT},
	        {"KEY CHANGES/H", "key_changes_per_hour", COL_TEXT},
	        {"CREATED", "created_at", COL_TIME},
	};

	return list(c, "/v1/tenants", cols, ARRAY_SIZE(cols));
}

static int cmd_tenants_add(struct ctx *c)
{
	json_t *body;
	int r;

	if (!ctx_opt(c, "name"))
		return ctx_usage(c, "--name is required");
	r = make_body(c, tenant_body, ARRAY_SIZE(tenant_body), &body, NULL);
	if (r != CTL_OK)
		return r;
	json_object_set_new(body, "slug", json_string(c->args[0]));
	r = call_show(c, "POST", "/v1/tenants", body);
	json_decref(body);
	return r;
}

/* GET prefix + the command's argument, and print it. */
static int show_one(struct ctx *c, const char *prefix)
{
	struct query q;
	int r = path_with(c, &q, prefix, c->args[0], "");

	return r == CTL_OK ? call_show(c, "GET", q.buf, NULL) : r;
}

/* PATCH prefix + the command's argument with the settings given (at least one). */
static int patch_one(struct ctx *c, const char *prefix, const struct body_field *f, size_t n)
{
	struct query q;
	json_t *body;
	size_t set;
	int r = path_with(c, &q, prefix, c->args[0], "");

	if (r == CTL_OK)
		r = make_body(c, f, n, &body, &set);
	if (r != CTL_OK)
		return r;
	if (set == 0)
		r = ctx_usage(c, "give at least one setting to change (see --help)");
	else
		r = call_show(c, "PATCH", q.buf, body);
	json_decref(body);
	return r;
}

static int cmd_servers_show(struct ctx *c)
{
	return show_one(c, "/v1/servers/");
}

static int cmd_servers_set(struct ctx *c)
{
	return patch_one(c, "/v1/servers/", server_body, ARRAY_SIZE(server_body));
}

static const struct opt_spec servers_unknown_opts[] = {
        {"limit", "N", "list at most N (default 100, at most 1000)"},
        {NULL, NULL, NULL},
};

/* The unknown peers an agent in adopt mode keeps on the server's interface. */
static int cmd_servers_unknown(struct ctx *c)
{
	static const struct column cols[] = {
	        {"PUBLIC KEY", "public_key", COL_TEXT},
	        {"ALLOWED IPS", "_ips", COL_TEXT},
	        {"HANDSHAKE", "last_handshake_at", COL_TIME},
	        {"ENDPOINT", "endpoint", COL_TEXT},
	};
	json_t *reply = NULL, *items, *peer, *ip;
	char limit[24], ips[512];
	struct query q;
	size_t i, j;
	long n;
	int r = path_with(c, &q, "/v1/servers/", c->args[0], "/unknown-peers");

	if (r == CTL_OK)
		r = limit_opt(c, 100, PAGE_MAX, &n);
	if (r != CTL_OK)
		return r;
	snprintf(limit, sizeof(limit), "%ld", n);
	query_add(&q, "limit", limit);
	r = client_call(c->client, "GET", q.buf, NULL, &reply, NULL);
	if (r == CTL_OK && c->json) {
		output_json(reply);
	} else if (r == CTL_OK) {
		items = json_object_get(reply, "items");
		json_array_foreach(items, i, peer)
		{
			size_t len = 0;

			ips[0] = '\0';
			json_array_foreach(json_object_get(peer, "allowed_ips"), j, ip) len +=
			        (size_t)snprintf(ips + len,
			                         len < sizeof(ips) ? sizeof(ips) - len : 0, "%s%s",
			                         j ? "," : "", json_string_value(ip));
			json_object_set_new(peer, "_ips", json_string(ips));
		}
		output_table(items, cols, ARRAY_SIZE(cols), true);
		printf("%zu of %lld unknown peers\n", json_array_size(items),
		       (long long)json_integer_value(json_object_get(reply, "total")));
		fflush(stdout);
	}
	json_decref(reply);
	return r;
}

static int cmd_servers_release(struct ctx *c)
{
	char safe[WGF_KEY_B64_LEN + 1];
	json_t *reply = NULL, *out;
	struct query q, key;
	int r;

	/* The URL-safe alphabet: a '/' in a path is a separator even percent-encoded. */
	snprintf(safe, sizeof(safe), "%s", c->args[1]);
	for (char *p = safe; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	r = path_with(c, &key, "", safe, "");

	if (r == CTL_OK)
		r = path_with(c, &q, "/v1/servers/", c->args[0], "/unknown-peers/");
	if (r == CTL_OK && q.len + key.len >= sizeof(q.buf))
		r = ctx_usage(c, "the arguments are too long");
	if (r != CTL_OK)
		return r;
	memcpy(q.buf + q.len, key.buf, key.len + 1);
	r = client_call(c->client, "DELETE", q.buf, NULL, &reply, NULL);
	if (r == CTL_OK && c->json) {
		out = json_pack("{s:s,s:s,s:b}", "server", c->args[0], "public_key", c->args[1],
		                "released", 1);
		output_json(out);
		json_decref(out);
	} else if (r == CTL_OK) {
		printf("released peer %s on %s\n", c->args[1], c->args[0]);
	}
	json_decref(reply);
	return r;
}

static int cmd_tenants_show(struct ctx *c)
{
	return show_one(c, "/v1/tenants/");
}

static int cmd_tenants_set(struct ctx *c)
{
	return patch_one(c, "/v1/tenants/", tenant_body, ARRAY_SIZE(tenant_body));
}

/* DELETE prefix + the command's argument; says "<done> <what> <arg>". */
static int delete_one(struct ctx *c, const char *prefix, const char *what, const char *done)
{
	json_t *reply = NULL, *out;
	struct query q;
	int r = path_with(c, &q, prefix, c->args[0], "");

	if (r == CTL_OK)
		r = client_call(c->client, "DELETE", q.buf, NULL, &reply, NULL);
	if (r == CTL_OK && c->json) {
		out = json_pack("{s:s,s:b}", "id", c->args[0], done, 1);
		output_json(out);
		json_decref(out);
	} else if (r == CTL_OK) {
		printf("%s %s %s\n", done, what, c->args[0]);
	}
	json_decref(reply);
	return r;
}

static int cmd_keys_revoke(struct ctx *c)
{
	return delete_one(c, "/v1/keys/", "key", "revoked");
}

static int cmd_routers_delete(struct ctx *c)
{
	return delete_one(c, "/v1/routers/", "router", "deleted");
}

/* ---- keys ---- */

static const struct opt_spec keys_list_opts[] = {
        {"tenant", "SLUG", "only this tenant's keys"},
        {NULL, NULL, NULL},
};
static const struct opt_spec keys_create_opts[] = {
        {"tenant", "SLUG", "a key of this tenant"},
        {"admin", NULL, "an admin key"},
        {"label", "TEXT", "what the key is for"},
        {NULL, NULL, NULL},
};

static int cmd_keys_list(struct ctx *c)
{
	static const struct column cols[] = {
	        {"ID", "id", COL_TEXT},
	        {"SCOPE", "scope", COL_TEXT},
	        {"TENANT", "tenant", COL_TEXT},
	        {"PREFIX", "prefix", COL_TEXT},
	        {"LABEL", "label", COL_TEXT},
	        {"CREATED", "created_at", COL_TIME},
	        {"REVOKED", "revoked_at", COL_TIME},
	};
	struct query q;

	query_init(&q, "/v1/keys");
	query_add(&q, "tenant", ctx_opt(c, "tenant"));
	return list(c, q.buf, cols, ARRAY_SIZE(cols));
}

static int cmd_keys_create(struct ctx *c)
{
	const char *tenant = ctx_opt(c, "tenant");
	json_t *body = json_object(), *reply = NULL;
	struct query q;
	int r = CTL_OK;

	if (!body)
		return ctx_usage(c, "out of memory");
	if (!tenant == !ctx_opt(c, "admin"))
		r = ctx_usage(c, "give one of --tenant SLUG and --admin");
	else if (tenant)
		r = path_with(c, &q, "/v1/tenants/", tenant, "/keys");
	else
		query_init(&q, "/v1/keys");
	if (r == CTL_OK && ctx_opt(c, "label"))
		json_object_set_new(body, "label", json_string(ctx_opt(c, "label")));
	if (r == CTL_OK)
		r = client_call(c->client, "POST", q.buf, body, &reply, NULL);
	if (r == CTL_OK && c->json) {
		output_json(reply);
	} else if (r == CTL_OK) {
		/* The key alone on stdout, for KEY=$(wgfleetctl keys create ...). */
		printf("%s\n", json_string_value(json_object_get(reply, "key")));
		fflush(stdout);
		fprintf(stderr, "created key %lld (%s%s%s); it is shown only this once\n",
		        (long long)json_integer_value(json_object_get(reply, "id")),
		        tenant ? "tenant " : "admin", tenant ? tenant : "", "");
	}
	wipe_member(reply, "key");
	json_decref(reply);
	json_decref(body);
	return r;
}

/* ---- routers ---- */

static const struct opt_spec routers_list_opts[] = {
        {"tenant", "SLUG", "only this tenant's routers"},
        {"server", "NAME", "only routers on this server"},
        {"status", "STATUS",
         "pending, configured, vps_ready, connected, disconnected, "
         "failed or expired"},
        {"address", "ADDRESS", "only the router with this VPN address"},
        {"name", "NAME", "only routers with this name (names are per tenant)"},
        {"handshake-older-than", "DURATION", "last handshake longer ago ('5m'), or none"},
        {"limit", "N", "at most N routers (default 1000)"},
        {NULL, NULL, NULL},
};

static const struct column router_cols[] = {
        {"ID", "id", COL_TEXT},
        {"TENANT", "tenant", COL_TEXT},
        {"NAME", "name", COL_TEXT},
        {"SERVER", "server", COL_TEXT},
        {"ADDRESS", "vpn_ip", COL_TEXT},
        {"STATUS", "vpn_status", COL_STATUS},
        {"HANDSHAKE", "last_handshake_at", COL_TIME},
        {"CREATED", "created_at", COL_TIME},
};

static int cmd_routers_list(struct ctx *c)
{
	const char *hs = ctx_opt(c, "handshake-older-than");
	char before[40] = "", page_size[24];
	json_t *all = json_array(), *reply = NULL;
	const char *cursor = NULL;
	long limit;
	int r = limit_opt(c, 1000, 1000000, &limit);
	double ago;

	if (r == CTL_OK && hs && output_parse_duration(hs, &ago) < 0)
		r = ctx_usage(c, "--handshake-older-than: a duration ('90s', '5m', '1h')");
	if (r == CTL_OK && hs)
		output_format_time((double)wgf_clock_wall_ms() / 1000.0 - ago, before,
		                   sizeof(before));
	/* Page through with the API's cursor until the limit or the end. */
	while (r == CTL_OK && json_array_size(all) < (size_t)limit) {
		struct query q;
		size_t want = (size_t)limit - json_array_size(all);
		char cursor_copy[256] = "";

		if (cursor)
			snprintf(cursor_copy, sizeof(cursor_copy), "%s", cursor);
		snprintf(page_size, sizeof(page_size), "%zu", want > PAGE_MAX ? PAGE_MAX : want);
		query_init(&q, "/v1/routers");
		query_add(&q, "tenant", ctx_opt(c, "tenant"));
		query_add(&q, "server", ctx_opt(c, "server"));
		query_add(&q, "status", ctx_opt(c, "status"));
		query_add(&q, "address", ctx_opt(c, "address"));
		query_add(&q, "name", ctx_opt(c, "name"));
		query_add(&q, "handshake_before", hs ? before : NULL);
		query_add(&q, "limit", page_size);
		query_add(&q, "cursor", cursor ? cursor_copy : NULL);
		json_decref(reply);
		reply = NULL;
		r = client_call(c->client, "GET", q.buf, NULL, &reply, NULL);
		if (r != CTL_OK)
			break;
		json_array_extend(all, json_object_get(reply, "items"));
		cursor = json_string_value(json_object_get(reply, "next_cursor"));
		if (!cursor)
			break;
	}
	if (r == CTL_OK && c->json) {
		json_t *out = json_pack("{s:O}", "items", all);

		output_json(out);
		json_decref(out);
	} else if (r == CTL_OK) {
		output_table(all, router_cols, ARRAY_SIZE(router_cols), true);
	}
	json_decref(reply);
	json_decref(all);
	return r;
}

static int cmd_routers_show(struct ctx *c)
{
	json_t *reply = NULL;
	struct query q;
	int r = path_with(c, &q, "/v1/routers/", c->args[0], "");

	if (r == CTL_OK)
		r = client_call(c->client, "GET", q.buf, NULL, &reply, NULL);
	if (r == CTL_OK && c->json) {
		output_json(reply);
	} else if (r == CTL_OK) {
		/* The setup text has its own command (config). */
		json_object_del(reply, "setup");
		output_object(reply);
	}
	json_decref(reply);
	return r;
}

/* ---- audit ---- */

static const struct opt_spec audit_opts[] = {
        {"tenant", "SLUG", "only this tenant's entries"},
        {"router", "ID", "only entries about this router"},
        {"address", "ADDRESS", "only entries about this VPN address"},
        {"action", "ACTION", "only this action (router.deleted, key.created, ...)"},
        {"since", "TIME", "from TIME (RFC 3339, or a duration ago: '15m')"},
        {"until", "TIME", "before TIME (RFC 3339, or a duration ago)"},
        {"limit", "N", "at most N entries a request (default 100, at most 1000)"},
        {"follow", NULL, "keep printing new entries until interrupted"},
        {"interval", "SECONDS", "how often --follow asks (default 2, 0.2 to 60)"},
        {NULL, NULL, NULL},
};

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Sleeps for seconds, in short steps, until then or an interrupt. */
static void nap(double seconds)
{
	uint64_t until = wgf_clock_mono_ms() + (uint64_t)(seconds * 1000);

	while (!interrupted && wgf_clock_mono_ms() < until) {
		struct timespec step = {0, 50 * 1000 * 1000};

		nanosleep(&step, NULL);
	}
}

static int cmd_audit(struct ctx *c)
{
	static const struct column cols[] = {
	        {"ID", "id", COL_TEXT},          {"AT", "at", COL_TIME},
	        {"TENANT", "tenant", COL_TEXT},  {"ACTOR", "actor", COL_TEXT},
	        {"ACTION", "action", COL_TEXT},  {"ROUTER", "router_id", COL_TEXT},
	        {"ADDRESS", "vpn_ip", COL_TEXT}, {"REQUEST", "request_id", COL_TEXT},
	};
	bool follow = ctx_opt(c, "follow") != NULL, header = true;
	char since_buf[40], until_buf[40], now_buf[40], cursor[48] = "", limit_text[24];
	const char *since, *until, *iv = ctx_opt(c, "interval");
	double interval = 2;
	long limit;
	int r = limit_opt(c, 100, PAGE_MAX, &limit);

	if (r == CTL_OK)
		r = time_opt(c, "since", since_buf, sizeof(since_buf), &since);
	if (r == CTL_OK)
		r = time_opt(c, "until", until_buf, sizeof(until_buf), &until);
	if (r == CTL_OK && iv &&
	    (output_parse_duration(iv, &interval) < 0 || interval < FOLLOW_INTERVAL_MIN ||
	     interval > FOLLOW_INTERVAL_MAX))
		r = ctx_usage(c, "--interval: seconds from %.1f to %.0f", FOLLOW_INTERVAL_MIN,
		              FOLLOW_INTERVAL_MAX);
	if (r == CTL_OK && follow && until)
		r = ctx_usage(c, "--follow and --until do not go together");
	if (r != CTL_OK)
		return r;
	if (follow && !since) {
		/* From now on, unless told otherwise. */
		output_format_time((double)wgf_clock_wall_ms() / 1000.0, now_buf, sizeof(now_buf));
		since = now_buf;
	}
	snprintf(limit_text, sizeof(limit_text), "%ld", limit);
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	do {
		json_t *reply = NULL, *items, *e;
		struct query q;
		size_t i;

		query_init(&q, "/v1/audit");
		query_add(&q, "tenant", ctx_opt(c, "tenant"));
		query_add(&q, "router", ctx_opt(c, "router"));
		query_add(&q, "address", ctx_opt(c, "address"));
		query_add(&q, "action", ctx_opt(c, "action"));
		query_add(&q, "since", since);
		query_add(&q, "until", until);
		/* Following, entries come in commit order from a cursor the coordinator
		 * hands out (ids alone would skip one that commits after a larger id). */
		query_add(&q, "follow", follow ? cursor : NULL);
		query_add(&q, "limit", limit_text);
		r = client_call(c->client, "GET", q.buf, NULL, &reply, NULL);
		if (r != CTL_OK)
			break;
		items = json_object_get(reply, "items");
		if (!follow && c->json) {
			output_json(reply);
		} else if (c->json) {
			/* --follow --json: one entry a line (JSON Lines). */
			json_array_foreach(items, i, e)
			{
				json_dumpf(e, stdout, JSON_COMPACT);
				fputc('\n', stdout);
			}
			fflush(stdout);
		} else if (json_array_size(items) > 0 || header) {
			output_table(items, cols, ARRAY_SIZE(cols), header);
			header = false;
		}
		if (follow && json_is_string(json_object_get(reply, "follow_cursor")))
			snprintf(cursor, sizeof(cursor), "%s",
			         json_string_value(json_object_get(reply, "follow_cursor")));
		/* A full page means more are waiting: ask again at once. */
		if (follow && json_array_size(items) < (size_t)limit)
			nap(interval);
		json_decref(reply);
	} while (follow && !interrupted);
	return r;
}

/* ---- leases and config ---- */

static const struct opt_spec leases_opts[] = {
        {"at", "TIME", "who held it at TIME (RFC 3339, or a duration ago)"},
        {NULL, NULL, NULL},
};

static int cmd_leases(struct ctx *c)
{
	static const struct column cols[] = {
	        {"TENANT", "tenant", COL_TEXT},    {"ROUTER", "router_id", COL_TEXT},
	        {"NAME", "router_name", COL_TEXT}, {"SERVER", "server", COL_TEXT},
	        {"ADDRESS", "vpn_ip", COL_TEXT},   {"FROM", "from", COL_TIME},
	        {"UNTIL", "until", COL_TIME},
	};
	char at_buf[40];
	const char *at;
	struct query q;
	int r = time_opt(c, "at", at_buf, sizeof(at_buf), &at);

	if (r != CTL_OK)
		return r;
	query_init(&q, "/v1/leases");
	query_add(&q, "ip", c->args[0]);
	query_add(&q, "at", at);
	return list(c, q.buf, cols, ARRAY_SIZE(cols));
}

static const struct opt_spec config_opts[] = {
        {"format", "FORMAT", "routeros (default) or wg-quick"},
        {NULL, NULL, NULL},
};

static int cmd_config(struct ctx *c)
{
	const char *format = ctx_opt(c, "format");
	json_t *unused = NULL;
	char *text = NULL;
	struct query q;
	int r;

	if (!format)
		format = "routeros";
	if (strcmp(format, "routeros") != 0 && strcmp(format, "wg-quick") != 0)
		return ctx_usage(c, "--format: routeros or wg-quick");
	r = path_with(c, &q, "/v1/routers/", c->args[0], "/config");
	if (r != CTL_OK)
		return r;
	query_add(&q, "format", format);
	r = client_call(c->client, "GET", q.buf, NULL, &unused, &text);
	if (r == CTL_OK && c->json) {
		json_t *out = json_pack("{s:s,s:s,s:s}", "router", c->args[0], "format", format,
		                        "text", text);

		output_json(out);
		json_decref(out);
	} else if (r == CTL_OK) {
		fputs(text, stdout);
		fflush(stdout);
	}
	free(text);
	return r;
}

static const struct opt_spec no_opts[] = {{NULL, NULL, NULL}};

static const struct opt_spec import_opts[] = {
        {"apply", NULL, "import them (without it, a dry run that changes nothing)"},
        {"format", "FORMAT",
         "json, csv or wg (`wg showconf` text; default by FILE's ending: .csv, .conf, "
         "else json)"},
        {"tenant", "SLUG", "with --format wg: the tenant all its peers go to"},
        {NULL, NULL, NULL},
};

/* ---- webhooks ---- */

static const struct opt_spec webhooks_add_opts[] = {
        {"event", "TYPE", "deliver only this event type (repeat as TYPE,TYPE; default all)"},
        {"description", "TEXT", "what the webhook is for"},
        {NULL, NULL, NULL},
};
static const struct opt_spec webhooks_deliveries_opts[] = {
        {"status", "STATUS", "only pending, delivered or dead deliveries"},
        {"limit", "N", "at most N deliveries (default 100, at most 1000)"},
        {NULL, NULL, NULL},
};

static int cmd_webhooks_list(struct ctx *c)
{
	static const struct column cols[] = {
	        {"ID", "id", COL_TEXT},         {"TENANT", "tenant", COL_TEXT},
	        {"URL", "url", COL_TEXT},       {"ACTIVE", "active", COL_TEXT},
	        {"EVENTS", "events", COL_TEXT}, {"CREATED", "created_at", COL_TIME},
	};

	return list(c, "/v1/webhooks", cols, ARRAY_SIZE(cols));
}

/* The --event list ("a,b") as a JSON array. */
static json_t *event_list(const char *text)
{
	json_t *a = json_array();
	char buf[1024], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", text);
	for (char *t = strtok_r(buf, ", ", &save); a && t; t = strtok_r(NULL, ", ", &save))
		json_array_append_new(a, json_string(t));
	return a;
}

static int cmd_webhooks_add(struct ctx *c)
{
	json_t *body = json_object(), *reply = NULL;
	int r;

	if (!body)
		return ctx_usage(c, "out of memory");
	json_object_set_new(body, "url", json_string(c->args[0]));
	if (ctx_opt(c, "event"))
		json_object_set_new(body, "events", event_list(ctx_opt(c, "event")));
	if (ctx_opt(c, "description"))
		json_object_set_new(body, "description", json_string(ctx_opt(c, "description")));
	r = client_call(c->client, "POST", "/v1/webhooks", body, &reply, NULL);
	if (r == CTL_OK && c->json) {
		output_json(reply);
	} else if (r == CTL_OK) {
		/* The secret alone on stdout, for SECRET=$(wgfleetctl webhooks add ...). */
		printf("%s\n", json_string_value(json_object_get(reply, "secret")));
		fflush(stdout);
		fprintf(stderr,
		        "created webhook %lld; its signing secret is shown only this once\n",
		        (long long)json_integer_value(json_object_get(reply, "id")));
	}
	wipe_member(reply, "secret");
	json_decref(reply);
	json_decref(body);
	return r;
}

static int cmd_webhooks_remove(struct ctx *c)
{
	return delete_one(c, "/v1/webhooks/", "webhook", "removed");
}

static int cmd_webhooks_deliveries(struct ctx *c)
{
	static const struct column cols[] = {
	        {"EVENT", "event_id", COL_TEXT},
	        {"TYPE", "type", COL_TEXT},
	        {"STATUS", "status", COL_TEXT},
	        {"ATTEMPTS", "attempts", COL_TEXT},
	        {"LAST ATTEMPT", "last_attempt_at", COL_TIME},
	        {"HTTP", "last_http_status", COL_TEXT},
	        {"ERROR", "last_error", COL_TEXT},
	};
	char limit[24];
	struct query q;
	long n;
	int r = path_with(c, &q, "/v1/webhooks/", c->args[0], "/deliveries");

	if (r == CTL_OK)
		r = limit_opt(c, 100, PAGE_MAX, &n);
	if (r != CTL_OK)
		return r;
	snprintf(limit, sizeof(limit), "%ld", n);
	query_add(&q, "status", ctx_opt(c, "status"));
	query_add(&q, "limit", limit);
	return list(c, q.buf, cols, ARRAY_SIZE(cols));
}

const struct command commands[] = {
        {"status", NULL, "", 0,
         "servers online, lag, peers, unknown peers, pool use, apply latency", status_opts,
         cmd_status},
        {"servers", "list", "", 0, "list the servers", no_opts, cmd_servers_list},
        {"servers", "show", "NAME", 1, "show one server and its routers by status", no_opts,
         cmd_servers_show},
        {"servers", "add", "NAME", 1, "register a server", servers_add_opts, cmd_servers_add},
        {"servers", "set", "NAME", 1, "change a server's settings", servers_set_opts,
         cmd_servers_set},
        {"servers", "remove", "NAME", 1, "remove a server (refused while routers live on it)",
         servers_remove_opts, cmd_servers_remove},
        {"servers", "unknown", "NAME", 1,
         "the peers an adopting agent keeps on the server without managing them",
         servers_unknown_opts, cmd_servers_unknown},
        {"servers", "release", "NAME KEY", 2,
         "release an unknown peer: the agent removes it from the interface", no_opts,
         cmd_servers_release},
        {"tenants", "list", "", 0, "list the tenants", no_opts, cmd_tenants_list},
        {"tenants", "show", "SLUG", 1, "show one tenant", no_opts, cmd_tenants_show},
        {"tenants", "add", "SLUG", 1, "create a tenant", tenants_add_opts, cmd_tenants_add},
        {"tenants", "set", "SLUG", 1, "change a tenant's limits", tenants_set_opts,
         cmd_tenants_set},
        {"keys", "list", "", 0, "list the API keys (never their secrets)", keys_list_opts,
         cmd_keys_list},
        {"keys", "create", "", 0, "create an API key and print it, once", keys_create_opts,
         cmd_keys_create},
        {"keys", "revoke", "ID", 1, "revoke an API key", no_opts, cmd_keys_revoke},
        {"routers", "list", "", 0, "list routers across tenants", routers_list_opts,
         cmd_routers_list},
        {"routers", "show", "ID", 1, "show one router", no_opts, cmd_routers_show},
        {"routers", "delete", "ID", 1, "delete a router and release its address", no_opts,
         cmd_routers_delete},
        {"audit", NULL, "", 0, "the audit log, filtered, or followed", audit_opts, cmd_audit},
        {"leases", NULL, "ADDRESS", 1, "who held a VPN address, now or at a time", leases_opts,
         cmd_leases},
        {"config", NULL, "ROUTER", 1, "a router's setup text", config_opts, cmd_config},
        {"import", NULL, "SERVER FILE", 2,
         "existing routers from a file (a dry run unless --apply)", import_opts, cmd_import},
        {"webhooks", "list", "", 0, "list the webhooks (never their secrets)", no_opts,
         cmd_webhooks_list},
        {"webhooks", "add", "URL", 1, "register a fleet-wide webhook and print its secret, once",
         webhooks_add_opts, cmd_webhooks_add},
        {"webhooks", "remove", "ID", 1, "remove a webhook", no_opts, cmd_webhooks_remove},
        {"webhooks", "deliveries", "ID", 1, "a webhook's delivery log", webhooks_deliveries_opts,
         cmd_webhooks_deliveries},
};
const size_t n_commands = ARRAY_SIZE(commands);
