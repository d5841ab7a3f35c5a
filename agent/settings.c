/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* settings: the agent's option table, its checks and its reload rule. */
#include "settings.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "backend.h"
#include "cache.h"
#include "fs.h"
#include "identity.h"
#include "log.h"
#include "scrape.h"

#define FIELD(f)  offsetof(struct settings, f)
#define SIZE(f)   sizeof(((struct settings *)0)->f)
#define SECOND_MS 1000ULL
#define HOUR_MS   (3600 * SECOND_MS)

static const char *const backend_choices[] = {"kernel", "userspace", NULL};

static int validate_absolute(const void *value, struct wgf_err *err)
{
	const char *path = value;

	if (path[0] != '/')
		return wgf_err_set(err, -EINVAL, "'%s' is not an absolute path", path);
	return 0;
}

static int validate_optional_absolute(const void *value, struct wgf_err *err)
{
	const char *path = value;

	return path[0] ? validate_absolute(value, err) : 0;
}

static int validate_ifname(const void *value, struct wgf_err *err)
{
	if (!backend_ifname_is_valid(value))
		return wgf_err_set(err, -EINVAL,
		                   "'%s' is not an interface name (1 to 15 characters, no '/', ':' "
		                   "or spaces)",
		                   (const char *)value);
	return 0;
}

static int validate_address(const void *value, struct wgf_err *err)
{
	const char *text = value;
	struct wgf_cidr c;

	if (!text[0])
		return 0;
	if (!strchr(text, '/'))
		return wgf_err_set(err, -EINVAL,
		                   "'%s' has no prefix length; write the address as in "
		                   "10.100.0.1/24",
		                   text);
	return wgf_cidr_parse(&c, text, WGF_CIDR_F_HOST_BITS, err);
}

/*
 * Calls fn for each comma-separated item of text (spaces around items are allowed);
 * stops at the first error.
 */
static int for_each_item(const char *text, int (*fn)(void *ctx, const char *item, size_t i),
                         void *ctx)
{
	char item[WGF_CONF_LINE_MAX + 1];
	size_t i = 0;

	for (const char *p = text; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int r;

		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len >= sizeof(item))
			len = sizeof(item) - 1;
		memcpy(item, p, len);
		item[len] = '\0';
		r = fn(ctx, item, i++);
		if (r < 0)
			return r;
		p = end ? end + 1 : p + len;
		if (!end)
			break;
	}
	return 0;
}

static int check_key(void *ctx, const char *b64, size_t i)
{
	struct wgf_err *err = ctx;
	uint8_t key[WGF_KEY_LEN];
	int r;

	if (i >= SETTINGS_STATIC_PEERS_MAX)
		return wgf_err_set(err, -E2BIG, "more than %d static peers",
		                   SETTINGS_STATIC_PEERS_MAX);
	r = wgf_key_from_base64(key, b64, WGF_KEY_PUBLIC, err);
	if (r < 0)
		wgf_err_prefix(err, "static peer %zu: ", i + 1);
	return r;
}

/* Comma-separated nng URLs of a transport the agent speaks. */
static int validate_urls(const void *value, struct wgf_err *err)
{
	char buf[WGF_CONF_LINE_MAX + 1], *save = NULL;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", (const char *)value);
	for (char *u = strtok_r(buf, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		while (*u == ' ')
			u++;
		if (strncmp(u, "tcp://", 6) != 0 && strncmp(u, "ipc://", 6) != 0 &&
		    strncmp(u, "tls+tcp://", 10) != 0)
			return wgf_err_set(err, -EINVAL,
			                   "'%s' is not a tcp://, tls+tcp:// or ipc:// URL", u);
		if (++n > SETTINGS_URLS_MAX)
			return wgf_err_set(err, -EINVAL, "more than %d URLs", SETTINGS_URLS_MAX);
	}
	return 0;
}

/* A DNS name (or an address written as one), as a certificate's subjectAltName holds it. */
static int validate_server_name(const void *value, struct wgf_err *err)
{
	const char *name = value;

	if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
	    strlen(name))
		return wgf_err_set(err, -EINVAL,
		                   "'%s' is not a host name (letters, digits, '.', '-' and ':')",
		                   name);
	return 0;
}

static int validate_signing_keys(const void *value, struct wgf_err *err)
{
	int n = wgf_identity_public_list(value, NULL, SETTINGS_COORD_KEYS_MAX, err);

	return n < 0 ? n : 0;
}

static int validate_static_peers(const void *value, struct wgf_err *err)
{
	return for_each_item(value, check_key, err);
}

static int check_net(void *ctx, const char *text, size_t i)
{
	struct wgf_err *err = ctx;
	struct wgf_cidr c;
	int r;

	if (i >= SETTINGS_ROUTABLE_MAX)
		return wgf_err_set(err, -E2BIG, "more than %d routable networks",
		                   SETTINGS_ROUTABLE_MAX);
	r = wgf_cidr_parse(&c, text, 0, err);
	if (r < 0)
		wgf_err_prefix(err, "routable network %zu: ", i + 1);
	return r;
}

static int validate_routable(const void *value, struct wgf_err *err)
{
	return for_each_item(value, check_net, err);
}

static const struct wgf_conf_entry entries[] = {
        {
                .section = "agent",
                .name = "state_directory",
                .type = WGF_CONF_STRING,
                .offset = FIELD(state_directory),
                .size = SIZE(state_directory),
                .def = WGF_STATEDIR,
                .validate = validate_absolute,
                .doc = "Directory for the agent's keys (mode 0600) and its desired-state cache "
                       "(desired.json).",
        },
        {
                .section = "agent",
                .name = "reconcile_interval",
                .type = WGF_CONF_DURATION,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = FIELD(reconcile_interval_ms),
                .def = "30s",
                .min = 100,
                .max = 24 * HOUR_MS,
                .doc = "How often the agent compares the interface with the desired set and "
                       "repairs any drift (100ms to 1d); whole-interface reads are spaced to "
                       "take at most 1% of the time.",
        },
        {
                .section = "wireguard",
                .name = "interface",
                .type = WGF_CONF_STRING,
                .offset = FIELD(interface),
                .size = SIZE(interface),
                .def = "wg0",
                .validate = validate_ifname,
                .doc = "The WireGuard interface the agent keeps in step.",
        },
        {
                .section = "wireguard",
                .name = "backend",
                .type = WGF_CONF_ENUM,
                .offset = FIELD(backend),
                .def = "kernel",
                .choices = backend_choices,
                .doc = "kernel (generic netlink; the agent creates the interface when it is "
                       "absent) or userspace (wireguard-go or boringtun, through their UAPI "
                       "socket; start them first).",
        },
        {
                .section = "wireguard",
                .name = "uapi_socket_directory",
                .type = WGF_CONF_STRING,
                .offset = FIELD(uapi_socket_directory),
                .size = SIZE(uapi_socket_directory),
                .def = "/var/run/wireguard",
                .validate = validate_absolute,
                .doc = "Where the userspace backend finds <interface>.sock.",
        },
        {
                .section = "wireguard",
                .name = "listen_port",
                .type = WGF_CONF_UINT,
                .offset = FIELD(listen_port),
                .def = "0",
                .min = 0,
                .max = 65535,
                .doc = "UDP port of an interface the agent creates or gives a key; with "
                       "manage_identity also of an existing one. 0 leaves it to WireGuard.",
        },
        {
                .section = "wireguard",
                .name = "address",
                .type = WGF_CONF_STRING,
                .offset = FIELD(address),
                .size = SIZE(address),
                .def = "",
                .validate = validate_address,
                .doc = "Address of the interface with its prefix length (10.100.0.1/24), added "
                       "when the agent sets the interface up; empty adds none.",
        },
        {
                .section = "wireguard",
                .name = "private_key_file",
                .type = WGF_CONF_STRING,
                .offset = FIELD(private_key_file),
                .size = SIZE(private_key_file),
                .def = "",
                .validate = validate_optional_absolute,
                .doc = "The interface's private key (base64, as wg genkey writes it; mode "
                       "0600), created when needed; empty means <state_directory>/"
                       "wireguard.key.",
        },
        {
                .section = "wireguard",
                .name = "manage_identity",
                .type = WGF_CONF_BOOL,
                .offset = FIELD(manage_identity),
                .def = "false",
                .doc = "Also set the key from private_key_file and listen_port on an interface "
                       "that already has a key; otherwise its key and port are never changed.",
        },
        {
                .section = "wireguard",
                .name = "static_peers",
                .type = WGF_CONF_STRING,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = FIELD(static_peers),
                .size = SIZE(static_peers),
                .def = "",
                .validate = validate_static_peers,
                .doc = "Comma-separated base64 public keys of peers the agent never adds, "
                       "changes or removes (at most 4 fit on a line).",
        },
        {
                .section = "wireguard",
                .name = "static_peers_file",
                .type = WGF_CONF_STRING,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = FIELD(static_peers_file),
                .size = SIZE(static_peers_file),
                .def = "",
                .validate = validate_optional_absolute,
                .doc = "A file of more such keys, one a line ('#' starts a comment), read at "
                       "start and on SIGHUP; at most 65536. Refused if another user owns it "
                       "or others may write it.",
        },
        {
                .section = "wireguard",
                .name = "adopt",
                .type = WGF_CONF_BOOL,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = FIELD(adopt),
                .def = "false",
                .doc = "Keep the peers the interface has that are neither desired nor static "
                       "nor applied by the agent before (unknown peers) instead of removing "
                       "them.",
        },
        {
                .section = "wireguard",
                .name = "routable",
                .type = WGF_CONF_STRING,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = FIELD(routable),
                .size = SIZE(routable),
                .def = "",
                .validate = validate_routable,
                .doc = "Networks (at most 16) this server may route besides the coordinator's "
                       "pool; a peer with an allowed IP outside them all is refused. None "
                       "anywhere: no check.",
        },
        {
                .section = "monitor",
                .name = "interval",
                .type = WGF_CONF_DURATION,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = FIELD(monitor_interval_ms),
                .def = "5s",
                .min = 100,
                .max = HOUR_MS,
                .doc = "How often the interface's per-peer facts (handshake, endpoint, "
                       "traffic) are read (100ms to 1h); less often if one read takes over 1% "
                       "of this.",
        },
        {
                .section = "monitor",
                .name = "full_interval",
                .type = WGF_CONF_DURATION,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = FIELD(monitor_full_interval_ms),
                .def = "5m",
                .min = 100,
                .max = 24 * HOUR_MS,
                .doc = "How often the monitor reports every peer, not only those that changed "
                       "(100ms to 1d).",
        },
        {
                .section = "metrics",
                .name = "listen",
                .type = WGF_CONF_STRING,
                .offset = FIELD(metrics_listen),
                .size = sizeof(((struct settings *)0)->metrics_listen),
                .def = "127.0.0.1:9470",
                .validate = wgf_scrape_check_listen,
                .doc = "Address and port of the Prometheus /metrics endpoint; empty turns it "
                       "off. Loopback unless a firewall keeps strangers out.",
        },
        {
                .section = "coordinator",
                .name = "urls",
                .type = WGF_CONF_STRING,
                .offset = FIELD(coordinator_urls),
                .size = SIZE(coordinator_urls),
                .def = "",
                .validate = validate_urls,
                .doc = "nng URLs of the coordinators, comma-separated (replicas; the agent "
                       "uses whichever answers), e.g. tcp://coord1:7800,tcp://coord2:7800. "
                       "Empty: no coordinator, the cache alone is applied.",
        },
        {
                .section = "coordinator",
                .name = "public_key",
                .type = WGF_CONF_STRING,
                .offset = FIELD(coordinator_public_key),
                .size = SIZE(coordinator_public_key),
                .def = "",
                .validate = validate_signing_keys,
                .doc = "The coordinators' Ed25519 public key in base64 ('wgfleet-coordinator "
                       "channel-key' prints it), which signs every answer; while it is "
                       "rotated, old and new, comma-separated (at most 4).",
        },
        {
                .section = "coordinator",
                .name = "server",
                .type = WGF_CONF_STRING,
                .offset = FIELD(server),
                .size = SIZE(server),
                .def = "",
                .doc = "This server's name, as registered with the coordinator.",
        },
        {
                .section = "coordinator",
                .name = "resync_interval",
                .type = WGF_CONF_DURATION,
                .offset = FIELD(resync_interval_ms),
                .def = "30s",
                .min = SECOND_MS,
                .max = HOUR_MS,
                .doc = "How often the agent asks for changes even without a hint, so a lost "
                       "hint costs latency, never correctness; a long poll answered without "
                       "news counts as one, so it starts over.",
        },
        {
                .section = "coordinator",
                .name = "request_timeout",
                .type = WGF_CONF_DURATION,
                .offset = FIELD(request_timeout_ms),
                .def = "10s",
                .min = 100,
                .max = 10 * 60 * SECOND_MS,
                .doc = "How long a sync or report waits for an answer; a request that gets "
                       "none closes its connection and the agent dials afresh.",
        },
        {
                .section = "coordinator",
                .name = "poll_wait",
                .type = WGF_CONF_DURATION,
                .offset = FIELD(poll_wait_ms),
                .def = "25s",
                .min = 100,
                .max = 10 * 60 * SECOND_MS,
                .doc = "The coordinators' [channel] poll_wait (at least it): a long poll "
                       "unanswered for this plus request_timeout closes its connection.",
        },
        {
                .section = "coordinator",
                .name = "max_clock_skew",
                .type = WGF_CONF_DURATION,
                .offset = FIELD(max_clock_skew_ms),
                .def = "60s",
                .min = SECOND_MS,
                .max = HOUR_MS,
                .doc = "Answers timestamped further than this from our clock are refused.",
        },
        {
                .section = "coordinator",
                .name = "tls_ca_file",
                .type = WGF_CONF_STRING,
                .offset = FIELD(tls_ca_file),
                .size = SIZE(tls_ca_file),
                .def = "",
                .validate = validate_optional_absolute,
                .doc = "PEM CA certificates that verify the coordinators' certificates; "
                       "required with tls+tcp:// URLs, where every URL must be one.",
        },
        {
                .section = "coordinator",
                .name = "tls_server_name",
                .type = WGF_CONF_STRING,
                .offset = FIELD(tls_server_name),
                .size = SIZE(tls_server_name),
                .def = "",
                .validate = validate_server_name,
                .doc = "The name the coordinators' certificates must carry, a DNS name of their "
                       "subjectAltName (nng on mbedtls 2 matches an IP address only as DNS:ip); "
                       "empty: each URL's host.",
        },
        {
                .section = "coordinator",
                .name = "tls_cert_file",
                .type = WGF_CONF_STRING,
                .offset = FIELD(tls_cert_file),
                .size = SIZE(tls_cert_file),
                .def = "",
                .validate = validate_optional_absolute,
                .doc = "PEM certificate chain the agent presents when the coordinator asks for "
                       "one ([channel] tls_client_ca_file); empty presents none.",
        },
        {
                .section = "coordinator",
                .name = "tls_key_file",
                .type = WGF_CONF_STRING,
                .offset = FIELD(tls_key_file),
                .size = SIZE(tls_key_file),
                .def = "",
                .validate = validate_optional_absolute,
                .doc = "The unencrypted PEM private key of tls_cert_file (mode 0600).",
        },
        {
                .section = "log",
                .name = "level",
                .type = WGF_CONF_ENUM,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = FIELD(log_level),
                .def = "info",
                .choices = wgf_log_level_choices,
                .doc = "Least severe level written to stderr: error, warning, notice, info or "
                       "debug.",
        },
};

/* The first TLS setting that is set, or NULL. */
static const char *tls_setting(const struct settings *s)
{
	if (s->tls_ca_file[0])
		return "tls_ca_file";
	if (s->tls_server_name[0])
		return "tls_server_name";
	if (s->tls_cert_file[0])
		return "tls_cert_file";
	if (s->tls_key_file[0])
		return "tls_key_file";
	return NULL;
}

/*
 * TLS settings go with tls+tcp:// URLs, and only with them: the agent never sends in
 * clear to one replica what it hides from another.
 */
static int check_tls(const void *cfg, struct wgf_err *err)
{
	const struct settings *s = cfg;
	const char *urls[SETTINGS_URLS_MAX], *set = tls_setting(s);
	char buf[sizeof(s->coordinator_urls)], host[WGF_TLS_HOST_MAX];
	size_t n = settings_coordinator_urls(s, buf, sizeof(buf), urls, SETTINGS_URLS_MAX);

	if (!s->tls_cert_file[0] != !s->tls_key_file[0])
		return wgf_err_set(err, -EINVAL,
		                   "[coordinator] tls_cert_file and tls_key_file go together");
	if (set && n == 0)
		return wgf_err_set(err, -EINVAL,
		                   "[coordinator] %s is set, but urls names no coordinator", set);
	for (size_t i = 0; i < n; i++) {
		if (set && !wgf_tls_url_is_tls(urls[i]))
			return wgf_err_set(err, -EINVAL,
			                   "[coordinator] %s is set, but '%s' in urls is not a "
			                   "tls+tcp:// URL (TLS settings apply to every URL)",
			                   set, urls[i]);
		if (!wgf_tls_url_is_tls(urls[i]))
			continue;
		if (!s->tls_ca_file[0])
			return wgf_err_set(err, -EINVAL,
			                   "[coordinator] '%s' in urls is a tls+tcp:// URL: set "
			                   "tls_ca_file to verify the coordinator with",
			                   urls[i]);
		if (!s->tls_server_name[0] &&
		    wgf_tls_url_host(urls[i], host, sizeof(host), err) < 0) {
			wgf_err_prefix(err, "[coordinator] '%s' in urls: ", urls[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/* The checks across options, and static_peers_file read through once. */
static int check(const void *cfg, struct wgf_err *err)
{
	uint8_t(*keys)[WGF_KEY_LEN] = NULL;
	size_t n;
	int r = check_tls(cfg, err);

	if (r == 0 && ((const struct settings *)cfg)->static_peers_file[0]) {
		r = settings_static_peer_keys(cfg, &keys, &n, err);
		free(keys);
	}
	return r;
}

const struct wgf_conf_table settings_table = {
        .entries = entries,
        .n_entries = sizeof(entries) / sizeof(entries[0]),
        .check = check,
};

int settings_log_level(const struct settings *s)
{
	return LOG_ERR + s->log_level;
}

void settings_private_key_file(const struct settings *s, char *out, size_t size)
{
	if (s->private_key_file[0])
		snprintf(out, size, "%s", s->private_key_file);
	else
		snprintf(out, size, "%s/%s", s->state_directory, SETTINGS_KEY_FILE);
}

void settings_cache_path(const struct settings *s, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", s->state_directory, CACHE_FILE);
}

int settings_backend_new(const struct settings *s, struct backend **ret)
{
	if (s->backend == SETTINGS_BACKEND_USERSPACE)
		return backend_uapi_new(s->interface, s->uapi_socket_directory, ret);
	return backend_kernel_new(s->interface, ret);
}

void settings_device_cfg(const struct settings *s, struct backend_device_cfg *cfg, char *key_path,
                         size_t size)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->ifname, sizeof(cfg->ifname), "%s", s->interface);
	settings_private_key_file(s, key_path, size);
	cfg->private_key_file = key_path;
	cfg->listen_port = (uint16_t)s->listen_port;
	cfg->manage_identity = s->manage_identity;
	/* Checked when the file was loaded. */
	cfg->has_address = s->address[0] && wgf_cidr_parse(&cfg->address, s->address,
	                                                   WGF_CIDR_F_HOST_BITS, NULL) == 0;
}

struct decode_ctx {
	uint8_t (*keys)[WGF_KEY_LEN];
	size_t n;
};

static int decode_key(void *ctx, const char *b64, size_t i)
{
	struct decode_ctx *d = ctx;

	if (i >= SETTINGS_STATIC_PEERS_MAX ||
	    wgf_key_from_base64(d->keys[d->n], b64, WGF_KEY_PUBLIC, NULL) < 0)
		return -EINVAL;
	d->n++;
	return 0;
}

size_t settings_static_peers(const struct settings *s,
                             uint8_t keys[SETTINGS_STATIC_PEERS_MAX][WGF_KEY_LEN])
{
	struct decode_ctx d = {.keys = keys};

	(void)for_each_item(s->static_peers, decode_key, &d);
	return d.n;
}

/* One line of static_peers_file: a key, or nothing (blank, or a comment). */
static int file_key(char *line, size_t lineno, uint8_t out[static WGF_KEY_LEN], struct wgf_err *err)
{
	char *end;

	line[strcspn(line, "#")] = '\0';
	while (*line == ' ' || *line == '\t')
		line++;
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	if (!*line)
		return 0;
	if (wgf_key_from_base64(out, line, WGF_KEY_PUBLIC, err) < 0) {
		wgf_err_prefix(err, "line %zu: ", lineno);
		return -EINVAL;
	}
	return 1;
}

int settings_static_peer_keys(const struct settings *s, uint8_t (**ret)[WGF_KEY_LEN], size_t *ret_n,
                              struct wgf_err *err)
{
	size_t max = SETTINGS_STATIC_PEERS_MAX + SETTINGS_STATIC_FILE_MAX, n, len = 0, lineno = 0;
	uint8_t(*keys)[WGF_KEY_LEN] = calloc(max, WGF_KEY_LEN);
	char *text = NULL, *save = NULL;
	int r = 0;

	if (!keys)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	n = settings_static_peers(s, keys);
	/* Others may read the keys (they are public), not change which peers are kept. */
	if (s->static_peers_file[0])
		r = wgf_fs_read_owned(s->static_peers_file, SETTINGS_STATIC_FILE_MAX * 64, &text,
		                      &len, err);
	if (r < 0) {
		/* The message names the file. */
		wgf_err_prefix(err, "[wireguard] static_peers_file: ");
		free(keys);
		return r;
	}
	for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line && r >= 0;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (n == max) {
			r = wgf_err_set(err, -E2BIG, "more than %d keys", SETTINGS_STATIC_FILE_MAX);
			break;
		}
		r = file_key(line, lineno, keys[n], err);
		n += r > 0;
	}
	free(text);
	if (r < 0) {
		wgf_err_prefix(err, "[wireguard] static_peers_file %s: ", s->static_peers_file);
		free(keys);
		return r;
	}
	*ret = keys;
	*ret_n = n;
	return 0;
}

struct decode_nets {
	struct wgf_cidr *nets;
	size_t n;
};

static int decode_net(void *ctx, const char *text, size_t i)
{
	struct decode_nets *d = ctx;

	if (i >= SETTINGS_ROUTABLE_MAX || wgf_cidr_parse(&d->nets[d->n], text, 0, NULL) < 0)
		return -EINVAL;
	d->n++;
	return 0;
}

size_t settings_routable(const struct settings *s, struct wgf_cidr nets[SETTINGS_ROUTABLE_MAX])
{
	struct decode_nets d = {.nets = nets};

	(void)for_each_item(s->routable, decode_net, &d);
	return d.n;
}

static size_t field_size(const struct wgf_conf_entry *e)
{
	switch (e->type) {
	case WGF_CONF_STRING:
		return e->size;
	case WGF_CONF_UINT:
	case WGF_CONF_DURATION:
		return sizeof(uint64_t);
	case WGF_CONF_BOOL:
		return sizeof(bool);
	case WGF_CONF_ENUM:
		return sizeof(int);
	}
	return 0;
}

void settings_reload(struct settings *cur, const struct settings *next,
                     void (*changed)(const char *section, const char *name))
{
	for (size_t i = 0; i < settings_table.n_entries; i++) {
		const struct wgf_conf_entry *e = &settings_table.entries[i];
		char *to = (char *)cur + e->offset;
		const char *from = (const char *)next + e->offset;
		bool differs = e->type == WGF_CONF_STRING ? strcmp(to, from) != 0
		                                          : memcmp(to, from, field_size(e)) != 0;

		if (!differs)
			continue;
		if (e->flags & WGF_CONF_F_RELOADABLE)
			memcpy(to, from, field_size(e));
		else if (changed)
			changed(e->section, e->name);
	}
}

size_t settings_coordinator_keys(const struct settings *s, uint8_t (*keys)[32], size_t max)
{
	int n = wgf_identity_public_list(s->coordinator_public_key, keys, max, NULL);

	return n > 0 ? (size_t)n : 0;
}

size_t settings_coordinator_urls(const struct settings *s, char *buf, size_t size,
                                 const char **urls, size_t max)
{
	char *save = NULL;
	size_t n = 0;

	snprintf(buf, size, "%s", s->coordinator_urls);
	for (char *u = strtok_r(buf, ",", &save); u && n < max; u = strtok_r(NULL, ",", &save)) {
		while (*u == ' ')
			u++;
		if (*u)
			urls[n++] = u;
	}
	return n;
}

void settings_signing_key_path(const struct settings *s, char *out, size_t size)
{
	snprintf(out, size, "%s/signing.key", s->state_directory);
}

void settings_tls_files(const struct settings *s, const char *url, struct wgf_tls_files *f,
                        char *host, size_t size)
{
	host[0] = '\0';
	if (!s->tls_server_name[0])
		(void)wgf_tls_url_host(url, host, size, NULL); /* checked at load */
	*f = (struct wgf_tls_files){
	        .cert_file = s->tls_cert_file,
	        .key_file = s->tls_key_file,
	        .ca_file = s->tls_ca_file,
	        .server_name = s->tls_server_name[0] ? s->tls_server_name : host,
	};
}
