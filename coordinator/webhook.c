/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* webhook: target policy, signatures and retry delays for webhook deliveries. */
#include "webhook.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "http.h"
#include "macro.h"

/* Ranges a webhook may not reach unless the policy allows them (RFC 6890 and kin). */
static const char *const denied_ranges[] = {
        "0.0.0.0/8",      "10.0.0.0/8",    "100.64.0.0/10", "127.0.0.0/8",
        "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",  "192.168.0.0/16",
        "198.18.0.0/15",  "224.0.0.0/3",   "::/127",        "::ffff:0:0/96",
        "64:ff9b::/96",   "fc00::/7",      "fe80::/10",     "ff00::/8",
};

int webhook_policy_parse(struct webhook_policy *ret, const char *text, struct wgf_err *err)
{
	struct webhook_policy p = {0};
	int r;

	r = http_parse_proxies(text, p.allowed, WGF_ARRAY_SIZE(p.allowed), &p.n_allowed, err);
	if (r < 0)
		return r;
	*ret = p;
	return 0;
}

static bool in_list(const struct wgf_cidr *list, size_t n, const struct wgf_addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (wgf_cidr_contains(&list[i], a))
			return true;
	return false;
}

bool webhook_address_allowed(const struct webhook_policy *p, const struct wgf_addr *a)
{
	if (in_list(p->allowed, p->n_allowed, a))
		return true;
	for (size_t i = 0; i < WGF_ARRAY_SIZE(denied_ranges); i++) {
		struct wgf_cidr c;

		if (wgf_cidr_parse(&c, denied_ranges[i], 0, NULL) == 0 && wgf_cidr_contains(&c, a))
			return false;
	}
	return true;
}

/* Checks a parsed URL's parts; u is borrowed. */
static int check_parts(const struct webhook_policy *p, CURLU *u, struct wgf_err *err)
{
	char *scheme = NULL, *host = NULL, *user = NULL;
	struct wgf_addr a;
	int r = 0;

	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_USER, &user, 0);
	if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		r = wgf_err_set(err, -EINVAL, "must be an http or https URL");
	} else if (!host || !host[0]) {
		r = wgf_err_set(err, -EINVAL, "names no host");
	} else if (user) {
		r = wgf_err_set(err, -EINVAL, "must not hold a user name or password");
	} else {
		size_t len = strlen(host);
		char bare[64];

		/* An IPv6 literal comes back in brackets. */
		if (host[0] == '[' && len > 2 && len - 2 < sizeof(bare))
			snprintf(bare, sizeof(bare), "%.*s", (int)(len - 2), host + 1);
		else
			snprintf(bare, sizeof(bare), "%s", host);
		if (wgf_addr_parse(&a, bare, NULL) == 0 && !webhook_address_allowed(p, &a))
			r = wgf_err_set(
			        err, -EINVAL,
			        "points at an address the coordinator may not call (loopback, "
			        "private or reserved; see [webhooks] allowed_networks)");
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	return r;
}

int webhook_url_check(const struct webhook_policy *p, const char *url, struct wgf_err *err)
{
	CURLU *u;
	int r;

	if (strlen(url) > WEBHOOK_URL_MAX)
		return wgf_err_set(err, -EINVAL, "longer than %d characters", WEBHOOK_URL_MAX);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return wgf_err_set(err, -EINVAL, "must be an http or https URL");
	/* libcurl reads "https:///x" as the host x; a URL names its host after "//". */
	if (strstr(url, ":///"))
		return wgf_err_set(err, -EINVAL, "names no host");
	u = curl_url();
	if (!u)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		r = wgf_err_set(err, -EINVAL, "not a valid URL");
	else
		r = check_parts(p, u, err);
	curl_url_cleanup(u);
	return r;
}

void webhook_secret_new(char out[static WEBHOOK_SECRET_SIZE])
{
	const size_t plen = strlen(WEBHOOK_SECRET_PREFIX);
	uint8_t rnd[32];

	memcpy(out, WEBHOOK_SECRET_PREFIX, plen);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(out + plen, WEBHOOK_SECRET_SIZE - plen, rnd, sizeof(rnd));
	sodium_memzero(rnd, sizeof(rnd));
}

void webhook_sign(const char *secret, int64_t t, const char *body, size_t len,
                  char out[static WEBHOOK_SIGNATURE_SIZE])
{
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	char ts[24], hex[2 * sizeof(mac) + 1];
	int n = snprintf(ts, sizeof(ts), "%" PRId64 ".", t);

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)n);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	snprintf(out, WEBHOOK_SIGNATURE_SIZE, "t=%" PRId64 ",v1=%s", t, hex);
}

uint64_t webhook_retry_ms(unsigned failed, uint64_t min_ms, uint64_t max_ms)
{
	uint64_t d = min_ms;

	for (unsigned i = 1; i < failed && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	if (d < 2)
		return d;
	return d - randombytes_uniform((uint32_t)(d / 2 < UINT32_MAX ? d / 2 : UINT32_MAX));
}
