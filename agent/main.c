/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wgfleet-agent: command line, configuration and the subcommands. */
#define LOG_MODULE "main"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "backend.h"
#include "cache.h"
#include "daemon.h"
#include "identity.h"
#include "key.h"
#include "log.h"
#include "reconcile.h"
#include "secret.h"
#include "settings.h"
#include "sync.h"

#define DEFAULT_CONFIG WGF_SYSCONFDIR "/agent.conf"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: wgfleet-agent [OPTIONS] COMMAND\n"
	        "\n"
	        "Commands:\n"
	        "  run [--foreground]  keep the interface in step: apply the cached desired\n"
	        "                   state, then repair drift and watch the peers; without\n"
	        "                   --foreground it detaches once it is ready\n"
	        "  apply FILE       make the interface hold the desired state in FILE (JSON, as\n"
	        "                   in desired.json), print what changed, keep FILE as the\n"
	        "                   cache; exit 1 if any peer was refused or failed\n"
	        "  show [FILE]      print what apply would change (against FILE or the cache)\n"
	        "                   without changing anything\n"
	        "  show-interface [TENANT]\n"
	        "                   print the interface's peers (not the static ones) as a CSV\n"
	        "                   file for 'wgfleetctl import', of TENANT when given\n"
	        "  init             create the agent's signing key (once) and print its public\n"
	        "                   half, to register the server with the coordinator\n"
	        "  check-config     load the configuration and report the first problem\n"
	        "  dump-config      print the effective configuration\n"
	        "  sample-config    print a configuration file with every option and default\n"
	        "  version          print the version\n"
	        "\n"
	        "Options:\n"
	        "  -c, --config FILE   configuration file (default %s)\n"
	        "  -f, --foreground    (run) stay in the foreground, as systemd wants\n"
	        "  -h, --help          show this help\n"
	        "  -V, --version       print the version\n"
	        "\n"
	        "apply and show print one line per peer: '+ KEY IPS keepalive=N' added,\n"
	        "'~ KEY IPS keepalive=N (was IPS keepalive=N)' updated, '- KEY IPS' removed,\n"
	        "'! KEY reason' refused.\n",
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

static void print_change(void *userdata, char op, const struct wgf_peer *desired,
                         const struct wgf_peer *actual)
{
	char key[WGF_KEY_B64_LEN], ips[SYNC_IPS_STRLEN], old[SYNC_IPS_STRLEN];
	const struct wgf_peer *p = desired ? desired : actual;
	FILE *out = userdata;

	wgf_key_to_base64(key, p->public_key);
	sync_format_allowed_ips(p, ips, sizeof(ips));
	if (op == '-') {
		fprintf(out, "- %s %s\n", key, ips);
		return;
	}
	fprintf(out, "%c %s %s keepalive=%u", op, key, ips, (unsigned)p->persistent_keepalive);
	if (op == '~') {
		sync_format_allowed_ips(actual, old, sizeof(old));
		fprintf(out, " (was %s keepalive=%u)", old, (unsigned)actual->persistent_keepalive);
	}
	fputc('\n', out);
}

/* Reads the desired state for apply and show: FILE, and the cache as the baseline. */
static int load_states(const char *file, const char *cache_path, struct cache_state *want,
                       struct cache_state *cached, bool *has_cache)
{
	struct wgf_err err = {0};
	int r;

	if (file) {
		r = cache_load(file, want, &err);
		if (r < 0)
			return log_errno(LOG_ERR, r, "Cannot read the desired state: %s", err.msg);
	}
	r = cache_load_desired(cache_path, cached, NULL, &err);
	*has_cache = r == 0;
	if (r == -ENOENT && !file)
		return log_errno(LOG_ERR, r,
		                 "No FILE given and no desired-state cache at '%s' to compare with",
		                 cache_path);
	if (r < 0 && r != -ENOENT) {
		if (!file)
			return log_errno(LOG_ERR, r, "Cannot read the desired state: %s", err.msg);
		log_warning("Ignoring the desired-state cache: %s", err.msg);
	}
	return 0;
}

static void log_outcome(const struct backend *b, const struct reconcile_result *res, bool dry_run)
{
	char rev[24], n[6][24];

	snprintf(rev, sizeof(rev), "%" PRIu64, res->revision);
	snprintf(n[0], sizeof(n[0]), "%zu", res->n_added);
	snprintf(n[1], sizeof(n[1]), "%zu", res->n_updated);
	snprintf(n[2], sizeof(n[2]), "%zu", res->n_removed);
	snprintf(n[3], sizeof(n[3]), "%zu", res->n_unchanged);
	snprintf(n[4], sizeof(n[4]), "%zu", res->n_failed);
	snprintf(n[5], sizeof(n[5]), "%zu", res->n_drift);
	log_fields(LOG_NOTICE, dry_run ? "Would apply" : "Applied", {"revision", rev},
	           {"added", n[0]}, {"updated", n[1]}, {"removed", n[2]}, {"unchanged", n[3]},
	           {"refused", n[4]}, {"drift", n[5]});
	if (res->apply_error < 0) {
		log_errno(LOG_ERR, res->apply_error, "Failed to apply the changes");
		backend_say_limit(b, res->apply_error, res->n_desired);
	} else if (!dry_run && res->n_pending)
		log_error("The interface still differs after applying (%zu changes)",
		          res->n_pending);
	if (res->cache.code < 0)
		log_error("Cannot write the desired-state cache: %s", res->cache.msg);
}

/* apply FILE, and show [FILE] (dry_run): one reconcile pass, printed. */
static bool is_slug(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 63 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static bool key_listed(const uint8_t (*keys)[WGF_KEY_LEN], size_t n,
                       const uint8_t key[static WGF_KEY_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(keys[i], key, WGF_KEY_LEN) == 0)
			return true;
	return false;
}

/*
 * show-interface [TENANT]: the interface's peers (static ones left out) as a CSV import
 * file for `wgfleetctl import`, each at the address of its first allowed IP; a peer that
 * has more than that, or none, is named on stderr.
 */
static int cmd_show_interface(const struct settings *s, const char *tenant)
{
	char key[WGF_KEY_B64_LEN], addr[WGF_ADDR_STRLEN];
	uint8_t(*statics)[WGF_KEY_LEN] = NULL;
	struct wgf_device dev = {0};
	struct wgf_err err = {0};
	struct backend *b = NULL;
	size_t n_statics = 0;
	int r;

	if (tenant && !is_slug(tenant)) {
		log_error("show-interface: '%s' is not a tenant's slug (a-z, 0-9 and '-')", tenant);
		return -EINVAL;
	}
	r = settings_static_peer_keys(s, &statics, &n_statics, &err);
	if (r < 0) {
		log_errno(LOG_ERR, r, "%s", err.msg);
		goto out;
	}
	r = settings_backend_new(s, &b);
	if (r == 0)
		r = b->ops->get_device(b, &dev);
	if (r < 0) {
		log_errno(LOG_ERR, r, "Cannot read interface '%s'", s->interface);
		goto out;
	}
	if (dev.n_peers > 1)
		qsort(dev.peers, dev.n_peers, sizeof(*dev.peers), wgf_peer_cmp_key);
	printf("tenant,address,public_key,persistent_keepalive\n");
	for (size_t i = 0; i < dev.n_peers; i++) {
		const struct wgf_peer *p = &dev.peers[i];

		if (key_listed((const uint8_t(*)[WGF_KEY_LEN])statics, n_statics, p->public_key))
			continue;
		wgf_key_to_base64(key, p->public_key);
		addr[0] = '\0';
		if (p->n_allowed_ips)
			wgf_addr_format(&p->allowed_ips[0].addr, addr);
		if (p->n_allowed_ips != 1)
			log_warning("Peer %s has %u allowed IPs; a router gets one address", key,
			            p->n_allowed_ips);
		printf("%s,%s,%s,%u\n", tenant ? tenant : "", addr, key, p->persistent_keepalive);
	}
	fflush(stdout);
out:
	wgf_device_fini(&dev);
	backend_free(b);
	free(statics);
	return r;
}

static int cmd_apply(const struct settings *s, const char *file, bool dry_run)
{
	char cache_path[PATH_MAX], key_path[PATH_MAX], key[WGF_KEY_B64_LEN];
	uint8_t(*statics)[WGF_KEY_LEN] = NULL;
	size_t n_statics = 0;
	struct wgf_cidr nets[SETTINGS_ROUTABLE_MAX];
	struct cache_state want = {0}, cached = {0};
	struct reconcile_result res = {0};
	struct backend_device_cfg cfg;
	struct reconciler *rc = NULL;
	struct wgf_err err = {0};
	struct backend *b = NULL;
	bool has_cache = false;
	int r;

	settings_cache_path(s, cache_path, sizeof(cache_path));
	r = load_states(file, cache_path, &want, &cached, &has_cache);
	if (r < 0)
		goto out;
	if (!dry_run && mkdir(s->state_directory, 0700) < 0 && errno != EEXIST) {
		r = log_errno(LOG_ERR, -errno, "Cannot create '%s'", s->state_directory);
		goto out;
	}
	r = settings_backend_new(s, &b);
	if (r < 0) {
		log_errno(LOG_ERR, r, "Cannot open the backend for '%s'", s->interface);
		goto out;
	}
	r = settings_static_peer_keys(s, &statics, &n_statics, &err);
	if (r < 0) {
		log_errno(LOG_ERR, r, "%s", err.msg);
		goto out;
	}
	r = reconciler_new(b, dry_run ? NULL : cache_path, &rc);
	if (r == 0)
		r = reconciler_set_static(rc, statics, n_statics);
	if (r == 0)
		r = reconciler_set_routable(rc, nets, settings_routable(s, nets));
	if (r == 0)
		reconciler_set_adopt(rc, s->adopt);
	/* The cache is the drift baseline only if the pass that applied it finished. */
	if (r == 0 && has_cache)
		r = reconciler_set_desired(
		        rc, &cached,
		        RECONCILE_F_CACHED | RECONCILE_F_FORCE |
		                (cache_is_applied(cache_path, &cached) ? RECONCILE_F_BASELINE : 0));
	if (r >= 0 && file)
		r = reconciler_set_desired(rc, &want, RECONCILE_F_FORCE);
	if (r < 0) {
		log_errno(LOG_ERR, r, "Cannot start the reconciler");
		goto out;
	}
	if (!dry_run) {
		settings_device_cfg(s, &cfg, key_path, sizeof(key_path));
		r = b->ops->ensure_device(b, &cfg, &err);
		if (r < 0) {
			log_errno(LOG_ERR, r, "Cannot set up the interface: %s", err.msg);
			goto out;
		}
	}
	r = reconciler_run(rc, dry_run, print_change, stdout, &res, &err);
	if (r < 0) {
		log_errno(LOG_ERR, r, "%s", err.msg);
		goto out;
	}
	for (size_t i = 0; i < res.n_failed; i++) {
		wgf_key_to_base64(key, res.failed[i].public_key);
		printf("! %s %s\n", key, res.failed[i].reason);
	}
	fflush(stdout);
	log_outcome(b, &res, dry_run);
	if (!dry_run && (res.n_failed || res.apply_error || res.n_pending || res.cache.code))
		r = -EIO;
out:
	free(statics);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	backend_free(b);
	cache_state_fini(&want);
	cache_state_fini(&cached);
	return r;
}

/*
 * Without --foreground the agent detaches: the child starts a session of its own, and
 * the parent exits 0 only once the child says it is ready (1 if it dies first).
 */
static int cmd_run(const struct settings *s, const char *config, bool config_given, bool foreground)
{
	static char config_abs[PATH_MAX];
	int fds[2], null_fd;
	pid_t pid;

	if (foreground)
		return daemon_run(s, config, config_given, -1);
	/* The daemon leaves the working directory; a relative config path must not break. */
	if (realpath(config, config_abs))
		config = config_abs;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return log_errno(LOG_ERR, -errno, "Cannot detach");
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return log_errno(LOG_ERR, -errno, "Cannot detach");
	}
	if (pid > 0) {
		char c;
		ssize_t n;

		close(fds[1]);
		do
			n = read(fds[0], &c, 1);
		while (n < 0 && errno == EINTR);
		close(fds[0]);
		return n == 1 ? 0 : -ECHILD;
	}
	close(fds[0]);
	(void)setsid();
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		(void)dup2(null_fd, STDIN_FILENO);
		close(null_fd);
	}
	(void)!chdir("/");
	return daemon_run(s, config, config_given, fds[1]);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"foreground", no_argument, NULL, 'f'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = DEFAULT_CONFIG, *cmd;
	bool config_given = false, foreground = false;
	const char *arg = NULL;
	struct wgf_err err = {0};
	struct settings s;
	int c, r;

	wgf_log_init("wgfleet-agent", LOG_INFO);
	/* Keys live in this process's memory: it makes no core dump, whoever starts it. */
	r = wgf_secret_harden_process();
	if (r < 0)
		log_errno(LOG_WARNING, r, "Cannot turn core dumps off, continuing");
	/*
	 * The agent's big buffers are peer arrays of megabytes, allocated and freed on every
	 * pass. A fixed mmap threshold gives them back to the system when freed (glibc would
	 * otherwise raise it after the first such free and keep them in the heap), and one
	 * arena is enough for the loop and the one pass that runs at a time: with 10,000
	 * peers this halves the resident memory between passes.
	 */
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	(void)mallopt(M_ARENA_MAX, 1);
	while ((c = getopt_long(argc, argv, "c:fhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			config_given = true;
			break;
		case 'f':
			foreground = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("wgfleet-agent %s\n", WGF_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (argc - optind == 2)
		arg = argv[optind + 1];
	if ((arg && strcmp(cmd, "apply") != 0 && strcmp(cmd, "show") != 0 &&
	     strcmp(cmd, "show-interface") != 0) ||
	    (!arg && strcmp(cmd, "apply") == 0)) {
		fprintf(stderr, "wgfleet-agent: '%s' %s\n\n", cmd,
		        arg ? "takes no argument" : "needs a FILE");
		usage(stderr);
		return 2;
	}
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
	wgf_log_init(NULL, settings_log_level(&s));
	if (strcmp(cmd, "check-config") == 0) {
		r = 0;
	} else if (strcmp(cmd, "dump-config") == 0) {
		wgf_conf_dump(&settings_table, &s, stdout);
		r = 0;
	} else if (strcmp(cmd, "init") == 0) {
		r = cmd_init(&s);
	} else if (strcmp(cmd, "apply") == 0 || strcmp(cmd, "show") == 0) {
		r = cmd_apply(&s, arg, strcmp(cmd, "show") == 0);
	} else if (strcmp(cmd, "show-interface") == 0) {
		r = cmd_show_interface(&s, arg);
	} else if (strcmp(cmd, "run") == 0) {
		r = cmd_run(&s, config, config_given, foreground);
	} else {
		fprintf(stderr, "wgfleet-agent: unknown command '%s'\n\n", cmd);
		usage(stderr);
		return 2;
	}
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
