/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/fs.c: secret files' owner and mode checks, atomic writes. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs.h"

#define SECRET_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"

struct dir {
	char path[64];
	char file[96];
};

static int dir_setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/wgf-test-fs-XXXXXX");
	if (!mkdtemp(d->path)) {
		free(d);
		return -1;
	}
	snprintf(d->file, sizeof(d->file), "%s/secret", d->path);
	*state = d;
	return 0;
}

static int dir_teardown(void **state)
{
	struct dir *d = *state;

	unlink(d->file);
	rmdir(d->path);
	free(d);
	return 0;
}

static void write_secret(const struct dir *d, mode_t mode)
{
	assert_int_equal(wgf_fs_write_atomic(d->file, SECRET_B64, strlen(SECRET_B64), mode, NULL),
	                 0);
}

static void test_secret_read(void **state)
{
	struct dir *d = *state;
	uint8_t key[32];
	struct stat st;

	write_secret(d, 0600);
	assert_int_equal(stat(d->file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(wgf_fs_read_secret32(d->file, key, NULL), 0);
	for (int i = 0; i < 32; i++)
		assert_int_equal(key[i], i);
}

static void test_secret_mode_refused(void **state)
{
	struct dir *d = *state;
	struct wgf_err err = {0};
	uint8_t key[32] = {0};

	write_secret(d, 0640);
	assert_int_equal(wgf_fs_read_secret32(d->file, key, &err), -EPERM);
	assert_non_null(strstr(err.msg, "readable by other users (mode 640); chmod 600 it"));
	/* Nothing of the secret reached the caller. */
	for (int i = 0; i < 32; i++)
		assert_int_equal(key[i], 0);
}

static void test_check_owner(void **state)
{
	struct dir *d = *state;
	struct wgf_err err = {0};
	struct stat st = {.st_mode = S_IFREG | 0600, .st_uid = geteuid()};
	char expect[128];

	(void)d;
	assert_int_equal(wgf_fs_check_owner("f", &st, 077, &err), 0);
	st.st_uid = 0;
	assert_int_equal(wgf_fs_check_owner("f", &st, 077, &err), 0);
	st.st_mode = S_IFREG | 0620;
	assert_int_equal(wgf_fs_check_owner("f", &st, 077, &err), -EPERM);
	assert_string_equal(err.msg, "f: writable by other users (mode 620); chmod 600 it");
	/* A state file may be readable by others, not writable. */
	st.st_mode = S_IFREG | 0644;
	assert_int_equal(wgf_fs_check_owner("f", &st, 022, &err), 0);
	st.st_mode = S_IFREG | 0600;
	st.st_uid = geteuid() + 4242;
	assert_int_equal(wgf_fs_check_owner("f", &st, 077, &err), -EPERM);
	snprintf(expect, sizeof(expect),
	         "f: owned by uid %u, neither this daemon's uid %u nor root; chown it",
	         (unsigned)st.st_uid, (unsigned)geteuid());
	assert_string_equal(err.msg, expect);
}

/* The owner check on a real file: only root can give a file away to test it. */
static void test_secret_owner_refused(void **state)
{
	struct dir *d = *state;
	struct wgf_err err = {0};
	uint8_t key[32];

	if (geteuid() != 0) {
		skip();
		return;
	}
	write_secret(d, 0600);
	assert_int_equal(chown(d->file, 65534, 65534), 0);
	assert_int_equal(wgf_fs_read_secret32(d->file, key, &err), -EPERM);
	assert_non_null(strstr(err.msg, "owned by uid 65534"));
	assert_null(strstr(err.msg, "AAECAw"));
}

/* A file others must not change (a list of peers) may be readable by them, not writable. */
static void test_owned_read(void **state)
{
	struct dir *d = *state;
	struct wgf_err err = {0};
	char expect[160], *text = NULL;
	size_t len = 0;

	write_secret(d, 0644);
	assert_int_equal(wgf_fs_read_owned(d->file, 4096, &text, &len, &err), 0);
	assert_int_equal(len, strlen(SECRET_B64));
	free(text);
	assert_int_equal(chmod(d->file, 0664), 0);
	text = NULL;
	assert_int_equal(wgf_fs_read_owned(d->file, 4096, &text, &len, &err), -EPERM);
	assert_null(text);
	snprintf(expect, sizeof(expect), "%s: writable by other users (mode 664); chmod 600 it",
	         d->file);
	assert_string_equal(err.msg, expect);
	/* The plain read takes it: the check is the caller's choice. */
	assert_int_equal(wgf_fs_read(d->file, 4096, &text, &len, &err), 0);
	free(text);
	text = NULL;
	if (geteuid() == 0) {
		assert_int_equal(chmod(d->file, 0644), 0);
		assert_int_equal(chown(d->file, 65534, 65534), 0);
		assert_int_equal(wgf_fs_read_owned(d->file, 4096, &text, &len, &err), -EPERM);
		assert_non_null(strstr(err.msg, "owned by uid 65534"));
		assert_null(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_secret_read, dir_setup, dir_teardown),
	        cmocka_unit_test_setup_teardown(test_secret_mode_refused, dir_setup, dir_teardown),
	        cmocka_unit_test_setup_teardown(test_check_owner, dir_setup, dir_teardown),
	        cmocka_unit_test_setup_teardown(test_secret_owner_refused, dir_setup, dir_teardown),
	        cmocka_unit_test_setup_teardown(test_owned_read, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
