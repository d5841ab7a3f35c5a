/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_cache: libFuzzer target for the desired-state file (agent/cache.c). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever parses must format and parse back to the same state. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct cache_state st, back;
	char *text = NULL;
	size_t len = 0;

	if (!ready) {
		if (wgf_key_init() < 0)
			__builtin_trap();
		ready = true;
	}
	if (cache_parse("fuzz", (const char *)data, size, &st, NULL) < 0)
		return 0;
	if (cache_format(&st, &text, &len) < 0)
		__builtin_trap();
	if (cache_parse("again", text, len, &back, NULL) < 0 || back.revision != st.revision ||
	    memcmp(back.epoch, st.epoch, CACHE_EPOCH_LEN) != 0 ||
	    back.n_routable != st.n_routable || back.n_peers != st.n_peers)
		__builtin_trap();
	for (size_t i = 0; i < st.n_routable; i++)
		if (back.routable[i].prefix != st.routable[i].prefix ||
		    !wgf_addr_equal(&back.routable[i].addr, &st.routable[i].addr))
			__builtin_trap();
	for (size_t i = 0; i < st.n_peers; i++)
		if (memcmp(back.peers[i].public_key, st.peers[i].public_key, WGF_KEY_LEN) != 0 ||
		    !wgf_peer_config_equal(&back.peers[i], &st.peers[i]))
			__builtin_trap();
	free(text);
	cache_state_fini(&st);
	cache_state_fini(&back);
	return 0;
}
