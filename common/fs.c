/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fs: bounded whole-file reads and crash-safe replacement. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define PATH_BUF 4096

static int sys_error(struct wgf_err *err, const char *path, const char *what)
{
	int r = -errno;

	return wgf_err_set(err, r, "%s: cannot %s: %s", path, what, wgf_strerror(r));
}

int wgf_fs_check_owner(const char *path, const struct stat *st, mode_t forbidden,
                       struct wgf_err *err)
{
	uid_t me = geteuid();

	if (st->st_uid != me && st->st_uid != 0)
		return wgf_err_set(
		        err, -EPERM,
		        "%s: owned by uid %u, neither this daemon's uid %u nor root; chown it",
		        path, (unsigned)st->st_uid, (unsigned)me);
	if (st->st_mode & forbidden & 044)
		return wgf_err_set(err, -EPERM,
		                   "%s: readable by other users (mode %03o); chmod 600 it", path,
		                   (unsigned)(st->st_mode & 0777));
	if (st->st_mode & forbidden)
		return wgf_err_set(err, -EPERM,
		                   "%s: writable by other users (mode %03o); chmod 600 it", path,
		                   (unsigned)(st->st_mode & 0777));
	return 0;
}

/* The checks of wgf_fs_open_checked() on the file open at fd. */
static int check_open(int fd, const char *path, size_t max, mode_t forbidden, struct stat *st,
                      struct wgf_err *err)
{
	if (fstat(fd, st) < 0)
		return sys_error(err, path, "stat");
	if (!S_ISREG(st->st_mode))
		return wgf_err_set(err, -EINVAL, "%s: not a regular file", path);
	if (forbidden) {
		int r = wgf_fs_check_owner(path, st, forbidden, err);

		if (r < 0)
			return r;
	}
	if ((uintmax_t)st->st_size > max)
		return wgf_err_set(err, -EFBIG, "%s: larger than %zu bytes", path, max);
	return 0;
}

int wgf_fs_open_checked(const char *path, size_t max, mode_t forbidden, int *ret_fd,
                        size_t *ret_size, struct wgf_err *err)
{
	struct stat st;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sys_error(err, path, "open");
	r = check_open(fd, path, max, forbidden, &st, err);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	if (ret_size)
		*ret_size = (size_t)st.st_size;
	return 0;
}

/* wgf_fs_read(), refusing what wgf_fs_open_checked() refuses with forbidden. */
static int read_file(const char *path, size_t max, mode_t forbidden, char **ret, size_t *ret_len,
                     struct wgf_err *err)
{
	char *buf = NULL;
	size_t len = 0, size;
	int fd, r;

	r = wgf_fs_open_checked(path, max, forbidden, &fd, &size, err);
	if (r < 0)
		return r;
	buf = malloc(size + 1);
	if (!buf) {
		r = wgf_err_set(err, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	/* Read until EOF, not st_size: the file may have shrunk or grown meanwhile. */
	for (;;) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = sys_error(err, path, "read");
			goto out;
		}
		if (n == 0 || len + (size_t)n == size) {
			len += (size_t)n;
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	/* A read that failed half way may have held a secret. */
	if (buf)
		sodium_memzero(buf, len);
	free(buf);
	close(fd);
	return r;
}

int wgf_fs_read(const char *path, size_t max, char **ret, size_t *ret_len, struct wgf_err *err)
{
	return read_file(path, max, 0, ret, ret_len, err);
}

int wgf_fs_read_private(const char *path, size_t max, char **ret, size_t *ret_len,
                        struct wgf_err *err)
{
	return read_file(path, max, 077, ret, ret_len, err);
}

int wgf_fs_read_owned(const char *path, size_t max, char **ret, size_t *ret_len,
                      struct wgf_err *err)
{
	return read_file(path, max, 022, ret, ret_len, err);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int wgf_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                        struct wgf_err *err)
{
	char tmp[PATH_BUF], dir[PATH_BUF];
	int fd, dfd, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp))
		return wgf_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return sys_error(err, tmp, "create");
	if (fchmod(fd, mode) < 0) {
		r = sys_error(err, tmp, "chmod");
		goto fail;
	}
	r = write_all(fd, data, len);
	if (r < 0) {
		wgf_err_set(err, r, "%s: cannot write: %s", tmp, wgf_strerror(r));
		goto fail;
	}
	if (fsync(fd) < 0) {
		r = sys_error(err, tmp, "fsync");
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = sys_error(err, tmp, "close");
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = sys_error(err, path, "rename into place");
		goto fail;
	}
	/* Make the rename itself durable. */
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

int wgf_fs_read_secret32(const char *path, uint8_t ret[static 32], struct wgf_err *err)
{
	uint8_t buf[32];
	size_t len = 0, bin_len = 0;
	const char *end = NULL;
	char *text = NULL;
	int r;

	r = wgf_fs_read_private(path, 256, &text, &len, err);
	if (r < 0)
		return r;
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (sodium_base642bin(buf, sizeof(buf), text, len, NULL, &bin_len, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != text + len || bin_len != sizeof(buf)) {
		r = wgf_err_set(err, -EINVAL, "%s: not 32 bytes in base64", path);
		goto out;
	}
	memcpy(ret, buf, sizeof(buf));
	r = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(text, len);
	free(text);
	return r;
}
