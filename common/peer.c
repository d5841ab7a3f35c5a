/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* peer: device peer arrays and peer comparisons. */
#include "peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct wgf_peer *wgf_device_add_peer(struct wgf_device *dev)
{
	struct wgf_peer *p;
	struct wgf_peer_seen *seen;

	if (dev->n_peers >= WGF_DEVICE_PEERS_MAX)
		return NULL;
	if (dev->see && !dev->seen) {
		dev->seen = malloc(sizeof(*dev->seen));
		if (!dev->seen)
			return NULL;
	} else if (dev->see && dev->n_peers > 0) {
		dev->see(dev->see_ctx, &dev->peers[dev->n_peers - 1], dev->seen);
	}
	if (dev->n_peers == dev->cap_peers) {
		size_t cap = dev->cap_peers ? dev->cap_peers * 2 : 16;

		if (cap > WGF_DEVICE_PEERS_MAX)
			cap = WGF_DEVICE_PEERS_MAX;
		/* Either array may grow alone; only cap_peers says both did. */
		p = reallocarray(dev->peers, cap, sizeof(*p));
		if (!p)
			return NULL;
		dev->peers = p;
		seen = dev->see ? dev->seen : reallocarray(dev->seen, cap, sizeof(*seen));
		if (!seen)
			return NULL;
		dev->seen = seen;
		dev->cap_peers = cap;
	}
	p = &dev->peers[dev->n_peers++];
	memset(p, 0, sizeof(*p));
	memset(wgf_device_last_seen(dev), 0, sizeof(*dev->seen));
	return p;
}

struct wgf_peer_seen *wgf_device_last_seen(struct wgf_device *dev)
{
	return dev->see ? dev->seen : &dev->seen[dev->n_peers - 1];
}

void wgf_device_seen_done(struct wgf_device *dev)
{
	if (!dev->see)
		return;
	if (dev->n_peers > 0)
		dev->see(dev->see_ctx, &dev->peers[dev->n_peers - 1], dev->seen);
	free(dev->seen);
	dev->seen = NULL;
}

void wgf_device_seen_restart(struct wgf_device *dev)
{
	if (dev->see)
		dev->see(dev->see_ctx, NULL, NULL);
}

void wgf_device_see_nothing(void *ctx, const struct wgf_peer *peer,
                            const struct wgf_peer_seen *seen)
{
	(void)ctx;
	(void)peer;
	(void)seen;
}

void wgf_device_drop_seen(struct wgf_device *dev)
{
	free(dev->seen);
	dev->seen = NULL;
}

void wgf_device_fini(struct wgf_device *dev)
{
	free(dev->peers);
	free(dev->seen);
	wgf_ip_pool_fini(&dev->ips);
	dev->peers = NULL;
	dev->seen = NULL;
	dev->n_peers = dev->cap_peers = 0;
}

#define IP_BLOCK_MIN 16
#define IP_BLOCK_MAX 4096 /* 80 KiB: below glibc's mmap threshold, so blocks are reused */

struct wgf_ip_block {
	struct wgf_ip_block *next;
	size_t used, cap;
	struct wgf_cidr ips[];
};

/* n contiguous networks at the end of the head block, which grows by a new block if needed. */
static struct wgf_cidr *pool_alloc(struct wgf_ip_pool *pool, size_t n)
{
	struct wgf_ip_block *h = pool->head, *b;
	size_t cap;

	if (!h || h->cap - h->used < n) {
		cap = h ? 2 * h->cap : IP_BLOCK_MIN;
		if (cap > IP_BLOCK_MAX)
			cap = IP_BLOCK_MAX;
		if (cap < n)
			cap = n;
		b = malloc(sizeof(*b) + cap * sizeof(b->ips[0]));
		if (!b)
			return NULL;
		b->next = h;
		b->used = 0;
		b->cap = cap;
		pool->head = h = b;
	}
	h->used += n;
	pool->n_used += n;
	return &h->ips[h->used - n];
}

int wgf_peer_add_allowed_ip(struct wgf_ip_pool *pool, struct wgf_peer *p, const struct wgf_cidr *c)
{
	struct wgf_ip_block *h = pool->head;
	struct wgf_cidr *at;

	if (p->n_allowed_ips >= WGF_PEER_ALLOWED_IPS_MAX)
		return -E2BIG;
	/* The usual case: p's networks are the last ones handed out, and there is room. */
	if (p->n_allowed_ips && h && h->used < h->cap &&
	    p->allowed_ips + p->n_allowed_ips == &h->ips[h->used]) {
		h->used++;
		pool->n_used++;
		p->allowed_ips[p->n_allowed_ips++] = *c;
		return 0;
	}
	at = pool_alloc(pool, p->n_allowed_ips + 1);
	if (!at)
		return -ENOMEM;
	if (p->n_allowed_ips)
		memcpy(at, p->allowed_ips, p->n_allowed_ips * sizeof(*at));
	at[p->n_allowed_ips] = *c;
	p->allowed_ips = at;
	p->n_allowed_ips++;
	return 0;
}

int wgf_ip_pool_take(struct wgf_ip_pool *pool, struct wgf_peer *p)
{
	struct wgf_cidr *at;

	if (p->n_allowed_ips == 0) {
		p->allowed_ips = NULL;
		return 0;
	}
	at = pool_alloc(pool, p->n_allowed_ips);
	if (!at)
		return -ENOMEM;
	memcpy(at, p->allowed_ips, p->n_allowed_ips * sizeof(*at));
	p->allowed_ips = at;
	return 0;
}

int wgf_ip_pool_reserve(struct wgf_ip_pool *pool, size_t n)
{
	const struct wgf_ip_block *h = pool->head;

	if (n == 0 || (h && h->cap - h->used >= n))
		return 0;
	if (!pool_alloc(pool, n))
		return -ENOMEM;
	/* Handed back at once: the new head block has room for n, and nothing is used. */
	pool->head->used -= n;
	pool->n_used -= n;
	return 0;
}

void wgf_ip_pool_fini(struct wgf_ip_pool *pool)
{
	struct wgf_ip_block *b = pool->head;

	while (b) {
		struct wgf_ip_block *next = b->next;

		free(b);
		b = next;
	}
	pool->head = NULL;
	pool->n_used = 0;
}

static bool has_cidr(const struct wgf_peer *p, const struct wgf_cidr *c)
{
	for (unsigned i = 0; i < p->n_allowed_ips; i++)
		if (p->allowed_ips[i].prefix == c->prefix &&
		    wgf_addr_equal(&p->allowed_ips[i].addr, &c->addr))
			return true;
	return false;
}

bool wgf_peer_config_equal(const struct wgf_peer *a, const struct wgf_peer *b)
{
	if (a->persistent_keepalive != b->persistent_keepalive ||
	    a->n_allowed_ips != b->n_allowed_ips)
		return false;
	/* Allowed IPs within one peer are distinct, so equal counts and a ⊆ b mean a = b. */
	for (unsigned i = 0; i < a->n_allowed_ips; i++)
		if (!has_cidr(b, &a->allowed_ips[i]))
			return false;
	return true;
}

int wgf_peer_cmp_key(const void *a, const void *b)
{
	const struct wgf_peer *x = a, *y = b;

	return memcmp(x->public_key, y->public_key, WGF_KEY_LEN);
}

void wgf_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	const char *b = base;

	for (size_t i = 1; i < n; i++) {
		if (cmp(b + (i - 1) * size, b + i * size) > 0) {
			qsort(base, n, size, cmp);
			return;
		}
	}
}
