/* Private to the coordinator's modules (coord*.c): its state and
 * what one module calls in another. Each mutable field has one owner,
 * the module that writes it; the others read it or call the owner.
 * Calls that would come back to their caller go through a task instead
 * (a run that ends schedules the next one's start, `starter`). */
#ifndef PN_COORD_INTERNAL_H
#define PN_COORD_INTERNAL_H

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
#include "hop.h"
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
#define MAX_GROUPS MAX_STAGES
#define EPOCH(r, e) (&(r)->epochs[(e) % MAX_EPOCHS])
#define GROUP_EPOCH(g) EPOCH((g)->r, (g)->epoch)
_Static_assert(MAX_GROUPS < MAX_EPOCHS, "every group's current epoch has a slot, and one more");

/* Health: every node is asked GET /api/v1/health each PING_MS; a node
 * that fails HEALTH_MISSES answers in a row (each given HEALTH_TIMEOUT_MS:
 * a stopped process accepts the connection but never answers) is down,
 * and the run re-plans over the nodes still up. A node that answers again
 * with the coordinator's model is re-admitted once up for READMIT_MS. */
#define PING_MS 1000
#define HEALTH_TIMEOUT_MS 2000
#define HEALTH_MISSES 2
#define READMIT_MS 2000

#define PROFILES 4 /* batch sizes whose block times a node keeps */

#define RATE_TICKS 4 /* img_s_now is measured over the last 3 s */
#define MAX_HOPS 64 /* (from, to) pairs counted in pipenet_hop_bytes_total */

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
	int prof_generation; /* the stage's block_times_generation they are from */
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

/* A hop's frame counters (acked, their transfer time, bytes) as they
 * were at the start of an interval (hop_interval). */
struct hop_mark {
	uint64_t frames, transfer_ns, bytes;
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
	struct hop_mark out_mark; /* its frames out at the last interval */
	double recent_transfer_ms, recent_frame_bytes;
};

/* One plan of a run: the split it ran with and what it did. */
struct epoch {
	int number; /* which epoch of the run the slot holds */
	int group; /* whose plan it is */
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

/* A run's figures over time (coord_history.c): at most HISTORY_ROWS rows
 * of HISTORY_COLS numbers, one kept per `every` offered. */
#define HISTORY_ROWS 512
#define HISTORY_COLS 4
struct history {
	int n, every, last_kept;
	uint64_t offered;
	double last[HISTORY_COLS];
	double v[HISTORY_ROWS][HISTORY_COLS];
};

/* A pipeline of a run over every block. Its stages are the consecutive
 * nodes [stage0, stage0 + nstages) of the coordinator's list; a run has
 * one group over every stage unless "groups" divides them (replication).
 * Batches go to the groups by demand (dispatch_cb); each group plans,
 * drains, fails over and re-admits on its own, and every plan of any
 * group takes the run's next epoch number, so a frame's epoch names its
 * group. Owners: coord_dispatch.c the window (inflight, hop counters,
 * images) and first_hop once begun; coord_epoch.c the plan (ranges,
 * epoch, dropped, draining, next_*, adapt's fields); coord_run.c the
 * configuration (configuring, pending). */
struct group {
	struct run *r;
	int index;
	int stage0, nstages;
	int dropped; /* every member lost while another group ran: no plan */
	int configuring, pending; /* replies to its PUT /v1/stage awaited */
	int epoch; /* the run epoch of its current plan */
	int nranges;
	struct range ranges[MAX_RANGES];
	struct pn_peer *first_hop; /* frames to the first range, when remote */
	int window, inflight;
	uint64_t hop_frames, hop_bytes, hop_transfer_ns;
	uint64_t hop_acked_bytes; /* of the hop_frames answered (hop_bytes: sent) */
	/* coord_links.c's mark of the hop counters at its last look at the
	 * coordinator's own link (hop 0), and how many looks in a row found
	 * it out of the model. */
	struct hop_mark hop0_mark;
	int drift_strikes;
	size_t images, batches; /* whose logits came back from it */
	/* A re-split waiting for its batches in flight to drain. */
	int draining, next_points[MAX_RANGES], next_npoints;
	int next_members[MAX_STAGES], next_nmembers;
	char next_reason[700];
	double next_img_s, next_latency_ms;
	/* adapt: compute against the profile per range (see adapt_check). */
	double ratio[MAX_STAGES];
	double applied[MAX_STAGES]; /* the ratios the last adapt re-split planned for */
	int adapt_hold;
	uint64_t adapt_last;
};

struct run {
	struct pn_coord *c;
	int id;
	enum run_state state;
	char *dataset;
	size_t offset, stride, samples;
	int batch, pipelined, window, dtype; /* window: max_inflight per group, 0 auto */
	int ngroups;
	struct group groups[MAX_GROUPS];
	char error[768];

	struct pn_dataset *ds; /* opened when posted */
	uint8_t *building; /* a frame being filled, a few images per loop turn */
	size_t build_b, build_i, build_len;
	float *logits; /* [samples][classes] */
	int *labels;
	size_t nbatches, next_batch, batches_done, images_done, correct, labelled, duplicates;
	/* Per batch: its state, the plan epoch (mod 256) and the group it was
	 * last sent under, and how often a missed deadline sent it again.
	 * Batches before `low` are all done; `nlost` await sending again. */
	uint8_t *bstate, *bepoch, *bgroup, *bresends;
	size_t low, nlost, stale, resends;
	double latency_avg_ms; /* moving average of batch latency */
	uint64_t *t_dispatch, *t_done, *t_sent; /* first sent, logits in, last sent */
	int pending; /* the closing GETs awaited (RUN_FINISHING) */
	uint64_t t_created, t_start, t_first_done, t_last_done, t_end, t_progress;
	size_t first_done_images;
	/* pn_now_ns() and the coordinator's acct[] at the start and the end */
	uint64_t cpu_start, cpu_end, acct_start[NACCT], acct_end[NACCT];

	/* Plans: `epoch` is the last epoch number given to a group's plan.
	 * Up to MAX_EPOCHS epochs are kept (see EPOCH), every group's current
	 * one among them (new_epoch skips a number whose slot holds one);
	 * its `members` are the nodes of its ranges (in pipeline order). */
	int epoch;
	struct epoch epochs[MAX_EPOCHS];
	int failovers, readmits;
	int window_auto; /* max_inflight was not given: ranges + 1 per group */
	int groups_given; /* "groups" was in the request */
	int groups_auto; /* "groups": "auto": the planner's replication verdict */
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
	/* adapt: a re-split of a group when a plan over its stages' measured
	 * speeds gains (per group: see struct group). */
	int adapt, adapt_interval_s, adapts;
	uint64_t rate_t[RATE_TICKS];
	size_t rate_images[RATE_TICKS];
	int rate_n;
	struct api_cache cache;
	struct history seconds, batches; /* for the charts, after the run too */
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
	struct pn_task *starter; /* start_next_cb, scheduled when a run ends */
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
		/* What its last probe measured, and how. */
		struct link_figures {
			double latency_ms, bytes_per_ms;
			size_t bytes[2]; /* the probe's sizes */
			uint64_t beside[2]; /* frame bytes beside them */
			double probe_ms[2]; /* the fastest transfer of each size */
			uint64_t measured_ns; /* when */
			double measured_wall; /* the same, as a Unix time */
		} fig;
		char error[700];
		/* Probed again while known (state stays 2 meanwhile), and why. */
		int reprobing, reprobes;
		char drift[200];
		/* Measured again during the run going on, beside its busy loop
		 * turns: the figures from before it come back once it ends
		 * (links_after_run), and a probe then still under way is not
		 * taken. */
		int run_measured;
		struct link_figures before_run;
		size_t probing_bytes[2]; /* the sizes of the probe under way */
		long long probe_id; /* which measurement the sender is asked for */
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

/* Costs for the planner over the stages (one range each) at `batch`,
 * from their measured block times; -1 when some are not known yet. */
struct costs {
	struct pn_split_costs k;
	double block_ms[MAX_STAGES * MAX_BLOCKS];
	double cut[MAX_BLOCKS + 1];
	double lat[MAX_STAGES + 1], bw[MAX_STAGES + 1];
	double per_byte[MAX_STAGES];
};

extern const char *const acct_names[NACCT];
extern const char *const state_names[];

static inline double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static inline double ms_since(uint64_t now, uint64_t then)
{
	return now > then ? ms(now - then) : 0;
}

static inline double wall_time(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* coord_run.c */
/* Leaves the active run in a final state and moves on. */
void end_run(struct run *r, enum run_state state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t counter(json_t *status, const char *key);
int hop_interval(struct hop_mark *m, uint64_t frames, uint64_t transfer_ns, uint64_t bytes,
		 double *ms_each, double *bytes_each);
void fetch_stats(struct run *r);
void plan_start(struct run *r);
void send_configs(struct run *r, struct group *g);
void start_next(struct pn_coord *c);
void start_next_cb(void *arg);
void finish(struct run *r);
int parse_points(struct pn_coord *c, json_t *split, const char *name, int batch, int dtype,
		 const int *members, int nm, int total, int local_ok, int *points, int *npoints,
		 const char **source, char *err, size_t errlen);
void default_points(struct pn_coord *c, int *points, int *npoints);
struct run *parse_run(struct pn_coord *c, json_t *j, char *err, size_t errlen);
void run_free(struct run *r);
struct run *find_run(struct pn_coord *c, const char *id);
int make_room(struct pn_coord *c);
int have_datadir(struct pn_coord *c, char *err, size_t errlen);

/* coord_dispatch.c */
void dispatch_cb(void *arg);
void begin(struct run *r, struct group *g);
int run_inflight(const struct run *r);
void frames_route(struct pn_req *q, void *arg);
void deadline_check(struct run *r, uint64_t now);
void lose_inflight(struct run *r, struct group *g);

/* coord_epoch.c */
double epoch_img_s(const struct epoch *ep);
int same_members(const struct epoch *ep, const int *members, int nm);
void apply_points(struct run *r, struct group *g, const int *points, int npoints,
		  const int *members, int nm);
void check_drain(struct run *r, struct group *g);
void plan_groups(struct run *r);
const char *plan_over(struct run *r, const int *members, int nm, int *points, int *npoints);
void failover(struct run *r, const struct node *n);
void readmit_check(struct run *r, uint64_t now);
void auto_poll(struct run *r);
void auto_timer_cb(void *arg);
void reach_poll(struct run *r);
void request_split(struct run *r, struct group *g, const int *points, int npoints,
		   const int *members, int nm, const char *reason);
void adapt_check(struct run *r);

/* coord_nodes.c */
int node_usable(const struct node *n);
int live_members(const struct pn_coord *c, int *members);
int run_uses(const struct run *r, const struct node *n);
struct group *node_group(struct run *r, const struct node *n);
int group_members(const struct pn_coord *c, const struct group *g, int *members);
const char *node_state(const struct node *n);
void node_down(struct node *n, const char *why);
void node_refuse(struct node *n, const char *why);
void node_refuse_auth(struct node *n, const char *why);
int refused_only(struct run *r);
void ping(struct node *n);
const double *node_profile(const struct node *n, int batch);
void profile_timer_cb(void *arg);
int want_profiles(struct pn_coord *c, int batch);

/* coord_links.c */
void link_timer_cb(void *arg);
void link_drift_check(struct run *r);
void links_after_run(struct pn_coord *c);
int want_links(struct pn_coord *c, int batch);
json_t *links_json(const struct pn_coord *c);

/* coord_plan.c */
enum split_by { SPLIT_ALONE, SPLIT_PLANNER, SPLIT_MACS };
enum split_by split_over(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
			 int *points, int *npoints);
size_t cut_bytes(const struct pn_coord *c, int cut, size_t n, int dtype);
int make_costs(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
	       double link_mbit, double link_ms, struct costs *k);
int predicted(struct pn_coord *c, const struct run *r, const struct group *g, struct pn_split *out);
void epoch_predict(struct run *r, struct group *g);
int plan_best(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
	      struct pn_split *out);

/* coord_json.c */
const char *range_address(const struct group *g, int i);
json_t *points_json(const int *points, int n);
json_t *batch_json(const struct run *r, uint32_t seq, size_t n);
json_t *summary_json(struct pn_coord *c);
json_t *run_json(const struct run *r);
json_t *model_json(const struct pn_coord *c);
int node_range(struct pn_coord *c, int i, int *first, int *last);
json_t *int_or_null(int ok, int v);
json_t *split_json(const struct pn_split *p);

/* coord_history.c */
void history_second(struct run *r, json_t *summary, uint64_t now);
void history_batch(struct run *r, double latency_ms);
json_t *history_json(const struct run *r);

/* coord_api.c */
int cache_fresh(const struct pn_coord *c, const struct api_cache *k);
void cache_set(const struct pn_coord *c, struct api_cache *k, char *text, size_t len);

/* coord_metrics.c */
void metrics_get(struct pn_req *q, void *arg);

#endif
