/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* identity: the agent's Ed25519 signing key, kept in its state directory. */
#ifndef WGF_AGENT_IDENTITY_H
#define WGF_AGENT_IDENTITY_H

/*
 * Every message the agent sends is signed with this key; the operator registers its
 * public half with the coordinator (DESIGN.md principle 4). The file
 * <state_directory>/signing.key holds the 32-byte Ed25519 seed in base64, mode 0600,
 * written atomically. The secret key is wiped from memory by identity_fini().
 */

#include <stdbool.h>
#include <stdint.h>

#include <sodium.h>

#include "err.h"

#define IDENTITY_FILE "signing.key"

struct identity {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

/*
 * Loads the key from dir, or creates it there when absent. *ret_created says which.
 * -EINVAL with a message when the file exists but is not a valid key or is readable by
 * others.
 */
int identity_load_or_create(struct identity *id, const char *dir, bool *ret_created,
                            struct wgf_err *err);

void identity_fini(struct identity *id);

#endif
