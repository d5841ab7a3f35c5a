/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* channel: the coordinator's end of the signed nng channel to the agents. */
#ifndef WGF_COORDINATOR_CHANNEL_H
#define WGF_COORDINATOR_CHANNEL_H

/*
 * Agents dial an nng rep0 socket and ask; the coordinator answers (the exchanges are
 * in proto/wgfleet.proto). Each request is opened and checked in proto/wire.c's order
 * (size, decoding, version, field lengths, recipient, freshness, signature against the
 * claimed key), then one SQL function call (0003_agents.sql) confirms the key belongs
 * to a registered server, refuses a replayed nonce, and does the work: a long poll
 * (Hint), a sync (deltas or a snapshot, only that server's peers) or a report. Every
 * answer is an envelope signed with the coordinator's key, bound to the request's
 * nonce and addressed to its sender.
 *
 * Threads: nng completes receives and sends on its own threads. Those callbacks only
 * queue the context under a mutex and wake the loop with uv_async_send; everything
 * else (the database, parked polls, timers) runs on the loop thread and needs no lock.
 *
 * Long polls are parked until the database NOTIFYs a newer revision for their server
 * (channel_notify), or until their wait time runs out; each parked poll holds one nng
 * context, so the number of contexts grows with connected agents, up to a bound.
 */

#include <stdint.h>

#include <uv.h>

#include "db.h"
#include "wire.h"

struct channel_options {
	const char *listen; /* nng URL, e.g. tcp://0.0.0.0:7800 */
	uint8_t sk[WGF_SIGN_SK_LEN];
	uint8_t pk[WGF_SIGN_PK_LEN];
	uint64_t max_skew_ms;
	uint64_t wait_ms;
	uint64_t handshake_window_ms;
	unsigned max_deltas;
	unsigned keepalive;
	unsigned max_contexts;
};

struct channel;

/* Listens; *ret_url is the URL bound (with the port the kernel picked), borrowed. */
int channel_start(uv_loop_t *loop, struct db *db, const struct channel_options *o,
                  struct channel **ret, const char **ret_url);

/* A db_notify_cb: "server_id:revision" payloads wake the parked polls of that server;
 * a NULL channel wakes them all. */
void channel_notify(void *ctx, const char *chan, const char *payload);

/* Closes the socket; contexts finish on the loop and the channel frees itself. */
void channel_stop(struct channel *ch);

#endif
