/* The coordinator (see coord.h): start, stop and the 1 s tick. Its
 * state is in coord_internal.h; each concern has its own module. Every
 * figure is measured where it happens: batch latency here (dispatch to
 * logits), compute and queue wait in each stage, transfer time by the
 * sender of each hop. */
#include "coord_internal.h"

#define CONTROL_TIMEOUT_MS 5000 /* one PUT or GET /v1/stage attempt */

#define SSE_MAX_CLIENTS 32

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					0.25,  0.5,    1,     2.5,  5,	   10,	 30};
static const double compute_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					0.1,	0.25,  0.5,    1,     2.5,  5,	   10};

const char *const acct_names[NACCT] = {"dataset", "crc", "frame", "json"};
const char *const state_names[] = {"queued", "running", "running",  "running",
				   "done",   "failed",	"cancelled"};

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
			for (int k = 0; k < r->ngroups; k++)
				if (!r->groups[k].dropped &&
				    !GROUP_EPOCH(&r->groups[k])->predicted_img_s &&
				    want_profiles(c, r->batch))
					epoch_predict(
						r,
						&r->groups[k]); /* the block times came in late */
			link_drift_check(r);
			adapt_check(r);
		}
		r->rate_t[r->rate_n % RATE_TICKS] = now;
		r->rate_images[r->rate_n % RATE_TICKS] = r->images_done;
		r->rate_n++;
	}
	uint64_t t0 = pn_now_ns();
	json_t *summary = summary_json(c);
	if (c->active && c->active->state == RUN_RUNNING)
		history_second(c->active, summary, now);
	pn_events_emit(c->events, "summary", summary);
	c->acct[ACCT_JSON] += pn_now_ns() - t0;
}

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
	c->starter = pn_task_new(l, start_next_cb, c);
	c->tick = pn_timer_new(l, tick_cb, c);
	c->link_timer = pn_timer_new(l, link_timer_cb, c);
	c->auto_timer = pn_timer_new(l, auto_timer_cb, c);
	c->events = pn_events_new(l, SSE_MAX_CLIENTS, o->events_buffer_bytes);
	c->classifier = pn_classifier_new(l, m);
	if (o->data_dir && *o->data_dir && !have_datadir(c, err, errlen))
		pn_warn("%s; dataset runs are refused until it can be opened", err);
	pn_dataset_set_warn(dataset_warn);
	if (!c->local || !c->dispatcher || !c->starter || !c->tick || !c->events ||
	    !c->link_timer || !c->auto_timer || !c->classifier) {
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
	pn_task_free(c->starter);
	pn_timer_free(c->tick);
	pn_timer_free(c->link_timer);
	pn_timer_free(c->auto_timer);
	pn_probe_free(c->link_own);
	free(c);
}
