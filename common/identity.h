/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* identity: a daemon's Ed25519 signing key, kept in a file of its own. */
#ifndef WGF_COMMON_IDENTITY_H
#define WGF_COMMON_IDENTITY_H

/*
 * Every envelope on the agent channel is signed (DESIGN.md principle 4). The agent's
 * key identifies its server to the coordinator; the coordinator's key is pinned by
 * every agent, so all coordinator replicas share one. The file holds the 32-byte
 * Ed25519 seed in base64, mode 0600, written atomically; wgf_identity_fini() wipes the
 * secret key from memory.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct wgf_identity {
	uint8_t pk[32];
	uint8_t sk[64];
};

/* Loads the key at path. -ENOENT when there is none; -EPERM when others may read it. */
int wgf_identity_load(struct wgf_identity *id, const char *path, struct wgf_err *err);

/* Loads the key at path, or creates it there when absent; *ret_created says which. */
int wgf_identity_load_or_create(struct wgf_identity *id, const char *path, bool *ret_created,
                                struct wgf_err *err);

/* The public key in base64 (44 characters and a NUL). */
void wgf_identity_public_b64(const struct wgf_identity *id, char out[static 45]);

void wgf_identity_fini(struct wgf_identity *id);

/* An Ed25519 public key from base64 (a point on the curve); -EINVAL otherwise. */
int wgf_identity_public_from_b64(const char *b64, uint8_t pk[static 32]);

/*
 * Comma-separated Ed25519 public keys in base64 (spaces around each allowed) into pks
 * (room for max; NULL to check only): how many, or -EINVAL naming the bad one in err,
 * or -E2BIG for more than max.
 */
int wgf_identity_public_list(const char *text, uint8_t (*pks)[32], size_t max, struct wgf_err *err);

#endif
