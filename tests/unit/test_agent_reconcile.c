/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for agent/reconcile.c against an in-memory backend. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "body.h"
#include "reconcile.h"

/* A backend that keeps the "interface" in a struct wgf_device and counts calls. */
struct fake {
	struct backend base;
	struct wgf_device dev;
	unsigned n_get, n_set_calls, n_remove_calls;
	size_t n_set_peers, n_removed_peers;
	int fail_set;           /* returned by set_peers when nonzero */
	const char *must_exist; /* a file that set_peers and remove_peers check is there */
	bool ignore_sets;       /* accept sets without doing them */
	bool absent;            /* -ENODEV */
};

static void key_of(uint8_t key[static WGF_KEY_LEN], uint32_t n)
{
	memset(key, 0x42, WGF_KEY_LEN);
	key[0] = (uint8_t)(n >> 16);
	key[1] = (uint8_t)(n >> 8);
	key[2] = (uint8_t)n;
}

static struct wgf_peer *fake_find(struct fake *f, const uint8_t key[static WGF_KEY_LEN])
{
	for (size_t i = 0; i < f->dev.n_peers; i++)
		if (memcmp(f->dev.peers[i].public_key, key, WGF_KEY_LEN) == 0)
			return &f->dev.peers[i];
	return NULL;
}

static struct wgf_peer *fake_must_find(struct fake *f, uint32_t n)
{
	uint8_t key[WGF_KEY_LEN];
	struct wgf_peer *p;

	key_of(key, n);
	p = fake_find(f, key);
	if (!p) {
		fail_msg("peer %u is not on the interface", n);
		abort();
	}
	return p;
}

static int fake_get(struct backend *b, struct wgf_device *ret)
{
	struct fake *f = (struct fake *)b;
	struct wgf_device copy = {0};

	f->n_get++;
	if (f->absent)
		return -ENODEV;
	copy.flags = f->dev.flags;
	memcpy(copy.public_key, f->dev.public_key, WGF_KEY_LEN);
	for (size_t i = 0; i < f->dev.n_peers; i++) {
		*wgf_device_add_peer(&copy) = f->dev.peers[i];
		copy.seen[i] = f->dev.seen[i];
	}
	*ret = copy;
	return 0;
}

static int fake_set(struct backend *b, const struct wgf_peer *peers, size_t n)
{
	struct fake *f = (struct fake *)b;

	f->n_set_calls++;
	assert_true(n > 0 && n <= RECONCILE_CHUNK);
	if (f->must_exist)
		assert_int_equal(access(f->must_exist, F_OK), 0);
	if (f->fail_set)
		return f->fail_set;
	f->n_set_peers += n;
	for (size_t i = 0; i < n && !f->ignore_sets; i++) {
		struct wgf_peer *p = fake_find(f, peers[i].public_key);

		if (!p)
			p = wgf_device_add_peer(&f->dev);
		*p = peers[i];
		assert_int_equal(wgf_ip_pool_take(&f->dev.ips, p), 0);
	}
	return 0;
}

static int fake_remove(struct backend *b, const struct wgf_peer *peers, size_t n)
{
	struct fake *f = (struct fake *)b;

	f->n_remove_calls++;
	f->n_removed_peers += n;
	if (f->must_exist)
		assert_int_equal(access(f->must_exist, F_OK), 0);
	for (size_t i = 0; i < n; i++) {
		struct wgf_peer *p = fake_find(f, peers[i].public_key);

		if (p) {
			f->dev.seen[p - f->dev.peers] = f->dev.seen[f->dev.n_peers - 1];
			*p = f->dev.peers[--f->dev.n_peers];
		}
	}
	return 0;
}

static const struct backend_ops fake_ops = {
        .name = "fake",
        .get_device = fake_get,
        .set_peers = fake_set,
        .remove_peers = fake_remove,
};

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = &fake_ops;
	strcpy(f->base.ifname, "wgt0");
	memset(f->dev.public_key, 0x77, WGF_KEY_LEN);
	f->dev.flags = WGF_DEVICE_HAS_PUBLIC_KEY;
}

static void peer_of(struct wgf_ip_pool *pool, struct wgf_peer *p, uint32_t n)
{
	struct wgf_cidr c;
	char cidr[32];

	memset(p, 0, sizeof(*p));
	key_of(p->public_key, n);
	snprintf(cidr, sizeof(cidr), "10.%u.%u.%u/32", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
	assert_int_equal(wgf_cidr_parse(&c, cidr, 0, NULL), 0);
	assert_int_equal(wgf_peer_add_allowed_ip(pool, p, &c), 0);
	p->persistent_keepalive = 25;
}

/* A desired set of peers first..first+n-1 (the reconciler takes it). */
static void state_of(struct cache_state *st, uint64_t revision, uint32_t first, size_t n)
{
	memset(st, 0, sizeof(*st));
	st->revision = revision;
	st->n_peers = n;
	st->peers = calloc(n ? n : 1, sizeof(*st->peers));
	assert_non_null(st->peers);
	for (size_t i = 0; i < n; i++)
		peer_of(&st->ips, &st->peers[i], first + (uint32_t)i);
}

static void offer(struct reconciler *rc, uint64_t revision, uint32_t first, size_t n,
                  unsigned flags, int expect)
{
	struct cache_state st = {0};

	state_of(&st, revision, first, n);
	assert_int_equal(reconciler_set_desired(rc, &st, flags), expect);
	if (expect == 1)
		assert_null(st.peers);
	cache_state_fini(&st);
}

struct counts {
	size_t add, update, remove;
};

static void count_change(void *userdata, char op, const struct wgf_peer *desired,
                         const struct wgf_peer *actual)
{
	struct counts *c = userdata;

	if (op == '+') {
		assert_non_null(desired);
		assert_null(actual);
		c->add++;
	} else if (op == '~') {
		assert_non_null(desired);
		assert_non_null(actual);
		c->update++;
	} else {
		assert_int_equal(op, '-');
		c->remove++;
	}
}

static void run(struct reconciler *rc, bool dry, struct reconcile_result *res)
{
	struct wgf_err err = {0};

	assert_int_equal(reconciler_run(rc, dry, NULL, NULL, res, &err), 0);
}

static void test_no_desired_set_changes_nothing(void **state)
{
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_err err = {0};
	struct fake f;

	(void)state;
	fake_init(&f);
	peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), 1);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	assert_false(reconciler_has_desired(rc));
	assert_int_equal(reconciler_run(rc, false, NULL, NULL, &res, &err), -ENODATA);
	assert_int_equal(f.n_get + f.n_remove_calls + f.n_set_calls, 0);
	assert_int_equal(f.dev.n_peers, 1);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

static void test_apply_in_chunks_then_nothing(void **state)
{
	size_t n = 2 * RECONCILE_CHUNK + 10;
	struct reconcile_result res;
	struct counts c = {0};
	struct reconciler *rc;
	struct wgf_err err = {0};
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	offer(rc, 1, 0, n, 0, 1);
	assert_int_equal(reconciler_revision(rc), 1);
	assert_int_equal(reconciler_run(rc, false, count_change, &c, &res, &err), 0);
	assert_int_equal(c.add, n);
	assert_int_equal(res.n_added, n);
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(res.apply_error, 0);
	assert_true(res.has_public_key);
	assert_int_equal(f.n_set_calls, 3);
	assert_int_equal(f.n_get, 1); /* every set succeeded: no re-read */
	assert_int_equal(f.dev.n_peers, n);
	/* Nothing new was ever applied by us before, so nothing counts as drift. */
	assert_int_equal(res.n_drift, 0);
	reconcile_result_fini(&res);

	/* A second pass finds nothing to do and does not re-read. */
	f.n_get = f.n_set_calls = 0;
	run(rc, false, &res);
	assert_int_equal(res.n_unchanged, n);
	assert_int_equal(res.n_added + res.n_updated + res.n_removed, 0);
	assert_int_equal(f.n_get, 1);
	assert_int_equal(f.n_set_calls, 0);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

static void test_drift_is_classified_and_repaired(void **state)
{
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_peer *p;
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	offer(rc, 1, 0, 10, 0, 1);
	run(rc, false, &res);
	reconcile_result_fini(&res);

	/* By hand: peer 3 removed, peer 5's keepalive changed, a stranger added. */
	p = fake_must_find(&f, 3);
	*p = f.dev.peers[--f.dev.n_peers];
	fake_must_find(&f, 5)->persistent_keepalive = 0;
	peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), 999);

	run(rc, false, &res);
	assert_int_equal(res.n_added, 1);
	assert_int_equal(res.n_updated, 1);
	assert_int_equal(res.n_removed, 1);
	assert_int_equal(res.n_drift, 3);
	for (size_t i = 0; i < res.n_drift; i++) {
		uint32_t n = (uint32_t)res.drift[i].public_key[2] | res.drift[i].public_key[1] << 8;
		enum reconcile_drift_kind k = res.drift[i].kind;

		assert_true((n == 3 && k == RECONCILE_DRIFT_REMOVED) ||
		            (n == 5 && k == RECONCILE_DRIFT_CHANGED) ||
		            (n == 999 && k == RECONCILE_DRIFT_ADDED));
	}
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(f.dev.n_peers, 10);
	reconcile_result_fini(&res);

	/* A new revision drops peers 0-1 and adds 10-11: intended, not drift. */
	offer(rc, 2, 2, 10, 0, 1);
	run(rc, false, &res);
	assert_int_equal(res.n_added, 2);
	assert_int_equal(res.n_removed, 2);
	assert_int_equal(res.n_drift, 0);
	assert_int_equal(res.revision, 2);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

/* The cache is the first baseline: a daemon restarted empty shows as drift. */
static void test_baseline_from_cache(void **state)
{
	struct reconcile_result res;
	struct reconciler *rc;
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	offer(rc, 7, 0, 4, RECONCILE_F_BASELINE | RECONCILE_F_FORCE, 1);
	run(rc, false, &res);
	assert_int_equal(res.n_added, 4);
	assert_int_equal(res.n_drift, 4);
	for (size_t i = 0; i < res.n_drift; i++)
		assert_int_equal(res.drift[i].kind, RECONCILE_DRIFT_REMOVED);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

static void test_stale_revisions_are_ignored(void **state)
{
	struct reconciler *rc;
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	offer(rc, 5, 0, 3, 0, 1);
	offer(rc, 5, 0, 4, 0, 0);
	offer(rc, 4, 0, 4, 0, 0);
	assert_int_equal(reconciler_revision(rc), 5);
	offer(rc, 4, 0, 4, RECONCILE_F_FORCE, 1);
	assert_int_equal(reconciler_revision(rc), 4);
	offer(rc, 6, 0, 1, 0, 1);
	assert_int_equal(reconciler_revision(rc), 6);
	reconciler_free(rc);
}

static void test_dry_run_changes_nothing(void **state)
{
	char dir[] = "/tmp/wgf-rc-XXXXXX", path[64];
	struct reconcile_result res;
	struct reconciler *rc;
	struct fake f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/desired.json", dir);
	fake_init(&f);
	peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), 100);
	assert_int_equal(reconciler_new(&f.base, path, &rc), 0);
	offer(rc, 1, 0, 3, 0, 1);
	run(rc, true, &res);
	assert_int_equal(res.n_added, 3);
	assert_int_equal(res.n_removed, 1);
	assert_int_equal(res.n_pending, 4);
	assert_int_equal(f.n_set_calls + f.n_remove_calls, 0);
	assert_int_equal(access(path, F_OK), -1); /* no cache written */
	reconcile_result_fini(&res);

	/* The real pass writes the cache, once. */
	run(rc, false, &res);
	assert_int_equal(res.cache.code, 0);
	assert_int_equal(access(path, F_OK), 0);
	reconcile_result_fini(&res);
	assert_int_equal(unlink(path), 0);
	run(rc, false, &res);
	assert_int_equal(access(path, F_OK), -1);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_APPLIED_FILE);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * A new set is on disk before the interface changes; it is recorded as applied only
 * once a pass went through, and only then is the cache the next start's baseline.
 */
static void test_cache_written_before_apply(void **state)
{
	char dir[] = "/tmp/wgf-rc-XXXXXX", path[64], mark[64];
	struct reconcile_result res;
	struct cache_state st = {0};
	struct wgf_err err = {0};
	struct reconciler *rc;
	struct fake f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/desired.json", dir);
	snprintf(mark, sizeof(mark), "%s/%s", dir, CACHE_APPLIED_FILE);
	fake_init(&f);
	peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), 100);
	f.must_exist = path;
	assert_int_equal(reconciler_new(&f.base, path, &rc), 0);
	offer(rc, 1, 0, 3, 0, 1);

	/* The apply fails: the set is cached all the same, and not marked applied. */
	f.fail_set = -EIO;
	run(rc, false, &res);
	assert_int_equal(res.apply_error, -EIO);
	assert_int_equal(res.cache.code, 0);
	reconcile_result_fini(&res);
	assert_int_equal(cache_load(path, &st, &err), 0);
	assert_int_equal(st.revision, 1);
	assert_int_equal(st.n_peers, 3);
	assert_false(cache_is_applied(path, &st));
	assert_int_equal(access(mark, F_OK), -1);

	f.fail_set = 0;
	run(rc, false, &res);
	assert_int_equal(res.n_pending, 0);
	reconcile_result_fini(&res);
	assert_true(cache_is_applied(path, &st));
	cache_state_fini(&st);

	/* A newer set replaces the cache first; the marker still names revision 1. */
	offer(rc, 2, 1, 3, 0, 1);
	f.fail_set = -EIO;
	run(rc, false, &res);
	reconcile_result_fini(&res);
	assert_int_equal(cache_load(path, &st, &err), 0);
	assert_int_equal(st.revision, 2);
	assert_false(cache_is_applied(path, &st));
	cache_state_fini(&st);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(mark), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_failures_are_reported(void **state)
{
	uint8_t other[WGF_KEY_LEN];
	struct reconcile_result res;
	struct reconciler *rc;
	struct cache_state st = {0};
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	state_of(&st, 1, 0, 3);
	st.peers[1].allowed_ips[0] = st.peers[2].allowed_ips[0]; /* 1 and 2 overlap */
	memset(st.peers[0].public_key, 0, WGF_KEY_LEN);          /* 0 is all zeros */
	assert_int_equal(reconciler_set_desired(rc, &st, 0), 1);
	run(rc, false, &res);
	assert_int_equal(res.n_failed, 3);
	assert_int_equal(res.n_added, 0);
	assert_string_equal(res.failed[0].reason, "invalid public key: key is all zeros");
	assert_int_equal(res.failed[1].code, -EADDRINUSE);
	/* The other peer of an overlap is kept for the log, out of the reason. */
	assert_false(res.failed[0].has_other);
	assert_true(res.failed[1].has_other);
	key_of(other, 2);
	assert_memory_equal(res.failed[1].other_key, other, WGF_KEY_LEN);
	assert_true(res.failed[2].has_other);
	key_of(other, 1);
	assert_memory_equal(res.failed[2].other_key, other, WGF_KEY_LEN);
	assert_null(strchr(res.failed[1].reason, '='));
	reconcile_result_fini(&res);

	/* A backend error is reported, and the next pass retries. */
	offer(rc, 2, 0, 3, 0, 1);
	f.fail_set = -EIO;
	run(rc, false, &res);
	assert_int_equal(res.apply_error, -EIO);
	assert_int_equal(res.n_pending, 3);
	reconcile_result_fini(&res);
	f.fail_set = 0;
	run(rc, false, &res);
	assert_int_equal(res.apply_error, 0);
	assert_int_equal(res.n_added, 3);
	/* Not drift: they never made it in the first place. */
	assert_int_equal(res.n_drift, 0);
	reconcile_result_fini(&res);

	/*
	 * A set the backend says it did but swallowed is taken at its word; the next full
	 * pass finds the peer missing, counts it as drift and sets it again.
	 */
	offer(rc, 3, 0, 4, 0, 1);
	f.ignore_sets = true;
	f.n_get = 0;
	run(rc, false, &res);
	assert_int_equal(res.n_added, 1);
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(f.n_get, 1);
	reconcile_result_fini(&res);
	f.ignore_sets = false;
	run(rc, false, &res);
	assert_int_equal(res.n_added, 1);
	assert_int_equal(res.n_drift, 1);
	assert_int_equal(res.drift[0].kind, RECONCILE_DRIFT_REMOVED);
	reconcile_result_fini(&res);
	run(rc, false, &res);
	assert_int_equal(res.n_added + res.n_drift, 0);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

static void test_static_and_absent(void **state)
{
	uint8_t statics[1][WGF_KEY_LEN];
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_err err = {0};
	struct fake f;

	(void)state;
	fake_init(&f);
	peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), 500);
	key_of(statics[0], 500);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	assert_int_equal(reconciler_set_static(rc, statics, 1), 0);
	offer(rc, 1, 0, 2, 0, 1);
	run(rc, false, &res);
	assert_int_equal(res.n_static, 1);
	assert_int_equal(res.n_removed, 0);
	assert_int_equal(f.dev.n_peers, 3);
	reconcile_result_fini(&res);
	f.absent = true;
	assert_int_equal(reconciler_run(rc, false, NULL, NULL, &res, &err), -ENODEV);
	assert_string_equal(err.msg, "cannot read interface 'wgt0': No such device");
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

static void set_ip(struct wgf_peer *p, const char *cidr)
{
	assert_int_equal(wgf_cidr_parse(&p->allowed_ips[0], cidr, 0, NULL), 0);
}

/* Peers 0-3 want 10.0.0.0/32, 0.0.0.0/0, 192.168.0.2/32, 10.0.0.3/32; a dry run. */
static void run_routable(struct reconciler *rc, uint64_t revision, const char *routable,
                         struct reconcile_result *res)
{
	struct cache_state st;
	struct wgf_cidr net;

	state_of(&st, revision, 0, 4);
	set_ip(&st.peers[1], "0.0.0.0/0");
	set_ip(&st.peers[2], "192.168.0.2/32");
	if (routable) {
		assert_int_equal(wgf_cidr_parse(&net, routable, 0, NULL), 0);
		assert_int_equal(cache_state_set_routable(&st, &net, 1), 0);
	}
	assert_int_equal(reconciler_set_desired(rc, &st, 0), 1);
	assert_null(st.routable); /* taken with the peers */
	run(rc, true, res);
}

static void assert_refused(const struct reconcile_result *res, size_t n, int code, ...)
{
	va_list ap;

	assert_int_equal(res->n_failed, n);
	va_start(ap, code);
	for (size_t i = 0; i < n; i++) {
		uint8_t key[WGF_KEY_LEN];

		key_of(key, (uint32_t)va_arg(ap, int));
		assert_memory_equal(res->failed[i].public_key, key, WGF_KEY_LEN);
		assert_int_equal(res->failed[i].code, code);
	}
	va_end(ap);
}

/* The desired set's routable networks and the configured ones count together. */
static void test_routable_desired_and_configured(void **state)
{
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_cidr conf;
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);

	/* Neither: no routable check, and 0.0.0.0/0 overlaps everyone (as before). */
	run_routable(rc, 1, NULL, &res);
	assert_refused(&res, 4, -EADDRINUSE, 0, 1, 2, 3);
	reconcile_result_fini(&res);

	/* The coordinator's only. */
	run_routable(rc, 2, "10.0.0.0/24", &res);
	assert_refused(&res, 2, -EADDRNOTAVAIL, 1, 2);
	assert_int_equal(res.n_added, 2);
	reconcile_result_fini(&res);

	/* Both. */
	assert_int_equal(wgf_cidr_parse(&conf, "192.168.0.0/16", 0, NULL), 0);
	assert_int_equal(reconciler_set_routable(rc, &conf, 1), 0);
	run_routable(rc, 3, "10.0.0.0/24", &res);
	assert_refused(&res, 1, -EADDRNOTAVAIL, 1);
	assert_int_equal(res.n_added, 3);
	reconcile_result_fini(&res);

	/* The configured ones only. */
	run_routable(rc, 4, NULL, &res);
	assert_refused(&res, 3, -EADDRNOTAVAIL, 0, 1, 3);
	assert_int_equal(res.n_added, 1);
	reconcile_result_fini(&res);

	/* Cleared again: no check. */
	assert_int_equal(reconciler_set_routable(rc, NULL, 0), 0);
	run_routable(rc, 5, NULL, &res);
	assert_refused(&res, 4, -EADDRINUSE, 0, 1, 2, 3);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

/*
 * A set that may be older than the interface adds and updates but removes nothing, and
 * takes no allowed IP from a peer it keeps; what it kept or held back is not drift,
 * neither then nor when the next full set removes or changes it.
 */
static void test_no_remove_keeps_and_is_not_drift(void **state)
{
	struct reconcile_result res;
	struct cache_state st;
	struct reconciler *rc;
	struct wgf_peer *p;
	struct fake f;

	(void)state;
	fake_init(&f);
	for (uint32_t i = 0; i < 6; i++)
		if (i != 3)
			peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), i);
	fake_must_find(&f, 1)->persistent_keepalive = 0;
	/* Peer 50 has the address the cache gives peer 3 (10.0.0.3): a newer owner. */
	p = wgf_device_add_peer(&f.dev);
	peer_of(&f.dev.ips, p, 50);
	set_ip(p, "10.0.0.3/32");
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	/* The cache: peers 0-3, as the baseline. 4, 5 and 50 are newer than it. */
	offer(rc, 7, 0, 4, RECONCILE_F_BASELINE | RECONCILE_F_FORCE | RECONCILE_F_NO_REMOVE, 1);
	run(rc, false, &res);
	assert_int_equal(res.n_removed, 0);
	assert_int_equal(res.n_kept, 3);
	assert_int_equal(res.n_held, 1);    /* peer 3 would take 50's address */
	assert_int_equal(res.n_added, 0);   /* so it waits */
	assert_int_equal(res.n_failed, 0);  /* and is not refused */
	assert_int_equal(res.n_static, 0);  /* kept peers are not static ones */
	assert_int_equal(res.n_updated, 1); /* peer 1, changed behind our back: drift */
	assert_int_equal(res.n_drift, 1);
	assert_int_equal(res.drift[0].kind, RECONCILE_DRIFT_CHANGED);
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(f.n_remove_calls, 0);
	assert_int_equal(f.dev.n_peers, 6);
	reconcile_result_fini(&res);

	/* The coordinator's set: 0-3 and 5 with another keepalive; 4 and 50 go. No drift. */
	state_of(&st, 8, 0, 6);
	st.peers[5].persistent_keepalive = 0;
	st.peers[4] = st.peers[5];
	st.n_peers = 5;
	assert_int_equal(reconciler_set_desired(rc, &st, RECONCILE_F_FORCE), 1);
	run(rc, false, &res);
	assert_int_equal(res.n_removed, 2);
	assert_int_equal(res.n_added, 1);
	assert_int_equal(res.n_updated, 1);
	assert_int_equal(res.n_kept + res.n_held, 0);
	assert_int_equal(res.n_drift, 0);
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(f.dev.n_peers, 5);
	reconcile_result_fini(&res);

	/* Once a full pass went through, a peer added by hand is drift again. */
	peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), 4);
	run(rc, false, &res);
	assert_int_equal(res.n_removed, 1);
	assert_int_equal(res.n_drift, 1);
	assert_int_equal(res.drift[0].kind, RECONCILE_DRIFT_ADDED);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

/* A delta: an upsert of peer n (as peer_of makes it) or its removal, at revision rev. */
static void delta(struct wgf_sync_reply *r, uint64_t rev, uint32_t n, bool remove)
{
	struct wgf_change *c = &r->changes[r->n_changes++];

	memset(c, 0, sizeof(*c));
	c->revision = rev;
	c->op = remove ? WGF_CHANGE_REMOVE : WGF_CHANGE_UPSERT;
	if (remove)
		key_of(c->peer.public_key, n);
	else
		peer_of(&r->ips, &c->peer, n);
	r->revision = rev;
}

/*
 * A desired set of the peers listed in ns (as peer_of makes them), taken by rc; peer
 * `moved` (when listed) has the allowed IP `cidr` instead.
 */
static void offer_list(struct reconciler *rc, uint64_t revision, const uint32_t *ns, size_t n,
                       uint32_t moved, const char *cidr)
{
	struct cache_state st = {.revision = revision, .n_peers = n};

	st.peers = calloc(n, sizeof(*st.peers));
	assert_non_null(st.peers);
	for (size_t i = 0; i < n; i++) {
		peer_of(&st.ips, &st.peers[i], ns[i]);
		if (ns[i] == moved)
			set_ip(&st.peers[i], cidr);
	}
	assert_int_equal(reconciler_set_desired(rc, &st, 0), 1);
	cache_state_fini(&st);
}

static bool has_peer(struct fake *f, uint32_t n)
{
	uint8_t key[WGF_KEY_LEN];

	key_of(key, n);
	return fake_find(f, key) != NULL;
}

/*
 * Adopt mode removes only the agent's own peers (applied by it) and released ones; the
 * others are listed as unknown, and a desired peer that would take an allowed IP of one
 * is refused. Without adopt mode the same interface loses them.
 */
static void test_adopt_keeps_unknown_peers(void **state)
{
	static const uint32_t first[] = {1, 2, 7, 8}, second[] = {1, 7}, third[] = {1, 7, 9};
	struct wgf_change changes[1];
	struct wgf_sync_reply r = {.changes = changes};
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_err err = {0};
	uint8_t released[WGF_KEY_LEN];
	struct wgf_device dev;
	struct wgf_peer *p;
	struct fake f;

	(void)state;
	fake_init(&f);
	for (uint32_t i = 0; i < 6; i++)
		peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), i);
	p = fake_must_find(&f, 5);
	f.dev.seen[p - f.dev.peers].flags |= WGF_PEER_HAS_HANDSHAKE;
	f.dev.seen[p - f.dev.peers].last_handshake_ms = 1234;
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	reconciler_set_adopt(rc, true);
	/* Peer 8 wants peer 5's address. */
	offer_list(rc, 1, first, 4, 8, "10.0.0.5/32");
	run(rc, false, &res);
	assert_int_equal(res.n_removed, 0);
	assert_int_equal(res.n_added, 1); /* 7 */
	assert_true(res.has_unknown);
	assert_int_equal(res.n_unknown, 4); /* 0, 3, 4, 5 */
	assert_int_equal(res.n_unknown_total, 4);
	assert_int_equal(res.unknown[0].public_key[2], 0);
	assert_int_equal(res.unknown[3].public_key[2], 5);
	assert_int_equal(res.unknown[3].last_handshake_ms, 1234);
	assert_int_equal(res.unknown[3].n_allowed_ips, 1);
	assert_int_equal(res.n_failed, 1);
	assert_int_equal(res.failed[0].public_key[2], 8);
	assert_non_null(strstr(res.failed[0].reason, "unmanaged peer"));
	assert_int_equal(res.n_static, 0);
	assert_int_equal(res.n_drift, 0);
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(f.n_remove_calls, 0);
	assert_int_equal(f.dev.n_peers, 7);
	reconcile_result_fini(&res);

	/* A read without what was seen lists the same unknown peers, with no handshake. */
	assert_int_equal(fake_get(&f.base, &dev), 0);
	wgf_device_drop_seen(&dev);
	assert_int_equal(reconciler_run_read(rc, &dev, NULL, 0, NULL, NULL, &res, &err), 0);
	assert_int_equal(res.n_unknown, 4);
	assert_int_equal(res.unknown[3].public_key[2], 5);
	assert_int_equal(res.unknown[3].last_handshake_ms, 0);
	assert_int_equal(res.unknown[3].n_allowed_ips, 1);
	assert_int_equal(res.n_failed, 1);
	reconcile_result_fini(&res);

	/* Peer 2 was applied by the agent: dropping it from the set removes it. */
	offer_list(rc, 2, second, 2, 0, NULL);
	run(rc, false, &res);
	assert_int_equal(res.n_removed, 1);
	assert_false(has_peer(&f, 2));
	assert_int_equal(res.n_unknown, 4);
	assert_int_equal(res.n_drift, 0);
	reconcile_result_fini(&res);

	/* A released key goes, and is no drift. */
	key_of(released, 4);
	assert_int_equal(reconciler_set_released(rc, (const uint8_t(*)[WGF_KEY_LEN])released, 1),
	                 0);
	run(rc, false, &res);
	assert_int_equal(res.n_removed, 1);
	assert_false(has_peer(&f, 4));
	assert_int_equal(res.n_unknown, 3);
	assert_int_equal(res.n_drift, 0);
	reconcile_result_fini(&res);

	/* A delta that makes unknown peer 0 desired (as an import does): it is taken over. */
	delta(&r, 3, 0, false);
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(reconciler_run_changes(rc, NULL, NULL, &res, &err), -EAGAIN);
	run(rc, false, &res);
	assert_int_equal(res.n_unknown_total, 2); /* 3 and 5 */
	assert_int_equal(res.n_removed, 0);
	reconcile_result_fini(&res);

	/* A delta that would take an unknown peer's address is left to a full pass. */
	r.n_changes = 0;
	delta(&r, 4, 9, false);
	set_ip(&changes[0].peer, "10.0.0.3/32");
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(reconciler_run_changes(rc, NULL, NULL, &res, &err), -EAGAIN);
	run(rc, false, &res);
	assert_int_equal(res.n_failed, 1);
	assert_int_equal(res.failed[0].public_key[2], 9);
	assert_true(has_peer(&f, 3));
	reconcile_result_fini(&res);

	/* Without adopt mode, the unknown peers go and 9 gets its address. */
	reconciler_set_adopt(rc, false);
	offer_list(rc, 5, third, 3, 9, "10.0.0.3/32");
	run(rc, false, &res);
	assert_true(res.has_unknown); /* a full pass, which finds none to keep */
	assert_int_equal(res.n_unknown_total, 0);
	assert_int_equal(res.n_removed, 3); /* 0, 3, 5 */
	assert_int_equal(res.n_added, 1);
	assert_int_equal(res.n_failed, 0);
	assert_int_equal(f.dev.n_peers, 3);
	p = fake_must_find(&f, 9);
	assert_int_equal(p->allowed_ips[0].addr.bytes[3], 3);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_ip_pool_fini(&r.ips);
	wgf_device_fini(&f.dev);
}

/*
 * Deltas change the reconciler's own set in place: the next pass adds, updates and
 * removes just those peers, counts none of them as drift, and writes the cache. Deltas
 * that do not follow the set are refused and change nothing.
 */
static void test_deltas(void **state)
{
	char dir[] = "/tmp/wgf-rc-XXXXXX", path[64];
	struct wgf_change changes[4];
	struct wgf_sync_reply r = {.changes = changes};
	struct cache_state back;
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_err err = {0};
	struct fake f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_FILE);
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, path, &rc), 0);
	assert_int_equal(reconciler_apply(rc, &r), -ENODATA);
	offer(rc, 5, 0, 5, 0, 1);
	run(rc, false, &res);
	assert_int_equal(res.n_added, 5);
	reconcile_result_fini(&res);

	delta(&r, 6, 1, true);   /* peer 1 goes */
	delta(&r, 7, 10, false); /* peer 10 comes */
	delta(&r, 7, 2, false);  /* peer 2 gets keepalive 0 */
	r.changes[2].peer.persistent_keepalive = 0;
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(reconciler_revision(rc), 7);
	/* The same deltas again, or others of another epoch, do not follow: refused. */
	assert_int_equal(reconciler_apply(rc, &r), -ESTALE);
	r.epoch[0] = 1;
	r.changes[0].revision = 8;
	assert_int_equal(reconciler_apply(rc, &r), -ESTALE);
	r.epoch[0] = 0;
	/* Nothing new at all: nothing to do. */
	r.n_changes = 0;
	assert_int_equal(reconciler_apply(rc, &r), 0);

	/* Someone else removes peer 3 meanwhile: that one is drift, the deltas' are not. */
	*fake_must_find(&f, 3) = f.dev.peers[--f.dev.n_peers];
	run(rc, false, &res);
	assert_int_equal(res.revision, 7);
	assert_int_equal(res.n_desired, 5);
	assert_int_equal(res.n_added, 2);   /* 10, and 3 back */
	assert_int_equal(res.n_updated, 1); /* 2 */
	assert_int_equal(res.n_removed, 1); /* 1 */
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(res.n_drift, 1);
	assert_int_equal(res.drift[0].kind, RECONCILE_DRIFT_REMOVED);
	assert_int_equal(res.drift[0].public_key[2], 3);
	reconcile_result_fini(&res);
	assert_int_equal(fake_must_find(&f, 2)->persistent_keepalive, 0);
	fake_must_find(&f, 10);
	assert_null(fake_find(&f, r.changes[0].peer.public_key));

	/* The cache holds the changed set. */
	assert_int_equal(cache_load(path, &back, &err), 0);
	assert_int_equal(back.revision, 7);
	assert_int_equal(back.n_peers, 5);
	cache_state_fini(&back);
	wgf_ip_pool_fini(&r.ips);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_APPLIED_FILE);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * After a full pass, deltas are a delta pass: one backend set of just the changed
 * peers and one removal, nothing read, the batch in the journal; a peer a check of the
 * diff would refuse, or no full pass yet, makes it a full pass instead.
 */
static void test_delta_pass(void **state)
{
	enum { N = 3000 };
	char dir[] = "/tmp/wgf-rd-XXXXXX", path[64];
	struct wgf_change changes[4];
	struct wgf_sync_reply r = {.changes = changes};
	struct cache_state back;
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_err err = {0};
	size_t records = 0;
	unsigned gets, sets;
	struct fake f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_FILE);
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, path, &rc), 0);
	offer(rc, 5, 0, N, 0, 1);
	delta(&r, 6, N + 1, false);
	assert_int_equal(reconciler_apply(rc, &r), 1);
	/* No full pass since the whole set: only a full pass will do. */
	assert_int_equal(reconciler_run_changes(rc, NULL, NULL, &res, &err), -EAGAIN);
	run(rc, false, &res);
	assert_int_equal(res.n_added, N + 1);
	reconcile_result_fini(&res);

	gets = f.n_get;
	sets = f.n_set_calls;
	f.n_set_peers = f.n_removed_peers = 0;
	r.n_changes = 0;
	delta(&r, 7, 7, false); /* peer 7 changes its keepalive */
	r.changes[0].peer.persistent_keepalive = 5;
	delta(&r, 8, 9, true);      /* peer 9 goes */
	delta(&r, 8, N + 2, false); /* a new one */
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(reconciler_run_changes(rc, NULL, NULL, &res, &err), 0);
	assert_int_equal(res.revision, 8);
	assert_int_equal(res.n_added, 1);
	assert_int_equal(res.n_updated, 1);
	assert_int_equal(res.n_removed, 1);
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(res.apply_error, 0);
	reconcile_result_fini(&res);
	assert_int_equal(f.n_get, gets);           /* nothing read */
	assert_int_equal(f.n_set_calls, sets + 1); /* one set ... */
	assert_int_equal(f.n_set_peers, 2);        /* ... of the two peers */
	assert_int_equal(f.n_removed_peers, 1);
	assert_int_equal(fake_must_find(&f, 7)->persistent_keepalive, 5);
	assert_null(fake_find(&f, r.changes[1].peer.public_key));
	fake_must_find(&f, N + 2);
	/* The cache with its journal loads to the new set. */
	assert_int_equal(cache_load_desired(path, &back, &records, &err), 0);
	assert_int_equal(records, 1);
	assert_int_equal(back.revision, 8);
	assert_int_equal(back.n_peers, N + 1);
	cache_state_fini(&back);

	/* A new peer with peer 3's address: a full pass refuses it, so it is one. */
	r.n_changes = 0;
	delta(&r, 9, N + 3, false);
	r.changes[0].peer.allowed_ips[0] = fake_must_find(&f, 3)->allowed_ips[0];
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(reconciler_run_changes(rc, NULL, NULL, &res, &err), -EAGAIN);
	run(rc, false, &res);
	assert_int_equal(res.n_failed, 2); /* both sides of an overlap are refused */
	reconcile_result_fini(&res);
	/* Refused peers: every pass is a full one until they are gone. */
	r.n_changes = 0;
	delta(&r, 10, N + 4, false);
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(reconciler_run_changes(rc, NULL, NULL, &res, &err), -EAGAIN);

	wgf_ip_pool_fini(&r.ips);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
	for (size_t i = 0; i < 3; i++) {
		static const char *const names[] = {CACHE_FILE, CACHE_APPLIED_FILE,
		                                    CACHE_JOURNAL_FILE};

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		(void)unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
}

/* A delta's changed peer, with its allowed IP set to cidr; the reconciler takes it. */
static int apply_one(struct reconciler *rc, struct wgf_sync_reply *r, uint64_t rev, uint32_t n,
                     bool remove, const char *cidr)
{
	struct reconcile_result res;
	struct wgf_err err = {0};
	int ret;

	r->n_changes = 0;
	delta(r, rev, n, remove);
	if (cidr)
		assert_int_equal(wgf_cidr_parse(&r->changes[0].peer.allowed_ips[0], cidr, 0, NULL),
		                 0);
	assert_int_equal(reconciler_apply(rc, r), 1);
	ret = reconciler_run_changes(rc, NULL, NULL, &res, &err);
	if (ret == 0)
		reconcile_result_fini(&res);
	return ret;
}

/* A full pass, which must find n_failed refused peers. */
static void full_pass(struct reconciler *rc, size_t n_failed)
{
	struct reconcile_result res;

	run(rc, false, &res);
	assert_int_equal(res.n_failed, n_failed);
	reconcile_result_fini(&res);
}

/*
 * Above OWNERS_MIN peers a delta pass finds overlaps in its index of allowed IPs, which
 * every delta keeps equal to the set: an address a removal freed is free, a network
 * inside another peer's or holding others is an overlap, and a key a reply names twice
 * leaves only its last allowed IP taken.
 */
static void test_delta_overlaps_by_index(void **state)
{
	enum { N = 2000 };
	struct wgf_change changes[2];
	struct wgf_sync_reply r = {.changes = changes};
	struct reconciler *rc;
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	offer(rc, 5, 0, N, 0, 1);
	full_pass(rc, 0);

	assert_int_equal(apply_one(rc, &r, 6, 9, true, NULL), 0);
	assert_int_equal(apply_one(rc, &r, 7, N + 1, false, "10.0.0.9/32"), 0);
	assert_int_equal(apply_one(rc, &r, 8, N + 2, false, "10.0.200.0/24"), 0);
	assert_int_equal(apply_one(rc, &r, 9, N + 3, false, "10.0.200.7/32"), -EAGAIN);
	full_pass(rc, 2);
	/* Both gone (by full passes while refused peers are there); the /24 is free again. */
	assert_int_equal(apply_one(rc, &r, 10, N + 2, true, NULL), -EAGAIN);
	assert_int_equal(apply_one(rc, &r, 11, N + 3, true, NULL), -EAGAIN);
	full_pass(rc, 0);
	assert_int_equal(apply_one(rc, &r, 12, N + 4, false, "10.0.200.7/32"), 0);
	assert_int_equal(apply_one(rc, &r, 13, N + 5, false, "10.0.0.0/30"), -EAGAIN);
	full_pass(rc, 5);
	assert_int_equal(apply_one(rc, &r, 14, N + 5, true, NULL), -EAGAIN);
	full_pass(rc, 0);

	r.n_changes = 0;
	delta(&r, 15, N + 6, false);
	delta(&r, 15, N + 6, false);
	assert_int_equal(wgf_cidr_parse(&changes[0].peer.allowed_ips[0], "10.0.201.1/32", 0, NULL),
	                 0);
	assert_int_equal(wgf_cidr_parse(&changes[1].peer.allowed_ips[0], "10.0.201.2/32", 0, NULL),
	                 0);
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(apply_one(rc, &r, 16, N + 7, false, "10.0.201.1/32"), 0);
	assert_int_equal(apply_one(rc, &r, 17, N + 8, false, "10.0.201.2/32"), -EAGAIN);

	wgf_ip_pool_fini(&r.ips);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

/* A result lists at most RECONCILE_UNKNOWN_MAX unknown peers, in key order, and counts all. */
static void test_adopt_lists_a_bounded_number(void **state)
{
	enum { N = RECONCILE_UNKNOWN_MAX + 5 };
	struct reconcile_result res;
	struct reconciler *rc;
	struct fake f;

	(void)state;
	fake_init(&f);
	for (uint32_t i = 0; i < N; i++)
		peer_of(&f.dev.ips, wgf_device_add_peer(&f.dev), i + 1);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	reconciler_set_adopt(rc, true);
	offer(rc, 1, 100000, 0, 0, 1);
	run(rc, false, &res);
	assert_true(res.has_unknown);
	assert_int_equal(res.n_unknown, RECONCILE_UNKNOWN_MAX);
	assert_int_equal(res.n_unknown_total, N);
	for (size_t i = 1; i < res.n_unknown; i++)
		assert_true(memcmp(res.unknown[i - 1].public_key, res.unknown[i].public_key,
		                   WGF_KEY_LEN) < 0);
	assert_int_equal(res.n_removed, 0);
	assert_int_equal(f.dev.n_peers, N);
	reconcile_result_fini(&res);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

/*
 * A full pass on a read taken before deltas were written (the daemon reads on another
 * thread while deltas go through): the peers those deltas changed are skipped, so the
 * older read neither writes them again nor calls them drift, while drift the read did
 * see is repaired. The same read without the skip list shows what it prevents.
 */
static void test_pass_on_earlier_read(void **state)
{
	enum { N = 100 };
	uint8_t skip[3][WGF_KEY_LEN];
	struct wgf_change changes[4];
	struct wgf_sync_reply r = {.changes = changes};
	struct wgf_device before = {0}, again = {0};
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_err err = {0};
	size_t sets;
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	offer(rc, 5, 0, N, 0, 1);
	run(rc, false, &res);
	reconcile_result_fini(&res);

	/* Someone removes peer 3, then the read is taken, then deltas are written. */
	*fake_must_find(&f, 3) = f.dev.peers[--f.dev.n_peers];
	assert_int_equal(fake_get(&f.base, &before), 0);
	assert_int_equal(fake_get(&f.base, &again), 0);
	delta(&r, 6, 7, false); /* peer 7 changes its keepalive */
	r.changes[0].peer.persistent_keepalive = 5;
	delta(&r, 6, 9, true);      /* peer 9 goes */
	delta(&r, 7, N + 2, false); /* a new one */
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(reconciler_run_changes(rc, NULL, NULL, &res, &err), 0);
	reconcile_result_fini(&res);
	key_of(skip[0], 7);
	key_of(skip[1], 9);
	key_of(skip[2], N + 2);

	sets = f.n_set_peers;
	assert_int_equal(reconciler_run_read(rc, &before, (const uint8_t(*)[WGF_KEY_LEN])skip, 3,
	                                     NULL, NULL, &res, &err),
	                 0);
	assert_null(before.peers); /* consumed */
	assert_int_equal(res.revision, 7);
	assert_int_equal(res.n_added, 1); /* peer 3 back; nothing else */
	assert_int_equal(res.n_updated, 0);
	assert_int_equal(res.n_removed, 0);
	assert_int_equal(res.n_pending, 0);
	assert_int_equal(res.apply_error, 0);
	assert_int_equal(res.n_drift, 1);
	assert_int_equal(res.drift[0].kind, RECONCILE_DRIFT_REMOVED);
	assert_int_equal(res.drift[0].public_key[2], 3);
	reconcile_result_fini(&res);
	assert_int_equal(f.n_set_peers, sets + 1);
	assert_int_equal(fake_must_find(&f, 7)->persistent_keepalive, 5);
	assert_null(fake_find(&f, r.changes[1].peer.public_key));
	fake_must_find(&f, N + 2);

	/* Without the list, the older read makes the deltas' peers look like drift. */
	assert_int_equal(reconciler_run_read(rc, &again, NULL, 0, NULL, NULL, &res, &err), 0);
	assert_int_equal(res.n_drift, 4);
	reconcile_result_fini(&res);

	wgf_ip_pool_fini(&r.ips);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

/*
 * One changed peer on a 100,000-peer interface (more than wireguard-go holds: it stops
 * at 65,536) writes one peer, whether it comes in a new whole set (a full pass) or as a
 * delta (a delta pass, which reads nothing).
 */
static void test_one_change_at_100000(void **state)
{
	enum { N = 100000 };
	struct wgf_change changes[1];
	struct wgf_sync_reply r = {.changes = changes};
	struct reconcile_result res;
	struct reconciler *rc;
	struct wgf_err err = {0};
	struct cache_state st;
	unsigned gets;
	struct fake f;

	(void)state;
	fake_init(&f);
	/* The interface holds the set already: filled here, as fake_set looks up linearly. */
	for (uint32_t i = 0; i < N; i++) {
		struct wgf_peer *p = wgf_device_add_peer(&f.dev);

		assert_non_null(p);
		peer_of(&f.dev.ips, p, i);
	}
	assert_int_equal(reconciler_new(&f.base, NULL, &rc), 0);
	offer(rc, 5, 0, N, 0, 1);
	run(rc, false, &res);
	assert_int_equal(res.n_unchanged, N);
	assert_int_equal(f.n_set_calls + f.n_remove_calls, 0);
	reconcile_result_fini(&res);

	state_of(&st, 6, 0, N);
	st.peers[N / 2].persistent_keepalive = 7;
	assert_int_equal(reconciler_set_desired(rc, &st, 0), 1);
	run(rc, false, &res);
	assert_int_equal(res.n_updated, 1);
	assert_int_equal(res.n_added + res.n_removed, 0);
	assert_int_equal(res.n_pending, 0);
	reconcile_result_fini(&res);
	assert_int_equal(f.n_set_calls, 1);
	assert_int_equal(f.n_set_peers, 1);
	assert_int_equal(f.n_remove_calls, 0);
	assert_int_equal(fake_must_find(&f, N / 2)->persistent_keepalive, 7);

	gets = f.n_get;
	delta(&r, 7, N / 3, false);
	r.changes[0].peer.persistent_keepalive = 9;
	assert_int_equal(reconciler_apply(rc, &r), 1);
	assert_int_equal(reconciler_run_changes(rc, NULL, NULL, &res, &err), 0);
	assert_int_equal(res.n_updated, 1);
	reconcile_result_fini(&res);
	assert_int_equal(f.n_get, gets);
	assert_int_equal(f.n_set_calls, 2);
	assert_int_equal(f.n_set_peers, 2);
	assert_int_equal(fake_must_find(&f, N / 3)->persistent_keepalive, 9);

	wgf_ip_pool_fini(&r.ips);
	reconciler_free(rc);
	wgf_device_fini(&f.dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_no_desired_set_changes_nothing),
	        cmocka_unit_test(test_apply_in_chunks_then_nothing),
	        cmocka_unit_test(test_drift_is_classified_and_repaired),
	        cmocka_unit_test(test_baseline_from_cache),
	        cmocka_unit_test(test_stale_revisions_are_ignored),
	        cmocka_unit_test(test_dry_run_changes_nothing),
	        cmocka_unit_test(test_cache_written_before_apply),
	        cmocka_unit_test(test_no_remove_keeps_and_is_not_drift),
	        cmocka_unit_test(test_failures_are_reported),
	        cmocka_unit_test(test_static_and_absent),
	        cmocka_unit_test(test_routable_desired_and_configured),
	        cmocka_unit_test(test_deltas),
	        cmocka_unit_test(test_delta_pass),
	        cmocka_unit_test(test_adopt_keeps_unknown_peers),
	        cmocka_unit_test(test_adopt_lists_a_bounded_number),
	        cmocka_unit_test(test_pass_on_earlier_read),
	        cmocka_unit_test(test_one_change_at_100000),
	        cmocka_unit_test(test_delta_overlaps_by_index),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
