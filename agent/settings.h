/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* settings: the agent's configuration file, described once as a table. */
#ifndef WGF_AGENT_SETTINGS_H
#define WGF_AGENT_SETTINGS_H

/*
 * /etc/wgfleet/agent.conf, parsed by common/conf.c from settings_table;
 * `wgfleet-agent sample-config` prints the table as a commented file, and
 * deploy/agent.conf is that output.
 */

#include <limits.h>

#include "conf.h"

struct settings {
	char state_directory[PATH_MAX / 4];
	int log_level; /* index into wgf_log_level_choices */
};

extern const struct wgf_conf_table settings_table;

#endif
