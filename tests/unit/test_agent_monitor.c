/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for agent/monitor.c: what changed between two reads, and the full sets. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "monitor.h"

#define NOW_WALL 1795604061825LL
#define FULL_MS  60000

static void key_of(uint8_t key[static WGF_KEY_LEN], uint32_t n)
{
	memset(key, 0x33, WGF_KEY_LEN);
	key[0] = (uint8_t)(n >> 8);
	key[1] = (uint8_t)n;
}

/* A device of n peers; peer i has handshake hs[i] (0 = never) and 100 * i bytes. */
static void device(struct wgf_device *dev, size_t n, const int64_t *hs)
{
	memset(dev, 0, sizeof(*dev));
	/* Filled back to front: the interface's order means nothing. */
	for (size_t k = n; k-- > 0;) {
		struct wgf_peer *p = wgf_device_add_peer(dev);
		struct wgf_peer_seen *seen;

		assert_non_null(p);
		key_of(p->public_key, (uint32_t)k);
		seen = &dev->seen[p - dev->peers];
		seen->flags = WGF_PEER_HAS_HANDSHAKE | WGF_PEER_HAS_TRANSFER;
		seen->last_handshake_ms = hs ? hs[k] : 0;
		seen->rx_bytes = seen->tx_bytes = 100 * k;
	}
}

/* What the read shows of peer n. */
static struct wgf_peer_seen *seen_of(struct wgf_device *dev, uint32_t n)
{
	uint8_t key[WGF_KEY_LEN];

	key_of(key, n);
	for (size_t i = 0; i < dev->n_peers; i++)
		if (memcmp(dev->peers[i].public_key, key, WGF_KEY_LEN) == 0)
			return &dev->seen[i];
	fail_msg("no peer %u", n);
	abort();
}

static const struct monitor_change *change_of(const struct monitor *m,
                                              const struct monitor_report *r, uint32_t n)
{
	uint8_t key[WGF_KEY_LEN];

	key_of(key, n);
	for (size_t i = 0; i < r->n_changes; i++)
		if (memcmp(m->facts[r->changes[i].fact].public_key, key, WGF_KEY_LEN) == 0)
			return &r->changes[i];
	return NULL;
}

static void test_first_read_is_full(void **state)
{
	int64_t hs[3] = {0, NOW_WALL - 5000, NOW_WALL - 200000};
	struct monitor_report r;
	struct wgf_device dev;
	struct monitor m;

	(void)state;
	monitor_init(&m, FULL_MS);
	device(&dev, 3, hs);
	assert_int_equal(monitor_update(&m, &dev, 1000, NOW_WALL, &r), 0);
	assert_true(r.full);
	assert_int_equal(r.n_peers, 3);
	assert_int_equal(r.n_changes, 3);
	assert_int_equal(r.n_gone, 0);
	/* Only peer 1 shook hands within 180 s. */
	assert_int_equal(r.n_recent, 1);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(change_of(&m, &r, i)->what, MONITOR_CHANGED_NEW);
	/* Facts are kept sorted by key. */
	for (size_t i = 1; i < m.n_facts; i++)
		assert_true(memcmp(m.facts[i - 1].public_key, m.facts[i].public_key, WGF_KEY_LEN) <
		            0);
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	monitor_fini(&m);
}

static void test_changes_between_reads(void **state)
{
	struct monitor_report r;
	struct wgf_device dev;
	struct wgf_peer_seen *p;
	struct monitor m;

	(void)state;
	monitor_init(&m, FULL_MS);
	device(&dev, 5, NULL);
	assert_int_equal(monitor_update(&m, &dev, 1000, NOW_WALL, &r), 0);
	monitor_report_fini(&r);

	/* The same read again: nothing to say. */
	assert_int_equal(monitor_update(&m, &dev, 6000, NOW_WALL, &r), 0);
	assert_false(r.full);
	assert_int_equal(r.n_changes + r.n_gone, 0);
	monitor_report_fini(&r);
	wgf_device_fini(&dev);

	/* Peer 1 shook hands, peer 2 moved, peer 3 sent traffic, peer 4 left, 5 is new. */
	device(&dev, 6, NULL);
	seen_of(&dev, 1)->last_handshake_ms = NOW_WALL;
	p = seen_of(&dev, 2);
	p->flags |= WGF_PEER_HAS_ENDPOINT;
	p->endpoint.in.sin_family = AF_INET;
	p->endpoint.in.sin_port = htons(51820);
	inet_pton(AF_INET, "192.0.2.7", &p->endpoint.in.sin_addr);
	seen_of(&dev, 3)->rx_bytes += 148;
	/* Drop peer 4. */
	dev.peers[dev.n_peers - 1 - 4] = dev.peers[dev.n_peers - 1];
	dev.seen[dev.n_peers - 1 - 4] = dev.seen[dev.n_peers - 1];
	dev.n_peers--;
	assert_int_equal(monitor_update(&m, &dev, 11000, NOW_WALL, &r), 0);
	assert_false(r.full);
	assert_int_equal(r.n_peers, 5);
	assert_int_equal(r.n_recent, 1);
	assert_int_equal(r.n_changes, 4);
	assert_int_equal(change_of(&m, &r, 1)->what, MONITOR_CHANGED_HANDSHAKE);
	assert_int_equal(change_of(&m, &r, 2)->what, MONITOR_CHANGED_ENDPOINT);
	assert_int_equal(change_of(&m, &r, 3)->what, MONITOR_CHANGED_TRANSFER);
	assert_int_equal(change_of(&m, &r, 5)->what, MONITOR_CHANGED_NEW);
	assert_null(change_of(&m, &r, 0));
	assert_int_equal(r.n_gone, 1);
	assert_int_equal(r.gone[0][1], 4);
	monitor_report_fini(&r);

	/* The endpoint moves from IPv4 to IPv6, and the port alone changes after. */
	p = seen_of(&dev, 2);
	memset(&p->endpoint, 0, sizeof(p->endpoint));
	p->endpoint.in6.sin6_family = AF_INET6;
	p->endpoint.in6.sin6_port = htons(51820);
	inet_pton(AF_INET6, "2001:db8::7", &p->endpoint.in6.sin6_addr);
	assert_int_equal(monitor_update(&m, &dev, 12000, NOW_WALL, &r), 0);
	assert_int_equal(r.n_changes, 1);
	assert_int_equal(change_of(&m, &r, 2)->what, MONITOR_CHANGED_ENDPOINT);
	monitor_report_fini(&r);
	p->endpoint.in6.sin6_port = htons(51821);
	assert_int_equal(monitor_update(&m, &dev, 13000, NOW_WALL, &r), 0);
	assert_int_equal(r.n_changes, 1);
	monitor_report_fini(&r);
	assert_int_equal(monitor_update(&m, &dev, 14000, NOW_WALL, &r), 0);
	assert_int_equal(r.n_changes, 0);
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	monitor_fini(&m);
}

static void test_periodic_full_set(void **state)
{
	struct monitor_report r;
	struct wgf_device dev;
	struct monitor m;

	(void)state;
	monitor_init(&m, FULL_MS);
	device(&dev, 4, NULL);
	assert_int_equal(monitor_update(&m, &dev, 1000, NOW_WALL, &r), 0);
	monitor_report_fini(&r);
	assert_int_equal(monitor_update(&m, &dev, 1000 + FULL_MS - 1, NOW_WALL, &r), 0);
	assert_false(r.full);
	assert_int_equal(r.n_changes, 0);
	monitor_report_fini(&r);
	assert_int_equal(monitor_update(&m, &dev, 1000 + FULL_MS, NOW_WALL, &r), 0);
	assert_true(r.full);
	/* Every peer is listed; none changed. */
	assert_int_equal(r.n_changes, 4);
	for (size_t i = 0; i < r.n_changes; i++)
		assert_int_equal(r.changes[i].what, 0);
	monitor_report_fini(&r);
	assert_int_equal(monitor_update(&m, &dev, 1001 + FULL_MS, NOW_WALL, &r), 0);
	assert_false(r.full);
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	monitor_fini(&m);
}

static void test_empty_and_big(void **state)
{
	struct monitor_report r;
	struct wgf_device dev = {0};
	struct monitor m;

	(void)state;
	monitor_init(&m, FULL_MS);
	assert_int_equal(monitor_update(&m, &dev, 0, NOW_WALL, &r), 0);
	assert_int_equal(r.n_changes + r.n_gone + r.n_peers, 0);
	monitor_report_fini(&r);
	device(&dev, 10000, NULL);
	assert_int_equal(monitor_update(&m, &dev, 5000, NOW_WALL, &r), 0);
	assert_int_equal(r.n_changes, 10000);
	monitor_report_fini(&r);
	seen_of(&dev, 7777)->tx_bytes++;
	assert_int_equal(monitor_update(&m, &dev, 10000, NOW_WALL, &r), 0);
	assert_int_equal(r.n_changes, 1);
	assert_non_null(change_of(&m, &r, 7777));
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	assert_int_equal(monitor_update(&m, &dev, 15000, NOW_WALL, &r), 0);
	assert_int_equal(r.n_gone, 10000);
	monitor_report_fini(&r);
	monitor_fini(&m);
}

/* A read that neither adds nor removes a peer changes the facts where they are. */
static void test_same_peers_update_in_place(void **state)
{
	struct monitor_report r;
	struct wgf_device dev;
	struct monitor_fact *facts;
	struct monitor m;

	(void)state;
	monitor_init(&m, FULL_MS);
	device(&dev, 3000, NULL);
	assert_int_equal(monitor_update(&m, &dev, 1000, NOW_WALL, &r), 0);
	monitor_report_fini(&r);
	facts = m.facts;
	seen_of(&dev, 10)->last_handshake_ms = NOW_WALL;
	seen_of(&dev, 2999)->rx_bytes++;
	assert_int_equal(monitor_update(&m, &dev, 6000, NOW_WALL, &r), 0);
	/* No second set of facts was built beside the first. */
	assert_ptr_equal(m.facts, facts);
	assert_int_equal(r.n_changes, 2);
	assert_int_equal(change_of(&m, &r, 10)->what, MONITOR_CHANGED_HANDSHAKE);
	assert_int_equal(change_of(&m, &r, 2999)->what, MONITOR_CHANGED_TRANSFER);
	assert_int_equal(m.facts[change_of(&m, &r, 10)->fact].last_handshake_ms, NOW_WALL);
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	monitor_fini(&m);
}

/* A device of the peers keys[0..n) names, in that order. */
static void device_of(struct wgf_device *dev, const uint32_t *keys, size_t n)
{
	memset(dev, 0, sizeof(*dev));
	for (size_t k = 0; k < n; k++) {
		struct wgf_peer *p = wgf_device_add_peer(dev);

		assert_non_null(p);
		key_of(p->public_key, keys[k]);
		dev->seen[p - dev->peers].flags = WGF_PEER_HAS_TRANSFER;
		dev->seen[p - dev->peers].rx_bytes = keys[k];
	}
}

/* Peers come and go between reads, in any order, one listed twice: facts stay a sorted set. */
static void test_peers_come_and_go(void **state)
{
	enum { N = 2000 };
	static uint32_t first[N], second[N + 2];
	bool wanted[2 * N] = {false};
	struct monitor_report r;
	struct wgf_device dev;
	struct monitor m;
	size_t n = 0, n_new = 0;

	(void)state;
	for (uint32_t i = 0; i < N; i++)
		first[i] = (i * 7919) % N * 2; /* the even keys, shuffled */
	/* The second read: every third even key goes, odd keys 1, 5, 9, ... come, one twice. */
	for (uint32_t i = 0; i < N; i++) {
		uint32_t k = first[i];

		if (k % 3 != 0)
			second[n++] = k;
		else if (k % 4 == 0) {
			second[n++] = k + 1;
			n_new++;
		}
	}
	second[n++] = second[0];
	for (size_t i = 0; i < n; i++)
		wanted[second[i]] = true;

	monitor_init(&m, FULL_MS);
	device_of(&dev, first, N);
	assert_int_equal(monitor_update(&m, &dev, 1000, NOW_WALL, &r), 0);
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	device_of(&dev, second, n);
	assert_int_equal(monitor_update(&m, &dev, 2000, NOW_WALL, &r), 0);

	assert_int_equal(m.n_facts, n - 1);
	for (size_t i = 0; i < m.n_facts; i++) {
		uint32_t k = (uint32_t)m.facts[i].public_key[0] << 8 | m.facts[i].public_key[1];

		assert_true(wanted[k]);
		assert_int_equal(m.facts[i].rx_bytes, k);
		/* Nothing of the update's own marks is left behind. */
		assert_int_equal(m.facts[i].flags, WGF_PEER_HAS_TRANSFER);
		if (i > 0)
			assert_true(memcmp(m.facts[i - 1].public_key, m.facts[i].public_key,
			                   WGF_KEY_LEN) < 0);
	}
	assert_int_equal(r.n_changes, n_new);
	for (size_t i = 0; i < r.n_changes; i++) {
		const uint8_t *key = m.facts[r.changes[i].fact].public_key;

		assert_int_equal(r.changes[i].what, MONITOR_CHANGED_NEW);
		assert_int_equal(key[1] % 2, 1);
	}
	assert_int_equal(r.n_gone, N - (n - 1 - n_new));
	for (size_t i = 0; i < r.n_gone; i++) {
		uint32_t k = (uint32_t)r.gone[i][0] << 8 | r.gone[i][1];

		assert_false(wanted[k]);
		assert_int_equal(k % 3, 0);
	}
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	monitor_fini(&m);
}

/* Hands dev's peers to the monitor one by one, as a reader with see set does. */
static void see_all(struct monitor *m, const struct wgf_device *dev, size_t from, size_t to)
{
	for (size_t k = from; k < to; k++)
		monitor_see(m, &dev->peers[k], &dev->seen[k]);
}

/*
 * A read that starts over (a dump the kernel interrupted) or fails keeps what it changed
 * for the report that follows; the peers it saw twice are one each.
 */
static void test_read_started_over_or_failed(void **state)
{
	struct monitor_report r;
	struct wgf_device dev;
	struct monitor m;

	(void)state;
	monitor_init(&m, FULL_MS);
	device(&dev, 100, NULL);
	assert_int_equal(monitor_update(&m, &dev, 1000, NOW_WALL, &r), 0);
	monitor_report_fini(&r);

	/* Peer 7 shakes hands; the read sees half the peers and starts over. */
	seen_of(&dev, 7)->last_handshake_ms = NOW_WALL;
	monitor_begin(&m, NOW_WALL);
	see_all(&m, &dev, 0, dev.n_peers);
	monitor_see(&m, NULL, NULL);
	see_all(&m, &dev, 0, dev.n_peers);
	assert_int_equal(monitor_end(&m, 2000, &r), 0);
	assert_int_equal(r.n_peers, 100);
	assert_int_equal(r.n_recent, 1);
	assert_int_equal(r.n_changes, 1);
	assert_int_equal(change_of(&m, &r, 7)->what, MONITOR_CHANGED_HANDSHAKE);
	assert_int_equal(r.n_gone, 0);
	assert_int_equal(m.n_facts, 100);
	monitor_report_fini(&r);

	/* Peer 8 sends traffic; the read fails halfway: the next read reports it. */
	seen_of(&dev, 8)->rx_bytes++;
	monitor_begin(&m, NOW_WALL);
	see_all(&m, &dev, 0, dev.n_peers / 2);
	see_all(&m, &dev, dev.n_peers / 2 + 1, dev.n_peers);
	monitor_abort(&m);
	monitor_begin(&m, NOW_WALL);
	see_all(&m, &dev, 0, dev.n_peers);
	assert_int_equal(monitor_end(&m, 3000, &r), 0);
	assert_int_equal(r.n_changes, 1);
	assert_int_equal(change_of(&m, &r, 8)->what, MONITOR_CHANGED_TRANSFER);
	for (size_t i = 0; i < m.n_facts; i++)
		assert_int_equal(m.facts[i].flags, WGF_PEER_HAS_HANDSHAKE | WGF_PEER_HAS_TRANSFER);
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	monitor_fini(&m);
}

/* A fact gives back the endpoint it was made from, either family, zone and port kept. */
static void test_fact_endpoint(void **state)
{
	struct sockaddr_storage ss;
	struct monitor_report r;
	struct wgf_device dev;
	struct wgf_peer_seen *p;
	const struct sockaddr_in6 *in6 = (const void *)&ss;
	const struct sockaddr_in *in = (const void *)&ss;
	struct monitor m;

	(void)state;
	monitor_init(&m, FULL_MS);
	device(&dev, 3, NULL);
	p = seen_of(&dev, 1);
	p->flags |= WGF_PEER_HAS_ENDPOINT;
	p->endpoint.in.sin_family = AF_INET;
	p->endpoint.in.sin_port = htons(51820);
	inet_pton(AF_INET, "192.0.2.7", &p->endpoint.in.sin_addr);
	p = seen_of(&dev, 2);
	p->flags |= WGF_PEER_HAS_ENDPOINT;
	p->endpoint.in6.sin6_family = AF_INET6;
	p->endpoint.in6.sin6_port = htons(443);
	p->endpoint.in6.sin6_scope_id = 3;
	inet_pton(AF_INET6, "fe80::7", &p->endpoint.in6.sin6_addr);
	assert_int_equal(monitor_update(&m, &dev, 1000, NOW_WALL, &r), 0);

	assert_false(monitor_fact_endpoint(&m.facts[change_of(&m, &r, 0)->fact], &ss));
	assert_true(monitor_fact_endpoint(&m.facts[change_of(&m, &r, 1)->fact], &ss));
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(ntohs(in->sin_port), 51820);
	assert_memory_equal(&in->sin_addr, &seen_of(&dev, 1)->endpoint.in.sin_addr, 4);
	assert_true(monitor_fact_endpoint(&m.facts[change_of(&m, &r, 2)->fact], &ss));
	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 443);
	assert_int_equal(in6->sin6_scope_id, 3);
	assert_memory_equal(&in6->sin6_addr, &seen_of(&dev, 2)->endpoint.in6.sin6_addr, 16);
	monitor_report_fini(&r);
	wgf_device_fini(&dev);
	monitor_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_first_read_is_full),
	        cmocka_unit_test(test_changes_between_reads),
	        cmocka_unit_test(test_periodic_full_set),
	        cmocka_unit_test(test_empty_and_big),
	        cmocka_unit_test(test_same_peers_update_in_place),
	        cmocka_unit_test(test_peers_come_and_go),
	        cmocka_unit_test(test_read_started_over_or_failed),
	        cmocka_unit_test(test_fact_endpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
