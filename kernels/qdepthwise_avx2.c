/* The int8 depthwise 3x3, stem 3x3 and residual add with AVX2, equal to
 * pn_qdw3x3_ref, pn_qconv3x3_ref and pn_qadd_ref: products widened to
 * int32 lanes (vpmulld), requantisation by pn_qout_avx2 (qx86.h); a
 * channel tail of fewer than 8 goes through small zero-padded buffers. */
#include <string.h>

#include "qx86.h"

/* Eight int8 (fewer when left < 8, zeros after) widened to int32. */
static inline __m256i load8(const int8_t *p, int left)
{
	int8_t b[8] = {0};
	if (left >= 8)
		return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
	memcpy(b, p, (size_t)left);
	return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(void *)b));
}

static inline __m256i load8_i32(const int32_t *p, int left)
{
	int32_t b[8] = {0};
	if (left >= 8)
		return _mm256_loadu_si256((const __m256i *)(const void *)p);
	memcpy(b, p, (size_t)left * sizeof *b);
	return _mm256_loadu_si256((const __m256i *)(void *)b);
}

static inline void store8(int8_t *p, __m256i v, int left)
{
	int8_t b[8];
	if (left >= 8) {
		pn_qstore8_avx2(p, v);
		return;
	}
	pn_qstore8_avx2(b, v);
	memcpy(p, b, (size_t)left);
}

void pn_qdw3x3_avx2(const struct pn_qdw_args *a)
{
	const int c = a->c, s = a->stride;
	const __m256i zin = _mm256_set1_epi32(a->in_zp), zp = _mm256_set1_epi32(a->q.zp),
		      lo = _mm256_set1_epi32(a->q.lo), hi = _mm256_set1_epi32(a->q.hi);
	for (int c0 = 0; c0 < c; c0 += 8) {
		const int left = c - c0;
		__m256i w[9];
		for (int t = 0; t < 9; t++)
			w[t] = load8(a->weights + (size_t)t * c + c0, left);
		const __m256i bias = load8_i32(a->q.bias + c0, left);
		const __m256i mult = load8_i32(a->q.mult + c0, left);
		const __m256i exp = load8(a->q.exp + c0, left);
		for (int oy = a->out_y0; oy < a->out_y1; oy++) {
			int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * c + c0;
			for (int ox = 0; ox < a->out_w; ox++) {
				__m256i acc = bias;
				for (int ky = 0; ky < 3; ky++) {
					int iy = oy * s - 1 + ky;
					if (iy < 0 || iy >= a->in_h)
						continue;
					const int8_t *irow =
						a->in + (size_t)(iy - a->in_y0) * a->in_w * c + c0;
					for (int kx = 0; kx < 3; kx++) {
						int ix = ox * s - 1 + kx;
						if (ix < 0 || ix >= a->in_w)
							continue;
						__m256i x = load8(irow + (size_t)ix * c, left);
						acc = _mm256_add_epi32(
							acc,
							_mm256_mullo_epi32(_mm256_sub_epi32(x, zin),
									   w[ky * 3 + kx]));
					}
				}
				store8(orow + (size_t)ox * c,
				       pn_qout_avx2(acc, mult, exp, zp, lo, hi), left);
			}
		}
	}
}

void pn_qconv3x3_avx2(const struct pn_qconv_args *a)
{
	if (pn_qconv3x3_im2col(a, pn_qpw_packed_bytes_avx2, pn_qpw_pack_avx2, pn_qpw_avx2))
		return;
	const int cin = a->cin, cout = a->cout, s = a->stride;
	const __m256i zp = _mm256_set1_epi32(a->q.zp), lo = _mm256_set1_epi32(a->q.lo),
		      hi = _mm256_set1_epi32(a->q.hi);
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * cout;
		for (int ox = 0; ox < a->out_w; ox++) {
			for (int c0 = 0; c0 < cout; c0 += 8) {
				const int left = cout - c0;
				__m256i acc = load8_i32(a->q.bias + c0, left);
				for (int ky = 0; ky < 3; ky++) {
					int iy = oy * s - 1 + ky;
					if (iy < 0 || iy >= a->in_h)
						continue;
					for (int kx = 0; kx < 3; kx++) {
						int ix = ox * s - 1 + kx;
						if (ix < 0 || ix >= a->in_w)
							continue;
						const int8_t *px =
							a->in + ((size_t)iy * a->in_w + ix) * cin;
						const int8_t *wk =
							a->weights +
							(size_t)(ky * 3 + kx) * cin * cout + c0;
						for (int ci = 0; ci < cin; ci++) {
							__m256i w =
								load8(wk + (size_t)ci * cout, left);
							__m256i x = _mm256_set1_epi32(px[ci] -
										      a->in_zp);
							acc = _mm256_add_epi32(
								acc, _mm256_mullo_epi32(x, w));
						}
					}
				}
				__m256i mult = load8_i32(a->q.mult + c0, left);
				__m256i exp = load8(a->q.exp + c0, left);
				store8(orow + (size_t)ox * cout + c0,
				       pn_qout_avx2(acc, mult, exp, zp, lo, hi), left);
			}
		}
	}
}

/* As pn_qadd_avx512: (q - zp) * 2^16 never saturates the left shift. */
void pn_qadd_avx2(const struct pn_qadd_args *a)
{
	const __m256i za = _mm256_set1_epi32(a->a_zp), zb = _mm256_set1_epi32(a->b_zp);
	const __m256i ma = _mm256_set1_epi32(a->a_mult), mb = _mm256_set1_epi32(a->b_mult);
	const __m256i ea = _mm256_set1_epi32(a->a_exp), eb = _mm256_set1_epi32(a->b_exp);
	const __m256i zout = _mm256_set1_epi32(a->out_zp), lo = _mm256_set1_epi32(-128),
		      hi = _mm256_set1_epi32(127);
	for (size_t i = 0; i < a->n; i += 8) {
		const int left = a->n - i < 8 ? (int)(a->n - i) : 8;
		__m256i x = _mm256_slli_epi32(_mm256_sub_epi32(load8(a->a + i, left), za),
					      PN_QADD_SHIFT);
		__m256i y = _mm256_slli_epi32(_mm256_sub_epi32(load8(a->b + i, left), zb),
					      PN_QADD_SHIFT);
		__m256i sum =
			_mm256_add_epi32(pn_qrequant_avx2(x, ma, ea), pn_qrequant_avx2(y, mb, eb));
		store8(a->out + i,
		       pn_qclamp_avx2(pn_qround_shift_avx2(sum, PN_QADD_SHIFT), zout, lo, hi),
		       left);
	}
}
