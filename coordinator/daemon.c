/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* daemon: the coordinator's loop, signals, sweeper and readiness. */
#define LOG_MODULE "daemon"

#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "api.h"
#include "channel.h"
#include "db.h"
#include "db_sync.h"
#include "delivery.h"
#include "fs.h"
#include "http.h"
#include "identity.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "notify.h"
#include "tls.h"

struct daemon {
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t sweep, grace;
	struct settings s;
	const char *config_path;
	bool config_given;
	struct db *db, *listener, *channel_db;
	struct channel *channel;
	struct api *api;
	struct delivery *delivery; /* NULL with [webhooks] deliver off */
	struct http_server *http;
	struct metrics *metrics; /* NULL with [metrics] listen empty */
	bool stopping;
};

static void on_sweep_result(void *ctx, const PGresult *res, const struct db_error *e)
{
	struct daemon *d = ctx;

	if (e) {
		/* A sweep still running when the coordinator stops is dropped, not a failure. */
		if (e->code != -ECANCELED) {
			log_warning("Sweep failed, retrying at the next interval: %s", e->message);
			metrics_sweep(d->metrics, false, 0);
		}
		return;
	}
	metrics_sweep(d->metrics, true, strtoull(PQgetvalue(res, 0, 0), NULL, 10));
	if (atoi(PQgetvalue(res, 0, 0)) > 0)
		log_fields(LOG_NOTICE, "Expired reservations released",
		           {"count", PQgetvalue(res, 0, 0)});
}

static void on_sweep(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (db_query(d->db, "SELECT wgf_sweep(1000)", 0, NULL, 0, on_sweep_result, d) < 0)
		metrics_sweep(d->metrics, false, 0);
}

static void on_grace_over(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static void close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/*
 * Stops accepting and closes what we own. Requests in flight get a short grace to be
 * answered; idle keep-alive connections, which h2o would keep until its own timeout,
 * are then closed with the loop.
 */
static void stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	log_notice("Stopping");
	metrics_stop(d->metrics);
	d->metrics = NULL;
	channel_stop(d->channel);
	if (d->listener)
		db_close(d->listener);
	if (d->channel_db)
		db_close(d->channel_db);
	uv_timer_init(&d->loop, &d->grace);
	uv_timer_start(&d->grace, on_grace_over, 200, 0);
	http_stop(d->http);
	delivery_stop(d->delivery);
	db_close(d->db);
	uv_timer_stop(&d->sweep);
	uv_close((uv_handle_t *)&d->sweep, NULL);
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	stop(h->data);
}

/* The API's options from the settings (all but the key hashing secret). */
static void api_options_from(const struct settings *s, struct api_options *ret)
{
	*ret = (struct api_options){
	        .reservation_ttl_ms = s->reservation_ttl_ms,
	        .address_cooldown_ms = s->address_cooldown_ms,
	        .server_online_ms = s->server_online_ms,
	        .request_deadline_ms = s->request_deadline_ms,
	        .persistent_keepalive = (unsigned)s->persistent_keepalive,
	        .placement_any = strcmp(settings_placement_choices[s->placement], "any") == 0,
	        .failed_auth_per_minute = (unsigned)s->failed_auth_per_minute,
	};
	/* Checked when the settings were read. */
	(void)webhook_policy_parse(&ret->webhook_policy, s->webhooks_allowed, NULL);
}

static int start_delivery(struct daemon *d)
{
	struct delivery_options o = {
	        .concurrency = (unsigned)d->s.webhooks_concurrency,
	        .poll_ms = d->s.webhooks_poll_ms,
	        .connect_timeout_ms = d->s.webhooks_connect_timeout_ms,
	        .timeout_ms = d->s.webhooks_timeout_ms,
	        .retry_min_ms = d->s.webhooks_retry_min_ms,
	        .retry_max_ms = d->s.webhooks_retry_max_ms,
	        .retry_for_ms = d->s.webhooks_retry_for_ms,
	        .keep_ms = d->s.webhooks_keep_ms,
	        .server_online_ms = d->s.server_online_ms,
	        .offline_confirm_ms = d->s.webhooks_offline_confirm_ms,
	};
	int r;

	if (!d->s.webhooks_deliver)
		return 0;
	(void)webhook_policy_parse(&o.policy, d->s.webhooks_allowed, NULL);
	r = delivery_new(&d->loop, d->db, &o, &d->delivery);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot start webhook delivery");
	return 0;
}

/* Re-reads the file; applies the reloadable options, warns about the others. */
static void on_hup(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	struct settings n;
	struct api_options ao;
	struct wgf_err err = {0};

	(void)signum;
	memset(&n, 0, sizeof(n));
	if (wgf_conf_load_optional(&settings_table, &n, d->config_path, d->config_given, &err) <
	    0) {
		log_error("Reload failed, keeping the running configuration: %s", err.msg);
		return;
	}
	if (strcmp(n.listen, d->s.listen) != 0 || strcmp(n.conninfo, d->s.conninfo) != 0 ||
	    n.db_connections != d->s.db_connections ||
	    strcmp(n.metrics_listen, d->s.metrics_listen) != 0)
		log_warning("Listen address or database settings changed, ignoring until restart");
	d->s.log_level = n.log_level;
	d->s.reservation_ttl_ms = n.reservation_ttl_ms;
	d->s.address_cooldown_ms = n.address_cooldown_ms;
	d->s.persistent_keepalive = n.persistent_keepalive;
	d->s.server_online_ms = n.server_online_ms;
	d->s.placement = n.placement;
	metrics_set_online_ms(d->metrics, n.server_online_ms);
	delivery_set_online_ms(d->delivery, n.server_online_ms);
	wgf_log_init(NULL, settings_log_level(&d->s));
	api_options_from(&d->s, &ao);
	api_set_reloadable(d->api, &ao);
	sodium_memzero(&ao, sizeof(ao));
	log_notice("Configuration reloaded");
}

/* The schema must be exactly this binary's before anything is served. */
static int check_schema(const struct settings *s)
{
	struct wgf_err err = {0};
	PGconn *conn;
	int r;

	r = db_sync_connect(s->conninfo, &conn, &err);
	if (r == 0) {
		r = migrate_check(conn, &err);
		PQfinish(conn);
	}
	if (r < 0)
		log_error("%s", err.msg);
	return r;
}

/* The listener's TLS configuration for a tls+tcp:// URL, else NULL. */
static int channel_tls(const struct settings *s, nng_tls_config **ret)
{
	struct wgf_tls_files f = {
	        .cert_file = s->channel_tls_cert_file,
	        .key_file = s->channel_tls_key_file,
	        .ca_file = s->channel_tls_client_ca_file,
	};
	struct wgf_err err = {0};
	int r;

	if (!wgf_tls_url_is_tls(s->channel_listen)) {
		*ret = NULL;
		return 0;
	}
	r = wgf_tls_config_new(WGF_TLS_SERVER, &f, ret, &err);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot set up TLS for '%s': %s", s->channel_listen,
		                 err.msg);
	return 0;
}

/*
 * The agents' channel, its own database connections, and the LISTEN connection that
 * wakes its long polls and reloads its registry. Nonces are kept in the database for
 * twice the allowed skew (0006_channel_admission.sql says why).
 */
static int start_channel(struct daemon *d)
{
	char settings[64];
	struct db_options cdo = {
	        .conninfo = d->s.conninfo,
	        .connections = (unsigned)d->s.channel_db_connections,
	        .queue_max = (unsigned)d->s.channel_db_queue_max,
	        .statement_timeout_ms = d->s.statement_timeout_ms,
	        .settings = settings,
	        .name = "channel",
	};
	struct channel_options co = {
	        .listen = d->s.channel_listen,
	        .max_skew_ms = d->s.channel_max_skew_ms,
	        .wait_ms = d->s.channel_wait_ms,
	        .handshake_window_ms = d->s.handshake_window_ms,
	        .max_deltas = (unsigned)d->s.channel_max_deltas,
	        .snapshot_page = (unsigned)d->s.channel_snapshot_page,
	        .max_contexts = (unsigned)d->s.channel_max_agents + 64,
	        .db_deadline_ms = d->s.channel_db_deadline_ms,
	        .log_interval_ms = d->s.channel_log_interval_ms,
	        .max_pipes = (unsigned)d->s.channel_max_connections,
	        .max_pipes_per_address = (unsigned)d->s.channel_max_connections_per_address,
	        .idle_timeout_ms = d->s.channel_idle_timeout_ms,
	        .agent_rate = (unsigned)d->s.channel_agent_rate,
	        .agent_burst = (unsigned)d->s.channel_agent_burst,
	};
	struct db_options lo = {
	        .name = "listener",
	        .conninfo = d->s.conninfo,
	        .connections = 1,
	        .queue_max = 1,
	        .statement_timeout_ms = d->s.statement_timeout_ms,
	        .listen_sql = "LISTEN wgf_changes; LISTEN wgf_servers; LISTEN wgf_epoch",
	        .notify = channel_notify,
	};
	struct wgf_identity id;
	struct wgf_err err = {0};
	const char *url;
	char pk[45];
	int r;

	r = channel_tls(&d->s, &co.tls);
	if (r < 0)
		return r;
	r = wgf_identity_load(&id, d->s.channel_key_file, &err);
	if (r < 0) {
		wgf_tls_config_free(co.tls);
		return log_errno(LOG_ERR, r, "Cannot read the channel signing key: %s", err.msg);
	}
	memcpy(co.sk, id.sk, sizeof(co.sk));
	memcpy(co.pk, id.pk, sizeof(co.pk));
	co.n_previous_pk = (size_t)wgf_identity_public_list(
	        d->s.channel_previous_keys, co.previous_pk, SETTINGS_PREVIOUS_KEYS_MAX, NULL);
	wgf_identity_public_b64(&id, pk);
	wgf_identity_fini(&id);
	snprintf(settings, sizeof(settings), "-c wgfleet.nonce_keep=%llums",
	         (unsigned long long)(2 * d->s.channel_max_skew_ms));
	r = db_new(&d->loop, &cdo, &d->channel_db);
	if (r < 0) {
		sodium_memzero(co.sk, sizeof(co.sk));
		wgf_tls_config_free(co.tls);
		return log_errno(LOG_ERR, r, "Cannot start the channel's database connections");
	}
	r = channel_start(&d->loop, d->channel_db, &co, &d->channel, &url);
	sodium_memzero(co.sk, sizeof(co.sk));
	wgf_tls_config_free(co.tls);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot listen for agents on '%s'",
		                 d->s.channel_listen);
	lo.notify_ctx = d->channel;
	r = db_new(&d->loop, &lo, &d->listener);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot start the change listener");
	log_fields(LOG_NOTICE, "Listening for agents", {"url", url}, {"public_key", pk});
	return 0;
}

/*
 * The /metrics listener, unless [metrics] listen is empty. One that cannot listen is a
 * warning, not a reason to stop serving the API and the agents.
 */
static void start_metrics(struct daemon *d)
{
	const struct metrics_options mo = {
	        .listen = d->s.metrics_listen,
	        .refresh_ms = d->s.metrics_refresh_ms,
	        .server_online_ms = d->s.server_online_ms,
	        .db = d->db,
	        .pools = {d->db, d->channel_db},
	        .api = d->api,
	        .http = d->http,
	        .channel = d->channel,
	        .delivery = d->delivery,
	};
	struct wgf_err err = {0};
	char port_text[8];
	int port = 0;

	if (!d->s.metrics_listen[0])
		return;
	if (metrics_start(&d->loop, &mo, &d->metrics, &port, &err) < 0) {
		log_warning("Cannot serve metrics, running without them: %s", err.msg);
		return;
	}
	snprintf(port_text, sizeof(port_text), "%d", port);
	log_fields(LOG_NOTICE, "Serving metrics", {"listen", d->s.metrics_listen},
	           {"port", port_text});
}

static int start(struct daemon *d)
{
	struct db_options dbo = {
	        .name = "api",
	        .conninfo = d->s.conninfo,
	        .connections = (unsigned)d->s.db_connections,
	        .queue_max = (unsigned)d->s.db_queue_max,
	        .statement_timeout_ms = d->s.statement_timeout_ms,
	};
	struct api_options ao;
	struct http_options ho = {
	        .listen = d->s.listen,
	        .request_timeout_ms = d->s.request_timeout_ms,
	        .trusted_proxies = d->s.trusted_proxies,
	        .max_connections = (unsigned)d->s.max_connections,
	        .max_connections_per_client = (unsigned)d->s.max_connections_per_client,
	};
	struct wgf_err err = {0};
	char port_text[8];
	int r, port = 0;

	api_options_from(&d->s, &ao);
	r = wgf_fs_read_secret32(d->s.key_hash_secret_file, ao.key_hash_secret, &err);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot read the API key hashing secret: %s", err.msg);
	r = check_schema(&d->s);
	if (r < 0)
		goto out;
	r = db_new(&d->loop, &dbo, &d->db);
	if (r == 0)
		r = api_new(&d->loop, d->db, &ao, &d->api);
	if (r < 0) {
		log_errno(LOG_ERR, r, "Cannot start");
		goto out;
	}
	r = start_channel(d);
	if (r == 0)
		r = start_delivery(d);
	if (r < 0)
		goto out;
	r = http_start(&d->loop, &ho, api_handle, d->api, &d->http, &port);
	if (r < 0) {
		log_errno(LOG_ERR, r, "Cannot listen on '%s'", d->s.listen);
		goto out;
	}
	snprintf(port_text, sizeof(port_text), "%d", port);
	log_fields(LOG_NOTICE, "Listening", {"listen", d->s.listen}, {"port", port_text});
	start_metrics(d);
out:
	sodium_memzero(ao.key_hash_secret, sizeof(ao.key_hash_secret));
	return r;
}

/*
 * Every connected agent holds a file descriptor, as does every HTTP client. systemd
 * starts services with a soft limit of 1,024 open files (and a hard one far above),
 * which silently capped a coordinator at about 990 agents: raise the soft limit to the
 * hard one, and warn when even that is short of what [channel] max_agents needs.
 */
static void raise_fd_limit(const struct settings *s)
{
	rlim_t want = (rlim_t)s->channel_max_agents + 1024;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
			return;
	}
	if (rl.rlim_cur < want)
		log_warning("Open files are limited to %llu; [channel] max_agents = %llu needs "
		            "about %llu (raise LimitNOFILE= or ulimit -n)",
		            (unsigned long long)rl.rlim_cur,
		            (unsigned long long)s->channel_max_agents, (unsigned long long)want);
}

int daemon_run(const struct settings *s, const char *config_path, bool config_given)
{
	struct daemon *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->s = *s;
	d->config_path = config_path;
	d->config_given = config_given;
	raise_fd_limit(s);
	uv_loop_init(&d->loop);
	r = start(d);
	if (r < 0) {
		metrics_stop(d->metrics);
		if (d->http)
			http_stop(d->http);
		channel_stop(d->channel);
		delivery_stop(d->delivery);
		if (d->listener)
			db_close(d->listener);
		if (d->channel_db)
			db_close(d->channel_db);
		if (d->db)
			db_close(d->db);
		goto out;
	}
	uv_signal_init(&d->loop, &d->sig_term);
	uv_signal_init(&d->loop, &d->sig_int);
	uv_signal_init(&d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_hup, SIGHUP);
	uv_timer_init(&d->loop, &d->sweep);
	d->sweep.data = d;
	uv_timer_start(&d->sweep, on_sweep, 0, d->s.sweep_interval_ms);
	(void)wgf_notify_ready();
	uv_run(&d->loop, UV_RUN_DEFAULT);
	log_notice("Stopped");
out:
	/* Whatever is left (idle keep-alive connections, the grace timer) closes here. */
	uv_walk(&d->loop, close_handle, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d->loop) != 0)
		log_warning("The event loop still had handles at exit");
	api_free(d->api);
	delivery_free(d->delivery);
	free(d);
	return r;
}
