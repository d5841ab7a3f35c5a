/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/cidr.c: parsing, messages, containment and host arithmetic. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "cidr.h"

#define F_HOST WGF_CIDR_F_HOST_BITS
#define F_OPT  WGF_CIDR_F_PREFIX_OPTIONAL

static struct wgf_cidr cidr(const char *s, unsigned flags)
{
	struct wgf_cidr c;
	struct wgf_err err = {0};

	if (wgf_cidr_parse(&c, s, flags, &err) < 0)
		fail_msg("'%s': %s", s, err.msg);
	return c;
}

static struct wgf_addr addr(const char *s)
{
	struct wgf_addr a;
	struct wgf_err err = {0};

	if (wgf_addr_parse(&a, s, &err) < 0)
		fail_msg("'%s': %s", s, err.msg);
	return a;
}

static void assert_format(const struct wgf_cidr *c, const char *want)
{
	char buf[WGF_CIDR_STRLEN];

	wgf_cidr_format(c, buf);
	assert_string_equal(buf, want);
}

static void assert_addr_str(const struct wgf_addr *a, const char *want)
{
	char buf[WGF_ADDR_STRLEN];

	wgf_addr_format(a, buf);
	assert_string_equal(buf, want);
}

/* Asserts that s is refused with exactly msg and that ret is not written. */
static void assert_bad(const char *s, unsigned flags, const char *msg)
{
	struct wgf_cidr c, before;
	struct wgf_err err = {0};

	memset(&c, 0x5a, sizeof(c));
	before = c;
	assert_int_equal(wgf_cidr_parse(&c, s, flags, &err), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_string_equal(err.msg, msg);
	assert_memory_equal(&c, &before, sizeof(c));
	assert_int_equal(wgf_cidr_parse(&c, s, flags, NULL), -EINVAL);
}

static void test_parse_ipv4(void **state)
{
	static const uint8_t want[4] = {10, 100, 0, 0};
	struct wgf_cidr c = cidr("10.100.0.0/24", 0);

	(void)state;
	assert_int_equal(c.addr.family, AF_INET);
	assert_int_equal(c.prefix, 24);
	assert_memory_equal(c.addr.bytes, want, 4);
	assert_int_equal(wgf_addr_len(&c.addr), 4);
	assert_format(&c, "10.100.0.0/24");

	c = cidr("0.0.0.0/0", 0);
	assert_int_equal(c.prefix, 0);
	assert_format(&c, "0.0.0.0/0");
	c = cidr("192.168.1.77/32", 0);
	assert_format(&c, "192.168.1.77/32");
	c = cidr("255.255.255.255/32", 0);
	assert_format(&c, "255.255.255.255/32");
	c = cidr("10.0.0.128/25", 0);
	assert_format(&c, "10.0.0.128/25");
}

static void test_parse_ipv6(void **state)
{
	static const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8};
	struct wgf_cidr c = cidr("2001:db8::/32", 0);

	(void)state;
	assert_int_equal(c.addr.family, AF_INET6);
	assert_int_equal(c.prefix, 32);
	assert_memory_equal(c.addr.bytes, want, 16);
	assert_int_equal(wgf_addr_len(&c.addr), 16);
	assert_format(&c, "2001:db8::/32");

	/* Output is canonical (RFC 5952): lower case, zeros compressed. */
	c = cidr("2001:0DB8:0000:0000::/64", 0);
	assert_format(&c, "2001:db8::/64");
	c = cidr("::/0", 0);
	assert_format(&c, "::/0");
	c = cidr("fd00:1:2:3:4:5:6:7/128", 0);
	assert_format(&c, "fd00:1:2:3:4:5:6:7/128");
	c = cidr("::ffff:10.0.0.1/128", 0);
	assert_int_equal(c.addr.family, AF_INET6);
	assert_format(&c, "::ffff:10.0.0.1/128");
}

static void test_addr_parse(void **state)
{
	struct wgf_addr a, b;
	struct wgf_err err = {0};

	(void)state;
	a = addr("10.0.0.1");
	assert_int_equal(a.family, AF_INET);
	assert_addr_str(&a, "10.0.0.1");
	b = addr("::1");
	assert_int_equal(b.family, AF_INET6);
	assert_addr_str(&b, "::1");
	assert_false(wgf_addr_equal(&a, &b));
	assert_true(wgf_addr_equal(&a, &(struct wgf_addr){AF_INET, {10, 0, 0, 1}}));

	memset(&a, 0x5a, sizeof(a));
	b = a;
	assert_int_equal(wgf_addr_parse(&a, "10.0.0.0/8", &err), -EINVAL);
	assert_string_equal(err.msg, "'10.0.0.0/8' is not an IPv4 or IPv6 address");
	assert_int_equal(wgf_addr_parse(&a, "", &err), -EINVAL);
	assert_string_equal(err.msg, "address is empty");
	assert_int_equal(wgf_addr_parse(&a, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "address is empty");
	assert_memory_equal(&a, &b, sizeof(a));
}

static void test_bad_input(void **state)
{
	char s[100];

	(void)state;
	assert_bad("", 0, "address is empty");
	assert_bad(NULL, 0, "address is empty");
	assert_bad("", F_OPT | F_HOST, "address is empty");

	/* 64 characters is the limit; 65 is refused before anything else. */
	memset(s, '1', 65);
	s[65] = '\0';
	assert_bad(s, 0, "address is longer than 64 characters");
	s[64] = '\0';
	assert_bad(s, 0,
	           "'1111111111111111111111111111111111111111111111111111111111111111' has "
	           "no prefix length (such as /24)");

	assert_bad("10.0.0.256/24", 0, "'10.0.0.256' is not an IPv4 or IPv6 address");
	assert_bad("example.com/24", 0, "'example.com' is not an IPv4 or IPv6 address");
	assert_bad("10.0.0/24", 0, "'10.0.0' is not an IPv4 or IPv6 address");
	assert_bad("/24", 0, "address is empty");
	assert_bad("fe80::1%eth0/64", 0, "'fe80::1%eth0' is not an IPv4 or IPv6 address");
	assert_bad(" 10.0.0.0/8", 0, "' 10.0.0.0' is not an IPv4 or IPv6 address");

	assert_bad("10.0.0.0", 0, "'10.0.0.0' has no prefix length (such as /24)");
	assert_bad("2001:db8::", 0, "'2001:db8::' has no prefix length (such as /24)");

	assert_bad("10.0.0.0/", 0, "prefix length '' is not a number from 0 to 32");
	assert_bad("10.0.0.0/abc", 0, "prefix length 'abc' is not a number from 0 to 32");
	assert_bad("10.0.0.0/-1", 0, "prefix length '-1' is not a number from 0 to 32");
	assert_bad("10.0.0.0/+8", 0, "prefix length '+8' is not a number from 0 to 32");
	assert_bad("10.0.0.0/ 8", 0, "prefix length ' 8' is not a number from 0 to 32");
	assert_bad("10.0.0.0/8 ", 0, "prefix length '8 ' is not a number from 0 to 32");
	assert_bad("10.0.0.0/8/8", 0, "prefix length '8/8' is not a number from 0 to 32");
	assert_bad("10.0.0.0/1000", 0, "prefix length '1000' is not a number from 0 to 32");
	assert_bad("2001:db8::/x", 0, "prefix length 'x' is not a number from 0 to 128");
	assert_bad("::/1000", 0, "prefix length '1000' is not a number from 0 to 128");

	/* Leading zeros are refused; a lone 0 is fine. */
	assert_bad("10.0.0.0/08", 0, "prefix length '08' is not a number from 0 to 32");
	assert_bad("10.0.0.0/00", 0, "prefix length '00' is not a number from 0 to 32");
	assert_bad("::/064", 0, "prefix length '064' is not a number from 0 to 128");

	assert_bad("10.0.0.0/33", 0, "prefix length 33 is out of range for IPv4 (0-32)");
	assert_bad("10.0.0.0/999", 0, "prefix length 999 is out of range for IPv4 (0-32)");
	assert_bad("::/129", 0, "prefix length 129 is out of range for IPv6 (0-128)");
	assert_bad("::/999", 0, "prefix length 999 is out of range for IPv6 (0-128)");
	/* The range error comes first, also for flags that accept host bits. */
	assert_bad("10.0.0.1/33", F_HOST, "prefix length 33 is out of range for IPv4 (0-32)");
}

static void test_host_bits(void **state)
{
	(void)state;
	assert_bad("10.100.0.7/24", 0,
	           "'10.100.0.7/24' has host bits set; the network is 10.100.0.0/24");
	assert_bad("10.0.0.129/25", 0,
	           "'10.0.0.129/25' has host bits set; the network is 10.0.0.128/25");
	assert_bad("10.0.0.1/0", 0, "'10.0.0.1/0' has host bits set; the network is 0.0.0.0/0");
	assert_bad("172.16.5.4/12", 0,
	           "'172.16.5.4/12' has host bits set; the network is 172.16.0.0/12");
	assert_bad("2001:db8::1/64", 0,
	           "'2001:db8::1/64' has host bits set; the network is 2001:db8::/64");
	assert_bad("2001:db8:ffff::/33", 0,
	           "'2001:db8:ffff::/33' has host bits set; the network is 2001:db8:8000::/33");
	/* PREFIX_OPTIONAL alone still wants a network when a prefix is given. */
	assert_bad("10.0.0.7/24", F_OPT,
	           "'10.0.0.7/24' has host bits set; the network is 10.0.0.0/24");
}

static void test_flags(void **state)
{
	struct wgf_cidr c, net;

	(void)state;
	/* HOST_BITS keeps the address as written. */
	c = cidr("10.100.0.7/24", F_HOST);
	assert_int_equal(c.prefix, 24);
	assert_format(&c, "10.100.0.7/24");
	wgf_cidr_network(&c, &net);
	assert_format(&net, "10.100.0.0/24");
	assert_format(&c, "10.100.0.7/24");
	c = cidr("2001:db8::1/64", F_HOST);
	assert_format(&c, "2001:db8::1/64");
	wgf_cidr_network(&c, &net);
	assert_format(&net, "2001:db8::/64");

	/* PREFIX_OPTIONAL: a bare address is a host route. */
	c = cidr("10.0.0.1", F_OPT);
	assert_int_equal(c.prefix, 32);
	assert_format(&c, "10.0.0.1/32");
	c = cidr("fe80::1", F_OPT);
	assert_int_equal(c.prefix, 128);
	assert_format(&c, "fe80::1/128");
	c = cidr("10.0.0.0/8", F_OPT);
	assert_int_equal(c.prefix, 8);

	/* Both. */
	c = cidr("10.9.8.7", F_OPT | F_HOST);
	assert_format(&c, "10.9.8.7/32");
	c = cidr("10.9.8.7/16", F_OPT | F_HOST);
	assert_format(&c, "10.9.8.7/16");
	assert_bad("10.9.8.7", F_HOST, "'10.9.8.7' has no prefix length (such as /24)");
}

static void test_contains(void **state)
{
	struct wgf_cidr c = cidr("10.0.0.0/8", 0);
	struct wgf_cidr v6 = cidr("2001:db8::/32", 0);
	struct wgf_cidr all4 = cidr("0.0.0.0/0", 0);
	struct wgf_cidr host = cidr("10.1.2.3/32", 0);
	struct wgf_cidr odd = cidr("10.0.0.0/9", 0);
	struct wgf_addr a;

	(void)state;
	a = addr("10.255.1.2");
	assert_true(wgf_cidr_contains(&c, &a));
	a = addr("10.0.0.0");
	assert_true(wgf_cidr_contains(&c, &a));
	a = addr("11.0.0.0");
	assert_false(wgf_cidr_contains(&c, &a));
	a = addr("9.255.255.255");
	assert_false(wgf_cidr_contains(&c, &a));
	a = addr("10.127.255.255");
	assert_true(wgf_cidr_contains(&odd, &a));
	a = addr("10.128.0.0");
	assert_false(wgf_cidr_contains(&odd, &a));

	a = addr("10.1.2.3");
	assert_true(wgf_cidr_contains(&host, &a));
	a = addr("10.1.2.4");
	assert_false(wgf_cidr_contains(&host, &a));

	a = addr("2001:db8:ffff::1");
	assert_true(wgf_cidr_contains(&v6, &a));
	a = addr("2001:db9::");
	assert_false(wgf_cidr_contains(&v6, &a));

	/* Mixed families never contain each other, not even /0. */
	a = addr("::ffff:10.0.0.1");
	assert_false(wgf_cidr_contains(&c, &a));
	assert_false(wgf_cidr_contains(&all4, &a));
	a = addr("10.0.0.1");
	assert_false(wgf_cidr_contains(&v6, &a));
	assert_true(wgf_cidr_contains(&all4, &a));
}

static void test_overlaps(void **state)
{
	struct wgf_cidr a = cidr("10.0.0.0/8", 0), b = cidr("10.1.0.0/16", 0);
	struct wgf_cidr c = cidr("10.0.0.0/24", 0), d = cidr("10.0.1.0/24", 0);
	struct wgf_cidr all4 = cidr("0.0.0.0/0", 0), all6 = cidr("::/0", 0);
	struct wgf_cidr v6a = cidr("fd00::/8", 0), v6b = cidr("fd00:1::/32", 0);
	struct wgf_cidr v6c = cidr("fe80::/10", 0);

	(void)state;
	assert_true(wgf_cidr_overlaps(&a, &b));
	assert_true(wgf_cidr_overlaps(&b, &a));
	assert_true(wgf_cidr_overlaps(&a, &a));
	assert_false(wgf_cidr_overlaps(&c, &d));
	assert_false(wgf_cidr_overlaps(&d, &c));
	assert_true(wgf_cidr_overlaps(&c, &a));
	assert_false(wgf_cidr_overlaps(&b, &c));
	assert_true(wgf_cidr_overlaps(&all4, &d));
	assert_true(wgf_cidr_overlaps(&v6a, &v6b));
	assert_false(wgf_cidr_overlaps(&v6a, &v6c));
	/* Families never overlap. */
	assert_false(wgf_cidr_overlaps(&all4, &all6));
	assert_false(wgf_cidr_overlaps(&all6, &a));
	assert_true(wgf_cidr_overlaps(&all6, &v6c));
}

static void test_size_and_usable(void **state)
{
	static const struct {
		const char *cidr;
		uint64_t size, usable;
	} cases[] = {
	        {"10.0.0.0/24", 256, 254},
	        {"10.0.0.0/31", 2, 2},
	        {"10.0.0.1/32", 1, 1},
	        {"10.0.0.4/30", 4, 2},
	        {"10.0.0.0/16", 65536, 65534},
	        {"10.0.0.0/8", 16777216, 16777214},
	        {"0.0.0.0/0", 4294967296ULL, 4294967294ULL},
	        {"2001:db8::/64", UINT64_MAX, UINT64_MAX},
	        {"2001:db8::/48", UINT64_MAX, UINT64_MAX},
	        {"::/0", UINT64_MAX, UINT64_MAX},
	        {"2001:db8::/65", 1ULL << 63, (1ULL << 63) - 1},
	        {"2001:db8::/120", 256, 255},
	        {"2001:db8::/127", 2, 2},
	        {"2001:db8::1/128", 1, 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wgf_cidr c = cidr(cases[i].cidr, 0);

		if (wgf_cidr_size(&c) != cases[i].size || wgf_cidr_usable(&c) != cases[i].usable)
			fail_msg("%s: size %ju usable %ju", cases[i].cidr,
			         (uintmax_t)wgf_cidr_size(&c), (uintmax_t)wgf_cidr_usable(&c));
	}
}

static void test_nth(void **state)
{
	struct wgf_cidr c24 = cidr("10.0.0.0/24", 0), c16 = cidr("10.0.0.0/16", 0);
	struct wgf_cidr c6 = cidr("2001:db8::/64", 0), c120 = cidr("2001:db8::/120", 0);
	struct wgf_cidr host = cidr("10.1.2.3/24", F_HOST);
	struct wgf_addr a, before;

	(void)state;
	assert_int_equal(wgf_cidr_nth(&c24, 0, &a), 0);
	assert_addr_str(&a, "10.0.0.0");
	assert_int_equal(wgf_cidr_nth(&c24, 1, &a), 0);
	assert_addr_str(&a, "10.0.0.1");
	assert_int_equal(wgf_cidr_nth(&c24, 255, &a), 0);
	assert_addr_str(&a, "10.0.0.255");

	memset(&a, 0x5a, sizeof(a));
	before = a;
	assert_int_equal(wgf_cidr_nth(&c24, 256, &a), -ERANGE);
	assert_int_equal(wgf_cidr_nth(&c24, UINT64_MAX, &a), -ERANGE);
	assert_memory_equal(&a, &before, sizeof(a));

	/* Carry across bytes: 10.0.0.255 + 1 in a /16. */
	assert_int_equal(wgf_cidr_nth(&c16, 256, &a), 0);
	assert_addr_str(&a, "10.0.1.0");
	assert_int_equal(wgf_cidr_nth(&c16, 0x1ff, &a), 0);
	assert_addr_str(&a, "10.0.1.255");
	assert_int_equal(wgf_cidr_nth(&c16, 65535, &a), 0);
	assert_addr_str(&a, "10.0.255.255");
	assert_int_equal(wgf_cidr_nth(&c16, 65536, &a), -ERANGE);

	/* Counted from the network, whatever host bits the prefix carries. */
	assert_int_equal(wgf_cidr_nth(&host, 5, &a), 0);
	assert_addr_str(&a, "10.1.2.5");

	assert_int_equal(wgf_cidr_nth(&c6, 1, &a), 0);
	assert_addr_str(&a, "2001:db8::1");
	assert_int_equal(wgf_cidr_nth(&c6, 0x10000, &a), 0);
	assert_addr_str(&a, "2001:db8::1:0");
	assert_int_equal(wgf_cidr_nth(&c6, UINT64_MAX, &a), 0);
	assert_addr_str(&a, "2001:db8::ffff:ffff:ffff:ffff");
	assert_int_equal(wgf_cidr_nth(&c120, 255, &a), 0);
	assert_addr_str(&a, "2001:db8::ff");
	assert_int_equal(wgf_cidr_nth(&c120, 256, &a), -ERANGE);
}

static void test_index(void **state)
{
	struct wgf_cidr c22 = cidr("10.0.4.0/22", 0), c16 = cidr("10.0.0.0/16", 0);
	struct wgf_cidr c6 = cidr("2001:db8::/64", 0), c63 = cidr("2001:db8::/63", 0);
	struct wgf_cidr c56 = cidr("2001:db8::/56", 0);
	struct wgf_addr a;
	uint64_t idx;

	(void)state;
	/* index is the inverse of nth over a whole prefix. */
	for (uint64_t n = 0; n < wgf_cidr_size(&c22); n++) {
		assert_int_equal(wgf_cidr_nth(&c22, n, &a), 0);
		assert_true(wgf_cidr_contains(&c22, &a));
		assert_int_equal(wgf_cidr_index(&c22, &a, &idx), 0);
		assert_int_equal(idx, n);
	}
	a = addr("10.0.1.0");
	assert_int_equal(wgf_cidr_index(&c16, &a, &idx), 0);
	assert_int_equal(idx, 256);

	/* Outside, or another family: -ERANGE, and ret is not written. */
	idx = 777;
	a = addr("10.0.8.0");
	assert_int_equal(wgf_cidr_index(&c22, &a, &idx), -ERANGE);
	a = addr("::a00:400");
	assert_int_equal(wgf_cidr_index(&c22, &a, &idx), -ERANGE);
	assert_int_equal(idx, 777);

	a = addr("2001:db8::ffff:ffff:ffff:ffff");
	assert_int_equal(wgf_cidr_index(&c6, &a, &idx), 0);
	assert_int_equal(idx, UINT64_MAX);
	/* A /63 offset fits while its top bit is clear. */
	a = addr("2001:db8::ffff:ffff:ffff:fffe");
	assert_int_equal(wgf_cidr_index(&c63, &a, &idx), 0);
	assert_int_equal(idx, UINT64_MAX - 1);
	a = addr("2001:db8:0:1::");
	idx = 777;
	assert_int_equal(wgf_cidr_index(&c63, &a, &idx), -ERANGE);
	/* Too far into a /56. */
	a = addr("2001:db8:0:ff::1");
	assert_int_equal(wgf_cidr_index(&c56, &a, &idx), -ERANGE);
	assert_int_equal(idx, 777);
	a = addr("2001:db8::5");
	assert_int_equal(wgf_cidr_index(&c56, &a, &idx), 0);
	assert_int_equal(idx, 5);
}

static void test_is_usable_host(void **state)
{
	struct wgf_cidr c24 = cidr("10.0.0.0/24", 0), c31 = cidr("10.0.0.0/31", 0);
	struct wgf_cidr c32 = cidr("10.0.0.9/32", 0), c30 = cidr("10.0.0.4/30", 0);
	struct wgf_cidr c6 = cidr("2001:db8::/64", 0), c127 = cidr("2001:db8::/127", 0);
	struct wgf_cidr c56 = cidr("2001:db8::/56", 0);
	struct wgf_addr a;

	(void)state;
	a = addr("10.0.0.0");
	assert_false(wgf_cidr_is_usable_host(&c24, &a));
	a = addr("10.0.0.255");
	assert_false(wgf_cidr_is_usable_host(&c24, &a));
	a = addr("10.0.0.1");
	assert_true(wgf_cidr_is_usable_host(&c24, &a));
	a = addr("10.0.0.254");
	assert_true(wgf_cidr_is_usable_host(&c24, &a));
	a = addr("10.0.1.1");
	assert_false(wgf_cidr_is_usable_host(&c24, &a));

	/* RFC 3021: both addresses of a /31 are hosts; a /32 is one. */
	a = addr("10.0.0.0");
	assert_true(wgf_cidr_is_usable_host(&c31, &a));
	a = addr("10.0.0.1");
	assert_true(wgf_cidr_is_usable_host(&c31, &a));
	a = addr("10.0.0.9");
	assert_true(wgf_cidr_is_usable_host(&c32, &a));

	a = addr("10.0.0.4");
	assert_false(wgf_cidr_is_usable_host(&c30, &a));
	a = addr("10.0.0.5");
	assert_true(wgf_cidr_is_usable_host(&c30, &a));
	a = addr("10.0.0.6");
	assert_true(wgf_cidr_is_usable_host(&c30, &a));
	a = addr("10.0.0.7");
	assert_false(wgf_cidr_is_usable_host(&c30, &a));

	/* IPv6: the subnet-router anycast address is not a host; there is no broadcast. */
	a = addr("2001:db8::");
	assert_false(wgf_cidr_is_usable_host(&c6, &a));
	a = addr("2001:db8::1");
	assert_true(wgf_cidr_is_usable_host(&c6, &a));
	a = addr("2001:db8::ffff:ffff:ffff:ffff");
	assert_true(wgf_cidr_is_usable_host(&c6, &a));
	a = addr("2001:db8::");
	assert_true(wgf_cidr_is_usable_host(&c127, &a));
	a = addr("2001:db8::1");
	assert_true(wgf_cidr_is_usable_host(&c127, &a));
	a = addr("2001:db8::");
	assert_false(wgf_cidr_is_usable_host(&c56, &a));
	a = addr("2001:db8:0:ff::");
	assert_true(wgf_cidr_is_usable_host(&c56, &a));
	a = addr("10.0.0.1");
	assert_false(wgf_cidr_is_usable_host(&c6, &a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_ipv4),      cmocka_unit_test(test_parse_ipv6),
	        cmocka_unit_test(test_addr_parse),      cmocka_unit_test(test_bad_input),
	        cmocka_unit_test(test_host_bits),       cmocka_unit_test(test_flags),
	        cmocka_unit_test(test_contains),        cmocka_unit_test(test_overlaps),
	        cmocka_unit_test(test_size_and_usable), cmocka_unit_test(test_nth),
	        cmocka_unit_test(test_index),           cmocka_unit_test(test_is_usable_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
