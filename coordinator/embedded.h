/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* embedded: the dashboard's static files, compiled in by embed_files.py. */
#ifndef WGF_COORDINATOR_EMBEDDED_H
#define WGF_COORDINATOR_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
	const char *name; /* "index.html", no directories */
	const char *type; /* its Content-Type */
	const unsigned char *data;
	size_t len;
};

extern const struct embedded_file embedded_files[];
extern const size_t embedded_n_files;

#endif
