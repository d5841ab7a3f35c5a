/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* channel: the coordinator's end of the signed nng channel to the agents. */
#ifndef WGF_COORDINATOR_CHANNEL_H
#define WGF_COORDINATOR_CHANNEL_H

/*
 * Agents dial an nng rep0 socket and ask; the coordinator answers (the exchanges are
 * in proto/wgfleet.proto). Each request is opened and checked in proto/wire.h's order:
 * size and decoding; the claimed sender looked up in the in-memory registry of agent
 * keys (registry.h), where a stranger is dropped with no database work; the body's
 * size capped by its kind (a Report by the server's pool); recipient, freshness, a
 * replayed nonce still in memory (nonces.h); and only then the signature, against the
 * registered key. Then one SQL function call (0003_agents.sql) confirms the key with
 * the database, refuses a nonce replayed to another replica, and does the work: a
 * long poll (Hint), a sync (deltas or a snapshot, only that server's peers) or a
 * report. Every answer is an envelope signed with the coordinator's key, bound to the
 * request's nonce and addressed to its sender; answers to messages not authenticated
 * are rate-limited, and refusals are logged as counts per reason once an interval.
 *
 * The channel's database work goes through its own struct db (its own connections
 * and queue, each call with a deadline), so agents and the HTTP API cannot starve
 * each other. The registry is loaded from it at start and again whenever wgf_servers
 * is notified (channel_notify); nothing is received before the first load.
 *
 * Threads: nng completes receives and sends on its own threads. Those callbacks only
 * queue the context under a mutex and wake the loop with uv_async_send; everything
 * else (the database, parked polls, timers) runs on the loop thread and needs no lock.
 *
 * Long polls are parked until the database NOTIFYs a newer revision for their server
 * (channel_notify), or until their wait time runs out. Each parked poll holds one nng
 * context, and a server has at most one: a newer poll answers the older.
 *
 * Connections are capped in all and per remote address, and one with no request
 * outstanding that delivers no complete message for idle_timeout is closed, partial
 * message and all (pipes.h).
 */

#include <stdint.h>
#include <stdio.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <uv.h>

#include "db.h"
#include "wire.h"

struct channel_options {
	const char *listen; /* nng URL, e.g. tcp://0.0.0.0:7800 */
	/* For tls+tcp:// only (made by common/tls.h); the listener takes a reference. */
	nng_tls_config *tls;
	uint8_t sk[WGF_SIGN_SK_LEN];
	uint8_t pk[WGF_SIGN_PK_LEN];
	/* Earlier keys requests may still be addressed to (SETTINGS_PREVIOUS_KEYS_MAX). */
	uint8_t previous_pk[4][WGF_SIGN_PK_LEN];
	size_t n_previous_pk;
	uint64_t max_skew_ms;
	uint64_t wait_ms;
	uint64_t handshake_window_ms;
	unsigned max_deltas;
	unsigned snapshot_page; /* peers per SyncReply page */
	unsigned max_contexts;
	uint64_t db_deadline_ms;  /* each database call fails unanswered after this */
	uint64_t log_interval_ms; /* refusals are logged as counts this often */
	unsigned max_pipes;       /* connections in all (pipes.h) */
	unsigned max_pipes_per_address;
	uint64_t idle_timeout_ms; /* a connection with nothing outstanding is closed */
	unsigned agent_rate;      /* messages a second one agent key may send (a bucket) */
	unsigned agent_burst;     /* the bucket's size */
};

struct channel;

/*
 * Listens; *ret_url is the URL bound (with the port the kernel picked), borrowed. db
 * is borrowed and must outlive the channel: close it after channel_stop().
 */
int channel_start(uv_loop_t *loop, struct db *db, const struct channel_options *o,
                  struct channel **ret, const char **ret_url);

/* A db_notify_cb: on wgf_changes, "server_id:revision" payloads wake the parked polls
 * of that server; wgf_servers reloads the registry; a NULL channel (the listener
 * reconnected) does both, for all. */
void channel_notify(void *ctx, const char *chan, const char *payload);

/* Writes the channel's families (Prometheus text): accepted messages by kind, refusals
 * by reason, parked polls. */
void channel_write_metrics(const struct channel *ch, FILE *f);

/* Closes the socket; contexts finish on the loop and the channel frees itself. */
void channel_stop(struct channel *ch);

#endif
