/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* nonces: a fixed ring of slots with a chained hash over it. */
#include "nonces.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define NIL UINT32_MAX

struct slot {
	uint8_t nonce[WGF_NONCE_LEN];
	int64_t server_id;
	uint64_t expires_ms;
	uint32_t next; /* in the bucket's chain */
	uint32_t bucket;
	bool used;
};

struct nonces {
	struct slot *slots;
	uint32_t *buckets; /* as many as slots */
	uint32_t mask;
	uint32_t pos; /* the next slot to (re)use: the oldest */
	uint8_t key[crypto_shorthash_KEYBYTES];
};

static uint32_t bucket_of(const struct nonces *n, int64_t server_id,
                          const uint8_t nonce[static WGF_NONCE_LEN])
{
	uint8_t in[WGF_NONCE_LEN + sizeof(server_id)], h[crypto_shorthash_BYTES];
	uint32_t v;

	memcpy(in, nonce, WGF_NONCE_LEN);
	memcpy(in + WGF_NONCE_LEN, &server_id, sizeof(server_id));
	crypto_shorthash(h, in, sizeof(in), n->key);
	memcpy(&v, h, sizeof(v));
	return v & n->mask;
}

struct nonces *nonces_new(size_t slots)
{
	struct nonces *n = calloc(1, sizeof(*n));
	size_t size = 16;

	if (!n)
		return NULL;
	while (size < slots && size < ((size_t)1 << 30))
		size *= 2;
	n->slots = calloc(size, sizeof(*n->slots));
	n->buckets = malloc(size * sizeof(*n->buckets));
	if (!n->slots || !n->buckets) {
		nonces_free(n);
		return NULL;
	}
	memset(n->buckets, 0xff, size * sizeof(*n->buckets));
	n->mask = (uint32_t)size - 1;
	crypto_shorthash_keygen(n->key);
	return n;
}

void nonces_free(struct nonces *n)
{
	if (!n)
		return;
	free(n->slots);
	free(n->buckets);
	free(n);
}

bool nonces_has(const struct nonces *n, int64_t server_id,
                const uint8_t nonce[static WGF_NONCE_LEN], uint64_t now_ms)
{
	for (uint32_t i = n->buckets[bucket_of(n, server_id, nonce)]; i != NIL;
	     i = n->slots[i].next) {
		const struct slot *s = &n->slots[i];

		if (s->server_id == server_id && memcmp(s->nonce, nonce, WGF_NONCE_LEN) == 0)
			return s->expires_ms >= now_ms;
	}
	return false;
}

static void unlink_slot(struct nonces *n, uint32_t idx)
{
	uint32_t *p = &n->buckets[n->slots[idx].bucket];

	while (*p != NIL && *p != idx)
		p = &n->slots[*p].next;
	if (*p == idx)
		*p = n->slots[idx].next;
}

void nonces_add(struct nonces *n, int64_t server_id, const uint8_t nonce[static WGF_NONCE_LEN],
                uint64_t expires_ms)
{
	uint32_t idx = n->pos, b = bucket_of(n, server_id, nonce);
	struct slot *s = &n->slots[idx];

	if (s->used)
		unlink_slot(n, idx);
	memcpy(s->nonce, nonce, WGF_NONCE_LEN);
	s->server_id = server_id;
	s->expires_ms = expires_ms;
	s->bucket = b;
	s->next = n->buckets[b];
	s->used = true;
	n->buckets[b] = idx;
	n->pos = (idx + 1) & n->mask;
}
