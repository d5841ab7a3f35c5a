/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* sync: validate the desired peers, then merge them with the interface's by key. */
#include "sync.h"

#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cidr.h"

/* A routable network as its first and last address, for the containment check. */
struct net_range {
	const struct wgf_cidr *cidr;
	uint8_t first[16], last[16];
};

/*
 * One allowed IP in the overlap sweep, and whose it is. There is one for every desired
 * network, so it is 8 bytes: the peer's place in key order (desired, or actual for a
 * static peer), which of its networks, whether it is static and its family, and the
 * first 32 bits of its first address, which order most pairs without a look at the
 * network. The network and its bounds are looked up when needed.
 */
struct ip_entry {
	uint32_t ref;  /* idx << 5 | ipv6 << 4 | net << 1 | is_static */
	uint32_t head; /* the first address's first 32 bits */
};

#define ENTRY_IPV6 (1U << 4)
_Static_assert(AF_INET < AF_INET6, "IPv4 sorts first, as in cmp_prefix");

_Static_assert(WGF_PEER_ALLOWED_IPS_MAX <= 8, "a network's index is 3 bits of an entry");
_Static_assert(WGF_DEVICE_PEERS_MAX < (1U << 27), "a peer's index is 27 bits of an entry");

static void cidr_first(const struct wgf_cidr *c, uint64_t w[static 2]);

static struct ip_entry make_entry(const struct wgf_cidr *c, size_t idx, unsigned net,
                                  bool is_static)
{
	uint64_t first[2];

	cidr_first(c, first);
	return (struct ip_entry){.ref = (uint32_t)idx << 5 |
	                                (c->addr.family == AF_INET6 ? ENTRY_IPV6 : 0) | net << 1 |
	                                is_static,
	                         .head = (uint32_t)(first[0] >> 32)};
}

static uint32_t entry_idx(const struct ip_entry *e)
{
	return e->ref >> 5;
}

static bool entry_static(const struct ip_entry *e)
{
	return e->ref & 1;
}

/*
 * Both sets are walked in key order: through a sorted array of pointers, or, for a set
 * that comes in key order already (the desired set always does), the set itself.
 */
struct diff {
	const struct wgf_peer *desired;
	const struct wgf_peer **d; /* NULL, or desired sorted by key, then by position */
	size_t nd;
	bool *refused; /* per desired peer, in key order */
	const struct wgf_peer *actual;
	const struct wgf_peer **a; /* NULL, or actual sorted by key */
	size_t na;
	uint8_t (*statics)[WGF_KEY_LEN]; /* sorted copy */
	size_t ns;
	struct net_range *nets; /* routable, sorted, none inside another */
	size_t nn;
	struct sync_plan plan;
	size_t cap_failed;
};

static int cmp_peer_ptr(const void *x, const void *y)
{
	const struct wgf_peer *const *a = x, *const *b = y;
	int c = memcmp((*a)->public_key, (*b)->public_key, WGF_KEY_LEN);

	/* Equal keys keep their order in the input, so the first entry is the one used. */
	if (c == 0)
		c = (*a > *b) - (*a < *b);
	return c;
}

static int cmp_key(const void *x, const void *y)
{
	return memcmp(x, y, WGF_KEY_LEN);
}

static bool is_static(const struct diff *df, const uint8_t key[static WGF_KEY_LEN])
{
	return df->ns && bsearch(key, df->statics, df->ns, WGF_KEY_LEN, cmp_key);
}

/* The i-th desired and the j-th actual peer in key order. */
static const struct wgf_peer *desired_at(const struct diff *df, size_t i)
{
	return df->d ? df->d[i] : &df->desired[i];
}

static const struct wgf_peer *actual_at(const struct diff *df, size_t j)
{
	return df->a ? df->a[j] : &df->actual[j];
}

/* *ret: NULL when peers are in key order already, else pointers to them in that order. */
static int key_order(const struct wgf_peer *peers, size_t n, const struct wgf_peer ***ret)
{
	const struct wgf_peer **p;
	size_t i = 1;

	while (i < n && memcmp(peers[i - 1].public_key, peers[i].public_key, WGF_KEY_LEN) <= 0)
		i++;
	*ret = NULL;
	if (i >= n)
		return 0;
	p = malloc(n * sizeof(const struct wgf_peer *));
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		p[i] = &peers[i];
	qsort(p, n, sizeof(const struct wgf_peer *), cmp_peer_ptr);
	*ret = p;
	return 0;
}

/* Refuses d[i] (once: a later reason is dropped); other is kept for sync_failure.other. */
__attribute__((format(printf, 5, 6))) static int
refuse(struct diff *df, size_t i, int code, const struct wgf_peer *other, const char *fmt, ...)
{
	struct sync_failure *f;
	va_list ap;

	if (df->refused[i])
		return 0;
	if (df->plan.n_failed == df->cap_failed) {
		size_t cap = df->cap_failed ? 2 * df->cap_failed : 8;

		f = reallocarray(df->plan.failed, cap, sizeof(*f));
		if (!f)
			return -ENOMEM;
		df->plan.failed = f;
		df->cap_failed = cap;
	}
	f = &df->plan.failed[df->plan.n_failed++];
	f->peer = desired_at(df, i);
	f->other = other;
	f->code = code;
	va_start(ap, fmt);
	vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
	va_end(ap);
	df->refused[i] = true;
	return 0;
}

static int check_keys(struct diff *df, const struct wgf_device *actual)
{
	const uint8_t *own =
	        (actual->flags & WGF_DEVICE_HAS_PUBLIC_KEY) ? actual->public_key : NULL;
	int r = 0;

	for (size_t i = 0; i < df->nd && r == 0; i++) {
		const struct wgf_peer *p = desired_at(df, i);
		struct wgf_err err = {0};

		if (wgf_key_check(p->public_key, WGF_KEY_PUBLIC, &err) < 0)
			r = refuse(df, i, -EINVAL, NULL, "invalid public key: %s", err.msg);
		else if (i > 0 &&
		         memcmp(desired_at(df, i - 1)->public_key, p->public_key, WGF_KEY_LEN) == 0)
			r = refuse(df, i, -EEXIST, NULL,
			           "public key given twice; the first entry is used");
		else if (own && memcmp(own, p->public_key, WGF_KEY_LEN) == 0)
			r = refuse(df, i, -EINVAL, NULL, "public key is the interface's own");
		else if (is_static(df, p->public_key))
			r = refuse(df, i, -EPERM, NULL,
			           "public key is a static peer, which is left alone");
	}
	return r;
}

/* A prefix's first and last address (bytes past the family's length are zero). */
static void cidr_bounds(const struct wgf_cidr *c, uint8_t first[static 16], uint8_t last[static 16])
{
	unsigned len = wgf_addr_len(&c->addr), prefix = c->prefix;

	memset(first, 0, 16);
	memset(last, 0, 16);
	for (unsigned i = 0; i < len; i++) {
		unsigned bit = 8 * i;
		uint8_t host = prefix >= bit + 8 ? 0
		               : prefix <= bit   ? 0xff
		                                 : 0xff >> (prefix - bit);

		first[i] = c->addr.bytes[i] & (uint8_t)~host;
		last[i] = c->addr.bytes[i] | host;
	}
}

/*
 * Prefixes in address order: by family, then first address, and a containing prefix
 * before what it contains (0 when both are the same prefix).
 */
static int cmp_prefix(const struct wgf_cidr *a, const uint8_t a_first[static 16],
                      const struct wgf_cidr *b, const uint8_t b_first[static 16])
{
	int c;

	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	c = memcmp(a_first, b_first, 16);
	if (c)
		return c;
	return (a->prefix > b->prefix) - (a->prefix < b->prefix);
}

static int cmp_net(const void *x, const void *y)
{
	const struct net_range *a = x, *b = y;

	return cmp_prefix(a->cidr, a->first, b->cidr, b->first);
}

/*
 * Sorts the routable networks and drops each one inside another: what is left is
 * disjoint and in address order, so one binary search finds the only network that can
 * hold a given prefix.
 */
static int prepare_nets(struct diff *df, const struct wgf_cidr *nets, size_t n)
{
	size_t kept = 0;

	df->nets = malloc(n * sizeof(*df->nets));
	if (!df->nets)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		df->nets[k].cidr = &nets[k];
		cidr_bounds(&nets[k], df->nets[k].first, df->nets[k].last);
	}
	qsort(df->nets, n, sizeof(*df->nets), cmp_net);
	for (size_t k = 0; k < n; k++) {
		const struct net_range *prev = kept ? &df->nets[kept - 1] : NULL;

		/* Sorted so, a network that starts inside the previous one is inside it. */
		if (prev && prev->cidr->addr.family == df->nets[k].cidr->addr.family &&
		    memcmp(prev->last, df->nets[k].first, sizeof(prev->last)) >= 0)
			continue;
		df->nets[kept++] = df->nets[k];
	}
	df->nn = kept;
	return 0;
}

static bool is_routable(const struct diff *df, const struct wgf_cidr *c)
{
	uint8_t first[16], last[16];
	size_t lo = 0, hi = df->nn;
	const struct net_range *net;

	cidr_bounds(c, first, last);
	/* The last network that starts at or before c, in c's family. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct net_range *m = &df->nets[mid];
		int cmp = m->cidr->addr.family != c->addr.family
		                  ? (m->cidr->addr.family < c->addr.family ? -1 : 1)
		                  : memcmp(m->first, first, sizeof(first));

		if (cmp <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return false;
	net = &df->nets[lo - 1];
	return net->cidr->addr.family == c->addr.family && net->cidr->prefix <= c->prefix &&
	       memcmp(net->last, last, sizeof(last)) >= 0;
}

/*
 * The routable networks of one family as "10.100.0.0/24, 10.200.0.0/16", cut short
 * with "..." so that it fits in size (at least 16 bytes).
 */
static void format_nets(const struct diff *df, int family, char *out, size_t size)
{
	size_t n = 0;
	bool any = false;

	out[0] = '\0';
	for (size_t k = 0; k < df->nn; k++) {
		char c[WGF_CIDR_STRLEN];

		if (df->nets[k].cidr->addr.family != family)
			continue;
		wgf_cidr_format(df->nets[k].cidr, c);
		/* Room for this one, and for ", ..." after it. */
		if (n + (any ? 2 : 0) + strlen(c) + 5 >= size) {
			snprintf(out + n, size - n, "%s...", any ? ", " : "");
			return;
		}
		n += (size_t)snprintf(out + n, size - n, "%s%s", any ? ", " : "", c);
		any = true;
	}
	if (!any)
		snprintf(out, size, "none for IPv%c", family == AF_INET ? '4' : '6');
}

static int refuse_unroutable(struct diff *df, size_t i, const struct wgf_cidr *c)
{
	static const char head[] = "allowed IP %s is outside the networks this server may route (";
	char ip[WGF_CIDR_STRLEN], nets[SYNC_REASON_MAX];
	size_t used;

	wgf_cidr_format(c, ip);
	/* The list gets what the rest of the sentence leaves, so the reason is never cut. */
	used = strlen(head) - 2 + strlen(ip) + 1;
	format_nets(df, c->addr.family, nets, used + 16 < sizeof(nets) ? sizeof(nets) - used : 16);
	return refuse(df, i, -EADDRNOTAVAIL, NULL,
	              "allowed IP %s is outside the networks this server may route (%s)", ip, nets);
}

/* With routable networks, every allowed IP of a desired peer must lie inside one. */
static int check_routable(struct diff *df)
{
	int r = 0;

	for (size_t i = 0; i < df->nd && r == 0 && df->nn; i++) {
		const struct wgf_peer *p = desired_at(df, i);

		if (df->refused[i])
			continue;
		for (unsigned k = 0; k < p->n_allowed_ips; k++) {
			if (!is_routable(df, &p->allowed_ips[k])) {
				r = refuse_unroutable(df, i, &p->allowed_ips[k]);
				break;
			}
		}
	}
	return r;
}

static const struct wgf_peer *entry_peer(const struct diff *df, const struct ip_entry *e)
{
	return entry_static(e) ? actual_at(df, entry_idx(e)) : desired_at(df, entry_idx(e));
}

static const struct wgf_cidr *entry_cidr(const struct diff *df, const struct ip_entry *e)
{
	return &entry_peer(df, e)->allowed_ips[(e->ref >> 1) & 7];
}

/*
 * The first address of c as a 128-bit number (an IPv4 address in the top 32 bits): the
 * sort's half of cidr_bounds, cheap enough to work out at every comparison.
 */
static void cidr_first(const struct wgf_cidr *c, uint64_t w[static 2])
{
	struct wgf_cidr net;
	uint8_t b[16] = {0};

	wgf_cidr_network(c, &net);
	memcpy(b, net.addr.bytes, wgf_addr_len(&net.addr));
	memcpy(w, b, 16);
	w[0] = be64toh(w[0]);
	w[1] = be64toh(w[1]);
}

static int cmp_entry(const struct diff *df, const struct ip_entry *a, const struct ip_entry *b)
{
	const struct wgf_cidr *ca, *cb;
	uint64_t fa[2], fb[2];
	int c = 0;

	/* cmp_prefix's order: family, first address, the containing prefix first. */
	if ((a->ref ^ b->ref) & ENTRY_IPV6)
		return a->ref & ENTRY_IPV6 ? 1 : -1; /* AF_INET < AF_INET6 */
	if (a->head != b->head)
		return a->head < b->head ? -1 : 1;
	ca = entry_cidr(df, a);
	cb = entry_cidr(df, b);
	cidr_first(ca, fa);
	cidr_first(cb, fb);
	if (fa[0] != fb[0] || fa[1] != fb[1])
		c = fa[0] != fb[0] ? (fa[0] < fb[0] ? -1 : 1) : (fa[1] < fb[1] ? -1 : 1);
	else
		c = (ca->prefix > cb->prefix) - (ca->prefix < cb->prefix);

	if (c)
		return c;
	if (entry_static(a) != entry_static(b))
		return entry_static(a) ? 1 : -1;
	return (a->ref > b->ref) - (a->ref < b->ref);
}

static int refuse_overlap(struct diff *df, const struct ip_entry *mine,
                          const struct ip_entry *theirs)
{
	char c1[WGF_CIDR_STRLEN], c2[WGF_CIDR_STRLEN];

	if (entry_static(mine))
		return 0;
	wgf_cidr_format(entry_cidr(df, mine), c1);
	wgf_cidr_format(entry_cidr(df, theirs), c2);
	/* The reason reaches the tenant, and the other peer may be another tenant's. */
	return refuse(df, entry_idx(mine), -EADDRINUSE, entry_peer(df, theirs),
	              "allowed IP %s overlaps %s of %s", c1, c2,
	              entry_static(theirs) ? "a static peer" : "another peer");
}

/* outer contains inner (or equals it); both come from the sweep's stack. */
static int check_pair(struct diff *df, const struct ip_entry *outer, const struct ip_entry *inner)
{
	char c[WGF_CIDR_STRLEN];
	int r;

	if (entry_static(outer) && entry_static(inner))
		return 0;
	if (!entry_static(outer) && !entry_static(inner) && entry_idx(outer) == entry_idx(inner)) {
		/* Nested prefixes of one peer are allowed (and redundant); a repeat is not. */
		if (entry_cidr(df, outer)->prefix != entry_cidr(df, inner)->prefix)
			return 0;
		wgf_cidr_format(entry_cidr(df, inner), c);
		return refuse(df, entry_idx(inner), -EINVAL, NULL, "allowed IP %s is given twice",
		              c);
	}
	r = refuse_overlap(df, outer, inner);
	if (r == 0)
		r = refuse_overlap(df, inner, outer);
	return r;
}

static void sift_down(const struct diff *df, struct ip_entry *e, size_t root, size_t n)
{
	for (;;) {
		size_t child = 2 * root + 1;
		struct ip_entry t;

		if (child >= n)
			return;
		if (child + 1 < n && cmp_entry(df, &e[child], &e[child + 1]) < 0)
			child++;
		if (cmp_entry(df, &e[root], &e[child]) >= 0)
			return;
		t = e[root];
		e[root] = e[child];
		e[child] = t;
		root = child;
	}
}

/*
 * A heapsort, in place: glibc's qsort would take a second array as large as the entries,
 * at the moment a full pass holds the most (and it has no comparison with a context).
 */
static void sort_entries(const struct diff *df, struct ip_entry *e, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(df, e, i, n);
	for (size_t end = n; end-- > 1;) {
		struct ip_entry t = e[0];

		e[0] = e[end];
		e[end] = t;
		sift_down(df, e, 0, end);
	}
}

static int collect_entries(struct diff *df, struct ip_entry **ret, size_t *ret_n)
{
	struct ip_entry *e;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < df->nd; i++)
		if (!df->refused[i])
			cap += desired_at(df, i)->n_allowed_ips;
	for (size_t j = 0; j < df->na; j++)
		if (is_static(df, actual_at(df, j)->public_key))
			cap += actual_at(df, j)->n_allowed_ips;
	e = malloc((cap ? cap : 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < df->nd; i++) {
		if (df->refused[i])
			continue;
		for (unsigned k = 0; k < desired_at(df, i)->n_allowed_ips; k++)
			e[n++] = make_entry(&desired_at(df, i)->allowed_ips[k], i, k, false);
	}
	for (size_t j = 0; j < df->na; j++) {
		if (!is_static(df, actual_at(df, j)->public_key))
			continue;
		for (unsigned k = 0; k < actual_at(df, j)->n_allowed_ips; k++)
			e[n++] = make_entry(&actual_at(df, j)->allowed_ips[k], j, k, true);
	}
	*ret = e;
	*ret_n = n;
	return 0;
}

/*
 * Prefixes are either nested or disjoint. Sorted by first address (containers first),
 * each prefix overlaps exactly the prefixes on the stack of those still open, and the
 * top is the innermost. Checking against the top alone finds every peer involved: along
 * any chain of nested prefixes, each change of owner is a top-versus-new check.
 */
static int check_overlaps(struct diff *df)
{
	const struct ip_entry **stack = NULL;
	struct ip_entry *e = NULL;
	size_t n = 0, depth = 0, cap = 0;
	int r;

	r = collect_entries(df, &e, &n);
	if (r < 0)
		return r;
	sort_entries(df, e, n);
	for (size_t k = 0; k < n && r == 0; k++) {
		uint8_t first[16], last[16], top_first[16], top_last[16];
		const struct wgf_cidr *c = entry_cidr(df, &e[k]);

		cidr_bounds(c, first, last);
		while (depth > 0) {
			const struct wgf_cidr *top = entry_cidr(df, stack[depth - 1]);

			cidr_bounds(top, top_first, top_last);
			if (top->addr.family == c->addr.family &&
			    memcmp(top_last, first, sizeof(first)) >= 0)
				break;
			depth--;
		}
		if (depth > 0)
			r = check_pair(df, stack[depth - 1], &e[k]);
		if (depth == cap) {
			/* As deep as prefixes nest (a few, unless peers repeat a network). */
			size_t more = cap ? 2 * cap : 16;
			const struct ip_entry **grown = reallocarray(stack, more, sizeof(*stack));

			if (!grown) {
				r = -ENOMEM;
				break;
			}
			stack = grown;
			cap = more;
		}
		stack[depth++] = &e[k];
	}
	free(stack);
	free(e);
	return r;
}

/* In a counting walk (list NULL) only *n moves; the filling walk has the room it counted. */
static void push_change(struct sync_change *list, size_t *n, const struct wgf_peer *desired,
                        const struct wgf_peer *actual)
{
	if (list)
		list[*n] = (struct sync_change){.desired = desired, .actual = actual};
	(*n)++;
}

static bool needs_update(const struct wgf_peer *desired, const struct wgf_peer *actual)
{
	return (actual->flags & BACKEND_PEER_F_TRUNCATED) ||
	       !wgf_peer_config_equal(desired, actual);
}

/* One walk of both sorted sets: into the plan's lists, or (lists NULL) counting them. */
static void walk(struct diff *df)
{
	struct sync_plan *pl = &df->plan;
	size_t i = 0, j = 0;

	pl->n_add = pl->n_update = pl->n_remove = pl->n_static = pl->n_unchanged = 0;
	while (i < df->nd || j < df->na) {
		int c = i == df->nd   ? 1
		        : j == df->na ? -1
		                      : memcmp(desired_at(df, i)->public_key,
		                               actual_at(df, j)->public_key, WGF_KEY_LEN);

		if (c < 0) {
			if (!df->refused[i])
				push_change(pl->add, &pl->n_add, desired_at(df, i), NULL);
			i++;
		} else if (c > 0) {
			if (is_static(df, actual_at(df, j)->public_key))
				pl->n_static++;
			else
				push_change(pl->remove, &pl->n_remove, NULL, actual_at(df, j));
			j++;
		} else {
			/* A refused peer stays as it is, whatever the interface holds. */
			if (is_static(df, actual_at(df, j)->public_key))
				pl->n_static++;
			else if (df->refused[i])
				;
			else if (needs_update(desired_at(df, i), actual_at(df, j)))
				push_change(pl->update, &pl->n_update, desired_at(df, i),
				            actual_at(df, j));
			else
				pl->n_unchanged++;
			i++;
			j++;
		}
	}
}

/*
 * Counts the changes, then lists them in arrays of just that size: a pass that changes
 * little holds little, however large the interface.
 */
static int merge(struct diff *df)
{
	struct sync_plan *pl = &df->plan;

	walk(df);
	pl->add = malloc((pl->n_add ? pl->n_add : 1) * sizeof(*pl->add));
	pl->update = malloc((pl->n_update ? pl->n_update : 1) * sizeof(*pl->update));
	pl->remove = malloc((pl->n_remove ? pl->n_remove : 1) * sizeof(*pl->remove));
	if (!pl->add || !pl->update || !pl->remove)
		return -ENOMEM;
	walk(df);
	return 0;
}

static int cmp_failure(const void *x, const void *y)
{
	const struct sync_failure *a = x, *b = y;

	return cmp_peer_ptr(&a->peer, &b->peer);
}

int sync_diff(const struct wgf_peer *desired, size_t n_desired, const struct wgf_device *actual,
              const struct sync_rules *rules, struct sync_plan *ret)
{
	struct diff df = {.nd = n_desired, .na = actual->n_peers};
	int r = -ENOMEM;

	df.desired = desired;
	df.actual = actual->peers;
	df.refused = calloc(n_desired ? n_desired : 1, sizeof(*df.refused));
	if (!df.refused || key_order(desired, n_desired, &df.d) < 0 ||
	    key_order(actual->peers, actual->n_peers, &df.a) < 0)
		goto fail;
	if (rules && rules->n_static) {
		df.statics = malloc(rules->n_static * WGF_KEY_LEN);
		if (!df.statics)
			goto fail;
		memcpy(df.statics, rules->static_keys, rules->n_static * WGF_KEY_LEN);
		df.ns = rules->n_static;
		qsort(df.statics, df.ns, WGF_KEY_LEN, cmp_key);
	}
	if (rules && rules->n_routable && prepare_nets(&df, rules->routable, rules->n_routable) < 0)
		goto fail;
	r = check_keys(&df, actual);
	/* Before the overlaps: a refused peer's 0.0.0.0/0 must not take the others down. */
	if (r == 0)
		r = check_routable(&df);
	if (r == 0)
		r = check_overlaps(&df);
	if (r == 0)
		r = merge(&df);
	if (r < 0)
		goto fail;
	if (df.plan.n_failed > 1)
		qsort(df.plan.failed, df.plan.n_failed, sizeof(*df.plan.failed), cmp_failure);
	*ret = df.plan;
	r = 0;
	goto out;
fail:
	sync_plan_fini(&df.plan);
out:
	free(df.d);
	free(df.a);
	free(df.refused);
	free(df.statics);
	free(df.nets);
	return r;
}

void sync_format_allowed_ips(const struct wgf_peer *p, char *out, size_t size)
{
	size_t n = 0;

	snprintf(out, size, "(none)");
	for (unsigned i = 0; i < p->n_allowed_ips && n < size; i++) {
		char c[WGF_CIDR_STRLEN];

		wgf_cidr_format(&p->allowed_ips[i], c);
		n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "," : "", c);
	}
}

void sync_plan_fini(struct sync_plan *plan)
{
	free(plan->add);
	free(plan->update);
	free(plan->remove);
	free(plan->failed);
	memset(plan, 0, sizeof(*plan));
}
