/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* apikey: API keys: making them, reading them from a request, hashing their secret. */
#ifndef WGF_COORDINATOR_APIKEY_H
#define WGF_COORDINATOR_APIKEY_H

/*
 * A key reads "wgf_<16 lower-case letters or digits>_<43 base64url characters>". The
 * first part (up to the second '_') is the prefix, a public handle stored in clear to
 * find the row; the rest is 32 random bytes, the secret, which is shown once and
 * stored only as BLAKE2b-256 keyed with the coordinator's hashing secret (the file
 * [api] key_hash_secret_file, shared by every replica). A stolen database therefore
 * yields neither usable keys nor a way to test guesses offline.
 */

#include <stdint.h>

#include "err.h"

#define APIKEY_PREFIX_LEN 20 /* "wgf_" and 16 characters */
#define APIKEY_SECRET_LEN 32
#define APIKEY_HASH_LEN   32
#define APIKEY_TEXT_LEN   (APIKEY_PREFIX_LEN + 1 + 43)

struct apikey {
	char prefix[APIKEY_PREFIX_LEN + 1];
	uint8_t hash[APIKEY_HASH_LEN];
};

/*
 * Makes a new key: writes its text (to show once) and its prefix and hash (to store).
 * The caller wipes text after use.
 */
void apikey_generate(const uint8_t hash_secret[static 32], char text[static APIKEY_TEXT_LEN + 1],
                     struct apikey *ret);

/* Parses a key's text and hashes its secret; -EINVAL when it is not a key's shape. */
int apikey_parse(const uint8_t hash_secret[static 32], const char *text, struct apikey *ret);

#endif
