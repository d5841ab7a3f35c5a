/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* conf: typed values, the line checks libinih does not make, and the dump. */
#include "conf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "fs.h"

#define MS_PER_S ((uint64_t)1000)

static void *field_of(void *cfg, const struct wgf_conf_entry *e)
{
	return (char *)cfg + e->offset;
}

static const void *cfield_of(const void *cfg, const struct wgf_conf_entry *e)
{
	return (const char *)cfg + e->offset;
}

const struct wgf_conf_entry *wgf_conf_find(const struct wgf_conf_table *t, const char *section,
                                           const char *name)
{
	for (size_t i = 0; i < t->n_entries; i++)
		if (strcmp(t->entries[i].section, section) == 0 &&
		    strcmp(t->entries[i].name, name) == 0)
			return &t->entries[i];
	return NULL;
}

static bool has_section(const struct wgf_conf_table *t, const char *section)
{
	for (size_t i = 0; i < t->n_entries; i++)
		if (strcmp(t->entries[i].section, section) == 0)
			return true;
	return false;
}

/* Strict unsigned decimal: digits only, no sign, no leading zeros, no overflow. */
static int parse_u64(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0 || (n > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

static int parse_uint(const struct wgf_conf_entry *e, const char *value, uint64_t *ret,
                      struct wgf_err *err)
{
	uint64_t v;
	int r = parse_u64(value, strlen(value), &v);

	if (r == -EINVAL)
		return wgf_err_set(err, -EINVAL, "'%s' is not a whole number", value);
	if (r < 0 || v < e->min || v > e->max)
		return wgf_err_set(err, -ERANGE, "%s is out of range (%" PRIu64 "-%" PRIu64 ")",
		                   value, e->min, e->max);
	*ret = v;
	return 0;
}

static int parse_duration(const struct wgf_conf_entry *e, const char *value, uint64_t *ret,
                          struct wgf_err *err)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1},
	             {"s", MS_PER_S},
	             {"m", 60 * MS_PER_S},
	             {"h", 3600 * MS_PER_S},
	             {"d", 86400 * MS_PER_S}};
	size_t digits = strspn(value, "0123456789");
	const char *unit = value + digits;
	uint64_t n = 0;
	int r = digits ? parse_u64(value, digits, &n) : -EINVAL;

	if (r == -EINVAL)
		return wgf_err_set(err, -EINVAL,
		                   "'%s' is not a duration (a number and a unit: ms, s, m, h or d)",
		                   value);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		/* r is -ERANGE when the number alone does not fit in 64 bits. */
		if (r < 0 || n > UINT64_MAX / units[i].ms || n * units[i].ms < e->min ||
		    n * units[i].ms > e->max)
			return wgf_err_set(err, -ERANGE,
			                   "%s is out of range (%" PRIu64 "ms-%" PRIu64 "ms)",
			                   value, e->min, e->max);
		*ret = n * units[i].ms;
		return 0;
	}
	if (*unit == '\0')
		return wgf_err_set(err, -EINVAL, "'%s' needs a unit (ms, s, m, h or d)", value);
	return wgf_err_set(err, -EINVAL, "'%s' has an unknown unit (ms, s, m, h or d)", value);
}

static int parse_bool(const char *value, bool *ret, struct wgf_err *err)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(value, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcmp(value, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return wgf_err_set(err, -EINVAL, "'%s' is not a boolean (true or false)", value);
}

static int parse_enum(const struct wgf_conf_entry *e, const char *value, int *ret,
                      struct wgf_err *err)
{
	char list[WGF_ERR_MSG_MAX / 2] = "";

	for (int i = 0; e->choices[i]; i++) {
		if (strcmp(value, e->choices[i]) == 0) {
			*ret = i;
			return 0;
		}
		if (strlen(list) + strlen(e->choices[i]) + 3 < sizeof(list)) {
			if (i > 0)
				strcat(list, ", ");
			strcat(list, e->choices[i]);
		}
	}
	return wgf_err_set(err, -EINVAL, "'%s' is not one of: %s", value, list);
}

/* Parses value for e into a scratch copy of the field, then validates and stores it. */
static int entry_set(const struct wgf_conf_entry *e, void *cfg, const char *value,
                     struct wgf_err *err)
{
	union {
		uint64_t u;
		bool b;
		int i;
	} v = {0};
	void *field = field_of(cfg, e);
	int r = 0;

	switch (e->type) {
	case WGF_CONF_STRING:
		if (strlen(value) >= e->size)
			return wgf_err_set(err, -EINVAL, "value is longer than %zu characters",
			                   e->size - 1);
		if (value[0] == '\0' && (e->flags & WGF_CONF_F_REQUIRED))
			return wgf_err_set(err, -EINVAL, "value is empty");
		/* "key =;x" would be dumped as "key = ;x", which reads back as a comment. */
		if (value[0] == ';')
			return wgf_err_set(err, -EINVAL,
			                   "value starts with ';', which reads as a comment");
		break;
	case WGF_CONF_UINT:
		r = parse_uint(e, value, &v.u, err);
		break;
	case WGF_CONF_DURATION:
		r = parse_duration(e, value, &v.u, err);
		break;
	case WGF_CONF_BOOL:
		r = parse_bool(value, &v.b, err);
		break;
	case WGF_CONF_ENUM:
		r = parse_enum(e, value, &v.i, err);
		break;
	}
	if (r < 0)
		return r;
	if (e->validate) {
		r = e->type == WGF_CONF_STRING ? e->validate(value, err) : e->validate(&v, err);
		if (r < 0)
			return r;
	}
	switch (e->type) {
	case WGF_CONF_STRING:
		memcpy(field, value, strlen(value) + 1);
		break;
	case WGF_CONF_UINT:
	case WGF_CONF_DURATION:
		memcpy(field, &v.u, sizeof(v.u));
		break;
	case WGF_CONF_BOOL:
		memcpy(field, &v.b, sizeof(v.b));
		break;
	case WGF_CONF_ENUM:
		memcpy(field, &v.i, sizeof(v.i));
		break;
	}
	return 0;
}

int wgf_conf_defaults(const struct wgf_conf_table *t, void *cfg, struct wgf_err *err)
{
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct wgf_conf_entry *e = &t->entries[i];
		int r;

		if (!e->def)
			continue;
		r = entry_set(e, cfg, e->def, err);
		if (r < 0) {
			wgf_err_prefix(err, "default of '%s' in section [%s]: ", e->name,
			               e->section);
			return r;
		}
	}
	return 0;
}

int wgf_conf_set(const struct wgf_conf_table *t, void *cfg, const char *section, const char *name,
                 const char *value, struct wgf_err *err)
{
	const struct wgf_conf_entry *e = wgf_conf_find(t, section, name);
	int r;

	if (!e)
		return wgf_err_set(err, -EINVAL, "unknown key '%s' in section [%s]", name, section);
	r = entry_set(e, cfg, value, err);
	if (r < 0)
		wgf_err_prefix(err, "bad value for '%s' in section [%s]: ", name, section);
	return r;
}

struct load_ctx {
	const struct wgf_conf_table *t;
	void *cfg;
	const char *text, *pos, *end;
	unsigned lineno;
	bool *seen;
	unsigned err_line; /* 0: no error recorded by the handler */
	int err_code;      /* the handler's error, also when err is NULL */
	struct wgf_err *err;
};

/* libinih's reader: hands it one line at a time and counts lines for the handler. */
static char *load_reader(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	const char *nl;
	size_t n;

	if (ctx->pos >= ctx->end)
		return NULL;
	nl = memchr(ctx->pos, '\n', (size_t)(ctx->end - ctx->pos));
	n = nl ? (size_t)(nl - ctx->pos) : (size_t)(ctx->end - ctx->pos);
	/*
	 * Lines were checked against WGF_CONF_LINE_MAX before parsing began. The '\n' is
	 * not handed on (libinih strips it anyway): a line of WGF_CONF_LINE_MAX characters
	 * fills the buffer, and a newline left over would count as a line of its own.
	 */
	if (n > (size_t)num - 1)
		n = (size_t)num - 1;
	memcpy(str, ctx->pos, n);
	str[n] = '\0';
	ctx->pos = nl ? nl + 1 : ctx->end;
	ctx->lineno++;
	return str;
}

static int load_handler(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	const struct wgf_conf_entry *e;
	int r;

	if (ctx->err_line)
		return 0;
	if (section[0] == '\0')
		r = wgf_err_set(ctx->err, -EINVAL, "key '%s' is outside any [section]", name);
	else if (!has_section(ctx->t, section))
		r = wgf_err_set(ctx->err, -EINVAL, "unknown section [%s]", section);
	else if (!(e = wgf_conf_find(ctx->t, section, name)))
		r = wgf_err_set(ctx->err, -EINVAL, "unknown key '%s' in section [%s]", name,
		                section);
	else if (ctx->seen[e - ctx->t->entries])
		r = wgf_err_set(ctx->err, -EINVAL, "duplicate key '%s' in section [%s]", name,
		                section);
	else if ((r = wgf_conf_set(ctx->t, ctx->cfg, section, name, value, ctx->err)) == 0)
		ctx->seen[e - ctx->t->entries] = true;
	if (r < 0) {
		ctx->err_line = ctx->lineno;
		ctx->err_code = r;
	}
	return r == 0;
}

/*
 * What libinih does not check: NUL bytes, over-long lines, indented lines. Returns the
 * offset of the first bad line, described in err, or len when there is none. Only the
 * lines before it are parsed, so that an error on an earlier line still comes first.
 */
static size_t check_lines(const char *name, const char *text, size_t len, struct wgf_err *err)
{
	unsigned lineno = 1;
	size_t col = 0, start = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (c == '\n') {
			lineno++;
			col = 0;
			start = i + 1;
			continue;
		}
		if (c == '\0') {
			wgf_err_set(err, -EINVAL, "%s:%u: line holds a NUL byte", name, lineno);
			return start;
		}
		if (++col > WGF_CONF_LINE_MAX) {
			wgf_err_set(err, -EINVAL, "%s:%u: line is longer than %d characters", name,
			            lineno, WGF_CONF_LINE_MAX);
			return start;
		}
		if (col == 1 && (c == ' ' || c == '\t')) {
			size_t j = i;

			/* text holds len bytes and need not be NUL-terminated. */
			while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r'))
				j++;

			/* Blank lines may hold spaces; anything else must start in column 1,
			 * or libinih would take it as the continuation of the previous value. */
			if (j < len && text[j] != '\n') {
				wgf_err_set(err, -EINVAL,
				            "%s:%u: line starts with whitespace; keys and sections "
				            "start in the first column",
				            name, lineno);
				return start;
			}
		}
	}
	return len;
}

int wgf_conf_load_string(const struct wgf_conf_table *t, void *cfg, const char *name,
                         const char *text, size_t len, struct wgf_err *err)
{
	struct load_ctx ctx = {
	        .t = t, .cfg = cfg, .text = text, .pos = text, .end = text + len, .err = err};
	struct wgf_err line_err = {0};
	size_t good;
	int r, line;

	if (len > WGF_CONF_FILE_MAX)
		return wgf_err_set(err, -EFBIG, "%s: larger than %d bytes", name,
		                   WGF_CONF_FILE_MAX);
	r = wgf_conf_defaults(t, cfg, err);
	if (r < 0)
		return r;
	good = check_lines(name, text, len, &line_err);
	ctx.end = text + good;
	ctx.seen = calloc(t->n_entries ? t->n_entries : 1, sizeof(bool));
	if (!ctx.seen)
		return wgf_err_set(err, -ENOMEM, "%s: out of memory", name);
	line = ini_parse_stream(load_reader, &ctx, load_handler, &ctx);
	if (line < 0) {
		r = wgf_err_set(err, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	if (line > 0 && (ctx.err_line == 0 || (unsigned)line < ctx.err_line)) {
		r = wgf_err_set(err, -EINVAL,
		                "%s:%d: syntax error: expected '[section]' or 'key = value'", name,
		                line);
		goto out;
	}
	if (ctx.err_line) {
		r = ctx.err_code;
		wgf_err_prefix(err, "%s:%u: ", name, ctx.err_line);
		goto out;
	}
	if (good < len) {
		r = line_err.code;
		if (err)
			*err = line_err;
		goto out;
	}
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct wgf_conf_entry *e = &t->entries[i];

		if ((e->flags & WGF_CONF_F_REQUIRED) && !ctx.seen[i]) {
			r = wgf_err_set(err, -EINVAL,
			                "%s: required key '%s' in section [%s] is missing", name,
			                e->name, e->section);
			goto out;
		}
	}
	r = t->check ? t->check(cfg, err) : 0;
	if (r < 0)
		wgf_err_prefix(err, "%s: ", name);
out:
	free(ctx.seen);
	return r;
}

int wgf_conf_load_file(const struct wgf_conf_table *t, void *cfg, const char *path,
                       struct wgf_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	r = wgf_fs_read(path, WGF_CONF_FILE_MAX, &text, &len, err);
	if (r < 0)
		return r;
	r = wgf_conf_load_string(t, cfg, path, text, len, err);
	free(text);
	return r;
}

int wgf_conf_load_optional(const struct wgf_conf_table *t, void *cfg, const char *path,
                           bool must_exist, struct wgf_err *err)
{
	int r;

	if (!must_exist && access(path, F_OK) != 0 && errno == ENOENT) {
		r = wgf_conf_defaults(t, cfg, err);
		if (r == 0 && t->check)
			r = t->check(cfg, err);
		return r;
	}
	return wgf_conf_load_file(t, cfg, path, err);
}

static void dump_value(const struct wgf_conf_entry *e, const void *cfg, FILE *out)
{
	const void *field = cfield_of(cfg, e);
	uint64_t u;
	bool b;
	int i;

	switch (e->type) {
	case WGF_CONF_STRING:
		fputs((const char *)field, out);
		break;
	case WGF_CONF_UINT:
		memcpy(&u, field, sizeof(u));
		fprintf(out, "%" PRIu64, u);
		break;
	case WGF_CONF_DURATION:
		memcpy(&u, field, sizeof(u));
		if (u % (3600 * MS_PER_S) == 0 && u)
			fprintf(out, "%" PRIu64 "h", u / (3600 * MS_PER_S));
		else if (u % (60 * MS_PER_S) == 0 && u)
			fprintf(out, "%" PRIu64 "m", u / (60 * MS_PER_S));
		else if (u % MS_PER_S == 0)
			fprintf(out, "%" PRIu64 "s", u / MS_PER_S);
		else
			fprintf(out, "%" PRIu64 "ms", u);
		break;
	case WGF_CONF_BOOL:
		memcpy(&b, field, sizeof(b));
		fputs(b ? "true" : "false", out);
		break;
	case WGF_CONF_ENUM:
		memcpy(&i, field, sizeof(i));
		fputs(e->choices[i], out);
		break;
	}
}

void wgf_conf_dump(const struct wgf_conf_table *t, const void *cfg, FILE *out)
{
	const char *section = NULL;

	for (size_t i = 0; i < t->n_entries; i++) {
		const struct wgf_conf_entry *e = &t->entries[i];
		bool set = cfg || e->def;

		if (!section || strcmp(section, e->section) != 0) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "", e->section);
			section = e->section;
		}
		fprintf(out, "; %s%s%s\n", e->doc ? e->doc : "",
		        (e->flags & WGF_CONF_F_REQUIRED) ? " Required." : "",
		        (e->flags & WGF_CONF_F_RELOADABLE) ? " Reloaded on SIGHUP." : "");
		if (e->flags & WGF_CONF_F_SECRET && cfg) {
			fprintf(out, ";%s = [redacted]\n", e->name);
			continue;
		}
		if (!set) {
			fprintf(out, ";%s =\n", e->name);
			continue;
		}
		fprintf(out, "%s%s = ", cfg ? "" : ";", e->name);
		if (cfg)
			dump_value(e, cfg, out);
		else
			fputs(e->def, out);
		fputc('\n', out);
	}
}
