/* Read-only JSON views of runs, batches and the cluster. */
#include "coord_internal.h"

static json_t *coord_cpu_json(const struct run *r, double wall_s);
static json_t *stage_cpu_json(json_t *status, uint64_t frames);

const char *range_address(const struct group *g, int i)
{
	return i < 0 || i >= g->nranges || !g->ranges[i].node ? "coordinator"
							      : g->ranges[i].node->address;
}

/* A group's split, or the splits of every group (null for one dropped). */
static json_t *splits_json(const struct run *r)
{
	if (r->ngroups == 1)
		return points_json(GROUP_EPOCH(&r->groups[0])->points,
				   GROUP_EPOCH(&r->groups[0])->npoints);
	json_t *a = json_array();
	for (int k = 0; k < r->ngroups; k++) {
		const struct group *g = &r->groups[k];
		json_array_append_new(a, g->dropped ? json_null()
						    : points_json(GROUP_EPOCH(g)->points,
								  GROUP_EPOCH(g)->npoints));
	}
	return a;
}

/* The planner's figure for the run: the sum of its groups' (each a
 * pipeline of its own), when every group running has one. */
static int run_predicted(const struct run *r, double *img_s, double *latency_ms)
{
	int n = 0;
	*img_s = *latency_ms = 0;
	for (int k = 0; k < r->ngroups; k++) {
		const struct epoch *ep = GROUP_EPOCH(&r->groups[k]);
		if (r->groups[k].dropped)
			continue;
		if (!(ep->predicted_img_s > 0))
			return 0;
		*img_s += ep->predicted_img_s;
		*latency_ms = ep->predicted_latency_ms > *latency_ms ? ep->predicted_latency_ms
								     : *latency_ms;
		n++;
	}
	return n > 0;
}

static const char *group_state(const struct group *g)
{
	return g->dropped	? "dropped"
	       : g->configuring ? "configuring"
	       : g->draining	? "draining"
				: "running";
}

static json_t *accuracy_json(const struct run *r)
{
	return r->labelled ? json_real((double)r->correct / (double)r->labelled) : json_null();
}

json_t *points_json(const int *points, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_integer(points[i]));
	return a;
}

/* The "batch" event (see /tmp/sse-schema.md in the README). */
json_t *batch_json(const struct run *r, uint32_t seq, size_t n)
{
	uint64_t t0 = pn_now_ns();
	json_t *stages = json_array();
	const struct group *gr = &r->groups[r->bgroup[seq]];
	for (int i = 0; i < gr->nranges; i++) {
		const struct range *g = &gr->ranges[i];
		json_array_append_new(
			stages,
			json_pack("{s:i, s:s, s:f, s:f, s:I, s:I}", "index", i, "address",
				  range_address(gr, i), "compute_ms", g->recent_compute_ms,
				  "queue_ms", g->recent_queue_ms, "bytes_in",
				  (json_int_t)cut_bytes(r->c, g->first, n, r->dtype), "bytes_out",
				  (json_int_t)cut_bytes(r->c, g->last, n, r->dtype)));
	}
	json_t *j = json_pack("{s:i, s:i, s:I, s:f, s:i, s:I, s:I, s:o}", "run", r->id, "seq",
			      (int)seq, "images", (json_int_t)n, "latency_ms",
			      ms(r->t_done[seq] - r->t_dispatch[seq]), "epoch", gr->epoch,
			      "images_done", (json_int_t)r->images_done, "samples",
			      (json_int_t)r->samples, "stages", stages);
	json_object_set_new(j, "accuracy", accuracy_json(r));
	json_object_set_new(j, "group", json_integer(gr->index));
	r->c->acct[ACCT_JSON] += pn_now_ns() - t0;
	return j;
}

static double img_s_now(struct run *r, uint64_t now)
{
	int k = r->rate_n < RATE_TICKS ? r->rate_n : RATE_TICKS;
	int oldest = (r->rate_n - k) % RATE_TICKS;
	if (k == 0 || now <= r->rate_t[oldest])
		return 0;
	return (double)(r->images_done - r->rate_images[oldest]) /
	       ((double)(now - r->rate_t[oldest]) / 1e9);
}

static double hop_transfer_ms(const struct group *g, int i)
{
	if (i == 0 && (!g->nranges || !g->ranges[0].node))
		return 0; /* the coordinator's own range: no network */
	if (i == 0)
		return g->hop_frames ? ms(g->hop_transfer_ns) / (double)g->hop_frames : 0;
	json_t *st = g->ranges[i - 1].status;
	uint64_t acked = counter(st, "out_acked");
	return acked ? ms(counter(st, "out_transfer_ns")) / (double)acked : 0;
}

json_t *summary_json(struct pn_coord *c)
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
	json_object_set_new(j, "inflight", json_integer(run_inflight(r)));
	json_object_set_new(j, "split", splits_json(r));
	json_object_set_new(j, "epoch", json_integer(r->epoch));
	json_t *stages = json_array(), *hops = json_array(), *groups = json_array();
	double worst = -1;
	json_t *bottleneck = json_null();
	for (int k = 0, at = 0; k < r->ngroups; k++) {
		const struct group *gr = &r->groups[k];
		json_array_append_new(groups,
				      json_pack("{s:i, s:s, s:i, s:i, s:i}", "index", k, "state",
						group_state(gr), "epoch", gr->epoch, "inflight",
						gr->inflight, "window", gr->window));
		for (int i = 0; i < gr->nranges; i++, at++) {
			const struct range *g = &gr->ranges[i];
			json_t *o = json_pack(
				"{s:i, s:s, s:i, s:i, s:f, s:f, s:f, s:o}", "index", at, "address",
				range_address(gr, i), "first", g->first, "last", g->last,
				"utilisation", g->utilisation, "compute_ms_per_batch",
				g->recent_compute_ms, "queue_ms_per_batch", g->recent_queue_ms,
				"cpu", stage_cpu_json(g->status, counter(g->status, "frames_in")));
			json_object_set_new(o, "group", json_integer(k));
			json_array_append_new(stages, o);
			if (g->recent_compute_ms > worst) {
				worst = g->recent_compute_ms;
				json_decref(bottleneck);
				bottleneck = json_pack("{s:s, s:i}", "kind", "stage", "index", at);
			}
		}
		for (int i = 0; gr->nranges && i <= gr->nranges; i++) {
			int cut = i < gr->nranges ? gr->ranges[i].first : pn_model_blocks(c->m);
			/* Hops are not named the bottleneck: the sender's transfer
			 * time includes the receiver's wait for its own compute step. */
			json_t *o =
				json_pack("{s:s, s:s, s:I, s:f}", "from", range_address(gr, i - 1),
					  "to", range_address(gr, i), "bytes_per_batch",
					  (json_int_t)cut_bytes(c, cut, (size_t)r->batch, r->dtype),
					  "transfer_ms_per_batch", hop_transfer_ms(gr, i));
			json_object_set_new(o, "group", json_integer(k));
			json_array_append_new(hops, o);
		}
	}
	json_object_set_new(j, "groups", groups);
	json_object_set_new(j, "stages", stages);
	json_object_set_new(j, "hops", hops);
	json_object_set_new(j, "coordinator", coord_cpu_json(r, wall));
	json_object_set_new(j, "bottleneck", worst > 0 ? bottleneck : json_null());
	if (worst <= 0)
		json_decref(bottleneck);
	/* The current plans' figures on the profiles now (not the epochs'). */
	struct pn_split p;
	double total = 0;
	int have = 1;
	for (int k = 0; k < r->ngroups && have; k++)
		if (!r->groups[k].dropped) {
			have = predicted(c, r, &r->groups[k], &p) == 0;
			total += have ? p.img_s : 0;
		}
	json_object_set_new(j, "predicted_img_s", have ? json_real(total) : json_null());
	return j;
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

/* Group gr's ranges appended to arr; *bottleneck the index in arr of the
 * slowest per batch so far (*worst its time). */
static void group_ranges_json(const struct run *r, const struct group *gr, double wall_s,
			      json_t *arr, double *worst, int *bottleneck)
{
	const struct pn_model *m = r->c->m;
	uint64_t macs = 0, params = 0;
	for (int b = 0; b < pn_model_blocks(m); b++) {
		macs += pn_model_block_macs(m, b);
		params += pn_model_block_params(m, b);
	}
	for (int i = 0; i < gr->nranges; i++) {
		const struct range *g = &gr->ranges[i];
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
		json_object_set_new(s, "group", json_integer(gr->index));
		json_array_append_new(arr, s);
		if (per_batch > *worst) {
			*worst = per_batch;
			*bottleneck = (int)json_array_size(arr) - 1;
		}
	}
}

static json_t *ranges_json(const struct run *r, double wall_s, int *bottleneck)
{
	json_t *arr = json_array();
	double worst = -1;
	*bottleneck = -1;
	for (int k = 0; k < r->ngroups; k++)
		group_ranges_json(r, &r->groups[k], wall_s, arr, &worst, bottleneck);
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

json_t *run_json(const struct run *r)
{
	uint64_t t0 = pn_now_ns();
	uint64_t end = r->t_end ? r->t_end : pn_now_ns();
	double wall = r->t_start ? (double)(end - r->t_start) / 1e9 : 0;
	double span = r->t_last_done > r->t_first_done
			      ? (double)(r->t_last_done - r->t_first_done) / 1e9
			      : 0;
	double done_wall = r->t_last_done ? (double)(r->t_last_done - r->t_start) / 1e9 : 0;
	json_t *split = json_array();
	int window = 0;
	for (int k = 0; k < r->ngroups; k++) {
		const struct group *g = &r->groups[k];
		json_t *cuts = g->dropped ? json_null() : json_array();
		for (int i = 1; i < g->nranges; i++)
			json_array_append_new(cuts, json_integer(g->ranges[i].first));
		window += g->dropped ? 0 : g->window;
		if (r->ngroups == 1) {
			json_decref(split);
			split = cuts;
		} else {
			json_array_append_new(split, cuts);
		}
	}
	int bottleneck;
	json_t *ranges = ranges_json(r, wall, &bottleneck);
	json_t *j = json_pack(
		"{s:i, s:s, s:s, s:I, s:I, s:I, s:i, s:s, s:o, s:i, s:s, s:I, s:I, s:I, s:I, s:I}",
		"id", r->id, "state", state_names[r->state], "dataset", r->dataset, "offset",
		(json_int_t)r->offset, "stride", (json_int_t)r->stride, "samples",
		(json_int_t)r->samples, "batch_size", r->batch, "mode",
		r->pipelined ? "pipelined" : "sequential", "split", split, "max_inflight", window,
		"wire", pn_dtype_name(r->dtype), "images_done", (json_int_t)r->images_done,
		"batches_done", (json_int_t)r->batches_done, "batches", (json_int_t)r->nbatches,
		"correct", (json_int_t)r->correct, "duplicates", (json_int_t)r->duplicates);
	json_object_set_new(j, "accuracy", accuracy_json(r));
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
	uint64_t frames = 0, bytes = 0, xfer = 0;
	json_t *to = r->ngroups == 1 ? json_string(range_address(&r->groups[0], 0)) : json_array();
	for (int k = 0; k < r->ngroups; k++) {
		const struct group *g = &r->groups[k];
		frames += g->hop_frames;
		bytes += g->hop_bytes;
		xfer += g->nranges && g->ranges[0].node ? g->hop_transfer_ns : 0;
		if (r->ngroups > 1)
			json_array_append_new(to, json_string(range_address(g, 0)));
	}
	json_object_set_new(j, "input_hop",
			    json_pack("{s:o, s:I, s:I, s:f}", "to", to, "frames",
				      (json_int_t)frames, "bytes", (json_int_t)bytes,
				      "transfer_ms_per_frame",
				      frames ? ms(xfer) / (double)frames : 0));
	json_object_set_new(j, "error", r->error[0] ? json_string(r->error) : json_null());
	json_object_set_new(j, "epoch", json_integer(r->epoch));
	double pred_img_s, pred_latency_ms;
	int pred = run_predicted(r, &pred_img_s, &pred_latency_ms);
	json_object_set_new(j, "split_source", json_string(r->split_source));
	json_object_set_new(j, "waiting", r->reach_waiting ? json_string(r->waiting) : json_null());
	json_object_set_new(j, "split_note",
			    r->split_note[0] ? json_string(r->split_note) : json_null());
	json_object_set_new(j, "predicted_img_s", pred ? json_real(pred_img_s) : json_null());
	json_object_set_new(j, "predicted_latency_ms",
			    pred ? json_real(pred_latency_ms) : json_null());
	json_object_set_new(j, "adapt", json_boolean(r->adapt));
	json_t *groups = json_array(), *ratios = json_array(), *pending = json_array();
	for (int k = 0; k < r->ngroups; k++) {
		const struct group *g = &r->groups[k];
		json_t *gr = json_array(), *who = json_array(), *all = json_array();
		for (int i = 0; i < GROUP_EPOCH(g)->nmembers && !g->dropped; i++)
			json_array_append_new(gr, json_real(g->ratio[i]));
		json_array_append_new(ratios, gr);
		json_array_append_new(pending,
				      g->draining ? points_json(g->next_points, g->next_npoints)
						  : json_null());
		for (int i = 0; i < g->nranges; i++)
			json_array_append_new(who, json_string(range_address(g, i)));
		for (int i = g->stage0; i < g->stage0 + g->nstages; i++)
			json_array_append_new(all, json_string(r->c->nodes[i].address));
		double worst = 0;
		int slowest = -1;
		for (int i = 0; i < g->nranges; i++) {
			uint64_t f = counter(g->ranges[i].status, "frames_in");
			double per =
				f ? ms(counter(g->ranges[i].status, "compute_ns")) / (double)f : 0;
			if (per > worst) {
				worst = per;
				slowest = i;
			}
		}
		json_t *o =
			json_pack("{s:i, s:s, s:o, s:o, s:o, s:i, s:I, s:I, s:f, s:i, s:i}",
				  "index", k, "state", group_state(g), "stages", who, "all_stages",
				  all, "split", json_null(), "epoch", g->epoch, "images",
				  (json_int_t)g->images, "batches", (json_int_t)g->batches, "img_s",
				  done_wall > 0 ? (double)g->images / done_wall : 0, "inflight",
				  g->inflight, "window", g->window);
		json_object_set_new(
			o, "split",
			g->dropped ? json_null()
				   : points_json(GROUP_EPOCH(g)->points, GROUP_EPOCH(g)->npoints));
		json_object_set_new(o, "bottleneck",
				    slowest >= 0 ? json_integer(slowest) : json_null());
		json_array_append_new(groups, o);
	}
	if (r->adapt) {
		json_object_set_new(j, "adapt_ratio",
				    r->ngroups == 1 ? json_incref(json_array_get(ratios, 0))
						    : json_incref(ratios));
		json_object_set_new(j, "adapt_resplits", json_integer(r->adapts));
	}
	json_decref(ratios);
	json_object_set_new(j, "resplit_pending",
			    r->ngroups == 1 ? json_incref(json_array_get(pending, 0))
					    : json_incref(pending));
	json_decref(pending);
	json_object_set_new(j, "groups", groups);
	json_object_set_new(j, "recovery",
			    json_pack("{s:i, s:i, s:I, s:I, s:I}", "failovers", r->failovers,
				      "readmits", r->readmits, "resent_batches",
				      (json_int_t)r->resends, "stale_frames", (json_int_t)r->stale,
				      "batches_to_resend", (json_int_t)r->nlost));
	json_t *epochs = json_array();
	/* The kept epochs in order: a slot holds epoch `number` when it is in
	 * that number's place (an unused slot's 0 is not, but slot 0's). */
	for (int last = -1;;) {
		int e = -1;
		for (int s = 0; s < MAX_EPOCHS; s++) {
			int n = r->epochs[s].number;
			if (n % MAX_EPOCHS == s && n <= r->epoch && n > last && (e < 0 || n < e))
				e = n;
		}
		if (e < 0)
			break;
		last = e;
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
		json_object_set_new(o, "group", json_integer(ep->group));
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

json_t *model_json(const struct pn_coord *c)
{
	json_t *classes = json_array();
	for (int i = 0; i < pn_model_num_classes(c->m); i++)
		json_array_append_new(classes, json_string(pn_model_classes(c->m)[i]));
	return json_pack("{s:s, s:s, s:i, s:i, s:o, s:s}", "path", c->model_path, "sha256", c->sha,
			 "input_size", pn_model_input_size(c->m), "blocks", pn_model_blocks(c->m),
			 "classes", classes, "dtype", pn_model_dtype(c->m));
}

/* The block range node i computes now: the running run's, else the
 * default split's. */
int node_range(struct pn_coord *c, int i, int *first, int *last)
{
	struct run *r = c->active;
	if (r && r->state != RUN_QUEUED) {
		for (int g = 0; g < r->ngroups; g++)
			for (int k = 0; k < r->groups[g].nranges; k++)
				if (r->groups[g].ranges[k].node == &c->nodes[i]) {
					*first = r->groups[g].ranges[k].first;
					*last = r->groups[g].ranges[k].last;
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

json_t *int_or_null(int ok, int v)
{
	return ok ? json_integer(v) : json_null();
}

json_t *split_json(const struct pn_split *p)
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
