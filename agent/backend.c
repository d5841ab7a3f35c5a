/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* backend: what both WireGuard backends share: interface names and the private key file. */
#include "backend.h"

#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fs.h"
#include "log.h"

/* A key file is one base64 key and a newline; anything much longer is not a key. */
#define KEY_FILE_MAX 256

void backend_say_limit(const struct backend *b, int error, size_t n_peers)
{
	if (error != -EINVAL || !b->ops->max_peers || n_peers <= b->ops->max_peers)
		return;
	log_warning("The %s backend's daemon may have refused peers past its limit: wireguard-go "
	            "holds at most %zu on one interface, and the desired set has %zu",
	            b->ops->name, b->ops->max_peers, n_peers);
}

bool backend_ifname_is_valid(const char *ifname)
{
	size_t len = strnlen(ifname, IFNAMSIZ);

	/* The kernel's dev_valid_name(). */
	if (len == 0 || len >= IFNAMSIZ || strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (ifname[i] == '/' || ifname[i] == ':' || isspace((unsigned char)ifname[i]))
			return false;
	return true;
}

static int key_file_load(const char *path, uint8_t ret_key[static WGF_KEY_LEN], struct wgf_err *err)
{
	uint8_t key[WGF_KEY_LEN];
	char *text = NULL;
	size_t len = 0;
	int r;

	r = wgf_fs_read_private(path, KEY_FILE_MAX, &text, &len, err);
	if (r < 0)
		return r;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	r = wgf_key_from_base64(key, text, WGF_KEY_PRIVATE, err);
	if (r < 0)
		wgf_err_prefix(err, "%s: ", path);
	else
		memcpy(ret_key, key, WGF_KEY_LEN);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(text, len);
	free(text);
	return r;
}

static int key_file_create(const char *path, uint8_t ret_key[static WGF_KEY_LEN],
                           struct wgf_err *err)
{
	uint8_t key[WGF_KEY_LEN];
	char b64[WGF_KEY_B64_LEN], text[WGF_KEY_B64_LEN + 1];
	int r;

	wgf_key_generate_private(key);
	wgf_key_to_base64(b64, key);
	snprintf(text, sizeof(text), "%s\n", b64);
	r = wgf_fs_write_atomic(path, text, strlen(text), 0600, err);
	if (r == 0)
		memcpy(ret_key, key, WGF_KEY_LEN);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(text, sizeof(text));
	return r;
}

int backend_private_key_load(const char *path, bool create, uint8_t ret_key[static WGF_KEY_LEN],
                             bool *ret_created, struct wgf_err *err)
{
	int r;

	if (!path || !path[0])
		return wgf_err_set(err, -EINVAL, "no private key file is configured");
	r = key_file_load(path, ret_key, err);
	if (r != -ENOENT || !create) {
		if (r == 0 && ret_created)
			*ret_created = false;
		return r;
	}
	wgf_err_clear(err);
	r = key_file_create(path, ret_key, err);
	if (r == 0 && ret_created)
		*ret_created = true;
	return r;
}
