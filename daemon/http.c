/* The HTTP server (see http.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "http.h"
#include "log.h"
#include "loop.h"

#define MAX_ARGS 4
#define MAX_TABLES 8
/* How long accepting pauses after accept() fails (EMFILE...). */
#define ACCEPT_PAUSE_MS 250
/* How long a connection answered before its body may linger. */
#define REFUSED_LINGER_S 1

/* A warning that may repeat: logged once per PN_HTTP_LOG_EVERY_S. */
struct ratelog {
	uint64_t last_ns;
	unsigned long left_out;
};

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
	char peer[64]; /* the peer's address */
	struct evbuffer_cb_entry *in_cb; /* input_cb on the bufferevent's input */
	struct event *head_timer; /* the deadline of a request head */
	int awaiting; /* the next bytes read start a request head */
	int inflight; /* a request is with a route, not answered yet */
	int refused; /* answered before its body: what comes is dropped */
	uint64_t since_ns; /* accepted then */
	struct event *bulk; /* bulk_cb: reads a large body in big pieces */
	size_t bulk_left; /* bytes of that body still to read from the socket */
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
	int nfresh;
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
	uint64_t bulk_bytes; /* read by bulk_cb, link probes' bodies apart */
	struct conn *probe_reader; /* reading a PN_ROUTE_PROBE_BODY body */
	struct event *release; /* serves waiting reads as tokens come in */
	size_t small_body; /* the body limit of routes without LARGE_BODY */
	int hard_cap; /* connections open at once, those over the limit included */
	int ntotal; /* attached connections, those over the limit included */
	int head_timeout_s, per_peer;
	struct evconnlistener *listener;
	struct event *resume; /* accepts again after a pause */
	int burst_held; /* accepting stopped until attach_cb has run */
	char **hosts; /* names allowed in Host and Origin, lower case */
	size_t nhosts;
	int any_host;
	struct ratelog accept_log, cap_log, host_log;
	struct pn_http *next_server;
};

/* Every server, to find one from its evhttp (listener error callbacks
 * get the evhttp). */
static struct pn_http *servers;

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
static const char *reason(int status);

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

/* Constant-time comparison of an Authorization value (alen bytes) with
 * the bearer token; 1 when no token is configured. */
static int token_matches_n(const struct pn_http *h, const char *a, size_t alen)
{
	if (!h->token)
		return 1;
	if (!a || alen < 7 || strncmp(a, "Bearer ", 7) != 0)
		return 0;
	a += 7;
	size_t n = strlen(h->token);
	if (alen - 7 != n)
		return 0;
	unsigned diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned)(a[i] ^ h->token[i]);
	return diff == 0;
}

static int authorized(const struct pn_req *r)
{
	const char *a = pn_req_header(r, "Authorization");
	return token_matches_n(r->h, a, a ? strlen(a) : 0);
}

/* 1 when a repeated warning may be logged now; *left_out then tells how
 * many were not since the last one. */
static int ratelog_due(struct ratelog *rl, unsigned long *left_out)
{
	uint64_t now = pn_now_ns();
	if (rl->last_ns && now - rl->last_ns < (uint64_t)PN_HTTP_LOG_EVERY_S * 1000000000ull) {
		rl->left_out++;
		return 0;
	}
	rl->last_ns = now;
	*left_out = rl->left_out;
	rl->left_out = 0;
	return 1;
}

/* ---- the request head, read before evhttp does ---- */

static int name_is(const char *s, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static int parse_request_line(const char *line, size_t n, struct pn_http_head *hd)
{
	static const struct {
		const char *name;
		int method;
	} methods[] = {{"GET", PN_GET},
		       {"HEAD", PN_GET},
		       {"POST", PN_POST},
		       {"PUT", PN_PUT},
		       {"DELETE", PN_DELETE}};
	const char *sp = memchr(line, ' ', n);
	if (!sp || sp == line)
		return -1;
	size_t mlen = (size_t)(sp - line);
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i].name) == mlen && memcmp(line, methods[i].name, mlen) == 0)
			hd->method = methods[i].method;
	const char *uri = sp + 1, *end = line + n;
	const char *sp2 = memchr(uri, ' ', (size_t)(end - uri));
	if (!sp2 || sp2 == uri || sp2 + 1 == end)
		return -1; /* no version: evhttp refuses it */
	size_t plen = strcspn(uri, "?# ");
	if (uri[0] == '/' && plen < sizeof(hd->path) && uri + plen <= sp2) {
		memcpy(hd->path, uri, plen);
		hd->path[plen] = '\0';
	}
	return 0;
}

/* Content-Length as evhttp reads it (strtoll, the whole value). */
static int parse_length(const char *v, size_t n, long long *out)
{
	size_t i = 0;
	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i < n && v[i] == '+')
		i++;
	if (i == n)
		return -1;
	long long x = 0;
	for (; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		int d = v[i] - '0';
		x = x > (LLONG_MAX - d) / 10 ? LLONG_MAX : x * 10 + d;
	}
	*out = x;
	return 0;
}

int pn_http_parse_head(const char *buf, size_t len, struct pn_http_head *hd)
{
	memset(hd, 0, sizeof(*hd));
	hd->content_length = -1;
	int first = 1, tracked = 0, seen_length = 0, seen_te = 0, seen_auth = 0;
	size_t pos = 0;
	for (;;) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		if (!nl)
			return 0;
		size_t n = (size_t)(nl - line);
		pos += n + 1;
		if (n && line[n - 1] == '\r')
			n--;
		if (first) {
			if (parse_request_line(line, n, hd) != 0)
				return -1;
			first = 0;
			continue;
		}
		if (n == 0) {
			hd->len = pos;
			return 1;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			/* evhttp appends a continuation to the header before:
			 * one that matters here is not worth guessing at. */
			if (tracked)
				return -1;
			continue;
		}
		const char *colon = memchr(line, ':', n);
		if (!colon)
			return -1;
		size_t nlen = (size_t)(colon - line);
		/* The value as evhttp keeps it: leading spaces and trailing
		 * white space dropped. */
		const char *v = colon + 1, *vend = line + n;
		while (v < vend && *v == ' ')
			v++;
		while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t' || vend[-1] == '\r'))
			vend--;
		size_t vlen = (size_t)(vend - v);
		tracked = 1;
		if (name_is(line, nlen, "Content-Length")) {
			if (!seen_length++ && parse_length(v, vlen, &hd->content_length) != 0)
				return -1;
		} else if (name_is(line, nlen, "Transfer-Encoding")) {
			if (!seen_te++)
				hd->chunked = name_is(v, vlen, "chunked");
		} else if (name_is(line, nlen, "Authorization")) {
			if (!seen_auth++) {
				hd->auth_off = (size_t)(v - buf);
				hd->auth_len = vlen;
			}
		} else {
			tracked = 0;
		}
	}
}

/* ---- Host and Origin ---- */

/* The host of "name", "name:port" or "[v6]:port", lower case without a
 * final dot, into out; -1 when malformed. *is_ip: an IP address. */
static int host_part(const char *v, size_t vlen, char *out, size_t outlen, int *is_ip)
{
	const char *name = v, *rest;
	size_t n;
	if (vlen && v[0] == '[') {
		const char *e = memchr(v, ']', vlen);
		if (!e)
			return -1;
		name = v + 1;
		n = (size_t)(e - name);
		rest = e + 1;
	} else {
		const char *colon = memchr(v, ':', vlen);
		n = colon ? (size_t)(colon - v) : vlen;
		rest = v + n;
	}
	size_t rlen = vlen - (size_t)(rest - v);
	if (rlen && (rest[0] != ':' || rlen == 1))
		return -1;
	for (size_t i = 1; i < rlen; i++)
		if (rest[i] < '0' || rest[i] > '9')
			return -1;
	if (n && name[n - 1] == '.')
		n--;
	if (n == 0 || n >= outlen)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	out[n] = '\0';
	unsigned char addr[16];
	*is_ip = inet_pton(AF_INET, out, addr) == 1 || inet_pton(AF_INET6, out, addr) == 1;
	if (v[0] == '[' && !*is_ip)
		return -1;
	return 0;
}

static int known_name(const struct pn_http *h, const char *name)
{
	for (size_t i = 0; i < h->nhosts; i++)
		if (strcmp(h->hosts[i], name) == 0)
			return 1;
	return 0;
}

/* A Host header a browser page may not have made up by DNS rebinding:
 * an IP address (rebinding needs a name) or one of the allowed names. */
static int host_allowed(const struct pn_http *h, const char *value)
{
	char name[256];
	int ip;
	if (h->any_host)
		return 1;
	if (host_part(value, strlen(value), name, sizeof(name), &ip) != 0)
		return 0;
	return ip || known_name(h, name);
}

/* An Origin that is the request's own (scheme://Host) or an allowed name. */
static int origin_allowed(const struct pn_http *h, const char *origin, const char *host)
{
	char name[256];
	int ip;
	if (h->any_host)
		return 1;
	const char *hp = NULL;
	if (strncasecmp(origin, "http://", 7) == 0)
		hp = origin + 7;
	else if (strncasecmp(origin, "https://", 8) == 0)
		hp = origin + 8;
	if (!hp)
		return 0; /* "null", or not a web origin */
	size_t n = strcspn(hp, "/");
	if (host && strlen(host) == n && strncasecmp(hp, host, n) == 0)
		return 1;
	return host_part(hp, n, name, sizeof(name), &ip) == 0 && known_name(h, name);
}

static int add_host(struct pn_http *h, const char *v, size_t n)
{
	char name[256];
	int ip;
	if (n == 1 && v[0] == '*') {
		h->any_host = 1;
		return 0;
	}
	if (host_part(v, n, name, sizeof(name), &ip) != 0 || ip || known_name(h, name))
		return 0; /* IP addresses are allowed anyway */
	char **t = realloc(h->hosts, (h->nhosts + 1) * sizeof(*t));
	if (!t)
		return -1;
	h->hosts = t;
	if (!(h->hosts[h->nhosts] = strdup(name)))
		return -1;
	h->nhosts++;
	return 0;
}

static int add_hosts(struct pn_http *h, const char *listen_host, const struct pn_http_limits *lim)
{
	char name[256] = "";
	int rc = add_host(h, "localhost", 9);
	if (listen_host)
		rc |= add_host(h, listen_host, strlen(listen_host));
	if (lim->advertise)
		rc |= add_host(h, lim->advertise, strlen(lim->advertise));
	if (gethostname(name, sizeof(name) - 7) == 0 && name[0]) {
		name[sizeof(name) - 7] = '\0';
		size_t short_len = strcspn(name, ".");
		rc |= add_host(h, name, strlen(name));
		rc |= add_host(h, name, short_len);
		memcpy(name + short_len, ".local", 7);
		rc |= add_host(h, name, strlen(name));
	}
	for (const char *p = lim->allowed_hosts; p && *p;) {
		size_t n = strcspn(p, ",");
		while (n && *p == ' ') {
			p++;
			n--;
		}
		if (n)
			rc |= add_host(h, p, n);
		p += n;
		if (*p == ',')
			p++;
	}
	return rc;
}

static const char *media_type(const char *ct, size_t *n)
{
	*n = strcspn(ct, ";");
	while (*n && (ct[*n - 1] == ' ' || ct[*n - 1] == '\t'))
		(*n)--;
	return ct;
}

/* POST and PUT outside /v1/ carry JSON, or what the route names: a
 * browser cannot send those cross-site without asking first (CORS). */
static int body_type_ok(struct pn_req *r, const struct pn_route *rt, const char **want)
{
	*want = rt->flags & PN_ROUTE_JPEG_BODY ? "image/jpeg" : "application/json";
	const char *ct = pn_req_header(r, "Content-Type");
	size_t n;
	if (!ct)
		return 0;
	media_type(ct, &n);
	return name_is(ct, n, *want);
}

int pn_req_authorized(const struct pn_req *r)
{
	return authorized(r);
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
	if (node_path(r->path) && h->nconns < h->lim.max_connections + PN_HTTP_NODE_RESERVE &&
	    authorized(r)) {
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
	/* DNS rebinding and cross-site writes from browsers: see README. */
	if (!(h->token && authorized(&r)) &&
	    !(method == PN_GET && strcmp(r.path, "/api/v1/health") == 0)) {
		const char *host = pn_req_header(&r, "Host");
		const char *origin = pn_req_header(&r, "Origin");
		unsigned long left;
		if (host && !host_allowed(h, host)) {
			if (ratelog_due(&h->host_log, &left))
				pn_warn("refused a request for host \"%.64s\" (add the name to "
					"allowed_hosts if it is this daemon's; %lu more not "
					"logged)",
					host, left);
			pn_reply_error(&r, 421, "unknown host",
				       "this daemon does not answer to that Host (allowed_hosts)");
			return;
		}
		if (method != PN_GET && origin && !origin_allowed(h, origin, host)) {
			pn_reply_error(&r, 403, "cross-origin request",
				       "writes from another web origin are refused");
			return;
		}
	}
	/* Reads of the user-facing API wait behind node-to-node traffic. */
	int background = method == PN_GET && !node_path(r.path);
	bufferevent_priority_set(evhttp_connection_get_bufferevent(evcon),
				 background ? PN_PRIO_BACKGROUND : PN_PRIO_IO);
	int allowed = 0; /* methods of the routes whose path matched */
	const char *want;
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
			} else if ((rt->flags & PN_ROUTE_AUTH) && !authorized(&r)) {
				pn_reply_error(&r, 401, "unauthorized",
					       "this route needs Authorization: Bearer TOKEN");
			} else if ((method & (PN_POST | PN_PUT)) && !node_path(r.path) &&
				   !body_type_ok(&r, rt, &want)) {
				pn_reply_error(&r, 415, "unsupported media type",
					       "%s takes Content-Type: %s", r.path, want);
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
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct conn *c = conn_of(h, evcon);
	/* Its body is in: the next request's head is checked as it comes. */
	evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)h->small_body);
	if (c && c == h->probe_reader)
		h->probe_reader = NULL;
	if (c) {
		c->inflight = 1;
		c->awaiting = 1;
	}
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
	h->ntotal--;
	evbuffer_remove_cb_entry(bufferevent_get_input(evhttp_connection_get_bufferevent(evcon)),
				 c->in_cb);
	event_free(c->head_timer);
	if (c->bulk)
		event_free(c->bulk);
	if ((size_t)c->fd < h->nby_fd && h->by_fd[c->fd] == c)
		h->by_fd[c->fd] = NULL;
	if (c->stream)
		stream_closed(evcon, c->stream);
	if (h->probe_reader == c)
		h->probe_reader = NULL;
	free(c);
}

static void arm_head_timer(struct conn *c, int seconds)
{
	struct timeval tv = {seconds, 0};
	evtimer_add(c->head_timer, &tv);
}

/* A connection whose request head did not arrive in time, or that was
 * answered before its body: closed. Never one with a request in a route. */
static void head_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	if (c->inflight)
		return;
	if (!c->refused)
		pn_debug("%s: no request head within %d s: closed", c->peer, c->h->head_timeout_s);
	evhttp_connection_free(c->evcon); /* conn_closed frees c */
}

/* Answers a request from its head alone, writing to the socket past
 * evhttp (which has no hook for it in 2.1), and ends the connection
 * without reading its body: what arrived is dropped before evhttp sees
 * it, reading stops (the peer's sending stalls, costing no CPU), and the
 * connection is closed REFUSED_LINGER_S later, which gives the peer time
 * to read the reply before the close resets it. */
static void refuse_head(struct conn *c, int status, const char *error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void refuse_head(struct conn *c, int status, const char *error, const char *fmt, ...)
{
	char detail[256], out[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_t *j = json_pack("{s:s, s:s}", "error", error, "detail", detail);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
			 "%zu\r\n%sConnection: close\r\n\r\n%s\n",
			 status, reason(status), text ? strlen(text) + 1 : 1,
			 status == 503 ? "Retry-After: 1\r\n" : "", text ? text : "");
	free(text);
	/* Best effort: a fresh connection's socket buffer takes it whole. */
	if (n > 0 && send(c->fd, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1,
			  MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		pn_debug("%s: cannot answer %d: %s", c->peer, status, strerror(errno));
	shutdown(c->fd, SHUT_WR);
	c->refused = 1;
	if (status >= 500)
		c->h->replies_5xx++;
	else
		c->h->replies_4xx++;
	evhttp_connection_set_max_body_size(c->evcon, 0);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
	bufferevent_disable(bev, EV_READ);
	arm_head_timer(c, REFUSED_LINGER_S);
	pn_debug("%s: refused from its head -> %d (%s)", c->peer, status, detail);
}

static const struct pn_route *find_route(struct pn_http *h, int method, const char *path)
{
	struct pn_req r = {.h = h};
	snprintf(r.path, sizeof(r.path), "%s", path);
	for (int t = 0; t < h->ntables; t++)
		for (size_t i = 0; i < h->tables[t].n; i++) {
			const struct pn_route *rt = &h->tables[t].routes[i];
			if ((rt->method & method) && match(&r, rt->path))
				return rt;
		}
	return NULL;
}

/* A large body (a frame, a link probe) is read here in pieces of up to
 * PN_HTTP_IO_CHUNK: libevent 2.1's evbuffer_read takes at most 4 KiB a
 * call whatever the bufferevent allows, so a 6 MB frame cost 1,600 loop
 * turns of three system calls each, more CPU than the receiver's kernels
 * spent on it. Only the authorised body of a large-body route is read
 * this way, never past its end (input_cb counts every byte that arrives,
 * whoever read it) and only while evhttp reads the connection; evhttp
 * then parses what arrived as if its bufferevent had read it.
 *
 * Reads what is ready on `fd`, up to `max` bytes and PN_HTTP_IO_CHUNK, into
 * the input of `bev` (whose socket it is) in one system call, running the
 * input's callbacks. Returns the bytes read; 0 when none were ready (the
 * end or an error: the bufferevent finds it when it reads); -1 when out of
 * memory. The caller then lets evhttp parse them (bufferevent_trigger). */
static ssize_t bulk_read(struct bufferevent *bev, int fd, size_t max)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t want = max < PN_HTTP_IO_CHUNK ? max : PN_HTTP_IO_CHUNK;
	int ready = 0;
	if (ioctl(fd, FIONREAD, &ready) != 0 || ready <= 0)
		return 0;
	if ((size_t)ready < want)
		want = (size_t)ready;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	/* The bufferevent keeps its input's end frozen but while it reads. */
	evbuffer_unfreeze(in, 0);
	int nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
	if (nv < 1) {
		evbuffer_freeze(in, 0);
		return -1;
	}
	size_t room = want;
	for (int i = 0; i < nv; i++) {
		if (v[i].iov_len > room)
			v[i].iov_len = room;
		room -= v[i].iov_len;
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	ssize_t got = readv(fd, iov, nv);
	int used = 0;
	for (size_t left = got > 0 ? (size_t)got : 0; used < nv && left; used++) {
		if (v[used].iov_len > left)
			v[used].iov_len = left;
		left -= v[used].iov_len;
	}
	evbuffer_commit_space(in, v, used); /* runs the input's callbacks */
	evbuffer_freeze(in, 0);
	return got > 0 ? got : 0;
}

static void bulk_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
	(void)what;
	if (!c->bulk_left || c->refused || !(bufferevent_get_enabled(bev) & EV_READ)) {
		event_del(c->bulk); /* input_cb adds it again when that changes */
		return;
	}
	ssize_t got = bulk_read(bev, fd, c->bulk_left); /* input_cb counts it */
	if (got <= 0) {
		/* The end or an error is the bufferevent's to see and report. */
		event_del(c->bulk);
		return;
	}
	if (c != c->h->probe_reader) /* so that the count is the frames' */
		c->h->bulk_bytes += (uint64_t)got;
	if (!c->bulk_left)
		event_del(c->bulk);
	bufferevent_trigger(bev, EV_READ, 0); /* evhttp parses it; may free c */
}

/* Reads the rest of an accepted large body by bulk_cb. */
static void bulk_start(struct conn *c, struct evbuffer *in, const struct pn_http_head *hd)
{
	size_t total = hd->len + (size_t)hd->content_length, have = evbuffer_get_length(in);
	c->bulk_left = total > have ? total - have : 0;
	if (c->bulk_left < PN_HTTP_BULK_MIN)
		return;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
	if (!c->bulk)
		c->bulk = event_new(bufferevent_get_base(bev), c->fd, EV_READ | EV_PERSIST, bulk_cb,
				    c);
	if (!c->bulk)
		return; /* out of memory: the bufferevent reads it all */
	/* At the bufferevent's priority, which may have changed since: a
	 * lower one would never run while the bufferevent has data. */
	event_del(c->bulk);
	event_priority_set(c->bulk, bufferevent_get_priority(bev));
	event_add(c->bulk, NULL);
}

/* The head of the request at the front of `in`, once whole: a body over
 * the route's limit is refused (413), and so is one for a route that
 * needs the token when the head does not carry it (401); only an
 * authorised head of a large-body route raises the limit evhttp then
 * applies. A head evhttp would refuse anyway is left to it. */
static void check_head(struct conn *c, struct evbuffer *in)
{
	struct pn_http *h = c->h;
	size_t n = evbuffer_get_length(in), cap = (size_t)h->lim.max_header_bytes + 2;
	if (n > cap)
		n = cap;
	const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	struct pn_http_head hd;
	int rc = p ? pn_http_parse_head(p, n, &hd) : -1;
	if (rc == 0 && n < cap)
		return; /* more to come */
	c->awaiting = 0;
	evtimer_del(c->head_timer);
	if (rc != 1)
		return;
	const struct pn_route *rt = hd.method ? find_route(h, hd.method, hd.path) : NULL;
	int flags = rt ? rt->flags : 0;
	int auth = token_matches_n(h, hd.auth_len ? p + hd.auth_off : NULL, hd.auth_len);
	int large = (flags & (PN_ROUTE_LARGE_BODY | PN_ROUTE_PROBE_BODY)) && auth;
	size_t limit = !large			       ? h->small_body
		       : (flags & PN_ROUTE_PROBE_BODY) ? PN_HTTP_PROBE_BODY
						       : h->max_body;
	int probe = large && (flags & PN_ROUTE_PROBE_BODY) &&
		    (hd.chunked || hd.content_length > (long long)h->small_body);
	if ((flags & PN_ROUTE_AUTH) && !auth && (hd.chunked || hd.content_length > 0))
		refuse_head(c, 401, "unauthorized", "this route needs Authorization: Bearer TOKEN");
	else if (hd.content_length > (long long)limit)
		refuse_head(c, 413, "body too large", "%.200s takes a body of at most %zu bytes%s",
			    hd.path, limit, large ? "" : " (max_body_bytes)");
	else if (probe && h->probe_reader && h->probe_reader != c)
		refuse_head(c, 503, "busy", "another link probe is being read");
	else {
		if (probe)
			h->probe_reader = c;
		evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)limit);
		if (large && !hd.chunked && hd.content_length > 0)
			bulk_start(c, in, &hd);
	}
}

/* Runs on every read into a connection's input, before evhttp parses
 * it: the one point libevent 2.1 gives between the arrival of a request
 * head and the reading of its body (evhttp_request_set_header_cb cannot
 * reach requests evhttp makes for incoming connections). */
static void input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	if (c->bulk_left && c->evcon) {
		c->bulk_left -= info->n_added < c->bulk_left ? info->n_added : c->bulk_left;
		if (c->bulk_left && c->bulk && !event_pending(c->bulk, EV_READ, NULL))
			event_add(c->bulk, NULL);
	}
	if (!info->n_added || !c->evcon)
		return;
	if (c->refused) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (!c->awaiting || c->inflight)
		return;
	if (!evtimer_pending(c->head_timer, NULL))
		arm_head_timer(c, c->h->head_timeout_s);
	check_head(c, in);
}

/* At the cap, the oldest connection still waiting for a request head
 * is closed to make room: slowloris clients hold connections that way,
 * and would otherwise lock everyone out until their deadline. A
 * connection with a request in a route, or idle between requests, is
 * left alone. */
static void evict_slowest(struct pn_http *h, int admitted_only)
{
	struct conn *oldest = NULL;
	for (size_t i = 0; i < h->nby_fd; i++) {
		struct conn *c = h->by_fd[i];
		if (c && !(admitted_only && c->over) && c->awaiting && !c->inflight && !c->stream &&
		    evtimer_pending(c->head_timer, NULL) &&
		    (!oldest || c->since_ns < oldest->since_ns))
			oldest = c;
	}
	if (!oldest)
		return;
	unsigned long left;
	if (ratelog_due(&h->cap_log, &left))
		pn_warn("%d connections open: closed one from %s still without a request head for "
			"a new one (%lu more not logged)",
			h->ntotal, oldest->peer, left);
	evhttp_connection_free(oldest->evcon); /* conn_closed */
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
	if (c && !(c->head_timer = evtimer_new(base, head_timer_cb, c))) {
		free(c);
		c = NULL;
	}
	if (c && !(c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), input_cb, c))) {
		event_free(c->head_timer);
		free(c);
		c = NULL;
	}
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
	if (h->ntotal + h->nfresh++ >= h->hard_cap) {
		evict_slowest(h, 0);
		/* libevent accepts until the backlog is empty: a flood of
		 * connects would take every descriptor left in one pass (then
		 * accept fails and pauses, and a health check waits behind the
		 * flood). At the cap this pass stops; attach_cb, which closes
		 * what is over it, starts accepting again. */
		if (h->listener && !h->burst_held) {
			h->burst_held = 1;
			evconnlistener_disable(h->listener);
		}
	}
	event_active(h->attach, EV_TIMEOUT, 0);
	return bev;
}

static int peer_count(const struct pn_http *h, const char *peer)
{
	int n = 0;
	for (size_t i = 0; i < h->nby_fd; i++)
		n += h->by_fd[i] && strcmp(h->by_fd[i]->peer, peer) == 0;
	return n;
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
		h->nfresh--;
		void *cbarg = NULL;
		bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
		struct evhttp_connection *evcon = cbarg;
		c->fd = bufferevent_getfd(c->bev);
		if (!evcon || evhttp_connection_get_bufferevent(evcon) != c->bev || c->fd < 0) {
			evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
			bufferevent_decref(c->bev); /* libevent dropped it already */
			event_free(c->head_timer);
			free(c);
			continue;
		}
		char *addr = NULL;
		ev_uint16_t port = 0;
		evhttp_connection_get_peer(evcon, &addr, &port);
		snprintf(c->peer, sizeof(c->peer), "%s", addr ? addr : "?");
		const char *full = h->ntotal >= h->hard_cap ? "max_connections"
				   : peer_count(h, c->peer) >= h->per_peer
					   ? "max_connections_per_peer"
					   : NULL;
		bufferevent_decref(c->bev);
		c->bev = NULL;
		c->evcon = evcon;
		if (!full && (size_t)c->fd >= h->nby_fd) {
			size_t n = (size_t)c->fd * 2 + 64;
			struct conn **t = realloc(h->by_fd, n * sizeof(*t));
			if (!t)
				full = "memory";
			else {
				memset(t + h->nby_fd, 0, (n - h->nby_fd) * sizeof(*t));
				h->by_fd = t;
				h->nby_fd = n;
			}
		}
		if (full) {
			/* Closed unanswered: an answer would need the request. */
			unsigned long left;
			h->refused++;
			if (ratelog_due(&h->cap_log, &left))
				pn_warn("closed a connection from %s at once: %s reached (%lu more "
					"not logged)",
					c->peer, full, left);
			evbuffer_remove_cb_entry(
				bufferevent_get_input(evhttp_connection_get_bufferevent(evcon)),
				c->in_cb);
			event_free(c->head_timer);
			free(c);
			evhttp_connection_free(evcon);
			continue;
		}
		/* Past max_connections, a slowloris connection makes room. */
		if (h->nconns >= h->lim.max_connections)
			evict_slowest(h, 1);
		h->by_fd[c->fd] = c;
		evhttp_connection_set_closecb(evcon, conn_closed, c);
		h->ntotal++;
		c->since_ns = pn_now_ns();
		c->awaiting = 1;
		arm_head_timer(c, h->head_timeout_s);
		if (h->nconns < h->lim.max_connections) {
			h->nconns++;
		} else {
			c->over = 1;
			evhttp_connection_set_timeout(evcon, PN_HTTP_OVER_TIMEOUT_S);
		}
	}
	if (h->burst_held) {
		h->burst_held = 0;
		if (!evtimer_pending(h->resume, NULL)) /* not paused by accept_error_cb */
			evconnlistener_enable(h->listener);
	}
}

/* accept() failed for want of file descriptors or memory: libevent's
 * listener would retry at once, forever (100 % CPU and a log line each
 * time). Accepting pauses instead; connections already open go on. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct pn_http *h = servers;
	while (h && h->http != arg)
		h = h->next_server;
	if (!h)
		return;
	unsigned long left;
	if (ratelog_due(&h->accept_log, &left))
		pn_warn("cannot accept connections: %s; pausing for %d ms (%lu more not logged)",
			strerror(err), ACCEPT_PAUSE_MS, left);
	evconnlistener_disable(lev);
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
	evtimer_add(h->resume, &tv);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pn_http *h = arg;
	(void)fd;
	(void)what;
	evconnlistener_enable(h->listener);
}

/* Keeps the connections below the open file limit: raises the soft
 * limit as far as needed (and allowed), else lowers max_connections. */
static void fit_fd_limit(struct pn_http *h)
{
	struct pn_http_limits *lim = &h->lim;
	rlim_t want = (rlim_t)lim->max_connections + PN_HTTP_NODE_RESERVE + PN_HTTP_OVER_ROOM +
		      PN_HTTP_FD_MARGIN;
	struct rlimit rl;
	h->hard_cap = lim->max_connections + PN_HTTP_NODE_RESERVE + PN_HTTP_OVER_ROOM;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= want)
		return;
	struct rlimit raised = rl;
	raised.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (raised.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) == 0)
		rl = raised;
	if (rl.rlim_cur >= want)
		return;
	long room = (long)rl.rlim_cur - PN_HTTP_FD_MARGIN;
	long most = room - PN_HTTP_NODE_RESERVE - PN_HTTP_OVER_ROOM;
	if (most < 4)
		most = 4;
	pn_warn("max_connections lowered from %d to %ld to fit the open file limit of %llu "
		"(ulimit -n, LimitNOFILE=)",
		lim->max_connections, most, (unsigned long long)rl.rlim_cur);
	lim->max_connections = (int)most;
	h->hard_cap = room > most ? (int)room : (int)most;
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
	h->next_server = servers;
	servers = h;
	h->head_timeout_s =
		h->lim.head_timeout_s > 0 ? h->lim.head_timeout_s : PN_HTTP_HEAD_TIMEOUT_S;
	h->per_peer = h->lim.max_connections_per_peer > 0 ? h->lim.max_connections_per_peer
							  : PN_HTTP_MAX_PER_PEER;
	h->small_body =
		h->lim.max_body_bytes > PN_HTTP_MIN_BODY ? h->lim.max_body_bytes : PN_HTTP_MIN_BODY;
	fit_fd_limit(h);
	if (add_hosts(h, host, &h->lim) != 0)
		goto nomem;
	h->lim.allowed_hosts = NULL; /* not kept */
	h->lim.advertise = NULL;
	h->http = evhttp_new(pn_loop_base(l));
	h->resume = evtimer_new(pn_loop_base(l), resume_cb, h);
	h->attach = event_new(pn_loop_base(l), -1, 0, attach_cb, h);
	h->release = evtimer_new(pn_loop_base(l), release_cb, h);
	h->waiting = calloc((size_t)h->lim.max_connections, sizeof(*h->waiting));
	if (!h->http || !h->resume || !h->attach ||
	    event_priority_set(h->attach, PN_PRIO_IO) != 0 || !h->release ||
	    event_priority_set(h->release, PN_PRIO_BACKGROUND) != 0 || !h->waiting)
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
	/* Every body is small unless its head allows more (check_head). */
	evhttp_set_max_body_size(h->http, (ev_ssize_t)h->small_body);
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
	h->listener = evhttp_bound_socket_get_listener(sock);
	evconnlistener_set_error_cb(h->listener, accept_error_cb);
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
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
		bufferevent_decref(c->bev);
		event_free(c->head_timer);
		free(c);
	}
	if (h->attach)
		event_free(h->attach);
	if (h->resume)
		event_free(h->resume);
	for (struct pn_http **p = &servers; *p; p = &(*p)->next_server)
		if (*p == h) {
			*p = h->next_server;
			break;
		}
	for (size_t i = 0; i < h->nhosts; i++)
		free(h->hosts[i]);
	free(h->hosts);
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
	case 403:
		return "Forbidden";
	case 415:
		return "Unsupported Media Type";
	case 421:
		return "Misdirected Request";
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
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	struct conn *c = evcon ? conn_of(r->h, evcon) : NULL;
	if (c)
		c->inflight = 0;
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

uint64_t pn_http_bulk_bytes(const struct pn_http *h)
{
	return h->bulk_bytes;
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
