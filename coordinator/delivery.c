/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* delivery: claims due webhook deliveries, sends them signed, reports each outcome. */
#define LOG_MODULE "webhooks"

#include "delivery.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "log.h"
#include "macro.h"
#include "prom.h"

#define CLAIM_SQL                                                                         \
	"SELECT webhook_id, event_id, attempt, url, secret, body FROM wgf_webhook_claim(" \
	"$1::integer, $2::interval)"
#define DONE_SQL                                                                         \
	"SELECT wgf_webhook_done($1::bigint, $2::bigint, $3::integer, $4::integer, $5, " \
	"$6::interval, $7::interval)"
#define PRUNE_SQL      "SELECT wgf_webhook_prune($1::interval, 1000)"
#define WATCH_SQL      "SELECT wgf_servers_watch($1::interval, $2::interval)"
#define PRUNE_EVERY_MS 60000
#define LEASE_SLACK_MS 30000

struct delivery {
	uv_loop_t *loop;
	struct db *db;
	struct delivery_options o;
	CURLM *multi;
	uv_timer_t poll, curl_timer;
	struct job *sending; /* requests in flight, linked by next and prev */
	unsigned in_flight;  /* attempts from their claim until their outcome is stored */
	unsigned closing;    /* handles whose close callback has not run */
	uint64_t pruned_ms;  /* uv_now() of the last prune */
	uint64_t delivered, failed, refused, dead; /* attempts by outcome, since start */
	bool claiming, pruning, watching, stopped;
};

/* One attempt, from its claim to its outcome's query. */
struct job {
	struct delivery *d;
	struct job *next, *prev;
	CURL *easy; /* NULL once the request is over */
	struct curl_slist *headers;
	char webhook_id[24], event_id[24], attempt[16];
	bool refused; /* the address was not allowed */
	char error[CURL_ERROR_SIZE];
};

/* A socket curl asked us to watch. */
struct watch {
	uv_poll_t poll;
	struct delivery *d;
	curl_socket_t fd;
};

static void claim_soon(struct delivery *d, uint64_t ms);

/* Ends j's request, if it still has one, and unlinks it. */
static void job_end_request(struct job *j)
{
	if (!j->easy)
		return;
	curl_multi_remove_handle(j->d->multi, j->easy);
	curl_easy_cleanup(j->easy);
	j->easy = NULL;
	curl_slist_free_all(j->headers);
	j->headers = NULL;
	if (j->prev)
		j->prev->next = j->next;
	else if (j->d->sending == j)
		j->d->sending = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	job_end_request(j);
	curl_slist_free_all(j->headers);
	free(j);
}

static void on_done_stored(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct job *j = ctx;
	struct delivery *d = j->d;

	if (e && e->code != -ECANCELED) {
		log_fields(LOG_WARNING, "Cannot store a delivery's outcome; it is retried",
		           {"webhook", j->webhook_id}, {"event", j->event_id},
		           {"error", e->message});
	} else if (res && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "dead") == 0) {
		d->dead++;
		log_fields(LOG_WARNING, "Webhook delivery given up", {"webhook", j->webhook_id},
		           {"event", j->event_id}, {"attempts", j->attempt});
	}
	d->in_flight--;
	free(j);
	claim_soon(d, 0);
}

/* Stores the outcome of j's attempt; error NULL is success. Consumes j. */
static void job_finish(struct job *j, long http_status, const char *error)
{
	struct delivery *d = j->d;
	char status[16], retry_in[40], retry_for[40];
	unsigned failed = (unsigned)strtoul(j->attempt, NULL, 10);
	const char *params[7];

	job_end_request(j);
	snprintf(status, sizeof(status), "%ld", http_status);
	snprintf(
	        retry_in, sizeof(retry_in), "%llu milliseconds",
	        (unsigned long long)webhook_retry_ms(failed, d->o.retry_min_ms, d->o.retry_max_ms));
	snprintf(retry_for, sizeof(retry_for), "%llu milliseconds",
	         (unsigned long long)d->o.retry_for_ms);
	params[0] = j->webhook_id;
	params[1] = j->event_id;
	params[2] = j->attempt;
	params[3] = http_status ? status : NULL;
	params[4] = error;
	params[5] = retry_in;
	params[6] = retry_for;
	if (!error)
		d->delivered++;
	else if (j->refused)
		d->refused++;
	else
		d->failed++;
	if (error)
		log_fields(LOG_INFO, "Webhook delivery failed", {"webhook", j->webhook_id},
		           {"event", j->event_id}, {"attempt", j->attempt}, {"error", error});
	if (db_query(d->db, DONE_SQL, WGF_ARRAY_SIZE(params), params, 0, on_done_stored, j) < 0) {
		/* The lease runs out and the attempt is made again. */
		d->in_flight--;
		free(j);
	}
}

static void check_finished(struct delivery *d)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(d->multi, &left))) {
		struct job *j = NULL;
		long code = 0;
		char why[CURL_ERROR_SIZE + 32];

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		if (m->data.result != CURLE_OK && j->refused)
			job_finish(j, 0,
			           "the address is not allowed ([webhooks] allowed_networks)");
		else if (m->data.result != CURLE_OK)
			job_finish(j, 0,
			           j->error[0] ? j->error : curl_easy_strerror(m->data.result));
		else if (code < 200 || code > 299)
			job_finish(j, code,
			           (snprintf(why, sizeof(why), "the receiver answered %ld", code),
			            why));
		else
			job_finish(j, code, NULL);
	}
}

/* ---- curl's sockets and timer on the loop ---- */

static void on_watch_closed(uv_handle_t *h)
{
	struct watch *w = h->data;

	w->d->closing--;
	free(w);
}

static void on_socket_ready(uv_poll_t *p, int status, int events)
{
	struct watch *w = p->data;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(w->d->multi, w->fd, flags, &running);
	check_finished(w->d);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct delivery *d = userp;
	struct watch *w = socketp;
	int events = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (w) {
			uv_poll_stop(&w->poll);
			d->closing++;
			uv_close((uv_handle_t *)&w->poll, on_watch_closed);
			curl_multi_assign(d->multi, s, NULL);
		}
		return 0;
	}
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w || uv_poll_init_socket(d->loop, &w->poll, s) < 0) {
			free(w);
			return -1;
		}
		w->d = d;
		w->fd = s;
		w->poll.data = w;
		curl_multi_assign(d->multi, s, w);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	uv_poll_start(&w->poll, events, on_socket_ready);
	return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
	struct delivery *d = t->data;
	int running;

	curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_finished(d);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct delivery *d = userp;

	(void)m;
	if (d->stopped)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&d->curl_timer);
	else
		uv_timer_start(&d->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

/* Every address curl would connect to passes the policy first. */
static curl_socket_t on_open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct job *j = ctx;
	struct wgf_addr addr = {.family = a->family};

	(void)purpose;
	if (a->family == AF_INET)
		memcpy(addr.bytes, &((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr,
		       4);
	else if (a->family == AF_INET6)
		memcpy(addr.bytes,
		       &((const struct sockaddr_in6 *)(const void *)&a->addr)->sin6_addr, 16);
	if ((a->family != AF_INET && a->family != AF_INET6) ||
	    !webhook_address_allowed(&j->d->o.policy, &addr)) {
		j->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * n;
}

/* ---- claims ---- */

static int job_headers(struct job *j, const char *secret, const char *body)
{
	char sig[WEBHOOK_SIGNATURE_SIZE], line[160];
	const char *fixed[] = {"Content-Type: application/json", "User-Agent: wgfleet-webhooks",
	                       "Expect:"};
	struct curl_slist *l;

	webhook_sign(secret, (int64_t)time(NULL), body, strlen(body), sig);
	for (size_t i = 0; i < WGF_ARRAY_SIZE(fixed); i++) {
		if (!(l = curl_slist_append(j->headers, fixed[i])))
			return -ENOMEM;
		j->headers = l;
	}
	snprintf(line, sizeof(line), "Wgfleet-Signature: %s", sig);
	if (!(l = curl_slist_append(j->headers, line)))
		return -ENOMEM;
	j->headers = l;
	snprintf(line, sizeof(line), "Wgfleet-Event-Id: %s", j->event_id);
	if (!(l = curl_slist_append(j->headers, line)))
		return -ENOMEM;
	j->headers = l;
	return 0;
}

/* One claimed row into a request in flight; a row that cannot be started is left to
 * its lease. */
static int job_start(struct delivery *d, const PGresult *res, int row)
{
	struct job *j = calloc(1, sizeof(*j));
	CURL *e;

	if (!j)
		return -ENOMEM;
	j->d = d;
	snprintf(j->webhook_id, sizeof(j->webhook_id), "%s", PQgetvalue(res, row, 0));
	snprintf(j->event_id, sizeof(j->event_id), "%s", PQgetvalue(res, row, 1));
	snprintf(j->attempt, sizeof(j->attempt), "%s", PQgetvalue(res, row, 2));
	e = j->easy = curl_easy_init();
	if (!e || job_headers(j, PQgetvalue(res, row, 4), PQgetvalue(res, row, 5)) < 0) {
		job_free(j);
		return -ENOMEM;
	}
	curl_easy_setopt(e, CURLOPT_URL, PQgetvalue(res, row, 3));
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, PQgetvalue(res, row, 5));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->o.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->o.timeout_ms);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->error);
	curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		j->easy = NULL;
		job_free(j);
		return -ENOMEM;
	}
	j->next = d->sending;
	if (d->sending)
		d->sending->prev = j;
	d->sending = j;
	d->in_flight++;
	return 0;
}

static void on_claimed(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct delivery *d = ctx;

	d->claiming = false;
	if (e) {
		if (e->code != -ECANCELED)
			log_warning("Cannot claim webhook deliveries, retrying: %s", e->message);
		return;
	}
	if (d->stopped)
		return; /* what was claimed waits for its lease */
	for (int i = 0; i < PQntuples(res); i++)
		if (job_start(d, res, i) < 0)
			log_warning(
			        "Cannot start a webhook delivery, retrying when its lease ends");
}

static void on_pruned(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct delivery *d = ctx;

	(void)res;
	d->pruning = false;
	if (e && e->code != -ECANCELED)
		log_warning("Cannot prune the webhook delivery log, retrying: %s", e->message);
}

static void prune(struct delivery *d)
{
	char keep[40];
	const char *params[1] = {keep};

	if (d->pruning || uv_now(d->loop) - d->pruned_ms < PRUNE_EVERY_MS)
		return;
	d->pruned_ms = uv_now(d->loop);
	snprintf(keep, sizeof(keep), "%llu milliseconds", (unsigned long long)d->o.keep_ms);
	if (db_query(d->db, PRUNE_SQL, 1, params, 0, on_pruned, d) == 0)
		d->pruning = true;
}

static void on_watched(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct delivery *d = ctx;

	(void)res;
	d->watching = false;
	if (e && e->code != -ECANCELED)
		log_warning("Cannot look for servers gone online or offline, retrying: %s",
		            e->message);
}

static void watch_servers(struct delivery *d)
{
	char within[40], confirm[40];
	const char *params[2] = {within, confirm};

	if (d->watching)
		return;
	snprintf(within, sizeof(within), "%llu milliseconds",
	         (unsigned long long)d->o.server_online_ms);
	snprintf(confirm, sizeof(confirm), "%llu milliseconds",
	         (unsigned long long)d->o.offline_confirm_ms);
	if (db_query(d->db, WATCH_SQL, 2, params, uv_now(d->loop) + d->o.poll_ms, on_watched, d) ==
	    0)
		d->watching = true;
}

static void on_poll_timer(uv_timer_t *t)
{
	struct delivery *d = t->data;
	char limit[16], lease[40];
	const char *params[2] = {limit, lease};

	if (!d->stopped) {
		prune(d);
		watch_servers(d);
	}
	if (d->claiming || d->stopped || d->in_flight >= d->o.concurrency)
		return;
	snprintf(limit, sizeof(limit), "%u", d->o.concurrency - d->in_flight);
	snprintf(lease, sizeof(lease), "%llu milliseconds",
	         (unsigned long long)(d->o.connect_timeout_ms + d->o.timeout_ms + LEASE_SLACK_MS));
	if (db_query(d->db, CLAIM_SQL, 2, params, uv_now(d->loop) + d->o.poll_ms, on_claimed, d) ==
	    0)
		d->claiming = true;
}

static void claim_soon(struct delivery *d, uint64_t ms)
{
	if (!d->stopped)
		uv_timer_start(&d->poll, on_poll_timer, ms, d->o.poll_ms);
}

/* ---- the object ---- */

int delivery_new(uv_loop_t *loop, struct db *db, const struct delivery_options *o,
                 struct delivery **ret)
{
	struct delivery *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->db = db;
	d->o = *o;
	d->multi = curl_multi_init();
	if (!d->multi) {
		free(d);
		return -ENOMEM;
	}
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	uv_timer_init(loop, &d->poll);
	uv_timer_init(loop, &d->curl_timer);
	d->poll.data = d->curl_timer.data = d;
	claim_soon(d, d->o.poll_ms);
	*ret = d;
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct delivery *d = h->data;

	d->closing--;
}

void delivery_stop(struct delivery *d)
{
	if (!d || d->stopped)
		return;
	d->stopped = true;
	/* Attempts in flight are dropped; their leases run out and they are made again. */
	while (d->sending) {
		d->in_flight--;
		job_free(d->sending);
	}
	uv_timer_stop(&d->poll);
	uv_timer_stop(&d->curl_timer);
	d->closing += 2;
	uv_close((uv_handle_t *)&d->poll, on_timer_closed);
	uv_close((uv_handle_t *)&d->curl_timer, on_timer_closed);
}

void delivery_set_online_ms(struct delivery *d, uint64_t server_online_ms)
{
	if (d)
		d->o.server_online_ms = server_online_ms;
}

void delivery_write_metrics(const struct delivery *d, FILE *f)
{
	wgf_prom_family(f, "wgfleet_webhook_attempts_total", "counter",
	                "Webhook delivery attempts this coordinator made, by outcome.");
	wgf_prom(f, "wgfleet_webhook_attempts_total", d->delivered, {"outcome", "delivered"});
	wgf_prom(f, "wgfleet_webhook_attempts_total", d->failed, {"outcome", "failed"});
	wgf_prom(f, "wgfleet_webhook_attempts_total", d->refused, {"outcome", "refused"});
	wgf_prom_single(f, "wgfleet_webhook_deliveries_dead_total", "counter",
	                "Webhook deliveries this coordinator gave up (retry_for passed).", d->dead);
	wgf_prom_single(f, "wgfleet_webhook_attempts_in_flight", "gauge",
	                "Webhook attempts claimed and not yet settled.", d->in_flight);
}

void delivery_free(struct delivery *d)
{
	if (!d)
		return;
	curl_multi_cleanup(d->multi);
	free(d);
}
