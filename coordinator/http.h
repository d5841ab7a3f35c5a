/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* http: the coordinator's HTTP/1.1 server: h2o on the libuv loop, and reply helpers. */
#ifndef WGF_COORDINATOR_HTTP_H
#define WGF_COORDINATOR_HTTP_H

/*
 * h2o 2.2 in its libuv flavour parses HTTP; this file owns its configuration, the
 * listening socket and the helpers that write replies, and hands every request to one
 * handler (api.c). The settings follow docs/DECISIONS.md: HTTP/2 off, bodies capped at
 * the API's own limit (h2o refuses a longer Content-Length with its own 413 before
 * reading the body, and cuts a longer chunked body off), an absolute deadline for
 * receiving a request, so slow or idle clients are cut off without holding anything,
 * and no Server header. Connections are admitted within a total and a per-address cap
 * (clients.h); a connection past either is closed at once, and counted.
 *
 * A handler may reply later, from a database callback. struct http_pending ties such a
 * reply to the request's lifetime: if h2o disposes of the request first, the pending
 * reply learns it and drops its answer instead of touching freed memory.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <h2o.h>
#include <jansson.h>
#include <uv.h>

#include "cidr.h"
#include "err.h"

/* Bodies past this are refused by h2o (a 413) before they are buffered whole. */
#define HTTP_BODY_HARD_MAX (64 * 1024)

#define HTTP_TRUSTED_PROXIES_MAX 16

struct http_server;

/*
 * What a client sent, as h2o parsed it, for the handler. The path is percent-decoded
 * and normalised; the framing flag says the request named its body's length twice or
 * in two ways (RFC 9112 section 6.3: a message to refuse, since a proxy in front may
 * have read it differently). The client is the socket's peer, or, when that peer is a
 * trusted proxy, the nearest address in X-Forwarded-For that is not one.
 */
struct http_request {
	h2o_iovec_t method;
	h2o_iovec_t path;
	h2o_iovec_t query; /* after '?'; base NULL when there is none */
	const h2o_headers_t *headers;
	h2o_iovec_t body; /* base NULL when there is none */
	bool ambiguous_framing;
	const char *client;          /* the client's address, for the log */
	struct wgf_addr client_addr; /* the same; family 0 when unknown */
};

typedef void (*http_handler_fn)(void *ctx, h2o_req_t *req, const struct http_request *rq);

struct http_options {
	const char *listen;                  /* "127.0.0.1:8080", "[::1]:0" */
	uint64_t request_timeout_ms;         /* to receive a whole request */
	const char *trusted_proxies;         /* "127.0.0.1 10.0.0.0/8"; "" for none */
	unsigned max_connections;            /* open at once, in all */
	unsigned max_connections_per_client; /* from one address (trusted proxies: no limit) */
};

/* Parses a trusted_proxies list (addresses or prefixes, by spaces or commas). */
int http_parse_proxies(const char *text, struct wgf_cidr *ret, size_t max, size_t *ret_n,
                       struct wgf_err *err);

/* Starts listening; on success logs nothing, *ret_port holds the bound port. */
int http_start(uv_loop_t *loop, const struct http_options *o, http_handler_fn handler, void *ctx,
               struct http_server **ret, int *ret_port);

/* Stops accepting and frees the server once its handles are closed. Connections in
 * progress are not waited for. */
void http_stop(struct http_server *s);

/* Writes the server's connection families (Prometheus text) to f. */
void http_write_metrics(const struct http_server *s, FILE *f);

/* Replies. Each sets Content-Length and X-Request-Id (if request_id is not NULL), and
 * returns the status it sent (500 when the reply could not be made). */
int http_reply_json(h2o_req_t *req, int status, const json_t *body, const char *request_id);
int http_reply_text(h2o_req_t *req, int status, const char *text, const char *request_id);
/* A static file's body (borrowed, len bytes, outliving the request) with its type and the
 * headers a page served to browsers needs (a content security policy: nothing but its
 * own origin; no framing; no sniffing). */
int http_reply_static(h2o_req_t *req, int status, const char *type, const void *body, size_t len,
                      const char *request_id);
int http_reply_empty(h2o_req_t *req, int status, const char *request_id);
/* {"error":{"code":code,"message":message}}; bytes of message that are not valid
 * UTF-8 or are control characters are sent as '?'. */
int http_reply_error(h2o_req_t *req, int status, const char *code, const char *message,
                     const char *request_id);
/* Adds a response header before one of the replies above. */
void http_add_header(h2o_req_t *req, const char *name, const char *value);

/*
 * A reply that will be written later. http_pending_new ties p to req; when h2o
 * disposes of req first, p->req becomes NULL. The owner frees p with
 * http_pending_free once it has replied or given up.
 */
struct http_pending {
	h2o_req_t *req; /* NULL once the request is gone */
	void **slot;    /* inside req->pool */
};

int http_pending_attach(struct http_pending *p, h2o_req_t *req);
/* Detaches from the request (call before replying, or when giving up). */
void http_pending_detach(struct http_pending *p);

#endif
