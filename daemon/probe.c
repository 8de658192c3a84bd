/* Link probes (see probe.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "http.h"
#include "loop.h"
#include "planner.h"
#include "probe.h"

struct pn_probe {
	struct pn_peer *peer;
	char to[300];
	size_t bytes[2];
	int reps, sent, got, state;
	double best_ms[2];
	pn_probe_beside_fn beside;
	void *beside_arg;
	uint64_t beside_at_send, beside_best[2];
	char error[700];
};

static uint64_t beside_now(const struct pn_probe *p)
{
	return p->beside ? p->beside(p->beside_arg, p->to) : 0;
}

static int send_next(struct pn_probe *p);

/* The echo answers {"bytes": N}, the body it read. */
static size_t echoed_bytes(const struct pn_reply *rep)
{
	json_t *j = json_loadb((const char *)rep->body, rep->len, 0, NULL);
	json_t *n = json_object_get(j, "bytes");
	size_t got = json_is_integer(n) && json_integer_value(n) >= 0
			     ? (size_t)json_integer_value(n)
			     : (size_t)-1;
	json_decref(j);
	return got;
}

static void echo_cb(const struct pn_reply *rep, void *arg)
{
	struct pn_probe *p = arg;
	int k = p->got++ % 2;
	if (p->state != 0)
		return;
	if (rep->status != 200 || echoed_bytes(rep) != p->bytes[k]) {
		snprintf(p->error, sizeof(p->error), "POST /v1/echo to %s: %s (status %d)", p->to,
			 rep->status ? "bad reply" : rep->error, rep->status);
		p->state = -1;
		return;
	}
	double t = (double)rep->transfer_ns / 1e6;
	uint64_t now = beside_now(p); /* a new connection counts from 0: none */
	if (p->best_ms[k] < 0 || t < p->best_ms[k]) {
		p->best_ms[k] = t;
		p->beside_best[k] = now >= p->beside_at_send ? now - p->beside_at_send : 0;
	}
	if (p->got == 2 * p->reps)
		p->state = 1;
	else if (send_next(p) != 0) {
		snprintf(p->error, sizeof(p->error), "cannot send a probe to %s", p->to);
		p->state = -1;
	}
}

/* One transfer at a time: a body is allocated only while it is sent
 * (calloc's zero pages, which the socket reads without touching RAM). */
static int send_next(struct pn_probe *p)
{
	size_t n = p->bytes[p->sent++ % 2];
	void *body = n ? calloc(1, n) : NULL;
	if (n && !body)
		return -1;
	p->beside_at_send = beside_now(p);
	return pn_peer_send(p->peer, PN_POST, "/v1/echo", "application/octet-stream", body, n, 2000,
			    echo_cb, p);
}

struct pn_probe *pn_probe_new(struct pn_loop *l, const char *to, const char *token, size_t small,
			      size_t large, int reps, pn_probe_beside_fn beside, void *beside_arg,
			      char *err, size_t errlen)
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
	p->beside = beside;
	p->beside_arg = beside_arg;
	p->peer = pn_peer_new(l, to, token, err, errlen);
	if (!p->peer)
		goto fail;
	if (send_next(p) != 0) {
		snprintf(err, errlen, "cannot send a probe to %s", to);
		goto fail;
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
	/* What crossed the link during each transfer: its own bytes and the
	 * frames sent beside it. */
	const double bytes[2] = {(double)(p->bytes[0] + p->beside_best[0]),
				 (double)(p->bytes[1] + p->beside_best[1])};
	pn_link_fit(bytes, p->best_ms, latency_ms, bytes_per_ms);
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
		if (p->beside_best[0] || p->beside_best[1])
			json_object_set_new(j, "beside_bytes",
					    json_pack("[I, I]", (json_int_t)p->beside_best[0],
						      (json_int_t)p->beside_best[1]));
	}
	if (p->state < 0)
		json_object_set_new(j, "error", json_string(p->error));
	return j;
}

void pn_probe_echo_route(struct pn_req *q, void *arg)
{
	(void)arg;
	pn_reply_json(q, 200, json_pack("{s:I}", "bytes", (json_int_t)pn_req_body_len(q)));
}
