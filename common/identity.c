/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* identity: create, check and load an Ed25519 signing key file. */
#include "identity.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "fs.h"

#define SEED_B64_LEN 45

int wgf_identity_load(struct wgf_identity *id, const char *path, struct wgf_err *err)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	int r = wgf_fs_read_secret32(path, seed, err);

	if (r == 0)
		crypto_sign_seed_keypair(id->pk, id->sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return r;
}

static int create(struct wgf_identity *id, const char *path, struct wgf_err *err)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	char text[SEED_B64_LEN + 1];
	int r;

	randombytes_buf(seed, sizeof(seed));
	sodium_bin2base64(text, SEED_B64_LEN, seed, sizeof(seed), sodium_base64_VARIANT_ORIGINAL);
	strcat(text, "\n");
	r = wgf_fs_write_atomic(path, text, strlen(text), 0600, err);
	if (r == 0)
		crypto_sign_seed_keypair(id->pk, id->sk, seed);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(text, sizeof(text));
	return r;
}

int wgf_identity_load_or_create(struct wgf_identity *id, const char *path, bool *ret_created,
                                struct wgf_err *err)
{
	int r = wgf_identity_load(id, path, err);

	if (r != -ENOENT) {
		if (r == 0)
			*ret_created = false;
		return r;
	}
	wgf_err_clear(err);
	r = create(id, path, err);
	if (r == 0)
		*ret_created = true;
	return r;
}

void wgf_identity_public_b64(const struct wgf_identity *id, char out[static 45])
{
	sodium_bin2base64(out, 45, id->pk, sizeof(id->pk), sodium_base64_VARIANT_ORIGINAL);
}

void wgf_identity_fini(struct wgf_identity *id)
{
	sodium_memzero(id, sizeof(*id));
}

int wgf_identity_public_from_b64(const char *b64, uint8_t pk[static 32])
{
	size_t len = 0;

	if (sodium_base642bin(pk, 32, b64, strlen(b64), NULL, &len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != 32 || !crypto_core_ed25519_is_valid_point(pk))
		return -EINVAL;
	return 0;
}

int wgf_identity_public_list(const char *text, uint8_t (*pks)[32], size_t max, struct wgf_err *err)
{
	size_t n = 0;

	for (const char *p = text; *p;) {
		char item[64];
		size_t len = strcspn(p, ",");
		const char *next = p[len] ? p + len + 1 : p + len;
		uint8_t pk[32];

		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == 0 && !*next)
			break;
		if (n == max)
			return wgf_err_set(err, -E2BIG, "more than %zu keys", max);
		if (len < sizeof(item)) {
			memcpy(item, p, len);
			item[len] = '\0';
		}
		if (len >= sizeof(item) || wgf_identity_public_from_b64(item, pk) < 0)
			return wgf_err_set(err, -EINVAL,
			                   "key %zu: not an Ed25519 public key in base64", n + 1);
		if (pks)
			memcpy(pks[n], pk, 32);
		n++;
		p = next;
	}
	return (int)n;
}
