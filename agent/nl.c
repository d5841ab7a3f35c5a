/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* nl: a netlink socket, sending one request and reading its whole answer, attribute walks. */
#include "nl.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <sodium.h>

/*
 * The kernel sizes dump datagrams after the largest buffer recvmsg() was given, up to
 * 32 KiB (netlink_recvmsg, netlink_dump). A buffer that large means fewer system calls,
 * and every datagram fits in it.
 */
#define NL_RECV_SIZE 32768

struct nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	uint8_t buf[NL_RECV_SIZE];
};

int nl_open(int bus, struct nl **ret)
{
	struct nl *nl;
	int one = 1, r;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->sock = mnl_socket_open2(bus, SOCK_CLOEXEC);
	if (!nl->sock) {
		r = -errno;
		goto err_free;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto err_close;
	}
	/* Errors without the echoed request: it may hold a private key. */
	if (mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one)) < 0) {
		r = -errno;
		goto err_close;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	*ret = nl;
	return 0;

err_close:
	mnl_socket_close(nl->sock);
err_free:
	free(nl);
	return r;
}

void nl_free(struct nl *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->sock);
	sodium_memzero(nl->buf, sizeof(nl->buf));
	free(nl);
}

static void reply_error(struct nl_reply *st, int r)
{
	if (st->error == 0 && r < 0)
		st->error = r;
}

/* An NLMSG_ERROR: 0 acknowledges, anything else is an errno of either sign. */
static int parse_error_msg(struct nl_reply *st, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
		return -EBADMSG;
	if (e->error != 0)
		reply_error(st, e->error < 0 ? e->error : -e->error);
	return 0;
}

/* An NLMSG_DONE: a dump that failed midway says why in an int after the header. */
static void parse_done_msg(struct nl_reply *st, const struct nlmsghdr *nlh)
{
	const int *e = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(*e) && *e != 0)
		reply_error(st, *e < 0 ? *e : -*e);
}

int nl_reply_feed(struct nl_reply *st, const void *buf, size_t len, nl_msg_fn cb, void *data)
{
	const uint8_t *p = buf;

	while (len > 0) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)p;
		size_t step;
		int r;

		if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len)
			return -EBADMSG;
		if (nlh->nlmsg_seq == st->seq && mnl_nlmsg_portid_ok(nlh, st->portid)) {
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				st->interrupted = true;
			switch (nlh->nlmsg_type) {
			case NLMSG_NOOP:
				break;
			case NLMSG_OVERRUN:
				reply_error(st, -ENOBUFS);
				break;
			case NLMSG_ERROR:
				r = parse_error_msg(st, nlh);
				if (r < 0)
					return r;
				st->done = true;
				return 0;
			case NLMSG_DONE:
				parse_done_msg(st, nlh);
				st->done = true;
				return 0;
			default:
				/* After an error the rest is read out but no longer parsed. */
				if (st->error == 0 && cb)
					reply_error(st, cb(nlh, data));
				break;
			}
		}
		step = NLMSG_ALIGN(nlh->nlmsg_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return 1;
}

int nl_request(struct nl *nl, struct nlmsghdr *req, nl_msg_fn cb, void *data)
{
	struct nl_reply st = {.portid = nl->portid};
	ssize_t n;
	int r;

	if (++nl->seq == 0)
		nl->seq = 1;
	req->nlmsg_seq = st.seq = nl->seq;
	n = mnl_socket_sendto(nl->sock, req, req->nlmsg_len);
	if (n < 0)
		return -errno;
	if ((size_t)n != req->nlmsg_len)
		return -EIO;
	for (;;) {
		n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));
		if (n < 0) {
			r = -errno;
			if (r == -EINTR)
				continue;
			/* libmnl says ENOSPC for a datagram larger than the buffer. */
			return r == -ENOSPC ? -EMSGSIZE : r;
		}
		r = nl_reply_feed(&st, nl->buf, (size_t)n, cb, data);
		sodium_memzero(nl->buf, (size_t)n);
		if (r <= 0)
			break;
	}
	if (r < 0)
		return r;
	if (st.error < 0)
		return st.error;
	return st.interrupted ? -EINTR : 0;
}

int nl_attr_walk(const void *start, size_t len, nl_attr_fn cb, void *data)
{
	const uint8_t *p = start;

	while (len > 0) {
		const struct nlattr *attr = (const struct nlattr *)p;
		size_t step;
		int r;

		if (len < sizeof(*attr) || attr->nla_len < sizeof(*attr) || attr->nla_len > len)
			return -EBADMSG;
		r = cb(attr, data);
		if (r < 0)
			return r;
		step = NLA_ALIGN(attr->nla_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return 0;
}

int nl_attr_walk_nested(const struct nlattr *nest, nl_attr_fn cb, void *data)
{
	return nl_attr_walk(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), cb, data);
}
