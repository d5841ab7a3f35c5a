/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* delivery: sends the webhook outbox, on the coordinator's loop, with libcurl's multi API. */
#ifndef WGF_COORDINATOR_DELIVERY_H
#define WGF_COORDINATOR_DELIVERY_H

/*
 * A timer asks the database for due deliveries (wgf_webhook_claim): each webhook's
 * oldest pending one, leased to this coordinator for longer than an attempt can take.
 * The claim locks with SKIP LOCKED and the lease keeps others off until it ends, so
 * two coordinators on one database never send the same attempt, and a webhook has one
 * request in flight at a time: its events arrive in id order, and a slow receiver
 * holds up only itself. Each attempt is a POST of the event's exact body, signed
 * (webhook.h), driven by curl_multi_socket_action from uv_poll_t and uv_timer_t
 * handles; a 2xx answer is success, anything else (or no answer within the timeouts)
 * a failure retried with jittered exponential backoff until retry_for has passed since
 * the event, then dead. The outcome goes back with wgf_webhook_done. A coordinator
 * that dies mid-attempt leaves a lease that runs out: the attempt is made again
 * (at least once; receivers de-duplicate by Wgfleet-Event-Id).
 *
 * Each poll is also a check of wgf_servers_watch(), which announces a server online
 * at the first check that hears its agent (within server_online_ms, as the status route
 * counts it) after it was announced offline, and offline only when a later check still
 * finds it unheard offline_confirm_ms after one first did.
 *
 * About once a minute, finished deliveries older than keep_ms are removed
 * (wgf_webhook_prune; one coordinator at a time), with the events none needs any more.
 *
 * Every connection's address is checked against the policy (webhook.h) when curl opens
 * its socket, so a name resolving to a refused address is never connected to.
 */

#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "db.h"
#include "webhook.h"

struct delivery_options {
	unsigned concurrency; /* requests in flight at once, over all webhooks */
	uint64_t poll_ms;     /* how often due deliveries are looked for */
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms; /* a whole attempt, answer included */
	uint64_t retry_min_ms, retry_max_ms;
	uint64_t retry_for_ms;       /* from the event to giving up */
	uint64_t keep_ms;            /* how long the log keeps a finished delivery */
	uint64_t server_online_ms;   /* a server seen this recently is online */
	uint64_t offline_confirm_ms; /* unheard this much longer: announced offline */
	struct webhook_policy policy;
};

struct delivery;

/* db is borrowed and must outlive the delivery's last callback (db_close runs them). */
int delivery_new(uv_loop_t *loop, struct db *db, const struct delivery_options *o,
                 struct delivery **ret);
/* Stops claiming, abandons attempts in flight (their leases run out) and closes the
 * handles; call before db_close. */
void delivery_stop(struct delivery *d);
/* SIGHUP's new [api] server_online_within. */
void delivery_set_online_ms(struct delivery *d, uint64_t server_online_ms);

/* Writes the delivery families (Prometheus text): attempts by outcome, deliveries given
 * up, attempts in flight. */
void delivery_write_metrics(const struct delivery *d, FILE *f);

/* After the loop has run the close callbacks; accepts NULL. */
void delivery_free(struct delivery *d);

#endif
