/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* nonces: the nonces of recently accepted agent messages, in memory. */
#ifndef WGF_COORDINATOR_NONCES_H
#define WGF_COORDINATOR_NONCES_H

/*
 * A replayed envelope is refused here, before the database: the channel records the
 * nonce of each message whose signature holds, and looks every later message up. The
 * table has a fixed number of slots and reuses the oldest when full, so its memory is
 * bounded whatever the traffic; a nonce pushed out early is still refused by the
 * database (agent_nonces, shared by every replica), and the channel puts it back here
 * when the database says it was a replay. An entry older than its expiry is treated as
 * absent: such an envelope is refused as stale before this is asked.
 *
 * Keys are (server id, nonce). Nonces are random and chosen by the sender, so the hash
 * is keyed with a per-process secret. Everything belongs to the loop thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct nonces;

/* A table of slots entries (rounded up to a power of two); NULL for -ENOMEM. */
struct nonces *nonces_new(size_t slots);

void nonces_free(struct nonces *n);

/* Whether (server_id, nonce) was added and has not expired by now_ms. */
bool nonces_has(const struct nonces *n, int64_t server_id,
                const uint8_t nonce[static WGF_NONCE_LEN], uint64_t now_ms);

/* Remembers (server_id, nonce) until expires_ms, reusing the oldest slot when full. */
void nonces_add(struct nonces *n, int64_t server_id, const uint8_t nonce[static WGF_NONCE_LEN],
                uint64_t expires_ms);

#endif
