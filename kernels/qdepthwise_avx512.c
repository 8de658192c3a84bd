/* The int8 depthwise 3x3, stem 3x3 and residual add with AVX-512BW,
 * equal to pn_qdw3x3_ref, pn_qconv3x3_ref and pn_qadd_ref. The depthwise
 * is qdw_avx512.h with vpmaddwd + vpaddd. */
#include <string.h>

#include "qx86.h"
#define PN_QDW_DOT(acc, x, w) _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
#include "qdw_avx512.h"

void pn_qdw3x3_avx512(const struct pn_qdw_args *a)
{
	pn_qdw3x3_avx512_body(a, 0);
}

/* The stem: cin is 3, so the channel block is outermost and its 27
 * widened weight vectors are made once (up to cin 4; more falls back on
 * widening at each use); cin 3 is compiled on its own, unrolled. */
PN_QX86_INLINE void conv3x3(const struct pn_qconv_args *a, const int cin)
{
	const int cout = a->cout, s = a->stride;
	const __m512i zp = _mm512_set1_epi32(a->q.zp), lo = _mm512_set1_epi32(a->q.lo),
		      hi = _mm512_set1_epi32(a->q.hi);
	__m512i wv[9 * 4];
	for (int c0 = 0; c0 < cout; c0 += 16) {
		const __mmask16 mk = pn_qmask16(cout - c0);
		const __m512i bias = _mm512_maskz_loadu_epi32(mk, a->q.bias + c0);
		const __m512i mult = _mm512_maskz_loadu_epi32(mk, a->q.mult + c0);
		const __m512i exp = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, a->q.exp + c0));
		if (cin <= 4)
			for (int t = 0; t < 9 * cin; t++)
				wv[t] = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(
					mk, a->weights + (size_t)t * cout + c0));
		for (int oy = a->out_y0; oy < a->out_y1; oy++) {
			int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * cout + c0;
			for (int ox = 0; ox < a->out_w; ox++) {
				__m512i acc = bias;
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
						const int t0 = (ky * 3 + kx) * cin;
						for (int ci = 0; ci < cin; ci++) {
							__m512i w =
								cin <= 4
									? wv[t0 + ci]
									: _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(
										  mk,
										  a->weights +
											  (size_t)(t0 +
												   ci) *
												  cout +
											  c0));
							__m512i x = _mm512_set1_epi32(px[ci] -
										      a->in_zp);
							acc = _mm512_add_epi32(
								acc, _mm512_mullo_epi32(x, w));
						}
					}
				}
				_mm_mask_storeu_epi8(orow + (size_t)ox * cout, mk,
						     pn_qout_avx512(acc, mult, exp, zp, lo, hi));
			}
		}
	}
}

void pn_qconv3x3_avx512(const struct pn_qconv_args *a)
{
	if (pn_qconv3x3_im2col(a, pn_qpw_packed_bytes_avx512, pn_qpw_pack_avx512, pn_qpw_avx512))
		return;
	if (a->cin == 3)
		conv3x3(a, 3);
	else
		conv3x3(a, a->cin);
}

/* x = (q - zp) * 2^16 fits 24 bits, so its left shift by exp > 0 (at
 * most 6: the multipliers are < 64) never saturates and is done first,
 * leaving pn_qrq512's one-rounding form with exp <= 0; the two
 * requantised terms are summed and rounded by 2^PN_QADD_SHIFT. */
void pn_qadd_avx512(const struct pn_qadd_args *a)
{
	const __m512i za = _mm512_set1_epi32(a->a_zp), zb = _mm512_set1_epi32(a->b_zp);
	const __m128i sa = _mm_cvtsi32_si128(PN_QADD_SHIFT + (a->a_exp > 0 ? a->a_exp : 0)),
		      sb = _mm_cvtsi32_si128(PN_QADD_SHIFT + (a->b_exp > 0 ? a->b_exp : 0));
	const struct pn_qrq512 qa = pn_qrq512_init(_mm512_set1_epi32(a->a_mult),
						   _mm512_set1_epi32(a->a_exp < 0 ? a->a_exp : 0),
						   0),
			       qb = pn_qrq512_init(_mm512_set1_epi32(a->b_mult),
						   _mm512_set1_epi32(a->b_exp < 0 ? a->b_exp : 0),
						   0);
	const __m512i zout = _mm512_set1_epi32(a->out_zp), lo = _mm512_set1_epi32(-128),
		      hi = _mm512_set1_epi32(127);
	for (size_t i = 0; i < a->n; i += 16) {
		const __mmask16 mk = pn_qmask16(a->n - i < 16 ? (int)(a->n - i) : 16);
		__m512i x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, a->a + i));
		__m512i y = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, a->b + i));
		x = _mm512_sll_epi32(_mm512_sub_epi32(x, za), sa);
		y = _mm512_sll_epi32(_mm512_sub_epi32(y, zb), sb);
		__m512i s = _mm512_add_epi32(pn_qrq512_mode(&qa, x, PN_QRQ_SIGNED),
					     pn_qrq512_mode(&qb, y, PN_QRQ_SIGNED));
		_mm_mask_storeu_epi8(
			a->out + i, mk,
			pn_qnarrow_avx512(pn_qround_shift_avx512(s, PN_QADD_SHIFT), zout, lo, hi));
	}
}
