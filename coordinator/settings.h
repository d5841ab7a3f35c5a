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

#include "conf.h"

#define SETTINGS_CONNINFO_MAX 1024

struct settings {
	char conninfo[SETTINGS_CONNINFO_MAX];
	int log_level; /* index into the level names: 0 error .. 4 debug */
};

extern const struct wgf_conf_table settings_table;

/* The syslog-style level (LOG_ERR..LOG_DEBUG) of s->log_level. */
int settings_log_level(const struct settings *s);

#endif
