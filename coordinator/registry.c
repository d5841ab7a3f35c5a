/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* registry: a hash of agent keys built from one query's rows. */
#include "registry.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* A key in a hash chain: each entry has one node, two while its next key is set. */
struct node {
	const uint8_t *key; /* the entry's key or next_key */
	struct registry_entry *entry;
	struct node *next;
};

struct registry {
	struct node **buckets;
	size_t n_buckets; /* a power of two */
	size_t n, n_nodes;
	struct registry_entry *entries; /* one allocation for all */
	struct node *nodes;             /* likewise, room for two a entry */
};

/* Keys are public and chosen by their owners: hash them with a per-process secret key,
 * so nobody can pick keys that land in one bucket. */
static uint8_t hash_key[crypto_shorthash_KEYBYTES];
static bool hash_key_set;

static size_t bucket_of(const struct registry *r, const uint8_t key[static WGF_SIGN_PK_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, key, WGF_SIGN_PK_LEN, hash_key);
	memcpy(&v, h, sizeof(v));
	return (size_t)v & (r->n_buckets - 1);
}

/* bytea in PostgreSQL's hex text form, exactly 32 bytes. */
static int parse_key(const char *text, uint8_t out[static WGF_SIGN_PK_LEN])
{
	size_t len = 0;

	if (strncmp(text, "\\x", 2) != 0 ||
	    sodium_hex2bin(out, WGF_SIGN_PK_LEN, text + 2, strlen(text + 2), NULL, &len, NULL) !=
	            0 ||
	    len != WGF_SIGN_PK_LEN)
		return -EBADMSG;
	return 0;
}

static void add_node(struct registry *r, const uint8_t *key, struct registry_entry *e)
{
	struct node *nd = &r->nodes[r->n_nodes++];
	size_t b = bucket_of(r, key);

	*nd = (struct node){.key = key, .entry = e, .next = r->buckets[b]};
	r->buckets[b] = nd;
}

int registry_from_result(const PGresult *res, struct registry **ret)
{
	struct registry *r;
	size_t rows;

	if (PQnfields(res) != 7 || PQntuples(res) < 0)
		return -EBADMSG;
	if (!hash_key_set) {
		crypto_shorthash_keygen(hash_key);
		hash_key_set = true;
	}
	rows = (size_t)PQntuples(res);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (r->n_buckets = 16; r->n_buckets < rows * 2; r->n_buckets *= 2)
		;
	r->buckets = calloc(r->n_buckets, sizeof(*r->buckets));
	r->entries = calloc(rows ? rows : 1, sizeof(*r->entries));
	r->nodes = calloc(rows ? 2 * rows : 1, sizeof(*r->nodes));
	if (!r->buckets || !r->entries || !r->nodes) {
		registry_free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rows; i++) {
		struct registry_entry *e = &r->entries[i];
		const char *next = PQgetvalue(res, (int)i, 6);

		e->server_id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
		e->has_next_key = !PQgetisnull(res, (int)i, 6);
		if (parse_key(PQgetvalue(res, (int)i, 2), e->key) < 0 ||
		    (e->has_next_key && parse_key(next, e->next_key) < 0) ||
		    strlen(PQgetvalue(res, (int)i, 1)) >= sizeof(e->name) ||
		    wgf_cidr_parse(&e->pool, PQgetvalue(res, (int)i, 4), 0, NULL) < 0 ||
		    (i > 0 && e->server_id <= r->entries[i - 1].server_id)) {
			registry_free(r);
			return -EBADMSG;
		}
		memcpy(e->name, PQgetvalue(res, (int)i, 1), strlen(PQgetvalue(res, (int)i, 1)) + 1);
		e->pool_size = strtoull(PQgetvalue(res, (int)i, 3), NULL, 10);
		e->revision = strtoull(PQgetvalue(res, (int)i, 5), NULL, 10);
		add_node(r, e->key, e);
		if (e->has_next_key)
			add_node(r, e->next_key, e);
		r->n++;
	}
	*ret = r;
	return 0;
}

struct registry_entry *registry_find(const struct registry *r,
                                     const uint8_t key[static WGF_SIGN_PK_LEN])
{
	if (!r)
		return NULL;
	for (struct node *nd = r->buckets[bucket_of(r, key)]; nd; nd = nd->next)
		if (memcmp(nd->key, key, WGF_SIGN_PK_LEN) == 0)
			return nd->entry;
	return NULL;
}

static int cmp_server(const void *key, const void *entry)
{
	int64_t id = *(const int64_t *)key,
	        other = ((const struct registry_entry *)entry)->server_id;

	return (id > other) - (id < other);
}

struct registry_entry *registry_find_server(const struct registry *r, int64_t id)
{
	return r ? bsearch(&id, r->entries, r->n, sizeof(*r->entries), cmp_server) : NULL;
}

size_t registry_size(const struct registry *r)
{
	return r ? r->n : 0;
}

struct registry_entry *registry_entries(const struct registry *r, size_t *ret_n)
{
	*ret_n = r ? r->n : 0;
	return r ? r->entries : NULL;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	free(r->buckets);
	free(r->entries);
	free(r->nodes);
	free(r);
}
