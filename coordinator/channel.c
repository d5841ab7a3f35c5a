/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* channel: nng contexts handed to the loop, request checks, long polls and replies. */
#define LOG_MODULE "channel"

#include "channel.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <sodium.h>

#include "body.h"
#include "channel_db.h"
#include "clock.h"
#include "log.h"
#include "macro.h"
#include "nonces.h"
#include "pipes.h"
#include "prom.h"
#include "registry.h"
#include "secret.h"

#define MIN_RECEIVERS    8
#define RECENT_HINTS     64 /* notifications remembered for long polls still in the database */
#define TICK_MS          1000
#define STATE_REFRESH_MS 5000 /* a lost notification costs at most this much latency */
#define SEEN_PER_CALL    4096 /* servers marked seen in one wgf_channel_seen() call */

/*
 * Answers to messages not yet authenticated (unknown senders, bad signatures, stale or
 * replayed envelopes) cost a signature each and could be aimed at a third party: a
 * token bucket bounds them for the whole channel. Dropped ones get no answer at all.
 */
#define UNVERIFIED_ANSWERS_PER_S 10
#define UNVERIFIED_ANSWERS_BURST 20

/*
 * Body sizes per kind, checked before anything is unpacked. A Hint or SyncRequest is a
 * server name and a few numbers; a Report names at most the server's peers, which are
 * addresses of its pool, each with facts, perhaps an error and a drift entry, and may
 * list up to WGF_REPORT_UNKNOWN_MAX unknown peers (adopt mode), which are not.
 */
#define SMALL_BODY_MAX     1024
#define REPORT_BODY_BASE   16384
#define REPORT_PER_ADDRESS 512
#define REPORT_UNKNOWN_MAX ((uint64_t)WGF_REPORT_UNKNOWN_MAX * WGF_UNKNOWN_PEER_WIRE_MAX)

/* Database calls one server may have in flight (query()). */
#define DB_CALLS_PER_SERVER 2

/* Nonces remembered in memory (about 48 bytes each); the database keeps all of them. */
#define NONCE_SLOTS (1U << 16)

/*
 * Why a message was refused: counted, and logged as counts once per interval. The
 * first WGF_WIRE_REFUSAL__COUNT are wgf_wire_accept()'s (proto/wire.h), by number.
 */
enum refusal {
	REFUSE_WRONG_SERVER = WGF_WIRE_REFUSAL__COUNT,
	REFUSE_BAD_REQUEST,
	REFUSE_OVERLOADED,
	REFUSE_DATABASE,
	REFUSE_CONNECTIONS, /* a pipe past the caps, closed as it came */
	REFUSE_IDLE,        /* a pipe closed after idle_timeout (perhaps mid-message) */
	REFUSE_PIPE_RATE,   /* dropped unread on nng's thread: its pipe sent too fast */
	REFUSE__COUNT,
};

static const char *const own_refusal_names[REFUSE__COUNT - WGF_WIRE_REFUSAL__COUNT] = {
        [REFUSE_WRONG_SERVER - WGF_WIRE_REFUSAL__COUNT] = "wrong_server",
        [REFUSE_BAD_REQUEST - WGF_WIRE_REFUSAL__COUNT] = "bad_request",
        [REFUSE_OVERLOADED - WGF_WIRE_REFUSAL__COUNT] = "overloaded",
        [REFUSE_DATABASE - WGF_WIRE_REFUSAL__COUNT] = "database",
        [REFUSE_CONNECTIONS - WGF_WIRE_REFUSAL__COUNT] = "too_many_connections",
        [REFUSE_IDLE - WGF_WIRE_REFUSAL__COUNT] = "idle_connection",
        [REFUSE_PIPE_RATE - WGF_WIRE_REFUSAL__COUNT] = "connection_rate_limited",
};

static const char *refusal_name(int reason)
{
	return reason < WGF_WIRE_REFUSAL__COUNT
	               ? wgf_wire_refusal_name((enum wgf_wire_refusal)reason)
	               : own_refusal_names[reason - WGF_WIRE_REFUSAL__COUNT];
}

enum ctx_state {
	CTX_RECEIVING,
	CTX_WORKING, /* a database call is in flight */
	CTX_PARKED,  /* a long poll waits for a newer revision */
	CTX_SENDING,
};

struct chan_ctx {
	struct channel *ch;
	nng_ctx ctx;
	nng_aio *aio;
	enum ctx_state state;
	struct chan_ctx *next_ready;  /* the queue from nng's threads */
	struct chan_ctx *prev, *next; /* the parked list */
	struct wgf_wire_msg *req;     /* the request being answered */
	nng_pipe pipe;                /* the request came through it (it may be gone) */
	struct registry_entry *entry; /* parked: its server's entry, whose poll is us */
	struct registry_entry *from;  /* the sender's, found while handle_request() runs only */
	struct wgf_body body;         /* the request's, decoded */
	char server[WGF_SERVER_NAME_MAX + 1]; /* the server the key belongs to */
	int64_t server_id;                    /* parked: whose revision we wait for */
	uint64_t known_revision;              /* parked: the agent's revision */
	uint64_t server_revision;             /* parked: the server's, when the poll began */
	uint8_t epoch[WGF_EPOCH_LEN];         /* parked: the database's, when the poll began */
	uint64_t park_deadline;               /* parked: uv_now() value */
	uint64_t hint_seq; /* working on a long poll: ch->hint_seq when it was sent */
};

struct channel {
	uv_loop_t *loop;
	struct db *db;
	struct channel_options o;
	nng_socket sock;
	nng_listener listener;
	char url[128];
	uv_async_t async;
	uv_timer_t tick;
	pthread_mutex_t mu;
	struct chan_ctx *ready_head, *ready_tail; /* under mu */
	struct chan_ctx *parked;
	/*
	 * The last RECENT_HINTS notifications, entry seq % RECENT_HINTS for the seq-th
	 * (server_id -1: the listener reconnected, any server may have changed). A long
	 * poll whose database answer was read before a change committed, but reaches the
	 * loop after that change's notification, looks here before it parks.
	 */
	struct {
		int64_t server_id;
		uint64_t revision;
	} recent[RECENT_HINTS];
	uint64_t hint_seq;         /* notifications so far */
	struct registry *registry; /* NULL until first loaded: nothing is received before */
	bool registry_loading, registry_dirty;
	/*
	 * The database's epoch, and each entry's revision, read with the registry and every
	 * STATE_REFRESH_MS (wgf_channel_state()) and kept current by notifications: long
	 * polls and idle resyncs are answered from them without a database call.
	 */
	uint8_t epoch[WGF_EPOCH_LEN];
	bool epoch_known, state_loading;
	uint64_t state_at; /* uv_now() of the last refresh */
	bool seen_writing; /* wgf_channel_seen() in flight */
	struct nonces *nonces;
	struct pipes *pipes;
	struct {
		uint64_t count;
		uint64_t total; /* since start, for /metrics */
		nng_pipe pipe;  /* of the last one, whose address is in remote */
		char remote[PIPES_REMOTE_LEN];
	} refused[REFUSE__COUNT];
	uint64_t accepted[WGF_WIRE_KIND_ERROR + 1]; /* by body kind, for /metrics */
	uint64_t refusals_logged_at;                /* uv_now() */
	double answer_tokens;
	uint64_t answer_tokens_at; /* uv_now() */
	unsigned n_ctx, n_receiving, n_parked;
	unsigned open_handles; /* async and tick, once stopping */
	bool stopping, finished;
};

/*
 * nng thread: hand the finished operation to the loop, unless it is a message whose
 * pipe is past its bucket: that one is dropped here and the context receives again,
 * so a flood costs nng's own work and no more. A pipe's bucket is twice its agent's
 * (admit()), so an agent past its share is told so before its pipe is throttled.
 */
static void aio_done(void *arg)
{
	struct chan_ctx *c = arg;
	struct channel *ch = c->ch;

	if (c->state == CTX_RECEIVING && nng_aio_result(c->aio) == 0) {
		nng_msg *msg = nng_aio_get_msg(c->aio);

		if (!pipes_charge(ch->pipes, nng_msg_get_pipe(msg))) {
			nng_aio_set_msg(c->aio, NULL);
			nng_msg_free(msg);
			nng_ctx_recv(c->ctx, c->aio);
			return;
		}
	}
	pthread_mutex_lock(&ch->mu);
	c->next_ready = NULL;
	if (ch->ready_tail)
		ch->ready_tail->next_ready = c;
	else
		ch->ready_head = c;
	ch->ready_tail = c;
	pthread_mutex_unlock(&ch->mu);
	uv_async_send(&ch->async);
}

static void channel_closed(uv_handle_t *h)
{
	struct channel *ch = h->data;

	if (--ch->open_handles > 0)
		return;
	pthread_mutex_destroy(&ch->mu);
	registry_free(ch->registry);
	nonces_free(ch->nonces);
	pipes_free(ch->pipes);
	wgf_secret_unlock(ch->o.sk, sizeof(ch->o.sk));
	free(ch);
}

/* Once stopping and the last context is gone, close the handles; the last one frees. */
static void maybe_finish(struct channel *ch)
{
	if (ch->stopping && ch->n_ctx == 0 && !ch->registry_loading && !ch->state_loading &&
	    !ch->seen_writing && !ch->finished) {
		ch->finished = true;
		ch->open_handles = 2;
		uv_close((uv_handle_t *)&ch->async, channel_closed);
		uv_close((uv_handle_t *)&ch->tick, channel_closed);
	}
}

static void ctx_free(struct chan_ctx *c)
{
	struct channel *ch = c->ch;

	wgf_wire_msg_free(c->req);
	wgf_body_fini(&c->body);
	nng_ctx_close(c->ctx);
	nng_aio_free(c->aio);
	free(c);
	ch->n_ctx--;
	maybe_finish(ch);
}

static void ctx_receive(struct chan_ctx *c)
{
	wgf_wire_msg_free(c->req);
	c->req = NULL;
	wgf_body_fini(&c->body);
	if (nng_pipe_id(c->pipe) > 0) {
		pipes_done(c->ch->pipes, c->pipe);
		c->pipe = (nng_pipe)NNG_PIPE_INITIALIZER;
	}
	if (c->ch->stopping) {
		ctx_free(c);
		return;
	}
	c->state = CTX_RECEIVING;
	c->ch->n_receiving++;
	nng_ctx_recv(c->ctx, c->aio);
}

/* Keeps a few contexts receiving, within the bound. */
static void ensure_receivers(struct channel *ch)
{
	while (!ch->stopping && ch->registry && ch->epoch_known &&
	       ch->n_receiving < MIN_RECEIVERS && ch->n_ctx < ch->o.max_contexts) {
		struct chan_ctx *c = calloc(1, sizeof(*c));

		if (!c)
			return;
		c->ch = ch;
		if (nng_aio_alloc(&c->aio, aio_done, c) != 0) {
			free(c);
			return;
		}
		if (nng_ctx_open(&c->ctx, ch->sock) != 0) {
			nng_aio_free(c->aio);
			free(c);
			return;
		}
		ch->n_ctx++;
		ctx_receive(c);
	}
}

/* Seals body as the answer to c's request and sends it; c receives again afterwards. */
static void reply(struct chan_ctx *c, const uint8_t *body, size_t len)
{
	uint8_t *buf = NULL;
	size_t buf_len = 0;
	nng_msg *msg = NULL;
	int r;

	r = wgf_wire_seal(c->ch->o.sk, c->req->sender, c->req->nonce, wgf_clock_wall_ms(), body,
	                  len, NULL, &buf, &buf_len);
	if (r == 0 && nng_msg_alloc(&msg, 0) == 0 && nng_msg_append(msg, buf, buf_len) == 0) {
		free(buf);
		nng_aio_set_msg(c->aio, msg);
		c->state = CTX_SENDING;
		nng_ctx_send(c->ctx, c->aio);
		return;
	}
	log_errno(LOG_ERR, r < 0 ? r : -ENOMEM, "Cannot send an answer, dropping it");
	nng_msg_free(msg);
	free(buf);
	ctx_receive(c);
}

/* A token bucket: refilled at per_s up to burst (a zero *at means full); the tokens. */
static double bucket_refill(double *tokens, uint64_t *at, uint64_t now, double per_s, double burst)
{
	if (*at == 0)
		*tokens = burst;
	else if (now > *at)
		*tokens += (double)(now - *at) * per_s / 1000;
	if (*tokens > burst)
		*tokens = burst;
	*at = now;
	return *tokens;
}

static bool take_answer_token(struct channel *ch)
{
	if (bucket_refill(&ch->answer_tokens, &ch->answer_tokens_at, uv_now(ch->loop),
	                  UNVERIFIED_ANSWERS_PER_S, UNVERIFIED_ANSWERS_BURST) < 1)
		return false;
	ch->answer_tokens -= 1;
	return true;
}

/*
 * Counts a refusal of c's request and answers it with an Error code (nothing for
 * WGF_WIRE_ERROR_UNSPECIFIED): always when the sender is authenticated, within the
 * token bucket when it is not. Refusals are logged as counts by log_refusals(); one
 * line a message is a debug line, whose level is checked before anything is formatted.
 */
static void refuse(struct chan_ctx *c, int reason, enum wgf_wire_error_code code, const char *why,
                   bool authenticated)
{
	struct channel *ch = c->ch;
	uint8_t *body = NULL;
	size_t len = 0;

	ch->refused[reason].count++;
	ch->refused[reason].total++;
	if (nng_pipe_id(c->pipe) != nng_pipe_id(ch->refused[reason].pipe)) {
		ch->refused[reason].pipe = c->pipe;
		pipes_remote(c->pipe, ch->refused[reason].remote);
	}
	log_debug("Refused a message (%s) from %s: %s", refusal_name(reason),
	          ch->refused[reason].remote, why);

	if (code == WGF_WIRE_ERROR_UNSPECIFIED || !c->req ||
	    (!authenticated && !take_answer_token(ch)) ||
	    wgf_body_encode_error(code, why, &body, &len) < 0) {
		ctx_receive(c);
		return;
	}
	reply(c, body, len);
	free(body);
}

/* One line per reason refused since the last one, at most once per interval. */
static void log_refusals(struct channel *ch, bool force)
{
	uint64_t now = uv_now(ch->loop);
	char count[24], interval[24];

	if (!force && now - ch->refusals_logged_at < ch->o.log_interval_ms)
		return;
	snprintf(interval, sizeof(interval), "%" PRIu64 "ms", now - ch->refusals_logged_at);
	ch->refusals_logged_at = now;
	for (int i = 0; i < REFUSE__COUNT; i++) {
		if (ch->refused[i].count == 0)
			continue;
		snprintf(count, sizeof(count), "%" PRIu64, ch->refused[i].count);
		log_fields(LOG_WARNING, "Refused agent messages", {"reason", refusal_name(i)},
		           {"count", count}, {"last_remote", ch->refused[i].remote},
		           {"interval", interval});
		ch->refused[i].count = 0;
	}
}

/* Encodes b and sends it as the answer to c's request. */
static void reply_body(struct chan_ctx *c, const struct wgf_body *b)
{
	struct wgf_err err = {0};
	uint8_t *buf = NULL;
	size_t len = 0;

	if (wgf_body_encode(b, &buf, &len, &err) < 0) {
		log_errno(LOG_ERR, err.code ? err.code : -ENOMEM, "Cannot encode an answer: %s",
		          err.msg);
		refuse(c, REFUSE_DATABASE, WGF_WIRE_ERROR_INTERNAL, "could not build the answer",
		       true);
		return;
	}
	reply(c, buf, len);
	free(buf);
}

static void reply_hint(struct chan_ctx *c, uint64_t revision,
                       const uint8_t epoch[static WGF_EPOCH_LEN])
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_HINT, .hint.revision = revision};

	snprintf(b.hint.server, sizeof(b.hint.server), "%s", c->server);
	memcpy(b.hint.epoch, epoch, WGF_EPOCH_LEN);
	reply_body(c, &b);
}

/* ---- parked long polls ---- */

static void unpark(struct chan_ctx *c);

/*
 * Parks c's long poll. A server has at most one parked: a newer poll from the same key
 * answers the older one at once with the revision it read (the agent that sent both
 * has moved on, or restarted and left the old one behind), so one agent cannot hold
 * more than one context however many polls it sends.
 */
static void park(struct chan_ctx *c)
{
	struct channel *ch = c->ch;
	struct registry_entry *e = registry_find(ch->registry, c->req->sender);
	struct chan_ctx *old = e ? e->poll : NULL;

	if (old) {
		unpark(old);
		reply_hint(old, old->server_revision, old->epoch);
	}
	c->entry = e;
	if (e)
		e->poll = c;
	c->state = CTX_PARKED;
	/* Spread over the last quarter of the wait, so polls parked together (after a
	 * restart) do not all come back in one wave. */
	c->park_deadline = uv_now(ch->loop) + ch->o.wait_ms -
	                   randombytes_uniform((uint32_t)(ch->o.wait_ms / 4) + 1);
	c->prev = NULL;
	c->next = ch->parked;
	if (ch->parked)
		ch->parked->prev = c;
	ch->parked = c;
	ch->n_parked++;
	ensure_receivers(ch);
}

static void unpark(struct chan_ctx *c)
{
	struct channel *ch = c->ch;

	if (c->entry && c->entry->poll == c)
		c->entry->poll = NULL;
	c->entry = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		ch->parked = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ch->n_parked--;
}

/* ---- the agent registry ---- */

static void registry_reload(struct channel *ch);
static void state_refresh(struct channel *ch);

/* Moves the parked polls over to r's entries; a poll whose key is gone is answered. */
static void registry_swap(struct channel *ch, struct registry *r)
{
	struct chan_ctx *c, *next;
	size_t n = 0;
	struct registry_entry *old = registry_entries(ch->registry, &n);

	for (size_t i = 0; i < n; i++) {
		/* By server: its key may have changed (a next key promoted). */
		struct registry_entry *e = registry_find_server(r, old[i].server_id);

		if (e) {
			e->db_calls = old[i].db_calls;
			e->seen = old[i].seen;
			e->tokens = old[i].tokens;
			e->tokens_at = old[i].tokens_at;
		}
	}
	for (c = ch->parked; c; c = next) {
		struct registry_entry *e = registry_find(r, c->req->sender);

		next = c->next;
		if (!e || e->server_id != c->server_id) {
			unpark(c);
			reply_hint(c, c->server_revision, c->epoch);
			continue;
		}
		c->entry = e;
		e->poll = c;
	}
	registry_free(ch->registry);
	ch->registry = r;
}

static void on_registry_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct channel *ch = ctx;
	struct registry *r = NULL;
	char n[24];
	int rv = e ? e->code : 0;

	ch->registry_loading = false;
	if (ch->stopping) {
		maybe_finish(ch);
		return;
	}
	if (rv == 0)
		rv = registry_from_result(res, &r);
	if (rv < 0) {
		/* The tick retries; until then the registry already held stays in use. */
		log_errno(LOG_WARNING, rv, "Cannot load the agent registry, retrying in %u ms: %s",
		          TICK_MS, e ? e->message : "unexpected rows");
		ch->registry_dirty = true;
		return;
	}
	registry_swap(ch, r);
	snprintf(n, sizeof(n), "%zu", registry_size(r));
	log_fields(LOG_INFO, "Agent registry loaded", {"servers", n});
	state_refresh(ch);
	ensure_receivers(ch);
	if (ch->registry_dirty)
		registry_reload(ch);
}

/* One load at a time: a notification during a load loads again after it. */
static void registry_reload(struct channel *ch)
{
	if (ch->stopping)
		return;
	if (ch->registry_loading) {
		ch->registry_dirty = true;
		return;
	}
	ch->registry_dirty = false;
	if (db_query(ch->db, "SELECT * FROM wgf_channel_registry()", 0, NULL,
	             uv_now(ch->loop) + ch->o.db_deadline_ms, on_registry_result, ch) < 0) {
		ch->registry_dirty = true;
		return;
	}
	ch->registry_loading = true;
}

/* ---- the epoch and the revisions, in memory ---- */

/* Answers every parked poll with what it knows, so each agent asks again. */
static void answer_parked(struct channel *ch)
{
	struct chan_ctx *c, *next;

	for (c = ch->parked; c; c = next) {
		uint64_t rev = c->entry ? c->entry->revision : c->server_revision;

		next = c->next;
		unpark(c);
		reply_hint(c, rev, ch->epoch);
	}
}

static void set_epoch(struct channel *ch, const uint8_t epoch[static WGF_EPOCH_LEN])
{
	bool changed = ch->epoch_known && memcmp(ch->epoch, epoch, WGF_EPOCH_LEN) != 0;

	memcpy(ch->epoch, epoch, WGF_EPOCH_LEN);
	ch->epoch_known = true;
	if (changed) {
		log_notice("A new epoch: every agent takes a snapshot");
		answer_parked(ch);
	}
}

/* e's server is at rev: news for its parked poll when it is newer than the poll's. */
static void learn_revision(struct registry_entry *e, uint64_t rev)
{
	struct chan_ctx *c = e->poll;

	if (rev > e->revision)
		e->revision = rev;
	if (c && c->known_revision < e->revision) {
		unpark(c);
		reply_hint(c, e->revision, c->ch->epoch);
	}
}

/* Reads "{1,2,3}" into at most max values; the count, or -1 when it is not that. */
static long parse_bigint_array(const char *text, uint64_t *out, size_t max)
{
	const char *p = text;
	size_t n = 0;
	char *end;

	if (*p++ != '{')
		return -1;
	if (*p == '}')
		return p[1] == '\0' ? 0 : -1;
	for (;;) {
		if (n == max || *p < '0' || *p > '9')
			return -1;
		out[n++] = strtoull(p, &end, 10);
		if (*end == '}')
			return end[1] == '\0' ? (long)n : -1;
		if (*end != ',')
			return -1;
		p = end + 1;
	}
}

static void on_state_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct channel *ch = ctx;
	uint8_t epoch[WGF_EPOCH_LEN];
	size_t max = registry_size(ch->registry) + 64, len = 0;
	uint64_t *ids = calloc(max, sizeof(*ids)), *revs = calloc(max, sizeof(*revs));
	long n = -1, n_revs = -1;

	ch->state_loading = false;
	if (!e && !ch->stopping && ids && revs && PQntuples(res) == 1 && PQnfields(res) == 3 &&
	    strncmp(PQgetvalue(res, 0, 0), "\\x", 2) == 0 &&
	    sodium_hex2bin(epoch, sizeof(epoch), PQgetvalue(res, 0, 0) + 2,
	                   strlen(PQgetvalue(res, 0, 0) + 2), NULL, &len, NULL) == 0 &&
	    len == WGF_EPOCH_LEN) {
		n = parse_bigint_array(PQgetvalue(res, 0, 1), ids, max);
		n_revs = parse_bigint_array(PQgetvalue(res, 0, 2), revs, max);
	}
	if (n >= 0 && n == n_revs) {
		set_epoch(ch, epoch);
		for (long i = 0; i < n; i++) {
			struct registry_entry *entry =
			        registry_find_server(ch->registry, (int64_t)ids[i]);

			if (entry)
				learn_revision(entry, revs[i]);
		}
		ensure_receivers(ch);
	} else if (!ch->stopping) {
		/* The next tick tries again; until then what is known stays in use. */
		log_warning("Cannot read the epoch and revisions: %s",
		            e ? e->message : "unexpected rows");
		ch->state_at = 0;
	}
	free(ids);
	free(revs);
	maybe_finish(ch);
}

/* Reads the epoch and every server's revision (wgf_channel_state()), one read at a time. */
static void state_refresh(struct channel *ch)
{
	if (ch->stopping || ch->state_loading)
		return;
	ch->state_at = uv_now(ch->loop);
	if (db_query(ch->db, "SELECT * FROM wgf_channel_state()", 0, NULL,
	             uv_now(ch->loop) + ch->o.db_deadline_ms, on_state_result, ch) == 0)
		ch->state_loading = true;
}

static void on_seen_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct channel *ch = ctx;

	(void)res;
	ch->seen_writing = false;
	if (e && !ch->stopping)
		log_warning("Cannot mark servers seen: %s", e->message);
	maybe_finish(ch);
}

/* Tells the database which servers' agents were heard from (servers.last_seen_at). */
static void flush_seen(struct channel *ch)
{
	size_t n = 0, k = 0;
	struct registry_entry *entries = registry_entries(ch->registry, &n);
	char *buf, *p;

	if (ch->seen_writing || ch->stopping)
		return;
	buf = malloc(SEEN_PER_CALL * 21 + 3);
	if (!buf)
		return;
	p = buf;
	*p++ = '{';
	for (size_t i = 0; i < n && k < SEEN_PER_CALL; i++) {
		if (!entries[i].seen)
			continue;
		entries[i].seen = false;
		p += sprintf(p, "%s%" PRId64, k++ ? "," : "", entries[i].server_id);
	}
	*p++ = '}';
	*p = '\0';
	if (k > 0 &&
	    db_query(ch->db, "SELECT wgf_channel_seen($1::bigint[])", 1, (const char *const[]){buf},
	             uv_now(ch->loop) + ch->o.db_deadline_ms, on_seen_result, ch) == 0)
		ch->seen_writing = true;
	free(buf);
}

void channel_notify(void *ctx, const char *chan, const char *payload)
{
	struct channel *ch = ctx;
	long long id = -1;
	unsigned long long rev = 0;
	uint8_t epoch[WGF_EPOCH_LEN];
	struct registry_entry *e;
	size_t len = 0;

	if (!chan) {
		/* After a reconnect anything may have changed unnoticed (even the database
		 * itself, after a failover): read it all again. */
		registry_reload(ch);
		ch->recent[ch->hint_seq++ % RECENT_HINTS].server_id = -1;
		answer_parked(ch);
		return;
	}
	if (strcmp(chan, "wgf_servers") == 0) {
		registry_reload(ch);
		return;
	}
	if (strcmp(chan, "wgf_epoch") == 0) {
		if (sodium_hex2bin(epoch, sizeof(epoch), payload, strlen(payload), NULL, &len,
		                   NULL) == 0 &&
		    len == WGF_EPOCH_LEN)
			set_epoch(ch, epoch);
		return;
	}
	if (sscanf(payload, "%lld:%llu", &id, &rev) != 2)
		return;
	ch->recent[ch->hint_seq % RECENT_HINTS].server_id = id;
	ch->recent[ch->hint_seq % RECENT_HINTS].revision = rev;
	ch->hint_seq++;
	e = registry_find_server(ch->registry, id);
	if (e)
		learn_revision(e, rev);
}

#define CLOSE_PER_TICK 256

/* Adds n refusals counted off the loop (by the pipe table), the last from remote. */
static void count_taken(struct channel *ch, int reason, uint64_t n,
                        const char remote[static PIPES_REMOTE_LEN])
{
	if (n == 0)
		return;
	ch->refused[reason].count += n;
	ch->refused[reason].total += n;
	memcpy(ch->refused[reason].remote, remote, PIPES_REMOTE_LEN);
}

/* Closes pipes idle past idle_timeout; counts the pipes refused since the last tick. */
static void close_idle_pipes(struct channel *ch)
{
	nng_pipe idle[CLOSE_PER_TICK];
	char remote[PIPES_REMOTE_LEN];
	size_t n = pipes_expired(ch->pipes, idle, CLOSE_PER_TICK);

	count_taken(ch, REFUSE_CONNECTIONS, pipes_take_refused(ch->pipes, remote), remote);
	count_taken(ch, REFUSE_PIPE_RATE, pipes_take_throttled(ch->pipes, remote), remote);
	for (size_t i = 0; i < n; i++) {
		ch->refused[REFUSE_IDLE].count++;
		ch->refused[REFUSE_IDLE].total++;
		pipes_remote(idle[i], ch->refused[REFUSE_IDLE].remote);
		nng_pipe_close(idle[i]);
	}
}

static void on_tick(uv_timer_t *t)
{
	struct channel *ch = t->data;
	uint64_t now = uv_now(ch->loop);
	struct chan_ctx *c, *next;

	for (c = ch->parked; c; c = next) {
		next = c->next;
		if (c->park_deadline > now)
			continue;
		unpark(c);
		reply_hint(c, c->server_revision, c->epoch);
	}
	if (ch->registry_dirty)
		registry_reload(ch);
	if (now - ch->state_at >= STATE_REFRESH_MS)
		state_refresh(ch);
	flush_seen(ch);
	close_idle_pipes(ch);
	log_refusals(ch, false);
}

/* ---- database answers ---- */

/* Every database answer passes here first, once: the call is no longer in flight. */
static bool db_failed(struct chan_ctx *c, const struct db_error *e)
{
	struct registry_entry *entry = registry_find(c->ch->registry, c->req->sender);

	if (entry && entry->db_calls > 0)
		entry->db_calls--;
	if (!e)
		return false;
	if (c->ch->stopping) {
		ctx_free(c);
		return true;
	}
	/* The registry may lag the database by a notification: the database decides. */
	if (strcmp(e->sqlstate, "WG401") == 0) {
		refuse(c, WGF_WIRE_UNKNOWN_SENDER, WGF_WIRE_ERROR_UNKNOWN_SENDER,
		       "no server is registered with this key", true);
	} else if (strcmp(e->sqlstate, "WG409") == 0) {
		/* Pushed out of memory early, or seen by another replica: remember it here. */
		nonces_add(c->ch->nonces, c->server_id, c->req->nonce,
		           c->req->timestamp_ms + c->ch->o.max_skew_ms);
		refuse(c, WGF_WIRE_REPLAY, WGF_WIRE_ERROR_REPLAY, "this message was seen before",
		       true);
	} else if (e->code == -ETIMEDOUT || e->code == -EAGAIN) {
		refuse(c, REFUSE_OVERLOADED, WGF_WIRE_ERROR_INTERNAL,
		       "the coordinator is overloaded", true);
	} else {
		/* A statement that failed on its own (not a lost connection) is a bug. */
		if (e->sqlstate[0] && strncmp(e->sqlstate, "08", 2) != 0)
			log_fields(LOG_ERR, "An agent call failed in the database",
			           {"sqlstate", e->sqlstate}, {"error", e->message});
		refuse(c, REFUSE_DATABASE, WGF_WIRE_ERROR_INTERNAL,
		       "the coordinator could not reach its database", true);
	}
	return true;
}

/*
 * Checks an answer's header: the database's server for the key is the one in the
 * registry when the request came (a rename in between refuses the request).
 */
static bool header_ok(struct chan_ctx *c, int r, const struct chan_header *h,
                      const struct wgf_err *err)
{
	struct registry_entry *entry;
	char why[200];

	if (r < 0) {
		log_errno(LOG_ERR, r, "%s", err->msg);
		refuse(c, REFUSE_DATABASE, WGF_WIRE_ERROR_INTERNAL, "unexpected database answer",
		       true);
		return false;
	}
	if (strcmp(c->server, h->server) != 0 || c->server_id != h->server_id) {
		snprintf(why, sizeof(why), "this key belongs to server '%.64s', not '%.64s'",
		         h->server, c->server);
		refuse(c, REFUSE_WRONG_SERVER, WGF_WIRE_ERROR_MISADDRESSED, why, true);
		return false;
	}
	/* What the database says is at least as new as what memory holds. */
	entry = registry_find(c->ch->registry, c->req->sender);
	if (entry && entry->server_id == h->server_id &&
	    memcmp(h->epoch, c->ch->epoch, WGF_EPOCH_LEN) == 0 && h->revision > entry->revision)
		entry->revision = h->revision;
	return true;
}

/*
 * The newest revision of c's server notified since c's long poll was sent, when it is
 * newer than rev; rev otherwise. A listener reconnect, a new epoch, or more
 * notifications than are remembered, may hide one: then it answers at once with rev,
 * and the agent asks again.
 */
static uint64_t notified_since(const struct chan_ctx *c, uint64_t rev, bool *ret_unsure)
{
	const struct channel *ch = c->ch;
	uint64_t best = rev;

	*ret_unsure = ch->hint_seq - c->hint_seq > RECENT_HINTS;
	for (uint64_t i = c->hint_seq; i < ch->hint_seq && !*ret_unsure; i++) {
		int64_t id = ch->recent[i % RECENT_HINTS].server_id;

		if (id == -1)
			*ret_unsure = true;
		else if (id == c->server_id && ch->recent[i % RECENT_HINTS].revision > best)
			best = ch->recent[i % RECENT_HINTS].revision;
	}
	return best;
}

static void on_wait_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct chan_ctx *c = ctx;
	struct wgf_err err = {0};
	struct chan_header h;
	uint64_t rev;
	char revs[48];
	bool unsure;

	if (db_failed(c, e) || !header_ok(c, chan_read_header(res, &h, &err), &h, &err))
		return;
	/* A change that committed after the database answered, and was notified before
	 * this answer reached us, would otherwise wait for the poll's deadline. */
	if ((rev = notified_since(c, h.revision, &unsure)) != h.revision) {
		snprintf(revs, sizeof(revs), "%" PRIu64 "->%" PRIu64, h.revision, rev);
		log_fields(LOG_INFO,
		           "A long poll's answer was older than a change notified meanwhile",
		           {"server", c->server}, {"revision", revs});
	}
	/* An agent of another epoch, or ahead of the database, learns it at once too. */
	if (rev != c->known_revision || memcmp(h.epoch, c->body.hint.epoch, WGF_EPOCH_LEN) != 0 ||
	    unsure || c->ch->stopping) {
		reply_hint(c, rev, h.epoch);
		return;
	}
	c->server_revision = rev;
	memcpy(c->epoch, h.epoch, WGF_EPOCH_LEN);
	park(c);
}

static void on_report_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct chan_ctx *c = ctx;
	struct wgf_err err = {0};
	struct wgf_body b = {.kind = WGF_WIRE_KIND_HINT};
	struct chan_header h;

	/* The answer to a report carries the released keys (adopt mode). */
	if (!db_failed(c, e) &&
	    header_ok(c, chan_read_report(res, &h, &b.hint.released, &b.hint.n_released, &err), &h,
	              &err)) {
		snprintf(b.hint.server, sizeof(b.hint.server), "%s", c->server);
		b.hint.revision = h.revision;
		memcpy(b.hint.epoch, h.epoch, WGF_EPOCH_LEN);
		b.hint.has_released = true;
		reply_body(c, &b);
	}
	wgf_body_fini(&b);
}

static void on_sync_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct chan_ctx *c = ctx;
	struct wgf_body b = {.kind = WGF_WIRE_KIND_SYNC_REPLY};
	struct wgf_err err = {0};
	struct chan_header h;

	if (db_failed(c, e) ||
	    !header_ok(c, chan_read_sync(res, &h, &b.sync_reply, &err), &h, &err))
		return;
	reply_body(c, &b);
	wgf_body_fini(&b);
}

/* ---- requests ---- */

/*
 * Sends c's database call, unless its server already has DB_CALLS_PER_SERVER in
 * flight: an agent asks one thing at a time, so more is a misbehaving agent, which
 * must not fill the channel's queue for every other server.
 */
static void query(struct chan_ctx *c, int built, struct chan_call *call, db_result_cb cb)
{
	struct registry_entry *e = registry_find(c->ch->registry, c->req->sender);

	c->state = CTX_WORKING;
	if (built < 0) {
		refuse(c, REFUSE_OVERLOADED, WGF_WIRE_ERROR_INTERNAL,
		       "the coordinator is out of memory", true);
	} else if (e && e->db_calls >= DB_CALLS_PER_SERVER) {
		refuse(c, REFUSE_OVERLOADED, WGF_WIRE_ERROR_INTERNAL,
		       "too many requests from this server at once", true);
	} else if (db_query(c->ch->db, call->sql, call->n, call->params,
	                    uv_now(c->ch->loop) + c->ch->o.db_deadline_ms, cb, c) < 0) {
		refuse(c, REFUSE_OVERLOADED, WGF_WIRE_ERROR_INTERNAL,
		       "the coordinator is overloaded", true);
	} else if (e) {
		e->db_calls++;
	}
	chan_call_fini(call);
}

/*
 * A long poll, from memory when it can: an agent of our epoch at the revision we know
 * parks, one behind (or of another epoch) is answered at once; only one ahead of what
 * we know (it synced a change whose notification has not reached us) asks the
 * database.
 */
static void handle_hint(struct chan_ctx *c, struct registry_entry *e)
{
	const struct wgf_hint *h = &c->body.hint;
	struct chan_call call = {0};

	c->known_revision = h->revision;
	c->hint_seq = c->ch->hint_seq;
	if (memcmp(h->epoch, c->ch->epoch, WGF_EPOCH_LEN) != 0 || h->revision < e->revision) {
		reply_hint(c, e->revision, c->ch->epoch);
	} else if (h->revision == e->revision) {
		c->server_revision = e->revision;
		memcpy(c->epoch, c->ch->epoch, WGF_EPOCH_LEN);
		park(c);
	} else {
		query(c, chan_call_wait(&call, c->req->sender, c->req->nonce), &call,
		      on_wait_result);
	}
}

/*
 * A SyncRequest of an agent that has what we know of its server gets an empty reply
 * from memory (the periodic resyncs of an idle fleet); anything else is the database's.
 */
static void handle_sync(struct chan_ctx *c, struct registry_entry *e)
{
	const struct wgf_sync_request *sr = &c->body.sync_request;
	const struct chan_sync_options so = {.max_deltas = c->ch->o.max_deltas,
	                                     .page_size = c->ch->o.snapshot_page};
	struct wgf_body b = {.kind = WGF_WIRE_KIND_SYNC_REPLY};
	struct chan_call call = {0};

	if (sr->since_revision > 0 && sr->since_revision == e->revision && sr->page_base == 0 &&
	    !sr->want_snapshot && memcmp(sr->epoch, c->ch->epoch, WGF_EPOCH_LEN) == 0) {
		snprintf(b.sync_reply.server, sizeof(b.sync_reply.server), "%s", c->server);
		memcpy(b.sync_reply.epoch, c->ch->epoch, WGF_EPOCH_LEN);
		b.sync_reply.revision = e->revision;
		b.sync_reply.routable = &e->pool;
		b.sync_reply.n_routable = 1;
		reply_body(c, &b);
		return;
	}
	query(c, chan_call_sync(&call, c->req->sender, c->req->nonce, sr, &so), &call,
	      on_sync_result);
}

static void handle_body(struct chan_ctx *c)
{
	struct registry_entry *e = registry_find(c->ch->registry, c->req->sender);
	struct chan_call call = {0};

	e->seen = true;
	if ((unsigned)c->body.kind < WGF_ARRAY_SIZE(c->ch->accepted))
		c->ch->accepted[c->body.kind]++;
	switch (c->body.kind) {
	case WGF_WIRE_KIND_HINT:
		handle_hint(c, e);
		break;
	case WGF_WIRE_KIND_SYNC_REQUEST:
		handle_sync(c, e);
		break;
	case WGF_WIRE_KIND_REPORT:
		query(c,
		      chan_call_report(&call, c->req->sender, c->req->nonce, &c->body.report,
		                       c->ch->o.handshake_window_ms),
		      &call, on_report_result);
		break;
	default:
		refuse(c, REFUSE_BAD_REQUEST, WGF_WIRE_ERROR_BAD_REQUEST,
		       "a coordinator does not take this kind of body", true);
		break;
	}
}

/* The largest body e's agent may send of this kind (wgf_wire_body_peek_kind()). */
static size_t body_max(const struct registry_entry *e, int kind)
{
	uint64_t max;

	if (kind != WGF_WIRE_KIND_REPORT)
		return SMALL_BODY_MAX;
	max = REPORT_BODY_BASE + e->pool_size * REPORT_PER_ADDRESS + REPORT_UNKNOWN_MAX;
	return max < WGF_WIRE_MSG_MAX ? (size_t)max : WGF_WIRE_MSG_MAX;
}

/* The server a body names, or NULL when it names none. */
static const char *body_server(const struct wgf_body *b)
{
	switch (b->kind) {
	case WGF_WIRE_KIND_HINT:
		return b->hint.server;
	case WGF_WIRE_KIND_SYNC_REQUEST:
		return b->sync_request.server;
	case WGF_WIRE_KIND_REPORT:
		return b->report.server;
	default:
		return NULL;
	}
}

/* wgf_wire_accept()'s view of the registry and the nonces. */
static const uint8_t *find_sender(void *ctx, const struct wgf_wire_msg *m, int kind,
                                  size_t *ret_body_max)
{
	struct chan_ctx *c = ctx;
	struct registry_entry *e = registry_find(c->ch->registry, m->sender);

	if (!e)
		return NULL;
	c->from = e;
	c->server_id = e->server_id;
	snprintf(c->server, sizeof(c->server), "%s", e->name);
	*ret_body_max = body_max(e, kind);
	return memcmp(e->key, m->sender, WGF_SIGN_PK_LEN) == 0 ? e->key : e->next_key;
}

/* Whether the sender has a message left in its bucket; accepted ones are charged. */
static bool admit(void *ctx, const struct wgf_wire_msg *m)
{
	struct chan_ctx *c = ctx;
	struct channel *ch = c->ch;

	(void)m;
	return bucket_refill(&c->from->tokens, &c->from->tokens_at, uv_now(ch->loop),
	                     ch->o.agent_rate, ch->o.agent_burst) >= 1;
}

static bool take_nonce(void *ctx, const struct wgf_wire_msg *m)
{
	struct chan_ctx *c = ctx;
	struct channel *ch = c->ch;

	if (nonces_has(ch->nonces, c->server_id, m->nonce, wgf_clock_wall_ms()))
		return false;
	/* Valid until it would be refused as stale anyway (wgf_wire_check_fresh()). */
	nonces_add(ch->nonces, c->server_id, m->nonce, m->timestamp_ms + ch->o.max_skew_ms);
	return true;
}

/*
 * Checks one received envelope in the protocol's order (wgf_wire_accept()) and acts on
 * it. Everything the checks refuse is answered sparingly and costs no database work:
 * a sender not in the registry is dropped at once, and so is a replay of a nonce still
 * in memory. Only an authenticated message for its own server reaches the database.
 */
static void handle_request(struct chan_ctx *c, nng_msg *msg)
{
	struct channel *ch = c->ch;
	const struct wgf_wire_receiver rx = {.me = ch->o.pk,
	                                     .also_me = ch->o.previous_pk,
	                                     .n_also_me = ch->o.n_previous_pk,
	                                     .max_skew_ms = ch->o.max_skew_ms,
	                                     .find_sender = find_sender,
	                                     .admit = admit,
	                                     .take_nonce = take_nonce,
	                                     .ctx = c};
	enum wgf_wire_refusal why = WGF_WIRE_ACCEPTED;
	struct wgf_err err = {0};
	const char *server;
	char text[200];

	c->pipe = nng_msg_get_pipe(msg);
	pipes_busy(ch->pipes, c->pipe);
	c->server[0] = '\0';
	c->from = NULL;
	if (wgf_wire_accept(&rx, nng_msg_body(msg), nng_msg_len(msg), wgf_clock_wall_ms(), &c->req,
	                    &c->body, &why, &err) < 0) {
		nng_msg_free(msg);
		refuse(c, why,
		       wgf_wire_answerable(c->req, why) ? wgf_wire_refusal_code(why)
		                                        : WGF_WIRE_ERROR_UNSPECIFIED,
		       err.msg, false);
		return;
	}
	nng_msg_free(msg);
	c->from->tokens -= 1;
	server = body_server(&c->body);
	if (server && strcmp(server, c->server) != 0) {
		snprintf(text, sizeof(text), "this key belongs to server '%.64s', not '%.64s'",
		         c->server, server);
		refuse(c, REFUSE_WRONG_SERVER, WGF_WIRE_ERROR_MISADDRESSED, text, true);
		return;
	}
	handle_body(c);
}

/* Loop thread: everything nng finished since the last wake-up. */
static void on_async(uv_async_t *a)
{
	struct channel *ch = a->data;
	struct chan_ctx *c, *next;

	pthread_mutex_lock(&ch->mu);
	c = ch->ready_head;
	ch->ready_head = ch->ready_tail = NULL;
	pthread_mutex_unlock(&ch->mu);
	for (; c; c = next) {
		int rv = nng_aio_result(c->aio);

		next = c->next_ready;
		if (c->state == CTX_SENDING) {
			if (rv != 0)
				nng_msg_free(nng_aio_get_msg(c->aio));
			ctx_receive(c);
			continue;
		}
		ch->n_receiving--;
		if (rv != 0) {
			if (ch->stopping || rv == NNG_ECLOSED)
				ctx_free(c);
			else
				ctx_receive(c);
			continue;
		}
		handle_request(c, nng_aio_get_msg(c->aio));
		ensure_receivers(ch);
	}
}

/* nng thread, before the socket sees the pipe: within the caps, or closed at once. */
static void on_pipe_add(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct channel *ch = arg;

	(void)ev;
	if (!pipes_admit(ch->pipes, p))
		nng_pipe_close(p);
}

static void on_pipe_rem(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct channel *ch = arg;

	(void)ev;
	pipes_remove(ch->pipes, p);
}

int channel_start(uv_loop_t *loop, struct db *db, const struct channel_options *o,
                  struct channel **ret, const char **ret_url)
{
	struct channel *ch = calloc(1, sizeof(*ch));
	nng_sockaddr sa;
	int rv;

	if (!ch)
		return -ENOMEM;
	ch->loop = loop;
	ch->db = db;
	ch->o = *o;
	rv = wgf_secret_lock(ch->o.sk, sizeof(ch->o.sk));
	if (rv < 0)
		log_errno(LOG_WARNING, rv, "Cannot lock the signing key in memory, continuing");
	if (ch->o.max_contexts < MIN_RECEIVERS * 2)
		ch->o.max_contexts = MIN_RECEIVERS * 2;
	ch->nonces = nonces_new(NONCE_SLOTS);
	if (!ch->nonces) {
		wgf_secret_unlock(ch->o.sk, sizeof(ch->o.sk));
		free(ch);
		return -ENOMEM;
	}
	ch->answer_tokens = UNVERIFIED_ANSWERS_BURST;
	ch->pipes = pipes_new(&(struct pipes_options){.max_total = o->max_pipes,
	                                              .max_per_address = o->max_pipes_per_address,
	                                              .idle_ms = o->idle_timeout_ms,
	                                              .msgs_per_s = 2.0 * o->agent_rate,
	                                              .msgs_burst = 2.0 * o->agent_burst});
	if (!ch->pipes) {
		nonces_free(ch->nonces);
		wgf_secret_unlock(ch->o.sk, sizeof(ch->o.sk));
		free(ch);
		return -ENOMEM;
	}
	rv = nng_rep0_open(&ch->sock);
	if (rv == 0)
		rv = nng_socket_set_size(ch->sock, NNG_OPT_RECVMAXSZ, WGF_WIRE_MSG_MAX);
	if (rv == 0)
		rv = nng_pipe_notify(ch->sock, NNG_PIPE_EV_ADD_PRE, on_pipe_add, ch);
	if (rv == 0)
		rv = nng_pipe_notify(ch->sock, NNG_PIPE_EV_REM_POST, on_pipe_rem, ch);
	if (rv == 0)
		rv = nng_listener_create(&ch->listener, ch->sock, o->listen);
	if (rv == 0 && o->tls)
		rv = nng_listener_set_ptr(ch->listener, NNG_OPT_TLS_CONFIG, o->tls);
	if (rv == 0)
		rv = nng_listener_start(ch->listener, 0);
	if (rv != 0) {
		if (nng_socket_id(ch->sock) > 0)
			nng_close(ch->sock);
		nonces_free(ch->nonces);
		pipes_free(ch->pipes);
		wgf_secret_unlock(ch->o.sk, sizeof(ch->o.sk));
		free(ch);
		return wgf_err_from_nng(rv);
	}
	snprintf(ch->url, sizeof(ch->url), "%s", o->listen);
	if (nng_listener_get_addr(ch->listener, NNG_OPT_LOCADDR, &sa) == 0 &&
	    sa.s_family == NNG_AF_INET) {
		char ip[16];
		const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;

		snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
		snprintf(ch->url, sizeof(ch->url), "%s://%s:%u",
		         strncmp(o->listen, "tls+", 4) == 0 ? "tls+tcp" : "tcp", ip,
		         ntohs(sa.s_in.sa_port));
	}
	pthread_mutex_init(&ch->mu, NULL);
	uv_async_init(loop, &ch->async, on_async);
	ch->async.data = ch;
	uv_timer_init(loop, &ch->tick);
	ch->tick.data = ch;
	uv_timer_start(&ch->tick, on_tick, TICK_MS, TICK_MS);
	ch->answer_tokens_at = ch->refusals_logged_at = uv_now(loop);
	/* Receiving starts once the registry is loaded (on_registry_result()). */
	registry_reload(ch);
	*ret = ch;
	*ret_url = ch->url;
	return 0;
}

void channel_stop(struct channel *ch)
{
	struct chan_ctx *c, *next;

	if (!ch)
		return;
	log_refusals(ch, true);
	ch->stopping = true;
	uv_timer_stop(&ch->tick);
	for (c = ch->parked; c; c = next) {
		next = c->next;
		unpark(c);
		ctx_free(c);
	}
	/* Receiving and sending contexts complete with NNG_ECLOSED and free themselves on
	 * the loop; working ones when their database call returns. */
	nng_close(ch->sock);
	maybe_finish(ch);
}

void channel_write_metrics(const struct channel *ch, FILE *f)
{
	static const char *const kinds[] = {
	        [WGF_WIRE_KIND_HINT] = "hint",
	        [WGF_WIRE_KIND_SYNC_REQUEST] = "sync_request",
	        [WGF_WIRE_KIND_REPORT] = "report",
	};

	wgf_prom_family(f, "wgfleet_channel_messages_accepted_total", "counter",
	                "Agent messages that passed every check and were acted on, by kind.");
	for (size_t k = 0; k < WGF_ARRAY_SIZE(kinds); k++)
		if (kinds[k])
			wgf_prom(f, "wgfleet_channel_messages_accepted_total", ch->accepted[k],
			         {"kind", kinds[k]});
	wgf_prom_family(f, "wgfleet_channel_refused_total", "counter",
	                "Agent messages refused, and agent connections closed, by reason.");
	for (int i = WGF_WIRE_ACCEPTED + 1; i < REFUSE__COUNT; i++)
		wgf_prom(f, "wgfleet_channel_refused_total", ch->refused[i].total,
		         {"reason", refusal_name(i)});
	wgf_prom_single(f, "wgfleet_channel_parked_polls", "gauge",
	                "Long polls waiting for a newer revision.", ch->n_parked);
}
