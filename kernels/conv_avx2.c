/* Full 3x3 convolution (the stem: padding 1, stride 1 or 2, bias, optional
 * ReLU6) for AVX2 and FMA, vectorised over output channels 16 at a time
 * with masked tails; matches pn_conv3x3_ref (conv_ref.c) up to rounding:
 * each output sums bias, then ky, kx, cin ascending, with fused
 * multiply-adds. Inside the image four neighbouring outputs share each
 * weight load; the first and last outputs of a row leave out their missing
 * column. */
#include <immintrin.h>

#include "x86.h"

#define VL 8
#define TX 4

static const int32_t lane_ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1};

/* Lanes [0, count) of a ymm, any count. */
static inline __m256i lanes(ptrdiff_t count)
{
	count = count < 0 ? 0 : count > VL ? VL : count;
	return _mm256_loadu_si256((const __m256i *)(lane_ones + 8 - count));
}

static inline __attribute__((always_inline)) __m256 ld(const float *p, __m256i mask,
						       const int masked)
{
	return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

/* Outputs [ox0, ox0 + t) of one row, channels [co, co + 2 * VL): input
 * column ox0 * s - 1 + kx is at r[ky] + (ix0 + kx) * cin, r[ky] NULL
 * outside the image. All taps are inside the image but kx = 0 when `lft`
 * and kx = 2 when `rgt` (then t is 1). */
static inline __attribute__((always_inline)) void
px(const struct pn_conv_args *a, const float *const r[3], ptrdiff_t ix0, float *o, ptrdiff_t co,
   __m256i m0, __m256i m1, const int masked, const int t, const int lft, const int rgt)
{
	const ptrdiff_t cin = a->cin, cout = a->cout, s = a->stride;
	__m256 acc[TX][2];
	const __m256 b0 = ld(a->bias + co, m0, masked), b1 = ld(a->bias + co + VL, m1, masked);
#pragma GCC unroll 4
	for (int i = 0; i < t; i++) {
		acc[i][0] = b0;
		acc[i][1] = b1;
	}
#pragma GCC unroll 3
	for (int ky = 0; ky < 3; ky++) {
		if (!r[ky])
			continue;
#pragma GCC unroll 3
		for (int kx = 0; kx < 3; kx++) {
			if ((lft && kx == 0) || (rgt && kx == 2))
				continue;
			const float *xp = r[ky] + (ix0 + kx) * cin;
			const float *wk = a->weights + (ky * 3 + kx) * cin * cout + co;
			for (ptrdiff_t ci = 0; ci < cin; ci++) {
				const __m256 w0 = ld(wk + ci * cout, m0, masked);
				const __m256 w1 = ld(wk + ci * cout + VL, m1, masked);
#pragma GCC unroll 4
				for (int i = 0; i < t; i++) {
					const __m256 xv =
						_mm256_broadcast_ss(xp + i * s * cin + ci);
					acc[i][0] = _mm256_fmadd_ps(xv, w0, acc[i][0]);
					acc[i][1] = _mm256_fmadd_ps(xv, w1, acc[i][1]);
				}
			}
		}
	}
	const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
#pragma GCC unroll 4
	for (int i = 0; i < t; i++) {
#pragma GCC unroll 2
		for (int v = 0; v < 2; v++) {
			__m256 y = acc[i][v];
			/* max(0, y) then min(6, y) keep NaN and -0 as pn_relu6 does */
			if (a->relu6)
				y = _mm256_min_ps(six, _mm256_max_ps(zero, y));
			float *p = o + i * cout + co + v * VL;
			if (masked)
				_mm256_maskstore_ps(p, v ? m1 : m0, y);
			else
				_mm256_storeu_ps(p, y);
		}
	}
}

/* Output row oy, channels [co, co + 2 * VL). */
static inline __attribute__((always_inline)) void row(const struct pn_conv_args *a, int oy,
						      float *orow, ptrdiff_t co, __m256i m0,
						      __m256i m1, const int masked)
{
	const ptrdiff_t s = a->stride, cout = a->cout;
	const float *r[3];
	for (int ky = 0; ky < 3; ky++) {
		const int iy = oy * a->stride - 1 + ky;
		r[ky] = iy < 0 || iy >= a->in_h ? NULL : a->in + (ptrdiff_t)iy * a->in_w * a->cin;
	}
	/* outputs 1 <= ox < hi read columns ox * s - 1 .. ox * s + 1 < in_w;
	 * at most one output past them misses its last column */
	int hi = a->in_w >= 2 ? (a->in_w - 2) / a->stride + 1 : 1;
	if (hi > a->out_w)
		hi = a->out_w;
	if (a->in_w >= 2)
		px(a, r, -1, orow, co, m0, m1, masked, 1, 1, 0);
	else
		px(a, r, -1, orow, co, m0, m1, masked, 1, 1, 1);
	int ox = 1;
	for (; ox + TX <= hi; ox += TX)
		px(a, r, ox * s - 1, orow + ox * cout, co, m0, m1, masked, TX, 0, 0);
	for (; ox < hi; ox++)
		px(a, r, ox * s - 1, orow + ox * cout, co, m0, m1, masked, 1, 0, 0);
	for (; ox < a->out_w; ox++)
		px(a, r, ox * s - 1, orow + ox * cout, co, m0, m1, masked, 1, 0, 1);
}

static void row_full(const struct pn_conv_args *a, int oy, float *orow, ptrdiff_t co)
{
	row(a, oy, orow, co, lanes(VL), lanes(VL), 0);
}

static void row_masked(const struct pn_conv_args *a, int oy, float *orow, ptrdiff_t co, __m256i m0,
		       __m256i m1)
{
	row(a, oy, orow, co, m0, m1, 1);
}

void pn_conv3x3_avx2(const struct pn_conv_args *a)
{
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		float *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * a->cout;
		for (ptrdiff_t co = 0; co < a->cout; co += 2 * VL) {
			if (a->cout - co >= 2 * VL)
				row_full(a, oy, orow, co);
			else
				row_masked(a, oy, orow, co, lanes(a->cout - co),
					   lanes(a->cout - co - VL));
		}
	}
}
