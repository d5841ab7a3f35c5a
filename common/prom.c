/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* prom: Prometheus text exposition (format 0.0.4) written to a stdio stream. */

#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void wgf_prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with backslash, double quote and newline escaped. */
static void write_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void write_labels(FILE *f, const struct wgf_prom_label *labels, size_t n, const char *le)
{
	if (n == 0 && !le)
		return;
	fputc('{', f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "", labels[i].name);
		write_value(f, labels[i].value);
		fputc('"', f);
	}
	if (le)
		fprintf(f, "%sle=\"%s\"", n ? "," : "", le);
	fputc('}', f);
}

/* Whole numbers as integers (counters read better), others in the fewest digits that
 * read back as the same double. */
static void write_number(FILE *f, double v)
{
	char buf[32];

	if (isnan(v)) {
		fputs("NaN", f);
	} else if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	} else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v) {
		fprintf(f, "%" PRId64, (int64_t)v);
	} else {
		snprintf(buf, sizeof(buf), "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, sizeof(buf), "%.17g", v);
		fputs(buf, f);
	}
}

void wgf_prom_sample(FILE *f, const char *name, const struct wgf_prom_label *labels,
                     size_t n_labels, double value)
{
	fputs(name, f);
	write_labels(f, labels, n_labels, NULL);
	fputc(' ', f);
	write_number(f, value);
	fputc('\n', f);
}

void wgf_prom_single(FILE *f, const char *name, const char *type, const char *help, double value)
{
	wgf_prom_family(f, name, type, help);
	wgf_prom_sample(f, name, NULL, 0, value);
}

void wgf_prom_histogram_init(struct wgf_prom_histogram *h, const double *bounds, size_t n)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->n_bounds = n < WGF_PROM_BOUNDS_MAX ? n : WGF_PROM_BOUNDS_MAX;
}

void wgf_prom_histogram_observe(struct wgf_prom_histogram *h, double value)
{
	for (size_t i = 0; i < h->n_bounds; i++) {
		if (value <= h->bounds[i]) {
			h->buckets[i]++;
			break;
		}
	}
	h->count++;
	h->sum += value;
}

void wgf_prom_histogram_write(FILE *f, const char *name, const struct wgf_prom_label *labels,
                              size_t n_labels, const struct wgf_prom_histogram *h)
{
	uint64_t cumulative = 0;
	char le[32];

	for (size_t i = 0; i <= h->n_bounds; i++) {
		if (i < h->n_bounds) {
			cumulative += h->buckets[i];
			snprintf(le, sizeof(le), "%g", h->bounds[i]);
		} else {
			cumulative = h->count;
			snprintf(le, sizeof(le), "+Inf");
		}
		fprintf(f, "%s_bucket", name);
		write_labels(f, labels, n_labels, le);
		fprintf(f, " %llu\n", (unsigned long long)cumulative);
	}
	fprintf(f, "%s_sum", name);
	write_labels(f, labels, n_labels, NULL);
	fputc(' ', f);
	write_number(f, h->sum);
	fprintf(f, "\n%s_count", name);
	write_labels(f, labels, n_labels, NULL);
	fprintf(f, " %llu\n", (unsigned long long)h->count);
}
