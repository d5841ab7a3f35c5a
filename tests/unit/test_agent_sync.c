/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for agent/sync.c: the minimal diff, static peers, refusals and overlaps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "sync.h"

#define BIG            10000
#define CACHE_LIKE_MAX 64 /* as many routable networks as a cache file holds */

static int setup(void **state)
{
	(void)state;
	return wgf_key_init();
}

/* A distinct valid public key per number (wgf_key_check refuses only zero and low order). */
static void key_of(uint8_t key[static WGF_KEY_LEN], uint32_t n)
{
	for (size_t i = 0; i < WGF_KEY_LEN; i++)
		key[i] = (uint8_t)(0x5a ^ (i * 37));
	/* Big-endian, so key order is number order. */
	key[0] = (uint8_t)(n >> 24);
	key[1] = (uint8_t)(n >> 16);
	key[2] = (uint8_t)(n >> 8);
	key[3] = (uint8_t)n;
	assert_int_equal(wgf_key_check(key, WGF_KEY_PUBLIC, NULL), 0);
}

/* The allowed IPs of every peer the tests build; reachable until exit. */
static struct wgf_ip_pool ips;

static void add_ip(struct wgf_peer *p, const char *cidr)
{
	struct wgf_cidr c;

	assert_int_equal(wgf_cidr_parse(&c, cidr, 0, NULL), 0);
	assert_int_equal(wgf_peer_add_allowed_ip(&ips, p, &c), 0);
}

/* peer(p, n, keepalive, "10.0.0.2/32", ..., NULL) */
static struct wgf_peer *peer(struct wgf_peer *p, uint32_t n, unsigned keepalive, ...)
{
	const char *cidr;
	va_list ap;

	memset(p, 0, sizeof(*p));
	key_of(p->public_key, n);
	p->persistent_keepalive = (uint16_t)keepalive;
	va_start(ap, keepalive);
	while ((cidr = va_arg(ap, const char *)))
		add_ip(p, cidr);
	va_end(ap);
	return p;
}

/* Peer n of a big set: 10.(n / 65536).(n / 256 % 256).(n % 256)/32 shifted into 10/8. */
static void big_peer(struct wgf_peer *p, uint32_t n)
{
	char cidr[32];

	snprintf(cidr, sizeof(cidr), "10.%u.%u.%u/32", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
	peer(p, n, 25, cidr, NULL);
}

static struct wgf_peer *big_set(size_t n)
{
	struct wgf_peer *peers = calloc(n, sizeof(*peers));

	assert_non_null(peers);
	for (size_t i = 0; i < n; i++)
		big_peer(&peers[i], (uint32_t)i);
	return peers;
}

/* A device holding a copy of peers, in reverse order (the interface has no order). */
static void device_of(struct wgf_device *dev, const struct wgf_peer *peers, size_t n)
{
	memset(dev, 0, sizeof(*dev));
	for (size_t i = 0; i < n; i++) {
		struct wgf_peer *p = wgf_device_add_peer(dev);

		assert_non_null(p);
		*p = peers[n - 1 - i];
	}
}

static bool same_key(const struct wgf_peer *a, const struct wgf_peer *b)
{
	return memcmp(a->public_key, b->public_key, WGF_KEY_LEN) == 0;
}

static void assert_sorted(const struct sync_change *list, size_t n, bool use_desired)
{
	for (size_t i = 1; i < n; i++) {
		const struct wgf_peer *a = use_desired ? list[i - 1].desired : list[i - 1].actual;
		const struct wgf_peer *b = use_desired ? list[i].desired : list[i].actual;

		assert_true(memcmp(a->public_key, b->public_key, WGF_KEY_LEN) < 0);
	}
}

static const struct sync_failure *failure_of(const struct sync_plan *pl, const struct wgf_peer *p)
{
	for (size_t i = 0; i < pl->n_failed; i++)
		if (pl->failed[i].peer == p)
			return &pl->failed[i];
	return NULL;
}

static const struct sync_failure *must_fail(const struct sync_plan *pl, const struct wgf_peer *p)
{
	const struct sync_failure *f = failure_of(pl, p);

	if (!f) {
		fail_msg("peer was not refused");
		abort();
	}
	return f;
}

static void test_empty(void **state)
{
	struct wgf_device dev = {0};
	struct sync_plan pl;

	(void)state;
	assert_int_equal(sync_diff(NULL, 0, &dev, NULL, &pl), 0);
	assert_true(sync_plan_is_empty(&pl));
	assert_int_equal(pl.n_failed + pl.n_unchanged + pl.n_static, 0);
	sync_plan_fini(&pl);
}

static void test_add_update_remove(void **state)
{
	struct wgf_peer desired[4], actual[4];
	struct wgf_device dev;
	struct sync_plan pl;

	(void)state;
	peer(&desired[0], 1, 25, "10.0.0.1/32", NULL);                /* same */
	peer(&desired[1], 2, 25, "10.0.0.2/32", "fd00::2/128", NULL); /* new */
	peer(&desired[2], 3, 0, "10.0.0.3/32", NULL);                 /* keepalive off */
	peer(&desired[3], 4, 25, "10.0.0.4/32", "10.0.1.0/24", NULL); /* one more IP */
	peer(&actual[0], 1, 25, "10.0.0.1/32", NULL);
	peer(&actual[1], 3, 25, "10.0.0.3/32", NULL);
	peer(&actual[2], 4, 25, "10.0.0.4/32", NULL);
	peer(&actual[3], 5, 25, "10.0.0.5/32", NULL); /* not wanted */
	device_of(&dev, actual, 4);
	assert_int_equal(sync_diff(desired, 4, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_add, 1);
	assert_ptr_equal(pl.add[0].desired, &desired[1]);
	assert_null(pl.add[0].actual);
	assert_int_equal(pl.n_update, 2);
	assert_sorted(pl.update, pl.n_update, true);
	for (size_t i = 0; i < 2; i++) {
		assert_true(pl.update[i].desired == &desired[2] ||
		            pl.update[i].desired == &desired[3]);
		assert_true(same_key(pl.update[i].desired, pl.update[i].actual));
	}
	assert_int_equal(pl.n_remove, 1);
	assert_null(pl.remove[0].desired);
	assert_true(same_key(pl.remove[0].actual, &actual[3]));
	assert_int_equal(pl.n_unchanged, 1);
	assert_int_equal(pl.n_failed, 0);
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
}

/* Allowed IPs are a set: their order on the interface does not matter. */
static void test_allowed_ips_are_a_set(void **state)
{
	struct wgf_peer desired, actual;
	struct wgf_device dev;
	struct sync_plan pl;

	(void)state;
	peer(&desired, 1, 0, "10.0.0.1/32", "fd00::1/128", "10.9.0.0/16", NULL);
	peer(&actual, 1, 0, "10.9.0.0/16", "10.0.0.1/32", "fd00::1/128", NULL);
	device_of(&dev, &actual, 1);
	assert_int_equal(sync_diff(&desired, 1, &dev, NULL, &pl), 0);
	assert_true(sync_plan_is_empty(&pl));
	assert_int_equal(pl.n_unchanged, 1);
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
}

/* The interface has more allowed IPs than the struct holds: never "equal". */
static void test_truncated_actual_is_rewritten(void **state)
{
	struct wgf_peer desired, actual;
	struct wgf_device dev;
	struct sync_plan pl;

	(void)state;
	peer(&desired, 1, 0, "10.0.0.1/32", NULL);
	peer(&actual, 1, 0, "10.0.0.1/32", NULL);
	actual.flags |= BACKEND_PEER_F_TRUNCATED;
	device_of(&dev, &actual, 1);
	assert_int_equal(sync_diff(&desired, 1, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_update, 1);
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
}

static void test_big_set_one_change_is_one_update(void **state)
{
	struct wgf_peer *desired = big_set(BIG);
	struct wgf_device dev;
	struct sync_plan pl;

	(void)state;
	device_of(&dev, desired, BIG);
	desired[4321].persistent_keepalive = 0;
	assert_int_equal(sync_diff(desired, BIG, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_update, 1);
	assert_ptr_equal(pl.update[0].desired, &desired[4321]);
	assert_int_equal(pl.n_add + pl.n_remove + pl.n_failed, 0);
	assert_int_equal(pl.n_unchanged, BIG - 1);
	sync_plan_fini(&pl);

	/* A changed allowed IP, and one peer replaced by a new one. */
	desired[4321].persistent_keepalive = 25;
	add_ip(&desired[17], "192.168.0.0/16");
	big_peer(&desired[BIG - 1], BIG + 5);
	assert_int_equal(sync_diff(desired, BIG, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_update, 1);
	assert_ptr_equal(pl.update[0].desired, &desired[17]);
	assert_int_equal(pl.n_add, 1);
	assert_ptr_equal(pl.add[0].desired, &desired[BIG - 1]);
	assert_int_equal(pl.n_remove, 1);
	assert_int_equal(pl.n_unchanged, BIG - 2);
	assert_int_equal(pl.n_failed, 0);
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
	free(desired);
}

static void test_big_set_from_empty_and_to_empty(void **state)
{
	struct wgf_peer *desired = big_set(BIG);
	struct wgf_device dev = {0};
	struct sync_plan pl;

	(void)state;
	assert_int_equal(sync_diff(desired, BIG, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_add, BIG);
	assert_sorted(pl.add, pl.n_add, true);
	sync_plan_fini(&pl);
	device_of(&dev, desired, BIG);
	assert_int_equal(sync_diff(NULL, 0, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_remove, BIG);
	assert_sorted(pl.remove, pl.n_remove, false);
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
	free(desired);
}

static void test_static_peers_are_left_alone(void **state)
{
	struct wgf_peer desired[2], actual[3];
	uint8_t statics[2][WGF_KEY_LEN];
	struct sync_rules st = {.static_keys = statics, .n_static = 2};
	const struct sync_failure *f;
	struct wgf_device dev;
	struct sync_plan pl;

	(void)state;
	key_of(statics[0], 100);
	key_of(statics[1], 101);
	peer(&actual[0], 100, 0, "10.50.0.0/24", NULL); /* static, not desired */
	peer(&actual[1], 101, 0, "10.51.0.1/32", NULL); /* static, desired otherwise */
	peer(&actual[2], 1, 0, "10.0.0.1/32", NULL);
	peer(&desired[0], 101, 0, "10.51.0.2/32", NULL);
	peer(&desired[1], 2, 0, "10.0.0.2/32", NULL);
	device_of(&dev, actual, 3);
	assert_int_equal(sync_diff(desired, 2, &dev, &st, &pl), 0);
	assert_int_equal(pl.n_static, 2);
	assert_int_equal(pl.n_add, 1);
	assert_ptr_equal(pl.add[0].desired, &desired[1]);
	assert_int_equal(pl.n_update, 0);
	assert_int_equal(pl.n_remove, 1);
	assert_true(same_key(pl.remove[0].actual, &actual[2]));
	assert_int_equal(pl.n_failed, 1);
	f = must_fail(&pl, &desired[0]);
	assert_non_null(f);
	assert_int_equal(f->code, -EPERM);
	assert_string_equal(f->reason, "public key is a static peer, which is left alone");
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
}

static void test_bad_keys_are_refused_and_the_rest_applied(void **state)
{
	struct wgf_peer desired[5], actual[1];
	struct wgf_device dev;
	struct sync_plan pl;
	const struct sync_failure *f;

	(void)state;
	peer(&desired[0], 1, 0, "10.0.0.1/32", NULL);
	peer(&desired[1], 2, 0, "10.0.0.2/32", NULL);
	memset(desired[1].public_key, 0, WGF_KEY_LEN);
	peer(&desired[2], 3, 0, "10.0.0.3/32", NULL);
	memset(desired[2].public_key, 0, WGF_KEY_LEN);
	desired[2].public_key[0] = 1;                 /* the point of order 1 */
	peer(&desired[3], 1, 0, "10.0.0.4/32", NULL); /* key 1 again */
	peer(&desired[4], 9, 0, "10.0.0.9/32", NULL); /* the interface's own key */
	device_of(&dev, actual, 0);
	key_of(dev.public_key, 9);
	dev.flags |= WGF_DEVICE_HAS_PUBLIC_KEY;
	assert_int_equal(sync_diff(desired, 5, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_add, 1);
	assert_ptr_equal(pl.add[0].desired, &desired[0]);
	assert_int_equal(pl.n_failed, 4);
	f = must_fail(&pl, &desired[1]);
	assert_int_equal(f->code, -EINVAL);
	assert_string_equal(f->reason, "invalid public key: key is all zeros");
	f = must_fail(&pl, &desired[2]);
	assert_int_equal(f->code, -EINVAL);
	assert_string_equal(f->reason, "invalid public key: key is a low-order point of "
	                               "Curve25519, which no real WireGuard key is");
	f = must_fail(&pl, &desired[3]);
	assert_int_equal(f->code, -EEXIST);
	assert_string_equal(f->reason, "public key given twice; the first entry is used");
	f = must_fail(&pl, &desired[4]);
	assert_string_equal(f->reason, "public key is the interface's own");
	for (size_t i = 1; i < pl.n_failed; i++)
		assert_true(memcmp(pl.failed[i - 1].peer->public_key, pl.failed[i].peer->public_key,
		                   WGF_KEY_LEN) <= 0);
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
}

static void test_overlaps_are_refused(void **state)
{
	struct wgf_peer desired[6], actual[3];
	uint8_t statics[1][WGF_KEY_LEN];
	struct sync_rules st = {.static_keys = statics, .n_static = 1};
	const struct sync_failure *f;
	struct wgf_device dev;
	struct sync_plan pl;

	(void)state;
	key_of(statics[0], 100);
	peer(&actual[0], 100, 0, "10.70.0.0/16", NULL);              /* static */
	peer(&actual[1], 1, 0, "10.0.0.1/32", NULL);                 /* desired[0] as it is now */
	peer(&actual[2], 2, 0, "10.0.0.2/32", NULL);                 /* desired[1] as it is now */
	peer(&desired[0], 1, 0, "10.0.0.1/32", "10.0.0.0/24", NULL); /* nested: fine */
	peer(&desired[1], 2, 0, "10.1.0.0/16", NULL);
	peer(&desired[2], 3, 0, "10.1.7.7/32", NULL);                /* inside desired[1] */
	peer(&desired[3], 4, 0, "10.70.3.0/24", NULL);               /* inside the static peer */
	peer(&desired[4], 5, 0, "10.5.0.5/32", "10.5.0.5/32", NULL); /* twice */
	peer(&desired[5], 6, 0, "fd00::/8", "10.200.0.0/16", NULL);  /* fine */
	device_of(&dev, actual, 3);
	assert_int_equal(sync_diff(desired, 6, &dev, &st, &pl), 0);
	assert_int_equal(pl.n_failed, 4);

	f = must_fail(&pl, &desired[1]);
	assert_int_equal(f->code, -EADDRINUSE);
	assert_string_equal(f->reason,
	                    "allowed IP 10.1.0.0/16 overlaps 10.1.7.7/32 of another peer");
	assert_ptr_equal(f->other, &desired[2]);
	f = must_fail(&pl, &desired[2]);
	assert_string_equal(f->reason,
	                    "allowed IP 10.1.7.7/32 overlaps 10.1.0.0/16 of another peer");
	assert_ptr_equal(f->other, &desired[1]);
	f = must_fail(&pl, &desired[3]);
	assert_string_equal(f->reason,
	                    "allowed IP 10.70.3.0/24 overlaps 10.70.0.0/16 of a static peer");
	assert_non_null(f->other);
	assert_true(memcmp(f->other->public_key, statics[0], WGF_KEY_LEN) == 0);
	/* The reasons go to the tenant: none names another peer's key. */
	for (size_t i = 0; i < pl.n_failed; i++) {
		char key[WGF_KEY_B64_LEN];

		for (size_t j = 0; j < 6; j++) {
			wgf_key_to_base64(key, desired[j].public_key);
			assert_null(strstr(pl.failed[i].reason, key));
		}
		wgf_key_to_base64(key, statics[0]);
		assert_null(strstr(pl.failed[i].reason, key));
		assert_null(strchr(pl.failed[i].reason, '='));
	}
	f = must_fail(&pl, &desired[4]);
	assert_int_equal(f->code, -EINVAL);
	assert_string_equal(f->reason, "allowed IP 10.5.0.5/32 is given twice");
	assert_null(f->other);

	/* The rest is applied; the refused peer on the interface is neither changed nor removed. */
	assert_int_equal(pl.n_update, 1);
	assert_ptr_equal(pl.update[0].desired, &desired[0]);
	assert_int_equal(pl.n_add, 1);
	assert_ptr_equal(pl.add[0].desired, &desired[5]);
	assert_int_equal(pl.n_remove, 0);
	assert_int_equal(pl.n_static, 1);
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
}

/* IPv4 and IPv6 prefixes with the same leading bytes do not overlap. */
static void test_families_do_not_overlap(void **state)
{
	struct wgf_peer desired[2];
	struct wgf_device dev = {0};
	struct sync_plan pl;

	(void)state;
	peer(&desired[0], 1, 0, "10.0.0.0/8", NULL);
	peer(&desired[1], 2, 0, "a00::/8", NULL);
	assert_int_equal(sync_diff(desired, 2, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_failed, 0);
	assert_int_equal(pl.n_add, 2);
	sync_plan_fini(&pl);
}

static void cidrs(struct wgf_cidr *out, size_t n, ...)
{
	va_list ap;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(wgf_cidr_parse(&out[i], va_arg(ap, const char *), 0, NULL), 0);
	va_end(ap);
}

/* One peer asking for everything is refused alone; it takes nobody down with it. */
static void test_outside_routable_is_refused_alone(void **state)
{
	struct wgf_peer desired[4], actual[2];
	struct wgf_cidr nets[1];
	struct sync_rules rules = {.routable = nets, .n_routable = 1};
	const struct sync_failure *f;
	struct wgf_device dev;
	struct sync_plan pl;

	(void)state;
	cidrs(nets, 1, "10.100.0.0/24");
	peer(&desired[0], 1, 0, "10.100.0.2/32", NULL);
	peer(&desired[1], 2, 0, "0.0.0.0/0", NULL);                      /* everything */
	peer(&desired[2], 3, 0, "10.100.0.3/32", "10.100.1.0/24", NULL); /* one IP outside */
	peer(&desired[3], 4, 0, "10.100.0.128/25", NULL);                /* a whole part: fine */
	peer(&actual[0], 2, 0, "10.100.0.9/32", NULL); /* the refused peer, as it is now */
	peer(&actual[1], 9, 0, "10.100.0.99/32", NULL);
	device_of(&dev, actual, 2);
	assert_int_equal(sync_diff(desired, 4, &dev, &rules, &pl), 0);
	assert_int_equal(pl.n_failed, 2);
	f = must_fail(&pl, &desired[1]);
	assert_int_equal(f->code, -EADDRNOTAVAIL);
	assert_null(f->other);
	assert_string_equal(f->reason, "allowed IP 0.0.0.0/0 is outside the networks this server "
	                               "may route (10.100.0.0/24)");
	f = must_fail(&pl, &desired[2]);
	assert_string_equal(f->reason, "allowed IP 10.100.1.0/24 is outside the networks this "
	                               "server may route (10.100.0.0/24)");
	/* The others overlap 0.0.0.0/0 but are not refused for it; the refused peer stays. */
	assert_int_equal(pl.n_add, 2);
	assert_ptr_equal(pl.add[0].desired, &desired[0]);
	assert_ptr_equal(pl.add[1].desired, &desired[3]);
	assert_int_equal(pl.n_update, 0);
	assert_int_equal(pl.n_remove, 1);
	assert_true(same_key(pl.remove[0].actual, &actual[1]));
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
}

static void test_routable_ipv6_and_nested(void **state)
{
	struct wgf_peer desired[5];
	struct wgf_cidr nets[4];
	struct sync_rules rules = {.routable = nets, .n_routable = 4};
	struct wgf_device dev = {0};
	struct sync_plan pl;

	(void)state;
	/* Out of order, one inside another, one repeated. */
	cidrs(nets, 4, "fd00:100::/64", "10.100.0.0/24", "10.100.0.0/16", "fd00:100::/64");
	peer(&desired[0], 1, 0, "fd00:100::2/128", "10.100.7.0/24", NULL);
	peer(&desired[1], 2, 0, "fd00:100:0:0:8000::/65", NULL);
	peer(&desired[2], 3, 0, "fd00:100::/63", NULL); /* wider than the network */
	peer(&desired[3], 4, 0, "fd00:101::1/128", NULL);
	peer(&desired[4], 5, 0, "::/0", NULL);
	assert_int_equal(sync_diff(desired, 5, &dev, &rules, &pl), 0);
	assert_int_equal(pl.n_add, 2);
	assert_ptr_equal(pl.add[0].desired, &desired[0]);
	assert_ptr_equal(pl.add[1].desired, &desired[1]);
	assert_int_equal(pl.n_failed, 3);
	assert_string_equal(must_fail(&pl, &desired[2])->reason,
	                    "allowed IP fd00:100::/63 is outside the networks this server may "
	                    "route (fd00:100::/64)");
	assert_int_equal(must_fail(&pl, &desired[3])->code, -EADDRNOTAVAIL);
	assert_int_equal(must_fail(&pl, &desired[4])->code, -EADDRNOTAVAIL);
	sync_plan_fini(&pl);

	/* Only IPv4 is routable: an IPv6 allowed IP is outside. */
	rules.routable = &nets[1];
	rules.n_routable = 1;
	assert_int_equal(sync_diff(desired, 1, &dev, &rules, &pl), 0);
	assert_int_equal(pl.n_failed, 1);
	assert_string_equal(pl.failed[0].reason, "allowed IP fd00:100::2/128 is outside the "
	                                         "networks this server may route (none for IPv6)");
	sync_plan_fini(&pl);
}

/* The reason lists the networks of the allowed IP's family, cut short to fit. */
static void test_routable_reason_fits(void **state)
{
	struct wgf_cidr nets[CACHE_LIKE_MAX];
	struct sync_rules rules = {.routable = nets, .n_routable = CACHE_LIKE_MAX};
	struct wgf_device dev = {0};
	struct wgf_peer desired;
	struct sync_plan pl;
	const char *reason;

	(void)state;
	for (size_t i = 0; i < CACHE_LIKE_MAX; i++) {
		char text[32];

		snprintf(text, sizeof(text), "10.%zu.0.0/16", 100 + i);
		assert_int_equal(wgf_cidr_parse(&nets[i], text, 0, NULL), 0);
	}
	peer(&desired, 1, 0, "192.168.0.0/16", NULL);
	assert_int_equal(sync_diff(&desired, 1, &dev, &rules, &pl), 0);
	assert_int_equal(pl.n_failed, 1);
	reason = pl.failed[0].reason;
	assert_true(strlen(reason) < SYNC_REASON_MAX - 1);
	assert_non_null(strstr(reason, "(10.100.0.0/16, 10.101.0.0/16, "));
	assert_non_null(strstr(reason, ", ...)"));
	sync_plan_fini(&pl);

	/* The longest IPv6 allowed IP still leaves room. */
	peer(&desired, 1, 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", NULL);
	assert_int_equal(sync_diff(&desired, 1, &dev, &rules, &pl), 0);
	assert_string_equal(pl.failed[0].reason,
	                    "allowed IP ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128 is outside the "
	                    "networks this server may route (none for IPv6)");
	sync_plan_fini(&pl);
}

/* Without routable networks nothing is refused for where it points; static peers still. */
static void test_no_routable_no_check(void **state)
{
	struct wgf_peer desired[2];
	struct sync_rules rules = {0};
	struct wgf_device dev = {0};
	struct sync_plan pl;

	(void)state;
	peer(&desired[0], 1, 0, "0.0.0.0/0", NULL);
	peer(&desired[1], 2, 0, "::/0", NULL);
	assert_int_equal(sync_diff(desired, 2, &dev, &rules, &pl), 0);
	assert_int_equal(pl.n_failed, 0);
	assert_int_equal(pl.n_add, 2);
	sync_plan_fini(&pl);
	assert_int_equal(sync_diff(desired, 2, &dev, NULL, &pl), 0);
	assert_int_equal(pl.n_failed, 0);
	sync_plan_fini(&pl);
}

/* The check agrees with trying every network, on random prefixes. */
static void test_routable_matches_linear_scan(void **state)
{
	enum { N = 40, NETS = 12, ROUNDS = 200 };
	struct wgf_peer desired[N];
	struct wgf_cidr nets[NETS];
	struct sync_rules rules = {.routable = nets, .n_routable = NETS};
	struct wgf_device dev = {0};
	unsigned seed = 777;

	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		struct sync_plan pl;

		for (int k = 0; k < NETS; k++) {
			char text[32];

			snprintf(text, sizeof(text), "10.%u.%u.0/%u", (unsigned)rand_r(&seed) % 4,
			         (unsigned)rand_r(&seed) % 256, 8 + (unsigned)rand_r(&seed) % 17);
			assert_int_equal(wgf_cidr_parse(&nets[k], text, WGF_CIDR_F_HOST_BITS, NULL),
			                 0);
			wgf_cidr_network(&nets[k], &nets[k]);
		}
		for (int i = 0; i < N; i++) {
			char text[32];
			struct wgf_cidr c;

			snprintf(text, sizeof(text), "10.%u.%u.%u/%u", (unsigned)rand_r(&seed) % 4,
			         (unsigned)rand_r(&seed) % 256, (unsigned)rand_r(&seed) % 256,
			         8 + (unsigned)rand_r(&seed) % 25);
			peer(&desired[i], (uint32_t)i, 0, NULL);
			assert_int_equal(wgf_cidr_parse(&c, text, WGF_CIDR_F_HOST_BITS, NULL), 0);
			wgf_cidr_network(&c, &c);
			assert_int_equal(wgf_peer_add_allowed_ip(&ips, &desired[i], &c), 0);
		}
		assert_int_equal(sync_diff(desired, N, &dev, &rules, &pl), 0);
		for (int i = 0; i < N; i++) {
			const struct wgf_cidr *c = &desired[i].allowed_ips[0];
			const struct sync_failure *f = failure_of(&pl, &desired[i]);
			bool inside = false;

			for (int k = 0; k < NETS; k++)
				inside |= nets[k].prefix <= c->prefix &&
				          wgf_cidr_contains(&nets[k], &c->addr);
			if (inside)
				assert_true(!f || f->code == -EADDRINUSE);
			else
				assert_true(f && f->code == -EADDRNOTAVAIL);
		}
		sync_plan_fini(&pl);
	}
}

/* The sweep agrees with comparing every pair, on random nested and disjoint prefixes. */
static void test_overlap_sweep_matches_pairwise(void **state)
{
	enum { N = 60, ROUNDS = 200 };
	struct wgf_peer desired[N];
	struct wgf_device dev = {0};
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		bool expect[N] = {false};
		struct sync_plan pl;
		size_t n_expect = 0;

		for (int i = 0; i < N; i++) {
			unsigned n_ips = (unsigned)rand_r(&seed) % 3;
			char cidr[32];

			peer(&desired[i], (uint32_t)i, 0, NULL);
			for (unsigned k = 0; k < n_ips; k++) {
				unsigned prefix = 20 + (unsigned)rand_r(&seed) % 13;
				uint32_t addr = 0x0a000000U | ((unsigned)rand_r(&seed) % 4096U)
				                                      << 8;
				struct wgf_cidr c;

				snprintf(cidr, sizeof(cidr), "%u.%u.%u.%u/%u", addr >> 24,
				         (addr >> 16) & 0xff, (addr >> 8) & 0xff, addr & 0xff,
				         prefix);
				/* A third IPv6, all alike in their first 32 bits. */
				if (rand_r(&seed) % 3 == 0)
					snprintf(cidr, sizeof(cidr), "fd00:0:%x::/%u",
					         (unsigned)rand_r(&seed) % 64U, 36 + prefix);
				assert_int_equal(
				        wgf_cidr_parse(&c, cidr, WGF_CIDR_F_HOST_BITS, NULL), 0);
				wgf_cidr_network(&c, &c);
				assert_int_equal(wgf_peer_add_allowed_ip(&ips, &desired[i], &c), 0);
			}
		}
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++)
				for (unsigned a = 0; a < desired[i].n_allowed_ips; a++)
					for (unsigned b = 0; b < desired[j].n_allowed_ips; b++) {
						const struct wgf_cidr *x =
						        &desired[i].allowed_ips[a];
						const struct wgf_cidr *y =
						        &desired[j].allowed_ips[b];

						if (i != j && wgf_cidr_overlaps(x, y))
							expect[i] = true;
						if (i == j && a != b && x->prefix == y->prefix &&
						    wgf_addr_equal(&x->addr, &y->addr))
							expect[i] = true;
					}
		assert_int_equal(sync_diff(desired, N, &dev, NULL, &pl), 0);
		for (int i = 0; i < N; i++) {
			assert_int_equal(failure_of(&pl, &desired[i]) != NULL, expect[i]);
			n_expect += expect[i];
		}
		assert_int_equal(pl.n_add, N - n_expect);
		sync_plan_fini(&pl);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_add_update_remove),
	        cmocka_unit_test(test_allowed_ips_are_a_set),
	        cmocka_unit_test(test_truncated_actual_is_rewritten),
	        cmocka_unit_test(test_big_set_one_change_is_one_update),
	        cmocka_unit_test(test_big_set_from_empty_and_to_empty),
	        cmocka_unit_test(test_static_peers_are_left_alone),
	        cmocka_unit_test(test_bad_keys_are_refused_and_the_rest_applied),
	        cmocka_unit_test(test_overlaps_are_refused),
	        cmocka_unit_test(test_families_do_not_overlap),
	        cmocka_unit_test(test_overlap_sweep_matches_pairwise),
	        cmocka_unit_test(test_outside_routable_is_refused_alone),
	        cmocka_unit_test(test_routable_ipv6_and_nested),
	        cmocka_unit_test(test_routable_reason_fits),
	        cmocka_unit_test(test_no_routable_no_check),
	        cmocka_unit_test(test_routable_matches_linear_scan),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
