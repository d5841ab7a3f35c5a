/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* scrape: the /metrics endpoint both daemons serve, h2o on their libuv loop. */

#include "scrape.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>

#include "endpoint.h"

#define SCRAPE_REQUEST_TIMEOUT_MS 5000
#define SCRAPE_CONTENT_TYPE       "text/plain; version=0.0.4; charset=utf-8"

struct wgf_scrape {
	uv_loop_t *loop;
	uv_tcp_t listener;
	h2o_globalconf_t config;
	h2o_context_t context;
	h2o_accept_ctx_t accept_ctx;
	wgf_scrape_render_fn render;
	void *ctx;
	unsigned connections;
	bool stopping, listener_closed;
};

/* tcp comes first: h2o takes the handle's data field, so the close callback finds the
 * connection from the handle's address. */
struct scrape_conn {
	uv_tcp_t tcp;
	struct wgf_scrape *s;
};

struct scrape_handler {
	h2o_handler_t super;
	struct wgf_scrape *s;
};

static void reply(h2o_req_t *req, int status, const char *reason, const char *type,
                  const char *body, size_t len)
{
	/* One request a connection: nothing stays open to hold a stopping daemon's loop. */
	req->http1_is_persistent = 0;
	req->res.status = status;
	req->res.reason = reason;
	req->res.content_length = len;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type,
	               strlen(type));
	h2o_send_inline(req, body, len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct wgf_scrape *s = ((struct scrape_handler *)self)->s;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!h2o_memis(req->path_normalized.base, req->path_normalized.len,
	               H2O_STRLIT("/metrics"))) {
		reply(req, 404, "Not Found", "text/plain", H2O_STRLIT("not found\n"));
		return 0;
	}
	if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
		               H2O_STRLIT("GET"));
		reply(req, 405, "Method Not Allowed", "text/plain",
		      H2O_STRLIT("only GET is served here\n"));
		return 0;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		reply(req, 500, "Internal Server Error", "text/plain", H2O_STRLIT("no memory\n"));
		return 0;
	}
	s->render(s->ctx, f);
	if (fclose(f) != 0 || !text) {
		free(text);
		reply(req, 500, "Internal Server Error", "text/plain", H2O_STRLIT("no memory\n"));
		return 0;
	}
	reply(req, 200, "OK", SCRAPE_CONTENT_TYPE, text, len);
	free(text);
	return 0;
}

static void scrape_free(struct wgf_scrape *s)
{
	h2o_context_dispose(&s->context);
	h2o_config_dispose(&s->config);
	free(s);
}

/* The listener and every connection hold s; the last to close frees it. */
static void conn_closed(uv_handle_t *h)
{
	struct scrape_conn *c = (struct scrape_conn *)h;
	struct wgf_scrape *s = c->s;

	free(c);
	if (--s->connections == 0 && s->listener_closed)
		scrape_free(s);
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct wgf_scrape *s = listener->data;
	struct scrape_conn *c;
	h2o_socket_t *sock;

	if (status < 0 || s->stopping)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->s = s;
	uv_tcp_init(s->loop, &c->tcp);
	s->connections++;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 ||
	    s->connections > SCRAPE_CONNECTIONS_MAX) {
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
		return;
	}
	sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_closed);
	h2o_accept(&s->accept_ctx, sock);
}

int wgf_scrape_check_listen(const void *value, struct wgf_err *err)
{
	struct sockaddr_storage ss;
	const char *listen = value;

	if (!listen[0])
		return 0;
	return wgf_endpoint_listen_addr(listen, &ss, err);
}

static void listener_closed(uv_handle_t *h)
{
	struct wgf_scrape *s = h->data;

	s->listener_closed = true;
	if (s->connections == 0)
		scrape_free(s);
}

int wgf_scrape_start(uv_loop_t *loop, const char *listen, wgf_scrape_render_fn render, void *ctx,
                     struct wgf_scrape **ret, int *ret_port, struct wgf_err *err)
{
	struct sockaddr_storage ss = {0};
	int len = sizeof(ss), r;
	struct scrape_handler *handler;
	h2o_hostconf_t *host;
	struct wgf_scrape *s;

	r = wgf_endpoint_listen_addr(listen, &ss, err);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return wgf_err_set(err, -ENOMEM, "out of memory");
	s->loop = loop;
	s->render = render;
	s->ctx = ctx;
	signal(SIGPIPE, SIG_IGN);
	h2o_config_init(&s->config);
	s->config.max_request_entity_size = 0;
	s->config.http1.req_timeout = SCRAPE_REQUEST_TIMEOUT_MS;
	s->config.http1.upgrade_to_http2 = 0;
	s->config.server_name = h2o_iovec_init(H2O_STRLIT(""));
	host = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	handler = (struct scrape_handler *)h2o_create_handler(
	        h2o_config_register_path(host, "/", 0), sizeof(*handler));
	handler->super.on_req = on_req;
	handler->s = s;
	h2o_context_init(&s->context, loop, &s->config);
	s->accept_ctx.ctx = &s->context;
	s->accept_ctx.hosts = s->config.hosts;
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->listener, 64, on_accept);
	if (r == 0)
		r = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
	if (r < 0) {
		wgf_scrape_stop(s);
		return wgf_err_set(err, r, "cannot listen on '%s': %s", listen, uv_strerror(r));
	}
	*ret_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*ret = s;
	return 0;
}

void wgf_scrape_stop(struct wgf_scrape *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	uv_close((uv_handle_t *)&s->listener, listener_closed);
}
