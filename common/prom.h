/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* prom: Prometheus text exposition (format 0.0.4) written to a stdio stream. */
#ifndef WGF_COMMON_PROM_H
#define WGF_COMMON_PROM_H

/*
 * Both daemons keep their own counters where the work happens and, at each scrape,
 * write them out through these helpers: a family's HELP and TYPE lines once, then its
 * samples, each with its labels. Label values are escaped here (backslash, quote and
 * newline, as the format asks), so a server or route name is written as it is.
 * Names are the caller's literals and are not checked.
 *
 * A histogram has fixed upper bounds (ascending, at most WGF_PROM_BOUNDS_MAX,
 * borrowed for its lifetime); an observation counts in the first bucket whose bound
 * it does not exceed, or only in +Inf. Written out, buckets are cumulative, as the
 * format wants. Nothing here allocates or locks: a histogram belongs to one thread.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WGF_PROM_BOUNDS_MAX 16

struct wgf_prom_label {
	const char *name;
	const char *value;
};

struct wgf_prom_histogram {
	const double *bounds;
	size_t n_bounds;
	uint64_t buckets[WGF_PROM_BOUNDS_MAX]; /* not cumulative; +Inf is count */
	uint64_t count;
	double sum;
};

/* Writes "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void wgf_prom_family(FILE *f, const char *name, const char *type, const char *help);

/* Writes one sample: name{labels} value. */
void wgf_prom_sample(FILE *f, const char *name, const struct wgf_prom_label *labels,
                     size_t n_labels, double value);

/* A family of one sample without labels: its HELP and TYPE lines, then the sample. */
void wgf_prom_single(FILE *f, const char *name, const char *type, const char *help, double value);

/* Sets h to the given bounds (n at most WGF_PROM_BOUNDS_MAX) with nothing counted. */
void wgf_prom_histogram_init(struct wgf_prom_histogram *h, const double *bounds, size_t n);
void wgf_prom_histogram_observe(struct wgf_prom_histogram *h, double value);
/* Writes name_bucket{labels,le=...} for every bound and +Inf, name_sum and name_count. */
void wgf_prom_histogram_write(FILE *f, const char *name, const struct wgf_prom_label *labels,
                              size_t n_labels, const struct wgf_prom_histogram *h);

/* wgf_prom(f, "wgfleet_x_total", 3, {"kind", "hint"}); with no label: wgf_prom(f, n, v). */
#define wgf_prom(f, name, value, ...)                                                \
	do {                                                                         \
		const struct wgf_prom_label l_[] = {{NULL, NULL}, ##__VA_ARGS__};    \
		wgf_prom_sample((f), (name), l_ + 1, sizeof(l_) / sizeof(l_[0]) - 1, \
		                (double)(value));                                    \
	} while (0)

#endif
