/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for common/tls.c: URLs, what each side needs, files that are not PEM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tls.h"

/* Certificates and keys are made with openssl in tests/integration/test_channel_tls.py. */

static void test_url(void **state)
{
	char host[WGF_TLS_HOST_MAX];
	struct wgf_err err = {0};

	(void)state;
	assert_true(wgf_tls_url_is_tls("tls+tcp://coord1:7800"));
	assert_true(wgf_tls_url_is_tls("tls+tcp6://[::1]:7800"));
	assert_false(wgf_tls_url_is_tls("tcp://coord1:7800"));
	assert_false(wgf_tls_url_is_tls("ipc:///run/wgfleet.sock"));

	assert_int_equal(
	        wgf_tls_url_host("tls+tcp://coord1.example.net:7800", host, sizeof(host), &err), 0);
	assert_string_equal(host, "coord1.example.net");
	assert_int_equal(wgf_tls_url_host("tls+tcp://127.0.0.1:0", host, sizeof(host), &err), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(wgf_tls_url_host("tls+tcp://[2001:db8::1]:7800", host, sizeof(host), &err),
	                 0);
	assert_string_equal(host, "2001:db8::1");

	strcpy(host, "kept");
	assert_int_equal(wgf_tls_url_host("coord1:7800", host, sizeof(host), &err), -EINVAL);
	assert_string_equal(err.msg, "'coord1:7800' is not a URL");
	assert_int_equal(wgf_tls_url_host("tls+tcp://coord1", host, sizeof(host), NULL), -EINVAL);
	assert_int_equal(wgf_tls_url_host("tls+tcp://a b:7800", host, sizeof(host), NULL), -EINVAL);
	assert_int_equal(wgf_tls_url_host("tls+tcp://coord1:7800", host, 6, &err), -EINVAL);
	assert_string_equal(err.msg, "the host of 'tls+tcp://coord1:7800' is too long");
	assert_string_equal(host, "kept");
}

static void assert_refused(enum wgf_tls_side side, const struct wgf_tls_files *f, int code,
                           const char *msg)
{
	nng_tls_config *cfg = (nng_tls_config *)&cfg;
	struct wgf_err err = {0};

	assert_int_equal(wgf_tls_config_new(side, f, &cfg, &err), code);
	assert_string_equal(err.msg, msg);
	assert_ptr_equal(cfg, (nng_tls_config *)&cfg);
	assert_int_equal(wgf_tls_config_new(side, f, &cfg, NULL), code);
}

static void test_what_each_side_needs(void **state)
{
	(void)state;
	assert_refused(WGF_TLS_SERVER, &(struct wgf_tls_files){0}, -EINVAL,
	               "a TLS listener needs a certificate and its key");
	assert_refused(WGF_TLS_SERVER, &(struct wgf_tls_files){.cert_file = "/c", .key_file = ""},
	               -EINVAL, "a TLS certificate needs its key, and a key its certificate");
	assert_refused(WGF_TLS_CLIENT, &(struct wgf_tls_files){.key_file = "/k"}, -EINVAL,
	               "a TLS certificate needs its key, and a key its certificate");
	assert_refused(WGF_TLS_CLIENT, &(struct wgf_tls_files){.server_name = "coord1"}, -EINVAL,
	               "a TLS dialer needs CA certificates to verify the server with");
	assert_refused(WGF_TLS_CLIENT, &(struct wgf_tls_files){.ca_file = "/ca"}, -EINVAL,
	               "a TLS dialer needs the server's name");
}

static char *write_temp(const char *text)
{
	const char *dir = getenv("TMPDIR");
	char *path = NULL;
	int fd;

	assert_true(asprintf(&path, "%s/wgf-test-tls-XXXXXX", dir ? dir : "/tmp") > 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
	return path;
}

static void test_files_that_are_not_pem(void **state)
{
	char *junk = write_temp("not a certificate\n");
	char *bad = write_temp("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
	                       "-----END CERTIFICATE-----\n");
	char msg[WGF_ERR_MSG_MAX];

	(void)state;
	snprintf(msg, sizeof(msg), "%s: not a PEM file", junk);
	assert_refused(WGF_TLS_CLIENT, &(struct wgf_tls_files){.ca_file = junk, .server_name = "c"},
	               -EINVAL, msg);
	assert_refused(WGF_TLS_SERVER, &(struct wgf_tls_files){.cert_file = junk, .key_file = junk},
	               -EINVAL, msg);
	snprintf(msg, sizeof(msg), "%s: not PEM CA certificates (and CRLs) (Cryptographic error)",
	         bad);
	assert_refused(WGF_TLS_CLIENT, &(struct wgf_tls_files){.ca_file = bad, .server_name = "c"},
	               -EBADMSG, msg);
	snprintf(msg, sizeof(msg), "%s: not a PEM certificate chain (Cryptographic error)", bad);
	assert_refused(WGF_TLS_SERVER, &(struct wgf_tls_files){.cert_file = bad, .key_file = bad},
	               -EBADMSG, msg);
	assert_refused(
	        WGF_TLS_CLIENT,
	        &(struct wgf_tls_files){.ca_file = "/nonexistent/ca.crt", .server_name = "c"},
	        -ENOENT, "/nonexistent/ca.crt: cannot open: No such file or directory");
	unlink(junk);
	unlink(bad);
	free(junk);
	free(bad);
}

static void test_dial_failures_of_an_unknown_dialer(void **state)
{
	struct wgf_tls_dial_failures f = {.handshake = 7, .other = 7};

	(void)state;
	wgf_tls_config_free(NULL); /* nng's own crashes on NULL */
	assert_int_equal(wgf_tls_dial_failures((nng_dialer){.id = 12345}, &f), 0);
	assert_int_equal(f.handshake, 0);
	assert_int_equal(f.other, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_url),
	        cmocka_unit_test(test_what_each_side_needs),
	        cmocka_unit_test(test_files_that_are_not_pem),
	        cmocka_unit_test(test_dial_failures_of_an_unknown_dialer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
