/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* secret: locked, wiped memory for long-lived secrets; no core dumps. */
#include "secret.h"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <sodium.h>

int wgf_secret_lock(void *p, size_t len)
{
	if (sodium_mlock(p, len) < 0)
		return -errno;
	return 0;
}

void wgf_secret_unlock(void *p, size_t len)
{
	/* sodium_munlock() wipes before it unlocks; wipe again in case it failed. */
	if (sodium_munlock(p, len) < 0)
		sodium_memzero(p, len);
}

int wgf_secret_harden_process(void)
{
	const struct rlimit none = {0, 0};

	if (setrlimit(RLIMIT_CORE, &none) < 0)
		return -errno;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
