/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for agent/uapi.c: replies captured from wireguard-go, requests, the socket path. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "log.h"
#include "seen_sink.h"
#include "uapi.h"

/*
 * `get=1` on wireguard-go 0.0.20220316 (Debian 12), interface wgcap0 in a test namespace,
 * after a real handshake with a second wireguard-go over a veth pair. The private key is
 * a throwaway made for the capture; `wg show` gave the base64 forms below.
 */
/* The allowed IPs of the peers the tests build; reachable until exit. */
static struct wgf_ip_pool test_ips;

static const char capture_get[] =
        "private_key=a026890c556eae4b273c81f1bf0aea818a49d3184137394ea1e7b049c13f206c\n"
        "listen_port=51820\n"
        "public_key=97d03b9734a469c8da12fb74323bbc3ea9d3606a61808bf323b4069b4827ea4f\n"
        "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
        "protocol_version=1\n"
        "endpoint=[2001:db8::7]:4500\n"
        "last_handshake_time_sec=0\n"
        "last_handshake_time_nsec=0\n"
        "tx_bytes=0\n"
        "rx_bytes=0\n"
        "persistent_keepalive_interval=0\n"
        "allowed_ip=10.9.0.3/32\n"
        "public_key=0bee59eaa9e017e247b451a4877e0d7ec1e8cf2a56be4427811f1f620d4caa35\n"
        "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
        "protocol_version=1\n"
        "endpoint=192.0.2.2:51821\n"
        "last_handshake_time_sec=1795604061\n"
        "last_handshake_time_nsec=825243494\n"
        "tx_bytes=840\n"
        "rx_bytes=860\n"
        "persistent_keepalive_interval=25\n"
        "allowed_ip=10.9.0.2/32\n"
        "allowed_ip=fd00::2/128\n"
        "errno=0\n"
        "\n";
#define CAPTURE_DEVICE_PUB "hw7yJUOvOhMHOeUysjKkBvRJh/2beVmYBDOgV2MA+gg="
#define CAPTURE_PEER_A_PUB "l9A7lzSkacjaEvt0Mju8PqnTYGphgIvzI7QGm0gn6k8="
#define CAPTURE_PEER_B_PUB "C+5Z6qngF+JHtFGkh34NfsHozypWvkQngR8fYg1MqjU="

/* A fresh wireguard-go before `wg set`: no key, a random port, no peers. */
static const char capture_get_fresh[] = "listen_port=34114\nerrno=0\n\n";

/* wireguard-go's answers to a set with a bad line, and to a good one. */
static const char capture_set_einval[] = "errno=-22\n\n";
static const char capture_set_ok[] = "errno=0\n\n";

#define KEY_HEX_A "97d03b9734a469c8da12fb74323bbc3ea9d3606a61808bf323b4069b4827ea4f"

static int setup(void **state)
{
	(void)state;
	return wgf_key_init();
}

static void assert_key_b64(const uint8_t key[static WGF_KEY_LEN], const char *b64)
{
	char out[WGF_KEY_B64_LEN];

	wgf_key_to_base64(out, key);
	assert_string_equal(out, b64);
}

static void assert_cidr(const struct wgf_cidr *c, const char *text)
{
	char out[WGF_CIDR_STRLEN];

	wgf_cidr_format(c, out);
	assert_string_equal(out, text);
}

static struct wgf_peer *find_peer(struct wgf_device *dev, const char *b64)
{
	uint8_t key[WGF_KEY_LEN];

	assert_int_equal(wgf_key_from_base64(key, b64, WGF_KEY_PUBLIC, NULL), 0);
	for (size_t i = 0; i < dev->n_peers; i++)
		if (memcmp(dev->peers[i].public_key, key, WGF_KEY_LEN) == 0)
			return &dev->peers[i];
	fail_msg("peer %s not found", b64);
	return NULL;
}

/* What dev shows of the peer find_peer() returned. */
static const struct wgf_peer_seen *seen_of(const struct wgf_device *dev, const struct wgf_peer *p)
{
	return &dev->seen[p - dev->peers];
}

static void assert_capture_device(struct wgf_device *dev)
{
	struct wgf_peer *a, *b;
	const struct wgf_peer_seen *sa, *sb;
	char addr[INET6_ADDRSTRLEN];

	assert_true(dev->flags & WGF_DEVICE_HAS_PUBLIC_KEY);
	assert_key_b64(dev->public_key, CAPTURE_DEVICE_PUB);
	assert_true(dev->flags & WGF_DEVICE_HAS_LISTEN_PORT);
	assert_int_equal(dev->listen_port, 51820);
	assert_int_equal(dev->n_peers, 2);

	a = find_peer(dev, CAPTURE_PEER_A_PUB);
	sa = seen_of(dev, a);
	assert_int_equal(a->n_allowed_ips, 1);
	assert_cidr(&a->allowed_ips[0], "10.9.0.3/32");
	assert_int_equal(a->persistent_keepalive, 0);
	assert_int_equal(sa->last_handshake_ms, 0);
	assert_true(sa->flags & WGF_PEER_HAS_ENDPOINT);
	assert_int_equal(sa->endpoint.sa.sa_family, AF_INET6);
	inet_ntop(AF_INET6, &sa->endpoint.in6.sin6_addr, addr, sizeof(addr));
	assert_string_equal(addr, "2001:db8::7");
	assert_int_equal(ntohs(sa->endpoint.in6.sin6_port), 4500);
	assert_false(a->flags & BACKEND_PEER_F_TRUNCATED);

	b = find_peer(dev, CAPTURE_PEER_B_PUB);
	sb = seen_of(dev, b);
	assert_int_equal(b->n_allowed_ips, 2);
	assert_cidr(&b->allowed_ips[0], "10.9.0.2/32");
	assert_cidr(&b->allowed_ips[1], "fd00::2/128");
	assert_int_equal(b->persistent_keepalive, 25);
	assert_true(b->flags & WGF_PEER_HAS_KEEPALIVE);
	assert_true(sb->flags & WGF_PEER_HAS_HANDSHAKE);
	assert_int_equal(sb->last_handshake_ms, 1795604061825LL);
	assert_true(sb->flags & WGF_PEER_HAS_TRANSFER);
	assert_int_equal(sb->rx_bytes, 860);
	assert_int_equal(sb->tx_bytes, 840);
	assert_int_equal(sb->endpoint.sa.sa_family, AF_INET);
	inet_ntop(AF_INET, &sb->endpoint.in.sin_addr, addr, sizeof(addr));
	assert_string_equal(addr, "192.0.2.2");
	assert_int_equal(ntohs(sb->endpoint.in.sin_port), 51821);
}

static void test_parse_captured_get(void **state)
{
	struct wgf_device dev = {0};
	int remote = 1;

	(void)state;
	assert_int_equal(uapi_parse(capture_get, sizeof(capture_get) - 1, &dev, &remote, NULL), 0);
	assert_int_equal(remote, 0);
	assert_capture_device(&dev);
	wgf_device_fini(&dev);
}

static void test_parse_fresh_device(void **state)
{
	struct wgf_device dev = {0};
	int remote = 1;

	(void)state;
	assert_int_equal(
	        uapi_parse(capture_get_fresh, strlen(capture_get_fresh), &dev, &remote, NULL), 0);
	assert_int_equal(remote, 0);
	assert_false(dev.flags & WGF_DEVICE_HAS_PUBLIC_KEY);
	assert_int_equal(dev.listen_port, 34114);
	assert_int_equal(dev.n_peers, 0);
	wgf_device_fini(&dev);
}

/* The stream parser gives the same result whatever way the lines arrive. */
static void test_parser_feed_line_by_line(void **state)
{
	struct wgf_device dev = {0};
	struct uapi_parser p;
	const char *s = capture_get;
	int r = 0;

	(void)state;
	uapi_parser_init(&p, &dev);
	while (*s) {
		const char *nl = strchr(s, '\n');

		assert_int_equal(r, 0);
		r = uapi_parser_feed(&p, s, (size_t)(nl - s), NULL);
		s = nl + 1;
	}
	assert_int_equal(r, 1);
	assert_true(p.done);
	assert_int_equal(p.remote_errno, 0);
	assert_capture_device(&dev);
	assert_int_equal(uapi_parser_feed(&p, "x=1", 3, NULL), -EPROTO);
	wgf_device_fini(&dev);
}

static void test_set_replies(void **state)
{
	int remote = 1;

	(void)state;
	assert_int_equal(uapi_parse(capture_set_ok, strlen(capture_set_ok), NULL, &remote, NULL),
	                 0);
	assert_int_equal(remote, 0);
	assert_int_equal(
	        uapi_parse(capture_set_einval, strlen(capture_set_einval), NULL, &remote, NULL), 0);
	assert_int_equal(remote, -EINVAL);
	/* boringtun and the protocol description write the errno positive. */
	assert_int_equal(uapi_parse("errno=98\n\n", 10, NULL, &remote, NULL), 0);
	assert_int_equal(remote, -EADDRINUSE);
}

struct bad_reply {
	const char *text;
	bool is_get;
	int r;
	const char *msg;
};

static void test_bad_replies(void **state)
{
	static const struct bad_reply cases[] = {
	        {"errno=0\n", false, -EPROTO, "the reply ends after line 1, before its blank line"},
	        {"\n", false, -EPROTO, "line 1: the reply ends without errno="},
	        {"errno=zero\n\n", false, -EBADMSG, "line 1: bad errno 'zero'"},
	        {"errno=99999\n\n", false, -EBADMSG, "line 1: bad errno '99999'"},
	        {"errno=0\nx=1\n\n", false, -EPROTO, "line 2: text after errno="},
	        {"errno=0\n\nerrno=0\n\n", false, -EPROTO, "text after the end of the reply"},
	        {"listen_port=1\nerrno=0\n\n", false, -EPROTO,
	         "line 1: 'listen_port' in the reply to a set"},
	        {"listen_port\nerrno=0\n\n", true, -EBADMSG, "line 1: not key=value"},
	        {"=1\nerrno=0\n\n", true, -EBADMSG, "line 1: not key=value"},
	        {"listen_port=65536\nerrno=0\n\n", true, -EBADMSG,
	         "line 1: bad listen_port '65536'"},
	        {"listen_port=-1\nerrno=0\n\n", true, -EBADMSG, "line 1: bad listen_port '-1'"},
	        {"private_key=00\nerrno=0\n\n", true, -EBADMSG, "line 1: bad private_key"},
	        {"allowed_ip=10.0.0.1/32\nerrno=0\n\n", true, -EPROTO,
	         "line 1: 'allowed_ip' before any public_key"},
	        {"public_key=xyz\nerrno=0\n\n", true, -EBADMSG, "line 1: bad public_key 'xyz'"},
	        {"public_key=" KEY_HEX_A "\nallowed_ip=10.0.0.1/33\nerrno=0\n\n", true, -EBADMSG,
	         "line 2: bad allowed_ip '10.0.0.1/33'"},
	        {"public_key=" KEY_HEX_A "\nendpoint=10.0.0.1\nerrno=0\n\n", true, -EBADMSG,
	         "line 2: bad endpoint '10.0.0.1'"},
	        {"public_key=" KEY_HEX_A "\nendpoint=[::1]51820\nerrno=0\n\n", true, -EBADMSG,
	         "line 2: bad endpoint '[::1]51820'"},
	        {"public_key=" KEY_HEX_A "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n", true,
	         -EBADMSG, "line 2: bad last_handshake_time_nsec '1000000000'"},
	        {"public_key=" KEY_HEX_A "\nrx_bytes=18446744073709551616\nerrno=0\n\n", true,
	         -EBADMSG, "line 2: bad rx_bytes '18446744073709551616'"},
	        {"public_key=" KEY_HEX_A "\nprotocol_version=2\nerrno=0\n\n", true,
	         -EPROTONOSUPPORT, "line 2: protocol_version 2 is not supported"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wgf_device dev = {0};
		struct wgf_err err = {0};
		int remote = 7;

		assert_int_equal(uapi_parse(cases[i].text, strlen(cases[i].text),
		                            cases[i].is_get ? &dev : NULL, &remote, &err),
		                 cases[i].r);
		assert_string_equal(err.msg, cases[i].msg);
		assert_int_equal(err.code, cases[i].r);
		assert_int_equal(remote, 7);
		wgf_device_fini(&dev);
	}
}

static void test_line_too_long(void **state)
{
	char text[UAPI_LINE_MAX + 64];
	struct wgf_device dev = {0};
	struct wgf_err err = {0};
	int remote;

	(void)state;
	memset(text, 'a', sizeof(text));
	memcpy(text, "future_key=", 11);
	text[UAPI_LINE_MAX] = '\n'; /* a line of exactly UAPI_LINE_MAX bytes is fine */
	memcpy(text + UAPI_LINE_MAX + 1, "errno=0\n\n", 10);
	assert_int_equal(uapi_parse(text, strlen(text), &dev, &remote, NULL), 0);
	text[UAPI_LINE_MAX] = 'a';
	text[UAPI_LINE_MAX + 1] = '\n';
	assert_int_equal(uapi_parse(text, UAPI_LINE_MAX + 2, &dev, &remote, &err), -EBADMSG);
	assert_string_equal(err.msg, "line 1: longer than 256 bytes");
	wgf_device_fini(&dev);
}

/* Keys we do not know are skipped, so newer daemons still parse. */
static void test_unknown_keys_are_ignored(void **state)
{
	static const char text[] = "fwmark=51820\nsome_new_device_key=1\n"
	                           "public_key=" KEY_HEX_A "\nsome_new_peer_key=abc\n"
	                           "allowed_ip=10.0.0.7/24\nerrno=0\n\n";
	struct wgf_device dev = {0};
	int remote;

	(void)state;
	assert_int_equal(uapi_parse(text, strlen(text), &dev, &remote, NULL), 0);
	assert_int_equal(dev.n_peers, 1);
	/* Host bits are cleared: the daemon keeps the network. */
	assert_cidr(&dev.peers[0].allowed_ips[0], "10.0.0.0/24");
	assert_false(dev.peers[0].flags & (WGF_PEER_HAS_ENDPOINT | WGF_PEER_HAS_HANDSHAKE));
	wgf_device_fini(&dev);
}

static void test_too_many_allowed_ips_truncates(void **state)
{
	char text[4096];
	struct wgf_device dev = {0};
	int n, remote;

	(void)state;
	n = snprintf(text, sizeof(text), "public_key=%s\n", KEY_HEX_A);
	for (int i = 0; i < WGF_PEER_ALLOWED_IPS_MAX + 3; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "allowed_ip=10.1.%d.0/24\n", i);
	n += snprintf(text + n, sizeof(text) - (size_t)n, "errno=0\n\n");
	assert_int_equal(uapi_parse(text, (size_t)n, &dev, &remote, NULL), 0);
	assert_int_equal(dev.peers[0].n_allowed_ips, WGF_PEER_ALLOWED_IPS_MAX);
	assert_true(dev.peers[0].flags & BACKEND_PEER_F_TRUNCATED);
	wgf_device_fini(&dev);
}

static void make_key(uint8_t key[static WGF_KEY_LEN], uint32_t i)
{
	memset(key, 0x11, WGF_KEY_LEN);
	memcpy(key, &i, sizeof(i));
}

static void test_peer_limit(void **state)
{
	size_t per_peer = sizeof("public_key=\n") - 1 + 64,
	       cap = (WGF_DEVICE_PEERS_MAX + 1) * per_peer + 16;
	char *text = malloc(cap), hex[WGF_KEY_HEX_LEN];
	struct wgf_device dev = {0};
	struct wgf_err err = {0};
	uint8_t key[WGF_KEY_LEN];
	size_t n = 0;
	int remote;

	(void)state;
	assert_non_null(text);
	for (uint32_t i = 0; i <= WGF_DEVICE_PEERS_MAX; i++) {
		make_key(key, i);
		wgf_key_to_hex(hex, key);
		n += (size_t)snprintf(text + n, cap - n, "public_key=%s\n", hex);
	}
	n += (size_t)snprintf(text + n, cap - n, "errno=0\n\n");
	assert_int_equal(uapi_parse(text, n, &dev, &remote, &err), -E2BIG);
	assert_string_equal(err.msg, "line 100001: more than 100000 peers on the interface");
	wgf_device_fini(&dev);
	free(text);
}

static void peer_init(struct wgf_peer *p, const char *b64, unsigned keepalive, ...)
{
	const char *cidr;
	va_list ap;

	memset(p, 0, sizeof(*p));
	assert_int_equal(wgf_key_from_base64(p->public_key, b64, WGF_KEY_PUBLIC, NULL), 0);
	p->persistent_keepalive = (uint16_t)keepalive;
	va_start(ap, keepalive);
	while ((cidr = va_arg(ap, const char *))) {
		struct wgf_cidr c;

		assert_int_equal(wgf_cidr_parse(&c, cidr, 0, NULL), 0);
		assert_int_equal(wgf_peer_add_allowed_ip(&test_ips, p, &c), 0);
	}
	va_end(ap);
}

static void test_format_peer(void **state)
{
	char out[UAPI_PEER_TEXT_MAX];
	struct wgf_peer p;
	size_t n;

	(void)state;
	peer_init(&p, CAPTURE_PEER_B_PUB, 25, "10.9.0.2/32", "fd00::2/128", NULL);
	n = uapi_format_peer(out, &p, UAPI_OP_SET);
	assert_string_equal(out, "public_key=0bee59eaa9e017e247b451a4877e0d7ec1e8cf2a56be4427811f1f"
	                         "620d4caa35\n"
	                         "replace_allowed_ips=true\n"
	                         "allowed_ip=10.9.0.2/32\n"
	                         "allowed_ip=fd00::2/128\n"
	                         "persistent_keepalive_interval=25\n");
	assert_int_equal(n, strlen(out));
	/* No allowed IPs and no keepalive: both are still said, to clear old values. */
	peer_init(&p, CAPTURE_PEER_A_PUB, 0, NULL);
	n = uapi_format_peer(out, &p, UAPI_OP_SET);
	assert_string_equal(out, "public_key=" KEY_HEX_A "\nreplace_allowed_ips=true\n"
	                         "persistent_keepalive_interval=0\n");
	n = uapi_format_peer(out, &p, UAPI_OP_REMOVE);
	assert_string_equal(out, "public_key=" KEY_HEX_A "\nremove=true\n");
	assert_int_equal(n, strlen(out));
}

/*
 * The backend over a real unix socket, against a scripted server thread: it answers
 * each request (text up to a blank line) with the next reply of its script and keeps
 * what it was sent.
 */
struct fake {
	char dir[64], path[108];
	int listen_fd;
	pthread_t thread;
	const char *const *replies;
	size_t n_replies;
	size_t hangup_after; /* bytes of a request read before answering and closing; 0 = never */
	char *received;
	size_t received_len, n_requests, n_conns;
};

/* cmocka's assertions jump, which only the test's own thread may do. */
#define FAKE_CHECK(x)            \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

static void fake_append(struct fake *f, const char *buf, size_t n)
{
	f->received = realloc(f->received, f->received_len + n + 1);
	FAKE_CHECK(f->received);
	memcpy(f->received + f->received_len, buf, n);
	f->received_len += n;
	f->received[f->received_len] = '\0';
}

static void fake_serve_conn(struct fake *f, int fd)
{
	char buf[65536];
	size_t start = f->received_len, request_bytes = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		char *end;

		if (n <= 0)
			return;
		fake_append(f, buf, (size_t)n);
		request_bytes += (size_t)n;
		if (f->hangup_after && request_bytes >= f->hangup_after) {
			const char *reply = f->replies[f->n_requests++];

			FAKE_CHECK(write(fd, reply, strlen(reply)) == (ssize_t)strlen(reply));
			return;
		}
		/* Answer every complete request received so far. */
		while ((end = strstr(f->received + start, "\n\n"))) {
			const char *reply = f->replies[f->n_requests++];

			FAKE_CHECK(f->n_requests <= f->n_replies);
			FAKE_CHECK(write(fd, reply, strlen(reply)) == (ssize_t)strlen(reply));
			start = (size_t)(end - f->received) + 2;
			request_bytes = 0;
		}
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int fd;

	while ((fd = accept(f->listen_fd, NULL, NULL)) >= 0) {
		f->n_conns++;
		fake_serve_conn(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f, const char *const *replies, size_t n_replies)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/wgf-uapi-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/wgt0.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	f->replies = replies;
	f->n_replies = n_replies;
}

static void fake_run(struct fake *f)
{
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->listen_fd, SHUT_RDWR);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	unlink(f->path);
	rmdir(f->dir);
}

static size_t count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *s = haystack; (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

static void test_backend_get_and_set(void **state)
{
	static const char *const replies[] = {capture_get, capture_set_ok, capture_set_ok};
	struct wgf_device dev = {0};
	struct backend *b = NULL;
	struct wgf_peer peers[2];
	struct fake f;

	(void)state;
	fake_start(&f, replies, 3);
	fake_run(&f);
	assert_int_equal(backend_uapi_new("wgt0", f.dir, &b), 0);
	assert_string_equal(b->ops->name, "userspace");
	assert_int_equal(b->ops->get_device(b, &dev), 0);
	assert_capture_device(&dev);
	assert_string_equal(dev.ifname, "wgt0");
	wgf_device_fini(&dev);

	peer_init(&peers[0], CAPTURE_PEER_A_PUB, 0, "10.9.0.3/32", NULL);
	peer_init(&peers[1], CAPTURE_PEER_B_PUB, 25, "10.9.0.2/32", NULL);
	assert_int_equal(b->ops->set_peers(b, peers, 2), 0);
	assert_int_equal(b->ops->remove_peers(b, peers, 1), 0);
	/* Nothing to do needs no connection. */
	assert_int_equal(b->ops->set_peers(b, peers, 0), 0);
	backend_free(b);
	fake_stop(&f);
	assert_int_equal(f.n_conns, 3);
	assert_string_equal(f.received,
	                    "get=1\n\n"
	                    "set=1\n"
	                    "public_key=" KEY_HEX_A "\nreplace_allowed_ips=true\n"
	                    "allowed_ip=10.9.0.3/32\npersistent_keepalive_interval=0\n"
	                    "public_key=0bee59eaa9e017e247b451a4877e0d7ec1e8cf2a56be4427811f1f620d4"
	                    "caa35\nreplace_allowed_ips=true\n"
	                    "allowed_ip=10.9.0.2/32\npersistent_keepalive_interval=25\n\n"
	                    "set=1\npublic_key=" KEY_HEX_A "\nremove=true\n\n");
	free(f.received);
}

/* With see set, a read hands over each peer's facts as it goes and keeps none of them. */
static void test_backend_get_streams_what_it_sees(void **state)
{
	static const char *const replies[] = {capture_get, capture_get};
	struct wgf_device whole = {0}, dev = {0};
	struct seen_sink sink = {0};
	struct backend *b = NULL;
	struct fake f;

	(void)state;
	fake_start(&f, replies, 2);
	fake_run(&f);
	assert_int_equal(backend_uapi_new("wgt0", f.dir, &b), 0);
	assert_int_equal(b->ops->get_device(b, &whole), 0);
	dev.see = seen_sink_take;
	dev.see_ctx = &sink;
	assert_int_equal(b->ops->get_device(b, &dev), 0);
	assert_null(dev.seen);
	assert_int_equal(dev.n_peers, whole.n_peers);
	assert_true(whole.n_peers >= 2);
	assert_true(seen_sink_matches(&sink, &whole));
	wgf_device_fini(&dev);
	wgf_device_fini(&whole);
	backend_free(b);
	fake_stop(&f);
	free(f.received);
}

/* Past wireguard-go's 65,536 peers an EINVAL comes with a warning that says so; else none. */
static void test_backend_says_its_peer_limit(void **state)
{
	struct backend *b = NULL;
	char text[512] = {0};
	FILE *f = tmpfile();

	(void)state;
	assert_non_null(f);
	assert_int_equal(backend_uapi_new("wgt0", "/nonexistent", &b), 0);
	wgf_log_set_fd(fileno(f));
	backend_say_limit(b, -EINVAL, 65536);
	backend_say_limit(b, -EIO, 70000);
	assert_int_equal(ftell(f), 0);
	backend_say_limit(b, -EINVAL, 70000);
	wgf_log_set_fd(STDERR_FILENO);
	rewind(f);
	assert_non_null(fgets(text, sizeof(text), f));
	assert_non_null(strstr(text, "at most 65536 on one interface"));
	assert_non_null(strstr(text, "has 70000"));
	fclose(f);
	backend_free(b);
}

static struct wgf_peer *many_peers(size_t n)
{
	struct wgf_peer *peers = calloc(n, sizeof(*peers));
	struct wgf_cidr c;

	assert_non_null(peers);
	assert_int_equal(wgf_cidr_parse(&c, "10.200.0.0/32", 0, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		make_key(peers[i].public_key, (uint32_t)i);
		c.addr.bytes[2] = (uint8_t)(i >> 8);
		c.addr.bytes[3] = (uint8_t)i;
		assert_int_equal(wgf_peer_add_allowed_ip(&test_ips, &peers[i], &c), 0);
	}
	return peers;
}

/* A big set goes over one connection as requests of UAPI_BATCH_PEERS peers. */
static void test_backend_batches(void **state)
{
	static const char *const replies[] = {capture_set_ok, capture_set_ok, capture_set_ok};
	size_t n = 2 * UAPI_BATCH_PEERS + 1;
	struct wgf_peer *peers = many_peers(n);
	struct backend *b = NULL;
	struct fake f;

	(void)state;
	fake_start(&f, replies, 3);
	fake_run(&f);
	assert_int_equal(backend_uapi_new("wgt0", f.dir, &b), 0);
	assert_int_equal(b->ops->set_peers(b, peers, n), 0);
	backend_free(b);
	fake_stop(&f);
	assert_int_equal(f.n_conns, 1);
	assert_int_equal(f.n_requests, 3);
	assert_int_equal(count(f.received, "set=1\n"), 3);
	assert_int_equal(count(f.received, "public_key="), n);
	assert_int_equal(count(f.received, "\n\n"), 3);
	free(peers);
	free(f.received);
}

/* A refused request stops the batches, and its errno is what set_peers returns. */
static void test_backend_errno_stops(void **state)
{
	static const char *const replies[] = {capture_set_ok, capture_set_einval};
	size_t n = 3 * UAPI_BATCH_PEERS;
	struct wgf_peer *peers = many_peers(n);
	struct backend *b = NULL;
	struct fake f;

	(void)state;
	fake_start(&f, replies, 2);
	fake_run(&f);
	assert_int_equal(backend_uapi_new("wgt0", f.dir, &b), 0);
	assert_int_equal(b->ops->set_peers(b, peers, n), -EINVAL);
	backend_free(b);
	fake_stop(&f);
	assert_int_equal(f.n_requests, 2);
	free(peers);
	free(f.received);
}

/*
 * wireguard-go answers a bad line at once and drops the connection while we are still
 * writing: the errno it sent wins over our EPIPE.
 */
static void test_backend_hangup_mid_request(void **state)
{
	static const char *const replies[] = {capture_set_einval};
	size_t n = UAPI_BATCH_PEERS;
	struct wgf_peer *peers = many_peers(n);
	struct backend *b = NULL;
	struct fake f;

	(void)state;
	fake_start(&f, replies, 1);
	f.hangup_after = 1000;
	fake_run(&f);
	assert_int_equal(backend_uapi_new("wgt0", f.dir, &b), 0);
	assert_int_equal(b->ops->set_peers(b, peers, n), -EINVAL);
	backend_free(b);
	fake_stop(&f);
	free(peers);
	free(f.received);
}

static void test_backend_no_socket(void **state)
{
	struct wgf_device dev = {0};
	struct backend *b = NULL;
	struct wgf_err err = {0};
	struct backend_device_cfg cfg = {.ifname = "wgnone0"};

	(void)state;
	assert_int_equal(backend_uapi_new("wgnone0", "/nonexistent", &b), 0);
	assert_int_equal(b->ops->get_device(b, &dev), -ENODEV);
	assert_int_equal(b->ops->set_peers(b, &(struct wgf_peer){0}, 1), -ENODEV);
	assert_int_equal(b->ops->ensure_device(b, &cfg, &err), -ENODEV);
	assert_string_equal(err.msg, "no userspace interface 'wgnone0': nothing listens on "
	                             "'/nonexistent/wgnone0.sock'; start wireguard-go or "
	                             "boringtun first");
	backend_free(b);
}

static void test_backend_bad_names(void **state)
{
	char long_dir[200];
	struct backend *b = NULL;

	(void)state;
	assert_int_equal(backend_uapi_new("", NULL, &b), -EINVAL);
	assert_int_equal(backend_uapi_new("wg/0", NULL, &b), -EINVAL);
	assert_int_equal(backend_uapi_new("..", NULL, &b), -EINVAL);
	assert_int_equal(backend_uapi_new("a-name-too-long0", NULL, &b), -EINVAL);
	memset(long_dir, 'd', sizeof(long_dir) - 1);
	long_dir[0] = '/';
	long_dir[sizeof(long_dir) - 1] = '\0';
	assert_int_equal(backend_uapi_new("wg0", long_dir, &b), -ENAMETOOLONG);
	assert_null(b);
	assert_int_equal(backend_uapi_new("wg0", NULL, &b), 0);
	assert_string_equal(b->ifname, "wg0");
	backend_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_captured_get),
	        cmocka_unit_test(test_parse_fresh_device),
	        cmocka_unit_test(test_parser_feed_line_by_line),
	        cmocka_unit_test(test_set_replies),
	        cmocka_unit_test(test_bad_replies),
	        cmocka_unit_test(test_line_too_long),
	        cmocka_unit_test(test_unknown_keys_are_ignored),
	        cmocka_unit_test(test_too_many_allowed_ips_truncates),
	        cmocka_unit_test(test_peer_limit),
	        cmocka_unit_test(test_format_peer),
	        cmocka_unit_test(test_backend_get_and_set),
	        cmocka_unit_test(test_backend_get_streams_what_it_sees),
	        cmocka_unit_test(test_backend_says_its_peer_limit),
	        cmocka_unit_test(test_backend_batches),
	        cmocka_unit_test(test_backend_errno_stops),
	        cmocka_unit_test(test_backend_hangup_mid_request),
	        cmocka_unit_test(test_backend_no_socket),
	        cmocka_unit_test(test_backend_bad_names),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
