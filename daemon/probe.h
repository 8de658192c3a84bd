/* Link probes: the latency and bandwidth of the link from this node to
 * another one, from timed transfers of real frame sizes.
 *
 * The probing node (the sender of the hop) posts N bytes to the receiver's
 * POST /v1/echo, which reads them and answers {"bytes": N}; the two sizes
 * take turns, `reps` times each, one transfer at a time over a keep-alive
 * connection, and the fastest time of each size counts (an idle link; a
 * turn of the receiver's compute only makes a transfer slower). Two
 * sizes give
 *   bytes_per_ms = (large - small) / (t_large - t_small)
 *   latency_ms   = t_small - small / bytes_per_ms
 * within the bounds of pn_link_fit (planner.h).
 * The payload flows the way the hop's frames do: a link whose two
 * directions differ (a shaped uplink, the reverse carrying the next hop's
 * frames) is measured on the side the frames take. During a run the
 * hop's own frames share that side: the bytes of them that the receiver
 * acknowledged while a transfer was timed (`beside`) count with the
 * transfer's own, so the fit is of the link, not of what the frames
 * leave free.
 */
#ifndef PN_PROBE_H
#define PN_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http.h"

struct pn_loop;
struct pn_req;
struct pn_probe;

#define PN_PROBE_MAX_BYTES PN_HTTP_PROBE_BODY
#define PN_PROBE_MAX_REPS 9

/* Bytes of other traffic from this node to `to` acknowledged so far (a
 * counter that only grows while one connection lasts). */
typedef uint64_t (*pn_probe_beside_fn)(void *arg, const char *to);

/* Starts probing `to` ("HOST:PORT"), counting what `beside` (NULL: none)
 * says crossed the link with each transfer; NULL with a message. */
struct pn_probe *pn_probe_new(struct pn_loop *l, const char *to, const char *token, size_t small,
			      size_t large, int reps, pn_probe_beside_fn beside, void *beside_arg,
			      char *err, size_t errlen);
void pn_probe_free(struct pn_probe *p); /* NULL is fine */
/* 0 while measuring, 1 when done, -1 when a transfer failed. */
int pn_probe_state(const struct pn_probe *p);
/* Nonzero when this probe is of `to` with these sizes. */
int pn_probe_is(const struct pn_probe *p, const char *to, size_t small, size_t large);
/* Done: the fitted link. */
void pn_probe_result(const struct pn_probe *p, double *latency_ms, double *bytes_per_ms);
/* {"to", "bytes": [small, large], "ms": [fastest of each], "reps",
 * "latency_ms", "bytes_per_ms", "beside_bytes": [frames during each of
 * those two, when any], "state": "probing"|"done"|"failed", "error"}. */
json_t *pn_probe_json(const struct pn_probe *p);

/* POST /v1/echo (route flags PN_ROUTE_AUTH | PN_ROUTE_PROBE_BODY): the
 * body is read (up to PN_PROBE_MAX_BYTES, one such body at a time per
 * node) and dropped; the answer is {"bytes": its length}. */
void pn_probe_echo_route(struct pn_req *q, void *arg);

#endif
