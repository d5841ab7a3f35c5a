/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* webhook: what a webhook may point at, how a delivery is signed, when it is retried. */
#ifndef WGF_COORDINATOR_WEBHOOK_H
#define WGF_COORDINATOR_WEBHOOK_H

/*
 * Pure functions the API and the delivery engine share; no loop, no database.
 *
 * Targets: a webhook's URL is http or https, names a host, and holds no user name or
 * password (the URL is shown in lists and logs). The coordinator makes the request, so
 * a URL is also a way to reach what only the coordinator can reach: addresses in
 * loopback, private, link-local, shared (CGNAT), multicast and reserved ranges are
 * refused unless a range of the policy's allowed list holds them. A literal address is
 * checked when the webhook is made; every address a name resolves to is checked again
 * at each connection (delivery.c), so a name that later resolves inward is refused too.
 *
 * Signing: HMAC-SHA256 keyed with the secret's text, over "<unix time>.<body>", sent
 * as "Wgfleet-Signature: t=<unix time>,v1=<hex>".
 */

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "err.h"

#define WEBHOOK_ALLOWED_MAX    16
#define WEBHOOK_URL_MAX        2000
#define WEBHOOK_SECRET_PREFIX  "whsec_"
/* The prefix and 32 random bytes in hex, and a NUL. */
#define WEBHOOK_SECRET_SIZE    (sizeof(WEBHOOK_SECRET_PREFIX) + 64)
/* "t=" 20 digits ",v1=" 64 hex digits and a NUL. */
#define WEBHOOK_SIGNATURE_SIZE 96

struct webhook_policy {
	struct wgf_cidr allowed[WEBHOOK_ALLOWED_MAX];
	size_t n_allowed;
};

/* Parses the allowed_networks setting (addresses or prefixes, by spaces or commas). */
int webhook_policy_parse(struct webhook_policy *ret, const char *text, struct wgf_err *err);

/* Whether the coordinator may connect to a. */
bool webhook_address_allowed(const struct webhook_policy *p, const struct wgf_addr *a);

/* 0 when url is a target the policy permits, or -EINVAL with err saying why. */
int webhook_url_check(const struct webhook_policy *p, const char *url, struct wgf_err *err);

/* A new secret, as text. */
void webhook_secret_new(char out[static WEBHOOK_SECRET_SIZE]);

/* The Wgfleet-Signature value for body sent at unix time t. */
void webhook_sign(const char *secret, int64_t t, const char *body, size_t len,
                  char out[static WEBHOOK_SIGNATURE_SIZE]);

/* The wait before attempt n + 1 after n failed ones: min_ms doubled per attempt, at
 * most max_ms, then jittered down by up to a half. */
uint64_t webhook_retry_ms(unsigned failed, uint64_t min_ms, uint64_t max_ms);

#endif
