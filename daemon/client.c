/* Outgoing HTTP over one keep-alive evhttp connection (see client.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "client.h"
#include "http.h"
#include "log.h"
#include "loop.h"

#define BACKOFF_FIRST_MS 20
#define BACKOFF_MAX_MS 1000
#define TIMEOUT_S 60

struct item {
	TAILQ_ENTRY(item) next;
	int method;
	char *path;
	const char *content_type;
	struct body *body; /* NULL when none */
	size_t len;
	uint64_t deadline_ns;
	int backoff_ms;
	int attempts;
	uint64_t sent_ns;
	pn_peer_cb cb;
	void *arg;
};

/* A request body, shared by the item and every attempt's output buffer
 * that still refers to it: a frame goes to the socket from where it was
 * made, not copied into each attempt. */
struct body {
	int refs;
	uint8_t *data;
};

static void body_unref(struct body *b)
{
	if (b && --b->refs == 0) {
		free(b->data);
		free(b);
	}
}

/* libevent is done with an attempt's reference (sent, or freed unsent). */
static void body_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	body_unref(arg);
}

struct pn_peer {
	struct pn_loop *loop;
	struct evhttp_connection *evcon;
	char address[300];
	char host[256];
	char *token;
	TAILQ_HEAD(, item) items;
	size_t nitems;
	struct evhttp_request *inflight;
	struct pn_timer *retry;
	struct pn_task *reaper; /* frees the peer outside libevent's callbacks */
	int timeout_ms;
	int dead;
	int too_large; /* the reply in flight broke the size limits */
};

static void send_head(struct pn_peer *p);

static void item_free(struct item *it)
{
	free(it->path);
	body_unref(it->body);
	free(it);
}

static void drop(struct pn_peer *p, struct item *it)
{
	TAILQ_REMOVE(&p->items, it, next);
	p->nitems--;
	item_free(it);
}

static void complete(struct pn_peer *p, struct item *it, const struct pn_reply *rep)
{
	pn_peer_cb cb = it->cb;
	void *arg = it->arg;
	TAILQ_REMOVE(&p->items, it, next);
	p->nitems--;
	item_free(it);
	if (cb)
		cb(rep, arg); /* may queue, clear or free the peer */
}

static void retry_cb(void *arg)
{
	send_head(arg);
}

/* A failed attempt: retry later or give up. `after_s` is Retry-After. */
static void failed(struct pn_peer *p, struct item *it, int status, const char *why, int after_s)
{
	uint64_t now = pn_now_ns();
	int wait = it->backoff_ms;
	if (after_s > 0 && after_s * 1000 < wait)
		wait = after_s * 1000;
	if (now + (uint64_t)wait * 1000000u <= it->deadline_ns) {
		pn_debug("%s%s: %s, retry %d in %d ms", p->address, it->path, why, it->attempts,
			 wait);
		it->backoff_ms =
			it->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : it->backoff_ms * 2;
		pn_timer_arm(p->retry, wait);
		return;
	}
	struct pn_reply rep = {
		.status = status == 503 ? 503 : 0, .attempts = it->attempts, .error = why};
	complete(p, it, &rep);
	if (!p->dead)
		send_head(p);
}

static void done_cb(struct evhttp_request *req, void *arg)
{
	struct pn_peer *p = arg;
	struct item *it = TAILQ_FIRST(&p->items);
	p->inflight = NULL;
	if (p->dead || !it)
		return;
	int status = req ? evhttp_request_get_response_code(req) : 0;
	if (status == 0 && p->too_large) {
		/* A peer that sends more than a reply can be is not asked again. */
		char why[96];
		snprintf(why, sizeof(why), "reply over %zu bytes of body or %d of headers",
			 PN_PEER_MAX_REPLY, PN_PEER_MAX_HEADERS);
		p->too_large = 0;
		struct pn_reply rep = {.status = 0, .attempts = it->attempts, .error = why};
		pn_warn("%s%s: %s: refused", p->address, it->path, why);
		complete(p, it, &rep);
		if (!p->dead)
			send_head(p);
		return;
	}
	if (status == 0) {
		/* libevent tells no reason: a timeout is told by the time. */
		char why[64];
		if (pn_now_ns() - it->sent_ns >= (uint64_t)p->timeout_ms * 1000000u * 9 / 10)
			snprintf(why, sizeof(why), "no answer in %.1f s", p->timeout_ms / 1e3);
		else
			snprintf(why, sizeof(why), "connection failed");
		failed(p, it, 0, why, 0);
		return;
	}
	if (status == 503) {
		const char *ra =
			evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After");
		failed(p, it, 503, "peer busy (503)", ra ? atoi(ra) : 0);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct pn_reply rep = {
		.status = status,
		.body = len ? evbuffer_pullup(in, -1) : (const uint8_t *)"",
		.len = len,
		.transfer_ns = pn_now_ns() - it->sent_ns,
		.sent = it->len,
		.attempts = it->attempts,
	};
	complete(p, it, &rep);
	if (!p->dead)
		send_head(p);
}

/* Called by libevent before done_cb when a request fails. */
static void error_cb(enum evhttp_request_error e, void *arg)
{
	struct pn_peer *p = arg;
	p->too_large = e == EVREQ_HTTP_DATA_TOO_LONG;
}

static enum evhttp_cmd_type cmd_of(int method)
{
	switch (method) {
	case PN_POST:
		return EVHTTP_REQ_POST;
	case PN_PUT:
		return EVHTTP_REQ_PUT;
	case PN_DELETE:
		return EVHTTP_REQ_DELETE;
	default:
		return EVHTTP_REQ_GET;
	}
}

static void send_head(struct pn_peer *p)
{
	struct item *it = TAILQ_FIRST(&p->items);
	if (!it || p->inflight || pn_timer_armed(p->retry) || p->dead)
		return;
	struct evhttp_request *req = evhttp_request_new(done_cb, p);
	if (!req) {
		failed(p, it, 0, "out of memory", 0);
		return;
	}
	evhttp_request_set_error_cb(req, error_cb);
	p->too_large = 0;
	struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
	evhttp_add_header(hd, "Host", p->host);
	if (it->content_type)
		evhttp_add_header(hd, "Content-Type", it->content_type);
	if (p->token) {
		char auth[300];
		snprintf(auth, sizeof(auth), "Bearer %s", p->token);
		evhttp_add_header(hd, "Authorization", auth);
	}
	if (it->len) {
		it->body->refs++;
		if (evbuffer_add_reference(evhttp_request_get_output_buffer(req), it->body->data,
					   it->len, body_cleanup, it->body) != 0) {
			it->body->refs--;
			evhttp_request_free(req);
			failed(p, it, 0, "out of memory", 0);
			return;
		}
	}
	it->attempts++;
	it->sent_ns = pn_now_ns();
	p->inflight = req;
	if (evhttp_make_request(p->evcon, req, cmd_of(it->method), it->path) != 0) {
		p->inflight = NULL; /* libevent freed the request */
		failed(p, it, 0, "cannot send the request", 0);
		return;
	}
	/* A frame is a header and a body: without this, Nagle holds the tail
	 * of the body until the peer's delayed ACK, some 40 ms a frame. The
	 * socket exists once the request has started (connected or not). */
	evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(p->evcon));
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void reap_cb(void *arg)
{
	struct pn_peer *p = arg;
	if (p->evcon)
		evhttp_connection_free(p->evcon);
	pn_timer_free(p->retry);
	pn_task_free(p->reaper);
	free(p->token);
	free(p);
}

struct pn_peer *pn_peer_new(struct pn_loop *l, const char *hostport, const char *token, char *err,
			    size_t errlen)
{
	char host[256];
	int port;
	if (pn_parse_hostport(hostport, host, sizeof(host), &port, err, errlen) != 0)
		return NULL;
	if (port == 0) {
		snprintf(err, errlen, "%s: port 0 is not a peer's port", hostport);
		return NULL;
	}
	struct pn_peer *p = calloc(1, sizeof(*p));
	if (!p)
		goto nomem;
	p->loop = l;
	TAILQ_INIT(&p->items);
	snprintf(p->address, sizeof(p->address), "%s", hostport);
	snprintf(p->host, sizeof(p->host), "%s", hostport);
	if (token && *token && !(p->token = strdup(token)))
		goto nomem;
	p->evcon = evhttp_connection_base_new(pn_loop_base(l), NULL, host, (ev_uint16_t)port);
	p->retry = pn_timer_new(l, retry_cb, p);
	p->reaper = pn_task_new(l, reap_cb, p);
	if (!p->evcon || !p->retry || !p->reaper)
		goto nomem;
	evhttp_connection_set_timeout(p->evcon, TIMEOUT_S);
	p->timeout_ms = TIMEOUT_S * 1000;
	evhttp_connection_set_max_headers_size(p->evcon, PN_PEER_MAX_HEADERS);
	evhttp_connection_set_max_body_size(p->evcon, (ev_ssize_t)PN_PEER_MAX_REPLY);
	pn_http_tune(evhttp_connection_get_bufferevent(p->evcon));
	return p;
nomem:
	snprintf(err, errlen, "out of memory");
	if (p) {
		if (p->reaper)
			reap_cb(p);
		else {
			if (p->evcon)
				evhttp_connection_free(p->evcon);
			pn_timer_free(p->retry);
			free(p->token);
			free(p);
		}
	}
	return NULL;
}

void pn_peer_free(struct pn_peer *p)
{
	if (!p || p->dead)
		return;
	pn_peer_clear(p);
	p->dead = 1;
	pn_task_schedule(p->reaper);
}

void pn_peer_set_timeout_ms(struct pn_peer *p, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evhttp_connection_set_timeout_tv(p->evcon, &tv);
	p->timeout_ms = ms;
}

const char *pn_peer_address(const struct pn_peer *p)
{
	return p->address;
}

int pn_peer_send(struct pn_peer *p, int method, const char *path, const char *content_type,
		 void *body, size_t len, int64_t retry_ms, pn_peer_cb cb, void *arg)
{
	struct item *it = calloc(1, sizeof(*it));
	struct body *b = len ? malloc(sizeof(*b)) : NULL;
	if (!it || p->dead || (len && !b) || !(it->path = strdup(path))) {
		free(it);
		free(b);
		free(body);
		return -1;
	}
	if (b) {
		b->refs = 1;
		b->data = body;
	} else {
		free(body);
	}
	it->method = method;
	it->content_type = content_type;
	it->body = b;
	it->len = len;
	it->deadline_ns = pn_now_ns() + (uint64_t)(retry_ms > 0 ? retry_ms : 0) * 1000000u;
	it->backoff_ms = BACKOFF_FIRST_MS;
	it->cb = cb;
	it->arg = arg;
	TAILQ_INSERT_TAIL(&p->items, it, next);
	p->nitems++;
	send_head(p);
	return 0;
}

int pn_peer_bytes_acked(const struct pn_peer *p, uint64_t *acked)
{
	*acked = 0;
	if (!p->evcon)
		return -1;
	return pn_tcp_bytes_acked(bufferevent_getfd(evhttp_connection_get_bufferevent(p->evcon)),
				  acked);
}

size_t pn_peer_pending(const struct pn_peer *p)
{
	return p->nitems;
}

void pn_peer_clear(struct pn_peer *p)
{
	if (p->inflight) {
		/* Not from inside its own callback: done_cb cleared inflight. */
		evhttp_cancel_request(p->inflight);
		p->inflight = NULL;
	}
	pn_timer_cancel(p->retry);
	while (!TAILQ_EMPTY(&p->items))
		drop(p, TAILQ_FIRST(&p->items));
}
