/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* monitor: compact per-peer facts and the comparison of two reads. */
#include "monitor.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct monitor_fact) == 80, "a fact is held for every peer");

void monitor_init(struct monitor *m, uint64_t full_interval_ms)
{
	memset(m, 0, sizeof(*m));
	m->full_interval_ms = full_interval_ms;
}

void monitor_fini(struct monitor *m)
{
	free(m->facts);
	free(m->fresh);
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
	f->flags = (uint16_t)(seen->flags & (WGF_PEER_HAS_HANDSHAKE | WGF_PEER_HAS_TRANSFER));
	f->last_handshake_ms = seen->last_handshake_ms;
	if ((seen->flags & WGF_PEER_HAS_ENDPOINT) && seen->endpoint.sa.sa_family == AF_INET) {
		memcpy(f->endpoint_addr, &seen->endpoint.in.sin_addr, 4);
		f->endpoint_port = seen->endpoint.in.sin_port;
		f->flags |= WGF_PEER_HAS_ENDPOINT;
	} else if ((seen->flags & WGF_PEER_HAS_ENDPOINT) &&
	           seen->endpoint.sa.sa_family == AF_INET6) {
		memcpy(f->endpoint_addr, &seen->endpoint.in6.sin6_addr, 16);
		f->endpoint_port = seen->endpoint.in6.sin6_port;
		f->endpoint_scope_id = seen->endpoint.in6.sin6_scope_id;
		f->flags |= WGF_PEER_HAS_ENDPOINT | MONITOR_FACT_IPV6;
	}
	f->rx_bytes = seen->rx_bytes;
	f->tx_bytes = seen->tx_bytes;
}

bool monitor_fact_endpoint(const struct monitor_fact *f, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!(f->flags & WGF_PEER_HAS_ENDPOINT))
		return false;
	if (f->flags & MONITOR_FACT_IPV6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = f->endpoint_port;
		in6->sin6_scope_id = f->endpoint_scope_id;
		memcpy(&in6->sin6_addr, f->endpoint_addr, 16);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = f->endpoint_port;
		memcpy(&in->sin_addr, f->endpoint_addr, 4);
	}
	return true;
}

static bool same_endpoint(const struct monitor_fact *a, const struct monitor_fact *b)
{
	unsigned kind = WGF_PEER_HAS_ENDPOINT | MONITOR_FACT_IPV6;

	if ((a->flags ^ b->flags) & kind)
		return false;
	if (!(a->flags & WGF_PEER_HAS_ENDPOINT))
		return true;
	return a->endpoint_port == b->endpoint_port &&
	       a->endpoint_scope_id == b->endpoint_scope_id &&
	       memcmp(a->endpoint_addr, b->endpoint_addr, sizeof(a->endpoint_addr)) == 0;
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
 * While a read is taken, a fact's flags carry marks above the WGF_PEER_HAS_* bits: KEPT
 * once the read has listed its key and its values are written over it, and what changed
 * (MONITOR_CHANGED_*). What changed stays with the fact until a report lists it, so a
 * read that fails or starts over loses none of it.
 */
#define FACT_KEPT       (1U << 15)
#define FACT_WHAT_SHIFT 8
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

/* Forgets the read being taken; the facts keep what it changed (their marks are cleared). */
static void read_reset(struct monitor *m)
{
	for (size_t i = 0; m->n_kept > 0 && i < m->n_facts; i++)
		m->facts[i].flags &= (uint16_t)~FACT_KEPT;
	m->n_kept = 0;
	free(m->fresh);
	m->fresh = NULL;
	m->n_fresh = m->cap_fresh = 0;
	m->n_kept = m->n_changed = m->n_read = m->n_recent = 0;
	m->read_failed = false;
}

void monitor_begin(struct monitor *m, int64_t wall_ms)
{
	read_reset(m);
	m->read_wall_ms = wall_ms;
}

void monitor_abort(struct monitor *m)
{
	read_reset(m);
}

/* A peer without a fact: kept apart until the read ends. */
static void add_fresh(struct monitor *m, const struct monitor_fact *cur)
{
	if (m->n_fresh == m->cap_fresh) {
		size_t cap = m->cap_fresh ? 2 * m->cap_fresh : 64;
		struct monitor_fact *grown = reallocarray(m->fresh, cap, sizeof(*grown));

		if (!grown) {
			m->read_failed = true;
			return;
		}
		m->fresh = grown;
		m->cap_fresh = cap;
	}
	m->fresh[m->n_fresh] = *cur;
	m->fresh[m->n_fresh++].flags |= FACT_KEPT | MONITOR_CHANGED_NEW << FACT_WHAT_SHIFT;
}

void monitor_see(struct monitor *m, const struct wgf_peer *peer, const struct wgf_peer_seen *seen)
{
	struct monitor_fact cur;
	size_t i;

	if (!peer) {
		/* The read starts over: what it changed so far stays marked on the facts. */
		int64_t wall_ms = m->read_wall_ms;

		read_reset(m);
		m->read_wall_ms = wall_ms;
		return;
	}
	fact_of(&cur, peer, seen);
	m->n_read++;
	if (cur.last_handshake_ms > 0 &&
	    m->read_wall_ms - cur.last_handshake_ms < MONITOR_HANDSHAKE_FRESH_MS)
		m->n_recent++;
	i = find_fact(m, cur.public_key);
	if (i == SIZE_MAX) {
		add_fresh(m, &cur);
	} else if (!(m->facts[i].flags & FACT_KEPT)) {
		struct monitor_fact *f = &m->facts[i];
		unsigned what =
		        what_changed(f, &cur) | (f->flags & FACT_WHAT_MASK) >> FACT_WHAT_SHIFT;

		*f = cur;
		f->flags |= (uint16_t)(FACT_KEPT | what << FACT_WHAT_SHIFT);
		m->n_kept++;
		m->n_changed += what != 0;
	}
	/* else a key the read lists twice: the first stands. */
}

/* Sorts the new facts and drops a key listed twice; returns how many are left. */
static size_t sort_fresh(struct monitor_fact *fresh, size_t n)
{
	size_t w = 0;

	if (n > 1)
		qsort(fresh, n, sizeof(*fresh), cmp_fact);
	for (size_t i = 0; i < n; i++)
		if (w == 0 || cmp_fact(&fresh[w - 1], &fresh[i]) != 0)
			fresh[w++] = fresh[i];
	return w;
}

/* Keys of the facts the read no longer lists go to gone; the rest close up, in order. */
static void drop_gone(struct monitor *m, struct monitor_report *rep)
{
	size_t w = 0;

	for (size_t i = 0; i < m->n_facts; i++) {
		if (m->facts[i].flags & FACT_KEPT)
			m->facts[w++] = m->facts[i];
		else
			memcpy(rep->gone[rep->n_gone++], m->facts[i].public_key, WGF_KEY_LEN);
	}
	m->n_facts = w;
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

		m->facts[i].flags &= (uint16_t) ~(FACT_KEPT | FACT_WHAT_MASK);
		if (what || rep->full)
			rep->changes[rep->n_changes++] =
			        (struct monitor_change){.fact = (uint32_t)i, .what = what};
	}
}

/* Room in the facts for the new ones too, before any fact moves; -ENOMEM. */
static int make_room(struct monitor *m)
{
	struct monitor_fact *grown;

	if (m->n_fresh == 0 || m->n_kept == 0)
		return 0;
	grown = reallocarray(m->facts, m->n_facts + m->n_fresh, sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	m->facts = grown;
	return 0;
}

/* Puts the sorted new facts among the kept ones (room was made), and frees what is spare. */
static void take_fresh(struct monitor *m, size_t room)
{
	size_t n = m->n_facts + m->n_fresh;

	if (m->n_facts == 0) {
		/* Nothing kept (the first read): the new facts are the facts. */
		free(m->facts);
		m->facts = m->fresh;
		m->fresh = NULL;
		room = m->cap_fresh;
	} else {
		merge_fresh(m->facts, m->n_facts, m->fresh, m->n_fresh);
	}
	m->n_facts = n;
	if (n < room) {
		/* Peers left: give the room back (in place: the block only shrinks). */
		struct monitor_fact *less = reallocarray(m->facts, n + 1, sizeof(*less));

		if (less)
			m->facts = less;
	}
}

int monitor_end(struct monitor *m, uint64_t now_ms, struct monitor_report *ret)
{
	struct monitor_report rep = {0};
	size_t n_gone = m->n_facts - m->n_kept, room = m->n_facts, n_listed;

	m->n_fresh = sort_fresh(m->fresh, m->n_fresh);
	rep.full = !m->has_read || now_ms - m->last_full_ms >= m->full_interval_ms;
	n_listed = rep.full ? m->n_kept + m->n_fresh : m->n_changed + m->n_fresh;
	rep.changes = malloc((n_listed + 1) * sizeof(*rep.changes));
	rep.gone = malloc((n_gone + 1) * WGF_KEY_LEN);
	if (m->read_failed || !rep.changes || !rep.gone || make_room(m) < 0) {
		monitor_report_fini(&rep);
		monitor_abort(m);
		return -ENOMEM;
	}
	if (m->n_fresh > 0 && m->n_kept > 0)
		room = m->n_facts + m->n_fresh;
	drop_gone(m, &rep);
	take_fresh(m, room);
	list_changes(m, &rep);
	m->n_kept = 0; /* list_changes() cleared the marks already */
	rep.n_peers = m->n_read;
	rep.n_recent = m->n_recent;
	m->has_read = true;
	if (rep.full)
		m->last_full_ms = now_ms;
	read_reset(m);
	*ret = rep;
	return 0;
}

int monitor_update(struct monitor *m, const struct wgf_device *dev, uint64_t now_ms,
                   int64_t wall_ms, struct monitor_report *ret)
{
	monitor_begin(m, wall_ms);
	for (size_t k = 0; k < dev->n_peers; k++)
		monitor_see(m, &dev->peers[k], &dev->seen[k]);
	return monitor_end(m, now_ms, ret);
}

void monitor_report_fini(struct monitor_report *r)
{
	free(r->changes);
	free(r->gone);
	memset(r, 0, sizeof(*r));
}
