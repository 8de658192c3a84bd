/* The split planner: from measured per-block compute times of each stage
 * and measured links, predict the steady-state throughput and latency of
 * every way of cutting the blocks into contiguous non-empty ranges, one
 * per stage, and find the best exactly (dynamic programming over cut
 * points, not a greedy search). Pure computation: no I/O.
 *
 * Model of a pipeline with stages 0..S-1 in a chain: hop 0 carries the
 * input batch from the coordinator to stage 0, hop s (1 <= s < S) carries
 * the activations at the cut between stage s-1 and s, hop S carries the
 * logits back. A hop costs latency + bytes / bandwidth. A stage's time is
 * its blocks' compute plus the CPU its frames cost it (checksums, copies,
 * system calls: bytes in and out times its ms per byte), which its one
 * thread cannot overlap with computing; a hop's transfer over the wire
 * does overlap. In steady state a batch leaves the pipeline every
 * max(stage time, hop transfer) ms, so throughput = batch / bottleneck;
 * latency is the sum of all of them.
 */
#ifndef PN_PLANNER_H
#define PN_PLANNER_H

#include <stddef.h>

#define PN_PLANNER_MAX_STAGES 16
#define PN_PLANNER_MAX_BLOCKS 64

struct pn_split_costs {
	int stages, blocks, batch;
	/* block_ms[s * blocks + b]: ms for stage s to compute block b on one batch. */
	const double *block_ms;
	/* cut_bytes[c], 0 <= c <= blocks: bytes per batch crossing a cut before
	 * block c (c = 0: the input images, c = blocks: the logits). */
	const double *cut_bytes;
	/* Per hop h, 0 <= h <= stages: latency in ms and bandwidth in bytes/ms.
	 * A bandwidth <= 0 means the hop is free (same process). */
	const double *hop_latency_ms;
	const double *hop_bytes_per_ms;
	/* Per stage s: the CPU ms its frames cost it per byte in and out;
	 * NULL: none. */
	const double *stage_ms_per_byte;
};

struct pn_split {
	int stages;
	/* Stage s runs blocks [cuts[s], cuts[s + 1]); cuts[0] = 0,
	 * cuts[stages] = blocks. */
	int cuts[PN_PLANNER_MAX_STAGES + 1];
	double stage_ms[PN_PLANNER_MAX_STAGES];
	double hop_ms[PN_PLANNER_MAX_STAGES + 1];
	double bottleneck_ms, latency_ms, img_s;
	/* The slowest part: stage s is s, hop h is -(h + 1). */
	int bottleneck;
};

/* Checks the costs (counts in range, finite non-negative numbers); returns
 * 0 or -1 with a message. */
int pn_split_check(const struct pn_split_costs *c, char *err, size_t errlen);

/* Fills out with the prediction for the given cut points (split[i] is the
 * first block of stage i + 1, strictly increasing, within 1..blocks-1).
 * Returns -1 if the split is not valid for these costs. */
int pn_split_evaluate(const struct pn_split_costs *c, const int *split, struct pn_split *out);

/* The plan with the highest throughput; among equals (within 1e-9
 * relative), the lowest latency. Returns 0, or -1 when there are more
 * stages than blocks. */
int pn_split_best(const struct pn_split_costs *c, struct pn_split *out);

/* Calls fn for every valid split, in lexicographic order of the cuts,
 * stopping early when fn returns nonzero. Returns the number visited. */
long pn_split_each(const struct pn_split_costs *c,
		   int (*fn)(const struct pn_split *plan, void *arg), void *arg);

/* Replication: the stages divided into consecutive groups, each group a
 * pipeline of its own over the whole model fed round-robin by the
 * coordinator (a group of one stage runs every block). Total throughput
 * is the sum of the groups', held to what the coordinator's own links
 * carry (every group's input leaves by hop 0's bandwidth, its logits come
 * back by the last hop's); held there, each group's plan has its share
 * of it, with hop 0 as bottleneck, and one pipeline that reaches it wins.
 * groups[g] is the number of stages in group g; plans[g] its best split
 * (over the costs of its stages only). Returns the number of groups. The
 * single-pipeline plan is among the candidates. */
int pn_split_best_groups(const struct pn_split_costs *c, int *groups,
			 struct pn_split plans[PN_PLANNER_MAX_STAGES], double *total_img_s);

/* A hop's latency and bandwidth from the fastest transfer of `bytes[0]`
 * (small) and of `bytes[1]` (large) bytes, ms[0] and ms[1]: the line
 * through the two points, its slope held between large / ms[1] (all of
 * the large transfer's time spent on its bytes) and PN_LINK_FIT_MAX times
 * that (latency at most 1 - 1 / PN_LINK_FIT_MAX of it). The large size is
 * a run's biggest frame, whose time is mostly bytes; a slope beyond the
 * bound comes from a small transfer slowed by a busy loop turn, not from
 * the link, so the line held to the bound goes through the large point. */
#define PN_LINK_FIT_MAX 2.0
void pn_link_fit(const double bytes[2], const double ms[2], double *latency_ms,
		 double *bytes_per_ms);

#endif
