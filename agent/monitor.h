/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* monitor: per-peer facts read from the interface, and what changed between two reads. */
#ifndef WGF_AGENT_MONITOR_H
#define WGF_AGENT_MONITOR_H

/*
 * Status comes from the data plane (DESIGN.md principle 7). Every few seconds the agent
 * reads the interface and hands the read to monitor_update(), which keeps one compact
 * fact per peer (last handshake, endpoint, byte counters) and says what changed since
 * the previous read: new peers, peers gone, a new handshake, a moved endpoint, traffic.
 * On the first read, and then every full_interval_ms, the report is a full set: every
 * peer is listed, so a consumer that missed a report catches up.
 *
 * monitor_update() is a pure function of the previous facts, the read and the clock
 * (passed in), so it is unit-tested without an interface. It looks each peer of the
 * read up in the facts (kept sorted by key) and writes over them where they are:
 * O(n log n), and a read that adds or removes no peer builds no second set of facts.
 * A report points into the monitor's facts and is valid until the next update.
 * Nothing here logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"

/* A handshake younger than this means the tunnel is up (WireGuard's REJECT_AFTER_TIME). */
#define MONITOR_HANDSHAKE_FRESH_MS 180000

#define MONITOR_CHANGED_NEW       (1U << 0)
#define MONITOR_CHANGED_HANDSHAKE (1U << 1)
#define MONITOR_CHANGED_ENDPOINT  (1U << 2)
#define MONITOR_CHANGED_TRANSFER  (1U << 3)

/* 88 bytes, in an order that leaves no padding: one a peer, for as long as the agent runs. */
struct monitor_fact {
	uint8_t public_key[WGF_KEY_LEN];
	int64_t last_handshake_ms; /* unix ms; 0 = never */
	uint64_t rx_bytes, tx_bytes;
	struct sockaddr_in6 endpoint; /* large enough for either family; sin6_family says */
	unsigned flags;               /* WGF_PEER_HAS_HANDSHAKE, _ENDPOINT, _TRANSFER */
};

struct monitor_change {
	size_t fact;   /* index into the monitor's facts */
	unsigned what; /* MONITOR_CHANGED_*; 0 for an unchanged peer in a full set */
};

struct monitor_report {
	bool full;
	struct monitor_change *changes; /* owned */
	size_t n_changes;
	uint8_t (*gone)[WGF_KEY_LEN]; /* owned: peers no longer on the interface */
	size_t n_gone;
	size_t n_peers;  /* on the interface now */
	size_t n_recent; /* with a handshake younger than MONITOR_HANDSHAKE_FRESH_MS */
};

struct monitor {
	struct monitor_fact *facts; /* owned, sorted by key */
	size_t n_facts;
	bool has_read;
	uint64_t full_interval_ms, last_full_ms;
};

void monitor_init(struct monitor *m, uint64_t full_interval_ms);
void monitor_fini(struct monitor *m);

/*
 * Takes a fresh read of the interface and fills *ret. now_ms is a monotonic clock (it
 * paces the full sets), wall_ms the unix time in ms (it ages handshakes). -ENOMEM
 * leaves the monitor as it was.
 */
int monitor_update(struct monitor *m, const struct wgf_device *dev, uint64_t now_ms,
                   int64_t wall_ms, struct monitor_report *ret);

void monitor_report_fini(struct monitor_report *r);

#endif
