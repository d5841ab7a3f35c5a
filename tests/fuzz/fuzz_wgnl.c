/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* fuzz_wgnl: libFuzzer target for the netlink reply reader and parsers of the kernel backend. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"
#include "rtnl.h"
#include "wgnl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is one datagram as the kernel would send it. Its first message names the
 * sequence number, port and family the reader expects, so the parsers get to see the
 * rest. Every message also goes through the family and link parsers. A device that
 * parses must respect the bounds, and its peers must build back into SET_DEVICE
 * requests, whole.
 */

static int each_msg(const struct nlmsghdr *nlh, void *data)
{
	struct rtnl_link link;
	uint16_t id = 0;

	(void)wgnl_parse_family_reply(nlh, &id);
	(void)rtnl_parse_link(nlh, &link);
	return wgnl_parse_device_msg(nlh, data);
}

static void rebuild(const struct wgf_device *dev)
{
	static uint8_t buf[WGNL_MSG_SIZE] __attribute__((aligned(8)));
	size_t done = 0;

	while (done < dev->n_peers) {
		size_t count = 0;

		if (wgnl_build_set_peers(buf, sizeof(buf), 0x20, "wg0", dev->peers + done,
		                         dev->n_peers - done, WGNL_PEER_SET, &count) < 0 ||
		    count == 0)
			__builtin_trap();
		done += count;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wgf_device dev = {0};
	struct wgnl_dump dump = {.dev = &dev};
	struct nl_reply st = {0};
	const struct nlmsghdr *first;
	uint8_t *buf;
	int r;

	if (size < sizeof(*first))
		return 0;
	/* Netlink buffers are 4-byte aligned; libFuzzer's are not always. */
	buf = aligned_alloc(8, (size + 7) & ~(size_t)7);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	first = (const struct nlmsghdr *)buf;
	st.seq = first->nlmsg_seq;
	st.portid = first->nlmsg_pid;
	dump.family = first->nlmsg_type;
	r = nl_reply_feed(&st, buf, size, each_msg, &dump);
	if (r < -4095 || r > 1)
		__builtin_trap();
	for (size_t i = 0; i < dev.n_peers; i++)
		if (dev.peers[i].n_allowed_ips > WGF_PEER_ALLOWED_IPS_MAX)
			__builtin_trap();
	if (st.error == 0)
		rebuild(&dev);
	wgf_device_fini(&dev);
	free(buf);
	return 0;
}
