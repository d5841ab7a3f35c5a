/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* endpoint: "host:port" text, checked once for everything that reads or writes it. */
#ifndef WGF_COMMON_ENDPOINT_H
#define WGF_COMMON_ENDPOINT_H

/*
 * A WireGuard endpoint as people write it: a DNS name, an IPv4 address or a bracketed
 * IPv6 address, a colon, and a decimal port. This is the one parser of that text: the
 * API checks a server's endpoint with it, the setup-text writer splits it with it, and
 * the HTTP listener reads its address with it, so no string is accepted by one and
 * refused by another.
 *
 * Accepted: "vpn1.example.net:51820", "192.0.2.1:51820", "[2001:db8::1]:51820". A name
 * is 1-253 characters of dot-separated labels of letters, digits and inner dashes, each
 * 1-63 long; a name made only of digits and dots must be a real IPv4 address. A
 * bracketed address must be IPv6 without a zone. The port is 1-65535 in plain decimal
 * (no sign, space or leading zero); WGF_ENDPOINT_F_PORT_ZERO also allows 0 ("pick a
 * free port", for listeners). So nothing that passes holds a space, quote, semicolon,
 * bracket outside the IPv6 form, or control character, and the host can be quoted in a
 * RouterOS script or a log line as it is.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

#define WGF_ENDPOINT_HOST_MAX    253
#define WGF_ENDPOINT_F_PORT_ZERO (1U << 0)

enum wgf_endpoint_kind {
	WGF_ENDPOINT_NAME,
	WGF_ENDPOINT_IPV4,
	WGF_ENDPOINT_IPV6,
};

struct wgf_endpoint {
	enum wgf_endpoint_kind kind;
	char host[WGF_ENDPOINT_HOST_MAX + 1]; /* without brackets */
	uint16_t port;
};

/* Parses s; on failure err says what is wrong and *ret is untouched. */
int wgf_endpoint_parse(struct wgf_endpoint *ret, const char *s, unsigned flags,
                       struct wgf_err *err);

/* A listener's "address:port" (port 0 allowed, no DNS name) as a socket address. */
int wgf_endpoint_listen_addr(const char *s, struct sockaddr_storage *ret, struct wgf_err *err);

#endif
