/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* identity: create, check and load the agent's signing key file. */
#include "identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"

#define SEED_B64_LEN \
	sodium_base64_ENCODED_LEN(crypto_sign_SEEDBYTES, sodium_base64_VARIANT_ORIGINAL)

static int load(struct identity *id, const char *path, struct wgf_err *err)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	int r = wgf_fs_read_secret32(path, seed, err);

	if (r == 0)
		crypto_sign_seed_keypair(id->pk, id->sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return r;
}

static int create(struct identity *id, const char *path, struct wgf_err *err)
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

int identity_load_or_create(struct identity *id, const char *dir, bool *ret_created,
                            struct wgf_err *err)
{
	char path[4096];
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, IDENTITY_FILE) >= sizeof(path))
		return wgf_err_set(err, -ENAMETOOLONG, "%s: path too long", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		return wgf_err_set(err, r, "%s: cannot create: %s", dir, wgf_strerror(r));
	}
	r = load(id, path, err);
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

void identity_fini(struct identity *id)
{
	sodium_memzero(id, sizeof(*id));
}
