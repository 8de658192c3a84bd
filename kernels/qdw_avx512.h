/* The int8 depthwise 3x3 of the AVX-512 tables, equal to pn_qdw3x3_ref;
 * included by qdepthwise_avx512.c (PN_QDW_DOT: vpmaddwd + vpaddd) and
 * qdepthwise_avx512vnni.c (vpdpwssd, for a last block of 32 channels or
 * fewer), each compiled with its own flags.
 *
 * 32 channels at a time on int16, two taps per dot product. Each
 * tap's 32 bytes are widened to int16 and the taps paired (0,1), (2,3),
 * (4,5), (6,7), (8,8) by unpacklo/hi_epi16, with the weights paired the
 * same way once per channel block (tap 8's partner weight 0): the "lo"
 * accumulator then holds channels 8 L + 0..3 of each 128-bit lane L, the
 * "hi" one 8 L + 4..7, and packs_epi32(lo, hi) puts them back in order.
 * |q w| <= 128 * 127, so a pair never saturates. Padding reads in_zp (the
 * real 0) through a pad row, so every output sums nine raw q w and
 * -in_zp * (sum of the nine weights) is folded into the bias.
 * Requantisation by pn_qrq512, narrowing by saturating packs (qx86.h). */
#ifndef PN_QDW_AVX512_H
#define PN_QDW_AVX512_H

#include <string.h>

#include "qdw_rows.h"
#include "qx86.h"

#ifndef PN_QDW_DOT
#error "define PN_QDW_DOT(acc, x, w) before including qdw_avx512.h"
#endif

struct dwblock {
	__m512i wl[5], wh[5], bl, bh;
	/* By column, for stride 1: rows 0 and 1 paired, row 2 with 0. */
	__m512i cal[3], cah[3], cbl[3], cbh[3];
	struct pn_qrq512 ql, qh;
	__mmask32 mk;
};

PN_QX86_INLINE __m512i tap16(const int8_t *p, __mmask32 mk, int full)
{
	return _mm512_cvtepi8_epi16(full ? _mm256_loadu_si256((const __m256i *)(const void *)p)
					 : _mm256_maskz_loadu_epi8(mk, p));
}

/* Requantise the lo and hi accumulators of one pixel and store its bytes. */
PN_QX86_INLINE void dw_store(const struct dwblock *b, __m512i al, __m512i ah, int8_t *out,
			     __m512i zp16, __m256i lo8, __m256i hi8, int full, int mode)
{
	__m512i v = _mm512_adds_epi16(_mm512_packs_epi32(pn_qrq512_mode(&b->ql, al, mode),
							 pn_qrq512_mode(&b->qh, ah, mode)),
				      zp16);
	__m256i o = _mm256_min_epi8(_mm256_max_epi8(_mm512_cvtsepi16_epi8(v), lo8), hi8);
	if (full)
		_mm256_storeu_si256((__m256i *)(void *)out, o);
	else
		_mm256_mask_storeu_epi8(out, b->mk, o);
}

/* One output pixel of the block from its nine input pointers. */
PN_QX86_INLINE void dw_pixel(const struct dwblock *b, const int8_t *const px[9], int8_t *out,
			     __m512i zp16, __m256i lo8, __m256i hi8, int full, int mode)
{
	/* Two chains per half (even and odd pairs), so that a fused
	 * multiply-add's latency is not paid five times in a row. */
	__m512i al[2] = {b->bl, _mm512_setzero_si512()}, ah[2] = {b->bh, _mm512_setzero_si512()};
#pragma GCC unroll 5
	for (int p = 0; p < 5; p++) {
		__m512i x0 = tap16(px[2 * p], b->mk, full);
		__m512i x1 = p < 4 ? tap16(px[2 * p + 1], b->mk, full) : x0;
		al[p % 2] = PN_QDW_DOT(al[p % 2], _mm512_unpacklo_epi16(x0, x1), b->wl[p]);
		ah[p % 2] = PN_QDW_DOT(ah[p % 2], _mm512_unpackhi_epi16(x0, x1), b->wh[p]);
	}
	al[0] = _mm512_add_epi32(al[0], al[1]);
	ah[0] = _mm512_add_epi32(ah[0], ah[1]);
	dw_store(b, al[0], ah[0], out, zp16, lo8, hi8, full, mode);
}

/* Stride 1 reuses each input column for three outputs: a column's three
 * taps widened and paired once (rows 0 and 1; row 2 with itself, against
 * a zero weight) serve kx = 2, 1, 0 of outputs x - 1, x, x + 1. */
struct dwcol {
	__m512i pl, ph, ql, qh;
};

PN_QX86_INLINE struct dwcol dw_col(const int8_t *const rows[3], const size_t step[3], int x,
				   __mmask32 mk, int full)
{
	struct dwcol c;
	__m512i a0 = tap16(rows[0] + (size_t)x * step[0], mk, full),
		a1 = tap16(rows[1] + (size_t)x * step[1], mk, full),
		a2 = tap16(rows[2] + (size_t)x * step[2], mk, full);
	c.pl = _mm512_unpacklo_epi16(a0, a1);
	c.ph = _mm512_unpackhi_epi16(a0, a1);
	c.ql = _mm512_unpacklo_epi16(a2, a2);
	c.qh = _mm512_unpackhi_epi16(a2, a2);
	return c;
}

PN_QX86_INLINE void dw_pixel_cols(const struct dwblock *b, const struct dwcol col[3], int8_t *out,
				  __m512i zp16, __m256i lo8, __m256i hi8, int full, int mode)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512i al0 = b->bl, al1 = zero, ah0 = b->bh, ah1 = zero;
#pragma GCC unroll 3
	for (int kx = 0; kx < 3; kx++) {
		al0 = PN_QDW_DOT(al0, col[kx].pl, b->cal[kx]);
		al1 = PN_QDW_DOT(al1, col[kx].ql, b->cbl[kx]);
		ah0 = PN_QDW_DOT(ah0, col[kx].ph, b->cah[kx]);
		ah1 = PN_QDW_DOT(ah1, col[kx].qh, b->cbh[kx]);
	}
	dw_store(b, _mm512_add_epi32(al0, al1), _mm512_add_epi32(ah0, ah1), out, zp16, lo8, hi8,
		 full, mode);
}

PN_QX86_INLINE void dw_block_init(struct dwblock *b, const struct pn_qdw_args *a, int c0)
{
	const int c = a->c;
	const __m512i idl = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26,
					      27),
		      idh = _mm512_add_epi32(idl, _mm512_set1_epi32(4));
	b->mk = c - c0 >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << (c - c0)) - 1);
	__m512i w[9];
	for (int t = 0; t < 9; t++)
		w[t] = tap16(a->weights + (size_t)t * c + c0, b->mk, 0);
	const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi16(1);
	__m512i sl = zero, sh = zero;
	for (int p = 0; p < 5; p++) {
		__m512i w1 = p < 4 ? w[2 * p + 1] : zero;
		b->wl[p] = _mm512_unpacklo_epi16(w[2 * p], w1);
		b->wh[p] = _mm512_unpackhi_epi16(w[2 * p], w1);
		if (p < 3) {
			b->cal[p] = _mm512_unpacklo_epi16(w[p], w[3 + p]);
			b->cah[p] = _mm512_unpackhi_epi16(w[p], w[3 + p]);
			b->cbl[p] = _mm512_unpacklo_epi16(w[6 + p], zero);
			b->cbh[p] = _mm512_unpackhi_epi16(w[6 + p], zero);
		}
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
			       _mm512_permutex2var_epi32(exp0, idl, exp1), a->q.lo >= a->q.zp);
	b->qh = pn_qrq512_init(_mm512_permutex2var_epi32(mult0, idh, mult1),
			       _mm512_permutex2var_epi32(exp0, idh, exp1), a->q.lo >= a->q.zp);
}

/* Output rows of one channel block; `full` (a constant) when all 32
 * channels are there. */
PN_QX86_INLINE void dw_rows(const struct pn_qdw_args *a, const struct dwblock *b, int c0,
			    const int8_t *pad, int full, int mode)
{
	const int c = a->c, s = a->stride, in_w = a->in_w, out_w = a->out_w;
	const __m512i zp16 = _mm512_set1_epi16((short)a->q.zp);
	const __m256i lo8 = _mm256_set1_epi8((char)a->q.lo), hi8 = _mm256_set1_epi8((char)a->q.hi);
	/* Output columns [x0, x1) read no padding column. */
	const int x0 = 1, x1 = pn_qdw_inner_end(in_w, s);
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * out_w * c + c0;
		const int8_t *rows[3];
		size_t step[3];
		pn_qdw_rows(a, oy, c0, pad, rows, step);
		int ox = 0;
		if (s == 1 && x1 - x0 >= 2) {
			/* the first pixel, then the interior from a sliding window */
			const int8_t *px[9];
			for (int ky = 0; ky < 3; ky++)
				for (int kx = 0; kx < 3; kx++)
					px[ky * 3 + kx] =
						kx ? rows[ky] + (size_t)(kx - 1) * step[ky] : pad;
			dw_pixel(b, px, orow, zp16, lo8, hi8, full, mode);
			struct dwcol col[3];
			col[0] = dw_col(rows, step, 0, b->mk, full);
			col[1] = dw_col(rows, step, 1, b->mk, full);
			for (ox = x0; ox < x1; ox++) {
				col[2] = dw_col(rows, step, ox + 1, b->mk, full);
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

/* The depthwise of qops.h for channels [c_from, c). */
PN_QX86_INLINE void pn_qdw3x3_avx512_body(const struct pn_qdw_args *a, int c_from)
{
	int8_t pad[32];
	memset(pad, (int)(int8_t)a->in_zp, sizeof pad);
	for (int c0 = c_from; c0 < a->c; c0 += 32) {
		struct dwblock b;
		dw_block_init(&b, a, c0);
		/* full block and requantisation mode as constants */
		const int mode = b.ql.slow || b.qh.slow ? PN_QRQ_SLOW : pn_qrq512_modeof(&b.ql);
		switch ((a->c - c0 >= 32) * 3 + mode) {
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

#endif
