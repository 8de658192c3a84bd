/* Plan epochs: re-splits, draining, failover and re-admission, split
 * "auto" and adapt. */
#include "coord_internal.h"

#define AUTO_POLL_MS 200 /* split "auto": how often the block times are looked for */

#define ADAPT_GAIN 0.10 /* re-split when another plan is predicted this much faster */
#define ADAPT_HOLD 3 /* ... at this many 1 s ticks in a row */
#define ADAPT_OFF 0.25 /* a stage counts as changed when 25% off its profile */
/* ... and, once a re-split has planned for its ratio, only when it moves
 * 60% off that ratio: one slowdown gives one re-split, not a series of
 * them chasing noise (seen under load: [4] -> [15] -> [6]). */
#define ADAPT_SETTLED 0.60

double epoch_img_s(const struct epoch *ep)
{
	return ep->t_last > ep->t_start
		       ? (double)ep->images / ((double)(ep->t_last - ep->t_start) / 1e9)
		       : 0;
}

int same_members(const struct epoch *ep, const int *members, int nm)
{
	return nm == ep->nmembers && memcmp(members, ep->members, (size_t)nm * sizeof(int)) == 0;
}

/* Block ranges of a split over `members` (node indices in pipeline
 * order): k points make k + 1 ranges; with one more range than members
 * the coordinator computes the first (with no members, all of them). */
void apply_points(struct run *r, const int *points, int npoints, const int *members, int nm)
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
	if (r->pipelined && r->window_auto)
		r->window = r->nranges + 1;
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
	r->draining = 0;
	if (had_local && r->ranges[0].node)
		pn_stage_reset(c->local);
	pn_info("run %d: epoch %d from batch %zu: %s", r->id, r->epoch, r->next_batch, reason);
	pn_events_emit(c->events, "resplit", ev);
	send_configs(r);
}

/* Every batch of the old plan is in: the requested split. */
static void resplit(struct run *r)
{
	char reason[sizeof(r->next_reason)];
	snprintf(reason, sizeof(reason), "%s",
		 r->next_reason[0] ? r->next_reason : "PUT /api/v1/split");
	new_epoch(r, r->next_points, r->next_npoints, r->next_members, r->next_nmembers, reason);
}

void check_drain(struct run *r)
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
const char *plan_over(struct run *r, const int *members, int nm, int *points, int *npoints)
{
	static const char *const how[] = {"the coordinator alone", "the planner", "MACs"};
	return how[split_over(r->c, members, nm, r->batch, r->dtype, points, npoints)];
}

/* A node of the run's plan is down or refused: the batches in flight are
 * lost (their frames may still arrive, as stale), and the run goes on at
 * once under a plan over the nodes still up, down to the coordinator
 * alone. */
void failover(struct run *r, const struct node *n)
{
	int members[MAX_STAGES], points[MAX_RANGES], npoints;
	int nm = live_members(r->c, members);
	char reason[1100];
	if (!nm && refused_only(r))
		return;
	lose_inflight(r);
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

/* Nodes up (with our model) for READMIT_MS that the run's plan does not
 * use: re-split over every node up, once the batches in flight are in. */
void readmit_check(struct run *r, uint64_t now)
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

/* A run whose split is "auto", configuring: the planner's plan once every
 * stage's block times (and the links) are in, MACs after auto_wait_s. */
void auto_poll(struct run *r)
{
	struct pn_coord *c = r->c;
	int members[MAX_STAGES], nm = live_members(c, members);
	int profiles = want_profiles(c, r->batch);
	int links = profiles && want_links(c, r->batch);
	int late = pn_now_ns() >= r->auto_deadline || nm < 1;
	int points[MAX_RANGES], npoints;
	if (nm < 1 && refused_only(r))
		return;
	enum split_by by = SPLIT_MACS;
	if (late || links)
		by = split_over(c, members, nm, profiles ? r->batch : 0, r->dtype, points,
				&npoints);
	if (by == SPLIT_MACS && !late) { /* the planner may still get what it needs */
		pn_timer_arm(c->auto_timer, AUTO_POLL_MS);
		return;
	}
	if (by == SPLIT_PLANNER) {
		r->split_source = "planner";
		if (!links)
			snprintf(r->split_note, sizeof(r->split_note),
				 "links not measured after %d s: planned as free", r->auto_wait_s);
	} else if (by == SPLIT_ALONE) {
		r->split_source = "given";
	} else {
		r->split_source = "macs";
		snprintf(r->split_note, sizeof(r->split_note),
			 "no block times from every stage for batch %d after %d s: split by MACs",
			 r->batch, r->auto_wait_s);
		pn_warn("run %d: %s", r->id, r->split_note);
	}
	r->auto_waiting = 0;
	apply_points(r, points, npoints, members, nm);
	epoch_predict(r);
	pn_info("run %d: split auto by %s", r->id, r->split_source);
	send_configs(r);
}

void auto_timer_cb(void *arg)
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
void reach_poll(struct run *r)
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
void request_split(struct run *r, const int *points, int npoints, const int *members, int nm,
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
void adapt_check(struct run *r)
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
