/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_key: libFuzzer target for the key codecs and checks (common/key.c). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "key.h"

/*
 * The input, NUL-terminated, is decoded as a base64 key of both kinds and as a hex
 * key. An accepted key must encode back to exactly the input (only the canonical form
 * is accepted) and pass its own check; a refused one must come with a message that
 * does not quote the input, and must leave the output untouched. Anything else aborts.
 */

#define PATTERN 0xa5

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (wgf_key_init() < 0)
		abort();
	return 0;
}

static bool is_pattern(const uint8_t k[static WGF_KEY_LEN])
{
	for (size_t i = 0; i < WGF_KEY_LEN; i++)
		if (k[i] != PATTERN)
			return false;
	return true;
}

static void check_refusal(int r, const struct wgf_err *err, const uint8_t k[static WGF_KEY_LEN],
                          const char *s)
{
	if (r != -EINVAL || err->code != r || err->msg[0] == '\0' || !is_pattern(k))
		abort();
	/* A key-sized input never shows up in the message. */
	if (strlen(s) >= 40 && strstr(err->msg, s))
		abort();
}

static void check_base64(const char *s, enum wgf_key_kind kind)
{
	uint8_t k[WGF_KEY_LEN], pub[WGF_KEY_LEN];
	char out[WGF_KEY_B64_LEN];
	struct wgf_err err = {0};
	int r;

	memset(k, PATTERN, sizeof(k));
	r = wgf_key_from_base64(k, s, kind, &err);
	if (r < 0) {
		check_refusal(r, &err, k, s);
		return;
	}
	if (r != 0 || err.code != 0)
		abort();
	wgf_key_to_base64(out, k);
	if (strcmp(out, s) != 0)
		abort();
	if (wgf_key_check(k, kind, NULL) != 0 || wgf_key_is_zero(k))
		abort();
	/* A clamped non-zero scalar always gives a good public key. */
	if (kind == WGF_KEY_PRIVATE) {
		if (wgf_key_public_from_private(pub, k) != 0)
			abort();
		if (wgf_key_check(pub, WGF_KEY_PUBLIC, NULL) != 0)
			abort();
	}
}

static void check_hex(const char *s)
{
	uint8_t k[WGF_KEY_LEN];
	char out[WGF_KEY_HEX_LEN];
	struct wgf_err err = {0};
	int r;

	memset(k, PATTERN, sizeof(k));
	r = wgf_key_from_hex(k, s, &err);
	if (r < 0) {
		check_refusal(r, &err, k, s);
		return;
	}
	wgf_key_to_hex(out, k);
	if (r != 0 || strcasecmp(out, s) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	check_base64(s, WGF_KEY_PUBLIC);
	check_base64(s, WGF_KEY_PRIVATE);
	check_hex(s);
	free(s);
	return 0;
}
