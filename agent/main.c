/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wgfleet-agent: command line, configuration and the subcommands. */
#define LOG_MODULE "main"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "identity.h"
#include "key.h"
#include "log.h"
#include "settings.h"

#define DEFAULT_CONFIG WGF_SYSCONFDIR "/agent.conf"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: wgfleet-agent [OPTIONS] COMMAND\n"
	        "\n"
	        "Commands:\n"
	        "  init             create the agent's signing key (once) and print its public\n"
	        "                   half, to register the server with the coordinator\n"
	        "  check-config     load the configuration and report the first problem\n"
	        "  dump-config      print the effective configuration\n"
	        "  sample-config    print a configuration file with every option and default\n"
	        "  version          print the version\n"
	        "\n"
	        "Options:\n"
	        "  -c, --config FILE   configuration file (default %s)\n"
	        "  -h, --help          show this help\n",
	        DEFAULT_CONFIG);
}

static int cmd_init(const struct settings *s)
{
	struct wgf_identity id;
	struct wgf_err err = {0};
	char path[sizeof(s->state_directory) + 16], pk_b64[45];
	bool created = false;
	int r;

	snprintf(path, sizeof(path), "%s/signing.key", s->state_directory);
	if (mkdir(s->state_directory, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		return log_errno(LOG_ERR, r, "Cannot create '%s'", s->state_directory);
	}
	r = wgf_identity_load_or_create(&id, path, &created, &err);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot set up the signing key: %s", err.msg);
	wgf_identity_public_b64(&id, pk_b64);
	wgf_identity_fini(&id);
	log_fields(LOG_NOTICE, created ? "Created the signing key" : "Signing key exists",
	           {"dir", s->state_directory});
	printf("%s\n", pk_b64);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = DEFAULT_CONFIG, *cmd;
	bool config_given = false;
	struct wgf_err err = {0};
	struct settings s;
	int c, r;

	wgf_log_init("wgfleet-agent", LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			config_given = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "version") == 0) {
		printf("wgfleet-agent %s\n", WGF_VERSION);
		return EXIT_SUCCESS;
	}
	if (strcmp(cmd, "sample-config") == 0) {
		wgf_conf_dump(&settings_table, NULL, stdout);
		return EXIT_SUCCESS;
	}
	if (wgf_key_init() < 0) {
		log_error("Cannot initialise libsodium");
		return EXIT_FAILURE;
	}
	memset(&s, 0, sizeof(s));
	r = wgf_conf_load_optional(&settings_table, &s, config, config_given, &err);
	if (r < 0) {
		log_error("Invalid configuration: %s", err.msg);
		return EXIT_FAILURE;
	}
	wgf_log_init(NULL, LOG_ERR + s.log_level);
	if (strcmp(cmd, "check-config") == 0) {
		r = 0;
	} else if (strcmp(cmd, "dump-config") == 0) {
		wgf_conf_dump(&settings_table, &s, stdout);
		r = 0;
	} else if (strcmp(cmd, "init") == 0) {
		r = cmd_init(&s);
	} else {
		fprintf(stderr, "wgfleet-agent: unknown command '%s'\n\n", cmd);
		usage(stderr);
		return 2;
	}
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
