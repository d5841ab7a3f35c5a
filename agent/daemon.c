/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* daemon: the agent's loop: start-up from the cache, timers, signals and readiness. */
#define LOG_MODULE "daemon"

#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "backend.h"
#include "body.h"
#include "clock.h"
#include "identity.h"
#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "notify.h"
#include "reconcile.h"
#include "scrape.h"
#include "session.h"
#include "tls.h"

#define TLS_CHECK_MS 2000  /* how often nng's count of failed TLS handshakes is read */
#define TLS_LOG_MS   60000 /* at most one warning per URL this often */

/*
 * wireguard-go holds its configuration lock through a whole `get`, until the last peer
 * is written out, and a `set` waits for it (60 ms at 10,000 peers here, 1.2-1.9 s at
 * 50,000 under load). So whole-interface reads (the monitor's and the periodic full
 * passes') take at most 1/READ_SHARE_DIVISOR of the time: after a long read, the next
 * waits until this many times its length went by, but never more than READ_WAIT_PASSES
 * reconcile intervals; a full pass due meanwhile runs on the first read after that.
 */
#define READ_SHARE_DIVISOR 100
#define READ_WAIT_PASSES   10

struct daemon {
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t reconcile_timer, monitor_timer;
	/* Runs with tls+tcp:// URLs, to say why handshakes fail. */
	uv_timer_t tls_timer;
	uv_work_t work; /* a pass on the thread pool; the loop stays free for signals */
	struct settings s;
	const char *config_path;
	bool config_given;
	char cache_path[PATH_MAX];
	struct backend *b;
	struct reconciler *rc;
	struct monitor mon;
	/* Between a read on the thread pool (monitor_see()) and /metrics, which reads the facts. */
	uv_mutex_t mon_lock;
	/*
	 * Reads of the whole interface (the monitor's, and those of the periodic full
	 * passes) run on the thread pool through a backend of their own, one at a time, so
	 * they hold neither the loop nor the reconciler: a delta is written meanwhile.
	 */
	struct backend *reader;
	uv_work_t read_work;
	struct wgf_device read_dev; /* the read worker's while reading */
	struct wgf_device pass_dev; /* a pass's read, moved here for the pass (pass_read) */
	int read_r;
	uint64_t read_ms, read_end_ms; /* the last read's length (ms) and end (uv_now) */
	bool reading;                  /* a read runs */
	bool read_for_pass;            /* it is a full pass's */
	bool read_clean;               /* it began with no pass running: a pass may use it */
	bool read_wanted;              /* a full pass's read could not start yet */
	bool pass_due;                 /* the reconcile timer fired within the read budget */
	bool has_read_dev;             /* a pass's read is done and waits for the reconciler */
	bool read_stale; /* a whole set or a failed delta pass came since it began: unusable */
	/* Sorted: the peers deltas changed since the pass's read began (reconcile.h). */
	uint8_t (*read_skip)[WGF_KEY_LEN];
	size_t n_read_skip;
	struct session *sess; /* NULL without a coordinator */
	struct agent_metrics metrics;
	struct wgf_scrape *scrape;     /* NULL with [metrics] listen empty */
	bool coordinated;              /* [coordinator] urls is set */
	bool answered;                 /* the coordinator's first desired set came */
	bool kept_at_start;            /* the cache went in with RECONCILE_F_NO_REMOVE */
	uint8_t iface_pk[WGF_KEY_LEN]; /* the interface's own key and port, as last read */
	bool has_iface_pk;
	uint16_t iface_port;
	uint64_t applied_rev;                   /* the newest revision applied completely */
	uint8_t applied_epoch[CACHE_EPOCH_LEN]; /* the epoch it counts in */
	int ready_fd;
	bool ready;         /* readiness was signalled (after the first pass) */
	bool busy;          /* a pass runs: the backend and reconciler are the worker's */
	bool again;         /* another pass was asked for meanwhile */
	bool again_full;    /* and it must be a full one */
	bool pass_full;     /* the pass that runs (or starts) is a full one */
	bool pass_read;     /* and it runs on read_dev (reconciler_run_read) */
	bool rules_changed; /* SIGHUP came while a pass ran: static_peers, routable, adopt */
	/*
	 * What came while a pass ran, for pass_done to give the reconciler (the only owner
	 * of the desired set): a whole set (a snapshot, or the cache on SIGHUP), with any
	 * deltas since applied to it; or else the deltas alone, joined in order.
	 */
	struct cache_state pending;
	unsigned pending_flags; /* RECONCILE_F_* it was offered with */
	bool has_pending;
	struct wgf_sync_reply queued; /* changes (their IPs in queued.ips), newest revision */
	bool has_queued;
	atomic_bool cancel; /* set on stop: the pass ends at its next chunk */
	bool stopping;
	/* Loop-thread state about the interface, for saying things once. */
	bool need_ensure;    /* the interface was missing or keyless: ensure_device first */
	bool ensure_failing; /* the last ensure_device failed (logged once) */
	bool read_failing;   /* the last pass could not read the interface (logged once) */
	uint64_t warned_rev; /* refused peers are logged at warning once per revision */
	bool has_warned_rev;
	int cache_error;                 /* the last pass's cache write: 0 or a negative errno */
	char cache_msg[WGF_ERR_MSG_MAX]; /* its message, for the reports */
	uint64_t cache_failures;         /* passes that could not write the cache */
	/* The unknown peers as last reported: a digest (zeros: none), and when (uv_now). */
	uint8_t (*released)[WGF_KEY_LEN]; /* owned: the keys released, as the coordinator said */
	size_t n_released;
	uint8_t unknown_digest[crypto_generichash_BYTES];
	uint64_t unknown_sent_ms;
	bool unknown_sent;
	/* Per URL: failed TLS dials as last logged, and when (uv_now). */
	struct wgf_tls_dial_failures tls_failures[SESSION_URLS_MAX];
	uint64_t tls_logged_ms[SESSION_URLS_MAX];
	/* Written by the worker, read by pass_done. */
	struct pass_out {
		bool ensured; /* ensure_device ran */
		int ensure_r;
		struct wgf_err ensure_err;
		bool ran;   /* reconciler_run or reconciler_run_changes ran */
		bool delta; /* the latter, which read nothing */
		int run_r;
		struct wgf_err run_err;
		struct reconcile_result res;
		uint64_t ms;
	} out;
};

static void log_change(void *userdata, char op, const struct wgf_peer *desired,
                       const struct wgf_peer *actual)
{
	const struct wgf_peer *p = desired ? desired : actual;
	char key[WGF_KEY_B64_LEN], ips[SYNC_IPS_STRLEN];
	static const char *const what[] = {"Adding peer", "Updating peer", "Removing peer"};

	(void)userdata;
	if (!wgf_log_enabled(LOG_DEBUG))
		return;
	wgf_key_to_base64(key, p->public_key);
	sync_format_allowed_ips(p, ips, sizeof(ips));
	log_fields(LOG_DEBUG,
	           what[op == '+'   ? 0
	                : op == '~' ? 1
	                            : 2],
	           {"peer", key}, {"allowed_ips", ips});
}

/*
 * Per-peer lines are capped per pass: a wireguard-go restarted empty under 10,000
 * peers is 10,000 drifted peers, and the counts in "Reconciled" say the rest.
 */
#define PEER_LINES_MAX 20

/* delta: reconciler_run_changes() made res (it read nothing), else a full pass. */
static void log_result(struct daemon *d, const struct reconcile_result *res, bool delta,
                       uint64_t ms)
{
	char rev[24], n[10][24], key[WGF_KEY_B64_LEN], other[WGF_KEY_B64_LEN], msbuf[24];
	bool first = !d->has_warned_rev || d->warned_rev != res->revision;

	for (size_t i = 0; i < res->n_failed && i < PEER_LINES_MAX; i++) {
		const struct reconcile_failure *f = &res->failed[i];
		int level = first ? LOG_WARNING : LOG_DEBUG;

		wgf_key_to_base64(key, f->public_key);
		/* The same refusal every pass would drown the log: loud once per revision. */
		if (!f->has_other) {
			log_fields(level, "Peer refused, skipping it", {"peer", key},
			           {"reason", f->reason});
			continue;
		}
		/* The reason (which the tenant sees) leaves the other peer out; our log has it. */
		wgf_key_to_base64(other, f->other_key);
		log_fields(level, "Peer refused, skipping it", {"peer", key}, {"reason", f->reason},
		           {"other_peer", other});
	}
	if (res->n_failed > PEER_LINES_MAX)
		log_full(first ? LOG_WARNING : LOG_DEBUG, "%zu more peers refused, not listed",
		         res->n_failed - PEER_LINES_MAX);
	d->warned_rev = res->revision;
	d->has_warned_rev = true;
	for (size_t i = 0; i < res->n_drift && i < PEER_LINES_MAX; i++) {
		wgf_key_to_base64(key, res->drift[i].public_key);
		log_fields(LOG_NOTICE, "Drift repaired: peer changed outside the agent",
		           {"peer", key},
		           {"drift", reconcile_drift_kind_to_string(res->drift[i].kind)});
	}
	if (res->n_drift > PEER_LINES_MAX)
		log_notice("Drift repaired on %zu more peers, not listed",
		           res->n_drift - PEER_LINES_MAX);
	snprintf(rev, sizeof(rev), "%" PRIu64, res->revision);
	snprintf(n[0], sizeof(n[0]), "%zu", res->n_added);
	snprintf(n[1], sizeof(n[1]), "%zu", res->n_updated);
	snprintf(n[2], sizeof(n[2]), "%zu", res->n_removed);
	snprintf(n[3], sizeof(n[3]), "%zu", res->n_unchanged);
	snprintf(n[4], sizeof(n[4]), "%zu", res->n_static);
	snprintf(n[5], sizeof(n[5]), "%zu", res->n_failed);
	snprintf(n[6], sizeof(n[6]), "%zu", res->n_drift);
	snprintf(n[7], sizeof(n[7]), "%zu", res->n_pending);
	snprintf(n[8], sizeof(n[8]), "%zu", res->n_kept);
	snprintf(n[9], sizeof(n[9]), "%zu", res->n_held);
	snprintf(msbuf, sizeof(msbuf), "%" PRIu64, ms);
	log_fields(res->n_added + res->n_updated + res->n_removed ? LOG_INFO : LOG_DEBUG,
	           "Reconciled", {"revision", rev}, {"added", n[0]}, {"updated", n[1]},
	           {"removed", n[2]}, {"unchanged", n[3]}, {"static", n[4]}, {"refused", n[5]},
	           {"drift", n[6]}, {"pending", n[7]}, {"kept", n[8]}, {"held", n[9]},
	           {"pass", delta ? "delta" : "full"}, {"ms", msbuf});
	if (res->apply_error < 0) {
		log_errno(LOG_ERR, res->apply_error,
		          "Failed to apply the changes to '%s', retrying in %" PRIu64 " ms",
		          d->s.interface, d->s.reconcile_interval_ms);
		backend_say_limit(d->b, res->apply_error, res->n_desired);
	} else if (res->n_pending)
		log_warning("Interface '%s' still differs after applying (%zu changes), retrying "
		            "in %" PRIu64 " ms",
		            d->s.interface, res->n_pending, d->s.reconcile_interval_ms);
}

/*
 * The cache's state, said once per change. A write that failed is tried again every
 * pass; meanwhile a restart starts from an older set, which removes nothing until the
 * coordinator answers. The count shows in the periodic "Interface facts" line.
 */
static void say_cache(struct daemon *d, const struct reconcile_result *res)
{
	if (res->cache.code < 0) {
		d->cache_failures++;
		if (res->cache.code != d->cache_error)
			log_error("Cannot write the desired-state cache, retrying every pass: %s",
			          res->cache.msg);
	} else if (d->cache_error < 0) {
		log_notice("The desired-state cache is written again");
	}
	d->cache_error = res->cache.code;
	snprintf(d->cache_msg, sizeof(d->cache_msg), "%s",
	         res->cache.code < 0 ? res->cache.msg : "");
	/* The report carries it as a proto3 string: a path cut short may not be UTF-8. */
	for (char *c = d->cache_msg; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
}

static void ensure_work(struct daemon *d, struct pass_out *o)
{
	struct backend_device_cfg cfg;
	char key_path[PATH_MAX];

	settings_device_cfg(&d->s, &cfg, key_path, sizeof(key_path));
	o->ensured = true;
	o->ensure_r = d->b->ops->ensure_device(d->b, &cfg, &o->ensure_err);
}

/*
 * On the thread pool: set the interface up if needed, then one reconcile pass. Only
 * the backend and the reconciler are touched (the loop thread leaves them alone while
 * d->busy), and what happened goes to d->out for pass_done to say.
 */
static void pass_work(uv_work_t *req)
{
	struct daemon *d = req->data;
	struct pass_out *o = &d->out;
	uint64_t start = wgf_clock_mono_ms();

	memset(o, 0, sizeof(*o));
	if (d->need_ensure) {
		ensure_work(d, o);
		if (o->ensure_r < 0)
			return;
	}
	if (!reconciler_has_desired(d->rc)) {
		wgf_device_fini(&d->pass_dev);
		return;
	}
	o->ran = true;
	/* Deltas alone write just their peers, unless only a full pass will do. */
	if (d->pass_read)
		o->run_r = reconciler_run_read(d->rc, &d->pass_dev,
		                               (const uint8_t(*)[WGF_KEY_LEN])d->read_skip,
		                               d->n_read_skip, log_change, d, &o->res, &o->run_err);
	else
		o->run_r = d->pass_full ? -EAGAIN
		                        : reconciler_run_changes(d->rc, log_change, d, &o->res,
		                                                 &o->run_err);
	o->delta = !d->pass_read && !d->pass_full && o->run_r == 0;
	if (o->run_r == -EAGAIN)
		o->run_r = reconciler_run(d->rc, false, log_change, d, &o->res, &o->run_err);
	o->ms = wgf_clock_mono_ms() - start;
	/* A daemon restarted behind our back comes back without a key. */
	if (o->run_r == 0 && !o->res.has_public_key && !o->ensured)
		ensure_work(d, o);
}

static void say_ensure(struct daemon *d, const struct pass_out *o)
{
	if (!o->ensured)
		return;
	agent_metrics_ensure(&d->metrics, o->ensure_r);
	if (o->ensure_r < 0) {
		if (!d->ensure_failing)
			log_warning("Cannot set up interface '%s', retrying in %" PRIu64 " ms: %s",
			            d->s.interface, d->s.reconcile_interval_ms, o->ensure_err.msg);
		d->ensure_failing = true;
		d->need_ensure = true;
		return;
	}
	log_fields(LOG_INFO, "Interface ready", {"interface", d->s.interface},
	           {"backend", d->b->ops->name});
	d->ensure_failing = false;
	d->need_ensure = false;
}

/* Queues a report to the coordinator; the session sends it when it can. */
static void send_report(struct daemon *d, struct session_report *rep)
{
	int r;

	rep->applied_revision = d->applied_rev;
	rep->epoch = d->applied_epoch;
	rep->interface_public_key = d->has_iface_pk ? d->iface_pk : NULL;
	rep->listen_port = d->iface_port;
	rep->cache_error = d->cache_error < 0 ? d->cache_msg : NULL;
	r = session_report(d->sess, rep);
	if (r < 0)
		log_errno(LOG_WARNING, r, "Cannot queue a report, skipping it");
}

/* The unknown peers' keys and allowed IPs (not their handshakes), or zeros for none. */
static void unknown_digest(const struct reconcile_result *res,
                           uint8_t out[static crypto_generichash_BYTES])
{
	crypto_generichash_state st;
	uint64_t total = res->n_unknown_total;

	memset(out, 0, crypto_generichash_BYTES);
	if (total == 0)
		return;
	crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)&total, sizeof(total));
	for (size_t i = 0; i < res->n_unknown; i++) {
		const struct wgf_unknown_peer *u = &res->unknown[i];

		crypto_generichash_update(&st, u->public_key, WGF_KEY_LEN);
		for (unsigned j = 0; j < u->n_allowed_ips; j++) {
			char c[WGF_CIDR_STRLEN];

			wgf_cidr_format(&u->allowed_ips[j], c);
			crypto_generichash_update(&st, (const uint8_t *)c, strlen(c) + 1);
		}
		crypto_generichash_update(&st, (const uint8_t *)"", 1);
	}
	crypto_generichash_final(&st, out, crypto_generichash_BYTES);
}

/*
 * A full pass's unknown peers (none without adopt mode) go in its report when they
 * changed (so an agent that leaves adopt mode says the list is empty once), and in
 * adopt mode also once every [monitor] full_interval, with their handshakes and
 * endpoints as they are then.
 */
static void add_unknown(struct daemon *d, const struct reconcile_result *res,
                        struct session_report *rep)
{
	uint8_t digest[crypto_generichash_BYTES];
	uint64_t now = uv_now(&d->loop);
	bool changed;

	unknown_digest(res, digest);
	changed = memcmp(digest, d->unknown_digest, sizeof(digest)) != 0;
	if (!changed &&
	    !(d->s.adopt &&
	      (!d->unknown_sent || now - d->unknown_sent_ms >= d->s.monitor_full_interval_ms)))
		return;
	if (changed) {
		char n[24];

		snprintf(n, sizeof(n), "%zu", res->n_unknown_total);
		log_fields(LOG_NOTICE, "Unknown peers kept (adopt mode)", {"peers", n});
	}
	memcpy(d->unknown_digest, digest, sizeof(digest));
	d->unknown_sent_ms = now;
	d->unknown_sent = true;
	rep->has_unknown = true;
	rep->unknown = res->unknown;
	rep->n_unknown = res->n_unknown;
	rep->n_unknown_total = res->n_unknown_total;
}

/*
 * After a complete pass: the revision is applied, with its refusals and the drift; a
 * full one also says what it found of unknown peers.
 */
static void report_pass(struct daemon *d, const struct reconcile_result *res)
{
	struct session_failure *fails;
	uint8_t(*keys)[WGF_KEY_LEN];
	int *kinds;
	struct session_report rep = {0};

	/* A pass that kept peers the set lacks applied no revision exactly. */
	if (!d->sess || res->apply_error < 0 || res->n_pending > 0 || res->n_kept > 0 ||
	    res->n_held > 0)
		return;
	d->applied_rev = res->revision;
	memcpy(d->applied_epoch, res->epoch, CACHE_EPOCH_LEN);
	fails = calloc(res->n_failed + 1, sizeof(*fails));
	keys = calloc(res->n_drift + 1, sizeof(*keys));
	kinds = calloc(res->n_drift + 1, sizeof(*kinds));
	if (fails && keys && kinds) {
		for (size_t i = 0; i < res->n_failed; i++) {
			memcpy(fails[i].public_key, res->failed[i].public_key, WGF_KEY_LEN);
			snprintf(fails[i].reason, sizeof(fails[i].reason), "%.127s",
			         res->failed[i].reason);
		}
		for (size_t i = 0; i < res->n_drift; i++) {
			memcpy(keys[i], res->drift[i].public_key, WGF_KEY_LEN);
			/* Proto Drift.Kind: 1 extra, 2 missing, 3 changed. */
			kinds[i] = res->drift[i].kind == RECONCILE_DRIFT_ADDED     ? 1
			           : res->drift[i].kind == RECONCILE_DRIFT_REMOVED ? 2
			                                                           : 3;
		}
		rep.failures = fails;
		rep.n_failures = res->n_failed;
		rep.drift_keys = (const uint8_t(*)[WGF_KEY_LEN])keys;
		rep.drift_kinds = kinds;
		rep.n_drift = res->n_drift;
		if (res->has_unknown)
			add_unknown(d, res, &rep);
		send_report(d, &rep);
	} else {
		log_warning("Out of memory for a report, skipping it");
	}
	free(fails);
	free(keys);
	free(kinds);
}

/* What the monitor saw, for the coordinator: changed peers, or all of them. */
static void report_facts(struct daemon *d, const struct monitor_report *mrep)
{
	const struct monitor_fact **facts;
	struct session_report rep = {0};

	if (!d->sess || (mrep->n_changes == 0 && !mrep->full))
		return;
	facts = calloc(mrep->n_changes + 1, sizeof(*facts));
	if (!facts)
		return;
	for (size_t i = 0; i < mrep->n_changes; i++)
		facts[i] = &d->mon.facts[mrep->changes[i].fact];
	rep.facts = facts;
	rep.n_facts = mrep->n_changes;
	send_report(d, &rep);
	free(facts);
}

static void on_session_desired(void *ctx, struct cache_state *st)
{
	struct daemon *d = ctx;
	int r;

	/*
	 * The session starts from revision 0, so its first set is a snapshot, which is
	 * always taken: from here on passes remove what the set lacks.
	 */
	if (!d->answered && d->kept_at_start)
		log_info("The coordinator answered: peers it does not want are removed again");
	d->answered = true;
	r = daemon_set_desired(d, st, RECONCILE_F_FORCE);
	if (r < 0)
		log_errno(LOG_ERR, r, "Cannot take the coordinator's desired set");
}

static void queued_fini(struct daemon *d)
{
	free(d->queued.changes);
	free(d->queued.routable);
	wgf_ip_pool_fini(&d->queued.ips);
	memset(&d->queued, 0, sizeof(d->queued));
	d->has_queued = false;
}

/* Keeps deltas that came while a pass ran, after those kept already. -ENOMEM. */
static int queue_deltas(struct daemon *d, const struct wgf_sync_reply *r)
{
	struct wgf_sync_reply *q = &d->queued;
	struct wgf_change *grown =
	        reallocarray(q->changes, q->n_changes + r->n_changes + 1, sizeof(*grown));
	struct wgf_cidr *routable = malloc((r->n_routable + 1) * sizeof(*routable));
	size_t n_ips = 0;

	for (size_t i = 0; i < r->n_changes; i++)
		n_ips += r->changes[i].peer.n_allowed_ips;
	if (grown)
		q->changes = grown;
	if (!grown || !routable || wgf_ip_pool_reserve(&q->ips, n_ips) < 0) {
		free(routable);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->n_changes; i++) {
		q->changes[q->n_changes] = r->changes[i];
		(void)wgf_ip_pool_take(&q->ips, &q->changes[q->n_changes++].peer); /* reserved */
	}
	memcpy(routable, r->routable, r->n_routable * sizeof(*routable));
	free(q->routable);
	q->routable = routable;
	q->n_routable = r->n_routable;
	q->revision = r->revision;
	memcpy(q->epoch, r->epoch, WGF_EPOCH_LEN);
	d->has_queued = true;
	return 0;
}

static void request_pass(struct daemon *d, bool full);

/* The released keys (adopt mode) with a report's answer: a change means a full pass. */
static void on_session_released(void *ctx, const uint8_t (*keys)[WGF_KEY_LEN], size_t n)
{
	struct daemon *d = ctx;
	uint8_t(*copy)[WGF_KEY_LEN];
	char count[24];

	if (n == d->n_released && (n == 0 || memcmp(keys, d->released, n * WGF_KEY_LEN) == 0))
		return;
	copy = malloc((n + 1) * WGF_KEY_LEN);
	if (!copy) {
		log_warning("Out of memory for the released peers, ignoring them until the next "
		            "report");
		return;
	}
	if (n)
		memcpy(copy, keys, n * WGF_KEY_LEN);
	free(d->released);
	d->released = copy;
	d->n_released = n;
	snprintf(count, sizeof(count), "%zu", n);
	log_fields(LOG_INFO, "Released peers", {"peers", count});
	if (d->busy) {
		d->rules_changed = true;
	} else if (reconciler_set_released(d->rc, (const uint8_t(*)[WGF_KEY_LEN])copy, n) < 0) {
		log_error("Out of memory for the released peers, keeping the old list");
		return;
	}
	request_pass(d, true);
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, WGF_KEY_LEN);
}

/*
 * While a full pass's read runs or waits, remembers the keys r changes (sorted, each
 * once): the pass must not judge them by that read. Without memory the read is dropped.
 */
static void skip_for_read(struct daemon *d, const struct wgf_sync_reply *r)
{
	uint8_t(*grown)[WGF_KEY_LEN];
	size_t n = d->n_read_skip, k = 0;

	if (!(d->reading && d->read_clean) && !d->has_read_dev)
		return;
	grown = reallocarray(d->read_skip, n + r->n_changes + 1, WGF_KEY_LEN);
	if (!grown) {
		d->read_stale = true;
		return;
	}
	d->read_skip = grown;
	for (size_t i = 0; i < r->n_changes; i++)
		memcpy(grown[n++], r->changes[i].peer.public_key, WGF_KEY_LEN);
	qsort(grown, n, WGF_KEY_LEN, cmp_key);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || memcmp(grown[k - 1], grown[i], WGF_KEY_LEN) != 0)
			memmove(grown[k++], grown[i], WGF_KEY_LEN);
	d->n_read_skip = k;
}

/* Gives deltas to the reconciler and asks for a pass when they changed the set. */
static int take_deltas(struct daemon *d, const struct wgf_sync_reply *r)
{
	char rev[24];
	int res;

	skip_for_read(d, r);
	res = reconciler_apply(d->rc, r);

	if (res < 0)
		return log_errno(LOG_ERR, res,
		                 "Cannot apply the coordinator's deltas, asking for "
		                 "a snapshot");
	if (res == 0)
		return 0;
	snprintf(rev, sizeof(rev), "%" PRIu64, reconciler_revision(d->rc));
	log_fields(LOG_INFO, "New desired state", {"revision", rev});
	request_pass(d, false);
	return 0;
}

static int on_session_deltas(void *ctx, const struct wgf_sync_reply *r)
{
	struct daemon *d = ctx;
	int res;

	if (!d->busy)
		return take_deltas(d, r);
	/* The reconciler is the worker's until pass_done. */
	res = d->has_pending && !d->has_queued && cache_state_follows(&d->pending, r)
	              ? cache_state_apply(&d->pending, r)
	              : queue_deltas(d, r);
	if (res < 0)
		log_errno(LOG_ERR, res,
		          "Cannot keep the coordinator's deltas, asking for a "
		          "snapshot");
	return res;
}

/* Says why dials of url fail, from what grew since the last line; false if nothing did. */
static bool log_tls_failures(struct daemon *d, const char *url,
                             const struct wgf_tls_dial_failures *last,
                             const struct wgf_tls_dial_failures *now)
{
	char count[24], host[WGF_TLS_HOST_MAX];
	struct wgf_tls_files f;

	settings_tls_files(&d->s, url, &f, host, sizeof(host));
	if (now->handshake > last->handshake) {
		snprintf(count, sizeof(count), "%" PRIu64, now->handshake - last->handshake);
		log_fields(LOG_WARNING, "TLS handshake with the coordinator failed, retrying",
		           {"url", url}, {"failures", count},
		           {"reason", "certificate verification failed (not signed by a CA of "
		                      "tls_ca_file, expired, or not issued for server_name), or "
		                      "the handshake was refused"},
		           {"server_name", f.server_name}, {"tls_ca_file", f.ca_file});
		return true;
	}
	if (now->other > last->other) {
		snprintf(count, sizeof(count), "%" PRIu64, now->other - last->other);
		log_fields(LOG_WARNING, "Cannot connect to the coordinator, retrying", {"url", url},
		           {"failures", count},
		           {"reason", "closed during the TLS handshake (a coordinator with "
		                      "tls_client_ca_file wants a certificate its CA signed, in "
		                      "tls_cert_file), or the name did not resolve, or no route"},
		           {"tls_cert_file", f.cert_file[0] ? f.cert_file : "(none)"});
		return true;
	}
	return false;
}

/*
 * nng redials the coordinators by itself and tells us nothing of a dial that failed, so
 * a coordinator whose certificate does not verify would look like one that never
 * answers. nng counts failed dials: say why when those counts grow (at once, then at
 * most once a TLS_LOG_MS per URL).
 */
static void on_tls_timer(uv_timer_t *t)
{
	struct daemon *d = t->data;
	char buf[sizeof(d->s.coordinator_urls)];
	const char *urls[SESSION_URLS_MAX];
	size_t n = settings_coordinator_urls(&d->s, buf, sizeof(buf), urls, SESSION_URLS_MAX);
	uint64_t now = uv_now(t->loop);

	for (size_t i = 0; i < n; i++) {
		struct wgf_tls_dial_failures f;

		if ((d->tls_logged_ms[i] && now - d->tls_logged_ms[i] < TLS_LOG_MS) ||
		    session_dial_failures(d->sess, i, &f) < 0 ||
		    !log_tls_failures(d, urls[i], &d->tls_failures[i], &f))
			continue;
		d->tls_failures[i] = f;
		d->tls_logged_ms[i] = now;
	}
}

static void free_tls(struct session_options *o)
{
	for (size_t i = 0; i < o->n_urls; i++) {
		wgf_tls_config_free(o->tls[i]);
		o->tls[i] = NULL;
	}
}

/* A TLS configuration for each tls+tcp:// URL (their server names may differ). */
static int session_tls(const struct settings *s, struct session_options *o)
{
	for (size_t i = 0; i < o->n_urls; i++) {
		char host[WGF_TLS_HOST_MAX];
		struct wgf_err err = {0};
		struct wgf_tls_files f;
		int r;

		if (!wgf_tls_url_is_tls(o->urls[i]))
			continue;
		settings_tls_files(s, o->urls[i], &f, host, sizeof(host));
		r = wgf_tls_config_new(WGF_TLS_CLIENT, &f, &o->tls[i], &err);
		if (r < 0) {
			free_tls(o);
			return log_errno(LOG_ERR, r, "Cannot set up TLS for '%s': %s", o->urls[i],
			                 err.msg);
		}
	}
	return 0;
}

/* Dials the coordinators when [coordinator] urls is set. */
static int start_session(struct daemon *d)
{
	struct session_callbacks cb = {.desired = on_session_desired,
	                               .deltas = on_session_deltas,
	                               .released = on_session_released};
	struct session_options o = {
	        .server = d->s.server,
	        .resync_ms = d->s.resync_interval_ms,
	        .request_timeout_ms = d->s.request_timeout_ms,
	        .poll_wait_ms = d->s.poll_wait_ms,
	        .max_skew_ms = d->s.max_clock_skew_ms,
	};
	char urls[sizeof(d->s.coordinator_urls)], path[PATH_MAX];
	struct wgf_identity id;
	struct wgf_err err = {0};
	int r;

	o.n_urls = settings_coordinator_urls(&d->s, urls, sizeof(urls), o.urls, SESSION_URLS_MAX);
	if (o.n_urls == 0)
		return 0;
	if (!d->s.server[0] || !d->s.coordinator_public_key[0])
		return log_errno(LOG_ERR, -EINVAL,
		                 "[coordinator] urls needs server and public_key as well");
	o.n_coordinator_pk =
	        settings_coordinator_keys(&d->s, o.coordinator_pk, SESSION_COORD_KEYS_MAX);
	settings_signing_key_path(&d->s, path, sizeof(path));
	r = wgf_identity_load(&id, path, &err);
	if (r < 0)
		return log_errno(LOG_ERR, r,
		                 "Cannot load the signing key (run 'wgfleet-agent init'): %s",
		                 err.msg);
	r = session_tls(&d->s, &o);
	if (r < 0)
		return r;
	memcpy(o.sk, id.sk, sizeof(o.sk));
	wgf_identity_fini(&id);
	r = session_start(&d->loop, &o, &cb, d, NULL, &d->sess);
	sodium_memzero(o.sk, sizeof(o.sk));
	free_tls(&o);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot dial the coordinators");
	if (wgf_tls_url_is_tls(o.urls[0]))
		uv_timer_start(&d->tls_timer, on_tls_timer, TLS_CHECK_MS, TLS_CHECK_MS);
	log_fields(LOG_NOTICE, "Dialing the coordinators", {"urls", d->s.coordinator_urls},
	           {"server", d->s.server});
	return 0;
}

static void say_pass(struct daemon *d, struct pass_out *o)
{
	if (!o->ran)
		return;
	agent_metrics_pass(&d->metrics, o->run_r, &o->res, o->ms);
	if (o->run_r < 0) {
		if (o->run_r == -ENODEV)
			d->need_ensure = true;
		if (!d->read_failing)
			log_warning("%s, retrying in %" PRIu64 " ms", o->run_err.msg,
			            d->s.reconcile_interval_ms);
		d->read_failing = true;
		return;
	}
	if (d->read_failing)
		log_info("Interface '%s' is readable again", d->s.interface);
	d->read_failing = false;
	if (o->res.apply_error != -ECANCELED)
		log_result(d, &o->res, o->delta, o->ms);
	say_cache(d, &o->res);
	report_pass(d, &o->res);
	reconcile_result_fini(&o->res);
}

static void apply_rules(struct daemon *d);
static void signal_ready(struct daemon *d);

static void start_read(struct daemon *d, bool for_pass);
static void start_read_pass(struct daemon *d);
static void want_pass_read(struct daemon *d);

/* With no pass running: the full pass on a finished read, or the read one waits for. */
static void next_read_step(struct daemon *d)
{
	if (d->busy)
		return;
	if (d->has_read_dev) {
		start_read_pass(d);
	} else if (d->read_wanted) {
		d->read_wanted = false;
		want_pass_read(d);
	}
}

static void pass_done(uv_work_t *req, int status)
{
	struct daemon *d = req->data;
	/* A delta pass that could not write its peers leaves the truth to a full one, now. */
	bool refull = d->out.ran && d->out.delta && d->out.res.apply_error < 0;

	(void)status; /* never cancelled: stop() lets a pass end at a chunk boundary */
	d->busy = false;
	if (d->pass_read) {
		d->pass_read = false;
		d->n_read_skip = 0;
	}
	if (refull)
		d->read_stale = true;
	say_ensure(d, &d->out);
	say_pass(d, &d->out);
	if (d->stopping)
		return;
	if (!d->ready)
		signal_ready(d);
	if (d->rules_changed) {
		d->rules_changed = false;
		apply_rules(d);
	}
	if (d->has_pending) {
		d->has_pending = false;
		(void)daemon_set_desired(d, &d->pending, d->pending_flags);
		cache_state_fini(&d->pending);
	}
	if (d->has_queued) {
		if (take_deltas(d, &d->queued) < 0)
			session_resync(d->sess);
		queued_fini(d);
	}
	if (refull)
		request_pass(d, true);
	if (d->again) {
		d->again = false;
		request_pass(d, d->again_full);
	}
	/* Deltas first: a pass's read waits for the passes asked for before it. */
	next_read_step(d);
}

/*
 * Starts a pass on the thread pool, or asks for one after the pass that runs. full: a
 * whole-interface pass (the timer, a whole set); else a delta pass if it can be one.
 */
static void request_pass(struct daemon *d, bool full)
{
	int r;

	if (d->stopping)
		return;
	if (d->busy) {
		d->again_full = d->again ? d->again_full || full : full;
		d->again = true;
		return;
	}
	d->pass_full = full;
	d->work.data = d;
	r = uv_queue_work(&d->loop, &d->work, pass_work, pass_done);
	if (r < 0) {
		log_errno(LOG_ERR, r, "Cannot start a pass, retrying in %" PRIu64 " ms",
		          d->s.reconcile_interval_ms);
		return;
	}
	d->busy = true;
}

/* The last read was long: the next waits (READ_SHARE_DIVISOR). */
static bool read_budget_spent(struct daemon *d)
{
	uint64_t wait = d->read_ms * READ_SHARE_DIVISOR;

	if (wait > READ_WAIT_PASSES * d->s.reconcile_interval_ms)
		wait = READ_WAIT_PASSES * d->s.reconcile_interval_ms;
	return d->read_end_ms && uv_now(&d->loop) - d->read_end_ms < wait;
}

/*
 * A periodic full pass is due: on the read that runs if a pass may use it, else on the
 * next one the budget allows (the monitor's tick starts it).
 */
static void want_pass_read(struct daemon *d)
{
	if (d->reading && d->read_clean) {
		d->read_for_pass = true;
		return;
	}
	if (d->reading || read_budget_spent(d)) {
		d->pass_due = true;
		return;
	}
	start_read(d, true);
}

static void on_reconcile_timer(uv_timer_t *t)
{
	struct daemon *d = t->data;

	/* Setting the interface up, and a first set, are passes that read for themselves. */
	if (d->need_ensure || !reconciler_has_desired(d->rc))
		request_pass(d, true);
	else
		want_pass_read(d);
}

/*
 * A pass's read is done: the full pass runs on it, unless it went stale meanwhile (a
 * whole set, or a delta pass that failed, each asked for a pass that reads for itself).
 */
static void start_read_pass(struct daemon *d)
{
	d->has_read_dev = false;
	if (d->stopping || d->read_stale || d->need_ensure) {
		wgf_device_fini(&d->read_dev);
		d->n_read_skip = 0;
		return;
	}
	if (d->n_read_skip)
		log_debug("Full pass on a read that deltas overlapped: %zu peers left to the next "
		          "pass",
		          d->n_read_skip);
	d->pass_dev = d->read_dev;
	memset(&d->read_dev, 0, sizeof(d->read_dev));
	d->pass_read = true;
	request_pass(d, true);
	if (!d->busy) {
		/* It could not start: the next timer tick reads again. */
		d->pass_read = false;
		d->n_read_skip = 0;
		wgf_device_fini(&d->pass_dev);
	}
}

/*
 * What the monitor saw. The coordinator channel (a later issue) will report it; until
 * then it is logged: each new handshake at debug, a summary with every full set.
 */
static void monitor_report(struct daemon *d, const struct monitor_report *rep)
{
	char key[WGF_KEY_B64_LEN], peers[24], recent[24], changed[24], gone[24], cache[24];

	for (size_t i = 0; i < rep->n_changes && wgf_log_enabled(LOG_DEBUG); i++) {
		const struct monitor_fact *f = &d->mon.facts[rep->changes[i].fact];

		if (!(rep->changes[i].what & MONITOR_CHANGED_HANDSHAKE) || !f->last_handshake_ms)
			continue;
		wgf_key_to_base64(key, f->public_key);
		log_fields(LOG_DEBUG, "Handshake", {"peer", key});
	}
	snprintf(peers, sizeof(peers), "%zu", rep->n_peers);
	snprintf(recent, sizeof(recent), "%zu", rep->n_recent);
	snprintf(changed, sizeof(changed), "%zu", rep->n_changes);
	snprintf(gone, sizeof(gone), "%zu", rep->n_gone);
	snprintf(cache, sizeof(cache), "%" PRIu64, d->cache_failures);
	log_fields(rep->full ? LOG_INFO : LOG_DEBUG,
	           rep->full ? "Interface facts" : "Peers changed", {"peers", peers},
	           {"connected", recent}, {"changed", changed}, {"gone", gone},
	           {"cache_failures", cache});
}

/* What a read says of the interface: its key and port, and the facts for the monitor. */
static void take_facts(struct daemon *d, const struct wgf_device *dev)
{
	struct monitor_report rep;
	int r;

	if (dev->flags & WGF_DEVICE_HAS_PUBLIC_KEY) {
		memcpy(d->iface_pk, dev->public_key, WGF_KEY_LEN);
		d->has_iface_pk = true;
	}
	if (dev->flags & WGF_DEVICE_HAS_LISTEN_PORT)
		d->iface_port = dev->listen_port;
	if (dev->see)
		r = monitor_end(&d->mon, uv_now(&d->loop), &rep);
	else
		r = monitor_update(&d->mon, dev, uv_now(&d->loop), (int64_t)wgf_clock_wall_ms(),
		                   &rep);
	if (r < 0) {
		log_errno(LOG_WARNING, r, "Monitor skipped a read");
		return;
	}
	monitor_report(d, &rep);
	report_facts(d, &rep);
	monitor_report_fini(&rep);
}

/* On the thread pool, from the reader: one peer of the monitor's read. */
static void see_peer(void *ctx, const struct wgf_peer *peer, const struct wgf_peer_seen *seen)
{
	struct daemon *d = ctx;

	uv_mutex_lock(&d->mon_lock);
	monitor_see(&d->mon, peer, seen);
	uv_mutex_unlock(&d->mon_lock);
}

/* A read that will not reach take_facts(): the monitor forgets it (none runs now). */
static void drop_read(struct daemon *d)
{
	if (d->read_dev.see)
		monitor_abort(&d->mon);
	wgf_device_fini(&d->read_dev);
}

/* On the thread pool: only the reader backend, read_* and (under mon_lock) the monitor. */
static void read_work(uv_work_t *req)
{
	struct daemon *d = req->data;
	uint64_t start = wgf_clock_mono_ms();

	d->read_r = d->reader->ops->get_device(d->reader, &d->read_dev);
	d->read_ms = wgf_clock_mono_ms() - start;
}

static void read_done(uv_work_t *req, int status)
{
	struct daemon *d = req->data;

	d->reading = false;
	uv_update_time(&d->loop);
	d->read_end_ms = uv_now(&d->loop);
	if (status < 0 || d->stopping) {
		drop_read(d);
		return;
	}
	if (d->read_r < 0) {
		/* A pass says what is wrong with the interface: one that reads for itself. */
		log_debug("Cannot read '%s': %s", d->s.interface, wgf_strerror(d->read_r));
		drop_read(d);
		if (d->read_for_pass)
			request_pass(d, true);
	} else {
		take_facts(d, &d->read_dev);
		if (d->read_for_pass)
			d->has_read_dev = true;
		else
			wgf_device_fini(&d->read_dev);
	}
	next_read_step(d);
}

/*
 * Reads the whole interface on the thread pool. for_pass: a periodic full pass runs on
 * the read; it starts only when no pass runs, so every delta handed over before it has
 * been written (reconciler_run_read).
 */
static void start_read(struct daemon *d, bool for_pass)
{
	int r;

	if (d->stopping)
		return;
	if (d->reading || d->has_read_dev || (for_pass && d->busy)) {
		d->read_wanted = d->read_wanted || for_pass;
		return;
	}
	memset(&d->read_dev, 0, sizeof(d->read_dev));
	d->pass_due = d->pass_due && !for_pass;
	d->read_for_pass = for_pass;
	d->read_clean = !d->busy;
	d->read_stale = false;
	d->n_read_skip = 0;
	/*
	 * A pass needs what was seen only to describe unknown peers, which only adopt mode
	 * keeps: without it, each peer's facts go to the monitor as the read comes, and a
	 * read never holds them all.
	 */
	if (!d->s.adopt) {
		d->read_dev.see = see_peer;
		d->read_dev.see_ctx = d;
		monitor_begin(&d->mon, (int64_t)wgf_clock_wall_ms());
	}
	d->read_work.data = d;
	r = uv_queue_work(&d->loop, &d->read_work, read_work, read_done);
	if (r < 0) {
		log_errno(LOG_WARNING, r, "Cannot start a read of '%s', skipping it",
		          d->s.interface);
		drop_read(d);
		return;
	}
	d->reading = true;
}

static void on_monitor_timer(uv_timer_t *t)
{
	struct daemon *d = t->data;

	/* A whole set's pass reads for itself; the facts can wait for it. */
	if (d->reading || (d->busy && d->pass_full && !d->pass_read) || read_budget_spent(d))
		return;
	start_read(d, d->pass_due);
}

int daemon_set_desired(struct daemon *d, struct cache_state *st, unsigned flags)
{
	char rev[24];
	int r;

	/* A pass's read taken before a whole set is not one the set's pass may use. */
	d->read_stale = true;
	if (d->busy) {
		/* The reconciler is the worker's: keep the newest offer for pass_done (an
		 * authoritative one always replaces what was kept). */
		if (!(flags & RECONCILE_F_FORCE) &&
		    ((d->has_pending && st->revision <= d->pending.revision) ||
		     (reconciler_has_desired(d->rc) && st->revision <= reconciler_revision(d->rc))))
			return 0;
		cache_state_fini(&d->pending);
		queued_fini(d); /* a whole set replaces the deltas before it */
		d->pending = *st;
		/* Only FORCE carries over: the newest set says whether it may remove. */
		d->pending_flags =
		        flags | (d->has_pending ? d->pending_flags & RECONCILE_F_FORCE : 0);
		d->has_pending = true;
		memset(st, 0, sizeof(*st));
		return 1;
	}
	r = reconciler_set_desired(d->rc, st, flags);
	if (r <= 0)
		return r;
	snprintf(rev, sizeof(rev), "%" PRIu64, reconciler_revision(d->rc));
	log_fields(LOG_INFO, "New desired state", {"revision", rev});
	request_pass(d, true);
	return 1;
}

/* Loads the cache file: at start as the baseline, on SIGHUP only if it is newer. */
static void load_cache(struct daemon *d, bool at_start)
{
	struct cache_state st = {0};
	struct wgf_err err = {0};
	char rev[24], n[24], rec[24];
	size_t records = 0;
	unsigned flags;
	int r;

	r = cache_load_desired(d->cache_path, &st, &records, &err);
	if (r == -ENOENT) {
		if (at_start)
			log_notice(
			        "No desired-state cache yet: the interface is left as it is until "
			        "a desired set arrives");
		return;
	}
	if (r < 0) {
		log_error("Ignoring the desired-state cache: %s", err.msg);
		return;
	}
	snprintf(rev, sizeof(rev), "%" PRIu64, st.revision);
	snprintf(n, sizeof(n), "%zu", st.n_peers);
	snprintf(rec, sizeof(rec), "%zu", records);
	/*
	 * Until the coordinator answers, the cache may be older than the interface (a
	 * cache that could not be written): add and update from it, remove nothing.
	 */
	flags = RECONCILE_F_CACHED | (d->coordinated && !d->answered ? RECONCILE_F_NO_REMOVE : 0);
	if (at_start) {
		/* It is what was last applied only if the pass that applied it finished. */
		if (cache_is_applied(d->cache_path, &st))
			flags |= RECONCILE_F_BASELINE;
		r = reconciler_set_desired(d->rc, &st, flags | RECONCILE_F_FORCE);
		d->kept_at_start = r > 0 && (flags & RECONCILE_F_NO_REMOVE);
		if (r > 0)
			log_fields(LOG_INFO, "Loaded the desired-state cache", {"revision", rev},
			           {"peers", n}, {"journal_records", rec},
			           {"removals", flags & RECONCILE_F_NO_REMOVE
			                                ? "none until the coordinator answers"
			                                : "yes"});
	} else {
		r = daemon_set_desired(d, &st, flags);
	}
	if (r < 0)
		log_errno(LOG_ERR, r, "Cannot take the desired-state cache");
	cache_state_fini(&st);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	atomic_store(&d->cancel, true);
	log_notice("Stopping");
	wgf_scrape_stop(d->scrape);
	d->scrape = NULL;
	session_stop(d->sess);
	close_handle((uv_handle_t *)&d->reconcile_timer);
	close_handle((uv_handle_t *)&d->monitor_timer);
	close_handle((uv_handle_t *)&d->tls_timer);
	close_handle((uv_handle_t *)&d->sig_term);
	close_handle((uv_handle_t *)&d->sig_int);
	close_handle((uv_handle_t *)&d->sig_hup);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	stop(h->data);
}

static void warn_restart(const char *section, const char *name)
{
	log_warning("Option [%s] %s changed, ignoring until restart", section, name);
}

/* What the reconciler enforces from the configuration: static peers, routable, adopt. */
static void apply_rules(struct daemon *d)
{
	uint8_t(*keys)[WGF_KEY_LEN] = NULL;
	struct wgf_cidr nets[SETTINGS_ROUTABLE_MAX];
	struct wgf_err err = {0};
	size_t n = 0;

	if (settings_static_peer_keys(&d->s, &keys, &n, &err) < 0)
		log_error("Cannot read the static peers, keeping the old list: %s", err.msg);
	else if (reconciler_set_static(d->rc, keys, n) < 0)
		log_error("Out of memory for the static peers, keeping the old list");
	free(keys);
	n = settings_routable(&d->s, nets);
	if (reconciler_set_routable(d->rc, nets, n) < 0)
		log_error("Out of memory for the routable networks, keeping the old list");
	reconciler_set_adopt(d->rc, d->s.adopt);
	if (reconciler_set_released(d->rc, (const uint8_t(*)[WGF_KEY_LEN])d->released,
	                            d->n_released) < 0)
		log_error("Out of memory for the released peers, keeping the old list");
}

static void on_hup(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	struct wgf_err err = {0};
	struct settings n;

	(void)signum;
	memset(&n, 0, sizeof(n));
	if (wgf_conf_load_optional(&settings_table, &n, d->config_path, d->config_given, &err) <
	    0) {
		log_error("Reload failed, keeping the running configuration: %s", err.msg);
		return;
	}
	settings_reload(&d->s, &n, warn_restart);
	wgf_log_init(NULL, settings_log_level(&d->s));
	if (d->busy)
		d->rules_changed = true;
	else
		apply_rules(d);
	d->mon.full_interval_ms = d->s.monitor_full_interval_ms;
	uv_timer_start(&d->reconcile_timer, on_reconcile_timer, d->s.reconcile_interval_ms,
	               d->s.reconcile_interval_ms);
	uv_timer_start(&d->monitor_timer, on_monitor_timer, d->s.monitor_interval_ms,
	               d->s.monitor_interval_ms);
	log_notice("Configuration reloaded");
	load_cache(d, false);
}

static void signal_ready(struct daemon *d)
{
	d->ready = true;
	(void)wgf_notify_ready();
	if (d->ready_fd >= 0) {
		(void)!write(d->ready_fd, "R", 1);
		close(d->ready_fd);
		d->ready_fd = -1;
	}
	log_notice("Ready");
}

/* Without [coordinator] urls the cache is the whole truth (cache-only mode). */
static void render_metrics(void *ctx, FILE *f)
{
	struct daemon *d = ctx;

	uv_mutex_lock(&d->mon_lock);
	agent_metrics_write(&d->metrics, d->sess, &d->mon, (int64_t)wgf_clock_wall_ms(), f);
	uv_mutex_unlock(&d->mon_lock);
}

/* /metrics, unless [metrics] listen is empty; one that cannot listen is a warning: the
 * interface matters more than its figures. */
static void start_metrics(struct daemon *d)
{
	struct wgf_err err = {0};
	char port_text[8];
	int port = 0;

	agent_metrics_init(&d->metrics);
	if (!d->s.metrics_listen[0])
		return;
	if (wgf_scrape_start(&d->loop, d->s.metrics_listen, render_metrics, d, &d->scrape, &port,
	                     &err) < 0) {
		log_warning("Cannot serve metrics, running without them: %s", err.msg);
		return;
	}
	snprintf(port_text, sizeof(port_text), "%d", port);
	log_fields(LOG_NOTICE, "Serving metrics", {"listen", d->s.metrics_listen},
	           {"port", port_text});
}

static bool has_coordinator(const struct settings *s)
{
	char buf[sizeof(s->coordinator_urls)];
	const char *urls[SESSION_URLS_MAX];

	return settings_coordinator_urls(s, buf, sizeof(buf), urls, SESSION_URLS_MAX) > 0;
}

static int setup(struct daemon *d)
{
	int r;

	if (mkdir(d->s.state_directory, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		return log_errno(LOG_ERR, r, "Cannot create '%s'", d->s.state_directory);
	}
	settings_cache_path(&d->s, d->cache_path, sizeof(d->cache_path));
	d->coordinated = has_coordinator(&d->s);
	r = settings_backend_new(&d->s, &d->b);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot open the %s backend for '%s'",
		                 d->s.backend == SETTINGS_BACKEND_KERNEL ? "kernel" : "userspace",
		                 d->s.interface);
	r = settings_backend_new(&d->s, &d->reader);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot open a second %s backend for reading '%s'",
		                 d->b->ops->name, d->s.interface);
	r = reconciler_new(d->b, d->cache_path, &d->rc);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot start the reconciler");
	reconciler_set_cancel(d->rc, &d->cancel);
	apply_rules(d);
	monitor_init(&d->mon, d->s.monitor_full_interval_ms);
	r = uv_loop_init(&d->loop);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot start the event loop");
	uv_signal_init(&d->loop, &d->sig_term);
	uv_signal_init(&d->loop, &d->sig_int);
	uv_signal_init(&d->loop, &d->sig_hup);
	uv_timer_init(&d->loop, &d->reconcile_timer);
	uv_timer_init(&d->loop, &d->monitor_timer);
	uv_timer_init(&d->loop, &d->tls_timer);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	d->reconcile_timer.data = d->monitor_timer.data = d->tls_timer.data = d;
	uv_signal_start(&d->sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_hup, SIGHUP);
	start_metrics(d);
	return 0;
}

int daemon_run(const struct settings *s, const char *config_path, bool config_given, int ready_fd)
{
	struct daemon *d = calloc(1, sizeof(*d));
	bool loop_open = false;
	int r;

	if (!d || uv_mutex_init(&d->mon_lock) < 0) {
		free(d);
		if (ready_fd >= 0)
			close(ready_fd);
		return log_errno(LOG_ERR, -ENOMEM, "Cannot start");
	}
	d->s = *s;
	d->config_path = config_path;
	d->config_given = config_given;
	d->ready_fd = ready_fd;
	d->need_ensure = true;
	atomic_init(&d->cancel, false);
	r = setup(d);
	if (r < 0)
		goto out;
	loop_open = true;
	log_fields(LOG_NOTICE, "Starting", {"interface", d->s.interface},
	           {"backend", d->b->ops->name});
	/*
	 * Restore before anything else: no coordinator is needed for that. Readiness is
	 * signalled once this first pass is done.
	 */
	load_cache(d, true);
	request_pass(d, true);
	r = start_session(d);
	if (r < 0) {
		stop(d);
		(void)uv_run(&d->loop, UV_RUN_DEFAULT);
		goto out;
	}
	uv_timer_start(&d->reconcile_timer, on_reconcile_timer, d->s.reconcile_interval_ms,
	               d->s.reconcile_interval_ms);
	uv_timer_start(&d->monitor_timer, on_monitor_timer, d->s.monitor_interval_ms,
	               d->s.monitor_interval_ms);
	r = uv_run(&d->loop, UV_RUN_DEFAULT);
	if (r != 0)
		log_warning("Loop ended with %d handles still active", r);
	r = 0;
out:
	if (loop_open) {
		int rc = uv_loop_close(&d->loop);

		if (rc < 0)
			r = log_errno(LOG_ERR, rc, "Event loop did not close cleanly");
	}
	if (d->ready_fd >= 0)
		close(d->ready_fd);
	cache_state_fini(&d->pending);
	queued_fini(d);
	monitor_fini(&d->mon);
	uv_mutex_destroy(&d->mon_lock);
	wgf_device_fini(&d->read_dev);
	wgf_device_fini(&d->pass_dev);
	free(d->read_skip);
	reconciler_free(d->rc);
	free(d->released);
	backend_free(d->reader);
	backend_free(d->b);
	free(d);
	if (r == 0)
		log_notice("Stopped");
	return r;
}
