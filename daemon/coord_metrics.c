/* GET /metrics: the Prometheus text. */
#include "coord_internal.h"

void metrics_get(struct pn_req *q, void *arg)
{
	struct pn_coord *c = arg;
	char *text = NULL, l1[256], l2[256], lab[600];
	size_t len = 0;
	static const char *const type = "text/plain; version=0.0.4; charset=utf-8";
	if (cache_fresh(c, &c->metrics_cache)) {
		pn_reply_bytes(q, 200, type, c->metrics_cache.body, c->metrics_cache.len);
		return;
	}
	uint64_t t0 = pn_now_ns();
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		pn_reply_error(q, 503, "out of memory", "cannot write the metrics");
		return;
	}
	struct run *r = c->active;
	uint64_t e4, e5;
	pn_http_error_counts(c->http, &e4, &e5);
	pn_metric_single(f, "pipenet_images_total", "counter", "Images classified by runs.",
			 (double)c->images_total);
	pn_metric_single(f, "pipenet_batches_total", "counter", "Batches whose logits came back.",
			 (double)c->batches_total);
	pn_metric_single(f, "pipenet_classify_requests_total", "counter",
			 "Images classified by POST /api/v1/classify.",
			 (double)pn_classifier_done(c->classifier));
	pn_metric_family(f, "pipenet_runs_total", "counter", "Runs ended, by final state.");
	pn_metric_sample(f, "pipenet_runs_total", "state=\"done\"", (double)c->runs_done);
	pn_metric_sample(f, "pipenet_runs_total", "state=\"failed\"", (double)c->runs_failed);
	pn_metric_sample(f, "pipenet_runs_total", "state=\"cancelled\"", (double)c->runs_cancelled);
	pn_metric_family(
		f, "pipenet_hop_bytes_total", "counter",
		"Frame bytes of finished batches sent over each hop (sender to receiver).");
	for (int i = 0; i < c->nhops; i++) {
		snprintf(lab, sizeof(lab), "from=\"%s\",to=\"%s\"",
			 pn_metric_label(c->hops[i].from, l1, sizeof(l1)),
			 pn_metric_label(c->hops[i].to, l2, sizeof(l2)));
		pn_metric_sample(f, "pipenet_hop_bytes_total", lab, (double)c->hops[i].bytes);
	}
	pn_metric_family(f, "pipenet_errors_total", "counter", "Errors, by kind.");
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"http_4xx\"", (double)e4);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"http_5xx\"", (double)e5);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"run_failed\"", (double)c->runs_failed);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"duplicate_logits\"",
			 (double)c->duplicates_total);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"stage_down\"",
			 (double)c->stage_down_total);
	pn_metric_sample(f, "pipenet_errors_total", "kind=\"events_client_dropped\"",
			 (double)pn_events_dropped(c->events));
	pn_metric_family(f, "pipenet_recovery_total", "counter",
			 "Recovery from lost stages and frames, by kind.");
	pn_metric_sample(f, "pipenet_recovery_total", "kind=\"failover\"",
			 (double)c->failovers_total);
	pn_metric_sample(f, "pipenet_recovery_total", "kind=\"readmit\"",
			 (double)c->readmits_total);
	pn_metric_sample(f, "pipenet_recovery_total", "kind=\"batch_resent\"",
			 (double)c->resends_total);
	pn_metric_sample(f, "pipenet_recovery_total", "kind=\"stale_frame\"",
			 (double)c->stale_total);
	pn_metric_single(f, "pipenet_inflight_batches", "gauge",
			 "Batches dispatched whose logits have not come back.",
			 r && r->state == RUN_RUNNING ? run_inflight(r) : 0);
	pn_metric_family(f, "pipenet_stage_up", "gauge",
			 "1 when the stage answers its health checks with the coordinator's model, "
			 "0 when down or refused.");
	for (int i = 0; i < c->nnodes; i++) {
		snprintf(lab, sizeof(lab), "stage=\"%s\"",
			 pn_metric_label(c->nodes[i].address, l1, sizeof(l1)));
		pn_metric_sample(f, "pipenet_stage_up", lab,
				 c->nodes[i].up == 1 && !c->nodes[i].refused);
	}
	pn_metric_family(f, "pipenet_stage_state", "gauge",
			 "1 for the state each stage is in (the reason is in /api/v1/cluster).");
	static const char *const node_states[] = {"up", "down", "refused", "unknown"};
	for (int i = 0; i < c->nnodes; i++)
		for (int k = 0; k < 4; k++) {
			snprintf(lab, sizeof(lab), "stage=\"%s\",state=\"%s\"",
				 pn_metric_label(c->nodes[i].address, l1, sizeof(l1)),
				 node_states[k]);
			pn_metric_sample(f, "pipenet_stage_state", lab,
					 strcmp(node_state(&c->nodes[i]), node_states[k]) == 0);
		}
	pn_metric_family(f, "pipenet_stage_utilisation", "gauge",
			 "Busy fraction of each range's stage over the last interval of the "
			 "running run.");
	for (int k = 0; r && r->state == RUN_RUNNING && k < r->ngroups; k++)
		for (int i = 0; i < r->groups[k].nranges; i++) {
			const struct group *g = &r->groups[k];
			snprintf(lab, sizeof(lab), "stage=\"%s\",group=\"%d\",range=\"%d\"",
				 pn_metric_label(range_address(g, i), l1, sizeof(l1)), k, i);
			pn_metric_sample(f, "pipenet_stage_utilisation", lab,
					 g->ranges[i].utilisation);
		}
	int conns;
	uint64_t refused;
	pn_http_conn_counts(c->http, &conns, &refused);
	pn_metric_single(f, "pipenet_http_connections", "gauge",
			 "Open client connections to this daemon's HTTP server.", conns);
	pn_metric_single(f, "pipenet_http_connections_refused_total", "counter",
			 "Connections answered 503 because max_connections were open.",
			 (double)refused);
	int waiting;
	uint64_t delayed;
	pn_http_read_counts(c->http, &waiting, &delayed);
	pn_metric_single(f, "pipenet_http_reads_waiting", "gauge",
			 "API reads waiting for the api_reads_per_s budget.", waiting);
	pn_metric_single(f, "pipenet_http_reads_delayed_total", "counter",
			 "API reads that waited for the api_reads_per_s budget.", (double)delayed);
	pn_metric_single(f, "pipenet_event_clients", "gauge", "Open event streams.",
			 pn_events_clients(c->events));
	pn_metric_family(f, "pipenet_batch_latency_seconds", "histogram",
			 "Batch latency, dispatch to logits.");
	pn_metric_hist(f, "pipenet_batch_latency_seconds", "", &c->latency);
	pn_metric_family(f, "pipenet_stage_compute_seconds", "histogram",
			 "Compute time per batch of each stage (averaged over each 1 s report).");
	for (int i = 0; i <= c->nnodes; i++) {
		int h = i < c->nnodes ? i : MAX_STAGES;
		if (i == c->nnodes && !c->compute[h].count)
			continue;
		snprintf(lab, sizeof(lab), "stage=\"%s\"",
			 pn_metric_label(i < c->nnodes ? c->nodes[i].address : "coordinator", l1,
					 sizeof(l1)));
		pn_metric_hist(f, "pipenet_stage_compute_seconds", lab, &c->compute[h]);
	}
	pn_metric_single(f, "process_cpu_seconds_total", "counter",
			 "CPU time of the coordinator process, user and system.",
			 (double)pn_cpu_ns() / 1e9);
	pn_metric_family(f, "pipenet_coordinator_seconds_total", "counter",
			 "The coordinator's time outside the kernels, by kind.");
	for (int k = 0; k < NACCT; k++) {
		snprintf(lab, sizeof(lab), "kind=\"%s\"", acct_names[k]);
		pn_metric_sample(f, "pipenet_coordinator_seconds_total", lab,
				 (double)c->acct[k] / 1e9);
	}
	pn_metric_family(f, "pipenet_stage_time_seconds_total", "counter",
			 "Each range's stage in the running run: its process CPU (kind cpu), "
			 "and the wall time in the kernels and outside them by kind.");
	static const char *const time_keys[][2] = {
		{"cpu", "cpu_ns"},	   {"kernel", "kernel_ns"}, {"preprocess", "preprocess_ns"},
		{"convert", "convert_ns"}, {"crc", "crc_ns"},	    {"frame", "frame_ns"},
	};
	for (int k = 0; r && r->state == RUN_RUNNING && k < r->ngroups; k++)
		for (int i = 0; i < r->groups[k].nranges; i++)
			for (size_t x = 0; x < sizeof(time_keys) / sizeof(time_keys[0]); x++) {
				const struct group *g = &r->groups[k];
				snprintf(lab, sizeof(lab),
					 "stage=\"%s\",group=\"%d\",range=\"%d\",kind=\"%s\"",
					 pn_metric_label(range_address(g, i), l1, sizeof(l1)), k, i,
					 time_keys[x][0]);
				pn_metric_sample(
					f, "pipenet_stage_time_seconds_total", lab,
					(double)counter(g->ranges[i].status, time_keys[x][1]) /
						1e9);
			}
	if (fclose(f) != 0 || !text) {
		free(text);
		pn_reply_error(q, 503, "out of memory", "cannot write the metrics");
		return;
	}
	c->acct[ACCT_JSON] += pn_now_ns() - t0;
	cache_set(c, &c->metrics_cache, text, len);
	pn_reply_bytes(q, 200, type, text, len);
}
