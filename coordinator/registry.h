/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* registry: the agent keys the channel accepts, held in memory. */
#ifndef WGF_COORDINATOR_REGISTRY_H
#define WGF_COORDINATOR_REGISTRY_H

/*
 * The channel looks a message's claimed sender up here before it checks the signature,
 * so a stranger costs a hash lookup and never a database query. A registry is built
 * whole from the rows of wgf_channel_registry() (0010_agent_key_rotation.sql) and is
 * then read-only: the channel builds a new one when wgf_servers is notified and swaps
 * it in. The database stays the authority; a key removed a moment ago is still refused
 * there by wgf_agent_begin().
 *
 * Each entry carries fields the channel owns the meaning of (poll: its parked long
 * poll for that server, so at most one is parked per server; db_calls: its database
 * calls in flight for that server; tokens: the messages the key may still send).
 * Everything belongs to the loop thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cidr.h"
#include "wire.h"

struct registry_entry {
	uint8_t key[WGF_SIGN_PK_LEN];
	uint8_t next_key[WGF_SIGN_PK_LEN]; /* a second key, while the agent's is rotated */
	bool has_next_key;
	int64_t server_id;
	uint64_t pool_size; /* addresses in the server's pool: a bound on its peers */
	struct wgf_cidr pool;
	char name[64];
	uint64_t revision;  /* the channel's: its newest revision known, loaded from the rows */
	void *poll;         /* borrowed: the channel's parked long poll for this server, or NULL */
	unsigned db_calls;  /* the channel's: its database calls in flight for this server */
	bool seen;          /* the channel's: heard from since it last told the database */
	double tokens;      /* the channel's: messages it may still send now (its bucket) */
	uint64_t tokens_at; /* the channel's: uv_now() of the bucket's refill; 0: full */
};

struct registry;

/*
 * A new registry from res (borrowed): the rows of SELECT * FROM wgf_channel_registry()
 * (0010_agent_key_rotation.sql), in text format and server id order. -EBADMSG when a row does
 * not have that shape or comes out of order, -ENOMEM.
 */
int registry_from_result(const PGresult *res, struct registry **ret);

/* The entry whose key or next key is key, borrowed until the registry is freed; NULL
 * when unknown. */
struct registry_entry *registry_find(const struct registry *r,
                                     const uint8_t key[static WGF_SIGN_PK_LEN]);

/* The entry of server id (entries are in server id order); NULL when unknown. */
struct registry_entry *registry_find_server(const struct registry *r, int64_t id);

size_t registry_size(const struct registry *r);

/* All entries, as an array of *ret_n (borrowed, like registry_find()'s); NULL and 0
 * for a NULL registry. */
struct registry_entry *registry_entries(const struct registry *r, size_t *ret_n);

void registry_free(struct registry *r);

#endif
