/* The dispatch window: building first-hop frames, sending batches,
 * logits coming back, deadlines. */
#include "coord_internal.h"

/* A batch with no logits after batch_deadline_s (at least; more when its
 * plan predicts a long latency) is sent again, at most DEADLINE_RESENDS
 * times. */
#define DEADLINE_RESENDS 3

static void hop_cb(const struct pn_reply *rep, void *arg)
{
	struct group *g = arg;
	struct run *r = g->r;
	if (rep->status == 202) {
		g->hop_frames++;
		g->hop_acked_bytes += rep->sent;
		g->hop_transfer_ns += rep->transfer_ns;
		pn_task_schedule(r->c->dispatcher);
		check_drain(r, g);
		return;
	}
	if (rep->status == 0 && g->ranges[0].node) {
		/* Unreachable for the whole retry budget: down, re-plan. */
		node_down(g->ranges[0].node, rep->error);
		return;
	}
	if (rep->status == 401 && g->ranges[0].node) {
		/* Not congestion: every frame would be refused the same way. */
		node_refuse_auth(g->ranges[0].node,
				 "token mismatch: the stage answered 401 to a frame from the "
				 "coordinator");
		return;
	}
	if (rep->status == 409) {
		return; /* stale (another plan epoch): its deadline sends it again */
	}
	end_run(r, RUN_FAILED, "stage %s did not take a batch: %s%.*s",
		pn_peer_address(g->first_hop), rep->status ? "" : rep->error,
		rep->status ? (int)(rep->len > 300 ? 300 : rep->len) : 0,
		rep->status ? (const char *)rep->body : "");
}

/* Reading images: a decoded JPEG of a folder dataset can take
 * milliseconds, so a frame is filled over several loop turns. */
#define BUILD_TURN_NS 10000000u

/* Fills batch `b`'s frame of source images (the first stage preprocesses
 * them) for at most BUILD_TURN_NS: 1 when more is left for the next turn,
 * 0 with the frame for plan `epoch` in *out (taken), -1 after failing the
 * run. */
static int build_frame(struct run *r, size_t b, int epoch, uint8_t **out, size_t *len)
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
		.epoch = (uint8_t)epoch,
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

/* The group the next batch goes to: a running one with room in its
 * window and at its first hop, the one with the most room (by demand: a
 * slower group has fewer batches back, so it takes fewer); NULL when none
 * has room (the local stage's steps or hop_cb bring us back). */
static struct group *pick_group(struct run *r)
{
	struct group *best = NULL;
	for (int k = 0; k < r->ngroups; k++) {
		struct group *g = &r->groups[k];
		if (g->dropped || g->configuring || g->draining || g->inflight >= g->window)
			continue;
		if (g->ranges[0].node ? !g->first_hop || pn_peer_pending(g->first_hop) > 1
				      : !pn_stage_has_room(r->c->local))
			continue;
		if (!best || g->window - g->inflight > best->window - best->inflight)
			best = g;
	}
	return best;
}

int run_inflight(const struct run *r)
{
	int n = 0;
	for (int k = 0; k < r->ngroups; k++)
		n += r->groups[k].inflight;
	return n;
}

/* At most one batch per loop turn, its images read over as many turns as
 * they need, so reading the dataset never holds the loop long. */
void dispatch_cb(void *arg)
{
	struct pn_coord *c = arg;
	struct run *r = c->active;
	struct group *g = r && r->state == RUN_RUNNING ? pick_group(r) : NULL;
	if (!g)
		return;
	size_t b = r->building ? r->build_b : next_to_send(r), len;
	if (b >= r->nbatches)
		return;
	int local = g->ranges[0].node == NULL;
	uint8_t *buf;
	int built = build_frame(r, b, g->epoch, &buf, &len);
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
	r->bepoch[b] = (uint8_t)g->epoch;
	r->bgroup[b] = (uint8_t)g->index;
	r->t_sent[b] = pn_now_ns();
	g->inflight++;
	g->hop_bytes += len;
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
		g->hop_frames++;
		g->hop_acked_bytes += len;
	} else if (pn_peer_send(g->first_hop, PN_POST, "/v1/frames", "application/octet-stream",
				buf, len, (int64_t)c->o.retry_s * 1000, hop_cb, g) != 0) {
		end_run(r, RUN_FAILED, "cannot send batch %zu", b);
		return;
	}
	pn_task_schedule(c->dispatcher);
}

/* Group g's stages took its plan: it takes batches (the run's first
 * group to begin starts the run). */
void begin(struct run *r, struct group *g)
{
	struct pn_coord *c = r->c;
	char err[256];
	pn_peer_free(g->first_hop);
	g->first_hop = NULL;
	if (g->ranges[0].node) {
		g->first_hop = pn_peer_new(c->loop, g->ranges[0].node->address, c->o.token, err,
					   sizeof(err));
		if (!g->first_hop) {
			end_run(r, RUN_FAILED, "%s", err);
			return;
		}
	}
	g->configuring = 0;
	r->state = RUN_RUNNING;
	c->gen++;
	r->t_progress = pn_now_ns();
	GROUP_EPOCH(g)->t_start = r->t_progress;
	if (!r->t_start) {
		r->t_start = r->t_progress;
		r->cpu_start = pn_cpu_ns();
		memcpy(r->acct_start, c->acct, sizeof(c->acct));
		pn_info("run %d: %zu images in %zu batches, %s, %d group%s, window %d, wire %s",
			r->id, r->samples, r->nbatches, r->pipelined ? "pipelined" : "sequential",
			r->ngroups, r->ngroups == 1 ? "" : "s", g->window, pn_dtype_name(r->dtype));
		pn_events_emit(c->events, "run", run_json(r));
	} else {
		pn_info("run %d: epoch %d running", r->id, g->epoch);
	}
	pn_task_schedule(c->dispatcher);
}

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

/* pipenet_hop_bytes_total: the frames of a finished batch on every hop. */
static void count_hops(struct run *r, const struct group *g, size_t n)
{
	struct pn_coord *c = r->c;
	for (int i = 0; i <= g->nranges; i++) {
		const char *from = range_address(g, i - 1), *to = range_address(g, i);
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
		int cut = i < g->nranges ? g->ranges[i].first : pn_model_blocks(c->m);
		c->hops[k].bytes += cut_bytes(c, cut, n, r->dtype);
	}
}

static void logits_frame(struct pn_req *q, struct pn_coord *c, uint8_t *buf, size_t len)
{
	struct run *r = c->active;
	int classes = pn_model_num_classes(c->m);
	struct pn_frame_header h;
	struct pn_frame_error e;
	/* While a re-split reconfigures the stages, a late duplicate may come. */
	if (!r || (r->state != RUN_RUNNING && r->state != RUN_FINISHING &&
		   !(r->state == RUN_CONFIGURING && r->t_start))) {
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
	struct group *g = &r->groups[r->bgroup[h.seq]];
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
		g->inflight--;
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
	g->images += h.n;
	g->batches++;
	struct epoch *ep = GROUP_EPOCH(g);
	ep->images += h.n;
	ep->batches++;
	ep->t_last = now;
	c->images_total += h.n;
	c->batches_total++;
	pn_hist_observe(&c->latency, (double)(now - r->t_dispatch[h.seq]) / 1e9, 1);
	double lat_ms = ms(now - r->t_dispatch[h.seq]);
	r->latency_avg_ms = r->latency_avg_ms > 0 ? 0.9 * r->latency_avg_ms + 0.1 * lat_ms : lat_ms;
	count_hops(r, g, h.n);
	pn_reply_json(q, 202, json_pack("{s:b}", "duplicate", 0));
	history_batch(r, ms(r->t_done[h.seq] - r->t_dispatch[h.seq]));
	pn_events_emit(c->events, "batch", batch_json(r, h.seq, h.n));
	if (r->batches_done == r->nbatches) {
		finish(r);
	} else {
		pn_task_schedule(c->dispatcher);
		check_drain(r, g);
	}
}

void frames_route(struct pn_req *q, void *arg)
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

/* How long a batch of group g may go without logits before it is sent
 * again: a few times what its plan predicts for it and the window ahead of
 * it, and a few times the latency batches have had (which includes that
 * wait). */
static uint64_t deadline_ns(const struct run *r, const struct group *g)
{
	const struct epoch *ep = GROUP_EPOCH(g);
	double limit = 3.0 * ep->predicted_latency_ms * (g->window + 1);
	double seen = 4.0 * r->latency_avg_ms, least = r->c->o.batch_deadline_s * 1e3;
	limit = limit > seen ? limit : seen;
	return (uint64_t)((limit > least ? limit : least) * 1e6);
}

/* Batches past their deadline: lost somewhere though every stage answers
 * its health checks (a dropped frame, a stage that refused it). They are
 * sent again (to whichever group has room); whichever copy comes first
 * counts. */
void deadline_check(struct run *r, uint64_t now)
{
	/* Not before the first logits: until then the time a batch takes
	 * is not known (a slow machine, stages busy measuring their block
	 * times), and a lost stage is found by its health checks. */
	if (!r->batches_done)
		return;
	uint64_t limit[MAX_GROUPS];
	for (int k = 0; k < r->ngroups; k++)
		limit[k] = deadline_ns(r, &r->groups[k]);
	for (size_t b = r->low; b < r->next_batch; b++) {
		struct group *g = &r->groups[r->bgroup[b]];
		if (r->bstate[b] != BATCH_INFLIGHT || now - r->t_sent[b] < limit[g->index])
			continue;
		if (r->bresends[b] >= DEADLINE_RESENDS) {
			char errors[600] = "";
			for (int i = 0; i < g->nranges; i++) {
				const char *le = json_string_value(
					json_object_get(g->ranges[i].status, "last_error"));
				if (le)
					snprintf(errors + strlen(errors),
						 sizeof(errors) - strlen(errors), "; %s: %s",
						 range_address(g, i), le);
			}
			end_run(r, RUN_FAILED,
				"batch %zu had no logits after %d sends, %.1f s each%s", b,
				DEADLINE_RESENDS + 1, (double)limit[g->index] / 1e9, errors);
			return;
		}
		r->bresends[b]++;
		r->resends++;
		r->c->resends_total++;
		r->bstate[b] = BATCH_LOST;
		r->nlost++;
		g->inflight--;
		pn_warn("run %d: batch %zu had no logits for %.1f s: sending it again", r->id, b,
			(double)(now - r->t_sent[b]) / 1e9);
	}
	if (r->nlost) {
		pn_task_schedule(r->c->dispatcher);
		for (int k = 0; k < r->ngroups && r->state == RUN_RUNNING; k++)
			check_drain(r, &r->groups[k]);
	}
}

/* Group g's plan is gone: every batch it has in flight is to be sent
 * again, and its copies still travelling are stale from now on. */
void lose_inflight(struct run *r, struct group *g)
{
	for (size_t b = r->low; b < r->next_batch; b++)
		if (r->bgroup[b] == g->index &&
		    (r->bstate[b] == BATCH_INFLIGHT || r->bstate[b] == BATCH_LOST)) {
			r->nlost += r->bstate[b] == BATCH_INFLIGHT;
			r->bstate[b] = BATCH_LOST;
			r->bepoch[b] = (uint8_t)(r->epoch + 1); /* no plan has it yet */
		}
	g->inflight = 0;
}
