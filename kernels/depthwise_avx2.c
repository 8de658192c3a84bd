/* Depthwise 3x3 convolution (padding 1, stride 1 or 2, bias, ReLU6) for
 * AVX2 and FMA, 8 channels per vector with a masked tail; matches pn_dw3x3_ref
 * (depthwise_ref.c) up to rounding: each output sums bias, then ky, kx
 * ascending, with fused multiply-adds.
 *
 * A row is walked pixel-major, all channels of a run of outputs before the
 * next run (memory is read in order). Inside the image a run of 8 outputs
 * (4 for stride 2; then shorter runs for the rest of a row) loads each
 * input vector once: 10 columns per row instead of 24 (9 instead of 12).
 * The first and last outputs leave out their missing column. Rows and
 * columns outside the image are never read. */
#include <immintrin.h>

#include "x86.h"

#define VL 8
#define TX 8

static const int32_t lane_ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1};

/* Lanes [0, count) of a ymm, 0 <= count <= 8. */
static inline __m256i lanes(ptrdiff_t count)
{
	return _mm256_loadu_si256((const __m256i *)(lane_ones + 8 - count));
}

static inline __attribute__((always_inline)) __m256 ld(const float *p, __m256i mask,
						       const int masked)
{
	return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

static inline __attribute__((always_inline)) void st(float *p, __m256 x, __m256i mask,
						     const int masked)
{
	/* max(0, x) then min(6, x) keep NaN and -0 as pn_relu6 does */
	x = _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(_mm256_setzero_ps(), x));
	if (masked)
		_mm256_maskstore_ps(p, mask, x);
	else
		_mm256_storeu_ps(p, x);
}

/* Outputs [ox0, ox0 + t) of one row, channels [ch, ch + VL): input column
 * ox0 * s - 1 + j of row ky is at r[ky] + (ix0 + j) * c, r[ky] NULL outside
 * the image. Every tap is inside the image but kx = 0 of the first output
 * when `lft` and kx = 2 of the last one when `rgt`; those columns are not
 * read. */
static inline __attribute__((always_inline)) void run(const float *const r[3], ptrdiff_t ix0,
						      ptrdiff_t c, float *o, const float *w,
						      const float *bias, ptrdiff_t ch, __m256i mask,
						      const int masked, const int s, const int t,
						      const int lft, const int rgt)
{
	__m256 acc[TX];
	const __m256 b = ld(bias + ch, mask, masked);
#pragma GCC unroll 8
	for (int i = 0; i < t; i++)
		acc[i] = b;
#pragma GCC unroll 3
	for (int ky = 0; ky < 3; ky++) {
		if (!r[ky])
			continue;
		__m256 wv[3];
#pragma GCC unroll 3
		for (int kx = 0; kx < 3; kx++)
			wv[kx] = ld(w + (ky * 3 + kx) * c + ch, mask, masked);
#pragma GCC unroll 17
		for (int j = 0; j < (t - 1) * s + 3; j++) {
			if ((lft && j == 0) || (rgt && j == (t - 1) * s + 2))
				continue;
			__m256 x = ld(r[ky] + (ix0 + j) * c + ch, mask, masked);
			/* one load per input vector, not one per multiply-add */
			__asm__("" : "+v"(x));
#pragma GCC unroll 3
			for (int kx = 0; kx < 3; kx++) {
				const int d = j - kx;
				if (d >= 0 && d % s == 0 && d / s < t)
					acc[d / s] = _mm256_fmadd_ps(x, wv[kx], acc[d / s]);
			}
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < t; i++)
		st(o + i * c + ch, acc[i], mask, masked);
}

/* Outputs [ox0, ox0 + t) of one row, all channels. */
static inline __attribute__((always_inline)) void pixels(const struct pn_dw_args *a,
							 const float *const r[3], float *orow,
							 int ox0, const int s, const int t,
							 const int lft, const int rgt)
{
	const ptrdiff_t c = a->c, cfull = a->c / VL * VL;
	const ptrdiff_t ix0 = (ptrdiff_t)ox0 * s - 1;
	float *o = orow + ox0 * c;
	ptrdiff_t ch = 0;
	for (; ch < cfull; ch += VL)
		run(r, ix0, c, o, a->weights, a->bias, ch, lanes(VL), 0, s, t, lft, rgt);
	if (ch < c)
		run(r, ix0, c, o, a->weights, a->bias, ch, lanes(c % VL), 1, s, t, lft, rgt);
}

static inline __attribute__((always_inline)) void
row(const struct pn_dw_args *a, const float *const r[3], float *orow, const int s)
{
	/* outputs 1 <= ox < hi read columns ox * s - 1 .. ox * s + 1 < in_w;
	 * at most one output past them misses its last column */
	int hi = a->in_w >= 2 ? (a->in_w - 2) / s + 1 : 1;
	if (hi > a->out_w)
		hi = a->out_w;
	if (a->in_w >= 2)
		pixels(a, r, orow, 0, s, 1, 1, 0);
	else
		pixels(a, r, orow, 0, s, 1, 1, 1);
	const int tx = s == 1 ? TX : TX / 2;
	int ox = 1;
	for (; ox + tx <= hi; ox += tx)
		pixels(a, r, orow, ox, s, tx, 0, 0);
	if (s == 1 && ox + TX / 2 <= hi) {
		pixels(a, r, orow, ox, s, TX / 2, 0, 0);
		ox += TX / 2;
	}
	if (ox + 2 <= hi) {
		pixels(a, r, orow, ox, s, 2, 0, 0);
		ox += 2;
	}
	for (; ox < hi; ox++)
		pixels(a, r, orow, ox, s, 1, 0, 0);
	for (; ox < a->out_w; ox++)
		pixels(a, r, orow, ox, s, 1, 0, 1);
}

static void row_s1(const struct pn_dw_args *a, const float *const r[3], float *orow)
{
	row(a, r, orow, 1);
}

static void row_s2(const struct pn_dw_args *a, const float *const r[3], float *orow)
{
	row(a, r, orow, 2);
}

void pn_dw3x3_avx2(const struct pn_dw_args *a)
{
	const ptrdiff_t rowlen = (ptrdiff_t)a->in_w * a->c;
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		const float *r[3];
		for (int ky = 0; ky < 3; ky++) {
			const int iy = oy * a->stride - 1 + ky;
			r[ky] = iy < 0 || iy >= a->in_h ? NULL : a->in + (iy - a->in_y0) * rowlen;
		}
		float *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * a->c;
		if (a->stride == 1)
			row_s1(a, r, orow);
		else
			row_s2(a, r, orow);
	}
}
