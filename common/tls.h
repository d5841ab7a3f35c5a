/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* tls: nng TLS configurations for the agent channel, made from PEM files. */
#ifndef WGF_COMMON_TLS_H
#define WGF_COMMON_TLS_H

/*
 * The agent channel may run over nng's tls+tcp:// transport (mbedtls, in Debian's
 * libnng). TLS hides what the channel carries; it replaces nothing: every envelope is
 * still signed with Ed25519 and checked as before, whichever transport carries it.
 *
 * The coordinator's listener presents a certificate chain and its private key, and may
 * require agents to present a certificate that a CA of its own verifies. An agent
 * verifies the coordinator's certificate against a CA file and a server name (by
 * default the host of the URL it dials), and may present a certificate of its own.
 *
 * The files are read here rather than by nng: bounded, the private key refused when
 * group or others may read it and wiped from memory once handed over, and every
 * problem reported with the file it is in. A configuration made here is given to a
 * listener or dialer (NNG_OPT_TLS_CONFIG), which takes a reference of its own.
 *
 * nng 1.5.2 tells the application nothing of a dial that failed; it only counts the
 * failures in its statistics, per dialer. wgf_tls_dial_failures() reads a dialer's
 * counts so that the agent can say why it does not reach a coordinator.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "err.h"

#define WGF_TLS_FILE_MAX (256 * 1024) /* bytes of one PEM file */
#define WGF_TLS_HOST_MAX 256          /* bytes of a server name, with its NUL */

enum wgf_tls_side {
	WGF_TLS_SERVER, /* the coordinator's listener */
	WGF_TLS_CLIENT, /* an agent's dialer */
};

/* Paths and a name, all borrowed; NULL or "" when not set. */
struct wgf_tls_files {
	const char *cert_file;   /* PEM certificate chain, our own certificate first */
	const char *key_file;    /* PEM private key of cert_file, unencrypted, mode 0600 */
	const char *ca_file;     /* PEM CA certificates (and CRLs) that verify the peer */
	const char *server_name; /* client: the name the server's certificate must carry */
};

/* True for a tls+tcp:// URL (or tls+tcp4://, tls+tcp6://). */
bool wgf_tls_url_is_tls(const char *url);

/*
 * The host of a tcp-family URL ("tls+tcp://coord1:7800" gives "coord1", "[::1]:7800"
 * gives "::1"; the rest is read by common/endpoint.h), into out (size bytes). -EINVAL
 * with err saying why when it names no host:port or the host does not fit.
 */
int wgf_tls_url_host(const char *url, char *out, size_t size, struct wgf_err *err);

/*
 * Makes a configuration for one side. A server needs cert_file and key_file; with
 * ca_file it requires clients to present a certificate that ca_file verifies, without
 * it asks for none. A client needs ca_file and server_name and always verifies the
 * server; with cert_file and key_file it presents them when asked. On success *ret is
 * the caller's (wgf_tls_config_free); err names the file at fault otherwise.
 */
int wgf_tls_config_new(enum wgf_tls_side side, const struct wgf_tls_files *f, nng_tls_config **ret,
                       struct wgf_err *err);

/* nng_tls_config_free() that accepts NULL, which nng 1.5.2's does not. */
void wgf_tls_config_free(nng_tls_config *cfg);

/*
 * Dials of url (by any of nng's dialers in this process) that failed, as nng counts
 * them. handshake: the TLS handshake failed on our side (NNG_EPEERAUTH, NNG_ECRYPTO):
 * the server's certificate did not verify or did not carry the server name. other: any
 * error nng does not class; for a TLS dialer mostly the server closing the connection
 * during the handshake (NNG_ECONNSHUT, as when it wants a client certificate we do not
 * have), else a name that does not resolve or a network with no route.
 */
struct wgf_tls_dial_failures {
	uint64_t handshake;
	uint64_t other;
};

/* Fills *ret with d's counts (zeros for a closed dialer); -ENOTSUP when nng keeps no
 * statistics, -ENOMEM. */
int wgf_tls_dial_failures(nng_dialer d, struct wgf_tls_dial_failures *ret);

#endif
