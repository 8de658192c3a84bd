/* The HTTP server (see http.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"
#include "log.h"
#include "loop.h"

#define MAX_ARGS 4
#define MAX_TABLES 8

struct table {
	const struct pn_route *routes;
	size_t n;
	void *ctx;
};

/* One accepted connection. Made when libevent asks for its bufferevent
 * (the only hook libevent 2.1 gives at accept time), attached to the
 * evhttp connection on the next turn, freed by its close callback. */
struct conn {
	struct pn_http *h;
	struct bufferevent *bev; /* our reference until attached */
	struct evhttp_connection *evcon;
	evutil_socket_t fd;
	int over; /* accepted past max_connections: not counted, to be refused */
	struct pn_stream *stream; /* a streamed reply on it, if any */
	struct conn *next; /* in the list of those not attached yet */
};

struct pn_http {
	struct evhttp *http;
	int port;
	char *token;
	size_t max_body;
	struct pn_http_limits lim;
	int closing;
	struct table tables[MAX_TABLES];
	int ntables;
	uint64_t replies_4xx, replies_5xx;
	struct event *attach; /* runs attach_cb ahead of any I/O */
	struct conn *fresh;
	struct conn **by_fd; /* attached connections by socket */
	size_t nby_fd;
	int nconns; /* attached and admitted */
	uint64_t refused;
	/* The read budget: a token bucket of api_reads_per_s, and a ring of
	 * the reads waiting for a token (max_connections of them at most),
	 * oldest first. */
	double tokens;
	uint64_t refilled_ns;
	struct evhttp_request **waiting;
	int first_waiting, nwaiting;
	uint64_t reads_delayed;
	struct event *release; /* serves waiting reads as tokens come in */
};

struct pn_stream {
	struct evhttp_request *req;
	struct evhttp_connection *evcon; /* NULL once the peer is gone */
	struct conn *conn; /* NULL on a connection we could not track */
	int orphan; /* libevent left the request to us when the peer went */
	size_t max_buffered;
	void (*on_close)(void *arg);
	void *arg;
};

static void stream_closed(struct evhttp_connection *evcon, void *arg);

struct pn_req {
	struct pn_http *h;
	struct evhttp_request *req;
	char path[512];
	const char *args[MAX_ARGS];
	char argbuf[512];
	int replied;
	int held; /* a copy made by pn_req_hold, freed by pn_req_free */
};

int pn_parse_hostport(const char *s, char *host, size_t hostlen, int *port, char *err,
		      size_t errlen)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s) {
		snprintf(err, errlen, "\"%s\" is not HOST:PORT", s);
		return -1;
	}
	size_t n = (size_t)(colon - s);
	if (n >= hostlen) {
		snprintf(err, errlen, "host in \"%s\" is too long", s);
		return -1;
	}
	char *end;
	errno = 0;
	long p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || p < 0 || p > 65535) {
		snprintf(err, errlen, "port in \"%s\" is not a number from 0 to 65535", s);
		return -1;
	}
	memcpy(host, s, n);
	host[n] = '\0';
	*port = (int)p;
	return 0;
}

/* Node-to-node routes: served first, outside the limits on API clients. */
static int node_path(const char *path)
{
	return strncmp(path, "/v1/", 4) == 0;
}

static int method_of(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		return PN_GET;
	case EVHTTP_REQ_POST:
		return PN_POST;
	case EVHTTP_REQ_PUT:
		return PN_PUT;
	case EVHTTP_REQ_DELETE:
		return PN_DELETE;
	default:
		return 0;
	}
}

/* Matches `path` against a route pattern; '*' segments are captured into
 * r->args (copied into r->argbuf); a final "**" matches the rest of the
 * path, which becomes the next argument. */
static int match(struct pn_req *r, const char *pattern)
{
	const char *p = pattern, *s = r->path;
	char *out = r->argbuf;
	int nargs = 0;
	while (*p) {
		if (strcmp(p, "**") == 0) {
			size_t n = strlen(s);
			if (nargs == MAX_ARGS ||
			    (size_t)(out - r->argbuf) + n + 1 > sizeof(r->argbuf))
				return 0;
			memcpy(out, s, n + 1);
			r->args[nargs++] = out;
			return 1;
		}
		if (!*s)
			break;
		if (*p == '*') {
			size_t n = strcspn(s, "/");
			if (n == 0 || nargs == MAX_ARGS ||
			    (size_t)(out - r->argbuf) + n + 1 > sizeof(r->argbuf))
				return 0;
			memcpy(out, s, n);
			out[n] = '\0';
			r->args[nargs++] = out;
			out += n + 1;
			s += n;
			p++;
		} else if (*p++ != *s++) {
			return 0;
		}
	}
	return *p == '\0' && *s == '\0';
}

/* Constant-time comparison of the bearer token. */
static int authorized(struct pn_req *r)
{
	if (!r->h->token)
		return 1;
	const char *a = pn_req_header(r, "Authorization");
	if (!a || strncmp(a, "Bearer ", 7) != 0)
		return 0;
	a += 7;
	size_t n = strlen(r->h->token);
	if (strlen(a) != n)
		return 0;
	unsigned diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned)(a[i] ^ r->h->token[i]);
	return diff == 0;
}

static struct conn *conn_of(struct pn_http *h, struct evhttp_connection *evcon)
{
	evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	struct conn *c = fd >= 0 && (size_t)fd < h->nby_fd ? h->by_fd[fd] : NULL;
	return c && c->evcon == evcon ? c : NULL;
}

/* A connection over the limit: node-to-node requests may use the
 * reserve; anything else is answered 503 and the connection closed. */
static int admit(struct pn_req *r, struct conn *c)
{
	struct pn_http *h = r->h;
	if (node_path(r->path) && h->nconns < h->lim.max_connections + PN_HTTP_NODE_RESERVE) {
		c->over = 0;
		h->nconns++;
		evhttp_connection_set_timeout(c->evcon, h->lim.idle_timeout_s);
		return 1;
	}
	h->refused++;
	pn_reply_header(r, "Retry-After", "1");
	pn_reply_header(r, "Connection", "close");
	pn_reply_error(r, 503, "too many connections",
		       "this daemon serves at most %d connections at once (max_connections)",
		       h->lim.max_connections);
	return 0;
}

static void serve(struct pn_http *h, struct evhttp_request *req)
{
	struct pn_req r = {.h = h, .req = req};
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	/* A connection opened before the limit changed gets it for its next request. */
	evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)h->max_body);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path || strlen(path) >= sizeof(r.path)) {
		pn_reply_error(&r, 400, "bad request", "the request path is missing or too long");
		return;
	}
	strcpy(r.path, path);
	struct conn *c = conn_of(h, evcon);
	if (c && c->over && !admit(&r, c))
		return;
	int method = method_of(req);
	/* Reads of the user-facing API wait behind node-to-node traffic. */
	int background = method == PN_GET && !node_path(r.path);
	bufferevent_priority_set(evhttp_connection_get_bufferevent(evcon),
				 background ? PN_PRIO_BACKGROUND : PN_PRIO_IO);
	int allowed = 0; /* methods of the routes whose path matched */
	for (int t = 0; t < h->ntables; t++) {
		for (size_t i = 0; i < h->tables[t].n; i++) {
			const struct pn_route *rt = &h->tables[t].routes[i];
			if (!match(&r, rt->path))
				continue;
			/* A catch-all (ending in two stars) does not make a path known. */
			if (!strstr(rt->path, "**"))
				allowed |= rt->method;
			if (!(rt->method & method))
				continue;
			if (h->closing && strcmp(rt->path, "/api/v1/health") != 0) {
				pn_reply_header(&r, "Retry-After", "1");
				pn_reply_error(&r, 503, "shutting down", "this daemon is stopping");
			} else if (rt->auth && !authorized(&r)) {
				pn_reply_error(&r, 401, "unauthorized",
					       "this route needs Authorization: Bearer TOKEN");
			} else {
				rt->fn(&r, h->tables[t].ctx);
			}
			if (!r.replied) {
				pn_error("%s: the handler did not answer", r.path);
				pn_reply_error(&r, 500, "internal error", "no reply was produced");
			}
			return;
		}
	}
	if (allowed) {
		static const struct {
			int m;
			const char *name;
		} names[] = {{PN_GET, "GET, HEAD"},
			     {PN_POST, "POST"},
			     {PN_PUT, "PUT"},
			     {PN_DELETE, "DELETE"}};
		char allow[64] = "";
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (allowed & names[i].m)
				snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
					 "%s%s", allow[0] ? ", " : "", names[i].name);
		pn_reply_header(&r, "Allow", allow);
		pn_reply_error(&r, 405, "method not allowed", "%s takes %s", r.path, allow);
	} else
		pn_reply_error(&r, 404, "not found", "no route for %s", r.path);
}

/* Reads of the user-facing API from admitted connections share the
 * budget, except the health check: it tells the coordinator a stage is
 * alive, and must not wait behind a crowd. */
static int budgeted(struct pn_http *h, struct evhttp_request *req)
{
	if (h->lim.api_reads_per_s <= 0 || h->closing || method_of(req) != PN_GET)
		return 0;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path || node_path(path) || strcmp(path, "/api/v1/health") == 0)
		return 0;
	struct conn *c = conn_of(h, evhttp_request_get_connection(req));
	return !(c && c->over);
}

static void refill(struct pn_http *h)
{
	uint64_t now = pn_now_ns();
	double rate = h->lim.api_reads_per_s;
	/* A burst of up to 50 ms worth, so that a quiet API answers at once. */
	double burst = rate / 20 > 1 ? rate / 20 : 1;
	h->tokens += (double)(now - h->refilled_ns) * 1e-9 * rate;
	if (h->tokens > burst)
		h->tokens = burst;
	h->refilled_ns = now;
}

static void arm_release(struct pn_http *h)
{
	struct timeval tick = {0, PN_HTTP_RELEASE_MS * 1000};
	if (h->nwaiting && !evtimer_pending(h->release, NULL))
		evtimer_add(h->release, &tick);
}

static struct evhttp_request *unhold(struct pn_http *h)
{
	struct evhttp_request *req = h->waiting[h->first_waiting];
	h->first_waiting = (h->first_waiting + 1) % h->lim.max_connections;
	h->nwaiting--;
	return req;
}

/* Serves waiting reads in order while tokens last. A read whose client
 * left has been detached from its connection by libevent and is only
 * freed (see evhttp_connection_fail in libevent 2.1). */
static void release_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pn_http *h = arg;
	(void)fd;
	(void)what;
	refill(h);
	while (h->nwaiting && (h->tokens >= 1 || h->closing)) {
		struct evhttp_request *req = unhold(h);
		if (!evhttp_request_get_connection(req)) {
			evhttp_request_free(req);
			continue;
		}
		h->tokens -= 1;
		serve(h, req);
	}
	arm_release(h);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct pn_http *h = arg;
	if (!budgeted(h, req)) {
		serve(h, req);
		return;
	}
	refill(h);
	if (!h->nwaiting && h->tokens >= 1) {
		h->tokens -= 1;
		serve(h, req);
		return;
	}
	if (h->nwaiting == h->lim.max_connections) {
		struct pn_req r = {.h = h, .req = req};
		pn_reply_header(&r, "Retry-After", "1");
		pn_reply_error(&r, 503, "busy",
			       "too many API reads are waiting (api_reads_per_s %d)",
			       h->lim.api_reads_per_s);
		return;
	}
	h->waiting[(h->first_waiting + h->nwaiting++) % h->lim.max_connections] = req;
	h->reads_delayed++;
	bufferevent_priority_set(
		evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)),
		PN_PRIO_BACKGROUND);
	arm_release(h);
}

void pn_http_tune(struct bufferevent *bev)
{
	bufferevent_set_max_single_read(bev, PN_HTTP_IO_CHUNK);
	bufferevent_set_max_single_write(bev, PN_HTTP_IO_CHUNK);
	bufferevent_priority_set(bev, PN_PRIO_IO);
}

/* Forgets a connection as libevent closes it (and frees it after). */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct pn_http *h = c->h;
	if (!c->over)
		h->nconns--;
	if ((size_t)c->fd < h->nby_fd && h->by_fd[c->fd] == c)
		h->by_fd[c->fd] = NULL;
	if (c->stream)
		stream_closed(evcon, c->stream);
	free(c);
}

/* Each accepted connection's bufferevent, tuned, and its record. */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
	struct pn_http *h = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL;
	pn_http_tune(bev);
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return bev; /* served, neither counted nor limited */
	/* Our reference keeps the bufferevent readable should libevent
	 * drop the connection before attach_cb runs. */
	bufferevent_incref(bev);
	c->h = h;
	c->bev = bev;
	c->fd = -1;
	c->next = h->fresh;
	h->fresh = c;
	event_active(h->attach, EV_TIMEOUT, 0);
	return bev;
}

/* Finds the evhttp connection of each new bufferevent (its callback
 * argument), watches it close, and counts it against the limit. Runs at
 * I/O priority in the same pass as the accepting callback: before any of
 * the new connections can be read, let alone freed. */
static void attach_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pn_http *h = arg;
	while (h->fresh) {
		struct conn *c = h->fresh;
		h->fresh = c->next;
		c->next = NULL;
		void *cbarg = NULL;
		bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
		struct evhttp_connection *evcon = cbarg;
		c->fd = bufferevent_getfd(c->bev);
		if (!evcon || evhttp_connection_get_bufferevent(evcon) != c->bev || c->fd < 0) {
			bufferevent_decref(c->bev); /* libevent dropped it already */
			free(c);
			continue;
		}
		bufferevent_decref(c->bev);
		c->bev = NULL;
		c->evcon = evcon;
		if ((size_t)c->fd >= h->nby_fd) {
			size_t n = (size_t)c->fd * 2 + 64;
			struct conn **t = realloc(h->by_fd, n * sizeof(*t));
			if (!t) {
				free(c);
				evhttp_connection_free(evcon);
				continue;
			}
			memset(t + h->nby_fd, 0, (n - h->nby_fd) * sizeof(*t));
			h->by_fd = t;
			h->nby_fd = n;
		}
		h->by_fd[c->fd] = c;
		evhttp_connection_set_closecb(evcon, conn_closed, c);
		if (h->nconns < h->lim.max_connections) {
			h->nconns++;
		} else {
			c->over = 1;
			evhttp_connection_set_timeout(evcon, PN_HTTP_OVER_TIMEOUT_S);
		}
	}
}

struct pn_http *pn_http_new(struct pn_loop *l, const char *hostport, const char *token,
			    const struct pn_http_limits *lim, char *err, size_t errlen)
{
	static const struct pn_http_limits defaults = {
		.max_header_bytes = 16 * 1024,
		.max_connections = 512,
		.idle_timeout_s = 120,
		.api_reads_per_s = PN_HTTP_API_READS_PER_S,
	};
	char host[256];
	int port;
	if (pn_parse_hostport(hostport, host, sizeof(host), &port, err, errlen) != 0)
		return NULL;
	struct pn_http *h = calloc(1, sizeof(*h));
	if (!h)
		goto nomem;
	h->lim = lim ? *lim : defaults;
	h->http = evhttp_new(pn_loop_base(l));
	h->attach = event_new(pn_loop_base(l), -1, 0, attach_cb, h);
	h->release = evtimer_new(pn_loop_base(l), release_cb, h);
	h->waiting = calloc((size_t)h->lim.max_connections, sizeof(*h->waiting));
	if (!h->http || !h->attach || event_priority_set(h->attach, PN_PRIO_IO) != 0 ||
	    !h->release || event_priority_set(h->release, PN_PRIO_BACKGROUND) != 0 || !h->waiting)
		goto nomem;
	h->refilled_ns = pn_now_ns();
	if (token && *token && !(h->token = strdup(token)))
		goto nomem;
	/* Every method reaches dispatch, so that one a route does not take is
	 * a 405 with Allow rather than libevent's 501. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
						    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(h->http, h->lim.max_header_bytes);
	evhttp_set_timeout(h->http, h->lim.idle_timeout_s);
	pn_http_set_max_body(h, 0);
	evhttp_set_gencb(h->http, dispatch, h);
	evhttp_set_bevcb(h->http, new_bev, h);
	struct evhttp_bound_socket *sock =
		evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
	if (!sock) {
		snprintf(err, errlen, "cannot listen on %s: %s", hostport, strerror(errno));
		pn_http_free(h);
		return NULL;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) == 0)
		h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	return h;
nomem:
	snprintf(err, errlen, "out of memory");
	pn_http_free(h);
	return NULL;
}

void pn_http_free(struct pn_http *h)
{
	if (!h)
		return;
	/* Waiting reads belong to connections evhttp_free is about to free. */
	h->closing = 1;
	if (h->release)
		release_cb(-1, 0, h);
	if (h->http)
		evhttp_free(h->http); /* closes every connection: conn_closed */
	if (h->release)
		event_free(h->release);
	while (h->fresh) {
		struct conn *c = h->fresh;
		h->fresh = c->next;
		bufferevent_decref(c->bev);
		free(c);
	}
	if (h->attach)
		event_free(h->attach);
	free(h->by_fd);
	free(h->waiting);
	free(h->token);
	free(h);
}

int pn_http_port(const struct pn_http *h)
{
	return h->port;
}

int pn_http_add_routes(struct pn_http *h, const struct pn_route *routes, size_t n, void *ctx)
{
	if (h->ntables == MAX_TABLES)
		return -1;
	h->tables[h->ntables++] = (struct table){routes, n, ctx};
	return 0;
}

void pn_http_set_max_body(struct pn_http *h, size_t bytes)
{
	h->max_body = bytes < PN_HTTP_MIN_BODY ? PN_HTTP_MIN_BODY : bytes;
	evhttp_set_max_body_size(h->http, (ev_ssize_t)h->max_body);
}

void pn_http_set_closing(struct pn_http *h, int closing)
{
	h->closing = closing;
	if (closing && h->nwaiting) /* each waiting read gets its 503 now */
		event_active(h->release, EV_TIMEOUT, 0);
}

const char *pn_req_path(const struct pn_req *r)
{
	return r->path;
}

const char *pn_req_arg(const struct pn_req *r, int i)
{
	return i >= 0 && i < MAX_ARGS ? r->args[i] : NULL;
}

const char *pn_req_header(const struct pn_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

int pn_req_token_match(struct pn_req *r)
{
	return r->h->token && authorized(r);
}

size_t pn_req_body_len(const struct pn_req *r)
{
	return evbuffer_get_length(evhttp_request_get_input_buffer(r->req));
}

uint8_t *pn_req_body_take(struct pn_req *r, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	*len = evbuffer_get_length(in);
	uint8_t *buf = *len ? malloc(*len) : NULL;
	if (buf && evbuffer_remove(in, buf, *len) != (int)*len) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

json_t *pn_json_parse_object(const void *data, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j = json_loadb(len ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(err, errlen, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

json_t *pn_req_json(struct pn_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	char err[256];
	json_t *j =
		pn_json_parse_object(len ? evbuffer_pullup(in, -1) : NULL, len, err, sizeof(err));
	if (!j)
		pn_reply_error(r, 400, "bad json", "%s", err);
	return j;
}

void pn_reply_header(struct pn_req *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 431:
		return "Request Header Fields Too Large";
	case 413:
		return "Payload Too Large";
	case 422:
		return "Unprocessable Entity";
	case 503:
		return "Service Unavailable";
	default:
		return status < 500 ? "Client Error" : "Server Error";
	}
}

void pn_reply_bytes(struct pn_req *r, int status, const char *content_type, const void *data,
		    size_t len)
{
	if (r->replied)
		return;
	r->replied = 1;
	struct evbuffer *out = evbuffer_new();
	if (out && len)
		evbuffer_add(out, data, len);
	pn_reply_header(r, "Content-Type", content_type);
	if (status >= 500)
		r->h->replies_5xx++;
	else if (status >= 400)
		r->h->replies_4xx++;
	/* Sending frees a request whose client has gone (see pn_req_hold). */
	int get = evhttp_request_get_command(r->req) == EVHTTP_REQ_GET;
	evhttp_send_reply(r->req, status, reason(status), out);
	if (out)
		evbuffer_free(out);
	pn_log(status >= 500 ? PN_LOG_WARN : PN_LOG_DEBUG, "%s %s -> %d", get ? "GET" : "request",
	       r->path, status);
}

struct pn_req *pn_req_hold(struct pn_req *r)
{
	struct pn_req *copy = malloc(sizeof(*copy));
	if (!copy) {
		pn_reply_error(r, 503, "out of memory", "cannot keep the request");
		return NULL;
	}
	*copy = *r;
	for (int i = 0; i < MAX_ARGS; i++)
		if (r->args[i])
			copy->args[i] = copy->argbuf + (r->args[i] - r->argbuf);
	copy->held = 1;
	r->replied = 1; /* the copy answers */
	return copy;
}

void pn_req_free(struct pn_req *r)
{
	if (!r || !r->held)
		return;
	if (!r->replied)
		pn_reply_error(r, 500, "internal error", "no reply was produced");
	free(r);
}

void pn_reply_json(struct pn_req *r, int status, json_t *body)
{
	if (!body)
		body = json_object();
	char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(13));
	json_decref(body);
	if (!text) {
		pn_reply_bytes(r, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
		return;
	}
	size_t n = strlen(text);
	text[n] = '\n';
	pn_reply_bytes(r, status, "application/json", text, n + 1);
	free(text);
}

void pn_reply_error(struct pn_req *r, int status, const char *error, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	pn_reply_json(r, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

int pn_json_int(json_t *obj, const char *key, long long min, long long max, long long def,
		long long *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	if (!v && def >= min) {
		*out = def;
		return 0;
	}
	if (!v) {
		snprintf(err, errlen, "%s is required", key);
		return -1;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(err, errlen, "%s must be an integer from %lld to %lld", key, min, max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

int pn_json_str(json_t *obj, const char *key, const char *def, const char **out, char *err,
		size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	if (!v && def) {
		*out = def;
		return 0;
	}
	if (!v) {
		snprintf(err, errlen, "%s is required", key);
		return -1;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s must be a string", key);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

int pn_json_known(json_t *obj, const char *const *known, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		int found = 0;
		for (int i = 0; known[i] && !found; i++)
			found = strcmp(known[i], key) == 0;
		if (!found) {
			snprintf(err, errlen, "unknown key \"%s\"", key);
			return -1;
		}
	}
	return 0;
}

void pn_http_error_counts(const struct pn_http *h, uint64_t *c4xx, uint64_t *c5xx)
{
	*c4xx = h->replies_4xx;
	*c5xx = h->replies_5xx;
}

void pn_http_conn_counts(const struct pn_http *h, int *open, uint64_t *refused)
{
	*open = h->nconns;
	*refused = h->refused;
}

void pn_http_read_counts(const struct pn_http *h, int *waiting, uint64_t *delayed)
{
	*waiting = h->nwaiting;
	*delayed = h->reads_delayed;
}

const char *pn_req_query(const struct pn_req *r, const char *key, char *buf, size_t buflen)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq kv;
	const char *v;
	if (!q || evhttp_parse_query_str(q, &kv) != 0)
		return NULL;
	v = evhttp_find_header(&kv, key);
	if (v)
		snprintf(buf, buflen, "%s", v);
	evhttp_clear_headers(&kv);
	return v ? buf : NULL;
}

/* ---- streamed replies ---- */

/* libevent frees the connection after this returns. */
static void stream_closed(struct evhttp_connection *evcon, void *arg)
{
	struct pn_stream *s = arg;
	/* A reply in progress is detached from a failed connection, not freed. */
	s->orphan = s->req && !evhttp_request_get_connection(s->req);
	s->evcon = NULL;
	if (s->on_close)
		s->on_close(s->arg);
}

struct pn_stream *pn_reply_stream(struct pn_req *r, const char *content_type, size_t max_buffered,
				  void (*on_close)(void *arg), void *arg)
{
	struct pn_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		pn_reply_error(r, 503, "out of memory", "cannot open a stream");
		return NULL;
	}
	s->req = r->req;
	s->evcon = evhttp_request_get_connection(r->req);
	s->conn = conn_of(r->h, s->evcon);
	s->max_buffered = max_buffered;
	s->on_close = on_close;
	s->arg = arg;
	r->replied = 1;
	pn_reply_header(r, "Content-Type", content_type);
	pn_reply_header(r, "Cache-Control", "no-store");
	pn_reply_header(r, "X-Accel-Buffering", "no");
	if (s->conn)
		s->conn->stream = s; /* conn_closed tells the stream */
	else
		evhttp_connection_set_closecb(s->evcon, stream_closed, s);
	/* A fixed, small kernel buffer: otherwise send buffer autotuning lets
	 * megabytes pile up for a client that stopped reading before the
	 * max_buffered bound sees any of it. */
	int sndbuf = 32 * 1024;
	setsockopt(bufferevent_getfd(evhttp_connection_get_bufferevent(s->evcon)), SOL_SOCKET,
		   SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	evhttp_send_reply_start(r->req, 200, "OK");
	return s;
}

int pn_stream_write(struct pn_stream *s, const void *data, size_t len)
{
	if (!s->evcon)
		return -1;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
	if (evbuffer_get_length(bufferevent_get_output(bev)) + len > s->max_buffered)
		return -1;
	struct evbuffer *b = evbuffer_new();
	if (!b || evbuffer_add(b, data, len) != 0) {
		if (b)
			evbuffer_free(b);
		return -1;
	}
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
	return 0;
}

size_t pn_stream_buffered(const struct pn_stream *s)
{
	if (!s->evcon)
		return 0;
	return evbuffer_get_length(
		bufferevent_get_output(evhttp_connection_get_bufferevent(s->evcon)));
}

void pn_stream_free(struct pn_stream *s)
{
	if (!s)
		return;
	if (s->evcon) {
		if (s->conn)
			s->conn->stream = NULL; /* conn_closed still counts it */
		else
			evhttp_connection_set_closecb(s->evcon, NULL, NULL);
		evhttp_connection_free(s->evcon);
	} else if (s->orphan) {
		evhttp_request_free(s->req);
	}
	free(s);
}
