/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wgfleetctl: the operators' command line: finds the coordinator and the key, runs one
 * command. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "conf.h"
#include "ctl.h"
#include "fs.h"
#include "log.h"

#define KEY_MAX         128
#define TIMEOUT_DEFAULT 5.0
#define OPTS_MAX        32

/* ~/.config/wgfleet/ctl.conf or WGF_SYSCONFDIR/ctl.conf (/etc/wgfleet by default). */
struct ctl_conf {
	char url[512];
	char key[KEY_MAX];
	char key_file[PATH_MAX];
	uint64_t timeout_ms;
};

static const struct wgf_conf_entry conf_entries[] = {
        {"coordinator", "url", WGF_CONF_STRING, 0, offsetof(struct ctl_conf, url),
         sizeof(((struct ctl_conf *)0)->url), NULL, .doc = "the coordinator's HTTP API"},
        {"coordinator", "key", WGF_CONF_STRING, WGF_CONF_F_SECRET, offsetof(struct ctl_conf, key),
         KEY_MAX, NULL, .doc = "an API key (admin scope)"},
        {"coordinator", "key_file", WGF_CONF_STRING, 0, offsetof(struct ctl_conf, key_file),
         PATH_MAX, NULL, .doc = "a file holding the API key, readable only by its owner"},
        {"coordinator", "timeout", WGF_CONF_DURATION, 0, offsetof(struct ctl_conf, timeout_ms), 0,
         "5s", 100, 600000, .doc = "how long a request may take"},
};
static const struct wgf_conf_table conf_table = {conf_entries,
                                                 sizeof(conf_entries) / sizeof(conf_entries[0])};

/* The options every command takes. */
static const struct opt_spec common_opts[] = {
        {"url", "URL", "the coordinator's API (default: $WGFLEET_URL, then the config file)"},
        {"key-file", "FILE", "read the API key from FILE (mode 0600 or stricter)"},
        {"config", "FILE",
         "the config file (default ~/.config/wgfleet/ctl.conf, then " WGF_SYSCONFDIR "/ctl.conf)"},
        {"timeout", "SECONDS", "give up on the coordinator after this long (default 5)"},
        {"json", NULL, "print the API's JSON instead of a table"},
        {"help", NULL, "show this help"},
        {NULL, NULL, NULL},
};

/* The README and docs/CLI.md have the same table; a test keeps them equal. */
static const char exit_codes[] =
        "Exit codes:\n"
        "  0  done\n"
        "  1  the API refused: its HTTP status, error code and message are printed\n"
        "  2  usage: a bad command line, or no usable URL, key, config file or key file\n"
        "  3  the coordinator is unreachable or did not answer within --timeout\n"
        "  4  `status` found a server offline or lagging, or `import` found conflicting "
        "lines\n";

static const char where_key[] =
        "The URL and key come from the flags, then WGFLEET_URL and WGFLEET_KEY (or\n"
        "WGFLEET_KEY_FILE), then the config file ([coordinator] url, key or key_file,\n"
        "timeout), which is refused when its group or others may read it.\n";

static void print_opts(FILE *out, const struct opt_spec *o)
{
	for (; o && o->name; o++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
		         o->arg ? o->arg : "");
		fprintf(out, "  %-28s %s\n", left, o->help);
	}
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: wgfleetctl [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < n_commands; i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s %s", commands[i].group,
		         commands[i].name ? " " : "", commands[i].name ? commands[i].name : "",
		         commands[i].args);
		fprintf(out, "  %-28s %s\n", left, commands[i].summary);
	}
	fprintf(out, "\nOptions (of every command):\n");
	print_opts(out, common_opts);
	fprintf(out,
	        "\n`wgfleetctl COMMAND --help` shows a command's own options, and "
	        "`wgfleetctl --version` the version.\n\n%s\n%s",
	        where_key, exit_codes);
}

static void command_usage(FILE *out, const struct command *cmd)
{
	fprintf(out, "Usage: wgfleetctl %s%s%s%s%s [OPTIONS]\n\n%s.\n", cmd->group,
	        cmd->name ? " " : "", cmd->name ? cmd->name : "", cmd->args[0] ? " " : "",
	        cmd->args, cmd->summary);
	if (cmd->opts && cmd->opts[0].name) {
		fprintf(out, "\nOptions:\n");
		print_opts(out, cmd->opts);
	}
	fprintf(out, "\nOptions of every command:\n");
	print_opts(out, common_opts);
	fprintf(out, "\n%s", exit_codes);
}

const char *ctx_opt(const struct ctx *c, const char *name)
{
	for (size_t i = 0; c->cmd->opts && c->cmd->opts[i].name; i++)
		if (strcmp(c->cmd->opts[i].name, name) == 0)
			return c->values[i];
	return NULL;
}

int ctx_usage(const struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "wgfleetctl %s%s%s: ", c->cmd->group, c->cmd->name ? " " : "",
	        c->cmd->name ? c->cmd->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return CTL_USAGE;
}

/* The key read from a file only its owner may read; trailing whitespace dropped. */
static int read_key_file(const char *path, char out[static KEY_MAX])
{
	struct wgf_err err = {0};
	char *data = NULL;
	size_t len = 0;
	int r;

	r = wgf_fs_read_private(path, KEY_MAX * 4, &data, &len, &err);
	if (r < 0) {
		fprintf(stderr, "wgfleetctl: cannot use the key file: %s\n", err.msg);
		return CTL_USAGE;
	}
	while (len > 0 && strchr(" \t\r\n", data[len - 1]))
		len--;
	r = len == 0 || len >= KEY_MAX ? CTL_USAGE : CTL_OK;
	if (r == CTL_OK) {
		memcpy(out, data, len);
		out[len] = '\0';
	} else {
		fprintf(stderr, "wgfleetctl: the key file '%s' holds no key\n", path);
	}
	sodium_memzero(data, len);
	free(data);
	return r;
}

/* Loads the config file: the one named, or the first of the default places that exists. */
static int load_conf(const char *named, struct ctl_conf *cf)
{
	char home_path[PATH_MAX] = "";
	const char *home = getenv("HOME"), *path = named;
	struct wgf_err err = {0};
	char *data = NULL;
	size_t len = 0;
	int r;

	if (!path && home && home[0]) {
		snprintf(home_path, sizeof(home_path), "%s/.config/wgfleet/ctl.conf", home);
		if (access(home_path, F_OK) == 0)
			path = home_path;
	}
	if (!path && access(WGF_SYSCONFDIR "/ctl.conf", F_OK) == 0)
		path = WGF_SYSCONFDIR "/ctl.conf";
	if (!path)
		return wgf_conf_defaults(&conf_table, cf, NULL) < 0 ? CTL_USAGE : CTL_OK;
	/* It may hold a key: refused, like the daemons' secret files, when others may read it. */
	r = wgf_fs_read_private(path, WGF_CONF_FILE_MAX, &data, &len, &err);
	if (r == 0)
		r = wgf_conf_load_string(&conf_table, cf, path, data, len, &err);
	if (data) {
		sodium_memzero(data, len);
		free(data);
	}
	if (r < 0) {
		fprintf(stderr, "wgfleetctl: %s\n", err.msg);
		return CTL_USAGE;
	}
	return CTL_OK;
}

struct settings {
	const char *url_flag, *key_file_flag, *config_flag, *timeout_flag;
	char url[512];
	char key[KEY_MAX];
	long timeout_ms;
};

/* Flags, then the environment, then the config file (read only when still needed). */
static int resolve(struct settings *s)
{
	const char *env_url = getenv("WGFLEET_URL"), *env_key = getenv("WGFLEET_KEY");
	const char *env_key_file = getenv("WGFLEET_KEY_FILE");
	struct ctl_conf cf = {0};
	double seconds = TIMEOUT_DEFAULT;
	bool have_url, have_key;
	int r = CTL_OK;

	if (s->timeout_flag && (output_parse_duration(s->timeout_flag, &seconds) < 0 ||
	                        seconds < 0.1 || seconds > 600)) {
		fprintf(stderr, "wgfleetctl: --timeout: seconds from 0.1 to 600 ('5', '2.5s')\n");
		return CTL_USAGE;
	}
	s->timeout_ms = (long)(seconds * 1000);
	if (s->url_flag)
		snprintf(s->url, sizeof(s->url), "%s", s->url_flag);
	else if (env_url && env_url[0])
		snprintf(s->url, sizeof(s->url), "%s", env_url);
	if (s->key_file_flag)
		r = read_key_file(s->key_file_flag, s->key);
	else if (env_key && env_key[0])
		snprintf(s->key, sizeof(s->key), "%s", env_key);
	else if (env_key_file && env_key_file[0])
		r = read_key_file(env_key_file, s->key);
	if (r != CTL_OK)
		return r;
	have_url = s->url[0];
	have_key = s->key[0];
	if (have_url && have_key && !s->config_flag)
		return CTL_OK;
	r = load_conf(s->config_flag, &cf);
	if (r == CTL_OK && !have_url)
		snprintf(s->url, sizeof(s->url), "%s", cf.url);
	if (r == CTL_OK && !have_key && cf.key[0])
		snprintf(s->key, sizeof(s->key), "%s", cf.key);
	else if (r == CTL_OK && !have_key && cf.key_file[0])
		r = read_key_file(cf.key_file, s->key);
	if (r == CTL_OK && !s->timeout_flag && cf.timeout_ms)
		s->timeout_ms = (long)cf.timeout_ms;
	sodium_memzero(&cf, sizeof(cf));
	if (r == CTL_OK && !s->url[0]) {
		fprintf(stderr, "wgfleetctl: no coordinator URL: give --url, set WGFLEET_URL or "
		                "write [coordinator] url in ctl.conf\n");
		r = CTL_USAGE;
	}
	if (r == CTL_OK && !s->key[0]) {
		fprintf(stderr, "wgfleetctl: no API key: give --key-file, set WGFLEET_KEY or "
		                "WGFLEET_KEY_FILE, or write [coordinator] key or key_file in "
		                "ctl.conf\n");
		r = CTL_USAGE;
	}
	return r;
}

static const struct command *find_command(const char *group, const char *name, bool *ret_used2)
{
	bool group_known = false;

	*ret_used2 = false;
	for (size_t i = 0; i < n_commands; i++) {
		if (strcmp(commands[i].group, group) != 0)
			continue;
		group_known = true;
		if (!commands[i].name)
			return &commands[i];
		if (name && strcmp(commands[i].name, name) == 0) {
			*ret_used2 = true;
			return &commands[i];
		}
	}
	if (group_known)
		fprintf(stderr,
		        "wgfleetctl: '%s' needs a subcommand%s%s%s (see wgfleetctl --help)\n",
		        group, name ? "; not '" : "", name ? name : "", name ? "'" : "");
	else
		fprintf(stderr, "wgfleetctl: unknown command '%s' (see wgfleetctl --help)\n",
		        group);
	return NULL;
}

static bool takes_value(const char *arg)
{
	for (const struct opt_spec *o = common_opts; o->name; o++)
		if (o->arg && strncmp(arg, "--", 2) == 0 && strcmp(arg + 2, o->name) == 0)
			return true;
	return false;
}

/*
 * Splits argv into the command's words and the rest: the first one or two words not
 * an option (nor the value of a common option) name the command; getopt_long then
 * reads the common and the command's options from what is left.
 */
static int parse(int argc, char **argv, struct settings *s, struct ctx *c, bool *ret_help)
{
	struct option longopts[OPTS_MAX + 1] = {{0}};
	const struct opt_spec *specs[OPTS_MAX];
	static const char *values[OPTS_MAX];
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int n_rest = 0, words[2] = {-1, -1}, n_words = 0, n_opts = 0, o;
	bool used2, help = false;

	if (!rest)
		return CTL_USAGE;
	for (int i = 1; i < argc && n_words < 2; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (argv[i][0] == '-') {
			if (takes_value(argv[i]))
				i++;
			else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
				help = true;
			continue;
		}
		words[n_words++] = i;
	}
	if (n_words == 0) {
		free(rest);
		usage(help ? stdout : stderr);
		*ret_help = help;
		return help ? CTL_OK : CTL_USAGE;
	}
	c->cmd = find_command(argv[words[0]], n_words > 1 ? argv[words[1]] : NULL, &used2);
	if (!c->cmd) {
		free(rest);
		return CTL_USAGE;
	}
	rest[n_rest++] = argv[0];
	for (int i = 1; i < argc; i++)
		if (i != words[0] && !(used2 && i == words[1]))
			rest[n_rest++] = argv[i];
	for (const struct opt_spec *p = common_opts; p->name; p++)
		specs[n_opts++] = p;
	for (const struct opt_spec *p = c->cmd->opts; p && p->name && n_opts < OPTS_MAX; p++)
		specs[n_opts++] = p;
	for (int i = 0; i < n_opts; i++)
		longopts[i] = (struct option){specs[i]->name,
		                              specs[i]->arg ? required_argument : no_argument, NULL,
		                              256 + i};
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(n_rest, rest, ":h", longopts, NULL)) != -1) {
		const char *name;

		if (o == 'h') {
			help = true;
			continue;
		}
		if (o < 256) {
			fprintf(stderr, "wgfleetctl: %s '%s' (see --help)\n",
			        o == ':' ? "a value is missing after" : "unknown option",
			        rest[optind - 1]);
			free(rest);
			return CTL_USAGE;
		}
		name = specs[o - 256]->name;
		values[o - 256] = optarg ? optarg : "";
		if (strcmp(name, "url") == 0)
			s->url_flag = optarg;
		else if (strcmp(name, "key-file") == 0)
			s->key_file_flag = optarg;
		else if (strcmp(name, "config") == 0)
			s->config_flag = optarg;
		else if (strcmp(name, "timeout") == 0)
			s->timeout_flag = optarg;
		else if (strcmp(name, "json") == 0)
			c->json = true;
		else if (strcmp(name, "help") == 0)
			help = true;
	}
	*ret_help = help;
	if (help) {
		free(rest);
		command_usage(stdout, c->cmd);
		return CTL_OK;
	}
	/* The command's own options follow the common ones. */
	c->values = &values[sizeof(common_opts) / sizeof(common_opts[0]) - 1];
	c->n_args = (unsigned)(n_rest - optind);
	if (c->n_args != c->cmd->n_args) {
		free(rest);
		return ctx_usage(c, "takes %s%s (see --help)", c->cmd->n_args ? "" : "no arguments",
		                 c->cmd->args);
	}
	/* The positional arguments point into argv, which outlives them. */
	c->args = calloc(c->n_args + 1, sizeof(*c->args));
	for (unsigned i = 0; c->args && i < c->n_args; i++)
		c->args[i] = rest[optind + (int)i];
	free(rest);
	return c->args ? CTL_OK : CTL_USAGE;
}

int main(int argc, char **argv)
{
	struct settings s = {0};
	struct ctx c = {0};
	bool help = false;
	int r;

	wgf_log_init("wgfleetctl", LOG_WARNING);
	if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("wgfleetctl %s\n", WGF_VERSION);
		return CTL_OK;
	}
	r = parse(argc, argv, &s, &c, &help);
	if (r != CTL_OK || help)
		return r;
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "wgfleetctl: cannot initialise libsodium or libcurl\n");
		return CTL_UNREACHABLE;
	}
	r = resolve(&s);
	if (r == CTL_OK) {
		c.client = client_new(s.url, s.key[0] ? s.key : NULL, s.timeout_ms);
		sodium_memzero(s.key, sizeof(s.key));
		if (!c.client) {
			fprintf(stderr, "wgfleetctl: out of memory\n");
			r = CTL_UNREACHABLE;
		}
	}
	output_init(c.json);
	if (r == CTL_OK)
		r = c.cmd->run(&c);
	client_free(c.client);
	free(c.args);
	curl_global_cleanup();
	return r;
}
