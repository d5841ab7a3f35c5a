/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* log: levelled logfmt lines on stderr, the same in every wgfleet program. */
#ifndef WGF_COMMON_LOG_H
#define WGF_COMMON_LOG_H

/*
 * One line per event, in logfmt, on stderr (journald or the test harness captures it):
 *
 *   ts=2026-11-25T10:38:25.123Z level=info mod=db msg="Connected to PostgreSQL" host=/tmp/pg
 *
 * (values are quoted only when they need it: msg=Connected stands bare).
 *
 * The macros test the level before any formatting is done, so a debug line that is
 * off costs one comparison. `mod` is the LOG_MODULE a .c file defines before it
 * includes this header (the program's name when it defines none).
 *
 * Extra fields are given as key/value string pairs. Values are quoted and escaped when
 * they need it. Keys that name secrets (private_key, password, token, secret, api_key,
 * preshared_key, and any key ending in _secret or _token) are written as
 * key=[redacted] whatever the value: code must never pass a secret, and this is the
 * net under that rule, not a licence to rely on it.
 *
 * The logger is safe to call from several threads; each line is written with one
 * write(2) so lines never interleave.
 */

#include <stdbool.h>
#include <stddef.h>

enum wgf_log_level {
	LOG_ERR = 3,
	LOG_WARNING = 4,
	LOG_NOTICE = 5,
	LOG_INFO = 6,
	LOG_DEBUG = 7,
};

struct wgf_log_field {
	const char *key;
	const char *value; /* NULL is written as key="" */
};

extern int wgf_log_max_level;

/* "error" .. "debug", NULL-terminated: entry i is level LOG_ERR + i (for config enums). */
extern const char *const wgf_log_level_choices[];

/* Sets the program name used for `mod` and the least severe level that is written. */
void wgf_log_init(const char *ident, int max_level);

/* Redirects output to fd (default 2); for tests. */
void wgf_log_set_fd(int fd);

/* Parses "error", "warning", "notice", "info" or "debug"; -EINVAL otherwise. */
int wgf_log_level_from_string(const char *s, int *ret_level);
const char *wgf_log_level_to_string(int level);

/* True when a field of that name is never written in clear. */
bool wgf_log_key_is_secret(const char *key);

void wgf_log_write(int level, const char *mod, const struct wgf_log_field *fields, size_t n_fields,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Like wgf_log_write, then appends err="<text of r>" and returns r (a negative errno). */
int wgf_log_write_errno(int level, const char *mod, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#ifndef LOG_MODULE
#define LOG_MODULE NULL
#endif

#define wgf_log_enabled(level) ((level) <= wgf_log_max_level)

#define log_full(level, ...)                                                      \
	do {                                                                      \
		if (wgf_log_enabled(level))                                       \
			wgf_log_write((level), LOG_MODULE, NULL, 0, __VA_ARGS__); \
	} while (0)

/* log_fields(LOG_INFO, "Reserved", {"tenant", slug}, {"ip", ip}); */
#define log_fields(level, msg, ...)                                                              \
	do {                                                                                     \
		if (wgf_log_enabled(level)) {                                                    \
			const struct wgf_log_field f_[] = {__VA_ARGS__};                         \
			wgf_log_write((level), LOG_MODULE, f_, sizeof(f_) / sizeof(f_[0]), "%s", \
			              (msg));                                                    \
		}                                                                                \
	} while (0)

#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)

/* return log_errno(LOG_ERR, r, "Failed to open '%s'", path); logs only if enabled. */
#define log_errno(level, r, ...) \
	(wgf_log_enabled(level) ? wgf_log_write_errno((level), LOG_MODULE, (r), __VA_ARGS__) : (r))

#endif
