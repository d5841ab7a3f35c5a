/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* key: WireGuard Curve25519 keys: parse, check, format and generate, with libsodium. */
#ifndef WGF_COMMON_KEY_H
#define WGF_COMMON_KEY_H

/*
 * A WireGuard key is 32 bytes, written as 44 characters of standard base64 ending in
 * '=' (wg(8)), or as 64 lower-case hex digits in the UAPI protocol. Keys live in
 * `uint8_t k[WGF_KEY_LEN]` arrays; encoding and decoding go through libsodium's
 * constant-time codecs, so a private key's value does not leak through timing.
 *
 * wgf_key_from_base64() accepts only the canonical form: exactly 44 characters, the
 * standard alphabet, one '=' of padding, no stray bits in the last character. Every
 * way a key can be wrong gets its own message in the struct wgf_err (see key.c), and
 * the message never quotes the key. A public key must also not be all zeros nor a
 * low-order point of Curve25519, because a peer with such a key can be impersonated
 * by anyone (every shared secret with it is zero).
 *
 * Callers wipe private keys with sodium_memzero() when done and compare keys with
 * sodium_memcmp().
 */

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define WGF_KEY_LEN     32
#define WGF_KEY_B64_LEN 45 /* 44 characters and the NUL */
#define WGF_KEY_HEX_LEN 65 /* 64 digits and the NUL */

enum wgf_key_kind {
	WGF_KEY_PUBLIC,
	WGF_KEY_PRIVATE,
};

/* Must be called once before any other function here (it calls sodium_init()). */
int wgf_key_init(void);

/* Decodes and checks b64; on success writes ret_key. -EINVAL with a message otherwise. */
int wgf_key_from_base64(uint8_t ret_key[static WGF_KEY_LEN], const char *b64,
                        enum wgf_key_kind kind, struct wgf_err *err);
void wgf_key_to_base64(char out[static WGF_KEY_B64_LEN], const uint8_t key[static WGF_KEY_LEN]);

/* The UAPI spelling: 64 hex digits, either case accepted, lower case written. */
int wgf_key_from_hex(uint8_t ret_key[static WGF_KEY_LEN], const char *hex, struct wgf_err *err);
void wgf_key_to_hex(char out[static WGF_KEY_HEX_LEN], const uint8_t key[static WGF_KEY_LEN]);

/* Checks a decoded key: all zeros is refused for both kinds, low order for public keys. */
int wgf_key_check(const uint8_t key[static WGF_KEY_LEN], enum wgf_key_kind kind,
                  struct wgf_err *err);

bool wgf_key_is_zero(const uint8_t key[static WGF_KEY_LEN]);

/* A new clamped private key from the system's random source. */
void wgf_key_generate_private(uint8_t ret_key[static WGF_KEY_LEN]);

/* The public key of a private key; -EINVAL if the private key is all zeros. */
int wgf_key_public_from_private(uint8_t ret_pub[static WGF_KEY_LEN],
                                const uint8_t priv[static WGF_KEY_LEN]);

#endif
