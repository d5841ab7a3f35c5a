/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* http: h2o configuration, the listener and reply helpers. */
#define LOG_MODULE "http"

#include "http.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "clients.h"
#include "endpoint.h"
#include "log.h"
#include "macro.h"
#include "prom.h"

struct http_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	h2o_globalconf_t config;
	h2o_context_t context;
	h2o_accept_ctx_t accept_ctx;
	http_handler_fn handler;
	void *ctx;
	struct wgf_cidr trusted[HTTP_TRUSTED_PROXIES_MAX];
	size_t n_trusted;
	uint64_t request_timeout_ms;
	struct clients *clients; /* connections per address */
	unsigned connections, max_connections;
	unsigned connections_high; /* the most open since memory was last given back */
	uv_timer_t trim;           /* gives freed memory back after a burst */
	unsigned open_handles;     /* the listener and the trim timer, while they close */
	/* Refused connections since the last report: counted, logged every REPORT_MS. */
	uint64_t refused_total, refused_per_client, reported_ms;
	char refused_last[WGF_ADDR_STRLEN]; /* the last refused client's address */
	/* The same since start, and the 408s sent, for /metrics. */
	uint64_t refused_total_ever, refused_per_client_ever, timeouts;
};

/*
 * One accepted connection. h2o owns the socket; this watches it with a deadline of its
 * own, TIMEOUT_GRACE_MS before h2o's, so that a client still sending its request when
 * the time is up gets a 408 before h2o closes the connection (h2o 2.2 closes without a
 * word). An idle keep-alive connection is closed silently, as h2o does: a 408 there
 * could cross a request the client is just sending, which would then read it as its
 * answer. The socket's on_close hook, unused by h2o's server side, leads from the
 * socket to this and says when it is gone.
 */
struct http_conn {
	struct http_server *server;
	struct client *client; /* its address's entry; NULL for a trusted proxy */
	h2o_socket_t *sock;    /* NULL once h2o closed it */
	uv_timer_t timer;
	bool busy; /* a request is being handled: no deadline runs */
};

#define TIMEOUT_GRACE_MS 1000
#define TRIM_AFTER_MS    100
#define TRIM_BURST_MIN   256 /* connections open at once before a trim is worth it */
#define REPORT_MS        10000
#define CLIENT_SLOTS     4096

/*
 * h2o 2.2 keeps Content-Length and Transfer-Encoding out of req->headers, so the only
 * way to see how often a request gave them is its head as received: it is still at
 * the start of the socket's input buffer, ending where the body begins, while the
 * request is handled. picohttpparser (inside libh2o) reads it again; Debian ships no
 * header for it, so its two declarations are here, as in picohttpparser.h.
 */
struct phr_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

static bool framing_is_ambiguous(h2o_req_t *req)
{
	struct phr_header headers[100];
	size_t n = WGF_ARRAY_SIZE(headers), method_len, path_len, lengths = 0, encodings = 0;
	const char *method, *path;
	h2o_socket_t *sock;
	int minor;

	if (!req->entity.base)
		return false; /* neither header was given */
	sock = req->conn->callbacks->get_socket(req->conn);
	if (!sock || !sock->input || req->entity.base < sock->input->bytes ||
	    req->entity.base > sock->input->bytes + sock->input->size)
		return false;
	if (phr_parse_request(sock->input->bytes, (size_t)(req->entity.base - sock->input->bytes),
	                      &method, &method_len, &path, &path_len, &minor, headers, &n, 0) < 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		lengths += h2o_lcstris(headers[i].name, headers[i].name_len,
		                       H2O_STRLIT("content-length"));
		encodings += h2o_lcstris(headers[i].name, headers[i].name_len,
		                         H2O_STRLIT("transfer-encoding"));
	}
	return lengths > 1 || encodings > 1 || (lengths && encodings);
}

static bool is_trusted(const struct http_server *s, const struct wgf_addr *a)
{
	for (size_t i = 0; i < s->n_trusted; i++)
		if (wgf_cidr_contains(&s->trusted[i], a))
			return true;
	return false;
}

static bool addr_from_sockaddr(const struct sockaddr_storage *ss, struct wgf_addr *ret)
{
	*ret = (struct wgf_addr){.family = ss->ss_family};
	if (ss->ss_family == AF_INET)
		memcpy(ret->bytes, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6)
		memcpy(ret->bytes, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	else
		return false;
	return true;
}

/* The first address of a comma-separated list, from the right, that is not a trusted
 * proxy; false when the list holds anything that is not an address. */
static bool forwarded_client(const struct http_server *s, h2o_iovec_t v, struct wgf_addr *ret)
{
	size_t end = v.len;

	while (end > 0) {
		size_t start = end;
		char text[WGF_ADDR_STRLEN];
		struct wgf_err err = {0};
		struct wgf_addr a;

		while (start > 0 && v.base[start - 1] != ',')
			start--;
		{
			size_t b = start, e = end;

			while (b < e && (v.base[b] == ' ' || v.base[b] == '\t'))
				b++;
			while (e > b && (v.base[e - 1] == ' ' || v.base[e - 1] == '\t'))
				e--;
			if (e - b == 0 || e - b >= sizeof(text))
				return false;
			memcpy(text, v.base + b, e - b);
			text[e - b] = '\0';
		}
		if (wgf_addr_parse(&a, text, &err) < 0)
			return false;
		if (!is_trusted(s, &a)) {
			*ret = a;
			return true;
		}
		end = start > 0 ? start - 1 : 0;
	}
	return false;
}

/* The client's address: the peer's, or behind a trusted proxy the forwarded one. */
static void client_address(const struct http_server *s, h2o_req_t *req, struct wgf_addr *ret,
                           char *out, size_t size)
{
	struct sockaddr_storage ss;
	struct wgf_addr peer, fwd;
	char text[WGF_ADDR_STRLEN];
	socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);

	*ret = (struct wgf_addr){0};
	snprintf(out, size, "unknown");
	if (len == 0 || !addr_from_sockaddr(&ss, &peer))
		return;
	if (is_trusted(s, &peer)) {
		ssize_t i =
		        h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-forwarded-for"), -1);

		if (i >= 0 && forwarded_client(s, req->headers.entries[i].value, &fwd))
			peer = fwd;
	}
	wgf_addr_format(&peer, text);
	snprintf(out, size, "%s", text);
	*ret = peer;
}

struct handler_glue {
	h2o_handler_t super;
	struct http_server *server;
};

/*
 * A burst of connections (each with up to 64 KiB of request) leaves the memory it freed
 * with glibc, in the middle of the heap where its own trimming does not reach: 2,000
 * such connections kept ~136 MiB after they closed. Once the open connections fall to a
 * quarter of the burst's peak, malloc_trim() gives the free pages back, a moment later
 * so that one trim serves the whole wave of closes.
 */
static void on_trim(uv_timer_t *t)
{
	struct http_server *s = t->data;

	malloc_trim(0);
	s->connections_high = s->connections;
}

static void maybe_trim(struct http_server *s)
{
	if (s->connections_high >= TRIM_BURST_MIN && s->connections <= s->connections_high / 4 &&
	    !uv_is_active((uv_handle_t *)&s->trim))
		uv_timer_start(&s->trim, on_trim, TRIM_AFTER_MS, 0);
}

static void conn_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void conn_on_close(void *data)
{
	struct http_conn *conn = data;
	struct http_server *s = conn->server;

	if (conn->client)
		clients_disconnect(s->clients, conn->client);
	s->connections--;
	maybe_trim(s);
	conn->sock = NULL;
	/* At exit the daemon may have closed every handle already (and leaks conn). */
	if (!uv_is_closing((uv_handle_t *)&conn->timer))
		uv_close((uv_handle_t *)&conn->timer, conn_timer_closed);
}

static void timeout_reply_sent(h2o_socket_t *sock, const char *err)
{
	/* h2o's own deadline closes the connection shortly. */
	(void)sock;
	(void)err;
}

static void conn_on_timeout(uv_timer_t *t)
{
	static const char body[] = "{\"error\":{\"code\":\"request_timeout\",\"message\":"
	                           "\"The request did not arrive in time; send it again.\"}}";
	static char reply[256];
	struct http_conn *conn = t->data;
	h2o_iovec_t buf;

	if (!conn->sock || conn->busy || conn->sock->input->size == 0 ||
	    h2o_socket_is_writing(conn->sock))
		return;
	buf = h2o_iovec_init(reply, (size_t)snprintf(reply, sizeof(reply),
	                                             "HTTP/1.1 408 Request Timeout\r\n"
	                                             "Content-Type: application/json\r\n"
	                                             "Connection: close\r\n"
	                                             "Content-Length: %zu\r\n\r\n%s",
	                                             sizeof(body) - 1, body));
	conn->server->timeouts++;
	h2o_socket_read_stop(conn->sock);
	h2o_socket_write(conn->sock, &buf, 1, timeout_reply_sent);
}

static void conn_arm(struct http_conn *conn)
{
	conn->busy = false;
	uv_timer_start(&conn->timer, conn_on_timeout, conn->server->request_timeout_ms, 0);
}

/* A request's pool is disposed of when its reply is sent: the next request begins. */
static void request_disposed(void *slot)
{
	struct http_conn *conn = *(struct http_conn **)slot;

	if (conn && conn->sock)
		conn_arm(conn);
}

/* The connection req arrived on; marks it busy until req is disposed of. */
static void conn_begin_request(h2o_req_t *req)
{
	h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
	struct http_conn *conn, **slot;

	if (!sock || sock->on_close.cb != conn_on_close)
		return;
	conn = sock->on_close.data;
	slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), request_disposed);
	*slot = conn;
	conn->busy = true;
	uv_timer_stop(&conn->timer);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct handler_glue *g = (struct handler_glue *)self;
	char client[WGF_ADDR_STRLEN + 8];
	struct http_request rq = {
	        .method = req->method,
	        .path = req->path_normalized,
	        .headers = &req->headers,
	        .body = req->entity,
	        .ambiguous_framing = framing_is_ambiguous(req),
	        .client = client,
	};

	if (req->query_at != SIZE_MAX)
		rq.query = h2o_iovec_init(req->path.base + req->query_at + 1,
		                          req->path.len - req->query_at - 1);
	conn_begin_request(req);
	client_address(g->server, req, &rq.client_addr, client, sizeof(client));
	g->server->handler(g->server->ctx, req, &rq);
	return 0;
}

static void on_connection_closed(uv_handle_t *h)
{
	free(h);
}

/* Logs what was refused since the last report, at most once every REPORT_MS. */
static void report_refusals(struct http_server *s)
{
	uint64_t now = uv_now(s->loop);
	char total[24], per_client[24];

	if (now - s->reported_ms < REPORT_MS || (!s->refused_total && !s->refused_per_client))
		return;
	snprintf(total, sizeof(total), "%llu", (unsigned long long)s->refused_total);
	snprintf(per_client, sizeof(per_client), "%llu", (unsigned long long)s->refused_per_client);
	log_fields(LOG_WARNING, "Refused connections", {"over_total", total},
	           {"over_per_client", per_client}, {"last_client", s->refused_last});
	s->refused_total = s->refused_per_client = 0;
	s->reported_ms = now;
}

/* Counts the connection in, or says it is one too many (in all, or from its address). */
static bool admit(struct http_server *s, uv_tcp_t *tcp, struct http_conn *conn)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct wgf_addr peer;
	bool known = uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0 &&
	             addr_from_sockaddr(&ss, &peer);

	if (s->connections >= s->max_connections) {
		s->refused_total++;
		s->refused_total_ever++;
		if (known)
			wgf_addr_format(&peer, s->refused_last);
		report_refusals(s);
		return false;
	}
	if (known && !is_trusted(s, &peer)) {
		conn->client = clients_get(s->clients, &peer, uv_now(s->loop));
		if (!clients_connect(s->clients, conn->client)) {
			s->refused_per_client++;
			s->refused_per_client_ever++;
			wgf_addr_format(&peer, s->refused_last);
			report_refusals(s);
			return false;
		}
	}
	if (++s->connections > s->connections_high)
		s->connections_high = s->connections;
	return true;
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct http_server *s = listener->data;
	struct http_conn *conn;
	uv_tcp_t *tcp;

	if (status < 0)
		return;
	tcp = malloc(sizeof(*tcp));
	conn = calloc(1, sizeof(*conn));
	if (!tcp || !conn) {
		free(tcp);
		free(conn);
		return;
	}
	uv_tcp_init(s->loop, tcp);
	if (uv_accept(listener, (uv_stream_t *)tcp) < 0) {
		uv_close((uv_handle_t *)tcp, on_connection_closed);
		free(conn);
		return;
	}
	if (!admit(s, tcp, conn)) {
		uv_close((uv_handle_t *)tcp, on_connection_closed);
		free(conn);
		return;
	}
	uv_tcp_nodelay(tcp, 1);
	conn->server = s;
	uv_timer_init(s->loop, &conn->timer);
	conn->timer.data = conn;
	conn->sock = h2o_uv_socket_create((uv_stream_t *)tcp, on_connection_closed);
	conn->sock->on_close.cb = conn_on_close;
	conn->sock->on_close.data = conn;
	conn_arm(conn);
	h2o_accept(&s->accept_ctx, conn->sock);
}

int http_parse_proxies(const char *text, struct wgf_cidr *ret, size_t max, size_t *ret_n,
                       struct wgf_err *err)
{
	size_t n = 0;

	for (const char *p = text; *p;) {
		size_t len = strcspn(p, " ,\t");
		char item[WGF_CIDR_STRLEN];
		struct wgf_cidr cidr;
		int r;

		if (len == 0) {
			p++;
			continue;
		}
		if (len >= sizeof(item))
			return wgf_err_set(err, -EINVAL, "'%.*s' is not an address or prefix",
			                   (int)len, p);
		memcpy(item, p, len);
		item[len] = '\0';
		r = wgf_cidr_parse(&cidr, item, WGF_CIDR_F_PREFIX_OPTIONAL, err);
		if (r < 0)
			return r;
		if (n == max)
			return wgf_err_set(err, -E2BIG, "more than %zu entries", max);
		if (ret)
			ret[n] = cidr;
		n++;
		p += len;
	}
	*ret_n = n;
	return 0;
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
	struct wgf_err err = {0};

	r = wgf_endpoint_listen_addr(o->listen, &ss, &err);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = http_parse_proxies(o->trusted_proxies ? o->trusted_proxies : "", s->trusted,
	                       WGF_ARRAY_SIZE(s->trusted), &s->n_trusted, &err);
	s->max_connections = o->max_connections;
	s->clients =
	        clients_new(CLIENT_SLOTS, &(struct clients_limits){
	                                          .max_connections = o->max_connections_per_client,
	                                  });
	if (r == 0 && !s->clients)
		r = -ENOMEM;
	if (r < 0) {
		clients_free(s->clients);
		free(s);
		return r;
	}
	s->loop = loop;
	s->handler = handler;
	s->ctx = ctx;
	signal(SIGPIPE, SIG_IGN);
	h2o_config_init(&s->config);
	s->config.max_request_entity_size = HTTP_BODY_HARD_MAX;
	s->request_timeout_ms = o->request_timeout_ms;
	s->config.http1.req_timeout = o->request_timeout_ms + TIMEOUT_GRACE_MS;
	s->config.http1.upgrade_to_http2 = 0;
	/* No Server header: which library and version answer is nobody's business. */
	s->config.server_name = h2o_iovec_init(H2O_STRLIT(""));
	host = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	path = h2o_config_register_path(host, "/", 0);
	g = (struct handler_glue *)h2o_create_handler(path, sizeof(*g));
	g->super.on_req = on_req;
	g->server = s;
	h2o_context_init(&s->context, loop, &s->config);
	s->accept_ctx.ctx = &s->context;
	s->accept_ctx.hosts = s->config.hosts;

	uv_timer_init(loop, &s->trim);
	s->trim.data = s;
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

/* The server's memory goes with the listener and the trim timer, unless connections
 * are still open: they are closed with the loop as the process exits, and still point
 * at it. */
static void listener_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;

	if (--s->open_handles > 0 || s->connections)
		return;
	h2o_context_dispose(&s->context);
	h2o_config_dispose(&s->config);
	clients_free(s->clients);
	free(s);
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	s->open_handles = 2;
	uv_close((uv_handle_t *)&s->trim, listener_closed);
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

int http_reply_json(h2o_req_t *req, int status, const json_t *body, const char *request_id)
{
	char *text = json_dumps(body, JSON_COMPACT);

	if (!text)
		return http_reply_error(req, 500, "internal", "Could not encode the reply.",
		                        request_id);
	/* Answers are per key (a new API key is in one): nothing on the way keeps them. */
	http_add_header(req, "cache-control", "no-store");
	send_body(req, status, "application/json", text, strlen(text), request_id);
	free(text);
	return status;
}

int http_reply_text(h2o_req_t *req, int status, const char *text, const char *request_id)
{
	http_add_header(req, "cache-control", "no-store");
	send_body(req, status, "text/plain; charset=utf-8", text, strlen(text), request_id);
	return status;
}

int http_reply_static(h2o_req_t *req, int status, const char *type, const void *body, size_t len,
                      const char *request_id)
{
	http_add_header(req, "content-security-policy",
	                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
	                "base-uri 'none'; form-action 'none'");
	http_add_header(req, "x-content-type-options", "nosniff");
	http_add_header(req, "referrer-policy", "no-referrer");
	http_add_header(req, "cache-control", "no-cache");
	send_body(req, status, type, (const char *)body, len, request_id);
	return status;
}

int http_reply_empty(h2o_req_t *req, int status, const char *request_id)
{
	send_body(req, status, NULL, "", 0, request_id);
	return status;
}

/* s with invalid UTF-8 and control bytes replaced by '?', in buf. */
static const char *printable(const char *s, char *buf, size_t size)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t o = 0;

	while (*p && o + 5 < size) {
		ucs4_t uc;
		int n = u8_mbtoucr(&uc, p, strlen((const char *)p));

		if (n < 0 || uc < 0x20 || (uc >= 0x7f && uc < 0xa0)) {
			buf[o++] = '?';
			p += n < 0 ? 1 : n;
			continue;
		}
		memcpy(buf + o, p, (size_t)n);
		o += (size_t)n;
		p += n;
	}
	buf[o] = '\0';
	return buf;
}

int http_reply_error(h2o_req_t *req, int status, const char *code, const char *message,
                     const char *request_id)
{
	static const char oom[] =
	        "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
	char clean_code[64], clean_message[512];
	json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code",
	                         printable(code, clean_code, sizeof(clean_code)), "message",
	                         printable(message, clean_message, sizeof(clean_message)));

	if (!body) {
		send_body(req, 500, "application/json", oom, sizeof(oom) - 1, request_id);
		return 500;
	}
	status = http_reply_json(req, status, body, request_id);
	json_decref(body);
	return status;
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

void http_write_metrics(const struct http_server *s, FILE *f)
{
	wgf_prom_single(f, "wgfleet_http_connections", "gauge", "API connections open now.",
	                s->connections);
	wgf_prom_family(f, "wgfleet_http_connections_refused_total", "counter",
	                "API connections closed as they were accepted: past max_connections "
	                "(too_many_connections) or past max_connections_per_client "
	                "(too_many_from_client).");
	wgf_prom(f, "wgfleet_http_connections_refused_total", s->refused_total_ever,
	         {"reason", "too_many_connections"});
	wgf_prom(f, "wgfleet_http_connections_refused_total", s->refused_per_client_ever,
	         {"reason", "too_many_from_client"});
	wgf_prom_single(f, "wgfleet_http_request_timeouts_total", "counter",
	                "Requests still arriving at request_timeout, answered with 408.",
	                s->timeouts);
}
