/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* cidr: address and prefix arithmetic on network-order byte arrays. */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define TEXT_MAX 64

unsigned wgf_addr_len(const struct wgf_addr *a)
{
	return a->family == AF_INET ? 4 : 16;
}

static unsigned max_prefix(int family)
{
	return family == AF_INET ? 32 : 128;
}

int wgf_addr_parse(struct wgf_addr *ret, const char *s, struct wgf_err *err)
{
	struct wgf_addr a = {0};

	if (!s || !*s)
		return wgf_err_set(err, -EINVAL, "address is empty");
	if (strnlen(s, TEXT_MAX + 1) > TEXT_MAX)
		return wgf_err_set(err, -EINVAL, "address is longer than %d characters", TEXT_MAX);
	if (inet_pton(AF_INET, s, a.bytes) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.bytes) == 1)
		a.family = AF_INET6;
	else
		return wgf_err_set(err, -EINVAL, "'%s' is not an IPv4 or IPv6 address", s);
	*ret = a;
	return 0;
}

/* v (at most 999) in decimal at out; the end. */
static char *put_decimal(char *out, unsigned v)
{
	if (v >= 100)
		*out++ = (char)('0' + v / 100);
	if (v >= 10)
		*out++ = (char)('0' + v / 10 % 10);
	*out++ = (char)('0' + v % 10);
	return out;
}

void wgf_addr_format(const struct wgf_addr *a, char out[static WGF_ADDR_STRLEN])
{
	char *at = out;

	/* glibc formats IPv4 through sprintf; a pass formats every network of its set. */
	if (a->family == AF_INET) {
		for (size_t i = 0; i < 4; i++) {
			if (i)
				*at++ = '.';
			at = put_decimal(at, a->bytes[i]);
		}
		*at = '\0';
	} else if (!inet_ntop(a->family, a->bytes, out, WGF_ADDR_STRLEN)) {
		snprintf(out, WGF_ADDR_STRLEN, "?");
	}
}

void wgf_sockaddr_format(const struct sockaddr *sa, char *out, size_t size)
{
	char a[WGF_ADDR_STRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(out, size, "%s:%u", a, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(out, size, "[%s]:%u", a, ntohs(in6->sin6_port));
	} else if (size > 0) {
		out[0] = '\0';
	}
}

bool wgf_addr_equal(const struct wgf_addr *a, const struct wgf_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, wgf_addr_len(a)) == 0;
}

/* Clears every bit past `prefix`. */
static void mask_bytes(uint8_t *bytes, unsigned len, unsigned prefix)
{
	for (unsigned i = 0; i < len; i++) {
		unsigned bit = i * 8;

		if (bit >= prefix)
			bytes[i] = 0;
		else if (prefix - bit < 8)
			bytes[i] &= (uint8_t)(0xff << (8 - (prefix - bit)));
	}
}

static int parse_prefix_len(const char *s, unsigned max, unsigned *ret, struct wgf_err *err)
{
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 3 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
		return wgf_err_set(err, -EINVAL, "prefix length '%s' is not a number from 0 to %u",
		                   s, max);
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > max)
		return wgf_err_set(err, -EINVAL,
		                   "prefix length %u is out of range for IPv%d (0-%u)", v,
		                   max == 32 ? 4 : 6, max);
	*ret = v;
	return 0;
}

int wgf_cidr_parse(struct wgf_cidr *ret, const char *s, unsigned flags, struct wgf_err *err)
{
	char text[TEXT_MAX + 1];
	struct wgf_cidr c = {0};
	char *slash;
	int r;

	if (!s || !*s)
		return wgf_err_set(err, -EINVAL, "address is empty");
	if (strnlen(s, TEXT_MAX + 1) > TEXT_MAX)
		return wgf_err_set(err, -EINVAL, "address is longer than %d characters", TEXT_MAX);
	memcpy(text, s, strlen(s) + 1);
	slash = strchr(text, '/');
	if (slash)
		*slash = '\0';
	else if (!(flags & WGF_CIDR_F_PREFIX_OPTIONAL))
		return wgf_err_set(err, -EINVAL, "'%s' has no prefix length (such as /24)", s);
	r = wgf_addr_parse(&c.addr, text, err);
	if (r < 0)
		return r;
	c.prefix = max_prefix(c.addr.family);
	if (slash) {
		r = parse_prefix_len(slash + 1, c.prefix, &c.prefix, err);
		if (r < 0)
			return r;
	}
	if (!(flags & WGF_CIDR_F_HOST_BITS)) {
		struct wgf_cidr net;
		char buf[WGF_CIDR_STRLEN];

		wgf_cidr_network(&c, &net);
		if (!wgf_addr_equal(&net.addr, &c.addr)) {
			wgf_cidr_format(&net, buf);
			return wgf_err_set(err, -EINVAL,
			                   "'%s' has host bits set; the network is %s", s, buf);
		}
	}
	*ret = c;
	return 0;
}

void wgf_cidr_format(const struct wgf_cidr *c, char out[static WGF_CIDR_STRLEN])
{
	char *at;

	wgf_addr_format(&c->addr, out);
	at = out + strlen(out);
	*at++ = '/';
	*put_decimal(at, c->prefix) = '\0';
}

void wgf_cidr_network(const struct wgf_cidr *c, struct wgf_cidr *ret)
{
	*ret = *c;
	mask_bytes(ret->addr.bytes, wgf_addr_len(&ret->addr), ret->prefix);
}

/*
 * Whether the first prefix bits of a and b agree: the whole bytes, then the bits of the
 * one byte the prefix ends in. An agent's delta checks a changed peer against every
 * desired one with it, so it copies nothing.
 */
static bool same_prefix(const struct wgf_addr *a, const struct wgf_addr *b, unsigned prefix)
{
	unsigned len = wgf_addr_len(a), full, rest;

	if (prefix > len * 8)
		prefix = len * 8;
	full = prefix / 8;
	rest = prefix % 8;
	if (memcmp(a->bytes, b->bytes, full) != 0)
		return false;
	return rest == 0 ||
	       ((a->bytes[full] ^ b->bytes[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool wgf_cidr_contains(const struct wgf_cidr *c, const struct wgf_addr *a)
{
	return c->addr.family == a->family && same_prefix(&c->addr, a, c->prefix);
}

bool wgf_cidr_overlaps(const struct wgf_cidr *a, const struct wgf_cidr *b)
{
	return a->addr.family == b->addr.family &&
	       same_prefix(&a->addr, &b->addr, a->prefix < b->prefix ? a->prefix : b->prefix);
}

static unsigned host_bits(const struct wgf_cidr *c)
{
	return max_prefix(c->addr.family) - c->prefix;
}

uint64_t wgf_cidr_size(const struct wgf_cidr *c)
{
	unsigned bits = host_bits(c);

	return bits >= 64 ? UINT64_MAX : (uint64_t)1 << bits;
}

uint64_t wgf_cidr_usable(const struct wgf_cidr *c)
{
	uint64_t size = wgf_cidr_size(c);
	unsigned bits = host_bits(c);

	if (bits <= 1)
		return size;
	if (bits >= 64)
		return UINT64_MAX;
	return c->addr.family == AF_INET ? size - 2 : size - 1;
}

int wgf_cidr_index(const struct wgf_cidr *c, const struct wgf_addr *a, uint64_t *ret)
{
	unsigned len = wgf_addr_len(a);
	uint64_t v = 0;

	if (!wgf_cidr_contains(c, a))
		return -ERANGE;
	/* The offset is the host part; refuse one that does not fit in 64 bits. */
	for (unsigned i = 0; i < len; i++) {
		uint8_t b = a->bytes[i];

		if (i * 8 + 8 <= c->prefix)
			continue;
		if (i * 8 < c->prefix)
			b &= (uint8_t)(0xff >> (c->prefix - i * 8));
		if (v >> 56)
			return -ERANGE;
		v = (v << 8) | b;
	}
	*ret = v;
	return 0;
}

bool wgf_cidr_is_usable_host(const struct wgf_cidr *c, const struct wgf_addr *a)
{
	uint64_t idx;
	unsigned bits = host_bits(c);

	if (!wgf_cidr_contains(c, a))
		return false;
	/* An offset past 64 bits (a huge IPv6 prefix) is neither network nor broadcast. */
	if (wgf_cidr_index(c, a, &idx) < 0)
		return true;
	if (bits <= 1)
		return true;
	if (idx == 0)
		return false;
	return !(c->addr.family == AF_INET && idx == wgf_cidr_size(c) - 1);
}

int wgf_cidr_nth(const struct wgf_cidr *c, uint64_t n, struct wgf_addr *ret)
{
	struct wgf_cidr net;
	unsigned len = wgf_addr_len(&c->addr);
	unsigned carry = 0;

	if (host_bits(c) < 64 && n >= wgf_cidr_size(c))
		return -ERANGE;
	wgf_cidr_network(c, &net);
	/* Add n to the network address, byte by byte from the end. */
	for (unsigned i = len; i-- > 0;) {
		unsigned sum = net.addr.bytes[i] + (unsigned)(n & 0xff) + carry;

		net.addr.bytes[i] = (uint8_t)sum;
		carry = sum >> 8;
		n >>= 8;
	}
	*ret = net.addr;
	return 0;
}
