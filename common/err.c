/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* err: the error convention's helpers and the seams from nng and PostgreSQL. */
#include "err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>

int wgf_err_setv(struct wgf_err *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return code;
}

int wgf_err_set(struct wgf_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wgf_err_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

void wgf_err_prefix(struct wgf_err *err, const char *fmt, ...)
{
	char prefix[WGF_ERR_MSG_MAX];
	size_t plen, mlen;
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	plen = strlen(prefix);
	mlen = strlen(err->msg);
	if (plen + mlen >= sizeof(err->msg))
		mlen = sizeof(err->msg) - 1 - plen;
	memmove(err->msg + plen, err->msg, mlen);
	memcpy(err->msg, prefix, plen);
	err->msg[plen + mlen] = '\0';
}

void wgf_err_clear(struct wgf_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

const char *wgf_strerror(int r)
{
	const char *s = r == INT_MIN ? NULL : strerrordesc_np(r < 0 ? -r : r);

	return s ? s : "Unknown error";
}

int wgf_err_from_nng(int nng_rv)
{
	static const struct {
		int nng;
		int errnum;
	} map[] = {
	        {NNG_EINTR, EINTR},
	        {NNG_ENOMEM, ENOMEM},
	        {NNG_EINVAL, EINVAL},
	        {NNG_EBUSY, EBUSY},
	        {NNG_ETIMEDOUT, ETIMEDOUT},
	        {NNG_ECONNREFUSED, ECONNREFUSED},
	        {NNG_ECLOSED, EBADF},
	        {NNG_EAGAIN, EAGAIN},
	        {NNG_ENOTSUP, ENOTSUP},
	        {NNG_EADDRINUSE, EADDRINUSE},
	        {NNG_ESTATE, EPROTO},
	        {NNG_ENOENT, ENOENT},
	        {NNG_EPROTO, EPROTO},
	        {NNG_EUNREACHABLE, EHOSTUNREACH},
	        {NNG_EADDRINVAL, EADDRNOTAVAIL},
	        {NNG_EPERM, EPERM},
	        {NNG_EMSGSIZE, EMSGSIZE},
	        {NNG_ECONNABORTED, ECONNABORTED},
	        {NNG_ECONNRESET, ECONNRESET},
	        {NNG_ECANCELED, ECANCELED},
	        {NNG_ENOFILES, EMFILE},
	        {NNG_ENOSPC, ENOSPC},
	        {NNG_EEXIST, EEXIST},
	        {NNG_EREADONLY, EROFS},
	        {NNG_EWRITEONLY, EBADF},
	        {NNG_ECRYPTO, EBADMSG},
	        {NNG_EPEERAUTH, EACCES},
	        {NNG_ENOARG, EINVAL},
	        {NNG_EAMBIGUOUS, EINVAL},
	        {NNG_EBADTYPE, EINVAL},
	        {NNG_ECONNSHUT, ESHUTDOWN},
	};

	if (nng_rv == 0)
		return 0;
	if (nng_rv & NNG_ESYSERR)
		return -(nng_rv & ~NNG_ESYSERR);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].nng == nng_rv)
			return -map[i].errnum;
	return -EIO;
}

int wgf_err_from_sqlstate(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return -EIO;
	if (strcmp(sqlstate, "23505") == 0 || strcmp(sqlstate, "23P01") == 0)
		return -EEXIST;
	if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
		return -EAGAIN;
	if (strcmp(sqlstate, "55P03") == 0 || strcmp(sqlstate, "57014") == 0)
		return -ETIMEDOUT;
	/* Class 23 (integrity) and 22 (data exception): the input was refused. */
	if (strncmp(sqlstate, "23", 2) == 0 || strncmp(sqlstate, "22", 2) == 0)
		return -EINVAL;
	/* Class 08 (connection exception) and 57P01..57P03 (shutdown, crash). */
	if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0)
		return -ECONNRESET;
	return -EIO;
}
