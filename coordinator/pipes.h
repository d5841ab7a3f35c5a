/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* pipes: the channel's connections, counted per address and timed out when idle. */
#ifndef WGF_COORDINATOR_PIPES_H
#define WGF_COORDINATOR_PIPES_H

/*
 * nng 1.5.2 keeps a connection (a pipe) as long as the peer does, and its TCP
 * transport has no timeout for a message in progress: a peer may hold a partial
 * message of up to NNG_OPT_RECVMAXSZ for ever. The channel bounds both with this
 * table, fed by nng's pipe notifications and by the channel's own requests:
 *
 *   - pipes_admit() runs when a pipe has negotiated and before the socket uses it
 *     (NNG_PIPE_EV_ADD_PRE), and refuses it past max_total pipes in all or
 *     max_per_address from one remote address;
 *   - a pipe is busy while it has a request the channel has not answered or dropped
 *     (pipes_busy() and pipes_done()): a parked long poll keeps its pipe;
 *   - a pipe that is not busy and has delivered no complete message for idle_ms is
 *     returned by pipes_expired() for the channel to close. A partial message does not
 *     count as activity, so it is dropped with its pipe after idle_ms;
 *   - each pipe has a token bucket of messages (pipes_charge()), checked on nng's
 *     thread as a message arrives: one past it is dropped there, before it costs the
 *     loop a wake-up, an unpack or a lookup.
 *
 * pipes_admit(), pipes_remove() and pipes_charge() run on nng's threads, the rest on
 * the loop; a mutex inside guards the table. Times are wgf_clock_mono_ms() values.
 */

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#define PIPES_REMOTE_LEN 48

struct pipes_options {
	unsigned max_total;
	unsigned max_per_address;
	uint64_t idle_ms;
	double msgs_per_s, msgs_burst; /* each pipe's bucket; 0: no bound */
};

struct pipes;

/* NULL for -ENOMEM. */
struct pipes *pipes_new(const struct pipes_options *o);

void pipes_free(struct pipes *t);

/* nng thread: whether pipe p may stay (its remote address counted); if not, the caller
 * closes it, and it is counted as refused. */
bool pipes_admit(struct pipes *t, nng_pipe p);

/* nng thread: p is gone. Unknown pipes (refused ones) are ignored. */
void pipes_remove(struct pipes *t, nng_pipe p);

/*
 * nng thread: a complete message arrived through p; false when p's bucket is empty,
 * and then the caller drops the message unread (counted, see pipes_take_throttled()).
 * Unknown pipes are let through.
 */
bool pipes_charge(struct pipes *t, nng_pipe p);

/* A complete request arrived through p. */
void pipes_busy(struct pipes *t, nng_pipe p);

/* The request that arrived through p was answered or dropped. */
void pipes_done(struct pipes *t, nng_pipe p);

/*
 * Writes to ret (room for max) the pipes that have been idle too long and forgets
 * them; returns how many. The caller closes them with nng_pipe_close().
 */
size_t pipes_expired(struct pipes *t, nng_pipe *ret, size_t max);

/* Pipes refused by pipes_admit() since the last call, and the last one's address. */
uint64_t pipes_take_refused(struct pipes *t, char remote[static PIPES_REMOTE_LEN]);

/* Messages pipes_charge() refused since the last call, and the last one's address. */
uint64_t pipes_take_throttled(struct pipes *t, char remote[static PIPES_REMOTE_LEN]);

/* The remote address of p as text ("unknown" when it cannot be read). */
void pipes_remote(nng_pipe p, char out[static PIPES_REMOTE_LEN]);

#endif
