/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* err: the one error convention of wgfleet, and the seams to foreign error domains. */
#ifndef WGF_COMMON_ERR_H
#define WGF_COMMON_ERR_H

/*
 * Every function that can fail returns int: 0 on success, a negative errno on failure.
 * Functions that judge input a person wrote (keys, addresses, configuration lines, API
 * bodies) also take an optional `struct wgf_err *`. On failure they fill it with one
 * sentence that says exactly what is wrong, in terms the person can act on, and return
 * the same negative errno they store in it. On success they leave it untouched. The
 * message never contains secret material: a bad private key is described, not quoted.
 *
 * Other error domains are converted once, where they enter our code: nng's positive
 * NNG_E* values through wgf_err_from_nng(), PostgreSQL SQLSTATEs through
 * wgf_err_from_sqlstate(). errno itself is never used as an output channel.
 */

#include <stdarg.h>

#define WGF_ERR_MSG_MAX 256

struct wgf_err {
	int code;                  /* negative errno, 0 when nothing was recorded */
	char msg[WGF_ERR_MSG_MAX]; /* NUL-terminated, truncated if needed */
};

/* Records code and a printf-style message in err (which may be NULL); returns code. */
int wgf_err_set(struct wgf_err *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int wgf_err_setv(struct wgf_err *err, int code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

/* Puts a printf-style prefix (such as "file:12: ") in front of err's message. */
void wgf_err_prefix(struct wgf_err *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

void wgf_err_clear(struct wgf_err *err);

/* The text of a negative (or positive) errno; thread-safe, never NULL. */
const char *wgf_strerror(int r);

/* nng 1.5 returns positive NNG_E* values: maps one to a negative errno (0 stays 0). */
int wgf_err_from_nng(int nng_rv);

/*
 * Maps a five-character PostgreSQL SQLSTATE to a negative errno: unique violation
 * -EEXIST, serialization failure and deadlock -EAGAIN (retry), check and foreign-key
 * violations -EINVAL, connection problems -ECONNRESET, lock or statement timeouts
 * -ETIMEDOUT, anything else -EIO. NULL or "" means no SQLSTATE: -EIO.
 */
int wgf_err_from_sqlstate(const char *sqlstate);

#endif
