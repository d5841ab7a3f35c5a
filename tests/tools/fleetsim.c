/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fleetsim: one process plays many agents on the channel, for the fan-out benchmark. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "body.h"
#include "key.h"
#include "wire.h"

/*
 * fleetsim keys [--agents N] [--seed TEXT] [--prefix NAME]
 *     prints "INDEX SERVER AGENT_KEY_B64" for each agent: register these servers.
 *
 * fleetsim run --url URL --coordinator B64 [--agents N] [--seed TEXT] [--prefix NAME]
 *              [--ramp MS] [--resync MS] [--request-timeout MS] [--duration S]
 *              [--out FILE]
 *     plays N agents (default 1000). Agent i is server PREFIX%05u (default sim00000...)
 *     with an Ed25519 key derived from the seed and i, and has an nng req0 socket of
 *     its own dialing URL. Each loops as agent/session.c does: a long poll (a Hint with
 *     its revision and epoch); when the answer names another revision or epoch, or its
 *     resync interval (default 30 s, as the real agent) has passed since its last sync
 *     or answer without news (which stands in for one), a SyncRequest; when
 *     that moved its revision or epoch, a Report of the applied revision and its epoch;
 *     then the next long poll. A snapshot that comes in pages (SyncReply.more) is
 *     staged page by page, each asked for with page_base and the last key received,
 *     and replaces the peer set, with the last page's changes over it, once the last
 *     page is in; deltas count only within the agent's epoch and from its revision.
 *     Agents start spread evenly over --ramp ms (default 2000): each opens its socket
 *     and dials only when its turn comes, so thousands of connections do not all arrive
 *     at once. An Error answer, a timeout, an unreadable answer or one that cannot be
 *     applied costs a jittered exponential backoff (250 ms to 30 s), as in the agent;
 *     the last also asks for a snapshot. URL may be ipc:// or tcp://; on either, each
 *     agent's socket makes one connection (one nng pipe) of its own.
 *
 *     Every peer and change an agent receives is tallied. Once every agent has applied
 *     its first snapshot and had its report answered, "ready N" goes to stdout. A line
 *     "stop" on stdin, the end of stdin or --duration seconds (default 600, counted
 *     from when the last agent started) stops it;
 *     it then writes --out (default stdout) and a "done ..." summary line to stdout:
 *
 *       agent IDX SERVER REVISION snapshots=N pages=N snapshot_peers=N changes=N
 *             errors=N timeouts=N bad_answers=N foreign=N peers=N
 *       peer IDX KEY_B64                   the agent's final peer set
 *       snapshot IDX REVISION N_PEERS T_RECV_US
 *       change IDX REVISION OP KEY_B64 T_RECV_US T_ACK_US
 *
 *     A snapshot line is a whole snapshot (all its pages; pages counts them), N_PEERS
 *     the peers its pages held, REVISION the one its last page brought the agent to;
 *     the changes of a last page are change lines too. T_RECV_US is when the SyncReply
 *     carrying it arrived (a snapshot's last page), T_ACK_US when the Report of that
 *     revision was answered (0 if never), both in microseconds since the Unix epoch
 *     (CLOCK_REALTIME, comparable with the database's timestamps on the same machine).
 *     foreign counts SyncReplies naming another server than the agent's own.
 *
 * Exit status: 0 when it ran to the stop, 1 when not every agent became ready, 2 for a
 * usage or setup error.
 */

#define BACKOFF_MIN_MS  250
#define BACKOFF_MAX_MS  30000
#define POLL_TIMEOUT_MS (10 * 60 * 1000) /* the coordinator answers well before */
#define ANSWER_SKEW_MS  60000

enum op {
	OP_START,
	OP_POLL,
	OP_SYNC,
	OP_REPORT,
	OP_BACKOFF,
};

enum phase {
	PHASE_SLEEP,
	PHASE_SEND,
	PHASE_RECV,
};

struct change_rec {
	uint64_t revision;
	uint64_t t_recv_us, t_ack_us;
	uint8_t key[WGF_KEY_LEN];
	bool remove;
};

struct snap_rec {
	uint64_t revision;
	size_t n_peers;
	uint64_t t_recv_us;
};

struct sim;

/* One simulated agent. Only its own aio callback touches it while the simulation runs. */
struct agent {
	struct sim *sim;
	unsigned idx;
	char server[WGF_SERVER_NAME_MAX + 1];
	uint8_t pk[WGF_SIGN_PK_LEN], sk[WGF_SIGN_SK_LEN];
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;
	enum op op;
	enum phase phase;
	uint8_t nonce[WGF_NONCE_LEN];
	uint64_t revision;            /* applied */
	uint8_t epoch[WGF_EPOCH_LEN]; /* the applied revision's; zeros: none yet */
	uint64_t last_sync_ms;        /* CLOCK_MONOTONIC */
	unsigned failures;
	bool ready, want_snapshot;
	uint8_t (*peers)[WGF_KEY_LEN]; /* sorted */
	size_t n_peers, cap_peers;
	/* A snapshot taken in pages: the keys of the pages so far, in increasing order. */
	uint8_t (*stage)[WGF_KEY_LEN];
	size_t n_stage, cap_stage;
	uint64_t page_base; /* > 0: stage holds pages of the snapshot read at it */
	uint8_t stage_epoch[WGF_EPOCH_LEN];
	struct change_rec *changes;
	size_t n_changes, cap_changes, n_unacked;
	struct snap_rec *snaps;
	size_t n_snaps, cap_snaps;
	size_t snapshot_peers, n_pages;
	unsigned errors, timeouts, bad_answers, foreign;
};

struct sim {
	const char *url, *seed, *prefix;
	uint8_t coord[WGF_SIGN_PK_LEN];
	unsigned n_agents;
	unsigned ramp_ms, resync_ms, request_timeout_ms, duration_s;
	struct agent *agents;
	atomic_bool stopping;
	atomic_uint n_ready;
	atomic_ulong n_polls, n_syncs, n_reports;
};

static void die(const char *what)
{
	fprintf(stderr, "fleetsim: %s\n", what);
	exit(2);
}

static uint64_t clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 8;
	void *q;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	q = reallocarray(p, n, size);
	if (!q)
		die("out of memory");
	*cap = n;
	return q;
}

/* Agent i's key: an Ed25519 key pair from the seed hash(seed, i). */
static void agent_key(const char *seed, unsigned idx, uint8_t pk[static WGF_SIGN_PK_LEN],
                      uint8_t sk[static WGF_SIGN_SK_LEN])
{
	uint8_t s[crypto_sign_SEEDBYTES], le[4] = {(uint8_t)idx, (uint8_t)(idx >> 8),
	                                           (uint8_t)(idx >> 16), (uint8_t)(idx >> 24)};
	crypto_generichash_state st;

	crypto_generichash_init(&st, (const uint8_t *)"fleetsim", 8, sizeof(s));
	crypto_generichash_update(&st, (const uint8_t *)seed, strlen(seed));
	crypto_generichash_update(&st, le, sizeof(le));
	crypto_generichash_final(&st, s, sizeof(s));
	crypto_sign_seed_keypair(pk, sk, s);
	sodium_memzero(s, sizeof(s));
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, WGF_KEY_LEN);
}

/* ---- the peer set ---- */

static void peer_upsert(struct agent *a, const uint8_t key[static WGF_KEY_LEN])
{
	size_t lo = 0, hi = a->n_peers;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(a->peers[mid], key, WGF_KEY_LEN);

		if (c == 0)
			return;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	a->peers = grow(a->peers, &a->cap_peers, a->n_peers + 1, WGF_KEY_LEN);
	memmove(a->peers[lo + 1], a->peers[lo], (a->n_peers - lo) * WGF_KEY_LEN);
	memcpy(a->peers[lo], key, WGF_KEY_LEN);
	a->n_peers++;
}

static void peer_remove(struct agent *a, const uint8_t key[static WGF_KEY_LEN])
{
	uint8_t(*at)[WGF_KEY_LEN] = bsearch(key, a->peers, a->n_peers, WGF_KEY_LEN, cmp_key);

	if (!at)
		return;
	memmove(at, at + 1, (size_t)(a->peers + a->n_peers - at - 1) * WGF_KEY_LEN);
	a->n_peers--;
}

/* ---- requests ---- */

/* Encodes b, seals it and sends it; the answer arrives through agent_cb. */
static void send_body(struct agent *a, enum op op, const struct wgf_body *b, nng_duration timeout)
{
	uint8_t *body = NULL, *buf = NULL;
	size_t len = 0, buf_len = 0;
	struct wgf_err err = {0};
	nng_msg *msg = NULL;

	if (wgf_body_encode(b, &body, &len, &err) < 0)
		die(err.msg[0] ? err.msg : "cannot encode a request");
	if (wgf_wire_seal(a->sk, a->sim->coord, NULL, clock_us(CLOCK_REALTIME) / 1000, body, len,
	                  a->nonce, &buf, &buf_len) < 0 ||
	    nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, buf, buf_len) != 0)
		die("cannot build a request");
	free(body);
	free(buf);
	a->op = op;
	a->phase = PHASE_SEND;
	nng_aio_set_msg(a->aio, msg);
	nng_aio_set_timeout(a->aio, timeout);
	nng_ctx_send(a->ctx, a->aio);
}

static void start_poll(struct agent *a)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_HINT};

	snprintf(b.hint.server, sizeof(b.hint.server), "%s", a->server);
	b.hint.revision = a->revision;
	memcpy(b.hint.epoch, a->epoch, WGF_EPOCH_LEN);
	atomic_fetch_add(&a->sim->n_polls, 1);
	send_body(a, OP_POLL, &b, POLL_TIMEOUT_MS);
}

/* A SyncRequest: for the changes since the agent's revision, or the next snapshot page. */
static void start_sync(struct agent *a)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_SYNC_REQUEST};
	struct wgf_sync_request *sr = &b.sync_request;

	snprintf(sr->server, sizeof(sr->server), "%s", a->server);
	sr->since_revision = a->revision;
	memcpy(sr->epoch, a->epoch, WGF_EPOCH_LEN);
	sr->want_snapshot = a->want_snapshot;
	if (a->page_base > 0 && a->n_stage > 0) {
		memcpy(sr->epoch, a->stage_epoch, WGF_EPOCH_LEN);
		sr->page_base = a->page_base;
		memcpy(sr->page_after, a->stage[a->n_stage - 1], WGF_KEY_LEN);
	}
	a->last_sync_ms = clock_us(CLOCK_MONOTONIC) / 1000;
	atomic_fetch_add(&a->sim->n_syncs, 1);
	send_body(a, OP_SYNC, &b, (nng_duration)a->sim->request_timeout_ms);
}

static void start_report(struct agent *a)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_REPORT};

	snprintf(b.report.server, sizeof(b.report.server), "%s", a->server);
	memcpy(b.report.epoch, a->epoch, WGF_EPOCH_LEN);
	b.report.applied_revision = a->revision;
	atomic_fetch_add(&a->sim->n_reports, 1);
	send_body(a, OP_REPORT, &b, (nng_duration)a->sim->request_timeout_ms);
}

static void backoff(struct agent *a)
{
	unsigned ms = BACKOFF_MIN_MS << (a->failures < 7 ? a->failures : 7);

	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	a->failures++;
	a->op = OP_BACKOFF;
	a->phase = PHASE_SLEEP;
	nng_sleep_aio((nng_duration)(ms / 2 + randombytes_uniform(ms / 2 + 1)), a->aio);
}

/* ---- answers ---- */

/* wgf_wire_accept()'s view: the one sender an agent knows is the coordinator. */
static const uint8_t *find_coordinator(void *ctx, const struct wgf_wire_msg *m, int kind,
                                       size_t *ret_body_max)
{
	const struct agent *a = ctx;

	(void)kind;
	*ret_body_max = WGF_WIRE_MSG_MAX;
	return sodium_memcmp(m->sender, a->sim->coord, WGF_SIGN_PK_LEN) == 0 ? a->sim->coord : NULL;
}

/* Opens an answer: signed by the coordinator, to us, fresh, bound to our request. */
static int open_answer(struct agent *a, nng_msg *msg, struct wgf_body *ret)
{
	const struct wgf_wire_receiver rx = {.me = a->pk,
	                                     .max_skew_ms = ANSWER_SKEW_MS,
	                                     .find_sender = find_coordinator,
	                                     .reply_to = a->nonce,
	                                     .ctx = a};
	enum wgf_wire_refusal why;
	struct wgf_wire_msg *m = NULL;
	int r = wgf_wire_accept(&rx, nng_msg_body(msg), nng_msg_len(msg),
	                        clock_us(CLOCK_REALTIME) / 1000, &m, ret, &why, NULL);

	wgf_wire_msg_free(m);
	return r;
}

static void drop_stage(struct agent *a)
{
	a->n_stage = 0;
	a->page_base = 0;
}

/* Appends a snapshot page to the stage; a first page (or a new page_base) starts over. */
static int stage_page(struct agent *a, const struct wgf_sync_reply *r)
{
	if (a->page_base == 0 || r->page_base != a->page_base ||
	    memcmp(r->epoch, a->stage_epoch, WGF_EPOCH_LEN) != 0) {
		a->n_stage = 0;
		a->page_base = r->page_base;
		memcpy(a->stage_epoch, r->epoch, WGF_EPOCH_LEN);
	}
	/* The codec checked the order within the page; this checks it across pages. */
	if (r->n_peers > 0 && a->n_stage > 0 &&
	    memcmp(r->peers[0].public_key, a->stage[a->n_stage - 1], WGF_KEY_LEN) <= 0)
		return -EBADMSG;
	a->stage = grow(a->stage, &a->cap_stage, a->n_stage + r->n_peers, WGF_KEY_LEN);
	for (size_t i = 0; i < r->n_peers; i++)
		memcpy(a->stage[a->n_stage++], r->peers[i].public_key, WGF_KEY_LEN);
	a->snapshot_peers += r->n_peers;
	a->n_pages++;
	return 0;
}

/* The last page is in: the staged keys become the peer set. */
static void take_stage(struct agent *a, uint64_t revision, uint64_t now)
{
	free(a->peers);
	a->peers = a->stage;
	a->n_peers = a->n_stage;
	a->cap_peers = a->cap_stage;
	a->stage = NULL;
	a->cap_stage = 0;
	a->snaps = grow(a->snaps, &a->cap_snaps, a->n_snaps + 1, sizeof(*a->snaps));
	a->snaps[a->n_snaps++] = (struct snap_rec){revision, a->n_stage, now};
	drop_stage(a);
}

static void take_change(struct agent *a, const struct wgf_change *c, uint64_t now)
{
	struct change_rec *rec;

	if (c->op == WGF_CHANGE_REMOVE)
		peer_remove(a, c->peer.public_key);
	else
		peer_upsert(a, c->peer.public_key);
	a->changes = grow(a->changes, &a->cap_changes, a->n_changes + 1, sizeof(*a->changes));
	rec = &a->changes[a->n_changes++];
	*rec = (struct change_rec){
	        .revision = c->revision, .t_recv_us = now, .remove = c->op == WGF_CHANGE_REMOVE};
	memcpy(rec->key, c->peer.public_key, WGF_KEY_LEN);
	a->n_unacked++;
}

/*
 * Takes a SyncReply as agent/session.c does, and tallies it: 1 when the agent moved
 * to its revision, 0 when it staged a page and wants the next, a negative errno when
 * the reply cannot be used (another server's, pages out of order, deltas that do not
 * start from the agent's revision in its epoch).
 */
static int take_sync_reply(struct agent *a, const struct wgf_sync_reply *r)
{
	uint64_t now = clock_us(CLOCK_REALTIME);
	int err;

	if (strcmp(r->server, a->server) != 0) {
		a->foreign++;
		return -EXDEV;
	}
	if (r->snapshot) {
		err = stage_page(a, r);
		if (err < 0 || r->more)
			return err;
		take_stage(a, r->revision, now);
	} else if (memcmp(r->epoch, a->epoch, WGF_EPOCH_LEN) != 0 ||
	           (r->n_changes > 0 && r->changes[0].revision != a->revision + 1) ||
	           (r->n_changes == 0 && r->revision != a->revision)) {
		return -ESTALE;
	}
	for (size_t i = 0; i < r->n_changes; i++)
		take_change(a, &r->changes[i], now);
	a->revision = r->revision;
	memcpy(a->epoch, r->epoch, WGF_EPOCH_LEN);
	return 1;
}

static void next_after_hint(struct agent *a, const struct wgf_hint *h)
{
	uint64_t now_ms = clock_us(CLOCK_MONOTONIC) / 1000;

	if (h->revision != a->revision || memcmp(h->epoch, a->epoch, WGF_EPOCH_LEN) != 0 ||
	    now_ms - a->last_sync_ms >= a->sim->resync_ms) {
		start_sync(a);
		return;
	}
	/* An answer without news stands in for a resync, as in the agent. */
	a->last_sync_ms = now_ms;
	start_poll(a);
}

static void handle_sync_reply(struct agent *a, const struct wgf_sync_reply *r)
{
	uint64_t before = a->revision;
	uint8_t epoch[WGF_EPOCH_LEN];
	int took;

	memcpy(epoch, a->epoch, WGF_EPOCH_LEN);
	took = take_sync_reply(a, r);
	if (took < 0) {
		a->bad_answers++;
		a->want_snapshot = true;
		drop_stage(a);
		backoff(a);
		return;
	}
	a->failures = 0;
	if (took == 0) {
		start_sync(a);
		return;
	}
	a->want_snapshot = false;
	if (a->revision != before || memcmp(a->epoch, epoch, WGF_EPOCH_LEN) != 0 || !a->ready)
		start_report(a);
	else
		start_poll(a);
}

static void handle_answer(struct agent *a, const struct wgf_body *b)
{
	uint64_t now;

	if (b->kind == WGF_WIRE_KIND_ERROR) {
		a->errors++;
		backoff(a);
		return;
	}
	if (a->op == OP_SYNC && b->kind == WGF_WIRE_KIND_SYNC_REPLY) {
		handle_sync_reply(a, &b->sync_reply);
		return;
	}
	if ((a->op == OP_POLL || a->op == OP_REPORT) && b->kind == WGF_WIRE_KIND_HINT) {
		a->failures = 0;
		if (a->op == OP_REPORT) {
			now = clock_us(CLOCK_REALTIME);
			for (size_t i = a->n_changes - a->n_unacked; i < a->n_changes; i++)
				a->changes[i].t_ack_us = now;
			a->n_unacked = 0;
			if (!a->ready) {
				a->ready = true;
				atomic_fetch_add(&a->sim->n_ready, 1);
			}
		}
		next_after_hint(a, &b->hint);
		return;
	}
	a->bad_answers++;
	backoff(a);
}

/* nng thread: the agent's one operation finished; start its next. */
static void agent_cb(void *arg)
{
	struct agent *a = arg;
	int rv = nng_aio_result(a->aio);
	struct wgf_body b = {0};
	nng_msg *msg;
	int r;

	if (atomic_load(&a->sim->stopping)) {
		if (rv != 0 && a->phase == PHASE_SEND)
			nng_msg_free(nng_aio_get_msg(a->aio));
		return;
	}
	switch (a->phase) {
	case PHASE_SLEEP:
		/* The first cycle starts with a sync, as the agent's does. */
		start_sync(a);
		return;
	case PHASE_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(a->aio));
			a->timeouts += rv == NNG_ETIMEDOUT;
			backoff(a);
			return;
		}
		a->phase = PHASE_RECV;
		nng_ctx_recv(a->ctx, a->aio);
		return;
	case PHASE_RECV:
		break;
	}
	if (rv != 0) {
		if (a->op == OP_POLL && rv == NNG_ETIMEDOUT) {
			start_poll(a);
			return;
		}
		a->timeouts += rv == NNG_ETIMEDOUT;
		a->errors += rv != NNG_ETIMEDOUT;
		backoff(a);
		return;
	}
	msg = nng_aio_get_msg(a->aio);
	r = open_answer(a, msg, &b);
	nng_msg_free(msg);
	if (r < 0) {
		a->bad_answers++;
		backoff(a);
		return;
	}
	handle_answer(a, &b);
	wgf_body_fini(&b);
}

/* ---- setup, waiting, results ---- */

static void agent_open(struct sim *sim, struct agent *a)
{
	int rv;

	a->sim = sim;
	snprintf(a->server, sizeof(a->server), "%s%05u", sim->prefix, a->idx);
	agent_key(sim->seed, a->idx, a->pk, a->sk);
	rv = nng_req0_open(&a->sock);
	if (rv == 0)
		rv = nng_socket_set_size(a->sock, NNG_OPT_RECVMAXSZ, WGF_WIRE_MSG_MAX);
	if (rv == 0)
		rv = nng_socket_set_ms(a->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (rv == 0)
		rv = nng_socket_set_ms(a->sock, NNG_OPT_RECONNMINT, 100);
	if (rv == 0)
		rv = nng_socket_set_ms(a->sock, NNG_OPT_RECONNMAXT, 5000);
	if (rv == 0)
		rv = nng_dial(a->sock, sim->url, NULL, NNG_FLAG_NONBLOCK);
	if (rv == 0)
		rv = nng_ctx_open(&a->ctx, a->sock);
	if (rv == 0)
		rv = nng_aio_alloc(&a->aio, agent_cb, a);
	if (rv != 0) {
		fprintf(stderr, "fleetsim: agent %u: %s\n", a->idx, nng_strerror(rv));
		exit(2);
	}
}

/* Waits for "stop", the end of stdin or the deadline; prints "ready N" once. */
static void wait_for_stop(struct sim *sim)
{
	uint64_t deadline = clock_us(CLOCK_MONOTONIC) + (uint64_t)sim->duration_s * 1000000;
	bool said_ready = false, stdin_open = true;
	char line[64];

	while (clock_us(CLOCK_MONOTONIC) < deadline) {
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};

		if (!said_ready && atomic_load(&sim->n_ready) == sim->n_agents) {
			printf("ready %u\n", sim->n_agents);
			fflush(stdout);
			said_ready = true;
		}
		if (!stdin_open) {
			usleep(100000);
			continue;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (!fgets(line, sizeof(line), stdin))
			return;
		if (strncmp(line, "stop", 4) == 0)
			return;
	}
	fprintf(stderr, "fleetsim: --duration reached, stopping\n");
}

static void write_results(struct sim *sim, FILE *f)
{
	char key[WGF_KEY_B64_LEN];

	for (unsigned i = 0; i < sim->n_agents; i++) {
		const struct agent *a = &sim->agents[i];

		fprintf(f,
		        "agent %u %s %" PRIu64 " snapshots=%zu pages=%zu snapshot_peers=%zu "
		        "changes=%zu errors=%u timeouts=%u bad_answers=%u foreign=%u peers=%zu\n",
		        a->idx, a->server, a->revision, a->n_snaps, a->n_pages, a->snapshot_peers,
		        a->n_changes, a->errors, a->timeouts, a->bad_answers, a->foreign,
		        a->n_peers);
		for (size_t j = 0; j < a->n_peers; j++) {
			wgf_key_to_base64(key, a->peers[j]);
			fprintf(f, "peer %u %s\n", a->idx, key);
		}
		for (size_t j = 0; j < a->n_snaps; j++)
			fprintf(f, "snapshot %u %" PRIu64 " %zu %" PRIu64 "\n", a->idx,
			        a->snaps[j].revision, a->snaps[j].n_peers, a->snaps[j].t_recv_us);
		for (size_t j = 0; j < a->n_changes; j++) {
			const struct change_rec *c = &a->changes[j];

			wgf_key_to_base64(key, c->key);
			fprintf(f, "change %u %" PRIu64 " %s %s %" PRIu64 " %" PRIu64 "\n", a->idx,
			        c->revision, c->remove ? "remove" : "upsert", key, c->t_recv_us,
			        c->t_ack_us);
		}
	}
}

static void raise_fd_limit(unsigned n_agents)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n_agents + 64)
		fprintf(stderr, "fleetsim: warning: only %llu file descriptors for %u agents\n",
		        (unsigned long long)rl.rlim_cur, n_agents);
}

static int run(struct sim *sim, const char *out)
{
	unsigned long errors = 0, timeouts = 0, bad = 0, foreign = 0, changes = 0, snaps = 0;
	unsigned long pages = 0;
	unsigned ready;
	uint64_t t0;
	FILE *f = stdout;

	raise_fd_limit(sim->n_agents);
	sim->agents = calloc(sim->n_agents, sizeof(*sim->agents));
	if (!sim->agents)
		die("out of memory");
	t0 = clock_us(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < sim->n_agents; i++) {
		struct agent *a = &sim->agents[i];
		uint64_t at = t0 + (uint64_t)sim->ramp_ms * 1000 * i / sim->n_agents,
		         now = clock_us(CLOCK_MONOTONIC);

		if (at > now)
			usleep((useconds_t)(at - now));
		a->idx = i;
		agent_open(sim, a);
		a->op = OP_START;
		a->phase = PHASE_SLEEP;
		nng_sleep_aio(0, a->aio);
	}
	wait_for_stop(sim);
	atomic_store(&sim->stopping, true);
	/* Each stop waits for the agent's callback; none starts another operation now. */
	for (unsigned i = 0; i < sim->n_agents; i++)
		nng_aio_stop(sim->agents[i].aio);
	for (unsigned i = 0; i < sim->n_agents; i++) {
		nng_close(sim->agents[i].sock);
		nng_aio_free(sim->agents[i].aio);
	}
	if (out && !(f = fopen(out, "w")))
		die("cannot write --out");
	write_results(sim, f);
	if (f != stdout)
		fclose(f);
	for (unsigned i = 0; i < sim->n_agents; i++) {
		struct agent *a = &sim->agents[i];

		errors += a->errors;
		timeouts += a->timeouts;
		bad += a->bad_answers;
		foreign += a->foreign;
		changes += a->n_changes;
		snaps += a->n_snaps;
		pages += a->n_pages;
		sodium_memzero(a->sk, sizeof(a->sk));
		free(a->peers);
		free(a->stage);
		free(a->changes);
		free(a->snaps);
	}
	ready = atomic_load(&sim->n_ready);
	printf("done agents=%u ready=%u polls=%lu syncs=%lu reports=%lu snapshots=%lu pages=%lu "
	       "changes=%lu errors=%lu timeouts=%lu bad_answers=%lu foreign=%lu\n",
	       sim->n_agents, ready, atomic_load(&sim->n_polls), atomic_load(&sim->n_syncs),
	       atomic_load(&sim->n_reports), snaps, pages, changes, errors, timeouts, bad, foreign);
	fflush(stdout);
	free(sim->agents);
	return ready == sim->n_agents ? 0 : 1;
}

static void print_keys(const struct sim *sim)
{
	uint8_t pk[WGF_SIGN_PK_LEN], sk[WGF_SIGN_SK_LEN];
	char b64[WGF_KEY_B64_LEN];

	for (unsigned i = 0; i < sim->n_agents; i++) {
		agent_key(sim->seed, i, pk, sk);
		sodium_memzero(sk, sizeof(sk));
		wgf_key_to_base64(b64, pk);
		printf("%u %s%05u %s\n", i, sim->prefix, i, b64);
	}
}

static unsigned uint_arg(const char *s, unsigned min, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > max)
		die("a numeric option is out of range");
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"url", required_argument, NULL, 'u'},
	        {"coordinator", required_argument, NULL, 'c'},
	        {"agents", required_argument, NULL, 'n'},
	        {"seed", required_argument, NULL, 's'},
	        {"prefix", required_argument, NULL, 'p'},
	        {"ramp", required_argument, NULL, 'r'},
	        {"resync", required_argument, NULL, 'R'},
	        {"request-timeout", required_argument, NULL, 't'},
	        {"duration", required_argument, NULL, 'd'},
	        {"out", required_argument, NULL, 'o'},
	        {NULL, 0, NULL, 0},
	};
	struct sim sim = {
	        .seed = "wgfleet",
	        .prefix = "sim",
	        .n_agents = 1000,
	        .ramp_ms = 2000,
	        .resync_ms = 30000,
	        .request_timeout_ms = 10000,
	        .duration_s = 600,
	};
	const char *out = NULL, *cmd;
	bool has_coord = false;
	size_t len = 0;
	int c;

	if (wgf_key_init() < 0)
		die("libsodium");
	if (argc < 2)
		die("usage: fleetsim keys|run [options]; see the comment at the top of fleetsim.c");
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			sim.url = optarg;
			break;
		case 'c':
			if (sodium_base642bin(sim.coord, sizeof(sim.coord), optarg, strlen(optarg),
			                      NULL, &len, NULL,
			                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
			    len != sizeof(sim.coord))
				die("--coordinator: not a 32-byte key in base64");
			has_coord = true;
			break;
		case 'n':
			sim.n_agents = uint_arg(optarg, 1, 100000);
			break;
		case 's':
			sim.seed = optarg;
			break;
		case 'p':
			if (strlen(optarg) > 40)
				die("--prefix: at most 40 characters");
			sim.prefix = optarg;
			break;
		case 'r':
			sim.ramp_ms = uint_arg(optarg, 0, 3600000);
			break;
		case 'R':
			sim.resync_ms = uint_arg(optarg, 100, 86400000);
			break;
		case 't':
			sim.request_timeout_ms = uint_arg(optarg, 100, 3600000);
			break;
		case 'd':
			sim.duration_s = uint_arg(optarg, 1, 86400);
			break;
		case 'o':
			out = optarg;
			break;
		default:
			die("unknown option");
		}
	}
	if (optind != argc)
		die("unexpected arguments");
	if (strcmp(cmd, "keys") == 0) {
		print_keys(&sim);
		return 0;
	}
	if (strcmp(cmd, "run") != 0)
		die("the command is keys or run");
	if (!sim.url || !has_coord)
		die("run needs --url and --coordinator");
	return run(&sim, out);
}
