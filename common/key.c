/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* key: WireGuard key codecs and checks on top of libsodium. */
#include "key.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#define B64_KEY_CHARS 44

int wgf_key_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

bool wgf_key_is_zero(const uint8_t key[static WGF_KEY_LEN])
{
	return sodium_is_zero(key, WGF_KEY_LEN) == 1;
}

/*
 * The points of small order on Curve25519 and its twist, each also in its non-canonical
 * spelling (p-1, p, p+1): the list libsodium's X25519 refuses. Bit 255 is ignored by
 * X25519, so it is ignored here too. A lookup instead of a scalar multiplication keeps
 * the check at well under a microsecond: the agent checks every desired peer on every
 * pass, 10,000 of them.
 */
static const uint8_t low_order_points[][WGF_KEY_LEN] = {
        {0x00}, /* 0 (order 4) */
        {0x01}, /* 1 (order 1) */
        {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
         0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
         0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
        {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1,
         0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c,
         0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
        {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
        {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
        {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

static bool is_low_order(const uint8_t key[static WGF_KEY_LEN])
{
	for (size_t i = 0; i < sizeof(low_order_points) / sizeof(low_order_points[0]); i++) {
		const uint8_t *pt = low_order_points[i];
		uint8_t diff = (uint8_t)((key[WGF_KEY_LEN - 1] ^ pt[WGF_KEY_LEN - 1]) & 0x7f);

		for (size_t j = 0; j < WGF_KEY_LEN - 1; j++)
			diff |= (uint8_t)(key[j] ^ pt[j]);
		if (diff == 0)
			return true;
	}
	return false;
}

int wgf_key_check(const uint8_t key[static WGF_KEY_LEN], enum wgf_key_kind kind,
                  struct wgf_err *err)
{
	if (wgf_key_is_zero(key))
		return wgf_err_set(err, -EINVAL, "key is all zeros");
	if (kind == WGF_KEY_PUBLIC && is_low_order(key))
		return wgf_err_set(err, -EINVAL,
		                   "key is a low-order point of Curve25519, which no real "
		                   "WireGuard key is");
	return 0;
}

static bool is_b64_alphabet(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * libsodium said no, or stopped early: find out why, for the message. The decoding
 * itself is libsodium's; this only names the first thing that is wrong.
 */
static int explain_bad_base64(const char *b64, struct wgf_err *err)
{
	size_t pad = 0, first_pad = 0;

	for (size_t i = 0; i < B64_KEY_CHARS; i++) {
		if (b64[i] == '=') {
			if (pad++ == 0)
				first_pad = i;
			continue;
		}
		/* Data after an '=': the misplaced '=' is the first thing wrong. */
		if (!is_b64_alphabet(b64[i]) || pad > 0)
			return wgf_err_set(err, -EINVAL,
			                   "key has a character that is not base64 at position %zu",
			                   (pad > 0 ? first_pad : i) + 1);
	}
	if (pad > 2)
		return wgf_err_set(err, -EINVAL, "key has %zu '=' of padding; base64 has at most 2",
		                   pad);
	return wgf_err_set(err, -EINVAL,
	                   "key is not canonical base64: its last character carries stray bits");
}

int wgf_key_from_base64(uint8_t ret_key[static WGF_KEY_LEN], const char *b64,
                        enum wgf_key_kind kind, struct wgf_err *err)
{
	uint8_t buf[WGF_KEY_LEN + 8];
	char canon[sodium_base64_ENCODED_LEN(WGF_KEY_LEN + 8, sodium_base64_VARIANT_ORIGINAL)];
	size_t len, bin_len = 0;
	const char *end = NULL;
	int r;

	if (!b64 || b64[0] == '\0')
		return wgf_err_set(err, -EINVAL, "key is empty");
	len = strlen(b64);
	if (len != B64_KEY_CHARS)
		return wgf_err_set(err, -EINVAL,
		                   "key is %zu characters long; a WireGuard key is 44 characters "
		                   "of base64",
		                   len);
	if (sodium_base642bin(buf, sizeof(buf), b64, len, NULL, &bin_len, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != b64 + len) {
		r = explain_bad_base64(b64, err);
		goto out;
	}
	/*
	 * libsodium 1.0.18 decodes every byte from 0x80 up as '/' (a signed-char slip in its
	 * constant-time lookup): insist that the bytes encode back to the very same text.
	 */
	sodium_bin2base64(canon, sizeof(canon), buf, bin_len, sodium_base64_VARIANT_ORIGINAL);
	if (sodium_memcmp(canon, b64, B64_KEY_CHARS + 1) != 0) {
		r = explain_bad_base64(b64, err);
		goto out;
	}
	if (bin_len != WGF_KEY_LEN) {
		r = wgf_err_set(err, -EINVAL,
		                "key decodes to %zu bytes; a WireGuard key is exactly 32 bytes",
		                bin_len);
		goto out;
	}
	r = wgf_key_check(buf, kind, err);
	if (r == 0)
		memcpy(ret_key, buf, WGF_KEY_LEN);
out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(canon, sizeof(canon));
	return r;
}

void wgf_key_to_base64(char out[static WGF_KEY_B64_LEN], const uint8_t key[static WGF_KEY_LEN])
{
	sodium_bin2base64(out, WGF_KEY_B64_LEN, key, WGF_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

int wgf_key_from_hex(uint8_t ret_key[static WGF_KEY_LEN], const char *hex, struct wgf_err *err)
{
	uint8_t buf[WGF_KEY_LEN];
	size_t bin_len = 0, len = hex ? strnlen(hex, 2 * WGF_KEY_LEN + 1) : 0;
	const char *end = NULL;

	if (len != 2 * WGF_KEY_LEN)
		return wgf_err_set(err, -EINVAL, "hex key must be 64 hex digits");
	if (sodium_hex2bin(buf, sizeof(buf), hex, len, NULL, &bin_len, &end) != 0 ||
	    end != hex + len || bin_len != WGF_KEY_LEN) {
		sodium_memzero(buf, sizeof(buf));
		return wgf_err_set(err, -EINVAL, "hex key has a character that is not a hex digit");
	}
	memcpy(ret_key, buf, WGF_KEY_LEN);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

void wgf_key_to_hex(char out[static WGF_KEY_HEX_LEN], const uint8_t key[static WGF_KEY_LEN])
{
	sodium_bin2hex(out, WGF_KEY_HEX_LEN, key, WGF_KEY_LEN);
}

void wgf_key_generate_private(uint8_t ret_key[static WGF_KEY_LEN])
{
	randombytes_buf(ret_key, WGF_KEY_LEN);
	/* Curve25519 clamping, as wg genkey does. */
	ret_key[0] &= 248;
	ret_key[31] = (ret_key[31] & 127) | 64;
}

int wgf_key_public_from_private(uint8_t ret_pub[static WGF_KEY_LEN],
                                const uint8_t priv[static WGF_KEY_LEN])
{
	if (wgf_key_is_zero(priv))
		return -EINVAL;
	return crypto_scalarmult_base(ret_pub, priv) == 0 ? 0 : -EINVAL;
}
