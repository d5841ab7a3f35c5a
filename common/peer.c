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

	if (dev->n_peers >= WGF_DEVICE_PEERS_MAX)
		return NULL;
	if (dev->n_peers == dev->cap_peers) {
		size_t cap = dev->cap_peers ? dev->cap_peers * 2 : 16;

		if (cap > WGF_DEVICE_PEERS_MAX)
			cap = WGF_DEVICE_PEERS_MAX;
		p = reallocarray(dev->peers, cap, sizeof(*p));
		if (!p)
			return NULL;
		dev->peers = p;
		dev->cap_peers = cap;
	}
	p = &dev->peers[dev->n_peers++];
	memset(p, 0, sizeof(*p));
	return p;
}

void wgf_device_fini(struct wgf_device *dev)
{
	free(dev->peers);
	dev->peers = NULL;
	dev->n_peers = dev->cap_peers = 0;
}

int wgf_peer_add_allowed_ip(struct wgf_peer *p, const struct wgf_cidr *c)
{
	if (p->n_allowed_ips >= WGF_PEER_ALLOWED_IPS_MAX)
		return -E2BIG;
	p->allowed_ips[p->n_allowed_ips++] = *c;
	return 0;
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
