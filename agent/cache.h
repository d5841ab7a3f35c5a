/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* cache: the desired-state file: what the interface should hold, at which revision. */
#ifndef WGF_AGENT_CACHE_H
#define WGF_AGENT_CACHE_H

/*
 * The agent keeps the last desired set it applied in <state_directory>/desired.json, so
 * a reboot during a coordinator outage restores every tunnel (DESIGN.md principle 5).
 * The same format is what `wgfleet-agent apply FILE` and `show FILE` read:
 *
 *   {"revision": 7, "epoch": "<32 hex digits>", "routable": ["10.100.0.0/24"], "peers": [
 *    {"public_key": "<base64>", "allowed_ips": ["10.100.0.2/32"], "persistent_keepalive": 25}
 *   ]}
 *
 * revision is an integer from 0 to 2^63-1; public_key is a WireGuard key in base64;
 * allowed_ips is a list (possibly empty) of at most WGF_PEER_ALLOWED_IPS_MAX networks
 * without host bits; persistent_keepalive (seconds, 0 to 65535) may be left out and
 * means 0. epoch and routable may be left out (files from before they existed have
 * neither), and are written only when set. epoch is the coordinator's database
 * generation, CACHE_EPOCH_LEN bytes as lower-case hex; all zeros means none known.
 * routable lists the networks the coordinator says this server may route (its pool),
 * at most CACHE_ROUTABLE_MAX networks without host bits; the sync engine refuses a
 * desired peer with an allowed IP outside them and the configured ones (sync.h). This
 * file only carries both; the agent never makes them up.
 *
 * Anything else is an error that names the place: a field we do not know (a typo must
 * not silently mean "no allowed IPs"), a duplicate field, a wrong type, a bad value,
 * more than WGF_DEVICE_PEERS_MAX peers, a file over CACHE_FILE_MAX bytes.
 * Only the form of a key is checked here: a well-formed key that cannot be a peer
 * (all zeros, low order) is refused by the sync engine for that peer alone.
 *
 * JSON is read with yajl's event parser, in one pass and without a tree: each value is
 * checked and stored as it arrives, so loading 100,000 peers holds their records and a
 * 64 KiB buffer, whatever the file's layout (written by us, by hand for `apply`,
 * pretty-printed). A syntax error is named at its line and column; any other error at
 * its place ("peers[3].allowed_ips[1]: ..."). The writer puts the header (everything but
 * the peers) alone on the first line, ending in "peers":[, then one peer a line, then ]}
 * alone. The file is replaced atomically (wgf_fs_write_atomic, mode 0600).
 *
 * The reconciler writes a new desired set here before it applies it, so a crash in the
 * middle of an apply restarts from the newest set and never from an older one; deltas
 * go to the journal beside it instead (THE JOURNAL, below), with the same guarantee. Whether
 * the set was then applied completely is kept apart, in CACHE_APPLIED_FILE next to the
 * cache: the same format with the revision and epoch only, written after the pass. The
 * cache counts as what was last applied (the drift baseline) only when the two agree;
 * after a crash mid-apply they do not, and nothing the interface shows is drift.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "err.h"
#include "peer.h"

#define CACHE_FILE         "desired.json"
#define CACHE_APPLIED_FILE "applied.json"
#define CACHE_JOURNAL_FILE "desired.journal"
#define CACHE_FILE_MAX     ((size_t)64 << 20)
/* The reconciler compacts the journal long before this (a whole set past its threshold). */
#define CACHE_JOURNAL_MAX  (2 * CACHE_FILE_MAX)
#define CACHE_EPOCH_LEN    16
#define CACHE_ROUTABLE_MAX 64

struct cache_state {
	uint64_t revision;
	uint8_t epoch[CACHE_EPOCH_LEN]; /* all zeros: none known */
	struct wgf_peer *peers;         /* owned */
	size_t n_peers;
	struct wgf_ip_pool ips; /* owned: the peers' allowed IPs */
	/* Owned: networks the coordinator says we may route; may be NULL when there are none. */
	struct wgf_cidr *routable;
	size_t n_routable;
};

/*
 * THE JOURNAL. Between two whole writes of the cache, the reconciler records each batch
 * of deltas it applies by appending one line to CACHE_JOURNAL_FILE beside the cache:
 *
 *   {"revision": 8, "epoch": "<hex>", "routable": [...], "upsert": [<peer>, ...],
 *    "remove": ["<base64 key>", ...]}
 *
 * with the set's revision, epoch and routable networks after the batch, each changed
 * peer as the cache writes it, and the keys removed. A record is the batch's net effect,
 * so its order within the line does not matter. cache_save_desired() writes the whole
 * set (which compacts the journal into it) and then removes the journal.
 *
 * cache_load_desired() reads the cache and then replays, in order, the records of the
 * same epoch that are newer than it. It stops at the first line that is cut short (a
 * crash mid-append) or does not parse: what it returns is always a set some revision
 * had, never part of a batch.
 */

/* Parses text (len bytes; name is used in messages). *ret is written only on success. */
int cache_parse(const char *name, const char *text, size_t len, struct cache_state *ret,
                struct wgf_err *err);

/*
 * Reads and parses path: -ENOENT (with a message) when there is no such file, -EPERM
 * when another user owns it or group or others may write it (see wgf_fs_check_owner()).
 */
int cache_load(const char *path, struct cache_state *ret, struct wgf_err *err);

/* The file's text: a malloc'd buffer the caller frees, NUL-terminated. -ENOMEM only. */
int cache_format(const struct cache_state *st, char **ret, size_t *ret_len);

/* Formats st and replaces path with it, atomically and durably. */
int cache_save(const char *path, const struct cache_state *st, struct wgf_err *err);

/* cache_save(), then the journal beside path goes: st holds all it said. */
int cache_save_desired(const char *path, const struct cache_state *st, struct wgf_err *err);

/*
 * Appends a record for st (its revision, epoch, routable networks) changed in the n
 * keys given (each key's peer in st, or its removal when st lacks it), and makes it
 * durable before returning. *ret_size (may be NULL) is the journal's size after it.
 */
int cache_journal_append(const char *path, const struct cache_state *st,
                         const uint8_t (*keys)[WGF_KEY_LEN], size_t n, size_t *ret_size,
                         struct wgf_err *err);

/*
 * cache_load(), then the journal's records replayed (see THE JOURNAL). *ret_records
 * (may be NULL) is how many were. No journal counts as an empty one; a journal that
 * cannot be opened, or fails cache_load()'s owner and mode check, fails the whole load.
 */
int cache_load_desired(const char *path, struct cache_state *ret, size_t *ret_records,
                       struct wgf_err *err);

/*
 * Records that st (its revision and epoch) was applied completely, in CACHE_APPLIED_FILE
 * in the directory of the cache at path; atomically and durably, as cache_save.
 */
int cache_mark_applied(const char *path, const struct cache_state *st, struct wgf_err *err);

/* True when CACHE_APPLIED_FILE next to path names st's revision and epoch. */
bool cache_is_applied(const char *path, const struct cache_state *st);

/*
 * Replaces st->routable with a copy of nets (n of them, networks without host bits; not
 * checked here). -E2BIG past CACHE_ROUTABLE_MAX, -ENOMEM; st is unchanged on failure.
 */
int cache_state_set_routable(struct cache_state *st, const struct wgf_cidr *nets, size_t n);

/*
 * Applies r's changes, in order, to st (peers sorted by key, as they stay): an upsert
 * replaces the peer with its key or adds it, a removal drops it. st then has r's
 * revision, epoch and routable networks. O(changes log peers), plus one pass over the
 * peers when the count changes; no copy of the set. Returns 0; -E2BIG when the set could
 * pass WGF_DEVICE_PEERS_MAX (each upsert of a key it lacks counted as new, removals not
 * subtracted); -ENOMEM. On failure st is
 * unchanged.
 */
struct wgf_sync_reply;
int cache_state_apply(struct cache_state *st, const struct wgf_sync_reply *r);

/* True when r's deltas follow st: the same epoch, and they start at st's next revision. */
bool cache_state_follows(const struct cache_state *st, const struct wgf_sync_reply *r);

/* True when st carries an epoch (not all zeros). */
bool cache_state_has_epoch(const struct cache_state *st);

/* Frees the peers and the routable networks; st is left zeroed. */
void cache_state_fini(struct cache_state *st);

#endif
