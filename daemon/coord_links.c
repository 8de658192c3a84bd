/* Links between stages: probes, their results, drift during a run. */
#include "coord_internal.h"

#define LINK_POLL_MS 250
#define LINK_REPS 3

/* A link is probed again during a run when its frames' transfer time
 * leaves the model by more than this share (beyond the compute steps a
 * frame may wait for), at most once per
 * LINK_REPROBE_S. */
#define LINK_DRIFT 0.15
#define LINK_DRIFT_SLACK_MS 1.0
#define LINK_REPROBE_S 10

static void link_done(struct pn_coord *c, int h, json_t *j, const char *why)
{
	struct link *ln = &c->links[h];
	double lat = json_number_value(json_object_get(j, "latency_ms"));
	double bw = json_number_value(json_object_get(j, "bytes_per_ms"));
	int again = ln->reprobing;
	ln->reprobing = 0;
	if (!why && !(bw > 0 && lat >= 0))
		why = "no latency and bandwidth in the reply";
	/* Every re-probe starts in a run (drift_reprobe sets run_measured);
	 * without it, its run has ended: links_after_run. */
	if (again && !ln->run_measured) {
		pn_info("link %d: a probe of the run that ended is not taken", h);
		return;
	}
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
			h, ln->drift, lat, bw / 1e3, ln->fig.latency_ms,
			ln->fig.bytes_per_ms / 1e3);
	else
		pn_info("link %d: %.3f ms + %.1f MB/s", h, lat, bw / 1e3);
	ln->state = 2;
	ln->error[0] = '\0';
	ln->fig.latency_ms = lat;
	ln->fig.bytes_per_ms = bw;
	for (int i = 0; i < 2; i++) {
		json_t *b = json_array_get(json_object_get(j, "beside_bytes"), (size_t)i);
		ln->fig.beside[i] = json_is_integer(b) && json_integer_value(b) > 0
					    ? (uint64_t)json_integer_value(b)
					    : 0;
		ln->fig.probe_ms[i] =
			json_number_value(json_array_get(json_object_get(j, "ms"), (size_t)i));
	}
	ln->reprobes += again;
	ln->fig.bytes[0] = ln->probing_bytes[0];
	ln->fig.bytes[1] = ln->probing_bytes[1];
	ln->fig.measured_ns = pn_now_ns();
	ln->fig.measured_wall = wall_time();
	if (again && c->active && c->active->state == RUN_RUNNING)
		for (int k = 0; k < c->active->ngroups; k++) /* the running plans' figures */
			epoch_predict(c->active, &c->active->groups[k]);
}

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
	json_t *body = json_pack("{s:s, s:[I, I], s:i, s:I}", "to", to, "bytes",
				 (json_int_t)ln->probing_bytes[0], (json_int_t)ln->probing_bytes[1],
				 "reps", LINK_REPS, "id", (json_int_t)ln->probe_id);
	char *b = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (b && pn_peer_send(n->probe, PN_POST, "/v1/probe", "application/json", b, strlen(b), 0,
			      link_cb, n) == 0)
		c->links[h].asking = 1;
	else
		link_done(c, h, NULL, "cannot ask for a probe");
}

void link_timer_cb(void *arg)
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

/* Hop 0's probe's beside: the frames the running groups send to `to`. A
 * group's new first hop (a new plan) counts from 0, which the probe
 * reads as nothing beside that transfer. */
static uint64_t frames_acked(void *arg, const char *to)
{
	struct pn_coord *c = arg;
	uint64_t sum = 0, acked;
	for (int k = 0; c->active && k < c->active->ngroups; k++) {
		const struct group *g = &c->active->groups[k];
		if (g->first_hop && g->ranges[0].node &&
		    strcmp(g->ranges[0].node->address, to) == 0 &&
		    pn_peer_bytes_acked(g->first_hop, &acked) == 0)
			sum += acked;
	}
	return sum;
}

/* Probes hop h with transfers of `small` and `large` bytes; link_done
 * takes the result. */
static void link_start(struct pn_coord *c, int h, size_t small, size_t large)
{
	char err[256];
	struct link *ln = &c->links[h];
	ln->probing_bytes[0] = small;
	ln->probing_bytes[1] = large;
	if (h == 0) {
		pn_probe_free(c->link_own);
		c->link_own = pn_probe_new(c->loop, c->nodes[0].address, c->o.token, small, large,
					   LINK_REPS, frames_acked, c, err, sizeof(err));
		if (!c->link_own)
			link_done(c, 0, NULL, err);
	} else {
		/* A new measurement: the sender keeps its last result for polls
		 * of the same id. Unix microseconds, so a restarted coordinator
		 * does not reuse an id either. */
		long long id = (long long)(wall_time() * 1e6);
		ln->probe_id = id > ln->probe_id ? id : ln->probe_id + 1;
		link_ask(c, h);
	}
	if (!pn_timer_armed(c->link_timer))
		pn_timer_arm(c->link_timer, LINK_POLL_MS);
}

/* During a run: a hop whose frames of the last interval took longer than
 * the model allows (its latency and bandwidth, plus the longest compute
 * steps of the receiver and the sender, which a frame and its reply may
 * wait behind), or less than the model says by the same share, is
 * measured again, with the logits frame and its own frames' size: a link
 * that got slower (or faster) is seen during the run, not only at the
 * next start. Returns 1 when the hop is out of the model. */
static int drift_out(const struct link *ln, double frame_bytes, double seen, double wait)
{
	double model = ln->fig.latency_ms + frame_bytes / ln->fig.bytes_per_ms;
	return seen > (model + wait) * (1 + LINK_DRIFT) + LINK_DRIFT_SLACK_MS ||
	       seen < model / (1 + LINK_DRIFT) - LINK_DRIFT_SLACK_MS;
}

static int drift_judgeable(const struct link *ln, uint64_t now)
{
	return ln->state == 2 && !ln->reprobing &&
	       now - ln->fig.measured_ns >= (uint64_t)LINK_REPROBE_S * 1000000000u;
}

static void drift_reprobe(struct run *r, int h, double frame_bytes, double seen, double wait)
{
	struct pn_coord *c = r->c;
	struct link *ln = &c->links[h];
	double model = ln->fig.latency_ms + frame_bytes / ln->fig.bytes_per_ms;
	snprintf(ln->drift, sizeof(ln->drift),
		 "frames of %.0f bytes took %.2f ms, the model %.2f ms (+%.2f ms of "
		 "compute steps): %s",
		 frame_bytes, seen, model, wait, seen > model ? "slower" : "faster");
	pn_info("link %d drifted in run %d: %s", h, r->id, ln->drift);
	ln->reprobing = 1;
	if (!ln->run_measured) {
		ln->run_measured = 1;
		ln->before_run = ln->fig;
	}
	size_t large = (size_t)frame_bytes, small = c->link_bytes[0];
	if (large <= small)
		large = small * 2 + 1024;
	link_start(c, h, small, large > PN_PROBE_MAX_BYTES ? PN_PROBE_MAX_BYTES : large);
}

/* Hop 0, the coordinator's own link to the first stage of the list, on
 * the transfer times of its frames since the last look, as the stages'
 * links are judged on theirs (hop_interval). Only
 * once that stage's status tells its longest step (before it, a frame's
 * wait behind a step has no allowance), and only when two intervals in a
 * row are out of the model: the coordinator's own loop turns (reading
 * the dataset, answering the API) delay a reply now and then, and one
 * interval of that is no slower link. */
static void hop0_drift_check(struct run *r, struct group *g, uint64_t now)
{
	const struct range *to = &g->ranges[0];
	struct link *ln = &r->c->links[0];
	if (!to->node || to->node->index != 0 || !g->first_hop)
		return;
	double wait = ms(counter(to->status, "max_step_ns"));
	if (wait <= 0)
		return;
	double seen, bytes;
	if (!hop_interval(&g->hop0_mark, g->hop_frames, g->hop_transfer_ns, g->hop_acked_bytes,
			  &seen, &bytes))
		return;
	if (!drift_judgeable(ln, now) || !drift_out(ln, bytes, seen, wait)) {
		g->drift_strikes = 0;
		return;
	}
	if (++g->drift_strikes >= 2) {
		g->drift_strikes = 0;
		drift_reprobe(r, 0, bytes, seen, wait);
	}
}

static void group_drift_check(struct run *r, struct group *g)
{
	struct pn_coord *c = r->c;
	uint64_t now = pn_now_ns();
	hop0_drift_check(r, g, now);
	for (int i = 1; i <= g->nranges; i++) {
		const struct range *from = &g->ranges[i - 1];
		const struct range *to = i < g->nranges ? &g->ranges[i] : NULL;
		if (!from->node || (to && !to->node) || from->recent_frame_bytes <= 0)
			continue;
		int h = to ? to->node->index : c->nnodes;
		/* Measured links are between neighbours in the list of stages. */
		if (h != from->node->index + 1 || !drift_judgeable(&c->links[h], now))
			continue;
		/* A frame may wait for the receiver's step, its reply for the sender's. */
		double wait = ms(counter(from->status, "max_step_ns")) +
			      (to ? ms(counter(to->status, "max_step_ns")) : 0);
		if (drift_out(&c->links[h], from->recent_frame_bytes, from->recent_transfer_ms,
			      wait))
			drift_reprobe(r, h, from->recent_frame_bytes, from->recent_transfer_ms,
				      wait);
	}
}

void link_drift_check(struct run *r)
{
	for (int k = 0; k < r->ngroups; k++)
		group_drift_check(r, &r->groups[k]);
}

/* A link measured again during a run took its figures beside the run's
 * busy loop turns, which a frame needs more of the more bytes it has (a
 * stage computing 18 blocks passed 0.5 MB loopback frames at about 860
 * Mbit/s): figures of that run's split as much as of the link. They
 * served the run; once it ends, the figures from before it come back (a
 * link that stays slower is seen again by the next run's frames). A
 * probe still under way is not taken. */
void links_after_run(struct pn_coord *c)
{
	for (int h = 0; h <= c->nnodes; h++) {
		struct link *ln = &c->links[h];
		if (!ln->run_measured)
			continue;
		ln->run_measured = 0; /* link_done drops a probe still under way */
		if (ln->fig.latency_ms != ln->before_run.latency_ms ||
		    ln->fig.bytes_per_ms != ln->before_run.bytes_per_ms)
			pn_info("link %d: back to its figures from before the run: %.3f ms + %.1f "
				"MB/s (during it %.3f ms + %.1f MB/s)",
				h, ln->before_run.latency_ms, ln->before_run.bytes_per_ms / 1e3,
				ln->fig.latency_ms, ln->fig.bytes_per_ms / 1e3);
		ln->fig = ln->before_run; /* with the probe that measured them */
	}
}

/* 1 when every link is measured (or could not be); else starts the
 * probes that are missing, with real frame sizes of `batch`: the logits
 * frame and the largest activation frame. */
int want_links(struct pn_coord *c, int batch)
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

json_t *links_json(const struct pn_coord *c)
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
				    ln->state == 2 ? json_real(ln->fig.latency_ms) : json_null());
		json_object_set_new(o, "mbit_s",
				    ln->state == 2 ? json_real(ln->fig.bytes_per_ms * 8e3 / 1e6)
						   : json_null());
		/* A link measured shows the probe that measured it. */
		const size_t *sizes = ln->state == 2 ? ln->fig.bytes : ln->probing_bytes;
		json_object_set_new(
			o, "probe_bytes",
			json_pack("[I, I]", (json_int_t)(sizes[1] ? sizes[0] : c->link_bytes[0]),
				  (json_int_t)(sizes[1] ? sizes[1] : c->link_bytes[1])));
		json_object_set_new(o, "beside_bytes",
				    json_pack("[I, I]", (json_int_t)ln->fig.beside[0],
					      (json_int_t)ln->fig.beside[1]));
		json_object_set_new(o, "probe_ms",
				    ln->state == 2 ? json_pack("[f, f]", ln->fig.probe_ms[0],
							       ln->fig.probe_ms[1])
						   : json_null());
		json_object_set_new(o, "measured_at",
				    ln->fig.measured_ns ? json_real(ln->fig.measured_wall)
							: json_null());
		json_object_set_new(o, "measured_s_ago",
				    ln->fig.measured_ns
					    ? json_real(ms(pn_now_ns() - ln->fig.measured_ns) / 1e3)
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
