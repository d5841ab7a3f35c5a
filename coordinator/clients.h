/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* clients: per-address counters for admission, in memory fixed at start. */
#ifndef WGF_COORDINATOR_CLIENTS_H
#define WGF_COORDINATOR_CLIENTS_H

/*
 * What the coordinator knows of each client address it hears from: how many
 * connections it holds open, and a token bucket of the authentication failures it may
 * still make. The table has a fixed number of slots, allocated once, so no sender can
 * make it grow: an address is placed by hash with a short linear probe, and when every
 * slot in its probe window belongs to an address with state worth keeping, it shares
 * one overflow entry with every other such address (the limits then hold for them
 * together). A slot whose address holds no connection and has its full bucket keeps
 * nothing worth keeping and is taken by the next address that needs one.
 *
 * Everything runs on the loop thread; nothing here logs.
 */

#include <stdbool.h>
#include <stdint.h>

#include "cidr.h"

struct clients_limits {
	unsigned max_connections;       /* open connections per address; 0: no limit */
	unsigned auth_failures_burst;   /* failed authentications allowed at once */
	unsigned auth_failures_per_min; /* and refilled at this rate */
};

struct clients;
struct client;

/* slots is rounded up to a power of two. */
struct clients *clients_new(unsigned slots, const struct clients_limits *l);
void clients_free(struct clients *t);

/* The entry of a (never NULL: the overflow entry when the table is full). */
struct client *clients_get(struct clients *t, const struct wgf_addr *a, uint64_t now_ms);

/* Counts a connection in; false (and nothing counted) when the address holds its limit. */
bool clients_connect(struct clients *t, struct client *c);
void clients_disconnect(struct clients *t, struct client *c);

/* Whether the address may try a key now; 0, or the seconds until it may (Retry-After). */
unsigned clients_auth_wait(struct clients *t, struct client *c, uint64_t now_ms);
/* A failed authentication spends a token. */
void clients_auth_failed(struct clients *t, struct client *c, uint64_t now_ms);

#endif
