/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* A wgf_device.see that keeps what it is handed, for the readers' tests. */
#ifndef WGF_TESTS_SEEN_SINK_H
#define WGF_TESTS_SEEN_SINK_H

#include <string.h>

#include "peer.h"

#define SEEN_SINK_MAX 16

struct seen_sink {
	uint8_t keys[SEEN_SINK_MAX][WGF_KEY_LEN];
	struct wgf_peer_seen seen[SEEN_SINK_MAX];
	size_t n, restarts;
};

static inline void seen_sink_take(void *ctx, const struct wgf_peer *peer,
                                  const struct wgf_peer_seen *seen)
{
	struct seen_sink *s = ctx;

	if (!peer) {
		s->n = 0;
		s->restarts++;
		return;
	}
	if (s->n == SEEN_SINK_MAX)
		return;
	memcpy(s->keys[s->n], peer->public_key, WGF_KEY_LEN);
	s->seen[s->n++] = *seen;
}

/* A read with a sink handed over, in order, what one without it kept in dev->seen. */
static inline bool seen_sink_matches(const struct seen_sink *s, const struct wgf_device *whole)
{
	if (s->n != whole->n_peers)
		return false;
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->keys[i], whole->peers[i].public_key, WGF_KEY_LEN) != 0 ||
		    memcmp(&s->seen[i], &whole->seen[i], sizeof(s->seen[i])) != 0)
			return false;
	return true;
}

#endif
