/* The REST API: routes and their handlers. */
#include "coord_internal.h"

/* With no token, GET /api/v1/plan has at most this many batch sizes
 * measured per PLAN_MEASURES_S (a run's are not counted). */
#define PLAN_MEASURES 8
#define PLAN_MEASURES_S 3600

/* GET /api/v1/runs, /api/v1/runs/{id} and /metrics are built at most
 * this often, or sooner when a run changes state: 200 clients polling
 * them must not take the CPU the pipeline needs. */
#define API_CACHE_MS 100

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

int cache_fresh(const struct pn_coord *c, const struct api_cache *k)
{
	return k->body && k->gen == c->gen &&
	       pn_now_ns() - k->t < (uint64_t)API_CACHE_MS * 1000000u;
}

/* Keeps `text` (malloc'd, or NULL when out of memory) as the cached body. */
void cache_set(const struct pn_coord *c, struct api_cache *k, char *text, size_t len)
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

/* A run's figures over time, for its charts while it runs and after. */
static void run_history(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = find_run(c, pn_req_arg(q, 0));
	if (!r)
		pn_reply_error(q, 404, "no such run", "run %s does not exist", pn_req_arg(q, 0));
	else
		pn_reply_json(q, 200, history_json(r));
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
	if (!pn_wire_dtype(dtype)) {
		pn_reply_error(q, 400, "bad query", PN_WIRE_CHOICES);
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

/* PUT /api/v1/split: the running run's split (a group's, naming it, when
 * the run has several), else the next run's default. */
static void split_put(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	static const char *const keys[] = {"split", "group", NULL};
	char err[400];
	int points[MAX_RANGES], npoints, members[MAX_STAGES], nm;
	json_t *j = pn_req_json(q);
	if (!j)
		return;
	json_t *split = json_object_get(j, "split"), *group = json_object_get(j, "group");
	int bad = pn_json_known(j, keys, err, sizeof(err));
	if (!bad && !split) {
		snprintf(err, sizeof(err), "split is required");
		bad = 1;
	}
	struct run *r = c->active;
	int running = r && r->state != RUN_QUEUED;
	json_int_t gi = group ? json_integer_value(group) : 0;
	if (!bad && group && (!json_is_integer(group) || gi < 0)) {
		snprintf(err, sizeof(err), "group must be a group number: 0, 1, ...");
		bad = 1;
	} else if (!bad && group && (!running || gi >= r->ngroups)) {
		snprintf(err, sizeof(err),
			 "group %" JSON_INTEGER_FORMAT " is not a group of the running run (%s)",
			 gi,
			 running ? (r->ngroups == 1 ? "it has group 0 only" : "see its \"groups\"")
				 : "no run is running");
		bad = 1;
	} else if (!bad && !group && running && r->ngroups > 1) {
		snprintf(err, sizeof(err),
			 "run %d has %d groups: name the group to re-split, e.g. {\"group\": 0, "
			 "\"split\": [8]}",
			 r->id, r->ngroups);
		bad = 1;
	}
	struct group *g = running ? &r->groups[gi] : NULL;
	const char *source;
	if (!bad && g && g->dropped) {
		json_decref(j);
		pn_reply_error(q, 409, "group dropped",
			       "group %d of run %d has no stage up: it is planned again when one "
			       "comes back",
			       g->index, r->id);
		return;
	}
	nm = g ? group_members(c, g, members) : live_members(c, members);
	if (!bad)
		bad = parse_points(c, split, "split", running ? r->batch : 8,
				   running ? r->dtype : PN_DTYPE_F32, members, nm,
				   g ? g->nstages : c->nnodes, !running || r->ngroups == 1, points,
				   &npoints, &source, err, sizeof(err));
	json_decref(j);
	if (bad) {
		pn_reply_error(q, 400, "bad split", "%s", err);
		return;
	}
	if (r && (r->state == RUN_CONFIGURING || (g && g->configuring))) {
		pn_reply_header(q, "Retry-After", "1");
		pn_reply_error(q, 409, "busy", "run %d is configuring its stages; try again",
			       r->id);
		return;
	}
	if (!running || r->ngroups == 1) { /* a group run's split is its own */
		memcpy(c->default_points, points, sizeof(points));
		c->default_npoints = npoints;
		c->default_set = 1;
	}
	if (!r || r->state != RUN_RUNNING) {
		pn_info("split for the next run set");
		pn_reply_json(q, 200,
			      json_pack("{s:o, s:i, s:n}", "split", points_json(points, npoints),
					"epoch", 0, "run"));
		return;
	}
	const struct epoch *ep = GROUP_EPOCH(g);
	if (!g->draining && ep->npoints == npoints &&
	    memcmp(ep->points, points, (size_t)npoints * sizeof(int)) == 0) {
		pn_reply_json(q, 200,
			      json_pack("{s:o, s:i, s:i, s:i}", "split",
					points_json(points, npoints), "epoch", g->epoch, "run",
					r->id, "group", g->index));
		return;
	}
	pn_reply_json(q, 200,
		      json_pack("{s:o, s:i, s:i, s:s, s:i}", "split", points_json(points, npoints),
				"epoch", r->epoch + 1, "run", r->id, "source", source, "group",
				g->index));
	g->next_img_s = g->next_latency_ms = 0;
	request_split(r, g, points, npoints, members, nm, NULL);
}

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
	{PN_POST, "/v1/echo", pn_probe_echo_route, PN_ROUTE_AUTH | PN_ROUTE_PROBE_BODY},
	{PN_GET, "/api/v1/cluster", cluster_get, 0},
	{PN_POST, "/api/v1/runs", runs_post, 1},
	{PN_GET, "/api/v1/runs", runs_list, 0},
	{PN_GET, "/api/v1/datasets", datasets_get, 0},
	{PN_GET, "/api/v1/runs/*", run_get, 0},
	{PN_DELETE, "/api/v1/runs/*", run_delete, 1},
	{PN_GET, "/api/v1/runs/*/logits", run_logits, 0},
	{PN_GET, "/api/v1/runs/*/history", run_history, 0},
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
