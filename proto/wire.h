/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wire: sealing, opening and checking the signed envelopes of proto/wgfleet.proto. */
#ifndef WGF_PROTO_WIRE_H
#define WGF_PROTO_WIRE_H

/*
 * Every nng message between the coordinator and an agent is one Envelope: a few header
 * fields, a serialized Body, and an Ed25519 signature. This is the one hand-written
 * layer over the generated protobuf-c code, and its types stay out of this header: a
 * sender builds a Body, seals it with wgf_wire_seal() and sends the bytes; a receiver
 * runs the checks in the order wgfleet.proto's RECEIVING section gives:
 *
 *   wgf_wire_open()             size, decoding, version, field lengths
 *   (find the sender's key)     e.g. the agent registry; the agent pins one key.
 *                               An unknown sender is dropped here, before any work
 *   wgf_wire_body_peek_kind()   the body's kind, to cap its size per kind
 *   wgf_wire_check_addressed()  the envelope is for us
 *   wgf_wire_check_fresh()      its timestamp is within the allowed clock skew
 *   (replay)                    the caller remembers nonces per sender for that window
 *   wgf_wire_verify()           the sender is that key, and the signature holds
 *
 * and only then decodes m->body (the generated wgfleet__v1__body__unpack() in the
 * daemon's message dispatcher). The cheap checks come before the signature, so a
 * flood of envelopes that claim a registered key costs comparisons, not Ed25519
 * verifications; whatever fails before wgf_wire_verify() is unauthenticated, and a
 * daemon answers it sparingly (the coordinator rate-limits those answers). A nonce
 * is remembered only once the signature holds.
 *
 * The signature is crypto_sign_detached() over this byte string, never over protobuf
 * bytes (protobuf encodings are not canonical):
 *
 *   "wgfleet-envelope\0"   17 bytes (16 characters and the NUL)
 *   version                u32, big-endian
 *   sender                 32 bytes
 *   recipient              32 bytes
 *   timestamp_ms           u64, big-endian
 *   nonce                  16 bytes
 *   has_reply              u8: 1 or 0
 *   in_reply_to            16 bytes, zeros when has_reply is 0
 *   body_len               u32, big-endian
 *   body                   body_len bytes
 *
 * Errors are 0 or a negative errno, with a one-sentence message in struct wgf_err:
 * -EMSGSIZE too large, -EBADMSG undecodable or wrong field lengths or bad signature,
 * -EPROTONOSUPPORT another protocol version, -EACCES unknown sender, -EXDEV
 * misaddressed, -ESTALE too old or too far in the future. Nothing here logs: the daemon
 * that decides what to do with a refused envelope logs it once, and answers with an
 * Error body (wgf_wire_body_error()) where wgfleet.proto says so.
 *
 * libsodium must have been initialised (wgf_key_init()) before any function here runs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * WGF_WIRE_MSG_MAX is the largest envelope accepted (4 MiB), whole. Both daemons set
 * nng's NNG_OPT_RECVMAXSZ to it, so nng drops larger messages before they are read.
 */
#define WGF_PROTOCOL_VERSION 1
#define WGF_WIRE_MSG_MAX     ((size_t)4 * 1024 * 1024)
#define WGF_NONCE_LEN        16
#define WGF_SIGN_PK_LEN      32 /* Ed25519 public key */
#define WGF_SIGN_SK_LEN      64 /* Ed25519 secret key (seed and public key, libsodium's form) */
#define WGF_SIGNATURE_LEN    64

/* The kinds of Body, numbered as Body's oneof fields in wgfleet.proto. */
enum wgf_wire_kind {
	WGF_WIRE_KIND_NONE = 0, /* empty body, or a kind newer than this version */
	WGF_WIRE_KIND_HINT = 1,
	WGF_WIRE_KIND_SYNC_REQUEST = 2,
	WGF_WIRE_KIND_SYNC_REPLY = 3,
	WGF_WIRE_KIND_REPORT = 4,
	WGF_WIRE_KIND_ERROR = 5,
};

/* Error.Code of wgfleet.proto, same numbers. */
enum wgf_wire_error_code {
	WGF_WIRE_ERROR_UNSPECIFIED = 0,
	WGF_WIRE_ERROR_UNSUPPORTED_VERSION = 1,
	WGF_WIRE_ERROR_BAD_SIGNATURE = 2,
	WGF_WIRE_ERROR_UNKNOWN_SENDER = 3,
	WGF_WIRE_ERROR_STALE = 4,
	WGF_WIRE_ERROR_REPLAY = 5,
	WGF_WIRE_ERROR_MISADDRESSED = 6,
	WGF_WIRE_ERROR_BAD_REQUEST = 7,
	WGF_WIRE_ERROR_INTERNAL = 8,
};

/* An opened envelope. Plain data; the body is owned and freed by wgf_wire_msg_free(). */
struct wgf_wire_msg {
	uint32_t version;
	uint8_t sender[WGF_SIGN_PK_LEN];
	uint8_t recipient[WGF_SIGN_PK_LEN];
	uint64_t timestamp_ms;
	uint8_t nonce[WGF_NONCE_LEN];
	uint8_t in_reply_to[WGF_NONCE_LEN]; /* zeros unless is_reply */
	bool is_reply;
	uint8_t *body; /* owned; a serialized Body; NULL only when body_len is 0 */
	size_t body_len;
	uint8_t signature[WGF_SIGNATURE_LEN];
};

/* A new Ed25519 signing key pair (crypto_sign_keypair). The caller wipes sk when done. */
int wgf_wire_keypair(uint8_t ret_pk[static WGF_SIGN_PK_LEN],
                     uint8_t ret_sk[static WGF_SIGN_SK_LEN]);

/*
 * Seals body (borrowed; a serialized Body, at least body_len bytes) into a signed
 * envelope from the owner of sk to recipient, with a fresh random nonce and the
 * timestamp now_ms (milliseconds since the Unix epoch). in_reply_to is the nonce of
 * the request answered (WGF_NONCE_LEN bytes), or NULL.
 *
 * On success *ret_buf is a malloc'd buffer the caller frees, *ret_len its length, and,
 * when ret_nonce is not NULL, the nonce used is copied to it (WGF_NONCE_LEN bytes) so
 * the caller can match the reply. -EINVAL for a NULL body with a non-zero length,
 * -EMSGSIZE when the envelope would exceed WGF_WIRE_MSG_MAX, -ENOMEM.
 */
int wgf_wire_seal(const uint8_t sk[static WGF_SIGN_SK_LEN],
                  const uint8_t recipient[static WGF_SIGN_PK_LEN], const uint8_t *in_reply_to,
                  uint64_t now_ms, const uint8_t *body, size_t body_len, uint8_t *ret_nonce,
                  uint8_t **ret_buf, size_t *ret_len);

/*
 * Decodes buf (borrowed, len bytes) into a new *ret, checking size, encoding, version
 * and the exact length of every fixed-size field. It does not verify the signature:
 * the caller finds the sender's key first and calls wgf_wire_verify(). Failures:
 *
 *   -EMSGSIZE         len > WGF_WIRE_MSG_MAX (buf is not read);
 *   -EBADMSG          not an Envelope, protocol_version absent (0), or a field of the
 *                     wrong length: sender, recipient (32), nonce (16), in_reply_to
 *                     (0 or 16), signature (64); the message names the field;
 *   -EPROTONOSUPPORT  protocol_version is not WGF_PROTOCOL_VERSION;
 *   -EINVAL           buf is NULL with a non-zero len;
 *   -ENOMEM.
 *
 * *ret is written on success, and in one case on failure: with -EPROTONOSUPPORT it is
 * a new message the caller must free, holding only the fields every version keeps
 * (see VERSIONING in wgfleet.proto), so the caller can answer with an Error
 * CODE_UNSUPPORTED_VERSION:
 *
 *   version        the peer's protocol_version;
 *   sender         when it is 32 bytes long, else all zeros;
 *   nonce          when it is 16 bytes long, else all zeros;
 *   is_reply       whether in_reply_to is non-empty at all, and in_reply_to when it
 *                  is 16 bytes long, else all zeros.
 *
 * Everything else is zero and body is NULL. The signature cannot be checked, so
 * sender is a claim, not a fact. The caller drops the envelope, without answering,
 * when sender or nonce is all zeros or when is_reply is set (it may be the peer's own
 * Error about our version: two versions must not trade Errors forever). On every
 * other failure *ret is untouched.
 */
int wgf_wire_open(const uint8_t *buf, size_t len, struct wgf_wire_msg **ret, struct wgf_err *err);

/*
 * Checks that m was signed by pk: m->sender must equal pk (-EACCES "unknown sender"),
 * and the signature must hold over the byte string above (-EBADMSG "bad signature").
 * -ENOMEM when the byte string cannot be built.
 */
int wgf_wire_verify(const struct wgf_wire_msg *m, const uint8_t pk[static WGF_SIGN_PK_LEN],
                    struct wgf_err *err) __attribute__((warn_unused_result));

/* Checks that m is addressed to me: -EXDEV otherwise. */
int wgf_wire_check_addressed(const struct wgf_wire_msg *m, const uint8_t me[static WGF_SIGN_PK_LEN],
                             struct wgf_err *err) __attribute__((warn_unused_result));

/*
 * Checks that m's timestamp is at most max_skew_ms before or after now_ms (both in
 * milliseconds since the Unix epoch); -ESTALE otherwise. The bounds are inclusive.
 * This bounds the caller's replay cache: a nonce may be forgotten once its envelope's
 * timestamp is more than max_skew_ms in the past, because the envelope would now be
 * refused as stale.
 */
int wgf_wire_check_fresh(const struct wgf_wire_msg *m, uint64_t now_ms, uint64_t max_skew_ms,
                         struct wgf_err *err) __attribute__((warn_unused_result));

/* Frees m and its body; NULL is fine. */
void wgf_wire_msg_free(struct wgf_wire_msg *m);

/*
 * Body helpers. Each writes a malloc'd serialized Body to *ret and its length to
 * *ret_len on success, for wgf_wire_seal(); the caller frees it.
 */

/* A Hint: "server is now at revision". -EINVAL for a NULL or empty server. */
int wgf_wire_body_hint(const char *server, uint64_t revision, uint8_t **ret, size_t *ret_len);

/*
 * An Error with code and message (NULL means empty), and supported_version set to
 * WGF_PROTOCOL_VERSION. -EINVAL for WGF_WIRE_ERROR_UNSPECIFIED or a code out of range.
 */
int wgf_wire_body_error(enum wgf_wire_error_code code, const char *message, uint8_t **ret,
                        size_t *ret_len);

/*
 * The kind of a serialized Body (borrowed): one of enum wgf_wire_kind, where
 * WGF_WIRE_KIND_NONE means an empty body or a kind this version does not know (to be
 * answered with CODE_BAD_REQUEST); -EBADMSG when body is not a Body.
 */
int wgf_wire_body_kind(const uint8_t *body, size_t len);

/*
 * The same kind, read from the top-level field tags of a serialized Body (borrowed)
 * without unpacking or allocating anything, so a receiver can bound a body's size by
 * its kind before paying to decode it. Only the outer framing is checked: -EBADMSG
 * when a tag or length runs past len; a nested message may still be malformed.
 */
int wgf_wire_body_peek_kind(const uint8_t *body, size_t len);

#endif
