/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* pipes: two chained hashes, pipes by id and counts by remote address, under a mutex. */
#include "pipes.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "clock.h"

#define BUCKETS 1024 /* of each hash; chains stay short up to tens of thousands */

struct addr {
	uint8_t ip[16]; /* IPv4 as ::ffff:a.b.c.d */
	unsigned pipes;
	struct addr *next;
};

struct pipe {
	uint32_t id;
	unsigned busy; /* requests not yet answered or dropped */
	uint64_t active_ms;
	double tokens;
	uint64_t tokens_at;
	struct addr *addr;
	struct pipe *next;
};

struct pipes {
	struct pipes_options o;
	pthread_mutex_t mu;
	struct pipe *pipes[BUCKETS];
	struct addr *addrs[BUCKETS];
	unsigned n;
	uint64_t refused, throttled;
	char refused_remote[PIPES_REMOTE_LEN];
	char throttled_remote[PIPES_REMOTE_LEN];
	uint32_t throttled_id; /* the pipe whose address is in throttled_remote */
	uint8_t key[crypto_shorthash_KEYBYTES];
};

static size_t addr_bucket(const struct pipes *t, const uint8_t ip[static 16])
{
	uint8_t h[crypto_shorthash_BYTES];

	crypto_shorthash(h, ip, 16, t->key);
	return (h[0] | (size_t)h[1] << 8) % BUCKETS;
}

static struct pipe **pipe_slot(struct pipes *t, uint32_t id)
{
	struct pipe **pp = &t->pipes[id % BUCKETS];

	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

struct pipes *pipes_new(const struct pipes_options *o)
{
	struct pipes *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->o = *o;
	pthread_mutex_init(&t->mu, NULL);
	crypto_shorthash_keygen(t->key);
	return t;
}

void pipes_free(struct pipes *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		for (struct pipe *p = t->pipes[i], *next; p; p = next) {
			next = p->next;
			free(p);
		}
		for (struct addr *a = t->addrs[i], *next; a; a = next) {
			next = a->next;
			free(a);
		}
	}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* The remote's IP address; false for local transports (ipc://, inproc://), whose
 * pipes all share one entry with the all-zero address and are not limited per
 * address: they come from this host, through the file system's permissions. */
static bool remote_ip(nng_pipe p, uint8_t ip[static 16])
{
	nng_sockaddr sa;

	memset(ip, 0, 16);
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return false;
	if (sa.s_family == NNG_AF_INET) {
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &sa.s_in.sa_addr, 4);
		return true;
	}
	if (sa.s_family == NNG_AF_INET6) {
		memcpy(ip, sa.s_in6.sa_addr, 16);
		return true;
	}
	return false;
}

void pipes_remote(nng_pipe p, char out[static PIPES_REMOTE_LEN])
{
	nng_sockaddr sa;

	snprintf(out, PIPES_REMOTE_LEN, "unknown");
	if (nng_pipe_id(p) <= 0 || nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET)
		inet_ntop(AF_INET, &sa.s_in.sa_addr, out, PIPES_REMOTE_LEN);
	else if (sa.s_family == NNG_AF_INET6)
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, out, PIPES_REMOTE_LEN);
}

bool pipes_admit(struct pipes *t, nng_pipe p)
{
	uint8_t ip[16];
	bool limited = remote_ip(p, ip);
	struct pipe *np = calloc(1, sizeof(*np));
	struct addr *a;
	size_t b = addr_bucket(t, ip);

	pthread_mutex_lock(&t->mu);
	for (a = t->addrs[b]; a && memcmp(a->ip, ip, 16) != 0; a = a->next)
		;
	if (!np || t->n >= t->o.max_total || (limited && a && a->pipes >= t->o.max_per_address) ||
	    (!a && !(a = calloc(1, sizeof(*a))))) {
		char text[PIPES_REMOTE_LEN];

		/* The address is read outside the lock; the count and the address are
		 * published together, so a reader never sees one without the other. */
		pthread_mutex_unlock(&t->mu);
		free(np);
		pipes_remote(p, text);
		pthread_mutex_lock(&t->mu);
		t->refused++;
		memcpy(t->refused_remote, text, sizeof(text));
		pthread_mutex_unlock(&t->mu);
		return false;
	}
	if (a->pipes == 0) {
		memcpy(a->ip, ip, 16);
		a->next = t->addrs[b];
		t->addrs[b] = a;
	}
	a->pipes++;
	np->id = (uint32_t)nng_pipe_id(p);
	np->addr = a;
	np->active_ms = wgf_clock_mono_ms();
	np->tokens = t->o.msgs_burst;
	np->tokens_at = np->active_ms;
	np->next = t->pipes[np->id % BUCKETS];
	t->pipes[np->id % BUCKETS] = np;
	t->n++;
	pthread_mutex_unlock(&t->mu);
	return true;
}

/* Under mu: unlinks and frees *pp, and its address entry when it was the last. */
static void forget(struct pipes *t, struct pipe **pp)
{
	struct pipe *p = *pp;
	struct addr **ap;

	*pp = p->next;
	if (--p->addr->pipes == 0) {
		for (ap = &t->addrs[addr_bucket(t, p->addr->ip)]; *ap != p->addr; ap = &(*ap)->next)
			;
		*ap = p->addr->next;
		free(p->addr);
	}
	free(p);
	t->n--;
}

void pipes_remove(struct pipes *t, nng_pipe p)
{
	struct pipe **pp;

	pthread_mutex_lock(&t->mu);
	pp = pipe_slot(t, (uint32_t)nng_pipe_id(p));
	if (*pp)
		forget(t, pp);
	pthread_mutex_unlock(&t->mu);
}

bool pipes_charge(struct pipes *t, nng_pipe p)
{
	uint32_t id = (uint32_t)nng_pipe_id(p);
	char text[PIPES_REMOTE_LEN];
	struct pipe *e;
	uint64_t now;

	if (t->o.msgs_per_s <= 0)
		return true;
	now = wgf_clock_mono_ms();
	pthread_mutex_lock(&t->mu);
	e = *pipe_slot(t, id);
	if (!e) {
		pthread_mutex_unlock(&t->mu);
		return true;
	}
	e->tokens += (double)(now - e->tokens_at) * t->o.msgs_per_s / 1000;
	if (e->tokens > t->o.msgs_burst)
		e->tokens = t->o.msgs_burst;
	e->tokens_at = now;
	if (e->tokens >= 1) {
		e->tokens -= 1;
		pthread_mutex_unlock(&t->mu);
		return true;
	}
	if (t->throttled_id == id) {
		t->throttled++;
		pthread_mutex_unlock(&t->mu);
		return false;
	}
	/* Another pipe's address, read outside the lock and published with its count. */
	pthread_mutex_unlock(&t->mu);
	pipes_remote(p, text);
	pthread_mutex_lock(&t->mu);
	t->throttled++;
	t->throttled_id = id;
	memcpy(t->throttled_remote, text, sizeof(text));
	pthread_mutex_unlock(&t->mu);
	return false;
}

void pipes_busy(struct pipes *t, nng_pipe p)
{
	struct pipe **pp;

	pthread_mutex_lock(&t->mu);
	pp = pipe_slot(t, (uint32_t)nng_pipe_id(p));
	if (*pp) {
		(*pp)->busy++;
		(*pp)->active_ms = wgf_clock_mono_ms();
	}
	pthread_mutex_unlock(&t->mu);
}

void pipes_done(struct pipes *t, nng_pipe p)
{
	struct pipe **pp;

	pthread_mutex_lock(&t->mu);
	pp = pipe_slot(t, (uint32_t)nng_pipe_id(p));
	if (*pp && (*pp)->busy > 0) {
		(*pp)->busy--;
		(*pp)->active_ms = wgf_clock_mono_ms();
	}
	pthread_mutex_unlock(&t->mu);
}

size_t pipes_expired(struct pipes *t, nng_pipe *ret, size_t max)
{
	uint64_t now = wgf_clock_mono_ms();
	size_t n = 0;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < BUCKETS && n < max; i++) {
		for (struct pipe **pp = &t->pipes[i]; *pp && n < max;) {
			if ((*pp)->busy == 0 && now - (*pp)->active_ms >= t->o.idle_ms) {
				ret[n].id = (*pp)->id;
				n++;
				forget(t, pp);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* *count and the address with it, under the lock; the count starts again from 0. */
static uint64_t take_count(struct pipes *t, uint64_t *count, const char *from,
                           char remote[static PIPES_REMOTE_LEN])
{
	uint64_t n;

	pthread_mutex_lock(&t->mu);
	n = *count;
	*count = 0;
	memcpy(remote, from, PIPES_REMOTE_LEN);
	pthread_mutex_unlock(&t->mu);
	return n;
}

uint64_t pipes_take_throttled(struct pipes *t, char remote[static PIPES_REMOTE_LEN])
{
	return take_count(t, &t->throttled, t->throttled_remote, remote);
}

uint64_t pipes_take_refused(struct pipes *t, char remote[static PIPES_REMOTE_LEN])
{
	return take_count(t, &t->refused, t->refused_remote, remote);
}
