/* Link probes: the latency and bandwidth of the link from this node to
 * another one, from timed transfers of real frame sizes.
 *
 * The probing node (the sender of the hop) fetches GET /v1/echo?bytes=N
 * from the receiver of the hop, which answers N bytes; every size is
 * fetched `reps` times, interleaved, over one keep-alive connection, and
 * the fastest time of each size counts (an idle link; a turn of the
 * receiver's compute only makes a transfer slower). Two sizes give
 *   bytes_per_ms = (large - small) / (t_large - t_small)
 *   latency_ms   = t_small - small / bytes_per_ms
 * The payload flows from the receiver back to the sender: links are taken
 * to be symmetric, and no request body limit gets in the way of a frame
 * as large as a plan's biggest.
 */
#ifndef PN_PROBE_H
#define PN_PROBE_H

#include <stddef.h>

#include <jansson.h>

struct pn_loop;
struct pn_req;
struct pn_probe;

#define PN_PROBE_MAX_BYTES ((size_t)64 << 20)
#define PN_PROBE_MAX_REPS 9

/* Starts probing `to` ("HOST:PORT"); NULL with a message. */
struct pn_probe *pn_probe_new(struct pn_loop *l, const char *to, const char *token, size_t small,
			      size_t large, int reps, char *err, size_t errlen);
void pn_probe_free(struct pn_probe *p); /* NULL is fine */
/* 0 while measuring, 1 when done, -1 when a transfer failed. */
int pn_probe_state(const struct pn_probe *p);
/* Nonzero when this probe is of `to` with these sizes. */
int pn_probe_is(const struct pn_probe *p, const char *to, size_t small, size_t large);
/* Done: the fitted link. */
void pn_probe_result(const struct pn_probe *p, double *latency_ms, double *bytes_per_ms);
/* {"to", "bytes": [small, large], "ms": [fastest of each], "reps",
 * "latency_ms", "bytes_per_ms", "state": "probing"|"done"|"failed", "error"}. */
json_t *pn_probe_json(const struct pn_probe *p);

/* GET /v1/echo?bytes=N: N zero bytes (at most PN_PROBE_MAX_BYTES), sent
 * a piece of PN_PROBE_ECHO_PIECE at a time, the next once the previous
 * has left for the kernel: a client that does not read costs one piece.
 * One echo at a time per node: another meanwhile is answered 503 with
 * Retry-After, which the probe's client retries. */
#define PN_PROBE_ECHO_PIECE ((size_t)256 << 10)
void pn_probe_echo_route(struct pn_req *q, void *arg);

#endif
