/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* peer: the domain structs for WireGuard peers and devices, shared by both daemons. */
#ifndef WGF_COMMON_PEER_H
#define WGF_COMMON_PEER_H

/*
 * A desired peer is what the coordinator says a server's interface must hold: a public
 * key, its allowed IPs and a keepalive; struct wgf_peer is just that, and `flags` says
 * whether the keepalive is set (the wg-tools containers.h idiom). What the data plane
 * shows of a peer besides (the last handshake, the endpoint, the byte counters) is only
 * ever read, so it is kept apart, in a struct wgf_peer_seen beside each peer of a
 * device read: a desired set, held for as long as the agent runs, carries none of it.
 * A set of peers is one array of fixed-size records (56 bytes each).
 *
 * A peer's allowed IPs are not in its record: allowed_ips points at n_allowed_ips
 * networks kept in a struct wgf_ip_pool by whatever holds the set (a device, the
 * agent's desired set, a decoded message). A record may be copied by value while its
 * pool lives (the copy borrows the same networks); a set that outlives the pool of a
 * peer it takes re-homes the networks with wgf_ip_pool_take(). Most peers have one or
 * two networks, so this costs 20 bytes a network instead of eight slots a peer. The
 * count per peer stays bounded (WGF_PEER_ALLOWED_IPS_MAX), as any user input is.
 *
 * A device is an interface's own facts (its public key, listen port) and its peers, in
 * a growable array that the device owns, with what was seen of each in a second array
 * of the same length. A reader whose caller set `see` keeps only the last peer's seen
 * record instead, and hands each one over once its peer is complete: what a read sees
 * of every peer is then never held at once. The private key is never held here.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cidr.h"
#include "key.h"

#define WGF_PEER_ALLOWED_IPS_MAX 8
#define WGF_DEVICE_PEERS_MAX     100000

#define WGF_PEER_HAS_KEEPALIVE (1U << 0)
#define WGF_PEER_HAS_HANDSHAKE (1U << 1)
#define WGF_PEER_HAS_ENDPOINT  (1U << 2)
#define WGF_PEER_HAS_TRANSFER  (1U << 3)

struct wgf_peer {
	uint8_t public_key[WGF_KEY_LEN];
	struct wgf_cidr *allowed_ips; /* borrowed from the set's pool; NULL when none */
	unsigned n_allowed_ips;
	uint16_t persistent_keepalive; /* seconds, 0 = off */
	unsigned flags;                /* WGF_PEER_HAS_KEEPALIVE; a backend adds its own */
};

/* What a read of the interface showed of one peer; only the parts in flags are set. */
struct wgf_peer_seen {
	int64_t last_handshake_ms; /* unix ms; 0 = never */
	uint64_t rx_bytes, tx_bytes;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} endpoint;
	unsigned flags; /* WGF_PEER_HAS_HANDSHAKE, _ENDPOINT, _TRANSFER */
};

/*
 * Networks in blocks that never move, so a peer's pointer stays valid as the pool grows.
 * A pool is moved by copying the struct (the old copy is then forgotten, not freed). Space
 * a peer gave up (a peer removed, or re-homed) is reclaimed when the pool is freed.
 */
struct wgf_ip_block;
struct wgf_ip_pool {
	struct wgf_ip_block *head; /* owned; the newest block, where networks are appended */
	size_t n_used;             /* networks handed out, for a set to judge its waste */
};

/*
 * Appends c to p's allowed IPs, in pool (where p's networks must live, if it has any).
 * -E2BIG past WGF_PEER_ALLOWED_IPS_MAX, -ENOMEM; p is unchanged on failure.
 */
int wgf_peer_add_allowed_ip(struct wgf_ip_pool *pool, struct wgf_peer *p, const struct wgf_cidr *c);

/* Copies p's allowed IPs (wherever they are) into pool and points p at the copy. -ENOMEM. */
int wgf_ip_pool_take(struct wgf_ip_pool *pool, struct wgf_peer *p);

/*
 * Makes room for n networks, so that the next takes and additions of n networks in all
 * cannot fail. -ENOMEM.
 */
int wgf_ip_pool_reserve(struct wgf_ip_pool *pool, size_t n);

void wgf_ip_pool_fini(struct wgf_ip_pool *pool);

#define WGF_DEVICE_HAS_PUBLIC_KEY  (1U << 0)
#define WGF_DEVICE_HAS_LISTEN_PORT (1U << 1)

/*
 * Takes what a read saw of one complete peer; peer == NULL: the read starts over (a
 * dump the kernel interrupted), and the peers handed over so far come again.
 */
typedef void wgf_device_see_fn(void *ctx, const struct wgf_peer *peer,
                               const struct wgf_peer_seen *seen);

struct wgf_device {
	char ifname[16];
	unsigned flags; /* WGF_DEVICE_HAS_* */
	uint8_t public_key[WGF_KEY_LEN];
	uint16_t listen_port;
	struct wgf_peer *peers; /* owned */
	/*
	 * Owned: seen[i] is what the read showed of peers[i]; NULL once dropped. With see
	 * set, one record: the last peer's, until the next is added or the read ends.
	 */
	struct wgf_peer_seen *seen;
	size_t n_peers, cap_peers;
	struct wgf_ip_pool ips; /* owned: the peers' allowed IPs */
	wgf_device_see_fn *see; /* set by the caller before a read, or NULL */
	void *see_ctx;
};

/*
 * Appends a zeroed peer, with a zeroed seen record (wgf_device_last_seen()), and returns
 * it, or NULL (-ENOMEM or past WGF_DEVICE_PEERS_MAX). With see set, the peer before it
 * goes to see() first.
 */
struct wgf_peer *wgf_device_add_peer(struct wgf_device *dev);

/* The seen record of the last peer added. */
struct wgf_peer_seen *wgf_device_last_seen(struct wgf_device *dev);

/* A reader's read is complete: with see set, the last peer goes to see() and seen is freed. */
void wgf_device_seen_done(struct wgf_device *dev);

/* A reader starts its read over: with see set, see() is told (peer NULL). */
void wgf_device_seen_restart(struct wgf_device *dev);

/* A see() for a read whose caller wants the peers and nothing of what was seen. */
void wgf_device_see_nothing(void *ctx, const struct wgf_peer *peer,
                            const struct wgf_peer_seen *seen);

/*
 * Frees what was seen of the peers (seen becomes NULL), for a read kept on only for the
 * peers themselves; no peer may be added after.
 */
void wgf_device_drop_seen(struct wgf_device *dev);

/* Frees the peers and resets the device to empty (the struct itself is the caller's). */
void wgf_device_fini(struct wgf_device *dev);

/* Same allowed IPs, as sets (order does not matter), and the same keepalive. */
bool wgf_peer_config_equal(const struct wgf_peer *a, const struct wgf_peer *b);

/* Orders peers by public key (memcmp), for sorting and binary search. */
int wgf_peer_cmp_key(const void *a, const void *b);

/*
 * qsort(), skipped when base is in order already: a set read back from the cache (which
 * is written sorted) costs one pass over it instead of a sort.
 */
void wgf_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif
