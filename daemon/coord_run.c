/* A run's life: parsing a request, configuring the stages, the
 * stages' counters, the end of a run and the next one. */
#include "coord_internal.h"

#define CONTROL_RETRY_MS 3000

/* A run's accounting tells a stage's CPU per frame byte once it moved this
 * many bytes (less is dominated by the loop's own time). */
#define FRAME_COST_MIN_BYTES ((uint64_t)64 << 20)
/* A finished run tells a stage's speed against its profile from this many
 * batches. */
#define SPEED_MIN_FRAMES 16

static void reset_ranges(struct run *r)
{
	for (int k = 0; k < r->ngroups; k++)
		for (int i = 0; i < r->groups[k].nranges; i++) {
			struct range *g = &r->groups[k].ranges[i];
			if (!g->node)
				pn_stage_reset(r->c->local);
			else
				pn_peer_send(g->node->ctl, PN_DELETE, "/v1/stage", NULL, NULL, 0, 0,
					     NULL, NULL);
		}
}

/* A finished run tells each stage's speed now against its profile: its
 * kernels' and preprocessing's time per batch over what the profile gives
 * for its range (at least a few batches, within 4x either way, and not
 * where big frames slow the kernels). The ratio kept is the mean of the
 * last one and this run's: one run beside a burst of other work moves
 * the next predictions half as far, and a lasting change is followed
 * within a few runs. */
static void learn_group_speed(struct run *r, const struct group *gr)
{
	for (int i = 0; i < gr->nranges; i++) {
		const struct range *g = &gr->ranges[i];
		const double *prof = g->node ? node_profile(g->node, r->batch) : NULL;
		uint64_t frames = counter(g->status, "frames_in");
		if (!prof || frames < SPEED_MIN_FRAMES)
			continue;
		double want = 0;
		for (int b = g->first; b < g->last; b++)
			want += prof[b];
		/* A debug slowdown stretches its profile's blocks, not these. */
		double slow = json_number_value(json_object_get(g->status, "slowdown"));
		double seen =
			ms(counter(g->status, "kernel_ns") + counter(g->status, "preprocess_ns")) /
			(double)frames * (slow > 1 ? slow : 1);
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
			g->node->speed_ratio =
				g->node->speed_ratio > 0 ? (g->node->speed_ratio + q) / 2 : q;
	}
}

static void learn_speed(struct run *r)
{
	for (int k = 0; k < r->ngroups; k++)
		learn_group_speed(r, &r->groups[k]);
}

void end_run(struct run *r, enum run_state state, const char *fmt, ...)
{
	struct pn_coord *c = r->c;
	/* A run done ends from RUN_FINISHING, its stages' last counters in. */
	if (state == RUN_DONE && r->state == RUN_FINISHING)
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
	for (int k = 0; k < r->ngroups; k++) {
		pn_peer_free(r->groups[k].first_hop);
		r->groups[k].first_hop = NULL;
		r->groups[k].draining = r->groups[k].configuring = 0;
	}
	pn_dataset_free(r->ds);
	r->ds = NULL;
	free(r->building);
	r->building = NULL;
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
		/* Not start_next here: configuring the next run may end it, and
		 * run lifecycle calls stay one-way (start -> configure -> end). */
		pn_task_schedule(c->starter);
		links_after_run(c);
	}
}

uint64_t counter(json_t *status, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(status, key));
}

/* Per frame since mark m of a hop's counters, once at least 4 frames
 * are new (one says little): the transfer time and bytes, and m moves
 * on; else 0. Counters that went back (a restarted sender) restart m. */
int hop_interval(struct hop_mark *m, uint64_t frames, uint64_t transfer_ns, uint64_t bytes,
		 double *ms_each, double *bytes_each)
{
	if (frames < m->frames || transfer_ns < m->transfer_ns || bytes < m->bytes)
		*m = (struct hop_mark){0};
	if (frames < m->frames + 4)
		return 0;
	double n = (double)(frames - m->frames);
	*ms_each = ms(transfer_ns - m->transfer_ns) / n;
	*bytes_each = (double)(bytes - m->bytes) / n;
	*m = (struct hop_mark){frames, transfer_ns, bytes};
	return 1;
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
	/* Frames and bytes of the frames answered: bytes_out counts frames
	 * still queued too (a frame more of them read 2.41 MB frames as 2.89). */
	hop_interval(&g->out_mark, counter(status, "out_acked"), counter(status, "out_transfer_ns"),
		     counter(status, "out_acked_bytes"), &g->recent_transfer_ms,
		     &g->recent_frame_bytes);
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
		 pre = counter(status, "preprocess_ns"),
		 bytes = counter(status, "bytes_in") + counter(status, "bytes_out");
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
	struct group *gr = node_group(r, n);
	for (int i = 0; gr && i < gr->nranges; i++) {
		if (gr->ranges[i].node != n)
			continue;
		json_t *plan = json_object_get(j, "plan");
		json_int_t run = json_integer_value(json_object_get(plan, "run"));
		/* Counters of this run under this epoch's plan only. A stage's
		 * last_error (a frame the next node did not take) is kept with
		 * them: the health checks and the batch deadlines act on it. */
		if (j && run == r->id &&
		    json_integer_value(json_object_get(plan, "epoch")) == (gr->epoch & 255) &&
		    json_integer_value(json_object_get(plan, "first")) == gr->ranges[i].first &&
		    json_integer_value(json_object_get(plan, "last")) == gr->ranges[i].last) {
			set_status(r, &gr->ranges[i], json_incref(j));
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

static void fetch_group_stats(struct run *r, struct group *gr)
{
	for (int i = 0; i < gr->nranges; i++) {
		struct range *g = &gr->ranges[i];
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

/* Asks every remote range for its counters; the local one is read now. */
void fetch_stats(struct run *r)
{
	for (int k = 0; k < r->ngroups; k++)
		fetch_group_stats(r, &r->groups[k]);
}

static void config_cb(const struct pn_reply *rep, void *arg)
{
	struct node *n = arg;
	struct run *r = n->c->active;
	struct group *g = r ? node_group(r, n) : NULL;
	if (!g || !g->configuring || (uint64_t)r->id != n->cfg_run)
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
	if (--g->pending == 0)
		begin(r, g);
}

static json_t *stage_config(struct run *r, const struct group *g, int i)
{
	struct pn_coord *c = r->c;
	const char *next = i + 1 < g->nranges ? g->ranges[i + 1].node->address : c->advertise;
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s}", "run", r->id, "epoch",
			 g->epoch & 255, "first", g->ranges[i].first, "last", g->ranges[i].last,
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
	r->bgroup = calloc(r->nbatches, 1);
	r->bresends = calloc(r->nbatches, 1);
	r->t_dispatch = calloc(r->nbatches, sizeof(uint64_t));
	r->t_done = calloc(r->nbatches, sizeof(uint64_t));
	r->t_sent = calloc(r->nbatches, sizeof(uint64_t));
	if (!r->logits || !r->labels || !r->bstate || !r->bepoch || !r->bgroup || !r->bresends ||
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
void plan_start(struct run *r)
{
	if (refused_only(r))
		return;
	plan_groups(r);
	if (r->split_auto) {
		r->auto_waiting = 1;
		r->auto_deadline = pn_now_ns() + (uint64_t)r->auto_wait_s * 1000000000u;
		auto_poll(r);
		return;
	}
	for (int k = 0; k < r->ngroups; k++)
		if (!r->groups[k].dropped)
			epoch_predict(r, &r->groups[k]);
	/* Each group begins when its own stages have answered. */
	for (int k = 0; k < r->ngroups && (r->state == RUN_CONFIGURING || r->state == RUN_RUNNING);
	     k++)
		if (!r->groups[k].dropped)
			send_configs(r, &r->groups[k]);
}

/* PUT /v1/stage to every range of group g's current split (the own
 * stage directly); g->pending counts the replies awaited, and the group
 * begins when the last is in (at once when none is awaited). The run is
 * configuring while no group runs. Fails the run on an error. */
void send_configs(struct run *r, struct group *g)
{
	struct pn_coord *c = r->c;
	int running = 0;
	g->configuring = 1;
	for (int k = 0; k < r->ngroups; k++)
		running |= !r->groups[k].dropped && !r->groups[k].configuring;
	if (!running)
		r->state = RUN_CONFIGURING;
	c->gen++;
	g->pending = 0;
	/* Replies to an older configuration must not count for this one. */
	for (int i = 0; i < g->nranges; i++)
		if (g->ranges[i].node)
			pn_peer_clear(g->ranges[i].node->ctl);
	for (int i = 0; i < g->nranges; i++) {
		json_t *cfg = stage_config(r, g, i), *reply = NULL;
		struct node *n = g->ranges[i].node;
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
			end_run(r, RUN_FAILED, "out of memory for the plan of stage %s",
				n->address);
			return;
		}
		g->pending++;
	}
	if (g->pending == 0)
		begin(r, g);
}

void start_next(struct pn_coord *c)
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

void start_next_cb(void *arg)
{
	start_next(arg);
}

void finish(struct run *r)
{
	r->t_end = pn_now_ns();
	r->state = RUN_FINISHING;
	r->c->gen++;
	r->pending = 0;
	fetch_stats(r);
	if (r->pending == 0)
		end_run(r, RUN_DONE, NULL);
}

/* The split points of a run or PUT /api/v1/split (`name` in errors):
 * "auto" or increasing block numbers, one range per member (or, when
 * local_ok, one more, computed by the coordinator). `members` are the
 * stages to split over, `total` how many there are up or not. "auto" is
 * the planner's best plan over the measured block times for `batch` when
 * they are known (*source "planner"), else MACs balanced over the
 * members ("macs"; always when batch is 0). 0, or -1 with the reason. */
int parse_points(struct pn_coord *c, json_t *split, const char *name, int batch, int dtype,
		 const int *members, int nm, int total, int local_ok, int *points, int *npoints,
		 const char **source, char *err, size_t errlen)
{
	*source = "given";
	int blocks = pn_model_blocks(c->m);
	char down[300] = ""; /* " up (N down or refused)" */
	char local[120] = "";
	if (nm < total)
		snprintf(down, sizeof(down), " up (%d down or refused)", total - nm);
	if (local_ok)
		snprintf(local, sizeof(local),
			 " (or %d to have the coordinator compute the first range)", nm);
	*npoints = 0;
	if (total > blocks) {
		snprintf(err, errlen, "%d stages for %d blocks: some would have nothing to do",
			 total, blocks);
		return -1;
	}
	if (json_is_string(split) && strcmp(json_string_value(split), "auto") == 0) {
		enum split_by by = split_over(c, members, nm, batch, dtype, points, npoints);
		*source = by == SPLIT_PLANNER ? "planner" : "macs";
		return 0;
	}
	if (!json_is_array(split)) {
		snprintf(err, errlen, "%s must be \"auto\" or an array of block numbers", name);
		return -1;
	}
	size_t i;
	json_t *v;
	json_array_foreach(split, i, v)
	{
		if (!json_is_integer(v)) {
			snprintf(err, errlen, "%s[%zu] must be an integer", name, i);
			return -1;
		}
		json_int_t p = json_integer_value(v);
		if (p < 1 || p >= blocks) {
			snprintf(err, errlen,
				 "%s[%zu] = %" JSON_INTEGER_FORMAT
				 " is out of range: split points are blocks 1 to %d",
				 name, i, p, blocks - 1);
			return -1;
		}
		if (i && p <= points[i - 1]) {
			snprintf(err, errlen,
				 "%s[%zu] = %" JSON_INTEGER_FORMAT
				 " does not come after %d: split points must increase",
				 name, i, p, points[i - 1]);
			return -1;
		}
		if (i >= (size_t)(local_ok ? nm : nm > 0 ? nm - 1 : 0)) {
			snprintf(err, errlen,
				 "%s has %zu points, which make %zu block ranges for %d "
				 "stages%s: give %d points%s",
				 name, json_array_size(split), json_array_size(split) + 1, nm, down,
				 nm ? nm - 1 : 0, local);
			return -1;
		}
		points[(*npoints)++] = (int)p;
	}
	if (*npoints + 1 < nm) {
		snprintf(err, errlen,
			 "%s has %d points, which make %d block ranges for %d stages%s: give %d "
			 "points%s",
			 name, *npoints, *npoints + 1, nm, down, nm - 1, local);
		return -1;
	}
	return 0;
}

/* The split a run gets when it names none: the last PUT /api/v1/split, or auto. */
void default_points(struct pn_coord *c, int *points, int *npoints)
{
	if (c->default_set) {
		memcpy(points, c->default_points, sizeof(c->default_points));
		*npoints = c->default_npoints;
	} else {
		int members[MAX_STAGES], nm = live_members(c, members);
		split_over(c, members, nm, 0, PN_DTYPE_F32, points, npoints);
	}
}

static const char *const run_keys[] = {"dataset",     "offset", "stride", "samples",
				       "batch_size",  "mode",	"split",  "max_inflight",
				       "wire",	      "queue",	"adapt",  "adapt_interval_s",
				       "auto_wait_s", "groups", NULL};

/* "groups": stage counts of consecutive groups covering every stage once.
 * 0, or -1 with the reason. */
static int parse_groups(struct pn_coord *c, json_t *groups, int *sizes, int *n, char *err,
			size_t errlen)
{
	size_t i, sum = 0;
	json_t *v;
	if (!json_is_array(groups) || json_array_size(groups) == 0) {
		snprintf(err, errlen,
			 "groups must be a non-empty list of stage counts, one per group (e.g. "
			 "[2, 2])");
		return -1;
	}
	if (json_array_size(groups) > (size_t)c->nnodes) {
		snprintf(err, errlen, "groups has %zu groups for %d stages: each needs a stage",
			 json_array_size(groups), c->nnodes);
		return -1;
	}
	json_array_foreach(groups, i, v)
	{
		json_int_t k = json_integer_value(v);
		if (!json_is_integer(v) || k < 1) {
			snprintf(err, errlen,
				 "groups[%zu] must be a whole number of stages, at least 1", i);
			return -1;
		}
		sum += (size_t)(k > c->nnodes ? c->nnodes + 1 : k);
		sizes[i] = (int)(k > c->nnodes ? c->nnodes + 1 : k);
	}
	if (sum != (size_t)c->nnodes) {
		snprintf(err, errlen,
			 "groups sum to %zu stages but the coordinator has %d (--stages): the "
			 "groups must take every stage once, in order",
			 sum, c->nnodes);
		return -1;
	}
	*n = (int)json_array_size(groups);
	return 0;
}

/* The splits of a run with "groups": "auto" (at the start), none (MACs
 * over each group's stages), or one list of cuts per group, each giving
 * its stages one range each. 0, or -1 with the reason. */
static int parse_group_splits(struct pn_coord *c, json_t *split, const int *sizes, int n, int dtype,
			      int points[][MAX_RANGES], int *npoints, char *err, size_t errlen)
{
	const char *source;
	int members[MAX_STAGES];
	int is_auto = json_is_string(split) && strcmp(json_string_value(split), "auto") == 0;
	if (split && !is_auto && (!json_is_array(split) || json_array_size(split) != (size_t)n)) {
		snprintf(err, errlen,
			 "split must be \"auto\" or a list of %d lists of cuts, one per group "
			 "(e.g. [[8], [8]]; [] for a group of one stage)",
			 n);
		return -1;
	}
	for (int k = 0, at = 0; k < n; at += sizes[k++]) {
		json_t *cuts = json_is_array(split) ? json_array_get(split, (size_t)k) : NULL;
		char name[32];
		for (int i = 0; i < sizes[k]; i++)
			members[i] = at + i;
		snprintf(name, sizeof(name), "split[%d]", k);
		if (cuts && !json_is_array(cuts)) {
			snprintf(err, errlen, "%s must be a list of block numbers (group %d)", name,
				 k);
			return -1;
		}
		if (!cuts) {
			split_over(c, members, sizes[k], 0, dtype, points[k], &npoints[k]);
			continue;
		}
		if (parse_points(c, cuts, name, 0, dtype, members, sizes[k], sizes[k], n == 1,
				 points[k], &npoints[k], &source, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* A run from a POST body; NULL with a message. */
struct run *parse_run(struct pn_coord *c, json_t *j, char *err, size_t errlen)
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
	if (!pn_wire_dtype(dtype)) {
		snprintf(err, errlen, PN_WIRE_CHOICES);
		return NULL;
	}
	static int points[MAX_GROUPS][MAX_RANGES];
	int npoints[MAX_GROUPS] = {0}, sizes[MAX_GROUPS] = {c->nnodes}, ngroups = 1;
	const char *source = "default";
	json_t *split = json_object_get(j, "split"), *groups = json_object_get(j, "groups");
	int split_is_auto = json_is_string(split) && strcmp(json_string_value(split), "auto") == 0;
	/* "split": "auto" without "groups" runs the planner's winner, one
	 * pipeline or groups; "groups": [n] with it keeps one pipeline. */
	int groups_auto =
		(json_is_string(groups) && strcmp(json_string_value(groups), "auto") == 0) ||
		(!groups && split_is_auto);
	if (groups_auto && split && !split_is_auto) {
		snprintf(err, errlen,
			 "with \"groups\": \"auto\" the planner splits: give \"split\": "
			 "\"auto\" or none");
		return NULL;
	}
	if (groups_auto) {
		if (!split) /* "groups": "auto" alone: the string "auto" */
			split = groups;
		groups = NULL; /* one group, split "auto", until the planner's verdict */
	} else if (groups) {
		if (parse_groups(c, groups, sizes, &ngroups, err, errlen) != 0 ||
		    parse_group_splits(c, split, sizes, ngroups, dtype, points, npoints, err,
				       errlen) != 0)
			return NULL;
		source = !split ? "macs" : "given";
	} else if (!split) {
		default_points(c, points[0], &npoints[0]);
	} else {
		int members[MAX_STAGES], nm = live_members(c, members);
		if (parse_points(c, split, "split", 0, dtype, members, nm, c->nnodes, 1, points[0],
				 &npoints[0], &source, err, errlen) != 0)
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
	r->split_auto = split && json_is_string(split); /* resolved when it starts */
	r->split_source = r->split_auto ? "pending" : source;
	r->auto_wait_s = (int)auto_wait;
	r->adapt = json_is_true(adapt);
	r->adapt_interval_s = (int)interval;
	r->groups_given = groups != NULL;
	r->groups_auto = groups_auto;
	r->ngroups = ngroups;
	r->epoch = ngroups - 1; /* group k's first plan is epoch k */
	r->window_auto = pipelined && !window;
	r->window = !pipelined ? 1 : (int)window;
	for (int k = 0, at = 0; k < ngroups; at += sizes[k++]) {
		struct group *g = &r->groups[k];
		g->r = r;
		g->index = k;
		g->epoch = k;
		EPOCH(r, k)->number = k;
		g->stage0 = at;
		g->nstages = sizes[k];
		for (int i = 0; i < MAX_STAGES; i++)
			g->ratio[i] = g->applied[i] = 1.0;
	}
	int members[MAX_STAGES], nm = live_members(c, members);
	if (!groups && (npoints[0] + 1 - nm < 0 ||
			npoints[0] + 1 - nm > 1)) { /* a default from before a loss */
		split_over(c, members, nm, 0, dtype, points[0], &npoints[0]);
		r->split_source = "macs";
	}
	for (int i = 0; i < c->nnodes; i++) /* say which stages are left out, and why */
		if (!node_usable(&c->nodes[i]))
			snprintf(r->split_note + strlen(r->split_note),
				 sizeof(r->split_note) - strlen(r->split_note), "%sstage %s %s: %s",
				 r->split_note[0] ? "; " : "", c->nodes[i].address,
				 node_state(&c->nodes[i]), c->nodes[i].why);
	for (int k = 0; k < ngroups; k++) {
		struct group *g = &r->groups[k];
		/* With groups, each group's split is over all of its stages; the
		 * ones not up are planned around when the run starts. */
		if (groups) {
			nm = g->nstages;
			for (int i = 0; i < nm; i++)
				members[i] = g->stage0 + i;
		}
		apply_points(r, g, points[k], npoints[k], members, nm);
		g->window = r->window ? r->window : g->nranges + 1;
	}
	r->t_created = pn_now_ns();
	return r;
}

void run_free(struct run *r)
{
	if (!r)
		return;
	for (int k = 0; k < r->ngroups; k++) {
		pn_peer_free(r->groups[k].first_hop);
		for (int i = 0; i < r->groups[k].nranges; i++)
			json_decref(r->groups[k].ranges[i].status);
	}
	pn_dataset_free(r->ds);
	free(r->dataset);
	free(r->building);
	free(r->cache.body);
	free(r->logits);
	free(r->labels);
	free(r->bstate);
	free(r->bepoch);
	free(r->bgroup);
	free(r->bresends);
	free(r->t_dispatch);
	free(r->t_done);
	free(r->t_sent);
	free(r);
}

struct run *find_run(struct pn_coord *c, const char *id)
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
int make_room(struct pn_coord *c)
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
int have_datadir(struct pn_coord *c, char *err, size_t errlen)
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
