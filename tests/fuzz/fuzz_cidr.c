/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_cidr: libFuzzer target for address and prefix parsing and arithmetic (common/cidr.c). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"

/*
 * The input, NUL-terminated, is parsed with each combination of flags. An accepted
 * prefix must format and parse back to itself, and the host arithmetic must agree with
 * itself at both ends of the prefix. A refusal must come with a message and leave the
 * output untouched. Anything else aborts.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool cidr_same(const struct wgf_cidr *a, const struct wgf_cidr *b)
{
	return a->prefix == b->prefix && wgf_addr_equal(&a->addr, &b->addr);
}

static void check_math(const struct wgf_cidr *c)
{
	struct wgf_cidr net;
	struct wgf_addr a;
	uint64_t size = wgf_cidr_size(c), idx;
	unsigned bits = (c->addr.family == AF_INET ? 32 : 128) - c->prefix;

	wgf_cidr_network(c, &net);
	if (!wgf_cidr_contains(c, &c->addr) || !wgf_cidr_contains(&net, &c->addr) ||
	    !wgf_cidr_overlaps(c, &net))
		abort();
	if (size == 0 || wgf_cidr_usable(c) > size)
		abort();
	if (wgf_cidr_nth(c, 0, &a) != 0 || !wgf_addr_equal(&a, &net.addr))
		abort();
	if (wgf_cidr_index(c, &a, &idx) != 0 || idx != 0)
		abort();
	if (wgf_cidr_is_usable_host(c, &a) != (bits <= 1))
		abort();
	if (bits < 64) {
		struct wgf_addr before;

		if (size != (uint64_t)1 << bits)
			abort();
		if (wgf_cidr_nth(c, size - 1, &a) != 0 || !wgf_cidr_contains(c, &a))
			abort();
		if (wgf_cidr_index(c, &a, &idx) != 0 || idx != size - 1)
			abort();
		before = a;
		if (wgf_cidr_nth(c, size, &a) != -ERANGE || memcmp(&a, &before, sizeof(a)) != 0)
			abort();
	} else if (size != UINT64_MAX) {
		abort();
	}
	/* The host address as written has its offset inside the prefix. */
	if (wgf_cidr_index(c, &c->addr, &idx) == 0) {
		if (wgf_cidr_nth(c, idx, &a) != 0 || !wgf_addr_equal(&a, &c->addr))
			abort();
	} else if (bits <= 64) {
		abort();
	}
}

static void check_parse(const char *s, unsigned flags)
{
	struct wgf_cidr c, c2, before;
	struct wgf_err err = {0};
	char text[WGF_CIDR_STRLEN], text2[WGF_CIDR_STRLEN];
	int r;

	memset(&c, 0x5a, sizeof(c));
	before = c;
	r = wgf_cidr_parse(&c, s, flags, &err);
	if (r < 0) {
		if (r != -EINVAL || err.code != r || err.msg[0] == '\0' ||
		    memcmp(&c, &before, sizeof(c)) != 0)
			abort();
		return;
	}
	if (r != 0 || (c.addr.family != AF_INET && c.addr.family != AF_INET6) ||
	    c.prefix > (c.addr.family == AF_INET ? 32U : 128U))
		abort();

	/* Format and reparse: the same prefix, the same text. */
	wgf_cidr_format(&c, text);
	if (wgf_cidr_parse(&c2, text, flags, NULL) != 0 || !cidr_same(&c, &c2))
		abort();
	wgf_cidr_format(&c2, text2);
	if (strcmp(text, text2) != 0)
		abort();

	/* Without HOST_BITS the result is a network; anything strict passes every flag. */
	if (!(flags & WGF_CIDR_F_HOST_BITS)) {
		struct wgf_cidr net;

		wgf_cidr_network(&c, &net);
		if (!cidr_same(&c, &net))
			abort();
	}
	if (flags == 0) {
		for (unsigned f = 1; f < 4; f++)
			if (wgf_cidr_parse(&c2, s, f, NULL) != 0 || !cidr_same(&c, &c2))
				abort();
	}
	check_math(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct wgf_addr a, a2;
	char text[WGF_ADDR_STRLEN];

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	for (unsigned flags = 0; flags < 4; flags++)
		check_parse(s, flags);
	if (wgf_addr_parse(&a, s, NULL) == 0) {
		wgf_addr_format(&a, text);
		if (wgf_addr_parse(&a2, text, NULL) != 0 || !wgf_addr_equal(&a, &a2))
			abort();
	}
	free(s);
	return 0;
}
