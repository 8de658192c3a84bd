/* Prometheus text exposition (format 0.0.4): the pieces the coordinator's
 * GET /metrics is written with. Every family gets its HELP and TYPE line
 * once, before its samples. */
#ifndef PN_METRICS_H
#define PN_METRICS_H

#include <stdint.h>
#include <stdio.h>

#define PN_HIST_MAX_BUCKETS 16

/* A histogram of seconds: fixed upper bounds (ascending, +Inf implied). */
struct pn_hist {
	const double *bounds;
	int nbounds;
	uint64_t counts[PN_HIST_MAX_BUCKETS]; /* per bound, not cumulative */
	uint64_t count;
	double sum;
};

void pn_hist_init(struct pn_hist *h, const double *bounds, int nbounds);
/* Adds `times` observations of value v. */
void pn_hist_observe(struct pn_hist *h, double v, uint64_t times);

/* "# HELP name help" and "# TYPE name type". */
void pn_metric_family(FILE *f, const char *name, const char *type, const char *help);
/* One sample: `labels` is "" or `key="value",...` (values escaped by the
 * caller with pn_metric_label). */
void pn_metric_sample(FILE *f, const char *name, const char *labels, double value);
/* A family of one unlabelled sample. */
void pn_metric_single(FILE *f, const char *name, const char *type, const char *help, double value);
void pn_metric_hist(FILE *f, const char *name, const char *labels, const struct pn_hist *h);
/* Escapes a label value (backslash, quote, newline) into buf. */
const char *pn_metric_label(const char *value, char *buf, size_t buflen);

#endif
