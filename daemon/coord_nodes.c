/* The stages as nodes: health pings, refusal, block time profiles. */
#include "coord_internal.h"

/* A stage never reached since the coordinator started is "unknown", not
 * down, for REACH_MS: it may still be starting. A run waits for such
 * stages (at most its auto_wait_s), polling every AUTO_POLL_MS, and
 * /api/v1/ready answers 503 meanwhile. */
#define REACH_MS 10000

#define PROFILE_RETRY_MS 2000 /* a block time request that got no answer */

#define PROFILE_POLL_MS 250
#define PROFILE_ITERS 7 /* passes whose median is a block's time */

int node_usable(const struct node *n)
{
	return n->up != 0 && !n->refused;
}

/* The nodes a plan may use now, in pipeline order. */
int live_members(const struct pn_coord *c, int *members)
{
	int nm = 0;
	for (int i = 0; i < c->nnodes; i++)
		if (node_usable(&c->nodes[i]))
			members[nm++] = i;
	return nm;
}

int run_uses(const struct run *r, const struct node *n)
{
	for (int k = 0; k < r->ngroups; k++)
		for (int i = 0; i < r->groups[k].nranges; i++)
			if (r->groups[k].ranges[i].node == n)
				return 1;
	return 0;
}

/* The group whose stages include n (each stage is in one group). */
struct group *node_group(struct run *r, const struct node *n)
{
	for (int k = 0; k < r->ngroups; k++)
		if (n->index >= r->groups[k].stage0 &&
		    n->index < r->groups[k].stage0 + r->groups[k].nstages)
			return &r->groups[k];
	return NULL;
}

/* The nodes of group g a plan may use now, in pipeline order. */
int group_members(const struct pn_coord *c, const struct group *g, int *members)
{
	int nm = 0;
	for (int i = g->stage0; i < g->stage0 + g->nstages && i < c->nnodes; i++)
		if (node_usable(&c->nodes[i]))
			members[nm++] = i;
	return nm;
}

const char *node_state(const struct node *n)
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

void node_down(struct node *n, const char *why)
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

void node_refuse(struct node *n, const char *why)
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
void node_refuse_auth(struct node *n, const char *why)
{
	snprintf(n->auth_why, sizeof(n->auth_why), "%s", why);
	node_refuse(n, why);
}

/* Every stage is refused (another token, model or role): a setting to
 * fix. The run fails naming them rather than the coordinator computing
 * every block alone, as it does when some stage is merely down (it may
 * come back). 1 after failing the run. */
int refused_only(struct run *r)
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
	int generation = (int)json_integer_value(json_object_get(j, "block_times_generation"));
	/* Its block times changed (a debug slowdown): ask again, but not while
	 * a run computes, whose adapt compares the stage with what it was. */
	if (generation != n->prof_generation && !(c->active && c->active->state == RUN_RUNNING)) {
		for (int i = 0; i < PROFILES; i++)
			n->prof[i].batch = 0;
		n->speed_ratio = 0; /* it was against the old block times */
		n->prof_generation = generation;
	}
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

void ping(struct node *n)
{
	if (n->probing)
		return;
	if (pn_peer_send(n->probe, PN_GET, "/api/v1/health", NULL, NULL, 0, 0, probe_cb, n) == 0)
		n->probing = 1;
}

const double *node_profile(const struct node *n, int batch)
{
	for (int i = 0; i < PROFILES; i++)
		if (n->prof[i].batch == batch)
			return n->prof[i].ms;
	return NULL;
}

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

void profile_timer_cb(void *arg)
{
	struct node *n = arg;
	if (n->prof_want && !node_usable(n))
		n->prof_want = 0; /* want_profiles asks again once it is back */
	else if (n->prof_want)
		profile_ask(n);
}

/* 1 when every stage's block times for `batch` are known; else asks the
 * stages that lack them (one batch size at a time each). */
int want_profiles(struct pn_coord *c, int batch)
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
