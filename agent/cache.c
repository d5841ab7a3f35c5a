/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* cache: read (through yajl's events) and write the desired-state JSON file. */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "body.h"
#include "cidr.h"
#include "fs.h"
#include "key.h"

/* The file keeps whatever the channel may send (proto/body.h). */
_Static_assert(CACHE_EPOCH_LEN == WGF_EPOCH_LEN,
               "an epoch has one size in the file and on the wire");
_Static_assert(CACHE_ROUTABLE_MAX >= WGF_ROUTABLE_MAX,
               "the file holds as many routable networks as a reply carries");

/* The one well-formed key that wgf_key_from_base64() refuses for a private key too. */
#define ZERO_KEY_B64 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static int parse_key(uint8_t ret[static WGF_KEY_LEN], const char *b64, struct wgf_err *err)
{
	/* Decoding as a private key checks the form and skips the low-order test. */
	if (strcmp(b64, ZERO_KEY_B64) == 0) {
		memset(ret, 0, WGF_KEY_LEN);
		return 0;
	}
	return wgf_key_from_base64(ret, b64, WGF_KEY_PRIVATE, err);
}

static int cmp_key_peer(const void *key, const void *peer)
{
	return memcmp(key, ((const struct wgf_peer *)peer)->public_key, WGF_KEY_LEN);
}

static int sys_error(const char *path, const char *what, struct wgf_err *err)
{
	int r = -errno;

	return wgf_err_set(err, r, "%s: cannot %s: %s", path, what, wgf_strerror(r));
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int parse_epoch(uint8_t ret[static CACHE_EPOCH_LEN], const char *s, size_t len,
                       struct wgf_err *err)
{
	bool ok = len == 2 * CACHE_EPOCH_LEN;

	for (size_t i = 0; ok && i < CACHE_EPOCH_LEN; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		ok = hi >= 0 && lo >= 0;
		if (ok)
			ret[i] = (uint8_t)(hi << 4 | lo);
	}
	return ok ? 0
	          : wgf_err_set(err, -EINVAL, "not %d lower-case hex digits", 2 * CACHE_EPOCH_LEN);
}

/*
 * ---- reading ----------------------------------------------------------------
 *
 * One pass over yajl's events and no tree: each value is checked and stored where it
 * belongs as it is read, so a set of 100,000 peers costs its records and nothing more.
 * The same reader takes a whole set and a journal record (THE JOURNAL in cache.h).
 */

/* Where the next value goes; for a list or an object, also what is being read. */
enum slot {
	S_TOP,  /* the document */
	S_ROOT, /* its object: a set or a record */
	S_REVISION,
	S_EPOCH,
	S_ROUTABLE,
	S_NET,   /* an element of routable */
	S_PEERS, /* a set's "peers", a record's "upsert" */
	S_PEER,
	S_KEY, /* a peer's fields */
	S_IPS,
	S_IP, /* an element of allowed_ips */
	S_KEEPALIVE,
	S_REMOVE, /* a record's removed keys */
	S_REMOVED,
	S_END, /* no value goes here */
};

enum kind { K_NONE, K_OTHER, K_INT, K_DOUBLE, K_STRING, K_MAP, K_LIST };

/* What a value in each slot must be, what the message says it is not, what it is named. */
static const struct {
	enum kind kind;
	const char *not_a;
	const char *name;
} slots[] = {
        [S_TOP] = {K_MAP, "not a JSON object", NULL},
        [S_REVISION] = {K_INT, "not a whole number from 0 up", "revision"},
        [S_EPOCH] = {K_STRING, "not 32 lower-case hex digits", "epoch"},
        [S_ROUTABLE] = {K_LIST, "not a list", "routable"},
        [S_NET] = {K_STRING, "not a string", NULL},
        [S_PEERS] = {K_LIST, "not a list", NULL},
        [S_PEER] = {K_MAP, "not an object", NULL},
        [S_KEY] = {K_STRING, "not a string", "public_key"},
        [S_IPS] = {K_LIST, "not a list", "allowed_ips"},
        [S_IP] = {K_STRING, "not a string", NULL},
        [S_KEEPALIVE] = {K_INT, "not a whole number of seconds from 0 to 65535",
                         "persistent_keepalive"},
        [S_REMOVE] = {K_LIST, "not a list", "remove"},
        [S_REMOVED] = {K_STRING, "not a key", NULL},
        [S_END] = {K_NONE, "unexpected", NULL},
};

/* An object's fields; field i is bit i of the reader's mask of those seen. */
struct field {
	const char *name;
	enum slot slot;
	bool required;
};

static const struct field set_fields[] = {
        {"revision", S_REVISION, true}, {"epoch", S_EPOCH, false}, {"routable", S_ROUTABLE, false},
        {"peers", S_PEERS, true},       {NULL, S_END, false},
};
static const struct field record_fields[] = {
        {"revision", S_REVISION, true}, {"epoch", S_EPOCH, false},  {"routable", S_ROUTABLE, false},
        {"upsert", S_PEERS, true},      {"remove", S_REMOVE, true}, {NULL, S_END, false},
};
static const struct field peer_fields[] = {
        {"public_key", S_KEY, true},
        {"allowed_ips", S_IPS, true},
        {"persistent_keepalive", S_KEEPALIVE, false},
        {NULL, S_END, false},
};

struct reader {
	yajl_handle h;
	const struct field *root_fields; /* set_fields or record_fields */
	const char *list;                /* "peers" or "upsert", for messages */
	enum slot in;                    /* the list or object being read */
	enum slot next;                  /* where the next value goes */
	unsigned root_seen, peer_seen;   /* fields seen: bit i for field i */
	struct cache_state st;           /* a record's upserts are st.peers */
	size_t peers_cap, routable_cap;
	uint8_t (*removed)[WGF_KEY_LEN]; /* a record's removed keys */
	size_t n_removed, removed_cap;
	char *text; /* the string being read, NUL-terminated */
	size_t text_cap;
	size_t line, column; /* of the next byte, for yajl's messages; from 1 */
	struct wgf_err *err;
	int code; /* what a callback stopped with */
};

/* at's name in messages, "" at the top: "peers[3].allowed_ips[1]". */
static const char *where(const struct reader *rd, enum slot at, char *buf, size_t size)
{
	switch (at) {
	case S_NET:
		snprintf(buf, size, "routable[%zu]", rd->st.n_routable);
		return buf;
	case S_REMOVED:
		snprintf(buf, size, "remove[%zu]", rd->n_removed);
		return buf;
	case S_PEERS:
		return rd->list;
	case S_PEER:
		snprintf(buf, size, "%s[%zu]", rd->list, rd->st.n_peers);
		return buf;
	case S_KEY:
	case S_IPS:
	case S_KEEPALIVE:
		snprintf(buf, size, "%s[%zu].%s", rd->list, rd->st.n_peers, slots[at].name);
		return buf;
	case S_IP:
		snprintf(buf, size, "%s[%zu].allowed_ips[%u]", rd->list, rd->st.n_peers,
		         rd->st.peers[rd->st.n_peers].n_allowed_ips);
		return buf;
	default:
		return slots[at].name ? slots[at].name : "";
	}
}

/* Stops the parse with r, err's message put after at's name. yajl's "cancel". */
static int fail(struct reader *rd, enum slot at, int r)
{
	char buf[96];
	const char *name = where(rd, at, buf, sizeof(buf));

	if (*name)
		wgf_err_prefix(rd->err, "%s: ", name);
	rd->code = r;
	return 0;
}

static int failf(struct reader *rd, enum slot at, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int failf(struct reader *rd, enum slot at, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)wgf_err_setv(rd->err, r, fmt, ap);
	va_end(ap);
	return fail(rd, at, r);
}

/* Room for element n of *v, whose capacity is *cap; doubling. -ENOMEM. */
static int grow(void **v, size_t n, size_t *cap, size_t size)
{
	size_t c = *cap ? 2 * *cap : 16;
	void *p;

	if (n < *cap)
		return 0;
	p = reallocarray(*v, c, size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

/* s as a C string in rd->text; NULL (stopped) when it holds a NUL or memory is short. */
static const char *take_text(struct reader *rd, const unsigned char *s, size_t len)
{
	if (len >= rd->text_cap) {
		char *t = realloc(rd->text, len + 64);

		if (!t) {
			failf(rd, S_END, -ENOMEM, "out of memory");
			return NULL;
		}
		rd->text = t;
		rd->text_cap = len + 64;
	}
	memcpy(rd->text, s, len);
	rd->text[len] = '\0';
	if (memchr(s, '\0', len)) {
		failf(rd, rd->next, -EINVAL, "holds a NUL character");
		return NULL;
	}
	return rd->text;
}

/* Whether a value of this kind may go where the next one goes; stops the parse if not. */
static bool admit(struct reader *rd, enum kind kind, long long v)
{
	enum slot at = rd->next;
	bool ok = kind == slots[at].kind;

	if (ok && at == S_REVISION)
		ok = v >= 0;
	else if (ok && at == S_KEEPALIVE)
		ok = v >= 0 && v <= UINT16_MAX;
	if (!ok)
		failf(rd, at, -EINVAL, "%s", slots[at].not_a);
	return ok;
}

static int on_other(void *ctx)
{
	(void)admit(ctx, K_OTHER, 0);
	return 0;
}

static int on_bool(void *ctx, int v)
{
	(void)v;
	return on_other(ctx);
}

static int on_double(void *ctx, double v)
{
	(void)v;
	(void)admit(ctx, K_DOUBLE, 0);
	return 0;
}

static int on_integer(void *ctx, long long v)
{
	struct reader *rd = ctx;

	if (!admit(rd, K_INT, v))
		return 0;
	if (rd->next == S_REVISION) {
		rd->st.revision = (uint64_t)v;
	} else {
		rd->st.peers[rd->st.n_peers].persistent_keepalive = (uint16_t)v;
		rd->st.peers[rd->st.n_peers].flags |= WGF_PEER_HAS_KEEPALIVE;
	}
	return 1;
}

/* Checks a list's length before its element n is read. */
static bool room_for(struct reader *rd, size_t n, size_t max)
{
	if (n < max)
		return true;
	failf(rd, rd->in, -E2BIG, "more than %zu entries", max);
	return false;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	struct reader *rd = ctx;
	struct wgf_peer *p = rd->st.peers ? &rd->st.peers[rd->st.n_peers] : NULL;
	const char *text;
	struct wgf_cidr c;
	int r = 0;

	if (!admit(rd, K_STRING, 0) || !(text = take_text(rd, s, len)))
		return 0;
	switch (rd->next) {
	case S_EPOCH:
		r = parse_epoch(rd->st.epoch, text, len, rd->err);
		break;
	case S_KEY:
		r = parse_key(p->public_key, text, rd->err);
		break;
	case S_NET:
		if (!room_for(rd, rd->st.n_routable, CACHE_ROUTABLE_MAX))
			return 0;
		r = grow((void **)&rd->st.routable, rd->st.n_routable, &rd->routable_cap,
		         sizeof(c));
		if (r == 0)
			r = wgf_cidr_parse(&rd->st.routable[rd->st.n_routable], text, 0, rd->err);
		rd->st.n_routable += r == 0;
		break;
	case S_IP:
		if (!room_for(rd, p->n_allowed_ips, WGF_PEER_ALLOWED_IPS_MAX))
			return 0;
		r = wgf_cidr_parse(&c, text, 0, rd->err);
		if (r == 0 && wgf_peer_add_allowed_ip(&rd->st.ips, p, &c) < 0)
			r = wgf_err_set(rd->err, -ENOMEM, "out of memory");
		break;
	default: /* S_REMOVED */
		if (!room_for(rd, rd->n_removed, WGF_DEVICE_PEERS_MAX))
			return 0;
		r = grow((void **)&rd->removed, rd->n_removed, &rd->removed_cap,
		         sizeof(*rd->removed));
		if (r == 0)
			r = parse_key(rd->removed[rd->n_removed], text, rd->err);
		rd->n_removed += r == 0;
		break;
	}
	return r < 0 ? fail(rd, rd->next, r) : 1;
}

/* A list or an object opens where the next value goes. */
static int open_value(struct reader *rd, enum kind kind)
{
	static const enum slot element[] = {
	        [S_ROUTABLE] = S_NET, [S_PEERS] = S_PEER, [S_IPS] = S_IP, [S_REMOVE] = S_REMOVED};
	enum slot at = rd->next;

	if (!admit(rd, kind, 0))
		return 0;
	if (at == S_PEER) {
		if (!room_for(rd, rd->st.n_peers, WGF_DEVICE_PEERS_MAX))
			return 0;
		if (grow((void **)&rd->st.peers, rd->st.n_peers, &rd->peers_cap,
		         sizeof(*rd->st.peers)) < 0)
			return failf(rd, S_END, -ENOMEM, "out of memory");
		memset(&rd->st.peers[rd->st.n_peers], 0, sizeof(*rd->st.peers));
		rd->peer_seen = 0;
	}
	rd->in = at == S_TOP ? S_ROOT : at;
	rd->next = kind == K_LIST ? element[at] : S_END;
	return 1;
}

static int on_start_map(void *ctx)
{
	return open_value(ctx, K_MAP);
}

static int on_start_list(void *ctx)
{
	return open_value(ctx, K_LIST);
}

static int on_key(void *ctx, const unsigned char *s, size_t len)
{
	struct reader *rd = ctx;
	bool root = rd->in == S_ROOT;
	const struct field *f = root ? rd->root_fields : peer_fields;
	unsigned *seen = root ? &rd->root_seen : &rd->peer_seen;
	size_t i = 0;

	while (f[i].name && (strlen(f[i].name) != len || memcmp(f[i].name, s, len) != 0))
		i++;
	if (!f[i].name)
		return failf(rd, rd->in, -EINVAL, "unknown field '%.*s'",
		             (int)(len < 64 ? len : 64), (const char *)s);
	if (*seen & 1U << i)
		return failf(rd, rd->in, -EINVAL, "%s given twice", f[i].name);
	*seen |= 1U << i;
	rd->next = f[i].slot;
	return 1;
}

static int on_end_map(void *ctx)
{
	struct reader *rd = ctx;
	bool root = rd->in == S_ROOT;
	const struct field *f = root ? rd->root_fields : peer_fields;
	unsigned seen = root ? rd->root_seen : rd->peer_seen;

	for (size_t i = 0; f[i].name; i++)
		if (f[i].required && !(seen & 1U << i))
			return failf(rd, rd->in, -EINVAL, "%s is missing", f[i].name);
	if (root) {
		rd->in = rd->next = S_END;
		return 1;
	}
	rd->st.n_peers++;
	rd->in = S_PEERS;
	rd->next = S_PEER;
	return 1;
}

static int on_end_list(void *ctx)
{
	struct reader *rd = ctx;

	rd->in = rd->in == S_IPS ? S_PEER : S_ROOT;
	rd->next = S_END;
	return 1;
}

static const yajl_callbacks callbacks = {
        .yajl_null = on_other,
        .yajl_boolean = on_bool,
        .yajl_integer = on_integer,
        .yajl_double = on_double,
        .yajl_string = on_string,
        .yajl_start_map = on_start_map,
        .yajl_map_key = on_key,
        .yajl_end_map = on_end_map,
        .yajl_start_array = on_start_list,
        .yajl_end_array = on_end_list,
};

/* A reader of a whole set (record false) or of one journal record. -ENOMEM. */
static int reader_init(struct reader *rd, bool record, struct wgf_err *err)
{
	memset(rd, 0, sizeof(*rd));
	rd->root_fields = record ? record_fields : set_fields;
	rd->list = record ? "upsert" : "peers";
	rd->line = rd->column = 1;
	rd->err = err;
	rd->h = yajl_alloc(&callbacks, NULL, rd);
	return rd->h ? 0 : wgf_err_set(err, -ENOMEM, "out of memory");
}

static void reader_fini(struct reader *rd)
{
	if (rd->h)
		yajl_free(rd->h);
	cache_state_fini(&rd->st);
	free(rd->removed);
	free(rd->text);
	memset(rd, 0, sizeof(*rd));
}

/* Moves the line and column past n bytes of buf. */
static void advance(struct reader *rd, const unsigned char *buf, size_t n)
{
	const unsigned char *end, *nl;

	if (n == 0)
		return;
	end = buf + n;
	while ((nl = memchr(buf, '\n', (size_t)(end - buf)))) {
		rd->line++;
		rd->column = 1;
		buf = nl + 1;
	}
	rd->column += (size_t)(end - buf);
}

/* Feeds n more bytes of the text (n == 0: its end). name is for messages. */
static int reader_feed(struct reader *rd, const char *name, const void *buf, size_t n)
{
	yajl_status s = n ? yajl_parse(rd->h, buf, n) : yajl_complete_parse(rd->h);
	unsigned char *msg;
	size_t len;

	if (s == yajl_status_ok) {
		advance(rd, buf, n);
		return 0;
	}
	if (s == yajl_status_client_canceled) {
		wgf_err_prefix(rd->err, "%s: ", name);
		return rd->code;
	}
	/* yajl has consumed the token it refused: point at its last byte. */
	len = n ? yajl_get_bytes_consumed(rd->h) : 0;
	advance(rd, buf, len ? len - 1 : 0);
	msg = yajl_get_error(rd->h, 0, NULL, 0);
	len = msg ? strcspn((const char *)msg, "\n") : 0;
	wgf_err_set(rd->err, -EINVAL, "%s:%zu:%zu: %.*s", name, rd->line, rd->column, (int)len,
	            msg ? (const char *)msg : "");
	yajl_free_error(rd->h, msg);
	return -EINVAL;
}

/* The set read, moved to *ret with its peers array cut to size. */
static void reader_take_set(struct reader *rd, struct cache_state *ret)
{
	struct wgf_peer *fit = realloc(rd->st.peers, (rd->st.n_peers + 1) * sizeof(*fit));

	if (fit)
		rd->st.peers = fit;
	*ret = rd->st;
	memset(&rd->st, 0, sizeof(rd->st));
}

/* Reads a whole set from text. *ret is written only on success. */
static int parse_set(const char *name, const void *text, size_t len, FILE *f,
                     struct cache_state *ret, struct wgf_err *err)
{
	char buf[65536];
	struct reader rd;
	size_t n;
	int r = reader_init(&rd, false, err);

	if (r == 0 && len)
		r = reader_feed(&rd, name, text, len);
	while (r == 0 && f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		r = reader_feed(&rd, name, buf, n);
	if (r == 0 && f && ferror(f))
		r = sys_error(name, "read", err);
	if (r == 0)
		r = reader_feed(&rd, name, NULL, 0);
	if (r == 0)
		reader_take_set(&rd, ret);
	reader_fini(&rd);
	return r;
}

int cache_parse(const char *name, const char *text, size_t len, struct cache_state *ret,
                struct wgf_err *err)
{
	if (len > CACHE_FILE_MAX)
		return wgf_err_set(err, -EFBIG, "%s: larger than %zu bytes", name, CACHE_FILE_MAX);
	return parse_set(name, text, len, NULL, ret, err);
}

/*
 * path as a stream, after the checks of wgf_fs_open_checked(): it decides which peers
 * this server admits, so nobody else may change it.
 */
static int open_owned(const char *path, size_t max, FILE **ret, struct wgf_err *err)
{
	FILE *f;
	int fd, r;

	r = wgf_fs_open_checked(path, max, 022, &fd, NULL, err);
	if (r < 0)
		return r;
	f = fdopen(fd, "r");
	if (!f) {
		r = sys_error(path, "open", err);
		close(fd);
		return r;
	}
	*ret = f;
	return 0;
}

int cache_load(const char *path, struct cache_state *ret, struct wgf_err *err)
{
	FILE *f;
	int r = open_owned(path, CACHE_FILE_MAX, &f, err);

	if (r < 0)
		return r;
	r = parse_set(path, NULL, 0, f, ret, err);
	fclose(f);
	return r;
}

struct out {
	char *buf;
	size_t len, cap;
};

static int out_reserve(struct out *o, size_t more)
{
	char *b;
	size_t cap;

	if (o->len + more + 1 <= o->cap)
		return 0;
	cap = o->cap ? o->cap : 4096;
	while (cap < o->len + more + 1)
		cap *= 2;
	b = realloc(o->buf, cap);
	if (!b)
		return -ENOMEM;
	o->buf = b;
	o->cap = cap;
	return 0;
}

static int out_text(struct out *o, const char *s, size_t n)
{
	if (out_reserve(o, n) < 0)
		return -ENOMEM;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
	return 0;
}

/* Appends printf-style text. */
static int out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int out_printf(struct out *o, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	return out_text(o, buf, (size_t)n);
}

/* "10.0.0.2/32","fd00::2/128": a list's quoted networks, comma-separated. */
static int out_cidrs(struct out *o, const struct wgf_cidr *cidrs, size_t n)
{
	char cidr[WGF_CIDR_STRLEN];
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		wgf_cidr_format(&cidrs[i], cidr);
		r = i ? out_text(o, ",\"", 2) : out_text(o, "\"", 1);
		if (r == 0)
			r = out_text(o, cidr, strlen(cidr));
		if (r == 0)
			r = out_text(o, "\"", 1);
	}
	return r;
}

/*
 * One peer, byte for byte as jansson's compact encoding of {"public_key": ...,
 * "allowed_ips": [...], "persistent_keepalive": N} was. It is written directly because
 * building and dumping jansson values for every peer took a third of the agent's CPU
 * per change on a large interface (docs/BENCHMARKS.md, item 2). Nothing here needs
 * escaping: base64, CIDR text and a number.
 */
static int out_peer(struct out *o, const struct wgf_peer *p)
{
	char key[WGF_KEY_B64_LEN];
	int r;

	wgf_key_to_base64(key, p->public_key);
	r = out_text(o, "{\"public_key\":\"", 15);
	if (r == 0)
		r = out_text(o, key, strlen(key));
	if (r == 0)
		r = out_text(o, "\",\"allowed_ips\":[", 17);
	if (r == 0)
		r = out_cidrs(o, p->allowed_ips, p->n_allowed_ips);
	if (r == 0)
		r = out_printf(o, "],\"persistent_keepalive\":%u}",
		               (unsigned)p->persistent_keepalive);
	return r;
}

/* ,"epoch":"<hex>" when there is one, then ,"routable":[...] when there are any. */
static int out_epoch_and_routable(struct out *o, const struct cache_state *st)
{
	static const char hex[] = "0123456789abcdef";
	char buf[2 * CACHE_EPOCH_LEN];
	int r = 0;

	if (cache_state_has_epoch(st)) {
		for (size_t i = 0; i < CACHE_EPOCH_LEN; i++) {
			buf[2 * i] = hex[st->epoch[i] >> 4];
			buf[2 * i + 1] = hex[st->epoch[i] & 0xf];
		}
		r = out_text(o, ",\"epoch\":\"", 10);
		if (r == 0)
			r = out_text(o, buf, sizeof(buf));
		if (r == 0)
			r = out_text(o, "\"", 1);
	}
	if (r < 0 || st->n_routable == 0)
		return r;
	r = out_text(o, ",\"routable\":[", 13);
	if (r == 0)
		r = out_cidrs(o, st->routable, st->n_routable);
	if (r == 0)
		r = out_text(o, "]", 1);
	return r;
}

int cache_format(const struct cache_state *st, char **ret, size_t *ret_len)
{
	struct out o = {0};
	int r;

	/* The revision is written as jansson wrote it: a json_int_t, signed. */
	r = out_printf(&o, "{\"revision\":%lld", (long long)(int64_t)st->revision);
	if (r == 0)
		r = out_epoch_and_routable(&o, st);
	if (r == 0)
		r = out_text(&o, ",\"peers\":[", 10);
	for (size_t i = 0; i < st->n_peers && r == 0; i++) {
		r = out_text(&o, i ? ",\n" : "\n", i ? 2 : 1);
		if (r == 0)
			r = out_peer(&o, &st->peers[i]);
	}
	if (r == 0)
		r = out_text(&o, "\n]}\n", 4);
	if (r < 0) {
		free(o.buf);
		return r;
	}
	*ret = o.buf;
	*ret_len = o.len;
	return 0;
}

int cache_save(const char *path, const struct cache_state *st, struct wgf_err *err)
{
	size_t len = 0;
	char *text = NULL;
	int r;

	r = cache_format(st, &text, &len);
	if (r < 0)
		return wgf_err_set(err, r, "%s: out of memory", path);
	r = wgf_fs_write_atomic(path, text, len, 0600, err);
	free(text);
	return r;
}

/* name in the directory of path. */
static int sibling_path(const char *path, const char *name, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');
	int n = slash ? (int)(slash - path) + 1 : 0;

	if ((size_t)snprintf(buf, size, "%.*s%s", n, path, name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int applied_path(const char *path, char *buf, size_t size)
{
	return sibling_path(path, CACHE_APPLIED_FILE, buf, size);
}

int cache_mark_applied(const char *path, const struct cache_state *st, struct wgf_err *err)
{
	struct cache_state mark = {.revision = st->revision};
	char buf[PATH_MAX];

	if (applied_path(path, buf, sizeof(buf)) < 0)
		return wgf_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
	memcpy(mark.epoch, st->epoch, CACHE_EPOCH_LEN);
	return cache_save(buf, &mark, err);
}

bool cache_is_applied(const char *path, const struct cache_state *st)
{
	struct cache_state mark = {0};
	struct wgf_err err = {0};
	char buf[PATH_MAX];
	bool same;

	if (applied_path(path, buf, sizeof(buf)) < 0 || cache_load(buf, &mark, &err) < 0)
		return false;
	same = mark.n_peers == 0 && mark.revision == st->revision &&
	       memcmp(mark.epoch, st->epoch, CACHE_EPOCH_LEN) == 0;
	cache_state_fini(&mark);
	return same;
}

int cache_save_desired(const char *path, const struct cache_state *st, struct wgf_err *err)
{
	char jp[PATH_MAX];

	if (sibling_path(path, CACHE_JOURNAL_FILE, jp, sizeof(jp)) < 0)
		return wgf_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
	/*
	 * The journal goes first: a crash before the new set is in place then restarts
	 * from an older set (which the coordinator corrects), never from the new set with
	 * records of another one replayed over it. The directory fsync of the atomic write
	 * makes the removal durable along with the new file.
	 */
	if (unlink(jp) < 0 && errno != ENOENT)
		return sys_error(jp, "remove", err);
	return cache_save(path, st, err);
}

/* One journal record: st's header, the changed peers, the removed keys, a newline. */
static int format_record(struct out *o, const struct cache_state *st,
                         const uint8_t (*keys)[WGF_KEY_LEN], size_t n)
{
	char b64[WGF_KEY_B64_LEN];
	bool first = true;
	int r;

	r = out_printf(o, "{\"revision\":%lld", (long long)(int64_t)st->revision);
	if (r == 0)
		r = out_epoch_and_routable(o, st);
	if (r == 0)
		r = out_text(o, ",\"upsert\":[", 11);
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct wgf_peer *p =
		        bsearch(keys[i], st->peers, st->n_peers, sizeof(*p), cmp_key_peer);

		if (!p)
			continue;
		r = first ? 0 : out_text(o, ",", 1);
		if (r == 0)
			r = out_peer(o, p);
		first = false;
	}
	if (r == 0)
		r = out_text(o, "],\"remove\":[", 12);
	first = true;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (bsearch(keys[i], st->peers, st->n_peers, sizeof(*st->peers), cmp_key_peer))
			continue;
		wgf_key_to_base64(b64, keys[i]);
		r = out_text(o, first ? "\"" : ",\"", first ? 1 : 2);
		if (r == 0)
			r = out_text(o, b64, strlen(b64));
		if (r == 0)
			r = out_text(o, "\"", 1);
		first = false;
	}
	return r == 0 ? out_text(o, "]}\n", 3) : r;
}

/*
 * A record cut short by a crash mid-append goes, so that the next one starts a line of
 * its own (the loader stops at the first bad line). size > 0 is the file's size.
 */
static int cut_torn(int fd, off_t size)
{
	char buf[4096];
	off_t end = size;

	while (end > 0) {
		size_t n = end < (off_t)sizeof(buf) ? (size_t)end : sizeof(buf);
		ssize_t got = pread(fd, buf, n, end - (off_t)n);

		if (got != (ssize_t)n)
			return got < 0 ? -errno : -EIO;
		if (end == size && buf[n - 1] == '\n')
			return 0;
		for (size_t i = n; i > 0; i--)
			if (buf[i - 1] == '\n')
				return ftruncate(fd, end - (off_t)n + (off_t)i) < 0 ? -errno : 0;
		end -= (off_t)n;
	}
	return ftruncate(fd, 0) < 0 ? -errno : 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	int fd;

	if (sibling_path(path, ".", dir, sizeof(dir)) < 0)
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int cache_journal_append(const char *path, const struct cache_state *st,
                         const uint8_t (*keys)[WGF_KEY_LEN], size_t n, size_t *ret_size,
                         struct wgf_err *err)
{
	char jp[PATH_MAX];
	struct out o = {0};
	struct stat sb;
	int fd, r;

	if (sibling_path(path, CACHE_JOURNAL_FILE, jp, sizeof(jp)) < 0)
		return wgf_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
	if (format_record(&o, st, keys, n) < 0) {
		free(o.buf);
		return wgf_err_set(err, -ENOMEM, "%s: out of memory", jp);
	}
	fd = open(jp, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		r = sys_error(jp, "open", err);
		goto out;
	}
	if (fstat(fd, &sb) < 0) {
		r = sys_error(jp, "stat", err);
		goto close;
	}
	/* The loader would refuse it; the whole write that follows a failed append removes it. */
	r = wgf_fs_check_owner(jp, &sb, 022, err);
	if (r < 0)
		goto close;
	if (sb.st_size > 0)
		r = cut_torn(fd, sb.st_size);
	if (r == 0)
		r = write_all(fd, o.buf, o.len);
	/*
	 * fdatasync: the record and the file's new size are on disk before this returns,
	 * which is before the interface changes, so a crash from here on restarts from a
	 * set that has this batch. A new journal's name is made durable in its directory.
	 */
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (r == 0 && sb.st_size == 0)
		fsync_dir(path);
	if (r == 0 && fstat(fd, &sb) < 0)
		r = -errno;
	if (r < 0)
		wgf_err_set(err, r, "%s: cannot append: %s", jp, wgf_strerror(r));
	else if (ret_size)
		*ret_size = (size_t)sb.st_size;
close:
	close(fd);
out:
	free(o.buf);
	return r;
}

/* The record rd read, as deltas in r (zeroed): its upserts, then its removals. -ENOMEM. */
static int take_record(struct reader *rd, struct wgf_sync_reply *r)
{
	size_t n_up = rd->st.n_peers;

	memset(r, 0, sizeof(*r));
	r->changes = calloc(n_up + rd->n_removed + 1, sizeof(*r->changes));
	if (!r->changes)
		return -ENOMEM;
	for (size_t i = 0; i < n_up; i++) {
		r->changes[i].op = WGF_CHANGE_UPSERT;
		r->changes[i].peer = rd->st.peers[i];
	}
	for (size_t i = 0; i < rd->n_removed; i++) {
		r->changes[n_up + i].op = WGF_CHANGE_REMOVE;
		memcpy(r->changes[n_up + i].peer.public_key, rd->removed[i], WGF_KEY_LEN);
	}
	r->n_changes = n_up + rd->n_removed;
	r->revision = rd->st.revision;
	memcpy(r->epoch, rd->st.epoch, CACHE_EPOCH_LEN);
	r->routable = rd->st.routable;
	r->n_routable = rd->st.n_routable;
	r->ips = rd->st.ips; /* moved: the upserts' networks */
	rd->st.routable = NULL;
	rd->st.n_routable = 0;
	memset(&rd->st.ips, 0, sizeof(rd->st.ips));
	return 0;
}

static void record_fini(struct wgf_sync_reply *r)
{
	free(r->changes);
	free(r->routable);
	wgf_ip_pool_fini(&r->ips);
	memset(r, 0, sizeof(*r));
}

/* Replays the journal's lines onto st until one is cut short, bad, or cannot be applied. */
static size_t replay(FILE *f, struct cache_state *st)
{
	size_t cap = 0, n = 0;
	char *line = NULL;
	ssize_t len;

	while ((len = getline(&line, &cap, f)) > 0 && line[len - 1] == '\n') {
		struct wgf_sync_reply r = {0};
		struct reader rd;
		int e = reader_init(&rd, true, NULL);

		if (e == 0 && len > 1)
			e = reader_feed(&rd, "", line, (size_t)len - 1);
		if (e == 0)
			e = reader_feed(&rd, "", NULL, 0);
		if (e == 0)
			e = take_record(&rd, &r);
		reader_fini(&rd);
		if (e == 0 && memcmp(r.epoch, st->epoch, CACHE_EPOCH_LEN) == 0 &&
		    r.revision > st->revision) {
			e = cache_state_apply(st, &r);
			n += e == 0;
		}
		record_fini(&r);
		if (e < 0)
			break;
	}
	free(line);
	return n;
}

int cache_load_desired(const char *path, struct cache_state *ret, size_t *ret_records,
                       struct wgf_err *err)
{
	char jp[PATH_MAX];
	size_t n = 0;
	FILE *f = NULL;
	int r = cache_load(path, ret, err);

	if (r < 0)
		return r;
	if (sibling_path(path, CACHE_JOURNAL_FILE, jp, sizeof(jp)) < 0)
		r = wgf_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
	else
		r = open_owned(jp, CACHE_JOURNAL_MAX, &f, err);
	if (r == -ENOENT)
		r = 0;
	if (r < 0) {
		cache_state_fini(ret);
		return r;
	}
	if (f) {
		n = replay(f, ret);
		fclose(f);
	}
	if (ret_records)
		*ret_records = n;
	return 0;
}

int cache_state_set_routable(struct cache_state *st, const struct wgf_cidr *nets, size_t n)
{
	struct wgf_cidr *copy = NULL;

	if (n > CACHE_ROUTABLE_MAX)
		return -E2BIG;
	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, nets, n * sizeof(*copy));
	}
	free(st->routable);
	st->routable = copy;
	st->n_routable = n;
	return 0;
}

#define PEER_F_GONE (1U << 17) /* a peer of a set being changed: removed */

/* The first of the n sorted peers whose key is not below key. */
static size_t lower_bound(const struct wgf_peer *peers, size_t n, const uint8_t *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(peers[mid].public_key, key, WGF_KEY_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* One change; new keys go to the sorted tail. Nothing here can fail (see reserve). */
static void apply_one(struct cache_state *st, struct wgf_peer *tail, size_t *t, size_t *n_gone,
                      const struct wgf_change *c)
{
	const uint8_t *key = c->peer.public_key;
	struct wgf_peer *p = bsearch(key, st->peers, st->n_peers, sizeof(*p), cmp_key_peer);
	size_t at;

	if (p && c->op == WGF_CHANGE_REMOVE) {
		*n_gone += !(p->flags & PEER_F_GONE);
		p->flags |= PEER_F_GONE;
		return;
	}
	if (p) {
		*n_gone -= !!(p->flags & PEER_F_GONE);
		*p = c->peer;
		(void)wgf_ip_pool_take(&st->ips, p);
		return;
	}
	at = lower_bound(tail, *t, key);
	p = &tail[at];
	if (at < *t && memcmp(p->public_key, key, WGF_KEY_LEN) == 0) {
		if (c->op == WGF_CHANGE_REMOVE) {
			memmove(p, p + 1, (--*t - at) * sizeof(*p));
			return;
		}
	} else if (c->op == WGF_CHANGE_REMOVE) {
		return;
	} else {
		memmove(p + 1, p, (*t - at) * sizeof(*p));
		++*t;
	}
	*p = c->peer;
	(void)wgf_ip_pool_take(&st->ips, p);
}

/* Drops the removed peers, then merges the sorted tail in from the back. */
static void merge_tail(struct cache_state *st, const struct wgf_peer *tail, size_t t, size_t n_gone)
{
	size_t n = st->n_peers, w = 0;

	if (n_gone) {
		for (size_t i = 0; i < n; i++)
			if (!(st->peers[i].flags & PEER_F_GONE))
				st->peers[w++] = st->peers[i];
		n = w;
	}
	st->n_peers = n + t;
	for (size_t i = n, j = t, at = n + t; j > 0;) {
		if (i > 0 &&
		    memcmp(st->peers[i - 1].public_key, tail[j - 1].public_key, WGF_KEY_LEN) > 0)
			st->peers[--at] = st->peers[--i];
		else
			st->peers[--at] = tail[--j];
	}
}

/*
 * A set changed by many deltas leaves the networks of replaced and removed peers in its
 * pool: once they are most of it, the live ones move to a fresh pool. Skipped (the waste
 * kept) if memory is short.
 */
static void compact_ips(struct cache_state *st)
{
	struct wgf_ip_pool fresh = {0};
	size_t live = 0;

	if (st->ips.n_used < 2 * st->n_peers + 4096)
		return;
	for (size_t i = 0; i < st->n_peers; i++)
		live += st->peers[i].n_allowed_ips;
	if (st->ips.n_used < 2 * live + 4096 || wgf_ip_pool_reserve(&fresh, live) < 0)
		return;
	for (size_t i = 0; i < st->n_peers; i++)
		(void)wgf_ip_pool_take(&fresh, &st->peers[i]); /* reserved */
	wgf_ip_pool_fini(&st->ips);
	st->ips = fresh;
}

bool cache_state_follows(const struct cache_state *st, const struct wgf_sync_reply *r)
{
	if (memcmp(r->epoch, st->epoch, CACHE_EPOCH_LEN) != 0)
		return false;
	return r->n_changes ? r->changes[0].revision == st->revision + 1
	                    : r->revision == st->revision;
}

int cache_state_apply(struct cache_state *st, const struct wgf_sync_reply *r)
{
	size_t n_upserts = 0, n_new = 0, n_ips = 0, t = 0, n_gone = 0;
	struct wgf_cidr *routable = NULL;
	struct wgf_peer *tail, *grown;

	for (size_t i = 0; i < r->n_changes; i++) {
		const uint8_t *key = r->changes[i].peer.public_key;

		if (r->changes[i].op == WGF_CHANGE_REMOVE)
			continue;
		n_upserts++;
		n_ips += r->changes[i].peer.n_allowed_ips;
		/* An update of a full set keeps it within the bound; only new keys count. */
		n_new += st->n_peers == 0 ||
		         !bsearch(key, st->peers, st->n_peers, sizeof(*st->peers), cmp_key_peer);
	}
	if (st->n_peers + n_new > WGF_DEVICE_PEERS_MAX)
		return -E2BIG;
	/* Everything that can fail comes first, so a failure changes nothing. */
	tail = malloc((n_upserts + 1) * sizeof(*tail));
	routable = malloc((r->n_routable + 1) * sizeof(*routable));
	grown = reallocarray(st->peers, st->n_peers + n_upserts + 1, sizeof(*grown));
	if (grown)
		st->peers = grown;
	if (!tail || !routable || !grown || wgf_ip_pool_reserve(&st->ips, n_ips) < 0) {
		free(tail);
		free(routable);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->n_changes; i++)
		apply_one(st, tail, &t, &n_gone, &r->changes[i]);
	if (t || n_gone)
		merge_tail(st, tail, t, n_gone);
	free(tail);
	if (r->n_routable)
		memcpy(routable, r->routable, r->n_routable * sizeof(*routable));
	free(st->routable);
	st->routable = routable;
	st->n_routable = r->n_routable;
	st->revision = r->revision;
	memcpy(st->epoch, r->epoch, CACHE_EPOCH_LEN);
	compact_ips(st);
	return 0;
}

bool cache_state_has_epoch(const struct cache_state *st)
{
	static const uint8_t none[CACHE_EPOCH_LEN];

	return memcmp(st->epoch, none, CACHE_EPOCH_LEN) != 0;
}

void cache_state_fini(struct cache_state *st)
{
	free(st->peers);
	wgf_ip_pool_fini(&st->ips);
	free(st->routable);
	memset(st, 0, sizeof(*st));
}
