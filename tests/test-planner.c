/* The split planner against brute force: on random cost tables, the DP's
 * best plan has the highest throughput any split reaches and, among those,
 * the lowest latency; the grouped (replicated) plan is the best of every
 * way of cutting the stages into consecutive pipelines. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planner.h"
#include "tap.h"

struct brute {
	double img_s, latency;
};

static int visit(const struct pn_split *p, void *arg)
{
	struct brute *b = arg;
	if (p->img_s > b->img_s * (1 + 1e-9) ||
	    (p->img_s >= b->img_s * (1 - 1e-9) && p->latency_ms < b->latency)) {
		b->img_s = p->img_s;
		b->latency = p->latency_ms;
	}
	return 0;
}

static double urand(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (double)(*seed >> 8) / (double)(1u << 24);
}

struct table {
	double block_ms[PN_PLANNER_MAX_STAGES * PN_PLANNER_MAX_BLOCKS];
	double cut_bytes[PN_PLANNER_MAX_BLOCKS + 1];
	double lat[PN_PLANNER_MAX_STAGES + 1], bw[PN_PLANNER_MAX_STAGES + 1];
	double per_byte[PN_PLANNER_MAX_STAGES];
	struct pn_split_costs c;
};

static void random_table(struct table *t, int stages, int blocks, unsigned *seed)
{
	for (int i = 0; i < stages * blocks; i++)
		/* coarse values make exact ties common, which tests the tie-break */
		t->block_ms[i] = floor(urand(seed) * 8) + (urand(seed) < 0.1 ? 20 : 0);
	for (int i = 0; i <= blocks; i++)
		t->cut_bytes[i] = floor(urand(seed) * 1e6);
	for (int h = 0; h <= stages; h++) {
		t->lat[h] = floor(urand(seed) * 3);
		t->bw[h] = urand(seed) < 0.2 ? 0.0 : 1e5 + floor(urand(seed) * 1e6);
	}
	/* Half the tables charge the stages for their frames' bytes too. */
	int charged = urand(seed) < 0.5;
	for (int s = 0; s < stages; s++)
		t->per_byte[s] = floor(urand(seed) * 4) * 1e-6;
	t->c = (struct pn_split_costs){stages,	     blocks, 8,	    t->block_ms,
				       t->cut_bytes, t->lat, t->bw, charged ? t->per_byte : NULL};
}

/* img/s the coordinator's uplink (hop 0) and downlink (the last hop)
 * carry for all groups together. */
static double coordinator_cap(const struct pn_split_costs *c)
{
	double cap = INFINITY;
	if (c->hop_bytes_per_ms[0] > 0 && c->cut_bytes[0] > 0)
		cap = c->hop_bytes_per_ms[0] * 1e3 * c->batch / c->cut_bytes[0];
	if (c->hop_bytes_per_ms[c->stages] > 0 && c->cut_bytes[c->blocks] > 0)
		cap = fmin(cap, c->hop_bytes_per_ms[c->stages] * 1e3 * c->batch /
					c->cut_bytes[c->blocks]);
	return cap;
}

/* Best total throughput over all compositions of the stages, by brute
 * force: every group's best plan comes from brute force too. */
static double brute_groups(const struct table *t, int first, int left)
{
	if (left == 0)
		return 0.0;
	double best = -1.0;
	for (int n = 1; n <= left; n++) {
		struct pn_split_costs sub = t->c;
		double lat[PN_PLANNER_MAX_STAGES + 1], bw[PN_PLANNER_MAX_STAGES + 1];
		sub.stages = n;
		sub.block_ms = t->block_ms + (size_t)first * t->c.blocks;
		if (t->c.stage_ms_per_byte)
			sub.stage_ms_per_byte = t->per_byte + first;
		for (int h = 0; h <= n; h++) {
			lat[h] = t->lat[first + h];
			bw[h] = t->bw[first + h];
		}
		sub.hop_latency_ms = lat;
		sub.hop_bytes_per_ms = bw;
		if (n > sub.blocks)
			continue;
		struct brute b = {-1.0, INFINITY};
		pn_split_each(&sub, visit, &b);
		double rest = brute_groups(t, first + n, left - n);
		if (rest >= 0 && b.img_s + rest > best)
			best = b.img_s + rest;
	}
	return best;
}

int main(void)
{
	unsigned seed = 42;
	int bad = 0, cases = 0, bad_groups = 0;
	static struct table t;
	char err[256];

	for (int stages = 1; stages <= 5; stages++)
		for (int blocks = stages; blocks <= 9; blocks++)
			for (int rep = 0; rep < 30; rep++) {
				random_table(&t, stages, blocks, &seed);
				struct pn_split p;
				struct brute b = {-1.0, INFINITY};
				if (pn_split_check(&t.c, err, sizeof err) < 0 ||
				    pn_split_best(&t.c, &p) < 0) {
					bad++;
					continue;
				}
				pn_split_each(&t.c, visit, &b);
				cases++;
				if (fabs(p.img_s - b.img_s) > 1e-9 * b.img_s ||
				    fabs(p.latency_ms - b.latency) > 1e-9 * b.latency) {
					if (bad++ < 5)
						tap_diag("S=%d N=%d: DP %.6g img/s %.6g ms, brute "
							 "%.6g "
							 "img/s %.6g ms",
							 stages, blocks, p.img_s, p.latency_ms,
							 b.img_s, b.latency);
				}
				/* The cuts the DP reports give the throughput it claims. */
				struct pn_split again;
				if (pn_split_evaluate(&t.c, p.cuts + 1, &again) < 0 ||
				    again.img_s != p.img_s)
					bad++;
				if (stages <= 4) {
					int groups[PN_PLANNER_MAX_STAGES];
					static struct pn_split plans[PN_PLANNER_MAX_STAGES];
					double total;
					int ng = pn_split_best_groups(&t.c, groups, plans, &total);
					double want = fmin(brute_groups(&t, 0, stages),
							   coordinator_cap(&t.c));
					int sum = 0;
					for (int g = 0; g < ng; g++)
						sum += groups[g];
					if (fabs(total - want) > 1e-9 * want || sum != stages)
						bad_groups++;
				}
			}
	tap_ok(bad == 0,
	       "best split equals brute force (throughput, then latency) in %d random cases",
	       cases);
	tap_ok(bad_groups == 0,
	       "best grouping equals brute force over every composition of stages");

	/* Enumeration visits every combination: C(18, 2) = 153 for 3 stages. */
	random_table(&t, 3, 19, &seed);
	struct brute b = {-1.0, INFINITY};
	tap_ok(pn_split_each(&t.c, visit, &b) == 153, "3 stages over 19 blocks: 153 splits");

	/* Invalid inputs are refused with a reason. */
	random_table(&t, 3, 19, &seed);
	t.block_ms[5] = NAN;
	tap_ok(pn_split_check(&t.c, err, sizeof err) < 0 && strstr(err, "block 5"),
	       "a NaN block time is refused: %s", err);
	random_table(&t, 5, 4, &seed);
	tap_ok(pn_split_check(&t.c, err, sizeof err) < 0, "more stages than blocks is refused: %s",
	       err);
	int split_bad[2] = {7, 7};
	struct pn_split p;
	random_table(&t, 3, 19, &seed);
	tap_ok(pn_split_evaluate(&t.c, split_bad, &p) < 0,
	       "a split that is not increasing is refused");

	/* The largest case, 16 stages over 19 blocks; time reported, not asserted. */
	random_table(&t, 16, 19, &seed);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = pn_split_best(&t.c, &p);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tap_ok(rc == 0 && p.cuts[16] == 19, "16 stages over 19 blocks planned");
	tap_diag("16 stages x 19 blocks: %.3f ms",
		 (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);

	/* A hand-checked case: two equal stages, one expensive block. */
	double ms[2 * 4] = {1, 1, 6, 1, 1, 1, 6, 1}, bytes[5] = {0, 0, 0, 0, 0};
	double lat[3] = {0, 0, 0}, bw[3] = {0, 0, 0};
	struct pn_split_costs hc = {2, 4, 8, ms, bytes, lat, bw, NULL};
	pn_split_best(&hc, &p);
	tap_ok(p.cuts[1] == 2, "blocks 1,1 | 6,1: cut at %d (expected 2)", p.cuts[1]);
	tap_ok(fabs(p.bottleneck_ms - 7.0) < 1e-12, "bottleneck 7 ms (6 + 1 on one side)");

	/* Frames cost the stages CPU: 1 MB across the cut after block 1 at
	 * 1e-6 ms a byte is 1 ms on each side, which moves the cut. */
	double big[5] = {0, 0, 1e6, 0, 0}, per_byte[2] = {1e-6, 1e-6};
	double flat[2 * 4] = {1, 1, 1, 1, 1, 1, 1, 1};
	struct pn_split_costs fc = {2, 4, 8, flat, big, lat, bw, per_byte};
	pn_split_evaluate(&fc, (int[]){2}, &p);
	tap_ok(fabs(p.stage_ms[0] - 3.0) < 1e-12 && fabs(p.stage_ms[1] - 3.0) < 1e-12,
	       "a 1 MB cut at 1e-6 ms a byte adds 1 ms to both stages (%g, %g ms)", p.stage_ms[0],
	       p.stage_ms[1]);
	pn_split_best(&fc, &p);
	tap_ok(p.cuts[1] != 2 && fabs(p.bottleneck_ms - 3.0) < 1e-12,
	       "the best split avoids the costly cut: %d, %g ms", p.cuts[1], p.bottleneck_ms);
	per_byte[1] = NAN;
	tap_ok(pn_split_check(&fc, err, sizeof err) < 0 && strstr(err, "stage 1"),
	       "a NaN byte cost is refused: %s", err);

	/* Two stages whose blocks take 3 and 1 ms a batch of 8: one pipeline
	 * computes 2667 img/s (3 ms), two replicas 4000 (4 ms each). A batch
	 * of source images is 1000 bytes. On a coordinator uplink of 2000
	 * bytes/ms (16,000 img/s) the replicas win; at 200 bytes/ms (1600
	 * img/s) nothing passes it, and one pipeline reaching it wins; at 400
	 * (3200 img/s) the replicas share it. */
	double rep_ms[2 * 2] = {3, 1, 3, 1}, rep_bytes[3] = {1000, 1000, 10};
	double rep_lat[3] = {0, 0, 0}, rep_bw[3] = {2000, 1e9, 1e9};
	struct pn_split_costs rc2 = {2, 2, 8, rep_ms, rep_bytes, rep_lat, rep_bw, NULL};
	int rg[PN_PLANNER_MAX_STAGES];
	static struct pn_split rplans[PN_PLANNER_MAX_STAGES];
	double rtotal;
	int rng = pn_split_best_groups(&rc2, rg, rplans, &rtotal);
	tap_ok(rng == 2 && fabs(rtotal - 4000) < 1e-6,
	       "replicas on a fast coordinator link: %d groups, %g img/s (4000)", rng, rtotal);
	rep_bw[0] = 200;
	rng = pn_split_best_groups(&rc2, rg, rplans, &rtotal);
	tap_ok(rng == 1 && fabs(rtotal - 1600) < 1e-6,
	       "on a slow one nothing passes its 1600 img/s and one pipeline wins: %d group(s), "
	       "%g img/s",
	       rng, rtotal);
	rep_bw[0] = 400;
	rng = pn_split_best_groups(&rc2, rg, rplans, &rtotal);
	tap_ok(rng == 2 && fabs(rtotal - 3200) < 1e-6 && fabs(rplans[0].img_s - 1600) < 1e-6 &&
		       fabs(rplans[1].img_s - 1600) < 1e-6 && rplans[0].bottleneck == -1,
	       "between them the replicas share the link's 3200 img/s (%g + %g), hop 0 the "
	       "bottleneck",
	       rplans[0].img_s, rplans[1].img_s);

	/* The link fit: the line through two timed transfers, bounded. */
	double lk_lat, lk_bw;
	pn_link_fit((double[]){1000, 1001000}, (double[]){1.01, 11.01}, &lk_lat, &lk_bw);
	tap_ok(fabs(lk_bw - 1e5) < 1e-6 && fabs(lk_lat - 1.0) < 1e-9,
	       "a 1 ms latency, 1e5 B/ms link: fitted %g ms, %g B/ms", lk_lat, lk_bw);
	/* A small transfer slowed to 9 ms by a busy turn: the line says
	 * 4e5 B/ms, more than twice the 87,043 B/ms of the large one alone. */
	pn_link_fit((double[]){1000, 1001000}, (double[]){9, 11.5}, &lk_lat, &lk_bw);
	tap_ok(fabs(lk_bw - PN_LINK_FIT_MAX * 1001000 / 11.5) < 1e-6 &&
		       fabs(lk_lat + 1001000 / lk_bw - 11.5) < 1e-9,
	       "a slope from a slow small transfer is held to %g x the large one's rate, "
	       "through the large point: %g B/ms, latency %g ms",
	       PN_LINK_FIT_MAX, lk_bw, lk_lat);
	pn_link_fit((double[]){1000, 1001000}, (double[]){12, 11.5}, &lk_lat, &lk_bw);
	tap_ok(fabs(lk_bw - 1001000 / 11.5) < 1e-6 && lk_lat >= 0,
	       "a large transfer no slower than the small one: its own rate, %g B/ms", lk_bw);
	return tap_done();
}
