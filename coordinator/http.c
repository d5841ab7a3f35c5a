/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* http: h2o configuration, the listener and reply helpers. */
#define LOG_MODULE "http"

#include "http.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct http_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	h2o_globalconf_t config;
	h2o_context_t context;
	h2o_accept_ctx_t accept_ctx;
	http_handler_fn handler;
	void *ctx;
};

struct handler_glue {
	h2o_handler_t super;
	struct http_server *server;
};

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct handler_glue *g = (struct handler_glue *)self;

	g->server->handler(g->server->ctx, req);
	return 0;
}

static void on_connection_closed(uv_handle_t *h)
{
	free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct http_server *s = listener->data;
	h2o_socket_t *sock;
	uv_tcp_t *conn;

	if (status < 0)
		return;
	conn = malloc(sizeof(*conn));
	if (!conn)
		return;
	uv_tcp_init(s->loop, conn);
	if (uv_accept(listener, (uv_stream_t *)conn) < 0) {
		uv_close((uv_handle_t *)conn, on_connection_closed);
		return;
	}
	uv_tcp_nodelay(conn, 1);
	sock = h2o_uv_socket_create((uv_stream_t *)conn, on_connection_closed);
	h2o_accept(&s->accept_ctx, sock);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon;
	size_t n;
	long port;
	char *end;

	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - listen - 1);
		colon = close + 1;
		listen++;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - listen);
	}
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, listen, n);
	host[n] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return -EINVAL;
}

int http_start(uv_loop_t *loop, const struct http_options *o, http_handler_fn handler, void *ctx,
               struct http_server **ret, int *ret_port)
{
	struct sockaddr_storage ss = {0};
	int len = sizeof(ss), r;
	struct http_server *s;
	h2o_hostconf_t *host;
	h2o_pathconf_t *path;
	struct handler_glue *g;

	r = parse_listen(o->listen, &ss);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->handler = handler;
	s->ctx = ctx;
	signal(SIGPIPE, SIG_IGN);
	h2o_config_init(&s->config);
	s->config.max_request_entity_size = HTTP_BODY_HARD_MAX;
	s->config.http1.req_timeout = o->request_timeout_ms;
	s->config.http1.upgrade_to_http2 = 0;
	host = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	path = h2o_config_register_path(host, "/", 0);
	g = (struct handler_glue *)h2o_create_handler(path, sizeof(*g));
	g->super.on_req = on_req;
	g->server = s;
	h2o_context_init(&s->context, loop, &s->config);
	s->accept_ctx.ctx = &s->context;
	s->accept_ctx.hosts = s->config.hosts;

	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->listener, 511, on_accept);
	if (r == 0)
		r = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
	if (r < 0) {
		http_stop(s);
		return r;
	}
	*ret_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*ret = s;
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;

	h2o_context_dispose(&s->context);
	h2o_config_dispose(&s->config);
	free(s);
}

void http_stop(struct http_server *s)
{
	if (s)
		uv_close((uv_handle_t *)&s->listener, listener_closed);
}

static const char *reason_of(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 503:
		return "Service Unavailable";
	default:
		return status >= 500 ? "Internal Server Error" : "Error";
	}
}

void http_add_header(h2o_req_t *req, const char *name, const char *value)
{
	h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL,
	                      h2o_strdup(&req->pool, value, SIZE_MAX).base, strlen(value));
}

static void send_body(h2o_req_t *req, int status, const char *type, const char *body, size_t len,
                      const char *request_id)
{
	req->res.status = status;
	req->res.reason = reason_of(status);
	if (type)
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type,
		               strlen(type));
	if (request_id)
		http_add_header(req, "x-request-id", request_id);
	req->res.content_length = len;
	h2o_send_inline(req, body, len);
}

void http_reply_json(h2o_req_t *req, int status, const json_t *body, const char *request_id)
{
	char *text = json_dumps(body, JSON_COMPACT);

	if (!text) {
		http_reply_error(req, 500, "internal", "Could not encode the reply.", request_id);
		return;
	}
	send_body(req, status, "application/json", text, strlen(text), request_id);
	free(text);
}

void http_reply_text(h2o_req_t *req, int status, const char *text, const char *request_id)
{
	send_body(req, status, "text/plain; charset=utf-8", text, strlen(text), request_id);
}

void http_reply_empty(h2o_req_t *req, int status, const char *request_id)
{
	send_body(req, status, NULL, "", 0, request_id);
}

void http_reply_error(h2o_req_t *req, int status, const char *code, const char *message,
                      const char *request_id)
{
	json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);

	static const char oom[] =
	        "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

	if (!body) {
		send_body(req, 500, "application/json", oom, sizeof(oom) - 1, request_id);
		return;
	}
	http_reply_json(req, status, body, request_id);
	json_decref(body);
}

bool http_header(h2o_req_t *req, const char *lower_name, char *buf, size_t size)
{
	ssize_t i = h2o_find_header_by_str(&req->headers, lower_name, strlen(lower_name), -1);
	h2o_iovec_t v;

	if (i < 0)
		return false;
	v = req->headers.entries[i].value;
	if (v.len >= size)
		return false;
	memcpy(buf, v.base, v.len);
	buf[v.len] = '\0';
	return true;
}

static void pending_dispose(void *slot)
{
	struct http_pending *p = *(struct http_pending **)slot;

	if (p) {
		p->req = NULL;
		p->slot = NULL;
	}
}

int http_pending_attach(struct http_pending *p, h2o_req_t *req)
{
	p->slot = h2o_mem_alloc_shared(&req->pool, sizeof(void *), pending_dispose);
	if (!p->slot)
		return -ENOMEM;
	*p->slot = p;
	p->req = req;
	return 0;
}

void http_pending_detach(struct http_pending *p)
{
	if (p->slot)
		*p->slot = NULL;
	p->slot = NULL;
}
