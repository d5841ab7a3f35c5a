/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* backend: the one small interface in front of kernel WireGuard and the userspace UAPI. */
#ifndef WGF_AGENT_BACKEND_H
#define WGF_AGENT_BACKEND_H

/*
 * The reconciler sees a WireGuard interface only through these operations. Two
 * implementations exist (DESIGN.md principle 6):
 *
 *   kernel (wgnl.c, rtnl.c)  generic netlink "wireguard" through libmnl; creates the
 *                            link through rtnetlink when it is absent;
 *   uapi (uapi.c)            the cross-platform text protocol on
 *                            <socket_dir>/<ifname>.sock, spoken by wireguard-go and
 *                            boringtun; the interface is created by starting them.
 *
 * Contracts, the same for both:
 * - get_device fills an empty struct wgf_device with the interface's public key, listen
 *   port and every peer with its allowed IPs, keepalive and facts (last handshake,
 *   endpoint, rx/tx bytes). -ENODEV when the interface does not exist.
 * - set_peers adds or updates the given peers: afterwards each one's allowed IPs are
 *   exactly the given set and its keepalive the given value. Peers not named are not
 *   touched; the interface's own key and port are not touched; the "replace all peers"
 *   operation is never used. Large sets are split into as many requests as the
 *   transport needs. On failure some of the peers may have been applied: the caller
 *   re-reads the device to learn the truth.
 * - remove_peers removes the peers with the given public keys (other fields ignored);
 *   removing a peer that is not there is not an error.
 * - ensure_device creates the interface if it is absent, with a new private key kept
 *   in cfg->private_key_file (mode 0600) and cfg->listen_port, and brings it up; on an
 *   existing interface it changes the key or port only when cfg->manage_identity is
 *   set. The uapi backend cannot create interfaces: it returns -ENODEV when the socket
 *   is absent and otherwise behaves the same.
 * All return 0 or a negative errno and never log (the reconciler decides what to log).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "err.h"
#include "peer.h"

struct backend_device_cfg {
	char ifname[16];
	const char *private_key_file;
	uint16_t listen_port;
	struct wgf_cidr address; /* the interface address, with host bits (e.g. 10.100.0.1/24) */
	bool has_address;
	bool manage_identity;
};

struct backend;

struct backend_ops {
	const char *name;
	/* The most peers the data plane is known to hold on one interface, 0 for none known. */
	size_t max_peers;
	int (*get_device)(struct backend *b, struct wgf_device *ret);
	int (*set_peers)(struct backend *b, const struct wgf_peer *peers, size_t n);
	int (*remove_peers)(struct backend *b, const struct wgf_peer *peers, size_t n);
	int (*ensure_device)(struct backend *b, const struct backend_device_cfg *cfg,
	                     struct wgf_err *err);
	void (*free)(struct backend *b);
};

/* Implementations embed this first and are freed through ops->free. */
struct backend {
	const struct backend_ops *ops;
	char ifname[16];
};

/* -EINVAL for an interface name that is empty, too long (IFNAMSIZ) or has '/'. */
int backend_uapi_new(const char *ifname, const char *socket_dir, struct backend **ret);
int backend_kernel_new(const char *ifname, struct backend **ret);

/*
 * After a set failed with error (-EINVAL, the errno wireguard-go answers a peer past its
 * limit with) for a set of n_peers: a warning that names the backend's peer limit, when
 * the set passes it. Nothing otherwise.
 */
void backend_say_limit(const struct backend *b, int error, size_t n_peers);

/* Checks an interface name the way the kernel does (dev_valid_name). */
bool backend_ifname_is_valid(const char *ifname);

/*
 * In wgf_peer.flags of a peer that get_device returns: the interface holds more allowed
 * IPs for it than WGF_PEER_ALLOWED_IPS_MAX, and only the first ones are in the struct.
 * Such a peer never equals a desired peer, so the reconciler rewrites it.
 */
#define BACKEND_PEER_F_TRUNCATED (1U << 16)

/*
 * Reads the interface's private key from path: one base64 key (the `wg genkey` format),
 * in a file no other user can read. When the file is absent and create is set, a new
 * key is generated and written there atomically, mode 0600; *ret_created (may be NULL)
 * says which happened. ret_key is written only on success; the caller wipes it with
 * sodium_memzero(). -EINVAL with a message for a bad or exposed file.
 */
int backend_private_key_load(const char *path, bool create, uint8_t ret_key[static WGF_KEY_LEN],
                             bool *ret_created, struct wgf_err *err);

static inline void backend_free(struct backend *b)
{
	if (b)
		b->ops->free(b);
}

#endif
