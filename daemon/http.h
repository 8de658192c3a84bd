/* The HTTP server: a route table over evhttp, JSON replies and errors.
 *
 * Handlers get a `struct pn_req` that lives for the duration of the call
 * and must answer it before they return (every reply function does).
 */
#ifndef PN_HTTP_H
#define PN_HTTP_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include <jansson.h>

struct pn_loop;
struct pn_http;
struct pn_req;

enum pn_method {
	PN_GET = 1,
	PN_POST = 2,
	PN_PUT = 4,
	PN_DELETE = 8,
};

/* Bytes a connection moves per loop turn each way. libevent's 16 KiB
 * would spread one large frame over hundreds of turns, each followed by
 * a compute step; see pn_http_tune(). */
#define PN_HTTP_IO_CHUNK (1024 * 1024)
/* Bodies left to read past this size are read in PN_HTTP_IO_CHUNK pieces
 * (bulk_cb in http.c), not libevent 2.1's 4 KiB. */
#define PN_HTTP_BULK_MIN (64 * 1024)

/* Bodies up to this size are always accepted (JSON requests). */
#define PN_HTTP_MIN_BODY (64 * 1024)

/* Route flags (struct pn_route's `flags`). */
/* Needs "Authorization: Bearer TOKEN" when a token is configured. */
#define PN_ROUTE_AUTH 1
/* Takes bodies up to pn_http_set_max_body() (rather than the small
 * limit, max_body_bytes), when the request head carries the token (or
 * none is configured); without the token, the small limit. */
#define PN_ROUTE_LARGE_BODY 2
/* A write whose body is image/jpeg; other writes outside /v1/ must be
 * application/json. */
#define PN_ROUTE_JPEG_BODY 4
/* A link probe's body: with the token (or none configured), up to
 * PN_HTTP_PROBE_BODY whatever pn_http_set_max_body says, read in
 * PN_HTTP_IO_CHUNK pieces; one such body (over the small limit) is read
 * at a time per server, and another meanwhile is answered 503 with
 * Retry-After from its head, unread. */
#define PN_ROUTE_PROBE_BODY 8
#define PN_HTTP_PROBE_BODY ((size_t)64 << 20)

/* One row per route. `path` segments equal to "*" match any one segment,
 * which handlers read with pn_req_arg(r, 0), (r, 1)...; a path ending in
 * "**" matches any rest (the next argument), and serves only its method:
 * it does not turn other methods on unknown paths into 405. `flags`:
 * PN_ROUTE_* (1 is PN_ROUTE_AUTH). A path that matches with another
 * method is answered 405 with Allow.
 *
 * Before a route is served (see README "Limits"): the request head is
 * checked as it arrives, so that a body over the route's limit, or a
 * token-less body for a route that needs the token, is refused (413,
 * 401) without being read; a Host that is not an allowed name is 421 and
 * a write with a cross-origin Origin 403, unless the request carries the
 * token; POST and PUT outside /v1/ need Content-Type application/json
 * (image/jpeg for PN_ROUTE_JPEG_BODY), else 415. */
struct pn_route {
	int method;
	const char *path;
	void (*fn)(struct pn_req *r, void *ctx);
	int flags;
};

struct bufferevent;
/* Raises a connection's per-turn read and write sizes to PN_HTTP_IO_CHUNK
 * and puts it at I/O priority (see loop.h). */
void pn_http_tune(struct bufferevent *bev);

/* Parses "HOST:PORT" (PORT 0 to 65535); 0 or -1 with a message. */
int pn_parse_hostport(const char *s, char *host, size_t hostlen, int *port, char *err,
		      size_t errlen);

/* Connection limits (the settings of the same names). */
struct pn_http_limits {
	/* Request line and headers: a longer head is refused by libevent
	 * (413 in 2.1) and the connection closed. */
	int max_header_bytes;
	/* Client connections open at once. Past it, a new connection is
	 * answered 503 with Retry-After to its first request and closed,
	 * unless that request is node-to-node (a path under /v1/) and
	 * carries the token (when one is set): those get up to
	 * PN_HTTP_NODE_RESERVE more, so that a flood of API clients cannot
	 * lock the pipeline out. Lowered at start to fit the open file
	 * limit (RLIMIT_NOFILE, whose soft limit is raised as far as
	 * needed), with a warning. */
	int max_connections;
	/* A connection that moves no byte for this long is closed. */
	int idle_timeout_s;
	/* Reads of the user-facing API (GET and HEAD outside /v1/, but for
	 * /api/v1/health) served per second at most, 0 for no limit. More
	 * wait their turn in order: on the two cores of a Pi, every API
	 * reply is CPU the pipeline's stages do not get. At most
	 * max_connections wait; past that a read gets 503. */
	int api_reads_per_s;
	/* A request head (line and headers) must arrive within this many
	 * seconds of its first byte (of the connection, for the first one),
	 * else the connection is closed; 0 means the default. */
	int head_timeout_s;
	/* Connections open at once from one peer address; more are closed
	 * as they are accepted. 0 means the default. */
	int max_connections_per_peer;
	/* The body limit of routes without PN_ROUTE_LARGE_BODY (0:
	 * PN_HTTP_MIN_BODY). */
	size_t max_body_bytes;
	/* Host names (comma-separated) requests may name in Host and Origin
	 * besides localhost, this machine's host name, the listen and the
	 * advertise host and any IP address; "*" turns the check off. */
	const char *allowed_hosts;
	const char *advertise; /* HOST:PORT, may be NULL */
};
#define PN_HTTP_HEAD_TIMEOUT_S 5
#define PN_HTTP_MAX_PER_PEER 64
/* Open files kept free of client connections (models, peers, logs). */
#define PN_HTTP_FD_MARGIN 64
/* Connections accepted past max_connections (and the reserve) to be
 * answered 503; past these, new ones are closed at once. */
#define PN_HTTP_OVER_ROOM 16
/* A repeated warning (accept errors, refused peers) is logged at most
 * once per this many seconds, with a count of those left out. */
#define PN_HTTP_LOG_EVERY_S 10
#define PN_HTTP_API_READS_PER_S 4000
/* How often waiting reads are let through. */
#define PN_HTTP_RELEASE_MS 5
#define PN_HTTP_NODE_RESERVE 16
/* How long a connection over the limit may take to send its request. */
#define PN_HTTP_OVER_TIMEOUT_S 2

/* Listens on HOST:PORT (port 0 picks a free one). NULL and a message on
 * failure. `token` may be NULL; `lim` NULL means the defaults (16 KiB of
 * headers, 512 connections, 120 s, PN_HTTP_API_READS_PER_S).
 *
 * Priorities: a connection whose last request was a GET or HEAD outside
 * /v1/ (the user-facing API, metrics, event streams and dashboard) is
 * served in the background, after the tasks (compute steps and the
 * coordinator's dispatcher); node-to-node traffic (/v1/...) and every
 * write stay at I/O priority, ahead of both (see loop.h). */
struct pn_http *pn_http_new(struct pn_loop *l, const char *hostport, const char *token,
			    const struct pn_http_limits *lim, char *err, size_t errlen);
void pn_http_free(struct pn_http *h); /* NULL is fine */
int pn_http_port(const struct pn_http *h);
/* Adds routes (the table must outlive the server); first match wins. */
int pn_http_add_routes(struct pn_http *h, const struct pn_route *routes, size_t n, void *ctx);
/* Largest body of PN_ROUTE_LARGE_BODY routes: bigger ones get 413 before
 * they are read. Never below PN_HTTP_MIN_BODY. */
void pn_http_set_max_body(struct pn_http *h, size_t bytes);
/* While closing, every route but GET /api/v1/health answers 503. */
void pn_http_set_closing(struct pn_http *h, int closing);
/* Replies sent with a 4xx and a 5xx status so far. */
void pn_http_error_counts(const struct pn_http *h, uint64_t *c4xx, uint64_t *c5xx);
/* Client connections open now (admitted ones), and connections refused
 * for the limit so far. */
void pn_http_conn_counts(const struct pn_http *h, int *open, uint64_t *refused);
/* Bytes of large bodies read in PN_HTTP_IO_CHUNK pieces (see
 * PN_HTTP_BULK_MIN) since start, not counting link probes' bodies
 * (PN_ROUTE_PROBE_BODY), which are read the same way but are not frames. */
uint64_t pn_http_bulk_bytes(const struct pn_http *h);
/* API reads waiting for the read budget now, and reads that have had to
 * wait so far. */
void pn_http_read_counts(const struct pn_http *h, int *waiting, uint64_t *delayed);

const char *pn_req_path(const struct pn_req *r);
const char *pn_req_arg(const struct pn_req *r, int i);
const char *pn_req_header(const struct pn_req *r, const char *name);
/* 1 when this daemon has a token and the request carries it (compared
 * in constant time); 0 otherwise, also when there is no token to match. */
int pn_req_token_match(struct pn_req *r);
/* The decoded value of `key` in the query string, copied into buf; NULL
 * when absent. */
const char *pn_req_query(const struct pn_req *r, const char *key, char *buf, size_t buflen);
size_t pn_req_body_len(const struct pn_req *r);
/* Moves the body into a new malloc'd buffer (NULL if empty or out of
 * memory); the caller owns it. */
uint8_t *pn_req_body_take(struct pn_req *r, size_t *len);
/* The body as a JSON object, or NULL after answering 400 itself. */
json_t *pn_req_json(struct pn_req *r);

/* Keeps a request past its handler: the copy returned is answered later
 * with the reply functions below, then freed with pn_req_free; the
 * handler must not answer `r` itself. NULL after answering 503 when out
 * of memory. Sound in libevent 2.1: a client that leaves first has its
 * request detached from the connection, not freed, and the reply then
 * only frees it. The copy must be answered before pn_http_free. */
struct pn_req *pn_req_hold(struct pn_req *r);
/* Frees a held request (answering 500 if it was not answered); NULL and
 * requests that were not held are ignored. */
void pn_req_free(struct pn_req *r);

/* Replies; each takes ownership of `body` (NULL is an empty object). */
void pn_reply_json(struct pn_req *r, int status, json_t *body);
void pn_reply_error(struct pn_req *r, int status, const char *error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Adds a header to the coming reply. */
void pn_reply_header(struct pn_req *r, const char *name, const char *value);
void pn_reply_bytes(struct pn_req *r, int status, const char *content_type, const void *data,
		    size_t len);

/* Whether a request carries the configured token (1 when none is set),
 * for routes that serve more to the authorised. */
int pn_req_authorized(const struct pn_req *r);

/* A streamed reply (Server-Sent Events): starts a 200 with chunked
 * encoding, which answers the request. The stream belongs to the caller,
 * who frees it; `on_close(arg)` is called once if the peer goes away
 * first (the stream is then dead, and may be freed from on_close). */
struct pn_stream;
struct pn_stream *pn_reply_stream(struct pn_req *r, const char *content_type, size_t max_buffered,
				  void (*on_close)(void *arg), void *arg);
/* Queues data: -1 (nothing queued) when the peer is gone or when more than
 * max_buffered bytes would wait unsent: a slow reader is to be dropped. */
int pn_stream_write(struct pn_stream *s, const void *data, size_t len);
size_t pn_stream_buffered(const struct pn_stream *s);
/* Closes the connection if still open; NULL is fine. Not from within a
 * callback of the stream's own connection other than on_close. */
void pn_stream_free(struct pn_stream *s);

/* What a request head says that matters before its body is read. */
struct pn_http_head {
	int method; /* PN_GET... (HEAD is PN_GET), 0 for others */
	char path[512]; /* origin-form path without the query; "" otherwise */
	long long content_length; /* -1 when absent, LLONG_MAX when too big */
	int chunked;
	/* The first Authorization value: auth_len bytes at auth_off of the
	 * parsed buffer (auth_len 0 when absent). */
	size_t auth_off, auth_len;
	size_t len; /* bytes of the head, with the blank line */
};
/* Parses a request head at the start of `buf` as evhttp 2.1 reads it
 * (lines ending in LF or CRLF, the first of repeated headers): 1 when
 * complete, 0 when more bytes are needed, -1 when it is malformed (left
 * to evhttp to refuse). */
int pn_http_parse_head(const char *buf, size_t len, struct pn_http_head *hd);

/* What pn_req_json does with the bytes of a body: a JSON object, with
 * duplicate keys refused; NULL and a message otherwise. */
json_t *pn_json_parse_object(const void *data, size_t len, char *err, size_t errlen);

/* Reading JSON request fields: each names the key in its message.
 * `def` < min makes the key required. 0 or -1. */
int pn_json_int(json_t *obj, const char *key, long long min, long long max, long long def,
		long long *out, char *err, size_t errlen);
/* *out borrows from obj; NULL `def` makes the key required. */
int pn_json_str(json_t *obj, const char *key, const char *def, const char **out, char *err,
		size_t errlen);
/* Refuses keys not in the NULL-terminated `known` list. */
int pn_json_known(json_t *obj, const char *const *known, char *err, size_t errlen);

#endif
