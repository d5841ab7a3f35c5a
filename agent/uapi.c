/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* uapi: the UAPI text protocol (parse and format) and the userspace backend over its socket. */
#include "uapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "backend.h"
#include "key.h"
#include "rtnl.h"

#define CONN_BUF    ((size_t)64 << 10)
#define ERRNO_MAX   4095
#define HS_SEC_MAX  ((uint64_t)INT64_MAX / 1000 - 1)
#define NSEC_PER_MS 1000000U

/* The longest peer uapi_format_peer() writes, with every allowed IP at its longest. */
#define PEER_TEXT_LONGEST                                                         \
	(sizeof("public_key=\n") + 2 * (size_t)WGF_KEY_LEN +                      \
	 sizeof("replace_allowed_ips=true\n") +                                   \
	 WGF_PEER_ALLOWED_IPS_MAX * (sizeof("allowed_ip=\n") + WGF_CIDR_STRLEN) + \
	 sizeof("persistent_keepalive_interval=65535\n"))
_Static_assert(PEER_TEXT_LONGEST < UAPI_PEER_TEXT_MAX, "UAPI_PEER_TEXT_MAX holds any peer");
_Static_assert(CONN_BUF > 2 * (size_t)UAPI_PEER_TEXT_MAX, "the write buffer holds several peers");
_Static_assert(CONN_BUF > UAPI_LINE_MAX + 1, "the read buffer holds a whole line");

/* ---- parsing ---------------------------------------------------------------- */

void uapi_parser_init(struct uapi_parser *p, struct wgf_device *dev)
{
	memset(p, 0, sizeof(*p));
	p->dev = dev;
}

/* Decimal digits only (no sign, no spaces), at most max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9 || v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

static int parse_errno(const char *s, int *ret)
{
	uint64_t v;

	/* wireguard-go writes errno=-22, boringtun and the protocol text errno=22. */
	if (*s == '-')
		s++;
	if (parse_u64(s, ERRNO_MAX, &v) < 0)
		return -EINVAL;
	*ret = -(int)v;
	return 0;
}

static int parse_endpoint(const char *s, struct wgf_peer_seen *seen)
{
	char host[WGF_ADDR_STRLEN + IFNAMSIZ + 1];
	const char *port_s, *end;
	uint64_t port;
	size_t n;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		s++;
		port_s = end + 2;
	} else {
		end = strrchr(s, ':');
		if (!end)
			return -EINVAL;
		port_s = end + 1;
	}
	n = (size_t)(end - s);
	if (n == 0 || n >= sizeof(host) || parse_u64(port_s, UINT16_MAX, &port) < 0)
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(&seen->endpoint, 0, sizeof(seen->endpoint));
	if (inet_pton(AF_INET, host, &seen->endpoint.in.sin_addr) == 1) {
		seen->endpoint.in.sin_family = AF_INET;
		seen->endpoint.in.sin_port = htons((uint16_t)port);
		return 0;
	}
	/* An IPv6 link-local endpoint carries a zone: [fe80::1%eth0]:51820. */
	char *zone = strchr(host, '%');
	uint64_t scope = 0;

	if (zone) {
		*zone++ = '\0';
		if (parse_u64(zone, UINT32_MAX, &scope) < 0)
			scope = if_nametoindex(zone);
	}
	if (inet_pton(AF_INET6, host, &seen->endpoint.in6.sin6_addr) != 1)
		return -EINVAL;
	seen->endpoint.in6.sin6_family = AF_INET6;
	seen->endpoint.in6.sin6_port = htons((uint16_t)port);
	seen->endpoint.in6.sin6_scope_id = (uint32_t)scope;
	return 0;
}

static void finish_peer(struct uapi_parser *p)
{
	if (p->seen && (p->seen->flags & WGF_PEER_HAS_HANDSHAKE))
		p->seen->last_handshake_ms = (int64_t)(p->hs_sec * 1000 + p->hs_nsec / NSEC_PER_MS);
	p->peer = NULL;
	p->seen = NULL;
	p->hs_sec = p->hs_nsec = 0;
}

static int device_key(struct uapi_parser *p, const char *key, const char *value,
                      struct wgf_err *err)
{
	uint8_t priv[WGF_KEY_LEN];
	uint64_t v;
	int r;

	if (strcmp(key, "private_key") == 0) {
		r = wgf_key_from_hex(priv, value, NULL);
		if (r == 0 && !wgf_key_is_zero(priv)) {
			r = wgf_key_public_from_private(p->dev->public_key, priv);
			if (r == 0)
				p->dev->flags |= WGF_DEVICE_HAS_PUBLIC_KEY;
		}
		sodium_memzero(priv, sizeof(priv));
		if (r < 0)
			return wgf_err_set(err, -EBADMSG, "line %u: bad private_key", p->line_no);
		return 0;
	}
	if (strcmp(key, "listen_port") == 0) {
		if (parse_u64(value, UINT16_MAX, &v) < 0)
			return wgf_err_set(err, -EBADMSG, "line %u: bad listen_port '%s'",
			                   p->line_no, value);
		p->dev->listen_port = (uint16_t)v;
		p->dev->flags |= WGF_DEVICE_HAS_LISTEN_PORT;
		return 0;
	}
	if (strcmp(key, "fwmark") == 0) {
		if (parse_u64(value, UINT32_MAX, &v) < 0)
			return wgf_err_set(err, -EBADMSG, "line %u: bad fwmark '%s'", p->line_no,
			                   value);
		return 0;
	}
	if (strcmp(key, "public_key") == 0) {
		struct wgf_peer *peer;
		uint8_t pub[WGF_KEY_LEN];

		finish_peer(p);
		if (wgf_key_from_hex(pub, value, NULL) < 0)
			return wgf_err_set(err, -EBADMSG, "line %u: bad public_key '%s'",
			                   p->line_no, value);
		peer = wgf_device_add_peer(p->dev);
		if (!peer) {
			if (p->dev->n_peers >= WGF_DEVICE_PEERS_MAX)
				return wgf_err_set(err, -E2BIG,
				                   "line %u: more than %d peers on the interface",
				                   p->line_no, WGF_DEVICE_PEERS_MAX);
			return wgf_err_set(err, -ENOMEM, "out of memory");
		}
		memcpy(peer->public_key, pub, WGF_KEY_LEN);
		p->peer = peer;
		p->seen = wgf_device_last_seen(p->dev);
		return 0;
	}
	return 1; /* not a device key */
}

static int peer_key(struct uapi_parser *p, const char *key, const char *value, struct wgf_err *err)
{
	struct wgf_peer *peer = p->peer;
	struct wgf_peer_seen *seen = p->seen;
	struct wgf_cidr c;
	uint64_t v;
	int r;

	if (strcmp(key, "allowed_ip") == 0) {
		if (wgf_cidr_parse(&c, value, WGF_CIDR_F_HOST_BITS, NULL) < 0)
			return wgf_err_set(err, -EBADMSG, "line %u: bad allowed_ip '%s'",
			                   p->line_no, value);
		wgf_cidr_network(&c, &c);
		r = wgf_peer_add_allowed_ip(&p->dev->ips, peer, &c);
		if (r == -ENOMEM)
			return wgf_err_set(err, r, "out of memory");
		if (r < 0)
			peer->flags |= BACKEND_PEER_F_TRUNCATED;
		return 0;
	}
	if (strcmp(key, "endpoint") == 0) {
		if (parse_endpoint(value, seen) < 0)
			return wgf_err_set(err, -EBADMSG, "line %u: bad endpoint '%s'", p->line_no,
			                   value);
		seen->flags |= WGF_PEER_HAS_ENDPOINT;
		return 0;
	}
	if (strcmp(key, "persistent_keepalive_interval") == 0) {
		if (parse_u64(value, UINT16_MAX, &v) < 0)
			goto bad_number;
		peer->persistent_keepalive = (uint16_t)v;
		peer->flags |= WGF_PEER_HAS_KEEPALIVE;
		return 0;
	}
	if (strcmp(key, "last_handshake_time_sec") == 0) {
		if (parse_u64(value, HS_SEC_MAX, &p->hs_sec) < 0)
			goto bad_number;
		seen->flags |= WGF_PEER_HAS_HANDSHAKE;
		return 0;
	}
	if (strcmp(key, "last_handshake_time_nsec") == 0) {
		if (parse_u64(value, 999999999, &p->hs_nsec) < 0)
			goto bad_number;
		seen->flags |= WGF_PEER_HAS_HANDSHAKE;
		return 0;
	}
	if (strcmp(key, "rx_bytes") == 0 || strcmp(key, "tx_bytes") == 0) {
		if (parse_u64(value, UINT64_MAX, &v) < 0)
			goto bad_number;
		*(key[0] == 'r' ? &seen->rx_bytes : &seen->tx_bytes) = v;
		seen->flags |= WGF_PEER_HAS_TRANSFER;
		return 0;
	}
	if (strcmp(key, "protocol_version") == 0) {
		if (strcmp(value, "1") != 0)
			return wgf_err_set(err, -EPROTONOSUPPORT,
			                   "line %u: protocol_version %s is not supported",
			                   p->line_no, value);
		return 0;
	}
	/* preshared_key is a secret we never set, and later keys are unknown to us. */
	return 0;
bad_number:
	return wgf_err_set(err, -EBADMSG, "line %u: bad %s '%s'", p->line_no, key, value);
}

static const char *const peer_keys[] = {
        "allowed_ip",
        "endpoint",
        "persistent_keepalive_interval",
        "last_handshake_time_sec",
        "last_handshake_time_nsec",
        "rx_bytes",
        "tx_bytes",
        "protocol_version",
        "preshared_key",
};

static int feed_pair(struct uapi_parser *p, char *key, char *value, struct wgf_err *err)
{
	int r;

	if (strcmp(key, "errno") == 0) {
		if (parse_errno(value, &p->remote_errno) < 0)
			return wgf_err_set(err, -EBADMSG, "line %u: bad errno '%s'", p->line_no,
			                   value);
		p->has_errno = true;
		return 0;
	}
	if (!p->dev)
		return wgf_err_set(err, -EPROTO, "line %u: '%s' in the reply to a set", p->line_no,
		                   key);
	r = device_key(p, key, value, err);
	if (r <= 0)
		return r;
	if (p->peer)
		return peer_key(p, key, value, err);
	for (size_t i = 0; i < sizeof(peer_keys) / sizeof(peer_keys[0]); i++)
		if (strcmp(key, peer_keys[i]) == 0)
			return wgf_err_set(err, -EPROTO, "line %u: '%s' before any public_key",
			                   p->line_no, key);
	return 0; /* a device key we do not know */
}

int uapi_parser_feed(struct uapi_parser *p, const char *line, size_t len, struct wgf_err *err)
{
	char buf[UAPI_LINE_MAX + 1], *eq;
	int r;

	if (p->done)
		return wgf_err_set(err, -EPROTO, "text after the end of the reply");
	p->line_no++;
	p->n_bytes += len + 1;
	if (p->n_bytes > UAPI_REPLY_MAX)
		return wgf_err_set(err, -E2BIG, "reply longer than %zu bytes", UAPI_REPLY_MAX);
	if (len > UAPI_LINE_MAX)
		return wgf_err_set(err, -EBADMSG, "line %u: longer than %d bytes", p->line_no,
		                   UAPI_LINE_MAX);
	if (len == 0) {
		if (!p->has_errno)
			return wgf_err_set(err, -EPROTO,
			                   "line %u: the reply ends without errno=", p->line_no);
		finish_peer(p);
		p->done = true;
		return 1;
	}
	if (p->has_errno)
		return wgf_err_set(err, -EPROTO, "line %u: text after errno=", p->line_no);
	memcpy(buf, line, len);
	buf[len] = '\0';
	eq = memchr(buf, '=', len);
	if (!eq || eq == buf || strlen(buf) != len) {
		r = wgf_err_set(err, -EBADMSG, "line %u: not key=value", p->line_no);
		goto out;
	}
	*eq = '\0';
	r = feed_pair(p, buf, eq + 1, err);
out:
	/* The line may have been a private key. */
	sodium_memzero(buf, sizeof(buf));
	return r;
}

int uapi_parse(const char *text, size_t len, struct wgf_device *dev, int *ret_remote_errno,
               struct wgf_err *err)
{
	struct uapi_parser p;
	const char *end = text + len;
	int r;

	uapi_parser_init(&p, dev);
	while (text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));

		if (!nl)
			break;
		r = uapi_parser_feed(&p, text, (size_t)(nl - text), err);
		if (r < 0)
			return r;
		text = nl + 1;
		if (r == 1) {
			if (text != end)
				return wgf_err_set(err, -EPROTO, "text after the end of the reply");
			*ret_remote_errno = p.remote_errno;
			return 0;
		}
	}
	return wgf_err_set(err, -EPROTO, "the reply ends after line %u, before its blank line",
	                   p.line_no);
}

/* ---- formatting ------------------------------------------------------------- */

/* Appends the text s (a literal) at *at. */
#define PUT(at, s) (memcpy((at), (s), sizeof(s) - 1), (at) += sizeof(s) - 1)

size_t uapi_format_peer(char out[static UAPI_PEER_TEXT_MAX], const struct wgf_peer *p,
                        enum uapi_op op)
{
	unsigned n_ips = p->n_allowed_ips;
	char *at = out;

	/* Built by hand, not with snprintf: 10,000 peers go through here in a full apply. */
	PUT(at, "public_key=");
	wgf_key_to_hex(at, p->public_key);
	at += 2 * WGF_KEY_LEN;
	if (op == UAPI_OP_REMOVE) {
		PUT(at, "\nremove=true\n");
		*at = '\0';
		return (size_t)(at - out);
	}
	PUT(at, "\nreplace_allowed_ips=true\n");
	if (n_ips > WGF_PEER_ALLOWED_IPS_MAX)
		n_ips = WGF_PEER_ALLOWED_IPS_MAX;
	for (unsigned i = 0; i < n_ips; i++) {
		PUT(at, "allowed_ip=");
		wgf_cidr_format(&p->allowed_ips[i], at);
		at += strlen(at);
		*at++ = '\n';
	}
	at += snprintf(at, UAPI_PEER_TEXT_MAX - (size_t)(at - out),
	               "persistent_keepalive_interval=%u\n", (unsigned)p->persistent_keepalive);
	return (size_t)(at - out);
}

#undef PUT

/* ---- the socket ------------------------------------------------------------- */

struct uapi_backend {
	struct backend base;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One connection: a read buffer that may hold a private key (wiped on close). */
struct conn {
	int fd;
	char *in;
	size_t in_start, in_end;
	char *out;
	size_t out_len;
};

static int conn_open(const struct uapi_backend *u, struct conn *c)
{
	const struct timeval tv = {
	        .tv_sec = UAPI_TIMEOUT_MS / 1000,
	        .tv_usec = (suseconds_t)(UAPI_TIMEOUT_MS % 1000) * 1000,
	};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int r;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->in = malloc(CONN_BUF);
	c->out = malloc(CONN_BUF);
	if (!c->in || !c->out) {
		r = -ENOMEM;
		goto fail;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		goto fail;
	}
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		r = -errno;
		goto fail;
	}
	memcpy(sa.sun_path, u->path, sizeof(sa.sun_path));
	if (connect(c->fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		/* No socket, or a stale one left by a daemon that died: no interface. */
		if (r == -ENOENT || r == -ECONNREFUSED)
			r = -ENODEV;
		goto fail;
	}
	return 0;
fail:
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	return r;
}

static void conn_close(struct conn *c)
{
	if (c->in) {
		sodium_memzero(c->in, CONN_BUF);
		free(c->in);
	}
	if (c->out) {
		sodium_memzero(c->out, CONN_BUF);
		free(c->out);
	}
	if (c->fd >= 0)
		close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static int conn_flush(struct conn *c)
{
	size_t done = 0;

	while (done < c->out_len) {
		ssize_t n = send(c->fd, c->out + done, c->out_len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		done += (size_t)n;
	}
	c->out_len = 0;
	return 0;
}

/* Appends text; flushes first when less than UAPI_PEER_TEXT_MAX would be left. */
static int conn_write(struct conn *c, const char *text, size_t len)
{
	int r;

	if (c->out_len + len > CONN_BUF - UAPI_PEER_TEXT_MAX) {
		r = conn_flush(c);
		if (r < 0)
			return r;
	}
	memcpy(c->out + c->out_len, text, len);
	c->out_len += len;
	return 0;
}

/* Reads lines into the parser until the reply is complete. */
static int conn_read_reply(struct conn *c, struct uapi_parser *p, struct wgf_err *err)
{
	for (;;) {
		char *line = c->in + c->in_start;
		char *nl = memchr(line, '\n', c->in_end - c->in_start);
		ssize_t n;
		int r;

		if (nl) {
			r = uapi_parser_feed(p, line, (size_t)(nl - line), err);
			c->in_start += (size_t)(nl - line) + 1;
			if (r != 0)
				return r < 0 ? r : 0;
			continue;
		}
		if (c->in_end - c->in_start > UAPI_LINE_MAX)
			return wgf_err_set(err, -EBADMSG, "line %u: longer than %d bytes",
			                   p->line_no + 1, UAPI_LINE_MAX);
		memmove(c->in, line, c->in_end - c->in_start);
		c->in_end -= c->in_start;
		c->in_start = 0;
		n = recv(c->fd, c->in + c->in_end, CONN_BUF - c->in_end, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return wgf_err_set(err, -ECONNRESET, "connection closed after line %u",
			                   p->line_no);
		c->in_end += (size_t)n;
	}
}

static struct uapi_backend *to_uapi(struct backend *b)
{
	return (struct uapi_backend *)b;
}

static int uapi_get_device(struct backend *b, struct wgf_device *ret)
{
	static const char request[] = "get=1\n\n";
	struct wgf_device dev = {.see = ret->see, .see_ctx = ret->see_ctx};
	struct uapi_parser p;
	struct conn c;
	int r;

	r = conn_open(to_uapi(b), &c);
	if (r < 0)
		return r;
	snprintf(dev.ifname, sizeof(dev.ifname), "%s", b->ifname);
	uapi_parser_init(&p, &dev);
	r = conn_write(&c, request, sizeof(request) - 1);
	if (r == 0)
		r = conn_flush(&c);
	if (r == 0)
		r = conn_read_reply(&c, &p, NULL);
	if (r == 0)
		r = p.remote_errno;
	conn_close(&c);
	if (r < 0) {
		wgf_device_fini(&dev);
		return r;
	}
	wgf_device_seen_done(&dev);
	*ret = dev;
	return 0;
}

/*
 * Ends the request in c->out and reads its reply. If the daemon hung up while we were
 * still writing (wireguard-go does after a bad line), its errno= reply may still be
 * waiting in our socket, and it says more than EPIPE does.
 */
static int conn_finish_set(struct conn *c, int write_r)
{
	struct uapi_parser p;
	int r = write_r;

	if (r == 0)
		r = conn_write(c, "\n", 1);
	if (r == 0)
		r = conn_flush(c);
	uapi_parser_init(&p, NULL);
	if (r == 0 || r == -EPIPE || r == -ECONNRESET) {
		int rr = conn_read_reply(c, &p, NULL);

		if (rr == 0)
			return p.remote_errno;
		if (r == 0)
			r = rr;
	}
	return r;
}

static int uapi_change_peers(struct backend *b, const struct wgf_peer *peers, size_t n,
                             enum uapi_op op)
{
	char text[UAPI_PEER_TEXT_MAX];
	struct conn c;
	int r;

	if (n == 0)
		return 0;
	r = conn_open(to_uapi(b), &c);
	if (r < 0)
		return r;
	for (size_t done = 0; done < n;) {
		size_t batch = n - done < UAPI_BATCH_PEERS ? n - done : UAPI_BATCH_PEERS;

		r = conn_write(&c, "set=1\n", 6);
		for (size_t i = 0; i < batch && r == 0; i++)
			r = conn_write(&c, text, uapi_format_peer(text, &peers[done + i], op));
		r = conn_finish_set(&c, r);
		if (r < 0)
			break;
		done += batch;
	}
	conn_close(&c);
	return r;
}

static int uapi_set_peers(struct backend *b, const struct wgf_peer *peers, size_t n)
{
	return uapi_change_peers(b, peers, n, UAPI_OP_SET);
}

static int uapi_remove_peers(struct backend *b, const struct wgf_peer *peers, size_t n)
{
	return uapi_change_peers(b, peers, n, UAPI_OP_REMOVE);
}

static int set_identity(struct backend *b, const uint8_t priv[static WGF_KEY_LEN], bool set_key,
                        uint16_t port)
{
	char hex[WGF_KEY_HEX_LEN], line[32 + WGF_KEY_HEX_LEN];
	struct conn c;
	int r, n;

	r = conn_open(to_uapi(b), &c);
	if (r < 0)
		return r;
	r = conn_write(&c, "set=1\n", 6);
	if (r == 0 && set_key) {
		wgf_key_to_hex(hex, priv);
		n = snprintf(line, sizeof(line), "private_key=%s\n", hex);
		r = conn_write(&c, line, (size_t)n);
	}
	if (r == 0 && port) {
		n = snprintf(line, sizeof(line), "listen_port=%u\n", (unsigned)port);
		r = conn_write(&c, line, (size_t)n);
	}
	r = conn_finish_set(&c, r);
	conn_close(&c);
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(line, sizeof(line));
	return r;
}

/*
 * Gives the interface the configured identity: with force (it has no key) the key and
 * the port, otherwise only what differs from dev.
 */
static int ensure_identity(struct backend *b, const struct backend_device_cfg *cfg,
                           const struct wgf_device *dev, bool force, struct wgf_err *err)
{
	uint8_t priv[WGF_KEY_LEN], pub[WGF_KEY_LEN];
	bool set_key = force, set_port;
	int r;

	r = backend_private_key_load(cfg->private_key_file, true, priv, NULL, err);
	if (r < 0)
		return r;
	r = wgf_key_public_from_private(pub, priv);
	if (r < 0) {
		wgf_err_set(err, r, "%s: not a usable private key", cfg->private_key_file);
		goto out;
	}
	if (!(dev->flags & WGF_DEVICE_HAS_PUBLIC_KEY) ||
	    sodium_memcmp(pub, dev->public_key, WGF_KEY_LEN) != 0)
		set_key = true;
	set_port = cfg->listen_port != 0 && (force || !(dev->flags & WGF_DEVICE_HAS_LISTEN_PORT) ||
	                                     dev->listen_port != cfg->listen_port);
	if (set_key || set_port) {
		r = set_identity(b, priv, set_key, set_port ? cfg->listen_port : 0);
		if (r < 0)
			wgf_err_set(err, r, "cannot set the key and port of '%s': %s", b->ifname,
			            wgf_strerror(r));
	}
out:
	sodium_memzero(priv, sizeof(priv));
	return r;
}

/*
 * The address and the link state go through rtnetlink, as for a kernel interface. The
 * TUN device lives in the namespace its daemon was started in, while the socket is in
 * the file system: when the link is not in ours and no address is asked for, there is
 * nothing to do here.
 */
static int ensure_link(struct backend *b, const struct backend_device_cfg *cfg, struct wgf_err *err)
{
	struct rtnl_link link;
	struct rtnl *rt = NULL;
	int r;

	r = rtnl_open(&rt);
	if (r < 0)
		return wgf_err_set(err, r, "cannot open rtnetlink: %s", wgf_strerror(r));
	r = rtnl_link_get(rt, b->ifname, &link);
	if (r == -ENODEV && !cfg->has_address) {
		r = 0;
		goto out;
	}
	if (r < 0) {
		wgf_err_set(err, r, "cannot look up link '%s' in the agent's network namespace: %s",
		            b->ifname, wgf_strerror(r));
		goto out;
	}
	if (cfg->has_address) {
		r = rtnl_addr_add(rt, link.index, &cfg->address);
		if (r < 0) {
			wgf_err_set(err, r, "cannot add the address to '%s': %s", b->ifname,
			            wgf_strerror(r));
			goto out;
		}
	}
	if (!(link.flags & IFF_UP)) {
		r = rtnl_link_set_up(rt, link.index);
		if (r < 0)
			wgf_err_set(err, r, "cannot bring up '%s': %s", b->ifname, wgf_strerror(r));
	}
out:
	rtnl_free(rt);
	return r;
}

static int uapi_ensure_device(struct backend *b, const struct backend_device_cfg *cfg,
                              struct wgf_err *err)
{
	struct wgf_device dev = {0};
	bool keyless;
	int r;

	r = uapi_get_device(b, &dev);
	if (r == -ENODEV)
		return wgf_err_set(err, r,
		                   "no userspace interface '%s': nothing listens on '%s'; "
		                   "start wireguard-go or boringtun first",
		                   b->ifname, to_uapi(b)->path);
	if (r < 0)
		return wgf_err_set(err, r, "cannot read interface '%s': %s", b->ifname,
		                   wgf_strerror(r));
	/* An interface left without a key gets one; an old key is changed on request. */
	keyless = !(dev.flags & WGF_DEVICE_HAS_PUBLIC_KEY);
	if (keyless || cfg->manage_identity) {
		r = ensure_identity(b, cfg, &dev, keyless, err);
		if (r < 0)
			goto out;
	}
	r = ensure_link(b, cfg, err);
out:
	wgf_device_fini(&dev);
	return r;
}

static void uapi_free(struct backend *b)
{
	free(b);
}

static const struct backend_ops uapi_ops = {
        .name = "userspace",
        /* wireguard-go's MaxPeers; boringtun's is not known here. */
        .max_peers = 65536,
        .get_device = uapi_get_device,
        .set_peers = uapi_set_peers,
        .remove_peers = uapi_remove_peers,
        .ensure_device = uapi_ensure_device,
        .free = uapi_free,
};

int backend_uapi_new(const char *ifname, const char *socket_dir, struct backend **ret)
{
	struct uapi_backend *u;

	if (!backend_ifname_is_valid(ifname))
		return -EINVAL;
	if (!socket_dir || !socket_dir[0])
		socket_dir = UAPI_DEFAULT_SOCKET_DIR;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	if ((size_t)snprintf(u->path, sizeof(u->path), "%s/%s.sock", socket_dir, ifname) >=
	    sizeof(u->path)) {
		free(u);
		return -ENAMETOOLONG;
	}
	u->base.ops = &uapi_ops;
	snprintf(u->base.ifname, sizeof(u->base.ifname), "%s", ifname);
	*ret = &u->base;
	return 0;
}
