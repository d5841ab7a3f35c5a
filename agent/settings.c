/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* settings: the agent's option table. */
#include "settings.h"

#include <errno.h>
#include <stddef.h>

#include "log.h"

static int validate_absolute(const void *value, struct wgf_err *err)
{
	const char *path = value;

	if (path[0] != '/')
		return wgf_err_set(err, -EINVAL, "'%s' is not an absolute path", path);
	return 0;
}

static const struct wgf_conf_entry entries[] = {
        {
                .section = "agent",
                .name = "state_directory",
                .type = WGF_CONF_STRING,
                .offset = offsetof(struct settings, state_directory),
                .size = sizeof(((struct settings *)0)->state_directory),
                .def = WGF_STATEDIR,
                .validate = validate_absolute,
                .doc = "Directory for the agent's keys (mode 0600) and its desired-state cache.",
        },
        {
                .section = "log",
                .name = "level",
                .type = WGF_CONF_ENUM,
                .flags = WGF_CONF_F_RELOADABLE,
                .offset = offsetof(struct settings, log_level),
                .def = "info",
                .choices = wgf_log_level_choices,
                .doc = "Least severe level written to stderr: error, warning, notice, info or "
                       "debug.",
        },
};

const struct wgf_conf_table settings_table = {
        .entries = entries,
        .n_entries = sizeof(entries) / sizeof(entries[0]),
};
