/* The split planner; see planner.h. The best single pipeline is found in
 * two exact passes: a min-max DP gives the smallest achievable bottleneck,
 * then a min-sum DP over the segments that respect that bottleneck gives
 * the lowest latency among the fastest plans. (One lexicographic DP would
 * not be exact: a prefix with a worse maximum but a smaller sum can win.) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "planner.h"

#define TIE 1e-9

static double hop_ms(const struct pn_split_costs *c, int hop, int cut)
{
	double bw = c->hop_bytes_per_ms[hop];
	if (bw <= 0.0)
		return 0.0;
	return c->hop_latency_ms[hop] + c->cut_bytes[cut] / bw;
}

/* Compute time of stage s over blocks [a, b). */
static double seg_ms(const struct pn_split_costs *c, int s, int a, int b)
{
	double t = 0.0;
	for (int i = a; i < b; i++)
		t += c->block_ms[(size_t)s * c->blocks + i];
	if (c->stage_ms_per_byte)
		t += (c->cut_bytes[a] + c->cut_bytes[b]) * c->stage_ms_per_byte[s];
	return t;
}

/* The cost stage s adds to the plan when it runs [a, b): its compute and
 * the hop that feeds it; the last stage also pays the hop back. */
static double seg_max(const struct pn_split_costs *c, int s, int a, int b)
{
	double m = seg_ms(c, s, a, b), h = hop_ms(c, s, a);
	if (h > m)
		m = h;
	if (s == c->stages - 1 && hop_ms(c, s + 1, b) > m)
		m = hop_ms(c, s + 1, b);
	return m;
}

static double seg_sum(const struct pn_split_costs *c, int s, int a, int b)
{
	double t = seg_ms(c, s, a, b) + hop_ms(c, s, a);
	if (s == c->stages - 1)
		t += hop_ms(c, s + 1, b);
	return t;
}

int pn_split_check(const struct pn_split_costs *c, char *err, size_t errlen)
{
	if (c->stages < 1 || c->stages > PN_PLANNER_MAX_STAGES) {
		snprintf(err, errlen, "%d stages: expected 1..%d", c->stages,
			 PN_PLANNER_MAX_STAGES);
		return -1;
	}
	if (c->blocks < 1 || c->blocks > PN_PLANNER_MAX_BLOCKS) {
		snprintf(err, errlen, "%d blocks: expected 1..%d", c->blocks,
			 PN_PLANNER_MAX_BLOCKS);
		return -1;
	}
	if (c->stages > c->blocks) {
		snprintf(err, errlen, "%d stages cannot each hold one of %d blocks", c->stages,
			 c->blocks);
		return -1;
	}
	if (c->batch < 1) {
		snprintf(err, errlen, "batch %d: expected at least 1", c->batch);
		return -1;
	}
	for (int i = 0; i < c->stages * c->blocks; i++)
		if (!isfinite(c->block_ms[i]) || c->block_ms[i] < 0) {
			snprintf(err, errlen, "stage %d block %d: time %g is not a finite ms >= 0",
				 i / c->blocks, i % c->blocks, c->block_ms[i]);
			return -1;
		}
	for (int i = 0; i <= c->blocks; i++)
		if (!isfinite(c->cut_bytes[i]) || c->cut_bytes[i] < 0) {
			snprintf(err, errlen, "cut %d: %g bytes is not finite and >= 0", i,
				 c->cut_bytes[i]);
			return -1;
		}
	for (int h = 0; h <= c->stages; h++)
		if (!isfinite(c->hop_latency_ms[h]) || c->hop_latency_ms[h] < 0 ||
		    !isfinite(c->hop_bytes_per_ms[h])) {
			snprintf(err, errlen, "hop %d: latency %g ms, bandwidth %g bytes/ms", h,
				 c->hop_latency_ms[h], c->hop_bytes_per_ms[h]);
			return -1;
		}
	for (int s = 0; c->stage_ms_per_byte && s < c->stages; s++)
		if (!isfinite(c->stage_ms_per_byte[s]) || c->stage_ms_per_byte[s] < 0) {
			snprintf(err, errlen,
				 "stage %d: %g ms per frame byte is not finite and >= 0", s,
				 c->stage_ms_per_byte[s]);
			return -1;
		}
	return 0;
}

static void fill(const struct pn_split_costs *c, struct pn_split *out)
{
	out->stages = c->stages;
	out->bottleneck_ms = 0.0;
	out->latency_ms = 0.0;
	out->bottleneck = 0;
	for (int h = 0; h <= c->stages; h++) {
		int cut = h < c->stages ? out->cuts[h] : c->blocks;
		out->hop_ms[h] = hop_ms(c, h, cut);
		out->latency_ms += out->hop_ms[h];
		if (out->hop_ms[h] > out->bottleneck_ms) {
			out->bottleneck_ms = out->hop_ms[h];
			out->bottleneck = -(h + 1);
		}
	}
	for (int s = 0; s < c->stages; s++) {
		out->stage_ms[s] = seg_ms(c, s, out->cuts[s], out->cuts[s + 1]);
		out->latency_ms += out->stage_ms[s];
		if (out->stage_ms[s] >= out->bottleneck_ms) {
			out->bottleneck_ms = out->stage_ms[s];
			out->bottleneck = s;
		}
	}
	out->img_s = out->bottleneck_ms > 0 ? c->batch * 1e3 / out->bottleneck_ms : INFINITY;
}

int pn_split_evaluate(const struct pn_split_costs *c, const int *split, struct pn_split *out)
{
	memset(out, 0, sizeof *out);
	out->cuts[0] = 0;
	out->cuts[c->stages] = c->blocks;
	for (int i = 0; i + 1 < c->stages; i++) {
		out->cuts[i + 1] = split[i];
		if (split[i] <= out->cuts[i] || split[i] >= c->blocks)
			return -1;
	}
	fill(c, out);
	return 0;
}

int pn_split_best(const struct pn_split_costs *c, struct pn_split *out)
{
	const int S = c->stages, N = c->blocks;
	/* best[s][b]: smallest bottleneck with stages 0..s-1 covering [0, b). */
	static const double inf = INFINITY;
	double best[PN_PLANNER_MAX_STAGES + 1][PN_PLANNER_MAX_BLOCKS + 1];
	double lat[PN_PLANNER_MAX_STAGES + 1][PN_PLANNER_MAX_BLOCKS + 1];
	int from[PN_PLANNER_MAX_STAGES + 1][PN_PLANNER_MAX_BLOCKS + 1];

	if (S > N)
		return -1;
	for (int s = 0; s <= S; s++)
		for (int b = 0; b <= N; b++)
			best[s][b] = lat[s][b] = inf;
	best[0][0] = 0.0;
	for (int s = 1; s <= S; s++)
		for (int b = s; b <= N - (S - s); b++)
			for (int a = s - 1; a < b; a++) {
				if (best[s - 1][a] == inf)
					continue;
				double m = seg_max(c, s - 1, a, b);
				if (best[s - 1][a] > m)
					m = best[s - 1][a];
				if (m < best[s][b])
					best[s][b] = m;
			}
	const double limit = best[S][N] * (1.0 + TIE);

	/* Lowest latency among plans whose every part stays within limit. */
	lat[0][0] = 0.0;
	for (int s = 1; s <= S; s++)
		for (int b = s; b <= N - (S - s); b++)
			for (int a = s - 1; a < b; a++) {
				if (lat[s - 1][a] == inf || seg_max(c, s - 1, a, b) > limit)
					continue;
				double t = lat[s - 1][a] + seg_sum(c, s - 1, a, b);
				if (t < lat[s][b]) {
					lat[s][b] = t;
					from[s][b] = a;
				}
			}
	memset(out, 0, sizeof *out);
	out->cuts[S] = N;
	for (int s = S, b = N; s > 0; s--) {
		b = from[s][b];
		out->cuts[s - 1] = b;
	}
	fill(c, out);
	return 0;
}

long pn_split_each(const struct pn_split_costs *c,
		   int (*fn)(const struct pn_split *plan, void *arg), void *arg)
{
	const int S = c->stages, N = c->blocks;
	int split[PN_PLANNER_MAX_STAGES];
	struct pn_split plan;
	long count = 0;

	if (S > N)
		return 0;
	for (int i = 0; i + 1 < S; i++)
		split[i] = i + 1;
	for (;;) {
		pn_split_evaluate(c, split, &plan);
		count++;
		if (fn(&plan, arg))
			return count;
		/* Next combination of S-1 cuts from 1..N-1, lexicographically. */
		int i = S - 2;
		while (i >= 0 && split[i] == N - 1 - (S - 2 - i))
			i--;
		if (i < 0)
			return count;
		split[i]++;
		for (int j = i + 1; j + 1 < S; j++)
			split[j] = split[j - 1] + 1;
	}
}

/* The costs of stages [first, first + n) as a pipeline of their own: the
 * same links into the group's first stage and out of its last. */
static void sub_costs(const struct pn_split_costs *c, int first, int n, struct pn_split_costs *sub,
		      double *lat, double *bw)
{
	*sub = *c;
	sub->stages = n;
	sub->block_ms = c->block_ms + (size_t)first * c->blocks;
	if (c->stage_ms_per_byte)
		sub->stage_ms_per_byte = c->stage_ms_per_byte + first;
	for (int h = 0; h <= n; h++) {
		lat[h] = c->hop_latency_ms[first + h];
		bw[h] = c->hop_bytes_per_ms[first + h];
	}
	sub->hop_latency_ms = lat;
	sub->hop_bytes_per_ms = bw;
}

/* img/s the coordinator's own links carry: every group's input batches
 * leave by its uplink (hop 0) and its logits come back by its downlink
 * (the last hop). Bytes only: the groups' transfers overlap their
 * latencies. */
static double coordinator_img_s(const struct pn_split_costs *c)
{
	double cap = INFINITY, in = c->hop_bytes_per_ms[0], out = c->hop_bytes_per_ms[c->stages];
	if (in > 0 && c->cut_bytes[0] > 0)
		cap = fmin(cap, in / c->cut_bytes[0] * c->batch * 1e3);
	if (out > 0 && c->cut_bytes[c->blocks] > 0)
		cap = fmin(cap, out / c->cut_bytes[c->blocks] * c->batch * 1e3);
	return cap;
}

int pn_split_best_groups(const struct pn_split_costs *c, int *groups,
			 struct pn_split plans[PN_PLANNER_MAX_STAGES], double *total_img_s)
{
	const int S = c->stages;
	/* pipe[i][n]: best plan of the group of n stages starting at i. */
	static struct pn_split pipe[PN_PLANNER_MAX_STAGES][PN_PLANNER_MAX_STAGES + 1];
	double total[PN_PLANNER_MAX_STAGES + 1];
	int size[PN_PLANNER_MAX_STAGES + 1];
	double lat[PN_PLANNER_MAX_STAGES + 1], bw[PN_PLANNER_MAX_STAGES + 1];
	struct pn_split_costs sub;

	for (int i = 0; i < S; i++)
		for (int n = 1; i + n <= S; n++) {
			sub_costs(c, i, n, &sub, lat, bw);
			if (n > c->blocks || pn_split_best(&sub, &pipe[i][n]) < 0)
				pipe[i][n].img_s = -1.0;
		}
	/* total[j]: best summed throughput of the first j stages in groups. */
	total[0] = 0.0;
	for (int j = 1; j <= S; j++) {
		total[j] = -1.0;
		for (int n = j; n >= 1; n--) { /* on a tie, fewer and longer pipelines */
			const struct pn_split *p = &pipe[j - n][n];
			if (p->img_s < 0)
				continue;
			double t = total[j - n] + p->img_s;
			if (t > total[j] * (1.0 + TIE)) {
				total[j] = t;
				size[j] = n;
			}
		}
	}
	/* Held by the coordinator's links, groups are worth no more than the
	 * one pipeline that reaches the same figure. */
	double cap = coordinator_img_s(c);
	if (total[S] > cap && pipe[0][S].img_s >= cap * (1.0 - TIE)) {
		size[S] = S;
		total[S] = pipe[0][S].img_s;
	}
	int ng = 0, order[PN_PLANNER_MAX_STAGES];
	for (int j = S; j > 0; j -= size[j])
		order[ng++] = size[j];
	const double share = total[S] > cap ? cap / total[S] : 1.0;
	for (int g = 0, first = 0; g < ng; g++) {
		groups[g] = order[ng - 1 - g];
		plans[g] = pipe[first][groups[g]];
		first += groups[g];
		/* Each group's part of what the coordinator's links carry, in
		 * proportion to what it computes: the hop 0 it waits on. */
		if (share < 1.0) {
			plans[g].img_s *= share;
			plans[g].bottleneck_ms /= share;
			plans[g].bottleneck = -1;
		}
	}
	*total_img_s = fmin(total[S], cap);
	return ng;
}

void pn_link_fit(const double bytes[2], const double ms[2], double *latency_ms,
		 double *bytes_per_ms)
{
	double ds = bytes[1] - bytes[0], dt = ms[1] - ms[0];
	double lo = bytes[1] / fmax(ms[1], 1e-6), hi = PN_LINK_FIT_MAX * lo;
	double bw = dt > 1e-6 && ds > 0 ? fmax(ds / dt, lo) : lo;
	/* Held to the bound, the line goes through the large transfer, the
	 * one to trust. */
	int held = bw > hi;
	if (held)
		bw = hi;
	double lat = held ? ms[1] - bytes[1] / bw : ms[0] - bytes[0] / bw;
	*bytes_per_ms = bw;
	*latency_ms = lat > 0 ? lat : 0;
}
