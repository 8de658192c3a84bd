/* The int8 stem through a variant's pointwise kernel, shared by the x86
 * and NEON tables. */
#ifndef PN_QIM2COL_H
#define PN_QIM2COL_H

#include <string.h>

#include "qops.h"

#define PN_QIM2COL_INLINE static inline __attribute__((always_inline))

/* The stem as a pointwise product (pn_qconv3x3_ref's result): each output
 * pixel's 3x3 x cin patch is copied into a row of k = 9 cin bytes
 * (padding is in_zp, the real 0, as in the reference), the weights
 * [3][3][cin][cout] turned into the pointwise [cout][k] and packed by the
 * variant's own pw_pack once per call, and rows of up to PN_QIM2COL_ROWS
 * pixels go through its pw. Plain C, so every SIMD file may include it;
 * returns 0 when the shape exceeds the stack buffers (the caller then
 * runs its own loop). */
#define PN_QIM2COL_ROWS 128
#define PN_QIM2COL_KMAX 36
#define PN_QIM2COL_NMAX 64
#define PN_QIM2COL_PACKED 8192
PN_QIM2COL_INLINE int pn_qconv3x3_im2col(const struct pn_qconv_args *a,
					 size_t (*packed_bytes)(int, int),
					 void (*pack)(const int8_t *, int, int, int8_t *),
					 void (*pw)(const int8_t *, int8_t *, const int8_t *, int,
						    int, int, int32_t, const struct pn_qout *))
{
	/* k rounded up to 4 (weight 0, activation in_zp: no term), so that
	 * the kernels take whole groups of 4 and no partial-group copy. */
	const int cin = a->cin, cout = a->cout, k = (9 * cin + 3) & ~3, s = a->stride;
	if (k > PN_QIM2COL_KMAX || cout > PN_QIM2COL_NMAX ||
	    packed_bytes(k, cout) > PN_QIM2COL_PACKED)
		return 0;
	int8_t wt[PN_QIM2COL_KMAX * PN_QIM2COL_NMAX];
	int8_t packed[PN_QIM2COL_PACKED] __attribute__((aligned(64)));
	int8_t rows[PN_QIM2COL_ROWS * PN_QIM2COL_KMAX];
	for (int j = 0; j < cout; j++)
		for (int i = 0; i < k; i++)
			wt[j * k + i] = i < 9 * cin ? a->weights[(size_t)i * cout + j] : 0;
	pack(wt, k, cout, packed);
	const int8_t zp = (int8_t)a->in_zp;
	const size_t npix = (size_t)(a->out_y1 - a->out_y0) * a->out_w;
	int oy = a->out_y0, ox = 0;
	for (size_t p0 = 0; p0 < npix; p0 += PN_QIM2COL_ROWS) {
		const int m = npix - p0 < PN_QIM2COL_ROWS ? (int)(npix - p0) : PN_QIM2COL_ROWS;
		for (int r = 0; r < m; r++, ox = ox + 1 < a->out_w ? ox + 1 : (oy++, 0)) {
			int8_t *row = rows + (size_t)r * k;
			for (int i = 9 * cin; i < k; i++)
				row[i] = zp;
			for (int ky = 0; ky < 3; ky++) {
				const int iy = oy * s - 1 + ky, ix0 = ox * s - 1;
				if (iy >= 0 && iy < a->in_h && ix0 >= 0 && ix0 + 2 < a->in_w) {
					const int8_t *src =
						a->in + ((size_t)iy * a->in_w + ix0) * cin;
					if (cin == 3) { /* the RGB stem: 9 bytes */
						memcpy(row + ky * 9, src, 8);
						row[ky * 9 + 8] = src[8];
					} else {
						memcpy(row + ky * 3 * cin, src, (size_t)(3 * cin));
					}
					continue;
				}
				for (int kx = 0; kx < 3; kx++) {
					const int ix = ox * s - 1 + kx;
					int8_t *d = row + (ky * 3 + kx) * cin;
					if (iy < 0 || iy >= a->in_h || ix < 0 || ix >= a->in_w)
						for (int ci = 0; ci < cin; ci++)
							d[ci] = zp;
					else
						for (int ci = 0; ci < cin; ci++)
							d[ci] = a->in[((size_t)iy * a->in_w + ix) *
									      cin +
								      ci];
				}
			}
		}
		pw(rows, a->out + p0 * cout, packed, m, k, cout, a->in_zp, &a->q);
	}
	return 1;
}

#endif
