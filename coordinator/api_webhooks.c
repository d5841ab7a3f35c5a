/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api_webhooks: webhooks (an admin's for the fleet, a tenant's for its own routers). */
#include "api_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "webhook.h"

#define EVENTS_MAX     16
#define DELIVERIES_MAX 1000

/* The URL, if given, against the policy. */
static int check_url(struct call *c)
{
	const char *url = call_body_text(c, "url");
	struct wgf_err err = {0};

	if (url && webhook_url_check(&c->api->o.webhook_policy, url, &err) < 0)
		return call_invalid(c, "url", "%s", err.msg);
	return 0;
}

/* A new secret in c->shown_key, which is wiped with the call. */
static int new_secret(struct call *c)
{
	char secret[WEBHOOK_SECRET_SIZE];

	webhook_secret_new(secret);
	c->shown_key = strdup(secret);
	sodium_memzero(secret, sizeof(secret));
	if (!c->shown_key)
		return call_problem(c, 503, "unavailable", "Out of memory.");
	return 0;
}

int api_webhooks_create(struct call *c)
{
	static const struct field fields[] = {
	        {"url", F_TEXT, true, WEBHOOK_URL_MAX},
	        {"events", F_NAMES, false, 64, 0, EVENTS_MAX},
	        {"description", F_TEXT, false, 200},
	};

	if (input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0 || check_url(c) < 0 ||
	    new_secret(c) < 0)
		return -EINVAL;
	call_params(c, call_body_text(c, "url"), call_body_names(c, "events"),
	            call_body_text(c, "description"), c->shown_key, c->request_id);
	return 0;
}

int api_webhooks_update(struct call *c)
{
	static const struct field fields[] = {
	        {"url", F_TEXT, false, WEBHOOK_URL_MAX},
	        {"events", F_NAMES, false, 64, 0, EVENTS_MAX},
	        {"active", F_BOOL},
	        {"description", F_TEXT, false, 200},
	};

	if (input_id(c, "id", c->args[0]) < 0 ||
	    input_body(c, fields, WGF_ARRAY_SIZE(fields)) < 0 || check_url(c) < 0)
		return -EINVAL;
	call_params(c, c->args[0], call_body_text(c, "url"), call_body_names(c, "events"),
	            call_body_bool(c, "active"), call_body_text(c, "description"), c->request_id);
	return 0;
}

int api_webhooks_one(struct call *c)
{
	if (input_id(c, "id", c->args[0]) < 0)
		return -EINVAL;
	call_params(c, c->args[0], c->request_id);
	return 0;
}

int api_webhooks_rotate(struct call *c)
{
	if (input_id(c, "id", c->args[0]) < 0 || new_secret(c) < 0)
		return -EINVAL;
	call_params(c, c->args[0], c->shown_key, c->request_id);
	return 0;
}

int api_webhooks_deliveries(struct call *c)
{
	const char *status = call_query_get(c, "status"), *after = call_query_get(c, "after");
	const char *limit = call_query_get(c, "limit");
	unsigned long n = 100;

	if (input_id(c, "id", c->args[0]) < 0 || (after && input_id(c, "after", after) < 0) ||
	    (limit && input_uint(c, "limit", limit, 1, DELIVERIES_MAX, &n) < 0))
		return -EINVAL;
	if (status && strcmp(status, "pending") != 0 && strcmp(status, "delivered") != 0 &&
	    strcmp(status, "dead") != 0)
		return call_invalid(c, "status", "must be pending, delivered or dead");
	call_params(c, c->args[0], status, after, call_arena(c, "%lu", n));
	return 0;
}

/* The reply of a create or a rotation: the webhook and, this once, its secret. */
int api_webhooks_finish_secret(struct call *c, json_t *result)
{
	if (json_object_set_new(result, "secret", json_string(c->shown_key)) < 0)
		return -ENOMEM;
	c->reply_json = json_incref(result);
	return 0;
}
