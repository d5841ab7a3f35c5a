/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* channel_db: the channel's typed contract with SQL (0007_channel_v2.sql), both ways. */
#ifndef WGF_COORDINATOR_CHANNEL_DB_H
#define WGF_COORDINATOR_CHANNEL_DB_H

/*
 * Each agent message is one call of a SQL function: wgf_agent_wait (a Hint),
 * wgf_agent_sync (a SyncRequest) and wgf_agent_report (a Report). This file turns the
 * decoded body (proto/body.h) into that call's parameters, and the rows it returns
 * into the answer's fields: bytea, cidr, bigint and arrays of them, never JSON or
 * base64. Every result's columns are checked by name and type before a value is read,
 * so a migration that renames or retypes one makes each call fail loudly with
 * "unexpected database answer", never read a 0.
 *
 * Parameters are text for libpq (bytea as \x hex, arrays as {...} literals), built in
 * one buffer that struct chan_call owns; the SQL text is fixed.
 */

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "body.h"
#include "err.h"
#include "wire.h"

#define CHAN_CALL_PARAMS_MAX 24 /* as DB_PARAMS_MAX */

struct chan_call {
	const char *sql;
	int n;
	const char *params[CHAN_CALL_PARAMS_MAX];
	char *buf; /* owned: where the parameters' text lives */
};

/* What every channel function's answer starts with. */
struct chan_header {
	int64_t server_id;
	char server[WGF_SERVER_NAME_MAX + 1];
	uint8_t epoch[WGF_EPOCH_LEN];
	uint64_t revision;
};

struct chan_sync_options {
	unsigned max_deltas; /* further behind than this: a snapshot */
	unsigned page_size;  /* peers per snapshot page */
};

/* The calls, for an authenticated request from key with nonce. -ENOMEM only. */
int chan_call_wait(struct chan_call *c, const uint8_t key[static WGF_SIGN_PK_LEN],
                   const uint8_t nonce[static WGF_NONCE_LEN]);
int chan_call_sync(struct chan_call *c, const uint8_t key[static WGF_SIGN_PK_LEN],
                   const uint8_t nonce[static WGF_NONCE_LEN], const struct wgf_sync_request *req,
                   const struct chan_sync_options *o);
int chan_call_report(struct chan_call *c, const uint8_t key[static WGF_SIGN_PK_LEN],
                     const uint8_t nonce[static WGF_NONCE_LEN], const struct wgf_report *rep,
                     uint64_t handshake_window_ms);
void chan_call_fini(struct chan_call *c);

/* Reads the answer of wgf_agent_wait: -EBADMSG when it is not one. */
int chan_read_header(const PGresult *res, struct chan_header *ret, struct wgf_err *err);

/*
 * Reads the answer of wgf_agent_report: the header, and the server's released keys
 * (*ret_released, malloc'd, *ret_n of them, at most WGF_HINT_RELEASED_MAX; the caller
 * frees it). -EBADMSG when it is not one, -ENOMEM.
 */
int chan_read_report(const PGresult *res, struct chan_header *ret, uint8_t (**ret_released)[32],
                     size_t *ret_n, struct wgf_err *err);

/*
 * Reads the answer of wgf_agent_sync into *ret_header and *ret (whose arrays are then
 * owned by the caller: free them with wgf_body_fini() on a body holding it).
 */
int chan_read_sync(const PGresult *res, struct chan_header *ret_header, struct wgf_sync_reply *ret,
                   struct wgf_err *err);

#endif
