/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/conf.c: types, every error with its line, comments and the dump. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

enum test_mode {
	TEST_MODE_FAST,
	TEST_MODE_SAFE,
	TEST_MODE_OFF,
};

struct test_cfg {
	char name[32];
	uint64_t port;
	bool verbose;
	uint64_t timeout_ms;
	int mode;
	char conninfo[64];
	char password[32];
};

#define FIELD(f) .offset = offsetof(struct test_cfg, f)
#define STR(f)   FIELD(f), .size = sizeof(((struct test_cfg *)NULL)->f)

static const char *const mode_choices[] = {"fast", "safe", "off", NULL};

static int name_validate(const void *value, struct wgf_err *err)
{
	if (strchr(value, '/'))
		return wgf_err_set(err, -EINVAL, "'%s' must not contain '/'", (const char *)value);
	return 0;
}

static const struct wgf_conf_entry test_entries[] = {
        {.section = "server",
         .name = "name",
         .type = WGF_CONF_STRING,
         STR(name),
         .def = "wgfleet",
         .validate = name_validate,
         .doc = "Name of this node."},
        {.section = "server",
         .name = "port",
         .type = WGF_CONF_UINT,
         FIELD(port),
         .def = "51820",
         .min = 1,
         .max = 65535,
         .doc = "UDP port to listen on."},
        {.section = "server",
         .name = "verbose",
         .type = WGF_CONF_BOOL,
         .flags = WGF_CONF_F_RELOADABLE,
         FIELD(verbose),
         .def = "false",
         .doc = "Log more."},
        {.section = "server",
         .name = "timeout",
         .type = WGF_CONF_DURATION,
         FIELD(timeout_ms),
         .def = "30s",
         .min = 100,
         .max = 86400000,
         .doc = "How long to wait."},
        {.section = "server",
         .name = "mode",
         .type = WGF_CONF_ENUM,
         FIELD(mode),
         .def = "safe",
         .choices = mode_choices,
         .doc = "How careful to be."},
        {.section = "database",
         .name = "conninfo",
         .type = WGF_CONF_STRING,
         .flags = WGF_CONF_F_REQUIRED,
         STR(conninfo),
         .doc = "libpq connection string."},
        {.section = "database",
         .name = "password",
         .type = WGF_CONF_STRING,
         .flags = WGF_CONF_F_SECRET,
         STR(password),
         .doc = "Database password."},
};

static const struct wgf_conf_table table = {
        .entries = test_entries,
        .n_entries = sizeof(test_entries) / sizeof(test_entries[0]),
};

/* The required key, so that a test about [server] loads on its own. */
#define DB     "[database]\nconninfo = db\n"
#define SERVER DB "[server]\n" /* the next line is line 4 */

#define GOOD_FILE                                          \
	"; A full-line comment.\n"                         \
	"# Another one.\n"                                 \
	"[server]\n"                                       \
	"name = node-1 ; an inline comment\n"              \
	"port = 51821\n"                                   \
	"verbose = yes\n"                                  \
	"timeout = 2m\n"                                   \
	"mode = fast\n"                                    \
	"\n"                                               \
	"[database] ; the database\n"                      \
	"conninfo = host=/run/postgresql dbname=wgfleet\n" \
	"password = hunter2\n"

static int load(struct test_cfg *cfg, const char *text, struct wgf_err *err)
{
	memset(cfg, 0, sizeof(*cfg));
	return wgf_conf_load_string(&table, cfg, "test.conf", text, strlen(text), err);
}

/* Asserts that loading text fails with code and exactly msg, with and without err. */
static void assert_load_fails_n(const char *text, size_t len, int code, const char *msg)
{
	struct test_cfg cfg;
	struct wgf_err err = {0};

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(wgf_conf_load_string(&table, &cfg, "test.conf", text, len, &err), code);
	assert_int_equal(err.code, code);
	assert_string_equal(err.msg, msg);
	assert_int_equal(wgf_conf_load_string(&table, &cfg, "test.conf", text, len, NULL), code);
}

static void assert_load_fails(const char *text, int code, const char *msg)
{
	assert_load_fails_n(text, strlen(text), code, msg);
}

/* Asserts that `key = value` on line 4 of [server] is refused with msg. */
static void assert_bad_value(const char *key, const char *value, int code, const char *msg)
{
	char text[512], want[512];

	snprintf(text, sizeof(text), SERVER "%s = %s\n", key, value);
	snprintf(want, sizeof(want), "test.conf:4: bad value for '%s' in section [server]: %s", key,
	         msg);
	assert_load_fails(text, code, want);
}

static void test_defaults(void **state)
{
	struct test_cfg cfg;
	struct wgf_err err = {0};

	(void)state;
	memset(&cfg, 0xff, sizeof(cfg));
	assert_int_equal(wgf_conf_defaults(&table, &cfg, &err), 0);
	assert_string_equal(cfg.name, "wgfleet");
	assert_int_equal(cfg.port, 51820);
	assert_false(cfg.verbose);
	assert_int_equal(cfg.timeout_ms, 30000);
	assert_int_equal(cfg.mode, TEST_MODE_SAFE);
	/* Entries without a default are not touched. */
	assert_int_equal((unsigned char)cfg.conninfo[0], 0xff);
	assert_int_equal((unsigned char)cfg.password[0], 0xff);

	/* Loading a file that sets nothing else gives the defaults too. */
	assert_int_equal(load(&cfg, DB, &err), 0);
	assert_string_equal(cfg.name, "wgfleet");
	assert_int_equal(cfg.port, 51820);
	assert_false(cfg.verbose);
	assert_int_equal(cfg.timeout_ms, 30000);
	assert_int_equal(cfg.mode, TEST_MODE_SAFE);
	assert_string_equal(cfg.conninfo, "db");
	assert_string_equal(cfg.password, "");
	assert_int_equal(err.code, 0);
}

static void test_good_file(void **state)
{
	struct test_cfg cfg;
	struct wgf_err err = {0};

	(void)state;
	assert_int_equal(load(&cfg, GOOD_FILE, &err), 0);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");
	assert_string_equal(cfg.name, "node-1");
	assert_int_equal(cfg.port, 51821);
	assert_true(cfg.verbose);
	assert_int_equal(cfg.timeout_ms, 120000);
	assert_int_equal(cfg.mode, TEST_MODE_FAST);
	assert_string_equal(cfg.conninfo, "host=/run/postgresql dbname=wgfleet");
	assert_string_equal(cfg.password, "hunter2");
}

static void test_values(void **state)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	static const struct {
		const char *text;
		uint64_t ms;
	} durations[] = {{"100ms", 100},    {"1500ms", 1500}, {"1s", 1000},
	                 {"90s", 90000},    {"2m", 120000},   {"1h", 3600000},
	                 {"24h", 86400000}, {"1d", 86400000}, {"86400000ms", 86400000}};
	struct test_cfg cfg;
	char text[256];

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), SERVER "verbose = %s\n", yes[i]);
		assert_int_equal(load(&cfg, text, NULL), 0);
		assert_true(cfg.verbose);
		snprintf(text, sizeof(text), SERVER "verbose = %s\n", no[i]);
		cfg.verbose = true;
		assert_int_equal(load(&cfg, text, NULL), 0);
		assert_false(cfg.verbose);
	}
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		snprintf(text, sizeof(text), SERVER "timeout = %s\n", durations[i].text);
		assert_int_equal(load(&cfg, text, NULL), 0);
		assert_int_equal(cfg.timeout_ms, durations[i].ms);
	}
	for (int i = 0; mode_choices[i]; i++) {
		snprintf(text, sizeof(text), SERVER "mode = %s\n", mode_choices[i]);
		assert_int_equal(load(&cfg, text, NULL), 0);
		assert_int_equal(cfg.mode, i);
	}
	assert_int_equal(load(&cfg, SERVER "port = 1\n", NULL), 0);
	assert_int_equal(cfg.port, 1);
	assert_int_equal(load(&cfg, SERVER "port = 65535\n", NULL), 0);
	assert_int_equal(cfg.port, 65535);
	/* A string of exactly 31 characters fits a char[32]; an empty one is allowed. */
	assert_int_equal(load(&cfg, SERVER "name = 0123456789012345678901234567890\n", NULL), 0);
	assert_string_equal(cfg.name, "0123456789012345678901234567890");
	assert_int_equal(load(&cfg, SERVER "name =\n", NULL), 0);
	assert_string_equal(cfg.name, "");
}

static void test_section_and_key_errors(void **state)
{
	(void)state;
	assert_load_fails(DB "[nope]\nx = 1\n", -EINVAL, "test.conf:4: unknown section [nope]");
	assert_load_fails(SERVER "bogus = 1\n", -EINVAL,
	                  "test.conf:4: unknown key 'bogus' in section [server]");
	/* A key of one section is unknown in another. */
	assert_load_fails(SERVER "conninfo = x\n", -EINVAL,
	                  "test.conf:4: unknown key 'conninfo' in section [server]");
	assert_load_fails(SERVER "port = 1\nport = 2\n", -EINVAL,
	                  "test.conf:5: duplicate key 'port' in section [server]");
	/* Also when the section is opened twice. */
	assert_load_fails("[server]\nport = 1\n" DB "[server]\nport = 2\n", -EINVAL,
	                  "test.conf:6: duplicate key 'port' in section [server]");
	assert_load_fails("port = 1\n" DB, -EINVAL,
	                  "test.conf:1: key 'port' is outside any [section]");
}

static void test_uint_errors(void **state)
{
	static const char *const not_numbers[] = {"abc", "-1", "+1",  "0x10",
	                                          "1.5", "08", "1 2", "1e3"};
	char msg[128];

	(void)state;
	for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++) {
		snprintf(msg, sizeof(msg), "'%s' is not a whole number", not_numbers[i]);
		assert_bad_value("port", not_numbers[i], -EINVAL, msg);
	}
	assert_bad_value("port", "", -EINVAL, "'' is not a whole number");
	assert_bad_value("port", "0", -ERANGE, "0 is out of range (1-65535)");
	assert_bad_value("port", "65536", -ERANGE, "65536 is out of range (1-65535)");
	assert_bad_value("port", "18446744073709551616", -ERANGE,
	                 "18446744073709551616 is out of range (1-65535)");
	assert_bad_value("port", "99999999999999999999999", -ERANGE,
	                 "99999999999999999999999 is out of range (1-65535)");
}

static void test_bool_enum_string_errors(void **state)
{
	struct test_cfg cfg;
	char text[256];

	(void)state;
	assert_bad_value("verbose", "maybe", -EINVAL, "'maybe' is not a boolean (true or false)");
	assert_bad_value("verbose", "TRUE", -EINVAL, "'TRUE' is not a boolean (true or false)");
	assert_bad_value("verbose", "2", -EINVAL, "'2' is not a boolean (true or false)");
	assert_bad_value("mode", "turbo", -EINVAL, "'turbo' is not one of: fast, safe, off");
	assert_bad_value("mode", "FAST", -EINVAL, "'FAST' is not one of: fast, safe, off");
	assert_bad_value("mode", "", -EINVAL, "'' is not one of: fast, safe, off");
	assert_bad_value("name", "01234567890123456789012345678901", -EINVAL,
	                 "value is longer than 31 characters");
	assert_bad_value("name", "a/b", -EINVAL, "'a/b' must not contain '/'");

	/* A required string may not be empty. */
	assert_load_fails("[database]\nconninfo =\n", -EINVAL,
	                  "test.conf:2: bad value for 'conninfo' in section [database]: "
	                  "value is empty");
	/* "key =;x" is not the value ";x" (it could never be written back), nor a comment. */
	assert_load_fails("[database]\nconninfo =; fill me in\n", -EINVAL,
	                  "test.conf:2: bad value for 'conninfo' in section [database]: "
	                  "value starts with ';', which reads as a comment");
	assert_load_fails(SERVER "name =;x\n", -EINVAL,
	                  "test.conf:4: bad value for 'name' in section [server]: "
	                  "value starts with ';', which reads as a comment");
	/* With a space, it is a comment and the value is empty. */
	assert_int_equal(load(&cfg, SERVER "name = ;x\n", NULL), 0);
	assert_string_equal(cfg.name, "");
	snprintf(text, sizeof(text), "[database]\nconninfo = %064d\n", 0);
	assert_load_fails(text, -EINVAL,
	                  "test.conf:2: bad value for 'conninfo' in section [database]: "
	                  "value is longer than 63 characters");
}

static void test_duration_errors(void **state)
{
	(void)state;
	assert_bad_value("timeout", "30", -EINVAL, "'30' needs a unit (ms, s, m, h or d)");
	assert_bad_value("timeout", "30x", -EINVAL, "'30x' has an unknown unit (ms, s, m, h or d)");
	assert_bad_value("timeout", "30 s", -EINVAL,
	                 "'30 s' has an unknown unit (ms, s, m, h or d)");
	assert_bad_value("timeout", "30S", -EINVAL, "'30S' has an unknown unit (ms, s, m, h or d)");
	assert_bad_value("timeout", "1.5s", -EINVAL,
	                 "'1.5s' has an unknown unit (ms, s, m, h or d)");
	assert_bad_value("timeout", "s", -EINVAL,
	                 "'s' is not a duration (a number and a unit: ms, s, m, h or d)");
	assert_bad_value("timeout", "-5s", -EINVAL,
	                 "'-5s' is not a duration (a number and a unit: ms, s, m, h or d)");
	assert_bad_value("timeout", "05s", -EINVAL,
	                 "'05s' is not a duration (a number and a unit: ms, s, m, h or d)");
	assert_bad_value("timeout", "", -EINVAL,
	                 "'' is not a duration (a number and a unit: ms, s, m, h or d)");
	assert_bad_value("timeout", "99ms", -ERANGE, "99ms is out of range (100ms-86400000ms)");
	assert_bad_value("timeout", "0s", -ERANGE, "0s is out of range (100ms-86400000ms)");
	assert_bad_value("timeout", "2d", -ERANGE, "2d is out of range (100ms-86400000ms)");
	assert_bad_value("timeout", "25h", -ERANGE, "25h is out of range (100ms-86400000ms)");
	/* Products and numbers that overflow 64 bits are out of range, not garbage. */
	assert_bad_value("timeout", "18446744073709551615d", -ERANGE,
	                 "18446744073709551615d is out of range (100ms-86400000ms)");
	assert_bad_value("timeout", "99999999999999999999999ms", -ERANGE,
	                 "99999999999999999999999ms is out of range (100ms-86400000ms)");
	assert_bad_value("timeout", "18446744073709551616s", -ERANGE,
	                 "18446744073709551616s is out of range (100ms-86400000ms)");
}

static void test_required_missing(void **state)
{
	(void)state;
	assert_load_fails("[server]\nport = 5\n", -EINVAL,
	                  "test.conf: required key 'conninfo' in section [database] is missing");
	assert_load_fails("", -EINVAL,
	                  "test.conf: required key 'conninfo' in section [database] is missing");
	/* A commented-out key is not given. */
	assert_load_fails("[database]\n;conninfo = x\n", -EINVAL,
	                  "test.conf: required key 'conninfo' in section [database] is missing");
}

/* A table check sees the whole file: mode = off needs verbose. */
static int check_off_verbose(const void *cfg, struct wgf_err *err)
{
	const struct test_cfg *c = cfg;

	if (c->mode == TEST_MODE_OFF && !c->verbose)
		return wgf_err_set(err, -EINVAL, "[server] mode = off needs verbose = true");
	return 0;
}

static void test_table_check(void **state)
{
	const struct wgf_conf_table checked = {
	        .entries = test_entries,
	        .n_entries = sizeof(test_entries) / sizeof(test_entries[0]),
	        .check = check_off_verbose,
	};
	const char *bad = SERVER "mode = off\n";
	const char *good = SERVER "mode = off\nverbose = true\n";
	struct wgf_err err = {0};
	struct test_cfg cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(wgf_conf_load_string(&checked, &cfg, "test.conf", bad, strlen(bad), &err),
	                 -EINVAL);
	assert_string_equal(err.msg, "test.conf: [server] mode = off needs verbose = true");
	assert_int_equal(wgf_conf_load_string(&checked, &cfg, "test.conf", bad, strlen(bad), NULL),
	                 -EINVAL);
	assert_int_equal(
	        wgf_conf_load_string(&checked, &cfg, "test.conf", good, strlen(good), &err), 0);
	/* A missing required key is reported before the check runs. */
	assert_int_equal(wgf_conf_load_string(&checked, &cfg, "test.conf", "[server]\nmode = off\n",
	                                      strlen("[server]\nmode = off\n"), &err),
	                 -EINVAL);
	assert_string_equal(err.msg,
	                    "test.conf: required key 'conninfo' in section [database] is missing");
}

static void test_line_errors(void **state)
{
	char text[512];
	static const char nul_text[] = SERVER "port = 5\0\n";

	(void)state;
	assert_load_fails(SERVER "port\n", -EINVAL,
	                  "test.conf:4: syntax error: expected '[section]' or 'key = value'");
	assert_load_fails("[server\n" DB, -EINVAL,
	                  "test.conf:1: syntax error: expected '[section]' or 'key = value'");
	assert_load_fails(DB "just some words\n", -EINVAL,
	                  "test.conf:3: syntax error: expected '[section]' or 'key = value'");

	/* 199 characters is the limit; 200 is refused. */
	snprintf(text, sizeof(text), SERVER ";%0199d\n", 0);
	assert_load_fails(text, -EINVAL, "test.conf:4: line is longer than 199 characters");
	snprintf(text, sizeof(text), SERVER "name = %0193d\n", 0);
	assert_load_fails(text, -EINVAL, "test.conf:4: line is longer than 199 characters");

	assert_load_fails(SERVER "  port = 5\n", -EINVAL,
	                  "test.conf:4: line starts with whitespace; keys and sections start in "
	                  "the first column");
	assert_load_fails(SERVER "port = 5\n\tname = x\n", -EINVAL,
	                  "test.conf:5: line starts with whitespace; keys and sections start in "
	                  "the first column");
	assert_load_fails(" [server]\n" DB, -EINVAL,
	                  "test.conf:1: line starts with whitespace; keys and sections start in "
	                  "the first column");

	assert_load_fails_n(nul_text, sizeof(nul_text) - 1, -EINVAL,
	                    "test.conf:4: line holds a NUL byte");
}

static void test_long_lines_keep_line_numbers(void **state)
{
	struct test_cfg cfg;
	char text[1024];
	const char *line;

	(void)state;
	/* A line of exactly 199 characters is fine and counts as one line. */
	snprintf(text, sizeof(text), SERVER ";%0198d\nbogus = 1\n", 0);
	assert_load_fails(text, -EINVAL, "test.conf:5: unknown key 'bogus' in section [server]");
	snprintf(text, sizeof(text), SERVER ";%0198d\n;%0198d\nport = 0\n", 0, 0);
	assert_load_fails(text, -ERANGE,
	                  "test.conf:6: bad value for 'port' in section [server]: "
	                  "0 is out of range (1-65535)");
	/* Also with CRLF line ends, where the '\r' counts. */
	snprintf(text, sizeof(text), SERVER ";%0197d\r\nbogus = 1\r\n", 0);
	assert_load_fails(text, -EINVAL, "test.conf:5: unknown key 'bogus' in section [server]");
	snprintf(text, sizeof(text), SERVER ";%0198d\r\n", 0);
	assert_load_fails(text, -EINVAL, "test.conf:4: line is longer than 199 characters");

	/* A full 199-character key line keeps its whole value. */
	snprintf(text, sizeof(text), DB "[server]\nname = %031d ; %0158d\nport = 7\n", 0, 0);
	line = text + strlen(DB "[server]\n");
	assert_int_equal(strchr(line, '\n') - line, 199);
	assert_int_equal(load(&cfg, text, NULL), 0);
	assert_string_equal(cfg.name, "0000000000000000000000000000000");
	assert_int_equal(cfg.port, 7);
}

static void test_first_error_wins(void **state)
{
	char text[512];

	(void)state;
	assert_load_fails(SERVER "bogus = 1\nport = abc\n", -EINVAL,
	                  "test.conf:4: unknown key 'bogus' in section [server]");
	assert_load_fails(SERVER "port = abc\nbogus = 1\n", -EINVAL,
	                  "test.conf:4: bad value for 'port' in section [server]: "
	                  "'abc' is not a whole number");
	assert_load_fails(SERVER "port\nbogus = 1\n", -EINVAL,
	                  "test.conf:4: syntax error: expected '[section]' or 'key = value'");
	assert_load_fails(SERVER "bogus = 1\nport\n", -EINVAL,
	                  "test.conf:4: unknown key 'bogus' in section [server]");
	assert_load_fails(SERVER "port = 0\nport = 1\n", -ERANGE,
	                  "test.conf:4: bad value for 'port' in section [server]: "
	                  "0 is out of range (1-65535)");
	/* Line checks (indent, length, NUL) do not jump ahead of an earlier error. */
	assert_load_fails(SERVER "bogus = 1\n  indented = 2\n", -EINVAL,
	                  "test.conf:4: unknown key 'bogus' in section [server]");
	assert_load_fails(SERVER "port\n  indented = 2\n", -EINVAL,
	                  "test.conf:4: syntax error: expected '[section]' or 'key = value'");
	snprintf(text, sizeof(text), SERVER "port = 0\n;%0199d\n", 0);
	assert_load_fails(text, -ERANGE,
	                  "test.conf:4: bad value for 'port' in section [server]: "
	                  "0 is out of range (1-65535)");
	/* And an earlier line error beats a later value error. */
	assert_load_fails(SERVER "  port = 5\nbogus = 1\n", -EINVAL,
	                  "test.conf:4: line starts with whitespace; keys and sections start in "
	                  "the first column");
	/* The required check comes last. */
	assert_load_fails("[server]\nbogus = 1\n", -EINVAL,
	                  "test.conf:2: unknown key 'bogus' in section [server]");
}

static void test_comments_and_whitespace(void **state)
{
	struct test_cfg cfg;

	(void)state;
	assert_int_equal(load(&cfg,
	                      "; comment\n"
	                      "# comment\n"
	                      "[database] ; section comment\n"
	                      ";conninfo = commented\n"
	                      "#conninfo = commented\n"
	                      "conninfo = a;b ; the ';' without a space before it stays\n"
	                      "   \n"
	                      "\t\n"
	                      "[server]\n"
	                      "name = x # not a comment\n"
	                      "port=17\n"
	                      "mode   =   off   \n",
	                      NULL),
	                 0);
	assert_string_equal(cfg.conninfo, "a;b");
	assert_string_equal(cfg.name, "x # not a comment");
	assert_int_equal(cfg.port, 17);
	assert_int_equal(cfg.mode, TEST_MODE_OFF);

	/* CRLF line ends, and no newline at the end of the file. */
	assert_int_equal(load(&cfg, "[database]\r\nconninfo = db\r\n[server]\r\nport = 9", NULL),
	                 0);
	assert_string_equal(cfg.conninfo, "db");
	assert_int_equal(cfg.port, 9);
}

static void test_unterminated_text(void **state)
{
	static const char *const texts[] = {DB "  ", DB "\t", DB "\n \r", DB "[server]\nport = 5"};
	struct test_cfg cfg;

	(void)state;
	/* The text is len bytes, not a string: nothing past it is read (ASan, valgrind). */
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t len = strlen(texts[i]);
		char *text = malloc(len);

		assert_non_null(text);
		memcpy(text, texts[i], len);
		assert_int_equal(wgf_conf_load_string(&table, &cfg, "t", text, len, NULL), 0);
		free(text);
	}
}

static void test_too_big(void **state)
{
	size_t len = WGF_CONF_FILE_MAX + 1;
	char *text = malloc(len);
	struct test_cfg cfg;
	struct wgf_err err = {0};

	(void)state;
	assert_non_null(text);
	memset(text, '\n', len);
	assert_int_equal(wgf_conf_load_string(&table, &cfg, "test.conf", text, len, &err), -EFBIG);
	assert_string_equal(err.msg, "test.conf: larger than 1048576 bytes");
	free(text);
}

static void test_set_and_find(void **state)
{
	struct test_cfg cfg;
	struct wgf_err err = {0};
	const struct wgf_conf_entry *e;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(wgf_conf_set(&table, &cfg, "server", "port", "443", &err), 0);
	assert_int_equal(cfg.port, 443);
	assert_int_equal(wgf_conf_set(&table, &cfg, "server", "port", "x", &err), -EINVAL);
	assert_string_equal(err.msg, "bad value for 'port' in section [server]: "
	                             "'x' is not a whole number");
	assert_int_equal(cfg.port, 443);
	assert_int_equal(wgf_conf_set(&table, &cfg, "server", "nope", "1", &err), -EINVAL);
	assert_string_equal(err.msg, "unknown key 'nope' in section [server]");
	assert_int_equal(wgf_conf_set(&table, &cfg, "server", "timeout", "0ms", &err), -ERANGE);
	assert_string_equal(err.msg, "bad value for 'timeout' in section [server]: "
	                             "0ms is out of range (100ms-86400000ms)");

	e = wgf_conf_find(&table, "database", "password");
	assert_ptr_equal(e, &test_entries[6]);
	assert_true(e->flags & WGF_CONF_F_SECRET);
	assert_null(wgf_conf_find(&table, "server", "password"));
	assert_null(wgf_conf_find(&table, "nope", "port"));
}

static void test_bad_default(void **state)
{
	static const struct wgf_conf_entry bad_entries[] = {
	        {.section = "s",
	         .name = "n",
	         .type = WGF_CONF_UINT,
	         .offset = 0,
	         .def = "ten",
	         .max = 100},
	};
	static const struct wgf_conf_table bad = {bad_entries, 1};
	uint64_t v = 0;
	struct wgf_err err = {0};

	(void)state;
	assert_int_equal(wgf_conf_defaults(&bad, &v, &err), -EINVAL);
	assert_string_equal(err.msg, "default of 'n' in section [s]: 'ten' is not a whole number");
	assert_int_equal(wgf_conf_load_string(&bad, &v, "x.conf", "", 0, &err), -EINVAL);
	assert_string_equal(err.msg, "default of 'n' in section [s]: 'ten' is not a whole number");
}

/* Writes text to a new temporary file and returns its path (the caller unlinks it). */
static char *write_temp(const char *text)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	assert_true(asprintf(&path, "%s/wgf-test-conf-XXXXXX", dir ? dir : "/tmp") > 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_load_file(void **state)
{
	struct test_cfg cfg;
	struct wgf_err err = {0};
	char *path, *dir, want[512];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(wgf_conf_load_file(&table, &cfg, "/nonexistent/wgfleet-test.conf", &err),
	                 -ENOENT);
	assert_int_equal(err.code, -ENOENT);
	assert_string_equal(
	        err.msg, "/nonexistent/wgfleet-test.conf: cannot open: No such file or directory");

	path = write_temp(GOOD_FILE);
	assert_int_equal(wgf_conf_load_file(&table, &cfg, path, &err), 0);
	assert_string_equal(cfg.name, "node-1");
	assert_int_equal(cfg.port, 51821);
	assert_string_equal(cfg.password, "hunter2");
	unlink(path);
	free(path);

	/* Messages name the path and line. */
	path = write_temp(DB "port = 1\n");
	assert_int_equal(wgf_conf_load_file(&table, &cfg, path, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: unknown key 'port' in section [database]", path);
	assert_string_equal(err.msg, want);

	/* A directory is not a config file. */
	dir = strdup(path);
	assert_non_null(dir);
	*strrchr(dir, '/') = '\0';
	assert_int_equal(wgf_conf_load_file(&table, &cfg, dir, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	assert_string_equal(err.msg, want);
	unlink(path);
	free(path);
	free(dir);
}

static void test_load_optional(void **state)
{
	struct test_cfg cfg;
	struct wgf_err err = {0};
	char *path;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(wgf_conf_load_optional(&table, &cfg, "/nonexistent/wgf.conf", false, &err),
	                 0);
	assert_int_equal(cfg.port, 51820);
	assert_int_equal(wgf_conf_load_optional(&table, &cfg, "/nonexistent/wgf.conf", true, &err),
	                 -ENOENT);

	path = write_temp(SERVER "port = 2\n");
	assert_int_equal(wgf_conf_load_optional(&table, &cfg, path, false, &err), 0);
	assert_int_equal(cfg.port, 2);
	unlink(path);
	free(path);
}

static char *dump(const void *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	wgf_conf_dump(&table, cfg, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_dump_round_trip(void **state)
{
	static const char *const timeouts[] = {"100ms", "1500ms", "90s", "2m", "61m", "1h", "1d"};
	struct test_cfg a, b;
	struct wgf_err err = {0};
	char text[1024], *out;

	(void)state;
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		snprintf(
		        text, sizeof(text),
		        "[server]\nname = n%zu\nport = %zu\nverbose = on\ntimeout = %s\nmode = off\n"
		        "[database]\nconninfo = host=/tmp port=5433\npassword = s3cr3t-pw\n",
		        i, 100 + i, timeouts[i]);
		assert_int_equal(load(&a, text, &err), 0);
		out = dump(&a);
		/* The secret is never written, not even in a comment. */
		assert_null(strstr(out, "s3cr3t"));
		assert_non_null(strstr(out, "\n;password = [redacted]\n"));
		assert_int_equal(load(&b, out, &err), 0);
		assert_string_equal(b.name, a.name);
		assert_int_equal(b.port, a.port);
		assert_int_equal(b.verbose, a.verbose);
		assert_int_equal(b.timeout_ms, a.timeout_ms);
		assert_int_equal(b.mode, a.mode);
		assert_string_equal(b.conninfo, a.conninfo);
		assert_string_equal(b.password, "");
		free(out);
	}
}

static void test_dump_exact(void **state)
{
	struct test_cfg cfg;
	char *out;

	(void)state;
	assert_int_equal(load(&cfg, GOOD_FILE, NULL), 0);
	out = dump(&cfg);
	assert_string_equal(out, "[server]\n"
	                         "; Name of this node.\n"
	                         "name = node-1\n"
	                         "; UDP port to listen on.\n"
	                         "port = 51821\n"
	                         "; Log more. Reloaded on SIGHUP.\n"
	                         "verbose = true\n"
	                         "; How long to wait.\n"
	                         "timeout = 2m\n"
	                         "; How careful to be.\n"
	                         "mode = fast\n"
	                         "\n"
	                         "[database]\n"
	                         "; libpq connection string. Required.\n"
	                         "conninfo = host=/run/postgresql dbname=wgfleet\n"
	                         "; Database password.\n"
	                         ";password = [redacted]\n");
	free(out);
}

static void test_dump_defaults(void **state)
{
	struct test_cfg cfg;
	struct wgf_err err = {0};
	char *out;

	(void)state;
	out = dump(NULL);
	assert_string_equal(out, "[server]\n"
	                         "; Name of this node.\n"
	                         ";name = wgfleet\n"
	                         "; UDP port to listen on.\n"
	                         ";port = 51820\n"
	                         "; Log more. Reloaded on SIGHUP.\n"
	                         ";verbose = false\n"
	                         "; How long to wait.\n"
	                         ";timeout = 30s\n"
	                         "; How careful to be.\n"
	                         ";mode = safe\n"
	                         "\n"
	                         "[database]\n"
	                         "; libpq connection string. Required.\n"
	                         ";conninfo =\n"
	                         "; Database password.\n"
	                         ";password =\n");
	/* It is a file the loader reads: only the required key is missing. */
	assert_int_equal(load(&cfg, out, &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "test.conf: required key 'conninfo' in section [database] is missing");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_good_file),
	        cmocka_unit_test(test_values),
	        cmocka_unit_test(test_section_and_key_errors),
	        cmocka_unit_test(test_uint_errors),
	        cmocka_unit_test(test_bool_enum_string_errors),
	        cmocka_unit_test(test_duration_errors),
	        cmocka_unit_test(test_required_missing),
	        cmocka_unit_test(test_table_check),
	        cmocka_unit_test(test_line_errors),
	        cmocka_unit_test(test_long_lines_keep_line_numbers),
	        cmocka_unit_test(test_first_error_wins),
	        cmocka_unit_test(test_comments_and_whitespace),
	        cmocka_unit_test(test_unterminated_text),
	        cmocka_unit_test(test_too_big),
	        cmocka_unit_test(test_set_and_find),
	        cmocka_unit_test(test_bad_default),
	        cmocka_unit_test(test_load_file),
	        cmocka_unit_test(test_load_optional),
	        cmocka_unit_test(test_dump_round_trip),
	        cmocka_unit_test(test_dump_exact),
	        cmocka_unit_test(test_dump_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
