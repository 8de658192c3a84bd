/* Costs for the planner from the nodes and links, and its predictions. */
#include "coord_internal.h"

size_t cut_bytes(const struct pn_coord *c, int cut, size_t n, int dtype)
{
	return pn_cut_frame_bytes(c->m, cut, n, dtype);
}

int make_costs(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
	       double link_mbit, double link_ms, struct costs *k)
{
	int nb = pn_model_blocks(c->m);
	if (nm < 1 || nm > nb || nb > MAX_BLOCKS)
		return -1;
	for (int i = 0; i < nm; i++) {
		const double *p = node_profile(&c->nodes[members[i]], batch);
		if (!p)
			return -1;
		const struct node *n = &c->nodes[members[i]];
		for (int b = 0; b < nb; b++)
			k->block_ms[i * nb + b] =
				p[b] * (n->speed_ratio > 0 ? n->speed_ratio : 1.0);
		k->per_byte[i] = (n->frame_ns_per_byte_seen > 0 ? n->frame_ns_per_byte_seen
								: n->frame_ns_per_byte) /
				 1e6;
	}
	for (int cut = 0; cut <= nb; cut++)
		k->cut[cut] = (double)cut_bytes(c, cut, (size_t)batch, dtype);
	/* The links: as given, else as measured, else free (not known yet).
	 * Hop h feeds member h (the last: back to the coordinator); links
	 * are measured between neighbours in the full list of stages, so a
	 * hop over a missing stage is not known. */
	for (int h = 0; h <= nm; h++) {
		int from = h ? members[h - 1] : -1, to = h < nm ? members[h] : c->nnodes;
		const struct link *ln = &c->links[to];
		int known = to == from + 1 && ln->state == 2;
		k->lat[h] = link_mbit > 0 ? link_ms : known ? ln->fig.latency_ms : 0;
		k->bw[h] = link_mbit > 0 ? link_mbit * 1e6 / 8 / 1e3 /* bytes per ms */
			   : known	 ? ln->fig.bytes_per_ms
					 : 0;
	}
	k->k = (struct pn_split_costs){.stages = nm,
				       .blocks = nb,
				       .batch = batch,
				       .block_ms = k->block_ms,
				       .cut_bytes = k->cut,
				       .hop_latency_ms = k->lat,
				       .hop_bytes_per_ms = k->bw,
				       .stage_ms_per_byte = k->per_byte};
	return 0;
}

/* The planner's prediction for group g's current split (stages only). */
int predicted(struct pn_coord *c, const struct run *r, const struct group *g, struct pn_split *out)
{
	static struct costs k;
	const struct epoch *ep = EPOCH(r, g->epoch);
	if (g->dropped || g->nranges != ep->nmembers ||
	    make_costs(c, ep->members, ep->nmembers, r->batch, r->dtype, 0, 0, &k) != 0)
		return -1;
	return pn_split_evaluate(&k.k, ep->points, out);
}

/* Group g's current epoch's prediction from the profiles, when they are in. */
void epoch_predict(struct run *r, struct group *g)
{
	struct pn_split p;
	struct epoch *ep = GROUP_EPOCH(g);
	if (predicted(r->c, r, g, &p) == 0) {
		ep->predicted_img_s = p.img_s;
		ep->predicted_latency_ms = p.latency_ms;
	}
}

int plan_best(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
	      struct pn_split *out)
{
	static struct costs k;
	if (make_costs(c, members, nm, batch, dtype, 0, 0, &k) != 0)
		return -1;
	return pn_split_best(&k.k, out);
}

/* Split points that balance MACs over `k` ranges (minimise the largest). */
static int macs_split(const struct pn_model *m, int k, int *points)
{
	int nb = pn_model_blocks(m); /* the last one includes the head */
	uint64_t pre[64 + 1] = {0};
	for (int i = 0; i < nb; i++)
		pre[i + 1] = pre[i] + pn_model_block_macs(m, i);
	/* best[j][i]: the smallest bottleneck of blocks [0, i) in j ranges */
	static uint64_t best[MAX_RANGES + 1][65];
	static int cut[MAX_RANGES + 1][65];
	for (int i = 0; i <= nb; i++)
		best[1][i] = pre[i];
	for (int j = 2; j <= k; j++)
		for (int i = j; i <= nb; i++) {
			best[j][i] = UINT64_MAX;
			for (int s = j - 1; s < i; s++) {
				uint64_t v = best[j - 1][s] > pre[i] - pre[s] ? best[j - 1][s]
									      : pre[i] - pre[s];
				if (v < best[j][i]) {
					best[j][i] = v;
					cut[j][i] = s;
				}
			}
		}
	for (int j = k, i = nb; j > 1; j--) {
		i = cut[j][i];
		points[j - 2] = i;
	}
	return k - 1;
}

/* The one way the coordinator splits over `members` by itself: the
 * planner's best plan when their block times for `batch` are known (batch
 * 0: not asked), else MACs balanced over them; with no members, no points:
 * the coordinator computes every block. */
enum split_by split_over(struct pn_coord *c, const int *members, int nm, int batch, int dtype,
			 int *points, int *npoints)
{
	struct pn_split best;
	*npoints = 0;
	if (nm < 1)
		return SPLIT_ALONE;
	if (batch > 0 && plan_best(c, members, nm, batch, dtype, &best) == 0) {
		*npoints = best.stages - 1;
		memcpy(points, best.cuts + 1, (size_t)*npoints * sizeof(int));
		return SPLIT_PLANNER;
	}
	*npoints = macs_split(c->m, nm, points);
	return SPLIT_MACS;
}
