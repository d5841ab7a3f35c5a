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

#include "clock.h"
#include "log.h"
#include "wgfleet.pb-c.h"

#define REPORTS_MAX     8
#define POLL_TIMEOUT_MS (10 * 60 * 1000) /* the coordinator answers well before */
#define BACKOFF_MIN_MS  250
#define BACKOFF_MAX_MS  30000

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

struct sess_ctx {
	struct session *s;
	nng_ctx ctx;
	nng_aio *aio;
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
	nng_socket sock;
	struct sess_ctx poll, work;
	uv_async_t async;
	uv_timer_t resync;
	pthread_mutex_t mu;
	struct sess_ctx *ready_head, *ready_tail; /* under mu */
	struct cache_state desired;               /* sorted by key; what deltas apply to */
	bool want_sync, poll_held;
	struct pending reports[REPORTS_MAX];
	size_t n_reports;
	bool stopping;
	unsigned open_handles;
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

static uint8_t *pack_body(Wgfleet__V1__Body *b, size_t *len)
{
	uint8_t *buf;

	*len = wgfleet__v1__body__get_packed_size(b);
	buf = malloc(*len ? *len : 1);
	if (buf)
		wgfleet__v1__body__pack(b, buf);
	return buf;
}

/* Seals body and sends it on c; the answer arrives through aio_done. */
static int send_body(struct sess_ctx *c, enum op op, const uint8_t *body, size_t len,
                     nng_duration timeout)
{
	struct session *s = c->s;
	uint8_t *buf = NULL;
	size_t buf_len = 0;
	nng_msg *msg;
	int r;

	r = wgf_wire_seal(s->o.sk, s->o.coordinator_pk, NULL, wgf_clock_wall_ms(), body, len,
	                  c->nonce, &buf, &buf_len);
	if (r < 0)
		return r;
	if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, buf, buf_len) != 0) {
		free(buf);
		return -ENOMEM;
	}
	free(buf);
	c->op = op;
	c->phase = PHASE_SEND;
	nng_aio_set_msg(c->aio, msg);
	nng_aio_set_timeout(c->aio, timeout);
	nng_ctx_send(c->ctx, c->aio);
	return 0;
}

static void start_poll(struct session *s)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Hint h = WGFLEET__V1__HINT__INIT;
	uint8_t *body;
	size_t len;

	if (s->stopping || s->poll.op != OP_IDLE || s->poll.waiting_retry)
		return;
	s->poll_held = false;
	h.server = (char *)s->o.server;
	h.revision = s->desired.revision;
	b.kind_case = WGFLEET__V1__BODY__KIND_HINT;
	b.hint = &h;
	body = pack_body(&b, &len);
	if (body)
		(void)send_body(&s->poll, OP_POLL, body, len, POLL_TIMEOUT_MS);
	free(body);
}

/* The work context does one thing at a time: a sync if one is wanted, else a report. */
static void kick_work(struct session *s)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__SyncRequest sr = WGFLEET__V1__SYNC_REQUEST__INIT;
	uint8_t *body;
	size_t len;

	if (s->stopping || s->work.op != OP_IDLE || s->work.waiting_retry)
		return;
	if (s->want_sync) {
		sr.server = (char *)s->o.server;
		sr.since_revision = s->desired.revision;
		b.kind_case = WGFLEET__V1__BODY__KIND_SYNC_REQUEST;
		b.sync_request = &sr;
		body = pack_body(&b, &len);
		if (body)
			(void)send_body(&s->work, OP_SYNC, body, len,
			                (nng_duration)s->o.request_timeout_ms);
		free(body);
		return;
	}
	if (s->n_reports > 0)
		(void)send_body(&s->work, OP_REPORT, s->reports[0].body, s->reports[0].len,
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

static void backoff(struct sess_ctx *c)
{
	unsigned ms = BACKOFF_MIN_MS << (c->failures < 7 ? c->failures : 7);

	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	c->failures++;
	c->op = OP_IDLE;
	c->waiting_retry = true;
	uv_timer_start(&c->retry, on_retry, ms / 2 + randombytes_uniform(ms / 2 + 1), 0);
}

static int cmp_peer_key(const void *a, const void *b)
{
	return wgf_peer_cmp_key(a, b);
}

static struct wgf_peer *find_peer(struct cache_state *d, const uint8_t key[static WGF_KEY_LEN])
{
	struct wgf_peer probe;

	memcpy(probe.public_key, key, WGF_KEY_LEN);
	return bsearch(&probe, d->peers, d->n_peers, sizeof(*d->peers), cmp_peer_key);
}

/* Fills p from a protobuf Peer; false when it is malformed. */
static bool peer_from_proto(const Wgfleet__V1__Peer *in, struct wgf_peer *p)
{
	memset(p, 0, sizeof(*p));
	if (in->public_key.len != WGF_KEY_LEN || in->n_allowed_ips > WGF_PEER_ALLOWED_IPS_MAX ||
	    in->persistent_keepalive > 65535)
		return false;
	memcpy(p->public_key, in->public_key.data, WGF_KEY_LEN);
	for (size_t i = 0; i < in->n_allowed_ips; i++)
		if (wgf_cidr_parse(&p->allowed_ips[i], in->allowed_ips[i], 0, NULL) < 0)
			return false;
	p->n_allowed_ips = (unsigned)in->n_allowed_ips;
	p->persistent_keepalive = (uint16_t)in->persistent_keepalive;
	if (p->persistent_keepalive)
		p->flags |= WGF_PEER_HAS_KEEPALIVE;
	return true;
}

/* Applies one change to the sorted desired set. */
static int apply_change(struct cache_state *d, const Wgfleet__V1__PeerChange *ch)
{
	struct wgf_peer p, *at, *grown;

	if (!ch->peer || !peer_from_proto(ch->peer, &p))
		return -EBADMSG;
	at = find_peer(d, p.public_key);
	if (ch->op == WGFLEET__V1__PEER_CHANGE__OP__OP_REMOVE) {
		if (at) {
			memmove(at, at + 1, (size_t)(d->peers + d->n_peers - at - 1) * sizeof(*at));
			d->n_peers--;
		}
		return 0;
	}
	if (ch->op != WGFLEET__V1__PEER_CHANGE__OP__OP_UPSERT)
		return -EBADMSG;
	if (at) {
		*at = p;
		return 0;
	}
	if (d->n_peers >= WGF_DEVICE_PEERS_MAX)
		return -E2BIG;
	grown = reallocarray(d->peers, d->n_peers + 1, sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	d->peers = grown;
	d->peers[d->n_peers++] = p;
	qsort(d->peers, d->n_peers, sizeof(*d->peers), cmp_peer_key);
	return 0;
}

static int apply_sync_reply(struct session *s, const Wgfleet__V1__SyncReply *r)
{
	struct cache_state next = {.revision = r->revision};
	struct cache_state copy = {0};
	int err = 0;

	if (r->snapshot) {
		if (r->n_peers > WGF_DEVICE_PEERS_MAX)
			return -E2BIG;
		next.peers = calloc(r->n_peers ? r->n_peers : 1, sizeof(*next.peers));
		if (!next.peers)
			return -ENOMEM;
		for (size_t i = 0; i < r->n_peers && err == 0; i++, next.n_peers++)
			if (!peer_from_proto(r->peers[i], &next.peers[i]))
				err = -EBADMSG;
		qsort(next.peers, next.n_peers, sizeof(*next.peers), cmp_peer_key);
	} else {
		next.n_peers = s->desired.n_peers;
		next.peers = calloc(next.n_peers ? next.n_peers : 1, sizeof(*next.peers));
		if (!next.peers)
			return -ENOMEM;
		memcpy(next.peers, s->desired.peers, next.n_peers * sizeof(*next.peers));
		for (size_t i = 0; i < r->n_changes && err == 0; i++)
			err = apply_change(&next, r->changes[i]);
	}
	if (err == 0) {
		copy.revision = next.revision;
		copy.n_peers = next.n_peers;
		copy.peers = calloc(next.n_peers ? next.n_peers : 1, sizeof(*copy.peers));
		if (!copy.peers)
			err = -ENOMEM;
		else
			memcpy(copy.peers, next.peers, next.n_peers * sizeof(*copy.peers));
	}
	if (err < 0) {
		cache_state_fini(&next);
		return err;
	}
	cache_state_fini(&s->desired);
	s->desired = next;
	s->cb.desired(s->cb_ctx, &copy);
	cache_state_fini(&copy);
	return 0;
}

/* Opens an answer: signed by the pinned coordinator, to us, fresh, bound to c's request. */
static Wgfleet__V1__Body *open_answer(struct sess_ctx *c, nng_msg *msg)
{
	struct session *s = c->s;
	struct wgf_wire_msg *m = NULL;
	struct wgf_err err = {0};
	Wgfleet__V1__Body *b = NULL;

	if (wgf_wire_open(nng_msg_body(msg), nng_msg_len(msg), &m, &err) < 0 ||
	    wgf_wire_verify(m, s->o.coordinator_pk, &err) < 0 ||
	    wgf_wire_check_addressed(m, s->pk, &err) < 0 ||
	    wgf_wire_check_fresh(m, wgf_clock_wall_ms(), s->o.max_skew_ms, &err) < 0) {
		log_warning("Dropped an answer: %s", err.msg);
	} else if (!m->is_reply || sodium_memcmp(m->in_reply_to, c->nonce, WGF_NONCE_LEN) != 0) {
		log_warning("Dropped an answer that is not bound to our request");
	} else if (!(b = wgfleet__v1__body__unpack(NULL, m->body_len, m->body))) {
		log_warning("Dropped an answer whose body is not a Body");
	}
	wgf_wire_msg_free(m);
	return b;
}

static void handle_answer(struct sess_ctx *c, Wgfleet__V1__Body *b)
{
	struct session *s = c->s;
	enum op op = c->op;
	int r;

	if (b->kind_case == WGFLEET__V1__BODY__KIND_ERROR) {
		log_fields(LOG_WARNING, "The coordinator refused a request",
		           {"code", b->error->code == 1 ? "unsupported_version" : "refused"},
		           {"message", b->error->message});
		backoff(c);
		return;
	}
	c->failures = 0;
	c->op = OP_IDLE;
	if (op == OP_SYNC && b->kind_case == WGFLEET__V1__BODY__KIND_SYNC_REPLY) {
		r = apply_sync_reply(s, b->sync_reply);
		if (r < 0) {
			log_errno(LOG_WARNING, r, "Cannot use a sync reply, retrying");
			backoff(c);
			return;
		}
		s->want_sync = false;
		if (s->poll_held)
			start_poll(s);
	} else if ((op == OP_POLL || op == OP_REPORT) &&
	           b->kind_case == WGFLEET__V1__BODY__KIND_HINT) {
		if (op == OP_REPORT) {
			free(s->reports[0].body);
			memmove(&s->reports[0], &s->reports[1],
			        --s->n_reports * sizeof(s->reports[0]));
		}
		if (b->hint->revision != s->desired.revision)
			s->want_sync = true;
		/* A poll answered with news waits for the sync, or it would be answered again
		 * at once with the same news. */
		if (op == OP_POLL) {
			if (s->want_sync)
				s->poll_held = true;
			else
				start_poll(s);
		}
	} else {
		log_warning("Dropped an answer of an unexpected kind");
		backoff(c);
		return;
	}
	kick_work(s);
}

static void finish_stop(struct session *s);

static void on_async(uv_async_t *a)
{
	struct session *s = a->data;
	struct sess_ctx *c, *next;

	pthread_mutex_lock(&s->mu);
	c = s->ready_head;
	s->ready_head = s->ready_tail = NULL;
	pthread_mutex_unlock(&s->mu);
	for (; c; c = next) {
		int rv = nng_aio_result(c->aio);
		Wgfleet__V1__Body *b;
		nng_msg *msg;

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
				backoff(c);
				continue;
			}
			c->phase = PHASE_RECV;
			nng_ctx_recv(c->ctx, c->aio);
			continue;
		}
		if (rv != 0) {
			/* A long poll that outlived its timeout is not a failure. */
			if (c->op == OP_POLL && rv == NNG_ETIMEDOUT) {
				c->op = OP_IDLE;
				start_poll(s);
			} else {
				log_fields(LOG_WARNING, "No answer from the coordinator",
				           {"error", nng_strerror(rv)});
				backoff(c);
			}
			continue;
		}
		msg = nng_aio_get_msg(c->aio);
		b = open_answer(c, msg);
		nng_msg_free(msg);
		if (!b) {
			backoff(c);
			continue;
		}
		handle_answer(c, b);
		wgfleet__v1__body__free_unpacked(b, NULL);
	}
	if (s->stopping)
		finish_stop(s);
}

static void on_resync(uv_timer_t *t)
{
	struct session *s = t->data;

	s->want_sync = true;
	kick_work(s);
}

static int ctx_init(struct session *s, struct sess_ctx *c)
{
	int rv;

	c->s = s;
	rv = nng_aio_alloc(&c->aio, aio_done, c);
	if (rv == 0)
		rv = nng_ctx_open(&c->ctx, s->sock);
	return rv != 0 ? wgf_err_from_nng(rv) : 0;
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
	s->cb = *cb;
	s->cb_ctx = ctx;
	crypto_sign_ed25519_sk_to_pk(s->pk, s->o.sk);
	if (initial && initial->n_peers) {
		s->desired.peers = calloc(initial->n_peers, sizeof(*s->desired.peers));
		if (!s->desired.peers) {
			free(s);
			return -ENOMEM;
		}
		memcpy(s->desired.peers, initial->peers,
		       initial->n_peers * sizeof(*initial->peers));
		s->desired.n_peers = initial->n_peers;
		qsort(s->desired.peers, s->desired.n_peers, sizeof(*s->desired.peers),
		      cmp_peer_key);
	}
	s->desired.revision = initial ? initial->revision : 0;
	rv = nng_req0_open(&s->sock);
	if (rv == 0)
		rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, WGF_WIRE_MSG_MAX);
	if (rv == 0)
		rv = nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (rv == 0)
		rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 100);
	if (rv == 0)
		rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 5000);
	for (size_t i = 0; rv == 0 && i < o->n_urls; i++) {
		nng_dialer d;

		rv = nng_dialer_create(&d, s->sock, o->urls[i]);
		if (rv == 0 && o->tls[i])
			rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, o->tls[i]);
		if (rv == 0)
			rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	}
	if (rv != 0) {
		if (nng_socket_id(s->sock) > 0)
			nng_close(s->sock);
		cache_state_fini(&s->desired);
		free(s);
		return wgf_err_from_nng(rv);
	}
	pthread_mutex_init(&s->mu, NULL);
	uv_async_init(loop, &s->async, on_async);
	s->async.data = s;
	uv_timer_init(loop, &s->resync);
	s->resync.data = s;
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
	s->want_sync = true;
	kick_work(s);
	start_poll(s);
	*ret = s;
	return 0;
}

int session_report(struct session *s, const struct session_report *r)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	size_t n = r->n_failures + r->n_facts + r->n_drift;
	Wgfleet__V1__PeerApplyError *ev = calloc(r->n_failures + 1, sizeof(*ev));
	Wgfleet__V1__PeerFacts *fv = calloc(r->n_facts + 1, sizeof(*fv));
	Wgfleet__V1__Drift *dv = calloc(r->n_drift + 1, sizeof(*dv));
	void **ptrs = calloc(n + 1, sizeof(*ptrs));
	char(*endpoints)[64] = calloc(r->n_facts + 1, 64);
	struct pending p = {0};
	int err = 0;

	if (!ev || !fv || !dv || !ptrs || !endpoints) {
		err = -ENOMEM;
		goto out;
	}
	rep.server = (char *)s->o.server;
	rep.applied_revision = r->applied_revision;
	rep.full = r->full;
	rep.listen_port = r->listen_port;
	if (r->interface_public_key) {
		rep.interface_public_key.data = (uint8_t *)r->interface_public_key;
		rep.interface_public_key.len = WGF_KEY_LEN;
	}
	rep.errors = (Wgfleet__V1__PeerApplyError **)ptrs;
	for (size_t i = 0; i < r->n_failures; i++) {
		wgfleet__v1__peer_apply_error__init(&ev[i]);
		ev[i].public_key.data = (uint8_t *)r->failures[i].public_key;
		ev[i].public_key.len = WGF_KEY_LEN;
		ev[i].revision = r->applied_revision;
		ev[i].reason = (char *)r->failures[i].reason;
		rep.errors[rep.n_errors++] = &ev[i];
	}
	rep.peers = (Wgfleet__V1__PeerFacts **)(ptrs + rep.n_errors);
	for (size_t i = 0; i < r->n_facts; i++) {
		const struct monitor_fact *f = r->facts[i];

		wgfleet__v1__peer_facts__init(&fv[i]);
		fv[i].public_key.data = (uint8_t *)f->public_key;
		fv[i].public_key.len = WGF_KEY_LEN;
		fv[i].last_handshake_ms = f->last_handshake_ms;
		fv[i].rx_bytes = f->rx_bytes;
		fv[i].tx_bytes = f->tx_bytes;
		fv[i].endpoint = endpoints[i];
		if (f->flags & WGF_PEER_HAS_ENDPOINT)
			wgf_sockaddr_format((const struct sockaddr *)&f->endpoint, endpoints[i],
			                    64);
		rep.peers[rep.n_peers++] = &fv[i];
	}
	rep.drift = (Wgfleet__V1__Drift **)(ptrs + rep.n_errors + rep.n_peers);
	for (size_t i = 0; i < r->n_drift; i++) {
		wgfleet__v1__drift__init(&dv[i]);
		dv[i].public_key.data = (uint8_t *)r->drift_keys[i];
		dv[i].public_key.len = WGF_KEY_LEN;
		dv[i].kind = r->drift_kinds[i];
		rep.drift[rep.n_drift++] = &dv[i];
	}
	b.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
	b.report = &rep;
	p.body = pack_body(&b, &p.len);
	if (!p.body) {
		err = -ENOMEM;
		goto out;
	}
	if (s->n_reports == REPORTS_MAX) {
		/* The oldest queued report is the least useful: drop it. */
		free(s->reports[0].body);
		memmove(&s->reports[0], &s->reports[1], --s->n_reports * sizeof(s->reports[0]));
	}
	s->reports[s->n_reports++] = p;
	kick_work(s);
out:
	free(ev);
	free(fv);
	free(dv);
	free(ptrs);
	free(endpoints);
	return err;
}

static void handle_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	if (--s->open_handles > 0)
		return;
	for (size_t i = 0; i < s->n_reports; i++)
		free(s->reports[i].body);
	cache_state_fini(&s->desired);
	pthread_mutex_destroy(&s->mu);
	sodium_memzero(s->o.sk, sizeof(s->o.sk));
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
	s->open_handles = 4;
	s->poll.retry.data = s->work.retry.data = s;
	uv_close((uv_handle_t *)&s->async, handle_closed);
	uv_close((uv_handle_t *)&s->resync, handle_closed);
	uv_close((uv_handle_t *)&s->poll.retry, handle_closed);
	uv_close((uv_handle_t *)&s->work.retry, handle_closed);
}

void session_stop(struct session *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	uv_timer_stop(&s->resync);
	uv_timer_stop(&s->poll.retry);
	uv_timer_stop(&s->work.retry);
	s->poll.waiting_retry = s->work.waiting_retry = false;
	/* Contexts in flight complete with NNG_ECLOSED through on_async. */
	nng_close(s->sock);
	finish_stop(s);
}
