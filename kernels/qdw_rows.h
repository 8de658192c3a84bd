/* The geometry of the int8 depthwise 3x3 shared by its SIMD variants:
 * which input row and column each tap of an output pixel reads, with
 * padding read from a row of in_zp (the real 0). Plain C. */
#ifndef PN_QDW_ROWS_H
#define PN_QDW_ROWS_H

#include <stddef.h>

#include "qops.h"

/* Output columns [1, pn_qdw_inner_end) read no padding column. */
static inline int pn_qdw_inner_end(int in_w, int stride)
{
	return in_w >= 3 ? (in_w - 2) / stride + 1 : 1;
}

/* The input rows of output row oy from channel c0: a row outside the
 * image is `pad` with step 0. */
static inline void pn_qdw_rows(const struct pn_qdw_args *a, int oy, int c0, const int8_t *pad,
			       const int8_t *rows[3], size_t step[3])
{
	for (int ky = 0; ky < 3; ky++) {
		int iy = oy * a->stride - 1 + ky;
		int in = iy >= 0 && iy < a->in_h;
		rows[ky] = in ? a->in + (size_t)(iy - a->in_y0) * a->in_w * a->c + c0 : pad;
		step[ky] = in ? (size_t)a->c : 0;
	}
}

/* The nine taps of output column ox (`inner`: it reads no padding column). */
static inline __attribute__((always_inline)) void
pn_qdw_taps(const int8_t *const rows[3], const size_t step[3], int ox, int stride, int in_w,
	    int inner, const int8_t *pad, const int8_t *px[9])
{
	const int ix0 = ox * stride - 1;
	if (inner) {
#pragma GCC unroll 3
		for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
			for (int kx = 0; kx < 3; kx++)
				px[ky * 3 + kx] = rows[ky] + (size_t)(ix0 + kx) * step[ky];
		return;
	}
	for (int ky = 0; ky < 3; ky++)
		for (int kx = 0; kx < 3; kx++) {
			int ix = ix0 + kx;
			px[ky * 3 + kx] =
				ix >= 0 && ix < in_w ? rows[ky] + (size_t)ix * step[ky] : pad;
		}
}

#endif
