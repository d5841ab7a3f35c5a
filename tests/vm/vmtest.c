/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wgf-vmtest: drives the kernel backend inside the test VM and checks `wg show` against it. */

/*
 * Runs inside the initramfs of tests/vm/run.sh, as root, against a real kernel. It is a
 * stand-in for `wgfleet-agent apply` until the agent has that command, and stays as the
 * maker and checker of the test's peer sets:
 *
 *   wgf-vmtest ensure IFNAME KEYFILE PORT ADDR   ensure_device (create, key, port, up)
 *   wgf-vmtest gen VARIANT N BASE                write a peer set as BASE.peers, .json, .conf
 *   wgf-vmtest apply IFNAME PEERS                read, diff, write only the difference
 *   wgf-vmtest check IFNAME PEERS                `wg show IFNAME dump` equals PEERS?
 *   wgf-vmtest time CMD ARGS...                  run a command, print its wall time
 *   wgf-vmtest capture IFNAME BUFSIZE            print a GET_DEVICE dump's raw datagrams
 *
 * A .peers file has one peer a line: base64 key, allowed IPs joined by ',', keepalive.
 * The .json file is the same set as `wgfleet-agent apply` reads it (agent/cache.h), the
 * .conf file its [Peer] sections for `wg setconf`. Keys are BLAKE2b hashes of the peer's
 * number, so every run makes the same sets.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <sodium.h>

#include "backend.h"
#include "cidr.h"
#include "key.h"
#include "peer.h"
#include "wgnl.h"

#define LINE_MAX_LEN 1024

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long max_rss_kib(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static double cpu_ms(const struct timeval *tv)
{
	return (double)tv->tv_sec * 1e3 + (double)tv->tv_usec / 1e3;
}

/* System time: what the kernel spent in this process's system calls. */
static double sys_ms(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? cpu_ms(&ru.ru_stime) : -1;
}

/* --- Peer sets. --- */

static void peer_key(uint8_t key[static WGF_KEY_LEN], unsigned i)
{
	char seed[64];

	snprintf(seed, sizeof(seed), "wgfleet-vm-peer-%u", i);
	crypto_generichash(key, WGF_KEY_LEN, (const uint8_t *)seed, strlen(seed), NULL, 0);
}

/*
 * base:    peers 0..n-1; 10.x.y.z/32 each, plus an IPv6 /128 for every tenth; keepalive
 *          25 for every fourth.
 * changed: base without 0..99, with new allowed IPs for 100..199, keepalive 15 for
 *          200..249, and new peers n..n+99 (100 + 100 + 50 + 100 changes).
 * one:     base with new allowed IPs for peer 500 only.
 * quiet:   base with no keepalive at all, for the benchmark. A peer with a keepalive and
 *          no endpoint makes the kernel compute handshake initiations in the background,
 *          which under TCG costs more than creating the peer and would swamp the timing.
 *
 * The `wg setconf` file holds [Peer] sections only: the caller puts the [Interface]
 * section with the interface's private key and port in front, because setconf without
 * them clears the key (and a keyless interface creates peers much faster).
 */
/* The three spellings of one peer set. */
struct gen_files {
	FILE *peers, *json, *conf;
	bool first;
};

static void gen_peer(struct gen_files *g, const char *variant, unsigned i)
{
	char b64[WGF_KEY_B64_LEN], v4[32], v6[48] = "";
	uint8_t key[WGF_KEY_LEN];
	unsigned net = 100, ka = i % 4 == 0 ? 25 : 0;

	if (strcmp(variant, "changed") == 0) {
		if (i < 100)
			return;
		if (i < 200)
			net = 200;
		else if (i < 250)
			ka = 15;
	} else if (strcmp(variant, "one") == 0 && i == 500) {
		net = 201;
	} else if (strcmp(variant, "quiet") == 0) {
		ka = 0;
	}
	peer_key(key, i);
	wgf_key_to_base64(b64, key);
	snprintf(v4, sizeof(v4), "10.%u.%u.%u/32", net + i / 65536, (i / 256) % 256, i % 256);
	if (i % 10 == 0)
		snprintf(v6, sizeof(v6), "fd00:%x::%x:%x/128", net, i >> 16, i & 0xffff);
	fprintf(g->peers, "%s %s%s%s %u\n", b64, v4, v6[0] ? "," : "", v6, ka);
	fprintf(g->json, "%s\n{\"public_key\": \"%s\", \"allowed_ips\": [\"%s\"%s%s%s]",
	        g->first ? "" : ",", b64, v4, v6[0] ? ", \"" : "", v6, v6[0] ? "\"" : "");
	if (ka)
		fprintf(g->json, ", \"persistent_keepalive\": %u}", ka);
	else
		fputc('}', g->json);
	g->first = false;
	fprintf(g->conf, "[Peer]\nPublicKey = %s\nAllowedIPs = %s%s%s\n", b64, v4, v6[0] ? "," : "",
	        v6);
	if (ka)
		fprintf(g->conf, "PersistentKeepalive = %u\n", ka);
}

static FILE *open_ext(const char *base, const char *ext)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s.%s", base, ext);
	return fopen(path, "w");
}

static int cmd_gen(const char *variant, unsigned n, const char *base)
{
	struct gen_files g = {
	        .peers = open_ext(base, "peers"),
	        .json = open_ext(base, "json"),
	        .conf = open_ext(base, "conf"),
	        .first = true,
	};
	unsigned end = strcmp(variant, "changed") == 0 ? n + 100 : n;
	int r = 0;

	if (!g.peers || !g.json || !g.conf) {
		r = -errno;
		goto out;
	}
	fprintf(g.json, "{\"revision\": 1, \"peers\": [");
	for (unsigned i = 0; i < end; i++)
		gen_peer(&g, variant, i);
	fprintf(g.json, "\n]}\n");
out:
	if (g.peers && fclose(g.peers) != 0)
		r = -EIO;
	if (g.json && fclose(g.json) != 0)
		r = -EIO;
	if (g.conf && fclose(g.conf) != 0)
		r = -EIO;
	return r;
}

/* A decimal number from 0 to max, the whole string. */
static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_peer_line(char *line, struct wgf_ip_pool *pool, struct wgf_peer *p)
{
	char *save = NULL, *key = strtok_r(line, " \t\n", &save);
	char *ips = strtok_r(NULL, " \t\n", &save), *ka = strtok_r(NULL, " \t\n", &save);
	unsigned long seconds = 0;
	int r;

	if (!key || !ips || !ka)
		return -EINVAL;
	r = wgf_key_from_base64(p->public_key, key, WGF_KEY_PUBLIC, NULL);
	if (r < 0)
		return r;
	save = NULL;
	for (char *ip = strtok_r(ips, ",", &save); ip; ip = strtok_r(NULL, ",", &save)) {
		struct wgf_cidr c;

		if (strcmp(ip, "(none)") == 0)
			continue;
		r = wgf_cidr_parse(&c, ip, 0, NULL);
		if (r < 0)
			return r;
		r = wgf_peer_add_allowed_ip(pool, p, &c);
		if (r < 0)
			return r;
	}
	if (strcmp(ka, "off") != 0 && parse_uint(ka, UINT16_MAX, &seconds) < 0)
		return -EINVAL;
	p->persistent_keepalive = (uint16_t)seconds;
	return 0;
}

static int load_peers(const char *path, struct wgf_device *ret)
{
	char line[LINE_MAX_LEN];
	FILE *f = fopen(path, "r");
	int r = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		struct wgf_peer *p = wgf_device_add_peer(ret);

		if (!p) {
			r = -ENOMEM;
			break;
		}
		r = parse_peer_line(line, &ret->ips, p);
		if (r < 0)
			break;
	}
	fclose(f);
	return r;
}

/* --- apply: a plain key-sorted merge, standing in for the agent's reconciler. --- */

struct plan {
	struct wgf_peer *set, *remove;
	size_t n_set, n_remove;
};

static int make_plan(struct wgf_device *want, struct wgf_device *have, struct plan *plan)
{
	size_t i = 0, j = 0;

	if (want->n_peers > 0)
		qsort(want->peers, want->n_peers, sizeof(struct wgf_peer), wgf_peer_cmp_key);
	if (have->n_peers > 0)
		qsort(have->peers, have->n_peers, sizeof(struct wgf_peer), wgf_peer_cmp_key);
	plan->set = calloc(want->n_peers + 1, sizeof(struct wgf_peer));
	plan->remove = calloc(have->n_peers + 1, sizeof(struct wgf_peer));
	if (!plan->set || !plan->remove)
		return -ENOMEM;
	while (i < want->n_peers || j < have->n_peers) {
		int c = i == want->n_peers   ? 1
		        : j == have->n_peers ? -1
		                             : wgf_peer_cmp_key(&want->peers[i], &have->peers[j]);

		if (c < 0) {
			plan->set[plan->n_set++] = want->peers[i++];
		} else if (c > 0) {
			plan->remove[plan->n_remove++] = have->peers[j++];
		} else {
			if (!wgf_peer_config_equal(&want->peers[i], &have->peers[j]) ||
			    (have->peers[j].flags & BACKEND_PEER_F_TRUNCATED))
				plan->set[plan->n_set++] = want->peers[i];
			i++;
			j++;
		}
	}
	return 0;
}

static int cmd_apply(const char *ifname, const char *path)
{
	struct wgf_device want = {0}, have = {0};
	struct plan plan = {0};
	struct backend *b = NULL;
	double t0 = now_ms(), t_read, t_write, sys0 = sys_ms();
	int r;

	r = load_peers(path, &want);
	if (r < 0) {
		fprintf(stderr, "wgf-vmtest: %s: %s\n", path, wgf_strerror(r));
		goto out;
	}
	r = backend_kernel_new(ifname, &b);
	if (r < 0)
		goto out;
	r = b->ops->get_device(b, &have);
	if (r < 0) {
		fprintf(stderr, "wgf-vmtest: get_device: %s\n", wgf_strerror(r));
		goto out;
	}
	t_read = now_ms();
	r = make_plan(&want, &have, &plan);
	if (r < 0)
		goto out;
	r = b->ops->remove_peers(b, plan.remove, plan.n_remove);
	if (r < 0) {
		fprintf(stderr, "wgf-vmtest: remove_peers: %s\n", wgf_strerror(r));
		goto out;
	}
	r = b->ops->set_peers(b, plan.set, plan.n_set);
	if (r < 0) {
		fprintf(stderr, "wgf-vmtest: set_peers: %s\n", wgf_strerror(r));
		goto out;
	}
	t_write = now_ms();
	printf("applied set=%zu removed=%zu had=%zu want=%zu read_ms=%.0f total_ms=%.0f "
	       "write_ms=%.0f sys_ms=%.0f maxrss_kib=%ld\n",
	       plan.n_set, plan.n_remove, have.n_peers, want.n_peers, t_read - t0, t_write - t0,
	       t_write - t_read, sys_ms() - sys0, max_rss_kib());
out:
	free(plan.set);
	free(plan.remove);
	wgf_device_fini(&want);
	wgf_device_fini(&have);
	backend_free(b);
	return r;
}

static int cmd_ensure(const char *ifname, const char *keyfile, const char *port, const char *addr)
{
	struct backend_device_cfg cfg = {.private_key_file = keyfile};
	struct wgf_err err = {0};
	struct backend *b = NULL;
	unsigned long port_nr = 0;
	double t0 = now_ms();
	int r;

	snprintf(cfg.ifname, sizeof(cfg.ifname), "%s", ifname);
	r = parse_uint(port, UINT16_MAX, &port_nr);
	if (r < 0) {
		wgf_err_set(&err, r, "bad port '%s'", port);
		goto out;
	}
	cfg.listen_port = (uint16_t)port_nr;
	if (addr[0]) {
		r = wgf_cidr_parse(&cfg.address, addr, WGF_CIDR_F_HOST_BITS, &err);
		if (r < 0)
			goto out;
		cfg.has_address = true;
	}
	r = backend_kernel_new(ifname, &b);
	if (r < 0) {
		wgf_err_set(&err, r, "backend_kernel_new: %s", wgf_strerror(r));
		goto out;
	}
	r = b->ops->ensure_device(b, &cfg, &err);
	if (r == 0)
		printf("ensured %s ms=%.0f\n", ifname, now_ms() - t0);
out:
	if (r < 0)
		fprintf(stderr, "wgf-vmtest: ensure: %s\n", err.msg);
	backend_free(b);
	return r;
}

/* --- check: `wg show IFNAME dump` against a peer set, both in one normal form. --- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "key ips keepalive" with the allowed IPs sorted and keepalive 0 written "off". */
static char *normal_line(const struct wgf_peer *p)
{
	char b64[WGF_KEY_B64_LEN], ips[WGF_PEER_ALLOWED_IPS_MAX][WGF_CIDR_STRLEN];
	char *sorted[WGF_PEER_ALLOWED_IPS_MAX], out[LINE_MAX_LEN], ka[16];
	size_t len;

	wgf_key_to_base64(b64, p->public_key);
	for (unsigned i = 0; i < p->n_allowed_ips; i++) {
		wgf_cidr_format(&p->allowed_ips[i], ips[i]);
		sorted[i] = ips[i];
	}
	qsort(sorted, p->n_allowed_ips, sizeof(char *), cmp_str);
	len = (size_t)snprintf(out, sizeof(out), "%s ", b64);
	for (unsigned i = 0; i < p->n_allowed_ips; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? "," : "",
		                        sorted[i]);
	if (p->n_allowed_ips == 0)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "(none)");
	if (p->persistent_keepalive)
		snprintf(ka, sizeof(ka), "%u", p->persistent_keepalive);
	else
		snprintf(ka, sizeof(ka), "off");
	snprintf(out + len, sizeof(out) - len, " %s", ka);
	return strdup(out);
}

static char **normal_lines(const struct wgf_device *dev)
{
	char **lines = calloc(dev->n_peers + 1, sizeof(char *));

	for (size_t i = 0; lines && i < dev->n_peers; i++)
		lines[i] = normal_line(&dev->peers[i]);
	if (lines)
		qsort(lines, dev->n_peers, sizeof(char *), cmp_str);
	return lines;
}

/* Reads the peers out of `wg show IFNAME dump`: fields 1, 4 and 8 of each peer line. */
static int read_wg_dump(const char *ifname, struct wgf_device *ret)
{
	char cmd[128], line[LINE_MAX_LEN];
	FILE *f;
	int r = 0, status;
	bool first = true;

	snprintf(cmd, sizeof(cmd), "wg show '%s' dump", ifname);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *field[9] = {0}, *save = NULL, simple[LINE_MAX_LEN];
		struct wgf_peer *p;
		int n = 0;

		if (first) {
			first = false;
			continue;
		}
		for (char *t = strtok_r(line, "\t\n", &save); t && n < 9;
		     t = strtok_r(NULL, "\t\n", &save))
			field[n++] = t;
		if (n != 8) {
			r = -EBADMSG;
			continue;
		}
		p = wgf_device_add_peer(ret);
		if (!p) {
			r = -ENOMEM;
			continue;
		}
		snprintf(simple, sizeof(simple), "%s %s %s", field[0], field[3], field[7]);
		if (parse_peer_line(simple, &ret->ips, p) < 0)
			r = -EBADMSG;
	}
	status = pclose(f);
	if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		r = -EIO;
	return r;
}

static int cmd_check(const char *ifname, const char *path)
{
	struct wgf_device want = {0}, have = {0};
	char **a = NULL, **b = NULL;
	int r;

	r = load_peers(path, &want);
	if (r == 0)
		r = read_wg_dump(ifname, &have);
	if (r < 0) {
		fprintf(stderr, "wgf-vmtest: check: %s\n", wgf_strerror(r));
		goto out;
	}
	a = normal_lines(&want);
	b = normal_lines(&have);
	if (!a || !b) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < want.n_peers || i < have.n_peers; i++) {
		const char *x = i < want.n_peers ? a[i] : "(end)";
		const char *y = i < have.n_peers ? b[i] : "(end)";

		if (strcmp(x, y) != 0) {
			printf("mismatch want=%zu have=%zu at=%zu\n  want: %s\n  have: %s\n",
			       want.n_peers, have.n_peers, i, x, y);
			r = -EBADMSG;
			goto out;
		}
	}
	printf("match peers=%zu\n", have.n_peers);
out:
	for (size_t i = 0; a && i < want.n_peers; i++)
		free(a[i]);
	for (size_t i = 0; b && i < have.n_peers; i++)
		free(b[i]);
	free(a);
	free(b);
	wgf_device_fini(&want);
	wgf_device_fini(&have);
	return r;
}

/* --- capture: the raw datagrams of a GET_DEVICE dump, in hex, for the unit tests. --- */

static void print_hex(const char *tag, const uint8_t *p, size_t n)
{
	printf("%s %zu ", tag, n);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

/* One request, its datagrams printed until NLMSG_DONE or NLMSG_ERROR. */
static int capture_request(struct mnl_socket *nl, struct nlmsghdr *req, uint32_t seq,
                           size_t bufsize, uint16_t *ret_family)
{
	uint8_t *buf = malloc(bufsize);
	int r = -EBADMSG;

	if (!buf)
		return -ENOMEM;
	req->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, bufsize);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		bool done = false;
		int left = (int)n;

		if (n < 0) {
			r = -errno;
			goto out;
		}
		print_hex(ret_family ? "FAMILY" : "DUMP", buf, (size_t)n);
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR)
				done = true;
			else if (ret_family && wgnl_parse_family_reply(nlh, ret_family) == 0)
				r = 0;
		}
		if (done)
			break;
	}
	if (!ret_family)
		r = 0;
out:
	sodium_memzero(buf, bufsize);
	free(buf);
	return r;
}

/* A small receive buffer makes the kernel cut its dump into small messages. */
static int cmd_capture(const char *ifname, size_t bufsize)
{
	_Alignas(struct nlmsghdr) uint8_t req[256];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_GENERIC);
	uint16_t family = 0;
	int r;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	printf("PORTID %u\n", mnl_socket_get_portid(nl));
	r = wgnl_build_family_request(req, sizeof(req));
	if (r == 0)
		r = capture_request(nl, (struct nlmsghdr *)req, 1, bufsize, &family);
	if (r == 0)
		r = wgnl_build_get_device(req, sizeof(req), family, ifname);
	if (r == 0)
		r = capture_request(nl, (struct nlmsghdr *)req, 2, bufsize, NULL);
	mnl_socket_close(nl);
	return r;
}

static int cmd_time(char **argv)
{
	double t0 = now_ms();
	struct rusage ru;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return -errno;
	printf("ran %s ms=%.0f user_ms=%.0f sys_ms=%.0f maxrss_kib=%ld faults=%ld status=%d\n",
	       argv[0], now_ms() - t0, cpu_ms(&ru.ru_utime), cpu_ms(&ru.ru_stime), ru.ru_maxrss,
	       ru.ru_minflt, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	unsigned long num = 0;
	int r = -EINVAL;

	if (wgf_key_init() < 0)
		return 1;
	if (argc >= 6 && strcmp(argv[1], "ensure") == 0)
		r = cmd_ensure(argv[2], argv[3], argv[4], argv[5]);
	else if (argc == 5 && strcmp(argv[1], "gen") == 0 &&
	         parse_uint(argv[3], WGF_DEVICE_PEERS_MAX, &num) == 0)
		r = cmd_gen(argv[2], (unsigned)num, argv[4]);
	else if (argc == 4 && strcmp(argv[1], "apply") == 0)
		r = cmd_apply(argv[2], argv[3]);
	else if (argc == 4 && strcmp(argv[1], "check") == 0)
		r = cmd_check(argv[2], argv[3]);
	else if (argc == 4 && strcmp(argv[1], "capture") == 0 &&
	         parse_uint(argv[3], 1 << 20, &num) == 0 && num >= 4096)
		r = cmd_capture(argv[2], num);
	else if (argc >= 3 && strcmp(argv[1], "time") == 0)
		r = cmd_time(argv + 2);
	else
		fprintf(stderr, "usage: see the comment at the top of tests/vm/vmtest.c\n");
	fflush(stdout);
	return r < 0 ? 1 : 0;
}
