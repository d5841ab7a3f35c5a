/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api_admin: the operators' routes: tenants, keys, servers, status and health. */
#include "api_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cidr.h"
#include "embedded.h"
#include "key.h"
#include "migrate.h"

#define QUOTA_MAX        1000000
#define STATUS_LIMIT_MAX 1000 /* servers in one page of GET /v1/status */

static const struct field tenant_fields[] = {
        {"slug", F_TEXT, true, 63},
        {"name", F_TEXT, true, 200},
        {"router_quota", F_INT, false, 0, 0, QUOTA_MAX},
        {"reservations_per_hour", F_INT, false, 0, 0, QUOTA_MAX},
        {"key_changes_per_hour", F_INT, false, 0, 0, QUOTA_MAX},
        {"router_key_changes_per_hour", F_INT, false, 0, 0, QUOTA_MAX},
};

int api_admin_create_tenant(struct call *c)
{
	if (input_body(c, tenant_fields, WGF_ARRAY_SIZE(tenant_fields)) < 0 ||
	    input_slug(c, "slug", call_body_text(c, "slug")) < 0)
		return -EINVAL;
	if (call_body_text(c, "name")[0] == '\0')
		return call_invalid(c, "name", "must not be empty");
	call_params(c, call_body_text(c, "slug"), call_body_text(c, "name"),
	            call_body_int(c, "router_quota"), call_body_int(c, "reservations_per_hour"),
	            call_body_int(c, "key_changes_per_hour"),
	            call_body_int(c, "router_key_changes_per_hour"), c->request_id);
	return 0;
}

int api_admin_update_tenant(struct call *c)
{
	static const struct field fields[] = {
	        {"slug", F_FIXED},
	        {"name", F_FIXED},
	        {"router_quota", F_INT, false, 0, 0, QUOTA_MAX},
	        {"reservations_per_hour", F_INT, false, 0, 0, QUOTA_MAX},
	        {"key_changes_per_hour", F_INT, false, 0, 0, QUOTA_MAX},
	        {"router_key_changes_per_hour", F_INT, false, 0, 0, QUOTA_MAX},
	};

	if (input_slug(c, "slug", c->args[0]) < 0 ||
	    input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0)
		return -EINVAL;
	call_params(c, c->args[0], call_body_int(c, "router_quota"),
	            call_body_int(c, "reservations_per_hour"),
	            call_body_int(c, "key_changes_per_hour"),
	            call_body_int(c, "router_key_changes_per_hour"), c->request_id);
	return 0;
}

int api_admin_tenant_arg(struct call *c)
{
	if (input_slug(c, "slug", c->args[0]) < 0)
		return -EINVAL;
	call_params(c, c->args[0]);
	return 0;
}

int api_admin_server_arg(struct call *c)
{
	if (input_server_name(c, "name", c->args[0]) < 0)
		return -EINVAL;
	call_params(c, c->args[0]);
	return 0;
}

/* A new key: its text kept in c->shown_key for the reply, its prefix and hash as
 * parameters; then the label and the request id. */
static int new_key_params(struct call *c)
{
	static const struct field fields[] = {{"label", F_TEXT, false, 200}};
	char text[APIKEY_TEXT_LEN + 1], hash[API_HEX32_LEN];
	struct apikey k;

	if (input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0)
		return -EINVAL;
	apikey_generate(c->api->o.key_hash_secret, text, &k);
	c->shown_key = strdup(text);
	sodium_memzero(text, sizeof(text));
	if (!c->shown_key) {
		sodium_memzero(&k, sizeof(k));
		return call_problem(c, 503, "unavailable", "Out of memory.");
	}
	input_hex_bytea(hash, sizeof(hash), k.hash, sizeof(k.hash));
	call_params(c, call_arena(c, "%s", k.prefix), call_arena(c, "%s", hash),
	            call_body_text(c, "label"), c->request_id);
	sodium_memzero(&k, sizeof(k));
	return 0;
}

int api_admin_create_key(struct call *c)
{
	if (input_slug(c, "slug", c->args[0]) < 0)
		return -EINVAL;
	call_params(c, c->args[0]);
	return new_key_params(c);
}

int api_admin_create_admin_key(struct call *c)
{
	return new_key_params(c);
}

int api_admin_list_keys(struct call *c)
{
	const char *tenant = call_query_get(c, "tenant");

	if (tenant && input_slug(c, "tenant", tenant) < 0)
		return -EINVAL;
	call_params(c, tenant);
	return 0;
}

int api_admin_finish_new_key(struct call *c, json_t *result)
{
	if (json_object_set_new(result, "key", json_string(c->shown_key)) < 0)
		return -ENOMEM;
	c->reply_json = json_incref(result);
	return 0;
}

int api_admin_revoke_key(struct call *c)
{
	if (input_id(c, "id", c->args[0]) < 0)
		return -EINVAL;
	call_params(c, c->args[0], c->request_id);
	return 0;
}

/* The fields a server's create and update share: each checked the same way. */
static int server_fields(struct call *c, const char **ret_agent, const char **ret_wg)
{
	const char *endpoint = call_body_text(c, "endpoint");
	const char *interface = call_body_text(c, "interface");

	if (endpoint && input_endpoint(c, "endpoint", endpoint) < 0)
		return -EINVAL;
	if (interface && strspn(interface, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                   "0123456789_.-") != strlen(interface))
		return call_invalid(c, "interface", "letters, digits, '_', '.' and '-' only");
	if (input_agent_key(c, "agent_key", call_body_text(c, "agent_key"), ret_agent) < 0 ||
	    input_wg_key(c, "public_key", call_body_text(c, "public_key"), 400, "invalid_request",
	                 ret_wg) < 0)
		return -EINVAL;
	return 0;
}

int api_admin_create_server(struct call *c)
{
	static const struct field fields[] = {
	        {"name", F_TEXT, true, 63},        {"endpoint", F_TEXT, true, 261},
	        {"interface", F_TEXT, false, 15},  {"pool", F_TEXT, true, 64},
	        {"gateway", F_TEXT, true, 64},     {"agent_key", F_TEXT, false, 64},
	        {"public_key", F_TEXT, false, 64}, {"listen_port", F_INT, false, 0, 1, 65535},
	};
	const char *agent_key, *wg_key;
	struct wgf_cidr pool;
	struct wgf_addr gw;
	struct wgf_err err = {0};

	if (input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0 ||
	    input_server_name(c, "name", call_body_text(c, "name")) < 0 ||
	    server_fields(c, &agent_key, &wg_key) < 0)
		return -EINVAL;
	if (wgf_cidr_parse(&pool, call_body_text(c, "pool"), 0, &err) < 0)
		return call_invalid(c, "pool", "%s", err.msg);
	if (wgf_addr_parse(&gw, call_body_text(c, "gateway"), &err) < 0)
		return call_invalid(c, "gateway", "%s", err.msg);
	if (!wgf_cidr_is_usable_host(&pool, &gw))
		return call_invalid(c, "gateway", "must be a host address inside the pool");
	call_params(c, call_body_text(c, "name"), call_body_text(c, "endpoint"),
	            call_body_text(c, "interface"), call_body_text(c, "pool"),
	            call_body_text(c, "gateway"), agent_key, wg_key,
	            call_body_int(c, "listen_port"), c->request_id);
	return 0;
}

int api_admin_update_server(struct call *c)
{
	static const struct field fields[] = {
	        {"name", F_FIXED},
	        {"pool", F_FIXED},
	        {"gateway", F_FIXED},
	        {"endpoint", F_TEXT, false, 261},
	        {"interface", F_TEXT, false, 15},
	        {"agent_key", F_TEXT, false, 64},
	        {"public_key", F_TEXT, false, 64},
	        {"listen_port", F_INT, false, 0, 1, 65535},
	        {"next_agent_key", F_TEXT, false, 64},
	};
	const char *agent_key, *wg_key, *next_key = NULL, *next;
	bool clear_next;

	if (input_server_name(c, "name", c->args[0]) < 0 ||
	    input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0 ||
	    server_fields(c, &agent_key, &wg_key) < 0)
		return -EINVAL;
	/* A second agent key while the agent's is rotated; "" drops it. */
	next = call_body_text(c, "next_agent_key");
	clear_next = next && !*next;
	if (!clear_next && input_agent_key(c, "next_agent_key", next, &next_key) < 0)
		return -EINVAL;
	call_params(c, c->args[0], call_body_text(c, "endpoint"), call_body_text(c, "interface"),
	            agent_key, wg_key, call_body_int(c, "listen_port"), next_key,
	            clear_next ? "true" : "false", c->request_id);
	return 0;
}

int api_admin_delete_server(struct call *c)
{
	bool force;

	if (input_server_name(c, "name", c->args[0]) < 0 ||
	    input_bool(c, "force", call_query_get(c, "force"), &force) < 0)
		return -EINVAL;
	call_params(c, c->args[0], force ? "true" : "false", c->request_id);
	return 0;
}

/* Lines one import may bring; the body's 64 KiB cap comes first for most files. */
#define IMPORT_LINES_MAX 2000

/* One line of an import: its fields, and its key and address beyond their shape. */
static int import_line(struct call *c, json_t *line, size_t i)
{
	static const struct field fields[] = {
	        {"tenant", F_TEXT, true, 63},
	        {"name", F_TEXT, false, 100},
	        {"address", F_TEXT, true, 45},
	        {"public_key", F_TEXT, true, 64},
	        {"persistent_keepalive", F_INT, false, 0, 0, 65535},
	        {"created_at", F_TEXT, false, 40},
	};
	char where[32], field[64];
	const char *created;
	struct wgf_err err = {0};
	uint8_t key[WGF_KEY_LEN];

	snprintf(where, sizeof(where), "routers[%zu]", i + 1);
	if (input_object(c, line, where, fields, WGF_ARRAY_SIZE(fields)) < 0)
		return -EINVAL;
	snprintf(field, sizeof(field), "%s.tenant", where);
	if (input_slug(c, field, json_string_value(json_object_get(line, "tenant"))) < 0)
		return -EINVAL;
	snprintf(field, sizeof(field), "%s.address", where);
	if (input_address(c, field, json_string_value(json_object_get(line, "address"))) < 0)
		return -EINVAL;
	snprintf(field, sizeof(field), "%s.public_key", where);
	if (wgf_key_from_base64(key, json_string_value(json_object_get(line, "public_key")),
	                        WGF_KEY_PUBLIC, &err) < 0)
		return call_invalid(c, field, "%s", err.msg);
	created = json_string_value(json_object_get(line, "created_at"));
	snprintf(field, sizeof(field), "%s.created_at", where);
	return created ? input_timestamp(c, field, created) : 0;
}

int api_admin_import(struct call *c)
{
	static const struct field fields[] = {{"routers", F_LIST, true}};
	json_t *lines, *line;
	bool apply;
	size_t i;

	if (input_server_name(c, "name", c->args[0]) < 0 ||
	    input_bool(c, "apply", call_query_get(c, "apply"), &apply) < 0 ||
	    input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0)
		return -EINVAL;
	lines = json_object_get(c->body, "routers");
	if (json_array_size(lines) == 0 || json_array_size(lines) > IMPORT_LINES_MAX)
		return call_invalid(c, "routers", "1 to %d routers", IMPORT_LINES_MAX);
	json_array_foreach(lines, i, line)
	{
		if (import_line(c, line, i) < 0)
			return -EINVAL;
	}
	c->long_param = json_dumps(lines, JSON_COMPACT);
	if (!c->long_param)
		return call_problem(c, 503, "unavailable", "Out of memory.");
	call_params(c, c->args[0], c->long_param, apply ? "true" : "false", c->request_id);
	return 0;
}

/* The unknown peers one page lists by default and at most. */
#define UNKNOWN_PAGE_DEFAULT 100
#define UNKNOWN_PAGE_MAX     1000

int api_admin_unknown_peers(struct call *c)
{
	const char *limit = call_query_get(c, "limit"), *after;
	unsigned long n = UNKNOWN_PAGE_DEFAULT;

	if (input_server_name(c, "name", c->args[0]) < 0 ||
	    input_url_key(c, "after", call_query_get(c, "after"), &after) < 0 ||
	    (limit && input_uint(c, "limit", limit, 1, UNKNOWN_PAGE_MAX, &n) < 0))
		return -EINVAL;
	call_params(c, c->args[0], after, call_arena(c, "%lu", n));
	return 0;
}

int api_admin_release_peer(struct call *c)
{
	const char *key;

	if (input_server_name(c, "name", c->args[0]) < 0 ||
	    input_url_key(c, "key", c->args[1], &key) < 0)
		return -EINVAL;
	call_params(c, c->args[0], key, c->request_id);
	return 0;
}

/* GET /v1/status: every server, or with limit a page of them after cursor (a name). */
int api_admin_status(struct call *c)
{
	const char *limit = call_query_get(c, "limit"), *cursor = call_query_get(c, "cursor");
	unsigned long n = 0;

	if (limit && input_uint(c, "limit", limit, 1, STATUS_LIMIT_MAX, &n) < 0)
		return -EINVAL;
	if (cursor && !limit)
		return call_invalid(c, "cursor", "needs a limit");
	if (cursor && input_server_name(c, "cursor", cursor) < 0)
		return -EINVAL;
	call_params(c, call_interval(c, c->api->o.server_online_ms),
	            limit ? call_arena(c, "%lu", n) : NULL, cursor);
	return 0;
}

int api_admin_finish_healthz(struct call *c, json_t *result)
{
	(void)result;
	c->reply_json = json_pack("{s:s}", "status", "ok");
	return c->reply_json ? 0 : -ENOMEM;
}

/* GET /dashboard and its files: static, with no key (the page asks for one, and sends
 * it as a bearer header with each API call it makes). */
int api_admin_finish_static(struct call *c, json_t *result)
{
	const char *name = c->n_args ? c->args[0] : "index.html";

	(void)result;
	for (size_t i = 0; i < embedded_n_files; i++) {
		if (strcmp(embedded_files[i].name, name) == 0) {
			c->static_file = &embedded_files[i];
			return 0;
		}
	}
	return call_problem(c, 404, "not_found", "No such file.");
}

int api_admin_finish_readyz(struct call *c, json_t *result)
{
	json_int_t version = json_integer_value(result);

	if (version != (json_int_t)migrate_n_steps)
		return call_problem(c, 503, "not_ready",
		                    "The database schema is at version %lld; this coordinator "
		                    "needs %zu.",
		                    (long long)version, migrate_n_steps);
	c->reply_json = json_pack("{s:s,s:I}", "status", "ready", "schema_version", version);
	return c->reply_json ? 0 : -ENOMEM;
}
