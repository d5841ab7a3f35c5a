/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* session: long polls, syncs and reports over nng req0, driven from the agent's loop. */
#define LOG_MODULE "session"

#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "body.h"
#include "clock.h"
#include "log.h"
#include "secret.h"

#define REPORTS_MAX      16
/* Peer facts per report: about 80 bytes each encoded, so a report stays near 1.6 MB. */
#define REPORT_FACTS_MAX 20000
#define BACKOFF_MIN_MS   250
#define BACKOFF_MAX_MS   30000
/*
 * A refusal comes from a live coordinator (it checked our signature and signed its
 * answer) that cannot serve us for now: its database is down, or it is busy. It is asked
 * again within REFUSED_MAX_MS, so the agent hears within seconds that the cause is gone,
 * however long it lasted: meanwhile the long poll may be held for the refused sync, and
 * the periodic resync waits for the retry, so nothing else asks. A dead path backs off
 * to BACKOFF_MAX_MS.
 */
#define REFUSED_MAX_MS   4000
/* A link without a connection gets a fresh dialer every 1-2 s (see session.h). */
#define REDIAL_MS        1000
#define REDIAL_TICK_MS   250
#define LINK_PIPES_MAX   4

enum op {
	OP_IDLE,
	OP_POLL,
	OP_SYNC,
	OP_REPORT,
};

enum phase {
	PHASE_SEND,
	PHASE_RECV,
};

/* One coordinator URL: its own req0 socket, so a request's link is known. */
struct link {
	struct session *s;
	size_t i;
	char *url;
	nng_tls_config *tls; /* our reference, or NULL */
	nng_socket sock;
	nng_dialer dialer;              /* the current one; pipes of others are on their way out */
	uint32_t pipes[LINK_PIPES_MAX]; /* under s->mu: nng pipe ids from pipe_event() */
	size_t n_pipes;                 /* under s->mu */
	uint64_t dialed_at;             /* loop time of the last fresh dialer, or of going down */
	uint64_t redial_ms;             /* REDIAL_MS to 2 * REDIAL_MS, jittered per dial */
	struct wgf_tls_dial_failures failed; /* of its closed dialers */
	bool up;                             /* a connection was up at the last look */
	bool dead;                           /* declared dead (and logged) until it answers again */
};

struct sess_ctx {
	struct session *s;
	nng_ctx ctx[SESSION_URLS_MAX]; /* one on each link's socket */
	nng_aio *aio;
	struct link *link; /* where the request in flight went */
	int dialer_id;     /* and through which of its dialers */
	uint64_t sent_at;
	enum op op;
	enum phase phase;
	uint8_t nonce[WGF_NONCE_LEN];
	struct sess_ctx *next_ready;
	uv_timer_t retry;
	unsigned failures;
	bool waiting_retry;
};

struct pending {
	uint8_t *body;
	size_t len;
};

struct session {
	uv_loop_t *loop;
	struct session_options o;
	struct session_callbacks cb;
	void *cb_ctx;
	uint8_t pk[WGF_SIGN_PK_LEN];
	size_t addressed; /* the pinned coordinator key that answered last: requests go to it */
	struct link links[SESSION_URLS_MAX];
	size_t n_links, next_link;
	struct sess_ctx poll, work;
	uv_async_t async;
	uv_timer_t resync, redial;
	pthread_mutex_t mu;
	struct sess_ctx *ready_head, *ready_tail; /* under mu */
	bool pipes_changed;                       /* under mu */
	uint64_t revision;                        /* of the last set or deltas handed over */
	uint8_t epoch[WGF_EPOCH_LEN];             /* the epoch it counts in */
	struct cache_state staging;               /* the pages of a snapshot so far */
	uint64_t page_base;                       /* > 0: staging holds pages from there */
	bool want_sync, want_snapshot, poll_held;
	struct pending reports[REPORTS_MAX];
	size_t n_reports;
	bool stopping;
	unsigned open_handles;
	uint64_t synced_at_ms, refused; /* session_get_stats() */
};

static void aio_done(void *arg)
{
	struct sess_ctx *c = arg;
	struct session *s = c->s;

	pthread_mutex_lock(&s->mu);
	c->next_ready = NULL;
	if (s->ready_tail)
		s->ready_tail->next_ready = c;
	else
		s->ready_head = c;
	s->ready_tail = c;
	pthread_mutex_unlock(&s->mu);
	uv_async_send(&s->async);
}

/* nng's pipe callbacks (its threads): the connections each link has up. */
static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct link *l = arg;
	struct session *s = l->s;
	uint32_t id = (uint32_t)nng_pipe_id(p);

	pthread_mutex_lock(&s->mu);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		if (l->n_pipes < LINK_PIPES_MAX)
			l->pipes[l->n_pipes++] = id;
	} else {
		for (size_t i = 0; i < l->n_pipes; i++) {
			if (l->pipes[i] == id) {
				l->pipes[i] = l->pipes[--l->n_pipes];
				break;
			}
		}
	}
	s->pipes_changed = true;
	pthread_mutex_unlock(&s->mu);
	uv_async_send(&s->async);
}

/*
 * Whether l has a connection of its current dialer up. Pipes of a closed dialer are
 * closing (their requests fail with NNG_ECONNRESET), and an id whose pipe is gone
 * (its removal raced its addition) is dropped here.
 */
static bool link_up(struct link *l)
{
	struct session *s = l->s;
	int dialer = nng_dialer_id(l->dialer);
	bool up = false;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < l->n_pipes;) {
		nng_pipe p = {.id = l->pipes[i]};

		if (dialer > 0 && nng_dialer_id(nng_pipe_dialer(p)) == dialer) {
			up = true;
			i++;
		} else {
			l->pipes[i] = l->pipes[--l->n_pipes];
		}
	}
	pthread_mutex_unlock(&s->mu);
	return up;
}

/* Closes l's dialer, and with it its connection or the attempt in flight; dials anew. */
static void link_redial(struct link *l)
{
	nng_dialer d = NNG_DIALER_INITIALIZER;
	int rv;

	if (nng_dialer_id(l->dialer) > 0) {
		struct wgf_tls_dial_failures f;

		/* Its counts go with it: keep them for session_dial_failures(). */
		if (l->tls && wgf_tls_dial_failures(l->dialer, &f) == 0) {
			l->failed.handshake += f.handshake;
			l->failed.other += f.other;
		}
		nng_dialer_close(l->dialer);
	}
	l->dialer = (nng_dialer)NNG_DIALER_INITIALIZER;
	l->up = false;
	l->dialed_at = uv_now(l->s->loop);
	l->redial_ms = REDIAL_MS + randombytes_uniform(REDIAL_MS + 1);
	rv = nng_dialer_create(&d, l->sock, l->url);
	if (rv == 0 && l->tls)
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, l->tls);
	if (rv == 0)
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		/* Out of memory, most likely; the redial timer tries again. */
		if (nng_dialer_id(d) > 0)
			nng_dialer_close(d);
		log_fields(LOG_ERR, "Cannot dial a coordinator", {"url", l->url},
		           {"error", nng_strerror(rv)});
		return;
	}
	l->dialer = d;
}

static void on_redial(uv_timer_t *t);

/* Starts the redial timer unless it runs. */
static void arm_redial(struct session *s)
{
	if (!uv_is_active((uv_handle_t *)&s->redial))
		uv_timer_start(&s->redial, on_redial, REDIAL_TICK_MS, REDIAL_TICK_MS);
}

/*
 * A request on l went unanswered past its deadline: the path is taken for dead (a
 * frozen coordinator looks the same, and a fresh connection costs it little). Logged
 * once until l answers again.
 */
static void link_dead(struct sess_ctx *c)
{
	struct link *l = c->link;
	const char *what = c->op == OP_POLL ? "poll" : c->op == OP_SYNC ? "sync" : "report";
	char waited[24];

	if (!l || c->dialer_id != nng_dialer_id(l->dialer))
		return; /* that connection is gone already */
	if (!l->dead) {
		snprintf(waited, sizeof(waited), "%" PRIu64, uv_now(c->s->loop) - c->sent_at);
		log_fields(LOG_WARNING,
		           "No answer on the connection to a coordinator, dialing afresh",
		           {"url", l->url}, {"request", what}, {"waited_ms", waited});
	}
	l->dead = true;
	link_redial(l);
	arm_redial(c->s);
}

/* An answer came on l: whatever was wrong with its path is over. */
static void link_alive(struct link *l)
{
	if (!l || !l->dead)
		return;
	l->dead = false;
	log_fields(LOG_NOTICE, "The coordinator answers again", {"url", l->url});
}

/*
 * Every REDIAL_TICK_MS while a link is down: one down for its redial_ms gets a fresh
 * dialer. With every link up the timer stops; a lost connection starts it again.
 */
static void on_redial(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t now = uv_now(s->loop);
	bool all_up = true;

	for (size_t i = 0; i < s->n_links; i++) {
		struct link *l = &s->links[i];

		if (link_up(l)) {
			l->up = true;
			continue;
		}
		all_up = false;
		if (l->up) {
			/* Just lost: nng redials at once; replace that attempt only if it hangs. */
			l->up = false;
			l->dialed_at = now;
		}
		if (now - l->dialed_at >= l->redial_ms)
			link_redial(l);
	}
	if (all_up)
		uv_timer_stop(t);
}

/* A link with a connection up, taking turns; NULL when none is. */
static struct link *pick_link(struct session *s)
{
	for (size_t k = 0; k < s->n_links; k++) {
		struct link *l = &s->links[(s->next_link + k) % s->n_links];

		if (link_up(l)) {
			s->next_link = (l->i + 1) % s->n_links;
			return l;
		}
	}
	return NULL;
}

/*
 * Seals body (serialized) and sends it on c over a link that is up; the answer arrives
 * through aio_done. With no link up, c stays idle and is kicked again when one is.
 */
static int send_bytes(struct sess_ctx *c, enum op op, const uint8_t *body, size_t len,
                      nng_duration timeout)
{
	struct session *s = c->s;
	struct link *l = pick_link(s);
	uint8_t *buf = NULL;
	size_t buf_len = 0;
	nng_msg *msg;
	int r;

	if (!l)
		return 0;
	r = wgf_wire_seal(s->o.sk, s->o.coordinator_pk[s->addressed], NULL, wgf_clock_wall_ms(),
	                  body, len, c->nonce, &buf, &buf_len);
	if (r < 0)
		return r;
	if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, buf, buf_len) != 0) {
		free(buf);
		return -ENOMEM;
	}
	free(buf);
	c->op = op;
	c->phase = PHASE_SEND;
	c->link = l;
	c->dialer_id = nng_dialer_id(l->dialer);
	c->sent_at = uv_now(s->loop);
	nng_aio_set_msg(c->aio, msg);
	nng_aio_set_timeout(c->aio, timeout);
	nng_ctx_send(c->ctx[l->i], c->aio);
	return 0;
}

/* Encodes b, seals it and sends it on c; the answer arrives through aio_done. */
static int send_body(struct sess_ctx *c, enum op op, const struct wgf_body *b, nng_duration timeout)
{
	struct wgf_err err = {0};
	uint8_t *body = NULL;
	size_t len = 0;
	int r = wgf_body_encode(b, &body, &len, &err);

	if (r < 0) {
		log_errno(LOG_ERR, r, "Cannot encode a request: %s", err.msg);
		return r;
	}
	r = send_bytes(c, op, body, len, timeout);
	free(body);
	return r;
}

static void start_poll(struct session *s)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_HINT};

	if (s->stopping || s->poll.op != OP_IDLE || s->poll.waiting_retry)
		return;
	s->poll_held = false;
	snprintf(b.hint.server, sizeof(b.hint.server), "%s", s->o.server);
	b.hint.revision = s->revision;
	memcpy(b.hint.epoch, s->epoch, WGF_EPOCH_LEN);
	/* The coordinator answers within its poll wait; later than that and a margin, the
	 * path is dead. */
	(void)send_body(&s->poll, OP_POLL, &b,
	                (nng_duration)(s->o.poll_wait_ms + s->o.request_timeout_ms));
}

/* The work context does one thing at a time: a sync if one is wanted, else a report. */
static void kick_work(struct session *s)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_SYNC_REQUEST};
	struct wgf_sync_request *sr = &b.sync_request;

	if (s->stopping || s->work.op != OP_IDLE || s->work.waiting_retry)
		return;
	if (s->want_sync) {
		snprintf(sr->server, sizeof(sr->server), "%s", s->o.server);
		sr->since_revision = s->revision;
		memcpy(sr->epoch, s->epoch, WGF_EPOCH_LEN);
		sr->want_snapshot = s->want_snapshot;
		if (s->page_base > 0 && s->staging.n_peers > 0) {
			/* The next page of the snapshot being taken. */
			memcpy(sr->epoch, s->staging.epoch, WGF_EPOCH_LEN);
			sr->page_base = s->page_base;
			memcpy(sr->page_after, s->staging.peers[s->staging.n_peers - 1].public_key,
			       WGF_KEY_LEN);
		}
		(void)send_body(&s->work, OP_SYNC, &b, (nng_duration)s->o.request_timeout_ms);
		return;
	}
	if (s->n_reports > 0)
		(void)send_bytes(&s->work, OP_REPORT, s->reports[0].body, s->reports[0].len,
		                 (nng_duration)s->o.request_timeout_ms);
}

static void on_retry(uv_timer_t *t)
{
	struct sess_ctx *c = t->data;

	c->waiting_retry = false;
	if (c == &c->s->poll)
		start_poll(c->s);
	else
		kick_work(c->s);
}

static void backoff_to(struct sess_ctx *c, unsigned max_ms)
{
	unsigned ms = BACKOFF_MIN_MS << (c->failures < 7 ? c->failures : 7);

	if (ms > max_ms)
		ms = max_ms;
	c->failures++;
	c->op = OP_IDLE;
	c->waiting_retry = true;
	uv_timer_start(&c->retry, on_retry, ms / 2 + randombytes_uniform(ms / 2 + 1), 0);
}

static void backoff(struct sess_ctx *c)
{
	backoff_to(c, BACKOFF_MAX_MS);
}

/* Appends a snapshot page to the staging set; pages come in increasing key order. */
static int stage_page(struct session *s, const struct wgf_sync_reply *r)
{
	struct cache_state *st = &s->staging;
	struct wgf_peer *grown;

	if (s->page_base == 0 || r->page_base != s->page_base ||
	    memcmp(r->epoch, st->epoch, WGF_EPOCH_LEN) != 0) {
		/* A first page (or the coordinator started over). */
		cache_state_fini(st);
		s->page_base = r->page_base;
		memcpy(st->epoch, r->epoch, WGF_EPOCH_LEN);
	} else if (r->n_peers > 0 && st->n_peers > 0 &&
	           memcmp(r->peers[0].public_key, st->peers[st->n_peers - 1].public_key,
	                  WGF_KEY_LEN) <= 0) {
		return -EBADMSG;
	}
	if (st->n_peers + r->n_peers > WGF_DEVICE_PEERS_MAX)
		return -E2BIG;
	grown = reallocarray(st->peers, st->n_peers + r->n_peers + 1, sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	st->peers = grown;
	memcpy(st->peers + st->n_peers, r->peers, r->n_peers * sizeof(*r->peers));
	for (size_t i = 0; i < r->n_peers; i++)
		if (wgf_ip_pool_take(&st->ips, &st->peers[st->n_peers + i]) < 0)
			return -ENOMEM;
	st->n_peers += r->n_peers;
	return 0;
}

static void drop_staging(struct session *s)
{
	cache_state_fini(&s->staging);
	s->page_base = 0;
}

/*
 * Takes a SyncReply: a page of a snapshot (kept until the last page is in, then handed
 * over whole), or deltas, handed over as they are when they follow the revision handed
 * over last. Returns 1 when the daemon took a new set or deltas, 0 when more pages are
 * wanted, or a negative errno (the next sync then asks for a snapshot).
 */
static int apply_sync_reply(struct session *s, const struct wgf_sync_reply *r)
{
	struct cache_state next;
	int err;

	if (!r->snapshot) {
		/* Deltas count only within our epoch and from our revision. */
		struct cache_state held = {.revision = s->revision};

		memcpy(held.epoch, s->epoch, WGF_EPOCH_LEN);
		if (!cache_state_follows(&held, r))
			return -ESTALE;
		err = s->cb.deltas(s->cb_ctx, r);
		if (err < 0)
			return err;
		s->revision = r->revision;
		return 1;
	}
	err = stage_page(s, r);
	if (err < 0 || r->more)
		return err < 0 ? err : 0;
	next = s->staging;
	s->staging = (struct cache_state){0};
	s->page_base = 0;
	/* The last page may bring the changes made since its first one was read. */
	err = cache_state_apply(&next, r);
	if (err < 0) {
		cache_state_fini(&next);
		return err;
	}
	s->revision = next.revision;
	memcpy(s->epoch, next.epoch, WGF_EPOCH_LEN);
	s->cb.desired(s->cb_ctx, &next);
	cache_state_fini(&next);
	return 1;
}

/* wgf_wire_accept()'s view: the one key we know is the pinned coordinator's. */
static const uint8_t *find_coordinator(void *ctx, const struct wgf_wire_msg *m, int kind,
                                       size_t *ret_body_max)
{
	struct session *s = ctx;

	(void)kind;
	*ret_body_max = WGF_WIRE_MSG_MAX;
	for (size_t i = 0; i < s->o.n_coordinator_pk; i++)
		if (sodium_memcmp(m->sender, s->o.coordinator_pk[i], WGF_SIGN_PK_LEN) == 0)
			return s->o.coordinator_pk[i];
	return NULL;
}

/* An answer from pinned key i was accepted: later requests are addressed to that key,
 * so a coordinator that signs with a new key also receives requests for it. */
static void addressed_to(struct session *s, const uint8_t *sender)
{
	for (size_t i = 0; i < s->o.n_coordinator_pk; i++)
		if (sodium_memcmp(sender, s->o.coordinator_pk[i], WGF_SIGN_PK_LEN) == 0)
			s->addressed = i;
}

/* Opens an answer: signed by the pinned coordinator, to us, fresh, bound to c's request. */
static int open_answer(struct sess_ctx *c, nng_msg *msg, struct wgf_body *ret)
{
	struct session *s = c->s;
	const struct wgf_wire_receiver rx = {.me = s->pk,
	                                     .max_skew_ms = s->o.max_skew_ms,
	                                     .find_sender = find_coordinator,
	                                     .reply_to = c->nonce,
	                                     .ctx = s};
	enum wgf_wire_refusal why = WGF_WIRE_ACCEPTED;
	struct wgf_wire_msg *m = NULL;
	struct wgf_err err = {0};
	int r = wgf_wire_accept(&rx, nng_msg_body(msg), nng_msg_len(msg), wgf_clock_wall_ms(), &m,
	                        ret, &why, &err);

	if (r < 0)
		log_fields(LOG_WARNING, "Dropped an answer", {"reason", wgf_wire_refusal_name(why)},
		           {"error", err.msg});
	else
		addressed_to(s, m->sender);
	wgf_wire_msg_free(m);
	return r;
}

static void handle_answer(struct sess_ctx *c, const struct wgf_body *b)
{
	struct session *s = c->s;
	enum op op = c->op;
	int r;

	if (b->kind == WGF_WIRE_KIND_ERROR) {
		s->refused++;
		log_fields(LOG_WARNING, "The coordinator refused a request",
		           {"code", b->error.code == WGF_WIRE_ERROR_UNSUPPORTED_VERSION
		                            ? "unsupported_version"
		                            : "refused"},
		           {"message", b->error.message});
		/* A version it does not speak will not change soon. */
		backoff_to(c, b->error.code == WGF_WIRE_ERROR_UNSUPPORTED_VERSION ? BACKOFF_MAX_MS
		                                                                  : REFUSED_MAX_MS);
		return;
	}
	c->failures = 0;
	c->op = OP_IDLE;
	if (op == OP_SYNC && b->kind == WGF_WIRE_KIND_SYNC_REPLY &&
	    strcmp(b->sync_reply.server, s->o.server) == 0) {
		r = apply_sync_reply(s, &b->sync_reply);
		if (r < 0) {
			log_errno(LOG_WARNING, r, "Cannot use a sync reply, asking for a snapshot");
			drop_staging(s);
			s->want_snapshot = true;
			backoff(c);
			return;
		}
		if (r > 0) {
			s->synced_at_ms = wgf_clock_wall_ms();
			s->want_sync = false;
			s->want_snapshot = false;
			if (s->poll_held)
				start_poll(s);
		}
	} else if ((op == OP_POLL || op == OP_REPORT) && b->kind == WGF_WIRE_KIND_HINT) {
		if (op == OP_REPORT) {
			free(s->reports[0].body);
			memmove(&s->reports[0], &s->reports[1],
			        --s->n_reports * sizeof(s->reports[0]));
			if (b->hint.has_released && s->cb.released)
				s->cb.released(s->cb_ctx,
				               (const uint8_t(*)[WGF_KEY_LEN])b->hint.released,
				               b->hint.n_released);
		}
		if (b->hint.revision != s->revision ||
		    memcmp(b->hint.epoch, s->epoch, WGF_EPOCH_LEN) != 0)
			s->want_sync = true;
		/* A poll answered with news waits for the sync, or it would be answered again
		 * at once with the same news. One answered without news told us what a resync
		 * would have (the coordinator checks a poll's revision against its own as it
		 * comes): the periodic resync starts over, so an idle agent whose polls come
		 * back within resync_interval sends only those. */
		if (op == OP_POLL) {
			if (s->want_sync) {
				s->poll_held = true;
			} else {
				s->synced_at_ms = wgf_clock_wall_ms();
				uv_timer_again(&s->resync);
				start_poll(s);
			}
		}
	} else {
		log_warning("Dropped an answer of an unexpected kind");
		backoff(c);
		return;
	}
	kick_work(s);
}

/* A request failed with nng's rv: a timeout is a dead path; c tries again. */
static void request_failed(struct sess_ctx *c, int rv)
{
	struct link *l = c->link;

	if (rv == NNG_ETIMEDOUT) {
		link_dead(c);
		if (c->op == OP_POLL) {
			/* At once: on another link, or once this one is back. */
			c->op = OP_IDLE;
			start_poll(c->s);
			return;
		}
	} else if (l && c->dialer_id == nng_dialer_id(l->dialer)) {
		/* (A connection we closed ourselves needs no line.) */
		log_fields(LOG_WARNING, "No answer from the coordinator", {"url", l->url},
		           {"error", nng_strerror(rv)});
	}
	backoff(c);
}

static void finish_stop(struct session *s);

static void on_async(uv_async_t *a)
{
	struct session *s = a->data;
	struct sess_ctx *c, *next;
	bool pipes_changed;

	pthread_mutex_lock(&s->mu);
	c = s->ready_head;
	s->ready_head = s->ready_tail = NULL;
	pipes_changed = s->pipes_changed;
	s->pipes_changed = false;
	pthread_mutex_unlock(&s->mu);
	for (; c; c = next) {
		int rv = nng_aio_result(c->aio);
		struct wgf_body b = {0};
		nng_msg *msg;
		int r;

		next = c->next_ready;
		if (s->stopping) {
			if (rv != 0 && c->phase == PHASE_SEND)
				nng_msg_free(nng_aio_get_msg(c->aio));
			c->op = OP_IDLE;
			continue;
		}
		if (c->phase == PHASE_SEND) {
			if (rv != 0) {
				nng_msg_free(nng_aio_get_msg(c->aio));
				request_failed(c, rv);
				continue;
			}
			c->phase = PHASE_RECV;
			nng_ctx_recv(c->ctx[c->link->i], c->aio);
			continue;
		}
		if (rv != 0) {
			request_failed(c, rv);
			continue;
		}
		link_alive(c->link);
		msg = nng_aio_get_msg(c->aio);
		r = open_answer(c, msg, &b);
		nng_msg_free(msg);
		if (r < 0) {
			backoff(c);
			continue;
		}
		handle_answer(c, &b);
		wgf_body_fini(&b);
	}
	if (s->stopping) {
		finish_stop(s);
		return;
	}
	/* A connection came up: what waited for one goes now. */
	if (pipes_changed) {
		arm_redial(s);
		if (!s->poll_held)
			start_poll(s);
		kick_work(s);
	}
}

static void on_resync(uv_timer_t *t)
{
	struct session *s = t->data;

	s->want_sync = true;
	kick_work(s);
}

static void handle_closed(uv_handle_t *h);

static int ctx_init(struct session *s, struct sess_ctx *c)
{
	int rv;

	c->s = s;
	rv = nng_aio_alloc(&c->aio, aio_done, c);
	for (size_t i = 0; rv == 0 && i < s->n_links; i++)
		rv = nng_ctx_open(&c->ctx[i], s->links[i].sock);
	return rv != 0 ? wgf_err_from_nng(rv) : 0;
}

/* Opens l's socket and starts its first dialer. */
static int link_open(struct session *s, struct link *l, const char *url, nng_tls_config *tls)
{
	int rv;

	l->s = s;
	l->i = (size_t)(l - s->links);
	l->url = strdup(url);
	if (!l->url)
		return NNG_ENOMEM;
	if (tls) {
		nng_tls_config_hold(tls);
		l->tls = tls;
	}
	rv = nng_req0_open(&l->sock);
	if (rv == 0)
		rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, WGF_WIRE_MSG_MAX);
	if (rv == 0)
		rv = nng_socket_set_ms(l->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (rv == 0)
		rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 100);
	if (rv == 0)
		rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, 5000);
	if (rv == 0)
		rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_POST, pipe_event, l);
	if (rv == 0)
		rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, pipe_event, l);
	if (rv == 0)
		rv = nng_dialer_create(&l->dialer, l->sock, url);
	if (rv == 0 && tls)
		rv = nng_dialer_set_ptr(l->dialer, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = nng_dialer_start(l->dialer, NNG_FLAG_NONBLOCK);
	l->dialed_at = uv_now(s->loop);
	l->redial_ms = REDIAL_MS + randombytes_uniform(REDIAL_MS + 1);
	return rv;
}

/* Frees what link_open() took; the socket is closed already (or never opened). */
static void link_fini(struct link *l)
{
	free(l->url);
	l->url = NULL;
	if (l->tls)
		nng_tls_config_free(l->tls);
	l->tls = NULL;
}

static void close_links(struct session *s)
{
	for (size_t i = 0; i < s->n_links; i++) {
		if (nng_socket_id(s->links[i].sock) > 0)
			nng_close(s->links[i].sock);
	}
}

int session_start(uv_loop_t *loop, const struct session_options *o,
                  const struct session_callbacks *cb, void *ctx, const struct cache_state *initial,
                  struct session **ret)
{
	struct session *s = calloc(1, sizeof(*s));
	int rv = 0;

	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->o = *o;
	rv = wgf_secret_lock(s->o.sk, sizeof(s->o.sk));
	if (rv < 0)
		log_errno(LOG_WARNING, rv, "Cannot lock the signing key in memory, continuing");
	s->cb = *cb;
	s->cb_ctx = ctx;
	crypto_sign_ed25519_sk_to_pk(s->pk, s->o.sk);
	if (initial) {
		s->revision = initial->revision;
		memcpy(s->epoch, initial->epoch, WGF_EPOCH_LEN);
	}
	/* The lock and the async come first: pipe_event() may run once a dialer starts. */
	pthread_mutex_init(&s->mu, NULL);
	uv_async_init(loop, &s->async, on_async);
	s->async.data = s;
	for (size_t i = 0; rv == 0 && i < o->n_urls && i < SESSION_URLS_MAX; i++) {
		s->n_links++;
		rv = link_open(s, &s->links[i], o->urls[i], o->tls[i]);
	}
	if (rv != 0) {
		close_links(s);
		for (size_t i = 0; i < s->n_links; i++)
			link_fini(&s->links[i]);
		s->n_links = 0;
		s->open_handles = 1;
		s->stopping = true;
		uv_close((uv_handle_t *)&s->async, handle_closed);
		return wgf_err_from_nng(rv);
	}
	uv_timer_init(loop, &s->resync);
	s->resync.data = s;
	uv_timer_init(loop, &s->redial);
	s->redial.data = s;
	uv_timer_init(loop, &s->poll.retry);
	s->poll.retry.data = &s->poll;
	uv_timer_init(loop, &s->work.retry);
	s->work.retry.data = &s->work;
	rv = ctx_init(s, &s->poll);
	if (rv == 0)
		rv = ctx_init(s, &s->work);
	if (rv < 0) {
		/* Out of memory in nng: give up whole, through the normal stop. */
		*ret = s;
		session_stop(s);
		*ret = NULL;
		return rv;
	}
	uv_timer_start(&s->resync, on_resync, o->resync_ms, o->resync_ms);
	arm_redial(s);
	s->want_sync = true;
	kick_work(s);
	start_poll(s);
	*ret = s;
	return 0;
}

int session_dial_failures(struct session *s, size_t i, struct wgf_tls_dial_failures *ret)
{
	int r;

	if (i >= s->n_links)
		return -EINVAL;
	r = wgf_tls_dial_failures(s->links[i].dialer, ret);
	if (r < 0)
		return r;
	ret->handshake += s->links[i].failed.handshake;
	ret->other += s->links[i].failed.other;
	return 0;
}

/* Encodes b and queues it; the oldest queued report goes when the queue is full. */
static int queue_report(struct session *s, const struct wgf_body *b)
{
	struct wgf_err err = {0};
	struct pending p = {0};
	int r = wgf_body_encode(b, &p.body, &p.len, &err);

	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot encode a report: %s", err.msg);
	if (s->n_reports == REPORTS_MAX) {
		/* The oldest queued report is the least useful: drop it. */
		free(s->reports[0].body);
		memmove(&s->reports[0], &s->reports[1], --s->n_reports * sizeof(s->reports[0]));
	}
	s->reports[s->n_reports++] = p;
	return 0;
}

int session_report(struct session *s, const struct session_report *r)
{
	struct wgf_body b = {.kind = WGF_WIRE_KIND_REPORT};
	struct wgf_report *rep = &b.report;
	size_t sent = 0;
	int rv = -ENOMEM;

	snprintf(rep->server, sizeof(rep->server), "%s", s->o.server);
	if (r->epoch)
		memcpy(rep->epoch, r->epoch, WGF_EPOCH_LEN);
	rep->applied_revision = r->applied_revision;
	rep->listen_port = r->listen_port;
	snprintf(rep->cache_error, sizeof(rep->cache_error), "%s",
	         r->cache_error ? r->cache_error : "");
	if (r->interface_public_key) {
		rep->has_interface_key = true;
		memcpy(rep->interface_public_key, r->interface_public_key, WGF_KEY_LEN);
	}
	rep->errors = calloc(r->n_failures + 1, sizeof(*rep->errors));
	rep->facts = calloc((r->n_facts < REPORT_FACTS_MAX ? r->n_facts : REPORT_FACTS_MAX) + 1,
	                    sizeof(*rep->facts));
	rep->drift = calloc(r->n_drift + 1, sizeof(*rep->drift));
	if (!rep->errors || !rep->facts || !rep->drift)
		goto out;
	for (size_t i = 0; i < r->n_failures; i++, rep->n_errors++) {
		memcpy(rep->errors[i].public_key, r->failures[i].public_key, WGF_KEY_LEN);
		rep->errors[i].revision = r->applied_revision;
		snprintf(rep->errors[i].reason, sizeof(rep->errors[i].reason), "%s",
		         r->failures[i].reason);
	}
	for (size_t i = 0; i < r->n_drift; i++, rep->n_drift++) {
		memcpy(rep->drift[i].public_key, r->drift_keys[i], WGF_KEY_LEN);
		rep->drift[i].kind = (enum wgf_drift_kind)r->drift_kinds[i];
	}
	/* Borrowed: taken back before wgf_body_fini(). */
	rep->has_unknown = r->has_unknown;
	rep->unknown = (struct wgf_unknown_peer *)r->unknown;
	rep->n_unknown =
	        r->n_unknown < WGF_REPORT_UNKNOWN_MAX ? r->n_unknown : WGF_REPORT_UNKNOWN_MAX;
	rep->n_unknown_total = (uint32_t)r->n_unknown_total;
	/* Facts of many peers go in several reports, each well within an envelope; the
	 * errors, the drift and the unknown peers in the first. */
	do {
		rep->n_facts = 0;
		for (; sent < r->n_facts && rep->n_facts < REPORT_FACTS_MAX; sent++) {
			const struct monitor_fact *f = r->facts[sent];
			struct wgf_peer_facts *o = &rep->facts[rep->n_facts++];
			struct sockaddr_storage ss;

			memset(o, 0, sizeof(*o));
			memcpy(o->public_key, f->public_key, WGF_KEY_LEN);
			o->last_handshake_ms = f->last_handshake_ms;
			o->rx_bytes = f->rx_bytes;
			o->tx_bytes = f->tx_bytes;
			if (monitor_fact_endpoint(f, &ss))
				wgf_sockaddr_format((const struct sockaddr *)&ss, o->endpoint,
				                    sizeof(o->endpoint));
		}
		rv = queue_report(s, &b);
		rep->n_errors = rep->n_drift = rep->n_unknown = rep->n_unknown_total = 0;
		rep->has_unknown = false;
	} while (rv == 0 && sent < r->n_facts);
	kick_work(s);
out:
	rep->unknown = NULL;
	wgf_body_fini(&b);
	return rv;
}

static void handle_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	if (--s->open_handles > 0)
		return;
	for (size_t i = 0; i < s->n_reports; i++)
		free(s->reports[i].body);
	for (size_t i = 0; i < s->n_links; i++)
		link_fini(&s->links[i]);
	cache_state_fini(&s->staging);
	pthread_mutex_destroy(&s->mu);
	wgf_secret_unlock(s->o.sk, sizeof(s->o.sk));
	free(s);
}

/* Once neither context waits for nng, free the aios and close the handles. */
static void finish_stop(struct session *s)
{
	if (s->open_handles || s->poll.op != OP_IDLE || s->work.op != OP_IDLE)
		return;
	if (s->poll.aio)
		nng_aio_free(s->poll.aio);
	if (s->work.aio)
		nng_aio_free(s->work.aio);
	s->open_handles = 5;
	s->poll.retry.data = s->work.retry.data = s;
	uv_close((uv_handle_t *)&s->async, handle_closed);
	uv_close((uv_handle_t *)&s->resync, handle_closed);
	uv_close((uv_handle_t *)&s->redial, handle_closed);
	uv_close((uv_handle_t *)&s->poll.retry, handle_closed);
	uv_close((uv_handle_t *)&s->work.retry, handle_closed);
}

void session_get_stats(struct session *s, struct session_stats *ret)
{
	size_t up = 0;

	for (size_t i = 0; i < s->n_links; i++)
		up += link_up(&s->links[i]);
	*ret = (struct session_stats){.links = s->n_links,
	                              .links_up = up,
	                              .synced_at_ms = s->synced_at_ms,
	                              .refused = s->refused};
}

void session_resync(struct session *s)
{
	if (!s || s->stopping)
		return;
	drop_staging(s);
	/* Deltas already on their way then fail to follow, and are dropped too. */
	s->revision = 0;
	memset(s->epoch, 0, WGF_EPOCH_LEN);
	s->want_sync = s->want_snapshot = true;
	kick_work(s);
}

void session_stop(struct session *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	uv_timer_stop(&s->resync);
	uv_timer_stop(&s->redial);
	uv_timer_stop(&s->poll.retry);
	uv_timer_stop(&s->work.retry);
	s->poll.waiting_retry = s->work.waiting_retry = false;
	/* Contexts in flight complete with NNG_ECLOSED through on_async; once nng_close()
	 * returns, no pipe_event() runs. */
	close_links(s);
	finish_stop(s);
}
