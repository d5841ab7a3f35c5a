/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* body: the messages of proto/wgfleet.proto as plain C types, encoded and decoded here. */
#ifndef WGF_PROTO_BODY_H
#define WGF_PROTO_BODY_H

/*
 * An envelope (wire.h) carries one Body. This is the only code that packs or unpacks
 * one: the daemons build a struct wgf_body, wgf_body_encode() turns it into bytes for
 * wgf_wire_seal(), and wgf_wire_accept() hands them a decoded one. Neither daemon
 * includes the generated protobuf header.
 *
 * Decoding checks every field against wgfleet.proto: keys of exactly 32 bytes,
 * epochs of 0 or 16, allowed IPs and routable networks as CIDR networks without host
 * bits, keepalives up to 65535, known change operations and drift kinds, server names
 * of at most WGF_SERVER_NAME_MAX bytes, bounded counts, and text that is UTF-8 (as
 * proto3 wants of every string, and PostgreSQL of text; protobuf-c does not check it).
 * What fails is -EBADMSG with a message that names the field (and the index of the
 * entry), and nothing is returned; a body of a kind this version does not know is
 * -ENOTSUP. Text fields longer than their buffers here (reasons, messages, endpoints)
 * are cut at a UTF-8 character boundary.
 *
 * Arrays in a decoded body are owned by it and freed by wgf_body_fini(); a body built
 * for wgf_body_encode() may point at the caller's arrays, which are only read.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "peer.h"
#include "wire.h"

#define WGF_EPOCH_LEN       16
#define WGF_SERVER_NAME_MAX 63
#define WGF_ROUTABLE_MAX    64
#define WGF_REASON_MAX      256 /* bytes of a refusal reason or an Error message, NUL included */
#define WGF_ENDPOINT_MAX    64  /* "[v6]:port" and its NUL */

enum wgf_change_op {
	WGF_CHANGE_UPSERT = 1, /* add the peer, or replace its settings */
	WGF_CHANGE_REMOVE = 2, /* remove the peer by key; the rest of peer is zero */
};

/* What a pass found on the interface that the agent did not put there. */
enum wgf_drift_kind {
	WGF_DRIFT_EXTRA = 1,   /* on the interface, not desired */
	WGF_DRIFT_MISSING = 2, /* desired, not on the interface */
	WGF_DRIFT_CHANGED = 3, /* on both, with other allowed IPs or keepalive */
};

struct wgf_change {
	enum wgf_change_op op;
	uint64_t revision;
	struct wgf_peer peer; /* public key, allowed IPs, keepalive */
};

/* Released keys a Hint may carry (wgfleet.proto Hint.released). */
#define WGF_HINT_RELEASED_MAX 1000

struct wgf_hint {
	char server[WGF_SERVER_NAME_MAX + 1];
	uint64_t revision;
	uint8_t epoch[WGF_EPOCH_LEN]; /* all zeros: none */
	/* The answer to a Report: has_released, and the server's released keys (sorted). */
	bool has_released;
	uint8_t (*released)[WGF_KEY_LEN];
	size_t n_released;
};

struct wgf_sync_request {
	char server[WGF_SERVER_NAME_MAX + 1];
	uint8_t epoch[WGF_EPOCH_LEN];
	uint64_t since_revision;
	bool want_snapshot;
	uint64_t page_base; /* > 0: asking for the page after page_after */
	uint8_t page_after[WGF_KEY_LEN];
};

struct wgf_sync_reply {
	char server[WGF_SERVER_NAME_MAX + 1];
	uint8_t epoch[WGF_EPOCH_LEN];
	uint64_t revision;
	bool snapshot;
	uint64_t page_base; /* snapshot: the revision its first page was read at */
	bool more;          /* snapshot: pages follow */
	struct wgf_peer *peers;
	size_t n_peers;
	struct wgf_change *changes;
	size_t n_changes;
	struct wgf_cidr *routable;
	size_t n_routable;
	struct wgf_ip_pool ips; /* owned: the allowed IPs of peers and changes */
};

struct wgf_apply_error {
	uint8_t public_key[WGF_KEY_LEN];
	uint64_t revision;
	char reason[WGF_REASON_MAX];
};

struct wgf_peer_facts {
	uint8_t public_key[WGF_KEY_LEN];
	int64_t last_handshake_ms; /* 0: never */
	char endpoint[WGF_ENDPOINT_MAX];
	uint64_t rx_bytes, tx_bytes;
};

struct wgf_drift {
	uint8_t public_key[WGF_KEY_LEN];
	enum wgf_drift_kind kind;
};

/* A peer the agent keeps in adopt mode without managing it (wgfleet.proto UnknownPeer). */
struct wgf_unknown_peer {
	uint8_t public_key[WGF_KEY_LEN];
	struct wgf_cidr allowed_ips[WGF_PEER_ALLOWED_IPS_MAX];
	unsigned n_allowed_ips;
	int64_t last_handshake_ms; /* 0: never */
	char endpoint[WGF_ENDPOINT_MAX];
};

/* Unknown peers one report lists, and the most bytes one of them takes encoded. */
#define WGF_REPORT_UNKNOWN_MAX 1000
#define WGF_UNKNOWN_PEER_WIRE_MAX                                                        \
	(3 + (2 + WGF_KEY_LEN) + WGF_PEER_ALLOWED_IPS_MAX * (2 + WGF_CIDR_STRLEN) + 11 + \
	 (2 + WGF_ENDPOINT_MAX))

struct wgf_report {
	char server[WGF_SERVER_NAME_MAX + 1];
	uint8_t epoch[WGF_EPOCH_LEN];
	uint64_t applied_revision;
	struct wgf_apply_error *errors;
	size_t n_errors;
	struct wgf_peer_facts *facts;
	size_t n_facts;
	struct wgf_drift *drift;
	size_t n_drift;
	bool has_interface_key;
	uint8_t interface_public_key[WGF_KEY_LEN];
	uint16_t listen_port;             /* 0: unknown */
	char cache_error[WGF_REASON_MAX]; /* "": the agent's cache is written */
	bool has_unknown;                 /* unknown_listed: the next two replace what was known */
	struct wgf_unknown_peer *unknown;
	size_t n_unknown;
	uint32_t n_unknown_total;
};

struct wgf_error_body {
	enum wgf_wire_error_code code;
	char message[WGF_REASON_MAX];
	uint32_t supported_version;
};

struct wgf_body {
	enum wgf_wire_kind kind;
	union {
		struct wgf_hint hint;
		struct wgf_sync_request sync_request;
		struct wgf_sync_reply sync_reply;
		struct wgf_report report;
		struct wgf_error_body error;
	};
};

/* The most peers one SyncReply page may hold, and changes one reply may carry. */
#define WGF_BODY_PEERS_MAX   WGF_DEVICE_PEERS_MAX
#define WGF_BODY_CHANGES_MAX 1000000

/*
 * Packs b into a malloc'd buffer (*ret, *ret_len) for wgf_wire_seal(). -EINVAL for a
 * body that breaks the rules above (an empty server name, an unknown kind, code or
 * operation), -EMSGSIZE when it would not fit an envelope, -ENOMEM.
 */
int wgf_body_encode(const struct wgf_body *b, uint8_t **ret, size_t *ret_len, struct wgf_err *err);

/* Unpacks and checks buf (borrowed) into *ret (overwritten), as described above. */
int wgf_body_decode(const uint8_t *buf, size_t len, struct wgf_body *ret, struct wgf_err *err);

/* Frees what a decoded body owns and zeroes it; a zeroed body is fine. */
void wgf_body_fini(struct wgf_body *b);

/* An Error body with code and message (NULL: empty), from this version. */
int wgf_body_encode_error(enum wgf_wire_error_code code, const char *message, uint8_t **ret,
                          size_t *ret_len);

/* True when an epoch is all zeros (none known). */
bool wgf_epoch_is_none(const uint8_t epoch[static WGF_EPOCH_LEN]);

#endif
