/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* clients: the fixed table of per-address admission state. */
#include "clients.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define PROBE 16

struct client {
	struct wgf_addr addr;
	bool used;
	unsigned connections;
	double tokens; /* failed authentications it may still make */
	uint64_t refilled_ms;
};

struct clients {
	struct clients_limits limits;
	uint8_t hash_key[crypto_shorthash_KEYBYTES]; /* so nobody can aim at one slot */
	unsigned mask;
	struct client overflow;
	struct client slots[];
};

struct clients *clients_new(unsigned slots, const struct clients_limits *l)
{
	unsigned n = PROBE;
	struct clients *t;

	while (n < slots)
		n *= 2;
	t = calloc(1, sizeof(*t) + n * sizeof(t->slots[0]));
	if (!t)
		return NULL;
	t->limits = *l;
	t->mask = n - 1;
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	t->overflow.used = true;
	t->overflow.tokens = l->auth_failures_burst;
	return t;
}

void clients_free(struct clients *t)
{
	free(t);
}

static void refill(const struct clients *t, struct client *c, uint64_t now_ms)
{
	double burst = t->limits.auth_failures_burst;

	if (now_ms > c->refilled_ms)
		c->tokens += (double)(now_ms - c->refilled_ms) * t->limits.auth_failures_per_min /
		             60000.0;
	if (c->tokens > burst)
		c->tokens = burst;
	c->refilled_ms = now_ms;
}

/* Nothing worth keeping: no connection, a full bucket. */
static bool is_idle(const struct clients *t, struct client *c, uint64_t now_ms)
{
	if (!c->used)
		return true;
	if (c->connections)
		return false;
	refill(t, c, now_ms);
	return c->tokens >= t->limits.auth_failures_burst;
}

struct client *clients_get(struct clients *t, const struct wgf_addr *a, uint64_t now_ms)
{
	unsigned char h[crypto_shorthash_BYTES];
	struct client *free_slot = NULL;
	uint64_t start;

	crypto_shorthash(h, a->bytes, wgf_addr_len(a), t->hash_key);
	memcpy(&start, h, sizeof(start));
	for (unsigned i = 0; i < PROBE; i++) {
		struct client *c = &t->slots[(start + i) & t->mask];

		if (c->used && wgf_addr_equal(&c->addr, a))
			return c;
		if (!free_slot && is_idle(t, c, now_ms))
			free_slot = c;
	}
	if (!free_slot)
		return &t->overflow;
	*free_slot = (struct client){
	        .addr = *a,
	        .used = true,
	        .tokens = t->limits.auth_failures_burst,
	        .refilled_ms = now_ms,
	};
	return free_slot;
}

bool clients_connect(struct clients *t, struct client *c)
{
	if (t->limits.max_connections && c != &t->overflow &&
	    c->connections >= t->limits.max_connections)
		return false;
	c->connections++;
	return true;
}

void clients_disconnect(struct clients *t, struct client *c)
{
	(void)t;
	if (c->connections > 0)
		c->connections--;
}

unsigned clients_auth_wait(struct clients *t, struct client *c, uint64_t now_ms)
{
	uint64_t ms;

	refill(t, c, now_ms);
	if (c->tokens >= 1 || t->limits.auth_failures_per_min == 0)
		return c->tokens >= 1 ? 0 : 60;
	/* Until one token has refilled, in whole seconds rounded up (at least 1). */
	ms = (uint64_t)((1 - c->tokens) * 60000 / t->limits.auth_failures_per_min);
	return ms < 1000 ? 1 : (unsigned)((ms + 999) / 1000);
}

void clients_auth_failed(struct clients *t, struct client *c, uint64_t now_ms)
{
	refill(t, c, now_ms);
	c->tokens = c->tokens >= 1 ? c->tokens - 1 : 0;
}
