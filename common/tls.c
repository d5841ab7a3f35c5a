/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* tls: PEM files into nng TLS configurations, and nng's counts of failed dials. */
#include "tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "endpoint.h"
#include "fs.h"

static bool is_set(const char *s)
{
	return s && s[0];
}

bool wgf_tls_url_is_tls(const char *url)
{
	return strncmp(url, "tls+tcp", 7) == 0;
}

int wgf_tls_url_host(const char *url, char *out, size_t size, struct wgf_err *err)
{
	const char *p = strstr(url, "://");
	struct wgf_endpoint ep;
	int r;

	if (!p)
		return wgf_err_set(err, -EINVAL, "'%s' is not a URL", url);
	r = wgf_endpoint_parse(&ep, p + 3, WGF_ENDPOINT_F_PORT_ZERO, err);
	if (r < 0)
		return r;
	if (strlen(ep.host) >= size)
		return wgf_err_set(err, -EINVAL, "the host of '%s' is too long", url);
	memcpy(out, ep.host, strlen(ep.host) + 1);
	return 0;
}

static void pem_free(char *text, size_t len)
{
	if (!text)
		return;
	sodium_memzero(text, len);
	free(text);
}

/* Reads a PEM file whole (a secret one through wgf_fs_read_private); *ret ends in a NUL. */
static int pem_read(const char *path, bool secret, char **ret, size_t *ret_len, struct wgf_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	r = secret ? wgf_fs_read_private(path, WGF_TLS_FILE_MAX, &text, &len, err)
	           : wgf_fs_read(path, WGF_TLS_FILE_MAX, &text, &len, err);
	if (r < 0)
		return r;
	/* mbedtls reads up to the first NUL: one inside would hide the rest. */
	if (strlen(text) != len || !strstr(text, "-----BEGIN ")) {
		pem_free(text, len);
		return wgf_err_set(err, -EINVAL, "%s: not a PEM file", path);
	}
	*ret = text;
	*ret_len = len;
	return 0;
}

static int nng_fail(struct wgf_err *err, int rv, const char *path, const char *what)
{
	return wgf_err_set(err, wgf_err_from_nng(rv), "%s: %s (%s)", path, what, nng_strerror(rv));
}

/*
 * nng_tls_config_own_cert() parses the chain and the key in one call and fails alike
 * for either: parse the chain on its own first, so that a bad key is named as such.
 */
static int check_chain(const char *path, const char *pem, struct wgf_err *err)
{
	nng_tls_config *scratch;
	int rv;

	rv = nng_tls_config_alloc(&scratch, NNG_TLS_MODE_CLIENT);
	if (rv != 0)
		return nng_fail(err, rv, path, "cannot make a TLS configuration");
	rv = nng_tls_config_ca_chain(scratch, pem, NULL);
	nng_tls_config_free(scratch);
	if (rv != 0)
		return nng_fail(err, rv, path, "not a PEM certificate chain");
	return 0;
}

/* Our own certificate chain and its key. */
static int set_own(nng_tls_config *cfg, const struct wgf_tls_files *f, struct wgf_err *err)
{
	char *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	int r, rv;

	r = pem_read(f->cert_file, false, &cert, &cert_len, err);
	if (r == 0)
		r = check_chain(f->cert_file, cert, err);
	if (r == 0)
		r = pem_read(f->key_file, true, &key, &key_len, err);
	if (r == 0 && (rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0)
		r = nng_fail(err, rv, f->key_file, "not an unencrypted PEM private key");
	pem_free(cert, cert_len);
	pem_free(key, key_len);
	return r;
}

/* The CAs that verify the peer, with any CRLs the file also holds. */
static int set_ca(nng_tls_config *cfg, const char *path, struct wgf_err *err)
{
	char *ca = NULL;
	size_t len = 0;
	int r, rv;

	r = pem_read(path, false, &ca, &len, err);
	if (r < 0)
		return r;
	rv = nng_tls_config_ca_chain(cfg, ca, strstr(ca, "-----BEGIN X509 CRL-----") ? ca : NULL);
	if (rv != 0)
		r = nng_fail(err, rv, path, "not PEM CA certificates (and CRLs)");
	pem_free(ca, len);
	return r;
}

static int check_files(enum wgf_tls_side side, const struct wgf_tls_files *f, struct wgf_err *err)
{
	if (is_set(f->cert_file) != is_set(f->key_file))
		return wgf_err_set(err, -EINVAL,
		                   "a TLS certificate needs its key, and a key its certificate");
	if (side == WGF_TLS_SERVER && !is_set(f->cert_file))
		return wgf_err_set(err, -EINVAL, "a TLS listener needs a certificate and its key");
	if (side == WGF_TLS_CLIENT && !is_set(f->ca_file))
		return wgf_err_set(err, -EINVAL,
		                   "a TLS dialer needs CA certificates to verify the server with");
	if (side == WGF_TLS_CLIENT && !is_set(f->server_name))
		return wgf_err_set(err, -EINVAL, "a TLS dialer needs the server's name");
	return 0;
}

int wgf_tls_config_new(enum wgf_tls_side side, const struct wgf_tls_files *f, nng_tls_config **ret,
                       struct wgf_err *err)
{
	bool client = side == WGF_TLS_CLIENT;
	nng_tls_config *cfg = NULL;
	int r, rv;

	r = check_files(side, f, err);
	if (r < 0)
		return r;
	rv = nng_tls_config_alloc(&cfg, client ? NNG_TLS_MODE_CLIENT : NNG_TLS_MODE_SERVER);
	if (rv != 0)
		return wgf_err_set(err, wgf_err_from_nng(rv),
		                   "cannot make a TLS configuration (%s)", nng_strerror(rv));
	r = is_set(f->cert_file) ? set_own(cfg, f, err) : 0;
	if (r == 0 && is_set(f->ca_file))
		r = set_ca(cfg, f->ca_file, err);
	if (r == 0 && client && (rv = nng_tls_config_server_name(cfg, f->server_name)) != 0)
		r = wgf_err_set(err, wgf_err_from_nng(rv), "cannot set the server name '%s' (%s)",
		                f->server_name, nng_strerror(rv));
	if (r == 0) {
		/* A client always verifies; a server asks for a certificate only with a CA. */
		rv = nng_tls_config_auth_mode(cfg, client || is_set(f->ca_file)
		                                           ? NNG_TLS_AUTH_MODE_REQUIRED
		                                           : NNG_TLS_AUTH_MODE_NONE);
		if (rv != 0)
			r = wgf_err_set(err, wgf_err_from_nng(rv),
			                "cannot set the TLS authentication mode (%s)",
			                nng_strerror(rv));
	}
	if (r < 0) {
		nng_tls_config_free(cfg);
		return r;
	}
	*ret = cfg;
	return 0;
}

void wgf_tls_config_free(nng_tls_config *cfg)
{
	if (cfg)
		nng_tls_config_free(cfg);
}

int wgf_tls_dial_failures(nng_dialer d, struct wgf_tls_dial_failures *ret)
{
	struct wgf_tls_dial_failures n = {0};
	nng_stat *all, *st;
	int rv;

	rv = nng_stats_get(&all);
	if (rv != 0)
		return wgf_err_from_nng(rv);
	/* Each dialer is a scope of its own at the top: "dialer" { id, auth, other, ... }. */
	for (st = nng_stat_child(all); st; st = nng_stat_next(st)) {
		nng_stat *id = nng_stat_find(st, "id");
		nng_stat *auth = nng_stat_find(st, "auth");
		nng_stat *other = nng_stat_find(st, "other");

		if (strcmp(nng_stat_name(st), "dialer") != 0 || !id || !auth || !other ||
		    nng_dialer_id(d) <= 0 || nng_stat_value(id) != (uint64_t)nng_dialer_id(d))
			continue;
		n.handshake += nng_stat_value(auth);
		n.other += nng_stat_value(other);
	}
	nng_stats_free(all);
	*ret = n;
	return 0;
}
