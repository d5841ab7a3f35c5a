/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* api_input: one check per kind of field the API takes, for every route. */
#include "api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>
#include <unictype.h>
#include <unistr.h>
#include <uriparser/Uri.h>

#include "endpoint.h"
#include "identity.h"
#include "key.h"

#define IDEMPOTENCY_KEY_MAX 200
#define AUTH_HEADER_MAX     256

/*
 * Characters no text field may hold: controls (C0, DEL, C1 such as U+0085), format
 * characters (bidi overrides and isolates, zero-width characters, U+FEFF) and the
 * line and paragraph separators. They are invisible or reorder what people read, in
 * the portal, in a log line or in a router's setup text.
 */
static bool is_hidden_char(ucs4_t uc)
{
	static uc_general_category_t hidden;

	if (!hidden.bitmask)
		hidden = uc_general_category_or(
		        uc_general_category_or(UC_CATEGORY_Cc, UC_CATEGORY_Cf),
		        uc_general_category_or(UC_CATEGORY_Zl, UC_CATEGORY_Zp));
	return uc_is_general_category(uc, hidden);
}

/* Valid UTF-8 of at most max_chars characters, none hidden; 0 or a reason. */
static const char *text_problem(const char *s, size_t len, size_t max_chars)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	size_t chars = 0;

	if (u8_check(p, len))
		return "not valid UTF-8";
	while (p < end) {
		ucs4_t uc;
		int n = u8_mbtouc(&uc, p, (size_t)(end - p));

		if (is_hidden_char(uc))
			return "holds control or formatting characters";
		p += n;
		chars++;
	}
	if (chars > max_chars)
		return "too long";
	return NULL;
}

int input_text(struct call *c, const char *field, const char *s, size_t max_chars)
{
	const char *why = text_problem(s, strlen(s), max_chars);

	if (why && strcmp(why, "too long") == 0)
		return call_invalid(c, field, "longer than %zu characters", max_chars);
	if (why)
		return call_invalid(c, field, "%s", why);
	if (strpbrk(s, "\"\\"))
		return call_invalid(c, field, "holds quotes or backslashes");
	return 0;
}

int input_uuid(struct call *c, const char *field, const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	for (size_t i = 0; i < sizeof(shape); i++) {
		bool ok = shape[i] == 'x'
		                  ? (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')
		          : shape[i] == '-' ? s[i] == '-'
		                            : s[i] == '\0';

		if (!ok)
			return call_invalid(c, field, "not an id (a UUID in lower case)");
	}
	return 0;
}

/* Plain decimal: digits only, no sign, space or leading zero, within [min, max]. */
static bool parse_decimal(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	size_t n = strspn(s, "0123456789");
	unsigned long v = 0;

	if (n == 0 || s[n] != '\0' || (s[0] == '0' && n > 1) || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v < min || v > max)
		return false;
	*ret = v;
	return true;
}

int input_uint(struct call *c, const char *field, const char *s, unsigned long min,
               unsigned long max, unsigned long *ret)
{
	if (!parse_decimal(s, min, max, ret))
		return call_invalid(c, field, "must be a whole number from %lu to %lu", min, max);
	return 0;
}

int input_id(struct call *c, const char *field, const char *s)
{
	unsigned long id;

	if (!parse_decimal(s, 1, INT64_MAX, &id))
		return call_invalid(c, field, "not an id (a whole number from 1)");
	return 0;
}

int input_follow_cursor(struct call *c, const char *field, const char *s)
{
	const char *dot = strchr(s, '.');
	unsigned long part;
	char head[24];

	if (dot && (size_t)(dot - s) < sizeof(head)) {
		memcpy(head, s, (size_t)(dot - s));
		head[dot - s] = '\0';
		if (parse_decimal(head, 0, INT64_MAX, &part) &&
		    parse_decimal(dot + 1, 0, INT64_MAX, &part))
			return 0;
	}
	return call_invalid(c, field,
	                    "not a cursor (follow_cursor of an earlier answer, or empty)");
}

int input_bool(struct call *c, const char *field, const char *s, bool *ret)
{
	if (!s || strcmp(s, "false") == 0)
		*ret = false;
	else if (strcmp(s, "true") == 0)
		*ret = true;
	else
		return call_invalid(c, field, "must be true or false");
	return 0;
}

/* The value of the n digits at s. */
static int decimal(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/*
 * RFC 3339 section 5.6: full-date "T" time-hour ":" minute ":" second, an optional
 * fraction and a required offset. The shape is checked here; whether the date exists
 * is timegm's answer (it moves "2026-02-30" to March, which is then refused). Leap
 * seconds (":60") are refused, as PostgreSQL refuses them.
 */
int input_timestamp(struct call *c, const char *field, const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	struct tm tm = {0};
	const char *p = s + sizeof(shape) - 1;
	int mday;

	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		bool ok = shape[i] == 'd'   ? s[i] >= '0' && s[i] <= '9'
		          : shape[i] == 'T' ? s[i] == 'T' || s[i] == 't'
		                            : s[i] == shape[i];

		if (!ok)
			goto bad;
	}
	tm.tm_year = decimal(s, 4) - 1900;
	tm.tm_mon = decimal(s + 5, 2) - 1;
	tm.tm_mday = mday = decimal(s + 8, 2);
	tm.tm_hour = decimal(s + 11, 2);
	tm.tm_min = decimal(s + 14, 2);
	tm.tm_sec = decimal(s + 17, 2);
	if (tm.tm_mon > 11 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
		goto bad;
	if (timegm(&tm) == (time_t)-1 || tm.tm_mday != mday)
		goto bad;
	if (*p == '.') {
		size_t n = strspn(p + 1, "0123456789");

		if (n == 0 || n > 9)
			goto bad;
		p += 1 + n;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return 0;
	if ((*p == '+' || *p == '-') && strlen(p) == 6 && strspn(p + 1, "0123456789") == 2 &&
	    p[3] == ':' && strspn(p + 4, "0123456789") == 2 && decimal(p + 1, 2) <= 23 &&
	    decimal(p + 4, 2) <= 59)
		return 0;
bad:
	return call_invalid(c, field,
	                    "must be an RFC 3339 time with an offset, such as "
	                    "2026-12-01T08:00:00Z");
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"

/* A name of 1-63 characters: a lower-case letter or digit, then those or extra. */
static int name(struct call *c, const char *field, const char *s, const char *extra,
                const char *extra_words)
{
	char rest[64];
	size_t n = strlen(s);

	snprintf(rest, sizeof(rest), "%s%s", LOWER_DIGITS, extra);
	if (n < 1 || n > 63 || !strchr(LOWER_DIGITS, s[0]) || strspn(s + 1, rest) != n - 1)
		return call_invalid(c, field,
		                    "lower-case letters, digits%s, 1-63 characters, starting with "
		                    "a letter or digit",
		                    extra_words);
	return 0;
}

int input_slug(struct call *c, const char *field, const char *s)
{
	return name(c, field, s, "-", " and dashes");
}

int input_server_name(struct call *c, const char *field, const char *s)
{
	return name(c, field, s, ".-", ", dots and dashes");
}

int input_address(struct call *c, const char *field, const char *s)
{
	struct wgf_addr addr;
	struct wgf_err err = {0};

	if (wgf_addr_parse(&addr, s, &err) < 0)
		return call_invalid(c, field, "%s", err.msg);
	return 0;
}

int input_endpoint(struct call *c, const char *field, const char *s)
{
	struct wgf_endpoint ep;
	struct wgf_err err = {0};

	if (wgf_endpoint_parse(&ep, s, 0, &err) < 0)
		return call_invalid(c, field, "%s (host:port, [IPv6]:port)", err.msg);
	return 0;
}

void input_hex_bytea(char *out, size_t size, const uint8_t *bin, size_t len)
{
	out[0] = '\\';
	out[1] = 'x';
	sodium_bin2hex(out + 2, size - 2, bin, len);
}

static const char *arena_hex(struct call *c, const uint8_t key[static 32])
{
	char hex[API_HEX32_LEN];

	input_hex_bytea(hex, sizeof(hex), key, 32);
	return call_arena(c, "%s", hex);
}

int input_wg_key(struct call *c, const char *field, const char *s, int status, const char *code,
                 const char **ret)
{
	struct wgf_err err = {0};
	uint8_t key[WGF_KEY_LEN];

	*ret = NULL;
	if (!s)
		return 0;
	if (wgf_key_from_base64(key, s, WGF_KEY_PUBLIC, &err) < 0)
		return call_problem(c, status, code, "%s: %s", field, err.msg);
	*ret = arena_hex(c, key);
	return *ret ? 0 : call_problem(c, 500, "internal", "Out of memory.");
}

int input_url_key(struct call *c, const char *field, const char *s, const char **ret)
{
	char text[WGF_KEY_B64_LEN + 16];

	*ret = NULL;
	if (!s)
		return 0;
	if (strlen(s) >= sizeof(text))
		return call_invalid(c, field, "not a WireGuard public key in base64");
	snprintf(text, sizeof(text), "%s", s);
	for (char *p = text; *p; p++)
		*p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
	return input_wg_key(c, field, text, 400, "invalid_request", ret);
}

int input_agent_key(struct call *c, const char *field, const char *s, const char **ret)
{
	uint8_t key[32];

	*ret = NULL;
	if (!s)
		return 0;
	if (wgf_identity_public_from_b64(s, key) < 0)
		return call_invalid(c, field, "not an Ed25519 public key in base64");
	*ret = arena_hex(c, key);
	return *ret ? 0 : call_problem(c, 500, "internal", "Out of memory.");
}

static int check_names(struct call *c, const struct field *f, const char *key, json_t *v)
{
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789._";
	json_t *item;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > (size_t)f->max)
		return call_invalid(c, key, "must be an array of at most %lld names",
		                    (long long)f->max);
	json_array_foreach(v, i, item)
	{
		const char *s = json_string_value(item);

		if (!s || !*s || strlen(s) > f->max_chars || strspn(s, name_chars) != strlen(s) ||
		    strlen(s) != json_string_length(item))
			return call_invalid(
			        c, key,
			        "item %zu is not a name (lower-case letters, digits, '.' "
			        "and '_', at most %zu)",
			        i, f->max_chars);
	}
	return 0;
}

static int check_member(struct call *c, const struct field *f, const char *key, json_t *v)
{
	switch (f->type) {
	case F_FIXED:
		return call_invalid(c, key, "cannot be changed");
	case F_LIST:
		return json_is_array(v) ? 0 : call_invalid(c, key, "must be a list");
	case F_TEXT:
		if (!json_is_string(v))
			return call_invalid(c, key, "must be a string");
		if (strlen(json_string_value(v)) != json_string_length(v))
			return call_invalid(c, key, "holds control or formatting characters");
		return input_text(c, key, json_string_value(v), f->max_chars);
	case F_INT:
		if (!json_is_integer(v) || json_integer_value(v) < f->min ||
		    json_integer_value(v) > f->max)
			return call_invalid(c, key, "must be a whole number from %lld to %lld",
			                    (long long)f->min, (long long)f->max);
		return 0;
	case F_BOOL:
		if (!json_is_boolean(v))
			return call_invalid(c, key, "must be true or false");
		return 0;
	case F_NAMES:
		return check_names(c, f, key, v);
	}
	return call_problem(c, 500, "internal", "Unknown field type.");
}

int input_object(struct call *c, json_t *obj, const char *where, const struct field *fields,
                 size_t n)
{
	char name[96];
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return call_invalid(c, where ? where : "body", "must be a JSON object");
	json_object_foreach(obj, key, v)
	{
		const struct field *f = NULL;
		int r;

		for (size_t i = 0; i < n && !f; i++)
			if (strcmp(fields[i].name, key) == 0)
				f = &fields[i];
		if (!f) {
			/* Member names are checked UTF-8 (jansson); echo only plain ones. */
			if (text_problem(key, strlen(key), 64))
				return call_invalid(c, where ? where : "body",
				                    "holds an unknown field");
			snprintf(name, sizeof(name), "%s%s%s", where ? where : "", where ? "." : "",
			         key);
			return call_invalid(c, name, "unknown field");
		}
		if (json_is_null(v) && !f->required)
			continue;
		snprintf(name, sizeof(name), "%s%s%s", where ? where : "", where ? "." : "", key);
		r = check_member(c, f, name, v);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *f = json_object_get(obj, fields[i].name);

		if (fields[i].required && (!f || json_is_null(f))) {
			snprintf(name, sizeof(name), "%s%s%s", where ? where : "", where ? "." : "",
			         fields[i].name);
			return call_invalid(c, name, "is required");
		}
	}
	return 0;
}

int input_body(struct call *c, const struct field *fields, size_t n)
{
	return input_object(c, c->body, NULL, fields, n);
}

static int query_add(struct call *c, const char *key, const char *value)
{
	bool known = false;

	if (text_problem(key, strlen(key), 64))
		return call_invalid(c, "query", "a parameter name is not plain text");
	for (size_t i = 0; i < c->route->n_query; i++)
		known = known || strcmp(c->route->query[i], key) == 0;
	if (!known)
		return call_invalid(c, key, "unknown query parameter");
	if (call_query_get(c, key))
		return call_invalid(c, key, "given more than once");
	if (text_problem(value, strlen(value), 1024))
		return call_invalid(c, key, "not valid UTF-8, or holds control characters");
	if (c->n_query >= API_QUERY_MAX)
		return call_invalid(c, "query", "more than %d parameters", API_QUERY_MAX);
	c->query[c->n_query].key = strdup(key);
	c->query[c->n_query].value = strdup(value);
	if (!c->query[c->n_query].key || !c->query[c->n_query].value) {
		free(c->query[c->n_query].key);
		free(c->query[c->n_query].value);
		return call_problem(c, 503, "unavailable", "Out of memory.");
	}
	c->n_query++;
	return 0;
}

/*
 * uriparser splits and percent-decodes. A NUL decoded from %00 would end the C string
 * early, so each piece's decoded length is compared with what a NUL-free decoding
 * gives: any %00 makes a parameter with a control character, which is refused.
 */
int input_query(struct call *c, const char *q, size_t len)
{
	UriQueryListA *list = NULL;
	int count = 0, r = 0;

	if (len == 0)
		return 0;
	if (memchr(q, '\0', len) || memmem(q, len, "%00", 3))
		return call_invalid(c, "query", "holds control characters");
	if (uriDissectQueryMallocA(&list, &count, q, q + len) != URI_SUCCESS)
		return call_invalid(c, "query", "not a valid query string");
	for (UriQueryListA *it = list; it && r == 0; it = it->next)
		r = query_add(c, it->key, it->value ? it->value : "");
	uriFreeQueryListA(list);
	return r;
}

static const h2o_iovec_t *header(const struct call *c, const char *lower_name)
{
	ssize_t i = h2o_find_header_by_str(c->rq->headers, lower_name, strlen(lower_name), -1);

	return i < 0 ? NULL : &c->rq->headers->entries[i].value;
}

/* RFC 9110 section 11: the scheme is case-insensitive and one or more spaces follow. */
int input_auth(struct call *c)
{
	const h2o_iovec_t *v = header(c, "authorization");
	char text[AUTH_HEADER_MAX];
	struct apikey k;
	size_t i = 7;
	int r = -EACCES;

	if (v && v->len > i && v->len < sizeof(text) && strncasecmp(v->base, "bearer ", 7) == 0) {
		while (i < v->len && v->base[i] == ' ')
			i++;
		memcpy(text, v->base + i, v->len - i);
		text[v->len - i] = '\0';
		r = apikey_parse(c->api->o.key_hash_secret, text, &k);
		sodium_memzero(text, sizeof(text));
	}
	if (r < 0)
		return call_problem(c, 401, "unauthorized",
		                    "Send a valid API key as 'Authorization: Bearer <key>'.");
	memcpy(c->key_prefix, k.prefix, sizeof(c->key_prefix));
	input_hex_bytea(c->key_hash, sizeof(c->key_hash), k.hash, sizeof(k.hash));
	sodium_memzero(&k, sizeof(k));
	return 0;
}

int input_content_type(struct call *c)
{
	static const char json[] = "application/json";
	const h2o_iovec_t *v = header(c, "content-type");
	size_t n;

	if (v) {
		const char *semi = memchr(v->base, ';', v->len);

		n = semi ? (size_t)(semi - v->base) : v->len;
		while (n > 0 && (v->base[n - 1] == ' ' || v->base[n - 1] == '\t'))
			n--;
		if (n == sizeof(json) - 1 && strncasecmp(v->base, json, n) == 0)
			return 0;
	}
	return call_problem(c, 415, "unsupported_media_type",
	                    "Send the body as JSON, with 'Content-Type: application/json'.");
}

int input_idempotency_key(struct call *c, const char **ret)
{
	const h2o_iovec_t *v = header(c, "idempotency-key");
	const char *copy;

	*ret = NULL;
	if (!v)
		return 0;
	if (v->len == 0 || v->len > IDEMPOTENCY_KEY_MAX ||
	    text_problem(v->base, v->len, IDEMPOTENCY_KEY_MAX) || memchr(v->base, '"', v->len) ||
	    memchr(v->base, '\\', v->len))
		return call_invalid(c, "Idempotency-Key", "must be 1-%d printable characters",
		                    IDEMPOTENCY_KEY_MAX);
	copy = call_arena(c, "%.*s", (int)v->len, v->base);
	if (!copy)
		return call_problem(c, 500, "internal", "Out of memory.");
	*ret = copy;
	return 0;
}
