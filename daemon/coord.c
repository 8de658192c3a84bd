/* The coordinator (see coord.h): runs, the dispatch window, logits,
 * metrics. Every figure is measured where it happens: batch latency here
 * (dispatch to logits), compute and queue wait in each stage, transfer
 * time by the sender of each hop. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "coord.h"
#include "dataset.h"
#include "frame.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "stage.h"

#define MAX_STAGES 32
#define MAX_RANGES (MAX_STAGES + 1)
#define MAX_RUNS 64
#define CONTROL_RETRY_MS 3000

enum run_state {
	RUN_QUEUED,
	RUN_CONFIGURING,
	RUN_RUNNING,
	RUN_FINISHING, /* all logits in, collecting the stages' counters */
	RUN_DONE,
	RUN_FAILED,
	RUN_CANCELLED,
};

/* A stage daemon, for the coordinator's lifetime. */
struct node {
	struct pn_coord *c;
	char address[300];
	struct pn_peer *ctl; /* PUT and DELETE /v1/stage */
	struct pn_peer *stats; /* GET /v1/stage */
	uint64_t cfg_run; /* run of the last PUT sent */
	int gets; /* GETs outstanding */
	int final_wait; /* the run's closing GET is among them */
	uint64_t last_contact_ns;
};

/* A block range of a run: on a node, or on the coordinator (node NULL). */
struct range {
	int first, last;
	struct node *node;
	json_t *status; /* the stage's last counters */
};

struct run {
	struct pn_coord *c;
	int id;
	enum run_state state;
	char *dataset;
	size_t offset, stride, samples;
	int batch, pipelined, window, dtype;
	int nranges;
	struct range ranges[MAX_RANGES];
	char error[768];

	struct pn_dataset *ds;
	struct pn_peer *first_hop; /* frames to the first range, when remote */
	float *logits; /* [samples][classes] */
	int *labels;
	size_t nbatches, next_batch, batches_done, images_done, correct, labelled, duplicates;
	uint8_t *done;
	uint64_t *t_dispatch, *t_done;
	int inflight, pending; /* batches out; control replies awaited */
	uint64_t t_created, t_start, t_first_done, t_last_done, t_end, t_progress;
	size_t first_done_images;
	uint64_t hop_frames, hop_bytes, hop_transfer_ns;
};

struct pn_coord {
	struct pn_loop *loop;
	struct pn_http *http;
	const struct pn_model *m;
	const char *sha;
	struct pn_coord_opts o;
	char advertise[300];
	struct node nodes[MAX_STAGES];
	int nnodes;
	struct pn_stage *local;
	struct run *runs[MAX_RUNS];
	int nruns, next_id;
	struct run *active;
	struct pn_task *dispatcher;
	struct pn_timer *tick;
	int stopping;
};

static void start_next(struct pn_coord *c);
static void finish(struct run *r);

static const char *const state_names[] = {"queued", "running", "running",  "running",
					  "done",   "failed",  "cancelled"};

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* ---- stages ---- */

static void reset_ranges(struct run *r)
{
	for (int i = 0; i < r->nranges; i++) {
		struct range *g = &r->ranges[i];
		if (!g->node)
			pn_stage_reset(r->c->local);
		else
			pn_peer_send(g->node->ctl, PN_DELETE, "/v1/stage", NULL, NULL, 0, 0, NULL,
				     NULL);
	}
}

/* Leaves the active run in a final state and moves on. */
static void end_run(struct run *r, enum run_state state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void end_run(struct run *r, enum run_state state, const char *fmt, ...)
{
	struct pn_coord *c = r->c;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->error, sizeof(r->error), fmt, ap);
		va_end(ap);
	}
	if (r->state != RUN_QUEUED && state != RUN_DONE)
		reset_ranges(r);
	r->state = state;
	r->t_end = r->t_end ? r->t_end : pn_now_ns();
	pn_peer_free(r->first_hop);
	r->first_hop = NULL;
	pn_dataset_free(r->ds);
	r->ds = NULL;
	if (state == RUN_FAILED)
		pn_error("run %d failed: %s", r->id, r->error);
	else
		pn_info("run %d %s: %zu images, %zu batches", r->id, state_names[state],
			r->images_done, r->batches_done);
	if (c->active == r) {
		c->active = NULL;
		pn_task_cancel(c->dispatcher);
		start_next(c);
	}
}

static void stats_cb(const struct pn_reply *rep, void *arg)
{
	struct node *n = arg;
	struct run *r = n->c->active;
	json_t *j = NULL;
	int last = --n->gets == 0 && n->final_wait;
	if (last)
		n->final_wait = 0;
	if (rep->status == 200)
		j = json_loadb((const char *)rep->body, rep->len, 0, NULL);
	if (j)
		n->last_contact_ns = pn_now_ns();
	if (!r || (r->state != RUN_RUNNING && r->state != RUN_FINISHING)) {
		json_decref(j);
		return;
	}
	for (int i = 0; i < r->nranges; i++) {
		if (r->ranges[i].node != n)
			continue;
		json_t *plan = json_object_get(j, "plan");
		json_int_t run = json_integer_value(json_object_get(plan, "run"));
		if (j && run == r->id) {
			json_decref(r->ranges[i].status);
			r->ranges[i].status = json_incref(j);
			json_t *le = json_object_get(j, "last_error");
			if (json_is_string(le) && r->state == RUN_RUNNING) {
				json_decref(j);
				end_run(r, RUN_FAILED, "stage %s: %s", n->address,
					json_string_value(le));
				return;
			}
		}
		break;
	}
	json_decref(j);
	if (r->state == RUN_FINISHING && last && --r->pending == 0)
		end_run(r, RUN_DONE, NULL);
}

/* Asks every remote range for its counters; the local one is read now. */
static void fetch_stats(struct run *r)
{
	for (int i = 0; i < r->nranges; i++) {
		struct range *g = &r->ranges[i];
		if (!g->node) {
			json_decref(g->status);
			g->status = pn_stage_status(r->c->local);
		} else if (r->state == RUN_FINISHING || g->node->gets == 0) {
			if (pn_peer_send(g->node->stats, PN_GET, "/v1/stage", NULL, NULL, 0,
					 CONTROL_RETRY_MS, stats_cb, g->node) != 0)
				continue;
			g->node->gets++;
			if (r->state == RUN_FINISHING) {
				g->node->final_wait = 1;
				r->pending++;
			}
		}
	}
}

/* ---- dispatch ---- */

static void hop_cb(const struct pn_reply *rep, void *arg)
{
	struct run *r = arg;
	if (rep->status == 202) {
		r->hop_frames++;
		r->hop_transfer_ns += rep->transfer_ns;
		pn_task_schedule(r->c->dispatcher);
		return;
	}
	end_run(r, RUN_FAILED, "stage %s did not take a batch: %s%.*s",
		pn_peer_address(r->first_hop), rep->status ? "" : rep->error,
		rep->status ? (int)(rep->len > 300 ? 300 : rep->len) : 0,
		rep->status ? (const char *)rep->body : "");
}

/* Batch `b` as a frame of source images (the first stage preprocesses
 * them); NULL after failing the run. */
static uint8_t *build_frame(struct run *r, size_t b, size_t *len)
{
	size_t first = b * (size_t)r->batch;
	size_t n = r->samples - first < (size_t)r->batch ? r->samples - first : (size_t)r->batch;
	struct pn_frame_header h = {
		.run = (uint64_t)r->id,
		.seq = (uint32_t)b,
		.first_block = 0,
		.dtype = PN_DTYPE_U8,
		.n = (uint32_t)n,
		.h = PN_IMAGE_SIDE,
		.w = PN_IMAGE_SIDE,
		.c = 3,
	};
	*len = pn_frame_size(PN_DTYPE_U8, n, PN_IMAGE_SIDE, PN_IMAGE_SIDE, 3);
	uint8_t *buf = malloc(*len);
	if (!buf) {
		end_run(r, RUN_FAILED, "out of memory for batch %zu", b);
		return NULL;
	}
	char err[256];
	for (size_t i = 0; i < n; i++) {
		size_t rec = r->offset + (first + i) * r->stride;
		if (pn_dataset_get(r->ds, rec, buf + PN_FRAME_HEADER + i * PN_IMAGE_BYTES,
				   &r->labels[first + i], err, sizeof(err)) != 0) {
			free(buf);
			end_run(r, RUN_FAILED, "%s", err);
			return NULL;
		}
	}
	pn_frame_seal(&h, buf);
	return buf;
}

/* One batch per loop turn, so reading the dataset never holds the loop long. */
static void dispatch_cb(void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = c->active;
	if (!r || r->state != RUN_RUNNING || r->inflight >= r->window ||
	    r->next_batch >= r->nbatches)
		return;
	int local = r->ranges[0].node == NULL;
	if (local ? !pn_stage_has_room(c->local) : pn_peer_pending(r->first_hop) > 1)
		return; /* the local stage's steps or hop_cb bring us back */
	size_t b = r->next_batch, len;
	uint8_t *buf = build_frame(r, b, &len);
	if (!buf)
		return;
	r->next_batch++;
	r->inflight++;
	r->t_dispatch[b] = pn_now_ns();
	r->hop_bytes += len;
	if (local) {
		json_t *error;
		int status = pn_stage_submit(c->local, buf, len, &error);
		if (status != 202) {
			char *text = json_dumps(error, JSON_COMPACT);
			json_decref(error);
			end_run(r, RUN_FAILED, "the coordinator's own stage refused batch %zu: %s",
				b, text ? text : "?");
			free(text);
			return;
		}
		r->hop_frames++;
	} else if (pn_peer_send(r->first_hop, PN_POST, "/v1/frames", "application/octet-stream",
				buf, len, (int64_t)c->o.retry_s * 1000, hop_cb, r) != 0) {
		end_run(r, RUN_FAILED, "cannot send batch %zu", b);
		return;
	}
	pn_task_schedule(c->dispatcher);
}

static void begin(struct run *r)
{
	struct pn_coord *c = r->c;
	char err[256];
	if (r->ranges[0].node) {
		r->first_hop = pn_peer_new(c->loop, r->ranges[0].node->address, c->o.token, err,
					   sizeof(err));
		if (!r->first_hop) {
			end_run(r, RUN_FAILED, "%s", err);
			return;
		}
	}
	r->state = RUN_RUNNING;
	r->t_start = r->t_progress = pn_now_ns();
	pn_info("run %d: %zu images in %zu batches, %s, window %d, wire %s", r->id, r->samples,
		r->nbatches, r->pipelined ? "pipelined" : "sequential", r->window,
		pn_dtype_name(r->dtype));
	pn_task_schedule(c->dispatcher);
}

/* ---- configuration ---- */

static void config_cb(const struct pn_reply *rep, void *arg)
{
	struct node *n = arg;
	struct run *r = n->c->active;
	if (!r || r->state != RUN_CONFIGURING || (uint64_t)r->id != n->cfg_run)
		return;
	if (rep->status != 200) {
		json_t *j =
			rep->status ? json_loadb((const char *)rep->body, rep->len, 0, NULL) : NULL;
		const char *detail = json_string_value(json_object_get(j, "detail"));
		end_run(r, RUN_FAILED, "stage %s refused the plan (%d): %s", n->address,
			rep->status,
			detail	      ? detail
			: rep->status ? "?"
				      : rep->error);
		json_decref(j);
		return;
	}
	n->last_contact_ns = pn_now_ns();
	if (--r->pending == 0)
		begin(r);
}

static json_t *stage_config(struct run *r, int i)
{
	struct pn_coord *c = r->c;
	const char *next = i + 1 < r->nranges ? r->ranges[i + 1].node->address : c->advertise;
	return json_pack("{s:i, s:i, s:i, s:i, s:s, s:s, s:s}", "run", r->id, "first",
			 r->ranges[i].first, "last", r->ranges[i].last, "batch", r->batch, "wire",
			 pn_dtype_name(r->dtype), "next", next, "model_sha256", c->sha);
}

static void configure(struct run *r)
{
	struct pn_coord *c = r->c;
	char err[256];
	const char *const *classes = pn_model_classes(c->m);
	int nclasses = pn_model_num_classes(c->m);
	r->state = RUN_CONFIGURING;
	r->ds = pn_dataset_open(r->dataset, classes, nclasses, err, sizeof(err));
	if (!r->ds) {
		end_run(r, RUN_FAILED, "%s", err);
		return;
	}
	size_t count = pn_dataset_count(r->ds);
	if (r->offset >= count) {
		end_run(r, RUN_FAILED, "offset %zu is past the %zu records of %s", r->offset, count,
			r->dataset);
		return;
	}
	size_t avail = (count - r->offset + r->stride - 1) / r->stride;
	if (!r->samples)
		r->samples = avail;
	if (r->samples > avail) {
		end_run(r, RUN_FAILED,
			"%s holds %zu records: offset %zu and stride %zu reach only %zu samples",
			r->dataset, count, r->offset, r->stride, avail);
		return;
	}
	r->nbatches = (r->samples + (size_t)r->batch - 1) / (size_t)r->batch;
	r->logits = calloc(r->samples * (size_t)nclasses, sizeof(float));
	r->labels = calloc(r->samples, sizeof(int));
	r->done = calloc(r->nbatches, 1);
	r->t_dispatch = calloc(r->nbatches, sizeof(uint64_t));
	r->t_done = calloc(r->nbatches, sizeof(uint64_t));
	if (!r->logits || !r->labels || !r->done || !r->t_dispatch || !r->t_done) {
		end_run(r, RUN_FAILED, "out of memory for %zu samples", r->samples);
		return;
	}
	r->pending = 0;
	for (int i = 0; i < r->nranges; i++) {
		json_t *cfg = stage_config(r, i), *reply = NULL;
		struct node *n = r->ranges[i].node;
		if (!n) {
			int status = pn_stage_configure(c->local, cfg, &reply);
			json_decref(cfg);
			if (status != 200) {
				const char *d = json_string_value(json_object_get(reply, "detail"));
				end_run(r, RUN_FAILED, "the coordinator's own stage: %s",
					d ? d : "?");
				json_decref(reply);
				return;
			}
			json_decref(reply);
			continue;
		}
		char *body = json_dumps(cfg, JSON_COMPACT);
		json_decref(cfg);
		n->cfg_run = (uint64_t)r->id;
		if (!body || pn_peer_send(n->ctl, PN_PUT, "/v1/stage", "application/json", body,
					  strlen(body), CONTROL_RETRY_MS, config_cb, n) != 0) {
			end_run(r, RUN_FAILED, "cannot reach stage %s", n->address);
			return;
		}
		r->pending++;
	}
	if (r->pending == 0)
		begin(r);
}

static void start_next(struct pn_coord *c)
{
	if (c->active || c->stopping)
		return;
	for (int i = 0; i < c->nruns; i++)
		if (c->runs[i]->state == RUN_QUEUED) {
			c->active = c->runs[i];
			configure(c->active);
			return;
		}
}

/* ---- logits ---- */

static void finish(struct run *r)
{
	r->t_end = pn_now_ns();
	r->state = RUN_FINISHING;
	r->pending = 0;
	fetch_stats(r);
	if (r->pending == 0)
		end_run(r, RUN_DONE, NULL);
}

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

static void logits_frame(struct pn_req *q, struct pn_coord *c, uint8_t *buf, size_t len)
{
	struct run *r = c->active;
	int classes = pn_model_num_classes(c->m);
	struct pn_frame_header h;
	struct pn_frame_error e;
	if (!r || (r->state != RUN_RUNNING && r->state != RUN_FINISHING)) {
		free(buf);
		pn_reply_error(q, 409, "no run", "no run is taking logits now");
		return;
	}
	struct pn_frame_expect x = {
		.run = (uint64_t)r->id,
		.first_block = pn_model_blocks(c->m),
		.dtype = PN_DTYPE_F32,
		.max_n = r->batch,
		.h = 1,
		.w = 1,
		.c = classes,
	};
	if (pn_frame_validate(buf, len, &x, &h, &e) != 0) {
		free(buf);
		pn_reply_json(q, strcmp(e.field, "run") == 0 ? 409 : 400,
			      json_pack("{s:s, s:s, s:s}", "error", "bad frame", "field", e.field,
					"detail", e.detail));
		return;
	}
	size_t first = (size_t)h.seq * (size_t)r->batch;
	if (h.seq >= r->nbatches ||
	    h.n != (r->samples - first < (size_t)r->batch ? r->samples - first
							  : (size_t)r->batch)) {
		free(buf);
		pn_reply_error(q, 400, "bad frame",
			       "seq %" PRIu32 " with n %" PRIu32 " is not a batch of run %d", h.seq,
			       h.n, r->id);
		return;
	}
	if (r->done[h.seq]) {
		free(buf);
		r->duplicates++;
		pn_reply_json(q, 202, json_pack("{s:b}", "duplicate", 1));
		return;
	}
	uint64_t now = pn_now_ns();
	float *dst = r->logits + first * (size_t)classes;
	pn_frame_decode(&h, buf + PN_FRAME_HEADER, NULL, dst);
	free(buf);
	for (size_t i = 0; i < h.n; i++) {
		int label = r->labels[first + i];
		if (label < 0)
			continue;
		r->labelled++;
		r->correct += argmax(dst + i * (size_t)classes, classes) == label;
	}
	r->done[h.seq] = 1;
	r->t_done[h.seq] = now;
	if (!r->t_first_done) {
		r->t_first_done = now;
		r->first_done_images = h.n;
	}
	r->t_last_done = r->t_progress = now;
	r->batches_done++;
	r->images_done += h.n;
	r->inflight--;
	pn_reply_json(q, 202, json_pack("{s:b}", "duplicate", 0));
	if (r->batches_done == r->nbatches)
		finish(r);
	else
		pn_task_schedule(c->dispatcher);
}

static void frames_route(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	size_t len;
	uint8_t *buf = pn_req_body_take(q, &len);
	if (!buf && len) {
		pn_reply_error(q, 503, "out of memory", "cannot hold the frame");
		return;
	}
	/* Logits (first block = blocks) are ours; anything else is for
	 * the coordinator's own stage, which validates it. */
	if (len >= 22 && (buf[20] | buf[21] << 8) == pn_model_blocks(c->m)) {
		logits_frame(q, c, buf, len);
		return;
	}
	json_t *error;
	int status = pn_stage_submit(c->local, buf, len, &error);
	if (status == 503)
		pn_reply_header(q, "Retry-After", "1");
	pn_reply_json(q, status, status == 202 ? json_pack("{s:b}", "queued", 1) : error);
}

/* ---- the 1 s tick: counters and stall watch ---- */

static void tick_cb(void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = c->active;
	pn_timer_arm(c->tick, 1000);
	if (!r || r->state != RUN_RUNNING)
		return;
	if (pn_now_ns() - r->t_progress > (uint64_t)c->o.stall_s * 1000000000u) {
		end_run(r, RUN_FAILED, "no batch finished for %d s (stall_s)", c->o.stall_s);
		return;
	}
	fetch_stats(r);
}

/* ---- requests ---- */

/* Split points that balance MACs over `k` ranges (minimise the largest). */
static int auto_split(const struct pn_model *m, int k, int *points)
{
	int nb = pn_model_blocks(m); /* the last one includes the head */
	uint64_t pre[64 + 1] = {0};
	for (int i = 0; i < nb; i++)
		pre[i + 1] = pre[i] + pn_model_block_macs(m, i);
	/* best[j][i]: the smallest bottleneck of blocks [0, i) in j ranges */
	static uint64_t best[MAX_RANGES + 1][65];
	static int cut[MAX_RANGES + 1][65];
	for (int i = 0; i <= nb; i++)
		best[1][i] = pre[i];
	for (int j = 2; j <= k; j++)
		for (int i = j; i <= nb; i++) {
			best[j][i] = UINT64_MAX;
			for (int s = j - 1; s < i; s++) {
				uint64_t v = best[j - 1][s] > pre[i] - pre[s] ? best[j - 1][s]
									      : pre[i] - pre[s];
				if (v < best[j][i]) {
					best[j][i] = v;
					cut[j][i] = s;
				}
			}
		}
	for (int j = k, i = nb; j > 1; j--) {
		i = cut[j][i];
		points[j - 2] = i;
	}
	return k - 1;
}

static const char *const run_keys[] = {"dataset", "offset", "stride",	    "samples", "batch_size",
				       "mode",	  "split",  "max_inflight", "wire",    NULL};

/* A run from a POST body; NULL with a message. */
static struct run *parse_run(struct pn_coord *c, json_t *j, char *err, size_t errlen)
{
	long long offset, stride, samples, batch, window;
	const char *dataset, *mode, *wire;
	if (pn_json_known(j, run_keys, err, errlen) ||
	    pn_json_str(j, "dataset", NULL, &dataset, err, errlen) ||
	    pn_json_int(j, "offset", 0, INT32_MAX, 0, &offset, err, errlen) ||
	    pn_json_int(j, "stride", 1, INT32_MAX, 1, &stride, err, errlen) ||
	    pn_json_int(j, "samples", 0, INT32_MAX, 0, &samples, err, errlen) ||
	    pn_json_int(j, "batch_size", 1, c->o.max_batch, 8, &batch, err, errlen) ||
	    pn_json_str(j, "mode", "pipelined", &mode, err, errlen) ||
	    pn_json_int(j, "max_inflight", 0, 1024, 0, &window, err, errlen) ||
	    pn_json_str(j, "wire", "f32", &wire, err, errlen))
		return NULL;
	int pipelined = strcmp(mode, "pipelined") == 0;
	if (!pipelined && strcmp(mode, "sequential") != 0) {
		snprintf(err, errlen, "mode must be \"pipelined\" or \"sequential\"");
		return NULL;
	}
	int dtype = pn_dtype_parse(wire);
	if (dtype != PN_DTYPE_F32 && dtype != PN_DTYPE_F16) {
		snprintf(err, errlen, "wire must be \"f32\" or \"f16\"");
		return NULL;
	}
	int points[MAX_RANGES], npoints = 0, blocks = pn_model_blocks(c->m);
	json_t *split = json_object_get(j, "split");
	if (c->nnodes > blocks) {
		snprintf(err, errlen, "%d stages for %d blocks: some would have nothing to do",
			 c->nnodes, blocks);
		return NULL;
	}
	if (!split || (json_is_string(split) && strcmp(json_string_value(split), "auto") == 0)) {
		npoints = c->nnodes ? auto_split(c->m, c->nnodes, points) : 0;
	} else if (json_is_array(split) && json_array_size(split) <= (size_t)c->nnodes) {
		size_t i;
		json_t *v;
		json_array_foreach(split, i, v)
		{
			json_int_t p = json_integer_value(v);
			if (!json_is_integer(v) || p < 1 || p >= blocks ||
			    (i && p <= points[i - 1])) {
				snprintf(err, errlen,
					 "split must list increasing block numbers from 1 to %d",
					 blocks - 1);
				return NULL;
			}
			points[npoints++] = (int)p;
		}
	} else {
		snprintf(err, errlen,
			 "split must be \"auto\" or a list of at most %d block numbers", c->nnodes);
		return NULL;
	}
	int nranges = npoints + 1;
	if (nranges < c->nnodes || nranges > c->nnodes + 1 || nranges > MAX_RANGES) {
		snprintf(err, errlen,
			 "split gives %d block ranges for %d stages: give %d split points (or %d "
			 "to have the coordinator compute the first range)",
			 nranges, c->nnodes, c->nnodes - 1, c->nnodes);
		return NULL;
	}
	struct run *r = calloc(1, sizeof(*r));
	if (!r || !(r->dataset = strdup(dataset))) {
		free(r);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->c = c;
	r->offset = (size_t)offset;
	r->stride = (size_t)stride;
	r->samples = (size_t)samples;
	r->batch = (int)batch;
	r->pipelined = pipelined;
	r->dtype = dtype;
	r->nranges = nranges;
	int local = nranges - c->nnodes; /* 1: the coordinator takes the first range */
	for (int i = 0; i < nranges; i++) {
		r->ranges[i].first = i ? points[i - 1] : 0;
		r->ranges[i].last = i < npoints ? points[i] : blocks;
		r->ranges[i].node = i < local ? NULL : &c->nodes[i - local];
	}
	r->window = !pipelined ? 1 : window ? (int)window : nranges + 1;
	r->t_created = pn_now_ns();
	return r;
}

static void run_free(struct run *r)
{
	if (!r)
		return;
	pn_peer_free(r->first_hop);
	pn_dataset_free(r->ds);
	for (int i = 0; i < r->nranges; i++)
		json_decref(r->ranges[i].status);
	free(r->dataset);
	free(r->logits);
	free(r->labels);
	free(r->done);
	free(r->t_dispatch);
	free(r->t_done);
	free(r);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static json_t *latency_json(const struct run *r)
{
	uint64_t *lat = r->batches_done ? malloc(r->batches_done * sizeof(uint64_t)) : NULL;
	if (!lat)
		return json_null();
	size_t n = 0;
	uint64_t sum = 0;
	for (size_t b = 0; b < r->nbatches; b++)
		if (r->done[b]) {
			lat[n] = r->t_done[b] - r->t_dispatch[b];
			sum += lat[n++];
		}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	json_t *j =
		json_pack("{s:f, s:f, s:f, s:f, s:f}", "p50", ms(lat[(n - 1) * 50 / 100]), "p95",
			  ms(lat[(n - 1) * 95 / 100]), "p99", ms(lat[(n - 1) * 99 / 100]), "mean",
			  ms(sum / n), "max", ms(lat[n - 1]));
	free(lat);
	return j;
}

static uint64_t counter(json_t *status, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(status, key));
}

static json_t *ranges_json(const struct run *r, double wall_s, int *bottleneck)
{
	const struct pn_model *m = r->c->m;
	uint64_t macs = 0, params = 0;
	for (int b = 0; b < pn_model_blocks(m); b++) {
		macs += pn_model_block_macs(m, b);
		params += pn_model_block_params(m, b);
	}
	json_t *arr = json_array();
	double worst = -1;
	*bottleneck = -1;
	for (int i = 0; i < r->nranges; i++) {
		const struct range *g = &r->ranges[i];
		uint64_t rm = 0, rp = 0;
		for (int b = g->first; b < g->last; b++) {
			rm += pn_model_block_macs(m, b);
			rp += pn_model_block_params(m, b);
		}
		uint64_t frames = counter(g->status, "frames_in");
		uint64_t compute = counter(g->status, "compute_ns");
		uint64_t acked = counter(g->status, "out_acked");
		double per_batch = frames ? ms(compute) / (double)frames : 0;
		json_t *s = json_pack(
			"{s:s, s:i, s:i, s:f, s:f, s:I, s:f, s:f, s:f, s:f, s:I, s:I, s:f, s:I, "
			"s:I}",
			"address", g->node ? g->node->address : "coordinator", "first", g->first,
			"last", g->last, "params_frac", params ? (double)rp / (double)params : 0,
			"macs_frac", macs ? (double)rm / (double)macs : 0, "frames",
			(json_int_t)frames, "compute_ms", ms(compute), "compute_ms_per_batch",
			per_batch, "queue_wait_ms_per_batch",
			frames ? ms(counter(g->status, "queue_wait_ns")) / (double)frames : 0,
			"busy", wall_s > 0 ? ms(compute) / 1000 / wall_s : 0, "bytes_in",
			(json_int_t)counter(g->status, "bytes_in"), "bytes_out",
			(json_int_t)counter(g->status, "bytes_out"), "transfer_ms_per_frame",
			acked ? ms(counter(g->status, "out_transfer_ns")) / (double)acked : 0,
			"rejected_busy", (json_int_t)counter(g->status, "rejected_busy"),
			"out_failed", (json_int_t)counter(g->status, "out_failed"));
		json_object_set_new(s, "max_step_ms",
				    json_real(ms(counter(g->status, "max_step_ns"))));
		json_array_append_new(arr, s);
		if (per_batch > worst) {
			worst = per_batch;
			*bottleneck = i;
		}
	}
	return arr;
}

static json_t *run_json(const struct run *r)
{
	uint64_t end = r->t_end ? r->t_end : pn_now_ns();
	double wall = r->t_start ? (double)(end - r->t_start) / 1e9 : 0;
	double span = r->t_last_done > r->t_first_done
			      ? (double)(r->t_last_done - r->t_first_done) / 1e9
			      : 0;
	double done_wall = r->t_last_done ? (double)(r->t_last_done - r->t_start) / 1e9 : 0;
	json_t *split = json_array();
	for (int i = 1; i < r->nranges; i++)
		json_array_append_new(split, json_integer(r->ranges[i].first));
	int bottleneck;
	json_t *ranges = ranges_json(r, wall, &bottleneck);
	json_t *j = json_pack(
		"{s:i, s:s, s:s, s:I, s:I, s:I, s:i, s:s, s:o, s:i, s:s, s:I, s:I, s:I, s:I, s:I}",
		"id", r->id, "state", state_names[r->state], "dataset", r->dataset, "offset",
		(json_int_t)r->offset, "stride", (json_int_t)r->stride, "samples",
		(json_int_t)r->samples, "batch_size", r->batch, "mode",
		r->pipelined ? "pipelined" : "sequential", "split", split, "max_inflight",
		r->window, "wire", pn_dtype_name(r->dtype), "images_done",
		(json_int_t)r->images_done, "batches_done", (json_int_t)r->batches_done, "batches",
		(json_int_t)r->nbatches, "correct", (json_int_t)r->correct, "duplicates",
		(json_int_t)r->duplicates);
	json_object_set_new(j, "accuracy",
			    r->labelled ? json_real((double)r->correct / (double)r->labelled)
					: json_null());
	json_object_set_new(j, "elapsed_s", json_real(wall));
	json_object_set_new(j, "throughput_img_s",
			    json_real(done_wall > 0 ? (double)r->images_done / done_wall : 0));
	json_object_set_new(
		j, "steady_img_s",
		json_real(span > 0 ? (double)(r->images_done - r->first_done_images) / span : 0));
	json_object_set_new(j, "latency_ms", latency_json(r));
	json_object_set_new(j, "stages", ranges);
	json_object_set_new(j, "bottleneck",
			    bottleneck >= 0 ? json_integer(bottleneck) : json_null());
	json_object_set_new(
		j, "input_hop",
		json_pack("{s:s, s:I, s:I, s:f}", "to",
			  r->ranges[0].node ? r->ranges[0].node->address : "coordinator", "frames",
			  (json_int_t)r->hop_frames, "bytes", (json_int_t)r->hop_bytes,
			  "transfer_ms_per_frame",
			  r->hop_frames ? ms(r->hop_transfer_ns) / (double)r->hop_frames : 0));
	json_object_set_new(j, "error", r->error[0] ? json_string(r->error) : json_null());
	return j;
}

static struct run *find_run(struct pn_coord *c, const char *id)
{
	char *end;
	long v = strtol(id, &end, 10);
	if (*end || end == id)
		return NULL;
	for (int i = 0; i < c->nruns; i++)
		if (c->runs[i]->id == v)
			return c->runs[i];
	return NULL;
}

/* Keeps at most MAX_RUNS: the oldest finished run makes room. */
static int make_room(struct pn_coord *c)
{
	if (c->nruns < MAX_RUNS)
		return 0;
	for (int i = 0; i < c->nruns; i++)
		if (c->runs[i]->state >= RUN_DONE) {
			run_free(c->runs[i]);
			memmove(&c->runs[i], &c->runs[i + 1],
				(size_t)(c->nruns - i - 1) * sizeof(c->runs[0]));
			c->nruns--;
			return 0;
		}
	return -1;
}

static void runs_post(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	char err[256];
	json_t *j = pn_req_json(q);
	if (!j)
		return;
	struct run *r = parse_run(c, j, err, sizeof(err));
	json_decref(j);
	if (!r) {
		pn_reply_error(q, 400, "bad run", "%s", err);
		return;
	}
	if (make_room(c) != 0) {
		run_free(r);
		pn_reply_header(q, "Retry-After", "5");
		pn_reply_error(q, 503, "too many runs", "%d runs are queued or running", MAX_RUNS);
		return;
	}
	r->id = ++c->next_id;
	c->runs[c->nruns++] = r;
	pn_info("run %d: %s, offset %zu, stride %zu, samples %zu, batch %d", r->id, r->dataset,
		r->offset, r->stride, r->samples, r->batch);
	start_next(c);
	char loc[64];
	snprintf(loc, sizeof(loc), "/api/v1/runs/%d", r->id);
	pn_reply_header(q, "Location", loc);
	pn_reply_json(q, 201, run_json(r));
}

static void runs_list(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	json_t *arr = json_array();
	for (int i = 0; i < c->nruns; i++)
		json_array_append_new(arr, run_json(c->runs[i]));
	pn_reply_json(q, 200, json_pack("{s:o}", "runs", arr));
}

static void run_get(struct pn_req *q, void *arg)
{
	struct run *r = find_run(arg, pn_req_arg(q, 0));
	if (!r)
		pn_reply_error(q, 404, "no such run", "run %s does not exist", pn_req_arg(q, 0));
	else
		pn_reply_json(q, 200, run_json(r));
}

static void run_delete(struct pn_req *q, void *arg)
{
	struct run *r = find_run(arg, pn_req_arg(q, 0));
	if (!r) {
		pn_reply_error(q, 404, "no such run", "run %s does not exist", pn_req_arg(q, 0));
		return;
	}
	if (r->state < RUN_DONE)
		end_run(r, RUN_CANCELLED, "cancelled by request");
	pn_reply_json(q, 200, run_json(r));
}

static void run_logits(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = find_run(c, pn_req_arg(q, 0));
	if (!r)
		pn_reply_error(q, 404, "no such run", "run %s does not exist", pn_req_arg(q, 0));
	else if (r->state != RUN_DONE)
		pn_reply_error(q, 409, "not done", "run %d is %s; logits come when it is done",
			       r->id, state_names[r->state]);
	else
		pn_reply_bytes(q, 200, "application/octet-stream", r->logits,
			       r->samples * (size_t)pn_model_num_classes(c->m) * sizeof(float));
}

static const struct pn_route routes[] = {
	{PN_POST, "/v1/frames", frames_route, 1},
	{PN_POST, "/api/v1/runs", runs_post, 1},
	{PN_GET, "/api/v1/runs", runs_list, 0},
	{PN_GET, "/api/v1/runs/*", run_get, 0},
	{PN_DELETE, "/api/v1/runs/*", run_delete, 1},
	{PN_GET, "/api/v1/runs/*/logits", run_logits, 0},
};

const struct pn_route *pn_coord_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

/* ---- life ---- */

struct pn_coord *pn_coord_new(struct pn_loop *l, struct pn_http *http, const struct pn_model *m,
			      const char *model_path, const char *model_sha256,
			      const struct pn_coord_opts *o, char *err, size_t errlen)
{
	struct pn_coord *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->loop = l;
	c->http = http;
	c->m = m;
	c->sha = model_sha256;
	c->o = *o;
	snprintf(c->advertise, sizeof(c->advertise), "%s", o->advertise);
	const char *p = o->stages ? o->stages : "";
	while (*p) {
		size_t n = strcspn(p, ",");
		char addr[300];
		if (n == 0 || n >= sizeof(addr) || c->nnodes == MAX_STAGES) {
			snprintf(err, errlen, "stages: \"%s\" is not a list of up to %d HOST:PORT",
				 o->stages, MAX_STAGES);
			goto fail;
		}
		memcpy(addr, p, n);
		addr[n] = '\0';
		struct node *nd = &c->nodes[c->nnodes];
		nd->c = c;
		snprintf(nd->address, sizeof(nd->address), "%s", addr);
		nd->ctl = pn_peer_new(l, addr, o->token, err, errlen);
		nd->stats = nd->ctl ? pn_peer_new(l, addr, o->token, err, errlen) : NULL;
		if (!nd->stats) {
			pn_peer_free(nd->ctl);
			goto fail;
		}
		c->nnodes++;
		p += n + (p[n] == ',');
	}
	struct pn_stage_opts so = {
		.queue_depth = o->queue_depth,
		.out_depth = o->out_depth,
		.retry_s = o->retry_s,
		.max_batch = o->max_batch,
		.token = o->token,
	};
	c->local = pn_stage_new(l, NULL, m, model_path, model_sha256, &so);
	c->dispatcher = pn_task_new(l, dispatch_cb, c);
	c->tick = pn_timer_new(l, tick_cb, c);
	if (!c->local || !c->dispatcher || !c->tick) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Logits frames of the largest batch; the own stage's input frames
	 * arrive by function call, not over HTTP. */
	pn_http_set_max_body(http, pn_frame_size(PN_DTYPE_F32, (size_t)o->max_batch, 1, 1,
						 (size_t)pn_model_num_classes(m)));
	pn_timer_arm(c->tick, 1000);
	return c;
fail:
	pn_coord_free(c);
	return NULL;
}

void pn_coord_stop(struct pn_coord *c)
{
	c->stopping = 1;
	for (int i = 0; i < c->nruns; i++)
		if (c->runs[i]->state < RUN_DONE)
			end_run(c->runs[i], RUN_CANCELLED, "the coordinator is stopping");
	pn_stage_stop(c->local);
}

void pn_coord_free(struct pn_coord *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nruns; i++)
		run_free(c->runs[i]);
	for (int i = 0; i < c->nnodes; i++) {
		pn_peer_free(c->nodes[i].ctl);
		pn_peer_free(c->nodes[i].stats);
	}
	pn_stage_free(c->local);
	pn_task_free(c->dispatcher);
	pn_timer_free(c->tick);
	free(c);
}
