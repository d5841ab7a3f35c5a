/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* clock: clock_gettime in milliseconds. */
#include "clock.h"

#include <time.h>

static uint64_t ms_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t wgf_clock_wall_ms(void)
{
	return ms_of(CLOCK_REALTIME);
}

uint64_t wgf_clock_mono_ms(void)
{
	return ms_of(CLOCK_MONOTONIC);
}
