/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* setup_text: the router configuration text the portal shows the tenant. */
#ifndef WGF_COORDINATOR_SETUP_TEXT_H
#define WGF_COORDINATOR_SETUP_TEXT_H

/*
 * Two forms, a contract with the people who paste them (DESIGN.md, "Contracts"):
 *
 *   routeros  RouterOS v7 commands: a WireGuard interface (RouterOS makes its private
 *             key), the server as its peer, the router's address, and the command
 *             that prints the public key to submit;
 *   wg_quick  a wg-quick(8) file for a Linux router: the private key is a placeholder
 *             the tenant fills from `wg genkey` on the router itself.
 *
 * The router's private key never leaves the router, so it is never in either text.
 * The router gets the pool's prefix on its address and the pool as AllowedIPs, so it
 * reaches the gateway and nothing else through the tunnel. The server's public key
 * is the one its agent reported (or the operator registered); before either, the text
 * says it is pending instead of inventing one.
 */

#include "err.h"

enum setup_format {
	SETUP_ROUTEROS,
	SETUP_WG_QUICK,
};

struct setup_input {
	const char *router_id;
	const char *router_name; /* may be NULL */
	const char *vpn_ip;      /* "10.100.0.2" */
	const char *pool;        /* "10.100.0.0/24" */
	const char *server_name;
	const char *server_endpoint;   /* "host:port" or "[v6]:port" */
	const char *server_public_key; /* base64, or NULL when not known yet */
	unsigned keepalive;            /* seconds */
};

/* Parses a format name ("routeros", "wg-quick"); -EINVAL otherwise. */
int setup_format_from_string(const char *s, enum setup_format *ret);

/* Writes the text into a malloc'd string (*ret), or -ENOMEM / -EINVAL when the
 * endpoint is not one wgf_endpoint_parse() accepts (the API's check is the same). */
int setup_text(const struct setup_input *in, enum setup_format f, char **ret);

#endif
