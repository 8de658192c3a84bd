/* Prometheus text format helpers (see metrics.h). */
#include <math.h>
#include <string.h>

#include "metrics.h"

void pn_hist_init(struct pn_hist *h, const double *bounds, int nbounds)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->nbounds = nbounds < PN_HIST_MAX_BUCKETS ? nbounds : PN_HIST_MAX_BUCKETS;
}

void pn_hist_observe(struct pn_hist *h, double v, uint64_t times)
{
	if (!times || !isfinite(v))
		return;
	for (int i = 0; i < h->nbounds; i++)
		if (v <= h->bounds[i]) {
			h->counts[i] += times;
			break;
		}
	h->count += times;
	h->sum += v * (double)times;
}

void pn_metric_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void value(FILE *f, double v)
{
	if (isnan(v))
		fputs("NaN", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else if (v == (double)(int64_t)v && fabs(v) < 1e15)
		fprintf(f, "%lld", (long long)v);
	else
		fprintf(f, "%.9g", v);
}

/* "name" or "name{labels}", then a space. */
static void series(FILE *f, const char *name, const char *suffix, const char *labels)
{
	fprintf(f, "%s%s", name, suffix);
	if (labels && *labels)
		fprintf(f, "{%s}", labels);
	fputc(' ', f);
}

void pn_metric_sample(FILE *f, const char *name, const char *labels, double v)
{
	series(f, name, "", labels);
	value(f, v);
	fputc('\n', f);
}

void pn_metric_single(FILE *f, const char *name, const char *type, const char *help, double v)
{
	pn_metric_family(f, name, type, help);
	pn_metric_sample(f, name, "", v);
}

void pn_metric_hist(FILE *f, const char *name, const char *labels, const struct pn_hist *h)
{
	const char *sep = labels && *labels ? "," : "";
	uint64_t cum = 0;
	for (int i = 0; i < h->nbounds; i++) {
		cum += h->counts[i];
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels ? labels : "", sep,
			h->bounds[i], (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels ? labels : "", sep,
		(unsigned long long)h->count);
	series(f, name, "_sum", labels);
	value(f, h->sum);
	fputc('\n', f);
	series(f, name, "_count", labels);
	fprintf(f, "%llu\n", (unsigned long long)h->count);
}

const char *pn_metric_label(const char *v, char *buf, size_t buflen)
{
	size_t o = 0;
	for (; *v && o + 3 < buflen; v++) {
		if (*v == '\\' || *v == '"') {
			buf[o++] = '\\';
			buf[o++] = *v;
		} else if (*v == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *v;
		}
	}
	buf[o] = '\0';
	return buf;
}
