/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* cache: read and write the desired-state JSON file through jansson. */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

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

static int parse_allowed_ips(struct wgf_ip_pool *pool, struct wgf_peer *p, json_t *ips, size_t i,
                             struct wgf_err *err)
{
	size_t n = json_array_size(ips);

	if (!json_is_array(ips))
		return wgf_err_set(err, -EINVAL, "peers[%zu].allowed_ips: not a list", i);
	if (n > WGF_PEER_ALLOWED_IPS_MAX)
		return wgf_err_set(err, -E2BIG, "peers[%zu].allowed_ips: %zu entries; at most %d",
		                   i, n, WGF_PEER_ALLOWED_IPS_MAX);
	for (size_t k = 0; k < n; k++) {
		json_t *s = json_array_get(ips, k);
		struct wgf_cidr c;
		int r;

		if (!json_is_string(s))
			return wgf_err_set(err, -EINVAL,
			                   "peers[%zu].allowed_ips[%zu]: not a string", i, k);
		r = wgf_cidr_parse(&c, json_string_value(s), 0, err);
		if (r < 0) {
			wgf_err_prefix(err, "peers[%zu].allowed_ips[%zu]: ", i, k);
			return r;
		}
		if (wgf_peer_add_allowed_ip(pool, p, &c) < 0) /* bounded above */
			return wgf_err_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_peer(struct wgf_ip_pool *pool, struct wgf_peer *p, json_t *obj, size_t i,
                      struct wgf_err *err)
{
	json_t *key = NULL, *ips = NULL, *keepalive = NULL, *v;
	const char *name;
	int r;

	if (!json_is_object(obj))
		return wgf_err_set(err, -EINVAL, "peers[%zu]: not an object", i);
	json_object_foreach(obj, name, v)
	{
		if (strcmp(name, "public_key") == 0)
			key = v;
		else if (strcmp(name, "allowed_ips") == 0)
			ips = v;
		else if (strcmp(name, "persistent_keepalive") == 0)
			keepalive = v;
		else
			return wgf_err_set(err, -EINVAL, "peers[%zu]: unknown field '%s'", i, name);
	}
	if (!key)
		return wgf_err_set(err, -EINVAL, "peers[%zu]: public_key is missing", i);
	if (!json_is_string(key))
		return wgf_err_set(err, -EINVAL, "peers[%zu].public_key: not a string", i);
	r = parse_key(p->public_key, json_string_value(key), err);
	if (r < 0) {
		wgf_err_prefix(err, "peers[%zu].public_key: ", i);
		return r;
	}
	if (!ips)
		return wgf_err_set(err, -EINVAL, "peers[%zu]: allowed_ips is missing", i);
	r = parse_allowed_ips(pool, p, ips, i, err);
	if (r < 0)
		return r;
	if (keepalive) {
		if (!json_is_integer(keepalive) || json_integer_value(keepalive) < 0 ||
		    json_integer_value(keepalive) > UINT16_MAX)
			return wgf_err_set(err, -EINVAL,
			                   "peers[%zu].persistent_keepalive: not a whole number of "
			                   "seconds from 0 to 65535",
			                   i);
		p->persistent_keepalive = (uint16_t)json_integer_value(keepalive);
		p->flags |= WGF_PEER_HAS_KEEPALIVE;
	}
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int parse_epoch(uint8_t ret[static CACHE_EPOCH_LEN], json_t *v, struct wgf_err *err)
{
	const char *s = json_string_value(v);

	if (!s || json_string_length(v) != 2 * CACHE_EPOCH_LEN)
		return wgf_err_set(err, -EINVAL, "epoch: not %d lower-case hex digits",
		                   2 * CACHE_EPOCH_LEN);
	for (size_t i = 0; i < CACHE_EPOCH_LEN; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return wgf_err_set(err, -EINVAL, "epoch: not %d lower-case hex digits",
			                   2 * CACHE_EPOCH_LEN);
		ret[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int parse_routable(struct cache_state *st, json_t *list, struct wgf_err *err)
{
	size_t n = json_array_size(list);

	if (!json_is_array(list))
		return wgf_err_set(err, -EINVAL, "routable: not a list");
	if (n > CACHE_ROUTABLE_MAX)
		return wgf_err_set(err, -E2BIG, "routable: %zu entries; at most %d", n,
		                   CACHE_ROUTABLE_MAX);
	if (n == 0)
		return 0;
	st->routable = calloc(n, sizeof(*st->routable));
	if (!st->routable)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	for (size_t k = 0; k < n; k++) {
		json_t *s = json_array_get(list, k);
		int r;

		if (!json_is_string(s))
			return wgf_err_set(err, -EINVAL, "routable[%zu]: not a string", k);
		r = wgf_cidr_parse(&st->routable[k], json_string_value(s), 0, err);
		if (r < 0) {
			wgf_err_prefix(err, "routable[%zu]: ", k);
			return r;
		}
		st->n_routable++;
	}
	return 0;
}

static int parse_root(json_t *root, struct cache_state *st, struct wgf_err *err)
{
	json_t *revision = NULL, *epoch = NULL, *routable = NULL, *peers = NULL, *v;
	const char *name;
	size_t n;
	int r;

	if (!json_is_object(root))
		return wgf_err_set(err, -EINVAL, "not a JSON object");
	json_object_foreach(root, name, v)
	{
		if (strcmp(name, "revision") == 0)
			revision = v;
		else if (strcmp(name, "epoch") == 0)
			epoch = v;
		else if (strcmp(name, "routable") == 0)
			routable = v;
		else if (strcmp(name, "peers") == 0)
			peers = v;
		else
			return wgf_err_set(err, -EINVAL, "unknown field '%s'", name);
	}
	if (!revision)
		return wgf_err_set(err, -EINVAL, "revision is missing");
	if (!json_is_integer(revision) || json_integer_value(revision) < 0)
		return wgf_err_set(err, -EINVAL, "revision: not a whole number from 0 up");
	st->revision = (uint64_t)json_integer_value(revision);
	r = epoch ? parse_epoch(st->epoch, epoch, err) : 0;
	if (r == 0 && routable)
		r = parse_routable(st, routable, err);
	if (r < 0)
		return r;
	if (!peers)
		return wgf_err_set(err, -EINVAL, "peers is missing");
	if (!json_is_array(peers))
		return wgf_err_set(err, -EINVAL, "peers: not a list");
	n = json_array_size(peers);
	if (n > WGF_DEVICE_PEERS_MAX)
		return wgf_err_set(err, -E2BIG, "peers: %zu entries; at most %d", n,
		                   WGF_DEVICE_PEERS_MAX);
	st->peers = calloc(n ? n : 1, sizeof(*st->peers));
	if (!st->peers)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		r = parse_peer(&st->ips, &st->peers[i], json_array_get(peers, i), i, err);
		if (r < 0)
			return r;
		st->n_peers++;
		/*
		 * Each peer's subtree goes as soon as it is read, and the pages it held are
		 * handed back every 1,024 peers: otherwise the whole tree (about 700 bytes a
		 * peer in jansson) and the whole array (300) would be resident at once, which
		 * is the agent's peak with 10,000 peers.
		 */
		json_array_set_new(peers, i, json_null());
		if (i % 1024 == 1023)
			(void)malloc_trim(0);
	}
	return 0;
}

/* Turns jansson's result (root may be NULL) into a state; takes the reference to root. */
static int from_json(const char *name, json_t *root, const json_error_t *jerr,
                     struct cache_state *ret, struct wgf_err *err)
{
	struct cache_state st = {0};
	int r;

	if (!root)
		return wgf_err_set(err, -EINVAL, "%s:%d:%d: %s", name, jerr->line, jerr->column,
		                   jerr->text);
	r = parse_root(root, &st, err);
	json_decref(root);
	if (r < 0) {
		wgf_err_prefix(err, "%s: ", name);
		cache_state_fini(&st);
		return r;
	}
	*ret = st;
	return 0;
}

static int sys_error(const char *path, const char *what, struct wgf_err *err)
{
	int r = -errno;

	return wgf_err_set(err, r, "%s: cannot %s: %s", path, what, wgf_strerror(r));
}

#define HEADER_TAIL "\"peers\":["

/* Lines left in f from where it is; f is put back there. -errno. */
static int count_lines(FILE *f, size_t *ret)
{
	long at = ftell(f);
	char buf[16384];
	size_t n = 0, got;

	if (at < 0)
		return -errno;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
		for (const char *c = buf; (c = memchr(c, '\n', got - (size_t)(c - buf))); c++)
			n++;
	if (ferror(f) || fseek(f, at, SEEK_SET) < 0)
		return -EIO;
	*ret = n + 1;
	return 0;
}

/* One line of f without its newline, in *line (getline's buffer); -ENODATA at the end. */
static int next_line(FILE *f, char **line, size_t *cap, size_t *ret_len)
{
	ssize_t n = getline(line, cap, f);

	if (n < 0)
		return ferror(f) ? -EIO : -ENODATA;
	if (n > 0 && (*line)[n - 1] == '\n')
		(*line)[--n] = '\0';
	*ret_len = (size_t)n;
	return 0;
}

/* The first line, "{...,"peers":[", as a whole object with no peers. 1: not that layout. */
static int read_header(const char *name, char *line, size_t len, struct cache_state *st,
                       struct wgf_err *err)
{
	size_t tail = strlen(HEADER_TAIL);
	json_error_t jerr;
	json_t *root;
	char *text;
	int r;

	if (len < tail || memcmp(line + len - tail, HEADER_TAIL, tail) != 0)
		return 1;
	text = malloc(len + 3);
	if (!text)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	memcpy(text, line, len);
	memcpy(text + len, "]}", 3);
	root = json_loadb(text, len + 2, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!root)
		return 1;
	r = from_json(name, root, &jerr, st, err);
	return r;
}

/*
 * One peer line: "{...}," or, for the last peer, "{...}". *ret_last says which. 1: not a
 * line of that layout (jansson refused it); the whole file is then read as one document.
 */
static int read_peer_line(struct cache_state *st, char *line, size_t len, bool *ret_last,
                          struct wgf_err *err)
{
	json_error_t jerr;
	json_t *obj;
	int r;

	*ret_last = len == 0 || line[len - 1] != ',';
	obj = json_loadb(line, *ret_last ? len : len - 1, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj)
		return 1;
	r = parse_peer(&st->ips, &st->peers[st->n_peers], obj, st->n_peers, err);
	json_decref(obj);
	if (r == 0)
		st->n_peers++;
	return r;
}

/*
 * Reads f in the layout cache_format() writes: the header alone on the first line, one
 * peer a line, "]}" alone on the last. Each line is parsed by itself, so the whole set is
 * never one JSON tree (which costs about 700 bytes a peer). 0 with *ret filled; 1 when f
 * is laid out some other way (then f is where it was, and nothing is kept); <0 with err.
 */
static int load_lines(FILE *f, const char *name, struct cache_state *ret, struct wgf_err *err)
{
	struct cache_state st = {0};
	size_t n_lines = 0, cap = 0, len = 0;
	bool last = false, closed = false;
	char *line = NULL;
	int r;

	r = count_lines(f, &n_lines);
	if (r < 0)
		return wgf_err_set(err, r, "%s: cannot read: %s", name, wgf_strerror(r));
	r = next_line(f, &line, &cap, &len);
	if (r == 0)
		r = read_header(name, line, len, &st, err);
	if (r != 0)
		goto out;
	if (n_lines > WGF_DEVICE_PEERS_MAX + 3) {
		r = 1; /* more lines than a set may have peers: let the whole read say so */
		goto out;
	}
	free(st.peers);
	st.peers = calloc(n_lines, sizeof(*st.peers));
	if (!st.peers) {
		r = wgf_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	while (r == 0 && (r = next_line(f, &line, &cap, &len)) == 0) {
		if (closed)
			r = len == 0 ? 0 : 1; /* nothing but the final newline after "]}" */
		else if (len == 2 && memcmp(line, "]}", 2) == 0 && (last || st.n_peers == 0))
			closed = true;
		else if (last || st.n_peers >= WGF_DEVICE_PEERS_MAX)
			r = 1;
		else
			r = read_peer_line(&st, line, len, &last, err);
	}
	if (r == -ENODATA)
		r = closed ? 0 : 1;
	if (r < 0 && r != -EIO)
		wgf_err_prefix(err, "%s: ", name);
	else if (r == -EIO)
		wgf_err_set(err, r, "%s: cannot read: %s", name, wgf_strerror(r));
out:
	free(line);
	if (r != 0) {
		cache_state_fini(&st);
		if (r == 1 && fseek(f, 0, SEEK_SET) < 0)
			r = wgf_err_set(err, -EIO, "%s: cannot read: %s", name, wgf_strerror(-EIO));
		return r;
	}
	*ret = st;
	return 0;
}

/* f from its start: line by line when it has the layout we write, else whole. */
static int load_file(FILE *f, const char *name, struct cache_state *ret, struct wgf_err *err)
{
	json_error_t jerr;
	int r = load_lines(f, name, ret, err);

	if (r != 1)
		return r;
	return from_json(name, json_loadf(f, JSON_REJECT_DUPLICATES, &jerr), &jerr, ret, err);
}

int cache_parse(const char *name, const char *text, size_t len, struct cache_state *ret,
                struct wgf_err *err)
{
	json_error_t jerr;
	FILE *f;
	int r;

	if (len > CACHE_FILE_MAX)
		return wgf_err_set(err, -EFBIG, "%s: larger than %zu bytes", name, CACHE_FILE_MAX);
	if (len == 0)
		return from_json(name, json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), &jerr,
		                 ret, err);
	f = fmemopen((void *)text, len, "r");
	if (!f)
		return sys_error(name, "read", err);
	r = load_file(f, name, ret, err);
	fclose(f);
	return r;
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
	r = load_file(f, path, ret, err);
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

/* "remove": ["<base64>", ...] as changes at r->changes + r->n_changes. */
static int parse_removals(struct wgf_sync_reply *r, json_t *list, struct wgf_err *err)
{
	size_t k;
	json_t *v;

	json_array_foreach(list, k, v)
	{
		struct wgf_change *c = &r->changes[r->n_changes];

		memset(c, 0, sizeof(*c));
		c->op = WGF_CHANGE_REMOVE;
		if (!json_is_string(v) || parse_key(c->peer.public_key, json_string_value(v), err))
			return wgf_err_set(err, -EINVAL, "remove[%zu]: not a key", k);
		r->n_changes++;
	}
	return 0;
}

/* A journal line as deltas (revision, epoch, routable, changes), in r (zeroed first). */
static int parse_record(json_t *obj, struct wgf_sync_reply *r, struct wgf_err *err)
{
	json_t *rev = json_object_get(obj, "revision"), *epoch = json_object_get(obj, "epoch");
	json_t *routable = json_object_get(obj, "routable"), *up = json_object_get(obj, "upsert");
	json_t *rm = json_object_get(obj, "remove");
	struct cache_state nets = {0};
	size_t k;
	json_t *v;
	int e;

	if (!json_is_integer(rev) || json_integer_value(rev) < 0 || !json_is_array(up) ||
	    !json_is_array(rm) || json_object_size(obj) != 3u + !!epoch + !!routable)
		return wgf_err_set(err, -EINVAL, "not a journal record");
	r->revision = (uint64_t)json_integer_value(rev);
	e = epoch ? parse_epoch(r->epoch, epoch, err) : 0;
	if (e == 0 && routable)
		e = parse_routable(&nets, routable, err);
	r->routable = nets.routable;
	r->n_routable = nets.n_routable;
	if (e < 0)
		return e;
	if (json_array_size(up) + json_array_size(rm) > WGF_DEVICE_PEERS_MAX)
		return wgf_err_set(err, -E2BIG, "too many changes");
	r->changes = calloc(json_array_size(up) + json_array_size(rm) + 1, sizeof(*r->changes));
	if (!r->changes)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	json_array_foreach(up, k, v)
	{
		struct wgf_change *c = &r->changes[r->n_changes];

		memset(c, 0, sizeof(*c));
		c->op = WGF_CHANGE_UPSERT;
		e = parse_peer(&r->ips, &c->peer, v, k, err);
		if (e < 0)
			return e;
		r->n_changes++;
	}
	return parse_removals(r, rm, err);
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
		struct wgf_err err = {0};
		json_t *obj = json_loadb(line, (size_t)len - 1, JSON_REJECT_DUPLICATES, NULL);
		int e = obj ? parse_record(obj, &r, &err) : -EINVAL;

		json_decref(obj);
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
