/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_uapi: libFuzzer target for the UAPI reply parser (agent/uapi.c). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "key.h"
#include "uapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks get (with a device) or set (without); the rest is the reply.
 * Whole-text parsing and line-by-line feeding must agree, and a parsed device must
 * respect the bounds.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct wgf_device dev = {0}, dev2 = {0};
	struct uapi_parser p;
	const char *text, *end;
	bool is_get;
	int remote = 0, r, r2 = 0;

	if (!ready) {
		if (wgf_key_init() < 0)
			__builtin_trap();
		ready = true;
	}
	if (size < 1)
		return 0;
	is_get = data[0] & 1;
	text = (const char *)data + 1;
	end = text + size - 1;
	r = uapi_parse(text, size - 1, is_get ? &dev : NULL, &remote, NULL);
	if (r == 0 && (remote > 0 || remote < -4095))
		__builtin_trap();
	for (size_t i = 0; i < dev.n_peers; i++)
		if (dev.peers[i].n_allowed_ips > WGF_PEER_ALLOWED_IPS_MAX)
			__builtin_trap();

	uapi_parser_init(&p, is_get ? &dev2 : NULL);
	while (text < end && r2 == 0) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));

		if (!nl)
			break;
		r2 = uapi_parser_feed(&p, text, (size_t)(nl - text), NULL);
		text = nl + 1;
	}
	/* A complete reply parses the same both ways (uapi_parse also wants nothing after). */
	if (r == 0 && (r2 != 1 || p.remote_errno != remote || dev.n_peers != dev2.n_peers))
		__builtin_trap();
	wgf_device_fini(&dev);
	wgf_device_fini(&dev2);
	return 0;
}
