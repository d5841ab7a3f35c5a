/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* wgnl: WireGuard GET_DEVICE and SET_DEVICE over generic netlink, built and parsed by hand. */
#include "wgnl.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <sodium.h>

#include "backend.h"
#include "nl.h"

struct wgnl {
	struct nl *nl;
	uint16_t family; /* 0 until resolved */
	struct wgnl_stats stats;
	_Alignas(struct nlmsghdr) uint8_t buf[WGNL_MSG_SIZE];
};

static bool ifname_ok(const char *ifname)
{
	size_t len = ifname ? strnlen(ifname, IFNAMSIZ) : 0;

	return len > 0 && len < IFNAMSIZ;
}

/* A generic netlink request: the netlink header and the genetlink header. */
static struct nlmsghdr *put_genl_header(void *buf, uint16_t type, uint16_t flags, uint8_t cmd,
                                        uint8_t version)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

/* Room for the headers and a name: every builder needs at least this much. */
#define MIN_MSG_SIZE      (MNL_NLMSG_HDRLEN + MNL_ALIGN(GENL_HDRLEN) + MNL_ATTR_HDRLEN + 32)
/* The largest SET_DEVICE that wgnl_set_identity() builds: name, private key, port. */
#define IDENTITY_MSG_SIZE (MIN_MSG_SIZE + MNL_ATTR_HDRLEN + WGF_KEY_LEN + MNL_ATTR_HDRLEN + 4)

int wgnl_build_family_request(void *buf, size_t size)
{
	struct nlmsghdr *nlh;

	if (size < MIN_MSG_SIZE)
		return -EMSGSIZE;
	nlh = put_genl_header(buf, GENL_ID_CTRL, NLM_F_ACK, CTRL_CMD_GETFAMILY, 1);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	return 0;
}

int wgnl_build_get_device(void *buf, size_t size, uint16_t family, const char *ifname)
{
	struct nlmsghdr *nlh;

	if (!ifname_ok(ifname))
		return -EINVAL;
	if (size < MIN_MSG_SIZE)
		return -EMSGSIZE;
	nlh = put_genl_header(buf, family, NLM_F_DUMP, WG_CMD_GET_DEVICE, WG_GENL_VERSION);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	return 0;
}

static int check_allowed_ip(const struct wgf_cidr *c)
{
	if (c->addr.family == AF_INET)
		return c->prefix <= 32 ? 0 : -EINVAL;
	if (c->addr.family == AF_INET6)
		return c->prefix <= 128 ? 0 : -EINVAL;
	return -EINVAL;
}

static int check_peer(const struct wgf_peer *p)
{
	if (p->n_allowed_ips > WGF_PEER_ALLOWED_IPS_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < p->n_allowed_ips; i++)
		if (check_allowed_ip(&p->allowed_ips[i]) < 0)
			return -EINVAL;
	return 0;
}

static bool put_allowed_ip(struct nlmsghdr *nlh, size_t size, const struct wgf_cidr *c)
{
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, size, 0);

	if (!nest)
		return false;
	if (!mnl_attr_put_u16_check(nlh, size, WGALLOWEDIP_A_FAMILY, (uint16_t)c->addr.family) ||
	    !mnl_attr_put_check(nlh, size, WGALLOWEDIP_A_IPADDR, wgf_addr_len(&c->addr),
	                        c->addr.bytes) ||
	    !mnl_attr_put_u8_check(nlh, size, WGALLOWEDIP_A_CIDR_MASK, (uint8_t)c->prefix))
		return false;
	mnl_attr_nest_end(nlh, nest);
	return true;
}

/* Appends one peer; on false (no room) the message is as it was before. */
static bool put_peer(struct nlmsghdr *nlh, size_t size, const struct wgf_peer *p,
                     enum wgnl_peer_op op)
{
	struct nlattr *nest, *ips;

	nest = mnl_attr_nest_start_check(nlh, size, 0);
	if (!nest)
		return false;
	if (!mnl_attr_put_check(nlh, size, WGPEER_A_PUBLIC_KEY, WGF_KEY_LEN, p->public_key))
		goto cancel;
	if (op == WGNL_PEER_REMOVE) {
		if (!mnl_attr_put_u32_check(nlh, size, WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME))
			goto cancel;
		mnl_attr_nest_end(nlh, nest);
		return true;
	}
	/* The exact set: the kernel drops the old allowed IPs before adding these. */
	if (!mnl_attr_put_u32_check(nlh, size, WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS) ||
	    !mnl_attr_put_u16_check(nlh, size, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
	                            p->persistent_keepalive))
		goto cancel;
	if (p->n_allowed_ips > 0) {
		ips = mnl_attr_nest_start_check(nlh, size, WGPEER_A_ALLOWEDIPS);
		if (!ips)
			goto cancel;
		for (unsigned i = 0; i < p->n_allowed_ips; i++)
			if (!put_allowed_ip(nlh, size, &p->allowed_ips[i]))
				goto cancel;
		mnl_attr_nest_end(nlh, ips);
	}
	mnl_attr_nest_end(nlh, nest);
	return true;

cancel:
	mnl_attr_nest_cancel(nlh, nest);
	return false;
}

int wgnl_build_set_peers(void *buf, size_t size, uint16_t family, const char *ifname,
                         const struct wgf_peer *peers, size_t n, enum wgnl_peer_op op,
                         size_t *ret_count)
{
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	size_t count = 0;

	if (!ifname_ok(ifname) || n == 0)
		return -EINVAL;
	if (size < MIN_MSG_SIZE)
		return -EMSGSIZE;
	/* An attribute's length is 16 bits: the peers nest must stay shorter than that. */
	if (size > UINT16_MAX)
		size = UINT16_MAX;
	nlh = put_genl_header(buf, family, NLM_F_ACK, WG_CMD_SET_DEVICE, WG_GENL_VERSION);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	nest = mnl_attr_nest_start_check(nlh, size, WGDEVICE_A_PEERS);
	if (!nest)
		return -EMSGSIZE;
	for (; count < n; count++) {
		if (op == WGNL_PEER_SET && check_peer(&peers[count]) < 0)
			return -EINVAL;
		if (!put_peer(nlh, size, &peers[count], op))
			break;
	}
	if (count == 0)
		return -EMSGSIZE;
	mnl_attr_nest_end(nlh, nest);
	*ret_count = count;
	return 0;
}

int wgnl_build_set_identity(void *buf, size_t size, uint16_t family, const char *ifname,
                            const uint8_t *private_key, int listen_port)
{
	struct nlmsghdr *nlh;

	if (!ifname_ok(ifname) || (!private_key && listen_port < 0) || listen_port > UINT16_MAX)
		return -EINVAL;
	if (size < IDENTITY_MSG_SIZE)
		return -EMSGSIZE;
	nlh = put_genl_header(buf, family, NLM_F_ACK, WG_CMD_SET_DEVICE, WG_GENL_VERSION);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	if (private_key)
		mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, WGF_KEY_LEN, private_key);
	if (listen_port >= 0)
		mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, (uint16_t)listen_port);
	return 0;
}

/* The attributes of a generic netlink message, after its genetlink header. */
static int genl_attrs(const struct nlmsghdr *nlh, const void **ret_start, size_t *ret_len)
{
	size_t len = mnl_nlmsg_get_payload_len(nlh);

	if (len < GENL_HDRLEN)
		return -EBADMSG;
	*ret_start = mnl_nlmsg_get_payload_offset(nlh, GENL_HDRLEN);
	*ret_len = len - MNL_ALIGN(GENL_HDRLEN);
	return 0;
}

static int family_attr(const struct nlattr *attr, void *data)
{
	uint16_t *id = data;

	if (mnl_attr_get_type(attr) != CTRL_ATTR_FAMILY_ID)
		return 0;
	if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
		return -EBADMSG;
	*id = mnl_attr_get_u16(attr);
	return 0;
}

int wgnl_parse_family_reply(const struct nlmsghdr *nlh, void *data)
{
	uint16_t *ret_id = data, id = 0;
	const void *attrs;
	size_t len;
	int r;

	if (nlh->nlmsg_type != GENL_ID_CTRL)
		return -EBADMSG;
	r = genl_attrs(nlh, &attrs, &len);
	if (r < 0)
		return r;
	r = nl_attr_walk(attrs, len, family_attr, &id);
	if (r < 0)
		return r;
	if (id == 0)
		return -EBADMSG;
	*ret_id = id;
	return 0;
}

/* --- Parsing GET_DEVICE. --- */

/* An attribute of exactly len bytes of payload, or -EBADMSG. */
static int want_len(const struct nlattr *attr, size_t len)
{
	return mnl_attr_get_payload_len(attr) == len ? 0 : -EBADMSG;
}

struct allowedip_ctx {
	uint16_t family;
	uint8_t addr[16];
	size_t addr_len;
	int prefix; /* -1 until seen */
};

static int allowedip_attr(const struct nlattr *attr, void *data)
{
	struct allowedip_ctx *c = data;
	size_t len = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case WGALLOWEDIP_A_FAMILY:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return -EBADMSG;
		c->family = mnl_attr_get_u16(attr);
		break;
	case WGALLOWEDIP_A_IPADDR:
		if (len != 4 && len != 16)
			return -EBADMSG;
		memcpy(c->addr, mnl_attr_get_payload(attr), len);
		c->addr_len = len;
		break;
	case WGALLOWEDIP_A_CIDR_MASK:
		if (mnl_attr_validate(attr, MNL_TYPE_U8) < 0)
			return -EBADMSG;
		c->prefix = mnl_attr_get_u8(attr);
		break;
	default:
		break;
	}
	return 0;
}

static int parse_allowed_ip(const struct nlattr *nest, struct wgf_cidr *ret)
{
	struct allowedip_ctx c = {.prefix = -1};
	struct wgf_cidr cidr = {0};
	int bits, r;

	r = nl_attr_walk_nested(nest, allowedip_attr, &c);
	if (r < 0)
		return r;
	bits = c.family == AF_INET ? 32 : c.family == AF_INET6 ? 128 : 0;
	if (bits == 0 || c.addr_len != (size_t)bits / 8 || c.prefix < 0 || c.prefix > bits)
		return -EBADMSG;
	cidr.addr.family = c.family;
	memcpy(cidr.addr.bytes, c.addr, c.addr_len);
	cidr.prefix = (unsigned)c.prefix;
	*ret = cidr;
	return 0;
}

/* Keeps the first WGF_PEER_ALLOWED_IPS_MAX allowed IPs and flags the peer if there are more. */
/* Past WGF_PEER_ALLOWED_IPS_MAX the peer is marked, not refused; -ENOMEM. */
static int peer_add_allowed_ip(struct wgf_ip_pool *pool, struct wgf_peer *p,
                               const struct wgf_cidr *c)
{
	int r = wgf_peer_add_allowed_ip(pool, p, c);

	if (r == -E2BIG)
		p->flags |= BACKEND_PEER_F_TRUNCATED;
	return r == -E2BIG ? 0 : r;
}

/* A peer as one message holds it, before it is joined to its earlier part, if any. */
struct peer_ctx {
	struct wgf_peer peer;
	struct wgf_peer_seen seen;
	struct wgf_ip_pool *pool; /* borrowed: the device's */
	bool has_key;
};

static int allowedips_attr(const struct nlattr *attr, void *data)
{
	struct peer_ctx *pc = data;
	struct wgf_cidr c;
	int r;

	r = parse_allowed_ip(attr, &c);
	if (r < 0)
		return r;
	return peer_add_allowed_ip(pc->pool, &pc->peer, &c);
}

static int parse_endpoint(const struct nlattr *attr, struct wgf_peer_seen *p)
{
	const struct sockaddr *sa = mnl_attr_get_payload(attr);
	size_t len = mnl_attr_get_payload_len(attr);

	if (len == sizeof(struct sockaddr_in) && sa->sa_family == AF_INET)
		memcpy(&p->endpoint.in, sa, len);
	else if (len == sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6)
		memcpy(&p->endpoint.in6, sa, len);
	else
		return -EBADMSG;
	p->flags |= WGF_PEER_HAS_ENDPOINT;
	return 0;
}

static int parse_handshake(const struct nlattr *attr, struct wgf_peer_seen *p)
{
	struct __kernel_timespec ts;

	if (want_len(attr, sizeof(ts)) < 0)
		return -EBADMSG;
	memcpy(&ts, mnl_attr_get_payload(attr), sizeof(ts));
	if (ts.tv_sec < 0 || ts.tv_sec > INT64_MAX / 1000 - 1 || ts.tv_nsec < 0 ||
	    ts.tv_nsec >= 1000000000)
		return -EBADMSG;
	p->last_handshake_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	p->flags |= WGF_PEER_HAS_HANDSHAKE;
	return 0;
}

static int peer_attr(const struct nlattr *attr, void *data)
{
	struct peer_ctx *c = data;
	struct wgf_peer *p = &c->peer;
	struct wgf_peer_seen *seen = &c->seen;

	switch (mnl_attr_get_type(attr)) {
	case WGPEER_A_PUBLIC_KEY:
		if (want_len(attr, WGF_KEY_LEN) < 0)
			return -EBADMSG;
		memcpy(p->public_key, mnl_attr_get_payload(attr), WGF_KEY_LEN);
		c->has_key = true;
		return 0;
	case WGPEER_A_PRESHARED_KEY:
		/* Checked, never kept: the receive buffer holding it is wiped. */
		return want_len(attr, WGF_KEY_LEN);
	case WGPEER_A_FLAGS:
	case WGPEER_A_PROTOCOL_VERSION:
		return mnl_attr_validate(attr, MNL_TYPE_U32) < 0 ? -EBADMSG : 0;
	case WGPEER_A_ENDPOINT:
		return parse_endpoint(attr, seen);
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return -EBADMSG;
		p->persistent_keepalive = mnl_attr_get_u16(attr);
		p->flags |= WGF_PEER_HAS_KEEPALIVE;
		return 0;
	case WGPEER_A_LAST_HANDSHAKE_TIME:
		return parse_handshake(attr, seen);
	case WGPEER_A_RX_BYTES:
	case WGPEER_A_TX_BYTES:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) < 0)
			return -EBADMSG;
		if (mnl_attr_get_type(attr) == WGPEER_A_RX_BYTES)
			seen->rx_bytes = mnl_attr_get_u64(attr);
		else
			seen->tx_bytes = mnl_attr_get_u64(attr);
		seen->flags |= WGF_PEER_HAS_TRANSFER;
		return 0;
	case WGPEER_A_ALLOWEDIPS:
		return nl_attr_walk_nested(attr, allowedips_attr, c);
	default:
		return 0;
	}
}

/* Joins the later part of a peer cut between two messages to its first part. */
static int peer_join(struct wgf_device *dev, const struct peer_ctx *c)
{
	struct wgf_peer *dst = &dev->peers[dev->n_peers - 1];
	struct wgf_peer_seen *dst_seen = wgf_device_last_seen(dev);
	const struct wgf_peer *src = &c->peer;
	const struct wgf_peer_seen *src_seen = &c->seen;

	for (unsigned i = 0; i < src->n_allowed_ips; i++) {
		int r = peer_add_allowed_ip(&dev->ips, dst, &src->allowed_ips[i]);

		if (r < 0)
			return r;
	}
	if (src->flags & WGF_PEER_HAS_KEEPALIVE)
		dst->persistent_keepalive = src->persistent_keepalive;
	dst->flags |= src->flags;
	if (src_seen->flags & WGF_PEER_HAS_HANDSHAKE)
		dst_seen->last_handshake_ms = src_seen->last_handshake_ms;
	if (src_seen->flags & WGF_PEER_HAS_ENDPOINT)
		dst_seen->endpoint = src_seen->endpoint;
	if (src_seen->flags & WGF_PEER_HAS_TRANSFER) {
		dst_seen->rx_bytes = src_seen->rx_bytes;
		dst_seen->tx_bytes = src_seen->tx_bytes;
	}
	dst_seen->flags |= src_seen->flags;
	return 0;
}

struct device_ctx {
	struct wgnl_dump *st;
	size_t peers_in_msg;
};

static int peers_attr(const struct nlattr *attr, void *data)
{
	struct device_ctx *d = data;
	struct wgf_device *dev = d->st->dev;
	struct peer_ctx c;
	struct wgf_peer *p;
	int r;

	memset(&c, 0, sizeof(c));
	c.pool = &dev->ips;
	r = nl_attr_walk_nested(attr, peer_attr, &c);
	if (r < 0)
		return r;
	if (!c.has_key)
		return -EBADMSG;
	/* Only the first peer of a message can continue the last one of the message before. */
	if (dev->n_peers > 0 &&
	    memcmp(dev->peers[dev->n_peers - 1].public_key, c.peer.public_key, WGF_KEY_LEN) == 0) {
		if (d->peers_in_msg++ > 0 || d->st->n_msgs == 0)
			return -EBADMSG;
		return peer_join(dev, &c);
	}
	d->peers_in_msg++;
	p = wgf_device_add_peer(dev);
	if (!p)
		return dev->n_peers >= WGF_DEVICE_PEERS_MAX ? -E2BIG : -ENOMEM;
	*p = c.peer;
	*wgf_device_last_seen(dev) = c.seen;
	return 0;
}

static int device_attr(const struct nlattr *attr, void *data)
{
	struct device_ctx *d = data;
	struct wgf_device *dev = d->st->dev;
	size_t len;

	switch (mnl_attr_get_type(attr)) {
	case WGDEVICE_A_IFINDEX:
	case WGDEVICE_A_FWMARK:
	case WGDEVICE_A_FLAGS:
		return mnl_attr_validate(attr, MNL_TYPE_U32) < 0 ? -EBADMSG : 0;
	case WGDEVICE_A_IFNAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
			return -EBADMSG;
		len = strlen(mnl_attr_get_str(attr));
		if (len == 0 || len >= sizeof(dev->ifname))
			return -EBADMSG;
		memcpy(dev->ifname, mnl_attr_get_str(attr), len + 1);
		return 0;
	case WGDEVICE_A_PRIVATE_KEY:
		/* Checked, never kept: the receive buffer holding it is wiped. */
		return want_len(attr, WGF_KEY_LEN);
	case WGDEVICE_A_PUBLIC_KEY:
		if (want_len(attr, WGF_KEY_LEN) < 0)
			return -EBADMSG;
		memcpy(dev->public_key, mnl_attr_get_payload(attr), WGF_KEY_LEN);
		dev->flags |= WGF_DEVICE_HAS_PUBLIC_KEY;
		return 0;
	case WGDEVICE_A_LISTEN_PORT:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return -EBADMSG;
		dev->listen_port = mnl_attr_get_u16(attr);
		dev->flags |= WGF_DEVICE_HAS_LISTEN_PORT;
		return 0;
	case WGDEVICE_A_PEERS:
		return nl_attr_walk_nested(attr, peers_attr, d);
	default:
		return 0;
	}
}

int wgnl_parse_device_msg(const struct nlmsghdr *nlh, void *data)
{
	struct wgnl_dump *st = data;
	struct device_ctx d = {.st = st};
	const struct genlmsghdr *genl;
	const void *attrs;
	size_t len;
	int r;

	if (nlh->nlmsg_type != st->family)
		return -EBADMSG;
	r = genl_attrs(nlh, &attrs, &len);
	if (r < 0)
		return r;
	genl = mnl_nlmsg_get_payload(nlh);
	if (genl->cmd != WG_CMD_GET_DEVICE)
		return -EBADMSG;
	r = nl_attr_walk(attrs, len, device_attr, &d);
	if (r < 0)
		return r;
	st->n_msgs++;
	return 0;
}

/* --- The socket side. --- */

int wgnl_open(struct wgnl **ret)
{
	struct wgnl *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	r = nl_open(NETLINK_GENERIC, &w->nl);
	if (r < 0) {
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void wgnl_free(struct wgnl *w)
{
	if (!w)
		return;
	nl_free(w->nl);
	sodium_memzero(w->buf, sizeof(w->buf));
	free(w);
}

void wgnl_get_stats(const struct wgnl *w, struct wgnl_stats *ret)
{
	*ret = w->stats;
}

/* Looks the family up once; the module may be loaded later, so a failure is not kept. */
static int ensure_family(struct wgnl *w)
{
	uint16_t id = 0;
	int r;

	if (w->family != 0)
		return 0;
	r = wgnl_build_family_request(w->buf, sizeof(w->buf));
	if (r < 0)
		return r;
	r = nl_request(w->nl, (struct nlmsghdr *)w->buf, wgnl_parse_family_reply, &id);
	if (r == -ENOENT)
		return -EPROTONOSUPPORT;
	if (r < 0)
		return r;
	if (id == 0)
		return -EBADMSG;
	w->family = id;
	return 0;
}

/* After a failed request the family is looked up again, in case the module was reloaded. */
static int request(struct wgnl *w, nl_msg_fn cb, void *data)
{
	int r = nl_request(w->nl, (struct nlmsghdr *)w->buf, cb, data);

	if (r < 0 && r != -EINTR)
		w->family = 0;
	return r;
}

int wgnl_get_device(struct wgnl *w, const char *ifname, struct wgf_device *ret)
{
	int r;

	if (!ifname_ok(ifname))
		return -EINVAL;
	for (unsigned attempt = 0; attempt < WGNL_DUMP_TRIES; attempt++) {
		struct wgf_device dev = {.see = ret->see, .see_ctx = ret->see_ctx};
		struct wgnl_dump st = {.dev = &dev};

		r = ensure_family(w);
		if (r < 0)
			return r;
		st.family = w->family;
		r = wgnl_build_get_device(w->buf, sizeof(w->buf), w->family, ifname);
		if (r < 0)
			return r;
		memcpy(dev.ifname, ifname, strlen(ifname) + 1);
		w->stats.dumps++;
		r = request(w, wgnl_parse_device_msg, &st);
		if (r == 0 && st.n_msgs == 0)
			r = -EBADMSG;
		if (r == 0) {
			wgf_device_seen_done(&dev);
			*ret = dev;
			return 0;
		}
		wgf_device_fini(&dev);
		if (r != -EINTR)
			return r;
		wgf_device_seen_restart(&dev);
		w->stats.dumps_retried++;
	}
	return -EAGAIN;
}

static int send_peers(struct wgnl *w, const char *ifname, const struct wgf_peer *peers, size_t n,
                      enum wgnl_peer_op op)
{
	int r;

	if (!ifname_ok(ifname))
		return -EINVAL;
	/* Refuse a malformed set before any of it is applied. */
	for (size_t i = 0; op == WGNL_PEER_SET && i < n; i++)
		if (check_peer(&peers[i]) < 0)
			return -EINVAL;
	while (n > 0) {
		size_t count = 0;

		r = ensure_family(w);
		if (r < 0)
			return r;
		r = wgnl_build_set_peers(w->buf, sizeof(w->buf), w->family, ifname, peers, n, op,
		                         &count);
		if (r < 0)
			return r;
		r = request(w, NULL, NULL);
		if (r < 0)
			return r;
		w->stats.set_msgs++;
		if (op == WGNL_PEER_SET)
			w->stats.peers_set += count;
		else
			w->stats.peers_removed += count;
		peers += count;
		n -= count;
	}
	return 0;
}

int wgnl_set_peers(struct wgnl *w, const char *ifname, const struct wgf_peer *peers, size_t n)
{
	return send_peers(w, ifname, peers, n, WGNL_PEER_SET);
}

int wgnl_remove_peers(struct wgnl *w, const char *ifname, const struct wgf_peer *peers, size_t n)
{
	return send_peers(w, ifname, peers, n, WGNL_PEER_REMOVE);
}

int wgnl_set_identity(struct wgnl *w, const char *ifname, const uint8_t *private_key,
                      int listen_port)
{
	int r;

	r = ensure_family(w);
	if (r < 0)
		return r;
	r = wgnl_build_set_identity(w->buf, sizeof(w->buf), w->family, ifname, private_key,
	                            listen_port);
	if (r == 0) {
		r = request(w, NULL, NULL);
		if (r == 0)
			w->stats.set_msgs++;
	}
	/* The request held the private key. */
	sodium_memzero(w->buf, IDENTITY_MSG_SIZE);
	return r;
}
