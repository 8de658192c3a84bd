/* A stage: runs blocks [first, last) of the model on the frames it
 * receives and forwards the result to the next node.
 *
 * The coordinator configures a stage for each run with
 *
 *   PUT /v1/stage   {"run": 7, "epoch": 0, "first": 0, "last": 8, "batch": 8,
 *                    "wire": "f32" | "f16" | "i8", "next": "HOST:PORT",
 *                    "model_sha256": "64 hex digits"}
 *
 * which builds a plan for blocks [first, last) and up to `batch` images
 * and answers 200 with the plan: {"run", "epoch", "first", "last", "batch", "wire",
 * "next", "in_dtype", "in": [h, w, c], "out": [h, w, c], "max_frame":
 * bytes, "model_sha256"}.
 * Incoming frames must then carry that run, plan epoch (0-255, the
 * coordinator's count of re-plans; a frame of another run or epoch is
 * stale and refused with 409), first block, wire dtype and
 * input shape (for first = 0: u8 source images of 32 x 32 x 3, which the
 * stage preprocesses); output frames go to `next` as POST /v1/frames with
 * first_block = last, in the wire dtype, or as float32 logits when last
 * is the block count (19; then `next` is the coordinator). With an int8
 * model, i8 frames carry the model's integers and its quantisation at the
 * cut both ways, copied to and from the plan unconverted (exact; an i8
 * frame with other parameters is refused naming "scale" or "zero_point");
 * with a float model each frame carries its own range.
 * A different model_sha256 is refused with 409 naming both hashes; a bad
 * field with 400 naming it. Configuring again replaces the plan and drops what is
 * queued for the old run, unless nothing changed.
 *
 *   GET /v1/stage     the configuration and counters (see pn_stage_status)
 *   DELETE /v1/stage  drops the plan, the queue and unsent output
 *   POST /v1/frames   a frame: 202 when queued, 503 + Retry-After when
 *                     the queue is full, 4xx naming the bad field
 *   POST /v1/profile  {"batch": B, "iters": 3}: this stage's time for every
 *                     block on a batch of B, measured by a resumable job
 *                     (one block of one image a turn, so the stage keeps
 *                     answering): 202 {"state": "profiling"} while it
 *                     measures (ask again), then 200 {"batch", "iters",
 *                     "block_ms": [ms per batch, one per block], "total_ms"};
 *                     block 0 includes preprocessing the batch's source
 *                     images, as a stage computing block 0 does; the last
 *                     few batch sizes are kept
 *   POST /v1/probe    {"to": "HOST:PORT", "bytes": [small, large], "reps": 3}:
 *                     the link from this stage to `to`, from timed
 *                     GET /v1/echo of both sizes (see probe.h): 202 while
 *                     probing, then 200 {"latency_ms", "bytes_per_ms", ...}
 *   GET /v1/echo      ?bytes=N: N bytes, for the probes of others
 *   PUT /v1/debug     {"slowdown": F, "drop": N}: from now on every compute
 *                     step (and every block time measured) takes F times as
 *                     long, the extra slept (a new F drops the block times
 *                     measured before); the next N output frames are thrown
 *                     away unsent, as if lost on the way (counted as
 *                     out_dropped). The `slowdown` setting gives the
 *                     starting F. Both keys are optional.
 *   GET /v1/debug     {"slowdown": F, "drop": N}
 */
#ifndef PN_STAGE_H
#define PN_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct pn_loop;
struct pn_http;
struct pn_req;
struct pn_model;
struct pn_stage;

struct pn_stage_opts {
	int queue_depth; /* frames waiting to be computed */
	int out_depth; /* output frames not yet accepted by the next node */
	int retry_s; /* how long an output frame is retried */
	int max_batch;
	const char *token; /* sent to the next node; may be NULL */
};

/* `http` (may be NULL for a stage inside the coordinator) gets its body
 * limit raised to the largest valid frame of each plan. The model and the
 * hash are borrowed and must outlive the stage. */
struct pn_stage *pn_stage_new(struct pn_loop *l, struct pn_http *http, const struct pn_model *m,
			      const char *model_path, const char *model_sha256,
			      const struct pn_stage_opts *o);
void pn_stage_free(struct pn_stage *s); /* NULL is fine */

/* The routes above, with the stage as their context. */
const struct pn_route *pn_stage_routes(size_t *n);

/* PUT /v1/stage's work: returns the HTTP status and a JSON reply (the
 * plan, or an error object), which the caller owns. */
int pn_stage_configure(struct pn_stage *s, json_t *cfg, json_t **reply);
void pn_stage_reset(struct pn_stage *s);
/* POST /v1/frames's work on a frame the caller hands over (the stage
 * owns `buf` even on failure): the status, and on error a JSON object. */
int pn_stage_submit(struct pn_stage *s, uint8_t *buf, size_t len, json_t **error);
/* The POST /v1/frames handler (the coordinator reuses it). */
void pn_stage_frame_route(struct pn_req *r, void *stage);
/* 1 when a frame would be queued now. */
int pn_stage_has_room(const struct pn_stage *s);
/* Nonzero once a coordinator has configured a run (the stage has a plan). */
int pn_stage_configured(const struct pn_stage *s);
/* Changes whenever the stage's block times were dropped (a new debug
 * slowdown): a coordinator holding older ones asks again. */
unsigned pn_stage_block_times_generation(const struct pn_stage *s);
/* Configuration and counters: frames_in, bytes_in, frames_out, bytes_out,
 * compute_ns, queue_wait_ns, out_transfer_ns, out_acked, out_failed,
 * out_stale (refused by the next node as another run or epoch),
 * rejected_busy, rejected_bad, max_step_ns (the longest loop turn spent
 * on the stage's own work: a compute step with the frame conversions
 * around it, or taking in a frame), queued, state, last_error. */
json_t *pn_stage_status(const struct pn_stage *s);
/* Stops taking frames and computing (shutdown). */
void pn_stage_stop(struct pn_stage *s);

#endif
