/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* setup_text: RouterOS and wg-quick text for one router. */
#include "setup_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

#define PENDING_KEY "<pending: the server has not reported its public key yet>"

int setup_format_from_string(const char *s, enum setup_format *ret)
{
	if (strcmp(s, "routeros") == 0)
		*ret = SETUP_ROUTEROS;
	else if (strcmp(s, "wg-quick") == 0)
		*ret = SETUP_WG_QUICK;
	else
		return -EINVAL;
	return 0;
}

static const char *prefix_of(const char *pool)
{
	const char *slash = strchr(pool, '/');

	return slash ? slash + 1 : "32";
}

int setup_text(const struct setup_input *in, enum setup_format f, char **ret)
{
	const char *key = in->server_public_key ? in->server_public_key : PENDING_KEY;
	const char *name = in->router_name ? in->router_name : "";
	struct wgf_endpoint ep;
	struct wgf_err err = {0};
	int n;

	if (!in->server_endpoint || wgf_endpoint_parse(&ep, in->server_endpoint, 0, &err) < 0)
		return -EINVAL;
	if (f == SETUP_ROUTEROS)
		n = asprintf(
		        ret,
		        "# wgfleet: router %s%s%s on server %s (RouterOS v7)\n"
		        "/interface wireguard add name=wgfleet comment=\"wgfleet %s\"\n"
		        "/interface wireguard peers add interface=wgfleet public-key=\"%s\" "
		        "endpoint-address=\"%s\" endpoint-port=%u allowed-address=%s "
		        "persistent-keepalive=%us\n"
		        "/ip address add address=%s/%s interface=wgfleet\n"
		        "# RouterOS made this router's private key; it stays here. Submit the\n"
		        "# public key that this prints:\n"
		        ":put [/interface wireguard get [find name=wgfleet] public-key]\n",
		        in->router_id, *name ? " " : "", name, in->server_name, in->router_id, key,
		        ep.host, (unsigned)ep.port, in->pool, in->keepalive, in->vpn_ip,
		        prefix_of(in->pool));
	else
		n = asprintf(ret,
		             "# wgfleet: router %s%s%s on server %s (wg-quick)\n"
		             "# The private key stays on this router. Make it here with\n"
		             "#   umask 077; wg genkey > /etc/wireguard/wgfleet.key\n"
		             "# put it below, and submit the public key that\n"
		             "#   wg pubkey < /etc/wireguard/wgfleet.key\n"
		             "# prints.\n"
		             "[Interface]\n"
		             "PrivateKey = <this router's private key>\n"
		             "Address = %s/%s\n"
		             "\n"
		             "[Peer]\n"
		             "PublicKey = %s\n"
		             "Endpoint = %s\n"
		             "AllowedIPs = %s\n"
		             "PersistentKeepalive = %u\n",
		             in->router_id, *name ? " " : "", name, in->server_name, in->vpn_ip,
		             prefix_of(in->pool), key, in->server_endpoint, in->pool,
		             in->keepalive);
	return n < 0 ? -ENOMEM : 0;
}
