/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* conf: table-driven INI configuration files (libinih underneath). */
#ifndef WGF_COMMON_CONF_H
#define WGF_COMMON_CONF_H

/*
 * Each daemon describes its options once, in a static table of struct wgf_conf_entry:
 * section, name, type, bounds, default, flags and a line of documentation. The same
 * table fills the daemon's config struct (through offsetof), checks every value,
 * writes --dump-config and the sample file, and decides what SIGHUP may change.
 *
 * The file format is the wg(8) and pgbouncer.ini family:
 *
 *   ; comment            # comment too
 *   [database]
 *   conninfo = host=/run/postgresql dbname=wgfleet
 *
 * Keys start in the first column; `key = value ; comment` strips the comment. Every
 * problem is an error that names the file and line: an unknown section or key, a key
 * given twice, a value of the wrong type or out of bounds, a line that is not
 * `[section]` or `key = value`, an over-long line. The first error wins; the config
 * struct is left holding defaults plus whatever came before it, and the caller must
 * not use it. Strings are stored in fixed arrays inside the struct, so a config owns
 * no memory and needs no free.
 *
 * Types: strings (bounded by their array), unsigned integers (decimal, min..max),
 * booleans (true/false, yes/no, on/off, 1/0), durations (a number and a unit: ms, s,
 * m, h or d; stored in milliseconds, min..max in milliseconds) and enums (one of a
 * list of words; stored as its index, an int).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define WGF_CONF_LINE_MAX 199       /* libinih's line buffer, less its NUL */
#define WGF_CONF_FILE_MAX (1 << 20) /* bytes */

enum wgf_conf_type {
	WGF_CONF_STRING,   /* char[size] */
	WGF_CONF_UINT,     /* uint64_t */
	WGF_CONF_BOOL,     /* bool */
	WGF_CONF_DURATION, /* uint64_t, milliseconds */
	WGF_CONF_ENUM,     /* int, index into choices */
};

#define WGF_CONF_F_RELOADABLE (1U << 0) /* SIGHUP may change it */
#define WGF_CONF_F_SECRET     (1U << 1) /* never printed */
#define WGF_CONF_F_REQUIRED   (1U << 2) /* no default; the file must set it */

/*
 * Extra check after the type's own, before the value is stored: `value` is the string for
 * WGF_CONF_STRING and a pointer to the parsed uint64_t, bool or int otherwise. Returns 0 or
 * a negative errno with err filled.
 */
typedef int (*wgf_conf_validate_fn)(const void *value, struct wgf_err *err);

struct wgf_conf_entry {
	const char *section;
	const char *name;
	enum wgf_conf_type type;
	unsigned flags;
	size_t offset;              /* of the field in the config struct */
	size_t size;                /* WGF_CONF_STRING: the array's size */
	const char *def;            /* default, as it would be written in the file; may be NULL */
	uint64_t min, max;          /* UINT and DURATION bounds (inclusive) */
	const char *const *choices; /* ENUM: the words, NULL-terminated */
	wgf_conf_validate_fn validate;
	const char *doc; /* one sentence for --dump-config and the sample file */
};

/*
 * A check that spans entries (one setting that needs or excludes another), run once a
 * whole file has loaded and its required keys are present. Returns 0 or a negative errno
 * with err saying which settings disagree; the loader adds the file's name.
 */
typedef int (*wgf_conf_check_fn)(const void *cfg, struct wgf_err *err);

struct wgf_conf_table {
	const struct wgf_conf_entry *entries;
	size_t n_entries;
	wgf_conf_check_fn check; /* may be NULL */
};

/* Sets every entry that has a default. */
int wgf_conf_defaults(const struct wgf_conf_table *t, void *cfg, struct wgf_err *err);

/* Sets one value as if it came from a file. err's message names the key, not a line. */
int wgf_conf_set(const struct wgf_conf_table *t, void *cfg, const char *section, const char *name,
                 const char *value, struct wgf_err *err);

/*
 * Applies defaults, then the text (named `name` in messages), then checks that every
 * required key was given, then the table's check. Errors read "NAME:LINE: what is
 * wrong", or "NAME: what is wrong" for a missing key or the table's check.
 */
int wgf_conf_load_string(const struct wgf_conf_table *t, void *cfg, const char *name,
                         const char *text, size_t len, struct wgf_err *err);
int wgf_conf_load_file(const struct wgf_conf_table *t, void *cfg, const char *path,
                       struct wgf_err *err);

/*
 * As wgf_conf_load_file, except that when `must_exist` is false and nothing is at path,
 * the defaults alone are applied (and the table's check run on them): a daemon's
 * default config file is optional, one named on the command line is not.
 */
int wgf_conf_load_optional(const struct wgf_conf_table *t, void *cfg, const char *path,
                           bool must_exist, struct wgf_err *err);

const struct wgf_conf_entry *wgf_conf_find(const struct wgf_conf_table *t, const char *section,
                                           const char *name);

/*
 * Writes the configuration as a file the loader accepts, with each entry's doc as a
 * comment. Secrets are written as "[redacted]" (commented out). With cfg NULL it writes
 * the defaults, which is how the sample files in deploy/ are made.
 */
void wgf_conf_dump(const struct wgf_conf_table *t, const void *cfg, FILE *out);

#endif
