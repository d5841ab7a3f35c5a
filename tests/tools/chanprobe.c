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

#include "body.h"
#include "fs.h"
#include "identity.h"
#include "key.h"
#include "wgfleet.pb-c.h"
#include "wire.h"

/*
 * chanprobe --url URL --coordinator B64 --key FILE --server NAME [options] COMMAND ...
 *
 *   hint REVISION                 a long poll; prints "hint SERVER REVISION"
 *   sync SINCE [snapshot]         prints "sync SERVER REVISION SNAPSHOT" and a line a peer
 *                                 ("peer KEY IP...") or change ("change OP REV KEY IP..."),
 *                                 then "more PAGE_BASE" when the reply is a page of a
 *                                 snapshot that more pages follow; --page BASE,KEY_B64
 *                                 asks for the page after KEY of the snapshot read at BASE
 *   report APPLIED                with --fact KEY,HANDSHAKE_MS,ENDPOINT,RX,TX,
 *                                 --error KEY,REASON, --drift KEY,KIND(1-3),
 *                                 --wg-key B64 --port N; prints the answering hint
 *
 * Epochs, as the agent keeps them: the epoch of every Hint and SyncReply the
 * coordinator answers with is written to KEY_FILE.epoch (32 hex digits), and every
 * hint, sync and report sends the epoch read from there (none when the file is
 * absent). --epoch HEX sends that epoch instead, --epoch none sends none; what the
 * answer says is written to the file either way (but not by a --count flood).
 *
 * Misbehaviour, for the rejection tests: --tamper (a body byte flipped after signing),
 * --claim B64 (the envelope names another sender than the signer), --to B64 (addressed
 * to another key), --skew MS (timestamp moved), --version N, --replay (the same bytes
 * sent twice; both answers printed). An Error answer prints "error CODE MESSAGE"; an
 * answer that fails wgf_wire_accept() prints "bad-answer REASON" (or "unbound-answer"
 * and then the answer, when it is not bound to the request).
 * Exit status: 0 for any answer, 1 for no answer within --timeout (default 5000 ms).
 *
 * Load, for the admission tests (to 127.0.0.1 only, bounded by the count): --count N
 * sends N envelopes back to back on a raw req socket, each sealed afresh (with
 * --replay, N copies of one), then reads answers until none came for --timeout ms and
 * prints "sent N", "answered M" and "answer KIND COUNT" for each kind of answer
 * ("hint", "sync", "error-CODE", ...). --pad N adds N made-up peers to a report, for
 * an oversized body (about 70 bytes each).
 *
 * Normal bodies are built and read with the codec (body.h) and answers are checked
 * with wgf_wire_accept(); only the misbehaviour re-packs the generated Envelope.
 */

#define MAX_ITEMS       64
#define ANSWER_SKEW_MS  60000
#define EPOCH_FILE_SIZE 64

struct opts {
	const char *url, *server;
	uint8_t coord[32], claim[32], to[32];
	bool has_claim, has_to, tamper, replay;
	int64_t skew_ms;
	uint32_t version;
	int timeout_ms;
	unsigned count;
	char *epoch_path; /* KEY_FILE.epoch */
	const char *epoch_arg;
};

/* The report's parts, as the options give them. */
struct report_opts {
	struct wgf_peer_facts facts[MAX_ITEMS];
	struct wgf_apply_error errors[MAX_ITEMS];
	struct wgf_drift drift[MAX_ITEMS];
	size_t n_facts, n_errors, n_drift;
	uint8_t wg_key[32];
	bool has_wg_key;
	unsigned port, pad;
};

static void die(const char *what)
{
	fprintf(stderr, "chanprobe: %s\n", what);
	exit(2);
}

static void b64key(const char *text, uint8_t out[static 32])
{
	size_t len = 0;

	if (!text ||
	    sodium_base642bin(out, 32, text, strlen(text), NULL, &len, NULL,
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

/* ---- the epoch ---- */

/* 32 hex digits into an epoch; false when text is not that. */
static bool epoch_from_hex(const char *text, size_t len, uint8_t out[static WGF_EPOCH_LEN])
{
	size_t n = 0;
	const char *end = NULL;

	return sodium_hex2bin(out, WGF_EPOCH_LEN, text, len, NULL, &n, &end) == 0 &&
	       n == WGF_EPOCH_LEN && end == text + len;
}

/* The epoch to send: --epoch, else the state file's, else none. */
static void epoch_load(const struct opts *o, uint8_t out[static WGF_EPOCH_LEN])
{
	struct wgf_err err = {0};
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, WGF_EPOCH_LEN);
	if (o->epoch_arg) {
		if (strcmp(o->epoch_arg, "none") != 0 &&
		    !epoch_from_hex(o->epoch_arg, strlen(o->epoch_arg), out))
			die("--epoch is 32 hex digits or 'none'");
		return;
	}
	r = wgf_fs_read(o->epoch_path, EPOCH_FILE_SIZE, &text, &len, &err);
	if (r == -ENOENT)
		return;
	if (r < 0)
		die(err.msg);
	while (len > 0 && text[len - 1] == '\n')
		len--;
	if (!epoch_from_hex(text, len, out))
		die("the epoch file does not hold 32 hex digits");
	free(text);
}

/* Remembers the epoch an answer named, for the next run. */
static void epoch_store(const struct opts *o, const uint8_t epoch[static WGF_EPOCH_LEN])
{
	char hex[2 * WGF_EPOCH_LEN + 1];
	struct wgf_err err = {0};

	if (wgf_epoch_is_none(epoch))
		return;
	sodium_bin2hex(hex, sizeof(hex), epoch, WGF_EPOCH_LEN);
	hex[2 * WGF_EPOCH_LEN] = '\n';
	if (wgf_fs_write_atomic(o->epoch_path, hex, sizeof(hex), 0600, &err) < 0)
		die(err.msg);
}

/* ---- sending ---- */

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
	if (!*buf)
		die("out of memory");
	wgfleet__v1__envelope__pack(e, *buf);
	*len = n;
	wgfleet__v1__envelope__free_unpacked(e, NULL);
}

/* Seals body as the options say: to whom, when, and how mangled. */
static void seal(const struct opts *o, const struct wgf_identity *me, const uint8_t *body,
                 size_t body_len, uint8_t *ret_nonce, uint8_t **ret_buf, size_t *ret_len)
{
	if (wgf_wire_seal(me->sk, o->has_to ? o->to : o->coord, NULL,
	                  (uint64_t)((int64_t)now_ms() + o->skew_ms), body, body_len, ret_nonce,
	                  ret_buf, ret_len) < 0)
		die("cannot seal");
	if (o->has_claim || o->version || o->tamper)
		mangle(o, ret_buf, ret_len);
}

/* ---- answers ---- */

/* wgf_wire_accept()'s view: the one sender we know is the coordinator. */
static const uint8_t *find_coordinator(void *ctx, const struct wgf_wire_msg *m, int kind,
                                       size_t *ret_body_max)
{
	const struct opts *o = ctx;

	(void)kind;
	*ret_body_max = WGF_WIRE_MSG_MAX;
	return sodium_memcmp(m->sender, o->coord, WGF_SIGN_PK_LEN) == 0 ? o->coord : NULL;
}

/*
 * Opens an answer through wgf_wire_accept(): signed by the coordinator, to us (or to
 * the key we claimed to be), fresh, and, when nonce is not NULL, bound to it.
 */
static int open_answer(const struct opts *o, const struct wgf_identity *me, const uint8_t *nonce,
                       nng_msg *msg, struct wgf_wire_msg **ret_msg, struct wgf_body *ret,
                       enum wgf_wire_refusal *ret_why, struct wgf_err *err)
{
	const struct wgf_wire_receiver rx = {.me = o->has_claim ? o->claim : me->pk,
	                                     .max_skew_ms = ANSWER_SKEW_MS,
	                                     .find_sender = find_coordinator,
	                                     .reply_to = nonce,
	                                     .ctx = (void *)o};

	return wgf_wire_accept(&rx, nng_msg_body(msg), nng_msg_len(msg), now_ms(), ret_msg, ret,
	                       ret_why, err);
}

static void print_peer(const char *prefix, const struct wgf_peer *p)
{
	char key[WGF_KEY_B64_LEN], ip[WGF_CIDR_STRLEN];

	wgf_key_to_base64(key, p->public_key);
	printf("%s %s", prefix, key);
	for (unsigned i = 0; i < p->n_allowed_ips; i++) {
		wgf_cidr_format(&p->allowed_ips[i], ip);
		printf(" %s", ip);
	}
	printf(" keepalive=%u\n", p->persistent_keepalive);
}

static void print_sync_reply(const struct wgf_sync_reply *s)
{
	printf("sync %s %" PRIu64 " %d\n", s->server, s->revision, s->snapshot);
	for (size_t i = 0; i < s->n_peers; i++)
		print_peer("peer", &s->peers[i]);
	for (size_t i = 0; i < s->n_changes; i++) {
		char prefix[64];

		snprintf(prefix, sizeof(prefix), "change %s %" PRIu64,
		         s->changes[i].op == WGF_CHANGE_REMOVE ? "remove" : "upsert",
		         s->changes[i].revision);
		print_peer(prefix, &s->changes[i].peer);
	}
	if (s->more)
		printf("more %" PRIu64 "\n", s->page_base);
}

static void print_body(const struct wgf_body *b)
{
	switch (b->kind) {
	case WGF_WIRE_KIND_HINT:
		printf("hint %s %" PRIu64 "\n", b->hint.server, b->hint.revision);
		break;
	case WGF_WIRE_KIND_ERROR:
		printf("error %d %s\n", b->error.code, b->error.message);
		break;
	case WGF_WIRE_KIND_SYNC_REPLY:
		print_sync_reply(&b->sync_reply);
		break;
	default:
		printf("other %d\n", b->kind);
		break;
	}
}

static void print_answer(const struct opts *o, const struct wgf_identity *me, const uint8_t *nonce,
                         nng_msg *msg)
{
	enum wgf_wire_refusal why = WGF_WIRE_ACCEPTED;
	struct wgf_wire_msg *m = NULL;
	struct wgf_err err = {0};
	struct wgf_body b = {0};

	if (open_answer(o, me, nonce, msg, &m, &b, &why, &err) == 0) {
		/* The epoch an answer names is the one to send next time. */
		if (b.kind == WGF_WIRE_KIND_HINT)
			epoch_store(o, b.hint.epoch);
		else if (b.kind == WGF_WIRE_KIND_SYNC_REPLY)
			epoch_store(o, b.sync_reply.epoch);
		print_body(&b);
	} else if (why == WGF_WIRE_REPLAY) {
		/* Signed and fresh, but not bound to our request: say so, and show it. */
		printf("unbound-answer\n");
		if (wgf_body_decode(m->body, m->body_len, &b, &err) == 0)
			print_body(&b);
		else
			printf("bad-answer body: %s\n", err.msg);
	} else if (why == WGF_WIRE_BAD_BODY) {
		printf("bad-answer body: %s\n", err.msg);
	} else {
		printf("bad-answer %s\n", err.msg);
	}
	wgf_body_fini(&b);
	wgf_wire_msg_free(m);
}

static int exchange(const struct opts *o, const struct wgf_identity *me, const uint8_t *body,
                    size_t body_len)
{
	uint8_t nonce[WGF_NONCE_LEN], *buf = NULL;
	size_t len = 0;
	nng_socket s;
	nng_msg *msg;
	int rv, sends = o->replay ? 2 : 1;

	seal(o, me, body, body_len, nonce, &buf, &len);
	if (nng_req0_open(&s) != 0)
		die("cannot open a req socket");
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, o->timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WGF_WIRE_MSG_MAX);
	if ((rv = nng_dial(s, o->url, NULL, 0)) != 0)
		die(nng_strerror(rv));
	for (int i = 0; i < sends; i++) {
		if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, buf, len) != 0)
			die("out of memory");
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
	enum wgf_wire_refusal why = WGF_WIRE_ACCEPTED;
	struct wgf_wire_msg *m = NULL;
	struct wgf_err err = {0};
	struct wgf_body b = {0};

	/* Each envelope of a flood has a nonce of its own: answers are not matched, and
	 * their epochs are not remembered (the flood's requests all carry the same). */
	if (open_answer(o, me, NULL, msg, &m, &b, &why, &err) < 0)
		snprintf(out, 32, "bad-answer");
	else if (b.kind == WGF_WIRE_KIND_HINT)
		snprintf(out, 32, "hint");
	else if (b.kind == WGF_WIRE_KIND_SYNC_REPLY)
		snprintf(out, 32, "sync");
	else if (b.kind == WGF_WIRE_KIND_ERROR)
		snprintf(out, 32, "error-%d", b.error.code);
	else
		snprintf(out, 32, "other-%d", b.kind);
	wgf_body_fini(&b);
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
			seal(o, me, body, body_len, NULL, &buf, &len);
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

/* ---- building the request ---- */

static void server_name(const struct opts *o, char out[static WGF_SERVER_NAME_MAX + 1])
{
	if (!o->server[0])
		die("hint, sync and report need --server NAME");
	if (strlen(o->server) > WGF_SERVER_NAME_MAX)
		die("--server: at most 63 bytes");
	snprintf(out, WGF_SERVER_NAME_MAX + 1, "%s", o->server);
}

/* --fact KEY,HANDSHAKE_MS,ENDPOINT,RX,TX */
static void parse_fact(char *arg, struct wgf_peer_facts *f)
{
	const char *ms, *endpoint, *rx, *tx;

	b64key(strtok(arg, ","), f->public_key);
	ms = strtok(NULL, ",");
	endpoint = strtok(NULL, ",");
	rx = strtok(NULL, ",");
	tx = strtok(NULL, ",");
	if (!ms || !endpoint || !rx || !tx)
		die("--fact KEY,HANDSHAKE_MS,ENDPOINT,RX,TX");
	f->last_handshake_ms = strtoll(ms, NULL, 10);
	snprintf(f->endpoint, sizeof(f->endpoint), "%s", endpoint);
	f->rx_bytes = strtoull(rx, NULL, 10);
	f->tx_bytes = strtoull(tx, NULL, 10);
}

/* --error KEY,REASON */
static void parse_error(char *arg, struct wgf_apply_error *e)
{
	char *reason = strchr(arg, ',');

	if (!reason)
		die("--error KEY,REASON");
	*reason++ = '\0';
	b64key(arg, e->public_key);
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

/* --drift KEY,KIND */
static void parse_drift(char *arg, struct wgf_drift *d)
{
	const char *kind;

	b64key(strtok(arg, ","), d->public_key);
	kind = strtok(NULL, ",");
	if (!kind)
		die("--drift KEY,KIND");
	d->kind = (enum wgf_drift_kind)atoi(kind);
}

/*
 * The report's body. Its arrays are the options' (and, with --pad, *ret_pad, which the
 * caller frees).
 */
static void build_report(const struct opts *o, struct report_opts *ro, uint64_t applied,
                         struct wgf_body *b, struct wgf_peer_facts **ret_pad)
{
	struct wgf_report *rep = &b->report;
	struct wgf_peer_facts *all = ro->facts;

	if (ro->pad > 0) {
		all = calloc(ro->n_facts + ro->pad, sizeof(*all));
		if (!all)
			die("out of memory");
		memcpy(all, ro->facts, ro->n_facts * sizeof(*all));
		for (size_t i = ro->n_facts; i < ro->n_facts + ro->pad; i++) {
			memcpy(all[i].public_key, ro->wg_key, WGF_KEY_LEN);
			snprintf(all[i].endpoint, sizeof(all[i].endpoint), "192.0.2.1:51820");
			all[i].rx_bytes = all[i].tx_bytes = 1;
		}
		*ret_pad = all;
	}
	b->kind = WGF_WIRE_KIND_REPORT;
	server_name(o, rep->server);
	epoch_load(o, rep->epoch);
	rep->applied_revision = applied;
	rep->facts = all;
	rep->n_facts = ro->n_facts + ro->pad;
	rep->errors = ro->errors;
	rep->n_errors = ro->n_errors;
	for (size_t i = 0; i < ro->n_errors; i++)
		ro->errors[i].revision = applied;
	rep->drift = ro->drift;
	rep->n_drift = ro->n_drift;
	rep->has_interface_key = ro->has_wg_key;
	memcpy(rep->interface_public_key, ro->wg_key, WGF_KEY_LEN);
	rep->listen_port = (uint16_t)ro->port;
}

/* --page BASE,KEY_B64 */
static void parse_page(char *arg, struct wgf_sync_request *sr)
{
	char *key = strchr(arg, ',');

	if (!key)
		die("--page BASE,KEY_B64");
	*key++ = '\0';
	sr->page_base = strtoull(arg, NULL, 10);
	if (sr->page_base == 0)
		die("--page: the base is a revision above 0");
	b64key(key, sr->page_after);
}

/* Encodes the command's body into *ret (malloc'd). */
static void build_body(const struct opts *o, struct report_opts *ro, char *page, int argc,
                       char **argv, uint8_t **ret, size_t *ret_len)
{
	struct wgf_body b = {0};
	struct wgf_peer_facts *pad = NULL;
	struct wgf_err err = {0};
	uint64_t n;

	if (argc < 2)
		die("the command needs a revision");
	n = strtoull(argv[1], NULL, 10);
	if (strcmp(argv[0], "hint") == 0) {
		b.kind = WGF_WIRE_KIND_HINT;
		server_name(o, b.hint.server);
		b.hint.revision = n;
		epoch_load(o, b.hint.epoch);
	} else if (strcmp(argv[0], "sync") == 0) {
		b.kind = WGF_WIRE_KIND_SYNC_REQUEST;
		server_name(o, b.sync_request.server);
		b.sync_request.since_revision = n;
		b.sync_request.want_snapshot = argc > 2 && strcmp(argv[2], "snapshot") == 0;
		epoch_load(o, b.sync_request.epoch);
		if (page)
			parse_page(page, &b.sync_request);
	} else if (strcmp(argv[0], "report") == 0) {
		build_report(o, ro, n, &b, &pad);
	} else {
		die("unknown command");
	}
	if (wgf_body_encode(&b, ret, ret_len, &err) < 0)
		die(err.msg[0] ? err.msg : "cannot encode the body");
	free(pad);
}

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
	        {"epoch", required_argument, NULL, 'E'},
	        {"page", required_argument, NULL, 'G'},
	        {NULL, 0, NULL, 0},
	};
	struct opts o = {.server = "", .timeout_ms = 5000};
	static struct report_opts ro;
	struct wgf_identity me;
	struct wgf_err err = {0};
	const char *keyfile = NULL;
	char *page = NULL;
	uint8_t *buf;
	size_t len;
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
			if (ro.n_facts >= MAX_ITEMS)
				die("too many --fact");
			parse_fact(optarg, &ro.facts[ro.n_facts++]);
			break;
		case 'e':
			if (ro.n_errors >= MAX_ITEMS)
				die("too many --error");
			parse_error(optarg, &ro.errors[ro.n_errors++]);
			break;
		case 'd':
			if (ro.n_drift >= MAX_ITEMS)
				die("too many --drift");
			parse_drift(optarg, &ro.drift[ro.n_drift++]);
			break;
		case 'g':
			b64key(optarg, ro.wg_key);
			ro.has_wg_key = true;
			break;
		case 'p':
			ro.port = (unsigned)atoi(optarg);
			break;
		case 'n':
			o.count = (unsigned)strtoul(optarg, NULL, 10);
			if (o.count == 0 || o.count > 100000)
				die("--count is 1 to 100000");
			break;
		case 'P':
			ro.pad = (unsigned)strtoul(optarg, NULL, 10);
			if (ro.pad > 200000)
				die("--pad is at most 200000");
			break;
		case 'E':
			o.epoch_arg = optarg;
			break;
		case 'G':
			page = optarg;
			break;
		default:
			die("unknown option");
		}
	}
	if (!o.url || !keyfile || optind >= argc)
		die("usage: chanprobe --url URL --coordinator B64 --key FILE COMMAND ...");
	if (asprintf(&o.epoch_path, "%s.epoch", keyfile) < 0)
		die("out of memory");
	r = wgf_identity_load(&me, keyfile, &err);
	if (r < 0)
		die(err.msg);
	build_body(&o, &ro, page, argc - optind, argv + optind, &buf, &len);
	r = o.count ? flood(&o, &me, buf, len) : exchange(&o, &me, buf, len);
	free(buf);
	free(o.epoch_path);
	wgf_identity_fini(&me);
	return r;
}
