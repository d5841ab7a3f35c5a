/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* sync: the desired-versus-actual diff of an interface's peers, as a pure function. */
#ifndef WGF_AGENT_SYNC_H
#define WGF_AGENT_SYNC_H

/*
 * sync_diff() compares the desired peers with what the interface holds and says what to
 * do: add the desired peers it lacks, update those whose allowed IPs (as a set) or
 * keepalive differ, remove the peers nobody asked for. Everything else is left as it is,
 * so one changed peer on a 10,000-peer interface gives one update.
 *
 * Some desired peers are refused and reported in `failed`, with a reason a person can
 * act on; the rest of the plan is unaffected. A refused peer is not touched at all: it
 * is neither written nor removed, so a broken entry never takes down a tunnel that works.
 * Reasons: a public key that wgf_key_check() refuses (all zeros, low order), a key given
 * twice (the first entry counts), the interface's own key, a key in the static list, an
 * allowed IP given twice within a peer, an allowed IP outside the routable networks,
 * and an allowed IP that overlaps one of another desired peer (both are refused:
 * neither is more right than the other) or of a static peer as the interface holds it.
 * The routable check comes before the overlaps, so a peer refused for asking 0.0.0.0/0
 * takes no other peer down with it.
 *
 * A reason travels to the coordinator and is shown to the tenant whose peer it is, so it
 * never names another peer: an overlap says "of another peer" or "of a static peer",
 * and the peer meant is in sync_failure.other for the agent's own log. Reasons fit in
 * SYNC_REASON_MAX, the size the report carries, so none is cut on the way.
 *
 * The rules (struct sync_rules) are what the agent enforces beyond the desired set:
 * - Static peers are configured by key; they are never added, changed or removed, and
 *   count in n_static when the interface has them.
 * - Routable networks are those this server may route: every allowed IP of a desired
 *   peer must lie within one of them. The caller joins the coordinator's list (the
 *   server's pool, from the desired set) and the operator's ([wireguard] routable).
 *   With no routable network at all (a cache from before the coordinator sent them, an
 *   `apply FILE` without them, no setting) nothing is refused on this ground.
 *
 * Cost: O(n log n) in the number of peers and allowed IPs (key-sorted pointer arrays
 * merged in one pass; overlaps found by one sweep over the sorted prefixes; the
 * routable networks sorted once, made disjoint, and binary-searched for each allowed
 * IP). Nothing is copied: the plan points into the caller's arrays, which must outlive
 * it and stay unchanged. Lists come out sorted by public key.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "peer.h"

#define SYNC_REASON_MAX 128 /* the reason a report carries (session.h), NUL included */

struct sync_change {
	const struct wgf_peer *desired; /* borrowed; NULL for a removal */
	const struct wgf_peer *actual;  /* borrowed; NULL for an addition */
};

struct sync_failure {
	const struct wgf_peer *peer; /* borrowed: the refused desired peer */
	/*
	 * Borrowed; for -EADDRINUSE the peer overlapped (a desired one, or the interface's
	 * static one), never named in reason; NULL for the other codes.
	 */
	const struct wgf_peer *other;
	/*
	 * -EINVAL bad key or list, -EEXIST key twice, -EPERM static, -EADDRINUSE overlap,
	 * -EADDRNOTAVAIL outside the routable networks.
	 */
	int code;
	char reason[SYNC_REASON_MAX];
};

struct sync_plan {
	struct sync_change *add, *update, *remove; /* owned arrays */
	size_t n_add, n_update, n_remove;
	struct sync_failure *failed; /* owned */
	size_t n_failed;
	size_t n_unchanged; /* desired peers the interface already has right */
	size_t n_static;    /* static peers on the interface, left alone */
};

/* Every list is borrowed for the call only, in any order; none is changed. */
struct sync_rules {
	const uint8_t (*static_keys)[WGF_KEY_LEN];
	size_t n_static;
	const struct wgf_cidr *routable; /* networks without host bits; may nest or repeat */
	size_t n_routable;               /* 0: allowed IPs are not checked against them */
};

/*
 * Fills *ret (overwritten; free it with sync_plan_fini) from the desired peers and the
 * actual device (whose public key, when known, no desired peer may use). rules may be
 * NULL (no static peers, no routable check). Returns 0, or -ENOMEM (then *ret is
 * untouched).
 */
int sync_diff(const struct wgf_peer *desired, size_t n_desired, const struct wgf_device *actual,
              const struct sync_rules *rules, struct sync_plan *ret);

void sync_plan_fini(struct sync_plan *plan);

/*
 * Writes a peer's allowed IPs as "10.0.0.2/32,fd00::2/128", or "(none)", into out;
 * truncated to size. SYNC_IPS_STRLEN holds any peer's.
 */
#define SYNC_IPS_STRLEN (WGF_PEER_ALLOWED_IPS_MAX * WGF_CIDR_STRLEN)
void sync_format_allowed_ips(const struct wgf_peer *p, char *out, size_t size);

/* True when applying the plan would change nothing. */
static inline bool sync_plan_is_empty(const struct sync_plan *plan)
{
	return plan->n_add == 0 && plan->n_update == 0 && plan->n_remove == 0;
}

#endif
