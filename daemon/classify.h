/* POST /api/v1/classify without stalling the loop: the JPEG's header is
 * checked in the handler (400, or 413 past the limits of dataset.h), its
 * pixels decoded a few rows per loop turn, then the model runs one block
 * per loop turn (a task, like a stage's frames), so the coordinator keeps
 * dispatching batches and answering while it classifies; the request is
 * answered when its logits are in. Requests wait in order, at most
 * PN_CLASSIFY_WAITING; past that they get 503 with Retry-After. */
#ifndef PN_CLASSIFY_H
#define PN_CLASSIFY_H

#include <stdint.h>

#define PN_CLASSIFY_WAITING 16

struct pn_loop;
struct pn_model;
struct pn_req;
struct pn_classifier;

struct pn_classifier *pn_classifier_new(struct pn_loop *l, const struct pn_model *m);
/* Answers the waiting requests 503 (stopping) and frees; NULL is fine.
 * Before the HTTP server is freed. */
void pn_classifier_free(struct pn_classifier *k);
/* Answers the waiting requests 503 and refuses new ones. */
void pn_classifier_stop(struct pn_classifier *k);
/* The handler: ?k=N top classes (default 5), the body one JPEG. */
void pn_classifier_post(struct pn_classifier *k, struct pn_req *r);
/* Images classified so far. */
uint64_t pn_classifier_done(const struct pn_classifier *k);

#endif
