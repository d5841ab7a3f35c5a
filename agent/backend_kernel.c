/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* backend_kernel: the backend operations on kernel WireGuard, through wgnl and rtnl. */
#include "backend.h"

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rtnl.h"
#include "wgnl.h"

#define WG_LINK_KIND "wireguard"

struct backend_kernel {
	struct backend base; /* first: the reconciler holds a struct backend * */
	struct wgnl *wg;
};

static struct backend_kernel *to_kernel(struct backend *b)
{
	return (struct backend_kernel *)b;
}

static int kernel_get_device(struct backend *b, struct wgf_device *ret)
{
	int r = wgnl_get_device(to_kernel(b)->wg, b->ifname, ret);

	/* A kernel without WireGuard has no WireGuard interface either. */
	return r == -EPROTONOSUPPORT ? -ENODEV : r;
}

static int kernel_set_peers(struct backend *b, const struct wgf_peer *peers, size_t n)
{
	return wgnl_set_peers(to_kernel(b)->wg, b->ifname, peers, n);
}

static int kernel_remove_peers(struct backend *b, const struct wgf_peer *peers, size_t n)
{
	return wgnl_remove_peers(to_kernel(b)->wg, b->ifname, peers, n);
}

static int step_error(struct wgf_err *err, int r, const char *ifname, const char *what)
{
	if (r == -EPERM)
		return wgf_err_set(err, r, "cannot %s '%s': the agent needs CAP_NET_ADMIN", what,
		                   ifname);
	if (r == -EOPNOTSUPP || r == -EPROTONOSUPPORT)
		return wgf_err_set(err, r, "cannot %s '%s': the kernel has no WireGuard support",
		                   what, ifname);
	return wgf_err_set(err, r, "cannot %s '%s': %s", what, ifname, wgf_strerror(r));
}

/*
 * Gives the interface the configured identity. With force (a new interface, or one that
 * has no key yet) key and port are both set; otherwise only what differs from dev.
 */
static int set_identity(struct backend_kernel *k, const struct backend_device_cfg *cfg,
                        const struct wgf_device *dev, bool force, struct wgf_err *err)
{
	uint8_t priv[WGF_KEY_LEN], pub[WGF_KEY_LEN];
	const uint8_t *send_key = priv;
	int port = cfg->listen_port != 0 ? cfg->listen_port : -1;
	int r;

	r = backend_private_key_load(cfg->private_key_file, true, priv, NULL, err);
	if (r < 0)
		return r;
	r = wgf_key_public_from_private(pub, priv);
	if (r < 0) {
		r = wgf_err_set(err, r, "%s: not a usable private key", cfg->private_key_file);
		goto out;
	}
	if (!force) {
		if ((dev->flags & WGF_DEVICE_HAS_PUBLIC_KEY) &&
		    sodium_memcmp(pub, dev->public_key, WGF_KEY_LEN) == 0)
			send_key = NULL;
		if ((dev->flags & WGF_DEVICE_HAS_LISTEN_PORT) && dev->listen_port == port)
			port = -1;
	}
	r = 0;
	if (send_key || port >= 0) {
		r = wgnl_set_identity(k->wg, k->base.ifname, send_key, port);
		if (r < 0)
			step_error(err, r, k->base.ifname, "set the key and port of");
	}
out:
	sodium_memzero(priv, sizeof(priv));
	return r;
}

static int kernel_ensure_device(struct backend *b, const struct backend_device_cfg *cfg,
                                struct wgf_err *err)
{
	struct backend_kernel *k = to_kernel(b);
	struct wgf_device dev = {0};
	struct rtnl_link link;
	struct rtnl *rt = NULL;
	bool created = false;
	int r;

	if (cfg->ifname[0] && strcmp(cfg->ifname, b->ifname) != 0)
		return wgf_err_set(err, -EINVAL, "interface '%s' is not this backend's ('%s')",
		                   cfg->ifname, b->ifname);
	r = rtnl_open(&rt);
	if (r < 0)
		return wgf_err_set(err, r, "cannot open rtnetlink: %s", wgf_strerror(r));
	r = rtnl_link_get(rt, b->ifname, &link);
	if (r == -ENODEV) {
		r = rtnl_link_create(rt, b->ifname, WG_LINK_KIND);
		if (r < 0) {
			step_error(err, r, b->ifname, "create");
			goto out;
		}
		created = true;
		r = rtnl_link_get(rt, b->ifname, &link);
	}
	if (r < 0) {
		step_error(err, r, b->ifname, "look up");
		goto out;
	}
	if (strcmp(link.kind, WG_LINK_KIND) != 0) {
		r = wgf_err_set(err, -EEXIST,
		                "interface '%s' exists and is not WireGuard (kind '%s')", b->ifname,
		                link.kind);
		goto out;
	}
	if (!created) {
		/* Only the interface's own key is wanted here, none of its peers' facts. */
		dev.see = wgf_device_see_nothing;
		r = wgnl_get_device(k->wg, b->ifname, &dev);
		if (r < 0) {
			step_error(err, r, b->ifname, "read");
			goto out;
		}
	}
	/* A new interface, or one left without a key, gets one; an old key is changed on request.
	 */
	if (created || !(dev.flags & WGF_DEVICE_HAS_PUBLIC_KEY) || cfg->manage_identity) {
		r = set_identity(k, cfg, &dev, created || !(dev.flags & WGF_DEVICE_HAS_PUBLIC_KEY),
		                 err);
		if (r < 0)
			goto out;
	}
	if (cfg->has_address) {
		r = rtnl_addr_add(rt, link.index, &cfg->address);
		if (r < 0) {
			step_error(err, r, b->ifname, "add the address to");
			goto out;
		}
	}
	if (!(link.flags & IFF_UP)) {
		r = rtnl_link_set_up(rt, link.index);
		if (r < 0) {
			step_error(err, r, b->ifname, "bring up");
			goto out;
		}
	}
	r = 0;
out:
	wgf_device_fini(&dev);
	rtnl_free(rt);
	return r;
}

static void kernel_free(struct backend *b)
{
	struct backend_kernel *k = to_kernel(b);

	wgnl_free(k->wg);
	free(k);
}

static const struct backend_ops kernel_ops = {
        .name = "kernel",
        .get_device = kernel_get_device,
        .set_peers = kernel_set_peers,
        .remove_peers = kernel_remove_peers,
        .ensure_device = kernel_ensure_device,
        .free = kernel_free,
};

int backend_kernel_new(const char *ifname, struct backend **ret)
{
	struct backend_kernel *k;
	int r;

	if (!backend_ifname_is_valid(ifname))
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	r = wgnl_open(&k->wg);
	if (r < 0) {
		free(k);
		return r;
	}
	k->base.ops = &kernel_ops;
	memcpy(k->base.ifname, ifname, strlen(ifname) + 1);
	*ret = &k->base;
	return 0;
}
