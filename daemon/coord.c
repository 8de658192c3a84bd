/* The coordinator (see coord.h): runs, the dispatch window, logits,
 * metrics. Every figure is measured where it happens: batch latency here
 * (dispatch to logits), compute and queue wait in each stage, transfer
 * time by the sender of each hop. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipenet-config.h"
#include "classify.h"
#include "client.h"
#include "coord.h"
#include "dataset.h"
#include "events.h"
#include "frame.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "model.h"
#include "planner.h"
#include "probe.h"
#include "stage.h"
#include "webfiles.h"

#define MAX_STAGES PN_PLANNER_MAX_STAGES
#define MAX_RANGES (MAX_STAGES + 1)
#define MAX_BLOCKS PN_PLANNER_MAX_BLOCKS
#define MAX_RUNS 64
#define MAX_EPOCHS 32 /* kept per run: the latest */
#define EPOCH(r, e) (&(r)->epochs[(e) % MAX_EPOCHS])
#define CONTROL_RETRY_MS 3000
#define CONTROL_TIMEOUT_MS 5000 /* one PUT or GET /v1/stage attempt */
/* Health: every node is asked GET /api/v1/health each PING_MS; a node
 * that fails HEALTH_MISSES answers in a row (each given HEALTH_TIMEOUT_MS:
 * a stopped process accepts the connection but never answers) is down,
 * and the run re-plans over the nodes still up. A node that answers again
 * with the coordinator's model is re-admitted once up for READMIT_MS. */
#define PING_MS 1000
#define HEALTH_TIMEOUT_MS 2000
#define HEALTH_MISSES 2
#define READMIT_MS 2000
/* A stage never reached since the coordinator started is "unknown", not
 * down, for REACH_MS: it may still be starting. A run waits for such
 * stages (at most its auto_wait_s), polling every AUTO_POLL_MS, and
 * /api/v1/ready answers 503 meanwhile. */
#define REACH_MS 10000
/* A batch with no logits after batch_deadline_s (at least; more when its
 * plan predicts a long latency) is sent again, at most DEADLINE_RESENDS
 * times. */
#define DEADLINE_RESENDS 3
#define PROFILE_RETRY_MS 2000 /* a block time request that got no answer */
#define PROFILES 4 /* batch sizes whose block times a node keeps */
#define PROFILE_POLL_MS 250
#define PROFILE_ITERS 7 /* passes whose median is a block's time */
/* With no token, GET /api/v1/plan has at most this many batch sizes
 * measured per PLAN_MEASURES_S (a run's are not counted). */
#define PLAN_MEASURES 8
#define PLAN_MEASURES_S 3600
#define SSE_MAX_CLIENTS 32
#define RATE_TICKS 4 /* img_s_now is measured over the last 3 s */
#define MAX_HOPS 64 /* (from, to) pairs counted in pipenet_hop_bytes_total */
#define AUTO_POLL_MS 200 /* split "auto": how often the block times are looked for */
#define LINK_POLL_MS 250
#define LINK_REPS 3
/* A run's accounting tells a stage's CPU per frame byte once it moved this
 * many bytes (less is dominated by the loop's own time). */
#define FRAME_COST_MIN_BYTES ((uint64_t)64 << 20)
/* A finished run tells a stage's speed against its profile from this many
 * batches. */
#define SPEED_MIN_FRAMES 16
/* A link is probed again during a run when its frames' transfer time
 * leaves the model by more than this share (beyond the compute steps a
 * frame may wait for), at most once per
 * LINK_REPROBE_S. */
#define LINK_DRIFT 0.15
#define LINK_DRIFT_SLACK_MS 1.0
#define LINK_REPROBE_S 10
#define ADAPT_GAIN 0.10 /* re-split when another plan is predicted this much faster */
#define ADAPT_HOLD 3 /* ... at this many 1 s ticks in a row */
#define ADAPT_OFF 0.25 /* a stage counts as changed when 25% off its profile */
/* ... and, once a re-split has planned for its ratio, only when it moves
 * 60% off that ratio: one slowdown gives one re-split, not a series of
 * them chasing noise (seen under load: [4] -> [15] -> [6]). */
#define ADAPT_SETTLED 0.60

/* GET /api/v1/runs, /api/v1/runs/{id} and /metrics are built at most
 * this often, or sooner when a run changes state: 200 clients polling
 * them must not take the CPU the pipeline needs. */
#define API_CACHE_MS 100

struct api_cache {
	char *body;
	size_t len;
	uint64_t t, gen;
};

enum batch_state {
	BATCH_UNSENT,
	BATCH_INFLIGHT,
	BATCH_LOST, /* its plan was dropped, or its deadline passed: send again */
	BATCH_DONE,
};

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
	int index;
	int up; /* -1 unknown, 0 down, 1 up */
	int misses; /* health pings in a row without an answer */
	int refused; /* answers with another model or role: not used */
	char why[400]; /* why it is down or refused (or not reached yet) */
	/* A 401 from it, or for its frames: it stays refused until it
	 * restarts (a daemon reads its token at start). */
	char auth_why[400];
	uint64_t up_since;
	double uptime_s; /* the daemon's own, from its last health answer */
	struct pn_peer *probe; /* health pings and block time requests */
	int probing; /* a ping outstanding */
	struct {
		int batch; /* 0: empty */
		double ms[MAX_BLOCKS];
	} prof[PROFILES];
	int prof_next; /* the slot replaced next */
	int prof_want; /* the batch being measured, 0 none */
	/* CPU its frames cost it, ns per byte in or out: as its profile
	 * measured copies and checksums, then as its runs' own accounting
	 * showed (system calls and all) once they moved enough bytes. */
	double frame_ns_per_byte, frame_ns_per_byte_seen;
	/* Its compute in its last finished run against its profile for the
	 * blocks it ran (0: none yet): the planner scales its block times by
	 * it, since a shared machine's speed drifts after the profile. */
	double speed_ratio;
	struct pn_timer *prof_timer;
};

/* A block range of a run: on a node, or on the coordinator (node NULL). */
struct range {
	int first, last;
	struct node *node;
	json_t *status; /* the stage's last counters */
	/* Figures over the interval between the last two counters. */
	uint64_t prev_frames, prev_compute, prev_queue, prev_t;
	double recent_compute_ms, recent_queue_ms, utilisation;
	/* Its outgoing frames over the interval: transfer ms and bytes each. */
	uint64_t prev_acked, prev_transfer, prev_bytes_out;
	double recent_transfer_ms, recent_frame_bytes;
};

/* One plan of a run: the split it ran with and what it did. */
struct epoch {
	int points[MAX_RANGES], npoints;
	int members[MAX_STAGES], nmembers; /* the nodes of its ranges */
	char reason[300]; /* why the run re-planned ("" for the first plan) */
	size_t images, batches;
	uint64_t t_start, t_last;
	double predicted_img_s, predicted_latency_ms; /* 0: no prediction */
};

/* The coordinator's own time outside the kernels, by kind: reading the
 * dataset into first-hop frames, CRC32C (sealing them, checking logits),
 * the rest of frame handling, and JSON (run, batch and summary views,
 * /metrics). Runs keep the values at their start and end. */
enum acct { ACCT_DATASET, ACCT_CRC, ACCT_FRAME, ACCT_JSON, NACCT };
static const char *const acct_names[NACCT] = {"dataset", "crc", "frame", "json"};

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

	struct pn_dataset *ds; /* opened when posted */
	uint8_t *building; /* a frame being filled, a few images per loop turn */
	size_t build_b, build_i, build_len;
	struct pn_peer *first_hop; /* frames to the first range, when remote */
	float *logits; /* [samples][classes] */
	int *labels;
	size_t nbatches, next_batch, batches_done, images_done, correct, labelled, duplicates;
	/* Per batch: its state, the plan epoch (mod 256) it was last sent
	 * under, and how often a missed deadline sent it again. Batches
	 * before `low` are all done; `nlost` await sending again. */
	uint8_t *bstate, *bepoch, *bresends;
	size_t low, nlost, stale, resends;
	double latency_avg_ms; /* moving average of batch latency */
	uint64_t *t_dispatch, *t_done, *t_sent; /* first sent, logits in, last sent */
	int inflight, pending; /* batches out; control replies awaited */
	uint64_t t_created, t_start, t_first_done, t_last_done, t_end, t_progress;
	size_t first_done_images;
	uint64_t hop_frames, hop_bytes, hop_transfer_ns;
	/* pn_now_ns() and the coordinator's acct[] at the start and the end */
	uint64_t cpu_start, cpu_end, acct_start[NACCT], acct_end[NACCT];

	/* Live re-split: the current epoch, and the split waiting for the
	 * batches in flight to drain (draining = 1). The last MAX_EPOCHS
	 * epochs are kept (see EPOCH); the current one's `members` are the
	 * nodes of the ranges (node indices in pipeline order). */
	int epoch;
	struct epoch epochs[MAX_EPOCHS];
	int draining, next_points[MAX_RANGES], next_npoints;
	int next_members[MAX_STAGES], next_nmembers;
	int failovers, readmits;
	int window_auto; /* max_inflight was not given: ranges + 1 */
	/* split "auto": chosen by the planner once the block times are in
	 * (waiting at most auto_wait_s), else by MACs. */
	int split_auto, auto_waiting, auto_wait_s;
	uint64_t auto_deadline;
	/* Waiting (at most auto_wait_s) for stages not reached yet. */
	int reach_waiting;
	uint64_t reach_deadline;
	char waiting[500];
	const char *split_source; /* "given", "default", "pending", "planner", "macs" */
	char split_note[700];
	/* adapt: stage compute measured against the profile (ratio per node,
	 * 1 unless ADAPT_OFF away) and a re-split when a plan gains. */
	int adapt, adapt_interval_s, adapt_hold, adapts;
	double ratio[MAX_STAGES];
	double applied[MAX_STAGES]; /* the ratios the last adapt re-split planned for */
	uint64_t adapt_last;
	char next_reason[700];
	double next_img_s, next_latency_ms;
	uint64_t rate_t[RATE_TICKS];
	size_t rate_images[RATE_TICKS];
	int rate_n;
	struct api_cache cache;
};

struct hop_count {
	char from[300], to[300];
	uint64_t bytes;
};

struct pn_coord {
	struct pn_loop *loop;
	struct pn_http *http;
	const struct pn_model *m;
	const char *sha, *model_path;
	struct pn_coord_opts o;
	char advertise[300];
	struct node nodes[MAX_STAGES];
	int nnodes;
	struct pn_stage *local;
	uint64_t acct[NACCT]; /* ns, since start */
	struct run *runs[MAX_RUNS];
	int nruns, next_id;
	struct run *active;
	uint64_t t_start;
	struct pn_task *dispatcher;
	struct pn_timer *tick;
	int stopping;
	int ticks;
	uint64_t gen; /* counts run state changes, for the API caches */
	struct api_cache runs_cache, metrics_cache;

	int default_points[MAX_RANGES], default_npoints, default_set;
	/* Measured links, hop h feeding node h (hop nnodes: back to us). */
	struct link {
		int state; /* 0 not measured, 1 probing, 2 known, -1 failed */
		int asking; /* a POST /v1/probe outstanding */
		double latency_ms, bytes_per_ms;
		char error[700];
		/* Probed again while known (state stays 2 meanwhile), and why. */
		int reprobing, reprobes;
		char drift[200];
		size_t bytes[2]; /* the sizes of its last probe */
		uint64_t measured_ns; /* when it was last measured */
		double measured_wall; /* the same, as a Unix time */
	} links[MAX_STAGES + 1];
	size_t link_bytes[2]; /* the probe sizes */
	struct pn_probe *link_own; /* hop 0 is probed by us */
	struct pn_timer *link_timer, *auto_timer;
	struct pn_events *events;
	struct pn_classifier *classifier; /* POST /api/v1/classify */
	/* With no token: batch sizes GET /api/v1/plan may still have measured
	 * (a bucket of PLAN_MEASURES refilled over PLAN_MEASURES_S). */
	double plan_measures;
	uint64_t plan_measures_ns;
	struct pn_datadir *datadir; /* where datasets are; NULL: none set */
	struct api_cache datasets_cache; /* GET /api/v1/datasets */

	/* Metrics since start. */
	uint64_t images_total, batches_total, duplicates_total, runs_failed, runs_done,
		runs_cancelled, stage_down_total;
	uint64_t failovers_total, readmits_total, resends_total, stale_total;
	struct hop_count hops[MAX_HOPS];
	int nhops;
	struct pn_hist latency;
	struct pn_hist compute[MAX_STAGES + 1]; /* per node; the last: the coordinator */
};

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					0.25,  0.5,    1,     2.5,  5,	   10,	 30};
static const double compute_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					0.1,	0.25,  0.5,    1,     2.5,  5,	   10};

static void start_next(struct pn_coord *c);
static void finish(struct run *r);
static json_t *run_json(const struct run *r);
static json_t *stage_cpu_json(json_t *status, uint64_t frames);
static json_t *coord_cpu_json(const struct run *r, double wall_s);
static void check_drain(struct run *r);
static int send_configs(struct run *r);
static void default_points(struct pn_coord *c, int *points, int *npoints);
static void auto_poll(struct run *r);
static void adapt_check(struct run *r);
static void request_split(struct run *r, const int *points, int npoints, const int *members, int nm,
			  const char *reason);
static void epoch_predict(struct run *r);
static int plan_best(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
		     struct pn_split *out);
static void node_down(struct node *n, const char *why);
static const char *plan_over(struct run *r, const int *members, int nm, int *points, int *npoints);
static void apply_points(struct run *r, const int *points, int npoints, const int *members, int nm);
static int same_members(const struct epoch *ep, const int *members, int nm);
static void failover(struct run *r, const struct node *n);
static int auto_split(const struct pn_model *m, int k, int *points);
static void node_refuse(struct node *n, const char *why);
static int live_members(const struct pn_coord *c, int *members);
static int want_links(struct pn_coord *c, int batch);
static json_t *links_json(const struct pn_coord *c);
static int want_profiles(struct pn_coord *c, int batch);
static void node_refuse_auth(struct node *n, const char *why);
static int refused_only(struct run *r);
static int run_uses(const struct run *r, const struct node *n);
static void plan_start(struct run *r);
static void reach_poll(struct run *r);
static uint64_t counter(json_t *status, const char *key);
static const double *node_profile(const struct node *n, int batch);
static void link_start(struct pn_coord *c, int h, size_t small, size_t large);
static void link_drift_check(struct run *r);

static const char *const state_names[] = {"queued", "running", "running",  "running",
					  "done",   "failed",  "cancelled"};

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double ms_since(uint64_t now, uint64_t then)
{
	return now > then ? ms(now - then) : 0;
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

/* A finished run tells each stage's speed now against its profile: its
 * kernels' and preprocessing's time per batch over what the profile gives
 * for its range (at least a few batches, within 4x either way, and not
 * where big frames slow the kernels). */
static void learn_speed(struct run *r)
{
	for (int i = 0; i < r->nranges; i++) {
		const struct range *g = &r->ranges[i];
		const double *prof = g->node ? node_profile(g->node, r->batch) : NULL;
		uint64_t frames = counter(g->status, "frames_in");
		if (!prof || frames < SPEED_MIN_FRAMES)
			continue;
		double want = 0;
		for (int b = g->first; b < g->last; b++)
			want += prof[b];
		double seen =
			ms(counter(g->status, "kernel_ns") + counter(g->status, "preprocess_ns")) /
			(double)frames;
		/* Where frames cost a tenth of its compute, the memory traffic (its
		 * own and its neighbours') slows its kernels: that is the split's
		 * doing, not the stage's speed. */
		double bytes =
			(double)(counter(g->status, "bytes_in") + counter(g->status, "bytes_out")) /
			(double)frames;
		double fb = g->node->frame_ns_per_byte_seen > 0 ? g->node->frame_ns_per_byte_seen
								: g->node->frame_ns_per_byte;
		double q = want > 0 ? seen / want : 0;
		if (q > 0.25 && q < 4 && bytes * fb / 1e6 < 0.1 * want)
			g->node->speed_ratio = q;
	}
}

static void end_run(struct run *r, enum run_state state, const char *fmt, ...)
{
	struct pn_coord *c = r->c;
	if (state == RUN_DONE && r->state == RUN_RUNNING)
		learn_speed(r);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->error, sizeof(r->error), fmt, ap);
		va_end(ap);
	}
	if (r->state != RUN_QUEUED && state != RUN_DONE)
		reset_ranges(r);
	r->state = state;
	c->gen++;
	if (!r->t_end && r->t_start) {
		r->cpu_end = pn_cpu_ns();
		memcpy(r->acct_end, c->acct, sizeof(c->acct));
	}
	r->t_end = r->t_end ? r->t_end : pn_now_ns();
	pn_peer_free(r->first_hop);
	r->first_hop = NULL;
	pn_dataset_free(r->ds);
	r->ds = NULL;
	free(r->building);
	r->building = NULL;
	r->draining = 0;
	if (state == RUN_FAILED)
		pn_error("run %d failed: %s", r->id, r->error);
	else
		pn_info("run %d %s: %zu images, %zu batches", r->id, state_names[state],
			r->images_done, r->batches_done);
	c->runs_failed += state == RUN_FAILED;
	c->runs_done += state == RUN_DONE;
	c->runs_cancelled += state == RUN_CANCELLED;
	pn_events_emit(c->events, "run", run_json(r));
	if (c->active == r) {
		c->active = NULL;
		pn_task_cancel(c->dispatcher);
		start_next(c);
	}
}

static uint64_t counter(json_t *status, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(status, key));
}

/* New counters of a range (taken): the figures of the interval since the
 * previous ones, and the compute time histogram. */
static void set_status(struct run *r, struct range *g, json_t *status)
{
	struct pn_coord *c = r->c;
	uint64_t now = pn_now_ns();
	uint64_t frames = counter(status, "frames_in"), compute = counter(status, "compute_ns");
	uint64_t queue = counter(status, "queue_wait_ns");
	if (!g->status || frames < g->prev_frames || compute < g->prev_compute) {
		g->prev_frames = g->prev_compute = g->prev_queue = 0;
		g->prev_t = r->t_start > g->prev_t ? r->t_start : g->prev_t;
		if (!g->prev_t)
			g->prev_t = now;
	}
	uint64_t df = frames - g->prev_frames, dc = compute - g->prev_compute;
	uint64_t dq = queue >= g->prev_queue ? queue - g->prev_queue : 0;
	uint64_t acked = counter(status, "out_acked"), xfer = counter(status, "out_transfer_ns");
	uint64_t bout = counter(status, "bytes_out");
	if (acked < g->prev_acked || xfer < g->prev_transfer || bout < g->prev_bytes_out)
		g->prev_acked = g->prev_transfer = g->prev_bytes_out = 0;
	if (acked >= g->prev_acked + 4) { /* a few frames: one says little */
		double n = (double)(acked - g->prev_acked);
		g->recent_transfer_ms = ms(xfer - g->prev_transfer) / n;
		g->recent_frame_bytes = (double)(bout - g->prev_bytes_out) / n;
		g->prev_acked = acked;
		g->prev_transfer = xfer;
		g->prev_bytes_out = bout;
	}
	if (df) {
		g->recent_compute_ms = ms(dc) / (double)df;
		g->recent_queue_ms = ms(dq) / (double)df;
		int h = g->node ? g->node->index : MAX_STAGES;
		pn_hist_observe(&c->compute[h], (double)dc / 1e9 / (double)df, df);
	}
	if (now > g->prev_t && (df || now - g->prev_t > 2000000000u)) {
		double u = (double)dc / (double)(now - g->prev_t);
		g->utilisation = u > 1 ? 1 : u;
	}
	if (df || now - g->prev_t > 2000000000u) {
		g->prev_frames = frames;
		g->prev_compute = compute;
		g->prev_queue = queue;
		g->prev_t = now;
	}
	/* What its frames cost it, from its own accounting of the run so far:
	 * the CPU outside its kernels and preprocessing, per byte moved. (On a
	 * busy machine the kernels' wall time exceeds their CPU time, which
	 * makes this low, not high.) */
	uint64_t cpu = counter(status, "cpu_ns"), kern = counter(status, "kernel_ns"),
		 pre = counter(status, "preprocess_ns"), bytes = counter(status, "bytes_in") + bout;
	if (g->node && bytes >= FRAME_COST_MIN_BYTES && cpu > kern + pre)
		g->node->frame_ns_per_byte_seen = (double)(cpu - kern - pre) / (double)bytes;
	json_decref(g->status);
	g->status = status;
}

static void stats_cb(const struct pn_reply *rep, void *arg)
{
	struct node *n = arg;
	struct run *r = n->c->active;
	json_t *j = NULL;
	char auth[450] = "";
	int last = --n->gets == 0 && n->final_wait;
	if (last)
		n->final_wait = 0;
	if (rep->status == 200)
		j = json_loadb((const char *)rep->body, rep->len, 0, NULL);
	if (j)
		n->last_contact_ns = pn_now_ns();
	if (rep->status == 401)
		snprintf(auth, sizeof(auth),
			 "token mismatch: the stage answered 401 to the coordinator's GET "
			 "/v1/stage");
	if (!r || (r->state != RUN_RUNNING && r->state != RUN_FINISHING)) {
		json_decref(j);
		return;
	}
	for (int i = 0; i < r->nranges; i++) {
		if (r->ranges[i].node != n)
			continue;
		json_t *plan = json_object_get(j, "plan");
		json_int_t run = json_integer_value(json_object_get(plan, "run"));
		/* Counters of this run under this epoch's plan only. A stage's
		 * last_error (a frame the next node did not take) is kept with
		 * them: the health checks and the batch deadlines act on it. */
		if (j && run == r->id &&
		    json_integer_value(json_object_get(plan, "epoch")) == (r->epoch & 255) &&
		    json_integer_value(json_object_get(plan, "first")) == r->ranges[i].first &&
		    json_integer_value(json_object_get(plan, "last")) == r->ranges[i].last) {
			set_status(r, &r->ranges[i], json_incref(j));
			/* Its frames were refused with 401: sending them again
			 * would not help, and the run would wait for them. */
			const char *le = json_string_value(json_object_get(j, "last_error"));
			if (counter(j, "out_unauthorized"))
				snprintf(auth, sizeof(auth), "%s",
					 le && strncmp(le, "token mismatch", 14) == 0
						 ? le
						 : "token mismatch: its frames were refused with "
						   "401");
		}
		break;
	}
	json_decref(j);
	if (r->state == RUN_FINISHING && last && --r->pending == 0)
		end_run(r, RUN_DONE, NULL);
	else if (auth[0] && r->state == RUN_RUNNING && run_uses(r, n))
		node_refuse_auth(n, auth);
}

/* Asks every remote range for its counters; the local one is read now. */
static void fetch_stats(struct run *r)
{
	for (int i = 0; i < r->nranges; i++) {
		struct range *g = &r->ranges[i];
		if (!g->node) {
			set_status(r, g, pn_stage_status(r->c->local));
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
		check_drain(r);
		return;
	}
	if (rep->status == 0 && r->ranges[0].node) {
		/* Unreachable for the whole retry budget: down, re-plan. */
		node_down(r->ranges[0].node, rep->error);
		return;
	}
	if (rep->status == 401 && r->ranges[0].node) {
		/* Not congestion: every frame would be refused the same way. */
		node_refuse_auth(r->ranges[0].node,
				 "token mismatch: the stage answered 401 to a frame from the "
				 "coordinator");
		return;
	}
	if (rep->status == 409) {
		return; /* stale (another plan epoch): its deadline sends it again */
	}
	end_run(r, RUN_FAILED, "stage %s did not take a batch: %s%.*s",
		pn_peer_address(r->first_hop), rep->status ? "" : rep->error,
		rep->status ? (int)(rep->len > 300 ? 300 : rep->len) : 0,
		rep->status ? (const char *)rep->body : "");
}

/* Reading images: a decoded JPEG of a folder dataset can take
 * milliseconds, so a frame is filled over several loop turns. */
#define BUILD_TURN_NS 10000000u

/* Fills batch `b`'s frame of source images (the first stage preprocesses
 * them) for at most BUILD_TURN_NS: 1 when more is left for the next turn,
 * 0 with the frame in *out (taken), -1 after failing the run. */
static int build_frame(struct run *r, size_t b, uint8_t **out, size_t *len)
{
	size_t first = b * (size_t)r->batch;
	size_t n = r->samples - first < (size_t)r->batch ? r->samples - first : (size_t)r->batch;
	uint64_t t0 = pn_now_ns();
	if (!r->building || r->build_b != b) {
		free(r->building);
		r->build_len = pn_frame_size(PN_DTYPE_U8, n, PN_IMAGE_SIDE, PN_IMAGE_SIDE, 3);
		r->building = malloc(r->build_len);
		r->build_b = b;
		r->build_i = 0;
		if (!r->building) {
			end_run(r, RUN_FAILED, "out of memory for batch %zu", b);
			return -1;
		}
	}
	char err[256];
	for (; r->build_i < n; r->build_i++) {
		size_t i = r->build_i, rec = r->offset + (first + i) * r->stride;
		if (i > 0 && pn_now_ns() - t0 > BUILD_TURN_NS) {
			r->c->acct[ACCT_DATASET] += pn_now_ns() - t0;
			return 1;
		}
		if (pn_dataset_get(r->ds, rec, r->building + PN_FRAME_HEADER + i * PN_IMAGE_BYTES,
				   &r->labels[first + i], err, sizeof(err)) != 0) {
			end_run(r, RUN_FAILED, "%s", err);
			return -1;
		}
	}
	struct pn_frame_header h = {
		.run = (uint64_t)r->id,
		.seq = (uint32_t)b,
		.epoch = (uint8_t)r->epoch,
		.first_block = 0,
		.dtype = PN_DTYPE_U8,
		.n = (uint32_t)n,
		.h = PN_IMAGE_SIDE,
		.w = PN_IMAGE_SIDE,
		.c = 3,
	};
	uint64_t t1 = pn_now_ns();
	pn_frame_seal(&h, r->building);
	r->c->acct[ACCT_DATASET] += t1 - t0;
	r->c->acct[ACCT_CRC] += pn_now_ns() - t1;
	*out = r->building;
	*len = r->build_len;
	r->building = NULL;
	return 0;
}

/* The batch to send next: one to send again first, else a new one;
 * r->nbatches when there is none. */
static size_t next_to_send(struct run *r)
{
	while (r->low < r->nbatches && r->bstate[r->low] == BATCH_DONE)
		r->low++;
	for (size_t b = r->low; r->nlost && b < r->next_batch; b++)
		if (r->bstate[b] == BATCH_LOST)
			return b;
	return r->next_batch;
}

/* At most one batch per loop turn, its images read over as many turns as
 * they need, so reading the dataset never holds the loop long. */
static void dispatch_cb(void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = c->active;
	if (!r || r->state != RUN_RUNNING || r->draining || r->inflight >= r->window)
		return;
	size_t b = r->building ? r->build_b : next_to_send(r), len;
	if (b >= r->nbatches)
		return;
	int local = r->ranges[0].node == NULL;
	if (local ? !pn_stage_has_room(c->local) : pn_peer_pending(r->first_hop) > 1)
		return; /* the local stage's steps or hop_cb bring us back */
	uint8_t *buf;
	int built = build_frame(r, b, &buf, &len);
	if (built != 0) {
		if (built > 0)
			pn_task_schedule(c->dispatcher);
		return;
	}
	if (b != r->next_batch && r->bstate[b] != BATCH_LOST) {
		free(buf); /* its logits came in while it was read */
		pn_task_schedule(c->dispatcher);
		return;
	}
	if (b == r->next_batch) {
		r->next_batch++;
		r->t_dispatch[b] = pn_now_ns();
	} else {
		r->nlost--;
	}
	r->bstate[b] = BATCH_INFLIGHT;
	r->bepoch[b] = (uint8_t)r->epoch;
	r->t_sent[b] = pn_now_ns();
	r->inflight++;
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
	pn_peer_free(r->first_hop);
	r->first_hop = NULL;
	if (r->ranges[0].node) {
		r->first_hop = pn_peer_new(c->loop, r->ranges[0].node->address, c->o.token, err,
					   sizeof(err));
		if (!r->first_hop) {
			end_run(r, RUN_FAILED, "%s", err);
			return;
		}
	}
	r->state = RUN_RUNNING;
	c->gen++;
	r->t_progress = pn_now_ns();
	EPOCH(r, r->epoch)->t_start = r->t_progress;
	if (r->epoch == 0) {
		r->t_start = r->t_progress;
		r->cpu_start = pn_cpu_ns();
		memcpy(r->acct_start, c->acct, sizeof(c->acct));
		pn_info("run %d: %zu images in %zu batches, %s, window %d, wire %s", r->id,
			r->samples, r->nbatches, r->pipelined ? "pipelined" : "sequential",
			r->window, pn_dtype_name(r->dtype));
		pn_events_emit(c->events, "run", run_json(r));
	} else {
		pn_info("run %d: epoch %d running", r->id, r->epoch);
	}
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
		const char *error = json_string_value(json_object_get(j, "error"));
		const char *detail = json_string_value(json_object_get(j, "detail"));
		char why[400];
		snprintf(why, sizeof(why), "%s", detail ? detail : rep->status ? "?" : rep->error);
		json_decref(j);
		if (rep->status == 0 || rep->status >= 500) /* not answering: re-plan without it */
			node_down(n, why);
		else if (rep->status == 401)
			node_refuse_auth(n, "token mismatch: the stage answered 401 to the "
					    "coordinator's PUT /v1/stage");
		else if (rep->status == 409 && error && strcmp(error, "model mismatch") == 0)
			node_refuse(n, why);
		else
			end_run(r, RUN_FAILED, "stage %s refused the plan (%d): %s", n->address,
				rep->status, why);
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
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s}", "run", r->id, "epoch",
			 r->epoch & 255, "first", r->ranges[i].first, "last", r->ranges[i].last,
			 "batch", r->batch, "wire", pn_dtype_name(r->dtype), "next", next,
			 "model_sha256", c->sha);
}

static void configure(struct run *r)
{
	struct pn_coord *c = r->c;
	int nclasses = pn_model_num_classes(c->m);
	r->state = RUN_CONFIGURING;
	if (!r->ds) { /* opened when posted, so this is not expected */
		end_run(r, RUN_FAILED, "%s: the dataset is not open", r->dataset);
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
	r->bstate = calloc(r->nbatches, 1);
	r->bepoch = calloc(r->nbatches, 1);
	r->bresends = calloc(r->nbatches, 1);
	r->t_dispatch = calloc(r->nbatches, sizeof(uint64_t));
	r->t_done = calloc(r->nbatches, sizeof(uint64_t));
	r->t_sent = calloc(r->nbatches, sizeof(uint64_t));
	if (!r->logits || !r->labels || !r->bstate || !r->bepoch || !r->bresends ||
	    !r->t_dispatch || !r->t_done || !r->t_sent) {
		end_run(r, RUN_FAILED, "out of memory for %zu samples", r->samples);
		return;
	}
	if (r->auto_wait_s > 0 && pn_coord_reaching(c, r->waiting, sizeof(r->waiting))) {
		r->reach_waiting = 1;
		r->reach_deadline = pn_now_ns() + (uint64_t)r->auto_wait_s * 1000000000u;
		pn_info("run %d: %s: waiting up to %d s", r->id, r->waiting, r->auto_wait_s);
		reach_poll(r);
		return;
	}
	plan_start(r);
}

/* The stages reached (or waited for long enough): the run's plan over the
 * stages usable now, then their configuration. */
static void plan_start(struct run *r)
{
	struct pn_coord *c = r->c;
	if (refused_only(r))
		return;
	int members[MAX_STAGES], nm = live_members(c, members);
	if (!r->split_auto && !same_members(EPOCH(r, r->epoch), members, nm)) {
		int points[MAX_RANGES], npoints;
		const char *how = plan_over(r, members, nm, points, &npoints);
		snprintf(r->split_note, sizeof(r->split_note),
			 "%d of %d stages were up when the run started: split by %s", nm, c->nnodes,
			 how);
		r->split_source = strcmp(how, "the planner") == 0 ? "planner" : "macs";
		apply_points(r, points, npoints, members, nm);
		if (r->pipelined && r->window_auto)
			r->window = r->nranges + 1;
		pn_warn("run %d: %s", r->id, r->split_note);
	}
	if (r->split_auto) {
		r->auto_waiting = 1;
		r->auto_deadline = pn_now_ns() + (uint64_t)r->auto_wait_s * 1000000000u;
		auto_poll(r);
		return;
	}
	epoch_predict(r);
	if (send_configs(r) == 0 && r->pending == 0)
		begin(r);
}

/* PUT /v1/stage to every range of the run's current split (the own stage
 * directly); r->pending counts the replies awaited. 0, or -1 after failing
 * the run. */
static int send_configs(struct run *r)
{
	struct pn_coord *c = r->c;
	r->state = RUN_CONFIGURING;
	c->gen++;
	r->pending = 0;
	/* Replies to an older configuration must not count for this one. */
	for (int i = 0; i < r->nranges; i++)
		if (r->ranges[i].node)
			pn_peer_clear(r->ranges[i].node->ctl);
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
				return -1;
			}
			json_decref(reply);
			continue;
		}
		char *body = json_dumps(cfg, JSON_COMPACT);
		json_decref(cfg);
		n->cfg_run = (uint64_t)r->id;
		if (!body || pn_peer_send(n->ctl, PN_PUT, "/v1/stage", "application/json", body,
					  strlen(body), CONTROL_RETRY_MS, config_cb, n) != 0) {
			end_run(r, RUN_FAILED, "out of memory for the plan of stage %s",
				n->address);
			return -1;
		}
		r->pending++;
	}
	return 0;
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
	r->c->gen++;
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

/* Bytes of a frame of n images crossing the cut before block `cut`: source
 * images into block 0, logits after the last block, activations between. */
static size_t cut_bytes(const struct pn_coord *c, int cut, size_t n, int dtype)
{
	int nb = pn_model_blocks(c->m);
	if (cut == 0)
		return pn_frame_size(PN_DTYPE_U8, n, PN_IMAGE_SIDE, PN_IMAGE_SIDE, 3);
	struct pn_shape sh = pn_model_shape(c->m, cut);
	return pn_frame_size(cut == nb ? PN_DTYPE_F32 : dtype, n, (size_t)sh.h, (size_t)sh.w,
			     (size_t)sh.c);
}

static const char *range_address(const struct run *r, int i)
{
	return i < 0 || i >= r->nranges || !r->ranges[i].node ? "coordinator"
							      : r->ranges[i].node->address;
}

/* pipenet_hop_bytes_total: the frames of a finished batch on every hop. */
static void count_hops(struct run *r, size_t n)
{
	struct pn_coord *c = r->c;
	for (int i = 0; i <= r->nranges; i++) {
		const char *from = range_address(r, i - 1), *to = range_address(r, i);
		if (strcmp(from, to) == 0)
			continue; /* the coordinator's own range: no network */
		int k;
		for (k = 0; k < c->nhops; k++)
			if (strcmp(c->hops[k].from, from) == 0 && strcmp(c->hops[k].to, to) == 0)
				break;
		if (k == c->nhops) {
			if (k == MAX_HOPS)
				continue;
			snprintf(c->hops[k].from, sizeof(c->hops[k].from), "%s", from);
			snprintf(c->hops[k].to, sizeof(c->hops[k].to), "%s", to);
			c->nhops++;
		}
		int cut = i < r->nranges ? r->ranges[i].first : pn_model_blocks(c->m);
		c->hops[k].bytes += cut_bytes(c, cut, n, r->dtype);
	}
}

static json_t *accuracy_json(const struct run *r)
{
	return r->labelled ? json_real((double)r->correct / (double)r->labelled) : json_null();
}

static json_t *points_json(const int *points, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_integer(points[i]));
	return a;
}

/* The "batch" event (see /tmp/sse-schema.md in the README). */
static json_t *batch_json(const struct run *r, uint32_t seq, size_t n)
{
	uint64_t t0 = pn_now_ns();
	json_t *stages = json_array();
	for (int i = 0; i < r->nranges; i++) {
		const struct range *g = &r->ranges[i];
		json_array_append_new(
			stages,
			json_pack("{s:i, s:s, s:f, s:f, s:I, s:I}", "index", i, "address",
				  range_address(r, i), "compute_ms", g->recent_compute_ms,
				  "queue_ms", g->recent_queue_ms, "bytes_in",
				  (json_int_t)cut_bytes(r->c, g->first, n, r->dtype), "bytes_out",
				  (json_int_t)cut_bytes(r->c, g->last, n, r->dtype)));
	}
	json_t *j = json_pack("{s:i, s:i, s:I, s:f, s:i, s:I, s:I, s:o}", "run", r->id, "seq",
			      (int)seq, "images", (json_int_t)n, "latency_ms",
			      ms(r->t_done[seq] - r->t_dispatch[seq]), "epoch", r->epoch,
			      "images_done", (json_int_t)r->images_done, "samples",
			      (json_int_t)r->samples, "stages", stages);
	json_object_set_new(j, "accuracy", accuracy_json(r));
	r->c->acct[ACCT_JSON] += pn_now_ns() - t0;
	return j;
}

static double wall_time(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double epoch_img_s(const struct epoch *ep)
{
	return ep->t_last > ep->t_start
		       ? (double)ep->images / ((double)(ep->t_last - ep->t_start) / 1e9)
		       : 0;
}

static int same_members(const struct epoch *ep, const int *members, int nm)
{
	return nm == ep->nmembers && memcmp(members, ep->members, (size_t)nm * sizeof(int)) == 0;
}

/* Block ranges of a split over `members` (node indices in pipeline
 * order): k points make k + 1 ranges; with one more range than members
 * the coordinator computes the first (with no members, all of them). */
static void apply_points(struct run *r, const int *points, int npoints, const int *members, int nm)
{
	struct pn_coord *c = r->c;
	int blocks = pn_model_blocks(c->m);
	for (int i = 0; i < r->nranges; i++)
		json_decref(r->ranges[i].status);
	memset(r->ranges, 0, sizeof(r->ranges));
	r->nranges = npoints + 1;
	int local = r->nranges - nm; /* 1: the coordinator takes the first range */
	for (int i = 0; i < r->nranges; i++) {
		r->ranges[i].first = i ? points[i - 1] : 0;
		r->ranges[i].last = i < npoints ? points[i] : blocks;
		r->ranges[i].node = i < local ? NULL : &c->nodes[members[i - local]];
	}
	struct epoch *ep = EPOCH(r, r->epoch);
	memmove(ep->points, points, (size_t)npoints * sizeof(int));
	ep->npoints = npoints;
	memmove(ep->members, members, (size_t)nm * sizeof(int));
	ep->nmembers = nm;
}

/* The run goes on under a new plan (a new epoch): `points` over
 * `members`, the stages reconfigured; frames of older epochs are stale
 * wherever they arrive. */
static void new_epoch(struct run *r, const int *points, int npoints, const int *members, int nm,
		      const char *reason)
{
	struct pn_coord *c = r->c;
	struct epoch *old = EPOCH(r, r->epoch);
	json_t *ev = json_pack("{s:i, s:f, s:o, s:o, s:i, s:f, s:n, s:s}", "run", r->id, "time",
			       wall_time(), "from", points_json(old->points, old->npoints), "to",
			       points_json(points, npoints), "epoch", r->epoch + 1, "img_s_before",
			       epoch_img_s(old), "img_s_after", "reason", reason);
	int had_local = r->ranges[0].node == NULL;
	int same = same_members(old, members, nm);
	int pts[MAX_RANGES], mem[MAX_STAGES]; /* the arguments may alias the run's */
	memcpy(pts, points, (size_t)npoints * sizeof(int));
	memcpy(mem, members, (size_t)nm * sizeof(int));
	pn_peer_free(r->first_hop); /* drops frames of the old plan not yet sent */
	r->first_hop = NULL;
	r->epoch++;
	memset(EPOCH(r, r->epoch), 0, sizeof(r->epochs[0]));
	snprintf(EPOCH(r, r->epoch)->reason, sizeof(r->epochs[0].reason), "%s", reason);
	apply_points(r, pts, npoints, mem, nm);
	if (!same) /* adapt's ratios belonged to the old stages */
		for (int i = 0; i < MAX_STAGES; i++)
			r->ratio[i] = r->applied[i] = 1.0;
	if (r->next_img_s > 0) {
		EPOCH(r, r->epoch)->predicted_img_s = r->next_img_s;
		EPOCH(r, r->epoch)->predicted_latency_ms = r->next_latency_ms;
	} else {
		epoch_predict(r);
	}
	json_object_set_new(ev, "predicted_img_s",
			    EPOCH(r, r->epoch)->predicted_img_s > 0
				    ? json_real(EPOCH(r, r->epoch)->predicted_img_s)
				    : json_null());
	r->next_reason[0] = '\0';
	r->next_img_s = r->next_latency_ms = 0;
	r->adapt_last = pn_now_ns();
	r->adapt_hold = 0;
	if (r->pipelined && r->window_auto)
		r->window = r->nranges + 1;
	r->draining = 0;
	if (had_local && r->ranges[0].node)
		pn_stage_reset(c->local);
	pn_info("run %d: epoch %d from batch %zu: %s", r->id, r->epoch, r->next_batch, reason);
	pn_events_emit(c->events, "resplit", ev);
	if (send_configs(r) == 0 && r->pending == 0)
		begin(r);
}

/* Every batch of the old plan is in: the requested split. */
static void resplit(struct run *r)
{
	char reason[sizeof(r->next_reason)];
	snprintf(reason, sizeof(reason), "%s",
		 r->next_reason[0] ? r->next_reason : "PUT /api/v1/split");
	new_epoch(r, r->next_points, r->next_npoints, r->next_members, r->next_nmembers, reason);
}

static void check_drain(struct run *r)
{
	if (!r->draining || r->state != RUN_RUNNING)
		return;
	if (r->next_batch >= r->nbatches && !r->nlost) {
		r->draining = 0; /* every batch is out: nothing left for a new plan */
		return;
	}
	if (r->inflight || (r->first_hop && pn_peer_pending(r->first_hop)))
		return;
	resplit(r);
}

/* A split over `members` for the run's batch: the planner's when their
 * block times are known, else MACs balanced over them; with no members
 * the coordinator computes every block. Returns how it was made. */
static const char *plan_over(struct run *r, const int *members, int nm, int *points, int *npoints)
{
	struct pn_split best;
	*npoints = 0;
	if (nm == 0)
		return "the coordinator alone";
	if (plan_best(r->c, members, nm, r->batch, r->dtype, &best) == 0) {
		*npoints = best.stages - 1;
		memcpy(points, best.cuts + 1, (size_t)*npoints * sizeof(int));
		return "the planner";
	}
	*npoints = auto_split(r->c->m, nm, points);
	return "MACs";
}

/* A node of the run's plan is down or refused: the batches in flight are
 * lost (their frames may still arrive, as stale), and the run goes on at
 * once under a plan over the nodes still up, down to the coordinator
 * alone. */
static void failover(struct run *r, const struct node *n)
{
	int members[MAX_STAGES], points[MAX_RANGES], npoints;
	int nm = live_members(r->c, members);
	char reason[1100];
	if (!nm && refused_only(r))
		return;
	for (size_t b = r->low; b < r->next_batch; b++)
		if (r->bstate[b] == BATCH_INFLIGHT || r->bstate[b] == BATCH_LOST) {
			r->nlost += r->bstate[b] == BATCH_INFLIGHT;
			r->bstate[b] = BATCH_LOST;
			r->bepoch[b] = (uint8_t)(r->epoch + 1); /* old copies are stale */
		}
	r->inflight = 0;
	r->draining = 0;
	r->failovers++;
	r->c->failovers_total++;
	const char *how = plan_over(r, members, nm, points, &npoints);
	snprintf(reason, sizeof(reason), "stage %s %s: %s; re-planned over %d stage%s by %s",
		 n->address, n->refused ? "refused" : "down", n->why, nm, nm == 1 ? "" : "s", how);
	pn_warn("run %d: %s, %zu batches to send again", r->id, reason, r->nlost);
	r->next_img_s = r->next_latency_ms = 0;
	new_epoch(r, points, npoints, members, nm, reason);
}

static void logits_frame(struct pn_req *q, struct pn_coord *c, uint8_t *buf, size_t len)
{
	struct run *r = c->active;
	int classes = pn_model_num_classes(c->m);
	struct pn_frame_header h;
	struct pn_frame_error e;
	/* While a re-split reconfigures the stages, a late duplicate may come. */
	if (!r || (r->state != RUN_RUNNING && r->state != RUN_FINISHING &&
		   !(r->state == RUN_CONFIGURING && r->epoch > 0))) {
		free(buf);
		pn_reply_error(q, 409, "no run", "no run is taking logits now");
		return;
	}
	struct pn_frame_expect x = {
		.run = (uint64_t)r->id,
		.epoch = -1, /* checked per batch below */
		.first_block = pn_model_blocks(c->m),
		.dtype = PN_DTYPE_F32,
		.max_n = r->batch,
		.h = 1,
		.w = 1,
		.c = classes,
	};
	uint64_t t0 = pn_now_ns();
	int valid = pn_frame_validate(buf, len, &x, &h, &e) == 0;
	c->acct[ACCT_CRC] += pn_now_ns() - t0;
	if (!valid) {
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
	if (r->bstate[h.seq] == BATCH_DONE) {
		free(buf);
		r->duplicates++;
		c->duplicates_total++;
		pn_reply_json(q, 202, json_pack("{s:b}", "duplicate", 1));
		return;
	}
	if (r->bstate[h.seq] == BATCH_UNSENT || h.epoch != r->bepoch[h.seq]) {
		/* Computed under a plan since dropped: the batch goes (or went)
		 * again under the current one, whose logits count. */
		free(buf);
		r->stale++;
		c->stale_total++;
		pn_reply_error(q, 409, "stale frame",
			       "batch %" PRIu32 " of run %d was sent again under plan epoch %d",
			       h.seq, r->id, r->bepoch[h.seq]);
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
	if (r->bstate[h.seq] == BATCH_INFLIGHT)
		r->inflight--;
	else
		r->nlost--; /* its deadline passed, but here it is */
	r->bstate[h.seq] = BATCH_DONE;
	r->t_done[h.seq] = now;
	if (!r->t_first_done) {
		r->t_first_done = now;
		r->first_done_images = h.n;
	}
	r->t_last_done = r->t_progress = now;
	r->batches_done++;
	r->images_done += h.n;
	struct epoch *ep = EPOCH(r, r->epoch);
	ep->images += h.n;
	ep->batches++;
	ep->t_last = now;
	c->images_total += h.n;
	c->batches_total++;
	pn_hist_observe(&c->latency, (double)(now - r->t_dispatch[h.seq]) / 1e9, 1);
	double lat_ms = ms(now - r->t_dispatch[h.seq]);
	r->latency_avg_ms = r->latency_avg_ms > 0 ? 0.9 * r->latency_avg_ms + 0.1 * lat_ms : lat_ms;
	count_hops(r, h.n);
	pn_reply_json(q, 202, json_pack("{s:b}", "duplicate", 0));
	pn_events_emit(c->events, "batch", batch_json(r, h.seq, h.n));
	if (r->batches_done == r->nbatches) {
		finish(r);
	} else {
		pn_task_schedule(c->dispatcher);
		check_drain(r);
	}
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
		uint64_t t0 = pn_now_ns(), crc0 = c->acct[ACCT_CRC], json0 = c->acct[ACCT_JSON];
		logits_frame(q, c, buf, len);
		c->acct[ACCT_FRAME] += pn_now_ns() - t0 - (c->acct[ACCT_CRC] - crc0) -
				       (c->acct[ACCT_JSON] - json0);
		return;
	}
	json_t *error;
	int status = pn_stage_submit(c->local, buf, len, &error);
	if (status == 503)
		pn_reply_header(q, "Retry-After", "1");
	pn_reply_json(q, status, status == 202 ? json_pack("{s:b}", "queued", 1) : error);
}

/* ---- the stages: health and block times ---- */

static int node_usable(const struct node *n)
{
	return n->up != 0 && !n->refused;
}

/* The nodes a plan may use now, in pipeline order. */
static int live_members(const struct pn_coord *c, int *members)
{
	int nm = 0;
	for (int i = 0; i < c->nnodes; i++)
		if (node_usable(&c->nodes[i]))
			members[nm++] = i;
	return nm;
}

static int run_uses(const struct run *r, const struct node *n)
{
	for (int i = 0; i < r->nranges; i++)
		if (r->ranges[i].node == n)
			return 1;
	return 0;
}

static const char *node_state(const struct node *n)
{
	return n->refused ? "refused" : n->up < 0 ? "unknown" : n->up ? "up" : "down";
}

static void node_event(const struct node *n)
{
	pn_events_emit(n->c->events, "stage",
		       json_pack("{s:s, s:s, s:s, s:f}", "address", n->address, "state",
				 node_state(n), "reason", n->why, "time", wall_time()));
}

/* The node is out of use: the active run re-plans without it, and a
 * DELETE /v1/stage is left queued so that, should it wake up, it drops
 * the frames of the old plan instead of computing them. */
static void node_lost(struct node *n)
{
	struct run *r = n->c->active;
	node_event(n);
	pn_peer_clear(n->ctl);
	pn_peer_send(n->ctl, PN_DELETE, "/v1/stage", NULL, NULL, 0, 0, NULL, NULL);
	if (r &&
	    (r->state == RUN_RUNNING ||
	     (r->state == RUN_CONFIGURING && !r->auto_waiting && !r->reach_waiting)) &&
	    run_uses(r, n))
		failover(r, n);
}

static void node_down(struct node *n, const char *why)
{
	if (n->up == 0)
		return;
	n->up = 0;
	n->misses = 0;
	snprintf(n->why, sizeof(n->why), "%s", why);
	n->c->stage_down_total++;
	pn_warn("stage %s is down: %s", n->address, why);
	node_lost(n);
}

static void node_refuse(struct node *n, const char *why)
{
	snprintf(n->why, sizeof(n->why), "%s", why);
	if (n->refused)
		return;
	n->refused = 1;
	pn_warn("stage %s is refused: %s", n->address, why);
	node_lost(n);
}

/* A 401 from the node, or for the frames it sends: refused with `why`
 * until it restarts. */
static void node_refuse_auth(struct node *n, const char *why)
{
	snprintf(n->auth_why, sizeof(n->auth_why), "%s", why);
	node_refuse(n, why);
}

/* Every stage is refused (another token, model or role): a setting to
 * fix. The run fails naming them rather than the coordinator computing
 * every block alone, as it does when some stage is merely down (it may
 * come back). 1 after failing the run. */
static int refused_only(struct run *r)
{
	struct pn_coord *c = r->c;
	char list[sizeof(r->error)] = "";
	for (int i = 0; i < c->nnodes; i++) {
		const struct node *n = &c->nodes[i];
		size_t at = strlen(list);
		if (!n->refused)
			return 0;
		snprintf(list + at, sizeof(list) - at, "%sstage %s refused: %s", i ? "; " : "",
			 n->address, n->why);
	}
	if (!c->nnodes)
		return 0;
	end_run(r, RUN_FAILED, "every stage is refused: %.700s", list);
	return 1;
}

/* A stage's health answer against the coordinator's token: why they would
 * not take each other's requests and frames, or NULL. A stage that does
 * not say (an older version) is judged by its 401s. */
static const char *token_mismatch(const struct pn_coord *c, json_t *health)
{
	json_t *set = json_object_get(health, "token_set");
	int mine = c->o.token && *c->o.token;
	if (!json_is_boolean(set))
		return NULL;
	if (json_is_true(set) && !mine)
		return "token mismatch: the stage has a token but the coordinator has none";
	if (!json_is_true(set) && mine)
		return "token mismatch: the stage has no token but the coordinator has one";
	if (mine && !json_is_true(json_object_get(health, "token_match")))
		return "token mismatch: the stage's token is not the coordinator's";
	return NULL;
}

static void ping(struct node *n);

/* A health answer names the node's role and model: a stage with another
 * model (say, restarted with another file) is refused until it has ours. */
static void probe_cb(const struct pn_reply *rep, void *arg)
{
	struct node *n = arg;
	struct pn_coord *c = n->c;
	uint64_t now = pn_now_ns();
	n->probing = 0;
	json_t *j =
		rep->status == 200 ? json_loadb((const char *)rep->body, rep->len, 0, NULL) : NULL;
	if (!j) {
		char why[300];
		snprintf(why, sizeof(why), "health check: %s",
			 rep->status ? "not a JSON answer" : rep->error);
		if (n->up == -1 && now - c->t_start < (uint64_t)REACH_MS * 1000000u) {
			/* Not reached yet: it may still be starting. Asked again
			 * at the next tick, or sooner by a run waiting for it. */
			snprintf(n->why, sizeof(n->why), "%s", why);
			return;
		}
		if (++n->misses >= HEALTH_MISSES)
			node_down(n, why);
		else
			ping(n); /* once more now, not in a second */
		return;
	}
	n->misses = 0;
	n->last_contact_ns = now;
	const char *sha = json_string_value(json_object_get(j, "model_sha256"));
	const char *role = json_string_value(json_object_get(j, "role"));
	double uptime = json_number_value(json_object_get(j, "uptime_s"));
	char why[400] = "";
	if (n->up == 1 && uptime + 1.0 < n->uptime_s) {
		/* Restarted between two checks: it has lost its plan and queue. */
		char restart[300];
		snprintf(restart, sizeof(restart), "restarted (up %.1f s, was %.1f s)", uptime,
			 n->uptime_s);
		node_down(n, restart);
	}
	if (n->up != 1)
		n->auth_why[0] = '\0'; /* (re)started: it may have another token now */
	n->uptime_s = uptime;
	const char *token = token_mismatch(c, j);
	if (!role || strcmp(role, "stage") != 0)
		snprintf(why, sizeof(why), "it is a %s, not a stage", role ? role : "?");
	else if (!sha || strcmp(sha, c->sha) != 0)
		snprintf(why, sizeof(why),
			 "its model has SHA-256 %.64s, the coordinator's %.64s (model mismatch)",
			 sha ? sha : "?", c->sha);
	else if (token || n->auth_why[0])
		snprintf(why, sizeof(why), "%s", token ? token : n->auth_why);
	json_decref(j);
	if (n->up != 1) {
		if (n->up == 0)
			pn_info("stage %s answers again", n->address);
		n->up = 1;
		n->up_since = now;
		if (!why[0])
			node_event(n);
	}
	if (why[0]) {
		node_refuse(n, why);
	} else if (n->refused) {
		n->refused = 0;
		n->up_since = now;
		pn_info("stage %s has the coordinator's model and token again", n->address);
		node_event(n);
	}
}

static void ping(struct node *n)
{
	if (n->probing)
		return;
	if (pn_peer_send(n->probe, PN_GET, "/api/v1/health", NULL, NULL, 0, 0, probe_cb, n) == 0)
		n->probing = 1;
}

static const double *node_profile(const struct node *n, int batch)
{
	for (int i = 0; i < PROFILES; i++)
		if (n->prof[i].batch == batch)
			return n->prof[i].ms;
	return NULL;
}

static void profile_ask(struct node *n);

static void profile_cb(const struct pn_reply *rep, void *arg)
{
	struct node *n = arg;
	int nb = pn_model_blocks(n->c->m);
	json_t *j = rep->status ? json_loadb((const char *)rep->body, rep->len, 0, NULL) : NULL;
	json_t *ms = json_object_get(j, "block_ms");
	if (rep->status == 200 && json_is_array(ms) && (int)json_array_size(ms) == nb &&
	    json_integer_value(json_object_get(j, "batch")) == n->prof_want) {
		int slot = n->prof_next;
		n->prof_next = (n->prof_next + 1) % PROFILES;
		n->prof[slot].batch = n->prof_want;
		for (int b = 0; b < nb; b++)
			n->prof[slot].ms[b] = json_number_value(json_array_get(ms, (size_t)b));
		double fb = json_number_value(json_object_get(j, "frame_ns_per_byte"));
		if (isfinite(fb) && fb > 0 && fb < 1e3)
			n->frame_ns_per_byte = fb;
		int batch = n->prof_want;
		n->prof_want = 0;
		n->last_contact_ns = pn_now_ns();
		int all = 1;
		for (int i = 0; i < n->c->nnodes; i++)
			all &= node_profile(&n->c->nodes[i], batch) != NULL;
		if (all) /* measured after the block times, on idle stages */
			want_links(n->c, batch);
	} else if (rep->status == 202 || rep->status == 503) {
		pn_timer_arm(n->prof_timer, PROFILE_POLL_MS); /* measuring: ask again */
	} else if (rep->status == 0 || rep->status >= 500) {
		/* Asked again later (a loaded or slow stage may not answer in
		 * time); profile_timer_cb gives up while the stage is down. */
		pn_warn("stage %s: no block times for batch %d (%d %s); asking again", n->address,
			n->prof_want, rep->status, rep->status ? "" : rep->error);
		pn_timer_arm(n->prof_timer, PROFILE_RETRY_MS);
	} else {
		pn_warn("stage %s: no block times for batch %d (%d)", n->address, n->prof_want,
			rep->status);
		n->prof_want = 0;
	}
	json_decref(j);
}

static void profile_ask(struct node *n)
{
	char body[64];
	snprintf(body, sizeof(body), "{\"batch\": %d, \"iters\": %d}", n->prof_want, PROFILE_ITERS);
	char *b = strdup(body);
	if (!b || pn_peer_send(n->probe, PN_POST, "/v1/profile", "application/json", b, strlen(b),
			       0, profile_cb, n) != 0)
		n->prof_want = 0;
}

static void profile_timer_cb(void *arg)
{
	struct node *n = arg;
	if (n->prof_want && !node_usable(n))
		n->prof_want = 0; /* want_profiles asks again once it is back */
	else if (n->prof_want)
		profile_ask(n);
}

/* 1 when every stage's block times for `batch` are known; else asks the
 * stages that lack them (one batch size at a time each). */
static int want_profiles(struct pn_coord *c, int batch)
{
	/* All stages at once: stages on different machines do not disturb
	 * each other, and stages that share a machine compute at the same
	 * time in a run too, so their times under that load are the ones to
	 * plan with (timed one after the other they predicted a loopback
	 * cluster 30-50% too fast). */
	int have = 1;
	for (int i = 0; i < c->nnodes; i++) {
		struct node *n = &c->nodes[i];
		if (node_profile(n, batch) || !node_usable(n))
			continue;
		have = 0;
		if (!n->prof_want) {
			n->prof_want = batch;
			profile_ask(n);
		}
	}
	return have;
}

/* ---- the 1 s tick: counters, stall watch, summary event ---- */

static double img_s_now(struct run *r, uint64_t now)
{
	int k = r->rate_n < RATE_TICKS ? r->rate_n : RATE_TICKS;
	int oldest = (r->rate_n - k) % RATE_TICKS;
	if (k == 0 || now <= r->rate_t[oldest])
		return 0;
	return (double)(r->images_done - r->rate_images[oldest]) /
	       ((double)(now - r->rate_t[oldest]) / 1e9);
}

static double hop_transfer_ms(const struct run *r, int i)
{
	if (i == 0 && !r->ranges[0].node)
		return 0; /* the coordinator's own range: no network */
	if (i == 0)
		return r->hop_frames ? ms(r->hop_transfer_ns) / (double)r->hop_frames : 0;
	json_t *st = r->ranges[i - 1].status;
	uint64_t acked = counter(st, "out_acked");
	return acked ? ms(counter(st, "out_transfer_ns")) / (double)acked : 0;
}

static int predicted(struct pn_coord *c, const struct run *r, struct pn_split *out);

static json_t *summary_json(struct pn_coord *c)
{
	struct run *r = c->active;
	uint64_t now = pn_now_ns();
	json_t *j = json_pack("{s:f}", "time", wall_time());
	if (!r || r->state == RUN_QUEUED) {
		int points[MAX_RANGES], npoints;
		default_points(c, points, &npoints);
		json_object_set_new(j, "run", json_null());
		json_object_set_new(j, "state", json_string("idle"));
		json_object_set_new(j, "split", points_json(points, npoints));
		json_object_set_new(j, "inflight", json_integer(0));
		json_object_set_new(j, "stages", json_array());
		json_object_set_new(j, "hops", json_array());
		json_object_set_new(j, "bottleneck", json_null());
		json_object_set_new(j, "predicted_img_s", json_null());
		return j;
	}
	double wall = r->t_start ? (double)(now - r->t_start) / 1e9 : 0;
	json_object_set_new(j, "run", json_integer(r->id));
	json_object_set_new(j, "state", json_string(state_names[r->state]));
	json_object_set_new(j, "img_s_now", json_real(img_s_now(r, now)));
	json_object_set_new(j, "img_s_overall",
			    json_real(wall > 0 ? (double)r->images_done / wall : 0));
	json_object_set_new(j, "accuracy", accuracy_json(r));
	json_object_set_new(j, "images_done", json_integer((json_int_t)r->images_done));
	json_object_set_new(j, "samples", json_integer((json_int_t)r->samples));
	json_object_set_new(j, "inflight", json_integer(r->inflight));
	json_object_set_new(j, "split",
			    points_json(EPOCH(r, r->epoch)->points, EPOCH(r, r->epoch)->npoints));
	json_object_set_new(j, "epoch", json_integer(r->epoch));
	json_t *stages = json_array(), *hops = json_array();
	double worst = -1;
	json_t *bottleneck = json_null();
	for (int i = 0; i < r->nranges; i++) {
		const struct range *g = &r->ranges[i];
		json_array_append_new(
			stages,
			json_pack("{s:i, s:s, s:i, s:i, s:f, s:f, s:f, s:o}", "index", i, "address",
				  range_address(r, i), "first", g->first, "last", g->last,
				  "utilisation", g->utilisation, "compute_ms_per_batch",
				  g->recent_compute_ms, "queue_ms_per_batch", g->recent_queue_ms,
				  "cpu",
				  stage_cpu_json(g->status, counter(g->status, "frames_in"))));
		if (g->recent_compute_ms > worst) {
			worst = g->recent_compute_ms;
			json_decref(bottleneck);
			bottleneck = json_pack("{s:s, s:i}", "kind", "stage", "index", i);
		}
	}
	for (int i = 0; i <= r->nranges; i++) {
		int cut = i < r->nranges ? r->ranges[i].first : pn_model_blocks(c->m);
		/* Hops are not named the bottleneck: the sender's transfer time
		 * includes the receiver's wait for its own compute step. */
		json_array_append_new(
			hops, json_pack("{s:s, s:s, s:I, s:f}", "from", range_address(r, i - 1),
					"to", range_address(r, i), "bytes_per_batch",
					(json_int_t)cut_bytes(c, cut, (size_t)r->batch, r->dtype),
					"transfer_ms_per_batch", hop_transfer_ms(r, i)));
	}
	json_object_set_new(j, "stages", stages);
	json_object_set_new(j, "hops", hops);
	json_object_set_new(j, "coordinator", coord_cpu_json(r, wall));
	json_object_set_new(j, "bottleneck", worst > 0 ? bottleneck : json_null());
	if (worst <= 0)
		json_decref(bottleneck);
	struct pn_split p;
	json_object_set_new(j, "predicted_img_s",
			    predicted(c, r, &p) == 0 ? json_real(p.img_s) : json_null());
	return j;
}

/* How long a batch may go without logits before it is sent again: a few
 * times what its plan predicts for it and the window ahead of it, and a
 * few times the latency batches have had (which includes that wait). */
static uint64_t deadline_ns(const struct run *r)
{
	const struct epoch *ep = EPOCH(r, r->epoch);
	double limit = 3.0 * ep->predicted_latency_ms * (r->window + 1);
	double seen = 4.0 * r->latency_avg_ms, least = r->c->o.batch_deadline_s * 1e3;
	limit = limit > seen ? limit : seen;
	return (uint64_t)((limit > least ? limit : least) * 1e6);
}

/* Batches past their deadline: lost somewhere though every stage answers
 * its health checks (a dropped frame, a stage that refused it). They are
 * sent again under the same plan; whichever copy comes first counts. */
static void deadline_check(struct run *r, uint64_t now)
{
	/* Not before the first logits: until then the time a batch takes
	 * is not known (a slow machine, stages busy measuring their block
	 * times), and a lost stage is found by its health checks. */
	if (!r->batches_done)
		return;
	uint64_t limit = deadline_ns(r);
	for (size_t b = r->low; b < r->next_batch; b++) {
		if (r->bstate[b] != BATCH_INFLIGHT || now - r->t_sent[b] < limit)
			continue;
		if (r->bresends[b] >= DEADLINE_RESENDS) {
			char errors[600] = "";
			for (int i = 0; i < r->nranges; i++) {
				const char *le = json_string_value(
					json_object_get(r->ranges[i].status, "last_error"));
				if (le)
					snprintf(errors + strlen(errors),
						 sizeof(errors) - strlen(errors), "; %s: %s",
						 range_address(r, i), le);
			}
			end_run(r, RUN_FAILED,
				"batch %zu had no logits after %d sends, %.1f s each%s", b,
				DEADLINE_RESENDS + 1, (double)limit / 1e9, errors);
			return;
		}
		r->bresends[b]++;
		r->resends++;
		r->c->resends_total++;
		r->bstate[b] = BATCH_LOST;
		r->nlost++;
		r->inflight--;
		pn_warn("run %d: batch %zu had no logits for %.1f s: sending it again", r->id, b,
			(double)(now - r->t_sent[b]) / 1e9);
	}
	if (r->nlost) {
		pn_task_schedule(r->c->dispatcher);
		check_drain(r);
	}
}

/* Nodes up (with our model) for READMIT_MS that the run's plan does not
 * use: re-split over every node up, once the batches in flight are in. */
static void readmit_check(struct run *r, uint64_t now)
{
	struct pn_coord *c = r->c;
	int members[MAX_STAGES], points[MAX_RANGES], npoints;
	if (r->draining)
		return;
	const struct node *back = NULL;
	for (int i = 0; i < c->nnodes; i++) {
		const struct node *n = &c->nodes[i];
		if (node_usable(n) && !run_uses(r, n)) {
			if (n->up < 1 || now - n->up_since < (uint64_t)READMIT_MS * 1000000u)
				return; /* wait until every returning node has settled */
			back = n;
		}
	}
	if (!back)
		return;
	int nm = live_members(c, members);
	const char *how = plan_over(r, members, nm, points, &npoints);
	char reason[700];
	snprintf(reason, sizeof(reason), "stage %s is back: re-planned over %d stages by %s",
		 back->address, nm, how);
	r->readmits++;
	c->readmits_total++;
	r->next_img_s = r->next_latency_ms = 0;
	request_split(r, points, npoints, members, nm, reason);
}

static void tick_cb(void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = c->active;
	uint64_t now = pn_now_ns();
	pn_timer_arm(c->tick, 1000);
	if (c->ticks++ % (PING_MS / 1000) == 0)
		for (int i = 0; i < c->nnodes; i++)
			ping(&c->nodes[i]);
	if (r && r->state == RUN_RUNNING &&
	    now - r->t_progress > (uint64_t)c->o.stall_s * 1000000000u) {
		end_run(r, RUN_FAILED, "no batch finished for %d s (stall_s)", c->o.stall_s);
	} else if (r && r->state == RUN_RUNNING) {
		deadline_check(r, now);
		if (r->state == RUN_RUNNING)
			readmit_check(r, now);
		if (r->state == RUN_RUNNING) {
			fetch_stats(r);
			if (!EPOCH(r, r->epoch)->predicted_img_s && want_profiles(c, r->batch))
				epoch_predict(r); /* the block times came in late */
			link_drift_check(r);
			adapt_check(r);
		}
		r->rate_t[r->rate_n % RATE_TICKS] = now;
		r->rate_images[r->rate_n % RATE_TICKS] = r->images_done;
		r->rate_n++;
	}
	uint64_t t0 = pn_now_ns();
	pn_events_emit(c->events, "summary", summary_json(c));
	c->acct[ACCT_JSON] += pn_now_ns() - t0;
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

/* The split points of a run or PUT /api/v1/split: "auto" or increasing
 * block numbers, one range per stage (or one more, computed by the
 * coordinator). "auto" is the planner's best plan over the measured block
 * times for `batch` when they are known (*source "planner"), else MACs
 * balanced over the stages ("macs"; always when batch is 0). 0, or -1
 * with the reason. */
static int parse_points(struct pn_coord *c, json_t *split, int batch, int dtype, int *points,
			int *npoints, const char **source, char *err, size_t errlen)
{
	struct pn_split best;
	*source = "given";
	int blocks = pn_model_blocks(c->m);
	int members[MAX_STAGES], nm = live_members(c, members);
	char down[300] = ""; /* " up (N down or refused)" */
	if (nm < c->nnodes)
		snprintf(down, sizeof(down), " up (%d down or refused)", c->nnodes - nm);
	*npoints = 0;
	if (c->nnodes > blocks) {
		snprintf(err, errlen, "%d stages for %d blocks: some would have nothing to do",
			 c->nnodes, blocks);
		return -1;
	}
	if (json_is_string(split) && strcmp(json_string_value(split), "auto") == 0) {
		if (batch > 0 && nm && plan_best(c, members, nm, batch, dtype, &best) == 0) {
			*npoints = best.stages - 1;
			memcpy(points, best.cuts + 1, (size_t)*npoints * sizeof(int));
			*source = "planner";
		} else {
			*npoints = nm ? auto_split(c->m, nm, points) : 0;
			*source = "macs";
		}
		return 0;
	}
	if (!json_is_array(split)) {
		snprintf(err, errlen, "split must be \"auto\" or an array of block numbers");
		return -1;
	}
	size_t i;
	json_t *v;
	json_array_foreach(split, i, v)
	{
		if (!json_is_integer(v)) {
			snprintf(err, errlen, "split[%zu] must be an integer", i);
			return -1;
		}
		json_int_t p = json_integer_value(v);
		if (p < 1 || p >= blocks) {
			snprintf(err, errlen,
				 "split[%zu] = %" JSON_INTEGER_FORMAT
				 " is out of range: split points are blocks 1 to %d",
				 i, p, blocks - 1);
			return -1;
		}
		if (i && p <= points[i - 1]) {
			snprintf(err, errlen,
				 "split[%zu] = %" JSON_INTEGER_FORMAT
				 " does not come after %d: split points must increase",
				 i, p, points[i - 1]);
			return -1;
		}
		if (i >= (size_t)nm) {
			snprintf(err, errlen,
				 "split has %zu points, which make %zu block ranges for %d "
				 "stages%s: "
				 "give %d points (or %d to have the coordinator compute the first "
				 "range)",
				 json_array_size(split), json_array_size(split) + 1, nm, down,
				 nm ? nm - 1 : 0, nm);
			return -1;
		}
		points[(*npoints)++] = (int)p;
	}
	if (*npoints + 1 < nm) {
		snprintf(err, errlen,
			 "split has %d points, which make %d block ranges for %d stages%s: give %d "
			 "points (or %d to have the coordinator compute the first range)",
			 *npoints, *npoints + 1, nm, down, nm - 1, nm);
		return -1;
	}
	return 0;
}

/* The split a run gets when it names none: the last PUT /api/v1/split, or auto. */
static void default_points(struct pn_coord *c, int *points, int *npoints)
{
	if (c->default_set) {
		memcpy(points, c->default_points, sizeof(c->default_points));
		*npoints = c->default_npoints;
	} else {
		int members[MAX_STAGES], nm = live_members(c, members);
		*npoints = nm ? auto_split(c->m, nm, points) : 0;
	}
}

static const char *const run_keys[] = {
	"dataset",	"offset", "stride", "samples", "batch_size",	   "mode",	  "split",
	"max_inflight", "wire",	  "queue",  "adapt",   "adapt_interval_s", "auto_wait_s", NULL};

/* A run from a POST body; NULL with a message. */
static struct run *parse_run(struct pn_coord *c, json_t *j, char *err, size_t errlen)
{
	long long offset, stride, samples, batch, window, interval, auto_wait;
	const char *dataset, *mode, *wire;
	if (pn_json_known(j, run_keys, err, errlen) ||
	    pn_json_str(j, "dataset", NULL, &dataset, err, errlen) ||
	    pn_json_int(j, "offset", 0, INT32_MAX, 0, &offset, err, errlen) ||
	    pn_json_int(j, "stride", 1, INT32_MAX, 1, &stride, err, errlen) ||
	    pn_json_int(j, "samples", 0, INT32_MAX, 0, &samples, err, errlen) ||
	    pn_json_int(j, "batch_size", 1, c->o.max_batch, 8, &batch, err, errlen) ||
	    pn_json_str(j, "mode", "pipelined", &mode, err, errlen) ||
	    pn_json_int(j, "max_inflight", 0, 1024, 0, &window, err, errlen) ||
	    pn_json_str(j, "wire", "f32", &wire, err, errlen) ||
	    pn_json_int(j, "adapt_interval_s", 1, 86400, 10, &interval, err, errlen) ||
	    pn_json_int(j, "auto_wait_s", 0, 600, 20, &auto_wait, err, errlen))
		return NULL;
	json_t *queue = json_object_get(j, "queue"), *adapt = json_object_get(j, "adapt");
	if ((queue && !json_is_boolean(queue)) || (adapt && !json_is_boolean(adapt))) {
		snprintf(err, errlen, "%s must be true or false",
			 queue && !json_is_boolean(queue) ? "queue" : "adapt");
		return NULL;
	}
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
	int points[MAX_RANGES], npoints = 0;
	const char *source = "default";
	json_t *split = json_object_get(j, "split");
	if (!split)
		default_points(c, points, &npoints);
	else if (parse_points(c, split, 0, dtype, points, &npoints, &source, err, errlen) != 0)
		return NULL;
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
	r->split_auto = split && json_is_string(split); /* resolved when it starts */
	r->split_source = r->split_auto ? "pending" : source;
	r->auto_wait_s = (int)auto_wait;
	r->adapt = json_is_true(adapt);
	r->adapt_interval_s = (int)interval;
	for (int i = 0; i < MAX_STAGES; i++)
		r->ratio[i] = r->applied[i] = 1.0;
	int members[MAX_STAGES], nm = live_members(c, members);
	if (npoints + 1 - nm < 0 || npoints + 1 - nm > 1) { /* a default from before a loss */
		npoints = nm ? auto_split(c->m, nm, points) : 0;
		r->split_source = "macs";
	}
	for (int i = 0; i < c->nnodes; i++) /* say which stages are left out, and why */
		if (!node_usable(&c->nodes[i]))
			snprintf(r->split_note + strlen(r->split_note),
				 sizeof(r->split_note) - strlen(r->split_note), "%sstage %s %s: %s",
				 r->split_note[0] ? "; " : "", c->nodes[i].address,
				 node_state(&c->nodes[i]), c->nodes[i].why);
	apply_points(r, points, npoints, members, nm);
	r->window_auto = pipelined && !window;
	r->window = !pipelined ? 1 : window ? (int)window : r->nranges + 1;
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
	free(r->building);
	free(r->cache.body);
	free(r->logits);
	free(r->labels);
	free(r->bstate);
	free(r->bepoch);
	free(r->bresends);
	free(r->t_dispatch);
	free(r->t_done);
	free(r->t_sent);
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
		if (r->bstate[b] == BATCH_DONE) {
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

/* A stage's process CPU per batch beside the wall time of its parts: the
 * kernels, and outside them by kind; other is the CPU none of these
 * account for (the kernel's socket copies, libevent, status replies).
 * When other processes take the core, the parts' wall time exceeds the
 * CPU: then `contended` is true and other is not known (0). */
static json_t *stage_cpu_json(json_t *status, uint64_t frames)
{
	uint64_t cpu = counter(status, "cpu_ns"), kernel = counter(status, "kernel_ns");
	uint64_t pre = counter(status, "preprocess_ns"), conv = counter(status, "convert_ns");
	uint64_t crc = counter(status, "crc_ns"), frame = counter(status, "frame_ns");
	uint64_t known = kernel + pre + conv + crc + frame;
	double f = frames ? (double)frames : 1;
	return json_pack("{s:f, s:b, s:f, s:{s:f, s:f, s:f, s:f, s:f}}", "cpu_ms_per_batch",
			 ms(cpu) / f, "contended",
			 cpu<known, "kernel_ms_per_batch", ms(kernel) / f, "overhead_ms_per_batch",
				 "preprocess", ms(pre) / f, "convert", ms(conv) / f, "crc",
				 ms(crc) / f, "frame", ms(frame) / f, "other", cpu>
					 known
				 ? ms(cpu - known) / f
				 : 0.0);
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
		json_object_set_new(s, "utilisation", json_real(g->utilisation));
		json_object_set_new(s, "cpu", stage_cpu_json(g->status, frames));
		json_array_append_new(arr, s);
		if (per_batch > worst) {
			worst = per_batch;
			*bottleneck = i;
		}
	}
	return arr;
}

/* The coordinator's CPU over the run, beside the stages' compute: per
 * image, as a share of the wall time, and the part of it by kind. */
static json_t *coord_cpu_json(const struct run *r, double wall_s)
{
	const struct pn_coord *c = r->c;
	uint64_t cpu = r->cpu_start ? (r->cpu_end ? r->cpu_end : pn_cpu_ns()) - r->cpu_start : 0;
	double per_image = r->images_done ? ms(cpu) / (double)r->images_done : 0;
	json_t *kinds = json_object();
	for (int k = 0; k < NACCT; k++) {
		uint64_t v = (r->cpu_end ? r->acct_end[k] : c->acct[k]) - r->acct_start[k];
		json_object_set_new(
			kinds, acct_names[k],
			json_real(r->batches_done ? ms(v) / (double)r->batches_done : 0));
	}
	return json_pack("{s:f, s:f, s:f, s:o}", "cpu_ms", ms(cpu), "cpu_ms_per_image", per_image,
			 "cpu_share", wall_s > 0 ? ms(cpu) / 1000 / wall_s : 0, "ms_per_batch",
			 kinds);
}

static json_t *run_json(const struct run *r)
{
	uint64_t t0 = pn_now_ns();
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
	json_object_set_new(j, "epoch", json_integer(r->epoch));
	const struct epoch *cur = EPOCH(r, r->epoch);
	json_object_set_new(j, "split_source", json_string(r->split_source));
	json_object_set_new(j, "waiting", r->reach_waiting ? json_string(r->waiting) : json_null());
	json_object_set_new(j, "split_note",
			    r->split_note[0] ? json_string(r->split_note) : json_null());
	json_object_set_new(j, "predicted_img_s",
			    cur->predicted_img_s > 0 ? json_real(cur->predicted_img_s)
						     : json_null());
	json_object_set_new(j, "predicted_latency_ms",
			    cur->predicted_img_s > 0 ? json_real(cur->predicted_latency_ms)
						     : json_null());
	json_object_set_new(j, "adapt", json_boolean(r->adapt));
	if (r->adapt) {
		json_t *ratios = json_array();
		for (int i = 0; i < cur->nmembers; i++)
			json_array_append_new(ratios, json_real(r->ratio[i]));
		json_object_set_new(j, "adapt_ratio", ratios);
		json_object_set_new(j, "adapt_resplits", json_integer(r->adapts));
	}
	json_object_set_new(j, "resplit_pending",
			    r->draining ? points_json(r->next_points, r->next_npoints)
					: json_null());
	json_object_set_new(j, "recovery",
			    json_pack("{s:i, s:i, s:I, s:I, s:I}", "failovers", r->failovers,
				      "readmits", r->readmits, "resent_batches",
				      (json_int_t)r->resends, "stale_frames", (json_int_t)r->stale,
				      "batches_to_resend", (json_int_t)r->nlost));
	json_t *epochs = json_array();
	for (int e = r->epoch >= MAX_EPOCHS ? r->epoch + 1 - MAX_EPOCHS : 0; e <= r->epoch; e++) {
		const struct epoch *ep = EPOCH(r, e);
		json_t *o = json_pack("{s:i, s:o, s:I, s:I, s:f}", "epoch", e, "split",
				      points_json(ep->points, ep->npoints), "images",
				      (json_int_t)ep->images, "batches", (json_int_t)ep->batches,
				      "img_s", epoch_img_s(ep));
		json_object_set_new(o, "predicted_img_s",
				    ep->predicted_img_s > 0 ? json_real(ep->predicted_img_s)
							    : json_null());
		json_t *who = json_array();
		for (int i = 0; i < ep->nmembers; i++)
			json_array_append_new(who,
					      json_string(r->c->nodes[ep->members[i]].address));
		json_object_set_new(o, "stages", who);
		json_object_set_new(o, "reason",
				    ep->reason[0] ? json_string(ep->reason) : json_null());
		json_object_set_new(o, "started_s",
				    ep->t_start && r->t_start
					    ? json_real((double)(ep->t_start - r->t_start) / 1e9)
					    : json_null());
		json_array_append_new(epochs, o);
	}
	json_object_set_new(j, "epochs", epochs);
	json_object_set_new(j, "coordinator", coord_cpu_json(r, wall));
	r->c->acct[ACCT_JSON] += pn_now_ns() - t0;
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
			c->gen++;
			return 0;
		}
	return -1;
}

/* The data directory, opened at start or, when it could not be (not made
 * yet), at the next request that needs it. 1, or 0 with why in err. */
static int have_datadir(struct pn_coord *c, char *err, size_t errlen)
{
	if (c->datadir)
		return 1;
	if (!c->o.data_dir || !*c->o.data_dir) {
		snprintf(err, errlen,
			 "this coordinator reads no datasets: start it with --data-dir DIR "
			 "(data_dir in its configuration)");
		return 0;
	}
	c->datadir = pn_datadir_open(c->o.data_dir, err, errlen);
	return c->datadir != NULL;
}

static void runs_post(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	char err[256];
	json_t *j = pn_req_json(q);
	if (!j)
		return;
	struct run *r = parse_run(c, j, err, sizeof(err));
	int queue = json_is_true(json_object_get(j, "queue"));
	json_decref(j);
	if (!r) {
		pn_reply_error(q, 400, "bad run", "%s", err);
		return;
	}
	struct run *busy = c->active;
	for (int i = 0; i < c->nruns && !busy; i++)
		if (c->runs[i]->state == RUN_QUEUED)
			busy = c->runs[i];
	if (busy && !queue) {
		run_free(r);
		pn_reply_error(q, 409, "conflict",
			       "run %d is %s: wait for it, cancel it (DELETE /api/v1/runs/%d), or "
			       "send \"queue\": true to run after it",
			       busy->id, state_names[busy->state], busy->id);
		return;
	}
	int status = 403;
	if (!have_datadir(c, err, sizeof(err))) {
		run_free(r);
		pn_reply_error(q, 403, "no data directory", "%s", err);
		return;
	}
	if (!(r->ds = pn_dataset_open_at(c->datadir, r->dataset, pn_model_classes(c->m),
					 pn_model_num_classes(c->m), &status, err, sizeof(err)))) {
		run_free(r);
		pn_reply_error(q, status, "bad dataset", "dataset: %s", err);
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
	c->gen++;
	want_profiles(c, r->batch); /* for the planner's prediction beside the run */
	pn_info("run %d: %s, offset %zu, stride %zu, samples %zu, batch %d", r->id, r->dataset,
		r->offset, r->stride, r->samples, r->batch);
	start_next(c);
	char loc[64];
	snprintf(loc, sizeof(loc), "/api/v1/runs/%d", r->id);
	pn_reply_header(q, "Location", loc);
	pn_reply_json(q, 201, run_json(r));
}

static int cache_fresh(const struct pn_coord *c, const struct api_cache *k)
{
	return k->body && k->gen == c->gen &&
	       pn_now_ns() - k->t < (uint64_t)API_CACHE_MS * 1000000u;
}

/* Keeps `text` (malloc'd, or NULL when out of memory) as the cached body. */
static void cache_set(const struct pn_coord *c, struct api_cache *k, char *text, size_t len)
{
	free(k->body);
	k->body = text;
	k->len = len;
	k->t = pn_now_ns();
	k->gen = c->gen;
}

/* A JSON document (taken) as the cached body, as pn_reply_json writes it. */
static void cache_json(const struct pn_coord *c, struct api_cache *k, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(13)) : NULL;
	json_decref(j);
	size_t n = text ? strlen(text) : 0;
	if (text)
		text[n++] = '\n'; /* over the terminating NUL, as pn_reply_json does */
	cache_set(c, k, text, n);
}

static void reply_cache(struct pn_req *q, const struct api_cache *k)
{
	if (k->body)
		pn_reply_bytes(q, 200, "application/json", k->body, k->len);
	else
		pn_reply_error(q, 503, "out of memory", "cannot write the answer");
}

/* The datasets a run may name, from the data directory. */
#define DATASETS_MAX 256
/* The listing reads folders: it is kept this long for the next reader. */
#define DATASETS_CACHE_MS 1000

static void datasets_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	struct api_cache *k = &c->datasets_cache;
	char err[256];
	if (k->body && pn_now_ns() - k->t < (uint64_t)DATASETS_CACHE_MS * 1000000u) {
		reply_cache(q, k);
		return;
	}
	int have = have_datadir(c, err, sizeof(err));
	struct pn_dataset_info *info = calloc(DATASETS_MAX, sizeof(*info));
	if (!info) {
		pn_reply_error(q, 503, "out of memory", "cannot list the datasets");
		return;
	}
	size_t n = pn_datadir_list(c->datadir, pn_model_classes(c->m), pn_model_num_classes(c->m),
				   info, DATASETS_MAX);
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:o, s:o}", "name", info[i].name, "kind",
				  info[i].kind, "records",
				  info[i].records < 0 ? json_null() : json_integer(info[i].records),
				  "classes",
				  info[i].classes < 0 ? json_null()
						      : json_integer(info[i].classes)));
	free(info);
	cache_json(c, k,
		   json_pack("{s:b, s:o, s:b}", "data_dir", have, "datasets", list, "truncated",
			     n == DATASETS_MAX));
	reply_cache(q, k);
}

static void runs_list(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	if (!cache_fresh(c, &c->runs_cache)) {
		json_t *arr = json_array();
		for (int i = 0; i < c->nruns; i++)
			json_array_append_new(arr, run_json(c->runs[i]));
		cache_json(c, &c->runs_cache, json_pack("{s:o}", "runs", arr));
	}
	reply_cache(q, &c->runs_cache);
}

static void run_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = find_run(c, pn_req_arg(q, 0));
	if (!r) {
		pn_reply_error(q, 404, "no such run", "run %s does not exist", pn_req_arg(q, 0));
		return;
	}
	if (!cache_fresh(c, &r->cache))
		cache_json(c, &r->cache, run_json(r));
	reply_cache(q, &r->cache);
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

/* ---- cluster, plan, split ---- */

static json_t *model_json(const struct pn_coord *c)
{
	json_t *classes = json_array();
	for (int i = 0; i < pn_model_num_classes(c->m); i++)
		json_array_append_new(classes, json_string(pn_model_classes(c->m)[i]));
	return json_pack("{s:s, s:s, s:i, s:i, s:o}", "path", c->model_path, "sha256", c->sha,
			 "input_size", pn_model_input_size(c->m), "blocks", pn_model_blocks(c->m),
			 "classes", classes);
}

/* The block range node i computes now: the running run's, else the
 * default split's. */
static int node_range(struct pn_coord *c, int i, int *first, int *last)
{
	struct run *r = c->active;
	if (r && r->state != RUN_QUEUED) {
		for (int k = 0; k < r->nranges; k++)
			if (r->ranges[k].node == &c->nodes[i]) {
				*first = r->ranges[k].first;
				*last = r->ranges[k].last;
				return 0;
			}
		return -1; /* not in the running plan */
	}
	int points[MAX_RANGES], n, members[MAX_STAGES], nm = live_members(c, members), at = -1;
	for (int k = 0; k < nm; k++)
		if (members[k] == i)
			at = k;
	default_points(c, points, &n);
	int k = at + (n + 1 - nm); /* the range of node i */
	if (at < 0 || k < 0 || k > n)
		return -1;
	*first = k ? points[k - 1] : 0;
	*last = k < n ? points[k] : pn_model_blocks(c->m);
	return 0;
}

static json_t *int_or_null(int ok, int v)
{
	return ok ? json_integer(v) : json_null();
}

static void cluster_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = c->active;
	int batch = r && r->state != RUN_QUEUED ? r->batch : 8;
	json_t *stages = json_array();
	uint64_t now = pn_now_ns();
	for (int i = 0; i < c->nnodes; i++) {
		struct node *n = &c->nodes[i];
		int first, last, ranged = node_range(c, i, &first, &last) == 0;
		const double *prof = node_profile(n, batch);
		int pb = batch;
		for (int k = 0; !prof && k < PROFILES; k++)
			if (n->prof[k].batch) {
				prof = n->prof[k].ms;
				pb = n->prof[k].batch;
			}
		json_t *ms = json_array();
		for (int b = 0; b < pn_model_blocks(c->m); b++)
			json_array_append_new(ms, prof ? json_real(prof[b]) : json_null());
		json_t *s = json_pack("{s:i, s:s, s:s, s:o, s:o, s:o}", "index", i, "address",
				      n->address, "state", node_state(n), "first",
				      int_or_null(ranged, first), "last", int_or_null(ranged, last),
				      "block_ms", ms);
		json_object_set_new(s, "reason",
				    n->why[0] && (n->up != 1 || n->refused) ? json_string(n->why)
									    : json_null());
		json_object_set_new(s, "last_contact_ms",
				    n->last_contact_ns
					    ? json_real(ms_since(now, n->last_contact_ns))
					    : json_null());
		json_object_set_new(s, "block_ms_batch", prof ? json_integer(pb) : json_null());
		json_object_set_new(s, "speed_ratio",
				    n->speed_ratio > 0 ? json_real(n->speed_ratio) : json_null());
		json_object_set_new(s, "frame_ns_per_byte",
				    json_pack("{s:o, s:o}", "profile",
					      n->frame_ns_per_byte > 0
						      ? json_real(n->frame_ns_per_byte)
						      : json_null(),
					      "runs",
					      n->frame_ns_per_byte_seen > 0
						      ? json_real(n->frame_ns_per_byte_seen)
						      : json_null()));
		json_array_append_new(stages, s);
	}
	int points[MAX_RANGES], npoints;
	default_points(c, points, &npoints);
	if (!want_profiles(c, batch))
		pn_debug("measuring the stages' block times for batch %d", batch);
	else
		want_links(c, batch);
	pn_reply_json(q, 200,
		      json_pack("{s:o, s:i, s:o, s:o, s:o, s:o}", "stages", stages, "blocks",
				pn_model_blocks(c->m), "model", model_json(c), "split",
				points_json(points, npoints), "run",
				r ? json_integer(r->id) : json_null(), "links", links_json(c)));
}

/* Costs for the planner over the stages (one range each) at `batch`,
 * from their measured block times; -1 when some are not known yet. */
struct costs {
	struct pn_split_costs k;
	double block_ms[MAX_STAGES * MAX_BLOCKS];
	double cut[MAX_BLOCKS + 1];
	double lat[MAX_STAGES + 1], bw[MAX_STAGES + 1];
	double per_byte[MAX_STAGES];
};

static int make_costs(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
		      double link_mbit, double link_ms, struct costs *k)
{
	int nb = pn_model_blocks(c->m);
	if (nm < 1 || nm > nb || nb > MAX_BLOCKS)
		return -1;
	for (int i = 0; i < nm; i++) {
		const double *p = node_profile(&c->nodes[members[i]], batch);
		if (!p)
			return -1;
		const struct node *n = &c->nodes[members[i]];
		for (int b = 0; b < nb; b++)
			k->block_ms[i * nb + b] =
				p[b] * (n->speed_ratio > 0 ? n->speed_ratio : 1.0);
		k->per_byte[i] = (n->frame_ns_per_byte_seen > 0 ? n->frame_ns_per_byte_seen
								: n->frame_ns_per_byte) /
				 1e6;
	}
	for (int cut = 0; cut <= nb; cut++)
		k->cut[cut] = (double)cut_bytes(c, cut, (size_t)batch, dtype);
	/* The links: as given, else as measured, else free (not known yet).
	 * Hop h feeds member h (the last: back to the coordinator); links
	 * are measured between neighbours in the full list of stages, so a
	 * hop over a missing stage is not known. */
	for (int h = 0; h <= nm; h++) {
		int from = h ? members[h - 1] : -1, to = h < nm ? members[h] : c->nnodes;
		const struct link *ln = &c->links[to];
		int known = to == from + 1 && ln->state == 2;
		k->lat[h] = link_mbit > 0 ? link_ms : known ? ln->latency_ms : 0;
		k->bw[h] = link_mbit > 0 ? link_mbit * 1e6 / 8 / 1e3 /* bytes per ms */
			   : known	 ? ln->bytes_per_ms
					 : 0;
	}
	k->k = (struct pn_split_costs){.stages = nm,
				       .blocks = nb,
				       .batch = batch,
				       .block_ms = k->block_ms,
				       .cut_bytes = k->cut,
				       .hop_latency_ms = k->lat,
				       .hop_bytes_per_ms = k->bw,
				       .stage_ms_per_byte = k->per_byte};
	return 0;
}

/* The planner's prediction for a run's current split (stages only). */
static int predicted(struct pn_coord *c, const struct run *r, struct pn_split *out)
{
	static struct costs k;
	const struct epoch *ep = EPOCH(r, r->epoch);
	if (r->nranges != ep->nmembers ||
	    make_costs(c, ep->members, ep->nmembers, r->batch, r->dtype, 0, 0, &k) != 0)
		return -1;
	return pn_split_evaluate(&k.k, ep->points, out);
}

/* The current epoch's prediction from the profiles, when they are in. */
static void epoch_predict(struct run *r)
{
	struct pn_split p;
	struct epoch *ep = EPOCH(r, r->epoch);
	if (predicted(r->c, r, &p) == 0) {
		ep->predicted_img_s = p.img_s;
		ep->predicted_latency_ms = p.latency_ms;
	}
}

static int plan_best(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
		     struct pn_split *out)
{
	static struct costs k;
	if (make_costs(c, members, nm, batch, dtype, 0, 0, &k) != 0)
		return -1;
	return pn_split_best(&k.k, out);
}

/* ---- links ---- */

static void link_done(struct pn_coord *c, int h, json_t *j, const char *why)
{
	struct link *ln = &c->links[h];
	double lat = json_number_value(json_object_get(j, "latency_ms"));
	double bw = json_number_value(json_object_get(j, "bytes_per_ms"));
	int again = ln->reprobing;
	ln->reprobing = 0;
	if (!why && !(bw > 0 && lat >= 0))
		why = "no latency and bandwidth in the reply";
	if (why && again) { /* the last measurement stands */
		snprintf(ln->error, sizeof(ln->error), "%s", why);
		pn_warn("link %d: probing again: %s", h, why);
		return;
	}
	if (why) {
		ln->state = -1;
		snprintf(ln->error, sizeof(ln->error), "%s", why);
		pn_warn("link %d: %s", h, why);
		return;
	}
	if (again)
		pn_info("link %d measured again (%s): %.3f ms + %.1f MB/s, was %.3f ms + %.1f MB/s",
			h, ln->drift, lat, bw / 1e3, ln->latency_ms, ln->bytes_per_ms / 1e3);
	else
		pn_info("link %d: %.3f ms + %.1f MB/s", h, lat, bw / 1e3);
	ln->state = 2;
	ln->error[0] = '\0';
	ln->latency_ms = lat;
	ln->bytes_per_ms = bw;
	ln->reprobes += again;
	ln->measured_ns = pn_now_ns();
	ln->measured_wall = wall_time();
	if (again && c->active && c->active->state == RUN_RUNNING)
		epoch_predict(c->active); /* the running plan's figure, on the new link */
}

static void link_ask(struct pn_coord *c, int h);

static void link_cb(const struct pn_reply *rep, void *arg)
{
	struct node *n = arg;
	struct pn_coord *c = n->c;
	int h = n->index + 1;
	c->links[h].asking = 0;
	if (c->links[h].state != 1 && !c->links[h].reprobing)
		return;
	json_t *j = rep->status ? json_loadb((const char *)rep->body, rep->len, 0, NULL) : NULL;
	if (rep->status == 200) {
		link_done(c, h, j, NULL);
	} else if (rep->status != 202) {
		char why[700];
		const char *e = json_string_value(json_object_get(j, "error"));
		const char *d = json_string_value(json_object_get(j, "detail"));
		snprintf(why, sizeof(why), "%s could not probe: %d %s%s%s", n->address, rep->status,
			 rep->status ? (e ? e : "") : rep->error, d ? ": " : "", d ? d : "");
		link_done(c, h, NULL, why);
	} else if (!pn_timer_armed(c->link_timer)) {
		pn_timer_arm(c->link_timer, LINK_POLL_MS);
	}
	json_decref(j);
}

/* Hop h >= 1 is probed by the node that sends on it. */
static void link_ask(struct pn_coord *c, int h)
{
	struct node *n = &c->nodes[h - 1];
	const char *to = h < c->nnodes ? c->nodes[h].address : c->advertise;
	const struct link *ln = &c->links[h];
	json_t *body =
		json_pack("{s:s, s:[I, I], s:i}", "to", to, "bytes", (json_int_t)ln->bytes[0],
			  (json_int_t)ln->bytes[1], "reps", LINK_REPS);
	char *b = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (b && pn_peer_send(n->probe, PN_POST, "/v1/probe", "application/json", b, strlen(b), 0,
			      link_cb, n) == 0)
		c->links[h].asking = 1;
	else
		link_done(c, h, NULL, "cannot ask for a probe");
}

static void link_timer_cb(void *arg)
{
	struct pn_coord *c = arg;
	int waiting = 0;
	if (c->links[0].state == 1 || c->links[0].reprobing) {
		int st = pn_probe_state(c->link_own);
		if (st != 0) {
			json_t *j = pn_probe_json(c->link_own);
			link_done(c, 0, j,
				  st < 0 ? json_string_value(json_object_get(j, "error")) : NULL);
			json_decref(j);
		}
		waiting |= st == 0;
	}
	for (int h = 1; h <= c->nnodes; h++)
		if (c->links[h].state == 1 || c->links[h].reprobing) {
			waiting = 1;
			if (!c->links[h].asking)
				link_ask(c, h);
		}
	if (waiting)
		pn_timer_arm(c->link_timer, LINK_POLL_MS);
}

/* Probes hop h with transfers of `small` and `large` bytes; link_done
 * takes the result. */
static void link_start(struct pn_coord *c, int h, size_t small, size_t large)
{
	char err[256];
	struct link *ln = &c->links[h];
	ln->bytes[0] = small;
	ln->bytes[1] = large;
	if (h == 0) {
		pn_probe_free(c->link_own);
		c->link_own = pn_probe_new(c->loop, c->nodes[0].address, c->o.token, small, large,
					   LINK_REPS, err, sizeof(err));
		if (!c->link_own)
			link_done(c, 0, NULL, err);
	} else {
		link_ask(c, h);
	}
	if (!pn_timer_armed(c->link_timer))
		pn_timer_arm(c->link_timer, LINK_POLL_MS);
}

/* During a run: a hop whose frames of the last interval took longer than
 * the model allows (its latency and bandwidth, plus the longest compute
 * steps of the receiver and the sender, which a frame and its reply may
 * wait behind), or less than
 * the model says by the same share, is measured again, with the logits
 * frame and its own frames' size: a link that got slower (or faster) is
 * seen during the run, not only at the next start. */
static void link_drift_check(struct run *r)
{
	struct pn_coord *c = r->c;
	uint64_t now = pn_now_ns();
	for (int i = 1; i <= r->nranges; i++) {
		const struct range *from = &r->ranges[i - 1];
		const struct range *to = i < r->nranges ? &r->ranges[i] : NULL;
		if (!from->node || (to && !to->node) || from->recent_frame_bytes <= 0)
			continue;
		int h = to ? to->node->index : c->nnodes;
		struct link *ln = &c->links[h];
		/* Measured links are between neighbours in the list of stages. */
		if (h != from->node->index + 1 || ln->state != 2 || ln->reprobing ||
		    now - ln->measured_ns < (uint64_t)LINK_REPROBE_S * 1000000000u)
			continue;
		double model = ln->latency_ms + from->recent_frame_bytes / ln->bytes_per_ms;
		/* A frame may wait for the receiver's step, its reply for the sender's. */
		double wait = ms(counter(from->status, "max_step_ns")) +
			      (to ? ms(counter(to->status, "max_step_ns")) : 0);
		double seen = from->recent_transfer_ms;
		const char *how = seen > (model + wait) * (1 + LINK_DRIFT) + LINK_DRIFT_SLACK_MS
					  ? "slower"
				  : seen < model / (1 + LINK_DRIFT) - LINK_DRIFT_SLACK_MS ? "faster"
											  : NULL;
		if (!how)
			continue;
		snprintf(ln->drift, sizeof(ln->drift),
			 "frames of %.0f bytes took %.2f ms, the model %.2f ms (+%.2f ms of "
			 "compute steps): %s",
			 from->recent_frame_bytes, seen, model, wait, how);
		pn_info("link %d drifted in run %d: %s", h, r->id, ln->drift);
		ln->reprobing = 1;
		size_t large = (size_t)from->recent_frame_bytes, small = c->link_bytes[0];
		if (large <= small)
			large = small * 2 + 1024;
		link_start(c, h, small, large > PN_PROBE_MAX_BYTES ? PN_PROBE_MAX_BYTES : large);
	}
}

/* 1 when every link is measured (or could not be); else starts the
 * probes that are missing, with real frame sizes of `batch`: the logits
 * frame and the largest activation frame. */
static int want_links(struct pn_coord *c, int batch)
{
	int nb = pn_model_blocks(c->m), ready = 1;
	if (c->nnodes < 1)
		return 1;
	if (!c->link_bytes[1]) {
		c->link_bytes[0] = cut_bytes(c, nb, (size_t)batch, PN_DTYPE_F32);
		for (int cut = 0; cut < nb; cut++) {
			size_t b = cut_bytes(c, cut, (size_t)batch, PN_DTYPE_F32);
			c->link_bytes[1] = b > c->link_bytes[1] ? b : c->link_bytes[1];
		}
		if (c->link_bytes[1] > PN_PROBE_MAX_BYTES)
			c->link_bytes[1] = PN_PROBE_MAX_BYTES;
	}
	for (int h = 0; h <= c->nnodes; h++) {
		struct link *ln = &c->links[h];
		if (ln->state == 2 || ln->state == -1)
			continue;
		ready = 0;
		if (ln->state == 1)
			continue;
		ln->state = 1;
		link_start(c, h, c->link_bytes[0], c->link_bytes[1]);
	}
	if (!ready && !pn_timer_armed(c->link_timer))
		pn_timer_arm(c->link_timer, LINK_POLL_MS);
	return ready;
}

static json_t *links_json(const struct pn_coord *c)
{
	json_t *a = json_array();
	for (int h = 0; h <= c->nnodes && c->nnodes; h++) {
		const struct link *ln = &c->links[h];
		json_t *o = json_pack("{s:i, s:s, s:s, s:s}", "hop", h, "from",
				      h ? c->nodes[h - 1].address : "coordinator", "to",
				      h < c->nnodes ? c->nodes[h].address : "coordinator", "state",
				      ln->state == 2	? "measured"
				      : ln->state == 1	? "probing"
				      : ln->state == -1 ? "failed"
							: "unknown");
		json_object_set_new(o, "latency_ms",
				    ln->state == 2 ? json_real(ln->latency_ms) : json_null());
		json_object_set_new(o, "mbit_s",
				    ln->state == 2 ? json_real(ln->bytes_per_ms * 8e3 / 1e6)
						   : json_null());
		json_object_set_new(
			o, "probe_bytes",
			json_pack("[I, I]",
				  (json_int_t)(ln->bytes[1] ? ln->bytes[0] : c->link_bytes[0]),
				  (json_int_t)(ln->bytes[1] ? ln->bytes[1] : c->link_bytes[1])));
		json_object_set_new(o, "measured_at",
				    ln->measured_ns ? json_real(ln->measured_wall) : json_null());
		json_object_set_new(o, "measured_s_ago",
				    ln->measured_ns
					    ? json_real(ms(pn_now_ns() - ln->measured_ns) / 1e3)
					    : json_null());
		json_object_set_new(o, "reprobes", json_integer(ln->reprobes));
		json_object_set_new(o, "reprobing", json_boolean(ln->reprobing));
		if (ln->drift[0])
			json_object_set_new(o, "drift", json_string(ln->drift));
		if (ln->error[0])
			json_object_set_new(o, "error", json_string(ln->error));
		json_array_append_new(a, o);
	}
	return a;
}

/* ---- split "auto" and adapt ---- */

/* A run whose split is "auto", configuring: the planner's plan once every
 * stage's block times (and the links) are in, MACs after auto_wait_s. */
static void auto_poll(struct run *r)
{
	struct pn_coord *c = r->c;
	struct pn_split best;
	int members[MAX_STAGES], nm = live_members(c, members);
	int profiles = want_profiles(c, r->batch);
	int links = profiles && want_links(c, r->batch);
	int late = pn_now_ns() >= r->auto_deadline || nm < 1;
	int points[MAX_RANGES], npoints;
	if (nm < 1 && refused_only(r))
		return;
	if (nm && profiles && (links || late) &&
	    plan_best(c, members, nm, r->batch, r->dtype, &best) == 0) {
		npoints = best.stages - 1;
		memcpy(points, best.cuts + 1, (size_t)npoints * sizeof(int));
		r->split_source = "planner";
		if (!links)
			snprintf(r->split_note, sizeof(r->split_note),
				 "links not measured after %d s: planned as free", r->auto_wait_s);
	} else if (nm < 1) {
		npoints = 0; /* the coordinator computes every block */
		r->split_source = "given";
	} else if (late) {
		npoints = auto_split(c->m, nm, points);
		r->split_source = "macs";
		snprintf(r->split_note, sizeof(r->split_note),
			 "no block times from every stage for batch %d after %d s: split by MACs",
			 r->batch, r->auto_wait_s);
		pn_warn("run %d: %s", r->id, r->split_note);
	} else {
		pn_timer_arm(c->auto_timer, AUTO_POLL_MS);
		return;
	}
	r->auto_waiting = 0;
	apply_points(r, points, npoints, members, nm);
	if (r->pipelined && r->window_auto)
		r->window = r->nranges + 1;
	epoch_predict(r);
	pn_info("run %d: split auto by %s", r->id, r->split_source);
	if (send_configs(r) == 0 && r->pending == 0)
		begin(r);
}

static void auto_timer_cb(void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = c->active;
	if (r && r->state == RUN_CONFIGURING && r->reach_waiting)
		reach_poll(r);
	else if (r && r->state == RUN_CONFIGURING && r->auto_waiting)
		auto_poll(r);
}

/* A run waiting for stages not reached yet: they are asked again every
 * AUTO_POLL_MS until each has answered or failed for long enough to be
 * down, or the run's auto_wait_s is over; then its plan. */
static void reach_poll(struct run *r)
{
	struct pn_coord *c = r->c;
	char why[sizeof(r->waiting)];
	if (pn_coord_reaching(c, why, sizeof(why))) {
		if (pn_now_ns() < r->reach_deadline) {
			if (strcmp(why, r->waiting) != 0) {
				snprintf(r->waiting, sizeof(r->waiting), "%s", why);
				c->gen++;
			}
			for (int i = 0; i < c->nnodes; i++)
				if (c->nodes[i].up == -1)
					ping(&c->nodes[i]);
			pn_timer_arm(c->auto_timer, AUTO_POLL_MS);
			return;
		}
		snprintf(r->split_note + strlen(r->split_note),
			 sizeof(r->split_note) - strlen(r->split_note), "%s%s after %d s",
			 r->split_note[0] ? "; " : "", why, r->auto_wait_s);
		pn_warn("run %d: %s after %d s: going on", r->id, why, r->auto_wait_s);
	}
	r->reach_waiting = 0;
	r->waiting[0] = '\0';
	c->gen++;
	plan_start(r);
}

/* Asks for a live re-split of the running run: the batches in flight
 * drain, then the stages are reconfigured (see resplit). */
static void request_split(struct run *r, const int *points, int npoints, const int *members, int nm,
			  const char *reason)
{
	memcpy(r->next_points, points, (size_t)npoints * sizeof(int));
	r->next_npoints = npoints;
	memcpy(r->next_members, members, (size_t)nm * sizeof(int));
	r->next_nmembers = nm;
	r->draining = 1;
	snprintf(r->next_reason, sizeof(r->next_reason), "%s", reason ? reason : "");
	pn_info("run %d: re-split requested (%s); draining %d batches", r->id,
		reason ? reason : "PUT /api/v1/split", r->inflight);
	check_drain(r);
}

static void points_text(char *buf, size_t len, const int *points, int n)
{
	size_t at = 0;
	at += (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%d", i ? ", " : "", points[i]);
	if (at < len)
		snprintf(buf + at, len - at, "]");
}

/* Once a second for an adapt run: each stage's measured compute per batch
 * against what its profile predicts for its range gives its ratio (kept at
 * 1 unless ADAPT_OFF away, so noise does not move plans); the profiles
 * scaled by the ratios are planned again, and when the best plan beats the
 * current one by ADAPT_GAIN at ADAPT_HOLD ticks in a row, and the last
 * re-split (of any kind) is adapt_interval_s old, the run re-splits. */
static void adapt_check(struct run *r)
{
	struct pn_coord *c = r->c;
	static struct costs k;
	struct pn_split cur, best;
	struct epoch *ep = EPOCH(r, r->epoch);
	int nb = pn_model_blocks(c->m);
	if (!r->adapt || r->state != RUN_RUNNING || r->draining || r->nranges != ep->nmembers ||
	    make_costs(c, ep->members, ep->nmembers, r->batch, r->dtype, 0, 0, &k) != 0 ||
	    pn_split_evaluate(&k.k, ep->points, &cur) != 0)
		return;
	for (int i = 0; i < r->nranges; i++) {
		const struct range *g = &r->ranges[i];
		if (!g->status || g->recent_compute_ms <= 0 || cur.stage_ms[i] <= 0)
			continue;
		double q = g->recent_compute_ms / cur.stage_ms[i];
		double base = r->applied[i], band = base == 1.0 ? ADAPT_OFF : ADAPT_SETTLED;
		r->ratio[i] = q > base * (1 + band) || q < base / (1 + band) ? q : base;
		for (int b = 0; b < nb; b++)
			k.block_ms[i * nb + b] *= r->ratio[i];
	}
	if (pn_split_evaluate(&k.k, ep->points, &cur) != 0 || pn_split_best(&k.k, &best) != 0)
		return;
	if (!(best.img_s >= cur.img_s * (1 + ADAPT_GAIN))) {
		r->adapt_hold = 0;
		return;
	}
	if (++r->adapt_hold < ADAPT_HOLD ||
	    (r->adapt_last &&
	     pn_now_ns() - r->adapt_last < (uint64_t)r->adapt_interval_s * 1000000000u))
		return;
	int worst = 0;
	for (int i = 1; i < r->nranges; i++)
		if (fabs(log(r->ratio[i])) > fabs(log(r->ratio[worst])))
			worst = i;
	char from[120], to[120];
	points_text(from, sizeof(from), ep->points, ep->npoints);
	points_text(to, sizeof(to), best.cuts + 1, best.stages - 1);
	char reason[700];
	snprintf(reason, sizeof(reason),
		 "adapt: stage %d (%s) computes at %.2fx its profile; %s predicted %.1f img/s, "
		 "%s %.1f img/s (+%.0f%%)",
		 worst, range_address(r, worst), r->ratio[worst], from, cur.img_s, to, best.img_s,
		 (best.img_s / cur.img_s - 1) * 100);
	r->adapts++;
	memcpy(r->applied, r->ratio, sizeof r->applied);
	r->next_img_s = best.img_s;
	r->next_latency_ms = best.latency_ms;
	pn_events_emit(
		c->events, "adapt",
		json_pack("{s:i, s:f, s:s}", "run", r->id, "time", wall_time(), "reason", reason));
	request_split(r, best.cuts + 1, best.stages - 1, ep->members, ep->nmembers, reason);
}

static json_t *split_json(const struct pn_split *p)
{
	json_t *cuts = json_array();
	for (int s = 1; s < p->stages; s++)
		json_array_append_new(cuts, json_integer(p->cuts[s]));
	json_t *stage_ms = json_array();
	for (int s = 0; s < p->stages; s++)
		json_array_append_new(stage_ms, json_real(p->stage_ms[s]));
	return json_pack(
		"{s:o, s:f, s:f, s:f, s:{s:s, s:i}, s:o}", "split", cuts, "predicted_img_s",
		p->img_s, "predicted_latency_ms", p->latency_ms, "bottleneck_ms", p->bottleneck_ms,
		"bottleneck", "kind", p->bottleneck >= 0 ? "stage" : "hop", "index",
		p->bottleneck >= 0 ? p->bottleneck : -p->bottleneck - 1, "stage_ms", stage_ms);
}

static int add_candidate(const struct pn_split *p, void *arg)
{
	json_array_append_new(arg, split_json(p));
	return json_array_size(arg) >= 5000; /* bounded; the best is exact anyway */
}

/* A number from the query string; 0, or -1 after answering 400. */
static int query_num(struct pn_req *q, const char *key, double min, double max, double def,
		     double *out)
{
	char buf[64], *end;
	const char *v = pn_req_query(q, key, buf, sizeof(buf));
	*out = def;
	if (!v)
		return 0;
	*out = strtod(v, &end);
	if (!*v || *end || !(*out >= min && *out <= max)) {
		pn_reply_error(q, 400, "bad query", "%s must be a number from %g to %g", key, min,
			       max);
		return -1;
	}
	return 0;
}

/* The batch sizes whose block times every member has. */
static json_t *cached_batches(const struct pn_coord *c, const int *members, int nm)
{
	json_t *a = json_array();
	const struct node *n0 = &c->nodes[members[0]];
	for (int k = 0; k < PROFILES; k++) {
		int b = n0->prof[k].batch, all = b > 0;
		for (int i = 1; all && i < nm; i++)
			all = node_profile(&c->nodes[members[i]], b) != NULL;
		if (all)
			json_array_append_new(a, json_integer(b));
	}
	return a;
}

/* Measuring is work for the stages (a profile at batch 256 takes a core
 * for seconds): with a token, only the authorised start it and others
 * get what is cached; with none, a bucket bounds how many batch sizes
 * plan requests have measured, one at a time. 0 to go on with what is
 * known (make_costs tells whether that is enough), -1 after answering. */
static int plan_measure(struct pn_coord *c, struct pn_req *q, const int *members, int nm, int batch)
{
	int cached = 1, pending = 1, busy = 0;
	for (int i = 0; i < nm; i++) {
		const struct node *n = &c->nodes[members[i]];
		int have = node_profile(n, batch) != NULL;
		cached &= have;
		pending &= have || n->prof_want == batch;
		busy = n->prof_want ? n->prof_want : busy;
	}
	if (!pn_req_authorized(q)) {
		/* No link probes either: plan with what is known, or 503 while
		 * the batch size is measured for someone else (a run, or the
		 * coordinator's start). */
		if (cached || pending)
			return 0;
		pn_reply_json(
			q, 401,
			json_pack("{s:s, s:s, s:o}", "error", "unauthorized", "detail",
				  "profile not cached for this batch size; ask with the token "
				  "(Authorization: Bearer TOKEN) to have the stages measure it",
				  "cached_batch_sizes", cached_batches(c, members, nm)));
		return -1;
	}
	int open = !c->o.token || !*c->o.token;
	if (!cached && open && busy != batch) {
		if (busy) {
			pn_reply_header(q, "Retry-After", "2");
			pn_reply_error(
				q, 503, "measuring",
				"the stages are measuring batch %d; one batch size at a time",
				busy);
			return -1;
		}
		uint64_t now = pn_now_ns();
		double per_s = (double)PLAN_MEASURES / PLAN_MEASURES_S;
		c->plan_measures += per_s * ms_since(now, c->plan_measures_ns) / 1e3;
		if (c->plan_measures_ns == 0 || c->plan_measures > PLAN_MEASURES)
			c->plan_measures = PLAN_MEASURES;
		c->plan_measures_ns = now;
		if (c->plan_measures < 1) {
			char after[16];
			snprintf(after, sizeof(after), "%d",
				 (int)((1 - c->plan_measures) / per_s) + 1);
			pn_reply_header(q, "Retry-After", after);
			pn_reply_error(
				q, 429, "too many batch sizes",
				"without a token, plan has at most %d batch sizes measured an "
				"hour; ask again later, use a measured one, or set a token",
				PLAN_MEASURES);
			return -1;
		}
		c->plan_measures -= 1;
	}
	if (want_profiles(c, batch))
		want_links(c, batch);
	return 0;
}

static void plan_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	static struct costs k;
	double batch, mbit, lat;
	char wbuf[16];
	const char *wire = pn_req_query(q, "wire", wbuf, sizeof(wbuf));
	int dtype = wire ? pn_dtype_parse(wire) : PN_DTYPE_F32;
	if (dtype != PN_DTYPE_F32 && dtype != PN_DTYPE_F16) {
		pn_reply_error(q, 400, "bad query", "wire must be f32 or f16");
		return;
	}
	if (query_num(q, "batch_size", 1, c->o.max_batch, 8, &batch) ||
	    query_num(q, "link_mbit", 0, 1e6, 0, &mbit) ||
	    query_num(q, "link_latency_ms", 0, 1e4, 0, &lat))
		return;
	if (batch != (int)batch) {
		pn_reply_error(q, 400, "bad query", "batch_size must be a whole number");
		return;
	}
	if (c->nnodes < 1) {
		pn_reply_error(q, 409, "no stages", "the coordinator has no stages to plan for");
		return;
	}
	/* The stages up (with our model) now: the ones a run would use. */
	int members[MAX_STAGES], nm = live_members(c, members);
	if (nm < 1) {
		pn_reply_header(q, "Retry-After", "1");
		pn_reply_error(q, 503, "stage down", "no stage is up");
		return;
	}
	if (plan_measure(c, q, members, nm, (int)batch) != 0)
		return;
	if (make_costs(c, members, nm, (int)batch, dtype, mbit, lat, &k) != 0) {
		pn_reply_header(q, "Retry-After", "1");
		pn_reply_error(q, 503, "measuring",
			       "the stages are measuring their block times for batch %d; "
			       "ask again in a second",
			       (int)batch);
		return;
	}
	int nb = pn_model_blocks(c->m);
	json_t *blocks = json_array();
	for (int b = 0; b < nb; b++) {
		json_t *per = json_array();
		for (int i = 0; i < nm; i++)
			json_array_append_new(per, json_real(k.block_ms[i * nb + b]));
		json_array_append_new(
			blocks, json_pack("{s:i, s:o, s:I, s:I, s:I}", "block", b, "ms", per,
					  "macs", (json_int_t)pn_model_block_macs(c->m, b),
					  "params", (json_int_t)pn_model_block_params(c->m, b),
					  "out_bytes", (json_int_t)k.cut[b + 1]));
	}
	json_t *cands = json_array();
	struct pn_split best;
	pn_split_each(&k.k, add_candidate, cands);
	json_t *j = json_pack("{s:i, s:s, s:i, s:o, s:o, s:I}", "batch_size", (int)batch, "wire",
			      pn_dtype_name(dtype), "stages", nm, "blocks", blocks, "candidates",
			      cands, "input_bytes", (json_int_t)k.cut[0]);
	json_t *used = json_array();
	for (int i = 0; i < nm; i++)
		json_array_append_new(used, json_string(c->nodes[members[i]].address));
	json_object_set_new(j, "stage_addresses", used);
	json_object_set_new(j, "cached_batch_sizes", cached_batches(c, members, nm));
	int have_best = pn_split_best(&k.k, &best) == 0;
	json_object_set_new(j, "best", have_best ? split_json(&best) : json_null());
	/* The links the plan used: as given in the query, else as measured. */
	json_t *links = links_json(c);
	for (int h = 0; h <= c->nnodes && nm == c->nnodes; h++) {
		json_t *o = json_array_get(links, (size_t)h);
		json_object_set_new(o, "planned_latency_ms", json_real(k.lat[h]));
		json_object_set_new(o, "planned_mbit_s", json_real(k.bw[h] * 8e3 / 1e6));
	}
	json_object_set_new(j, "links", links);
	json_object_set_new(j, "links_source", json_string(mbit > 0 ? "query" : "measured"));
	/* Replication: groups of stages, each a pipeline of its own. */
	int groups[MAX_STAGES];
	static struct pn_split gplans[MAX_STAGES];
	double gtotal;
	int ng = pn_split_best_groups(&k.k, groups, gplans, &gtotal);
	json_t *garr = json_array(), *gp = json_array();
	for (int g = 0; g < ng; g++) {
		json_array_append_new(garr, json_integer(groups[g]));
		json_array_append_new(gp, split_json(&gplans[g]));
	}
	double single = have_best ? best.img_s : 0;
	json_object_set_new(
		j, "replication",
		json_pack("{s:o, s:o, s:f, s:f, s:s, s:f}", "groups", garr, "plans", gp,
			  "predicted_img_s", gtotal, "single_pipeline_img_s", single, "winner",
			  ng > 1 && gtotal > single * (1 + 1e-9) ? "replicated" : "single", "gain",
			  single > 0 ? gtotal / single : 0));
	pn_reply_json(q, 200, j);
}

static void split_put(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	static const char *const keys[] = {"split", NULL};
	char err[300];
	int points[MAX_RANGES], npoints;
	json_t *j = pn_req_json(q);
	if (!j)
		return;
	json_t *split = json_object_get(j, "split");
	int bad = pn_json_known(j, keys, err, sizeof(err));
	if (!bad && !split) {
		snprintf(err, sizeof(err), "split is required");
		bad = 1;
	}
	struct run *r = c->active;
	int running = r && r->state != RUN_QUEUED;
	const char *source;
	if (!bad)
		bad = parse_points(c, split, running ? r->batch : 8,
				   running ? r->dtype : PN_DTYPE_F32, points, &npoints, &source,
				   err, sizeof(err));
	json_decref(j);
	if (bad) {
		pn_reply_error(q, 400, "bad split", "%s", err);
		return;
	}
	if (r && r->state == RUN_CONFIGURING) {
		pn_reply_header(q, "Retry-After", "1");
		pn_reply_error(q, 409, "busy", "run %d is configuring its stages; try again",
			       r->id);
		return;
	}
	memcpy(c->default_points, points, sizeof(points));
	c->default_npoints = npoints;
	c->default_set = 1;
	if (!r || r->state != RUN_RUNNING) {
		pn_info("split for the next run set");
		pn_reply_json(q, 200,
			      json_pack("{s:o, s:i, s:n}", "split", points_json(points, npoints),
					"epoch", 0, "run"));
		return;
	}
	const struct epoch *ep = EPOCH(r, r->epoch);
	if (!r->draining && ep->npoints == npoints &&
	    memcmp(ep->points, points, (size_t)npoints * sizeof(int)) == 0) {
		pn_reply_json(q, 200,
			      json_pack("{s:o, s:i, s:i}", "split", points_json(points, npoints),
					"epoch", r->epoch, "run", r->id));
		return;
	}
	pn_reply_json(q, 200,
		      json_pack("{s:o, s:i, s:i, s:s}", "split", points_json(points, npoints),
				"epoch", r->epoch + 1, "run", r->id, "source", source));
	r->next_img_s = r->next_latency_ms = 0;
	int members[MAX_STAGES], nm = live_members(c, members);
	request_split(r, points, npoints, members, nm, NULL);
}

/* ---- events, classify, metrics, files ---- */

static void events_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = c->active;
	if (!r)
		for (int i = c->nruns - 1; i >= 0 && !r; i--)
			r = c->runs[i];
	json_t *cluster = json_array();
	for (int i = 0; i < c->nnodes; i++) {
		int first, last, ranged = node_range(c, i, &first, &last) == 0;
		const struct node *n = &c->nodes[i];
		json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "address", n->address, "state",
				      node_state(n), "first", int_or_null(ranged, first), "last",
				      int_or_null(ranged, last));
		json_object_set_new(o, "reason",
				    n->why[0] && (n->up != 1 || n->refused) ? json_string(n->why)
									    : json_null());
		json_array_append_new(cluster, o);
	}
	json_t *hello = json_pack("{s:s, s:o, s:{s:o, s:i, s:o}}", "version", PACKAGE_VERSION,
				  "run", r ? run_json(r) : json_null(), "cluster", "stages",
				  cluster, "blocks", pn_model_blocks(c->m), "model", model_json(c));
	pn_events_attach(c->events, q, hello);
}

static void classify_post(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	pn_classifier_post(c->classifier, q);
}

static void metrics_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	char *text = NULL, l1[256], l2[256], lab[600];
	size_t len = 0;
	static const char *const type = "text/plain; version=0.0.4; charset=utf-8";
	if (cache_fresh(c, &c->metrics_cache)) {
		pn_reply_bytes(q, 200, type, c->metrics_cache.body, c->metrics_cache.len);
		return;
	}
	uint64_t t0 = pn_now_ns();
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		pn_reply_error(q, 503, "out of memory", "cannot write the metrics");
		return;
	}
	struct run *r = c->active;
	uint64_t e4, e5;
	pn_http_error_counts(c->http, &e4, &e5);
	pn_metric_single(f, "pipenet_images_total", "counter", "Images classified by runs.",
			 (double)c->images_total);
	pn_metric_single(f, "pipenet_batches_total", "counter", "Batches whose logits came back.",
			 (double)c->batches_total);
	pn_metric_single(f, "pipenet_classify_requests_total", "counter",
			 "Images classified by POST /api/v1/classify.",
			 (double)pn_classifier_done(c->classifier));
	pn_metric_family(f, "pipenet_runs_total", "counter", "Runs ended, by final state.");
	pn_metric_sample(f, "pipenet_runs_total", "state=\"done\"", (double)c->runs_done);
	pn_metric_sample(f, "pipenet_runs_total", "state=\"failed\"", (double)c->runs_failed);
	pn_metric_sample(f, "pipenet_runs_total", "state=\"cancelled\"", (double)c->runs_cancelled);
	pn_metric_family(
		f, "pipenet_hop_bytes_total", "counter",
		"Frame bytes of finished batches sent over each hop (sender to receiver).");
	for (int i = 0; i < c->nhops; i++) {
		snprintf(lab, sizeof(lab), "from=\"%s\",to=\"%s\"",
			 pn_metric_label(c->hops[i].from, l1, sizeof(l1)),
			 pn_metric_label(c->hops[i].to, l2, sizeof(l2)));
		pn_metric_sample(f, "pipenet_hop_bytes_total", lab, (double)c->hops[i].bytes);
	}
	pn_metric_family(f, "pipenet_errors_total", "counter", "Errors, by kind.");
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"http_4xx\"", (double)e4);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"http_5xx\"", (double)e5);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"run_failed\"", (double)c->runs_failed);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"duplicate_logits\"",
			 (double)c->duplicates_total);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"stage_down\"",
			 (double)c->stage_down_total);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"events_client_dropped\"",
			 (double)pn_events_dropped(c->events));
	pn_metric_family(f, "pipenet_recovery_total", "counter",
			 "Recovery from lost stages and frames, by kind.");
	pn_metric_sample(f, "pipenet_recovery_total", "kind=\"failover\"",
			 (double)c->failovers_total);
	pn_metric_sample(f, "pipenet_recovery_total", "kind=\"readmit\"",
			 (double)c->readmits_total);
	pn_metric_sample(f, "pipenet_recovery_total", "kind=\"batch_resent\"",
			 (double)c->resends_total);
	pn_metric_sample(f, "pipenet_recovery_total", "kind=\"stale_frame\"",
			 (double)c->stale_total);
	pn_metric_single(f, "pipenet_inflight_batches", "gauge",
			 "Batches dispatched whose logits have not come back.",
			 r && r->state == RUN_RUNNING ? r->inflight : 0);
	pn_metric_family(f, "pipenet_stage_up", "gauge",
			 "1 when the stage answers its health checks with the coordinator's model, "
			 "0 when down or refused.");
	for (int i = 0; i < c->nnodes; i++) {
		snprintf(lab, sizeof(lab), "stage=\"%s\"",
			 pn_metric_label(c->nodes[i].address, l1, sizeof(l1)));
		pn_metric_sample(f, "pipenet_stage_up", lab,
				 c->nodes[i].up == 1 && !c->nodes[i].refused);
	}
	pn_metric_family(f, "pipenet_stage_state", "gauge",
			 "1 for the state each stage is in (the reason is in /api/v1/cluster).");
	static const char *const node_states[] = {"up", "down", "refused", "unknown"};
	for (int i = 0; i < c->nnodes; i++)
		for (int k = 0; k < 4; k++) {
			snprintf(lab, sizeof(lab), "stage=\"%s\",state=\"%s\"",
				 pn_metric_label(c->nodes[i].address, l1, sizeof(l1)),
				 node_states[k]);
			pn_metric_sample(f, "pipenet_stage_state", lab,
					 strcmp(node_state(&c->nodes[i]), node_states[k]) == 0);
		}
	pn_metric_family(f, "pipenet_stage_utilisation", "gauge",
			 "Busy fraction of each range's stage over the last interval of the "
			 "running run.");
	for (int i = 0; r && r->state == RUN_RUNNING && i < r->nranges; i++) {
		snprintf(lab, sizeof(lab), "stage=\"%s\",range=\"%d\"",
			 pn_metric_label(range_address(r, i), l1, sizeof(l1)), i);
		pn_metric_sample(f, "pipenet_stage_utilisation", lab, r->ranges[i].utilisation);
	}
	int conns;
	uint64_t refused;
	pn_http_conn_counts(c->http, &conns, &refused);
	pn_metric_single(f, "pipenet_http_connections", "gauge",
			 "Open client connections to this daemon's HTTP server.", conns);
	pn_metric_single(f, "pipenet_http_connections_refused_total", "counter",
			 "Connections answered 503 because max_connections were open.",
			 (double)refused);
	int waiting;
	uint64_t delayed;
	pn_http_read_counts(c->http, &waiting, &delayed);
	pn_metric_single(f, "pipenet_http_reads_waiting", "gauge",
			 "API reads waiting for the api_reads_per_s budget.", waiting);
	pn_metric_single(f, "pipenet_http_reads_delayed_total", "counter",
			 "API reads that waited for the api_reads_per_s budget.", (double)delayed);
	pn_metric_single(f, "pipenet_event_clients", "gauge", "Open event streams.",
			 pn_events_clients(c->events));
	pn_metric_family(f, "pipenet_batch_latency_seconds", "histogram",
			 "Batch latency, dispatch to logits.");
	pn_metric_hist(f, "pipenet_batch_latency_seconds", "", &c->latency);
	pn_metric_family(f, "pipenet_stage_compute_seconds", "histogram",
			 "Compute time per batch of each stage (averaged over each 1 s report).");
	for (int i = 0; i <= c->nnodes; i++) {
		int h = i < c->nnodes ? i : MAX_STAGES;
		if (i == c->nnodes && !c->compute[h].count)
			continue;
		snprintf(lab, sizeof(lab), "stage=\"%s\"",
			 pn_metric_label(i < c->nnodes ? c->nodes[i].address : "coordinator", l1,
					 sizeof(l1)));
		pn_metric_hist(f, "pipenet_stage_compute_seconds", lab, &c->compute[h]);
	}
	pn_metric_single(f, "process_cpu_seconds_total", "counter",
			 "CPU time of the coordinator process, user and system.",
			 (double)pn_cpu_ns() / 1e9);
	pn_metric_family(f, "pipenet_coordinator_seconds_total", "counter",
			 "The coordinator's time outside the kernels, by kind.");
	for (int k = 0; k < NACCT; k++) {
		snprintf(lab, sizeof(lab), "kind=\"%s\"", acct_names[k]);
		pn_metric_sample(f, "pipenet_coordinator_seconds_total", lab,
				 (double)c->acct[k] / 1e9);
	}
	pn_metric_family(f, "pipenet_stage_time_seconds_total", "counter",
			 "Each range's stage in the running run: its process CPU (kind cpu), "
			 "and the wall time in the kernels and outside them by kind.");
	for (int i = 0; r && r->state == RUN_RUNNING && i < r->nranges; i++) {
		static const char *const keys[][2] = {
			{"cpu", "cpu_ns"},
			{"kernel", "kernel_ns"},
			{"preprocess", "preprocess_ns"},
			{"convert", "convert_ns"},
			{"crc", "crc_ns"},
			{"frame", "frame_ns"},
		};
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			snprintf(lab, sizeof(lab), "stage=\"%s\",range=\"%d\",kind=\"%s\"",
				 pn_metric_label(range_address(r, i), l1, sizeof(l1)), i,
				 keys[k][0]);
			pn_metric_sample(f, "pipenet_stage_time_seconds_total", lab,
					 (double)counter(r->ranges[i].status, keys[k][1]) / 1e9);
		}
	}
	if (fclose(f) != 0 || !text) {
		free(text);
		pn_reply_error(q, 503, "out of memory", "cannot write the metrics");
		return;
	}
	c->acct[ACCT_JSON] += pn_now_ns() - t0;
	cache_set(c, &c->metrics_cache, text, len);
	pn_reply_bytes(q, 200, type, text, len);
}

static void web_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	pn_web_serve(q, c->o.web_root, pn_req_arg(q, 0));
}

static void chartjs_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	if (!c->o.chartjs || !*c->o.chartjs)
		pn_reply_error(q, 404, "not found", "no chartjs file is set");
	else
		pn_web_serve_file(q, c->o.chartjs);
}

/* The coordinator's routes (GET /api/v1/health is the daemon's). */
static const struct pn_route routes[] = {
	{PN_POST, "/v1/frames", frames_route, PN_ROUTE_AUTH | PN_ROUTE_LARGE_BODY},
	{PN_GET, "/v1/echo", pn_probe_echo_route, 1},
	{PN_GET, "/api/v1/cluster", cluster_get, 0},
	{PN_POST, "/api/v1/runs", runs_post, 1},
	{PN_GET, "/api/v1/runs", runs_list, 0},
	{PN_GET, "/api/v1/datasets", datasets_get, 0},
	{PN_GET, "/api/v1/runs/*", run_get, 0},
	{PN_DELETE, "/api/v1/runs/*", run_delete, 1},
	{PN_GET, "/api/v1/runs/*/logits", run_logits, 0},
	{PN_PUT, "/api/v1/split", split_put, 1},
	{PN_GET, "/api/v1/events", events_get, 0},
	{PN_POST, "/api/v1/classify", classify_post, PN_ROUTE_AUTH | PN_ROUTE_JPEG_BODY},
	{PN_GET, "/api/v1/plan", plan_get, 0},
	{PN_GET, "/metrics", metrics_get, 0},
	{PN_GET, "/chart.js", chartjs_get, 0},
	{PN_GET, "/**", web_get, 0},
};

const struct pn_route *pn_coord_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

/* ---- life ---- */

static void dataset_warn(const char *msg)
{
	pn_warn("%s", msg);
}

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
	c->model_path = model_path;
	c->o = *o;
	c->t_start = pn_now_ns();
	pn_hist_init(&c->latency, latency_bounds,
		     (int)(sizeof(latency_bounds) / sizeof(latency_bounds[0])));
	for (int i = 0; i <= MAX_STAGES; i++)
		pn_hist_init(&c->compute[i], compute_bounds,
			     (int)(sizeof(compute_bounds) / sizeof(compute_bounds[0])));
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
		nd->index = c->nnodes;
		nd->up = -1;
		snprintf(nd->address, sizeof(nd->address), "%s", addr);
		c->nnodes++; /* pn_coord_free frees what was made */
		nd->ctl = pn_peer_new(l, addr, o->token, err, errlen);
		nd->stats = nd->ctl ? pn_peer_new(l, addr, o->token, err, errlen) : NULL;
		nd->probe = nd->stats ? pn_peer_new(l, addr, o->token, err, errlen) : NULL;
		nd->prof_timer = nd->probe ? pn_timer_new(l, profile_timer_cb, nd) : NULL;
		if (!nd->prof_timer)
			goto fail;
		pn_peer_set_timeout_ms(nd->ctl, CONTROL_TIMEOUT_MS);
		pn_peer_set_timeout_ms(nd->stats, CONTROL_TIMEOUT_MS);
		pn_peer_set_timeout_ms(nd->probe, HEALTH_TIMEOUT_MS);
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
	c->link_timer = pn_timer_new(l, link_timer_cb, c);
	c->auto_timer = pn_timer_new(l, auto_timer_cb, c);
	c->events = pn_events_new(l, SSE_MAX_CLIENTS, o->events_buffer_bytes);
	c->classifier = pn_classifier_new(l, m);
	if (o->data_dir && *o->data_dir && !have_datadir(c, err, errlen))
		pn_warn("%s; dataset runs are refused until it can be opened", err);
	pn_dataset_set_warn(dataset_warn);
	if (!c->local || !c->dispatcher || !c->tick || !c->events || !c->link_timer ||
	    !c->auto_timer || !c->classifier) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* API bodies (a JPEG to classify), or logits frames of the largest
	 * batch; the own stage's input frames arrive by function call. */
	size_t logits = pn_frame_size(PN_DTYPE_F32, (size_t)o->max_batch, 1, 1,
				      (size_t)pn_model_num_classes(m));
	pn_http_set_max_body(http, logits > o->max_body_bytes ? logits : o->max_body_bytes);
	pn_timer_arm(c->tick, 1000);
	for (int i = 0; i < c->nnodes; i++)
		ping(&c->nodes[i]);
	/* The dashboard's default batch size, measured while idle. */
	want_profiles(c, 8 <= o->max_batch ? 8 : o->max_batch);
	return c;
fail:
	pn_coord_free(c);
	return NULL;
}

int pn_coord_reaching(const struct pn_coord *c, char *why, size_t len)
{
	for (int i = 0; i < c->nnodes; i++) {
		const struct node *n = &c->nodes[i];
		if (n->up == -1 && !n->refused) {
			snprintf(why, len, "stage %s not reached yet%s%s", n->address,
				 n->why[0] ? ": " : "", n->why);
			return 1;
		}
	}
	return 0;
}

void pn_coord_stop(struct pn_coord *c)
{
	c->stopping = 1;
	for (int i = 0; i < c->nruns; i++)
		if (c->runs[i]->state < RUN_DONE)
			end_run(c->runs[i], RUN_CANCELLED, "the coordinator is stopping");
	pn_stage_stop(c->local);
	pn_classifier_stop(c->classifier);
}

void pn_coord_free(struct pn_coord *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nruns; i++)
		run_free(c->runs[i]);
	pn_events_free(c->events);
	free(c->runs_cache.body);
	free(c->metrics_cache.body);
	free(c->datasets_cache.body);
	for (int i = 0; i < c->nnodes; i++) {
		pn_peer_free(c->nodes[i].ctl);
		pn_peer_free(c->nodes[i].stats);
		pn_peer_free(c->nodes[i].probe);
		pn_timer_free(c->nodes[i].prof_timer);
	}
	pn_classifier_free(c->classifier);
	pn_datadir_free(c->datadir);
	pn_stage_free(c->local);
	pn_task_free(c->dispatcher);
	pn_timer_free(c->tick);
	pn_timer_free(c->link_timer);
	pn_timer_free(c->auto_timer);
	pn_probe_free(c->link_own);
	free(c);
}
