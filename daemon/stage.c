/* A stage (see stage.h): a bounded queue of frames, one plan, and a job
 * that computes one block of one image per loop turn. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "dataset.h"
#include "frame.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "probe.h"
#include "settings.h"
#include "stage.h"

struct qitem {
	uint8_t *buf;
	size_t len;
	struct pn_frame_header h;
	uint64_t t_arrive;
};

struct counters {
	uint64_t frames_in, bytes_in, frames_out, bytes_out;
	uint64_t compute_ns, queue_wait_ns, out_transfer_ns;
	uint64_t out_acked_bytes; /* the bytes of the out_acked frames */
	uint64_t out_acked, out_failed, out_stale, out_dropped, rejected_busy, rejected_bad;
	uint64_t out_unauthorized; /* frames the next node refused with 401 */
	/* The longest loop turn spent on our own work: a compute step with
	 * the frame conversions around it, or taking in a frame (its check).
	 * Frames and replies of other nodes may wait behind such a turn. */
	uint64_t max_step_ns;
	/* Wall time in the kernels and outside them by kind, and the
	 * process's CPU since the run configured it (pn_stage_status). Wall
	 * time because reading the CPU clock is a system call, too dear to
	 * make around every block; on a core of its own the two agree. */
	uint64_t kernel_ns, preprocess_ns, convert_ns, crc_ns, frame_ns;
	uint64_t cpu_at_start_ns;
	uint64_t bulk_at_start; /* pn_http_bulk_bytes then */
};

/* Block times for one batch size, measured by a resumable job (one block
 * of one image per loop turn, like a frame) as pn_model_profile does:
 * a warm-up pass, then the median of `iters` passes per block. */
#define PROFILE_CACHE 8
#define PROFILE_MAX_ITERS 15

struct profile {
	int batch, iters;
	double *block_ms; /* [blocks]; NULL while measuring */
	double total_ms;
	double frame_ns_per_byte; /* pn_frame_cpu_ns_per_byte then */
};

struct profiler {
	struct pn_plan *plan; /* the job in progress, or NULL */
	int batch, iters, pass; /* pass 0 is the warm-up */
	int prepped; /* source images of this pass preprocessed so far */
	double *samples; /* [iters][blocks] */
	struct pn_task *step;
	uint8_t rgb[PN_IMAGE_BYTES]; /* the source image of every pass */
	struct profile done[PROFILE_CACHE];
	unsigned generation; /* bumped when `done` is dropped */
	int next; /* the cache slot replaced next */
};

struct pn_stage {
	struct pn_loop *loop;
	struct pn_http *http;
	const struct pn_model *model;
	const char *model_path;
	const char *sha;
	struct pn_stage_opts o;
	int stopping;

	/* The current run; plan is NULL until configured. */
	struct pn_plan *plan;
	int wire, out_dtype;
	/* i8 out: an int8 model's quantisation at the cut, else scale 0
	 * (each frame's own range). */
	float out_scale;
	int32_t out_zero_point;
	char next[300];
	struct pn_peer *peer;
	struct pn_frame_expect expect;

	struct qitem *queue; /* ring of o.queue_depth */
	int qhead, qlen;

	/* The job in progress: source images still to preprocess (one a
	 * turn, from job_images), then the plan's steps. */
	int busy;
	struct pn_frame_header job;
	uint8_t *job_images;
	uint32_t job_prepped;
	struct pn_task *step;

	struct counters c;
	char last_error[512];
	struct profiler prof;
	double slowdown; /* debug: compute takes this many times as long */
	int drop; /* debug: output frames still to throw away */
	struct pn_probe *probe; /* the last link probe asked for */
	long long probe_id; /* and the asker's id of that measurement */
};

static void step_cb(void *arg);
static void profile_step(void *arg);

struct pn_stage *pn_stage_new(struct pn_loop *l, struct pn_http *http, const struct pn_model *m,
			      const char *model_path, const char *model_sha256,
			      const struct pn_stage_opts *o)
{
	struct pn_stage *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = l;
	s->http = http;
	s->model = m;
	s->model_path = model_path;
	s->sha = model_sha256;
	s->o = *o;
	s->slowdown = pn_config_slowdown();
	s->queue = calloc((size_t)o->queue_depth, sizeof(*s->queue));
	s->step = pn_task_new(l, step_cb, s);
	s->prof.step = pn_task_new(l, profile_step, s);
	if (!s->queue || !s->step || !s->prof.step) {
		pn_stage_free(s);
		return NULL;
	}
	return s;
}

void pn_stage_reset(struct pn_stage *s)
{
	pn_task_cancel(s->step);
	s->busy = 0;
	free(s->job_images);
	s->job_images = NULL;
	while (s->qlen) {
		free(s->queue[s->qhead].buf);
		s->qhead = (s->qhead + 1) % s->o.queue_depth;
		s->qlen--;
	}
	s->qhead = 0;
	pn_peer_free(s->peer);
	s->peer = NULL;
	pn_plan_free(s->plan);
	s->plan = NULL;
}

void pn_stage_free(struct pn_stage *s)
{
	if (!s)
		return;
	if (s->queue)
		pn_stage_reset(s);
	pn_task_free(s->step);
	pn_task_free(s->prof.step);
	pn_plan_free(s->prof.plan);
	pn_probe_free(s->probe);
	free(s->prof.samples);
	for (int i = 0; i < PROFILE_CACHE; i++)
		free(s->prof.done[i].block_ms);
	free(s->queue);
	free(s);
}

void pn_stage_stop(struct pn_stage *s)
{
	s->stopping = 1;
	pn_stage_reset(s);
}

int pn_stage_has_room(const struct pn_stage *s)
{
	return s->plan && !s->stopping && s->qlen < s->o.queue_depth;
}

static json_t *shape_json(struct pn_shape sh)
{
	return json_pack("[i, i, i]", sh.h, sh.w, sh.c);
}

static json_t *plan_json(const struct pn_stage *s)
{
	return json_pack("{s:I, s:i, s:i, s:i, s:i, s:s, s:s, s:s, s:o, s:o, s:I, s:s}", "run",
			 (json_int_t)s->expect.run, "epoch", s->expect.epoch, "first",
			 pn_plan_first(s->plan), "last", pn_plan_last(s->plan), "batch",
			 pn_plan_batch(s->plan), "wire", pn_dtype_name(s->wire), "next", s->next,
			 "in_dtype", pn_dtype_name(s->expect.dtype), "in",
			 shape_json(pn_plan_in_shape(s->plan)), "out",
			 shape_json(pn_plan_out_shape(s->plan)), "max_frame",
			 (json_int_t)pn_frame_size(s->expect.dtype, (size_t)s->expect.max_n,
						   (size_t)s->expect.h, (size_t)s->expect.w,
						   (size_t)s->expect.c),
			 "model_sha256", s->sha);
}

static json_t *error_json(const char *error, const char *detail)
{
	return json_pack("{s:s, s:s}", "error", error, "detail", detail);
}

static const char *const config_keys[] = {"run",  "epoch", "first",	   "last", "batch",
					  "wire", "next",  "model_sha256", NULL};

int pn_stage_configure(struct pn_stage *s, json_t *cfg, json_t **reply)
{
	char err[256], msg[512];
	long long run, epoch, first, last, batch;
	const char *wire, *next, *sha;
	int blocks = pn_model_blocks(s->model);
	if (s->stopping) {
		*reply = error_json("shutting down", "this stage is stopping");
		return 503;
	}
	if (pn_json_known(cfg, config_keys, err, sizeof(err)) ||
	    pn_json_int(cfg, "run", 1, INT64_MAX, -1, &run, err, sizeof(err)) ||
	    pn_json_int(cfg, "epoch", 0, 255, 0, &epoch, err, sizeof(err)) ||
	    pn_json_int(cfg, "first", 0, blocks - 1, -1, &first, err, sizeof(err)) ||
	    pn_json_int(cfg, "last", first + 1, blocks, -1, &last, err, sizeof(err)) ||
	    pn_json_int(cfg, "batch", 1, s->o.max_batch, -1, &batch, err, sizeof(err)) ||
	    pn_json_str(cfg, "wire", "f32", &wire, err, sizeof(err)) ||
	    pn_json_str(cfg, "next", NULL, &next, err, sizeof(err)) ||
	    pn_json_str(cfg, "model_sha256", NULL, &sha, err, sizeof(err))) {
		*reply = error_json("bad configuration", err);
		return 400;
	}
	int dtype = pn_dtype_parse(wire);
	if (!pn_wire_dtype(dtype)) {
		*reply = error_json("bad configuration", PN_WIRE_CHOICES);
		return 400;
	}
	if (strcmp(sha, s->sha) != 0) {
		snprintf(msg, sizeof(msg),
			 "the coordinator's model has SHA-256 %.64s but this stage's model %s has "
			 "%s",
			 sha, s->model_path, s->sha);
		*reply = error_json("model mismatch", msg);
		return 409;
	}
	if (s->plan && s->expect.run == (uint64_t)run && s->expect.epoch == epoch &&
	    pn_plan_first(s->plan) == first && pn_plan_last(s->plan) == last &&
	    pn_plan_batch(s->plan) == batch && s->wire == dtype && strcmp(s->next, next) == 0) {
		*reply = plan_json(s);
		return 200;
	}
	struct pn_plan *plan =
		pn_plan_new(s->model, (int)first, (int)last, (int)batch, err, sizeof(err));
	if (!plan) {
		*reply = error_json("bad configuration", err);
		return 400;
	}
	/* An int8 model's integers cross between int8 plans unconverted. */
	if (dtype == PN_DTYPE_I8 && strcmp(pn_model_dtype(s->model), "int8") == 0 &&
	    pn_plan_set_i8(plan, first > 0, last < blocks, err, sizeof(err)) != 0) {
		pn_plan_free(plan);
		*reply = error_json("out of memory", err);
		return 503;
	}
	struct pn_peer *peer = pn_peer_new(s->loop, next, s->o.token, err, sizeof(err));
	if (!peer) {
		pn_plan_free(plan);
		snprintf(msg, sizeof(msg), "next: %s", err);
		*reply = error_json("bad configuration", msg);
		return 400;
	}
	pn_stage_reset(s);
	s->plan = plan;
	s->peer = peer;
	snprintf(s->next, sizeof(s->next), "%s", next);
	/* Block 0 takes source images (u8 records); the others activations. */
	struct pn_shape in = first == 0 ? (struct pn_shape){PN_IMAGE_SIDE, PN_IMAGE_SIDE, 3}
					: pn_plan_in_shape(plan);
	s->expect = (struct pn_frame_expect){
		.run = (uint64_t)run,
		.epoch = (int)epoch,
		.first_block = (int)first,
		.dtype = first == 0 ? PN_DTYPE_U8 : dtype,
		.max_n = (int)batch,
		.h = in.h,
		.w = in.w,
		.c = in.c,
	};
	/* An int8 model's i8 frames carry its own quantisation both ways. */
	if (dtype == PN_DTYPE_I8 && first > 0)
		pn_model_act_quant(s->model, (int)first, &s->expect.scale, &s->expect.zero_point);
	s->out_scale = 0;
	s->out_zero_point = 0;
	if (dtype == PN_DTYPE_I8)
		pn_model_act_quant(s->model, (int)last, &s->out_scale, &s->out_zero_point);
	s->wire = dtype;
	s->out_dtype = last == blocks ? PN_DTYPE_F32 : dtype;
	memset(&s->c, 0, sizeof(s->c));
	s->c.cpu_at_start_ns = pn_cpu_ns();
	s->c.bulk_at_start = s->http ? pn_http_bulk_bytes(s->http) : 0;
	s->last_error[0] = '\0';
	if (s->http)
		pn_http_set_max_body(s->http,
				     pn_frame_size(s->expect.dtype, (size_t)batch, (size_t)in.h,
						   (size_t)in.w, (size_t)in.c));
	pn_info("run %lld epoch %lld: blocks [%lld, %lld), batch %lld, wire %s, next %s", run,
		epoch, first, last, batch, wire, next);
	*reply = plan_json(s);
	return 200;
}

static void out_cb(const struct pn_reply *rep, void *arg)
{
	struct pn_stage *s = arg;
	if (rep->status == 202 || rep->status == 200) {
		s->c.out_acked++;
		s->c.out_acked_bytes += rep->sent;
		s->c.out_transfer_ns += rep->transfer_ns;
	} else if (rep->status == 409) {
		/* The next node has moved on to another run or plan epoch:
		 * this frame is stale, not an error of ours. */
		s->c.out_stale++;
	} else if (rep->status == 401) {
		/* Not congestion: sending again would be refused again. The
		 * coordinator reads this from GET /v1/stage and stops using us. */
		s->c.out_failed++;
		s->c.out_unauthorized++;
		snprintf(s->last_error, sizeof(s->last_error),
			 "token mismatch: %.200s refused a frame with 401: this stage's token is "
			 "not the one %.200s expects",
			 s->next, s->next);
		if (s->c.out_unauthorized == 1)
			pn_error("%s", s->last_error);
	} else {
		s->c.out_failed++;
		snprintf(s->last_error, sizeof(s->last_error),
			 "%s refused or did not take a frame: %s%.*s", s->next,
			 rep->status ? "" : rep->error,
			 rep->status ? (int)(rep->len > 200 ? 200 : rep->len) : 0,
			 rep->status ? (const char *)rep->body : "");
		pn_error("%s", s->last_error);
	}
	if (!s->busy)
		pn_task_schedule(s->step);
}

/* Starts the next queued frame when there is one and room to send its
 * result; the step task then runs the plan. */
static void start_job(struct pn_stage *s)
{
	if (s->busy || !s->qlen || !s->plan || s->stopping ||
	    pn_peer_pending(s->peer) >= (size_t)s->o.out_depth)
		return;
	struct qitem *it = &s->queue[s->qhead];
	s->qhead = (s->qhead + 1) % s->o.queue_depth;
	s->qlen--;
	uint64_t now = pn_now_ns();
	s->c.queue_wait_ns += now - it->t_arrive;
	s->job = it->h;
	s->busy = 1;
	if (it->h.dtype == PN_DTYPE_U8) {
		s->job_images = it->buf; /* preprocessed by the next steps */
		s->job_prepped = 0;
	} else if (it->h.dtype == PN_DTYPE_I8 && pn_plan_input_i8(s->plan)) {
		/* The model's own integers: validated against its parameters. */
		memcpy(pn_plan_input_i8(s->plan), it->buf + PN_FRAME_HEADER + PN_FRAME_I8_PARAMS,
		       it->h.payload_len - PN_FRAME_I8_PARAMS);
		free(it->buf);
		pn_plan_start(s->plan, (int)it->h.n);
	} else {
		pn_frame_decode(&it->h, it->buf + PN_FRAME_HEADER,
				pn_model_ops(s->model)->f16_to_f32, pn_plan_input(s->plan));
		free(it->buf);
		pn_plan_start(s->plan, (int)it->h.n);
	}
	it->buf = NULL;
	s->c.convert_ns += pn_now_ns() - now;
}

/* One source image into the plan's input; the plan starts after the last. */
static void preprocess_one(struct pn_stage *s)
{
	size_t floats = pn_shape_floats(pn_plan_in_shape(s->plan));
	uint32_t i = s->job_prepped++;
	uint64_t t0 = pn_now_ns();
	pn_model_preprocess(s->model, s->job_images + PN_FRAME_HEADER + (size_t)i * PN_IMAGE_BYTES,
			    pn_plan_input(s->plan) + i * floats);
	s->c.preprocess_ns += pn_now_ns() - t0;
	if (s->job_prepped == s->job.n) {
		free(s->job_images);
		s->job_images = NULL;
		pn_plan_start(s->plan, (int)s->job.n);
	}
}

static void finish_job(struct pn_stage *s)
{
	struct pn_shape out = pn_plan_out_shape(s->plan);
	struct pn_frame_header h = {
		.run = s->job.run,
		.seq = s->job.seq,
		.epoch = s->job.epoch,
		.first_block = (uint16_t)pn_plan_last(s->plan),
		.dtype = (uint8_t)s->out_dtype,
		.n = s->job.n,
		.h = (uint32_t)out.h,
		.w = (uint32_t)out.w,
		.c = (uint32_t)out.c,
		.scale = s->out_scale,
		.zero_point = s->out_zero_point,
	};
	uint64_t t0 = pn_now_ns();
	size_t len = pn_frame_size(s->out_dtype, h.n, h.h, h.w, h.c);
	uint8_t *buf = malloc(len);
	s->busy = 0;
	if (!buf) {
		s->c.out_failed++;
		snprintf(s->last_error, sizeof(s->last_error), "out of memory for an output frame");
		pn_error("%s", s->last_error);
		return;
	}
	if (s->out_dtype == PN_DTYPE_I8 && pn_plan_output_i8(s->plan))
		pn_frame_put_i8(&h, pn_plan_output_i8(s->plan), buf);
	else
		pn_frame_put_payload(&h, pn_plan_output(s->plan),
				     pn_model_ops(s->model)->f32_to_f16, buf);
	uint64_t t1 = pn_now_ns();
	pn_frame_seal(&h, buf);
	uint64_t t2 = pn_now_ns();
	s->c.convert_ns += t1 - t0;
	s->c.crc_ns += t2 - t1;
	if (s->drop > 0) { /* debug: a frame lost on the way, silently */
		s->drop--;
		s->c.out_dropped++;
		free(buf);
		return;
	}
	s->c.frames_out++;
	s->c.bytes_out += len;
	if (pn_peer_send(s->peer, PN_POST, "/v1/frames", "application/octet-stream", buf, len,
			 (int64_t)s->o.retry_s * 1000, out_cb, s) != 0)
		s->c.out_failed++;
	s->c.frame_ns += pn_now_ns() - t2;
}

/* The debug slowdown: a compute turn that took dt ns is stretched to
 * slowdown * dt by sleeping (not spinning, so the other processes on the
 * machine keep their share of the CPU). The loop stays responsive: one
 * turn is one block of one image. Returns the stretched time. */
static uint64_t slow_down(const struct pn_stage *s, uint64_t dt)
{
	if (s->slowdown <= 1.0)
		return dt;
	uint64_t t0 = pn_now_ns(), extra = (uint64_t)((double)dt * (s->slowdown - 1.0));
	struct timespec ts = {(time_t)(extra / 1000000000u), (long)(extra % 1000000000u)};
	while (nanosleep(&ts, &ts) != 0)
		;
	return dt + (pn_now_ns() - t0);
}

static void note_turn(struct pn_stage *s, uint64_t t0)
{
	uint64_t dt = pn_now_ns() - t0;
	if (dt > s->c.max_step_ns)
		s->c.max_step_ns = dt;
}

static void step_cb(void *arg)
{
	struct pn_stage *s = arg;
	uint64_t turn0 = pn_now_ns();
	if (!s->busy)
		start_job(s);
	if (!s->busy) {
		note_turn(s, turn0);
		return;
	}
	uint64_t t0 = pn_now_ns();
	if (s->job_images) {
		preprocess_one(s);
	} else {
		uint64_t cpu0 = pn_now_ns();
		int more = pn_plan_step(s->plan);
		s->c.kernel_ns += pn_now_ns() - cpu0;
		if (!more)
			finish_job(s);
	}
	uint64_t dt = slow_down(s, pn_now_ns() - t0);
	s->c.compute_ns += dt;
	if (!s->busy)
		start_job(s); /* waits for out_cb when the next node lags */
	note_turn(s, turn0);
	if (s->busy)
		pn_task_schedule(s->step);
}

int pn_stage_submit(struct pn_stage *s, uint8_t *buf, size_t len, json_t **error)
{
	struct pn_frame_header h;
	struct pn_frame_error e;
	int status;
	*error = NULL;
	if (!s->plan || s->stopping) {
		*error = error_json(s->stopping ? "shutting down" : "no plan",
				    s->stopping ? "this stage is stopping"
						: "this stage has not been configured for a run");
		status = s->stopping ? 503 : 409;
		goto fail;
	}
	if (s->qlen == s->o.queue_depth) {
		s->c.rejected_busy++;
		*error = error_json("queue full", "retry later");
		status = 503;
		goto fail;
	}
	uint64_t t0 = pn_now_ns();
	int valid = pn_frame_validate(buf, len, &s->expect, &h, &e) == 0;
	s->c.crc_ns += pn_now_ns() - t0;
	if (!valid) {
		s->c.rejected_bad++;
		*error = json_pack("{s:s, s:s, s:s}", "error", "bad frame", "field", e.field,
				   "detail", e.detail);
		/* Another run or plan epoch: stale, not malformed. */
		status = strcmp(e.field, "run") == 0 || strcmp(e.field, "epoch") == 0 ? 409 : 400;
		pn_warn("frame refused: %s", e.detail);
		goto fail;
	}
	struct qitem *it = &s->queue[(s->qhead + s->qlen) % s->o.queue_depth];
	*it = (struct qitem){.buf = buf, .len = len, .h = h, .t_arrive = pn_now_ns()};
	s->qlen++;
	s->c.frames_in++;
	s->c.bytes_in += len;
	pn_task_schedule(s->step);
	return 202;
fail:
	free(buf);
	return status;
}

void pn_stage_frame_route(struct pn_req *r, void *arg)
{
	struct pn_stage *s = arg;
	size_t len;
	json_t *error;
	int status;
	uint64_t t0 = pn_now_ns(), crc0 = s->c.crc_ns;
	if (s->plan && s->qlen == s->o.queue_depth) {
		/* Refuse before copying the body. */
		s->c.rejected_busy++;
		pn_reply_header(r, "Retry-After", "1");
		pn_reply_error(r, 503, "queue full", "retry later");
		return;
	}
	uint8_t *buf = pn_req_body_take(r, &len);
	if (!buf && len) {
		pn_reply_error(r, 503, "out of memory", "cannot hold the frame");
		return;
	}
	status = pn_stage_submit(s, buf, len, &error);
	if (status == 503)
		pn_reply_header(r, "Retry-After", "1");
	if (status == 202)
		pn_reply_json(r, 202, json_pack("{s:i}", "queued", s->qlen));
	else
		pn_reply_json(r, status, error);
	s->c.frame_ns += pn_now_ns() - t0 - (s->c.crc_ns - crc0);
	note_turn(s, t0);
}

static void config_route(struct pn_req *r, void *arg)
{
	json_t *cfg = pn_req_json(r);
	if (!cfg)
		return;
	json_t *reply;
	int status = pn_stage_configure(arg, cfg, &reply);
	json_decref(cfg);
	pn_reply_json(r, status, reply);
}

static void status_route(struct pn_req *r, void *arg)
{
	pn_reply_json(r, 200, pn_stage_status(arg));
}

static void reset_route(struct pn_req *r, void *arg)
{
	pn_stage_reset(arg);
	pn_reply_json(r, 200, pn_stage_status(arg));
}

json_t *pn_stage_status(const struct pn_stage *s)
{
	json_t *j = json_pack(
		"{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
		"s:I, s:I, s:i, s:i, s:s}",
		"state",
		s->stopping ? "stopping"
		: !s->plan  ? "idle"
		: s->busy   ? "computing"
			    : "ready",
		"frames_in", (json_int_t)s->c.frames_in, "bytes_in", (json_int_t)s->c.bytes_in,
		"frames_out", (json_int_t)s->c.frames_out, "bytes_out", (json_int_t)s->c.bytes_out,
		"compute_ns", (json_int_t)s->c.compute_ns, "queue_wait_ns",
		(json_int_t)s->c.queue_wait_ns, "out_transfer_ns", (json_int_t)s->c.out_transfer_ns,
		"out_acked", (json_int_t)s->c.out_acked, "out_acked_bytes",
		(json_int_t)s->c.out_acked_bytes, "out_failed", (json_int_t)s->c.out_failed,
		"out_stale", (json_int_t)s->c.out_stale, "out_dropped",
		(json_int_t)s->c.out_dropped, "rejected_busy", (json_int_t)s->c.rejected_busy,
		"rejected_bad", (json_int_t)s->c.rejected_bad, "max_step_ns",
		(json_int_t)s->c.max_step_ns, "out_unauthorized", (json_int_t)s->c.out_unauthorized,
		"out_pending", (json_int_t)(s->peer ? pn_peer_pending(s->peer) : 0), "queued",
		s->qlen, "queue_depth", s->o.queue_depth, "model_sha256", s->sha);
	if (j) {
		uint64_t cpu = pn_cpu_ns();
		json_object_set_new(j, "cpu_ns",
				    json_integer((json_int_t)(cpu > s->c.cpu_at_start_ns
								      ? cpu - s->c.cpu_at_start_ns
								      : 0)));
		json_object_set_new(j, "kernel_ns", json_integer((json_int_t)s->c.kernel_ns));
		json_object_set_new(j, "preprocess_ns",
				    json_integer((json_int_t)s->c.preprocess_ns));
		json_object_set_new(j, "convert_ns", json_integer((json_int_t)s->c.convert_ns));
		json_object_set_new(j, "crc_ns", json_integer((json_int_t)s->c.crc_ns));
		json_object_set_new(j, "frame_ns", json_integer((json_int_t)s->c.frame_ns));
		json_object_set_new(
			j, "bulk_read_bytes",
			json_integer((json_int_t)(s->http ? pn_http_bulk_bytes(s->http) -
								    s->c.bulk_at_start
							  : 0)));
	}
	if (j && s->slowdown != 1.0)
		json_object_set_new(j, "slowdown", json_real(s->slowdown));
	if (j && s->plan)
		json_object_set_new(j, "plan", plan_json(s));
	if (j && s->last_error[0])
		json_object_set_new(j, "last_error", json_string(s->last_error));
	return j;
}

/* ---- profiling ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void profile_end(struct pn_stage *s)
{
	struct profiler *p = &s->prof;
	int nb = pn_model_blocks(s->model);
	struct profile *out = &p->done[p->next];
	double col[PROFILE_MAX_ITERS];
	double *ms = malloc((size_t)nb * sizeof(double));
	if (ms) {
		free(out->block_ms);
		*out = (struct profile){.batch = p->batch,
					.iters = p->iters,
					.block_ms = ms,
					.frame_ns_per_byte = pn_frame_cpu_ns_per_byte()};
		for (int b = 0; b < nb; b++) {
			for (int i = 0; i < p->iters; i++)
				col[i] = p->samples[i * nb + b];
			qsort(col, (size_t)p->iters, sizeof(double), cmp_double);
			ms[b] = p->iters % 2 ? col[p->iters / 2]
					     : 0.5 * (col[p->iters / 2 - 1] + col[p->iters / 2]);
			out->total_ms += ms[b];
		}
		p->next = (p->next + 1) % PROFILE_CACHE;
		pn_info("profiled batch %d: %.2f ms a batch", p->batch, out->total_ms);
	}
	pn_plan_free(p->plan);
	p->plan = NULL;
	free(p->samples);
	p->samples = NULL;
}

/* One source image into the plan's input, a turn: what a stage that
 * computes block 0 does first, so its time counts into block 0. The plan
 * starts after the last. */
static void profile_prep(struct pn_stage *s)
{
	struct profiler *p = &s->prof;
	size_t floats = pn_shape_floats(pn_plan_in_shape(p->plan));
	uint64_t t0 = pn_now_ns();
	pn_model_preprocess(s->model, p->rgb,
			    pn_plan_input(p->plan) + (size_t)p->prepped++ * floats);
	uint64_t dt = slow_down(s, pn_now_ns() - t0);
	if (p->pass > 0)
		p->samples[(p->pass - 1) * pn_model_blocks(s->model)] += (double)dt / 1e6;
	if (p->prepped == p->batch)
		pn_plan_start(p->plan, p->batch);
}

static void profile_step(void *arg)
{
	struct pn_stage *s = arg;
	struct profiler *p = &s->prof;
	if (!p->plan || s->stopping)
		return;
	int nb = pn_model_blocks(s->model);
	if (p->prepped < p->batch) {
		profile_prep(s);
		pn_task_schedule(p->step);
		return;
	}
	int blk = pn_plan_next_block(p->plan);
	uint64_t t0 = pn_now_ns();
	int more = pn_plan_step(p->plan);
	uint64_t dt = slow_down(s, pn_now_ns() - t0);
	if (p->pass > 0)
		p->samples[(p->pass - 1) * nb + blk] += (double)dt / 1e6;
	if (!more && p->pass++ == p->iters) {
		profile_end(s);
		return;
	}
	if (!more)
		p->prepped = 0; /* the next pass preprocesses again */
	pn_task_schedule(p->step);
}

static const struct profile *profile_find(const struct pn_stage *s, int batch)
{
	for (int i = 0; i < PROFILE_CACHE; i++)
		if (s->prof.done[i].block_ms && s->prof.done[i].batch == batch)
			return &s->prof.done[i];
	return NULL;
}

/* Starts measuring `batch`: 0, or -1 with a message. */
static int profile_start(struct pn_stage *s, int batch, int iters, char *err, size_t errlen)
{
	struct profiler *p = &s->prof;
	int nb = pn_model_blocks(s->model);
	p->plan = pn_plan_new(s->model, 0, nb, batch, err, errlen);
	p->samples = calloc((size_t)iters * (size_t)nb, sizeof(double));
	if (!p->plan || !p->samples) {
		if (p->plan)
			snprintf(err, errlen, "out of memory");
		pn_plan_free(p->plan);
		p->plan = NULL;
		free(p->samples);
		p->samples = NULL;
		return -1;
	}
	/* A fixed pseudo-random image: the kernels' time does not depend on it. */
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(p->rgb); i++) {
		x = x * 1103515245u + 12345u;
		p->rgb[i] = (uint8_t)(x >> 24);
	}
	p->batch = batch;
	p->iters = iters;
	p->pass = 0;
	p->prepped = 0;
	pn_task_schedule(p->step);
	return 0;
}

/* POST /v1/profile {"batch": B, "iters": N}: 200 with the block times
 * when they are known, else 202 while they are measured (ask again); 503
 * while another batch size is being measured. */
static void profile_route(struct pn_req *r, void *arg)
{
	struct pn_stage *s = arg;
	static const char *const keys[] = {"batch", "iters", NULL};
	char err[256];
	long long batch, iters;
	json_t *j = pn_req_json(r);
	if (!j)
		return;
	int bad = pn_json_known(j, keys, err, sizeof(err)) ||
		  pn_json_int(j, "batch", 1, s->o.max_batch, 8, &batch, err, sizeof(err)) ||
		  pn_json_int(j, "iters", 1, PROFILE_MAX_ITERS, 3, &iters, err, sizeof(err));
	json_decref(j);
	if (bad) {
		pn_reply_error(r, 400, "bad request", "%s", err);
		return;
	}
	const struct profile *pr = profile_find(s, (int)batch);
	if (pr) {
		json_t *ms = json_array();
		for (int b = 0; b < pn_model_blocks(s->model); b++)
			json_array_append_new(ms, json_real(pr->block_ms[b]));
		pn_reply_json(r, 200,
			      json_pack("{s:i, s:i, s:o, s:f, s:f, s:s}", "batch", pr->batch,
					"iters", pr->iters, "block_ms", ms, "total_ms",
					pr->total_ms, "frame_ns_per_byte", pr->frame_ns_per_byte,
					"model_sha256", s->sha));
		return;
	}
	if (s->stopping) {
		pn_reply_error(r, 503, "shutting down", "this stage is stopping");
		return;
	}
	if (s->prof.plan && s->prof.batch != batch) {
		pn_reply_header(r, "Retry-After", "1");
		pn_reply_error(r, 503, "busy", "measuring batch %d first", s->prof.batch);
		return;
	}
	if (!s->prof.plan && profile_start(s, (int)batch, (int)iters, err, sizeof(err)) != 0) {
		pn_reply_error(r, 503, "cannot profile", "%s", err);
		return;
	}
	pn_reply_json(r, 202,
		      json_pack("{s:s, s:i, s:i, s:i}", "state", "profiling", "batch",
				s->prof.batch, "pass", s->prof.pass, "passes", s->prof.iters + 1));
}

static void debug_get(struct pn_req *r, void *arg)
{
	const struct pn_stage *s = arg;
	pn_reply_json(r, 200, json_pack("{s:f, s:i}", "slowdown", s->slowdown, "drop", s->drop));
}

/* PUT /v1/debug {"slowdown": F, "drop": N}: F (1 to 1000) times as long
 * a compute from now on (the block times measured before are dropped);
 * the next N output frames thrown away, as if lost on the way. */
static void debug_put(struct pn_req *r, void *arg)
{
	struct pn_stage *s = arg;
	static const char *const keys[] = {"slowdown", "drop", NULL};
	char err[256];
	long long drop;
	json_t *j = pn_req_json(r);
	if (!j)
		return;
	json_t *v = json_object_get(j, "slowdown");
	int bad = pn_json_known(j, keys, err, sizeof(err)) ||
		  pn_json_int(j, "drop", 0, 1000000, s->drop, &drop, err, sizeof(err));
	int not_number = v && !json_is_number(v);
	double f = v ? json_number_value(v) : s->slowdown;
	json_decref(j);
	if (bad || not_number || !(f >= 1.0 && f <= 1000.0)) {
		pn_reply_error(r, 400, "bad request", "%s",
			       bad ? err : "slowdown must be a number from 1 to 1000");
		return;
	}
	if (f != s->slowdown) {
		for (int i = 0; i < PROFILE_CACHE; i++) {
			free(s->prof.done[i].block_ms);
			s->prof.done[i].block_ms = NULL;
		}
		s->prof.generation++;
	}
	s->slowdown = f;
	s->drop = (int)drop;
	pn_info("debug: slowdown %g, drop %d", f, s->drop);
	debug_get(r, s);
}

/* A probe's beside: the frames this stage sends to `to`, if it does. */
static uint64_t frames_acked(void *arg, const char *to)
{
	struct pn_stage *s = arg;
	uint64_t acked = 0;
	if (s->peer && strcmp(s->next, to) == 0)
		pn_peer_bytes_acked(s->peer, &acked);
	return acked;
}

/* POST /v1/probe {"to": "HOST:PORT", "bytes": [small, large], "reps": 3,
 * "id": N}: the link from this stage to `to` (see probe.h): 202 while
 * probing, 200 with the result, which is kept until another id, other
 * sizes or another peer are asked for. The asker polls with the same id
 * and measures again with a new one: same sizes must not mean the old
 * result when the link has changed since. */
static void probe_route(struct pn_req *r, void *arg)
{
	struct pn_stage *s = arg;
	static const char *const keys[] = {"to", "bytes", "reps", "id", NULL};
	char err[256];
	const char *to;
	long long reps, id;
	json_t *j = pn_req_json(r);
	if (!j)
		return;
	json_t *bytes = json_object_get(j, "bytes");
	int bad = pn_json_known(j, keys, err, sizeof(err)) ||
		  pn_json_str(j, "to", NULL, &to, err, sizeof(err)) ||
		  pn_json_int(j, "reps", 1, PN_PROBE_MAX_REPS, 3, &reps, err, sizeof(err)) ||
		  pn_json_int(j, "id", 0, 1LL << 53, 0, &id, err, sizeof(err));
	json_int_t small = json_integer_value(json_array_get(bytes, 0));
	json_int_t large = json_integer_value(json_array_get(bytes, 1));
	if (!bad && (json_array_size(bytes) != 2 || small < 0 || large <= small ||
		     (size_t)large > PN_PROBE_MAX_BYTES)) {
		snprintf(err, sizeof(err),
			 "bytes must be [small, large], 0 <= small < large <= %zu",
			 PN_PROBE_MAX_BYTES);
		bad = 1;
	}
	if (bad) {
		json_decref(j);
		pn_reply_error(r, 400, "bad request", "%s", err);
		return;
	}
	if (!s->probe || id != s->probe_id ||
	    !pn_probe_is(s->probe, to, (size_t)small, (size_t)large) ||
	    pn_probe_state(s->probe) < 0) {
		pn_probe_free(s->probe);
		s->probe_id = id;
		s->probe = pn_probe_new(s->loop, to, s->o.token, (size_t)small, (size_t)large,
					(int)reps, frames_acked, s, err, sizeof(err));
	}
	json_decref(j);
	if (!s->probe) {
		pn_reply_error(r, 400, "bad request", "%s", err);
		return;
	}
	int st = pn_probe_state(s->probe);
	pn_reply_json(r, st == 0 ? 202 : st > 0 ? 200 : 502, pn_probe_json(s->probe));
}

static const struct pn_route routes[] = {
	{PN_POST, "/v1/profile", profile_route, 1},
	{PN_PUT, "/v1/stage", config_route, 1},
	{PN_GET, "/v1/stage", status_route, 1},
	{PN_DELETE, "/v1/stage", reset_route, 1},
	{PN_POST, "/v1/frames", pn_stage_frame_route, PN_ROUTE_AUTH | PN_ROUTE_LARGE_BODY},
	{PN_PUT, "/v1/debug", debug_put, 1},
	{PN_GET, "/v1/debug", debug_get, 1},
	{PN_POST, "/v1/probe", probe_route, 1},
	{PN_POST, "/v1/echo", pn_probe_echo_route, PN_ROUTE_AUTH | PN_ROUTE_PROBE_BODY},
};

const struct pn_route *pn_stage_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

int pn_stage_configured(const struct pn_stage *s)
{
	return s->plan != NULL;
}

unsigned pn_stage_block_times_generation(const struct pn_stage *s)
{
	return s->prof.generation;
}
