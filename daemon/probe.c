/* Link probes (see probe.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "http.h"
#include "loop.h"
#include "probe.h"

struct pn_probe {
	struct pn_peer *peer;
	char to[300];
	size_t bytes[2];
	int reps, sent, got, state;
	double best_ms[2];
	char error[700];
};

static void echo_cb(const struct pn_reply *rep, void *arg)
{
	struct pn_probe *p = arg;
	int k = p->got++ % 2;
	if (p->state != 0)
		return;
	if (rep->status != 200 || rep->len != p->bytes[k]) {
		snprintf(p->error, sizeof(p->error), "GET /v1/echo from %s: %s (status %d)", p->to,
			 rep->status ? "bad reply" : rep->error, rep->status);
		p->state = -1;
		return;
	}
	double t = (double)rep->transfer_ns / 1e6;
	if (p->best_ms[k] < 0 || t < p->best_ms[k])
		p->best_ms[k] = t;
	if (p->got == 2 * p->reps)
		p->state = 1;
}

struct pn_probe *pn_probe_new(struct pn_loop *l, const char *to, const char *token, size_t small,
			      size_t large, int reps, char *err, size_t errlen)
{
	if (reps < 1 || reps > PN_PROBE_MAX_REPS || small >= large || large > PN_PROBE_MAX_BYTES) {
		snprintf(err, errlen, "probe sizes %zu < %zu <= %zu bytes, 1 to %d repetitions",
			 small, large, PN_PROBE_MAX_BYTES, PN_PROBE_MAX_REPS);
		return NULL;
	}
	struct pn_probe *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(p->to, sizeof(p->to), "%s", to);
	p->bytes[0] = small;
	p->bytes[1] = large;
	p->reps = reps;
	p->best_ms[0] = p->best_ms[1] = -1;
	p->peer = pn_peer_new(l, to, token, err, errlen);
	if (!p->peer)
		goto fail;
	pn_peer_set_max_reply(p->peer, large); /* the echo is exactly this */
	for (int i = 0; i < 2 * reps; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/echo?bytes=%zu", p->bytes[i % 2]);
		if (pn_peer_send(p->peer, PN_GET, path, NULL, NULL, 0, 2000, echo_cb, p) != 0) {
			snprintf(err, errlen, "cannot send a probe to %s", to);
			goto fail;
		}
	}
	return p;
fail:
	pn_probe_free(p);
	return NULL;
}

void pn_probe_free(struct pn_probe *p)
{
	if (!p)
		return;
	pn_peer_free(p->peer);
	free(p);
}

int pn_probe_state(const struct pn_probe *p)
{
	return p->state;
}

int pn_probe_is(const struct pn_probe *p, const char *to, size_t small, size_t large)
{
	return strcmp(p->to, to) == 0 && p->bytes[0] == small && p->bytes[1] == large;
}

void pn_probe_result(const struct pn_probe *p, double *latency_ms, double *bytes_per_ms)
{
	double ds = (double)(p->bytes[1] - p->bytes[0]), dt = p->best_ms[1] - p->best_ms[0];
	/* A large transfer no slower than a small one: bandwidth beyond what
	 * the sizes can tell; bound it by the large transfer alone. */
	double bw = dt > 1e-6 ? ds / dt : (double)p->bytes[1] / fmax(p->best_ms[1], 1e-6);
	double lat = p->best_ms[0] - (double)p->bytes[0] / bw;
	*bytes_per_ms = bw;
	*latency_ms = lat > 0 ? lat : 0;
}

json_t *pn_probe_json(const struct pn_probe *p)
{
	json_t *j = json_pack("{s:s, s:[I, I], s:i, s:s}", "to", p->to, "bytes",
			      (json_int_t)p->bytes[0], (json_int_t)p->bytes[1], "reps", p->reps,
			      "state",
			      p->state == 0   ? "probing"
			      : p->state == 1 ? "done"
					      : "failed");
	if (p->state == 1) {
		double lat, bw;
		pn_probe_result(p, &lat, &bw);
		json_object_set_new(j, "ms", json_pack("[f, f]", p->best_ms[0], p->best_ms[1]));
		json_object_set_new(j, "latency_ms", json_real(lat));
		json_object_set_new(j, "bytes_per_ms", json_real(bw));
	}
	if (p->state < 0)
		json_object_set_new(j, "error", json_string(p->error));
	return j;
}

/* The echo's payload: one piece of zeros, sent again and again. */
static const uint8_t echo_zeros[PN_PROBE_ECHO_PIECE];
/* The echo being sent, if any: one at a time per node. */
static int echo_busy;

static const void *echo_piece(void *arg, uint64_t offset, size_t *n)
{
	(void)arg;
	(void)offset;
	*n = sizeof(echo_zeros);
	return echo_zeros;
}

static void echo_done(void *arg)
{
	(void)arg;
	echo_busy = 0;
}

void pn_probe_echo_route(struct pn_req *q, void *arg)
{
	(void)arg;
	char buf[32], *end;
	const char *v = pn_req_query(q, "bytes", buf, sizeof(buf));
	unsigned long long n = v ? strtoull(v, &end, 10) : 0;
	if (!v || !*v || *end || n > PN_PROBE_MAX_BYTES) {
		pn_reply_error(q, 400, "bad query", "bytes must be a whole number up to %zu",
			       PN_PROBE_MAX_BYTES);
		return;
	}
	if (echo_busy) {
		pn_reply_header(q, "Retry-After", "1");
		pn_reply_error(q, 503, "busy", "another link probe is being answered");
		return;
	}
	echo_busy = 1; /* before: a short reply is done within the call */
	if (pn_reply_pull(q, "application/octet-stream", n, echo_piece, echo_done, NULL) != 0)
		echo_busy = 0;
}
