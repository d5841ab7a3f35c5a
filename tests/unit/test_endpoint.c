/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/endpoint.c: every kind of host, port and refusal. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "endpoint.h"

static void assert_good(const char *s, enum wgf_endpoint_kind kind, const char *host, unsigned port)
{
	struct wgf_endpoint ep;
	struct wgf_err err = {0};

	if (wgf_endpoint_parse(&ep, s, 0, &err) < 0)
		fail_msg("'%s' refused: %s", s, err.msg);
	assert_int_equal(ep.kind, kind);
	assert_string_equal(ep.host, host);
	assert_int_equal(ep.port, port);
}

/* Refused with a message containing want, and ret untouched. */
static void assert_bad(const char *s, unsigned flags, const char *want)
{
	struct wgf_endpoint ep = {.port = 7};
	struct wgf_err err = {0};

	if (wgf_endpoint_parse(&ep, s, flags, &err) == 0)
		fail_msg("'%s' accepted", s);
	if (!strstr(err.msg, want))
		fail_msg("'%s': message '%s' lacks '%s'", s, err.msg, want);
	assert_int_equal(ep.port, 7);
}

static void test_accepted(void **state)
{
	(void)state;
	assert_good("vpn1.example.net:51820", WGF_ENDPOINT_NAME, "vpn1.example.net", 51820);
	assert_good("VPN1.Example.NET:1", WGF_ENDPOINT_NAME, "VPN1.Example.NET", 1);
	assert_good("localhost:65535", WGF_ENDPOINT_NAME, "localhost", 65535);
	assert_good("a-b.c-d:9", WGF_ENDPOINT_NAME, "a-b.c-d", 9);
	assert_good("192.0.2.1:51820", WGF_ENDPOINT_IPV4, "192.0.2.1", 51820);
	assert_good("[2001:db8::1]:51820", WGF_ENDPOINT_IPV6, "2001:db8::1", 51820);
	assert_good("[::1]:1", WGF_ENDPOINT_IPV6, "::1", 1);
	assert_good("[::ffff:192.0.2.1]:2", WGF_ENDPOINT_IPV6, "::ffff:192.0.2.1", 2);
}

static void test_hosts_refused(void **state)
{
	char name[300], label[64];

	(void)state;
	assert_bad("[2001:db8::1:51820", 0, "[address]:port");
	assert_bad("[2001:db8::1]51820", 0, "[address]:port");
	assert_bad("[fe80::1%eth0]:51820", 0, "not an IPv6 address");
	assert_bad("[192.0.2.1]:51820", 0, "not an IPv6 address");
	assert_bad("::1:51820", 0, "DNS name");
	assert_bad("1.2.3:51820", 0, "not an IPv4 address");
	assert_bad("256.0.0.1:51820", 0, "not an IPv4 address");
	assert_bad("a;b.example:51820", 0, "DNS name");
	assert_bad("a[b]:51820", 0, "DNS name");
	assert_bad("a\"b:51820", 0, "DNS name");
	assert_bad("a b:51820", 0, "DNS name");
	assert_bad("-bad.example:51820", 0, "DNS name");
	assert_bad("bad-.example:51820", 0, "DNS name");
	assert_bad("a..b:51820", 0, "DNS name");
	assert_bad(".a:51820", 0, "DNS name");
	assert_bad("a.:51820", 0, "DNS name");
	assert_bad("h\x01:1", 0, "DNS name");
	assert_bad(":51820", 0, "empty");
	assert_bad("51820", 0, "host:port");
	/* Labels of 63 pass, 64 do not; names of 253 pass, 254 do not. */
	memset(name, 'a', 64);
	strcpy(name + 64, ":1");
	assert_bad(name, 0, "DNS name");
	strcpy(name + 63, ":1");
	memset(label, 'a', 63);
	label[63] = '\0';
	assert_good(name, WGF_ENDPOINT_NAME, label, 1);
	for (int i = 0; i < 253; i++)
		name[i] = i % 2 ? '.' : 'a';
	name[252] = 'a';
	strcpy(name + 253, ":1");
	{
		struct wgf_endpoint ep;
		struct wgf_err err = {0};

		assert_int_equal(wgf_endpoint_parse(&ep, name, 0, &err), 0);
		name[253] = 'a';
		strcpy(name + 254, ":1");
		assert_bad(name, 0, "longer than 253");
	}
}

static void test_ports(void **state)
{
	struct wgf_endpoint ep;
	struct wgf_err err = {0};

	(void)state;
	for (const char *const *p =
	             (const char *const[]){"h:", "h:0", "h:65536", "h:+1", "h:-1", "h: 1", "h:1 ",
	                                   "h:051820", "h:00", "h:1x", "h:999999", NULL};
	     *p; p++)
		assert_bad(*p, 0, "port must be a decimal number from 1 to 65535");
	assert_int_equal(wgf_endpoint_parse(&ep, "127.0.0.1:0", WGF_ENDPOINT_F_PORT_ZERO, &err), 0);
	assert_int_equal(ep.port, 0);
	assert_bad("127.0.0.1:00", WGF_ENDPOINT_F_PORT_ZERO, "port");
}

static void test_listen_addr(void **state)
{
	struct sockaddr_storage ss = {0};
	const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
	struct wgf_err err = {0};

	(void)state;
	assert_int_equal(wgf_endpoint_listen_addr("127.0.0.1:9469", &ss, &err), 0);
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(ntohs(in->sin_port), 9469);
	assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(wgf_endpoint_listen_addr("[::1]:0", &ss, &err), 0);
	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 0);
	assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
	ss.ss_family = AF_UNIX;
	assert_int_equal(wgf_endpoint_listen_addr("localhost:9469", &ss, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "a listener needs an address"));
	assert_int_equal(ss.ss_family, AF_UNIX); /* untouched */
	assert_int_equal(wgf_endpoint_listen_addr("127.0.0.1", &ss, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_accepted),
	        cmocka_unit_test(test_hosts_refused),
	        cmocka_unit_test(test_ports),
	        cmocka_unit_test(test_listen_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
