/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* chanprobe: speaks the agent channel by hand, honestly or not, for the tests. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "identity.h"
#include "key.h"
#include "wgfleet.pb-c.h"
#include "wire.h"

/*
 * chanprobe --url URL --coordinator B64 --key FILE [options] COMMAND ...
 *
 *   hint REVISION                 a long poll; prints "hint SERVER REVISION"
 *   sync SINCE [snapshot]         prints "sync REVISION SNAPSHOT" and one line a peer
 *                                 ("peer KEY IP...") or change ("change OP REV KEY IP...")
 *   report APPLIED                with --fact KEY,HANDSHAKE_MS,ENDPOINT,RX,TX,
 *                                 --error KEY,REASON, --drift KEY,KIND(1-3),
 *                                 --wg-key B64 --port N; prints the answering hint
 *
 * Misbehaviour, for the rejection tests: --tamper (a body byte flipped after signing),
 * --claim B64 (the envelope names another sender than the signer), --to B64 (addressed
 * to another key), --skew MS (timestamp moved), --version N, --replay (the same bytes
 * sent twice; both answers printed). An Error answer prints "error CODE MESSAGE".
 * Exit status: 0 for any answer, 1 for no answer within --timeout (default 5000 ms).
 *
 * Load, for the admission tests (to 127.0.0.1 only, bounded by the count): --count N
 * sends N envelopes back to back on a raw req socket, each sealed afresh (with
 * --replay, N copies of one), then reads answers until none came for --timeout ms and
 * prints "sent N", "answered M" and "answer KIND COUNT" for each kind of answer
 * ("hint", "sync", "error-CODE", ...). --pad N adds N made-up peers to a report, for
 * an oversized body (about 70 bytes each).
 */

struct opts {
	const char *url, *server;
	uint8_t coord[32], claim[32], to[32];
	bool has_claim, has_to, tamper, replay;
	int64_t skew_ms;
	uint32_t version;
	int timeout_ms;
	unsigned count;
};

static void die(const char *what)
{
	fprintf(stderr, "chanprobe: %s\n", what);
	exit(2);
}

static void b64key(const char *text, uint8_t out[static 32])
{
	size_t len = 0;

	if (sodium_base642bin(out, 32, text, strlen(text), NULL, &len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != 32)
		die("a key is not 32 bytes in base64");
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Re-packs an envelope after changing what the options ask for (the signature stays). */
static void mangle(const struct opts *o, uint8_t **buf, size_t *len)
{
	Wgfleet__V1__Envelope *e = wgfleet__v1__envelope__unpack(NULL, *len, *buf);
	size_t n;

	if (!e)
		die("cannot re-read our own envelope");
	if (o->has_claim)
		memcpy(e->sender.data, o->claim, 32);
	if (o->version)
		e->protocol_version = o->version;
	if (o->tamper && e->body.len > 0)
		e->body.data[e->body.len - 1] ^= 0x01;
	n = wgfleet__v1__envelope__get_packed_size(e);
	free(*buf);
	*buf = malloc(n);
	wgfleet__v1__envelope__pack(e, *buf);
	*len = n;
	wgfleet__v1__envelope__free_unpacked(e, NULL);
}

static void print_peer(const char *prefix, const Wgfleet__V1__Peer *p)
{
	char key[45] = "?";

	if (p->public_key.len == 32)
		wgf_key_to_base64(key, p->public_key.data);
	printf("%s %s", prefix, key);
	for (size_t i = 0; i < p->n_allowed_ips; i++)
		printf(" %s", p->allowed_ips[i]);
	printf(" keepalive=%u\n", p->persistent_keepalive);
}

static int print_answer(const struct opts *o, const struct wgf_identity *me, const uint8_t *nonce,
                        nng_msg *msg)
{
	struct wgf_wire_msg *m = NULL;
	struct wgf_err err = {0};
	Wgfleet__V1__Body *b;

	if (wgf_wire_open(nng_msg_body(msg), nng_msg_len(msg), &m, &err) < 0 ||
	    wgf_wire_verify(m, o->coord, &err) < 0 ||
	    wgf_wire_check_addressed(m, o->has_claim ? o->claim : me->pk, &err) < 0) {
		printf("bad-answer %s\n", err.msg);
		wgf_wire_msg_free(m);
		return 0;
	}
	if (!m->is_reply || memcmp(m->in_reply_to, nonce, WGF_NONCE_LEN) != 0)
		printf("unbound-answer\n");
	b = wgfleet__v1__body__unpack(NULL, m->body_len, m->body);
	if (!b) {
		printf("bad-answer body\n");
	} else if (b->kind_case == WGFLEET__V1__BODY__KIND_HINT) {
		printf("hint %s %" PRIu64 "\n", b->hint->server, b->hint->revision);
	} else if (b->kind_case == WGFLEET__V1__BODY__KIND_ERROR) {
		printf("error %d %s\n", b->error->code, b->error->message);
	} else if (b->kind_case == WGFLEET__V1__BODY__KIND_SYNC_REPLY) {
		const Wgfleet__V1__SyncReply *s = b->sync_reply;

		printf("sync %s %" PRIu64 " %d\n", s->server, s->revision, s->snapshot);
		for (size_t i = 0; i < s->n_peers; i++)
			print_peer("peer", s->peers[i]);
		for (size_t i = 0; i < s->n_changes; i++) {
			char prefix[64];

			snprintf(prefix, sizeof(prefix), "change %s %" PRIu64,
			         s->changes[i]->op == WGFLEET__V1__PEER_CHANGE__OP__OP_REMOVE
			                 ? "remove"
			                 : "upsert",
			         s->changes[i]->revision);
			print_peer(prefix, s->changes[i]->peer);
		}
	} else {
		printf("other %d\n", b->kind_case);
	}
	wgfleet__v1__body__free_unpacked(b, NULL);
	wgf_wire_msg_free(m);
	return 0;
}

static int exchange(const struct opts *o, const struct wgf_identity *me, const uint8_t *body,
                    size_t body_len)
{
	uint8_t nonce[WGF_NONCE_LEN], *buf = NULL;
	size_t len = 0;
	nng_socket s;
	nng_msg *msg;
	int rv, sends = o->replay ? 2 : 1;

	if (wgf_wire_seal(me->sk, o->has_to ? o->to : o->coord, NULL,
	                  (uint64_t)((int64_t)now_ms() + o->skew_ms), body, body_len, nonce, &buf,
	                  &len) < 0)
		die("cannot seal");
	if (o->has_claim || o->version || o->tamper)
		mangle(o, &buf, &len);
	if (nng_req0_open(&s) != 0)
		die("cannot open a req socket");
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, o->timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WGF_WIRE_MSG_MAX);
	if ((rv = nng_dial(s, o->url, NULL, 0)) != 0)
		die(nng_strerror(rv));
	for (int i = 0; i < sends; i++) {
		nng_msg_alloc(&msg, 0);
		nng_msg_append(msg, buf, len);
		if ((rv = nng_sendmsg(s, msg, 0)) != 0)
			die(nng_strerror(rv));
		if ((rv = nng_recvmsg(s, &msg, 0)) != 0) {
			printf("no-answer %s\n", nng_strerror(rv));
			fflush(stdout);
			free(buf);
			nng_close(s);
			return 1;
		}
		print_answer(o, me, nonce, msg);
		nng_msg_free(msg);
	}
	free(buf);
	nng_close(s);
	return 0;
}

/* A short name for an answer's kind, for the load summary. */
static void classify(const struct opts *o, const struct wgf_identity *me, nng_msg *msg,
                     char out[static 32])
{
	struct wgf_wire_msg *m = NULL;
	struct wgf_err err = {0};
	Wgfleet__V1__Body *b = NULL;

	snprintf(out, 32, "bad-answer");
	if (wgf_wire_open(nng_msg_body(msg), nng_msg_len(msg), &m, &err) < 0 ||
	    wgf_wire_verify(m, o->coord, &err) < 0 ||
	    wgf_wire_check_addressed(m, o->has_claim ? o->claim : me->pk, &err) < 0 ||
	    !(b = wgfleet__v1__body__unpack(NULL, m->body_len, m->body))) {
		wgf_wire_msg_free(m);
		return;
	}
	if (b->kind_case == WGFLEET__V1__BODY__KIND_HINT)
		snprintf(out, 32, "hint");
	else if (b->kind_case == WGFLEET__V1__BODY__KIND_SYNC_REPLY)
		snprintf(out, 32, "sync");
	else if (b->kind_case == WGFLEET__V1__BODY__KIND_ERROR)
		snprintf(out, 32, "error-%d", b->error->code);
	else
		snprintf(out, 32, "other-%d", b->kind_case);
	wgfleet__v1__body__free_unpacked(b, NULL);
	wgf_wire_msg_free(m);
}

#define KINDS 16

/* --count: o->count envelopes on a raw req socket, then the answers, summarised. */
static int flood(const struct opts *o, const struct wgf_identity *me, const uint8_t *body,
                 size_t body_len)
{
	struct {
		char name[32];
		unsigned n;
	} kinds[KINDS] = {0};
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned answered = 0, n_kinds = 0;
	nng_socket s;
	nng_msg *msg;
	int rv;

	if (nng_req0_open_raw(&s) != 0)
		die("cannot open a raw req socket");
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, o->timeout_ms);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WGF_WIRE_MSG_MAX);
	if ((rv = nng_dial(s, o->url, NULL, 0)) != 0)
		die(nng_strerror(rv));
	for (unsigned i = 0; i < o->count; i++) {
		if (!buf || !o->replay) {
			free(buf);
			buf = NULL;
			if (wgf_wire_seal(me->sk, o->has_to ? o->to : o->coord, NULL,
			                  (uint64_t)((int64_t)now_ms() + o->skew_ms), body,
			                  body_len, NULL, &buf, &len) < 0)
				die("cannot seal");
			if (o->has_claim || o->version || o->tamper)
				mangle(o, &buf, &len);
		}
		if (nng_msg_alloc(&msg, 0) != 0 ||
		    nng_msg_header_append_u32(msg, 0x80000000U | i) ||
		    nng_msg_append(msg, buf, len) != 0)
			die("out of memory");
		if ((rv = nng_sendmsg(s, msg, 0)) != 0)
			die(nng_strerror(rv));
	}
	printf("sent %u\n", o->count);
	fflush(stdout);
	while (answered < o->count && nng_recvmsg(s, &msg, 0) == 0) {
		char name[32];
		unsigned k;

		classify(o, me, msg, name);
		nng_msg_free(msg);
		answered++;
		for (k = 0; k < n_kinds && strcmp(kinds[k].name, name) != 0; k++)
			;
		if (k == n_kinds && n_kinds < KINDS)
			snprintf(kinds[n_kinds++].name, sizeof(kinds[k].name), "%s", name);
		if (k < n_kinds)
			kinds[k].n++;
	}
	printf("answered %u\n", answered);
	for (unsigned k = 0; k < n_kinds; k++)
		printf("answer %s %u\n", kinds[k].name, kinds[k].n);
	free(buf);
	nng_close(s);
	return 0;
}

static uint8_t *pack_body(Wgfleet__V1__Body *b, size_t *len)
{
	uint8_t *buf;

	*len = wgfleet__v1__body__get_packed_size(b);
	buf = malloc(*len ? *len : 1);
	wgfleet__v1__body__pack(b, buf);
	return buf;
}

#define MAX_ITEMS 64

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"url", required_argument, NULL, 'u'},
	        {"coordinator", required_argument, NULL, 'c'},
	        {"key", required_argument, NULL, 'k'},
	        {"server", required_argument, NULL, 's'},
	        {"claim", required_argument, NULL, 'C'},
	        {"to", required_argument, NULL, 'T'},
	        {"tamper", no_argument, NULL, 't'},
	        {"replay", no_argument, NULL, 'r'},
	        {"skew", required_argument, NULL, 'S'},
	        {"version", required_argument, NULL, 'V'},
	        {"timeout", required_argument, NULL, 'w'},
	        {"fact", required_argument, NULL, 'f'},
	        {"error", required_argument, NULL, 'e'},
	        {"drift", required_argument, NULL, 'd'},
	        {"wg-key", required_argument, NULL, 'g'},
	        {"port", required_argument, NULL, 'p'},
	        {"count", required_argument, NULL, 'n'},
	        {"pad", required_argument, NULL, 'P'},
	        {NULL, 0, NULL, 0},
	};
	struct opts o = {.server = "", .timeout_ms = 5000};
	Wgfleet__V1__PeerFacts facts[MAX_ITEMS], *factp[MAX_ITEMS];
	Wgfleet__V1__PeerApplyError errs[MAX_ITEMS], *errp[MAX_ITEMS];
	Wgfleet__V1__Drift drift[MAX_ITEMS], *driftp[MAX_ITEMS];
	uint8_t keys[3 * MAX_ITEMS][32], wg_key[32] = {0};
	size_t n_facts = 0, n_errs = 0, n_drift = 0, n_keys = 0, len;
	Wgfleet__V1__Body body = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Hint hint = WGFLEET__V1__HINT__INIT;
	Wgfleet__V1__SyncRequest sync = WGFLEET__V1__SYNC_REQUEST__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	struct wgf_identity me;
	struct wgf_err err = {0};
	const char *keyfile = NULL;
	bool has_wg_key = false;
	unsigned port = 0, pad = 0;
	Wgfleet__V1__PeerFacts *padv = NULL, **all_facts = NULL;
	uint8_t *buf;
	char *field;
	int c, r;

	if (wgf_key_init() < 0)
		die("libsodium");
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o.url = optarg;
			break;
		case 'c':
			b64key(optarg, o.coord);
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 's':
			o.server = optarg;
			break;
		case 'C':
			b64key(optarg, o.claim);
			o.has_claim = true;
			break;
		case 'T':
			b64key(optarg, o.to);
			o.has_to = true;
			break;
		case 't':
			o.tamper = true;
			break;
		case 'r':
			o.replay = true;
			break;
		case 'S':
			o.skew_ms = strtoll(optarg, NULL, 10);
			break;
		case 'V':
			o.version = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			o.timeout_ms = atoi(optarg);
			break;
		case 'f':
			if (n_facts >= MAX_ITEMS || n_keys >= 3 * MAX_ITEMS)
				die("too many --fact");
			wgfleet__v1__peer_facts__init(&facts[n_facts]);
			b64key(strtok(optarg, ","), keys[n_keys]);
			facts[n_facts].public_key.data = keys[n_keys++];
			facts[n_facts].public_key.len = 32;
			facts[n_facts].last_handshake_ms = strtoll(strtok(NULL, ","), NULL, 10);
			facts[n_facts].endpoint = strtok(NULL, ",");
			facts[n_facts].rx_bytes = strtoull(strtok(NULL, ","), NULL, 10);
			facts[n_facts].tx_bytes = strtoull(strtok(NULL, ","), NULL, 10);
			factp[n_facts] = &facts[n_facts];
			n_facts++;
			break;
		case 'e':
			if (n_errs >= MAX_ITEMS || n_keys >= 3 * MAX_ITEMS)
				die("too many --error");
			wgfleet__v1__peer_apply_error__init(&errs[n_errs]);
			field = strchr(optarg, ',');
			if (!field)
				die("--error KEY,REASON");
			*field = '\0';
			b64key(optarg, keys[n_keys]);
			errs[n_errs].public_key.data = keys[n_keys++];
			errs[n_errs].public_key.len = 32;
			errs[n_errs].reason = field + 1;
			errp[n_errs] = &errs[n_errs];
			n_errs++;
			break;
		case 'd':
			if (n_drift >= MAX_ITEMS || n_keys >= 3 * MAX_ITEMS)
				die("too many --drift");
			wgfleet__v1__drift__init(&drift[n_drift]);
			b64key(strtok(optarg, ","), keys[n_keys]);
			drift[n_drift].public_key.data = keys[n_keys++];
			drift[n_drift].public_key.len = 32;
			drift[n_drift].kind = atoi(strtok(NULL, ","));
			driftp[n_drift] = &drift[n_drift];
			n_drift++;
			break;
		case 'g':
			b64key(optarg, wg_key);
			has_wg_key = true;
			break;
		case 'p':
			port = (unsigned)atoi(optarg);
			break;
		case 'n':
			o.count = (unsigned)strtoul(optarg, NULL, 10);
			if (o.count == 0 || o.count > 100000)
				die("--count is 1 to 100000");
			break;
		case 'P':
			pad = (unsigned)strtoul(optarg, NULL, 10);
			if (pad > 200000)
				die("--pad is at most 200000");
			break;
		default:
			die("unknown option");
		}
	}
	if (!o.url || !keyfile || optind >= argc)
		die("usage: chanprobe --url URL --coordinator B64 --key FILE COMMAND ...");
	r = wgf_identity_load(&me, keyfile, &err);
	if (r < 0)
		die(err.msg);
	if (strcmp(argv[optind], "hint") == 0 && optind + 1 < argc) {
		hint.server = (char *)o.server;
		hint.revision = strtoull(argv[optind + 1], NULL, 10);
		body.kind_case = WGFLEET__V1__BODY__KIND_HINT;
		body.hint = &hint;
	} else if (strcmp(argv[optind], "sync") == 0 && optind + 1 < argc) {
		sync.server = (char *)o.server;
		sync.since_revision = strtoull(argv[optind + 1], NULL, 10);
		sync.want_snapshot = optind + 2 < argc && strcmp(argv[optind + 2], "snapshot") == 0;
		body.kind_case = WGFLEET__V1__BODY__KIND_SYNC_REQUEST;
		body.sync_request = &sync;
	} else if (strcmp(argv[optind], "report") == 0 && optind + 1 < argc) {
		rep.server = (char *)o.server;
		rep.applied_revision = strtoull(argv[optind + 1], NULL, 10);
		rep.n_peers = n_facts;
		rep.peers = factp;
		if (pad > 0) {
			padv = calloc(pad, sizeof(*padv));
			all_facts = calloc(n_facts + pad, sizeof(*all_facts));
			if (!padv || !all_facts)
				die("out of memory");
			memcpy(all_facts, factp, n_facts * sizeof(*factp));
			for (unsigned i = 0; i < pad; i++) {
				wgfleet__v1__peer_facts__init(&padv[i]);
				padv[i].public_key.data = wg_key;
				padv[i].public_key.len = 32;
				padv[i].endpoint = "192.0.2.1:51820";
				padv[i].rx_bytes = padv[i].tx_bytes = 1;
				all_facts[n_facts + i] = &padv[i];
			}
			rep.n_peers = n_facts + pad;
			rep.peers = all_facts;
		}
		rep.n_errors = n_errs;
		rep.errors = errp;
		rep.n_drift = n_drift;
		rep.drift = driftp;
		if (has_wg_key) {
			rep.interface_public_key.data = wg_key;
			rep.interface_public_key.len = 32;
		}
		rep.listen_port = port;
		body.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
		body.report = &rep;
	} else {
		die("unknown command");
	}
	buf = pack_body(&body, &len);
	r = o.count ? flood(&o, &me, buf, len) : exchange(&o, &me, buf, len);
	free(buf);
	free(padv);
	free(all_facts);
	wgf_identity_fini(&me);
	return r;
}
