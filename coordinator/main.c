/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wgfleet-coordinator: command line, configuration and the subcommands. */
#define LOG_MODULE "main"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "api.h"
#include "apikey.h"
#include "daemon.h"
#include "db_sync.h"
#include "fs.h"
#include "identity.h"
#include "key.h"
#include "log.h"
#include "migrate.h"
#include "secret.h"
#include "settings.h"

#define DEFAULT_CONFIG WGF_SYSCONFDIR "/coordinator.conf"

struct options {
	const char *config;
	const char *database;
	bool config_given;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: wgfleet-coordinator [OPTIONS] COMMAND\n"
	        "\n"
	        "Commands:\n"
	        "  serve            run the coordinator (the HTTP API and the agents' channel)\n"
	        "  migrate          apply the schema migrations this binary carries\n"
	        "  migrate-status   list the migrations, applied and pending\n"
	        "  check-config     load the configuration and report the first problem\n"
	        "  dump-config      print the effective configuration\n"
	        "  sample-config    print a configuration file with every option and default\n"
	        "  routes           print the HTTP API's routes, \"METHOD /path\" a line\n"
	        "  create-admin-key create an admin API key in the database and print it once\n"
	        "  channel-key      create the channel's signing key if missing; print its\n"
	        "                   public half (for the agents' configuration)\n"
	        "  new-epoch        start a new revision epoch: run it once after restoring\n"
	        "                   the database from a backup, before serving\n"
	        "  version          print the version\n"
	        "\n"
	        "Options:\n"
	        "  -c, --config FILE          configuration file (default %s)\n"
	        "  -d, --database CONNINFO    libpq connection string; overrides [database]\n"
	        "  -h, --help                 show this help\n"
	        "  -V, --version              print the version\n",
	        DEFAULT_CONFIG);
}

/*
 * Loads the configuration. Without --config a missing default file is not an error
 * (the defaults stand), so a first run on a fresh machine needs no file.
 */
static int load_settings(const struct options *o, struct settings *s)
{
	struct wgf_err err = {0};
	int r;

	r = wgf_conf_load_optional(&settings_table, s, o->config, o->config_given, &err);
	if (r == 0 && o->database)
		r = wgf_conf_set(&settings_table, s, "database", "conninfo", o->database, &err);
	if (r < 0) {
		log_error("Invalid configuration: %s", err.msg);
		return r;
	}
	wgf_log_init(NULL, settings_log_level(s));
	return 0;
}

static int connect_db(const struct settings *s, PGconn **ret)
{
	struct wgf_err err = {0};
	int r = db_sync_connect(s->conninfo, ret, &err);

	if (r < 0)
		log_error("%s", err.msg);
	return r;
}

static int cmd_migrate(const struct settings *s)
{
	struct migrate_result res = {0};
	struct wgf_err err = {0};
	PGconn *conn;
	int r;

	r = connect_db(s, &conn);
	if (r < 0)
		return r;
	r = migrate_run(conn, &res, &err);
	PQfinish(conn);
	if (r < 0) {
		log_error("Migration failed: %s", err.msg);
		return r;
	}
	if (res.from_version == res.to_version)
		printf("schema is current at version %d\n", res.to_version);
	else
		printf("schema migrated from version %d to %d\n", res.from_version, res.to_version);
	return 0;
}

static int cmd_migrate_status(const struct settings *s)
{
	struct wgf_err err = {0};
	PGconn *conn;
	int r;

	r = connect_db(s, &conn);
	if (r < 0)
		return r;
	r = migrate_print_status(conn, stdout, &err);
	if (r == 0)
		r = migrate_check(conn, &err);
	PQfinish(conn);
	if (r < 0)
		log_error("%s", err.msg);
	return r;
}

/* Talks to the database directly, so an operator can bootstrap before any key exists. */
static int cmd_create_admin_key(const struct settings *s)
{
	char text[APIKEY_TEXT_LEN + 1], hash[2 + 2 * APIKEY_HASH_LEN + 1], id[24];
	uint8_t secret[32];
	struct wgf_err err = {0};
	struct apikey k;
	PGresult *res = NULL;
	PGconn *conn;
	int r;

	r = wgf_fs_read_secret32(s->key_hash_secret_file, secret, &err);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot read the API key hashing secret: %s", err.msg);
	r = connect_db(s, &conn);
	if (r < 0)
		goto out;
	r = migrate_check(conn, &err);
	if (r == 0) {
		apikey_generate(secret, text, &k);
		hash[0] = '\\';
		hash[1] = 'x';
		sodium_bin2hex(hash + 2, sizeof(hash) - 2, k.hash, sizeof(k.hash));
		r = db_sync_exec(conn,
		                 "SELECT wgf_create_admin_key($1, $2::bytea, 'create-admin-key')",
		                 2, (const char *const[]){k.prefix, hash}, &res, &err);
	}
	PQfinish(conn);
	if (r < 0) {
		log_error("Cannot create the key: %s", err.msg);
		goto out;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	log_fields(LOG_NOTICE, "Created an admin API key", {"key_id", id}, {"prefix", k.prefix});
	printf("%s\n", text);
	sodium_memzero(text, sizeof(text));
out:
	sodium_memzero(secret, sizeof(secret));
	return r;
}

/*
 * After a restore the database's revisions repeat numbers that agents may have applied
 * with other contents: a new epoch makes every agent take a snapshot of what the
 * database holds now (proto/wgfleet.proto, REVISIONS AND EPOCHS).
 */
static int cmd_new_epoch(const struct settings *s)
{
	struct wgf_err err = {0};
	PGresult *res = NULL;
	PGconn *conn;
	int r = connect_db(s, &conn);

	if (r < 0)
		return r;
	r = migrate_check(conn, &err);
	if (r == 0)
		r = db_sync_exec(conn, "SELECT encode(wgf_new_epoch($1), 'hex')", 1,
		                 (const char *const[]){"new-epoch command"}, &res, &err);
	PQfinish(conn);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot start a new epoch: %s", err.msg);
	log_fields(LOG_NOTICE, "Started a new epoch: every agent takes a snapshot",
	           {"epoch", PQgetvalue(res, 0, 0)});
	printf("%s\n", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

static int cmd_channel_key(const struct settings *s)
{
	struct wgf_identity id;
	struct wgf_err err = {0};
	bool created = false;
	char pk[45];
	int r;

	r = wgf_identity_load_or_create(&id, s->channel_key_file, &created, &err);
	if (r < 0)
		return log_errno(LOG_ERR, r, "Cannot set up the channel key: %s", err.msg);
	wgf_identity_public_b64(&id, pk);
	wgf_identity_fini(&id);
	log_fields(LOG_NOTICE, created ? "Created the channel key" : "Channel key exists",
	           {"file", s->channel_key_file});
	printf("%s\n", pk);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"database", required_argument, NULL, 'd'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	struct options o = {.config = DEFAULT_CONFIG};
	struct settings s;
	const char *cmd;
	int c, r;

	wgf_log_init("wgfleet-coordinator", LOG_INFO);
	/* Before any thread starts: webhook deliveries use libcurl. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("Cannot initialise libcurl");
		return EXIT_FAILURE;
	}
	/* Keys live in this process's memory: it makes no core dump, whoever starts it. */
	r = wgf_secret_harden_process();
	if (r < 0)
		log_errno(LOG_WARNING, r, "Cannot turn core dumps off, continuing");
	while ((c = getopt_long(argc, argv, "c:d:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.config = optarg;
			o.config_given = true;
			break;
		case 'd':
			o.database = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("wgfleet-coordinator %s\n", WGF_VERSION);
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
		printf("wgfleet-coordinator %s\n", WGF_VERSION);
		return EXIT_SUCCESS;
	}
	if (strcmp(cmd, "routes") == 0) {
		api_routes_print(stdout);
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
	if (load_settings(&o, &s) < 0)
		return EXIT_FAILURE;
	if (strcmp(cmd, "check-config") == 0) {
		r = 0;
	} else if (strcmp(cmd, "dump-config") == 0) {
		wgf_conf_dump(&settings_table, &s, stdout);
		r = 0;
	} else if (strcmp(cmd, "serve") == 0) {
		r = daemon_run(&s, o.config, o.config_given);
	} else if (strcmp(cmd, "create-admin-key") == 0) {
		r = cmd_create_admin_key(&s);
	} else if (strcmp(cmd, "new-epoch") == 0) {
		r = cmd_new_epoch(&s);
	} else if (strcmp(cmd, "channel-key") == 0) {
		r = cmd_channel_key(&s);
	} else if (strcmp(cmd, "migrate") == 0) {
		r = cmd_migrate(&s);
	} else if (strcmp(cmd, "migrate-status") == 0) {
		r = cmd_migrate_status(&s);
	} else {
		fprintf(stderr, "wgfleet-coordinator: unknown command '%s'\n\n", cmd);
		usage(stderr);
		return 2;
	}
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
