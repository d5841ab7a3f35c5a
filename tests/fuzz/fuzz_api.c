/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_api: libFuzzer target for request decoding (coordinator/api*.c), without a database. */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <sodium.h>
#include <unistr.h>

#include "api.h"
#include "api_internal.h"
#include "apikey.h"

/*
 * The input is a flags byte and then a request as text, split at newlines:
 *
 *   method "\n" target "\n" (header-name ": " value "\n")* "\n" body
 *
 * The target is the path and an optional "?query". Each request is decoded as h2o
 * would hand it over (call_new, call_decode, call_free; the database is never
 * touched), first as it is, then once per route of the table, with the route's method
 * and its pattern as the path, the "{}" segments filled from the target's segments at
 * the same place, so every input reaches every route's prepare function. Every piece
 * is a copy of exactly its length, so the sanitizers see any read past one.
 *
 * The flags: bit 0 normalises the path with h2o_url_normalize_path (percent-decoding,
 * "..", as h2o does before a handler sees it), bit 1 adds a well-formed API key, bit 2
 * adds "content-type: application/json", bit 3 sends an empty body as none, and bits 4
 * and 5 together mark the framing ambiguous.
 *
 * A refusal must be a 4xx the API documents (400, 401, 404, 405, 413, 415; a 500 from
 * decoding is a bug) with a code and a message that is valid UTF-8 without control
 * characters. Success means a route, the parameter count of its row, and parameters
 * that are SQL NULL or text without control characters. Anything else aborts.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUTES_MAX  64
#define HEADERS_MAX 16
#define PIECES_MAX  (8 + 2 * HEADERS_MAX)
#define SEGS_MAX    8

#define F_NORMALIZE 0x01
#define F_AUTH      0x02
#define F_JSON      0x04
#define F_NULL_BODY 0x08
#define F_AMBIGUOUS 0x30

struct fuzz_route {
	char method[16];
	char pattern[128];
};

static struct api *api;
static struct fuzz_route routes[ROUTES_MAX];
static size_t n_routes;
static char auth_value[sizeof("Bearer ") + APIKEY_TEXT_LEN];

/* The route table as api_routes_print() writes it: "METHOD /pattern" a line. */
static void read_routes(void)
{
	char *text = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	api_routes_print(f);
	if (fclose(f) != 0)
		abort();
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct fuzz_route *rt = &routes[n_routes];

		if (n_routes >= ROUTES_MAX ||
		    sscanf(line, "%15s %127s", rt->method, rt->pattern) != 2)
			abort();
		n_routes++;
	}
	free(text);
	if (n_routes == 0)
		abort();
}

static void init(void)
{
	struct api_options o = {
	        .reservation_ttl_ms = 600000,
	        .address_cooldown_ms = 3600000,
	        .server_online_ms = 90000,
	        .request_deadline_ms = 5000,
	        .persistent_keepalive = 25,
	};
	char key[APIKEY_TEXT_LEN + 1];
	struct apikey k;

	if (sodium_init() < 0)
		abort();
	memset(o.key_hash_secret, 0x42, sizeof(o.key_hash_secret));
	/* api_new only keeps the loop and the database; decoding touches neither. */
	if (api_new(NULL, NULL, &o, &api) < 0)
		abort();
	apikey_generate(o.key_hash_secret, key, &k);
	snprintf(auth_value, sizeof(auth_value), "Bearer %s", key);
	read_routes();
}

/* Exact-length copies, freed after each request. */
struct pieces {
	void *p[PIECES_MAX];
	size_t n;
};

static h2o_iovec_t piece(struct pieces *ps, const char *s, size_t len)
{
	char *copy;

	if (ps->n >= PIECES_MAX)
		abort();
	copy = malloc(len ? len : 1);
	if (!copy)
		abort();
	if (len)
		memcpy(copy, s, len);
	ps->p[ps->n++] = copy;
	return h2o_iovec_init(copy, len);
}

static void pieces_free(struct pieces *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->p[i]);
	ps->n = 0;
}

/* The input taken apart; the pointers are into it. */
struct parsed {
	unsigned flags;
	h2o_iovec_t method, target, body;
	h2o_iovec_t names[HEADERS_MAX], values[HEADERS_MAX];
	size_t n_headers;
	h2o_iovec_t segs[SEGS_MAX]; /* the target's path segments, for the "{}" of routes */
	size_t n_segs;
};

/* The next line of [*p, end), without its newline (nor a '\r' before it). */
static h2o_iovec_t next_line(const char **p, const char *end, bool *found)
{
	const char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
	size_t len = (size_t)((nl ? nl : end) - s);

	*found = nl != NULL;
	*p = nl ? nl + 1 : end;
	if (len > 0 && s[len - 1] == '\r')
		len--;
	return h2o_iovec_init(s, len);
}

static void parse_input(struct parsed *in, const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	bool found = true;

	memset(in, 0, sizeof(*in));
	if (size == 0)
		return;
	in->flags = data[0];
	in->method = next_line(&p, end, &found);
	if (found)
		in->target = next_line(&p, end, &found);
	while (found) {
		h2o_iovec_t line = next_line(&p, end, &found);
		const char *colon = memchr(line.base, ':', line.len);
		size_t n;

		if (line.len == 0)
			break;
		if (!colon || in->n_headers >= HEADERS_MAX)
			continue;
		n = (size_t)(colon - line.base);
		in->names[in->n_headers] = h2o_iovec_init(line.base, n);
		n++;
		while (n < line.len && (line.base[n] == ' ' || line.base[n] == '\t'))
			n++;
		in->values[in->n_headers++] = h2o_iovec_init(line.base + n, line.len - n);
	}
	in->body = h2o_iovec_init(p, (size_t)(end - p));

	/* "/v1/routers/x/config?y" gives "v1", "routers", "x" and "config". */
	for (size_t i = 0; i < in->target.len && in->target.base[i] != '?';) {
		size_t j = i;

		while (j < in->target.len && in->target.base[j] != '/' && in->target.base[j] != '?')
			j++;
		if (j > i && in->n_segs < SEGS_MAX)
			in->segs[in->n_segs++] = h2o_iovec_init(in->target.base + i, j - i);
		i = j < in->target.len && in->target.base[j] == '/' ? j + 1 : j;
	}
}

/* Valid UTF-8 without C0, DEL or C1 control characters. */
static bool plain_utf8(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;

	if (u8_check(p, len))
		return false;
	while (p < end) {
		ucs4_t uc;
		int n = u8_mbtouc(&uc, p, (size_t)(end - p));

		if (uc < 0x20 || (uc >= 0x7f && uc < 0xa0))
			return false;
		p += n;
	}
	return true;
}

static void check_call(const struct call *c, int r)
{
	if (r < 0) {
		switch (c->problem.status) {
		case 400:
		case 401:
		case 404:
		case 405:
		case 413:
		case 415:
			break;
		default:
			abort();
		}
		if (!c->problem.code || !c->problem.code[0] || !c->problem.message[0] ||
		    !plain_utf8(c->problem.message, strlen(c->problem.message)))
			abort();
		return;
	}
	if (r != 0 || !c->route || c->problem.status != 0)
		abort();
	if (c->route->sql_fn) {
		unsigned first = c->route->needs_key ? 2 : 0;

		if (c->n_params != c->route->n_sql_types + first || c->n_params > DB_PARAMS_MAX)
			abort();
		/* params[0] and [1] are the key's, filled in by api_handle. */
		for (unsigned i = first; i < c->n_params; i++)
			if (c->params[i] && !plain_utf8(c->params[i], strlen(c->params[i])))
				abort();
	} else if (c->n_params != 0) {
		abort();
	}
}

static void lower_copy(char *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
}

/* Decodes one request: method and target as given (target holding "?query"). */
static void decode(const struct parsed *in, h2o_iovec_t method, h2o_iovec_t target)
{
	struct pieces ps = {.n = 0};
	h2o_mem_pool_t pool;
	h2o_headers_t headers = {NULL, 0, 0};
	struct http_request rq = {.headers = &headers, .client = "192.0.2.7"};
	const char *q = target.len ? memchr(target.base, '?', target.len) : NULL;
	size_t path_len = q ? (size_t)(q - target.base) : target.len;
	struct call *c;
	int r;

	h2o_mem_init_pool(&pool);
	rq.method = piece(&ps, method.base, method.len);
	if (in->flags & F_NORMALIZE) {
		size_t query_at, *norm_indexes;
		h2o_iovec_t raw = piece(&ps, target.base, target.len);

		rq.path =
		        h2o_url_normalize_path(&pool, raw.base, raw.len, &query_at, &norm_indexes);
		if (rq.path.base >= raw.base && rq.path.base <= raw.base + raw.len)
			rq.path = piece(&ps, rq.path.base, rq.path.len);
		if (query_at != SIZE_MAX)
			rq.query = piece(&ps, raw.base + query_at + 1, raw.len - query_at - 1);
	} else {
		rq.path = piece(&ps, target.base, path_len);
		if (q)
			rq.query = piece(&ps, q + 1, target.len - path_len - 1);
	}
	for (size_t i = 0; i < in->n_headers; i++) {
		char *name = h2o_mem_alloc_pool(&pool, in->names[i].len + 1);
		h2o_iovec_t v = piece(&ps, in->values[i].base, in->values[i].len);

		lower_copy(name, in->names[i].base, in->names[i].len);
		h2o_add_header_by_str(&pool, &headers, name, in->names[i].len, 1, NULL, v.base,
		                      v.len);
	}
	if (in->flags & F_AUTH) {
		h2o_iovec_t v = piece(&ps, auth_value, strlen(auth_value));

		h2o_add_header_by_str(&pool, &headers, H2O_STRLIT("authorization"), 1, NULL, v.base,
		                      v.len);
	}
	if (in->flags & F_JSON) {
		h2o_iovec_t v = piece(&ps, H2O_STRLIT("application/json"));

		h2o_add_header_by_str(&pool, &headers, H2O_STRLIT("content-type"), 1, NULL, v.base,
		                      v.len);
	}
	if (in->body.len > 0 || !(in->flags & F_NULL_BODY))
		rq.body = piece(&ps, in->body.base, in->body.len);
	rq.ambiguous_framing = (in->flags & F_AMBIGUOUS) == F_AMBIGUOUS;

	c = call_new(api, &rq);
	if (!c)
		abort();
	r = call_decode(c);
	check_call(c, r);
	call_free(c);
	h2o_mem_clear_pool(&pool);
	pieces_free(&ps);
}

/* The route's pattern with its "{}" filled from the input's segments at that place. */
static void decode_route(const struct parsed *in, const struct fuzz_route *rt)
{
	char target[4096];
	size_t o = 0, slashes = 0;
	const char *q = in->target.len ? memchr(in->target.base, '?', in->target.len) : NULL;

	for (const char *p = rt->pattern; *p && o < sizeof(target) - 1;) {
		if (p[0] == '{' && p[1] == '}') {
			/* The pattern starts with '/', so segment i follows slash i + 1. */
			size_t seg = slashes - 1;
			h2o_iovec_t s = seg < in->n_segs ? in->segs[seg] : h2o_iovec_init("x", 1);
			size_t n = s.len < sizeof(target) - 1 - o ? s.len : sizeof(target) - 1 - o;

			memcpy(target + o, s.base, n);
			o += n;
			p += 2;
			continue;
		}
		slashes += *p == '/';
		target[o++] = *p++;
	}
	if (q) {
		size_t n = (size_t)(in->target.base + in->target.len - q);

		if (n > sizeof(target) - o)
			n = sizeof(target) - o;
		memcpy(target + o, q, n);
		o += n;
	}
	decode(in, h2o_iovec_init(rt->method, strlen(rt->method)), h2o_iovec_init(target, o));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parsed in;

	if (!api)
		init();
	parse_input(&in, data, size);
	decode(&in, in.method, in.target);
	for (size_t i = 0; i < n_routes; i++)
		decode_route(&in, &routes[i]);
	return 0;
}
