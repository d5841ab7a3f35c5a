/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for agent/wgnl.c, nl.c and rtnl.c: netlink messages built and parsed as bytes. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <sodium.h>

#include "backend.h"
#include "nl.h"
#include "rtnl.h"
#include "seen_sink.h"
#include "wgnl.h"

#define FAMILY 0x1d
#define SEQ    4242
#define PORTID 777

/* --- Helpers: a datagram of several messages, as the kernel would send it. --- */

struct dgram {
	_Alignas(struct nlmsghdr) uint8_t buf[65536];
	size_t len;
};

static struct nlmsghdr *dgram_msg(struct dgram *d, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(d->buf + d->len);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = SEQ;
	nlh->nlmsg_pid = PORTID;
	return nlh;
}

static void dgram_end(struct dgram *d, struct nlmsghdr *nlh)
{
	d->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* A GET_DEVICE reply message being built. */
static struct nlmsghdr *dump_msg(struct dgram *d, uint16_t flags)
{
	struct nlmsghdr *nlh = dgram_msg(d, FAMILY, NLM_F_MULTI | flags);
	struct genlmsghdr *genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));

	genl->cmd = WG_CMD_GET_DEVICE;
	genl->version = WG_GENL_VERSION;
	return nlh;
}

static void dgram_done(struct dgram *d, int error)
{
	struct nlmsghdr *nlh = dgram_msg(d, NLMSG_DONE, NLM_F_MULTI);
	int *e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));

	*e = error;
	dgram_end(d, nlh);
}

static void dgram_error(struct dgram *d, int error)
{
	struct nlmsghdr *nlh = dgram_msg(d, NLMSG_ERROR, 0);
	struct nlmsgerr *e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));

	e->error = error;
	dgram_end(d, nlh);
}

static void fill_key(uint8_t key[static WGF_KEY_LEN], uint8_t v)
{
	memset(key, v, WGF_KEY_LEN);
}

static void put_key(struct nlmsghdr *nlh, uint16_t type, uint8_t v)
{
	uint8_t key[WGF_KEY_LEN];

	fill_key(key, v);
	mnl_attr_put(nlh, type, sizeof(key), key);
}

static void put_ip(struct nlmsghdr *nlh, int family, const char *addr, uint8_t prefix)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, 0);
	uint8_t bytes[16];

	assert_int_equal(inet_pton(family, addr, bytes), 1);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, (uint16_t)family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, family == AF_INET ? 4 : 16, bytes);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, prefix);
	mnl_attr_nest_end(nlh, nest);
}

/* 10.0.<hi>.<lo>/32 for i = hi * 256 + lo. */
static void put_ip_n(struct nlmsghdr *nlh, unsigned i)
{
	char text[32];

	snprintf(text, sizeof(text), "10.0.%u.%u", i / 256, i % 256);
	put_ip(nlh, AF_INET, text, 32);
}

/* The device attributes the kernel sends first. */
static void put_device_attrs(struct nlmsghdr *nlh)
{
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	put_key(nlh, WGDEVICE_A_PRIVATE_KEY, 0xee);
	put_key(nlh, WGDEVICE_A_PUBLIC_KEY, 0xd0);
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0);
}

/* A peer with every attribute the kernel sends and allowed IPs [first, first + n). */
static void put_full_peer(struct nlmsghdr *nlh, uint8_t key, unsigned first, unsigned n)
{
	struct nlattr *peer = mnl_attr_nest_start(nlh, 0), *ips;
	struct __kernel_timespec ts = {.tv_sec = 1795604061, .tv_nsec = 825243494};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4500)};

	inet_pton(AF_INET, "192.0.2.2", &sin.sin_addr);
	put_key(nlh, WGPEER_A_PUBLIC_KEY, key);
	put_key(nlh, WGPEER_A_PRESHARED_KEY, 0);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 840);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 860);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
	if (n > 0) {
		ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
		for (unsigned i = 0; i < n; i++)
			put_ip_n(nlh, first + i);
		mnl_attr_nest_end(nlh, ips);
	}
	mnl_attr_nest_end(nlh, peer);
}

/* The rest of a peer cut between messages: its key and more allowed IPs. */
static void put_peer_tail(struct nlmsghdr *nlh, uint8_t key, unsigned first, unsigned n)
{
	struct nlattr *peer = mnl_attr_nest_start(nlh, 0);
	struct nlattr *ips;

	put_key(nlh, WGPEER_A_PUBLIC_KEY, key);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	for (unsigned i = 0; i < n; i++)
		put_ip_n(nlh, first + i);
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
}

/* Feeds a whole datagram to a dump parser; returns the answer's error (0, -errno). */
static int parse_dgram(const struct dgram *d, struct wgf_device *dev, struct nl_reply *ret_st)
{
	struct wgnl_dump st = {.family = FAMILY, .dev = dev};
	struct nl_reply reply = {.seq = SEQ, .portid = PORTID};
	int r;

	r = nl_reply_feed(&reply, d->buf, d->len, wgnl_parse_device_msg, &st);
	if (ret_st)
		*ret_st = reply;
	if (r < 0)
		return r;
	assert_int_equal(r, 0);
	assert_true(reply.done);
	return reply.error;
}

static struct wgf_cidr cidr(const char *text)
{
	struct wgf_cidr c;

	assert_int_equal(wgf_cidr_parse(&c, text, WGF_CIDR_F_PREFIX_OPTIONAL, NULL), 0);
	return c;
}

/* The allowed IPs of the peers make_peer builds; reachable until exit. */
static struct wgf_ip_pool test_ips;

static void make_peer(struct wgf_peer *p, unsigned i, unsigned n_ips)
{
	memset(p, 0, sizeof(*p));
	fill_key(p->public_key, 0);
	p->public_key[0] = (uint8_t)(i >> 8);
	p->public_key[1] = (uint8_t)i;
	p->public_key[31] = 0x42;
	for (unsigned j = 0; j < n_ips; j++) {
		char text[64];

		struct wgf_cidr c;

		snprintf(text, sizeof(text), "fd00:%x::%x/128", i, j + 1);
		c = cidr(text);
		assert_int_equal(wgf_peer_add_allowed_ip(&test_ips, p, &c), 0);
	}
	p->persistent_keepalive = (uint16_t)(i % 2 ? 25 : 0);
}

/* --- What a built request looks like, read back with libmnl. --- */

struct seen {
	unsigned count[WGDEVICE_A_MAX + 1];
	const struct nlattr *attr[WGDEVICE_A_MAX + 1];
};

static int seen_attr(const struct nlattr *attr, void *data)
{
	struct seen *s = data;
	uint16_t type = mnl_attr_get_type(attr);

	assert_true(type <= WGDEVICE_A_MAX);
	s->count[type]++;
	s->attr[type] = attr;
	return MNL_CB_OK;
}

static void read_genl(const struct nlmsghdr *nlh, uint16_t type, uint8_t cmd, struct seen *s)
{
	const struct genlmsghdr *genl = mnl_nlmsg_get_payload(nlh);

	assert_int_equal(nlh->nlmsg_type, type);
	assert_true(nlh->nlmsg_flags & NLM_F_REQUEST);
	assert_int_equal(genl->cmd, cmd);
	memset(s, 0, sizeof(*s));
	assert_int_equal(mnl_attr_parse(nlh, GENL_HDRLEN, seen_attr, s), MNL_CB_OK);
}

struct built_peer {
	uint8_t key[WGF_KEY_LEN];
	uint32_t flags;
	int keepalive; /* -1 when absent */
	unsigned n_ips;
	struct wgf_cidr ips[WGF_PEER_ALLOWED_IPS_MAX];
	unsigned n_attrs;
};

static int built_ip_attr(const struct nlattr *attr, void *data)
{
	struct wgf_cidr *c = data;

	switch (mnl_attr_get_type(attr)) {
	case WGALLOWEDIP_A_FAMILY:
		c->addr.family = mnl_attr_get_u16(attr);
		break;
	case WGALLOWEDIP_A_IPADDR:
		memcpy(c->addr.bytes, mnl_attr_get_payload(attr), mnl_attr_get_payload_len(attr));
		break;
	case WGALLOWEDIP_A_CIDR_MASK:
		c->prefix = mnl_attr_get_u8(attr);
		break;
	default:
		fail_msg("unexpected allowed IP attribute %u", mnl_attr_get_type(attr));
	}
	return MNL_CB_OK;
}

static int built_ips_attr(const struct nlattr *attr, void *data)
{
	struct built_peer *p = data;
	struct wgf_cidr c = {0};

	assert_true(p->n_ips < WGF_PEER_ALLOWED_IPS_MAX);
	assert_int_equal(mnl_attr_parse_nested(attr, built_ip_attr, &c), MNL_CB_OK);
	p->ips[p->n_ips++] = c;
	return MNL_CB_OK;
}

static int built_peer_attr(const struct nlattr *attr, void *data)
{
	struct built_peer *p = data;

	p->n_attrs++;
	switch (mnl_attr_get_type(attr)) {
	case WGPEER_A_PUBLIC_KEY:
		assert_int_equal(mnl_attr_get_payload_len(attr), WGF_KEY_LEN);
		memcpy(p->key, mnl_attr_get_payload(attr), WGF_KEY_LEN);
		break;
	case WGPEER_A_FLAGS:
		assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_U32), 0);
		p->flags = mnl_attr_get_u32(attr);
		break;
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_U16), 0);
		p->keepalive = mnl_attr_get_u16(attr);
		break;
	case WGPEER_A_ALLOWEDIPS:
		assert_int_equal(mnl_attr_parse_nested(attr, built_ips_attr, p), MNL_CB_OK);
		break;
	default:
		fail_msg("unexpected peer attribute %u", mnl_attr_get_type(attr));
	}
	return MNL_CB_OK;
}

struct built_peers {
	struct built_peer *peers;
	size_t n, cap;
};

static int built_peers_attr(const struct nlattr *attr, void *data)
{
	struct built_peers *b = data;
	struct built_peer *p;

	assert_true(b->n < b->cap);
	p = &b->peers[b->n++];
	memset(p, 0, sizeof(*p));
	p->keepalive = -1;
	assert_int_equal(mnl_attr_parse_nested(attr, built_peer_attr, p), MNL_CB_OK);
	return MNL_CB_OK;
}

/* Reads the peers of a built SET_DEVICE, checking that nothing else is in it. */
static void read_set_peers(const struct nlmsghdr *nlh, struct built_peers *b)
{
	struct seen s;

	read_genl(nlh, FAMILY, WG_CMD_SET_DEVICE, &s);
	assert_true(nlh->nlmsg_flags & NLM_F_ACK);
	assert_int_equal(s.count[WGDEVICE_A_IFNAME], 1);
	assert_string_equal(mnl_attr_get_str(s.attr[WGDEVICE_A_IFNAME]), "wg0");
	assert_int_equal(s.count[WGDEVICE_A_PEERS], 1);
	/* Never the device flags (REPLACE_PEERS), never the key or the port. */
	assert_int_equal(s.count[WGDEVICE_A_FLAGS], 0);
	assert_int_equal(s.count[WGDEVICE_A_PRIVATE_KEY], 0);
	assert_int_equal(s.count[WGDEVICE_A_LISTEN_PORT], 0);
	assert_int_equal(mnl_attr_parse_nested(s.attr[WGDEVICE_A_PEERS], built_peers_attr, b),
	                 MNL_CB_OK);
}

/* --- Tests: building requests. --- */

static void test_family_request(void **state)
{
	_Alignas(struct nlmsghdr) uint8_t buf[256];
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	const struct genlmsghdr *genl;
	const struct nlattr *attr;

	(void)state;
	assert_int_equal(wgnl_build_family_request(buf, 16), -EMSGSIZE);
	assert_int_equal(wgnl_build_family_request(buf, sizeof(buf)), 0);
	assert_int_equal(nlh->nlmsg_type, GENL_ID_CTRL);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	genl = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(genl->cmd, CTRL_CMD_GETFAMILY);
	/* Exactly one attribute: the name, with its NUL. */
	attr = mnl_nlmsg_get_payload_offset(nlh, GENL_HDRLEN);
	assert_int_equal(mnl_attr_get_type(attr), CTRL_ATTR_FAMILY_NAME);
	assert_int_equal(mnl_attr_get_payload_len(attr), sizeof("wireguard"));
	assert_memory_equal(mnl_attr_get_payload(attr), "wireguard", sizeof("wireguard"));
	assert_int_equal(nlh->nlmsg_len, MNL_NLMSG_HDRLEN + GENL_HDRLEN + MNL_ALIGN(4 + 10));
}

static struct nlmsghdr *ctrl_reply(struct dgram *d)
{
	struct nlmsghdr *nlh = dgram_msg(d, GENL_ID_CTRL, 0);
	struct genlmsghdr *genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	struct nlattr *ops, *op;

	genl->cmd = CTRL_CMD_NEWFAMILY;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "wireguard");
	mnl_attr_put_u32(nlh, CTRL_ATTR_VERSION, 1);
	ops = mnl_attr_nest_start(nlh, CTRL_ATTR_OPS);
	op = mnl_attr_nest_start(nlh, 1);
	mnl_attr_put_u32(nlh, CTRL_ATTR_OP_ID, 0);
	mnl_attr_nest_end(nlh, op);
	mnl_attr_nest_end(nlh, ops);
	return nlh;
}

static void test_family_reply(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct nlmsghdr *nlh;
	uint16_t id = 0;

	(void)state;
	nlh = ctrl_reply(d);
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, FAMILY);
	assert_int_equal(wgnl_parse_family_reply(nlh, &id), 0);
	assert_int_equal(id, FAMILY);

	/* The id as a u32 is a wrong length. */
	d->len = 0;
	nlh = ctrl_reply(d);
	mnl_attr_put_u32(nlh, CTRL_ATTR_FAMILY_ID, FAMILY);
	id = 0;
	assert_int_equal(wgnl_parse_family_reply(nlh, &id), -EBADMSG);
	assert_int_equal(id, 0);

	/* No id at all. */
	d->len = 0;
	nlh = ctrl_reply(d);
	assert_int_equal(wgnl_parse_family_reply(nlh, &id), -EBADMSG);
	free(d);
}

static void test_get_device_request(void **state)
{
	_Alignas(struct nlmsghdr) uint8_t buf[256];
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	const struct genlmsghdr *genl;
	struct seen s;

	(void)state;
	assert_int_equal(wgnl_build_get_device(buf, sizeof(buf), FAMILY, "wg0"), 0);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
	genl = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(genl->version, WG_GENL_VERSION);
	read_genl(nlh, FAMILY, WG_CMD_GET_DEVICE, &s);
	assert_int_equal(s.count[WGDEVICE_A_IFNAME], 1);
	assert_string_equal(mnl_attr_get_str(s.attr[WGDEVICE_A_IFNAME]), "wg0");

	/* IFNAMSIZ is 16 with the NUL: 15 characters pass, 16 do not. */
	assert_int_equal(wgnl_build_get_device(buf, sizeof(buf), FAMILY, "abcdefghijklmno"), 0);
	assert_int_equal(wgnl_build_get_device(buf, sizeof(buf), FAMILY, "abcdefghijklmnop"),
	                 -EINVAL);
	assert_int_equal(wgnl_build_get_device(buf, sizeof(buf), FAMILY, ""), -EINVAL);
}

static void test_set_one_peer(void **state)
{
	_Alignas(struct nlmsghdr) uint8_t buf[WGNL_MSG_SIZE];
	struct built_peer got[4];
	struct built_peers b = {.peers = got, .cap = 4};
	struct wgf_cidr ips[2];
	struct wgf_peer p;
	size_t count = 0;

	(void)state;
	memset(&p, 0, sizeof(p));
	fill_key(p.public_key, 0x11);
	p.allowed_ips = ips;
	ips[0] = cidr("10.100.0.2/32");
	ips[1] = cidr("fd00::2/128");
	p.n_allowed_ips = 2;
	p.persistent_keepalive = 25;
	assert_int_equal(
	        wgnl_build_set_peers(buf, sizeof(buf), FAMILY, "wg0", &p, 1, WGNL_PEER_SET, &count),
	        0);
	assert_int_equal(count, 1);
	read_set_peers((struct nlmsghdr *)buf, &b);
	assert_int_equal(b.n, 1);
	assert_memory_equal(got[0].key, p.public_key, WGF_KEY_LEN);
	assert_int_equal(got[0].flags, WGPEER_F_REPLACE_ALLOWEDIPS);
	assert_int_equal(got[0].keepalive, 25);
	assert_int_equal(got[0].n_ips, 2);
	assert_int_equal(got[0].ips[0].addr.family, AF_INET);
	assert_memory_equal(got[0].ips[0].addr.bytes, "\x0a\x64\x00\x02", 4);
	assert_int_equal(got[0].ips[0].prefix, 32);
	assert_int_equal(got[0].ips[1].addr.family, AF_INET6);
	assert_memory_equal(got[0].ips[1].addr.bytes, p.allowed_ips[1].addr.bytes, 16);
	assert_int_equal(got[0].ips[1].prefix, 128);
	/* A small message: one peer is one small request. */
	assert_true(((struct nlmsghdr *)buf)->nlmsg_len < 200);

	/* Keepalive 0 is sent too (it turns keepalive off); no allowed IPs, no nest. */
	p.persistent_keepalive = 0;
	p.n_allowed_ips = 0;
	b.n = 0;
	assert_int_equal(
	        wgnl_build_set_peers(buf, sizeof(buf), FAMILY, "wg0", &p, 1, WGNL_PEER_SET, &count),
	        0);
	read_set_peers((struct nlmsghdr *)buf, &b);
	assert_int_equal(got[0].keepalive, 0);
	assert_int_equal(got[0].n_ips, 0);
	assert_int_equal(got[0].flags, WGPEER_F_REPLACE_ALLOWEDIPS);
	assert_int_equal(got[0].n_attrs, 3);
}

static void test_remove_peer(void **state)
{
	_Alignas(struct nlmsghdr) uint8_t buf[WGNL_MSG_SIZE];
	struct built_peer got[4];
	struct built_peers b = {.peers = got, .cap = 4};
	struct wgf_peer p[2];
	size_t count = 0;

	(void)state;
	make_peer(&p[0], 1, 3);
	make_peer(&p[1], 2, 0);
	assert_int_equal(wgnl_build_set_peers(buf, sizeof(buf), FAMILY, "wg0", p, 2,
	                                      WGNL_PEER_REMOVE, &count),
	                 0);
	assert_int_equal(count, 2);
	read_set_peers((struct nlmsghdr *)buf, &b);
	assert_int_equal(b.n, 2);
	for (size_t i = 0; i < 2; i++) {
		/* The key and the flag, nothing else. */
		assert_memory_equal(got[i].key, p[i].public_key, WGF_KEY_LEN);
		assert_int_equal(got[i].flags, WGPEER_F_REMOVE_ME);
		assert_int_equal(got[i].n_attrs, 2);
		assert_int_equal(got[i].keepalive, -1);
	}
}

/* Sends n peers through builds of size bytes; checks that every peer went once, in order. */
static size_t build_all(struct wgf_peer *peers, size_t n, size_t size, enum wgnl_peer_op op)
{
	uint8_t *buf = aligned_alloc(8, WGNL_MSG_SIZE);
	struct built_peer *got = calloc(n, sizeof(*got));
	struct built_peers b = {.peers = got, .cap = n};
	size_t done = 0, msgs = 0;

	assert_non_null(buf);
	assert_non_null(got);
	while (done < n) {
		size_t count = 0, before = b.n;

		assert_int_equal(wgnl_build_set_peers(buf, size, FAMILY, "wg0", peers + done,
		                                      n - done, op, &count),
		                 0);
		assert_true(count >= 1);
		assert_true(((struct nlmsghdr *)buf)->nlmsg_len <= size);
		read_set_peers((struct nlmsghdr *)buf, &b);
		/* Whole peers only: each one carries its full allowed-IP set and flag. */
		assert_int_equal(b.n - before, count);
		for (size_t i = before; i < b.n; i++) {
			assert_memory_equal(got[i].key, peers[i].public_key, WGF_KEY_LEN);
			if (op == WGNL_PEER_SET) {
				assert_int_equal(got[i].n_ips, peers[i].n_allowed_ips);
				assert_int_equal(got[i].flags, WGPEER_F_REPLACE_ALLOWEDIPS);
				assert_int_equal(got[i].keepalive, peers[i].persistent_keepalive);
			}
		}
		done += count;
		msgs++;
	}
	assert_int_equal(b.n, n);
	free(got);
	free(buf);
	return msgs;
}

static void test_set_peers_split(void **state)
{
	size_t n = 10000, msgs;
	struct wgf_peer *peers = calloc(n, sizeof(*peers));

	(void)state;
	assert_non_null(peers);
	for (size_t i = 0; i < n; i++)
		make_peer(&peers[i], (unsigned)i, 1 + (unsigned)(i % 3));
	msgs = build_all(peers, n, WGNL_MSG_SIZE, WGNL_PEER_SET);
	/* Roughly 130 to 200 bytes a peer: a few hundred peers per 32 KiB message. */
	assert_true(msgs > 30 && msgs < 100);
	msgs = build_all(peers, n, WGNL_MSG_SIZE, WGNL_PEER_REMOVE);
	assert_true(msgs > 10 && msgs < 30);

	/* The largest peer (8 IPv6 allowed IPs) in a message that holds one and a half. */
	for (size_t i = 0; i < 10; i++)
		make_peer(&peers[i], (unsigned)i, WGF_PEER_ALLOWED_IPS_MAX);
	msgs = build_all(peers, 10, 600, WGNL_PEER_SET);
	assert_int_equal(msgs, 10);
	free(peers);
}

static void test_set_peers_refused(void **state)
{
	_Alignas(struct nlmsghdr) uint8_t buf[WGNL_MSG_SIZE];
	struct wgf_peer p;
	size_t count = 12345;

	(void)state;
	make_peer(&p, 1, WGF_PEER_ALLOWED_IPS_MAX);
	/* Not even one peer fits. */
	assert_int_equal(
	        wgnl_build_set_peers(buf, 200, FAMILY, "wg0", &p, 1, WGNL_PEER_SET, &count),
	        -EMSGSIZE);
	assert_int_equal(count, 12345);
	assert_int_equal(
	        wgnl_build_set_peers(buf, sizeof(buf), FAMILY, "wg0", &p, 0, WGNL_PEER_SET, &count),
	        -EINVAL);
	assert_int_equal(wgnl_build_set_peers(buf, sizeof(buf), FAMILY, "wg0wg0wg0wg0wg0wg0", &p, 1,
	                                      WGNL_PEER_SET, &count),
	                 -EINVAL);
	p.allowed_ips[2].prefix = 129;
	assert_int_equal(
	        wgnl_build_set_peers(buf, sizeof(buf), FAMILY, "wg0", &p, 1, WGNL_PEER_SET, &count),
	        -EINVAL);
	p.allowed_ips[2].prefix = 64;
	p.allowed_ips[2].addr.family = AF_UNIX;
	assert_int_equal(
	        wgnl_build_set_peers(buf, sizeof(buf), FAMILY, "wg0", &p, 1, WGNL_PEER_SET, &count),
	        -EINVAL);
	assert_int_equal(count, 12345);
}

static void test_set_identity(void **state)
{
	_Alignas(struct nlmsghdr) uint8_t buf[512];
	uint8_t key[WGF_KEY_LEN];
	struct seen s;

	(void)state;
	fill_key(key, 0x77);
	assert_int_equal(wgnl_build_set_identity(buf, sizeof(buf), FAMILY, "wg0", key, 51820), 0);
	read_genl((struct nlmsghdr *)buf, FAMILY, WG_CMD_SET_DEVICE, &s);
	assert_int_equal(s.count[WGDEVICE_A_PRIVATE_KEY], 1);
	assert_memory_equal(mnl_attr_get_payload(s.attr[WGDEVICE_A_PRIVATE_KEY]), key, WGF_KEY_LEN);
	assert_int_equal(mnl_attr_get_u16(s.attr[WGDEVICE_A_LISTEN_PORT]), 51820);
	assert_int_equal(s.count[WGDEVICE_A_FLAGS] + s.count[WGDEVICE_A_PEERS], 0);

	/* The port alone leaves the key as it is. */
	assert_int_equal(wgnl_build_set_identity(buf, sizeof(buf), FAMILY, "wg0", NULL, 0), 0);
	read_genl((struct nlmsghdr *)buf, FAMILY, WG_CMD_SET_DEVICE, &s);
	assert_int_equal(s.count[WGDEVICE_A_PRIVATE_KEY], 0);
	assert_int_equal(s.count[WGDEVICE_A_LISTEN_PORT], 1);

	assert_int_equal(wgnl_build_set_identity(buf, sizeof(buf), FAMILY, "wg0", key, -1), 0);
	read_genl((struct nlmsghdr *)buf, FAMILY, WG_CMD_SET_DEVICE, &s);
	assert_int_equal(s.count[WGDEVICE_A_LISTEN_PORT], 0);

	assert_int_equal(wgnl_build_set_identity(buf, sizeof(buf), FAMILY, "wg0", NULL, -1),
	                 -EINVAL);
	assert_int_equal(wgnl_build_set_identity(buf, sizeof(buf), FAMILY, "wg0", NULL, 65536),
	                 -EINVAL);
	assert_int_equal(wgnl_build_set_identity(buf, 64, FAMILY, "wg0", key, 1), -EMSGSIZE);
}

/* --- Tests: parsing GET_DEVICE dumps. --- */

static void test_parse_device(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct wgf_device dev = {0};
	struct nlmsghdr *nlh;
	struct nlattr *peers;
	uint8_t key[WGF_KEY_LEN];
	const struct wgf_peer *p;
	const struct wgf_peer_seen *seen;
	char text[WGF_CIDR_STRLEN];

	(void)state;
	nlh = dump_msg(d, 0);
	put_device_attrs(nlh);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_full_peer(nlh, 0xa1, 0, 2);
	put_full_peer(nlh, 0xa2, 2, 0);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	dgram_done(d, 0);

	assert_int_equal(parse_dgram(d, &dev, NULL), 0);
	assert_string_equal(dev.ifname, "wg0");
	assert_int_equal(dev.flags, WGF_DEVICE_HAS_PUBLIC_KEY | WGF_DEVICE_HAS_LISTEN_PORT);
	fill_key(key, 0xd0);
	assert_memory_equal(dev.public_key, key, WGF_KEY_LEN);
	assert_int_equal(dev.listen_port, 51820);
	assert_int_equal(dev.n_peers, 2);
	p = &dev.peers[0];
	fill_key(key, 0xa1);
	assert_memory_equal(p->public_key, key, WGF_KEY_LEN);
	assert_int_equal(p->flags, WGF_PEER_HAS_KEEPALIVE);
	assert_int_equal(p->persistent_keepalive, 25);
	seen = &dev.seen[0];
	assert_int_equal(seen->flags,
	                 WGF_PEER_HAS_HANDSHAKE | WGF_PEER_HAS_ENDPOINT | WGF_PEER_HAS_TRANSFER);
	assert_int_equal(seen->last_handshake_ms, 1795604061825LL);
	assert_int_equal(seen->rx_bytes, 860);
	assert_int_equal(seen->tx_bytes, 840);
	assert_int_equal(seen->endpoint.sa.sa_family, AF_INET);
	assert_int_equal(ntohs(seen->endpoint.in.sin_port), 4500);
	assert_int_equal(p->n_allowed_ips, 2);
	wgf_cidr_format(&p->allowed_ips[1], text);
	assert_string_equal(text, "10.0.0.1/32");
	assert_int_equal(dev.peers[1].n_allowed_ips, 0);
	wgf_device_fini(&dev);
	free(d);
}

/* The kernel cuts a peer with many allowed IPs between two messages; the parts join. */
static void test_parse_peer_split(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct wgf_device dev = {0};
	struct nlmsghdr *nlh;
	struct nlattr *peers;
	char text[WGF_CIDR_STRLEN];

	(void)state;
	nlh = dump_msg(d, 0);
	put_device_attrs(nlh);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_full_peer(nlh, 0xa1, 0, 1);
	put_full_peer(nlh, 0xb2, 100, 3);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	/* The second message: no device attributes, the rest of b2, then c3. */
	nlh = dump_msg(d, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_peer_tail(nlh, 0xb2, 103, 2);
	put_full_peer(nlh, 0xc3, 200, 1);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	dgram_done(d, 0);

	assert_int_equal(parse_dgram(d, &dev, NULL), 0);
	assert_int_equal(dev.n_peers, 3);
	assert_int_equal(dev.peers[1].public_key[0], 0xb2);
	assert_int_equal(dev.peers[1].n_allowed_ips, 5);
	for (unsigned i = 0; i < 5; i++) {
		char want[WGF_CIDR_STRLEN];

		snprintf(want, sizeof(want), "10.0.0.%u/32", 100 + i);
		wgf_cidr_format(&dev.peers[1].allowed_ips[i], text);
		assert_string_equal(text, want);
	}
	/* The first part's facts survive the join. */
	assert_int_equal(dev.peers[1].persistent_keepalive, 25);
	assert_int_equal(dev.seen[1].rx_bytes, 860);
	assert_false(dev.peers[1].flags & BACKEND_PEER_F_TRUNCATED);
	assert_int_equal(dev.peers[2].public_key[0], 0xc3);
	wgf_device_fini(&dev);

	/* The same split, with each message in a datagram of its own. */
	{
		struct wgnl_dump st = {.family = FAMILY, .dev = &dev};
		struct nl_reply reply = {.seq = SEQ, .portid = PORTID};
		size_t off = 0;
		int r = 1;

		while (off < d->len) {
			const struct nlmsghdr *m = (const struct nlmsghdr *)(d->buf + off);

			r = nl_reply_feed(&reply, m, m->nlmsg_len, wgnl_parse_device_msg, &st);
			off += NLMSG_ALIGN(m->nlmsg_len);
			if (off < d->len)
				assert_int_equal(r, 1);
		}
		assert_int_equal(r, 0);
		assert_int_equal(reply.error, 0);
		assert_int_equal(st.n_msgs, 2);
		assert_int_equal(dev.n_peers, 3);
		assert_int_equal(dev.peers[1].n_allowed_ips, 5);
		wgf_device_fini(&dev);
	}
	free(d);
}

/* More allowed IPs than a wgf_peer holds: the first ones are kept and the peer flagged. */
static void test_parse_truncated_peer(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct wgf_device dev = {0};
	struct nlmsghdr *nlh;
	struct nlattr *peers;

	(void)state;
	nlh = dump_msg(d, 0);
	put_device_attrs(nlh);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_full_peer(nlh, 0xa1, 0, 6);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	nlh = dump_msg(d, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_peer_tail(nlh, 0xa1, 6, 6);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), 0);
	assert_int_equal(dev.n_peers, 1);
	assert_int_equal(dev.peers[0].n_allowed_ips, WGF_PEER_ALLOWED_IPS_MAX);
	assert_true(dev.peers[0].flags & BACKEND_PEER_F_TRUNCATED);
	wgf_device_fini(&dev);
	free(d);
}

/* One dump with a single peer; attr_fn may add something malformed to that peer. */
typedef void (*peer_extra_fn)(struct nlmsghdr *nlh);

static int parse_with_extra(peer_extra_fn extra)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct wgf_device dev = {0};
	struct nlmsghdr *nlh;
	struct nlattr *peers, *peer;
	int r;

	nlh = dump_msg(d, 0);
	put_device_attrs(nlh);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	put_key(nlh, WGPEER_A_PUBLIC_KEY, 0x55);
	extra(nlh);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	dgram_done(d, 0);
	r = parse_dgram(d, &dev, NULL);
	if (r < 0)
		assert_int_equal(dev.n_peers, 0);
	wgf_device_fini(&dev);
	free(d);
	return r;
}

static void extra_nothing(struct nlmsghdr *nlh)
{
	(void)nlh;
}

static void extra_short_key(struct nlmsghdr *nlh)
{
	mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, 31, "0123456789012345678901234567890");
}

static void extra_keepalive_u32(struct nlmsghdr *nlh)
{
	mnl_attr_put_u32(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
}

static void extra_rx_u32(struct nlmsghdr *nlh)
{
	mnl_attr_put_u32(nlh, WGPEER_A_RX_BYTES, 1);
}

static void extra_handshake_short(struct nlmsghdr *nlh)
{
	uint64_t sec = 1;

	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(sec), &sec);
}

static void extra_handshake_bad_nsec(struct nlmsghdr *nlh)
{
	struct __kernel_timespec ts = {.tv_sec = 1, .tv_nsec = 1000000000};

	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
}

static void extra_endpoint_short(struct nlmsghdr *nlh)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(struct sockaddr_in), &sin6);
}

static void extra_endpoint_unix(struct nlmsghdr *nlh)
{
	struct sockaddr_in sin = {.sin_family = AF_UNIX};

	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
}

static void put_ips(struct nlmsghdr *nlh, uint16_t family, const void *addr, size_t len, int prefix)
{
	struct nlattr *ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	struct nlattr *ip = mnl_attr_nest_start(nlh, 0);

	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, family);
	if (addr)
		mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, len, addr);
	if (prefix >= 0)
		mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, (uint8_t)prefix);
	mnl_attr_nest_end(nlh, ip);
	mnl_attr_nest_end(nlh, ips);
}

static const uint8_t addr16[16] = {0xfd};

static void extra_ip_ok(struct nlmsghdr *nlh)
{
	put_ips(nlh, AF_INET6, addr16, 16, 64);
}

static void extra_ip_v4_len16(struct nlmsghdr *nlh)
{
	put_ips(nlh, AF_INET, addr16, 16, 32);
}

static void extra_ip_v4_prefix33(struct nlmsghdr *nlh)
{
	put_ips(nlh, AF_INET, addr16, 4, 33);
}

static void extra_ip_no_prefix(struct nlmsghdr *nlh)
{
	put_ips(nlh, AF_INET6, addr16, 16, -1);
}

static void extra_ip_no_addr(struct nlmsghdr *nlh)
{
	put_ips(nlh, AF_INET6, NULL, 0, 64);
}

static void extra_ip_bad_family(struct nlmsghdr *nlh)
{
	put_ips(nlh, AF_UNIX, addr16, 4, 8);
}

static void extra_unknown_attr(struct nlmsghdr *nlh)
{
	/* A newer kernel's attribute: skipped. */
	mnl_attr_put_u64(nlh, WGPEER_A_MAX + 3, 99);
}

static void test_parse_wrong_lengths(void **state)
{
	(void)state;
	assert_int_equal(parse_with_extra(extra_nothing), 0);
	assert_int_equal(parse_with_extra(extra_unknown_attr), 0);
	assert_int_equal(parse_with_extra(extra_ip_ok), 0);
	assert_int_equal(parse_with_extra(extra_short_key), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_keepalive_u32), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_rx_u32), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_handshake_short), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_handshake_bad_nsec), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_endpoint_short), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_endpoint_unix), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_ip_v4_len16), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_ip_v4_prefix33), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_ip_no_prefix), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_ip_no_addr), -EBADMSG);
	assert_int_equal(parse_with_extra(extra_ip_bad_family), -EBADMSG);
}

static void test_parse_device_attr_lengths(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct wgf_device dev = {0};
	struct nlmsghdr *nlh;

	(void)state;
	/* A listen port sent as a u32. */
	nlh = dump_msg(d, 0);
	mnl_attr_put_u32(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), -EBADMSG);
	wgf_device_fini(&dev);

	/* An interface name without its NUL. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	mnl_attr_put(nlh, WGDEVICE_A_IFNAME, 3, "wg0");
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), -EBADMSG);
	wgf_device_fini(&dev);

	/* A private key of 33 bytes. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	{
		uint8_t long_key[WGF_KEY_LEN + 1] = {0};

		mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, sizeof(long_key), long_key);
	}
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), -EBADMSG);
	wgf_device_fini(&dev);

	/* A reply of another family, or another command. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	nlh->nlmsg_type = FAMILY + 1;
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), -EBADMSG);
	d->len = 0;
	nlh = dump_msg(d, 0);
	((struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->cmd = WG_CMD_SET_DEVICE;
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), -EBADMSG);
	wgf_device_fini(&dev);
	free(d);
}

/* An attribute whose length runs past the end of its message. */
static void test_parse_truncated_attrs(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct wgf_device dev = {0};
	struct nlmsghdr *nlh;
	struct nlattr *peers;
	struct wgnl_dump st = {.family = FAMILY, .dev = &dev};

	(void)state;
	nlh = dump_msg(d, 0);
	put_device_attrs(nlh);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_full_peer(nlh, 0xa1, 0, 2);
	mnl_attr_nest_end(nlh, peers);
	/* Cut the message in the middle of the peers nest (libmnl would stop quietly). */
	nlh->nlmsg_len -= 12;
	assert_int_equal(wgnl_parse_device_msg(nlh, &st), -EBADMSG);
	assert_int_equal(dev.n_peers, 0);

	/* A nested peer that claims more bytes than the nest around it holds. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_full_peer(nlh, 0xa1, 0, 1);
	mnl_attr_nest_end(nlh, peers);
	((struct nlattr *)mnl_attr_get_payload(peers))->nla_len += 8;
	assert_int_equal(wgnl_parse_device_msg(nlh, &st), -EBADMSG);
	assert_int_equal(dev.n_peers, 0);

	/* Trailing bytes after the last attribute that cannot be one. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	memset((uint8_t *)nlh + nlh->nlmsg_len, 0, 4);
	nlh->nlmsg_len += 3;
	assert_int_equal(wgnl_parse_device_msg(nlh, &st), -EBADMSG);

	/* An attribute shorter than its own header. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	((struct nlattr *)((uint8_t *)nlh + MNL_NLMSG_HDRLEN + GENL_HDRLEN))->nla_len = 2;
	assert_int_equal(wgnl_parse_device_msg(nlh, &st), -EBADMSG);

	/* A message shorter than its genetlink header. */
	d->len = 0;
	nlh = dgram_msg(d, FAMILY, 0);
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + 2;
	assert_int_equal(wgnl_parse_device_msg(nlh, &st), -EBADMSG);
	wgf_device_fini(&dev);
	free(d);
}

static void test_parse_peer_errors(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct wgf_device dev = {0};
	struct nlmsghdr *nlh;
	struct nlattr *peers, *peer;

	(void)state;
	/* A peer without a public key. */
	nlh = dump_msg(d, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), -EBADMSG);
	wgf_device_fini(&dev);

	/* The same key twice inside one message is no continuation. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_full_peer(nlh, 0xa1, 0, 1);
	put_full_peer(nlh, 0xa1, 1, 1);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), -EBADMSG);
	wgf_device_fini(&dev);

	/* Nor is it as the second peer of the next message. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_full_peer(nlh, 0xa1, 0, 1);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	nlh = dump_msg(d, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	put_full_peer(nlh, 0xb1, 0, 1);
	put_full_peer(nlh, 0xb1, 1, 1);
	mnl_attr_nest_end(nlh, peers);
	dgram_end(d, nlh);
	dgram_done(d, 0);
	assert_int_equal(parse_dgram(d, &dev, NULL), -EBADMSG);
	wgf_device_fini(&dev);
	free(d);
}

/* --- A dump captured from a real kernel. --- */

/*
 * `wgf-vmtest capture wg0 4096` in the test VM (Debian kernel 6.1.0-56), on an interface
 * made with wg(8): private key RFC 7748's Alice (so the dump carries it, clamped), port
 * 51820, and three peers: RFC 7748's Bob with 10.0.0.2/32, fd00::2/128 and endpoint
 * 192.0.2.2:51821; a peer with keepalive 25 and the 200 allowed IPs 10.7.0.0/32 to
 * 10.7.0.199/32; and a peer with 10.9.0.0/16. The 4 KiB receive buffer made the kernel cut
 * the second peer between its two messages. Family 32, sequence 2, port 111.
 */
#define CAPTURE_FAMILY 32
#define CAPTURE_SEQ    2
#define CAPTURE_PORTID 111
#define ALICE_PUB_B64  "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
#define BOB_PUB_B64    "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="
#define MANY_PUB_B64   "l9A7lzSkacjaEvt0Mju8PqnTYGphgIvzI7QGm0gn6k8="
#define NET_PUB_B64    "C+5Z6qngF+JHtFGkh34NfsHozypWvkQngR8fYg1MqjU="
static const char capture_dump_0[] =
        "f00f000020000200020000006f00000000010000060006006cca000008000700000000000800010002000000"
        "08000200776730002400030070076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c6a"
        "240004008520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a740f0880e4000080"
        "24000100de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f2400020000000000"
        "0000000000000000000000000000000000000000000000000000000014000600000000000000000000000000"
        "0000000006000500000000000c00080000000000000000000c000700000000000000000008000a0001000000"
        "140004000200ca6dc00002020000000000000000480009801c00008005000300200000000600010002000000"
        "080002000a000002280000800500030080000000060001000a00000014000200fd0000000000000000000000"
        "000000028c0e00802400010097d03b9734a469c8da12fb74323bbc3ea9d3606a61808bf323b4069b4827ea4f"
        "2400020000000000000000000000000000000000000000000000000000000000000000001400060000000000"
        "00000000000000000000000006000500190000000c00080000000000000000000c0007000000000000000000"
        "08000a0001000000040e09801c00008005000300200000000600010002000000080002000a0700001c000080"
        "05000300200000000600010002000000080002000a0700011c00008005000300200000000600010002000000"
        "080002000a0700021c00008005000300200000000600010002000000080002000a0700031c00008005000300"
        "200000000600010002000000080002000a0700041c0000800500030020000000060001000200000008000200"
        "0a0700051c00008005000300200000000600010002000000080002000a0700061c0000800500030020000000"
        "0600010002000000080002000a0700071c00008005000300200000000600010002000000080002000a070008"
        "1c00008005000300200000000600010002000000080002000a0700091c000080050003002000000006000100"
        "02000000080002000a07000a1c00008005000300200000000600010002000000080002000a07000b1c000080"
        "05000300200000000600010002000000080002000a07000c1c00008005000300200000000600010002000000"
        "080002000a07000d1c00008005000300200000000600010002000000080002000a07000e1c00008005000300"
        "200000000600010002000000080002000a07000f1c0000800500030020000000060001000200000008000200"
        "0a0700101c00008005000300200000000600010002000000080002000a0700111c0000800500030020000000"
        "0600010002000000080002000a0700121c00008005000300200000000600010002000000080002000a070013"
        "1c00008005000300200000000600010002000000080002000a0700141c000080050003002000000006000100"
        "02000000080002000a0700151c00008005000300200000000600010002000000080002000a0700161c000080"
        "05000300200000000600010002000000080002000a0700171c00008005000300200000000600010002000000"
        "080002000a0700181c00008005000300200000000600010002000000080002000a0700191c00008005000300"
        "200000000600010002000000080002000a07001a1c0000800500030020000000060001000200000008000200"
        "0a07001b1c00008005000300200000000600010002000000080002000a07001c1c0000800500030020000000"
        "0600010002000000080002000a07001d1c00008005000300200000000600010002000000080002000a07001e"
        "1c00008005000300200000000600010002000000080002000a07001f1c000080050003002000000006000100"
        "02000000080002000a0700201c00008005000300200000000600010002000000080002000a0700211c000080"
        "05000300200000000600010002000000080002000a0700221c00008005000300200000000600010002000000"
        "080002000a0700231c00008005000300200000000600010002000000080002000a0700241c00008005000300"
        "200000000600010002000000080002000a0700251c0000800500030020000000060001000200000008000200"
        "0a0700261c00008005000300200000000600010002000000080002000a0700271c0000800500030020000000"
        "0600010002000000080002000a0700281c00008005000300200000000600010002000000080002000a070029"
        "1c00008005000300200000000600010002000000080002000a07002a1c000080050003002000000006000100"
        "02000000080002000a07002b1c00008005000300200000000600010002000000080002000a07002c1c000080"
        "05000300200000000600010002000000080002000a07002d1c00008005000300200000000600010002000000"
        "080002000a07002e1c00008005000300200000000600010002000000080002000a07002f1c00008005000300"
        "200000000600010002000000080002000a0700301c0000800500030020000000060001000200000008000200"
        "0a0700311c00008005000300200000000600010002000000080002000a0700321c0000800500030020000000"
        "0600010002000000080002000a0700331c00008005000300200000000600010002000000080002000a070034"
        "1c00008005000300200000000600010002000000080002000a0700351c000080050003002000000006000100"
        "02000000080002000a0700361c00008005000300200000000600010002000000080002000a0700371c000080"
        "05000300200000000600010002000000080002000a0700381c00008005000300200000000600010002000000"
        "080002000a0700391c00008005000300200000000600010002000000080002000a07003a1c00008005000300"
        "200000000600010002000000080002000a07003b1c0000800500030020000000060001000200000008000200"
        "0a07003c1c00008005000300200000000600010002000000080002000a07003d1c0000800500030020000000"
        "0600010002000000080002000a07003e1c00008005000300200000000600010002000000080002000a07003f"
        "1c00008005000300200000000600010002000000080002000a0700401c000080050003002000000006000100"
        "02000000080002000a0700411c00008005000300200000000600010002000000080002000a0700421c000080"
        "05000300200000000600010002000000080002000a0700431c00008005000300200000000600010002000000"
        "080002000a0700441c00008005000300200000000600010002000000080002000a0700451c00008005000300"
        "200000000600010002000000080002000a0700461c0000800500030020000000060001000200000008000200"
        "0a0700471c00008005000300200000000600010002000000080002000a0700481c0000800500030020000000"
        "0600010002000000080002000a0700491c00008005000300200000000600010002000000080002000a07004a"
        "1c00008005000300200000000600010002000000080002000a07004b1c000080050003002000000006000100"
        "02000000080002000a07004c1c00008005000300200000000600010002000000080002000a07004d1c000080"
        "05000300200000000600010002000000080002000a07004e1c00008005000300200000000600010002000000"
        "080002000a07004f1c00008005000300200000000600010002000000080002000a0700501c00008005000300"
        "200000000600010002000000080002000a0700511c0000800500030020000000060001000200000008000200"
        "0a0700521c00008005000300200000000600010002000000080002000a0700531c0000800500030020000000"
        "0600010002000000080002000a0700541c00008005000300200000000600010002000000080002000a070055"
        "1c00008005000300200000000600010002000000080002000a0700561c000080050003002000000006000100"
        "02000000080002000a0700571c00008005000300200000000600010002000000080002000a0700581c000080"
        "05000300200000000600010002000000080002000a0700591c00008005000300200000000600010002000000"
        "080002000a07005a1c00008005000300200000000600010002000000080002000a07005b1c00008005000300"
        "200000000600010002000000080002000a07005c1c0000800500030020000000060001000200000008000200"
        "0a07005d1c00008005000300200000000600010002000000080002000a07005e1c0000800500030020000000"
        "0600010002000000080002000a07005f1c00008005000300200000000600010002000000080002000a070060"
        "1c00008005000300200000000600010002000000080002000a0700611c000080050003002000000006000100"
        "02000000080002000a0700621c00008005000300200000000600010002000000080002000a0700631c000080"
        "05000300200000000600010002000000080002000a0700641c00008005000300200000000600010002000000"
        "080002000a0700651c00008005000300200000000600010002000000080002000a0700661c00008005000300"
        "200000000600010002000000080002000a0700671c0000800500030020000000060001000200000008000200"
        "0a0700681c00008005000300200000000600010002000000080002000a0700691c0000800500030020000000"
        "0600010002000000080002000a07006a1c00008005000300200000000600010002000000080002000a07006b"
        "1c00008005000300200000000600010002000000080002000a07006c1c000080050003002000000006000100"
        "02000000080002000a07006d1c00008005000300200000000600010002000000080002000a07006e1c000080"
        "05000300200000000600010002000000080002000a07006f1c00008005000300200000000600010002000000"
        "080002000a0700701c00008005000300200000000600010002000000080002000a0700711c00008005000300"
        "200000000600010002000000080002000a0700721c0000800500030020000000060001000200000008000200"
        "0a0700731c00008005000300200000000600010002000000080002000a0700741c0000800500030020000000"
        "0600010002000000080002000a0700751c00008005000300200000000600010002000000080002000a070076"
        "1c00008005000300200000000600010002000000080002000a0700771c000080050003002000000006000100"
        "02000000080002000a0700781c00008005000300200000000600010002000000080002000a0700791c000080"
        "05000300200000000600010002000000080002000a07007a1c00008005000300200000000600010002000000"
        "080002000a07007b1c00008005000300200000000600010002000000080002000a07007c1c00008005000300"
        "200000000600010002000000080002000a07007d1c0000800500030020000000060001000200000008000200"
        "0a07007e1c00008005000300200000000600010002000000080002000a07007f";
static const char capture_dump_1[] =
        "cc08000020000200020000006f00000000010000b80808800c0800802400010097d03b9734a469c8da12fb74"
        "323bbc3ea9d3606a61808bf323b4069b4827ea4fe40709801c00008005000300200000000600010002000000"
        "080002000a0700801c00008005000300200000000600010002000000080002000a0700811c00008005000300"
        "200000000600010002000000080002000a0700821c0000800500030020000000060001000200000008000200"
        "0a0700831c00008005000300200000000600010002000000080002000a0700841c0000800500030020000000"
        "0600010002000000080002000a0700851c00008005000300200000000600010002000000080002000a070086"
        "1c00008005000300200000000600010002000000080002000a0700871c000080050003002000000006000100"
        "02000000080002000a0700881c00008005000300200000000600010002000000080002000a0700891c000080"
        "05000300200000000600010002000000080002000a07008a1c00008005000300200000000600010002000000"
        "080002000a07008b1c00008005000300200000000600010002000000080002000a07008c1c00008005000300"
        "200000000600010002000000080002000a07008d1c0000800500030020000000060001000200000008000200"
        "0a07008e1c00008005000300200000000600010002000000080002000a07008f1c0000800500030020000000"
        "0600010002000000080002000a0700901c00008005000300200000000600010002000000080002000a070091"
        "1c00008005000300200000000600010002000000080002000a0700921c000080050003002000000006000100"
        "02000000080002000a0700931c00008005000300200000000600010002000000080002000a0700941c000080"
        "05000300200000000600010002000000080002000a0700951c00008005000300200000000600010002000000"
        "080002000a0700961c00008005000300200000000600010002000000080002000a0700971c00008005000300"
        "200000000600010002000000080002000a0700981c0000800500030020000000060001000200000008000200"
        "0a0700991c00008005000300200000000600010002000000080002000a07009a1c0000800500030020000000"
        "0600010002000000080002000a07009b1c00008005000300200000000600010002000000080002000a07009c"
        "1c00008005000300200000000600010002000000080002000a07009d1c000080050003002000000006000100"
        "02000000080002000a07009e1c00008005000300200000000600010002000000080002000a07009f1c000080"
        "05000300200000000600010002000000080002000a0700a01c00008005000300200000000600010002000000"
        "080002000a0700a11c00008005000300200000000600010002000000080002000a0700a21c00008005000300"
        "200000000600010002000000080002000a0700a31c0000800500030020000000060001000200000008000200"
        "0a0700a41c00008005000300200000000600010002000000080002000a0700a51c0000800500030020000000"
        "0600010002000000080002000a0700a61c00008005000300200000000600010002000000080002000a0700a7"
        "1c00008005000300200000000600010002000000080002000a0700a81c000080050003002000000006000100"
        "02000000080002000a0700a91c00008005000300200000000600010002000000080002000a0700aa1c000080"
        "05000300200000000600010002000000080002000a0700ab1c00008005000300200000000600010002000000"
        "080002000a0700ac1c00008005000300200000000600010002000000080002000a0700ad1c00008005000300"
        "200000000600010002000000080002000a0700ae1c0000800500030020000000060001000200000008000200"
        "0a0700af1c00008005000300200000000600010002000000080002000a0700b01c0000800500030020000000"
        "0600010002000000080002000a0700b11c00008005000300200000000600010002000000080002000a0700b2"
        "1c00008005000300200000000600010002000000080002000a0700b31c000080050003002000000006000100"
        "02000000080002000a0700b41c00008005000300200000000600010002000000080002000a0700b51c000080"
        "05000300200000000600010002000000080002000a0700b61c00008005000300200000000600010002000000"
        "080002000a0700b71c00008005000300200000000600010002000000080002000a0700b81c00008005000300"
        "200000000600010002000000080002000a0700b91c0000800500030020000000060001000200000008000200"
        "0a0700ba1c00008005000300200000000600010002000000080002000a0700bb1c0000800500030020000000"
        "0600010002000000080002000a0700bc1c00008005000300200000000600010002000000080002000a0700bd"
        "1c00008005000300200000000600010002000000080002000a0700be1c000080050003002000000006000100"
        "02000000080002000a0700bf1c00008005000300200000000600010002000000080002000a0700c01c000080"
        "05000300200000000600010002000000080002000a0700c11c00008005000300200000000600010002000000"
        "080002000a0700c21c00008005000300200000000600010002000000080002000a0700c31c00008005000300"
        "200000000600010002000000080002000a0700c41c0000800500030020000000060001000200000008000200"
        "0a0700c51c00008005000300200000000600010002000000080002000a0700c61c0000800500030020000000"
        "0600010002000000080002000a0700c7a8000080240001000bee59eaa9e017e247b451a4877e0d7ec1e8cf2a"
        "56be4427811f1f620d4caa352400020000000000000000000000000000000000000000000000000000000000"
        "00000000140006000000000000000000000000000000000006000500000000000c0008000000000000000000"
        "0c000700000000000000000008000a0001000000200009801c00008005000300100000000600010002000000"
        "080002000a0900001400000003000200020000006f00000000000000";

/* Decodes a captured datagram into buf (aligned for netlink); returns its length. */
static size_t unhex(const char *hex, uint8_t *buf, size_t size)
{
	size_t len = 0;

	assert_int_equal(sodium_hex2bin(buf, size, hex, strlen(hex), NULL, &len, NULL), 0);
	assert_int_equal(len, strlen(hex) / 2);
	return len;
}

static void assert_key(const uint8_t key[static WGF_KEY_LEN], const char *b64)
{
	char got[WGF_KEY_B64_LEN];

	wgf_key_to_base64(got, key);
	assert_string_equal(got, b64);
}

static void test_parse_captured_dump(void **state)
{
	struct dgram *d[2] = {calloc(1, sizeof(struct dgram)), calloc(1, sizeof(struct dgram))};
	struct wgf_device dev = {0};
	struct wgnl_dump st = {.family = CAPTURE_FAMILY, .dev = &dev};
	struct nl_reply reply = {.seq = CAPTURE_SEQ, .portid = CAPTURE_PORTID};
	char text[WGF_CIDR_STRLEN], addr[INET_ADDRSTRLEN];
	const struct wgf_peer *p;
	const struct wgf_peer_seen *seen;

	(void)state;
	d[0]->len = unhex(capture_dump_0, d[0]->buf, sizeof(d[0]->buf));
	d[1]->len = unhex(capture_dump_1, d[1]->buf, sizeof(d[1]->buf));
	assert_int_equal(nl_reply_feed(&reply, d[0]->buf, d[0]->len, wgnl_parse_device_msg, &st),
	                 1);
	assert_int_equal(nl_reply_feed(&reply, d[1]->buf, d[1]->len, wgnl_parse_device_msg, &st),
	                 0);
	assert_true(reply.done);
	assert_int_equal(reply.error, 0);
	assert_false(reply.interrupted);
	assert_int_equal(st.n_msgs, 2);

	assert_string_equal(dev.ifname, "wg0");
	assert_key(dev.public_key, ALICE_PUB_B64);
	assert_int_equal(dev.listen_port, 51820);
	assert_int_equal(dev.n_peers, 3);

	p = &dev.peers[0];
	assert_key(p->public_key, BOB_PUB_B64);
	assert_int_equal(p->n_allowed_ips, 2);
	wgf_cidr_format(&p->allowed_ips[0], text);
	assert_string_equal(text, "10.0.0.2/32");
	wgf_cidr_format(&p->allowed_ips[1], text);
	assert_string_equal(text, "fd00::2/128");
	seen = &dev.seen[0];
	assert_true(seen->flags & WGF_PEER_HAS_ENDPOINT);
	assert_int_equal(seen->endpoint.sa.sa_family, AF_INET);
	inet_ntop(AF_INET, &seen->endpoint.in.sin_addr, addr, sizeof(addr));
	assert_string_equal(addr, "192.0.2.2");
	assert_int_equal(ntohs(seen->endpoint.in.sin_port), 51821);
	assert_true(seen->flags & WGF_PEER_HAS_HANDSHAKE);
	assert_int_equal(seen->last_handshake_ms, 0);
	assert_int_equal(p->persistent_keepalive, 0);
	assert_false(p->flags & BACKEND_PEER_F_TRUNCATED);

	/* The peer cut between the messages: 200 allowed IPs, the first 8 kept, flagged. */
	p = &dev.peers[1];
	assert_key(p->public_key, MANY_PUB_B64);
	assert_int_equal(p->persistent_keepalive, 25);
	assert_false(p->flags & WGF_PEER_HAS_ENDPOINT);
	assert_int_equal(p->n_allowed_ips, WGF_PEER_ALLOWED_IPS_MAX);
	assert_true(p->flags & BACKEND_PEER_F_TRUNCATED);
	for (unsigned i = 0; i < p->n_allowed_ips; i++) {
		char want[WGF_CIDR_STRLEN];

		snprintf(want, sizeof(want), "10.7.0.%u/32", i);
		wgf_cidr_format(&p->allowed_ips[i], text);
		assert_string_equal(text, want);
	}

	p = &dev.peers[2];
	assert_key(p->public_key, NET_PUB_B64);
	assert_int_equal(p->n_allowed_ips, 1);
	wgf_cidr_format(&p->allowed_ips[0], text);
	assert_string_equal(text, "10.9.0.0/16");
	wgf_device_fini(&dev);
	free(d[0]);
	free(d[1]);
}

/* With see set, the peer cut between the two messages is handed over once, whole. */
static void test_parse_captured_dump_streams_what_it_sees(void **state)
{
	struct dgram *d[2] = {calloc(1, sizeof(struct dgram)), calloc(1, sizeof(struct dgram))};
	struct wgf_device devs[2];
	struct seen_sink sink = {0};

	(void)state;
	memset(devs, 0, sizeof(devs));
	d[0]->len = unhex(capture_dump_0, d[0]->buf, sizeof(d[0]->buf));
	d[1]->len = unhex(capture_dump_1, d[1]->buf, sizeof(d[1]->buf));
	devs[1].see = seen_sink_take;
	devs[1].see_ctx = &sink;
	for (int k = 0; k < 2; k++) {
		struct wgnl_dump st = {.family = CAPTURE_FAMILY, .dev = &devs[k]};
		struct nl_reply reply = {.seq = CAPTURE_SEQ, .portid = CAPTURE_PORTID};

		assert_int_equal(
		        nl_reply_feed(&reply, d[0]->buf, d[0]->len, wgnl_parse_device_msg, &st), 1);
		assert_int_equal(
		        nl_reply_feed(&reply, d[1]->buf, d[1]->len, wgnl_parse_device_msg, &st), 0);
	}
	/* Until the read ends the last peer may go on in a later message. */
	assert_int_equal(sink.n, 2);
	wgf_device_seen_done(&devs[1]);
	assert_null(devs[1].seen);
	assert_int_equal(devs[1].n_peers, 3);
	assert_true(seen_sink_matches(&sink, &devs[0]));
	wgf_device_seen_restart(&devs[1]);
	assert_int_equal(sink.restarts, 1);
	wgf_device_fini(&devs[0]);
	wgf_device_fini(&devs[1]);
	free(d[0]);
	free(d[1]);
}

/* The real messages cut short at every length: refused cleanly, never read past the end. */
static void test_parse_captured_truncated(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	uint8_t *copy = aligned_alloc(8, sizeof(d->buf));
	const char *const caps[] = {capture_dump_0, capture_dump_1};

	(void)state;
	assert_non_null(copy);
	for (size_t c = 0; c < 2; c++) {
		const struct nlmsghdr *whole = (const struct nlmsghdr *)d->buf;
		size_t refused = 0;

		d->len = unhex(caps[c], d->buf, sizeof(d->buf));
		for (uint32_t len = MNL_NLMSG_HDRLEN; len < whole->nlmsg_len; len++) {
			struct wgf_device dev = {0};
			struct wgnl_dump st = {.family = CAPTURE_FAMILY, .dev = &dev};
			struct nlmsghdr *nlh;
			int r;

			/* Only len bytes exist: the copy ends there, for ASan to see. */
			nlh = (struct nlmsghdr *)(copy + sizeof(d->buf) - NLMSG_ALIGN(len));
			memcpy(nlh, d->buf, len);
			nlh->nlmsg_len = len;
			r = wgnl_parse_device_msg(nlh, &st);
			assert_true(r == 0 || r == -EBADMSG);
			refused += r < 0;
			wgf_device_fini(&dev);
		}
		/* Most cuts land inside an attribute. */
		assert_true(refused > whole->nlmsg_len / 2);
	}
	free(copy);
	free(d);
}

/* --- Tests: the answer reader (nl.c). --- */

static int count_msgs(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(*(unsigned *)data)++;
	return 0;
}

static int fail_msgs(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(*(unsigned *)data)++;
	return -EPROTO;
}

static void test_reply_dump_intr(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct wgf_device dev = {0};
	struct nl_reply st;
	struct nlmsghdr *nlh;

	(void)state;
	nlh = dump_msg(d, 0);
	put_device_attrs(nlh);
	dgram_end(d, nlh);
	nlh = dump_msg(d, NLM_F_DUMP_INTR);
	dgram_end(d, nlh);
	dgram_done(d, 0);
	/* Read to its end; the caller sees interrupted and starts over. */
	assert_int_equal(parse_dgram(d, &dev, &st), 0);
	assert_true(st.interrupted);
	assert_true(st.done);
	wgf_device_fini(&dev);
	free(d);
}

static void test_reply_errors(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct nl_reply st;
	struct nlmsghdr *nlh;
	unsigned n = 0;

	(void)state;
	/* An acknowledgement. */
	dgram_error(d, 0);
	st = (struct nl_reply){.seq = SEQ, .portid = PORTID};
	assert_int_equal(nl_reply_feed(&st, d->buf, d->len, count_msgs, &n), 0);
	assert_int_equal(st.error, 0);
	assert_true(st.done);

	/* -ENODEV as the kernel sends it, and a positive errno normalised. */
	d->len = 0;
	dgram_error(d, -ENODEV);
	st = (struct nl_reply){.seq = SEQ, .portid = PORTID};
	assert_int_equal(nl_reply_feed(&st, d->buf, d->len, count_msgs, &n), 0);
	assert_int_equal(st.error, -ENODEV);
	d->len = 0;
	dgram_error(d, EPERM);
	st = (struct nl_reply){.seq = SEQ, .portid = PORTID};
	assert_int_equal(nl_reply_feed(&st, d->buf, d->len, count_msgs, &n), 0);
	assert_int_equal(st.error, -EPERM);

	/* A dump that failed midway says so in NLMSG_DONE. */
	d->len = 0;
	nlh = dump_msg(d, 0);
	dgram_end(d, nlh);
	dgram_done(d, -EMSGSIZE);
	st = (struct nl_reply){.seq = SEQ, .portid = PORTID};
	assert_int_equal(nl_reply_feed(&st, d->buf, d->len, count_msgs, &n), 0);
	assert_int_equal(st.error, -EMSGSIZE);
	assert_int_equal(n, 1);

	/* A stale answer (another sequence number) is skipped; more is expected. */
	d->len = 0;
	dgram_error(d, -ENOENT);
	((struct nlmsghdr *)d->buf)->nlmsg_seq = SEQ - 1;
	st = (struct nl_reply){.seq = SEQ, .portid = PORTID};
	assert_int_equal(nl_reply_feed(&st, d->buf, d->len, count_msgs, &n), 1);
	assert_false(st.done);
	assert_int_equal(st.error, 0);

	/* The callback's error is kept; the rest is read out without calling it again. */
	d->len = 0;
	n = 0;
	for (int i = 0; i < 3; i++)
		dgram_end(d, dump_msg(d, 0));
	dgram_done(d, 0);
	st = (struct nl_reply){.seq = SEQ, .portid = PORTID};
	assert_int_equal(nl_reply_feed(&st, d->buf, d->len, fail_msgs, &n), 0);
	assert_int_equal(st.error, -EPROTO);
	assert_int_equal(n, 1);

	/* A datagram that ends inside a message header, or a message longer than it. */
	d->len = 0;
	dgram_end(d, dump_msg(d, 0));
	st = (struct nl_reply){.seq = SEQ, .portid = PORTID};
	assert_int_equal(nl_reply_feed(&st, d->buf, d->len - 4, count_msgs, &n), -EBADMSG);
	assert_int_equal(nl_reply_feed(&st, d->buf, 10, count_msgs, &n), -EBADMSG);
	/* An error message too short to hold its errno. */
	d->len = 0;
	nlh = dgram_msg(d, NLMSG_ERROR, 0);
	dgram_end(d, nlh);
	st = (struct nl_reply){.seq = SEQ, .portid = PORTID};
	assert_int_equal(nl_reply_feed(&st, d->buf, d->len, count_msgs, &n), -EBADMSG);
	free(d);
}

/* --- Tests: rtnetlink requests and the link reply. --- */

static void test_rtnl_build(void **state)
{
	_Alignas(struct nlmsghdr) uint8_t buf[512];
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	const struct nlattr *attr, *info;
	const struct ifinfomsg *ifi;
	const struct ifaddrmsg *ifa;
	struct wgf_cidr addr;

	(void)state;
	assert_int_equal(rtnl_build_link_create(buf, sizeof(buf), "wg0", "wireguard"), 0);
	assert_int_equal(nlh->nlmsg_type, RTM_NEWLINK);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
	attr = mnl_nlmsg_get_payload_offset(nlh, sizeof(struct ifinfomsg));
	assert_int_equal(mnl_attr_get_type(attr), IFLA_IFNAME);
	assert_string_equal(mnl_attr_get_str(attr), "wg0");
	attr = mnl_attr_next(attr);
	assert_int_equal(mnl_attr_get_type(attr), IFLA_LINKINFO);
	info = mnl_attr_get_payload(attr);
	assert_int_equal(mnl_attr_get_type(info), IFLA_INFO_KIND);
	assert_int_equal(mnl_attr_get_payload_len(info), strlen("wireguard"));
	assert_memory_equal(mnl_attr_get_payload(info), "wireguard", strlen("wireguard"));
	assert_int_equal(rtnl_build_link_create(buf, sizeof(buf), "0123456789abcdef", "wireguard"),
	                 -EINVAL);

	assert_int_equal(rtnl_build_link_set_up(buf, sizeof(buf), 7), 0);
	ifi = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifi->ifi_index, 7);
	assert_int_equal(ifi->ifi_flags, IFF_UP);
	assert_int_equal(ifi->ifi_change, IFF_UP);
	assert_int_equal(rtnl_build_link_set_up(buf, sizeof(buf), 0), -EINVAL);

	assert_int_equal(wgf_cidr_parse(&addr, "10.100.0.1/24", WGF_CIDR_F_HOST_BITS, NULL), 0);
	assert_int_equal(rtnl_build_addr_add(buf, sizeof(buf), 7, &addr), 0);
	assert_int_equal(nlh->nlmsg_type, RTM_NEWADDR);
	assert_true(nlh->nlmsg_flags & NLM_F_REPLACE);
	ifa = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifa->ifa_family, AF_INET);
	assert_int_equal(ifa->ifa_prefixlen, 24);
	assert_int_equal(ifa->ifa_index, 7);
	attr = mnl_nlmsg_get_payload_offset(nlh, sizeof(*ifa));
	assert_int_equal(mnl_attr_get_type(attr), IFA_LOCAL);
	assert_memory_equal(mnl_attr_get_payload(attr), "\x0a\x64\x00\x01", 4);
	assert_int_equal(rtnl_build_addr_add(buf, 100, 7, &addr), -EMSGSIZE);
}

static void test_rtnl_parse_link(void **state)
{
	struct dgram *d = calloc(1, sizeof(*d));
	struct rtnl_link link = {0};
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nlattr *info;

	(void)state;
	nlh = dgram_msg(d, RTM_NEWLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_index = 9;
	ifi->ifi_flags = IFF_UP | IFF_NOARP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "wg0");
	mnl_attr_put_u32(nlh, IFLA_MTU, 1420);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
	mnl_attr_nest_end(nlh, info);
	assert_int_equal(rtnl_parse_link(nlh, &link), 0);
	assert_int_equal(link.index, 9);
	assert_true(link.flags & IFF_UP);
	assert_string_equal(link.kind, "wireguard");

	/* A link without linkinfo (a physical NIC) has no kind. */
	d->len = 0;
	nlh = dgram_msg(d, RTM_NEWLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_index = 2;
	assert_int_equal(rtnl_parse_link(nlh, &link), 0);
	assert_string_equal(link.kind, "");

	/* Truncated. */
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + 4;
	assert_int_equal(rtnl_parse_link(nlh, &link), -EBADMSG);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_family_request),
	        cmocka_unit_test(test_family_reply),
	        cmocka_unit_test(test_get_device_request),
	        cmocka_unit_test(test_set_one_peer),
	        cmocka_unit_test(test_remove_peer),
	        cmocka_unit_test(test_set_peers_split),
	        cmocka_unit_test(test_set_peers_refused),
	        cmocka_unit_test(test_set_identity),
	        cmocka_unit_test(test_parse_device),
	        cmocka_unit_test(test_parse_peer_split),
	        cmocka_unit_test(test_parse_truncated_peer),
	        cmocka_unit_test(test_parse_wrong_lengths),
	        cmocka_unit_test(test_parse_device_attr_lengths),
	        cmocka_unit_test(test_parse_truncated_attrs),
	        cmocka_unit_test(test_parse_peer_errors),
	        cmocka_unit_test(test_parse_captured_dump),
	        cmocka_unit_test(test_parse_captured_dump_streams_what_it_sees),
	        cmocka_unit_test(test_parse_captured_truncated),
	        cmocka_unit_test(test_reply_dump_intr),
	        cmocka_unit_test(test_reply_errors),
	        cmocka_unit_test(test_rtnl_build),
	        cmocka_unit_test(test_rtnl_parse_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
