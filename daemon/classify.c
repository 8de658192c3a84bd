/* Classifying posted JPEGs one block per loop turn (see classify.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "classify.h"
#include "dataset.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "model.h"

/* Rows of JPEG decoding per loop turn (see pn_jpeg_step). */
#define DECODE_ROWS 8

struct job {
	struct pn_req *req; /* held */
	int k;
	uint64_t t_posted;
	uint8_t *jpeg; /* the body, until decoded */
	struct pn_jpeg *dec; /* its decode, until done */
	uint8_t rgb[PN_IMAGE_BYTES];
};

struct pn_classifier {
	const struct pn_model *m;
	struct pn_plan *plan; /* one image through every block */
	struct pn_task *step;
	struct job *waiting[PN_CLASSIFY_WAITING]; /* a ring; the head computes */
	int head, n;
	int started; /* the head's image is in the plan */
	uint64_t t_started, compute_ns;
	int stopped;
	uint64_t done;
};

static void step_cb(void *arg);

struct pn_classifier *pn_classifier_new(struct pn_loop *l, const struct pn_model *m)
{
	struct pn_classifier *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->m = m;
	k->step = pn_task_new(l, step_cb, k);
	if (!k->step) {
		free(k);
		return NULL;
	}
	return k;
}

static void job_free(struct job *j)
{
	pn_req_free(j->req);
	pn_jpeg_free(j->dec);
	free(j->jpeg);
	free(j);
}

static struct job *pop(struct pn_classifier *k)
{
	struct job *j = k->waiting[k->head];
	k->head = (k->head + 1) % PN_CLASSIFY_WAITING;
	k->n--;
	k->started = 0;
	return j;
}

static void refuse_all(struct pn_classifier *k)
{
	while (k->n) {
		struct job *j = pop(k);
		pn_reply_header(j->req, "Retry-After", "1");
		pn_reply_error(j->req, 503, "shutting down", "this daemon is stopping");
		job_free(j);
	}
	pn_task_cancel(k->step);
}

void pn_classifier_stop(struct pn_classifier *k)
{
	if (!k)
		return;
	k->stopped = 1;
	refuse_all(k);
}

void pn_classifier_free(struct pn_classifier *k)
{
	if (!k)
		return;
	refuse_all(k);
	pn_task_free(k->step);
	pn_plan_free(k->plan);
	free(k);
}

uint64_t pn_classifier_done(const struct pn_classifier *k)
{
	return k ? k->done : 0;
}

/* The top `j->k` classes with softmax scores, and every logit. */
static void answer(struct pn_classifier *k, struct job *j, const float *logits, double wait_ms)
{
	int classes = pn_model_num_classes(k->m);
	double maxv = logits[0], sum = 0;
	for (int i = 1; i < classes; i++)
		maxv = logits[i] > maxv ? logits[i] : maxv;
	for (int i = 0; i < classes; i++)
		sum += exp(logits[i] - maxv);
	int order[1024];
	int n = classes < 1024 ? classes : 1024;
	for (int i = 0; i < n; i++)
		order[i] = i;
	for (int i = 0; i < j->k && i < n; i++)
		for (int m = i + 1; m < n; m++)
			if (logits[order[m]] > logits[order[i]]) {
				int tmp = order[i];
				order[i] = order[m];
				order[m] = tmp;
			}
	json_t *top = json_array(), *all = json_array();
	for (int i = 0; i < j->k && i < n; i++)
		json_array_append_new(top, json_pack("{s:i, s:s, s:f, s:f}", "index", order[i],
						     "class", pn_model_classes(k->m)[order[i]],
						     "score", exp(logits[order[i]] - maxv) / sum,
						     "logit", (double)logits[order[i]]));
	for (int i = 0; i < classes; i++)
		json_array_append_new(all, json_real(logits[i]));
	pn_reply_json(j->req, 200,
		      json_pack("{s:o, s:o, s:f, s:f, s:i}", "top", top, "logits", all, "ms",
				(double)k->compute_ns / 1e6, "wait_ms", wait_ms, "input_size",
				pn_model_input_size(k->m)));
}

/* A slice of the head's JPEG decode; 0 when it is decoded. */
static int decode_step(struct pn_classifier *k, struct job *j)
{
	char err[256];
	int status;
	int rc = pn_jpeg_step(j->dec, DECODE_ROWS, j->rgb, &status, err, sizeof(err));
	if (rc == 1)
		return 1;
	pn_jpeg_free(j->dec);
	j->dec = NULL;
	free(j->jpeg);
	j->jpeg = NULL;
	if (rc < 0) {
		pop(k);
		pn_reply_error(j->req, status, status == 413 ? "image too large" : "bad image",
			       "body: bad JPEG: %s", err);
		job_free(j);
		return 1;
	}
	return 0;
}

/* One step: a slice of the head's JPEG decode, its preprocessing, or one
 * block of the model. */
static void step_cb(void *arg)
{
	struct pn_classifier *k = arg;
	if (!k->n)
		return;
	struct job *j = k->waiting[k->head];
	uint64_t t0 = pn_now_ns();
	if (j->dec && decode_step(k, j)) {
		if (k->n)
			pn_task_schedule(k->step);
		return;
	}
	if (!k->started) {
		k->started = 1;
		k->t_started = t0;
		k->compute_ns = 0;
		pn_model_preprocess(k->m, j->rgb, pn_plan_input(k->plan));
		pn_plan_start(k->plan, 1);
		k->compute_ns += pn_now_ns() - t0;
		pn_task_schedule(k->step);
		return;
	}
	int more = pn_plan_step(k->plan);
	k->compute_ns += pn_now_ns() - t0;
	if (!more) {
		pop(k);
		answer(k, j, pn_plan_output(k->plan), (double)(k->t_started - j->t_posted) / 1e6);
		job_free(j);
		k->done++;
	}
	if (k->n)
		pn_task_schedule(k->step);
}

void pn_classifier_post(struct pn_classifier *k, struct pn_req *r)
{
	char err[256], kbuf[32], *end;
	int classes = pn_model_num_classes(k->m);
	long top = classes < 5 ? classes : 5;
	const char *kq = pn_req_query(r, "k", kbuf, sizeof(kbuf));
	if (kq) {
		top = strtol(kq, &end, 10);
		if (!*kq || *end || top < 1 || top > classes) {
			pn_reply_error(r, 400, "bad query", "k must be an integer from 1 to %d",
				       classes);
			return;
		}
	}
	if (k->stopped) {
		pn_reply_header(r, "Retry-After", "1");
		pn_reply_error(r, 503, "shutting down", "this daemon is stopping");
		return;
	}
	if (k->n == PN_CLASSIFY_WAITING) {
		pn_reply_header(r, "Retry-After", "1");
		pn_reply_error(r, 503, "busy", "%d images are waiting to be classified",
			       PN_CLASSIFY_WAITING);
		return;
	}
	size_t len;
	uint8_t *jpeg = pn_req_body_take(r, &len);
	if (!jpeg) {
		pn_reply_error(r, 400, "bad image", "body: send one JPEG image");
		return;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		free(jpeg);
		pn_reply_error(r, 503, "out of memory", "cannot classify");
		return;
	}
	/* The header now (its size and limits answered at once), the pixels
	 * a slice per loop turn when the job is at the head. */
	int status;
	j->jpeg = jpeg;
	if (!(j->dec = pn_jpeg_new(jpeg, len, &status, err, sizeof(err)))) {
		job_free(j);
		pn_reply_error(r, status, status == 413 ? "image too large" : "bad image",
			       "body: bad JPEG: %s", err);
		return;
	}
	if (!k->plan &&
	    !(k->plan = pn_plan_new(k->m, 0, pn_model_blocks(k->m), 1, err, sizeof(err)))) {
		job_free(j);
		pn_reply_error(r, 503, "cannot classify", "%s", err);
		return;
	}
	if (!(j->req = pn_req_hold(r))) {
		job_free(j);
		return;
	}
	j->k = (int)top;
	j->t_posted = pn_now_ns();
	k->waiting[(k->head + k->n) % PN_CLASSIFY_WAITING] = j;
	k->n++;
	pn_task_schedule(k->step);
}
