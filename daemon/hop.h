/* What crosses a hop between stages, in bytes: the planner's charge for a
 * cut, the same in a run's coordinator and in `pipenet plan`. */
#ifndef PN_HOP_H
#define PN_HOP_H

#include <stddef.h>

struct pn_model;

/* Bytes of a frame of n images crossing the cut before block `cut` with
 * wire `dtype`: source images into block 0 (the first stage preprocesses
 * them), f32 logits after the last block, activations between. */
size_t pn_cut_frame_bytes(const struct pn_model *m, int cut, size_t n, int dtype);

#endif
