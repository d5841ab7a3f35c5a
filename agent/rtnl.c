/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* rtnl: look up, create, address and raise a network link through rtnetlink and libmnl. */
#include "rtnl.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "nl.h"

/* Requests are small: a header, a name, a kind or an address. */
#define RTNL_MSG_SIZE 256

struct rtnl {
	struct nl *nl;
	_Alignas(struct nlmsghdr) uint8_t buf[RTNL_MSG_SIZE];
};

static bool ifname_ok(const char *ifname)
{
	size_t len = ifname ? strnlen(ifname, IFNAMSIZ) : 0;

	return len > 0 && len < IFNAMSIZ;
}

static struct nlmsghdr *put_link_header(void *buf, uint16_t type, uint16_t flags,
                                        struct ifinfomsg **ret_ifi)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	*ret_ifi = ifi;
	return nlh;
}

int rtnl_build_link_get(void *buf, size_t size, const char *ifname)
{
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;

	if (!ifname_ok(ifname))
		return -EINVAL;
	if (size < RTNL_MSG_SIZE)
		return -EMSGSIZE;
	nlh = put_link_header(buf, RTM_GETLINK, 0, &ifi);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	return 0;
}

int rtnl_build_link_create(void *buf, size_t size, const char *ifname, const char *kind)
{
	struct nlattr *linkinfo;
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;

	if (!ifname_ok(ifname) || !kind || strnlen(kind, RTNL_KIND_MAX) >= RTNL_KIND_MAX)
		return -EINVAL;
	if (size < RTNL_MSG_SIZE)
		return -EMSGSIZE;
	nlh = put_link_header(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_str(nlh, IFLA_INFO_KIND, kind);
	mnl_attr_nest_end(nlh, linkinfo);
	return 0;
}

int rtnl_build_link_set_up(void *buf, size_t size, unsigned ifindex)
{
	struct ifinfomsg *ifi;

	if (ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	if (size < RTNL_MSG_SIZE)
		return -EMSGSIZE;
	put_link_header(buf, RTM_NEWLINK, 0, &ifi);
	ifi->ifi_index = (int)ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return 0;
}

int rtnl_build_addr_add(void *buf, size_t size, unsigned ifindex, const struct wgf_cidr *addr)
{
	unsigned len = wgf_addr_len(&addr->addr);
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;

	if (ifindex == 0 || (addr->addr.family != AF_INET && addr->addr.family != AF_INET6) ||
	    addr->prefix > len * 8)
		return -EINVAL;
	if (size < RTNL_MSG_SIZE)
		return -EMSGSIZE;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	/* REPLACE: an address that is already there is updated, not an error. */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)addr->addr.family;
	ifa->ifa_prefixlen = (uint8_t)addr->prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	/* As `ip address add` without a peer: local and address are the same. */
	mnl_attr_put(nlh, IFA_LOCAL, len, addr->addr.bytes);
	mnl_attr_put(nlh, IFA_ADDRESS, len, addr->addr.bytes);
	return 0;
}

static int linkinfo_attr(const struct nlattr *attr, void *data)
{
	struct rtnl_link *link = data;
	size_t len;

	if (mnl_attr_get_type(attr) != IFLA_INFO_KIND)
		return 0;
	/* The kernel writes the kind with its NUL; accept it without one too. */
	len = strnlen(mnl_attr_get_payload(attr), mnl_attr_get_payload_len(attr));
	if (len == 0 || len >= sizeof(link->kind))
		return -EBADMSG;
	memcpy(link->kind, mnl_attr_get_payload(attr), len);
	link->kind[len] = '\0';
	return 0;
}

static int link_attr(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) != IFLA_LINKINFO)
		return 0;
	if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0)
		return -EBADMSG;
	return nl_attr_walk_nested(attr, linkinfo_attr, data);
}

int rtnl_parse_link(const struct nlmsghdr *nlh, void *data)
{
	struct rtnl_link *ret = data, link = {0};
	const struct ifinfomsg *ifi;
	size_t hdr = MNL_ALIGN(sizeof(*ifi));
	int r;

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < hdr)
		return -EBADMSG;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (ifi->ifi_index <= 0)
		return -EBADMSG;
	link.index = (unsigned)ifi->ifi_index;
	link.flags = ifi->ifi_flags;
	r = nl_attr_walk(mnl_nlmsg_get_payload_offset(nlh, hdr),
	                 mnl_nlmsg_get_payload_len(nlh) - hdr, link_attr, &link);
	if (r < 0)
		return r;
	*ret = link;
	return 0;
}

int rtnl_open(struct rtnl **ret)
{
	struct rtnl *rt;
	int r;

	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	r = nl_open(NETLINK_ROUTE, &rt->nl);
	if (r < 0) {
		free(rt);
		return r;
	}
	*ret = rt;
	return 0;
}

void rtnl_free(struct rtnl *rt)
{
	if (!rt)
		return;
	nl_free(rt->nl);
	free(rt);
}

int rtnl_link_get(struct rtnl *rt, const char *ifname, struct rtnl_link *ret)
{
	struct rtnl_link link = {0};
	int r;

	r = rtnl_build_link_get(rt->buf, sizeof(rt->buf), ifname);
	if (r < 0)
		return r;
	r = nl_request(rt->nl, (struct nlmsghdr *)rt->buf, rtnl_parse_link, &link);
	if (r < 0)
		return r;
	if (link.index == 0)
		return -EBADMSG;
	*ret = link;
	return 0;
}

int rtnl_link_create(struct rtnl *rt, const char *ifname, const char *kind)
{
	int r = rtnl_build_link_create(rt->buf, sizeof(rt->buf), ifname, kind);

	return r < 0 ? r : nl_request(rt->nl, (struct nlmsghdr *)rt->buf, NULL, NULL);
}

int rtnl_link_set_up(struct rtnl *rt, unsigned ifindex)
{
	int r = rtnl_build_link_set_up(rt->buf, sizeof(rt->buf), ifindex);

	return r < 0 ? r : nl_request(rt->nl, (struct nlmsghdr *)rt->buf, NULL, NULL);
}

int rtnl_addr_add(struct rtnl *rt, unsigned ifindex, const struct wgf_cidr *addr)
{
	int r = rtnl_build_addr_add(rt->buf, sizeof(rt->buf), ifindex, addr);

	return r < 0 ? r : nl_request(rt->nl, (struct nlmsghdr *)rt->buf, NULL, NULL);
}
