/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_wire: libFuzzer target for opening and checking envelopes (proto/wire.c). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "body.h"
#include "wire.h"

/*
 * The keys are fixed so that the seeds in corpus/wire/ verify and the fuzzer reaches
 * the checks after the signature: the sender's Ed25519 key comes from a seed of 32
 * bytes 0x01, the recipient's from 32 bytes 0x02, and the seeds are dated NOW_MS.
 */
#define NOW_MS  1795000000000ULL
#define SKEW_MS 30000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t sender_pk[WGF_SIGN_PK_LEN];
static uint8_t recipient_pk[WGF_SIGN_PK_LEN];

static void init_keys(void)
{
	uint8_t seed[crypto_sign_SEEDBYTES], sk[WGF_SIGN_SK_LEN];

	if (sodium_init() < 0)
		__builtin_trap();
	memset(seed, 0x01, sizeof(seed));
	crypto_sign_seed_keypair(sender_pk, sk, seed);
	memset(seed, 0x02, sizeof(seed));
	crypto_sign_seed_keypair(recipient_pk, sk, seed);
	sodium_memzero(sk, sizeof(sk));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wgf_err err = {0};
	struct wgf_wire_msg *m = NULL;
	struct wgf_body body;
	static bool ready;
	int r, kind;

	if (!ready) {
		init_keys();
		ready = true;
	}
	r = wgf_wire_open(data, size, &m, &err);

	/* The contract of wgf_wire_open(): *ret on success and on -EPROTONOSUPPORT only,
	 * and the error recorded is the error returned. */
	if ((r == 0 || r == -EPROTONOSUPPORT) != (m != NULL))
		__builtin_trap();
	if (r < 0 && r != -ENOMEM && err.code != r)
		__builtin_trap();
	if (r == -EPROTONOSUPPORT && (m->body || m->body_len || m->version == WGF_PROTOCOL_VERSION))
		__builtin_trap();
	if (r != 0)
		goto out;
	if (m->version != WGF_PROTOCOL_VERSION || (!m->body && m->body_len))
		__builtin_trap();

	/* Walk the body either way: a dispatcher may look at it only after verifying,
	 * but the decoder must survive anything. */
	if (wgf_body_decode(m->body, m->body_len, &body, &err) == 0) {
		kind = (int)body.kind;
		wgf_body_fini(&body);
		if (kind < WGF_WIRE_KIND_HINT || kind > WGF_WIRE_KIND_ERROR)
			__builtin_trap();
		/* The tag scan that caps sizes must agree with the decoder on every valid
		 * body. */
		if (wgf_wire_body_peek_kind(m->body, m->body_len) != kind)
			__builtin_trap();
	}

	r = wgf_wire_verify(m, sender_pk, &err);
	if (r == 0) {
		r = wgf_wire_check_addressed(m, recipient_pk, &err);
		if (r == 0)
			r = wgf_wire_check_fresh(m, NOW_MS, SKEW_MS, &err);
	}
	if (r < 0 && r != -ENOMEM && err.code != r)
		__builtin_trap();
out:
	wgf_wire_msg_free(m);
	return 0;
}
