/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* cidr: IPv4 and IPv6 addresses and prefixes: parse, format, containment, host math. */
#ifndef WGF_COMMON_CIDR_H
#define WGF_COMMON_CIDR_H

/*
 * An address is a family and 16 bytes in network order (IPv4 uses the first four). A
 * prefix (struct wgf_cidr) is an address and a length. Text goes through inet_pton and
 * inet_ntop; the only thing parsed here is the decimal prefix length.
 *
 * By default wgf_cidr_parse() wants a network: "10.100.0.0/24" is fine, "10.100.0.7/24"
 * is refused with a message naming the network meant. Interface addresses, which carry
 * host bits on purpose, pass WGF_CIDR_F_HOST_BITS. A bare address is refused unless
 * WGF_CIDR_F_PREFIX_OPTIONAL is given, when it means /32 or /128.
 *
 * Host math counts from the network address: wgf_cidr_nth(c, 0) is the network address,
 * and wgf_cidr_index() is its inverse. Sizes saturate at UINT64_MAX, which only very
 * large IPv6 prefixes reach. A host is "usable" when it can be given to a router: for
 * IPv4 the network and broadcast addresses are not (except in a /31 or /32, RFC 3021),
 * for IPv6 the subnet-router anycast address (the network address) is not.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

#define WGF_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */
#define WGF_CIDR_STRLEN 50 /* address, '/', three digits, NUL */

struct wgf_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];
};

struct wgf_cidr {
	struct wgf_addr addr;
	unsigned prefix;
};

#define WGF_CIDR_F_HOST_BITS       (1U << 0)
#define WGF_CIDR_F_PREFIX_OPTIONAL (1U << 1)

int wgf_addr_parse(struct wgf_addr *ret, const char *s, struct wgf_err *err);
void wgf_addr_format(const struct wgf_addr *a, char out[static WGF_ADDR_STRLEN]);
bool wgf_addr_equal(const struct wgf_addr *a, const struct wgf_addr *b);
/* 4 or 16. */
unsigned wgf_addr_len(const struct wgf_addr *a);

/* An endpoint as "192.0.2.1:51820" or "[2001:db8::1]:51820"; "" for other families. */
void wgf_sockaddr_format(const struct sockaddr *sa, char *out, size_t size);

int wgf_cidr_parse(struct wgf_cidr *ret, const char *s, unsigned flags, struct wgf_err *err);
void wgf_cidr_format(const struct wgf_cidr *c, char out[static WGF_CIDR_STRLEN]);
/* The prefix with its host bits cleared. */
void wgf_cidr_network(const struct wgf_cidr *c, struct wgf_cidr *ret);

bool wgf_cidr_contains(const struct wgf_cidr *c, const struct wgf_addr *a);
bool wgf_cidr_overlaps(const struct wgf_cidr *a, const struct wgf_cidr *b);

/* Number of addresses in the prefix (saturating). */
uint64_t wgf_cidr_size(const struct wgf_cidr *c);
/* Number of addresses that may be given to hosts (saturating). */
uint64_t wgf_cidr_usable(const struct wgf_cidr *c);
bool wgf_cidr_is_usable_host(const struct wgf_cidr *c, const struct wgf_addr *a);

/* The network address plus n; -ERANGE when n is past the end. */
int wgf_cidr_nth(const struct wgf_cidr *c, uint64_t n, struct wgf_addr *ret);
/* Offset of a from the network address; -ERANGE when a is outside c or too far. */
int wgf_cidr_index(const struct wgf_cidr *c, const struct wgf_addr *a, uint64_t *ret);

#endif
