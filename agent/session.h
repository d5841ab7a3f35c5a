/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* session: the agent's end of the signed nng channel to the coordinators. */
#ifndef WGF_AGENT_SESSION_H
#define WGF_AGENT_SESSION_H

/*
 * The agent dials every configured coordinator (replicas share one database, so any
 * of them can answer), each on an nng req0 socket of its own (a link), and sends each
 * request on a link that has a connection up, taking turns, which is the failover.
 * Two contexts run side by side (the exchanges are in proto/wgfleet.proto):
 *
 *   poll  a long poll (Hint with our revision) that the coordinator answers when our
 *         server has a newer revision, or after its wait time;
 *   work  SyncRequests and Reports, one at a time: a sync when a hint shows a newer
 *         revision, at start, and every resync interval (so a lost hint costs latency,
 *         never correctness); reports as the daemon queues them.
 *
 * A SyncReply brings deltas or a page of a snapshot. The session holds no desired set:
 * it collects a snapshot's pages until the last one and hands the set over whole
 * (session_callbacks.desired), and hands deltas over as they come
 * (session_callbacks.deltas); the daemon gives both to its reconciler, the one owner of
 * the set, and reports what it applied with session_report(). The session keeps only
 * the revision and epoch it handed over last: deltas that do not follow it (another
 * epoch, a gap) are dropped and the next sync asks for a snapshot (proto/wgfleet.proto,
 * REVISIONS AND EPOCHS and PAGED SNAPSHOTS).
 *
 * Dead paths: TCP alone never gives up on a connection whose path silently drops
 * everything (it retransmits with a doubling timeout for many minutes), and nng does
 * not set keepalive timing. So a link is declared dead when a request on it goes
 * unanswered: a sync or report for request_timeout, a long poll for the coordinators'
 * poll wait plus request_timeout. Its dialer is closed (which closes the connection)
 * and a new one dials; while a link has no connection, its dialer is replaced every
 * 1-2 s, so a fresh SYN goes out instead of one waiting in the kernel's SYN backoff.
 * One socket per link is what makes this exact: a timed-out request names its link,
 * and redialing one link never touches a request on another.
 *
 * Every answer must be signed by the pinned coordinator key, addressed to us, fresh,
 * and bound to the request's nonce; anything else is dropped and logged. nng calls
 * back on its own threads; those callbacks only queue and wake the loop, so the rest
 * runs on the agent's loop thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <uv.h>

#include "body.h"
#include "cache.h"
#include "monitor.h"
#include "peer.h"
#include "tls.h"
#include "wire.h"

#define SESSION_URLS_MAX       8
#define SESSION_COORD_KEYS_MAX 4

struct session_options {
	const char *urls[SESSION_URLS_MAX]; /* borrowed */
	/* For tls+tcp:// URLs (common/tls.h), else NULL; each dialer takes a reference. */
	nng_tls_config *tls[SESSION_URLS_MAX];
	size_t n_urls;
	const char *server; /* our server's name, as registered */
	uint8_t coordinator_pk[SESSION_COORD_KEYS_MAX][WGF_SIGN_PK_LEN]; /* pinned */
	size_t n_coordinator_pk;
	uint8_t sk[WGF_SIGN_SK_LEN];
	uint64_t resync_ms;
	uint64_t request_timeout_ms; /* for syncs and reports; polls wait longer */
	uint64_t poll_wait_ms;       /* the coordinators' long-poll wait ([channel] poll_wait) */
	uint64_t max_skew_ms;
};

struct session_callbacks {
	/*
	 * A snapshot's whole set at st->revision of st->epoch: the callee takes st's arrays
	 * (and zeroes *st). It is authoritative even when its revision is not newer than the
	 * set the agent has (another epoch, or a database restored without one).
	 */
	void (*desired)(void *ctx, struct cache_state *st);
	/*
	 * Deltas that take the set handed over last (whole or changed) from its revision to
	 * r->revision; r is borrowed for the call. A negative errno: not taken, and the next
	 * sync asks for a snapshot.
	 */
	int (*deltas)(void *ctx, const struct wgf_sync_reply *r);
	/*
	 * The keys an operator released on this server (sorted; borrowed for the call), as
	 * the answer to each report brings them. May be NULL.
	 */
	void (*released)(void *ctx, const uint8_t (*keys)[WGF_KEY_LEN], size_t n);
};

struct session_failure {
	uint8_t public_key[WGF_KEY_LEN];
	char reason[128];
};

/* What the agent tells the coordinator; everything is borrowed for the call. */
struct session_report {
	uint64_t applied_revision;
	const uint8_t *epoch; /* the epoch applied_revision counts in (16 bytes), or NULL */
	const struct session_failure *failures;
	size_t n_failures;
	const struct monitor_fact *const *facts; /* what the interface shows of peers */
	size_t n_facts;
	const uint8_t (*drift_keys)[WGF_KEY_LEN];
	const int *drift_kinds; /* 1 extra, 2 missing, 3 changed (proto Drift.Kind) */
	size_t n_drift;
	const uint8_t *interface_public_key; /* 32 bytes, or NULL */
	uint16_t listen_port;
	const char *cache_error; /* why the cache cannot be written, or NULL */
	/* Adopt mode: when has_unknown, the unknown peers (sorted; at most
	 * WGF_REPORT_UNKNOWN_MAX) and how many there are in all. */
	bool has_unknown;
	const struct wgf_unknown_peer *unknown;
	size_t n_unknown, n_unknown_total;
};

struct session;

/*
 * Starts dialing. initial (borrowed; may be NULL) is the desired set the agent already
 * has: its revision and epoch are where syncing starts (without one, at a snapshot).
 */
int session_start(uv_loop_t *loop, const struct session_options *o,
                  const struct session_callbacks *cb, void *ctx, const struct cache_state *initial,
                  struct session **ret);

/* Queues a report (encoded at once; the arguments may go away after the call). */
int session_report(struct session *s, const struct session_report *r);

/*
 * The failed TLS dials of URL i (of session_options.urls) since the start, over all the
 * dialers it had; -errno as wgf_tls_dial_failures().
 */
int session_dial_failures(struct session *s, size_t i, struct wgf_tls_dial_failures *ret);

/* The session as /metrics shows it (loop thread). */
struct session_stats {
	size_t links, links_up; /* coordinator URLs, and those with a connection up now */
	uint64_t synced_at_ms;  /* unix ms of the last sync, or poll answered without news */
	uint64_t refused;       /* requests the coordinator answered with an Error */
};

void session_get_stats(struct session *s, struct session_stats *ret);

/*
 * Asks for a snapshot at the next sync (now, if nothing is under way): the daemon could
 * not apply deltas the session handed over, so the set no longer follows its revision.
 */
void session_resync(struct session *s);

/* Closes the sockets; the session frees itself once nng and the loop are done with it. */
void session_stop(struct session *s);

#endif
