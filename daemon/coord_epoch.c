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
/* How an adapt re-split's reason begins; resplit counts those. */
#define ADAPT_REASON "adapt: "

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

/* Block ranges of group g's split over `members` (node indices in
 * pipeline order): k points make k + 1 ranges; with one more range than
 * members the coordinator computes the first (with no members, all of
 * them). The split is recorded in the group's current epoch. */
void apply_points(struct run *r, struct group *g, const int *points, int npoints,
		  const int *members, int nm)
{
	struct pn_coord *c = r->c;
	int blocks = pn_model_blocks(c->m);
	for (int i = 0; i < g->nranges; i++)
		json_decref(g->ranges[i].status);
	memset(g->ranges, 0, sizeof(g->ranges));
	g->nranges = npoints + 1;
	int local = g->nranges - nm; /* 1: the coordinator takes the first range */
	for (int i = 0; i < g->nranges; i++) {
		g->ranges[i].first = i ? points[i - 1] : 0;
		g->ranges[i].last = i < npoints ? points[i] : blocks;
		g->ranges[i].node = i < local ? NULL : &c->nodes[members[i - local]];
	}
	struct epoch *ep = GROUP_EPOCH(g);
	ep->group = g->index;
	memmove(ep->points, points, (size_t)npoints * sizeof(int));
	ep->npoints = npoints;
	memmove(ep->members, members, (size_t)nm * sizeof(int));
	ep->nmembers = nm;
	if (r->pipelined && r->window_auto)
		g->window = g->nranges + 1;
}

static int live_groups(const struct run *r, const struct group *except)
{
	int n = 0;
	for (int i = 0; i < r->ngroups; i++)
		n += &r->groups[i] != except && !r->groups[i].dropped;
	return n;
}

/* The run's next epoch number for group g: one whose slot in the ring
 * holds no other group's current plan, which a group that never
 * re-plans would otherwise lose after MAX_EPOCHS re-plans of the others
 * (MAX_GROUPS < MAX_EPOCHS, so one is found). */
static int next_epoch(const struct run *r, const struct group *g)
{
	for (int e = r->epoch + 1;; e++) {
		int held = 0;
		for (int k = 0; k < r->ngroups; k++)
			held |= &r->groups[k] != g &&
				r->groups[k].epoch % MAX_EPOCHS == e % MAX_EPOCHS;
		if (!held)
			return e;
	}
}

/* Group g goes on under a new plan (the run's next epoch): `points` over
 * `members`, its stages reconfigured; frames of its older epochs are
 * stale wherever they arrive. The other groups keep running. */
static void new_epoch(struct run *r, struct group *g, const int *points, int npoints,
		      const int *members, int nm, const char *reason)
{
	struct pn_coord *c = r->c;
	struct epoch *old = GROUP_EPOCH(g);
	json_t *ev =
		json_pack("{s:i, s:f, s:o, s:o, s:i, s:f, s:n, s:s, s:i}", "run", r->id, "time",
			  wall_time(), "from", points_json(old->points, old->npoints), "to",
			  points_json(points, npoints), "epoch", r->epoch + 1, "img_s_before",
			  epoch_img_s(old), "img_s_after", "reason", reason, "group", g->index);
	int had_local = g->nranges && g->ranges[0].node == NULL;
	int same = !g->dropped && same_members(old, members, nm);
	int pts[MAX_RANGES], mem[MAX_STAGES]; /* the arguments may alias the group's */
	memcpy(pts, points, (size_t)npoints * sizeof(int));
	memcpy(mem, members, (size_t)nm * sizeof(int));
	pn_peer_free(g->first_hop); /* drops frames of the old plan not yet sent */
	g->first_hop = NULL;
	g->epoch = r->epoch = next_epoch(r, g);
	g->dropped = 0;
	memset(GROUP_EPOCH(g), 0, sizeof(r->epochs[0]));
	GROUP_EPOCH(g)->number = g->epoch;
	snprintf(GROUP_EPOCH(g)->reason, sizeof(r->epochs[0].reason), "%s", reason);
	apply_points(r, g, pts, npoints, mem, nm);
	if (!same) /* adapt's ratios belonged to the old stages */
		for (int i = 0; i < MAX_STAGES; i++)
			g->ratio[i] = g->applied[i] = 1.0;
	if (g->next_img_s > 0) {
		GROUP_EPOCH(g)->predicted_img_s = g->next_img_s;
		GROUP_EPOCH(g)->predicted_latency_ms = g->next_latency_ms;
	} else {
		epoch_predict(r, g);
	}
	json_object_set_new(ev, "predicted_img_s",
			    GROUP_EPOCH(g)->predicted_img_s > 0
				    ? json_real(GROUP_EPOCH(g)->predicted_img_s)
				    : json_null());
	g->next_reason[0] = '\0';
	g->next_img_s = g->next_latency_ms = 0;
	g->adapt_last = pn_now_ns();
	g->adapt_hold = 0;
	g->draining = 0;
	if (had_local && g->ranges[0].node)
		pn_stage_reset(c->local);
	if (r->ngroups > 1)
		pn_info("run %d: group %d: epoch %d from batch %zu: %s", r->id, g->index, r->epoch,
			r->next_batch, reason);
	else
		pn_info("run %d: epoch %d from batch %zu: %s", r->id, r->epoch, r->next_batch,
			reason);
	pn_events_emit(c->events, "resplit", ev);
	send_configs(r, g);
}

/* Every member of group g is lost while another group runs: it has no
 * plan until one comes back (readmit_check), and its batches go to the
 * other groups. */
static void drop_group(struct run *r, struct group *g, const char *reason)
{
	int had_local = g->nranges && g->ranges[0].node == NULL;
	pn_peer_free(g->first_hop);
	g->first_hop = NULL;
	for (int i = 0; i < g->nranges; i++)
		json_decref(g->ranges[i].status);
	memset(g->ranges, 0, sizeof(g->ranges));
	g->nranges = 0;
	g->dropped = 1;
	g->draining = g->configuring = g->pending = 0;
	g->next_reason[0] = '\0';
	if (had_local)
		pn_stage_reset(r->c->local);
	r->c->gen++;
	pn_warn("run %d: group %d dropped: %s", r->id, g->index, reason);
	pn_events_emit(r->c->events, "resplit",
		       json_pack("{s:i, s:f, s:o, s:n, s:i, s:s, s:i, s:b}", "run", r->id, "time",
				 wall_time(), "from",
				 points_json(GROUP_EPOCH(g)->points, GROUP_EPOCH(g)->npoints), "to",
				 "epoch", g->epoch, "reason", reason, "group", g->index, "dropped",
				 1));
	pn_task_schedule(r->c->dispatcher);
}

/* Every batch of group g's old plan is in: the requested split. */
static void resplit(struct run *r, struct group *g)
{
	char reason[sizeof(g->next_reason)];
	snprintf(reason, sizeof(reason), "%s",
		 g->next_reason[0] ? g->next_reason : "PUT /api/v1/split");
	/* Counted here, not when asked for: a run may end while its group
	 * drains, and then that re-split never happened. */
	if (strncmp(reason, ADAPT_REASON, strlen(ADAPT_REASON)) == 0)
		r->adapts++;
	new_epoch(r, g, g->next_points, g->next_npoints, g->next_members, g->next_nmembers, reason);
}

void check_drain(struct run *r, struct group *g)
{
	if (!g->draining || r->state != RUN_RUNNING)
		return;
	if (r->next_batch >= r->nbatches && !r->nlost) {
		g->draining = 0; /* every batch is out: nothing left for a new plan */
		return;
	}
	if (g->inflight || (g->first_hop && pn_peer_pending(g->first_hop)))
		return;
	resplit(r, g);
}

/* A split over `members` for the run's batch: the planner's when their
 * block times are known, else MACs balanced over them; with no members
 * the coordinator computes every block. Returns how it was made. */
const char *plan_over(struct run *r, const int *members, int nm, int *points, int *npoints)
{
	static const char *const how[] = {"the coordinator alone", "the planner", "MACs"};
	return how[split_over(r->c, members, nm, r->batch, r->dtype, points, npoints)];
}

/* The run's first plans, over the stages usable now: a group whose given
 * split names a stage that is not is re-planned over those that are; a
 * group with none is dropped while another has some (else it is the
 * coordinator alone). */
void plan_groups(struct run *r)
{
	struct pn_coord *c = r->c;
	for (int k = 0; k < r->ngroups; k++) {
		struct group *g = &r->groups[k];
		int members[MAX_STAGES], nm = group_members(c, g, members);
		if (!nm && live_groups(r, g)) {
			int others = 0;
			for (int i = 0; i < r->ngroups; i++)
				if (&r->groups[i] != g && !r->groups[i].dropped)
					others += group_members(c, &r->groups[i], members) > 0;
			if (others) {
				drop_group(r, g, "none of its stages is up");
				continue;
			}
		}
		if (r->split_auto || same_members(GROUP_EPOCH(g), members, nm))
			continue;
		int points[MAX_RANGES], npoints;
		const char *how = plan_over(r, members, nm, points, &npoints);
		char note[200];
		if (r->ngroups > 1)
			snprintf(note, sizeof(note), "group %d: %d of its %d stages were up", k, nm,
				 g->nstages);
		else
			snprintf(note, sizeof(note), "%d of %d stages were up", nm, c->nnodes);
		snprintf(r->split_note + strlen(r->split_note),
			 sizeof(r->split_note) - strlen(r->split_note),
			 "%s%s when the run started: split by %s", r->split_note[0] ? "; " : "",
			 note, how);
		r->split_source = strcmp(how, "the planner") == 0 ? "planner" : "macs";
		apply_points(r, g, points, npoints, members, nm);
		pn_warn("run %d: %s", r->id, r->split_note);
	}
}

/* A node of a group's plan is down or refused: the group's batches in
 * flight are lost (their frames may still arrive, as stale), and the
 * group goes on at once under a plan over its members still up. A group
 * with none left is dropped while another group runs; the last one goes
 * on with the coordinator alone. */
void failover(struct run *r, const struct node *n)
{
	struct group *g = node_group(r, n);
	int members[MAX_STAGES], points[MAX_RANGES], npoints;
	if (!g || g->dropped)
		return;
	int nm = group_members(r->c, g, members);
	char reason[1100], where[40] = "";
	if (!nm && refused_only(r))
		return;
	lose_inflight(r, g);
	g->draining = 0;
	r->failovers++;
	r->c->failovers_total++;
	if (r->ngroups > 1)
		snprintf(where, sizeof(where), " in group %d", g->index);
	if (!nm && live_groups(r, g)) {
		snprintf(reason, sizeof(reason),
			 "stage %s %s: %s; no stage of the group is left: its batches go to the "
			 "other groups",
			 n->address, n->refused ? "refused" : "down", n->why);
		drop_group(r, g, reason);
		return;
	}
	const char *how = plan_over(r, members, nm, points, &npoints);
	snprintf(reason, sizeof(reason), "stage %s%s %s: %s; re-planned over %d stage%s by %s",
		 n->address, where, n->refused ? "refused" : "down", n->why, nm, nm == 1 ? "" : "s",
		 how);
	pn_warn("run %d: %s, %zu batches to send again", r->id, reason, r->nlost);
	g->next_img_s = g->next_latency_ms = 0;
	new_epoch(r, g, points, npoints, members, nm, reason);
}

/* Nodes of a group up (with our model) for READMIT_MS that its plan does
 * not use: the group re-plans over its members up, once its batches in
 * flight are in (a dropped group at once). */
void readmit_check(struct run *r, uint64_t now)
{
	struct pn_coord *c = r->c;
	for (int k = 0; k < r->ngroups && r->state == RUN_RUNNING; k++) {
		struct group *g = &r->groups[k];
		int members[MAX_STAGES], points[MAX_RANGES], npoints, settling = 0;
		if (g->draining || g->configuring)
			continue;
		const struct node *back = NULL;
		for (int i = g->stage0; i < g->stage0 + g->nstages; i++) {
			const struct node *n = &c->nodes[i];
			if (node_usable(n) && !run_uses(r, n)) {
				/* wait until every returning node has settled */
				settling |= n->up < 1 ||
					    now - n->up_since < (uint64_t)READMIT_MS * 1000000u;
				back = n;
			}
		}
		if (!back || settling)
			continue;
		int nm = group_members(c, g, members);
		const char *how = plan_over(r, members, nm, points, &npoints);
		char reason[700], where[40] = "";
		if (r->ngroups > 1)
			snprintf(where, sizeof(where), " (group %d)", k);
		snprintf(reason, sizeof(reason),
			 "stage %s%s is back: re-planned over %d stages by %s", back->address,
			 where, nm, how);
		r->readmits++;
		c->readmits_total++;
		g->next_img_s = g->next_latency_ms = 0;
		request_split(r, g, points, npoints, members, nm, reason);
	}
}

/* "groups": "auto": the planner's replication verdict over every stage
 * (all up), taken when it predicts groups faster than one pipeline; the
 * run's one group becomes that many, each over consecutive stages. */
static void replicate(struct run *r, const int *all, int nall)
{
	struct pn_coord *c = r->c;
	static struct costs k;
	static struct pn_split plans[MAX_STAGES];
	struct pn_split single;
	int sizes[MAX_STAGES];
	double total;
	r->groups_auto = 0; /* decided once */
	if (nall != c->nnodes || make_costs(c, all, nall, r->batch, r->dtype, 0, 0, &k) != 0 ||
	    pn_split_best(&k.k, &single) != 0)
		return;
	int ng = pn_split_best_groups(&k.k, sizes, plans, &total);
	snprintf(r->split_note + strlen(r->split_note),
		 sizeof(r->split_note) - strlen(r->split_note),
		 "%sgroups auto: %d group%s predicted %.1f img/s, one pipeline %.1f",
		 r->split_note[0] ? "; " : "", ng, ng == 1 ? "" : "s", total, single.img_s);
	if (ng < 2 || !(total > single.img_s * (1 + 1e-9)))
		return;
	for (int g = 0; g < r->ngroups; g++) {
		for (int i = 0; i < r->groups[g].nranges; i++)
			json_decref(r->groups[g].ranges[i].status);
		pn_peer_free(r->groups[g].first_hop);
	}
	r->ngroups = ng;
	r->epoch = ng - 1; /* group k's first plan is epoch k */
	r->groups_given = 1;
	for (int g = 0, at = 0; g < ng; at += sizes[g++]) {
		struct group *gr = &r->groups[g];
		memset(gr, 0, sizeof(*gr));
		gr->r = r;
		gr->index = g;
		gr->epoch = g;
		gr->stage0 = at;
		gr->nstages = sizes[g];
		for (int i = 0; i < MAX_STAGES; i++)
			gr->ratio[i] = gr->applied[i] = 1.0;
		memset(EPOCH(r, g), 0, sizeof(r->epochs[0]));
		EPOCH(r, g)->number = g;
	}
	pn_info("run %d: %s", r->id, r->split_note);
}

/* A run whose split is "auto", configuring: the planner's plan for each
 * group once every stage's block times (and the links) are in, MACs after
 * auto_wait_s. */
void auto_poll(struct run *r)
{
	struct pn_coord *c = r->c;
	int all[MAX_STAGES], nall = live_members(c, all);
	int profiles = want_profiles(c, r->batch);
	int links = profiles && want_links(c, r->batch);
	int late = pn_now_ns() >= r->auto_deadline || nall < 1;
	static int points[MAX_GROUPS][MAX_RANGES];
	int npoints[MAX_GROUPS], members[MAX_GROUPS][MAX_STAGES], nm[MAX_GROUPS];
	if (nall < 1 && refused_only(r))
		return;
	enum split_by by = SPLIT_MACS, worst = SPLIT_ALONE;
	if (r->groups_auto && profiles && (late || links))
		replicate(r, all, nall);
	for (int k = 0; k < r->ngroups && (late || links); k++) {
		nm[k] = group_members(c, &r->groups[k], members[k]);
		by = split_over(c, members[k], nm[k], profiles ? r->batch : 0, r->dtype, points[k],
				&npoints[k]);
		worst = by == SPLIT_MACS || worst == SPLIT_MACS ? SPLIT_MACS
			: by == SPLIT_PLANNER			? SPLIT_PLANNER
								: worst;
	}
	by = late || links ? worst : SPLIT_MACS;
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
	for (int k = 0; k < r->ngroups; k++)
		apply_points(r, &r->groups[k], points[k], npoints[k], members[k], nm[k]);
	plan_groups(r); /* drops a group with no stage up */
	pn_info("run %d: split auto by %s", r->id, r->split_source);
	for (int k = 0; k < r->ngroups && r->state == RUN_CONFIGURING; k++)
		if (!r->groups[k].dropped) {
			epoch_predict(r, &r->groups[k]);
			send_configs(r, &r->groups[k]);
		}
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

/* Asks for a live re-split of group g: its batches in flight drain,
 * then its stages are reconfigured (see resplit). */
void request_split(struct run *r, struct group *g, const int *points, int npoints,
		   const int *members, int nm, const char *reason)
{
	memcpy(g->next_points, points, (size_t)npoints * sizeof(int));
	g->next_npoints = npoints;
	memcpy(g->next_members, members, (size_t)nm * sizeof(int));
	g->next_nmembers = nm;
	g->draining = 1;
	snprintf(g->next_reason, sizeof(g->next_reason), "%s", reason ? reason : "");
	pn_info("run %d: re-split of group %d requested (%s); draining %d batches", r->id, g->index,
		reason ? reason : "PUT /api/v1/split", g->inflight);
	check_drain(r, g);
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

/* Once a second for an adapt run, per group: each stage's measured
 * compute per batch against what its profile predicts for its range gives
 * its ratio (kept at 1 unless ADAPT_OFF away, so noise does not move
 * plans); the profiles scaled by the ratios are planned again, and when
 * the best plan beats the current one by ADAPT_GAIN at ADAPT_HOLD ticks in
 * a row, and the group's last re-split (of any kind) is adapt_interval_s
 * old, the group re-splits. */
static void adapt_group(struct run *r, struct group *g)
{
	struct pn_coord *c = r->c;
	static struct costs k;
	struct pn_split cur, best;
	struct epoch *ep = GROUP_EPOCH(g);
	int nb = pn_model_blocks(c->m);
	if (g->dropped || g->configuring || g->draining || g->nranges != ep->nmembers ||
	    make_costs(c, ep->members, ep->nmembers, r->batch, r->dtype, 0, 0, &k) != 0 ||
	    pn_split_evaluate(&k.k, ep->points, &cur) != 0)
		return;
	for (int i = 0; i < g->nranges; i++) {
		const struct range *rg = &g->ranges[i];
		if (!rg->status || rg->recent_compute_ms <= 0 || cur.stage_ms[i] <= 0)
			continue;
		double q = rg->recent_compute_ms / cur.stage_ms[i];
		double base = g->applied[i], band = base == 1.0 ? ADAPT_OFF : ADAPT_SETTLED;
		g->ratio[i] = q > base * (1 + band) || q < base / (1 + band) ? q : base;
		for (int b = 0; b < nb; b++)
			k.block_ms[i * nb + b] *= g->ratio[i];
	}
	if (pn_split_evaluate(&k.k, ep->points, &cur) != 0 || pn_split_best(&k.k, &best) != 0)
		return;
	if (!(best.img_s >= cur.img_s * (1 + ADAPT_GAIN))) {
		g->adapt_hold = 0;
		return;
	}
	if (++g->adapt_hold < ADAPT_HOLD ||
	    (g->adapt_last &&
	     pn_now_ns() - g->adapt_last < (uint64_t)r->adapt_interval_s * 1000000000u))
		return;
	/* The reason names the stage whose ratio moved most since the last
	 * adapt re-split: what changed, not a ratio already planned for. */
	int worst = 0;
	for (int i = 1; i < g->nranges; i++)
		if (fabs(log(g->ratio[i] / g->applied[i])) >
		    fabs(log(g->ratio[worst] / g->applied[worst])))
			worst = i;
	char from[120], to[120];
	points_text(from, sizeof(from), ep->points, ep->npoints);
	points_text(to, sizeof(to), best.cuts + 1, best.stages - 1);
	char reason[700];
	snprintf(reason, sizeof(reason),
		 ADAPT_REASON
		 "stage %d (%s) computes at %.2fx its profile; %s predicted %.1f img/s, "
		 "%s %.1f img/s (+%.0f%%)",
		 worst, range_address(g, worst), g->ratio[worst], from, cur.img_s, to, best.img_s,
		 (best.img_s / cur.img_s - 1) * 100);
	memcpy(g->applied, g->ratio, sizeof g->applied);
	g->next_img_s = best.img_s;
	g->next_latency_ms = best.latency_ms;
	pn_events_emit(c->events, "adapt",
		       json_pack("{s:i, s:f, s:s, s:i}", "run", r->id, "time", wall_time(),
				 "reason", reason, "group", g->index));
	request_split(r, g, best.cuts + 1, best.stages - 1, ep->members, ep->nmembers, reason);
}

void adapt_check(struct run *r)
{
	for (int k = 0; k < r->ngroups && r->adapt && r->state == RUN_RUNNING; k++)
		adapt_group(r, &r->groups[k]);
}
