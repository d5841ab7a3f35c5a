/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* nl: one netlink socket and the request-and-answer exchange that wgnl.c and rtnl.c share. */
#ifndef WGF_AGENT_NL_H
#define WGF_AGENT_NL_H

/*
 * A request is one message that the caller builds in its own buffer, with NLM_F_REQUEST
 * and either NLM_F_ACK (a change: the answer is one NLMSG_ERROR carrying 0 or -errno) or
 * NLM_F_DUMP (a read: data messages, in as many datagrams as the kernel likes, closed by
 * NLMSG_DONE). nl_request() stamps a fresh sequence number, sends, and reads until the
 * answer is complete, handing each data message to a callback.
 *
 * It always reads the whole answer, even after the callback or the kernel reported an
 * error, so the socket is in step for the next request; messages that carry another
 * sequence number or port (left over from an answer abandoned on a receive error) are
 * dropped. The first error wins: the kernel's (normalised to -errno, as wg-tools'
 * mnlg_cb_error does), or the callback's own negative return.
 *
 * A multi-part dump during which the kernel's object changed carries NLM_F_DUMP_INTR:
 * the parts do not form one consistent picture. nl_request() then returns -EINTR once
 * the dump is read out, and the caller starts over with a fresh result.
 *
 * Secrets: WireGuard's dump carries the interface's private key and the peers' preshared
 * keys, so the receive buffer is wiped after every datagram. NETLINK_CAP_ACK is set, so
 * the kernel does not echo a failed request (which may hold a private key) in its error.
 *
 * The answer parser (nl_reply_feed) works on bytes alone, so it is tested without a
 * socket. No function here logs.
 */

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nl;

/* Called for each data message of an answer; a negative return is kept as the error. */
typedef int (*nl_msg_fn)(const struct nlmsghdr *nlh, void *data);

/* Opens and binds a netlink socket of the given bus (NETLINK_ROUTE, NETLINK_GENERIC). */
int nl_open(int bus, struct nl **ret);
void nl_free(struct nl *nl);

/*
 * Sends req (its nlmsg_seq is overwritten) and reads the whole answer, calling cb (may
 * be NULL) for each data message. 0 when the kernel accepted the request, -errno from
 * the kernel or the callback, -EINTR for an interrupted dump, -EBADMSG for an answer
 * that is not well-formed netlink.
 */
int nl_request(struct nl *nl, struct nlmsghdr *req, nl_msg_fn cb, void *data);

/* The state of one answer being read; set seq and portid, zero the rest. */
struct nl_reply {
	uint32_t seq, portid;
	int error;        /* the first error, 0 while there is none */
	bool interrupted; /* some part carried NLM_F_DUMP_INTR */
	bool done;        /* the closing NLMSG_DONE or NLMSG_ERROR was seen */
};

/*
 * Feeds one received datagram of len bytes. Returns 1 when more datagrams belong to the
 * answer, 0 when it is complete (see st->error and st->interrupted), -EBADMSG when the
 * datagram is not a sequence of whole netlink messages.
 */
int nl_reply_feed(struct nl_reply *st, const void *buf, size_t len, nl_msg_fn cb, void *data);

/*
 * Walks the attributes in [start, start + len): calls cb for each one and returns its
 * first negative return, or -EBADMSG when an attribute is shorter than its header or
 * runs past the end (libmnl's own walk silently stops there).
 */
typedef int (*nl_attr_fn)(const struct nlattr *attr, void *data);
int nl_attr_walk(const void *start, size_t len, nl_attr_fn cb, void *data);
int nl_attr_walk_nested(const struct nlattr *nest, nl_attr_fn cb, void *data);

#endif
