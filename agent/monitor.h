/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* monitor: per-peer facts read from the interface, and what changed between two reads. */
#ifndef WGF_AGENT_MONITOR_H
#define WGF_AGENT_MONITOR_H

/*
 * Status comes from the data plane (DESIGN.md principle 7). Every few seconds the agent
 * reads the interface and hands the read to the monitor, which keeps one compact
 * fact per peer (last handshake, endpoint, byte counters) and says what changed since
 * the previous read: new peers, peers gone, a new handshake, a moved endpoint, traffic.
 * On the first read, and then every full_interval_ms, the report is a full set: every
 * peer is listed, so a consumer that missed a report catches up.
 *
 * A report is a pure function of the previous facts, the read and the clock (passed
 * in), so it is unit-tested without an interface. Each peer of the read is looked up in
 * the facts (kept sorted by key) and written over where it is: O(n log n), and a read
 * that adds or removes no peer builds no second set of facts. A report points into the
 * monitor's facts and is valid until the next read begins. Nothing here logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "peer.h"

/* A handshake younger than this means the tunnel is up (WireGuard's REJECT_AFTER_TIME). */
#define MONITOR_HANDSHAKE_FRESH_MS 180000

#define MONITOR_CHANGED_NEW       (1U << 0)
#define MONITOR_CHANGED_HANDSHAKE (1U << 1)
#define MONITOR_CHANGED_ENDPOINT  (1U << 2)
#define MONITOR_CHANGED_TRANSFER  (1U << 3)

/* In monitor_fact.flags: the endpoint is IPv6 (else IPv4). */
#define MONITOR_FACT_IPV6 (1U << 4)

/* 80 bytes, in an order that leaves no padding: one a peer, for as long as the agent runs. */
struct monitor_fact {
	uint8_t public_key[WGF_KEY_LEN];
	int64_t last_handshake_ms; /* unix ms; 0 = never */
	uint64_t rx_bytes, tx_bytes;
	uint8_t endpoint_addr[16];  /* the first 4 bytes for IPv4 */
	uint32_t endpoint_scope_id; /* the zone of an IPv6 link-local endpoint */
	uint16_t endpoint_port;     /* network byte order */
	uint16_t flags; /* WGF_PEER_HAS_HANDSHAKE, _ENDPOINT, _TRANSFER, MONITOR_FACT_IPV6 */
};

/* The fact's endpoint as a socket address in *ss; false when it has none. */
bool monitor_fact_endpoint(const struct monitor_fact *f, struct sockaddr_storage *ss);

struct monitor_change {
	uint32_t fact; /* index into the monitor's facts (at most WGF_DEVICE_PEERS_MAX) */
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
	/* The read being taken, from monitor_begin() to monitor_end(): */
	struct monitor_fact *fresh; /* owned: peers without a fact yet, in read order */
	size_t n_fresh, cap_fresh;
	size_t n_read, n_kept, n_changed, n_recent;
	int64_t read_wall_ms;
	bool read_failed; /* out of memory for fresh */
};

void monitor_init(struct monitor *m, uint64_t full_interval_ms);
void monitor_fini(struct monitor *m);

/*
 * A read, peer by peer, as a reader hands them over (wgf_device.see): monitor_begin(),
 * then monitor_see() for each peer, then monitor_end(), which fills *ret. A peer's
 * values are written over its fact as it comes, so a read is never held whole here.
 * monitor_see() with peer NULL starts the read over. wall_ms is the unix time in ms
 * (it ages handshakes), now_ms a monotonic clock (it paces the full sets).
 *
 * Between monitor_begin() and monitor_end() the facts hold what was seen so far; a
 * reader on another thread and anything reading the facts need a lock between them.
 * -ENOMEM from monitor_end(), and monitor_abort() after a failed read, end the read
 * without a report: what changed stays marked on the facts for the next one.
 */
void monitor_begin(struct monitor *m, int64_t wall_ms);
void monitor_see(struct monitor *m, const struct wgf_peer *peer, const struct wgf_peer_seen *seen);
int monitor_end(struct monitor *m, uint64_t now_ms, struct monitor_report *ret);
void monitor_abort(struct monitor *m);

/* The same for a read held whole (dev->seen set). */
int monitor_update(struct monitor *m, const struct wgf_device *dev, uint64_t now_ms,
                   int64_t wall_ms, struct monitor_report *ret);

void monitor_report_fini(struct monitor_report *r);

#endif
