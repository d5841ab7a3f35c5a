/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_conf: libFuzzer target for the configuration parser (common/conf.c). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

/*
 * Every input must be either accepted or refused with a message; an accepted one must
 * survive wgf_conf_dump() and a reload with the same values (the secret aside, which
 * the dump never writes). Anything else aborts.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_cfg {
	char name[16];
	uint64_t port;
	bool flag;
	uint64_t interval_ms;
	uint64_t any_ms;
	int level;
	char conninfo[24];
	char secret[16];
};

#define FIELD(f) .offset = offsetof(struct fuzz_cfg, f)
#define STR(f)   FIELD(f), .size = sizeof(((struct fuzz_cfg *)NULL)->f)

static const char *const levels[] = {"low", "mid", "high", NULL};

static const struct wgf_conf_entry fuzz_entries[] = {
        {.section = "a", .name = "name", .type = WGF_CONF_STRING, STR(name), .def = "x"},
        {.section = "a",
         .name = "port",
         .type = WGF_CONF_UINT,
         FIELD(port),
         .def = "80",
         .min = 1,
         .max = 65535},
        {.section = "a",
         .name = "flag",
         .type = WGF_CONF_BOOL,
         .flags = WGF_CONF_F_RELOADABLE,
         FIELD(flag),
         .def = "no"},
        {.section = "a",
         .name = "interval",
         .type = WGF_CONF_DURATION,
         FIELD(interval_ms),
         .def = "1s",
         .min = 100,
         .max = 86400000},
        {.section = "a",
         .name = "any",
         .type = WGF_CONF_DURATION,
         FIELD(any_ms),
         .def = "0ms",
         .min = 0,
         .max = UINT64_MAX},
        {.section = "a",
         .name = "level",
         .type = WGF_CONF_ENUM,
         FIELD(level),
         .def = "mid",
         .choices = levels},
        {.section = "b",
         .name = "conninfo",
         .type = WGF_CONF_STRING,
         .flags = WGF_CONF_F_REQUIRED,
         STR(conninfo)},
        {.section = "b",
         .name = "secret",
         .type = WGF_CONF_STRING,
         .flags = WGF_CONF_F_SECRET,
         STR(secret)},
};

static const struct wgf_conf_table fuzz_table = {
        .entries = fuzz_entries,
        .n_entries = sizeof(fuzz_entries) / sizeof(fuzz_entries[0]),
};

static void check_refusal(int r, const struct wgf_err *err)
{
	if (r >= 0 || err->code != r || err->msg[0] == '\0' ||
	    !memchr(err->msg, '\0', sizeof(err->msg)))
		abort();
}

static void check_round_trip(const struct fuzz_cfg *a)
{
	struct fuzz_cfg b;
	struct wgf_err err = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	wgf_conf_dump(&fuzz_table, a, f);
	if (fclose(f) != 0)
		abort();
	memset(&b, 0, sizeof(b));
	if (wgf_conf_load_string(&fuzz_table, &b, "dump", text, len, &err) != 0)
		abort();
	if (strcmp(a->name, b.name) != 0 || a->port != b.port || a->flag != b.flag ||
	    a->interval_ms != b.interval_ms || a->any_ms != b.any_ms || a->level != b.level ||
	    strcmp(a->conninfo, b.conninfo) != 0 || b.secret[0] != '\0')
		abort();
	/* The secret's line is always the commented, redacted one. */
	if (!strstr(text, "\n;secret = [redacted]\n") || strstr(text, "\nsecret ="))
		abort();
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_cfg cfg;
	struct wgf_err err = {0};
	int r, r2;

	memset(&cfg, 0, sizeof(cfg));
	r = wgf_conf_load_string(&fuzz_table, &cfg, "fuzz", (const char *)data, size, &err);
	if (r < 0)
		check_refusal(r, &err);
	else if (r == 0)
		check_round_trip(&cfg);
	else
		abort();

	/* The answer does not depend on whether a message was asked for. */
	memset(&cfg, 0, sizeof(cfg));
	r2 = wgf_conf_load_string(&fuzz_table, &cfg, "fuzz", (const char *)data, size, NULL);
	if (r2 != r)
		abort();
	return 0;
}
