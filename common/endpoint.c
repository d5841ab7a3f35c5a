/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* endpoint: the host:port parser. */
#include "endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#define LABEL_MAX 63

static bool is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Dot-separated labels of letters, digits and inner dashes (RFC 1123). */
static bool is_dns_name(const char *s, size_t n)
{
	size_t label = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(ch) && !(ch == '-' && label > 0))
			return false;
		if (++label > LABEL_MAX)
			return false;
	}
	return label > 0 && s[n - 1] != '-';
}

static int parse_port(const char *s, unsigned flags, uint16_t *ret, struct wgf_err *err)
{
	size_t n = strspn(s, "0123456789");
	unsigned long port = 0;

	if (n == 0 || s[n] != '\0' || n > 5 || (s[0] == '0' && n > 1))
		return wgf_err_set(err, -EINVAL,
		                   "the port must be a decimal number from 1 to 65535");
	for (size_t i = 0; i < n; i++)
		port = port * 10 + (unsigned long)(s[i] - '0');
	if (port > 65535 || (port == 0 && !(flags & WGF_ENDPOINT_F_PORT_ZERO)))
		return wgf_err_set(err, -EINVAL,
		                   "the port must be a decimal number from 1 to 65535");
	*ret = (uint16_t)port;
	return 0;
}

int wgf_endpoint_parse(struct wgf_endpoint *ret, const char *s, unsigned flags, struct wgf_err *err)
{
	struct wgf_endpoint ep = {0};
	unsigned char bin[16];
	const char *host = s, *colon;
	size_t n;
	int r;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return wgf_err_set(err, -EINVAL,
			                   "an IPv6 address must be written [address]:port");
		host = s + 1;
		n = (size_t)(close - host);
		colon = close + 1;
		ep.kind = WGF_ENDPOINT_IPV6;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return wgf_err_set(err, -EINVAL, "must be host:port");
		n = (size_t)(colon - s);
		ep.kind = strspn(s, "0123456789.") == n ? WGF_ENDPOINT_IPV4 : WGF_ENDPOINT_NAME;
	}
	if (n == 0)
		return wgf_err_set(err, -EINVAL, "the host is empty");
	if (n > WGF_ENDPOINT_HOST_MAX)
		return wgf_err_set(err, -EINVAL, "the host is longer than %d characters",
		                   WGF_ENDPOINT_HOST_MAX);
	memcpy(ep.host, host, n);
	ep.host[n] = '\0';
	switch (ep.kind) {
	case WGF_ENDPOINT_IPV6:
		if (inet_pton(AF_INET6, ep.host, bin) != 1)
			return wgf_err_set(err, -EINVAL,
			                   "the host in brackets is not an IPv6 address");
		break;
	case WGF_ENDPOINT_IPV4:
		if (inet_pton(AF_INET, ep.host, bin) != 1)
			return wgf_err_set(err, -EINVAL, "the host is not an IPv4 address");
		break;
	case WGF_ENDPOINT_NAME:
		if (!is_dns_name(ep.host, n))
			return wgf_err_set(err, -EINVAL,
			                   "the host must be a DNS name (letters, digits, dashes "
			                   "and dots), an IPv4 address or [IPv6]");
		break;
	}
	r = parse_port(colon + 1, flags, &ep.port, err);
	if (r < 0)
		return r;
	*ret = ep;
	return 0;
}

int wgf_endpoint_listen_addr(const char *s, struct sockaddr_storage *ret, struct wgf_err *err)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	struct wgf_endpoint ep;
	int r;

	r = wgf_endpoint_parse(&ep, s, WGF_ENDPOINT_F_PORT_ZERO, err);
	if (r < 0)
		return r;
	if (ep.kind == WGF_ENDPOINT_NAME)
		return wgf_err_set(err, -EINVAL, "'%s' names a host; a listener needs an address",
		                   s);
	if (ep.kind == WGF_ENDPOINT_IPV4) {
		in->sin_family = AF_INET;
		in->sin_port = htons(ep.port);
		(void)inet_pton(AF_INET, ep.host, &in->sin_addr);
	} else {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(ep.port);
		(void)inet_pton(AF_INET6, ep.host, &in6->sin6_addr);
	}
	*ret = ss;
	return 0;
}
