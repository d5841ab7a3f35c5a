/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/log.c: the exact logfmt line, escaping, redaction and filtering. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define LOG_MODULE "testmod"
#include "log.h"

#define CAPTURE_MAX 65536
#define TS_LEN      24 /* 2026-11-25T10:38:25.123Z */

static int capture_fd = -1;
static char captured[CAPTURE_MAX];
static int evaluated;

/* Returns everything logged since the last call, NUL-terminated, and empties the file. */
static const char *capture(void)
{
	off_t end = lseek(capture_fd, 0, SEEK_CUR);
	ssize_t n;

	assert_true(end >= 0 && end < CAPTURE_MAX);
	n = pread(capture_fd, captured, (size_t)end, 0);
	assert_int_equal(n, end);
	captured[n] = '\0';
	assert_int_equal(ftruncate(capture_fd, 0), 0);
	assert_int_equal(lseek(capture_fd, 0, SEEK_SET), 0);
	return captured;
}

static int bump(void)
{
	return ++evaluated;
}

/*
 * Checks the "ts=YYYY-MM-DDTHH:MM:SS.mmmZ " layout at the start of line, and that the
 * time is now (within a minute); returns what follows it.
 */
static const char *skip_ts(const char *line)
{
	static const char layout[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	struct tm tm = {0};
	const char *end;
	time_t t;

	assert_true(strncmp(line, "ts=", 3) == 0);
	line += 3;
	for (size_t i = 0; i < TS_LEN; i++) {
		if (layout[i] == 'd')
			assert_true(line[i] >= '0' && line[i] <= '9');
		else
			assert_int_equal(line[i], layout[i]);
	}
	assert_int_equal(line[TS_LEN], ' ');
	end = strptime(line, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(end);
	assert_ptr_equal(end, line + 19);
	t = timegm(&tm);
	assert_true(llabs((long long)(t - time(NULL))) < 60);
	return line + TS_LEN + 1;
}

/* Asserts that exactly one line was logged and that it reads `want` after the stamp. */
static void assert_line(const char *want)
{
	const char *out = capture();
	const char *nl = strchr(out, '\n');

	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');
	assert_string_equal(skip_ts(out), want);
}

static int setup(void **state)
{
	(void)state;
	capture_fd = memfd_create("wgf-test-log", MFD_CLOEXEC);
	if (capture_fd < 0)
		return -1;
	wgf_log_set_fd(capture_fd);
	wgf_log_init("wgtest", LOG_INFO);
	evaluated = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	wgf_log_set_fd(STDERR_FILENO);
	close(capture_fd);
	capture_fd = -1;
	return 0;
}

static void test_line_shape(void **state)
{
	(void)state;
	log_info("Connected");
	assert_line("level=info mod=testmod msg=Connected\n");

	log_info("Peer %s has %d allowed IPs", "abc", 3);
	assert_line("level=info mod=testmod msg=\"Peer abc has 3 allowed IPs\"\n");
}

static void test_each_level(void **state)
{
	(void)state;
	wgf_log_init("wgtest", LOG_DEBUG);
	log_error("e");
	assert_line("level=error mod=testmod msg=e\n");
	log_warning("w");
	assert_line("level=warning mod=testmod msg=w\n");
	log_notice("n");
	assert_line("level=notice mod=testmod msg=n\n");
	log_info("i");
	assert_line("level=info mod=testmod msg=i\n");
	log_debug("d");
	assert_line("level=debug mod=testmod msg=d\n");
}

static void test_mod(void **state)
{
	(void)state;
	/* No module: the program's name. */
	wgf_log_write(LOG_INFO, NULL, NULL, 0, "x");
	assert_line("level=info mod=wgtest msg=x\n");
	wgf_log_write(LOG_INFO, "db", NULL, 0, "x");
	assert_line("level=info mod=db msg=x\n");
	wgf_log_write(LOG_INFO, "my mod", NULL, 0, "x");
	assert_line("level=info mod=\"my mod\" msg=x\n");
	/* An ident of NULL keeps the previous one. */
	wgf_log_init(NULL, LOG_INFO);
	wgf_log_write(LOG_INFO, NULL, NULL, 0, "x");
	assert_line("level=info mod=wgtest msg=x\n");
}

static void test_msg_escaping(void **state)
{
	static const struct {
		const char *msg;
		const char *want;
	} cases[] = {
	        {"plain", "msg=plain\n"},
	        {"two words", "msg=\"two words\"\n"},
	        {"say \"hi\"", "msg=\"say \\\"hi\\\"\"\n"},
	        {"back\\slash", "msg=\"back\\\\slash\"\n"},
	        {"line1\nline2", "msg=\"line1\\nline2\"\n"},
	        {"tab\there", "msg=\"tab\\there\"\n"},
	        {"bell\x01here", "msg=\"bell\\x01here\"\n"},
	        {"cr\r", "msg=\"cr\\x0d\"\n"},
	        {"esc\x1b", "msg=\"esc\\x1b\"\n"},
	        {"del\x7f", "msg=\"del\\x7f\"\n"},
	        {"a=b", "msg=\"a=b\"\n"},
	        {"", "msg=\"\"\n"},
	        {"'quoted'", "msg='quoted'\n"},
	};
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		log_info("%s", cases[i].msg);
		snprintf(want, sizeof(want), "level=info mod=testmod %s", cases[i].want);
		assert_line(want);
	}
}

static void test_fields(void **state)
{
	(void)state;
	log_fields(LOG_INFO, "Reserved", {"tenant", "acme"}, {"ip", "10.0.0.1/32"},
	           {"note", "two words"}, {"q", "a\"b"}, {"none", NULL}, {"blank", ""});
	assert_line("level=info mod=testmod msg=Reserved tenant=acme ip=10.0.0.1/32 "
	            "note=\"two words\" q=\"a\\\"b\" none=\"\" blank=\"\"\n");
}

static void test_secret_redacted(void **state)
{
	static const char *const secret_keys[] = {
	        "private_key",      "password",      "token",      "secret",
	        "api_key",          "preshared_key", "key_secret", "db_password",
	        "x_token",          "client_secret", "PASSWORD",   "Api_Key",
	        "peer_private_key", "admin_TOKEN",
	};
	static const char *const plain_keys[] = {
	        "public_key", "key", "tokens", "password_file", "secretary", "_token", "user",
	};
	const char *secret = "s3cr3t-VALUE";
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
		const struct wgf_log_field f[] = {{"user", "bob"}, {secret_keys[i], secret}};
		const char *out;

		assert_true(wgf_log_key_is_secret(secret_keys[i]));
		wgf_log_write(LOG_INFO, "m", f, 2, "Login");
		out = capture();
		assert_null(strstr(out, "s3cr3t"));
		snprintf(want, sizeof(want), "level=info mod=m msg=Login user=bob %s=[redacted]\n",
		         secret_keys[i]);
		assert_string_equal(skip_ts(out), want);
	}
	/* Redacted even when the value is empty or NULL. */
	log_fields(LOG_INFO, "x", {"password", NULL}, {"api_key", ""});
	assert_line("level=info mod=testmod msg=x password=[redacted] api_key=[redacted]\n");

	for (size_t i = 0; i < sizeof(plain_keys) / sizeof(plain_keys[0]); i++)
		assert_false(wgf_log_key_is_secret(plain_keys[i]));
	log_fields(LOG_INFO, "x", {"public_key", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="});
	assert_line("level=info mod=testmod msg=x "
	            "public_key=\"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\"\n");
}

static void test_filtering(void **state)
{
	int r;

	(void)state;
	wgf_log_init("wgtest", LOG_INFO);
	assert_true(wgf_log_enabled(LOG_INFO));
	assert_false(wgf_log_enabled(LOG_DEBUG));

	log_debug("count %d", bump());
	assert_int_equal(evaluated, 0);
	assert_string_equal(capture(), "");

	log_fields(LOG_DEBUG, bump() ? "m" : "n", {"k", "v"});
	assert_int_equal(evaluated, 0);
	r = log_errno(LOG_DEBUG, -EIO, "count %d", bump());
	assert_int_equal(r, -EIO);
	assert_int_equal(evaluated, 0);
	assert_string_equal(capture(), "");

	/* The max level itself is written, and its arguments are evaluated once. */
	log_info("count %d", bump());
	assert_int_equal(evaluated, 1);
	assert_line("level=info mod=testmod msg=\"count 1\"\n");

	wgf_log_init("wgtest", LOG_ERR);
	log_warning("count %d", bump());
	log_notice("count %d", bump());
	assert_int_equal(evaluated, 1);
	assert_string_equal(capture(), "");
	log_error("count %d", bump());
	assert_int_equal(evaluated, 2);
	assert_line("level=error mod=testmod msg=\"count 2\"\n");
}

static void test_log_errno(void **state)
{
	int r;

	(void)state;
	r = log_errno(LOG_ERR, -ENOENT, "Failed to open '%s'", "/etc/x");
	assert_int_equal(r, -ENOENT);
	assert_line("level=error mod=testmod msg=\"Failed to open '/etc/x'\" "
	            "err=\"No such file or directory\"\n");

	r = wgf_log_write_errno(LOG_WARNING, "db", -ECONNRESET, "Lost %s, retrying in %u ms", "db",
	                        500U);
	assert_int_equal(r, -ECONNRESET);
	assert_line("level=warning mod=db msg=\"Lost db, retrying in 500 ms\" "
	            "err=\"Connection reset by peer\"\n");
}

static void test_errno_preserved(void **state)
{
	(void)state;
	errno = EAGAIN;
	log_info("x");
	assert_int_equal(errno, EAGAIN);
	(void)capture();
}

static void test_long_lines(void **state)
{
	static char big[6000];
	const char *out, *rest;
	size_t len;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	/* The message is cut, but the line is whole and ends in a newline. */
	log_info("%s", big);
	out = capture();
	len = strlen(out);
	assert_int_equal(out[len - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + len - 1);
	rest = skip_ts(out);
	assert_true(strncmp(rest, "level=info mod=testmod msg=a", 28) == 0);
	assert_int_equal(strspn(rest + 27, "a"), 2047);

	/* A field that overflows the line buffer: still one line of at most 4096 bytes. */
	log_fields(LOG_INFO, "x", {"v", big});
	out = capture();
	len = strlen(out);
	assert_true(len <= 4096);
	assert_true(len > 4000);
	assert_int_equal(out[len - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + len - 1);
}

static void test_level_from_string(void **state)
{
	static const char *const bad[] = {"warn", "err", "", "INFO", "debug ", "7", "unknown"};
	static const struct {
		const char *name;
		int level;
	} good[] = {{"error", LOG_ERR},
	            {"warning", LOG_WARNING},
	            {"notice", LOG_NOTICE},
	            {"info", LOG_INFO},
	            {"debug", LOG_DEBUG}};
	int level;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		level = -1;
		assert_int_equal(wgf_log_level_from_string(good[i].name, &level), 0);
		assert_int_equal(level, good[i].level);
		assert_string_equal(wgf_log_level_to_string(good[i].level), good[i].name);
		/* The config enum's choices are in level order. */
		assert_string_equal(wgf_log_level_choices[good[i].level - LOG_ERR], good[i].name);
	}
	assert_null(wgf_log_level_choices[5]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		level = 12345;
		assert_int_equal(wgf_log_level_from_string(bad[i], &level), -EINVAL);
		assert_int_equal(level, 12345);
	}
	assert_string_equal(wgf_log_level_to_string(0), "unknown");
	assert_string_equal(wgf_log_level_to_string(2), "unknown");
	assert_string_equal(wgf_log_level_to_string(8), "unknown");
	assert_string_equal(wgf_log_level_to_string(-1), "unknown");
}

#define THREADS          4
#define LINES_PER_THREAD 200
#define DRAIN_MAX        (1 << 20)

struct drain {
	int fd;
	size_t len;
	char buf[DRAIN_MAX];
};

static void *log_thread(void *arg)
{
	char note[512];

	memset(note, 'a' + (int)(intptr_t)arg, sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	for (int i = 0; i < LINES_PER_THREAD; i++)
		log_fields(LOG_INFO, "t", {"note", note});
	return NULL;
}

/* Reads the pipe until every writer has closed it. */
static void *drain_thread(void *arg)
{
	struct drain *d = arg;

	for (;;) {
		ssize_t n = read(d->fd, d->buf + d->len, sizeof(d->buf) - 1 - d->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		d->len += (size_t)n;
	}
	d->buf[d->len] = '\0';
	return NULL;
}

/*
 * stderr is a pipe or a socket under journald: several threads logging at once must
 * give whole lines, each line one write(2) of at most PIPE_BUF bytes.
 */
static void test_threads_do_not_interleave(void **state)
{
	pthread_t th[THREADS], reader;
	struct drain *d = calloc(1, sizeof(*d));
	size_t lines = 0;
	char *line, *save = NULL;
	int fds[2];

	(void)state;
	assert_non_null(d);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	d->fd = fds[0];
	assert_int_equal(pthread_create(&reader, NULL, drain_thread, d), 0);
	wgf_log_set_fd(fds[1]);
	for (intptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_thread, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	wgf_log_set_fd(capture_fd);
	close(fds[1]);
	assert_int_equal(pthread_join(reader, NULL), 0);
	close(fds[0]);

	for (line = strtok_r(d->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *rest = skip_ts(line);
		const char *note = rest + strlen("level=info mod=testmod msg=t note=");

		assert_true(strncmp(rest, "level=info mod=testmod msg=t note=", 34) == 0);
		/* 511 copies of one letter, nothing from another thread. */
		assert_int_equal(strlen(note), 511);
		assert_int_equal(strspn(note, (char[]){note[0], '\0'}), 511);
		lines++;
	}
	assert_int_equal(lines, THREADS * LINES_PER_THREAD);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_line_shape, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_each_level, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mod, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_msg_escaping, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_secret_redacted, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_filtering, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_log_errno, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_level_from_string, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_threads_do_not_interleave, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
