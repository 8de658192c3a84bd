/* The coordinator: runs over the stages, REST API, metrics.
 *
 * POST /api/v1/runs takes {"dataset", "offset", "stride", "samples",
 * "batch_size", "mode", "split", "max_inflight", "wire"} (DESIGN.md).
 * A split of k points makes k + 1 block ranges; with N stages, k = N - 1
 * puts one range on each stage, k = N puts the first range on the
 * coordinator itself and the rest on the stages. "auto" is the planner's
 * best plan over the stages' measured block times for the run's batch
 * size and the measured links, waiting up to "auto_wait_s" (20) for them,
 * else MACs balanced over the N stages; the run shows "split_source" and
 * "predicted_img_s". With "adapt": true the coordinator re-plans from the
 * stages' measured compute each second and re-splits live when another
 * plan is predicted 10% faster (at most once per "adapt_interval_s"). At
 * start the coordinator configures every stage
 * (PUT /v1/stage, see stage.h), then sends batches to the first range
 * and takes the logits at its own POST /v1/frames, keeping at most
 * max_inflight batches in flight (1 in sequential mode). One run computes
 * at a time; later ones wait as "queued".
 */
#ifndef PN_COORD_H
#define PN_COORD_H

#include <stddef.h>

struct pn_loop;
struct pn_http;
struct pn_model;
struct pn_coord;
struct pn_route;

struct pn_coord_opts {
	const char *stages; /* comma-separated HOST:PORT, may be NULL */
	const char *advertise; /* HOST:PORT the stages send logits to */
	const char *token; /* may be NULL */
	const char *web_root; /* the dashboard's files; may be NULL */
	const char *chartjs; /* served at /chart.js; may be NULL */
	const char *data_dir; /* runs' datasets are named in it; NULL: no dataset runs */
	size_t max_body_bytes; /* API request bodies */
	size_t events_buffer_bytes; /* per event stream client */
	int stall_s, retry_s, max_batch, queue_depth, out_depth;
	int batch_deadline_s; /* at least: see deadline_ns in coord.c */
};

struct pn_coord *pn_coord_new(struct pn_loop *l, struct pn_http *http, const struct pn_model *m,
			      const char *model_path, const char *model_sha256,
			      const struct pn_coord_opts *o, char *err, size_t errlen);
void pn_coord_free(struct pn_coord *c); /* NULL is fine */
const struct pn_route *pn_coord_routes(size_t *n);
/* 1 while some stage has not been reached yet (it has not answered a
 * health check, nor kept failing them for long enough to count as down),
 * with the reason in `why`; else 0. */
int pn_coord_reaching(const struct pn_coord *c, char *why, size_t len);
/* Shutdown: cancels the running and queued runs and resets the stages. */
void pn_coord_stop(struct pn_coord *c);

#endif
