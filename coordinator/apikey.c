/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* apikey: generation, parsing and keyed hashing of API keys. */
#include "apikey.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#define PREFIX_RANDOM 16

static void hash_secret_of(const uint8_t key[static 32], const uint8_t secret[static 32],
                           uint8_t out[static APIKEY_HASH_LEN])
{
	crypto_generichash(out, APIKEY_HASH_LEN, secret, APIKEY_SECRET_LEN, key, 32);
}

void apikey_generate(const uint8_t hash_secret[static 32], char text[static APIKEY_TEXT_LEN + 1],
                     struct apikey *ret)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t secret[APIKEY_SECRET_LEN];
	char *p = text;

	memcpy(p, "wgf_", 4);
	p += 4;
	for (int i = 0; i < PREFIX_RANDOM; i++)
		*p++ = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	*p++ = '_';
	randombytes_buf(secret, sizeof(secret));
	sodium_bin2base64(p, 44, secret, sizeof(secret), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	memcpy(ret->prefix, text, APIKEY_PREFIX_LEN);
	ret->prefix[APIKEY_PREFIX_LEN] = '\0';
	hash_secret_of(hash_secret, secret, ret->hash);
	sodium_memzero(secret, sizeof(secret));
}

int apikey_parse(const uint8_t hash_secret[static 32], const char *text, struct apikey *ret)
{
	uint8_t secret[APIKEY_SECRET_LEN];
	const char *end = NULL;
	size_t len;

	if (strnlen(text, APIKEY_TEXT_LEN + 1) != APIKEY_TEXT_LEN ||
	    strncmp(text, "wgf_", 4) != 0 || text[APIKEY_PREFIX_LEN] != '_')
		return -EINVAL;
	for (int i = 4; i < APIKEY_PREFIX_LEN; i++)
		if (!((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9')))
			return -EINVAL;
	if (sodium_base642bin(secret, sizeof(secret), text + APIKEY_PREFIX_LEN + 1, 43, NULL, &len,
	                      &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != text + APIKEY_TEXT_LEN || len != sizeof(secret)) {
		sodium_memzero(secret, sizeof(secret));
		return -EINVAL;
	}
	memcpy(ret->prefix, text, APIKEY_PREFIX_LEN);
	ret->prefix[APIKEY_PREFIX_LEN] = '\0';
	hash_secret_of(hash_secret, secret, ret->hash);
	sodium_memzero(secret, sizeof(secret));
	return 0;
}
