/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* monitor: compact per-peer facts and the comparison of two reads. */
#include "monitor.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void monitor_init(struct monitor *m, uint64_t full_interval_ms)
{
	memset(m, 0, sizeof(*m));
	m->full_interval_ms = full_interval_ms;
}

void monitor_fini(struct monitor *m)
{
	free(m->facts);
	memset(m, 0, sizeof(*m));
}

static int cmp_fact(const void *a, const void *b)
{
	return memcmp(((const struct monitor_fact *)a)->public_key,
	              ((const struct monitor_fact *)b)->public_key, WGF_KEY_LEN);
}

static void fact_of(struct monitor_fact *f, const struct wgf_peer *p,
                    const struct wgf_peer_seen *seen)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->public_key, p->public_key, WGF_KEY_LEN);
	f->flags = seen->flags &
	           (WGF_PEER_HAS_HANDSHAKE | WGF_PEER_HAS_ENDPOINT | WGF_PEER_HAS_TRANSFER);
	f->last_handshake_ms = seen->last_handshake_ms;
	if ((seen->flags & WGF_PEER_HAS_ENDPOINT) && seen->endpoint.sa.sa_family == AF_INET)
		memcpy(&f->endpoint, &seen->endpoint.in, sizeof(seen->endpoint.in));
	else if ((seen->flags & WGF_PEER_HAS_ENDPOINT) && seen->endpoint.sa.sa_family == AF_INET6)
		f->endpoint = seen->endpoint.in6;
	else
		f->flags &= ~WGF_PEER_HAS_ENDPOINT;
	f->rx_bytes = seen->rx_bytes;
	f->tx_bytes = seen->tx_bytes;
}

static bool same_endpoint(const struct monitor_fact *a, const struct monitor_fact *b)
{
	if ((a->flags ^ b->flags) & WGF_PEER_HAS_ENDPOINT)
		return false;
	if (!(a->flags & WGF_PEER_HAS_ENDPOINT) ||
	    a->endpoint.sin6_family != b->endpoint.sin6_family)
		return !(a->flags & WGF_PEER_HAS_ENDPOINT);
	if (a->endpoint.sin6_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->endpoint,
		                         *y = (const void *)&b->endpoint;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	return a->endpoint.sin6_port == b->endpoint.sin6_port &&
	       a->endpoint.sin6_scope_id == b->endpoint.sin6_scope_id &&
	       memcmp(&a->endpoint.sin6_addr, &b->endpoint.sin6_addr, 16) == 0;
}

static unsigned what_changed(const struct monitor_fact *old, const struct monitor_fact *cur)
{
	unsigned what = 0;

	if (old->last_handshake_ms != cur->last_handshake_ms)
		what |= MONITOR_CHANGED_HANDSHAKE;
	if (!same_endpoint(old, cur))
		what |= MONITOR_CHANGED_ENDPOINT;
	if (old->rx_bytes != cur->rx_bytes || old->tx_bytes != cur->tx_bytes)
		what |= MONITOR_CHANGED_TRANSFER;
	return what;
}

/*
 * While an update runs, a fact's flags carry two marks above the WGF_PEER_HAS_* bits:
 * SEEN when the read lists its key (the first pass), KEPT with what changed once the
 * second pass has written the read's values over it. Both are cleared before it returns.
 */
#define FACT_SEEN       (1U << 31)
#define FACT_KEPT       (1U << 30)
#define FACT_WHAT_SHIFT 24
#define FACT_WHAT_MASK  (0xfU << FACT_WHAT_SHIFT)

/* The index of the fact for key, or SIZE_MAX. */
static size_t find_fact(const struct monitor *m, const uint8_t key[static WGF_KEY_LEN])
{
	size_t lo = 0, hi = m->n_facts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(key, m->facts[mid].public_key, WGF_KEY_LEN);

		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return SIZE_MAX;
}

struct update_counts {
	size_t seen;    /* facts the read still lists */
	size_t fresh;   /* peers of the read without a fact (a key listed twice counts twice) */
	size_t changed; /* facts the read changes */
};

/* The first pass: marks the facts the read lists and counts. Writes nothing else. */
static struct update_counts mark_seen(struct monitor *m, const struct wgf_device *dev)
{
	struct update_counts n = {0};

	for (size_t k = 0; k < dev->n_peers; k++) {
		size_t i = find_fact(m, dev->peers[k].public_key);
		struct monitor_fact cur;

		if (i == SIZE_MAX) {
			n.fresh++;
			continue;
		}
		if (m->facts[i].flags & FACT_SEEN)
			continue; /* a key the read lists twice */
		m->facts[i].flags |= FACT_SEEN;
		n.seen++;
		fact_of(&cur, &dev->peers[k], &dev->seen[k]);
		n.changed += what_changed(&m->facts[i], &cur) != 0;
	}
	return n;
}

static void clear_marks(struct monitor *m)
{
	for (size_t i = 0; i < m->n_facts; i++)
		m->facts[i].flags &= ~(FACT_SEEN | FACT_KEPT | FACT_WHAT_MASK);
}

/*
 * The second pass: the read's values go over the facts it lists, in place; peers
 * without one go to fresh (room for all of them was counted). Returns how many did.
 */
static size_t take_read(struct monitor *m, const struct wgf_device *dev, struct monitor_fact *fresh)
{
	size_t n_fresh = 0;

	for (size_t k = 0; k < dev->n_peers; k++) {
		size_t i = find_fact(m, dev->peers[k].public_key);
		struct monitor_fact *f, cur;
		unsigned what;

		if (i == SIZE_MAX) {
			fact_of(&fresh[n_fresh++], &dev->peers[k], &dev->seen[k]);
			continue;
		}
		f = &m->facts[i];
		if (!(f->flags & FACT_SEEN))
			continue; /* taken already: a key listed twice */
		fact_of(&cur, &dev->peers[k], &dev->seen[k]);
		what = what_changed(f, &cur);
		*f = cur;
		f->flags |= FACT_KEPT | what << FACT_WHAT_SHIFT;
	}
	return n_fresh;
}

/* Sorts the new facts and drops a key listed twice; returns how many are left. */
static size_t sort_fresh(struct monitor_fact *fresh, size_t n)
{
	size_t w = 0;

	if (n > 1)
		qsort(fresh, n, sizeof(*fresh), cmp_fact);
	for (size_t i = 0; i < n; i++) {
		if (w > 0 && cmp_fact(&fresh[w - 1], &fresh[i]) == 0)
			continue;
		fresh[w] = fresh[i];
		fresh[w++].flags |= FACT_KEPT | MONITOR_CHANGED_NEW << FACT_WHAT_SHIFT;
	}
	return w;
}

/* Keys of the facts the read no longer lists go to gone; the rest close up, in order. */
static size_t drop_gone(struct monitor *m, struct monitor_report *rep)
{
	size_t w = 0;

	for (size_t i = 0; i < m->n_facts; i++) {
		if (m->facts[i].flags & FACT_KEPT)
			m->facts[w++] = m->facts[i];
		else
			memcpy(rep->gone[rep->n_gone++], m->facts[i].public_key, WGF_KEY_LEN);
	}
	return w;
}

/* Merges the sorted new facts into the kept ones from the back; facts has room for both. */
static void merge_fresh(struct monitor_fact *facts, size_t n_kept, const struct monitor_fact *fresh,
                        size_t n_fresh)
{
	size_t w = n_kept + n_fresh;

	while (n_fresh > 0) {
		if (n_kept > 0 && cmp_fact(&facts[n_kept - 1], &fresh[n_fresh - 1]) > 0)
			facts[--w] = facts[--n_kept];
		else
			facts[--w] = fresh[--n_fresh];
	}
}

/* Lists what changed (everything for a full set) by final index, and clears the marks. */
static void list_changes(struct monitor *m, struct monitor_report *rep)
{
	for (size_t i = 0; i < m->n_facts; i++) {
		unsigned what = (m->facts[i].flags & FACT_WHAT_MASK) >> FACT_WHAT_SHIFT;

		m->facts[i].flags &= ~(FACT_SEEN | FACT_KEPT | FACT_WHAT_MASK);
		if (what || rep->full)
			rep->changes[rep->n_changes++] =
			        (struct monitor_change){.fact = i, .what = what};
	}
}

/*
 * Updates the facts in place: a read that adds or removes no peer allocates no second
 * set of facts, only the report. Everything that can fail is allocated before the first
 * fact is written.
 */
int monitor_update(struct monitor *m, const struct wgf_device *dev, uint64_t now_ms,
                   int64_t wall_ms, struct monitor_report *ret)
{
	struct monitor_report rep = {0};
	struct monitor_fact *fresh = NULL;
	struct update_counts n = mark_seen(m, dev);
	size_t n_gone = m->n_facts - n.seen, most = n.seen + n.fresh, room = m->n_facts;
	size_t n_fresh, n_kept;

	rep.full = !m->has_read || now_ms - m->last_full_ms >= m->full_interval_ms;
	rep.changes = malloc(((rep.full ? most : n.changed + n.fresh) + 1) * sizeof(*rep.changes));
	rep.gone = malloc((n_gone + 1) * WGF_KEY_LEN);
	fresh = malloc((n.fresh + 1) * sizeof(*fresh));
	if (rep.changes && rep.gone && fresh && n.seen > 0 && most > m->n_facts) {
		struct monitor_fact *grown = reallocarray(m->facts, most, sizeof(*grown));

		if (grown) {
			m->facts = grown;
			room = most;
		} else {
			free(fresh);
			fresh = NULL;
		}
	}
	if (!rep.changes || !rep.gone || !fresh) {
		clear_marks(m);
		free(fresh);
		monitor_report_fini(&rep);
		return -ENOMEM;
	}

	n_fresh = sort_fresh(fresh, take_read(m, dev, fresh));
	n_kept = drop_gone(m, &rep);
	if (n_kept == 0) {
		/* Nothing kept (the first read): the new facts are the facts. */
		free(m->facts);
		m->facts = fresh;
		fresh = NULL;
		room = n.fresh + 1;
	} else {
		merge_fresh(m->facts, n_kept, fresh, n_fresh);
	}
	free(fresh);
	m->n_facts = n_kept + n_fresh;
	if (m->n_facts < room) {
		/* Peers left: give the room back (in place: the block only shrinks). */
		struct monitor_fact *less = reallocarray(m->facts, m->n_facts + 1, sizeof(*less));

		if (less)
			m->facts = less;
	}
	list_changes(m, &rep);
	for (size_t k = 0; k < dev->n_peers; k++)
		if (dev->seen[k].last_handshake_ms > 0 &&
		    wall_ms - dev->seen[k].last_handshake_ms < MONITOR_HANDSHAKE_FRESH_MS)
			rep.n_recent++;
	rep.n_peers = dev->n_peers;
	m->has_read = true;
	if (rep.full)
		m->last_full_ms = now_ms;
	*ret = rep;
	return 0;
}

void monitor_report_fini(struct monitor_report *r)
{
	free(r->changes);
	free(r->gone);
	memset(r, 0, sizeof(*r));
}
