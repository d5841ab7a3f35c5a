/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* secret: keeping secret keys out of swap and core dumps. */
#ifndef WGF_COMMON_SECRET_H
#define WGF_COMMON_SECRET_H

/*
 * Both daemons hold a few secrets for their whole life: the channel's Ed25519 signing
 * key and the coordinator's API-key hashing secret. Where such a secret is stored in a
 * long-lived object, its bytes are locked into memory (never written to swap) and
 * excluded from core dumps with wgf_secret_lock(), and wiped and unlocked with
 * wgf_secret_unlock() when the object is freed. Locking works on whole pages: two
 * secrets on one page share the lock, and unlocking either unlocks the page (harmless,
 * since it happens only as the objects are freed).
 *
 * wgf_secret_harden_process() is called first thing in main(): the process makes no
 * core dump (RLIMIT_CORE 0) and is not dumpable (no core, no ptrace by its own user,
 * /proc/<pid>/mem and environ owned by root), whoever starts it.
 */

#include <stddef.h>

/*
 * Locks len bytes at p into memory and out of core dumps. -errno when the system
 * refuses (RLIMIT_MEMLOCK, typically): the bytes stay usable, only unlocked.
 */
int wgf_secret_lock(void *p, size_t len);

/* Wipes len bytes at p and unlocks them (also when wgf_secret_lock() failed). */
void wgf_secret_unlock(void *p, size_t len);

/* Turns core dumps off for this process. -errno if either setting is refused. */
int wgf_secret_harden_process(void);

#endif
