/* The int8 depthwise 3x3, stem 3x3 and residual add with AVX-512BW,
 * equal to pn_qdw3x3_ref, pn_qconv3x3_ref and pn_qadd_ref.
 *
 * Depthwise: 32 channels at a time on int16, two taps per vpmaddwd. Each
 * tap's 32 bytes are widened to int16 and the taps paired (0,1), (2,3),
 * (4,5), (6,7), (8,8) by unpacklo/hi_epi16, with the weights paired the
 * same way once per channel block (tap 8's partner weight 0): the "lo"
 * accumulator then holds channels 8 L + 0..3 of each 128-bit lane L, the
 * "hi" one 8 L + 4..7, and packs_epi32(lo, hi) puts them back in order.
 * |q w| <= 128 * 127, so a pair never saturates. Padding reads in_zp (the
 * real 0) through a pad row, so every output sums nine raw q w and
 * -in_zp * (sum of the nine weights) is folded into the bias.
 * Requantisation by pn_qrq512, narrowing by saturating packs (qx86.h). */
#include <string.h>

#include "qx86.h"

struct dwblock {
	__m512i wl[5], wh[5], bl, bh;
	struct pn_qrq512 ql, qh;
	__mmask32 mk;
};

PN_QX86_INLINE __m512i tap16(const int8_t *p, __mmask32 mk)
{
	return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mk, p));
}

/* One output pixel of the block from its nine input pointers. */
PN_QX86_INLINE void dw_pixel(const struct dwblock *b, const int8_t *const px[9], int8_t *out,
			     __m512i zp16, __m256i lo8, __m256i hi8)
{
	__m512i al = b->bl, ah = b->bh;
#pragma GCC unroll 5
	for (int p = 0; p < 5; p++) {
		__m512i x0 = tap16(px[2 * p], b->mk);
		__m512i x1 = p < 4 ? tap16(px[2 * p + 1], b->mk) : x0;
		al = _mm512_add_epi32(al,
				      _mm512_madd_epi16(_mm512_unpacklo_epi16(x0, x1), b->wl[p]));
		ah = _mm512_add_epi32(ah,
				      _mm512_madd_epi16(_mm512_unpackhi_epi16(x0, x1), b->wh[p]));
	}
	__m512i v = _mm512_adds_epi16(
		_mm512_packs_epi32(pn_qrq512(&b->ql, al), pn_qrq512(&b->qh, ah)), zp16);
	__m256i o = _mm256_min_epi8(_mm256_max_epi8(_mm512_cvtsepi16_epi8(v), lo8), hi8);
	_mm256_mask_storeu_epi8(out, b->mk, o);
}

static void dw_block_init(struct dwblock *b, const struct pn_qdw_args *a, int c0)
{
	const int c = a->c;
	const __m512i idl = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26,
					      27),
		      idh = _mm512_add_epi32(idl, _mm512_set1_epi32(4));
	b->mk = c - c0 >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << (c - c0)) - 1);
	__m512i w[9];
	for (int t = 0; t < 9; t++)
		w[t] = tap16(a->weights + (size_t)t * c + c0, b->mk);
	const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi16(1);
	__m512i sl = zero, sh = zero;
	for (int p = 0; p < 5; p++) {
		__m512i w1 = p < 4 ? w[2 * p + 1] : zero;
		b->wl[p] = _mm512_unpacklo_epi16(w[2 * p], w1);
		b->wh[p] = _mm512_unpackhi_epi16(w[2 * p], w1);
		sl = _mm512_add_epi32(sl, _mm512_madd_epi16(b->wl[p], one));
		sh = _mm512_add_epi32(sh, _mm512_madd_epi16(b->wh[p], one));
	}
	const __mmask16 m0 = (__mmask16)b->mk, m1 = (__mmask16)(b->mk >> 16);
	const __m512i bias0 = _mm512_maskz_loadu_epi32(m0, a->q.bias + c0),
		      bias1 = _mm512_maskz_loadu_epi32(m1, a->q.bias + c0 + 16),
		      mult0 = _mm512_maskz_loadu_epi32(m0, a->q.mult + c0),
		      mult1 = _mm512_maskz_loadu_epi32(m1, a->q.mult + c0 + 16),
		      exp0 = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m0, a->q.exp + c0)),
		      exp1 = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m1, a->q.exp + c0 + 16));
	const __m512i zin = _mm512_set1_epi32(a->in_zp);
	b->bl = _mm512_sub_epi32(_mm512_permutex2var_epi32(bias0, idl, bias1),
				 _mm512_mullo_epi32(sl, zin));
	b->bh = _mm512_sub_epi32(_mm512_permutex2var_epi32(bias0, idh, bias1),
				 _mm512_mullo_epi32(sh, zin));
	b->ql = pn_qrq512_init(_mm512_permutex2var_epi32(mult0, idl, mult1),
			       _mm512_permutex2var_epi32(exp0, idl, exp1));
	b->qh = pn_qrq512_init(_mm512_permutex2var_epi32(mult0, idh, mult1),
			       _mm512_permutex2var_epi32(exp0, idh, exp1));
}

void pn_qdw3x3_avx512(const struct pn_qdw_args *a)
{
	const int c = a->c, s = a->stride, in_w = a->in_w, out_w = a->out_w;
	const __m512i zp16 = _mm512_set1_epi16((short)a->q.zp);
	const __m256i lo8 = _mm256_set1_epi8((char)a->q.lo), hi8 = _mm256_set1_epi8((char)a->q.hi);
	int8_t pad[32];
	memset(pad, (int)(int8_t)a->in_zp, sizeof pad);
	/* Output columns [x0, x1) read no padding column. */
	const int x0 = 1, x1 = in_w >= 3 ? (in_w - 2) / s + 1 : 1;
	for (int c0 = 0; c0 < c; c0 += 32) {
		struct dwblock b;
		dw_block_init(&b, a, c0);
		for (int oy = a->out_y0; oy < a->out_y1; oy++) {
			int8_t *orow = a->out + (size_t)(oy - a->out_y0) * out_w * c + c0;
			const int8_t *rows[3];
			size_t step[3];
			for (int ky = 0; ky < 3; ky++) {
				int iy = oy * s - 1 + ky;
				int in = iy >= 0 && iy < a->in_h;
				rows[ky] =
					in ? a->in + (size_t)(iy - a->in_y0) * in_w * c + c0 : pad;
				step[ky] = in ? (size_t)c : 0;
			}
			for (int ox = 0; ox < out_w; ox++) {
				const int ix0 = ox * s - 1;
				const int8_t *px[9];
				if (ox >= x0 && ox < x1) {
#pragma GCC unroll 3
					for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
						for (int kx = 0; kx < 3; kx++)
							px[ky * 3 + kx] =
								rows[ky] +
								(size_t)(ix0 + kx) * step[ky];
				} else {
					for (int ky = 0; ky < 3; ky++)
						for (int kx = 0; kx < 3; kx++) {
							int ix = ix0 + kx;
							px[ky * 3 + kx] =
								ix >= 0 && ix < in_w
									? rows[ky] +
										  (size_t)ix *
											  step[ky]
									: pad;
						}
				}
				dw_pixel(&b, px, orow + (size_t)ox * c, zp16, lo8, hi8);
			}
		}
	}
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
