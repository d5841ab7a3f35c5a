/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wire: sealing, opening and checking the signed envelopes of proto/wgfleet.proto. */
#ifndef WGF_PROTO_WIRE_H
#define WGF_PROTO_WIRE_H

/*
 * Every nng message between the coordinator and an agent is one Envelope: a few header
 * fields, a serialized Body, and an Ed25519 signature. A sender encodes a struct
 * wgf_body (body.h), seals it with wgf_wire_seal() and sends the bytes; a receiver
 * hands the bytes to wgf_wire_accept(), which runs every check of wgfleet.proto's
 * RECEIVING in its one order (size, decoding, version, sender known, body size by kind,
 * signature, recipient, freshness, nonce, body) and returns the decoded body, or says
 * which check failed. Both daemons receive through it; the pieces (wgf_wire_open(),
 * wgf_wire_verify() and the others) stay public for tests and tools.
 *
 * A nonce is taken (remembered) only once the signature and freshness hold.
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
 * The kind of a serialized Body (borrowed), read from its top-level field tags without
 * unpacking or allocating anything, so a receiver can bound a body's size by its kind
 * before paying to check a signature over it or decode it: one of enum wgf_wire_kind,
 * where WGF_WIRE_KIND_NONE means an empty body or a kind this version does not know.
 * Only the outer framing is checked: -EBADMSG when a tag or length runs past len.
 */
int wgf_wire_body_peek_kind(const uint8_t *body, size_t len);

/*
 * Why wgf_wire_accept() refused an envelope, in the order of the checks (wgfleet.proto,
 * RECEIVING): the vocabulary both daemons count and log refusals in.
 */
enum wgf_wire_refusal {
	WGF_WIRE_ACCEPTED = 0,
	WGF_WIRE_UNREADABLE,     /* too large, not an Envelope, wrong field lengths */
	WGF_WIRE_VERSION,        /* another protocol version, from a known sender */
	WGF_WIRE_UNKNOWN_SENDER, /* a key we do not know (of any version) */
	WGF_WIRE_RATE_LIMITED,   /* a known key past its share (the receiver's admit()) */
	WGF_WIRE_TOO_LARGE,      /* a body larger than that sender may send of its kind */
	WGF_WIRE_BAD_SIGNATURE,
	WGF_WIRE_MISADDRESSED,
	WGF_WIRE_STALE,
	WGF_WIRE_REPLAY,   /* a request's nonce seen before; an answer to another request */
	WGF_WIRE_BAD_BODY, /* not a valid Body of a known kind */
	WGF_WIRE_REFUSAL__COUNT,
};

/* A short name for logs ("bad_signature"), and the Error code that answers it. */
const char *wgf_wire_refusal_name(enum wgf_wire_refusal why);
enum wgf_wire_error_code wgf_wire_refusal_code(enum wgf_wire_refusal why);

struct wgf_body;

/* What a receiver knows, for wgf_wire_accept(). */
struct wgf_wire_receiver {
	const uint8_t *me; /* our Ed25519 public key */
	/* Other keys of ours that envelopes may be addressed to (a key being rotated out). */
	const uint8_t (*also_me)[WGF_SIGN_PK_LEN];
	size_t n_also_me;
	uint64_t max_skew_ms;
	/*
	 * The key m->sender is registered as, or NULL when it is unknown; when known,
	 * *ret_body_max is set to the largest body of this kind (wgf_wire_body_peek_kind(),
	 * WGF_WIRE_KIND_NONE for an envelope of another version) that it may send.
	 */
	const uint8_t *(*find_sender)(void *ctx, const struct wgf_wire_msg *m, int kind,
	                              size_t *ret_body_max);
	/*
	 * Optional: whether the known sender of m may be heard now (a rate bound the
	 * receiver keeps per key); false refuses m as WGF_WIRE_RATE_LIMITED before its body
	 * is looked at or its signature checked, so a flood past the bound costs a lookup a
	 * message. Nothing is charged here: the receiver charges what it accepts.
	 */
	bool (*admit)(void *ctx, const struct wgf_wire_msg *m);
	/* Requests: true when m's nonce is new, and remembers it from then on. */
	bool (*take_nonce)(void *ctx, const struct wgf_wire_msg *m);
	/* Answers instead: the nonce of the request this one must answer (16 bytes). */
	const uint8_t *reply_to;
	void *ctx;
};

/*
 * Runs every check of wgfleet.proto's RECEIVING, in its order, on the envelope in buf
 * (borrowed, len bytes) at the time now_ms, and decodes its body (body.h). Returns 0
 * with *ret_msg (free with wgf_wire_msg_free()) and *ret_body (free with
 * wgf_body_fini()) filled; or a negative errno with *ret_why saying which check
 * failed, err the sentence for a log, and *ret_msg set whenever the envelope could be
 * read (so the caller can answer its sender; see wgf_wire_answerable()), NULL
 * otherwise. *ret_body is written only on success. -ENOMEM is *ret_why
 * WGF_WIRE_UNREADABLE.
 */
int wgf_wire_accept(const struct wgf_wire_receiver *r, const uint8_t *buf, size_t len,
                    uint64_t now_ms, struct wgf_wire_msg **ret_msg, struct wgf_body *ret_body,
                    enum wgf_wire_refusal *ret_why, struct wgf_err *err);

/*
 * Whether a refusal may be answered with an Error at all: never what could not be
 * read, an envelope that is itself an answer (it may be an Error: two sides must not
 * trade them forever), one without a nonce to bind the answer to, or one of another
 * version from a key we do not know.
 */
bool wgf_wire_answerable(const struct wgf_wire_msg *m, enum wgf_wire_refusal why);

#endif
