/* The int8 depthwise 3x3, stem 3x3 and residual add with AVX-512BW,
 * equal to pn_qdw3x3_ref, pn_qconv3x3_ref and pn_qadd_ref: products
 * widened to int32 lanes (vpmulld; no dot product helps here), channel
 * tails by masks, requantisation by pn_qout_avx512 (qx86.h). */
#include "qx86.h"

void pn_qdw3x3_avx512(const struct pn_qdw_args *a)
{
	const int c = a->c, s = a->stride;
	const __m512i zin = _mm512_set1_epi32(a->in_zp), zp = _mm512_set1_epi32(a->q.zp),
		      lo = _mm512_set1_epi32(a->q.lo), hi = _mm512_set1_epi32(a->q.hi);
	for (int c0 = 0; c0 < c; c0 += 16) {
		const __mmask16 mk = pn_qmask16(c - c0);
		__m512i w[9];
		for (int t = 0; t < 9; t++)
			w[t] = _mm512_cvtepi8_epi32(
				_mm_maskz_loadu_epi8(mk, a->weights + (size_t)t * c + c0));
		const __m512i bias = _mm512_maskz_loadu_epi32(mk, a->q.bias + c0);
		const __m512i mult = _mm512_maskz_loadu_epi32(mk, a->q.mult + c0);
		const __m512i exp = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, a->q.exp + c0));
		for (int oy = a->out_y0; oy < a->out_y1; oy++) {
			int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * c + c0;
			for (int ox = 0; ox < a->out_w; ox++) {
				__m512i acc = bias;
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
						__m512i x =
							_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(
								mk, irow + (size_t)ix * c));
						acc = _mm512_add_epi32(
							acc,
							_mm512_mullo_epi32(_mm512_sub_epi32(x, zin),
									   w[ky * 3 + kx]));
					}
				}
				_mm_mask_storeu_epi8(orow + (size_t)ox * c, mk,
						     pn_qout_avx512(acc, mult, exp, zp, lo, hi));
			}
		}
	}
}

void pn_qconv3x3_avx512(const struct pn_qconv_args *a)
{
	const int cin = a->cin, cout = a->cout, s = a->stride;
	const __m512i zp = _mm512_set1_epi32(a->q.zp), lo = _mm512_set1_epi32(a->q.lo),
		      hi = _mm512_set1_epi32(a->q.hi);
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * cout;
		for (int ox = 0; ox < a->out_w; ox++) {
			for (int c0 = 0; c0 < cout; c0 += 16) {
				const __mmask16 mk = pn_qmask16(cout - c0);
				__m512i acc = _mm512_maskz_loadu_epi32(mk, a->q.bias + c0);
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
							__m512i w = _mm512_cvtepi8_epi32(
								_mm_maskz_loadu_epi8(
									mk,
									wk + (size_t)ci * cout));
							__m512i x = _mm512_set1_epi32(px[ci] -
										      a->in_zp);
							acc = _mm512_add_epi32(
								acc, _mm512_mullo_epi32(x, w));
						}
					}
				}
				__m512i mult = _mm512_maskz_loadu_epi32(mk, a->q.mult + c0);
				__m512i exp = _mm512_cvtepi8_epi32(
					_mm_maskz_loadu_epi8(mk, a->q.exp + c0));
				_mm_mask_storeu_epi8(orow + (size_t)ox * cout + c0, mk,
						     pn_qout_avx512(acc, mult, exp, zp, lo, hi));
			}
		}
	}
}

/* x = (q - zp) * 2^16 fits 24 bits, so its left shift never saturates;
 * the two requantised terms are summed and rounded by 2^PN_QADD_SHIFT. */
void pn_qadd_avx512(const struct pn_qadd_args *a)
{
	const __m512i za = _mm512_set1_epi32(a->a_zp), zb = _mm512_set1_epi32(a->b_zp);
	const __m512i ma = _mm512_set1_epi32(a->a_mult), mb = _mm512_set1_epi32(a->b_mult);
	const __m512i ea = _mm512_set1_epi32(a->a_exp), eb = _mm512_set1_epi32(a->b_exp);
	const __m512i zout = _mm512_set1_epi32(a->out_zp), lo = _mm512_set1_epi32(-128),
		      hi = _mm512_set1_epi32(127);
	for (size_t i = 0; i < a->n; i += 16) {
		const __mmask16 mk = pn_qmask16(a->n - i < 16 ? (int)(a->n - i) : 16);
		__m512i x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, a->a + i));
		__m512i y = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, a->b + i));
		x = _mm512_slli_epi32(_mm512_sub_epi32(x, za), PN_QADD_SHIFT);
		y = _mm512_slli_epi32(_mm512_sub_epi32(y, zb), PN_QADD_SHIFT);
		__m512i s = _mm512_add_epi32(pn_qrequant_avx512(x, ma, ea),
					     pn_qrequant_avx512(y, mb, eb));
		_mm_mask_storeu_epi8(
			a->out + i, mk,
			pn_qnarrow_avx512(pn_qround_shift_avx512(s, PN_QADD_SHIFT), zout, lo, hi));
	}
}
