/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* reconcile: one pass of making an interface's peers equal to the desired set. */
#ifndef WGF_AGENT_RECONCILE_H
#define WGF_AGENT_RECONCILE_H

/*
 * The reconciler owns the desired set and applies it through a backend (DESIGN.md
 * principle 5). A pass reads the interface, diffs it against the desired set
 * (sync.h), applies only the difference (removals first, so an allowed IP that moves
 * between peers ends where it belongs, then additions and updates, in chunks of
 * RECONCILE_CHUNK peers). A pass whose every set succeeded is complete: it does not read
 * the interface again (a re-read of 10,000 peers costs wireguard-go 60-90 ms), and the
 * next full pass sees whatever differs as drift. After a failed set it reads again, to
 * learn what is still pending. It never touches the interface's key or port, nor static
 * peers.
 *
 * Deltas (reconciler_apply) change the held set in place; reconciler_run_changes()
 * then writes just the peers they changed, reading nothing, and leaves verifying to the
 * next full pass. The peers deltas changed are not drift until a full pass is done.
 *
 * Drift is a difference between the interface and what the agent last applied (the
 * baseline): a peer removed, added or changed by someone else. Only peers that the pass
 * has to change are classified, so drift costs nothing when there is none. The first
 * baseline is the cache file when the pass that applied it finished (cache.h,
 * RECONCILE_F_BASELINE), so a wireguard-go restarted empty shows as drift too.
 *
 * Without a desired set (no cache yet and no coordinator), a pass does nothing: losing
 * the coordinator never removes a peer.
 *
 * reconciler_set_desired() and reconciler_apply() are the seam for the coordinator
 * channel: the first takes a whole new desired set and revision (ignoring one that is
 * not newer), the second changes the set it holds by deltas; the reconciler holds the
 * agent's only copy of the set. Both mark the cache to be written. The next pass writes it
 * (fsync'd, atomically) before it changes the interface, so a crash at any point of the apply
 * restarts from this set; after a complete pass it records the set as applied (cache.h). A cache
 * that cannot be written does not stop the apply: the pass says so in reconcile_result.cache and
 * the next pass tries again.
 *
 * A set offered with RECONCILE_F_NO_REMOVE (the cache at start, while the coordinator
 * has not answered) may be older than what the interface holds: passes add and update
 * but remove nothing, and count what they left in n_kept. An addition or update that
 * would take an allowed IP from a kept peer (WireGuard moves it) is held back too
 * (n_held). Kept and held peers are never drift, neither then nor when the first
 * complete pass of a later set (offered without the flag) removes or changes them.
 *
 * In adopt mode (reconciler_set_adopt) a full pass removes only what is the agent's own: a
 * peer it applied (the baseline) or that deltas changed since. Any other peer that is
 * neither desired nor static is unknown: never removed or changed, listed in the result
 * (up to RECONCILE_UNKNOWN_MAX, with the total), and treated as static by the rest of the
 * plan, so a desired peer that would take one of its allowed IPs is refused. A released
 * key (reconciler_set_released) is removed even so. Without adopt mode nothing changes.
 *
 * Nothing here logs; the caller decides what a result is worth saying. A reconciler is
 * used by one thread at a time: the daemon runs passes on libuv's thread pool and
 * touches the reconciler only between them.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "body.h"
#include "cache.h"
#include "err.h"
#include "sync.h"

/* Peers per set_peers/remove_peers call. wireguard-go takes ~0.4-0.5 ms a peer, so a
 * chunk is ~0.1 s there and a stop waits at most that long; fewer, larger calls gain
 * nothing measurable (10,000 peers: 1.06x `wg setconf` with 256 and with 1,024). */
#define RECONCILE_CHUNK 256

enum reconcile_drift_kind {
	RECONCILE_DRIFT_ADDED,   /* on the interface, never applied by us */
	RECONCILE_DRIFT_REMOVED, /* applied by us, gone from the interface */
	RECONCILE_DRIFT_CHANGED, /* applied by us, allowed IPs or keepalive changed */
};

struct reconcile_failure {
	uint8_t public_key[WGF_KEY_LEN];
	int code;
	char reason[SYNC_REASON_MAX]; /* for the coordinator and the tenant: names no other peer */
	/* The peer an overlap (-EADDRINUSE) is with, for the agent's own log only. */
	uint8_t other_key[WGF_KEY_LEN];
	bool has_other;
};

struct reconcile_drift {
	uint8_t public_key[WGF_KEY_LEN];
	enum reconcile_drift_kind kind;
};

/* Unknown peers a result lists (as a report does); the rest are counted. */
#define RECONCILE_UNKNOWN_MAX WGF_REPORT_UNKNOWN_MAX

struct reconcile_result {
	uint64_t revision;
	uint8_t epoch[CACHE_EPOCH_LEN]; /* the desired set's */
	size_t n_desired, n_actual;
	bool has_public_key; /* the interface has a private key (a fresh daemon has none) */
	size_t n_added, n_updated, n_removed; /* planned; sent unless dry run */
	size_t n_unchanged, n_static;
	/* RECONCILE_F_NO_REMOVE: peers left that the set does not have, and desired peers
	 * held back because they would take an allowed IP from one of those. */
	size_t n_kept, n_held;
	/* Full passes (has_unknown): the unknown peers (owned, sorted by key), at most
	 * RECONCILE_UNKNOWN_MAX of n_unknown_total; none without adopt mode. */
	struct wgf_unknown_peer *unknown;
	size_t n_unknown, n_unknown_total;
	bool has_unknown;
	struct reconcile_failure *failed; /* owned: desired peers refused */
	size_t n_failed;
	struct reconcile_drift *drift; /* owned */
	size_t n_drift;
	size_t n_pending;     /* changes still needed (counted after a failed apply) */
	int apply_error;      /* first backend error while applying, or 0 */
	struct wgf_err cache; /* code < 0 when writing the cache failed */
};

/* Called for each planned change before it is applied: op is '+', '~' or '-'. */
typedef void (*reconcile_change_fn)(void *userdata, char op, const struct wgf_peer *desired,
                                    const struct wgf_peer *actual);

#define RECONCILE_F_BASELINE  (1U << 0) /* this set is also what was last applied */
#define RECONCILE_F_FORCE     (1U << 1) /* accept it even if its revision is not newer */
#define RECONCILE_F_CACHED    (1U << 2) /* it is what the cache file holds: not rewritten */
#define RECONCILE_F_NO_REMOVE (1U << 3) /* may be older than the interface: remove nothing */

struct reconciler;

/* b is borrowed and must outlive the reconciler; cache_path (copied) may be NULL. */
int reconciler_new(struct backend *b, const char *cache_path, struct reconciler **ret);
void reconciler_free(struct reconciler *rc);

/*
 * While *cancel is true, a pass stops applying at the next chunk boundary and returns
 * with apply_error -ECANCELED (the daemon sets it from another thread to stop).
 */
void reconciler_set_cancel(struct reconciler *rc, const atomic_bool *cancel);

/* Replaces the static peers (copied); they are never added, changed or removed. */
int reconciler_set_static(struct reconciler *rc, const uint8_t (*keys)[WGF_KEY_LEN], size_t n);

/* Turns adopt mode on or off for the passes that follow. */
void reconciler_set_adopt(struct reconciler *rc, bool adopt);

/*
 * Replaces the released keys (copied): peers that adopt mode removes even though they
 * are not the agent's own. -ENOMEM.
 */
int reconciler_set_released(struct reconciler *rc, const uint8_t (*keys)[WGF_KEY_LEN], size_t n);

/*
 * Replaces the configured routable networks (copied; [wireguard] routable). A pass
 * checks allowed IPs against these and the desired set's own (cache_state.routable,
 * from the coordinator) together; with neither, against nothing (sync.h). -ENOMEM.
 */
int reconciler_set_routable(struct reconciler *rc, const struct wgf_cidr *nets, size_t n);

/*
 * Offers a desired set. Returns 1 when taken: st->peers is then the reconciler's and
 * *st is zeroed. Returns 0 when st->revision is not newer than the current one (and
 * RECONCILE_F_FORCE is not given): nothing changes and st stays the caller's. -ENOMEM.
 */
int reconciler_set_desired(struct reconciler *rc, struct cache_state *st, unsigned flags);

/*
 * Applies deltas to the desired set in place (cache_state_apply), which must follow it:
 * the same epoch, changes newer than its revision. The peers they touch count as drift
 * in no pass until one completes; the cache is marked to be written. Returns 1 when the
 * set changed, 0 when r changes nothing, -ENODATA without a desired set, -ESTALE when r
 * does not follow it, -E2BIG or -ENOMEM (then the set is unchanged).
 */
int reconciler_apply(struct reconciler *rc, const struct wgf_sync_reply *r);

bool reconciler_has_desired(const struct reconciler *rc);
uint64_t reconciler_revision(const struct reconciler *rc);

/*
 * Runs one pass. With dry_run nothing is written (neither the interface nor the
 * cache). Returns 0 with *ret filled (free it with reconcile_result_fini) whenever
 * the pass got as far as a plan, even if applying then failed (see apply_error);
 * -ENODATA without a desired set; otherwise a negative errno with err filled (the
 * interface could not be read, or memory ran out).
 */
int reconciler_run(struct reconciler *rc, bool dry_run, reconcile_change_fn cb, void *userdata,
                   struct reconcile_result *ret, struct wgf_err *err);

/*
 * A full pass on a read the caller took earlier (dev, consumed), so that the read need
 * not hold the reconciler: deltas may be applied and written while it runs. skip
 * (sorted, borrowed) holds the keys of every peer a delta changed after the read began;
 * the read may show such a peer before or after its write, so the pass neither writes
 * nor classifies it (it is verified by the next pass) and a delta is never undone by
 * the older read. The caller must take the read only when every delta handed over
 * before it has been written, and must not use it once a whole set has been offered
 * since (reconciler_run() then). dev->seen may have been dropped (wgf_device_drop_seen):
 * unknown peers are then listed without handshake or endpoint. Otherwise as
 * reconciler_run(), without dry run.
 */
int reconciler_run_read(struct reconciler *rc, struct wgf_device *dev,
                        const uint8_t (*skip)[WGF_KEY_LEN], size_t n_skip, reconcile_change_fn cb,
                        void *userdata, struct reconcile_result *ret, struct wgf_err *err);

/*
 * A delta pass: writes just the peers deltas changed since the last pass (one backend
 * set of them, one removal of the keys gone), after recording them in the cache's
 * journal, and reads nothing. It counts on the interface being the desired set as the
 * last full pass left it; drift since then, and whether the set took, are the next full
 * pass's to see (the caller runs one at once when apply_error is set). Returns -EAGAIN
 * when only a full pass will do: none went through since the last whole set, peers are
 * refused, kept or held, the journal cannot be written, or a changed peer is not clean
 * (a check of the diff would refuse it, sync.h). Otherwise as reconciler_run(), with
 * n_drift 0 and n_pending 0 unless the backend failed. For '~' the callback's actual is
 * NULL (the old version is not read); for '-' it holds the key only.
 */
int reconciler_run_changes(struct reconciler *rc, reconcile_change_fn cb, void *userdata,
                           struct reconcile_result *ret, struct wgf_err *err);

void reconcile_result_fini(struct reconcile_result *r);

const char *reconcile_drift_kind_to_string(enum reconcile_drift_kind kind);

#endif
