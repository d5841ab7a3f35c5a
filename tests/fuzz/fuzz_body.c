/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_body: libFuzzer target for decoding Bodies (proto/body.c). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "wire.h"

/*
 * The seeds in corpus/body/ are the bodies tests/unit/test_body.c encodes (run it with
 * WGF_BODY_CORPUS=tests/fuzz/corpus/body to write them again). Besides surviving any
 * input, the decoder must keep its contract: an error is -EBADMSG or -ENOTSUP (or
 * -ENOMEM) with that code in err; a decoded body is of a known kind, agrees with the
 * tag scan, names a server of 1 to 63 bytes, and encodes again into bytes that decode
 * and encode to the same bytes (the codec has one canonical form for what it accepts).
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *server_of(const struct wgf_body *b)
{
	switch (b->kind) {
	case WGF_WIRE_KIND_HINT:
		return b->hint.server;
	case WGF_WIRE_KIND_SYNC_REQUEST:
		return b->sync_request.server;
	case WGF_WIRE_KIND_SYNC_REPLY:
		return b->sync_reply.server;
	case WGF_WIRE_KIND_REPORT:
		return b->report.server;
	default:
		return NULL;
	}
}

/* Encodes b, decodes that, encodes again: both encodings must be the same bytes. */
static void check_canonical(const struct wgf_body *b)
{
	struct wgf_body again;
	uint8_t *first = NULL, *second = NULL;
	size_t first_len = 0, second_len = 0;
	int r;

	/* An Error of a code this version does not know decodes as unspecified, which
	 * is not sent. */
	if (b->kind == WGF_WIRE_KIND_ERROR && b->error.code == WGF_WIRE_ERROR_UNSPECIFIED)
		return;
	r = wgf_body_encode(b, &first, &first_len, NULL);
	if (r == -ENOMEM)
		return;
	if (r < 0)
		__builtin_trap();
	r = wgf_body_decode(first, first_len, &again, NULL);
	if (r == 0) {
		r = wgf_body_encode(&again, &second, &second_len, NULL);
		wgf_body_fini(&again);
	}
	if (r == 0 && (first_len != second_len || memcmp(first, second, first_len) != 0))
		__builtin_trap();
	if (r < 0 && r != -ENOMEM)
		__builtin_trap();
	free(first);
	free(second);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wgf_err err = {0};
	struct wgf_body b;
	const char *server;
	int r = wgf_body_decode(data, size, &b, &err);

	if (r == -ENOMEM)
		return 0;
	if (r < 0) {
		if ((r != -EBADMSG && r != -ENOTSUP) || err.code != r || !err.msg[0])
			__builtin_trap();
		return 0;
	}
	if (b.kind < WGF_WIRE_KIND_HINT || b.kind > WGF_WIRE_KIND_ERROR ||
	    wgf_wire_body_peek_kind(data, size) != (int)b.kind)
		__builtin_trap();
	server = server_of(&b);
	if (server && (strlen(server) == 0 || strlen(server) > WGF_SERVER_NAME_MAX))
		__builtin_trap();
	check_canonical(&b);
	wgf_body_fini(&b);
	return 0;
}
