/* Depthwise 3x3 convolution, padding 1, stride 1 or 2, bias and ReLU6,
 * vectorised over channels with NEON; matches pn_dw3x3_ref
 * (depthwise_ref.c): each output sums bias, then ky, kx ascending over the
 * taps inside the image, with fused multiply-adds. One output row at a
 * time, a block of channels at a time (8 on aarch64, 4 on ARMv7) with its
 * nine weight vectors held in registers across the row; the last c % 4
 * channels take the scalar path. Input rows are addressed as in the
 * banded pn_dw_args: row y at in + (y - in_y0) * in_w * c. */
#include "neon.h"
#include "ref.h"

#ifdef __aarch64__
#define DW_NV 2
#else
#define DW_NV 1
#endif

/* Channels [ch, ch + 4 * nv) of one output row; rows[ky] is the input row
 * of tap ky, NULL when it falls in the padding. */
static inline __attribute__((always_inline)) void
dw_row_vec(const struct pn_dw_args *a, const float *const rows[3], float *orow, int ch, int nv)
{
	const int c = a->c, s = a->stride, in_w = a->in_w;
	float32x4_t w[9][DW_NV], bias[DW_NV];

#pragma GCC unroll 9
	for (int t = 0; t < 9; t++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			w[t][v] = vld1q_f32(a->weights + (size_t)t * c + ch + 4 * v);
#pragma GCC unroll 2
	for (int v = 0; v < nv; v++)
		bias[v] = vld1q_f32(a->bias + ch + 4 * v);

	for (int ox = 0; ox < a->out_w; ox++) {
		const int ix0 = ox * s - 1;
		const int left = ix0 >= 0, right = ix0 + 2 < in_w;
		float32x4_t acc[DW_NV];
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			acc[v] = bias[v];
#pragma GCC unroll 3
		for (int ky = 0; ky < 3; ky++) {
			if (!rows[ky])
				continue;
#pragma GCC unroll 3
			for (int kx = 0; kx < 3; kx++) {
				if ((kx == 0 && !left) || (kx == 2 && !right))
					continue;
				const float *px = rows[ky] + (size_t)(ix0 + kx) * c + ch;
#pragma GCC unroll 2
				for (int v = 0; v < nv; v++)
					acc[v] = vfmaq_f32(acc[v], vld1q_f32(px + 4 * v),
							   w[ky * 3 + kx][v]);
			}
		}
		float *o = orow + (size_t)ox * c + ch;
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			vst1q_f32(o + 4 * v, pn_neon_relu6(acc[v]));
	}
}

/* Channels [ch, c) of one output row, one at a time. */
static void dw_row_scalar(const struct pn_dw_args *a, const float *const rows[3], float *orow,
			  int ch)
{
	const int c = a->c;
	for (int ox = 0; ox < a->out_w; ox++) {
		const int ix0 = ox * a->stride - 1;
		for (int k = ch; k < c; k++) {
			float acc = a->bias[k];
			for (int ky = 0; ky < 3; ky++) {
				if (!rows[ky])
					continue;
				for (int kx = 0; kx < 3; kx++) {
					int ix = ix0 + kx;
					if (ix < 0 || ix >= a->in_w)
						continue;
					acc += rows[ky][(size_t)ix * c + k] *
					       a->weights[(ky * 3 + kx) * c + k];
				}
			}
			orow[(size_t)ox * c + k] = pn_relu6(acc);
		}
	}
}

void pn_dw3x3_neon(const struct pn_dw_args *a)
{
	const int c = a->c;
	const size_t in_row = (size_t)a->in_w * c;

	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		const float *rows[3];
		for (int ky = 0; ky < 3; ky++) {
			int iy = oy * a->stride - 1 + ky;
			rows[ky] = iy >= 0 && iy < a->in_h
					   ? a->in + (size_t)(iy - a->in_y0) * in_row
					   : NULL;
		}
		float *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * c;
		int ch = 0;
		for (; ch + 4 * DW_NV <= c; ch += 4 * DW_NV)
			dw_row_vec(a, rows, orow, ch, DW_NV);
#if DW_NV > 1
		for (; ch + 4 <= c; ch += 4)
			dw_row_vec(a, rows, orow, ch, 1);
#endif
		if (ch < c)
			dw_row_scalar(a, rows, orow, ch);
	}
}
