/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* ctl: what the files of wgfleetctl share: exit codes, the client, output, commands. */
#ifndef WGF_CTL_CTL_H
#define WGF_CTL_CTL_H

/*
 * wgfleetctl is an HTTP client of the coordinator's admin API. main.c finds the
 * coordinator and the key (flags, then the environment, then a private config file),
 * parses the command line and runs one command of commands.c. client.c makes the
 * requests through libcurl and reports every failure itself, once, as the exit code
 * it means; output.c prints tables, times and JSON.
 *
 * The key is held in memory only: it is read from the environment or from a file
 * that only its owner can read, never taken as a command-line value (which `ps`
 * shows), never printed, and wiped when the client is freed.
 */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The exit codes scripts may rely on (README, `wgfleetctl --help`). */
enum ctl_exit {
	CTL_OK = 0,
	CTL_REFUSED = 1,     /* the API answered with an error: its code and message printed */
	CTL_USAGE = 2,       /* a bad command line or configuration */
	CTL_UNREACHABLE = 3, /* no answer: refused, unresolvable or past the timeout */
	CTL_PROBLEM = 4,     /* `status` found a server offline or lagging; `import` a conflict */
};

/* ---- client.c ---- */

struct client;

/* url: "http://host:port" (a trailing slash is dropped); key: borrowed, copied into a
 * header that is wiped on free. NULL only when out of memory. */
struct client *client_new(const char *url, const char *key, long timeout_ms);
void client_free(struct client *cl);

/*
 * One request: method, a path under the URL (with its query string), an optional JSON
 * body. On success (2xx) returns CTL_OK with *ret_json the parsed reply (NULL for 204
 * or text) and, when ret_text is not NULL, *ret_text the body as text (caller frees);
 * otherwise prints what went wrong to stderr and returns CTL_REFUSED or
 * CTL_UNREACHABLE.
 */
int client_call(struct client *cl, const char *method, const char *path, json_t *body,
                json_t **ret_json, char **ret_text);

/* A query string built one parameter at a time, each value percent-encoded. */
struct query {
	char buf[2048];
	size_t len;
	bool overflow;
};
void query_init(struct query *q, const char *path);
/* Appends key=value (skipped when value is NULL). */
void query_add(struct query *q, const char *key, const char *value);

/* ---- output.c ---- */

/* Colour only when stdout is a terminal and NO_COLOR is unset; decided once. */
void output_init(bool json);
/* The text of a colour for a status word ("online", "connected", "failed", ...). */
const char *output_colour_for(const char *word);

/* "12s ago", "in 5m", "never" (ts NULL), or ts itself when it does not parse. */
void output_reltime(const char *ts, char *out, size_t size);
/* Parses an RFC 3339 time as PostgreSQL writes it; 0 or -EINVAL. */
int output_parse_time(const char *ts, double *ret_epoch);
/* "30s", "5m", "2h", "1d", "250ms" or plain seconds into seconds; -EINVAL otherwise. */
int output_parse_duration(const char *s, double *ret_seconds);
/* RFC 3339 UTC for a Unix time, to the millisecond. */
void output_format_time(double epoch, char *out, size_t size);

/* Prints JSON for scripts: indented, keys as the API sent them, a newline. */
void output_json(const json_t *v);

enum column_kind {
	COL_TEXT,   /* a string, number or boolean as it is */
	COL_TIME,   /* a time, shown relative to now */
	COL_STATUS, /* a word, coloured by output_colour_for() */
};

struct column {
	const char *head;
	const char *path; /* member names joined by '.', e.g. "pool.used" */
	enum column_kind kind;
};

/* Prints items (a JSON array of objects) as an aligned table with the columns. */
void output_table(const json_t *items, const struct column *cols, size_t n_cols, bool header);
/* Prints one object as "name: value" lines, times with their relative age. */
void output_object(const json_t *obj);
/* The member at a dotted path, or NULL. */
const json_t *output_get(const json_t *obj, const char *path);

/* ---- commands.c ---- */

struct opt_spec {
	const char *name; /* long option without the dashes */
	const char *arg;  /* the value's name in --help ("SLUG"); NULL: a flag */
	const char *help;
};

struct ctx;

struct command {
	const char *group;
	const char *name; /* NULL: the group is the command */
	const char *args; /* positional arguments in --help, "" for none */
	unsigned n_args;
	const char *summary;
	const struct opt_spec *opts; /* ends with {NULL} */
	int (*run)(struct ctx *c);
};

extern const struct command commands[];
extern const size_t n_commands;

/* What a command's run() gets: its arguments, its options, the client. */
struct ctx {
	const struct command *cmd;
	char **args;
	unsigned n_args;
	const char **values; /* per option of cmd->opts: the value, "" for a flag, or NULL */
	struct client *client;
	bool json;
};

/* q: prefix, arg percent-encoded as one path segment, then suffix; CTL_USAGE if too long. */
int path_with(struct ctx *c, struct query *q, const char *prefix, const char *arg,
              const char *suffix);

/* import.c: `wgfleetctl import SERVER FILE`. */
int cmd_import(struct ctx *c);

/* The value of option name, or NULL when not given. */
const char *ctx_opt(const struct ctx *c, const char *name);
/* A usage error of the command: prints it and returns CTL_USAGE. */
int ctx_usage(const struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
