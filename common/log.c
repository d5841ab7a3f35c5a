/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* log: formatting of logfmt lines and the secret-key filter. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

#define LINE_MAX_BYTES 4096

int wgf_log_max_level = LOG_INFO;
static const char *log_ident = "wgfleet";
static int log_fd = STDERR_FILENO;

const char *const wgf_log_level_choices[] = {"error", "warning", "notice", "info", "debug", NULL};

static const char *const level_names[] = {
        [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void wgf_log_init(const char *ident, int max_level)
{
	if (ident)
		log_ident = ident;
	wgf_log_max_level = max_level;
}

void wgf_log_set_fd(int fd)
{
	log_fd = fd;
}

int wgf_log_level_from_string(const char *s, int *ret_level)
{
	for (int l = LOG_ERR; l <= LOG_DEBUG; l++)
		if (strcmp(s, level_names[l]) == 0) {
			*ret_level = l;
			return 0;
		}
	return -EINVAL;
}

const char *wgf_log_level_to_string(int level)
{
	if (level < LOG_ERR || level > LOG_DEBUG)
		return "unknown";
	return level_names[level];
}

bool wgf_log_key_is_secret(const char *key)
{
	static const char *const exact[] = {"private_key", "password",      "token",     "secret",
	                                    "api_key",     "preshared_key", "key_secret"};
	static const char *const suffixes[] = {"_secret", "_token", "_password", "_private_key"};
	size_t n = strlen(key);

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcasecmp(key, exact[i]) == 0)
			return true;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t m = strlen(suffixes[i]);

		if (n > m && strcasecmp(key + n - m, suffixes[i]) == 0)
			return true;
	}
	return false;
}

struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
};

static void line_putc(struct line *l, char c)
{
	/* Keep two bytes for the closing '\n' and a possible truncation mark. */
	if (l->len < sizeof(l->buf) - 2)
		l->buf[l->len++] = c;
}

static void line_puts(struct line *l, const char *s)
{
	while (*s)
		line_putc(l, *s++);
}

static bool needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (; *v; v++)
		if (*v <= ' ' || *v == '=' || *v == '"' || *v == '\\' || *v == 0x7f)
			return true;
	return false;
}

/* Writes a value; quoted with \" \\ \n \t and \xNN escapes when it needs quotes. */
static void line_value(struct line *l, const char *v)
{
	if (!needs_quotes(v)) {
		line_puts(l, v);
		return;
	}
	line_putc(l, '"');
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[5];

		switch (*p) {
		case '"':
			line_puts(l, "\\\"");
			break;
		case '\\':
			line_puts(l, "\\\\");
			break;
		case '\n':
			line_puts(l, "\\n");
			break;
		case '\t':
			line_puts(l, "\\t");
			break;
		default:
			if (*p < ' ' || *p == 0x7f) {
				snprintf(esc, sizeof(esc), "\\x%02x", *p);
				line_puts(l, esc);
			} else {
				line_putc(l, (char)*p);
			}
		}
	}
	line_putc(l, '"');
}

static void line_field(struct line *l, const char *key, const char *value)
{
	line_putc(l, ' ');
	line_puts(l, key);
	line_putc(l, '=');
	if (wgf_log_key_is_secret(key))
		line_puts(l, "[redacted]");
	else
		line_value(l, value ? value : "");
}

static void line_begin(struct line *l, int level, const char *mod)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	l->len = 0;
	line_puts(l, "ts=");
	line_puts(l, stamp);
	snprintf(stamp, sizeof(stamp), ".%03ldZ", ts.tv_nsec / 1000000);
	line_puts(l, stamp);
	line_puts(l, " level=");
	line_puts(l, wgf_log_level_to_string(level));
	line_puts(l, " mod=");
	line_value(l, mod ? mod : log_ident);
}

static void line_end(struct line *l)
{
	ssize_t n;

	l->buf[l->len++] = '\n';
	/* One write per line; a short write to a pipe of this size does not happen. */
	do
		n = write(log_fd, l->buf, l->len);
	while (n < 0 && errno == EINTR);
}

__attribute__((format(printf, 6, 0))) static void log_emit(int level, const char *mod,
                                                           const struct wgf_log_field *fields,
                                                           size_t n_fields, const char *errtext,
                                                           const char *fmt, va_list ap)
{
	struct line l;
	char msg[LINE_MAX_BYTES / 2];
	int saved_errno = errno;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	line_begin(&l, level, mod);
	line_puts(&l, " msg=");
	line_value(&l, msg);
	for (size_t i = 0; i < n_fields; i++)
		line_field(&l, fields[i].key, fields[i].value);
	if (errtext)
		line_field(&l, "err", errtext);
	line_end(&l);
	errno = saved_errno;
}

void wgf_log_write(int level, const char *mod, const struct wgf_log_field *fields, size_t n_fields,
                   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, mod, fields, n_fields, NULL, fmt, ap);
	va_end(ap);
}

int wgf_log_write_errno(int level, const char *mod, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, mod, NULL, 0, wgf_strerror(r), fmt, ap);
	va_end(ap);
	return r;
}
