/* Outgoing HTTP: one keep-alive connection to one peer ("HOST:PORT").
 *
 * Requests go out one at a time, in the order they were queued. A request
 * that fails to connect, breaks off, or is answered 503 is sent again
 * after a growing delay (20 ms doubling up to 1 s, or the peer's
 * Retry-After when that is shorter) until its retry budget is spent.
 * Any other answer, or the budget running out (status 0), completes it:
 * a 401 (another token) is never sent again, as it would be refused again.
 */
#ifndef PN_CLIENT_H
#define PN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct pn_loop;
struct pn_peer;

struct pn_reply {
	int status; /* HTTP status; 0 when no answer came in the retry budget */
	const uint8_t *body;
	size_t len;
	uint64_t transfer_ns; /* request sent to reply read, the last attempt */
	size_t sent; /* the request's body bytes */
	int attempts;
	const char *error; /* why status is 0 */
};

typedef void (*pn_peer_cb)(const struct pn_reply *reply, void *arg);

/* NULL and a message for a bad address. `token` may be NULL. */
struct pn_peer *pn_peer_new(struct pn_loop *l, const char *hostport, const char *token, char *err,
			    size_t errlen);
/* Drops every queued request without calling its callback. Safe to call
 * from a callback of this peer: the connection is freed later. */
void pn_peer_free(struct pn_peer *p);
const char *pn_peer_address(const struct pn_peer *p);
/* How long one attempt may wait for its reply (default 60 s): a peer that
 * accepts the connection but never answers (a stopped process) fails the
 * attempt after this. */
void pn_peer_set_timeout_ms(struct pn_peer *p, int ms);

/* Replies are bounded: their headers to PN_PEER_MAX_HEADERS, their body to
 * PN_PEER_MAX_REPLY (what nodes answer each other is JSON of a few KiB).
 * A reply over either completes its request with status 0 and is not
 * retried, and the connection is closed. */
#define PN_PEER_MAX_HEADERS (16 * 1024)
#define PN_PEER_MAX_REPLY ((size_t)1 << 20)

/* Queues `method` (a pn_method) `path` with `body` of `len` bytes, which
 * the peer takes ownership of (malloc'd, or NULL), even on failure.
 * retry_ms: how long failures are retried (0: once). `cb` is called once
 * (unless the request is dropped by pn_peer_clear/free). 0 or -1. */
int pn_peer_send(struct pn_peer *p, int method, const char *path, const char *content_type,
		 void *body, size_t len, int64_t retry_ms, pn_peer_cb cb, void *arg);
/* Requests queued or in flight. */
size_t pn_peer_pending(const struct pn_peer *p);
/* Drops every queued request without calling callbacks. */
void pn_peer_clear(struct pn_peer *p);
/* Bytes of its connection's current socket that the other end has
 * acknowledged (TCP_INFO): what crossed the link, not what was queued.
 * 0 and -1 without a connected socket; a new connection counts from 0. */
int pn_peer_bytes_acked(const struct pn_peer *p, uint64_t *acked);
/* The same of a socket (daemon/tcpinfo.c). */
int pn_tcp_bytes_acked(int fd, uint64_t *acked);

#endif
