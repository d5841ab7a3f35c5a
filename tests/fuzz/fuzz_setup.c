/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_setup: libFuzzer target comparing the endpoint parser with the setup-text writer. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "api_internal.h"
#include "endpoint.h"
#include "setup_text.h"

/*
 * The input, NUL-terminated, is a server's endpoint. The API's check
 * (wgf_endpoint_parse) and setup_text() must agree on it in both formats: the text is
 * written exactly when the endpoint is accepted. An accepted endpoint must appear in
 * the RouterOS text as its quoted host and its port, and in the wg-quick text as it
 * was given; its host must be safe inside RouterOS quotes, and host and port must
 * rebuild the input exactly. The listener form (WGF_ENDPOINT_F_PORT_ZERO) must accept
 * a superset, differing only in port 0. When the input also passes the API's check for
 * a router name, it is used as the router's name, and the texts must still hold no
 * quote it added and no control character but newlines. Anything else aborts.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUTER_ID  "0b7e7a4e-3c1d-4e2a-9f10-2a6c1d9b8e01"
#define PUBLIC_KEY "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

static const struct setup_input base_input = {
        .router_id = ROUTER_ID,
        .router_name = "branch 7",
        .vpn_ip = "10.100.0.2",
        .pool = "10.100.0.0/24",
        .server_name = "gw1",
        .server_public_key = PUBLIC_KEY,
        .keepalive = 25,
};

/* Valid UTF-8, and no control byte except a newline. */
static bool plain_text(const char *s)
{
	if (u8_check((const uint8_t *)s, strlen(s)))
		return false;
	for (const char *p = s; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\n') || *p == 0x7f)
			return false;
	return true;
}

static size_t count_char(const char *s, char ch)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == ch;
	return n;
}

/* What an accepted endpoint promises on its own. */
static void check_endpoint(const struct wgf_endpoint *ep, const char *s, unsigned flags)
{
	char rebuilt[WGF_ENDPOINT_HOST_MAX + 16];
	size_t len = strlen(ep->host);

	if (len == 0 || len > WGF_ENDPOINT_HOST_MAX)
		abort();
	for (const char *p = ep->host; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("\";[]\\", *p))
			abort();
	if ((ep->kind == WGF_ENDPOINT_IPV6) != (s[0] == '['))
		abort();
	if (ep->port == 0 && !(flags & WGF_ENDPOINT_F_PORT_ZERO))
		abort();
	snprintf(rebuilt, sizeof(rebuilt), ep->kind == WGF_ENDPOINT_IPV6 ? "[%s]:%u" : "%s:%u",
	         ep->host, (unsigned)ep->port);
	if (strcmp(rebuilt, s) != 0)
		abort();
}

static void check_texts(const struct wgf_endpoint *ep, const char *s, const char *name,
                        bool accepted)
{
	struct setup_input in = base_input;
	char needle[WGF_ENDPOINT_HOST_MAX + 64];
	char *ros = NULL, *wgq = NULL;
	int r1, r2;

	in.server_endpoint = s;
	in.router_name = name;
	r1 = setup_text(&in, SETUP_ROUTEROS, &ros);
	r2 = setup_text(&in, SETUP_WG_QUICK, &wgq);
	if ((r1 == 0) != accepted || (r2 == 0) != accepted)
		abort();
	if ((r1 < 0 && r1 != -EINVAL) || (r2 < 0 && r2 != -EINVAL))
		abort();
	if (!accepted)
		return;

	snprintf(needle, sizeof(needle), "endpoint-address=\"%s\" ", ep->host);
	if (!strstr(ros, needle))
		abort();
	snprintf(needle, sizeof(needle), " endpoint-port=%u ", (unsigned)ep->port);
	if (!strstr(ros, needle))
		abort();
	snprintf(needle, sizeof(needle), "\nEndpoint = %s\n", s);
	if (!strstr(wgq, needle))
		abort();
	/* comment, public-key and endpoint-address: three quoted values, nothing more. */
	if (count_char(ros, '"') != 6 || !plain_text(ros) || !plain_text(wgq))
		abort();
	free(ros);
	free(wgq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct wgf_endpoint ep, ep0, before;
	struct wgf_err err = {0};
	struct call *c = calloc(1, sizeof(*c));
	bool accepted, accepted0;
	int r;

	if (!s || !c)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	memset(&ep, 0x5a, sizeof(ep));
	before = ep;
	r = wgf_endpoint_parse(&ep, s, 0, &err);
	accepted = r == 0;
	if (!accepted && (r != -EINVAL || err.msg[0] == '\0' || memcmp(&ep, &before, sizeof(ep))))
		abort();
	if (accepted)
		check_endpoint(&ep, s, 0);

	/* The listener form: a superset that differs only in port 0. */
	accepted0 = wgf_endpoint_parse(&ep0, s, WGF_ENDPOINT_F_PORT_ZERO, NULL) == 0;
	if (accepted && (!accepted0 || memcmp(&ep, &ep0, sizeof(ep)) != 0))
		abort();
	if (accepted0 && !accepted && ep0.port != 0)
		abort();
	if (accepted0)
		check_endpoint(&ep0, s, WGF_ENDPOINT_F_PORT_ZERO);

	check_texts(&ep, s, base_input.router_name, accepted);
	check_texts(&ep, s, NULL, accepted);
	/* The input as the router's name too, when the API would take it as one. */
	if (input_text(c, "name", s, 100) == 0)
		check_texts(&ep, s, s, accepted);
	free(c);
	free(s);
	return 0;
}
