/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* clock: milliseconds, by the wall and by the monotonic clock. */
#ifndef WGF_COMMON_CLOCK_H
#define WGF_COMMON_CLOCK_H

/*
 * Wall time is what crosses the wire and lands in the database (envelope timestamps,
 * handshake times); it can jump. Monotonic time measures durations and never does.
 */

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t wgf_clock_wall_ms(void);

/* Milliseconds on CLOCK_MONOTONIC, for durations. */
uint64_t wgf_clock_mono_ms(void);

#endif
