/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wgnl: kernel WireGuard's generic netlink family, read and written through libmnl. */
#ifndef WGF_AGENT_WGNL_H
#define WGF_AGENT_WGNL_H

/*
 * The kernel module registers a generic netlink family named "wireguard"
 * (linux/wireguard.h) with two commands. GET_DEVICE is a dump: the device's attributes
 * come first, then its peers, nested, each with its nested allowed IPs, spread over as
 * many messages as the kernel needs. A peer with many allowed IPs may be cut between
 * two messages: the next one starts with the same public key and the rest of its
 * allowed IPs, and the parser joins the two. Every attribute's length is checked
 * against its type before use; unknown attribute types are skipped, so a newer kernel
 * still parses. A dump that the kernel flags NLM_F_DUMP_INTR (a change landed while it
 * ran) is thrown away and read again, a bounded number of times.
 *
 * SET_DEVICE changes are diffs, never a replacement: WGDEVICE_F_REPLACE_PEERS is never
 * sent, because on a live interface it tears down every session. Peers go out in as
 * many messages as they need (at most WGNL_MSG_SIZE bytes each; a peer is never cut, it
 * always fits), each peer with WGPEER_F_REPLACE_ALLOWEDIPS, its exact allowed IPs and
 * its keepalive, or with WGPEER_F_REMOVE_ME alone. The private key and listen port are
 * sent only by wgnl_set_identity(); buffers that held a private key (the request, and
 * the dump, which carries it too) are wiped.
 *
 * The family is resolved (CTRL_CMD_GETFAMILY) on first use and again after a failure,
 * because the module may be loaded only when the first interface is created.
 *
 * The message builders and the reply parsers below work on bytes alone, so the unit
 * tests check them without a kernel. Nothing here logs. Errors: -EINVAL for a bad
 * interface name or peer, -ENODEV for a missing interface, -EOPNOTSUPP for an
 * interface that is not WireGuard, -EPROTONOSUPPORT when the kernel has no WireGuard
 * at all, -EBADMSG for a reply that breaks the protocol, -EAGAIN when every dump
 * attempt was interrupted, or the kernel's -errno.
 */

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"

/* The largest SET_DEVICE message sent; an attribute nest must stay below 64 KiB. */
#define WGNL_MSG_SIZE   32768
/* How often a dump interrupted by a concurrent change is started over. */
#define WGNL_DUMP_TRIES 10

struct wgnl;

/* What went over the socket, for tests and metrics. */
struct wgnl_stats {
	uint64_t set_msgs;      /* SET_DEVICE messages sent */
	uint64_t peers_set;     /* peers added or updated */
	uint64_t peers_removed; /* peers removed */
	uint64_t dumps;         /* GET_DEVICE dumps started, retries included */
	uint64_t dumps_retried; /* dumps thrown away because of NLM_F_DUMP_INTR */
};

int wgnl_open(struct wgnl **ret);
void wgnl_free(struct wgnl *w);

/* Fills ret, which must be empty; on failure it is left empty. */
int wgnl_get_device(struct wgnl *w, const char *ifname, struct wgf_device *ret);

/* See backend.h for the contracts: exact allowed IPs and keepalive; absent is no error. */
int wgnl_set_peers(struct wgnl *w, const char *ifname, const struct wgf_peer *peers, size_t n);
int wgnl_remove_peers(struct wgnl *w, const char *ifname, const struct wgf_peer *peers, size_t n);

/* Sets the private key (when not NULL) and the listen port (when >= 0), nothing else. */
int wgnl_set_identity(struct wgnl *w, const char *ifname, const uint8_t *private_key,
                      int listen_port);

void wgnl_get_stats(const struct wgnl *w, struct wgnl_stats *ret);

/* --- Building and parsing without a socket (for wgnl.c and its unit tests). --- */

enum wgnl_peer_op {
	WGNL_PEER_SET,
	WGNL_PEER_REMOVE,
};

/* Each builder writes one request at buf: 0, or -EMSGSIZE when size is too small. */
int wgnl_build_family_request(void *buf, size_t size);
int wgnl_build_get_device(void *buf, size_t size, uint16_t family, const char *ifname);

/*
 * Builds one SET_DEVICE message holding as many of peers[0..n) as fit in size bytes and
 * stores that count (>= 1) in *ret_count. -EMSGSIZE when not even one peer fits,
 * -EINVAL for n == 0 or a peer whose allowed IPs are malformed.
 */
int wgnl_build_set_peers(void *buf, size_t size, uint16_t family, const char *ifname,
                         const struct wgf_peer *peers, size_t n, enum wgnl_peer_op op,
                         size_t *ret_count);

/* private_key may be NULL and listen_port < 0 for "leave it"; -EINVAL when both are. */
int wgnl_build_set_identity(void *buf, size_t size, uint16_t family, const char *ifname,
                            const uint8_t *private_key, int listen_port);

/* Reads the family id out of the controller's answer (an nl_msg_fn; data is uint16_t *). */
int wgnl_parse_family_reply(const struct nlmsghdr *nlh, void *data);

/* One GET_DEVICE dump being parsed: set family and dev (empty); zero the rest. */
struct wgnl_dump {
	uint16_t family;
	struct wgf_device *dev;
	size_t n_msgs; /* messages parsed so far */
};

/* Parses one message of the dump into st->dev (an nl_msg_fn; data is struct wgnl_dump *). */
int wgnl_parse_device_msg(const struct nlmsghdr *nlh, void *data);

#endif
