/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/err.c: messages, truncation, and the nng and SQLSTATE seams. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>

#include "err.h"

static void test_set(void **state)
{
	struct wgf_err err = {0};

	(void)state;
	assert_int_equal(wgf_err_set(&err, -ENOENT, "no file '%s' at line %d", "a.conf", 7),
	                 -ENOENT);
	assert_int_equal(err.code, -ENOENT);
	assert_string_equal(err.msg, "no file 'a.conf' at line 7");

	/* A second set replaces the first entirely. */
	assert_int_equal(wgf_err_set(&err, -EINVAL, "short"), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_string_equal(err.msg, "short");
}

static void test_set_null(void **state)
{
	(void)state;
	assert_int_equal(wgf_err_set(NULL, -EPERM, "ignored %d", 1), -EPERM);
	wgf_err_prefix(NULL, "nothing: ");
	wgf_err_clear(NULL);
}

__attribute__((format(printf, 3, 4))) static int setv_wrapper(struct wgf_err *err, int code,
                                                              const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = wgf_err_setv(err, code, fmt, ap);
	va_end(ap);
	return r;
}

static void test_setv(void **state)
{
	struct wgf_err err = {0};

	(void)state;
	assert_int_equal(setv_wrapper(&err, -EBUSY, "%s=%u", "x", 42U), -EBUSY);
	assert_int_equal(err.code, -EBUSY);
	assert_string_equal(err.msg, "x=42");
	assert_int_equal(setv_wrapper(NULL, -EBUSY, "%s", "y"), -EBUSY);
}

static void test_set_truncates(void **state)
{
	char longmsg[WGF_ERR_MSG_MAX * 2];
	struct wgf_err err;

	(void)state;
	memset(&err, 'Z', sizeof(err));
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	assert_int_equal(wgf_err_set(&err, -E2BIG, "%s", longmsg), -E2BIG);
	assert_int_equal(err.msg[WGF_ERR_MSG_MAX - 1], '\0');
	assert_int_equal(strlen(err.msg), WGF_ERR_MSG_MAX - 1);
	assert_memory_equal(err.msg, longmsg, WGF_ERR_MSG_MAX - 1);
}

static void test_prefix(void **state)
{
	struct wgf_err err = {0};

	(void)state;
	wgf_err_set(&err, -EINVAL, "unknown key 'x'");
	wgf_err_prefix(&err, "%s:%u: ", "wg.conf", 12U);
	assert_string_equal(err.msg, "wg.conf:12: unknown key 'x'");
	assert_int_equal(err.code, -EINVAL);

	/* Prefixing an empty message leaves just the prefix. */
	wgf_err_clear(&err);
	wgf_err_prefix(&err, "only: ");
	assert_string_equal(err.msg, "only: ");
}

static void test_prefix_long_message(void **state)
{
	char body[WGF_ERR_MSG_MAX];
	char want[WGF_ERR_MSG_MAX];
	struct wgf_err err = {0};
	const char *prefix = "file.conf:123: ";
	size_t plen = strlen(prefix);

	(void)state;
	/* The longest message that fits: 255 characters. */
	for (size_t i = 0; i < sizeof(body) - 1; i++)
		body[i] = (char)('a' + i % 26);
	body[sizeof(body) - 1] = '\0';
	wgf_err_set(&err, -EINVAL, "%s", body);
	assert_int_equal(strlen(err.msg), WGF_ERR_MSG_MAX - 1);

	wgf_err_prefix(&err, "%s", prefix);
	/* The prefix comes whole; the message is cut at the end to keep the NUL. */
	memcpy(want, prefix, plen);
	memcpy(want + plen, body, sizeof(want) - 1 - plen);
	want[sizeof(want) - 1] = '\0';
	assert_string_equal(err.msg, want);
	assert_int_equal(strlen(err.msg), WGF_ERR_MSG_MAX - 1);
}

static void test_prefix_at_the_boundary(void **state)
{
	struct {
		struct wgf_err err;
		char guard[8];
	} s;
	char body[WGF_ERR_MSG_MAX];

	(void)state;
	memset(&s, 'G', sizeof(s));
	memset(body, 'm', sizeof(body));

	/* 10 + 245 = 255: fits exactly, nothing is lost. */
	body[245] = '\0';
	wgf_err_set(&s.err, -EINVAL, "%s", body);
	wgf_err_prefix(&s.err, "%s", "0123456789");
	assert_int_equal(strlen(s.err.msg), WGF_ERR_MSG_MAX - 1);
	assert_int_equal(s.err.msg[WGF_ERR_MSG_MAX - 2], 'm');

	/* 10 + 246 = 256: one character too many; the last one goes, the NUL stays inside. */
	memset(body, 'm', sizeof(body));
	body[246] = '\0';
	wgf_err_set(&s.err, -EINVAL, "%s", body);
	wgf_err_prefix(&s.err, "%s", "0123456789");
	assert_int_equal(strlen(s.err.msg), WGF_ERR_MSG_MAX - 1);
	assert_memory_equal(s.err.msg, "0123456789mmm", 13);
	for (size_t i = 0; i < sizeof(s.guard); i++)
		assert_int_equal(s.guard[i], 'G');
}

static void test_prefix_longer_than_buffer(void **state)
{
	char prefix[WGF_ERR_MSG_MAX + 50];
	struct wgf_err err = {0};

	(void)state;
	memset(prefix, 'p', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	wgf_err_set(&err, -EINVAL, "message");
	wgf_err_prefix(&err, "%s", prefix);
	assert_int_equal(strlen(err.msg), WGF_ERR_MSG_MAX - 1);
	assert_memory_equal(err.msg, prefix, WGF_ERR_MSG_MAX - 1);
	assert_null(strstr(err.msg, "message"));
}

static void test_clear(void **state)
{
	struct wgf_err err = {0};

	(void)state;
	wgf_err_set(&err, -EIO, "something");
	wgf_err_clear(&err);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(wgf_strerror(-ENOENT), "No such file or directory");
	assert_string_equal(wgf_strerror(ENOENT), "No such file or directory");
	assert_string_equal(wgf_strerror(-EINVAL), "Invalid argument");
	assert_string_equal(wgf_strerror(-ECONNRESET), "Connection reset by peer");
	assert_string_equal(wgf_strerror(0), "Success");
	assert_string_equal(wgf_strerror(-99999), "Unknown error");
	assert_string_equal(wgf_strerror(99999), "Unknown error");
}

static void test_from_nng(void **state)
{
	(void)state;
	assert_int_equal(wgf_err_from_nng(0), 0);
	assert_int_equal(wgf_err_from_nng(NNG_EINTR), -EINTR);
	assert_int_equal(wgf_err_from_nng(NNG_ENOMEM), -ENOMEM);
	assert_int_equal(wgf_err_from_nng(NNG_EINVAL), -EINVAL);
	assert_int_equal(wgf_err_from_nng(NNG_ETIMEDOUT), -ETIMEDOUT);
	assert_int_equal(wgf_err_from_nng(NNG_ECONNREFUSED), -ECONNREFUSED);
	assert_int_equal(wgf_err_from_nng(NNG_ECLOSED), -EBADF);
	assert_int_equal(wgf_err_from_nng(NNG_EAGAIN), -EAGAIN);
	assert_int_equal(wgf_err_from_nng(NNG_EADDRINUSE), -EADDRINUSE);
	assert_int_equal(wgf_err_from_nng(NNG_ESTATE), -EPROTO);
	assert_int_equal(wgf_err_from_nng(NNG_EUNREACHABLE), -EHOSTUNREACH);
	assert_int_equal(wgf_err_from_nng(NNG_EADDRINVAL), -EADDRNOTAVAIL);
	assert_int_equal(wgf_err_from_nng(NNG_ECONNRESET), -ECONNRESET);
	assert_int_equal(wgf_err_from_nng(NNG_ECANCELED), -ECANCELED);
	assert_int_equal(wgf_err_from_nng(NNG_ENOFILES), -EMFILE);
	assert_int_equal(wgf_err_from_nng(NNG_ECRYPTO), -EBADMSG);
	assert_int_equal(wgf_err_from_nng(NNG_EPEERAUTH), -EACCES);
	assert_int_equal(wgf_err_from_nng(NNG_ECONNSHUT), -ESHUTDOWN);
	/* A system error carries its errno in the low bits. */
	assert_int_equal(wgf_err_from_nng(NNG_ESYSERR | EPIPE), -EPIPE);
	assert_int_equal(wgf_err_from_nng(NNG_ESYSERR | ENOSPC), -ENOSPC);
	/* Transport errors and unknown values have no errno of their own. */
	assert_int_equal(wgf_err_from_nng(NNG_ETRANERR | 5), -EIO);
	assert_int_equal(wgf_err_from_nng(9999), -EIO);
}

static void test_from_sqlstate(void **state)
{
	(void)state;
	assert_int_equal(wgf_err_from_sqlstate("23505"), -EEXIST);
	assert_int_equal(wgf_err_from_sqlstate("23P01"), -EEXIST);
	assert_int_equal(wgf_err_from_sqlstate("40001"), -EAGAIN);
	assert_int_equal(wgf_err_from_sqlstate("40P01"), -EAGAIN);
	assert_int_equal(wgf_err_from_sqlstate("23503"), -EINVAL);
	assert_int_equal(wgf_err_from_sqlstate("23514"), -EINVAL);
	assert_int_equal(wgf_err_from_sqlstate("22P02"), -EINVAL);
	assert_int_equal(wgf_err_from_sqlstate("08006"), -ECONNRESET);
	assert_int_equal(wgf_err_from_sqlstate("08001"), -ECONNRESET);
	assert_int_equal(wgf_err_from_sqlstate("57P01"), -ECONNRESET);
	assert_int_equal(wgf_err_from_sqlstate("57014"), -ETIMEDOUT);
	assert_int_equal(wgf_err_from_sqlstate("55P03"), -ETIMEDOUT);
	assert_int_equal(wgf_err_from_sqlstate("42P01"), -EIO);
	assert_int_equal(wgf_err_from_sqlstate("XX000"), -EIO);
	/* Garbage: wrong length, or a prefix of a known code. */
	assert_int_equal(wgf_err_from_sqlstate("garbage"), -EIO);
	assert_int_equal(wgf_err_from_sqlstate("2350"), -EIO);
	assert_int_equal(wgf_err_from_sqlstate("235050"), -EIO);
	assert_int_equal(wgf_err_from_sqlstate("23"), -EIO);
	assert_int_equal(wgf_err_from_sqlstate(""), -EIO);
	assert_int_equal(wgf_err_from_sqlstate(NULL), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_set),
	        cmocka_unit_test(test_set_null),
	        cmocka_unit_test(test_setv),
	        cmocka_unit_test(test_set_truncates),
	        cmocka_unit_test(test_prefix),
	        cmocka_unit_test(test_prefix_long_message),
	        cmocka_unit_test(test_prefix_at_the_boundary),
	        cmocka_unit_test(test_prefix_longer_than_buffer),
	        cmocka_unit_test(test_clear),
	        cmocka_unit_test(test_strerror),
	        cmocka_unit_test(test_from_nng),
	        cmocka_unit_test(test_from_sqlstate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
