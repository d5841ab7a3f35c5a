/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* uapi: the userspace WireGuard backend and the UAPI text protocol it speaks. */
#ifndef WGF_AGENT_UAPI_H
#define WGF_AGENT_UAPI_H

/*
 * wireguard-go and boringtun listen on <socket_dir>/<ifname>.sock (a unix stream
 * socket) and speak a line protocol of key=value pairs (wireguard.com/xplatform):
 *
 *   get=1\n\n          ->  private_key=<hex>\n listen_port=N\n
 *                          public_key=<hex>\n (starts a peer) endpoint=..\n
 *                          last_handshake_time_sec=..\n ... allowed_ip=a/n\n ...
 *                          errno=0\n\n
 *   set=1\n<lines>\n   ->  errno=N\n\n
 *
 * Keys are 64 hex digits. errno is 0 on success; wireguard-go writes the failure as a
 * negative number and boringtun as a positive one, so only its magnitude counts. On a
 * failing set wireguard-go stops at the bad line and drops the connection, so the rest
 * of that request is lost; the reconciler re-reads the device after a failed set.
 *
 * This file keeps the protocol apart from the socket: uapi_parser_feed() takes one
 * reply line at a time (the daemon streams a reply of 10,000 peers through it without
 * holding the text), uapi_parse() parses a whole captured reply, and
 * uapi_format_peer() writes one peer's part of a set request. They do no I/O and
 * are unit-tested against text captured from a real wireguard-go. Everything read is
 * bounded: a line at UAPI_LINE_MAX bytes, a reply at UAPI_REPLY_MAX bytes, the peers at
 * WGF_DEVICE_PEERS_MAX (wgf_device_add_peer). A peer with more allowed IPs than
 * WGF_PEER_ALLOWED_IPS_MAX keeps the first ones and is marked BACKEND_PEER_F_TRUNCATED.
 *
 * The backend (backend_uapi_new in backend.h) opens one connection per operation, as
 * wg(8) does, and sends a large set as several set=1 requests of UAPI_BATCH_PEERS
 * peers on that one connection, each waiting for its errno reply (wireguard-go reads
 * a request through a buffered scanner, so a request sent before the previous reply
 * arrived could be swallowed). Every socket operation has a UAPI_TIMEOUT_MS timeout.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "peer.h"

#define UAPI_DEFAULT_SOCKET_DIR "/var/run/wireguard"
#define UAPI_LINE_MAX           256 /* bytes, without the newline */
#define UAPI_REPLY_MAX          ((size_t)WGF_DEVICE_PEERS_MAX * 2048)
#define UAPI_PEER_TEXT_MAX      1024 /* the most uapi_format_peer() writes */
#define UAPI_BATCH_PEERS        2000 /* peers per set=1 request */
#define UAPI_TIMEOUT_MS         30000

enum uapi_op {
	UAPI_OP_SET,    /* add or update: the peer's allowed IPs and keepalive become these */
	UAPI_OP_REMOVE, /* remove the peer with this key */
};

/*
 * Parses a get reply into dev (borrowed; the caller passes an empty device and frees
 * it), or a set reply when dev is NULL (then only errno= may appear).
 */
struct uapi_parser {
	struct wgf_device *dev;
	struct wgf_peer *peer;      /* the peer being read, inside dev->peers */
	struct wgf_peer_seen *seen; /* and what is seen of it, inside dev->seen */
	uint64_t hs_sec, hs_nsec;
	size_t n_bytes;
	unsigned line_no;
	bool has_errno, done;
	int remote_errno; /* negative errno from the errno= line, or 0 */
};

void uapi_parser_init(struct uapi_parser *p, struct wgf_device *dev);

/*
 * Feeds one line (len bytes, no newline, need not be NUL-terminated). Returns 0 when
 * more lines are expected, 1 when the reply is complete (the blank line after errno=;
 * then p->remote_errno holds the outcome), or a negative errno with err saying which
 * line is wrong: -EBADMSG for a malformed line, -EPROTO for a reply out of order,
 * -E2BIG past a bound.
 */
int uapi_parser_feed(struct uapi_parser *p, const char *line, size_t len, struct wgf_err *err);

/*
 * Parses a whole reply held in text (a get reply into dev, a set reply when dev is
 * NULL). Returns 0 and the remote errno in *ret_remote_errno, or a negative errno as
 * uapi_parser_feed does (-EPROTO also for text that ends before the reply does).
 */
int uapi_parse(const char *text, size_t len, struct wgf_device *dev, int *ret_remote_errno,
               struct wgf_err *err);

/*
 * Writes one peer's lines of a set request into out and returns their length. For
 * UAPI_OP_SET: public_key, replace_allowed_ips=true, each allowed_ip and
 * persistent_keepalive_interval (always, so 0 turns keepalive off); for
 * UAPI_OP_REMOVE: public_key and remove=true.
 */
size_t uapi_format_peer(char out[static UAPI_PEER_TEXT_MAX], const struct wgf_peer *p,
                        enum uapi_op op);

#endif
