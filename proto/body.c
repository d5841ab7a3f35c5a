/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* body: struct wgf_body to and from the generated protobuf-c types. */
#include "body.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wgfleet.pb-c.h"

#define SAME_NUMBER(ours, generated) static_assert((int)(ours) == (int)(generated), #ours)
SAME_NUMBER(WGF_CHANGE_UPSERT, WGFLEET__V1__PEER_CHANGE__OP__OP_UPSERT);
SAME_NUMBER(WGF_CHANGE_REMOVE, WGFLEET__V1__PEER_CHANGE__OP__OP_REMOVE);
SAME_NUMBER(WGF_DRIFT_EXTRA, WGFLEET__V1__DRIFT__KIND__KIND_EXTRA_PEER);
SAME_NUMBER(WGF_DRIFT_MISSING, WGFLEET__V1__DRIFT__KIND__KIND_MISSING_PEER);
SAME_NUMBER(WGF_DRIFT_CHANGED, WGFLEET__V1__DRIFT__KIND__KIND_CHANGED_PEER);

static const uint8_t no_epoch[WGF_EPOCH_LEN];
static const uint8_t empty[1];

bool wgf_epoch_is_none(const uint8_t epoch[static WGF_EPOCH_LEN])
{
	return memcmp(epoch, no_epoch, WGF_EPOCH_LEN) == 0;
}

/* ---- encoding ---- */

/* protobuf-c's fields are not const; packing only reads them. */
static ProtobufCBinaryData bytes(const uint8_t *data, size_t len)
{
	return (ProtobufCBinaryData){.len = len, .data = (uint8_t *)data};
}

static ProtobufCBinaryData epoch_bytes(const uint8_t epoch[static WGF_EPOCH_LEN])
{
	return wgf_epoch_is_none(epoch) ? bytes(NULL, 0) : bytes(epoch, WGF_EPOCH_LEN);
}

/* What the peers of one message need besides their structs: one allocation. */
struct peer_arena {
	Wgfleet__V1__Peer *peers;
	char **ips;                    /* n_ips pointers into text */
	char (*text)[WGF_CIDR_STRLEN]; /* n_ips strings */
	size_t used_ips;
};

static int arena_init(struct peer_arena *a, size_t n_peers, size_t n_ips)
{
	a->peers = calloc(n_peers ? n_peers : 1, sizeof(*a->peers));
	a->ips = calloc(n_ips ? n_ips : 1, sizeof(*a->ips));
	a->text = calloc(n_ips ? n_ips : 1, sizeof(*a->text));
	a->used_ips = 0;
	return a->peers && a->ips && a->text ? 0 : -ENOMEM;
}

static void arena_fini(struct peer_arena *a)
{
	free(a->peers);
	free(a->ips);
	free(a->text);
}

static Wgfleet__V1__Peer *encode_peer(struct peer_arena *a, size_t i, const struct wgf_peer *p)
{
	Wgfleet__V1__Peer *out = &a->peers[i];

	wgfleet__v1__peer__init(out);
	out->public_key = bytes(p->public_key, WGF_KEY_LEN);
	out->allowed_ips = &a->ips[a->used_ips];
	for (unsigned k = 0; k < p->n_allowed_ips && k < WGF_PEER_ALLOWED_IPS_MAX; k++) {
		wgf_cidr_format(&p->allowed_ips[k], a->text[a->used_ips]);
		a->ips[a->used_ips] = a->text[a->used_ips];
		a->used_ips++;
		out->n_allowed_ips++;
	}
	out->persistent_keepalive = p->persistent_keepalive;
	return out;
}

static size_t count_ips(const struct wgf_peer *peers, size_t n, size_t step)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		const struct wgf_peer *p =
		        (const struct wgf_peer *)((const char *)peers + i * step);

		total += p->n_allowed_ips < WGF_PEER_ALLOWED_IPS_MAX ? p->n_allowed_ips
		                                                     : WGF_PEER_ALLOWED_IPS_MAX;
	}
	return total;
}

static int pack(const Wgfleet__V1__Body *b, uint8_t **ret, size_t *ret_len, struct wgf_err *err)
{
	size_t len = wgfleet__v1__body__get_packed_size(b);
	uint8_t *buf;

	if (len > WGF_WIRE_MSG_MAX)
		return wgf_err_set(err, -EMSGSIZE, "the body would be %zu bytes, more than %zu",
		                   len, WGF_WIRE_MSG_MAX);
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	if (wgfleet__v1__body__pack(b, buf) != len) {
		free(buf);
		return -EIO;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int encode_sync_reply(const struct wgf_sync_reply *r, uint8_t **ret, size_t *ret_len,
                             struct wgf_err *err)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__SyncReply sr = WGFLEET__V1__SYNC_REPLY__INIT;
	size_t n_ips =
	        count_ips(r->peers, r->n_peers, sizeof(*r->peers)) +
	        (r->n_changes ? count_ips(&r->changes->peer, r->n_changes, sizeof(*r->changes))
	                      : 0);
	struct peer_arena a = {0};
	Wgfleet__V1__Peer **pp = calloc(r->n_peers + 1, sizeof(*pp));
	Wgfleet__V1__PeerChange *cv = calloc(r->n_changes + 1, sizeof(*cv));
	Wgfleet__V1__PeerChange **cp = calloc(r->n_changes + 1, sizeof(*cp));
	char **routable = calloc(r->n_routable + 1, sizeof(*routable));
	char(*routable_text)[WGF_CIDR_STRLEN] = calloc(r->n_routable + 1, WGF_CIDR_STRLEN);
	int rv = arena_init(&a, r->n_peers + r->n_changes, n_ips);

	if (rv == 0 && (!pp || !cv || !cp || !routable || !routable_text))
		rv = -ENOMEM;
	for (size_t i = 0; rv == 0 && i < r->n_changes; i++) {
		if (r->changes[i].op != WGF_CHANGE_UPSERT && r->changes[i].op != WGF_CHANGE_REMOVE)
			rv = wgf_err_set(err, -EINVAL, "change %zu has no operation", i);
	}
	if (rv < 0)
		goto out;
	sr.server = (char *)r->server;
	sr.revision = r->revision;
	sr.snapshot = r->snapshot;
	sr.epoch = epoch_bytes(r->epoch);
	sr.page_base = r->page_base;
	sr.more = r->more;
	sr.peers = pp;
	for (size_t i = 0; i < r->n_peers; i++)
		pp[sr.n_peers++] = encode_peer(&a, i, &r->peers[i]);
	sr.changes = cp;
	for (size_t i = 0; i < r->n_changes; i++) {
		wgfleet__v1__peer_change__init(&cv[i]);
		cv[i].op = (Wgfleet__V1__PeerChange__Op)r->changes[i].op;
		cv[i].revision = r->changes[i].revision;
		cv[i].peer = encode_peer(&a, r->n_peers + i, &r->changes[i].peer);
		cp[sr.n_changes++] = &cv[i];
	}
	sr.routable = routable;
	for (size_t i = 0; i < r->n_routable; i++) {
		wgf_cidr_format(&r->routable[i], routable_text[i]);
		routable[sr.n_routable++] = routable_text[i];
	}
	b.kind_case = WGFLEET__V1__BODY__KIND_SYNC_REPLY;
	b.sync_reply = &sr;
	rv = pack(&b, ret, ret_len, err);
out:
	arena_fini(&a);
	free(pp);
	free(cv);
	free(cp);
	free(routable);
	free(routable_text);
	return rv;
}

/* The unknown peers of a report, in rep; their parts live in the three arrays given. */
static int encode_unknown(const struct wgf_report *r, Wgfleet__V1__Report *rep,
                          Wgfleet__V1__UnknownPeer **ret_uv, char ***ret_ips,
                          char (**ret_text)[WGF_CIDR_STRLEN])
{
	size_t n_ips = 0, k = 0;
	Wgfleet__V1__UnknownPeer *uv;
	char **ips, (*text)[WGF_CIDR_STRLEN];

	rep->unknown_listed = r->has_unknown;
	rep->unknown_total = r->n_unknown_total;
	for (size_t i = 0; i < r->n_unknown; i++)
		n_ips += r->unknown[i].n_allowed_ips;
	*ret_uv = uv = calloc(r->n_unknown + 1, sizeof(*uv));
	rep->unknown_peers = calloc(r->n_unknown + 1, sizeof(*rep->unknown_peers));
	*ret_ips = ips = calloc(n_ips + 1, sizeof(*ips));
	*ret_text = text = calloc(n_ips + 1, sizeof(*text));
	if (!uv || !rep->unknown_peers || !ips || !text)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_unknown; i++) {
		const struct wgf_unknown_peer *u = &r->unknown[i];

		wgfleet__v1__unknown_peer__init(&uv[i]);
		uv[i].public_key = bytes(u->public_key, WGF_KEY_LEN);
		uv[i].last_handshake_ms = u->last_handshake_ms;
		uv[i].endpoint = (char *)u->endpoint;
		uv[i].allowed_ips = ips + k;
		for (unsigned j = 0; j < u->n_allowed_ips; j++, k++) {
			wgf_cidr_format(&u->allowed_ips[j], text[k]);
			ips[k] = text[k];
		}
		uv[i].n_allowed_ips = u->n_allowed_ips;
		rep->unknown_peers[rep->n_unknown_peers++] = &uv[i];
	}
	return 0;
}

static int encode_report(const struct wgf_report *r, uint8_t **ret, size_t *ret_len,
                         struct wgf_err *err)
{
	Wgfleet__V1__UnknownPeer *uv = NULL;
	char **ips = NULL, (*text)[WGF_CIDR_STRLEN] = NULL;
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Report rep = WGFLEET__V1__REPORT__INIT;
	Wgfleet__V1__PeerApplyError *ev = calloc(r->n_errors + 1, sizeof(*ev));
	Wgfleet__V1__PeerFacts *fv = calloc(r->n_facts + 1, sizeof(*fv));
	Wgfleet__V1__Drift *dv = calloc(r->n_drift + 1, sizeof(*dv));
	void **ptrs = calloc(r->n_errors + r->n_facts + r->n_drift + 1, sizeof(*ptrs));
	int rv = -ENOMEM;

	if (!ev || !fv || !dv || !ptrs || encode_unknown(r, &rep, &uv, &ips, &text) < 0)
		goto out;
	rep.server = (char *)r->server;
	rep.epoch = epoch_bytes(r->epoch);
	rep.applied_revision = r->applied_revision;
	rep.listen_port = r->listen_port;
	rep.cache_error = (char *)r->cache_error;
	if (r->has_interface_key)
		rep.interface_public_key = bytes(r->interface_public_key, WGF_KEY_LEN);
	rep.errors = (Wgfleet__V1__PeerApplyError **)ptrs;
	for (size_t i = 0; i < r->n_errors; i++) {
		wgfleet__v1__peer_apply_error__init(&ev[i]);
		ev[i].public_key = bytes(r->errors[i].public_key, WGF_KEY_LEN);
		ev[i].revision = r->errors[i].revision;
		ev[i].reason = (char *)r->errors[i].reason;
		rep.errors[rep.n_errors++] = &ev[i];
	}
	rep.peers = (Wgfleet__V1__PeerFacts **)(ptrs + rep.n_errors);
	for (size_t i = 0; i < r->n_facts; i++) {
		wgfleet__v1__peer_facts__init(&fv[i]);
		fv[i].public_key = bytes(r->facts[i].public_key, WGF_KEY_LEN);
		fv[i].last_handshake_ms = r->facts[i].last_handshake_ms;
		fv[i].endpoint = (char *)r->facts[i].endpoint;
		fv[i].rx_bytes = r->facts[i].rx_bytes;
		fv[i].tx_bytes = r->facts[i].tx_bytes;
		rep.peers[rep.n_peers++] = &fv[i];
	}
	rep.drift = (Wgfleet__V1__Drift **)(ptrs + rep.n_errors + rep.n_peers);
	for (size_t i = 0; i < r->n_drift; i++) {
		wgfleet__v1__drift__init(&dv[i]);
		dv[i].public_key = bytes(r->drift[i].public_key, WGF_KEY_LEN);
		dv[i].kind = (Wgfleet__V1__Drift__Kind)r->drift[i].kind;
		rep.drift[rep.n_drift++] = &dv[i];
	}
	b.kind_case = WGFLEET__V1__BODY__KIND_REPORT;
	b.report = &rep;
	rv = pack(&b, ret, ret_len, err);
out:
	free(ev);
	free(fv);
	free(dv);
	free(ptrs);
	free(uv);
	free(rep.unknown_peers);
	free(ips);
	free(text);
	return rv;
}

static int encode_hint(const struct wgf_hint *h, uint8_t **ret, size_t *ret_len,
                       struct wgf_err *err)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Hint hint = WGFLEET__V1__HINT__INIT;
	ProtobufCBinaryData *keys = calloc(h->n_released + 1, sizeof(*keys));
	int rv;

	if (!keys)
		return -ENOMEM;
	hint.server = (char *)h->server;
	hint.revision = h->revision;
	hint.epoch = epoch_bytes(h->epoch);
	hint.released_listed = h->has_released;
	for (size_t i = 0; i < h->n_released; i++)
		keys[i] = bytes(h->released[i], WGF_KEY_LEN);
	hint.released = keys;
	hint.n_released = h->n_released;
	b.kind_case = WGFLEET__V1__BODY__KIND_HINT;
	b.hint = &hint;
	rv = pack(&b, ret, ret_len, err);
	free(keys);
	return rv;
}

int wgf_body_encode(const struct wgf_body *b, uint8_t **ret, size_t *ret_len, struct wgf_err *err)
{
	Wgfleet__V1__Body out = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__SyncRequest sr = WGFLEET__V1__SYNC_REQUEST__INIT;
	const char *server = b->kind == WGF_WIRE_KIND_HINT           ? b->hint.server
	                     : b->kind == WGF_WIRE_KIND_SYNC_REQUEST ? b->sync_request.server
	                     : b->kind == WGF_WIRE_KIND_SYNC_REPLY   ? b->sync_reply.server
	                     : b->kind == WGF_WIRE_KIND_REPORT       ? b->report.server
	                                                             : NULL;

	if (server && !server[0])
		return wgf_err_set(err, -EINVAL, "the body names no server");
	switch (b->kind) {
	case WGF_WIRE_KIND_HINT:
		return encode_hint(&b->hint, ret, ret_len, err);
	case WGF_WIRE_KIND_SYNC_REQUEST:
		sr.server = (char *)b->sync_request.server;
		sr.since_revision = b->sync_request.since_revision;
		sr.want_snapshot = b->sync_request.want_snapshot;
		sr.epoch = epoch_bytes(b->sync_request.epoch);
		sr.page_base = b->sync_request.page_base;
		if (sr.page_base > 0)
			sr.page_after = bytes(b->sync_request.page_after, WGF_KEY_LEN);
		out.kind_case = WGFLEET__V1__BODY__KIND_SYNC_REQUEST;
		out.sync_request = &sr;
		return pack(&out, ret, ret_len, err);
	case WGF_WIRE_KIND_SYNC_REPLY:
		return encode_sync_reply(&b->sync_reply, ret, ret_len, err);
	case WGF_WIRE_KIND_REPORT:
		return encode_report(&b->report, ret, ret_len, err);
	case WGF_WIRE_KIND_ERROR:
		if (b->error.code <= WGF_WIRE_ERROR_UNSPECIFIED ||
		    b->error.code > WGF_WIRE_ERROR_INTERNAL)
			return wgf_err_set(err, -EINVAL, "an Error needs a known code");
		return wgf_body_encode_error(b->error.code, b->error.message, ret, ret_len);
	default:
		return wgf_err_set(err, -EINVAL, "no such kind of body");
	}
}

int wgf_body_encode_error(enum wgf_wire_error_code code, const char *message, uint8_t **ret,
                          size_t *ret_len)
{
	Wgfleet__V1__Body b = WGFLEET__V1__BODY__INIT;
	Wgfleet__V1__Error e = WGFLEET__V1__ERROR__INIT;

	if (code <= WGF_WIRE_ERROR_UNSPECIFIED || code > WGF_WIRE_ERROR_INTERNAL)
		return -EINVAL;
	e.code = (Wgfleet__V1__Error__Code)code;
	if (message)
		e.message = (char *)message;
	e.supported_version = WGF_PROTOCOL_VERSION;
	b.kind_case = WGFLEET__V1__BODY__KIND_ERROR;
	b.error = &e;
	return pack(&b, ret, ret_len, NULL);
}

/* ---- decoding ---- */

/* The length of the UTF-8 sequence lead byte c starts, its bits in *ret_bits; 0 if none. */
static size_t utf8_lead(unsigned char c, uint32_t *ret_bits)
{
	if ((c & 0xe0) == 0xc0) {
		*ret_bits = c & 0x1f;
		return 2;
	}
	if ((c & 0xf0) == 0xe0) {
		*ret_bits = c & 0x0f;
		return 3;
	}
	if ((c & 0xf8) == 0xf0) {
		*ret_bits = c & 0x07;
		return 4;
	}
	return 0;
}

/*
 * Whether s (len bytes) is UTF-8 as proto3 requires of a string and PostgreSQL of
 * text: no stray or missing continuation bytes, no overlong forms, no surrogates,
 * nothing past U+10FFFF. protobuf-c does not check this itself.
 */
static bool is_utf8(const char *s, size_t len)
{
	static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		uint32_t cp = *p;
		size_t n = *p < 0x80 ? 1 : utf8_lead(*p, &cp);

		if (n == 0 || (size_t)(end - p) < n)
			return false;
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (n > 1 && (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)))
			return false;
		p += n;
	}
	return true;
}

/* -EBADMSG naming the field (of entry i of what, when what is set) unless in is UTF-8. */
static int check_utf8(const char *in, const char *what, size_t i, const char *field,
                      struct wgf_err *err)
{
	if (!in || is_utf8(in, strlen(in)))
		return 0;
	if (what)
		return wgf_err_set(err, -EBADMSG, "%s %zu: %s is not valid UTF-8", what, i, field);
	return wgf_err_set(err, -EBADMSG, "%s is not valid UTF-8", field);
}

/*
 * A server name: present, short enough, UTF-8. protobuf-c hands strings over as C
 * strings, so a NUL inside one ends it there; what follows is never seen.
 */
static int take_server(char out[static WGF_SERVER_NAME_MAX + 1], const char *in,
                       struct wgf_err *err)
{
	size_t len = in ? strlen(in) : 0;

	if (len == 0)
		return wgf_err_set(err, -EBADMSG, "the body names no server");
	if (len > WGF_SERVER_NAME_MAX)
		return wgf_err_set(err, -EBADMSG, "server name is %zu bytes, more than %d", len,
		                   WGF_SERVER_NAME_MAX);
	if (!is_utf8(in, len))
		return wgf_err_set(err, -EBADMSG, "server name is not valid UTF-8");
	memcpy(out, in, len + 1);
	return 0;
}

/* Free text (UTF-8, see check_utf8()), cut to size at a character boundary. */
static void take_text(char *out, size_t size, const char *in)
{
	size_t len = in ? strlen(in) : 0;

	if (len >= size) {
		len = size - 1;
		while (len > 0 && ((unsigned char)in[len] & 0xc0) == 0x80)
			len--;
	}
	if (len)
		memcpy(out, in, len);
	out[len] = '\0';
}

static int take_key(uint8_t out[static WGF_KEY_LEN], const ProtobufCBinaryData *in,
                    const char *what, size_t i, struct wgf_err *err)
{
	if (in->len != WGF_KEY_LEN)
		return wgf_err_set(err, -EBADMSG, "%s %zu: public key is %zu bytes, expected %d",
		                   what, i, in->len, WGF_KEY_LEN);
	memcpy(out, in->data, WGF_KEY_LEN);
	return 0;
}

static int take_epoch(uint8_t out[static WGF_EPOCH_LEN], const ProtobufCBinaryData *in,
                      struct wgf_err *err)
{
	memset(out, 0, WGF_EPOCH_LEN);
	if (in->len == 0)
		return 0;
	if (in->len != WGF_EPOCH_LEN)
		return wgf_err_set(err, -EBADMSG, "epoch is %zu bytes, expected 0 or %d", in->len,
		                   WGF_EPOCH_LEN);
	memcpy(out, in->data, WGF_EPOCH_LEN);
	return 0;
}

static int take_cidr(struct wgf_cidr *out, const char *text, const char *what, size_t i,
                     struct wgf_err *err)
{
	struct wgf_err e = {0};

	if (wgf_cidr_parse(out, text ? text : "", 0, &e) < 0)
		return wgf_err_set(err, -EBADMSG, "%s %zu: %s", what, i, e.msg);
	return 0;
}

static int take_peer(struct wgf_ip_pool *pool, struct wgf_peer *out, const Wgfleet__V1__Peer *in,
                     const char *what, size_t i, bool key_only, struct wgf_err *err)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (!in)
		return wgf_err_set(err, -EBADMSG, "%s %zu has no peer", what, i);
	r = take_key(out->public_key, &in->public_key, what, i, err);
	if (r < 0 || key_only)
		return r;
	if (in->n_allowed_ips > WGF_PEER_ALLOWED_IPS_MAX)
		return wgf_err_set(err, -EBADMSG, "%s %zu has %zu allowed IPs, more than %d", what,
		                   i, in->n_allowed_ips, WGF_PEER_ALLOWED_IPS_MAX);
	for (size_t k = 0; k < in->n_allowed_ips; k++) {
		struct wgf_cidr c;

		r = take_cidr(&c, in->allowed_ips[k], what, i, err);
		if (r < 0)
			return r;
		if (wgf_peer_add_allowed_ip(pool, out, &c) < 0) /* counted above */
			return -ENOMEM;
	}
	if (in->persistent_keepalive > 65535)
		return wgf_err_set(err, -EBADMSG, "%s %zu: keepalive %u is more than 65535", what,
		                   i, in->persistent_keepalive);
	out->persistent_keepalive = (uint16_t)in->persistent_keepalive;
	if (out->persistent_keepalive)
		out->flags |= WGF_PEER_HAS_KEEPALIVE;
	return 0;
}

static int decode_sync_reply(const Wgfleet__V1__SyncReply *in, struct wgf_sync_reply *out,
                             struct wgf_err *err)
{
	int r = take_server(out->server, in->server, err);

	if (r == 0)
		r = take_epoch(out->epoch, &in->epoch, err);
	if (r < 0)
		return r;
	if (in->n_peers > WGF_BODY_PEERS_MAX || in->n_changes > WGF_BODY_CHANGES_MAX ||
	    in->n_routable > WGF_ROUTABLE_MAX)
		return wgf_err_set(
		        err, -EBADMSG,
		        "the reply has %zu peers, %zu changes and %zu routable networks, "
		        "more than allowed",
		        in->n_peers, in->n_changes, in->n_routable);
	if (!in->snapshot && (in->n_peers > 0 || in->more || in->page_base > 0))
		return wgf_err_set(err, -EBADMSG, "a reply of deltas carries snapshot fields");
	if (in->snapshot && in->more && in->n_changes > 0)
		return wgf_err_set(err, -EBADMSG,
		                   "a snapshot page that is not the last has changes");
	out->revision = in->revision;
	out->snapshot = in->snapshot;
	out->page_base = in->page_base;
	out->more = in->more;
	out->peers = calloc(in->n_peers + 1, sizeof(*out->peers));
	out->changes = calloc(in->n_changes + 1, sizeof(*out->changes));
	out->routable = calloc(in->n_routable + 1, sizeof(*out->routable));
	if (!out->peers || !out->changes || !out->routable)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < in->n_peers; i++, out->n_peers++) {
		r = take_peer(&out->ips, &out->peers[i], in->peers[i], "peer", i, false, err);
		if (r == 0 && i > 0 &&
		    memcmp(out->peers[i - 1].public_key, out->peers[i].public_key, WGF_KEY_LEN) >=
		            0)
			r = wgf_err_set(err, -EBADMSG, "peer %zu is out of key order", i);
	}
	for (size_t i = 0; r == 0 && i < in->n_changes; i++, out->n_changes++) {
		const Wgfleet__V1__PeerChange *c = in->changes[i];
		struct wgf_change *o = &out->changes[i];

		if (c->op != WGFLEET__V1__PEER_CHANGE__OP__OP_UPSERT &&
		    c->op != WGFLEET__V1__PEER_CHANGE__OP__OP_REMOVE) {
			r = wgf_err_set(err, -EBADMSG, "change %zu has no known operation", i);
			break;
		}
		o->op = (enum wgf_change_op)c->op;
		o->revision = c->revision;
		r = take_peer(&out->ips, &o->peer, c->peer, "change", i, o->op == WGF_CHANGE_REMOVE,
		              err);
		if (r == 0 && (c->revision == 0 || c->revision > in->revision ||
		               (i > 0 && c->revision < out->changes[i - 1].revision)))
			r = wgf_err_set(err, -EBADMSG, "change %zu: revision %llu is out of order",
			                i, (unsigned long long)c->revision);
	}
	for (size_t i = 0; r == 0 && i < in->n_routable; i++, out->n_routable++)
		r = take_cidr(&out->routable[i], in->routable[i], "routable network", i, err);
	return r;
}

static int decode_released(const Wgfleet__V1__Hint *in, struct wgf_hint *out, struct wgf_err *err)
{
	int r = 0;

	if (!in->released_listed && in->n_released)
		return wgf_err_set(err, -EBADMSG, "released keys in a hint that lists none");
	if (in->n_released > WGF_HINT_RELEASED_MAX)
		return wgf_err_set(err, -EBADMSG, "the hint names more than %d released keys",
		                   WGF_HINT_RELEASED_MAX);
	out->has_released = in->released_listed;
	if (!in->n_released)
		return 0;
	out->released = malloc(in->n_released * WGF_KEY_LEN);
	if (!out->released)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < in->n_released; i++, out->n_released++) {
		r = take_key(out->released[i], &in->released[i], "released key", i, err);
		if (r == 0 && i > 0 &&
		    memcmp(out->released[i - 1], out->released[i], WGF_KEY_LEN) >= 0)
			r = wgf_err_set(err, -EBADMSG, "released key %zu: keys out of order", i);
	}
	return r;
}

static int decode_unknown(const Wgfleet__V1__Report *in, struct wgf_report *out,
                          struct wgf_err *err)
{
	int r = 0;

	if (!in->unknown_listed && (in->n_unknown_peers || in->unknown_total))
		return wgf_err_set(err, -EBADMSG, "unknown peers in a report that lists none");
	if (in->n_unknown_peers > WGF_REPORT_UNKNOWN_MAX)
		return wgf_err_set(err, -EBADMSG, "the report lists more than %d unknown peers",
		                   WGF_REPORT_UNKNOWN_MAX);
	if (in->unknown_total < in->n_unknown_peers)
		return wgf_err_set(err, -EBADMSG, "unknown_total is less than the peers listed");
	out->has_unknown = in->unknown_listed;
	out->n_unknown_total = in->unknown_total;
	out->unknown = calloc(in->n_unknown_peers + 1, sizeof(*out->unknown));
	if (!out->unknown)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < in->n_unknown_peers; i++, out->n_unknown++) {
		const Wgfleet__V1__UnknownPeer *u = in->unknown_peers[i];
		struct wgf_unknown_peer *o = &out->unknown[i];

		r = take_key(o->public_key, &u->public_key, "unknown peer", i, err);
		if (r == 0 && i > 0 &&
		    memcmp(out->unknown[i - 1].public_key, o->public_key, WGF_KEY_LEN) >= 0)
			r = wgf_err_set(err, -EBADMSG, "unknown peer %zu: keys out of order", i);
		if (r == 0 && u->n_allowed_ips > WGF_PEER_ALLOWED_IPS_MAX)
			r = wgf_err_set(err, -EBADMSG, "unknown peer %zu: more than %d allowed IPs",
			                i, WGF_PEER_ALLOWED_IPS_MAX);
		for (size_t j = 0; r == 0 && j < u->n_allowed_ips; j++, o->n_allowed_ips++)
			r = take_cidr(&o->allowed_ips[j], u->allowed_ips[j], "unknown peer", i,
			              err);
		if (r == 0 && u->last_handshake_ms < 0)
			r = wgf_err_set(err, -EBADMSG,
			                "unknown peer %zu: handshake time is negative", i);
		if (r == 0)
			r = check_utf8(u->endpoint, "unknown peer", i, "endpoint", err);
		o->last_handshake_ms = u->last_handshake_ms;
		take_text(o->endpoint, sizeof(o->endpoint), u->endpoint);
	}
	return r;
}

static int decode_report(const Wgfleet__V1__Report *in, struct wgf_report *out, struct wgf_err *err)
{
	int r = take_server(out->server, in->server, err);

	if (r == 0)
		r = take_epoch(out->epoch, &in->epoch, err);
	if (r < 0)
		return r;
	if (in->n_errors > WGF_DEVICE_PEERS_MAX || in->n_peers > WGF_DEVICE_PEERS_MAX ||
	    in->n_drift > WGF_DEVICE_PEERS_MAX)
		return wgf_err_set(err, -EBADMSG, "the report names more peers than allowed");
	if (in->listen_port > 65535)
		return wgf_err_set(err, -EBADMSG, "listen port %u is more than 65535",
		                   in->listen_port);
	if (in->interface_public_key.len != 0) {
		r = take_key(out->interface_public_key, &in->interface_public_key, "interface", 0,
		             err);
		if (r < 0)
			return r;
		out->has_interface_key = true;
	}
	r = check_utf8(in->cache_error, NULL, 0, "the cache error", err);
	if (r < 0)
		return r;
	out->applied_revision = in->applied_revision;
	out->listen_port = (uint16_t)in->listen_port;
	take_text(out->cache_error, sizeof(out->cache_error), in->cache_error);
	out->errors = calloc(in->n_errors + 1, sizeof(*out->errors));
	out->facts = calloc(in->n_peers + 1, sizeof(*out->facts));
	out->drift = calloc(in->n_drift + 1, sizeof(*out->drift));
	if (!out->errors || !out->facts || !out->drift)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < in->n_errors; i++, out->n_errors++) {
		r = take_key(out->errors[i].public_key, &in->errors[i]->public_key, "error", i,
		             err);
		if (r == 0)
			r = check_utf8(in->errors[i]->reason, "error", i, "reason", err);
		out->errors[i].revision = in->errors[i]->revision;
		take_text(out->errors[i].reason, sizeof(out->errors[i].reason),
		          in->errors[i]->reason);
	}
	for (size_t i = 0; r == 0 && i < in->n_peers; i++, out->n_facts++) {
		const Wgfleet__V1__PeerFacts *f = in->peers[i];

		r = take_key(out->facts[i].public_key, &f->public_key, "peer facts", i, err);
		if (r == 0 && f->last_handshake_ms < 0)
			r = wgf_err_set(err, -EBADMSG, "peer facts %zu: handshake time is negative",
			                i);
		if (r == 0)
			r = check_utf8(f->endpoint, "peer facts", i, "endpoint", err);
		out->facts[i].last_handshake_ms = f->last_handshake_ms;
		take_text(out->facts[i].endpoint, sizeof(out->facts[i].endpoint), f->endpoint);
		out->facts[i].rx_bytes = f->rx_bytes;
		out->facts[i].tx_bytes = f->tx_bytes;
	}
	for (size_t i = 0; r == 0 && i < in->n_drift; i++, out->n_drift++) {
		r = take_key(out->drift[i].public_key, &in->drift[i]->public_key, "drift", i, err);
		if (r == 0 && (in->drift[i]->kind < WGFLEET__V1__DRIFT__KIND__KIND_EXTRA_PEER ||
		               in->drift[i]->kind > WGFLEET__V1__DRIFT__KIND__KIND_CHANGED_PEER))
			r = wgf_err_set(err, -EBADMSG, "drift %zu has no known kind", i);
		out->drift[i].kind = (enum wgf_drift_kind)in->drift[i]->kind;
	}
	return r < 0 ? r : decode_unknown(in, out, err);
}

static int decode(const Wgfleet__V1__Body *in, struct wgf_body *out, struct wgf_err *err)
{
	int r;

	switch (in->kind_case) {
	case WGFLEET__V1__BODY__KIND_HINT:
		out->kind = WGF_WIRE_KIND_HINT;
		out->hint.revision = in->hint->revision;
		r = take_server(out->hint.server, in->hint->server, err);
		if (r == 0)
			r = take_epoch(out->hint.epoch, &in->hint->epoch, err);
		return r < 0 ? r : decode_released(in->hint, &out->hint, err);
	case WGFLEET__V1__BODY__KIND_SYNC_REQUEST: {
		const Wgfleet__V1__SyncRequest *sr = in->sync_request;

		out->kind = WGF_WIRE_KIND_SYNC_REQUEST;
		out->sync_request.since_revision = sr->since_revision;
		out->sync_request.want_snapshot = sr->want_snapshot;
		out->sync_request.page_base = sr->page_base;
		r = take_server(out->sync_request.server, sr->server, err);
		if (r == 0)
			r = take_epoch(out->sync_request.epoch, &sr->epoch, err);
		if (r == 0 && (sr->page_base > 0 || sr->page_after.len > 0))
			r = take_key(out->sync_request.page_after, &sr->page_after, "page_after", 0,
			             err);
		if (r == 0 && sr->page_after.len > 0 && sr->page_base == 0)
			r = wgf_err_set(err, -EBADMSG, "page_after without page_base");
		return r;
	}
	case WGFLEET__V1__BODY__KIND_SYNC_REPLY:
		out->kind = WGF_WIRE_KIND_SYNC_REPLY;
		return decode_sync_reply(in->sync_reply, &out->sync_reply, err);
	case WGFLEET__V1__BODY__KIND_REPORT:
		out->kind = WGF_WIRE_KIND_REPORT;
		return decode_report(in->report, &out->report, err);
	case WGFLEET__V1__BODY__KIND_ERROR:
		out->kind = WGF_WIRE_KIND_ERROR;
		r = check_utf8(in->error->message, NULL, 0, "the Error's message", err);
		if (r < 0)
			return r;
		out->error.code =
		        in->error->code > WGFLEET__V1__ERROR__CODE__CODE_UNSPECIFIED &&
		                        in->error->code <= WGFLEET__V1__ERROR__CODE__CODE_INTERNAL
		                ? (enum wgf_wire_error_code)in->error->code
		                : WGF_WIRE_ERROR_UNSPECIFIED;
		out->error.supported_version = in->error->supported_version;
		take_text(out->error.message, sizeof(out->error.message), in->error->message);
		return 0;
	default:
		return wgf_err_set(err, -ENOTSUP, "a body of a kind this version does not know");
	}
}

int wgf_body_decode(const uint8_t *buf, size_t len, struct wgf_body *ret, struct wgf_err *err)
{
	Wgfleet__V1__Body *in;
	struct wgf_body out = {0};
	int r;

	if (!buf && len > 0)
		return wgf_err_set(err, -EINVAL, "no body buffer");
	in = wgfleet__v1__body__unpack(NULL, len, buf ? buf : empty);
	if (!in)
		return wgf_err_set(err, -EBADMSG, "the body is not a valid protobuf Body");
	r = decode(in, &out, err);
	wgfleet__v1__body__free_unpacked(in, NULL);
	if (r == -ENOMEM)
		wgf_err_set(err, -ENOMEM, "out of memory decoding a body");
	if (r < 0) {
		wgf_body_fini(&out);
		return r;
	}
	*ret = out;
	return 0;
}

void wgf_body_fini(struct wgf_body *b)
{
	if (b->kind == WGF_WIRE_KIND_SYNC_REPLY) {
		free(b->sync_reply.peers);
		free(b->sync_reply.changes);
		free(b->sync_reply.routable);
		wgf_ip_pool_fini(&b->sync_reply.ips);
	} else if (b->kind == WGF_WIRE_KIND_HINT) {
		free(b->hint.released);
	} else if (b->kind == WGF_WIRE_KIND_REPORT) {
		free(b->report.errors);
		free(b->report.facts);
		free(b->report.drift);
		free(b->report.unknown);
	}
	memset(b, 0, sizeof(*b));
}
