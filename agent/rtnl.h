/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* rtnl: the rtnetlink calls that create and configure the agent's interface. */
#ifndef WGF_AGENT_RTNL_H
#define WGF_AGENT_RTNL_H

/*
 * What `ip link add wg0 type wireguard`, `ip address add` and `ip link set up` do, and
 * no more: look a link up by name (its index, flags and kind), create a link of a
 * given kind, add an address, set a link up. Each call is one request answered by an
 * acknowledgement (nl.h). Adding an address uses NLM_F_REPLACE, so adding one that is
 * already there is not an error; creating a link that exists is -EEXIST.
 *
 * The builders work on bytes alone for the unit tests. Nothing here logs. Interface
 * names are checked against IFNAMSIZ (-EINVAL).
 */

#include <linux/netlink.h>
#include <stddef.h>

#include "cidr.h"

#define RTNL_KIND_MAX 32

struct rtnl;

struct rtnl_link {
	unsigned index;
	unsigned flags;           /* IFF_* */
	char kind[RTNL_KIND_MAX]; /* IFLA_INFO_KIND; "" when the link has none */
};

int rtnl_open(struct rtnl **ret);
void rtnl_free(struct rtnl *rt);

/* -ENODEV when there is no link of that name. */
int rtnl_link_get(struct rtnl *rt, const char *ifname, struct rtnl_link *ret);
int rtnl_link_create(struct rtnl *rt, const char *ifname, const char *kind);
int rtnl_link_set_up(struct rtnl *rt, unsigned ifindex);
/* The address with its prefix length, host bits included (10.100.0.1/24). */
int rtnl_addr_add(struct rtnl *rt, unsigned ifindex, const struct wgf_cidr *addr);

/* --- Building and parsing without a socket. Builders return 0 or -EMSGSIZE. --- */
int rtnl_build_link_get(void *buf, size_t size, const char *ifname);
int rtnl_build_link_create(void *buf, size_t size, const char *ifname, const char *kind);
int rtnl_build_link_set_up(void *buf, size_t size, unsigned ifindex);
int rtnl_build_addr_add(void *buf, size_t size, unsigned ifindex, const struct wgf_cidr *addr);

/* Parses an RTM_NEWLINK message (an nl_msg_fn; data is struct rtnl_link *). */
int rtnl_parse_link(const struct nlmsghdr *nlh, void *data);

#endif
