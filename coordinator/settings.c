/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* settings: the coordinator's option table and the checks its values need. */
#include "settings.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"

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

static const struct wgf_conf_entry entries[] = {
        {
                .section = "database",
                .name = "conninfo",
                .type = WGF_CONF_STRING,
                .offset = offsetof(struct settings, conninfo),
                .size = SETTINGS_CONNINFO_MAX,
                .def = "dbname=wgfleet",
                .validate = validate_conninfo,
                .doc = "libpq connection string of the wgfleet database (keep any password in "
                       "a passfile, not here).",
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

int settings_log_level(const struct settings *s)
{
	return LOG_ERR + s->log_level;
}
