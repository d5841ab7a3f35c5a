/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* settings: the coordinator's configuration file, described once as a table. */
#ifndef WGF_COORDINATOR_SETTINGS_H
#define WGF_COORDINATOR_SETTINGS_H

/*
 * /etc/wgfleet/coordinator.conf, parsed by common/conf.c from settings_table. The
 * table is the documentation: `wgfleet-coordinator sample-config` prints it, and
 * deploy/coordinator.conf is that output (a test keeps the two equal).
 */

#include <stdint.h>

#include "conf.h"

#define SETTINGS_CONNINFO_MAX      1024
#define SETTINGS_PREVIOUS_KEYS_MAX 4 /* [channel] previous_public_keys */

struct settings {
	char conninfo[SETTINGS_CONNINFO_MAX];
	uint64_t db_connections;
	uint64_t db_queue_max;
	uint64_t statement_timeout_ms;
	char listen[128];
	uint64_t request_timeout_ms;
	char key_hash_secret_file[512];
	uint64_t reservation_ttl_ms;
	uint64_t address_cooldown_ms;
	uint64_t persistent_keepalive;
	uint64_t server_online_ms;
	int placement; /* index into settings_placement_choices */
	uint64_t failed_auth_per_minute;
	char trusted_proxies[192];
	uint64_t max_connections;
	uint64_t max_connections_per_client;
	uint64_t request_deadline_ms;
	uint64_t sweep_interval_ms;
	char metrics_listen[128]; /* "": no /metrics */
	uint64_t metrics_refresh_ms;
	char channel_listen[256];
	char channel_key_file[512];
	char channel_previous_keys[SETTINGS_PREVIOUS_KEYS_MAX * 46];
	char channel_tls_cert_file[512];
	char channel_tls_key_file[512];
	char channel_tls_client_ca_file[512];
	uint64_t channel_max_skew_ms;
	uint64_t channel_wait_ms;
	uint64_t handshake_window_ms;
	uint64_t channel_max_deltas;
	uint64_t channel_snapshot_page;
	uint64_t channel_max_agents;
	uint64_t channel_db_connections;
	uint64_t channel_db_queue_max;
	uint64_t channel_db_deadline_ms;
	uint64_t channel_log_interval_ms;
	uint64_t channel_max_connections;
	uint64_t channel_max_connections_per_address;
	uint64_t channel_idle_timeout_ms;
	uint64_t channel_agent_rate;
	uint64_t channel_agent_burst;
	bool webhooks_deliver;
	uint64_t webhooks_concurrency;
	uint64_t webhooks_poll_ms;
	uint64_t webhooks_connect_timeout_ms;
	uint64_t webhooks_timeout_ms;
	uint64_t webhooks_retry_min_ms, webhooks_retry_max_ms, webhooks_retry_for_ms;
	uint64_t webhooks_keep_ms;
	uint64_t webhooks_offline_confirm_ms;
	char webhooks_allowed[512];
	int log_level; /* index into wgf_log_level_choices */
};

extern const struct wgf_conf_table settings_table;
extern const char *const settings_placement_choices[]; /* "online", "any" */

/* The syslog-style level (LOG_ERR..LOG_DEBUG) of s->log_level. */
int settings_log_level(const struct settings *s);

#endif
