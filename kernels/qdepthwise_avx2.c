/* The int8 depthwise 3x3, stem 3x3 and residual add with AVX2, equal to
 * pn_qdw3x3_ref, pn_qconv3x3_ref and pn_qadd_ref. The depthwise pairs taps
 * on int16 for vpmaddwd (below); the stem's fallback and the add widen to
 * int32 lanes, requantised by pn_qout_avx2 (qx86.h); a channel tail goes
 * through small zero-padded buffers. */
#include <string.h>

#include "qdw_rows.h"
#include "qx86.h"

/* The depthwise, 16 channels at a time on int16 with two taps per
 * vpmaddwd, as qdw_avx512.h does with 32: taps paired (0,1), (2,3),
 * (4,5), (6,7), (8,-) by unpacklo/hi_epi16, so the "lo" accumulator holds
 * channels 0..3 and 8..11, the "hi" one 4..7 and 12..15, and
 * packs_epi32(lo, hi) puts them back in order. Padding reads in_zp
 * through a pad row and -in_zp * (sum of the weights) is in the bias.
 * Stride 1 widens and pairs each input column once for three outputs. */
struct dwblock {
	__m256i wl[5], wh[5], bl, bh;
	__m256i cal[3], cah[3], cbl[3], cbh[3]; /* by column: rows 0 and 1, row 2 */
	struct pn_qrq256 ql, qh;
	int left;
};

PN_QX86_INLINE __m256i tap16(const int8_t *p, int left, int full)
{
	if (full || left >= 16)
		return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
	int8_t b[16] = {0};
	memcpy(b, p, (size_t)left);
	return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(void *)b));
}

PN_QX86_INLINE void dw_store(const struct dwblock *b, __m256i al, __m256i ah, int8_t *out,
			     __m256i zp16, __m128i lo8, __m128i hi8, int full, int mode)
{
	__m256i v = _mm256_adds_epi16(_mm256_packs_epi32(pn_qrq256_mode(&b->ql, al, mode),
							 pn_qrq256_mode(&b->qh, ah, mode)),
				      zp16);
	__m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi16(v, v), 0x08);
	__m128i o = _mm_min_epi8(_mm_max_epi8(_mm256_castsi256_si128(p), lo8), hi8);
	if (full || b->left >= 16) {
		_mm_storeu_si128((__m128i *)(void *)out, o);
		return;
	}
	int8_t t[16];
	_mm_storeu_si128((__m128i *)(void *)t, o);
	memcpy(out, t, (size_t)b->left);
}

PN_QX86_INLINE void dw_pixel(const struct dwblock *b, const int8_t *const px[9], int8_t *out,
			     __m256i zp16, __m128i lo8, __m128i hi8, int full, int mode)
{
	__m256i al[2] = {b->bl, _mm256_setzero_si256()}, ah[2] = {b->bh, _mm256_setzero_si256()};
#pragma GCC unroll 5
	for (int p = 0; p < 5; p++) {
		__m256i x0 = tap16(px[2 * p], b->left, full);
		__m256i x1 = p < 4 ? tap16(px[2 * p + 1], b->left, full) : x0;
		al[p % 2] = _mm256_add_epi32(
			al[p % 2], _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), b->wl[p]));
		ah[p % 2] = _mm256_add_epi32(
			ah[p % 2], _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), b->wh[p]));
	}
	dw_store(b, _mm256_add_epi32(al[0], al[1]), _mm256_add_epi32(ah[0], ah[1]), out, zp16, lo8,
		 hi8, full, mode);
}

struct dwcol {
	__m256i pl, ph, ql, qh;
};

PN_QX86_INLINE struct dwcol dw_col(const int8_t *const rows[3], const size_t step[3], int x,
				   int left, int full)
{
	struct dwcol c;
	__m256i a0 = tap16(rows[0] + (size_t)x * step[0], left, full),
		a1 = tap16(rows[1] + (size_t)x * step[1], left, full),
		a2 = tap16(rows[2] + (size_t)x * step[2], left, full);
	c.pl = _mm256_unpacklo_epi16(a0, a1);
	c.ph = _mm256_unpackhi_epi16(a0, a1);
	c.ql = _mm256_unpacklo_epi16(a2, a2);
	c.qh = _mm256_unpackhi_epi16(a2, a2);
	return c;
}

PN_QX86_INLINE void dw_pixel_cols(const struct dwblock *b, const struct dwcol col[3], int8_t *out,
				  __m256i zp16, __m128i lo8, __m128i hi8, int full, int mode)
{
	__m256i al0 = b->bl, al1 = _mm256_setzero_si256(), ah0 = b->bh, ah1 = al1;
#pragma GCC unroll 3
	for (int kx = 0; kx < 3; kx++) {
		al0 = _mm256_add_epi32(al0, _mm256_madd_epi16(col[kx].pl, b->cal[kx]));
		al1 = _mm256_add_epi32(al1, _mm256_madd_epi16(col[kx].ql, b->cbl[kx]));
		ah0 = _mm256_add_epi32(ah0, _mm256_madd_epi16(col[kx].ph, b->cah[kx]));
		ah1 = _mm256_add_epi32(ah1, _mm256_madd_epi16(col[kx].qh, b->cbh[kx]));
	}
	dw_store(b, _mm256_add_epi32(al0, al1), _mm256_add_epi32(ah0, ah1), out, zp16, lo8, hi8,
		 full, mode);
}

static void dw_block_init(struct dwblock *b, const struct pn_qdw_args *a, int c0)
{
	const int c = a->c;
	b->left = c - c0;
	__m256i w[9];
	for (int t = 0; t < 9; t++)
		w[t] = tap16(a->weights + (size_t)t * c + c0, b->left, 0);
	const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi16(1);
	__m256i sl = zero, sh = zero;
	for (int p = 0; p < 5; p++) {
		__m256i w1 = p < 4 ? w[2 * p + 1] : zero;
		b->wl[p] = _mm256_unpacklo_epi16(w[2 * p], w1);
		b->wh[p] = _mm256_unpackhi_epi16(w[2 * p], w1);
		if (p < 3) {
			b->cal[p] = _mm256_unpacklo_epi16(w[p], w[3 + p]);
			b->cah[p] = _mm256_unpackhi_epi16(w[p], w[3 + p]);
			b->cbl[p] = _mm256_unpacklo_epi16(w[6 + p], zero);
			b->cbh[p] = _mm256_unpackhi_epi16(w[6 + p], zero);
		}
		sl = _mm256_add_epi32(sl, _mm256_madd_epi16(b->wl[p], one));
		sh = _mm256_add_epi32(sh, _mm256_madd_epi16(b->wh[p], one));
	}
	const int l1 = b->left - 8;
	const __m256i bias0 = pn_qload8_i32_avx2(a->q.bias + c0, b->left),
		      bias1 = l1 > 0 ? pn_qload8_i32_avx2(a->q.bias + c0 + 8, l1) : zero,
		      mult0 = pn_qload8_i32_avx2(a->q.mult + c0, b->left),
		      mult1 = l1 > 0 ? pn_qload8_i32_avx2(a->q.mult + c0 + 8, l1) : zero,
		      exp0 = pn_qload8_avx2(a->q.exp + c0, b->left),
		      exp1 = l1 > 0 ? pn_qload8_avx2(a->q.exp + c0 + 8, l1) : zero;
	const __m256i zin = _mm256_set1_epi32(a->in_zp);
	/* lo: channels 0..3 and 8..11; hi: 4..7 and 12..15 */
	b->bl = _mm256_sub_epi32(_mm256_permute2x128_si256(bias0, bias1, 0x20),
				 _mm256_mullo_epi32(sl, zin));
	b->bh = _mm256_sub_epi32(_mm256_permute2x128_si256(bias0, bias1, 0x31),
				 _mm256_mullo_epi32(sh, zin));
	const int relu = a->q.lo >= a->q.zp;
	b->ql = pn_qrq256_init(_mm256_permute2x128_si256(mult0, mult1, 0x20),
			       _mm256_permute2x128_si256(exp0, exp1, 0x20), relu);
	b->qh = pn_qrq256_init(_mm256_permute2x128_si256(mult0, mult1, 0x31),
			       _mm256_permute2x128_si256(exp0, exp1, 0x31), relu);
}

/* Output rows of one channel block; `full` (a constant) when all 16
 * channels are there. */
PN_QX86_INLINE void dw_rows(const struct pn_qdw_args *a, const struct dwblock *b, int c0,
			    const int8_t *pad, int full, int mode)
{
	const int c = a->c, s = a->stride, in_w = a->in_w, out_w = a->out_w;
	const __m256i zp16 = _mm256_set1_epi16((short)a->q.zp);
	const __m128i lo8 = _mm_set1_epi8((char)a->q.lo), hi8 = _mm_set1_epi8((char)a->q.hi);
	/* Output columns [x0, x1) read no padding column. */
	const int x0 = 1, x1 = pn_qdw_inner_end(in_w, s);
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * out_w * c + c0;
		const int8_t *rows[3];
		size_t step[3];
		pn_qdw_rows(a, oy, c0, pad, rows, step);
		int ox = 0;
		if (s == 1 && x1 - x0 >= 2) {
			const int8_t *px[9];
			for (int ky = 0; ky < 3; ky++)
				for (int kx = 0; kx < 3; kx++)
					px[ky * 3 + kx] =
						kx ? rows[ky] + (size_t)(kx - 1) * step[ky] : pad;
			dw_pixel(b, px, orow, zp16, lo8, hi8, full, mode);
			struct dwcol col[3];
			col[0] = dw_col(rows, step, 0, b->left, full);
			col[1] = dw_col(rows, step, 1, b->left, full);
			for (ox = x0; ox < x1; ox++) {
				col[2] = dw_col(rows, step, ox + 1, b->left, full);
				dw_pixel_cols(b, col, orow + (size_t)ox * c, zp16, lo8, hi8, full,
					      mode);
				col[0] = col[1];
				col[1] = col[2];
			}
		}
		for (; ox < out_w; ox++) {
			const int8_t *px[9];
			pn_qdw_taps(rows, step, ox, s, in_w, ox >= x0 && ox < x1, pad, px);
			dw_pixel(b, px, orow + (size_t)ox * c, zp16, lo8, hi8, full, mode);
		}
	}
}

void pn_qdw3x3_avx2(const struct pn_qdw_args *a)
{
	int8_t pad[16];
	memset(pad, (int)(int8_t)a->in_zp, sizeof pad);
	for (int c0 = 0; c0 < a->c; c0 += 16) {
		struct dwblock b;
		dw_block_init(&b, a, c0);
		/* full block and requantisation mode as constants */
		const int mode = b.ql.slow || b.qh.slow ? PN_QRQ_SLOW : pn_qrq256_modeof(&b.ql);
		switch ((a->c - c0 >= 16) * 3 + mode) {
		case 3 + PN_QRQ_SIGNED:
			dw_rows(a, &b, c0, pad, 1, PN_QRQ_SIGNED);
			break;
		case 3 + PN_QRQ_RELU:
			dw_rows(a, &b, c0, pad, 1, PN_QRQ_RELU);
			break;
		case 3 + PN_QRQ_SLOW:
			dw_rows(a, &b, c0, pad, 1, PN_QRQ_SLOW);
			break;
		default:
			dw_rows(a, &b, c0, pad, 0, mode);
			break;
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
				__m256i acc = pn_qload8_i32_avx2(a->q.bias + c0, left);
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
							__m256i w = pn_qload8_avx2(
								wk + (size_t)ci * cout, left);
							__m256i x = _mm256_set1_epi32(px[ci] -
										      a->in_zp);
							acc = _mm256_add_epi32(
								acc, _mm256_mullo_epi32(x, w));
						}
					}
				}
				__m256i mult = pn_qload8_i32_avx2(a->q.mult + c0, left);
				__m256i exp = pn_qload8_avx2(a->q.exp + c0, left);
				pn_qstore8_left_avx2(orow + (size_t)ox * cout + c0,
						     pn_qout_avx2(acc, mult, exp, zp, lo, hi),
						     left);
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
		__m256i x = _mm256_slli_epi32(_mm256_sub_epi32(pn_qload8_avx2(a->a + i, left), za),
					      PN_QADD_SHIFT);
		__m256i y = _mm256_slli_epi32(_mm256_sub_epi32(pn_qload8_avx2(a->b + i, left), zb),
					      PN_QADD_SHIFT);
		__m256i sum =
			_mm256_add_epi32(pn_qrequant_avx2(x, ma, ea), pn_qrequant_avx2(y, mb, eb));
		pn_qstore8_left_avx2(
			a->out + i,
			pn_qclamp_avx2(pn_qround_shift_avx2(sum, PN_QADD_SHIFT), zout, lo, hi),
			left);
	}
}
