/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* monitor: compact per-peer facts and the comparison of two reads. */
#include "monitor.h"

#include <errno.h>
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

static int merge(const struct monitor *m, const struct monitor_fact *cur, size_t n_cur, bool full,
                 struct monitor_report *rep)
{
	size_t i = 0, j = 0;

	/* Worst cases: every peer listed, every old peer gone. */
	rep->changes = malloc((n_cur ? n_cur : 1) * sizeof(*rep->changes));
	rep->gone = malloc((m->n_facts ? m->n_facts : 1) * WGF_KEY_LEN);
	if (!rep->changes || !rep->gone)
		return -ENOMEM;
	while (i < m->n_facts || j < n_cur) {
		int c = i == m->n_facts ? 1 : j == n_cur ? -1 : cmp_fact(&m->facts[i], &cur[j]);
		unsigned what;

		if (c < 0) {
			memcpy(rep->gone[rep->n_gone++], m->facts[i++].public_key, WGF_KEY_LEN);
			continue;
		}
		what = c > 0 || !m->has_read ? MONITOR_CHANGED_NEW
		                             : what_changed(&m->facts[i], &cur[j]);
		if (what || full)
			rep->changes[rep->n_changes++] =
			        (struct monitor_change){.fact = j, .what = what};
		if (c == 0)
			i++;
		j++;
	}
	return 0;
}

int monitor_update(struct monitor *m, const struct wgf_device *dev, uint64_t now_ms,
                   int64_t wall_ms, struct monitor_report *ret)
{
	struct monitor_report rep = {0};
	struct monitor_fact *cur;
	size_t n = dev->n_peers;
	int r;

	cur = malloc((n ? n : 1) * sizeof(*cur));
	if (!cur)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		fact_of(&cur[k], &dev->peers[k], &dev->seen[k]);
		if (cur[k].last_handshake_ms > 0 &&
		    wall_ms - cur[k].last_handshake_ms < MONITOR_HANDSHAKE_FRESH_MS)
			rep.n_recent++;
	}
	if (n > 1)
		qsort(cur, n, sizeof(*cur), cmp_fact);
	rep.full = !m->has_read || now_ms - m->last_full_ms >= m->full_interval_ms;
	rep.n_peers = n;
	r = merge(m, cur, n, rep.full, &rep);
	if (r < 0) {
		free(cur);
		monitor_report_fini(&rep);
		return r;
	}
	free(m->facts);
	m->facts = cur;
	m->n_facts = n;
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
