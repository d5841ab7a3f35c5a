/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* settings: the coordinator's option table and the checks its values need. */
#include "settings.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <libpq-fe.h>

#include "http.h"
#include "identity.h"
#include "log.h"
#include "scrape.h"
#include "tls.h"
#include "webhook.h"

/* A connection string libpq accepts, holding no password (passwords go in a passfile). */
static int validate_conninfo(const void *value, struct wgf_err *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(value, &msg);
	int r = 0;

	if (!opts) {
		if (!msg)
			return wgf_err_set(err, -ENOMEM, "out of memory");
		r = wgf_err_set(err, -EINVAL, "not a libpq connection string: %.*s",
		                (int)strcspn(msg, "\n"), msg);
		PQfreemem(msg);
		return r;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			r = wgf_err_set(err, -EINVAL,
			                "holds a password; put it in a passfile (libpq's passfile= "
			                "or ~/.pgpass) instead");
	PQconninfoFree(opts);
	return r;
}

static int validate_proxies(const void *value, struct wgf_err *err)
{
	size_t n;

	return http_parse_proxies(value, NULL, HTTP_TRUSTED_PROXIES_MAX, &n, err);
}

static int validate_previous_keys(const void *value, struct wgf_err *err)
{
	int n = wgf_identity_public_list(value, NULL, SETTINGS_PREVIOUS_KEYS_MAX, err);

	return n < 0 ? n : 0;
}

static int validate_webhook_networks(const void *value, struct wgf_err *err)
{
	struct webhook_policy p;

	return webhook_policy_parse(&p, value, err);
}

const char *const settings_placement_choices[] = {"online", "any", NULL};

#define S(field) offsetof(struct settings, field)
#define SECOND   ((uint64_t)1000)
#define HOUR     (3600 * SECOND)

static const struct wgf_conf_entry entries[] = {
        {
                .section = "database",
                .name = "conninfo",
                .type = WGF_CONF_STRING,
                .offset = S(conninfo),
                .size = SETTINGS_CONNINFO_MAX,
                .def = "dbname=wgfleet",
                .validate = validate_conninfo,
                .doc = "libpq connection string of the wgfleet database (keep any password in "
                       "a passfile, not here).",
        },
        {
                .section = "database",
                .name = "connections",
                .type = WGF_CONF_UINT,
                .offset = S(db_connections),
                .def = "16",
                .min = 1,
                .max = 64,
                .doc = "Connections the daemon keeps open to PostgreSQL.",
        },
        {
                .section = "database",
                .name = "queue_max",
                .type = WGF_CONF_UINT,
                .offset = S(db_queue_max),
                .def = "1024",
                .min = 1,
                .max = 100000,
                .doc = "Requests that may wait for a connection; past this the API answers 503.",
        },
        {
                .section = "database",
                .name = "statement_timeout",
                .type = WGF_CONF_DURATION,
                .offset = S(statement_timeout_ms),
                .def = "5s",
                .min = 100,
                .max = 600 * SECOND,
                .doc = "Longest a single API call may run in the database.",
        },
        {
                .section = "http",
                .name = "listen",
                .type = WGF_CONF_STRING,
                .offset = S(listen),
                .size = sizeof(((struct settings *)0)->listen),
                .def = "127.0.0.1:8080",
                .doc = "Address and port of the HTTP API (IPv6 as [::1]:8080; port 0 picks a "
                       "free one). Put TLS in front of it.",
        },
        {
                .section = "http",
                .name = "request_timeout",
                .type = WGF_CONF_DURATION,
                .offset = S(request_timeout_ms),
                .def = "10s",
                .min = 100,
                .max = 600 * SECOND,
                .doc = "Longest a client may take to send a whole request (slow clients are cut "
                       "off).",
        },
        {
                .section = "http",
                .name = "max_connections",
                .type = WGF_CONF_UINT,
                .offset = S(max_connections),
                .def = "4096",
                .min = 1,
                .max = 1000000,
                .doc = "Connections open at once; one more is closed as soon as it is "
                       "accepted.",
        },
        {
                .section = "http",
                .name = "max_connections_per_client",
                .type = WGF_CONF_UINT,
                .offset = S(max_connections_per_client),
                .def = "64",
                .min = 1,
                .max = 1000000,
                .doc = "Connections open at once from one address (trusted proxies are not "
                       "limited).",
        },
        {
                .section = "http",
                .name = "trusted_proxies",
                .type = WGF_CONF_STRING,
                .offset = S(trusted_proxies),
                .size = sizeof(((struct settings *)0)->trusted_proxies),
                .def = "",
                .validate = validate_proxies,
                .doc = "Addresses or prefixes of proxies in front of the API whose "
                       "X-Forwarded-For names the client in the log (none by default).",
        },
        {
                .section = "http",
                .name = "request_deadline",
                .type = WGF_CONF_DURATION,
                .offset = S(request_deadline_ms),
                .def = "10s",
                .min = 100,
                .max = 600 * SECOND,
                .doc = "Longest a request may wait for a database connection before a 503.",
        },
        {
                .section = "api",
                .name = "key_hash_secret_file",
                .type = WGF_CONF_STRING,
                .offset = S(key_hash_secret_file),
                .size = sizeof(((struct settings *)0)->key_hash_secret_file),
                .def = WGF_SYSCONFDIR "/api-key.secret",
                .doc = "File (mode 0600) with 32 random bytes in base64 that key the hashes of "
                       "API keys; the same on every coordinator. Make it with: head -c 32 "
                       "/dev/urandom | base64.",
        },
        {
                .section = "api",
                .name = "reservation_ttl",
                .type = WGF_CONF_DURATION,
                .offset = S(reservation_ttl_ms),
                .def = "24h",
                .min = SECOND,
                .max = 30 * 24 * HOUR,
                .flags = WGF_CONF_F_RELOADABLE,
                .doc = "How long a reserved address waits for the router's public key before it "
                       "expires and returns to the pool.",
        },
        {
                .section = "api",
                .name = "address_cooldown",
                .type = WGF_CONF_DURATION,
                .offset = S(address_cooldown_ms),
                .def = "1h",
                .min = 0,
                .max = 30 * 24 * HOUR,
                .flags = WGF_CONF_F_RELOADABLE,
                .doc = "How long a released address rests before it is handed out again.",
        },
        {
                .section = "api",
                .name = "persistent_keepalive",
                .type = WGF_CONF_UINT,
                .offset = S(persistent_keepalive),
                .def = "25",
                .min = 0,
                .max = 65535,
                .flags = WGF_CONF_F_RELOADABLE,
                .doc = "PersistentKeepalive (seconds) in the routers' setup text and peers; a "
                       "router keeps the value it had when its key was submitted.",
        },
        {
                .section = "api",
                .name = "server_online_within",
                .type = WGF_CONF_DURATION,
                .offset = S(server_online_ms),
                .def = "90s",
                .min = SECOND,
                .max = 24 * HOUR,
                .flags = WGF_CONF_F_RELOADABLE,
                .doc = "A server whose agent was heard from this recently counts as online.",
        },
        {
                .section = "api",
                .name = "failed_auth_per_minute",
                .type = WGF_CONF_UINT,
                .offset = S(failed_auth_per_minute),
                .def = "60",
                .min = 0,
                .max = 1000000,
                .doc = "Failed authentications one client address may make a minute (and at "
                       "once); past them its requests get 429 without any database work. 0: "
                       "no limit.",
        },
        {
                .section = "api",
                .name = "placement",
                .type = WGF_CONF_ENUM,
                .offset = S(placement),
                .def = "online",
                .choices = settings_placement_choices,
                .flags = WGF_CONF_F_RELOADABLE,
                .doc = "Where a reservation that names no server goes: online (the least used "
                       "server whose agent is online) or any (the least used server).",
        },
        {
                .section = "sweeper",
                .name = "interval",
                .type = WGF_CONF_DURATION,
                .offset = S(sweep_interval_ms),
                .def = "30s",
                .min = 100,
                .max = HOUR,
                .doc = "How often expired reservations are released (one coordinator at a time).",
        },
        {
                .section = "webhooks",
                .name = "deliver",
                .type = WGF_CONF_BOOL,
                .offset = S(webhooks_deliver),
                .def = "true",
                .doc = "Whether this coordinator sends webhook deliveries (any number of "
                       "coordinators may; each delivery is sent by one).",
        },
        {
                .section = "webhooks",
                .name = "concurrency",
                .type = WGF_CONF_UINT,
                .offset = S(webhooks_concurrency),
                .def = "16",
                .min = 1,
                .max = 1000,
                .doc = "Deliveries in flight at once from this coordinator; each webhook has "
                       "at most one, so its events arrive in order.",
        },
        {
                .section = "webhooks",
                .name = "poll_interval",
                .type = WGF_CONF_DURATION,
                .offset = S(webhooks_poll_ms),
                .def = "1s",
                .min = 50,
                .max = 60 * SECOND,
                .doc = "How often due deliveries are looked for.",
        },
        {
                .section = "webhooks",
                .name = "connect_timeout",
                .type = WGF_CONF_DURATION,
                .offset = S(webhooks_connect_timeout_ms),
                .def = "5s",
                .min = 100,
                .max = 60 * SECOND,
                .doc = "Longest a receiver may take to accept the connection.",
        },
        {
                .section = "webhooks",
                .name = "timeout",
                .type = WGF_CONF_DURATION,
                .offset = S(webhooks_timeout_ms),
                .def = "10s",
                .min = 100,
                .max = 300 * SECOND,
                .doc = "Longest a whole attempt may take, the receiver's answer included.",
        },
        {
                .section = "webhooks",
                .name = "retry_min",
                .type = WGF_CONF_DURATION,
                .offset = S(webhooks_retry_min_ms),
                .def = "10s",
                .min = 10,
                .max = HOUR,
                .doc = "The wait after a first failed attempt; it doubles with each failure "
                       "(with jitter).",
        },
        {
                .section = "webhooks",
                .name = "retry_max",
                .type = WGF_CONF_DURATION,
                .offset = S(webhooks_retry_max_ms),
                .def = "1h",
                .min = 10,
                .max = 24 * HOUR,
                .doc = "The longest wait between two attempts.",
        },
        {
                .section = "webhooks",
                .name = "retry_for",
                .type = WGF_CONF_DURATION,
                .offset = S(webhooks_retry_for_ms),
                .def = "24h",
                .min = 100,
                .max = 30 * 24 * HOUR,
                .doc = "How long after its event a delivery is retried before it is marked "
                       "dead.",
        },
        {
                .section = "webhooks",
                .name = "keep",
                .type = WGF_CONF_DURATION,
                .offset = S(webhooks_keep_ms),
                .def = "7d",
                .min = 1000,
                .max = 365 * 24 * HOUR,
                .doc = "How long the delivery log keeps a delivered or dead delivery.",
        },
        {
                .section = "webhooks",
                .name = "offline_confirm",
                .type = WGF_CONF_DURATION,
                .offset = S(webhooks_offline_confirm_ms),
                .def = "30s",
                .min = 0,
                .max = HOUR,
                .doc = "server.offline is announced only when the server is still unheard "
                       "this long after a check first found it unheard (and at a later "
                       "check): one late agent message pages nobody.",
        },
        {
                .section = "webhooks",
                .name = "allowed_networks",
                .type = WGF_CONF_STRING,
                .offset = S(webhooks_allowed),
                .size = sizeof(((struct settings *)0)->webhooks_allowed),
                .def = "",
                .validate = validate_webhook_networks,
                .doc = "Addresses or prefixes webhooks may call although they are loopback, "
                       "private or reserved (refused by default, so a URL cannot reach "
                       "internal services).",
        },
        {
                .section = "metrics",
                .name = "listen",
                .type = WGF_CONF_STRING,
                .offset = S(metrics_listen),
                .size = sizeof(((struct settings *)0)->metrics_listen),
                .def = "127.0.0.1:9469",
                .validate = wgf_scrape_check_listen,
                .doc = "Address and port of the Prometheus /metrics endpoint (its own "
                       "listener, never the API's); empty turns it off. Loopback unless a "
                       "firewall keeps strangers out.",
        },
        {
                .section = "metrics",
                .name = "refresh_interval",
                .type = WGF_CONF_DURATION,
                .offset = S(metrics_refresh_ms),
                .def = "15s",
                .min = 100,
                .max = HOUR,
                .doc = "How often the values only the database knows (servers online, revision "
                       "lag, pool use, routers by status, apply latency) are read; a scrape "
                       "serves the last ones read.",
        },
        {
                .section = "channel",
                .name = "listen",
                .type = WGF_CONF_STRING,
                .offset = S(channel_listen),
                .size = sizeof(((struct settings *)0)->channel_listen),
                .def = "tcp://127.0.0.1:7800",
                .doc = "nng URL agents dial (tcp://0.0.0.0:7800 to reach them, or "
                       "tls+tcp://0.0.0.0:7800 with the tls_ settings below; port 0 picks a free "
                       "one).",
        },
        {
                .section = "channel",
                .name = "signing_key_file",
                .type = WGF_CONF_STRING,
                .offset = S(channel_key_file),
                .size = sizeof(((struct settings *)0)->channel_key_file),
                .def = WGF_SYSCONFDIR "/coordinator.key",
                .doc = "The coordinator's Ed25519 key (mode 0600), the same on every replica; "
                       "'wgfleet-coordinator channel-key' makes it and prints the public key "
                       "agents pin.",
        },
        {
                .section = "channel",
                .name = "previous_public_keys",
                .type = WGF_CONF_STRING,
                .offset = S(channel_previous_keys),
                .size = sizeof(((struct settings *)0)->channel_previous_keys),
                .def = "",
                .validate = validate_previous_keys,
                .doc = "While the signing key is rotated: the public keys of earlier ones "
                       "(comma-separated, at most 4), which agents may still address their "
                       "requests to. Answers are always signed with signing_key_file.",
        },
        {
                .section = "channel",
                .name = "tls_cert_file",
                .type = WGF_CONF_STRING,
                .offset = S(channel_tls_cert_file),
                .size = sizeof(((struct settings *)0)->channel_tls_cert_file),
                .def = "",
                .doc = "With a tls+tcp:// listen URL: the PEM certificate chain it presents, the "
                       "coordinator's own certificate first, naming in its subjectAltName the DNS "
                       "name agents dial.",
        },
        {
                .section = "channel",
                .name = "tls_key_file",
                .type = WGF_CONF_STRING,
                .offset = S(channel_tls_key_file),
                .size = sizeof(((struct settings *)0)->channel_tls_key_file),
                .def = "",
                .doc = "The unencrypted PEM private key of tls_cert_file (mode 0600).",
        },
        {
                .section = "channel",
                .name = "tls_client_ca_file",
                .type = WGF_CONF_STRING,
                .offset = S(channel_tls_client_ca_file),
                .size = sizeof(((struct settings *)0)->channel_tls_client_ca_file),
                .def = "",
                .doc = "PEM CA certificates: when set, agents must present a certificate they "
                       "verify. Empty asks for none (agents' signatures identify them either way).",
        },
        {
                .section = "channel",
                .name = "max_clock_skew",
                .type = WGF_CONF_DURATION,
                .offset = S(channel_max_skew_ms),
                .def = "60s",
                .min = SECOND,
                .max = HOUR,
                .doc = "Messages timestamped further than this from our clock are refused as "
                       "stale.",
        },
        {
                .section = "channel",
                .name = "poll_wait",
                .type = WGF_CONF_DURATION,
                .offset = S(channel_wait_ms),
                .def = "25s",
                .min = 100,
                .max = 10 * 60 * SECOND,
                .doc = "Longest an agent's long poll is held when nothing changes; agents' "
                       "[coordinator] poll_wait must be at least this.",
        },
        {
                .section = "channel",
                .name = "handshake_window",
                .type = WGF_CONF_DURATION,
                .offset = S(handshake_window_ms),
                .def = "180s",
                .min = SECOND,
                .max = 24 * HOUR,
                .doc = "A router whose last handshake is younger than this is connected "
                       "(WireGuard drops sessions after 180 s).",
        },
        {
                .section = "channel",
                .name = "max_deltas",
                .type = WGF_CONF_UINT,
                .offset = S(channel_max_deltas),
                .def = "1000",
                .min = 1,
                .max = 1000000,
                .doc = "An agent further behind than this many changes gets a snapshot instead.",
        },
        {
                .section = "channel",
                .name = "snapshot_page",
                .type = WGF_CONF_UINT,
                .offset = S(channel_snapshot_page),
                .def = "8192",
                .min = 16,
                .max = 30000,
                .doc = "Peers per page of a snapshot; a page must fit the 4 MiB envelope "
                       "(about 100 bytes a peer).",
        },
        {
                .section = "channel",
                .name = "max_agents",
                .type = WGF_CONF_UINT,
                .offset = S(channel_max_agents),
                .def = "10000",
                .min = 1,
                .max = 100000,
                .doc = "Agents whose long polls may be held at once.",
        },
        {
                .section = "channel",
                .name = "db_connections",
                .type = WGF_CONF_UINT,
                .offset = S(channel_db_connections),
                .def = "4",
                .min = 1,
                .max = 64,
                .doc = "Connections to PostgreSQL for agents' messages, apart from the API's "
                       "[database] connections, so neither can starve the other.",
        },
        {
                .section = "channel",
                .name = "db_queue_max",
                .type = WGF_CONF_UINT,
                .offset = S(channel_db_queue_max),
                .def = "256",
                .min = 1,
                .max = 100000,
                .doc = "Agent messages that may wait for one of those connections; past this "
                       "they are answered 'overloaded'.",
        },
        {
                .section = "channel",
                .name = "db_deadline",
                .type = WGF_CONF_DURATION,
                .offset = S(channel_db_deadline_ms),
                .def = "5s",
                .min = 100,
                .max = 60 * SECOND,
                .doc = "An agent message still waiting for a connection after this is answered "
                       "'overloaded' without being sent.",
        },
        {
                .section = "channel",
                .name = "max_connections",
                .type = WGF_CONF_UINT,
                .offset = S(channel_max_connections),
                .def = "11000",
                .min = 1,
                .max = 200000,
                .doc = "Agent connections held at once; more are closed as they come (keep it "
                       "above max_agents).",
        },
        {
                .section = "channel",
                .name = "max_connections_per_address",
                .type = WGF_CONF_UINT,
                .offset = S(channel_max_connections_per_address),
                .def = "16",
                .min = 1,
                .max = 200000,
                .doc = "Agent connections from one remote address (raise it for agents behind "
                       "one NAT).",
        },
        {
                .section = "channel",
                .name = "idle_timeout",
                .type = WGF_CONF_DURATION,
                .offset = S(channel_idle_timeout_ms),
                .def = "60s",
                .min = SECOND,
                .max = HOUR,
                .doc = "A connection with no request outstanding that delivers no whole message "
                       "for this long is closed, with any message half sent.",
        },
        {
                .section = "channel",
                .name = "agent_messages_per_second",
                .type = WGF_CONF_UINT,
                .offset = S(channel_agent_rate),
                .def = "200",
                .min = 1,
                .max = 1000000,
                .doc = "Messages one agent key may send a second, on average; past it (and its "
                       "burst) they are refused unverified. Past twice both, a connection's "
                       "messages are dropped unread.",
        },
        {
                .section = "channel",
                .name = "agent_message_burst",
                .type = WGF_CONF_UINT,
                .offset = S(channel_agent_burst),
                .def = "400",
                .min = 1,
                .max = 1000000,
                .doc = "Messages one agent key may send at once beyond its rate (a restart's "
                       "snapshot pages and report chunks come together).",
        },
        {
                .section = "channel",
                .name = "refusal_log_interval",
                .type = WGF_CONF_DURATION,
                .offset = S(channel_log_interval_ms),
                .def = "10s",
                .min = SECOND,
                .max = HOUR,
                .doc = "Refused agent messages are logged as counts per reason this often, "
                       "not a line each.",
        },
        {
                .section = "log",
                .name = "level",
                .type = WGF_CONF_ENUM,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = S(log_level),
                .def = "info",
                .choices = wgf_log_level_choices,
                .doc = "Least severe level written to stderr: error, warning, notice, info or "
                       "debug.",
        },
};

/* TLS settings go with a tls+tcp:// listen URL, and only with one; the metrics
 * listener is not the API's. */
static int check_settings(const void *cfg, struct wgf_err *err)
{
	const struct settings *s = cfg;
	const char *url = s->channel_listen, *set = NULL;
	bool own = s->channel_tls_cert_file[0] && s->channel_tls_key_file[0];
	size_t n = strlen(s->listen);

	if (s->channel_tls_cert_file[0])
		set = "tls_cert_file";
	else if (s->channel_tls_key_file[0])
		set = "tls_key_file";
	else if (s->channel_tls_client_ca_file[0])
		set = "tls_client_ca_file";
	/* "host:0" twice is two free ports. */
	if (s->metrics_listen[0] && strcmp(s->metrics_listen, s->listen) == 0 &&
	    (n < 2 || strcmp(s->listen + n - 2, ":0") != 0))
		return wgf_err_set(err, -EINVAL,
		                   "[metrics] listen '%s' is the API's address: give it a port of "
		                   "its own",
		                   s->metrics_listen);
	if (!wgf_tls_url_is_tls(url) && set)
		return wgf_err_set(err, -EINVAL,
		                   "[channel] %s is set, but listen '%s' is not a tls+tcp:// URL "
		                   "(TLS settings apply only to tls+tcp://)",
		                   set, url);
	if (wgf_tls_url_is_tls(url) && !own)
		return wgf_err_set(err, -EINVAL,
		                   "[channel] listen '%s' is a tls+tcp:// URL: set "
		                   "tls_cert_file and tls_key_file (its certificate chain and "
		                   "private key)",
		                   url);
	return 0;
}

const struct wgf_conf_table settings_table = {
        .entries = entries,
        .n_entries = sizeof(entries) / sizeof(entries[0]),
        .check = check_settings,
};

int settings_log_level(const struct settings *s)
{
	return LOG_ERR + s->log_level;
}
