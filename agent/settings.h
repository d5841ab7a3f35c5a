/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* settings: the agent's configuration file, described once as a table. */
#ifndef WGF_AGENT_SETTINGS_H
#define WGF_AGENT_SETTINGS_H

/*
 * /etc/wgfleet/agent.conf, parsed by common/conf.c from settings_table;
 * `wgfleet-agent sample-config` prints the table as a commented file, and
 * deploy/agent.conf is that output. Options marked reloadable in the table change on
 * SIGHUP (settings_reload); the others need a restart.
 *
 * Derived values (the private key file's default, which follows state_directory, the
 * static peers decoded from their base64 list, the routable networks parsed from
 * theirs) come from the accessors below, so the struct stays what the file says.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cidr.h"
#include "conf.h"
#include "key.h"
#include "tls.h"

#define SETTINGS_STATIC_PEERS_MAX 8
#define SETTINGS_STATIC_FILE_MAX  65536 /* keys in [wireguard] static_peers_file */
#define SETTINGS_ROUTABLE_MAX     16
#define SETTINGS_URLS_MAX         8
#define SETTINGS_COORD_KEYS_MAX   4 /* pinned coordinator keys (one, two while rotating) */
#define SETTINGS_KEY_FILE         "wireguard.key"

enum settings_backend {
	SETTINGS_BACKEND_KERNEL,
	SETTINGS_BACKEND_USERSPACE,
};

struct settings {
	char state_directory[PATH_MAX / 4];
	uint64_t reconcile_interval_ms;

	char interface[16];
	int backend; /* enum settings_backend */
	char uapi_socket_directory[PATH_MAX / 4];
	uint64_t listen_port; /* 0: leave the interface's (a new one gets a random port) */
	char address[WGF_CIDR_STRLEN];
	char private_key_file[PATH_MAX / 4]; /* "": <state_directory>/wireguard.key */
	bool manage_identity;
	char static_peers[WGF_CONF_LINE_MAX + 1];
	char static_peers_file[512];
	bool adopt; /* keep (and report) peers that are neither desired nor static */
	char routable[WGF_CONF_LINE_MAX + 1]; /* "": none besides the coordinator's */

	char metrics_listen[128]; /* "": no /metrics */
	uint64_t monitor_interval_ms;
	uint64_t monitor_full_interval_ms;

	char coordinator_urls[WGF_CONF_LINE_MAX + 1]; /* "": no coordinator */
	char coordinator_public_key[SETTINGS_COORD_KEYS_MAX * (WGF_KEY_B64_LEN + 1)];
	char server[64];
	uint64_t resync_interval_ms;
	uint64_t request_timeout_ms;
	uint64_t poll_wait_ms; /* the coordinators' long-poll wait */
	uint64_t max_clock_skew_ms;
	char tls_ca_file[PATH_MAX / 4];
	char tls_server_name[WGF_TLS_HOST_MAX]; /* "": the host of each URL */
	char tls_cert_file[PATH_MAX / 4];
	char tls_key_file[PATH_MAX / 4];

	int log_level; /* index into wgf_log_level_choices */
};

extern const struct wgf_conf_table settings_table;

/* The level for wgf_log_init(). */
int settings_log_level(const struct settings *s);

/* The private key file: the configured one, or <state_directory>/wireguard.key. */
void settings_private_key_file(const struct settings *s, char *out, size_t size);

/*
 * Decodes static_peers (validated when loaded) into keys; returns how many (at most
 * SETTINGS_STATIC_PEERS_MAX).
 */
size_t settings_static_peers(const struct settings *s,
                             uint8_t keys[SETTINGS_STATIC_PEERS_MAX][WGF_KEY_LEN]);

/*
 * Every static peer: static_peers and the keys of static_peers_file, in a new array
 * (free() it) of *ret_n. -errno with err naming the file and line when the file cannot
 * be read or holds something else than keys, comments and blank lines.
 */
int settings_static_peer_keys(const struct settings *s, uint8_t (**ret)[WGF_KEY_LEN], size_t *ret_n,
                              struct wgf_err *err);

/*
 * Parses routable (validated when loaded) into nets; returns how many (at most
 * SETTINGS_ROUTABLE_MAX).
 */
size_t settings_routable(const struct settings *s, struct wgf_cidr nets[SETTINGS_ROUTABLE_MAX]);

/*
 * Splits coordinator_urls (validated when loaded) into at most max URLs pointing into
 * buf (size bytes, a copy); returns how many.
 */
/* The pinned coordinator keys ([coordinator] public_key, validated), at most max; how many. */
size_t settings_coordinator_keys(const struct settings *s, uint8_t (*keys)[32], size_t max);

size_t settings_coordinator_urls(const struct settings *s, char *buf, size_t size,
                                 const char **urls, size_t max);

/*
 * What the dialer of url needs for TLS: the configured files, and the server name to
 * check (tls_server_name, or the host of url written into host, size bytes).
 */
void settings_tls_files(const struct settings *s, const char *url, struct wgf_tls_files *f,
                        char *host, size_t size);

/* The agent's signing key: <state_directory>/signing.key (wgfleet-agent init makes it). */
void settings_signing_key_path(const struct settings *s, char *out, size_t size);

/* The desired-state cache: <state_directory>/desired.json. */
void settings_cache_path(const struct settings *s, char *out, size_t size);

/* The configured backend for the configured interface; -errno from its constructor. */
int settings_backend_new(const struct settings *s, struct backend **ret);

/* What ensure_device needs; cfg->private_key_file points into key_path (size bytes). */
void settings_device_cfg(const struct settings *s, struct backend_device_cfg *cfg, char *key_path,
                         size_t size);

/*
 * Takes the reloadable options of next into cur. For each other option whose value
 * differs, calls changed(section, name) so the caller can warn that it waits for a
 * restart.
 */
void settings_reload(struct settings *cur, const struct settings *next,
                     void (*changed)(const char *section, const char *name));

#endif
