/* Image preprocessing exactly as the model card states: pixel / 255,
 * (x - mean[c]) / std[c], then a bilinear resize with half-pixel centres
 * (PyTorch F.interpolate(mode="bilinear", align_corners=False), no
 * antialias) when the model's input size differs from the source's.
 *
 * The work that does not depend on the image is done once, in a plan: the
 * normalised value of every byte per channel (a table of 3 x 256 floats)
 * and the taps (indices and weights) of every output row and column. An
 * image then costs a horizontal pass over the source rows it needs and a
 * vertical blend of two such rows per output row, which the kernel table's
 * `lerp` does. Every element is computed with the same operations in the
 * same order as the direct formula
 *   ty.l0 * (tx.l0 * N(y0, x0) + tx.l1 * N(y0, x1)) +
 *   ty.l1 * (tx.l0 * N(y1, x0) + tx.l1 * N(y1, x1)),
 * so the result is the same to the bit on every kernel variant. */
#ifndef PN_PREPROCESS_H
#define PN_PREPROCESS_H

#include <stdint.h>

#include "ops.h"

/* Largest source and output side a plan takes. */
#define PN_PREP_MAX_SIDE 1024

struct pn_prep;

/* A plan from src x src planar RGB bytes to dst x dst x 3 NHWC floats;
 * NULL when out of memory or a side is not within 1..PN_PREP_MAX_SIDE. */
struct pn_prep *pn_prep_new(int src, int dst, const float mean[3], const float std[3]);
void pn_prep_free(struct pn_prep *p);

/* rgb: planar 3 x src x src bytes; out: NHWC dst x dst x 3 floats. */
void pn_prep_run(const struct pn_prep *p, const struct pn_ops *ops, const uint8_t *rgb, float *out);

#endif
