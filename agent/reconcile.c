/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* reconcile: read, diff, apply the difference, and remember what was applied. */
#include "reconcile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"

struct reconciler {
	struct backend *b;          /* borrowed */
	char *cache_path;           /* owned; NULL: never written */
	struct cache_state desired; /* owned; peers sorted by key */
	bool has_desired;
	/* What was last applied: the drift baseline. It is `desired` itself when equal. */
	struct cache_state applied; /* owned unless applied_is_desired */
	bool has_applied, applied_is_desired;
	uint8_t (*refused)[WGF_KEY_LEN]; /* owned, sorted: refused when the baseline was set */
	size_t n_refused;
	uint8_t (*statics)[WGF_KEY_LEN]; /* owned */
	size_t n_statics;
	struct wgf_cidr *routable; /* owned: the configured ones; the desired set has its own */
	size_t n_routable;
	bool cache_dirty;
	/* The revision and epoch last recorded as applied (cache_mark_applied). */
	uint64_t marked_rev;
	uint8_t marked_epoch[CACHE_EPOCH_LEN];
	bool has_marked;
	bool no_remove; /* the desired set came with RECONCILE_F_NO_REMOVE */
	/* Owned, sorted: peers a no-remove pass kept; never drift until a full pass is done. */
	uint8_t (*kept)[WGF_KEY_LEN];
	size_t n_kept;
	/* Owned, sorted: peers deltas changed since the last complete pass; not drift. */
	struct unsettled *unsettled;
	size_t n_unsettled;
	/*
	 * A full pass went through since the last whole set: the interface was the desired
	 * set (less drift since), so a delta pass may write just the changed peers.
	 */
	bool settled;
	bool journal_failed; /* an append failed: only a whole write may follow */
	/* The interface as the last full pass read it, for the checks of a delta pass. */
	uint8_t iface_pk[WGF_KEY_LEN];
	bool has_iface_pk;
	struct wgf_cidr *static_ips; /* owned: allowed IPs of its static (and unknown) peers */
	size_t n_static_ips, n_static_seen, n_actual;
	const atomic_bool *cancel;        /* borrowed; may be NULL */
	bool adopt;                       /* [wireguard] adopt: keep peers that are not ours */
	uint8_t (*released)[WGF_KEY_LEN]; /* owned, sorted: removed even in adopt mode */
	size_t n_released;
	/*
	 * Every allowed IP of the desired set, sorted, for a delta pass's overlap check
	 * (OWNERS_MIN): built by a full pass that applied the set (else by the first delta
	 * pass), dropped with each whole set, and between them
	 * kept equal to the set by reconciler_apply(); NULL when not built.
	 */
	struct owner *owners;
	size_t n_owners, cap_owners;
};

/*
 * One allowed IP of a desired peer: its network (masked, zeros past the family's
 * length) and the first bytes of the peer's key, which tell whose it is (another peer
 * sharing them would take 2^64 tries to make). 26 bytes: 260 KiB at 10,000 peers.
 */
struct owner {
	uint8_t addr[16];
	uint8_t family, prefix;
	uint8_t key[8];
};

/* Below this many desired peers a delta pass scans them all: it costs less than an index. */
#define OWNERS_MIN 1024

int reconciler_new(struct backend *b, const char *cache_path, struct reconciler **ret)
{
	struct reconciler *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return -ENOMEM;
	rc->b = b;
	if (cache_path) {
		rc->cache_path = strdup(cache_path);
		if (!rc->cache_path) {
			free(rc);
			return -ENOMEM;
		}
	}
	*ret = rc;
	return 0;
}

static void drop_applied(struct reconciler *rc)
{
	if (!rc->applied_is_desired)
		cache_state_fini(&rc->applied);
	memset(&rc->applied, 0, sizeof(rc->applied));
	rc->has_applied = rc->applied_is_desired = false;
	free(rc->refused);
	rc->refused = NULL;
	rc->n_refused = 0;
}

void reconciler_free(struct reconciler *rc)
{
	if (!rc)
		return;
	drop_applied(rc);
	cache_state_fini(&rc->desired);
	free(rc->kept);
	free(rc->unsettled);
	free(rc->static_ips);
	free(rc->statics);
	free(rc->routable);
	free(rc->released);
	free(rc->owners);
	free(rc->cache_path);
	free(rc);
}

void reconciler_set_cancel(struct reconciler *rc, const atomic_bool *cancel)
{
	rc->cancel = cancel;
}

static bool cancelled(const struct reconciler *rc)
{
	return rc->cancel && atomic_load(rc->cancel);
}

static int cmp_key(const void *a, const void *b);

/* Replaces *list (n_list keys, owned) with a copy of keys, sorted when asked. -ENOMEM. */
static int replace_keys(uint8_t (**list)[WGF_KEY_LEN], size_t *n_list,
                        const uint8_t (*keys)[WGF_KEY_LEN], size_t n, bool sort)
{
	uint8_t(*copy)[WGF_KEY_LEN] = NULL;

	if (n) {
		copy = malloc(n * WGF_KEY_LEN);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, keys, n * WGF_KEY_LEN);
		if (sort)
			qsort(copy, n, WGF_KEY_LEN, cmp_key);
	}
	free(*list);
	*list = copy;
	*n_list = n;
	return 0;
}

int reconciler_set_static(struct reconciler *rc, const uint8_t (*keys)[WGF_KEY_LEN], size_t n)
{
	return replace_keys(&rc->statics, &rc->n_statics, keys, n, false);
}

void reconciler_set_adopt(struct reconciler *rc, bool adopt)
{
	rc->adopt = adopt;
}

int reconciler_set_released(struct reconciler *rc, const uint8_t (*keys)[WGF_KEY_LEN], size_t n)
{
	return replace_keys(&rc->released, &rc->n_released, keys, n, true);
}

int reconciler_set_routable(struct reconciler *rc, const struct wgf_cidr *nets, size_t n)
{
	struct wgf_cidr *copy = NULL;

	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, nets, n * sizeof(*copy));
	}
	free(rc->routable);
	rc->routable = copy;
	rc->n_routable = n;
	return 0;
}

/* A peer deltas changed; was_present: it was in the set before the first of them. */
struct unsettled {
	uint8_t key[WGF_KEY_LEN]; /* first: bsearch and qsort compare keys */
	bool was_present;
};

static int cmp_key_peer(const void *key, const void *peer)
{
	return memcmp(key, ((const struct wgf_peer *)peer)->public_key, WGF_KEY_LEN);
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, WGF_KEY_LEN);
}

/* ---- the desired set's allowed IPs, sorted (struct owner) ---- */

static void owner_of(struct owner *o, const struct wgf_cidr *c, const uint8_t *key)
{
	struct wgf_cidr net;

	wgf_cidr_network(c, &net);
	memset(o, 0, sizeof(*o));
	memcpy(o->addr, net.addr.bytes, wgf_addr_len(&net.addr));
	o->family = (uint8_t)net.addr.family;
	o->prefix = (uint8_t)net.prefix;
	memcpy(o->key, key, sizeof(o->key));
}

/* By family, address, prefix, then key: the networks inside one are next to each other. */
static int owner_cmp(const struct owner *a, const struct owner *b)
{
	int r = (int)a->family - (int)b->family;

	if (r == 0)
		r = memcmp(a->addr, b->addr, sizeof(a->addr));
	if (r == 0)
		r = (int)a->prefix - (int)b->prefix;
	return r ? r : memcmp(a->key, b->key, sizeof(a->key));
}

static int owner_qsort_cmp(const void *a, const void *b)
{
	return owner_cmp(a, b);
}

/* The first entry not below o. */
static size_t owners_lower_bound(const struct reconciler *rc, const struct owner *o)
{
	size_t lo = 0, hi = rc->n_owners;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (owner_cmp(&rc->owners[mid], o) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void owners_drop(struct reconciler *rc)
{
	free(rc->owners);
	rc->owners = NULL;
	rc->n_owners = rc->cap_owners = 0;
}

/* Builds the index of the desired set; false (and none) when out of memory. */
static bool owners_build(struct reconciler *rc)
{
	const struct cache_state *d = &rc->desired;
	size_t n = 0;

	owners_drop(rc);
	for (size_t i = 0; i < d->n_peers; i++)
		n += d->peers[i].n_allowed_ips;
	rc->owners = malloc((n + 1) * sizeof(*rc->owners));
	if (!rc->owners)
		return false;
	rc->cap_owners = n + 1;
	for (size_t i = 0; i < d->n_peers; i++)
		for (unsigned k = 0; k < d->peers[i].n_allowed_ips; k++)
			owner_of(&rc->owners[rc->n_owners++], &d->peers[i].allowed_ips[k],
			         d->peers[i].public_key);
	qsort(rc->owners, rc->n_owners, sizeof(*rc->owners), owner_qsort_cmp);
	return true;
}

/* Takes p's allowed IPs out of the index, those that are in it. */
static void owners_remove_peer(struct reconciler *rc, const struct wgf_peer *p)
{
	for (unsigned k = 0; k < p->n_allowed_ips; k++) {
		struct owner o;
		size_t at;

		owner_of(&o, &p->allowed_ips[k], p->public_key);
		at = owners_lower_bound(rc, &o);
		if (at < rc->n_owners && owner_cmp(&rc->owners[at], &o) == 0) {
			memmove(&rc->owners[at], &rc->owners[at + 1],
			        (rc->n_owners - at - 1) * sizeof(*rc->owners));
			rc->n_owners--;
		}
	}
}

/* Puts p's allowed IPs in the index; false when out of memory (the caller drops it). */
static bool owners_add_peer(struct reconciler *rc, const struct wgf_peer *p)
{
	if (rc->n_owners + p->n_allowed_ips > rc->cap_owners) {
		size_t cap = (rc->n_owners + p->n_allowed_ips) * 2;
		struct owner *v = reallocarray(rc->owners, cap, sizeof(*v));

		if (!v)
			return false;
		rc->owners = v;
		rc->cap_owners = cap;
	}
	for (unsigned k = 0; k < p->n_allowed_ips; k++) {
		struct owner o;
		size_t at;

		owner_of(&o, &p->allowed_ips[k], p->public_key);
		at = owners_lower_bound(rc, &o);
		memmove(&rc->owners[at + 1], &rc->owners[at],
		        (rc->n_owners - at) * sizeof(*rc->owners));
		rc->owners[at] = o;
		rc->n_owners++;
	}
	return true;
}

/*
 * Whether c, an allowed IP of the peer whose key is key, overlaps one of another desired
 * peer: a network inside c (they sort right after c's address) or one containing it (an
 * exact look-up for each shorter prefix).
 */
static bool owners_conflict(const struct reconciler *rc, const struct wgf_cidr *c,
                            const uint8_t *key)
{
	struct owner probe;

	owner_of(&probe, c, key);
	probe.prefix = 0;
	memset(probe.key, 0, sizeof(probe.key));
	for (size_t i = owners_lower_bound(rc, &probe); i < rc->n_owners; i++) {
		const struct owner *o = &rc->owners[i];
		struct wgf_cidr net = {.addr.family = o->family, .prefix = c->prefix};

		memcpy(net.addr.bytes, o->addr, sizeof(o->addr));
		if (o->family != probe.family || !wgf_cidr_contains(c, &net.addr))
			break;
		if (memcmp(o->key, key, sizeof(o->key)) != 0)
			return true;
	}
	for (unsigned q = 0; q < c->prefix; q++) {
		struct wgf_cidr shorter = *c;
		size_t i;

		shorter.prefix = q;
		owner_of(&probe, &shorter, key);
		memset(probe.key, 0, sizeof(probe.key));
		for (i = owners_lower_bound(rc, &probe); i < rc->n_owners; i++) {
			const struct owner *o = &rc->owners[i];

			if (o->family != probe.family || o->prefix != q ||
			    memcmp(o->addr, probe.addr, sizeof(o->addr)) != 0)
				break;
			if (memcmp(o->key, key, sizeof(o->key)) != 0)
				return true;
		}
	}
	return false;
}

int reconciler_set_desired(struct reconciler *rc, struct cache_state *st, unsigned flags)
{
	if (rc->has_desired && !(flags & RECONCILE_F_FORCE) && st->revision <= rc->desired.revision)
		return 0;
	wgf_sort(st->peers, st->n_peers, sizeof(*st->peers), wgf_peer_cmp_key);
	if (flags & RECONCILE_F_BASELINE) {
		drop_applied(rc);
		cache_state_fini(&rc->desired);
		rc->applied_is_desired = rc->has_applied = true;
	} else if (rc->applied_is_desired) {
		/* The old set stays as the baseline until the new one is applied. */
		rc->applied = rc->desired;
		rc->applied_is_desired = false;
	} else {
		cache_state_fini(&rc->desired);
	}
	rc->desired = *st;
	rc->has_desired = true;
	owners_drop(rc);
	if (rc->applied_is_desired)
		rc->applied = rc->desired;
	memset(st, 0, sizeof(*st));
	rc->cache_dirty = !(flags & RECONCILE_F_CACHED);
	rc->no_remove = flags & RECONCILE_F_NO_REMOVE;
	rc->settled = false; /* the next pass is a full one */
	if (flags & RECONCILE_F_BASELINE) {
		/* The caller checked that it was applied (cache_is_applied). */
		rc->marked_rev = rc->desired.revision;
		memcpy(rc->marked_epoch, rc->desired.epoch, CACHE_EPOCH_LEN);
		rc->has_marked = true;
	}
	return 1;
}

/*
 * Adds the keys r changes to the unsettled ones (sorted, each once), each with whether
 * the set had it before: call before r is applied. -ENOMEM.
 */
static int add_unsettled(struct reconciler *rc, const struct wgf_sync_reply *r)
{
	const struct cache_state *d = &rc->desired;
	size_t n = rc->n_unsettled, k = 0;
	struct unsettled *u = reallocarray(rc->unsettled, n + r->n_changes + 1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	rc->unsettled = u;
	for (size_t i = 0; i < r->n_changes; i++) {
		const uint8_t *key = r->changes[i].peer.public_key;

		if (bsearch(key, u, rc->n_unsettled, sizeof(*u), cmp_key))
			continue;
		memcpy(u[n].key, key, WGF_KEY_LEN);
		u[n++].was_present =
		        bsearch(key, d->peers, d->n_peers, sizeof(*d->peers), cmp_key_peer);
	}
	qsort(u, n, sizeof(*u), cmp_key);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || memcmp(u[k - 1].key, u[i].key, WGF_KEY_LEN) != 0)
			u[k++] = u[i];
	rc->n_unsettled = k;
	return 0;
}

static void clear_unsettled(struct reconciler *rc)
{
	free(rc->unsettled);
	rc->unsettled = NULL;
	rc->n_unsettled = 0;
}

static bool same_routable(const struct cache_state *d, const struct wgf_sync_reply *r)
{
	return d->n_routable == r->n_routable &&
	       (r->n_routable == 0 ||
	        memcmp(d->routable, r->routable, r->n_routable * sizeof(*r->routable)) == 0);
}

/*
 * Keeps the index equal to the set across r: before r is applied, the changed peers'
 * allowed IPs out (add false); after, the new ones in (out and in again, so that a key r
 * names twice is in it once).
 */
static void owners_track(struct reconciler *rc, const struct wgf_sync_reply *r, bool add)
{
	const struct cache_state *d = &rc->desired;

	for (size_t i = 0; rc->owners && i < r->n_changes; i++) {
		const struct wgf_peer *p = bsearch(r->changes[i].peer.public_key, d->peers,
		                                   d->n_peers, sizeof(*d->peers), cmp_key_peer);

		if (p)
			owners_remove_peer(rc, p);
		if (p && add && !owners_add_peer(rc, p))
			owners_drop(rc);
	}
}

int reconciler_apply(struct reconciler *rc, const struct wgf_sync_reply *r)
{
	struct cache_state *d = &rc->desired;
	int err;

	if (!rc->has_desired)
		return -ENODATA;
	if (!cache_state_follows(d, r))
		return -ESTALE;
	if (r->n_changes == 0 && r->revision == d->revision && same_routable(d, r))
		return 0;
	/* The keys first: if the set then cannot change, they only cost a drift check. */
	err = add_unsettled(rc, r);
	if (err < 0)
		return err;
	owners_track(rc, r, false);
	err = cache_state_apply(d, r);
	if (err < 0) {
		owners_drop(rc);
		return err;
	}
	owners_track(rc, r, true);
	if (rc->applied_is_desired)
		rc->applied = *d;
	rc->cache_dirty = true;
	return 1;
}

bool reconciler_has_desired(const struct reconciler *rc)
{
	return rc->has_desired;
}

uint64_t reconciler_revision(const struct reconciler *rc)
{
	return rc->desired.revision;
}

/* The baseline's version of a peer, or NULL if we never applied it. */
static const struct wgf_peer *baseline_find(const struct reconciler *rc,
                                            const uint8_t key[static WGF_KEY_LEN])
{
	const struct cache_state *base = rc->applied_is_desired ? &rc->desired : &rc->applied;

	if (!rc->has_applied)
		return NULL;
	if (rc->n_refused && bsearch(key, rc->refused, rc->n_refused, WGF_KEY_LEN, cmp_key))
		return NULL;
	return bsearch(key, base->peers, base->n_peers, sizeof(*base->peers), cmp_key_peer);
}

static int push_drift(struct reconcile_result *res, size_t *cap,
                      const uint8_t key[static WGF_KEY_LEN], enum reconcile_drift_kind kind)
{
	if (res->n_drift == *cap) {
		size_t n = *cap ? 2 * *cap : 16;
		struct reconcile_drift *d = reallocarray(res->drift, n, sizeof(*d));

		if (!d)
			return -ENOMEM;
		res->drift = d;
		*cap = n;
	}
	memcpy(res->drift[res->n_drift].public_key, key, WGF_KEY_LEN);
	res->drift[res->n_drift++].kind = kind;
	return 0;
}

/* Kept by a no-remove pass, or changed by deltas not yet applied: not drift either way. */
static bool is_kept(const struct reconciler *rc, const uint8_t key[static WGF_KEY_LEN])
{
	return (rc->n_kept && bsearch(key, rc->kept, rc->n_kept, WGF_KEY_LEN, cmp_key)) ||
	       (rc->n_unsettled &&
	        bsearch(key, rc->unsettled, rc->n_unsettled, sizeof(*rc->unsettled), cmp_key));
}

/* A peer the agent may remove in adopt mode: applied by it, or changed by deltas since. */
static bool is_ours(const struct reconciler *rc, const uint8_t key[static WGF_KEY_LEN])
{
	return baseline_find(rc, key) ||
	       (rc->n_unsettled &&
	        bsearch(key, rc->unsettled, rc->n_unsettled, sizeof(*rc->unsettled), cmp_key));
}

static bool is_released(const struct reconciler *rc, const uint8_t key[static WGF_KEY_LEN])
{
	return rc->n_released && bsearch(key, rc->released, rc->n_released, WGF_KEY_LEN, cmp_key);
}

/*
 * Classifies the peers the plan changes against what we last applied. Peers a no-remove
 * pass kept are not: the interface may have had them from a set newer than the cache.
 */
static int find_drift(const struct reconciler *rc, const struct sync_plan *pl,
                      struct reconcile_result *res)
{
	size_t cap = 0;
	int r = 0;

	if (!rc->has_applied)
		return 0;
	for (size_t i = 0; i < pl->n_add && r == 0; i++) {
		const uint8_t *key = pl->add[i].desired->public_key;

		if (baseline_find(rc, key) && !is_kept(rc, key))
			r = push_drift(res, &cap, key, RECONCILE_DRIFT_REMOVED);
	}
	for (size_t i = 0; i < pl->n_update && r == 0; i++) {
		const struct wgf_peer *actual = pl->update[i].actual;
		const struct wgf_peer *base = baseline_find(rc, actual->public_key);

		if (is_kept(rc, actual->public_key))
			continue;
		if (!base)
			r = push_drift(res, &cap, actual->public_key, RECONCILE_DRIFT_ADDED);
		else if ((actual->flags & BACKEND_PEER_F_TRUNCATED) ||
		         !wgf_peer_config_equal(base, actual))
			r = push_drift(res, &cap, actual->public_key, RECONCILE_DRIFT_CHANGED);
	}
	for (size_t i = 0; i < pl->n_remove && r == 0; i++) {
		const uint8_t *key = pl->remove[i].actual->public_key;

		if (!baseline_find(rc, key) && !is_kept(rc, key) && !is_released(rc, key))
			r = push_drift(res, &cap, key, RECONCILE_DRIFT_ADDED);
	}
	return r;
}

static int copy_failures(const struct sync_plan *pl, struct reconcile_result *res)
{
	if (pl->n_failed == 0)
		return 0;
	res->failed = calloc(pl->n_failed, sizeof(*res->failed));
	if (!res->failed)
		return -ENOMEM;
	for (size_t i = 0; i < pl->n_failed; i++) {
		memcpy(res->failed[i].public_key, pl->failed[i].peer->public_key, WGF_KEY_LEN);
		res->failed[i].code = pl->failed[i].code;
		memcpy(res->failed[i].reason, pl->failed[i].reason, sizeof(res->failed[i].reason));
		if (pl->failed[i].other) {
			memcpy(res->failed[i].other_key, pl->failed[i].other->public_key,
			       WGF_KEY_LEN);
			res->failed[i].has_other = true;
		}
	}
	res->n_failed = pl->n_failed;
	return 0;
}

/*
 * Sends one list of changes through the backend in chunks. Only the chunk is copied,
 * so applying 10,000 peers never holds a third copy of them. A cancel request stops
 * it between chunks.
 */
static int send_changes(const struct reconciler *rc, const struct sync_change *list, size_t n,
                        bool remove)
{
	size_t chunk = n < RECONCILE_CHUNK ? n : RECONCILE_CHUNK;
	struct backend *b = rc->b;
	struct wgf_peer *buf;
	int r = 0;

	if (n == 0)
		return 0;
	buf = malloc(chunk * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	for (size_t done = 0; done < n && r == 0; done += chunk) {
		size_t k = n - done < chunk ? n - done : chunk;

		if (cancelled(rc)) {
			r = -ECANCELED;
			break;
		}
		for (size_t i = 0; i < k; i++)
			buf[i] = remove ? *list[done + i].actual : *list[done + i].desired;
		r = remove ? b->ops->remove_peers(b, buf, k) : b->ops->set_peers(b, buf, k);
	}
	free(buf);
	return r;
}

static void report_changes(const struct sync_plan *pl, reconcile_change_fn cb, void *userdata)
{
	if (!cb)
		return;
	for (size_t i = 0; i < pl->n_remove; i++)
		cb(userdata, '-', NULL, pl->remove[i].actual);
	for (size_t i = 0; i < pl->n_add; i++)
		cb(userdata, '+', pl->add[i].desired, NULL);
	for (size_t i = 0; i < pl->n_update; i++)
		cb(userdata, '~', pl->update[i].desired, pl->update[i].actual);
}

/*
 * A no-remove pass: the peers the first diff would remove stay, and count as static
 * peers for a second diff, so that no addition or update takes an allowed IP from one of
 * them (WireGuard moves an allowed IP to the peer set last, and a kept peer may be newer
 * than the set). A desired peer refused for that alone is held back, not refused, until
 * a full pass. Kept and held keys are remembered (sorted, for is_kept): neither is drift.
 */
static int plan_keeping(struct reconciler *rc, const struct cache_state *d,
                        const struct wgf_device *actual, struct sync_rules *rules,
                        struct sync_plan *pl, size_t *ret_kept, size_t *ret_held)
{
	size_t n_kept = pl->n_remove, n_held = 0, k = 0;
	uint8_t(*keys)[WGF_KEY_LEN] = malloc((rc->n_statics + n_kept) * WGF_KEY_LEN);
	uint8_t(*kept)[WGF_KEY_LEN] = NULL;
	struct sync_plan again;
	int r = -ENOMEM;

	if (!keys)
		goto out;
	if (rc->n_statics)
		memcpy(keys, rc->statics, rc->n_statics * WGF_KEY_LEN);
	for (size_t i = 0; i < n_kept; i++)
		memcpy(keys[rc->n_statics + i], pl->remove[i].actual->public_key, WGF_KEY_LEN);
	rules->static_keys = (const uint8_t(*)[WGF_KEY_LEN])keys;
	rules->n_static = rc->n_statics + n_kept;
	r = sync_diff(d->peers, d->n_peers, actual, rules, &again);
	if (r < 0)
		goto out;
	sync_plan_fini(pl);
	*pl = again;
	pl->n_static -= n_kept;
	/* Room for the kept keys and for every refused peer, which may all be held. */
	kept = malloc((n_kept + pl->n_failed) * WGF_KEY_LEN);
	if (!kept) {
		r = -ENOMEM;
		sync_plan_fini(pl);
		goto out;
	}
	memcpy(kept, keys + rc->n_statics, n_kept * WGF_KEY_LEN);
	qsort(kept, n_kept, WGF_KEY_LEN, cmp_key);
	for (size_t i = 0; i < pl->n_failed; i++) {
		const struct sync_failure *f = &pl->failed[i];

		if (f->code == -EADDRINUSE && f->other &&
		    bsearch(f->other->public_key, kept, n_kept, WGF_KEY_LEN, cmp_key))
			memcpy(kept[n_kept + n_held++], f->peer->public_key, WGF_KEY_LEN);
		else
			pl->failed[k++] = *f;
	}
	pl->n_failed = k;
	qsort(kept, n_kept + n_held, WGF_KEY_LEN, cmp_key);
	free(rc->kept);
	rc->kept = kept;
	rc->n_kept = n_kept + n_held;
	kept = NULL;
	*ret_kept = n_kept;
	*ret_held = n_held;
out:
	free(keys);
	free(kept);
	return r;
}

/* p is a peer of dev, the read it came from; without dev->seen, no handshake or endpoint. */
static void copy_unknown(struct wgf_unknown_peer *u, const struct wgf_device *dev,
                         const struct wgf_peer *p)
{
	static const struct wgf_peer_seen none;
	const struct wgf_peer_seen *seen = dev->seen ? &dev->seen[p - dev->peers] : &none;

	memset(u, 0, sizeof(*u));
	memcpy(u->public_key, p->public_key, WGF_KEY_LEN);
	u->n_allowed_ips = p->n_allowed_ips < WGF_PEER_ALLOWED_IPS_MAX ? p->n_allowed_ips
	                                                               : WGF_PEER_ALLOWED_IPS_MAX;
	if (u->n_allowed_ips)
		memcpy(u->allowed_ips, p->allowed_ips, u->n_allowed_ips * sizeof(*u->allowed_ips));
	if (seen->flags & WGF_PEER_HAS_HANDSHAKE)
		u->last_handshake_ms = seen->last_handshake_ms;
	if (seen->flags & WGF_PEER_HAS_ENDPOINT)
		wgf_sockaddr_format(&seen->endpoint.sa, u->endpoint, sizeof(u->endpoint));
}

/* A desired peer refused because it would take an allowed IP of an unknown one. */
static void say_unknown_overlap(struct sync_failure *f)
{
	char ips[SYNC_IPS_STRLEN];

	sync_format_allowed_ips(f->peer, ips, sizeof(ips));
	snprintf(f->reason, sizeof(f->reason),
	         "allowed IPs %.60s overlap an unmanaged peer's (adopt mode)", ips);
}

/*
 * An adopting pass: of the peers the diff would remove, those neither ours nor released
 * are unknown. They stay, are listed in res (when given), and count as static peers for a
 * second diff, so that no addition or update takes an allowed IP from one of them.
 */
static int plan_adopting(struct reconciler *rc, const struct cache_state *d,
                         const struct wgf_device *actual, struct sync_rules *rules,
                         struct sync_plan *pl, struct reconcile_result *res)
{
	size_t n = 0,
	       listed = pl->n_remove < RECONCILE_UNKNOWN_MAX ? pl->n_remove : RECONCILE_UNKNOWN_MAX;
	uint8_t(*keys)[WGF_KEY_LEN] = malloc((rc->n_statics + pl->n_remove + 1) * WGF_KEY_LEN);
	struct wgf_unknown_peer *list = res ? calloc(listed + 1, sizeof(*list)) : NULL;
	uint8_t(*unknown)[WGF_KEY_LEN] = keys + rc->n_statics;
	struct sync_plan again;
	int r = -ENOMEM;

	if (!keys || (res && !list))
		goto out;
	if (rc->n_statics)
		memcpy(keys, rc->statics, rc->n_statics * WGF_KEY_LEN);
	/* The removals come sorted by key, so the unknown keys and the list are too. */
	for (size_t i = 0; i < pl->n_remove; i++) {
		const struct wgf_peer *p = pl->remove[i].actual;

		if (is_ours(rc, p->public_key) || is_released(rc, p->public_key))
			continue;
		if (list && n < listed)
			copy_unknown(&list[n], actual, p);
		memcpy(unknown[n++], p->public_key, WGF_KEY_LEN);
	}
	r = 0;
	if (n > 0) {
		rules->static_keys = (const uint8_t(*)[WGF_KEY_LEN])keys;
		rules->n_static = rc->n_statics + n;
		r = sync_diff(d->peers, d->n_peers, actual, rules, &again);
		if (r < 0)
			goto out;
		sync_plan_fini(pl);
		*pl = again;
		pl->n_static -= n;
		for (size_t i = 0; i < pl->n_failed; i++)
			if (pl->failed[i].code == -EADDRINUSE && pl->failed[i].other &&
			    bsearch(pl->failed[i].other->public_key, unknown, n, WGF_KEY_LEN,
			            cmp_key))
				say_unknown_overlap(&pl->failed[i]);
	}
	if (res) {
		res->unknown = list;
		res->n_unknown = n < listed ? n : listed;
		res->n_unknown_total = n;
		res->has_unknown = true;
		list = NULL;
	}
out:
	free(keys);
	free(list);
	return r;
}

/*
 * The routable networks are the desired set's and the configured ones, joined. With
 * RECONCILE_F_NO_REMOVE, nothing is removed (plan_keeping); *ret_kept and *ret_held
 * say how many peers were kept and held back. In adopt mode only our own peers are
 * removed (plan_adopting), and res (may be NULL) gets the unknown ones.
 */
static int plan(struct reconciler *rc, const struct wgf_device *actual, struct sync_plan *ret,
                size_t *ret_kept, size_t *ret_held, struct reconcile_result *res)
{
	const struct cache_state *d = &rc->desired;
	struct sync_rules rules = {.static_keys = rc->statics, .n_static = rc->n_statics};
	struct wgf_cidr *joined = NULL;
	int r;

	*ret_kept = *ret_held = 0;
	if (d->n_routable && rc->n_routable) {
		joined = malloc((d->n_routable + rc->n_routable) * sizeof(*joined));
		if (!joined)
			return -ENOMEM;
		memcpy(joined, d->routable, d->n_routable * sizeof(*joined));
		memcpy(joined + d->n_routable, rc->routable, rc->n_routable * sizeof(*joined));
		rules.routable = joined;
	} else {
		rules.routable = d->n_routable ? d->routable : rc->routable;
	}
	rules.n_routable = d->n_routable + rc->n_routable;
	r = sync_diff(d->peers, d->n_peers, actual, &rules, ret);
	if (r == 0 && rc->no_remove && ret->n_remove > 0)
		r = plan_keeping(rc, d, actual, &rules, ret, ret_kept, ret_held);
	else if (r == 0 && rc->adopt && !rc->no_remove)
		r = plan_adopting(rc, d, actual, &rules, ret, res);
	free(joined);
	return r;
}

/* The pass went through: what we applied is the new baseline. */
static int set_baseline(struct reconciler *rc, const struct reconcile_result *res)
{
	uint8_t(*refused)[WGF_KEY_LEN] = NULL;

	if (res->n_failed) {
		refused = malloc(res->n_failed * WGF_KEY_LEN);
		if (!refused)
			return -ENOMEM;
		for (size_t i = 0; i < res->n_failed; i++)
			memcpy(refused[i], res->failed[i].public_key, WGF_KEY_LEN);
		qsort(refused, res->n_failed, WGF_KEY_LEN, cmp_key);
	}
	drop_applied(rc);
	rc->applied = rc->desired;
	rc->has_applied = rc->applied_is_desired = true;
	rc->refused = refused;
	rc->n_refused = res->n_failed;
	clear_unsettled(rc);
	rc->settled = !res->n_kept && !res->n_held;
	return 0;
}

/*
 * After a complete pass: the cache on disk is what the interface holds (a pass that kept
 * peers does not count), so it can be the next start's baseline. A marker that cannot
 * be written costs only that: a restart then counts no drift on its first pass.
 */
static void mark_applied(struct reconciler *rc, struct reconcile_result *res)
{
	const struct cache_state *d = &rc->desired;

	if (!rc->no_remove) {
		free(rc->kept);
		rc->kept = NULL;
		rc->n_kept = 0;
	}
	if (!rc->cache_path || rc->cache_dirty || res->n_kept || res->n_held ||
	    (rc->has_marked && rc->marked_rev == d->revision &&
	     memcmp(rc->marked_epoch, d->epoch, CACHE_EPOCH_LEN) == 0))
		return;
	if (cache_mark_applied(rc->cache_path, d, &res->cache) < 0)
		return;
	rc->marked_rev = d->revision;
	memcpy(rc->marked_epoch, d->epoch, CACHE_EPOCH_LEN);
	rc->has_marked = true;
}

/*
 * A pass's own read. What was seen of the peers describes unknown peers, which only
 * adopt mode keeps: without it, none of that is held (dev->seen stays NULL).
 */
static int read_device(struct reconciler *rc, struct wgf_device *dev)
{
	memset(dev, 0, sizeof(*dev));
	if (!rc->adopt)
		dev->see = wgf_device_see_nothing;
	return rc->b->ops->get_device(rc->b, dev);
}

/* Re-reads the interface after a failed apply: how many changes are still needed. */
static int verify(struct reconciler *rc, struct reconcile_result *res)
{
	struct wgf_device dev;
	struct sync_plan pl;
	size_t kept, held;
	int r;

	r = read_device(rc, &dev);
	if (r < 0)
		return r;
	r = plan(rc, &dev, &pl, &kept, &held, NULL);
	if (r == 0) {
		res->n_pending = pl.n_add + pl.n_update + pl.n_remove;
		sync_plan_fini(&pl);
	}
	wgf_device_fini(&dev);
	return r;
}

static bool is_static(const struct reconciler *rc, const uint8_t key[static WGF_KEY_LEN])
{
	for (size_t i = 0; i < rc->n_statics; i++)
		if (memcmp(rc->statics[i], key, WGF_KEY_LEN) == 0)
			return true;
	return false;
}

/* A peer adopt mode keeps: on the interface, not desired, static, ours or released. */
static bool is_unknown(const struct reconciler *rc, const struct wgf_peer *p)
{
	const struct cache_state *d = &rc->desired;

	return rc->adopt && !rc->no_remove && !is_ours(rc, p->public_key) &&
	       !is_released(rc, p->public_key) &&
	       !bsearch(p->public_key, d->peers, d->n_peers, sizeof(*d->peers), cmp_key_peer);
}

/*
 * What a delta pass checks against, from a full read: own key, the allowed IPs of static
 * peers and of unknown ones (adopt mode), which no changed peer may take.
 */
static int remember_interface(struct reconciler *rc, const struct wgf_device *dev)
{
	size_t n = 0, k = 0, n_static = 0;
	struct wgf_cidr *ips;

	for (size_t i = 0; i < dev->n_peers; i++)
		if (is_static(rc, dev->peers[i].public_key) || is_unknown(rc, &dev->peers[i]))
			n += dev->peers[i].n_allowed_ips;
	ips = malloc((n + 1) * sizeof(*ips));
	if (!ips)
		return -ENOMEM;
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgf_peer *p = &dev->peers[i];

		if (is_static(rc, p->public_key))
			n_static++;
		else if (!is_unknown(rc, p))
			continue;
		memcpy(ips + k, p->allowed_ips, p->n_allowed_ips * sizeof(*ips));
		k += p->n_allowed_ips;
	}
	free(rc->static_ips);
	rc->static_ips = ips;
	rc->n_static_ips = n;
	rc->n_static_seen = n_static;
	rc->n_actual = dev->n_peers;
	rc->has_iface_pk = dev->flags & WGF_DEVICE_HAS_PUBLIC_KEY;
	memcpy(rc->iface_pk, dev->public_key, WGF_KEY_LEN);
	return 0;
}

static bool is_routable(const struct reconciler *rc, const struct wgf_cidr *c)
{
	const struct cache_state *d = &rc->desired;

	if (d->n_routable + rc->n_routable == 0)
		return true;
	for (size_t i = 0; i < d->n_routable + rc->n_routable; i++) {
		const struct wgf_cidr *net =
		        i < d->n_routable ? &d->routable[i] : &rc->routable[i - d->n_routable];

		if (net->addr.family == c->addr.family && net->prefix <= c->prefix &&
		    wgf_cidr_contains(net, &c->addr))
			return true;
	}
	return false;
}

static bool overlaps_any(const struct wgf_cidr *c, const struct wgf_cidr *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (wgf_cidr_overlaps(c, &list[i]))
			return true;
	return false;
}

/*
 * Whether a changed peer passes every check of the diff (sync.h) by itself. One that
 * does not is left to a full pass, which refuses it properly. An overlap with another
 * desired peer is found in the index of the set's allowed IPs, or in a small set by a
 * scan of them all (at 50,000 peers the scan took about 4 ms a delta).
 */
static bool peer_is_clean(const struct reconciler *rc, const struct wgf_peer *p)
{
	const struct cache_state *d = &rc->desired;

	if (wgf_key_check(p->public_key, WGF_KEY_PUBLIC, NULL) < 0 ||
	    is_static(rc, p->public_key) ||
	    (rc->has_iface_pk && memcmp(p->public_key, rc->iface_pk, WGF_KEY_LEN) == 0))
		return false;
	for (unsigned i = 0; i < p->n_allowed_ips; i++) {
		const struct wgf_cidr *c = &p->allowed_ips[i];

		if (overlaps_any(c, p->allowed_ips, i) || !is_routable(rc, c) ||
		    overlaps_any(c, rc->static_ips, rc->n_static_ips))
			return false;
		if (rc->owners) {
			if (owners_conflict(rc, c, p->public_key))
				return false;
			continue;
		}
		for (size_t j = 0; j < d->n_peers; j++)
			if (&d->peers[j] != p &&
			    overlaps_any(c, d->peers[j].allowed_ips, d->peers[j].n_allowed_ips))
				return false;
	}
	return true;
}

/* Sends peers (removals: only their keys count) through the backend in chunks. */
static int send_peers(const struct reconciler *rc, const struct wgf_peer *peers, size_t n,
                      bool remove)
{
	struct backend *b = rc->b;
	int r = 0;

	for (size_t done = 0; done < n && r == 0; done += RECONCILE_CHUNK) {
		size_t k = n - done < RECONCILE_CHUNK ? n - done : RECONCILE_CHUNK;

		if (cancelled(rc))
			return -ECANCELED;
		r = remove ? b->ops->remove_peers(b, peers + done, k)
		           : b->ops->set_peers(b, peers + done, k);
	}
	return r;
}

/* The journal is compacted into the cache once it is about half the cache's size. */
static bool journal_is_long(const struct reconciler *rc, size_t size)
{
	return size > ((size_t)64 << 10) + 60 * rc->desired.n_peers;
}

/*
 * The changed peers, split into the ones to set and the keys to remove; each is told to
 * cb. -EAGAIN when one of them is not clean (a full pass decides).
 */
static int split_changes(struct reconciler *rc, struct wgf_peer *set, size_t *n_set,
                         struct wgf_peer *gone, size_t *n_gone, reconcile_change_fn cb,
                         void *userdata, struct reconcile_result *res)
{
	const struct cache_state *d = &rc->desired;

	for (size_t i = 0; i < rc->n_unsettled; i++) {
		const struct unsettled *u = &rc->unsettled[i];
		const struct wgf_peer *p =
		        bsearch(u->key, d->peers, d->n_peers, sizeof(*p), cmp_key_peer);

		if (p && !peer_is_clean(rc, p))
			return -EAGAIN;
		if (p) {
			set[*n_set] = *p;
			*(u->was_present ? &res->n_updated : &res->n_added) += 1;
			if (cb)
				cb(userdata, u->was_present ? '~' : '+', &set[*n_set], NULL);
			++*n_set;
		} else if (u->was_present) {
			memset(&gone[*n_gone], 0, sizeof(*gone));
			memcpy(gone[*n_gone].public_key, u->key, WGF_KEY_LEN);
			res->n_removed++;
			if (cb)
				cb(userdata, '-', NULL, &gone[*n_gone]);
			++*n_gone;
		}
	}
	return 0;
}

/* Records the batch in the journal (or the whole set when the journal is long). */
static void journal_batch(struct reconciler *rc, struct reconcile_result *res)
{
	uint8_t(*keys)[WGF_KEY_LEN];
	size_t size = 0;

	if (!rc->cache_path)
		return;
	keys = malloc((rc->n_unsettled + 1) * WGF_KEY_LEN);
	if (!keys) {
		wgf_err_set(&res->cache, -ENOMEM, "out of memory");
		rc->journal_failed = true;
		return;
	}
	for (size_t i = 0; i < rc->n_unsettled; i++)
		memcpy(keys[i], rc->unsettled[i].key, WGF_KEY_LEN);
	if (cache_journal_append(rc->cache_path, &rc->desired, (const uint8_t(*)[WGF_KEY_LEN])keys,
	                         rc->n_unsettled, &size, &res->cache) < 0)
		rc->journal_failed = true;
	else
		rc->cache_dirty = false;
	free(keys);
	if (!rc->journal_failed && journal_is_long(rc, size) &&
	    cache_save_desired(rc->cache_path, &rc->desired, &res->cache) < 0)
		rc->journal_failed = true;
}

int reconciler_run_changes(struct reconciler *rc, reconcile_change_fn cb, void *userdata,
                           struct reconcile_result *ret, struct wgf_err *err)
{
	const struct cache_state *d = &rc->desired;
	struct reconcile_result res = {0};
	struct wgf_peer *set, *gone;
	size_t n_set = 0, n_gone = 0;
	int r;

	if (!rc->has_desired)
		return wgf_err_set(err, -ENODATA, "no desired state yet");
	if (!rc->settled || rc->n_unsettled == 0 || rc->n_refused || rc->no_remove || rc->n_kept ||
	    rc->journal_failed)
		return -EAGAIN;
	if (!rc->owners && d->n_peers >= OWNERS_MIN)
		(void)owners_build(rc); /* without it, the scan */
	set = malloc(rc->n_unsettled * sizeof(*set));
	gone = malloc(rc->n_unsettled * sizeof(*gone));
	r = set && gone ? split_changes(rc, set, &n_set, gone, &n_gone, cb, userdata, &res)
	                : wgf_err_set(err, -ENOMEM, "out of memory");
	if (r < 0)
		goto out;
	res.revision = d->revision;
	memcpy(res.epoch, d->epoch, CACHE_EPOCH_LEN);
	res.n_desired = d->n_peers;
	res.n_static = rc->n_static_seen;
	res.has_public_key = rc->has_iface_pk;
	res.n_unchanged = d->n_peers - res.n_added - res.n_updated;
	/* Durable before the interface changes, as a whole write is (cache.h, THE JOURNAL). */
	journal_batch(rc, &res);
	/* Removals first, so that an allowed IP moving between peers ends where it belongs. */
	res.apply_error = send_peers(rc, gone, n_gone, true);
	if (res.apply_error == 0)
		res.apply_error = send_peers(rc, set, n_set, false);
	rc->n_actual = rc->n_actual + res.n_added - res.n_removed;
	res.n_actual = rc->n_actual;
	if (res.apply_error < 0) {
		/* Some may have gone through: a full pass reads the truth. */
		res.n_pending = n_set + n_gone;
		rc->settled = false;
	} else {
		clear_unsettled(rc);
	}
	*ret = res;
out:
	free(set);
	free(gone);
	return r;
}

/* Drops from one list of the plan the changes to peers in skip (sorted); returns how many. */
static size_t skip_changes(struct sync_change *list, size_t *n, bool by_actual,
                           const uint8_t (*skip)[WGF_KEY_LEN], size_t n_skip)
{
	size_t k = 0, before = *n;

	for (size_t i = 0; i < before; i++) {
		const struct wgf_peer *p = by_actual ? list[i].actual : list[i].desired;

		if (!bsearch(p->public_key, skip, n_skip, WGF_KEY_LEN, cmp_key))
			list[k++] = list[i];
	}
	*n = k;
	return before - k;
}

/*
 * The peers deltas wrote after the read began: the read may show them before or after
 * the write, so the diff says nothing true of them. They are neither written again nor
 * drift; the next full pass verifies them.
 */
static void skip_plan(struct sync_plan *pl, const uint8_t (*skip)[WGF_KEY_LEN], size_t n_skip)
{
	if (n_skip == 0)
		return;
	pl->n_unchanged += skip_changes(pl->add, &pl->n_add, false, skip, n_skip);
	pl->n_unchanged += skip_changes(pl->update, &pl->n_update, false, skip, n_skip);
	(void)skip_changes(pl->remove, &pl->n_remove, true, skip, n_skip);
}

/* A full pass on dev (consumed), read by the caller; see reconciler_run_read(). */
static int run_on(struct reconciler *rc, struct wgf_device *devp,
                  const uint8_t (*skip)[WGF_KEY_LEN], size_t n_skip, bool dry_run,
                  reconcile_change_fn cb, void *userdata, struct reconcile_result *ret,
                  struct wgf_err *err)
{
	struct reconcile_result res = {0};
	struct wgf_device dev = *devp;
	struct sync_plan pl = {0};
	bool changed;
	int r;

	memset(devp, 0, sizeof(*devp));
	r = remember_interface(rc, &dev);
	if (r == 0)
		r = plan(rc, &dev, &pl, &res.n_kept, &res.n_held, &res);
	if (r == 0)
		skip_plan(&pl, skip, n_skip);
	if (r == 0)
		r = copy_failures(&pl, &res);
	if (r == 0)
		r = find_drift(rc, &pl, &res);
	if (r < 0) {
		wgf_err_set(err, r, "out of memory");
		goto fail;
	}
	res.revision = rc->desired.revision;
	memcpy(res.epoch, rc->desired.epoch, CACHE_EPOCH_LEN);
	res.n_desired = rc->desired.n_peers;
	res.n_actual = dev.n_peers;
	res.has_public_key = dev.flags & WGF_DEVICE_HAS_PUBLIC_KEY;
	res.n_added = pl.n_add;
	res.n_updated = pl.n_update;
	res.n_removed = pl.n_remove;
	res.n_unchanged = pl.n_unchanged;
	res.n_static = pl.n_static;
	/* A full pass: the unknown peers are known (none unless adopting). */
	res.has_unknown = true;
	report_changes(&pl, cb, userdata);
	changed = !sync_plan_is_empty(&pl);
	if (dry_run) {
		res.n_pending = pl.n_add + pl.n_update + pl.n_remove;
		goto done;
	}
	/* Durable before the interface changes: a crash from here on restarts from it. */
	if (rc->cache_dirty && rc->cache_path &&
	    cache_save_desired(rc->cache_path, &rc->desired, &res.cache) == 0)
		rc->cache_dirty = rc->journal_failed = false;
	if (changed) {
		res.apply_error = send_changes(rc, pl.remove, pl.n_remove, true);
		if (res.apply_error == 0)
			res.apply_error = send_changes(rc, pl.add, pl.n_add, false);
		if (res.apply_error == 0)
			res.apply_error = send_changes(rc, pl.update, pl.n_update, false);
	}
	/* The plan points into dev: both go before the interface is read again. */
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
	if (res.apply_error == -ECANCELED) {
		/* Stopping: the next start picks up from the cache. */
		res.n_pending = res.n_added + res.n_updated + res.n_removed;
		goto done;
	}
	/*
	 * A backend that failed may have applied part of a chunk: read what it holds. Sets
	 * that all succeeded are taken at their word, as a delta's are; what changes behind
	 * them is the next full pass's drift.
	 */
	if (changed && res.apply_error != 0)
		(void)verify(rc, &res);
	if (res.apply_error || res.n_pending)
		rc->settled = false;
	if (res.apply_error == 0 && res.n_pending == 0) {
		if (set_baseline(rc, &res) < 0) {
			r = wgf_err_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		mark_applied(rc, &res);
		/* Here rather than in the first delta pass, which would wait for it. */
		if (!rc->owners && rc->desired.n_peers >= OWNERS_MIN)
			(void)owners_build(rc);
	}
done:
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
	*ret = res;
	return 0;
fail:
	sync_plan_fini(&pl);
	wgf_device_fini(&dev);
	reconcile_result_fini(&res);
	return r;
}

int reconciler_run(struct reconciler *rc, bool dry_run, reconcile_change_fn cb, void *userdata,
                   struct reconcile_result *ret, struct wgf_err *err)
{
	struct wgf_device dev;
	int r;

	if (!rc->has_desired)
		return wgf_err_set(err, -ENODATA, "no desired state yet");
	r = read_device(rc, &dev);
	if (r < 0)
		return wgf_err_set(err, r, "cannot read interface '%s': %s", rc->b->ifname,
		                   wgf_strerror(r));
	return run_on(rc, &dev, NULL, 0, dry_run, cb, userdata, ret, err);
}

int reconciler_run_read(struct reconciler *rc, struct wgf_device *dev,
                        const uint8_t (*skip)[WGF_KEY_LEN], size_t n_skip, reconcile_change_fn cb,
                        void *userdata, struct reconcile_result *ret, struct wgf_err *err)
{
	if (!rc->has_desired) {
		wgf_device_fini(dev);
		return wgf_err_set(err, -ENODATA, "no desired state yet");
	}
	return run_on(rc, dev, skip, n_skip, false, cb, userdata, ret, err);
}

void reconcile_result_fini(struct reconcile_result *r)
{
	free(r->failed);
	free(r->drift);
	free(r->unknown);
	memset(r, 0, sizeof(*r));
}

const char *reconcile_drift_kind_to_string(enum reconcile_drift_kind kind)
{
	switch (kind) {
	case RECONCILE_DRIFT_ADDED:
		return "added";
	case RECONCILE_DRIFT_REMOVED:
		return "removed";
	case RECONCILE_DRIFT_CHANGED:
		return "changed";
	}
	return "unknown";
}
