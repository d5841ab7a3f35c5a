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
#include <sys/types.h>

#include "err.h"

/*
 * Reads a regular file of at most max bytes. On success *ret is a malloc'd buffer with
 * a NUL after the *ret_len bytes (the caller frees it). -EFBIG past max, -EINVAL if
 * not a regular file, -errno from the system otherwise; err names the path.
 */
int wgf_fs_read(const char *path, size_t max, char **ret, size_t *ret_len, struct wgf_err *err);

/* Replaces path with data, atomically and durably, with the given mode (e.g. 0600). */
int wgf_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                        struct wgf_err *err);

#endif
