/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* import: a file of existing routers (JSON or CSV, read with libcsv) to the import route. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <csv.h>
#include <ini.h>
#include <jansson.h>

#include <sodium.h>

#include "ctl.h"
#include "fs.h"

/* The API takes at most 64 KiB a request; a file that large cannot be sent whole. */
#define IMPORT_FILE_MAX (64 * 1024)

/* The CSV columns, as the header row names them, and whether they hold a number. */
static const struct {
	const char *name;
	bool number;
} csv_columns[] = {
        {"tenant", false},
        {"name", false},
        {"address", false},
        {"public_key", false},
        {"persistent_keepalive", true},
        {"created_at", false},
};

#define CSV_COLUMNS (sizeof(csv_columns) / sizeof(csv_columns[0]))

struct csv_state {
	json_t *routers, *row;
	int column_of[16]; /* per field of a row: its csv_columns index, -1 unknown */
	size_t n_header, field, line;
	bool header_done;
	char error[160];
};

static void on_field(void *data, size_t len, void *ctx)
{
	struct csv_state *st = ctx;
	char *text = strndup(data ? data : "", len);
	size_t f = st->field++;

	if (!text || st->error[0]) {
		free(text);
		return;
	}
	if (!st->header_done) {
		int col = -1;

		for (size_t i = 0; i < CSV_COLUMNS; i++)
			if (strcmp(text, csv_columns[i].name) == 0)
				col = (int)i;
		if (col < 0 || f >= sizeof(st->column_of) / sizeof(st->column_of[0]))
			snprintf(st->error, sizeof(st->error), "line 1: unknown column '%.40s'",
			         text);
		else
			st->column_of[f] = col;
		st->n_header = f + 1;
	} else if (f >= st->n_header) {
		snprintf(st->error, sizeof(st->error), "line %zu: more fields than the header",
		         st->line + 1);
	} else if (*text) {
		int col = st->column_of[f];
		char *end;
		long v = strtol(text, &end, 10);

		if (!st->row)
			st->row = json_object();
		if (csv_columns[col].number && (*end || v < 0 || v > 65535))
			snprintf(st->error, sizeof(st->error), "line %zu: %s is not a number",
			         st->line + 1, csv_columns[col].name);
		else
			json_object_set_new(st->row, csv_columns[col].name,
			                    csv_columns[col].number ? json_integer(v)
			                                            : json_string(text));
	}
	free(text);
}

static void on_row(int c, void *ctx)
{
	struct csv_state *st = ctx;

	(void)c;
	st->line++;
	if (!st->header_done) {
		st->header_done = true;
	} else if (st->row) {
		json_array_append_new(st->routers, st->row);
	}
	st->row = NULL;
	st->field = 0;
}

/* The routers of a CSV text with a header row; NULL with a message in err. */
static json_t *from_csv(const char *text, size_t len, char *err, size_t err_size)
{
	struct csv_state st = {.routers = json_array()};
	struct csv_parser p;

	if (csv_init(&p, CSV_STRICT | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	if (csv_parse(&p, text, len, on_field, on_row, &st) != len)
		snprintf(err, err_size, "line %zu: %s", st.line + 1, csv_strerror(csv_error(&p)));
	else if (csv_fini(&p, on_field, on_row, &st) != 0)
		snprintf(err, err_size, "%s", csv_strerror(csv_error(&p)));
	else
		err[0] = '\0';
	csv_free(&p);
	json_decref(st.row);
	if (!err[0] && st.error[0])
		snprintf(err, err_size, "%s", st.error);
	if (err[0]) {
		json_decref(st.routers);
		return NULL;
	}
	return st.routers;
}

/* The routers of a JSON text: {"routers": [...]} or the array itself. */
static json_t *from_json(const char *text, size_t len, char *err, size_t err_size)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, 0, &jerr), *routers;

	if (!doc) {
		snprintf(err, err_size, "line %d: %s", jerr.line, jerr.text);
		return NULL;
	}
	routers = json_is_array(doc) ? json_incref(doc)
	                             : json_incref(json_object_get(doc, "routers"));
	json_decref(doc);
	if (!json_is_array(routers)) {
		json_decref(routers);
		snprintf(err, err_size,
		         "not a list of routers, nor an object with one in \"routers\"");
		return NULL;
	}
	return routers;
}

struct wg_state {
	json_t *routers, *peer; /* the [Peer] being read, the last in routers */
	const char *tenant;
	bool address_set;
	size_t routed; /* peers with more allowed IPs than their address */
	char error[160];
};

/* inih's handler for `wg showconf` text: a [Peer] starts with its PublicKey. The
 * [Interface] section (with its PrivateKey) is skipped, never kept. */
static int on_wg_value(void *ctx, const char *section, const char *name, const char *value)
{
	struct wg_state *st = ctx;
	char ips[256], *save = NULL;

	if (strcmp(section, "Peer") != 0 || st->error[0])
		return 1;
	if (strcmp(name, "PublicKey") == 0) {
		/* `wg showconf` leaves PersistentKeepalive out when it is off: 0 then, so the
		 * import keeps the peer as it is rather than giving it the API's default. */
		st->peer = json_pack("{s:s,s:s,s:i}", "tenant", st->tenant, "public_key", value,
		                     "persistent_keepalive", 0);
		json_array_append_new(st->routers, st->peer);
		st->address_set = false;
		return 1;
	}
	if (!st->peer) {
		snprintf(st->error, sizeof(st->error),
		         "a [Peer] whose %s comes before its PublicKey", name);
		return 0;
	}
	if (strcmp(name, "PersistentKeepalive") == 0) {
		char *end;
		long v = strcmp(value, "off") == 0 ? 0 : strtol(value, &end, 10);

		/* Out of range or not a number: the API names the field. */
		if (strcmp(value, "off") != 0 && (end == value || *end))
			json_object_set_new(st->peer, "persistent_keepalive", json_string(value));
		else
			json_object_set_new(st->peer, "persistent_keepalive", json_integer(v));
	} else if (strcmp(name, "AllowedIPs") == 0 && !st->address_set) {
		/* The router's address: the first allowed IP, without its prefix length. */
		snprintf(ips, sizeof(ips), "%s", value);
		char *first = strtok_r(ips, ", ", &save);

		if (first) {
			first[strcspn(first, "/")] = '\0';
			json_object_set_new(st->peer, "address", json_string(first));
			st->address_set = true;
			if (strtok_r(NULL, ", ", &save))
				st->routed++;
		}
	} else if (strcmp(name, "AllowedIPs") == 0) {
		st->routed++;
	}
	return 1;
}

/* The routers of `wg showconf` text, every peer given to tenant. */
static json_t *from_wg(const char *text, const char *tenant, char *err, size_t err_size)
{
	struct wg_state st = {.routers = json_array(), .tenant = tenant};
	int line = ini_parse_string(text, on_wg_value, &st);

	err[0] = '\0';
	if (st.error[0])
		snprintf(err, err_size, "%s", st.error);
	else if (line != 0)
		snprintf(err, err_size, "line %d: not `wg showconf` text", line);
	if (err[0]) {
		json_decref(st.routers);
		return NULL;
	}
	if (st.routed)
		fprintf(stderr,
		        "wgfleetctl: warning: %zu peer%s more allowed IPs than an address; wgfleet "
		        "keeps only the first, so a network routed behind such a router stops being "
		        "routed once its agent applies the set\n",
		        st.routed, st.routed == 1 ? " has" : "s have");
	return st.routers;
}

/* FILE "-": standard input, read up to the same cap (a pipe from `wg showconf` leaves
 * the interface's private key on no disk). */
static int read_stdin(char **ret, size_t *ret_len)
{
	char *buf = malloc(IMPORT_FILE_MAX + 1);
	size_t len = 0, n;

	if (!buf)
		return -ENOMEM;
	while ((n = fread(buf + len, 1, IMPORT_FILE_MAX + 1 - len, stdin)) > 0 &&
	       len + n <= IMPORT_FILE_MAX)
		len += n;
	if (n > 0 || ferror(stdin)) {
		sodium_memzero(buf, IMPORT_FILE_MAX + 1);
		free(buf);
		return n > 0 ? -EFBIG : -EIO;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* The file's text, refusing what the API could not take; a warning when a file that
 * may hold a private key (wg showconf text) can be read by others. */
static int read_input(const char *file, bool secret, char **text, size_t *len)
{
	struct wgf_err ferr = {0};
	struct stat st;
	int r;

	if (strcmp(file, "-") == 0) {
		r = read_stdin(text, len);
		if (r < 0)
			fprintf(stderr, "wgfleetctl: standard input: %s\n",
			        r == -EFBIG ? "more than 64 KiB (the API takes 64 KiB a request: "
			                      "split the file)"
			                    : strerror(-r));
		return r;
	}
	r = wgf_fs_read(file, IMPORT_FILE_MAX, text, len, &ferr);
	if (r < 0) {
		fprintf(stderr, "wgfleetctl: %s%s\n", ferr.msg,
		        r == -EFBIG ? " (the API takes 64 KiB a request: split the file)" : "");
		return r;
	}
	if (secret && stat(file, &st) == 0 && (st.st_mode & 077))
		fprintf(stderr,
		        "wgfleetctl: warning: %s may hold the interface's private key and others "
		        "can read it (mode %03o); pipe `wg showconf` into `wgfleetctl import ... -` "
		        "instead, and delete the file\n",
		        file, (unsigned)(st.st_mode & 0777));
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int cmd_import(struct ctx *c)
{
	static const struct column router_cols[] = {
	        {"LINE", "line", COL_TEXT},
	        {"TENANT", "tenant", COL_TEXT},
	        {"NAME", "name", COL_TEXT},
	        {"ADDRESS", "address", COL_TEXT},
	        {"PUBLIC KEY", "public_key", COL_TEXT},
	};
	static const struct column conflict_cols[] = {
	        {"LINE", "line", COL_TEXT},
	        {"CONFLICT", "code", COL_TEXT},
	        {"", "message", COL_TEXT},
	};
	const char *format = ctx_opt(c, "format"), *file = c->args[1];
	const char *tenant = ctx_opt(c, "tenant");
	bool apply = ctx_opt(c, "apply") != NULL;
	json_t *routers, *body, *reply = NULL, *conflicts;
	char *text = NULL, err[200];
	size_t len = 0, n_conflicts;
	struct query q;
	int r;

	if (!format)
		format = ends_with(file, ".csv") ? "csv" : ends_with(file, ".conf") ? "wg" : "json";
	if (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0 && strcmp(format, "wg") != 0)
		return ctx_usage(c, "--format: json, csv or wg");
	if ((strcmp(format, "wg") == 0) != (tenant != NULL))
		return ctx_usage(c, "--tenant goes with --format wg (and it needs one)");
	if (read_input(file, strcmp(format, "wg") == 0, &text, &len) < 0)
		return CTL_USAGE;
	if (strcmp(format, "csv") == 0)
		routers = from_csv(text, len, err, sizeof(err));
	else if (strcmp(format, "wg") == 0)
		routers = from_wg(text, tenant, err, sizeof(err));
	else
		routers = from_json(text, len, err, sizeof(err));
	sodium_memzero(text, len); /* `wg showconf` text holds the interface's private key */
	free(text);
	if (!routers) {
		fprintf(stderr, "wgfleetctl: %s: %s\n", file, err);
		return CTL_USAGE;
	}
	body = json_pack("{s:o}", "routers", routers);
	r = path_with(c, &q, "/v1/servers/", c->args[0], "/import");
	if (r == CTL_OK) {
		query_add(&q, "apply", apply ? "true" : NULL);
		r = client_call(c->client, "POST", q.buf, body, &reply, NULL);
	}
	json_decref(body);
	if (r != CTL_OK)
		return r;
	conflicts = json_object_get(reply, "conflicts");
	n_conflicts = json_array_size(conflicts);
	if (c->json) {
		output_json(reply);
	} else {
		output_table(json_object_get(reply, "routers"), router_cols,
		             sizeof(router_cols) / sizeof(router_cols[0]), true);
		if (n_conflicts) {
			printf("\n");
			output_table(conflicts, conflict_cols,
			             sizeof(conflict_cols) / sizeof(conflict_cols[0]), true);
		}
		printf("\n%zu router%s %s, %zu conflicting line%s%s\n",
		       json_array_size(json_object_get(reply, "routers")),
		       json_array_size(json_object_get(reply, "routers")) == 1 ? "" : "s",
		       apply ? "imported" : "would be imported", n_conflicts,
		       n_conflicts == 1 ? "" : "s",
		       apply ? "" : " (a dry run: --apply imports them)");
	}
	json_decref(reply);
	return n_conflicts ? CTL_PROBLEM : CTL_OK;
}
