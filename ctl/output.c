/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* output: wgfleetctl's tables, times and JSON. */
#include "ctl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define CELL_MAX 256

static bool colour;

void output_init(bool json)
{
	const char *no = getenv("NO_COLOR");

	colour = !json && isatty(STDOUT_FILENO) && !(no && no[0]);
}

const char *output_colour_for(const char *word)
{
	static const struct {
		const char *word, *sgr;
	} map[] = {
	        {"online", "32"},     {"connected", "32"},    {"yes", "32"},    {"offline", "31"},
	        {"failed", "31"},     {"disconnected", "31"}, {"no", "31"},     {"pending", "33"},
	        {"configured", "33"}, {"vps_ready", "33"},    {"expired", "2"}, {"lagging", "33"},
	};

	if (!colour || !word)
		return NULL;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].word, word) == 0)
			return map[i].sgr;
	return NULL;
}

int output_parse_time(const char *ts, double *ret_epoch)
{
	struct tm tm = {0};
	const char *p;
	double frac = 0;
	long off = 0;
	time_t t;

	if (!ts || !(p = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -EINVAL;
	if (*p == '.') {
		char *end;

		frac = strtod(p, &end);
		p = end;
	}
	if (*p == '+' || *p == '-') {
		int h = 0, m = 0;

		if (sscanf(p + 1, "%2d:%2d", &h, &m) < 1)
			return -EINVAL;
		off = (h * 3600L + m * 60L) * (*p == '-' ? -1 : 1);
	} else if (*p != 'Z' && *p != '\0') {
		return -EINVAL;
	}
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret_epoch = (double)t + frac - (double)off;
	return 0;
}

int output_parse_duration(const char *s, double *ret_seconds)
{
	static const struct {
		const char *unit;
		double seconds;
	} units[] = {{"", 1}, {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
	char *end;
	double v;

	if (!s || !*s || !strchr("0123456789.", s[0]))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].unit) == 0) {
			*ret_seconds = v * units[i].seconds;
			return 0;
		}
	return -EINVAL;
}

void output_format_time(double epoch, char *out, size_t size)
{
	time_t t = (time_t)floor(epoch);
	int ms = (int)((epoch - floor(epoch)) * 1000);
	char whole[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(whole, sizeof(whole), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%03dZ", whole, ms);
}

void output_reltime(const char *ts, char *out, size_t size)
{
	static const struct {
		double seconds;
		char unit;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	double at, d;
	size_t i;

	if (!ts) {
		snprintf(out, size, "never");
		return;
	}
	if (output_parse_time(ts, &at) < 0) {
		snprintf(out, size, "%s", ts);
		return;
	}
	d = (double)wgf_clock_wall_ms() / 1000.0 - at;
	for (i = 0; i < sizeof(units) / sizeof(units[0]) - 1; i++)
		if (fabs(d) >= units[i].seconds)
			break;
	if (fabs(d) < 1)
		snprintf(out, size, "now");
	else if (d > 0)
		snprintf(out, size, "%.0f%c ago", floor(d / units[i].seconds), units[i].unit);
	else
		snprintf(out, size, "in %.0f%c", floor(-d / units[i].seconds), units[i].unit);
}

void output_json(const json_t *v)
{
	if (v)
		json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	else
		fputs("{}", stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

const json_t *output_get(const json_t *obj, const char *path)
{
	char name[64];
	const char *dot;

	while (obj && (dot = strchr(path, '.'))) {
		snprintf(name, sizeof(name), "%.*s", (int)(dot - path), path);
		obj = json_object_get(obj, name);
		path = dot + 1;
	}
	return json_object_get(obj, path);
}

/* A value as a table cell: "-" for null or absent. */
static void cell_text(const json_t *v, enum column_kind kind, char *out, size_t size)
{
	char *dumped;

	if (kind == COL_TIME && (!v || json_is_string(v))) {
		output_reltime(json_string_value(v), out, size);
		return;
	}
	if (!v || json_is_null(v)) {
		snprintf(out, size, "-");
	} else if (json_is_string(v)) {
		snprintf(out, size, "%s", json_string_value(v));
	} else if (json_is_boolean(v)) {
		snprintf(out, size, "%s", json_is_true(v) ? "yes" : "no");
	} else if (json_is_integer(v)) {
		snprintf(out, size, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		snprintf(out, size, "%g", json_real_value(v));
	} else {
		dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(out, size, "%s", dumped ? dumped : "?");
		free(dumped);
	}
}

/* Columns on a terminal: UTF-8 continuation bytes take none. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void print_cell(const char *text, const char *sgr, size_t pad, bool last)
{
	if (sgr)
		printf("\033[%sm%s\033[0m", sgr, text);
	else
		fputs(text, stdout);
	if (!last)
		printf("%*s", (int)(pad - width(text) + 2), "");
}

void output_table(const json_t *items, const struct column *cols, size_t n_cols, bool header)
{
	size_t rows = json_array_size(items), w[16] = {0};
	char(*cells)[CELL_MAX];

	if (n_cols > 16)
		n_cols = 16;
	cells = calloc(rows * n_cols + 1, CELL_MAX);
	if (!cells) {
		fprintf(stderr, "wgfleetctl: out of memory\n");
		return;
	}
	for (size_t c = 0; c < n_cols; c++)
		w[c] = header ? width(cols[c].head) : 0;
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < n_cols; c++) {
			char *cell = cells[r * n_cols + c];

			cell_text(output_get(json_array_get(items, r), cols[c].path), cols[c].kind,
			          cell, CELL_MAX);
			if (width(cell) > w[c])
				w[c] = width(cell);
		}
	if (header) {
		for (size_t c = 0; c < n_cols; c++)
			print_cell(cols[c].head, colour ? "1" : NULL, w[c], c + 1 == n_cols);
		fputc('\n', stdout);
	}
	for (size_t r = 0; r < rows; r++) {
		for (size_t c = 0; c < n_cols; c++) {
			const char *cell = cells[r * n_cols + c];

			print_cell(cell,
			           cols[c].kind == COL_STATUS ? output_colour_for(cell) : NULL,
			           w[c], c + 1 == n_cols);
		}
		fputc('\n', stdout);
	}
	fflush(stdout);
	free(cells);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void output_object(const json_t *obj)
{
	size_t w = 0, n = 0;
	const char *key, **keys = calloc(json_object_size(obj) + 1, sizeof(*keys));
	json_t *v;

	if (!keys) {
		fprintf(stderr, "wgfleetctl: out of memory\n");
		return;
	}
	/* By name: the database's JSON orders members by length. */
	json_object_foreach((json_t *)obj, key, v)
	{
		keys[n++] = key;
		if (strlen(key) > w)
			w = strlen(key);
	}
	qsort(keys, n, sizeof(*keys), compare_names);
	for (size_t i = 0; i < n; i++) {
		char text[CELL_MAX * 4], rel[64];
		double at;

		v = json_object_get(obj, keys[i]);
		cell_text(v, COL_TEXT, text, sizeof(text));
		printf("%s:%*s %s", keys[i], (int)(w - strlen(keys[i])), "", text);
		if (json_is_string(v) && output_parse_time(json_string_value(v), &at) == 0) {
			output_reltime(json_string_value(v), rel, sizeof(rel));
			printf(" (%s)", rel);
		}
		fputc('\n', stdout);
	}
	free(keys);
	fflush(stdout);
}
