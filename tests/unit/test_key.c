/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/key.c: codecs, RFC 7748 vectors, and every way a key is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "key.h"

/* RFC 7748 section 6.1. */
#define ALICE_PRIV_HEX "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PUB_HEX  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define ALICE_PRIV_B64 "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
#define ALICE_PUB_B64  "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
#define BOB_PRIV_HEX   "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB_HEX    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"

#define MSG_LOW_ORDER "key is a low-order point of Curve25519, which no real WireGuard key is"
#define MSG_ZERO      "key is all zeros"
#define MSG_STRAY     "key is not canonical base64: its last character carries stray bits"

#define PATTERN 0xa5

/* Points of small order on Curve25519 (the list libsodium refuses), in base64. */
static const char *const low_order_b64[] = {
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", /* 1 (order 1) */
        "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=", /* order 8 */
        "X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=", /* order 8 */
        "7P///////////////////////////////////////38=", /* p - 1 (order 2) */
        "7f///////////////////////////////////////38=", /* p, that is 0 */
        "7v///////////////////////////////////////38=", /* p + 1, that is 1 */
};

static int setup(void **state)
{
	(void)state;
	return wgf_key_init();
}

static void hex_decode(uint8_t out[static WGF_KEY_LEN], const char *hex)
{
	assert_int_equal(wgf_key_from_hex(out, hex, NULL), 0);
}

static bool is_pattern(const uint8_t k[static WGF_KEY_LEN])
{
	for (size_t i = 0; i < WGF_KEY_LEN; i++)
		if (k[i] != PATTERN)
			return false;
	return true;
}

/* Asserts that b64 is refused for kind with exactly msg, and that nothing was written. */
static void assert_bad_b64(const char *b64, enum wgf_key_kind kind, const char *msg)
{
	uint8_t k[WGF_KEY_LEN];
	struct wgf_err err = {0};

	memset(k, PATTERN, sizeof(k));
	assert_int_equal(wgf_key_from_base64(k, b64, kind, &err), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_string_equal(err.msg, msg);
	assert_true(is_pattern(k));
	/* Without a struct wgf_err the answer is the same. */
	assert_int_equal(wgf_key_from_base64(k, b64, kind, NULL), -EINVAL);
	assert_true(is_pattern(k));
}

static void assert_bad_b64_both(const char *b64, const char *msg)
{
	assert_bad_b64(b64, WGF_KEY_PUBLIC, msg);
	assert_bad_b64(b64, WGF_KEY_PRIVATE, msg);
}

static void assert_bad_hex(const char *hex, const char *msg)
{
	uint8_t k[WGF_KEY_LEN];
	struct wgf_err err = {0};

	memset(k, PATTERN, sizeof(k));
	assert_int_equal(wgf_key_from_hex(k, hex, &err), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_string_equal(err.msg, msg);
	assert_true(is_pattern(k));
}

static void test_base64_round_trip(void **state)
{
	uint8_t k[WGF_KEY_LEN], want[WGF_KEY_LEN];
	char b64[WGF_KEY_B64_LEN];
	struct wgf_err err = {0};

	(void)state;
	hex_decode(want, ALICE_PUB_HEX);
	assert_int_equal(wgf_key_from_base64(k, ALICE_PUB_B64, WGF_KEY_PUBLIC, &err), 0);
	assert_memory_equal(k, want, WGF_KEY_LEN);
	/* Success leaves err alone. */
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");
	wgf_key_to_base64(b64, k);
	assert_string_equal(b64, ALICE_PUB_B64);
	assert_int_equal(strlen(b64), 44);

	assert_int_equal(wgf_key_from_base64(k, ALICE_PRIV_B64, WGF_KEY_PRIVATE, &err), 0);
	hex_decode(want, ALICE_PRIV_HEX);
	assert_memory_equal(k, want, WGF_KEY_LEN);
	wgf_key_to_base64(b64, k);
	assert_string_equal(b64, ALICE_PRIV_B64);
}

static void test_hex_round_trip(void **state)
{
	uint8_t k[WGF_KEY_LEN], k2[WGF_KEY_LEN];
	char hex[WGF_KEY_HEX_LEN], upper[WGF_KEY_HEX_LEN];
	struct wgf_err err = {0};

	(void)state;
	assert_int_equal(wgf_key_from_hex(k, ALICE_PUB_HEX, &err), 0);
	assert_int_equal(err.code, 0);
	wgf_key_to_hex(hex, k);
	assert_string_equal(hex, ALICE_PUB_HEX);
	assert_int_equal(strlen(hex), 64);

	/* Upper case is accepted; lower case is written. */
	for (size_t i = 0; i < 64; i++)
		upper[i] =
		        (char)(ALICE_PUB_HEX[i] >= 'a' ? ALICE_PUB_HEX[i] - 32 : ALICE_PUB_HEX[i]);
	upper[64] = '\0';
	assert_int_equal(wgf_key_from_hex(k2, upper, &err), 0);
	assert_memory_equal(k, k2, WGF_KEY_LEN);
	wgf_key_to_hex(hex, k2);
	assert_string_equal(hex, ALICE_PUB_HEX);

	/* The two spellings agree. */
	assert_int_equal(wgf_key_from_base64(k2, ALICE_PUB_B64, WGF_KEY_PUBLIC, &err), 0);
	assert_memory_equal(k, k2, WGF_KEY_LEN);
}

static void test_hex_all_zero_is_accepted(void **state)
{
	uint8_t k[WGF_KEY_LEN];
	char zero[WGF_KEY_HEX_LEN];

	(void)state;
	/* The UAPI writes an absent preshared key as 64 zeros: hex does not judge keys. */
	memset(zero, '0', 64);
	zero[64] = '\0';
	memset(k, PATTERN, sizeof(k));
	assert_int_equal(wgf_key_from_hex(k, zero, NULL), 0);
	assert_true(wgf_key_is_zero(k));
}

static void test_bad_hex(void **state)
{
	char hex[80];

	(void)state;
	assert_bad_hex("", "hex key must be 64 hex digits");
	assert_bad_hex("abcd", "hex key must be 64 hex digits");
	/* 63 and 65 digits. */
	assert_bad_hex(&ALICE_PUB_HEX[1], "hex key must be 64 hex digits");
	snprintf(hex, sizeof(hex), "%s0", ALICE_PUB_HEX);
	assert_bad_hex(hex, "hex key must be 64 hex digits");
	/* 64 characters, one of them not a digit, first, middle or last. */
	snprintf(hex, sizeof(hex), "%s", ALICE_PUB_HEX);
	hex[0] = 'g';
	assert_bad_hex(hex, "hex key has a character that is not a hex digit");
	snprintf(hex, sizeof(hex), "%s", ALICE_PUB_HEX);
	hex[31] = ' ';
	assert_bad_hex(hex, "hex key has a character that is not a hex digit");
	snprintf(hex, sizeof(hex), "%s", ALICE_PUB_HEX);
	hex[63] = 'z';
	assert_bad_hex(hex, "hex key has a character that is not a hex digit");
	/* Base64 is not hex, even at 64 characters. */
	snprintf(hex, sizeof(hex), "%s%.20s", ALICE_PUB_B64, ALICE_PRIV_B64);
	assert_int_equal(strlen(hex), 64);
	assert_bad_hex(hex, "hex key has a character that is not a hex digit");
}

static void test_generate_is_clamped(void **state)
{
	uint8_t k[WGF_KEY_LEN], prev[WGF_KEY_LEN], pub[WGF_KEY_LEN], again[WGF_KEY_LEN];
	char b64[WGF_KEY_B64_LEN];

	(void)state;
	memset(prev, 0, sizeof(prev));
	for (int i = 0; i < 64; i++) {
		wgf_key_generate_private(k);
		assert_int_equal(k[0] & 7, 0);
		assert_int_equal(k[31] & 0x80, 0);
		assert_int_equal(k[31] & 0x40, 0x40);
		assert_false(wgf_key_is_zero(k));
		assert_memory_not_equal(k, prev, WGF_KEY_LEN);
		memcpy(prev, k, sizeof(k));

		/* It survives base64, and its public key is a good public key. */
		wgf_key_to_base64(b64, k);
		assert_int_equal(wgf_key_from_base64(again, b64, WGF_KEY_PRIVATE, NULL), 0);
		assert_memory_equal(again, k, WGF_KEY_LEN);
		assert_int_equal(wgf_key_public_from_private(pub, k), 0);
		assert_int_equal(wgf_key_check(pub, WGF_KEY_PUBLIC, NULL), 0);
	}
}

static void test_public_from_private_rfc7748(void **state)
{
	uint8_t priv[WGF_KEY_LEN], pub[WGF_KEY_LEN], want[WGF_KEY_LEN];
	char hex[WGF_KEY_HEX_LEN], b64[WGF_KEY_B64_LEN];

	(void)state;
	hex_decode(priv, ALICE_PRIV_HEX);
	assert_int_equal(wgf_key_public_from_private(pub, priv), 0);
	wgf_key_to_hex(hex, pub);
	assert_string_equal(hex, ALICE_PUB_HEX);
	wgf_key_to_base64(b64, pub);
	assert_string_equal(b64, ALICE_PUB_B64);

	hex_decode(priv, BOB_PRIV_HEX);
	hex_decode(want, BOB_PUB_HEX);
	assert_int_equal(wgf_key_public_from_private(pub, priv), 0);
	assert_memory_equal(pub, want, WGF_KEY_LEN);
}

static void test_public_from_zero_private(void **state)
{
	uint8_t zero[WGF_KEY_LEN] = {0}, pub[WGF_KEY_LEN];

	(void)state;
	memset(pub, PATTERN, sizeof(pub));
	assert_int_equal(wgf_key_public_from_private(pub, zero), -EINVAL);
	assert_true(is_pattern(pub));
}

static void test_bad_length(void **state)
{
	char b64[64];

	(void)state;
	assert_bad_b64_both("", "key is empty");
	assert_bad_b64_both(NULL, "key is empty");
	assert_bad_b64_both("abc",
	                    "key is 3 characters long; a WireGuard key is 44 characters of base64");
	/* One short and one long. */
	assert_bad_b64_both(
	        &ALICE_PUB_B64[1],
	        "key is 43 characters long; a WireGuard key is 44 characters of base64");
	snprintf(b64, sizeof(b64), "%sA", ALICE_PUB_B64);
	assert_bad_b64_both(
	        b64, "key is 45 characters long; a WireGuard key is 44 characters of base64");
	/* A trailing newline, as from a file read carelessly, is a length error. */
	snprintf(b64, sizeof(b64), "%s\n", ALICE_PUB_B64);
	assert_bad_b64_both(
	        b64, "key is 45 characters long; a WireGuard key is 44 characters of base64");
	/* The hex spelling is not accepted as base64. */
	assert_bad_b64_both(
	        ALICE_PUB_HEX,
	        "key is 64 characters long; a WireGuard key is 44 characters of base64");
}

static void test_bad_character(void **state)
{
	static const struct {
		size_t pos; /* 1-based */
		char c;
	} cases[] = {{1, '!'}, {10, '-'}, {10, '_'}, {17, ' '}, {30, '.'}, {43, '*'}, {44, '~'}};
	char b64[WGF_KEY_B64_LEN], msg[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(b64, sizeof(b64), "%s", ALICE_PUB_B64);
		b64[cases[i].pos - 1] = cases[i].c;
		snprintf(msg, sizeof(msg), "key has a character that is not base64 at position %zu",
		         cases[i].pos);
		assert_bad_b64_both(b64, msg);
	}
	/* Bytes from 0x80 up, which libsodium 1.0.18 alone would read as '/'. */
	snprintf(b64, sizeof(b64), "%s", ALICE_PUB_B64);
	assert_int_equal(b64[23], '/');
	b64[23] = (char)0xfa;
	assert_bad_b64_both(b64, "key has a character that is not base64 at position 24");
	snprintf(b64, sizeof(b64), "%s", ALICE_PUB_B64);
	b64[0] = (char)0x80;
	assert_bad_b64_both(b64, "key has a character that is not base64 at position 1");
	snprintf(b64, sizeof(b64), "%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xff\xff");
	assert_bad_b64_both(b64, "key has a character that is not base64 at position 43");
	/* Two bad characters: the first is named. */
	snprintf(b64, sizeof(b64), "%s", ALICE_PUB_B64);
	b64[20] = '#';
	b64[5] = '#';
	assert_bad_b64_both(b64, "key has a character that is not base64 at position 6");
}

static void test_misplaced_padding(void **state)
{
	char b64[WGF_KEY_B64_LEN];

	(void)state;
	/* An '=' in the middle: its own position is named, not the character after it. */
	snprintf(b64, sizeof(b64), "%s", ALICE_PUB_B64);
	b64[4] = '=';
	assert_bad_b64_both(b64, "key has a character that is not base64 at position 5");
	/* '=' first. */
	snprintf(b64, sizeof(b64), "%s", ALICE_PUB_B64);
	b64[0] = '=';
	assert_bad_b64_both(b64, "key has a character that is not base64 at position 1");
	/* "=A" at the end: the '=' at 43 is followed by data. */
	snprintf(b64, sizeof(b64), "%s", ALICE_PUB_B64);
	b64[42] = '=';
	b64[43] = 'A';
	assert_bad_b64_both(b64, "key has a character that is not base64 at position 43");
}

static void test_too_much_padding(void **state)
{
	(void)state;
	assert_bad_b64_both("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbT===",
	                    "key has 3 '=' of padding; base64 has at most 2");
	assert_bad_b64_both("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqqb====",
	                    "key has 4 '=' of padding; base64 has at most 2");
	assert_bad_b64_both("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA===",
	                    "key has 3 '=' of padding; base64 has at most 2");
}

static void test_wrong_decoded_length(void **state)
{
	(void)state;
	/* 42 characters and "==": 31 bytes. */
	assert_bad_b64_both("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
	                    "key decodes to 31 bytes; a WireGuard key is exactly 32 bytes");
	assert_bad_b64_both("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTg==",
	                    "key decodes to 31 bytes; a WireGuard key is exactly 32 bytes");
	/* 44 characters and no padding: 33 bytes. */
	assert_bad_b64_both("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmoA",
	                    "key decodes to 33 bytes; a WireGuard key is exactly 32 bytes");
	assert_bad_b64_both("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	                    "key decodes to 33 bytes; a WireGuard key is exactly 32 bytes");
}

static void test_stray_bits(void **state)
{
	char b64[WGF_KEY_B64_LEN];

	(void)state;
	/* 'o' is 40: the low two bits are free and must be zero; 'p' (41), 'q', 'r' set them. */
	snprintf(b64, sizeof(b64), "%s", ALICE_PUB_B64);
	assert_int_equal(b64[42], 'o');
	for (char c = 'p'; c <= 'r'; c++) {
		b64[42] = c;
		assert_bad_b64_both(b64, MSG_STRAY);
	}
	/* With "==" the low four bits of the 42nd character are free. */
	assert_bad_b64_both("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTh==", MSG_STRAY);
	/* The next valid last character decodes fine. */
	b64[42] = 's';
	assert_int_equal(wgf_key_from_base64((uint8_t[WGF_KEY_LEN]){0}, b64, WGF_KEY_PRIVATE, NULL),
	                 0);
}

static void test_all_zero(void **state)
{
	const char *zero = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	uint8_t k[WGF_KEY_LEN] = {0};
	struct wgf_err err = {0};

	(void)state;
	assert_bad_b64_both(zero, MSG_ZERO);
	assert_true(wgf_key_is_zero(k));
	assert_int_equal(wgf_key_check(k, WGF_KEY_PUBLIC, &err), -EINVAL);
	assert_string_equal(err.msg, MSG_ZERO);
	wgf_err_clear(&err);
	assert_int_equal(wgf_key_check(k, WGF_KEY_PRIVATE, &err), -EINVAL);
	assert_string_equal(err.msg, MSG_ZERO);
	k[31] = 1;
	assert_false(wgf_key_is_zero(k));
}

static void test_low_order_public(void **state)
{
	uint8_t k[WGF_KEY_LEN];
	struct wgf_err err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(low_order_b64) / sizeof(low_order_b64[0]); i++) {
		assert_bad_b64(low_order_b64[i], WGF_KEY_PUBLIC, MSG_LOW_ORDER);

		/* The same through wgf_key_check on the decoded bytes. */
		assert_int_equal(wgf_key_from_base64(k, low_order_b64[i], WGF_KEY_PRIVATE, NULL),
		                 0);
		wgf_err_clear(&err);
		assert_int_equal(wgf_key_check(k, WGF_KEY_PUBLIC, &err), -EINVAL);
		assert_string_equal(err.msg, MSG_LOW_ORDER);
	}
	/* The hex spelling of the first two, checked directly. */
	hex_decode(k, "0100000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(wgf_key_check(k, WGF_KEY_PUBLIC, NULL), -EINVAL);
	hex_decode(k, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
	assert_int_equal(wgf_key_check(k, WGF_KEY_PUBLIC, NULL), -EINVAL);
}

static void test_low_order_is_a_fine_private_key(void **state)
{
	uint8_t k[WGF_KEY_LEN], want[WGF_KEY_LEN];
	struct wgf_err err = {0};

	(void)state;
	/* A private key is a scalar, not a point: only all zeros is refused. */
	for (size_t i = 0; i < sizeof(low_order_b64) / sizeof(low_order_b64[0]); i++) {
		memset(k, PATTERN, sizeof(k));
		assert_int_equal(wgf_key_from_base64(k, low_order_b64[i], WGF_KEY_PRIVATE, &err),
		                 0);
		assert_int_equal(wgf_key_check(k, WGF_KEY_PRIVATE, NULL), 0);
	}
	assert_int_equal(err.code, 0);
	/* And the bytes are the point's, unchanged. */
	assert_int_equal(wgf_key_from_base64(k, low_order_b64[1], WGF_KEY_PRIVATE, NULL), 0);
	hex_decode(want, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
	assert_memory_equal(k, want, WGF_KEY_LEN);
}

static void test_good_public_keys_pass(void **state)
{
	uint8_t k[WGF_KEY_LEN];

	(void)state;
	hex_decode(k, ALICE_PUB_HEX);
	assert_int_equal(wgf_key_check(k, WGF_KEY_PUBLIC, NULL), 0);
	hex_decode(k, BOB_PUB_HEX);
	assert_int_equal(wgf_key_check(k, WGF_KEY_PUBLIC, NULL), 0);
	/* A private key's bytes are also a valid point here. */
	assert_int_equal(wgf_key_from_base64(k, ALICE_PRIV_B64, WGF_KEY_PUBLIC, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_base64_round_trip),
	        cmocka_unit_test(test_hex_round_trip),
	        cmocka_unit_test(test_hex_all_zero_is_accepted),
	        cmocka_unit_test(test_bad_hex),
	        cmocka_unit_test(test_generate_is_clamped),
	        cmocka_unit_test(test_public_from_private_rfc7748),
	        cmocka_unit_test(test_public_from_zero_private),
	        cmocka_unit_test(test_bad_length),
	        cmocka_unit_test(test_bad_character),
	        cmocka_unit_test(test_misplaced_padding),
	        cmocka_unit_test(test_too_much_padding),
	        cmocka_unit_test(test_wrong_decoded_length),
	        cmocka_unit_test(test_stray_bits),
	        cmocka_unit_test(test_all_zero),
	        cmocka_unit_test(test_low_order_public),
	        cmocka_unit_test(test_low_order_is_a_fine_private_key),
	        cmocka_unit_test(test_good_public_keys_pass),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
