/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* Unit tests for coordinator/pipes.c on real nng pipes over TCP on 127.0.0.1: caps in
 * all and per address, idle expiry that a request in hand holds off, message buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "pipes.h"

#define MAX_SEEN 16

struct server {
	nng_socket sock;
	struct pipes *t;
	char url[64];
	nng_mtx *mu;
	nng_pipe admitted[MAX_SEEN];
	unsigned n_admitted;
};

static void on_add(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct server *s = arg;

	(void)ev;
	if (!pipes_admit(s->t, p)) {
		nng_pipe_close(p);
		return;
	}
	nng_mtx_lock(s->mu);
	if (s->n_admitted < MAX_SEEN)
		s->admitted[s->n_admitted++] = p;
	nng_mtx_unlock(s->mu);
}

static void on_rem(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct server *s = arg;

	(void)ev;
	pipes_remove(s->t, p);
}

static void server_start(struct server *s, const struct pipes_options *o)
{
	nng_listener l;
	nng_sockaddr sa;

	memset(s, 0, sizeof(*s));
	s->t = pipes_new(o);
	assert_non_null(s->t);
	assert_int_equal(nng_mtx_alloc(&s->mu), 0);
	assert_int_equal(nng_rep0_open(&s->sock), 0);
	assert_int_equal(nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, on_add, s), 0);
	assert_int_equal(nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_rem, s), 0);
	assert_int_equal(nng_listen(s->sock, "tcp://127.0.0.1:0", &l, 0), 0);
	assert_int_equal(nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa), 0);
	snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%u", ntohs(sa.s_in.sa_port));
}

static void server_stop(struct server *s)
{
	nng_close(s->sock);
	pipes_free(s->t);
	nng_mtx_free(s->mu);
}

static unsigned admitted(struct server *s)
{
	unsigned n;

	nng_mtx_lock(s->mu);
	n = s->n_admitted;
	nng_mtx_unlock(s->mu);
	return n;
}

/* Waits (at most 5 s) until count(s) reaches want. */
static void wait_for(struct server *s, unsigned want, unsigned (*count)(struct server *))
{
	for (int i = 0; i < 500 && count(s) < want; i++)
		nng_msleep(10);
	assert_int_equal(count(s), want);
}

static nng_socket dial(const char *url)
{
	nng_socket c;

	assert_int_equal(nng_req0_open(&c), 0);
	assert_int_equal(nng_dial(c, url, NULL, 0), 0);
	return c;
}

static void test_caps_in_all_and_per_address(void **state)
{
	struct server s;
	nng_socket c[4];
	char remote[PIPES_REMOTE_LEN];
	uint64_t refused = 0;

	(void)state;
	server_start(&s, &(struct pipes_options){
	                         .max_total = 8, .max_per_address = 3, .idle_ms = 60000});
	for (int i = 0; i < 4; i++)
		c[i] = dial(s.url);
	wait_for(&s, 3, admitted);
	/* The fourth from 127.0.0.1 was refused (and its dialer keeps trying). */
	for (int i = 0; i < 200 && refused == 0; i++) {
		refused += pipes_take_refused(s.t, remote);
		nng_msleep(10);
	}
	assert_true(refused >= 1);
	assert_string_equal(remote, "127.0.0.1");
	/* One leaves: its place is free for the one that keeps dialling. */
	nng_close(c[0]);
	wait_for(&s, 4, admitted);
	for (int i = 1; i < 4; i++)
		nng_close(c[i]);
	server_stop(&s);
}

static void test_each_pipe_has_a_bucket_of_messages(void **state)
{
	struct server s;
	nng_socket a, b;
	char remote[PIPES_REMOTE_LEN];
	unsigned passed = 0;

	(void)state;
	server_start(&s, &(struct pipes_options){.max_total = 8,
	                                         .max_per_address = 8,
	                                         .idle_ms = 60000,
	                                         .msgs_per_s = 10,
	                                         .msgs_burst = 5});
	a = dial(s.url);
	b = dial(s.url);
	wait_for(&s, 2, admitted);
	/* The burst passes, then one pipe is throttled; the other is not. */
	for (int i = 0; i < 20; i++)
		passed += pipes_charge(s.t, s.admitted[0]);
	assert_in_range(passed, 5, 6);
	assert_true(pipes_charge(s.t, s.admitted[1]));
	assert_int_equal(pipes_take_throttled(s.t, remote), 20 - passed);
	assert_string_equal(remote, "127.0.0.1");
	assert_int_equal(pipes_take_throttled(s.t, remote), 0);
	/* At 10 a second, 300 ms bring about three back. */
	nng_msleep(300);
	passed = 0;
	for (int i = 0; i < 10; i++)
		passed += pipes_charge(s.t, s.admitted[0]);
	assert_in_range(passed, 2, 5);
	/* A pipe the table does not know is let through. */
	assert_true(pipes_charge(s.t, (nng_pipe)NNG_PIPE_INITIALIZER));
	nng_close(a);
	nng_close(b);
	server_stop(&s);
}

static unsigned expired_count;

static unsigned take_expired(struct server *s)
{
	nng_pipe out[MAX_SEEN];

	expired_count += (unsigned)pipes_expired(s->t, out, MAX_SEEN);
	return expired_count;
}

static void test_idle_pipes_expire_unless_busy(void **state)
{
	struct server s;
	nng_socket a, b;
	nng_pipe out[MAX_SEEN];

	(void)state;
	server_start(&s,
	             &(struct pipes_options){.max_total = 8, .max_per_address = 8, .idle_ms = 100});
	a = dial(s.url);
	b = dial(s.url);
	wait_for(&s, 2, admitted);
	/* Fresh pipes are not idle yet. */
	assert_int_equal(pipes_expired(s.t, out, MAX_SEEN), 0);
	/* A request in hand holds its pipe open past the idle time. */
	pipes_busy(s.t, s.admitted[0]);
	nng_msleep(150);
	assert_int_equal(pipes_expired(s.t, out, MAX_SEEN), 1);
	assert_int_equal(nng_pipe_id(out[0]), nng_pipe_id(s.admitted[1]));
	/* Answered, it is idle from then on, and goes after idle_ms. */
	pipes_done(s.t, s.admitted[0]);
	assert_int_equal(pipes_expired(s.t, out, MAX_SEEN), 0);
	expired_count = 0;
	wait_for(&s, 1, take_expired);
	/* Expired pipes are forgotten: the table does not return them twice. */
	assert_int_equal(pipes_expired(s.t, out, MAX_SEEN), 0);
	nng_close(a);
	nng_close(b);
	server_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_caps_in_all_and_per_address),
	        cmocka_unit_test(test_idle_pipes_expire_unless_busy),
	        cmocka_unit_test(test_each_pipe_has_a_bucket_of_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
