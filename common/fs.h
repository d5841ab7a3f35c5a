/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fs: reading small files whole, and replacing files atomically. */
#ifndef WGF_COMMON_FS_H
#define WGF_COMMON_FS_H

/*
 * Configuration, keys and the agent's desired-state cache are small files. They are
 * read whole, with a size limit, and written by the only pattern that survives a
 * crash or a power cut at any instant: write a temporary file in the same directory,
 * fsync it, rename it over the old one, fsync the directory. A reader sees the old
 * file or the new one, never a mix.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "err.h"

/*
 * Reads a regular file of at most max bytes. On success *ret is a malloc'd buffer with
 * a NUL after the *ret_len bytes (the caller frees it). -EFBIG past max, -EINVAL if
 * not a regular file, -errno from the system otherwise; err names the path.
 */
int wgf_fs_read(const char *path, size_t max, char **ret, size_t *ret_len, struct wgf_err *err);

/*
 * As wgf_fs_read, for a file that holds a secret: refuses one that group or others may
 * read, or that another user owns (-EPERM, both checked on the file it opened; see
 * wgf_fs_check_owner()). The caller wipes the buffer.
 */
int wgf_fs_read_private(const char *path, size_t max, char **ret, size_t *ret_len,
                        struct wgf_err *err);

/*
 * As wgf_fs_read, for a file that decides what the daemon does (a list of peers it must
 * leave alone): refuses one that another user owns or that group or others may write
 * (-EPERM, checked on the file it opened; see wgf_fs_check_owner()).
 */
int wgf_fs_read_owned(const char *path, size_t max, char **ret, size_t *ret_len,
                      struct wgf_err *err);

/*
 * Opens path for reading, for a caller that reads it as a stream. It must be a regular
 * file (-EINVAL) of at most max bytes (-EFBIG); with forbidden nonzero it must also pass
 * wgf_fs_check_owner(path, st, forbidden), on the file opened. On success *ret_fd is the
 * descriptor, which the caller closes, and *ret_size (may be NULL) the size it had;
 * -errno from the system otherwise. err names the path.
 */
int wgf_fs_open_checked(const char *path, size_t max, mode_t forbidden, int *ret_fd,
                        size_t *ret_size, struct wgf_err *err);

/*
 * Checks the stat of a key or state file before it is used: it must be owned by the
 * process's effective user or by root (another user could rewrite it, or make it
 * readable), and none of the permission bits in forbidden may be set (077 for a
 * secret, 022 for a file others must not change). -EPERM with a message naming path.
 */
int wgf_fs_check_owner(const char *path, const struct stat *st, mode_t forbidden,
                       struct wgf_err *err);

/* Replaces path with data, atomically and durably, with the given mode (e.g. 0600). */
int wgf_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                        struct wgf_err *err);

/*
 * Reads a secret file holding exactly 32 bytes in standard base64 (one trailing newline
 * allowed), as made by `head -c 32 /dev/urandom | base64`. Refuses a file that group or
 * others may read or another user owns (-EPERM), and wipes every buffer that held the
 * secret. The message never quotes the file's contents.
 */
int wgf_fs_read_secret32(const char *path, uint8_t ret[static 32], struct wgf_err *err);

#endif
