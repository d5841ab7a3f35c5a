/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* channel_db: parameters for the agent functions, and their typed rows read back. */
#include "channel_db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cidr.h"
#include "macro.h"

/* Type OIDs, fixed in PostgreSQL's catalog (pg_type.dat); libpq ships no header. */
#define OID_BOOL  16
#define OID_BYTEA 17
#define OID_INT8  20
#define OID_INT2  21
#define OID_INT4  23
#define OID_TEXT  25
#define OID_CIDR  650

struct column {
	const char *name;
	Oid type;
};

/* ---- parameters ---- */

/* A growing text buffer of NUL-terminated parameters; offsets, since it moves. */
struct params {
	char *buf;
	size_t len, cap;
	size_t at[CHAN_CALL_PARAMS_MAX];
	bool null[CHAN_CALL_PARAMS_MAX];
	int n;
	bool oom;
};

static void put(struct params *p, const char *s, size_t len)
{
	if (p->oom)
		return;
	if (p->len + len + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 256;
		char *grown;

		while (cap < p->len + len + 1)
			cap *= 2;
		grown = realloc(p->buf, cap);
		if (!grown) {
			p->oom = true;
			return;
		}
		p->buf = grown;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, s, len);
	p->len += len;
	p->buf[p->len] = '\0';
}

static void begin(struct params *p)
{
	p->at[p->n] = p->len;
	p->null[p->n] = false;
}

static void end(struct params *p)
{
	put(p, "", 0);
	p->len++; /* keep the NUL */
	p->n++;
}

__attribute__((format(printf, 2, 3))) static void param_fmt(struct params *p, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	begin(p);
	put(p, tmp, n > 0 ? (size_t)n : 0);
	end(p);
}

static void param_text(struct params *p, const char *s)
{
	begin(p);
	put(p, s, strlen(s));
	end(p);
}

static void param_null(struct params *p)
{
	begin(p);
	p->null[p->n] = true;
	end(p);
}

static void put_hex(struct params *p, const uint8_t *bin, size_t len)
{
	char hex[2 * 32 + 1];

	while (len > 0) {
		size_t k = len < 32 ? len : 32;

		sodium_bin2hex(hex, sizeof(hex), bin, k);
		put(p, hex, 2 * k);
		bin += k;
		len -= k;
	}
}

/* n keys of 32 bytes each, at stride bytes apart, as one bytea. */
static void param_keys(struct params *p, const uint8_t *first, size_t n, size_t stride)
{
	begin(p);
	put(p, "\\x", 2);
	for (size_t i = 0; i < n; i++)
		put_hex(p, first + i * stride, WGF_KEY_LEN);
	end(p);
}

static void param_bytea(struct params *p, const uint8_t *bin, size_t len)
{
	begin(p);
	put(p, "\\x", 2);
	put_hex(p, bin, len);
	end(p);
}

static void param_epoch(struct params *p, const uint8_t epoch[static WGF_EPOCH_LEN])
{
	if (wgf_epoch_is_none(epoch))
		param_null(p);
	else
		param_bytea(p, epoch, WGF_EPOCH_LEN);
}

/* An array literal of quoted text elements: "{"a","b\"c"}". */
static void param_text_array(struct params *p, const char *first, size_t n, size_t stride)
{
	begin(p);
	put(p, "{", 1);
	for (size_t i = 0; i < n; i++) {
		const char *s = first + i * stride;

		put(p, i ? ",\"" : "\"", i ? 2 : 1);
		for (; *s; s++) {
			if (*s == '"' || *s == '\\')
				put(p, "\\", 1);
			put(p, s, 1);
		}
		put(p, "\"", 1);
	}
	put(p, "}", 1);
	end(p);
}

/* An array literal of integers read at stride bytes apart, as int64 or uint64. */
static void param_int_array(struct params *p, const void *first, size_t n, size_t stride,
                            bool is_signed)
{
	char tmp[24];

	begin(p);
	put(p, "{", 1);
	for (size_t i = 0; i < n; i++) {
		const char *at = (const char *)first + i * stride;
		int len = is_signed ? snprintf(tmp, sizeof(tmp), "%s%" PRId64, i ? "," : "",
		                               *(const int64_t *)(const void *)at)
		                    : snprintf(tmp, sizeof(tmp), "%s%" PRIu64, i ? "," : "",
		                               *(const uint64_t *)(const void *)at);

		put(p, tmp, (size_t)len);
	}
	put(p, "}", 1);
	end(p);
}

static int finish(struct params *p, struct chan_call *c, const char *sql)
{
	if (p->oom) {
		free(p->buf);
		return -ENOMEM;
	}
	c->sql = sql;
	c->n = p->n;
	c->buf = p->buf;
	for (int i = 0; i < p->n; i++)
		c->params[i] = p->null[i] ? NULL : p->buf + p->at[i];
	return 0;
}

static void param_sender(struct params *p, const uint8_t key[static WGF_SIGN_PK_LEN],
                         const uint8_t nonce[static WGF_NONCE_LEN])
{
	param_bytea(p, key, WGF_SIGN_PK_LEN);
	param_bytea(p, nonce, WGF_NONCE_LEN);
}

int chan_call_wait(struct chan_call *c, const uint8_t key[static WGF_SIGN_PK_LEN],
                   const uint8_t nonce[static WGF_NONCE_LEN])
{
	struct params p = {0};

	param_sender(&p, key, nonce);
	return finish(&p, c, "SELECT * FROM wgf_agent_wait($1::bytea, $2::bytea)");
}

int chan_call_sync(struct chan_call *c, const uint8_t key[static WGF_SIGN_PK_LEN],
                   const uint8_t nonce[static WGF_NONCE_LEN], const struct wgf_sync_request *req,
                   const struct chan_sync_options *o)
{
	struct params p = {0};

	param_sender(&p, key, nonce);
	param_epoch(&p, req->epoch);
	param_fmt(&p, "%" PRIu64, req->since_revision);
	param_fmt(&p, "%s", req->want_snapshot ? "true" : "false");
	param_fmt(&p, "%u", o->max_deltas);
	param_fmt(&p, "%" PRIu64, req->page_base);
	if (req->page_base > 0)
		param_bytea(&p, req->page_after, WGF_KEY_LEN);
	else
		param_null(&p);
	param_fmt(&p, "%u", o->page_size);
	return finish(&p, c,
	              "SELECT * FROM wgf_agent_sync($1::bytea, $2::bytea, $3::bytea, $4::bigint, "
	              "$5::boolean, $6::integer, $7::bigint, $8::bytea, $9::integer)");
}

/* Per unknown peer, its allowed IPs joined by commas, as a text array literal. */
static void param_unknown_ips(struct params *p, const struct wgf_report *rep)
{
	begin(p);
	put(p, "{", 1);
	for (size_t i = 0; i < rep->n_unknown; i++) {
		const struct wgf_unknown_peer *u = &rep->unknown[i];

		put(p, i ? ",\"" : "\"", i ? 2 : 1);
		for (unsigned j = 0; j < u->n_allowed_ips; j++) {
			char c[WGF_CIDR_STRLEN];

			wgf_cidr_format(&u->allowed_ips[j], c);
			if (j)
				put(p, ",", 1);
			put(p, c, strlen(c));
		}
		put(p, "\"", 1);
	}
	put(p, "}", 1);
	end(p);
}

int chan_call_report(struct chan_call *c, const uint8_t key[static WGF_SIGN_PK_LEN],
                     const uint8_t nonce[static WGF_NONCE_LEN], const struct wgf_report *rep,
                     uint64_t handshake_window_ms)
{
	struct params p = {0};

	param_sender(&p, key, nonce);
	param_epoch(&p, rep->epoch);
	param_fmt(&p, "%" PRIu64, rep->applied_revision);
	param_keys(&p, rep->errors ? rep->errors->public_key : NULL, rep->n_errors,
	           sizeof(*rep->errors));
	param_text_array(&p, rep->errors ? rep->errors->reason : NULL, rep->n_errors,
	                 sizeof(*rep->errors));
	param_keys(&p, rep->facts ? rep->facts->public_key : NULL, rep->n_facts,
	           sizeof(*rep->facts));
	param_int_array(&p, rep->facts ? &rep->facts->last_handshake_ms : NULL, rep->n_facts,
	                sizeof(*rep->facts), true);
	param_text_array(&p, rep->facts ? rep->facts->endpoint : NULL, rep->n_facts,
	                 sizeof(*rep->facts));
	param_int_array(&p, rep->facts ? &rep->facts->rx_bytes : NULL, rep->n_facts,
	                sizeof(*rep->facts), false);
	param_int_array(&p, rep->facts ? &rep->facts->tx_bytes : NULL, rep->n_facts,
	                sizeof(*rep->facts), false);
	if (rep->has_interface_key)
		param_bytea(&p, rep->interface_public_key, WGF_KEY_LEN);
	else
		param_null(&p);
	if (rep->listen_port > 0)
		param_fmt(&p, "%u", rep->listen_port);
	else
		param_null(&p);
	param_keys(&p, rep->drift ? rep->drift->public_key : NULL, rep->n_drift,
	           sizeof(*rep->drift));
	begin(&p);
	put(&p, "{", 1);
	for (size_t i = 0; i < rep->n_drift; i++) {
		char k[4];

		snprintf(k, sizeof(k), "%s%d", i ? "," : "", (int)rep->drift[i].kind);
		put(&p, k, strlen(k));
	}
	put(&p, "}", 1);
	end(&p);
	param_fmt(&p, "%" PRIu64 " milliseconds", handshake_window_ms);
	param_text(&p, rep->cache_error);
	param_fmt(&p, "%s", rep->has_unknown ? "true" : "false");
	param_fmt(&p, "%" PRIu32, rep->n_unknown_total);
	param_keys(&p, rep->unknown ? rep->unknown->public_key : NULL, rep->n_unknown,
	           sizeof(*rep->unknown));
	param_unknown_ips(&p, rep);
	param_int_array(&p, rep->unknown ? &rep->unknown->last_handshake_ms : NULL, rep->n_unknown,
	                sizeof(*rep->unknown), true);
	param_text_array(&p, rep->unknown ? rep->unknown->endpoint : NULL, rep->n_unknown,
	                 sizeof(*rep->unknown));
	return finish(&p, c,
	              "SELECT * FROM wgf_agent_report($1::bytea, $2::bytea, $3::bytea, $4::bigint, "
	              "$5::bytea, $6::text[], $7::bytea, $8::bigint[], $9::text[], $10::bigint[], "
	              "$11::bigint[], $12::bytea, $13::integer, $14::bytea, $15::smallint[], "
	              "$16::interval, $17::text, $18::boolean, $19::integer, $20::bytea, "
	              "$21::text[], $22::bigint[], $23::text[])");
}

void chan_call_fini(struct chan_call *c)
{
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

/* ---- results ---- */

static int check_columns(const PGresult *res, const struct column *cols, int n, struct wgf_err *err)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != n || PQntuples(res) < 1)
		return wgf_err_set(err, -EBADMSG, "unexpected database answer: %d columns, %d rows",
		                   PQnfields(res), PQntuples(res));
	for (int i = 0; i < n; i++)
		if (strcmp(PQfname(res, i), cols[i].name) != 0 || PQftype(res, i) != cols[i].type)
			return wgf_err_set(
			        err, -EBADMSG,
			        "unexpected database answer: column %d is %s of type %u, "
			        "expected %s of type %u",
			        i, PQfname(res, i), PQftype(res, i), cols[i].name, cols[i].type);
	return 0;
}

static bool get_u64(const PGresult *res, int row, int col, uint64_t *ret)
{
	const char *s = PQgetvalue(res, row, col);
	char *end;

	if (PQgetisnull(res, row, col) || *s == '-')
		return false;
	errno = 0;
	*ret = strtoull(s, &end, 10);
	return errno == 0 && end != s && *end == '\0';
}

static bool get_bytea(const PGresult *res, int row, int col, uint8_t *out, size_t len)
{
	const char *s = PQgetvalue(res, row, col);
	size_t bin_len = 0;

	if (PQgetisnull(res, row, col) || strncmp(s, "\\x", 2) != 0 ||
	    (size_t)PQgetlength(res, row, col) != 2 + 2 * len)
		return false;
	return sodium_hex2bin(out, len, s + 2, 2 * len, NULL, &bin_len, NULL) == 0 &&
	       bin_len == len;
}

static bool get_bool(const PGresult *res, int row, int col, bool *ret)
{
	if (PQgetisnull(res, row, col))
		return false;
	*ret = PQgetvalue(res, row, col)[0] == 't';
	return true;
}

static bool get_cidr(const PGresult *res, int row, int col, struct wgf_cidr *ret)
{
	return !PQgetisnull(res, row, col) &&
	       wgf_cidr_parse(ret, PQgetvalue(res, row, col), 0, NULL) == 0;
}

/* server_id, server, epoch, revision: the first four columns of every answer. */
static int read_header(const PGresult *res, struct chan_header *h, struct wgf_err *err)
{
	const char *name = PQgetvalue(res, 0, 1);
	uint64_t id;

	memset(h, 0, sizeof(*h));
	if (!get_u64(res, 0, 0, &id) || PQgetisnull(res, 0, 1) ||
	    strlen(name) > WGF_SERVER_NAME_MAX || !get_bytea(res, 0, 2, h->epoch, WGF_EPOCH_LEN) ||
	    !get_u64(res, 0, 3, &h->revision))
		return wgf_err_set(err, -EBADMSG, "unexpected database answer: a bad header row");
	h->server_id = (int64_t)id;
	snprintf(h->server, sizeof(h->server), "%s", name);
	return 0;
}

static const struct column header_columns[] = {
        {"server_id", OID_INT8},
        {"server", OID_TEXT},
        {"epoch", OID_BYTEA},
        {"revision", OID_INT8},
};

int chan_read_header(const PGresult *res, struct chan_header *ret, struct wgf_err *err)
{
	int r = check_columns(res, header_columns, 4, err);

	return r < 0 ? r : read_header(res, ret, err);
}

static const struct column report_columns[] = {
        {"server_id", OID_INT8}, {"server", OID_TEXT},    {"epoch", OID_BYTEA},
        {"revision", OID_INT8},  {"released", OID_BYTEA},
};

int chan_read_report(const PGresult *res, struct chan_header *ret, uint8_t (**ret_released)[32],
                     size_t *ret_n, struct wgf_err *err)
{
	int r = check_columns(res, report_columns, WGF_ARRAY_SIZE(report_columns), err);
	size_t len = PQgetlength(res, 0, 4), n = len >= 2 ? (len - 2) / (2 * WGF_KEY_LEN) : 0;
	uint8_t(*keys)[32];

	if (r == 0)
		r = read_header(res, ret, err);
	if (r < 0)
		return r;
	if (n > WGF_HINT_RELEASED_MAX || len != 2 + 2 * WGF_KEY_LEN * n)
		return wgf_err_set(err, -EBADMSG, "unexpected database answer: released keys");
	keys = malloc((n + 1) * WGF_KEY_LEN);
	if (!keys)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	if (!get_bytea(res, 0, 4, keys[0], n * WGF_KEY_LEN)) {
		free(keys);
		return wgf_err_set(err, -EBADMSG, "unexpected database answer: released keys");
	}
	*ret_released = keys;
	*ret_n = n;
	return 0;
}

static const struct column sync_columns[] = {
        {"server_id", OID_INT8},   {"server", OID_TEXT},
        {"epoch", OID_BYTEA},      {"revision", OID_INT8},
        {"snapshot", OID_BOOL},    {"page_base", OID_INT8},
        {"more", OID_BOOL},        {"routable", OID_CIDR},
        {"op", OID_INT2},          {"change_revision", OID_INT8},
        {"public_key", OID_BYTEA}, {"allowed_ip", OID_CIDR},
        {"keepalive", OID_INT4},
};

enum {
	COL_SNAPSHOT = 4,
	COL_PAGE_BASE,
	COL_MORE,
	COL_ROUTABLE,
	COL_OP,
	COL_CHANGE_REVISION,
	COL_PUBLIC_KEY,
	COL_ALLOWED_IP,
	COL_KEEPALIVE
};

/* A peer row: key, and unless it is a removal, its allowed IP and keepalive. */
static bool read_peer(const PGresult *res, int row, bool removal, struct wgf_ip_pool *pool,
                      struct wgf_peer *p)
{
	struct wgf_cidr ip;
	uint64_t keepalive;

	memset(p, 0, sizeof(*p));
	if (!get_bytea(res, row, COL_PUBLIC_KEY, p->public_key, WGF_KEY_LEN))
		return false;
	if (removal)
		return true;
	if (!get_cidr(res, row, COL_ALLOWED_IP, &ip) ||
	    !get_u64(res, row, COL_KEEPALIVE, &keepalive) || keepalive > 65535 ||
	    wgf_peer_add_allowed_ip(pool, p, &ip) < 0)
		return false;
	p->persistent_keepalive = (uint16_t)keepalive;
	if (keepalive)
		p->flags |= WGF_PEER_HAS_KEEPALIVE;
	return true;
}

int chan_read_sync(const PGresult *res, struct chan_header *ret_header, struct wgf_sync_reply *ret,
                   struct wgf_err *err)
{
	struct wgf_sync_reply out = {0};
	int rows = PQntuples(res),
	    r = check_columns(res, sync_columns, (int)WGF_ARRAY_SIZE(sync_columns), err);
	bool ok;

	if (r == 0)
		r = read_header(res, ret_header, err);
	if (r < 0)
		return r;
	snprintf(out.server, sizeof(out.server), "%s", ret_header->server);
	memcpy(out.epoch, ret_header->epoch, WGF_EPOCH_LEN);
	out.revision = ret_header->revision;
	out.routable = calloc(1, sizeof(*out.routable));
	out.peers = calloc((size_t)rows, sizeof(*out.peers));
	out.changes = calloc((size_t)rows, sizeof(*out.changes));
	if (!out.routable || !out.peers || !out.changes) {
		r = -ENOMEM;
		goto fail;
	}
	ok = get_bool(res, 0, COL_SNAPSHOT, &out.snapshot) &&
	     get_u64(res, 0, COL_PAGE_BASE, &out.page_base) &&
	     get_bool(res, 0, COL_MORE, &out.more);
	if (ok && get_cidr(res, 0, COL_ROUTABLE, &out.routable[0]))
		out.n_routable = 1;
	for (int i = 1; ok && i < rows; i++) {
		struct wgf_change *c = &out.changes[out.n_changes];
		uint64_t op = 0;

		if (PQgetisnull(res, i, COL_OP)) {
			/* Peers of a page come before the changes that follow it. */
			ok = out.n_changes == 0 &&
			     read_peer(res, i, false, &out.ips, &out.peers[out.n_peers++]);
			continue;
		}
		ok = get_u64(res, i, COL_OP, &op) &&
		     (op == WGF_CHANGE_UPSERT || op == WGF_CHANGE_REMOVE) &&
		     get_u64(res, i, COL_CHANGE_REVISION, &c->revision) &&
		     read_peer(res, i, op == WGF_CHANGE_REMOVE, &out.ips, &c->peer);
		c->op = (enum wgf_change_op)op;
		out.n_changes++;
	}
	if (!ok) {
		r = wgf_err_set(err, -EBADMSG,
		                "unexpected database answer: a bad peer or change row");
		goto fail;
	}
	*ret = out;
	return 0;
fail:
	free(out.routable);
	free(out.peers);
	free(out.changes);
	wgf_ip_pool_fini(&out.ips);
	return r;
}
