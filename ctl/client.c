/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* client: wgfleetctl's requests to the admin API, through libcurl. */
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#define REPLY_MAX (64 << 20)

struct client {
	CURL *curl;
	char url[512];
	char *auth; /* "Authorization: Bearer <key>": wiped on free */
	long timeout_ms;
};

struct buffer {
	char *data;
	size_t len;
	bool too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct buffer *b = ctx;
	size_t add = size * n;
	char *grown;

	if (b->len + add > REPLY_MAX) {
		b->too_big = true;
		return 0;
	}
	grown = realloc(b->data, b->len + add + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->len, p, add);
	b->data = grown;
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

struct client *client_new(const char *url, const char *key, long timeout_ms)
{
	struct client *cl = calloc(1, sizeof(*cl));
	size_t n;

	if (!cl)
		return NULL;
	snprintf(cl->url, sizeof(cl->url), "%s", url);
	n = strlen(cl->url);
	while (n > 0 && cl->url[n - 1] == '/')
		cl->url[--n] = '\0';
	cl->timeout_ms = timeout_ms;
	if (key && asprintf(&cl->auth, "Authorization: Bearer %s", key) < 0)
		cl->auth = NULL;
	cl->curl = curl_easy_init();
	if (!cl->curl || (key && !cl->auth)) {
		client_free(cl);
		return NULL;
	}
	return cl;
}

void client_free(struct client *cl)
{
	if (!cl)
		return;
	if (cl->auth) {
		sodium_memzero(cl->auth, strlen(cl->auth));
		free(cl->auth);
	}
	if (cl->curl)
		curl_easy_cleanup(cl->curl);
	free(cl);
}

/* The API's {"error":{"code","message"}} on stderr, or what the body says otherwise. */
static void print_refusal(long status, const struct buffer *b)
{
	json_t *j = b->data ? json_loads(b->data, 0, NULL) : NULL;
	const json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	if (code)
		fprintf(stderr, "wgfleetctl: refused (HTTP %ld %s): %s\n", status, code,
		        msg ? msg : "");
	else
		fprintf(stderr, "wgfleetctl: refused (HTTP %ld): %.200s\n", status,
		        b->data ? b->data : "");
	json_decref(j);
}

int client_call(struct client *cl, const char *method, const char *path, json_t *body,
                json_t **ret_json, char **ret_text)
{
	struct curl_slist *headers = NULL;
	struct buffer b = {0};
	char url[sizeof(cl->url) + sizeof(((struct query *)0)->buf)];
	char *text = NULL;
	long status = 0;
	CURLcode rc;
	int r;

	*ret_json = NULL;
	if (body && !(text = json_dumps(body, JSON_COMPACT))) {
		fprintf(stderr, "wgfleetctl: out of memory\n");
		return CTL_REFUSED;
	}
	snprintf(url, sizeof(url), "%s%s", cl->url, path);
	curl_easy_reset(cl->curl);
	if (cl->auth)
		headers = curl_slist_append(headers, cl->auth);
	if (text)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Accept: application/json");
	curl_easy_setopt(cl->curl, CURLOPT_URL, url);
	curl_easy_setopt(cl->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(cl->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(cl->curl, CURLOPT_TIMEOUT_MS, cl->timeout_ms);
	curl_easy_setopt(cl->curl, CURLOPT_CONNECTTIMEOUT_MS, cl->timeout_ms);
	curl_easy_setopt(cl->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cl->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(cl->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(cl->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(cl->curl, CURLOPT_USERAGENT, "wgfleetctl/" WGF_VERSION);
	if (text)
		curl_easy_setopt(cl->curl, CURLOPT_POSTFIELDS, text);
	rc = curl_easy_perform(cl->curl);
	curl_slist_free_all(headers);
	free(text);
	if (rc != CURLE_OK) {
		/* libcurl's messages name the host and the failure, never a header. */
		fprintf(stderr, "wgfleetctl: cannot reach the coordinator at %s: %s\n", cl->url,
		        b.too_big ? "the reply is too large" : curl_easy_strerror(rc));
		free(b.data);
		return CTL_UNREACHABLE;
	}
	curl_easy_getinfo(cl->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		print_refusal(status, &b);
		r = CTL_REFUSED;
		goto out;
	}
	r = CTL_OK;
	if (b.data && b.len > 0 && !ret_text) {
		*ret_json = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
		if (!*ret_json) {
			fprintf(stderr, "wgfleetctl: the coordinator's reply is not JSON\n");
			r = CTL_REFUSED;
		}
	}
	if (ret_text) {
		*ret_text = b.data ? b.data : strdup("");
		b.data = NULL;
	}
out:
	free(b.data);
	return r;
}

void query_init(struct query *q, const char *path)
{
	int n = snprintf(q->buf, sizeof(q->buf), "%s", path);

	q->len = n < 0 ? 0 : (size_t)n;
	q->overflow = q->len >= sizeof(q->buf);
}

void query_add(struct query *q, const char *key, const char *value)
{
	char *esc;
	int n;

	if (!value || q->overflow)
		return;
	esc = curl_easy_escape(NULL, value, 0);
	if (!esc) {
		q->overflow = true;
		return;
	}
	n = snprintf(q->buf + q->len, sizeof(q->buf) - q->len, "%c%s=%s",
	             strchr(q->buf, '?') ? '&' : '?', key, esc);
	curl_free(esc);
	if (n < 0 || (size_t)n >= sizeof(q->buf) - q->len)
		q->overflow = true;
	else
		q->len += (size_t)n;
}
