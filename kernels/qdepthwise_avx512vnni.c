/* The int8 depthwise 3x3 with AVX-512 VNNI, equal to pn_qdw3x3_ref.
 *
 * 64 channels at a time by vpdpbusd, which adds four u8 x s8 products to
 * each int32 lane. A lane holds one channel of one input column: its taps
 * in rows ky = 0, 1, 2 and a fourth byte against weight 0, so an output
 * pixel is one dot product per column kx and 16 channels. Interleaving
 * the three rows' bytes by unpacklo/hi_epi8 then _epi16 puts channels
 * 16 L + 4 j .. 16 L + 4 j + 3 of each 128-bit lane L in quad vector j;
 * the saturating packs that narrow the four results restore the order.
 * A column's quads serve kx = 2, 1, 0 of outputs x - 1, x, x + 1 at
 * stride 1, and two outputs at stride 2.
 *
 * The activations are made unsigned, u = q + 128 (q ^ 0x80), so, as in
 * the pointwise kernel, acc = bias - (128 + in_zp) sum(w) + sum(u w).
 * Padding reads in_zp, whose u - 128 - in_zp is 0, so the nine-weight sum
 * holds at the borders too. Every step wraps modulo 2^32 and the true
 * accumulator fits int32 (qmodel.c bounds bias), so the result is exact.
 *
 * A last block of 32 channels or fewer goes through qdw_avx512.h with
 * vpdpwssd, two taps per product on int16, which wastes no lanes there. */
#include "qx86.h"
#define PN_QDW_DOT(acc, x, w) _mm512_dpwssd_epi32(acc, x, w)
#include "qdw_avx512.h"

struct dw64 {
	__m512i w[3][4]; /* [kx][quad] */
	__m512i base[4]; /* bias - (128 + in_zp) * the nine weights' sum */
	struct pn_qrq512 q[4];
	__mmask64 mk;
};

/* A column's four quad vectors. */
struct quads {
	__m512i v[4];
};

/* Three rows of 64 bytes as the four quad vectors (the 4th byte d's). */
PN_QX86_INLINE struct quads quads(__m512i r0, __m512i r1, __m512i r2, __m512i d)
{
	const __m512i lo01 = _mm512_unpacklo_epi8(r0, r1), hi01 = _mm512_unpackhi_epi8(r0, r1),
		      lo2 = _mm512_unpacklo_epi8(r2, d), hi2 = _mm512_unpackhi_epi8(r2, d);
	struct quads q = {{_mm512_unpacklo_epi16(lo01, lo2), _mm512_unpackhi_epi16(lo01, lo2),
			   _mm512_unpacklo_epi16(hi01, hi2), _mm512_unpackhi_epi16(hi01, hi2)}};
	return q;
}

/* Channels 16 i .. 16 i + 15 in b[i] to the quad order: v[j] holds
 * 128-bit chunk j of each b[i], i = 0..3 (a 4 x 4 transpose of chunks). */
PN_QX86_INLINE void to_quad_order(const __m512i b[4], __m512i v[4])
{
	const __m512i t0 = _mm512_shuffle_i32x4(b[0], b[1], _MM_SHUFFLE(1, 0, 1, 0)),
		      t1 = _mm512_shuffle_i32x4(b[0], b[1], _MM_SHUFFLE(3, 2, 3, 2)),
		      t2 = _mm512_shuffle_i32x4(b[2], b[3], _MM_SHUFFLE(1, 0, 1, 0)),
		      t3 = _mm512_shuffle_i32x4(b[2], b[3], _MM_SHUFFLE(3, 2, 3, 2));
	v[0] = _mm512_shuffle_i32x4(t0, t2, _MM_SHUFFLE(2, 0, 2, 0));
	v[1] = _mm512_shuffle_i32x4(t0, t2, _MM_SHUFFLE(3, 1, 3, 1));
	v[2] = _mm512_shuffle_i32x4(t1, t3, _MM_SHUFFLE(2, 0, 2, 0));
	v[3] = _mm512_shuffle_i32x4(t1, t3, _MM_SHUFFLE(3, 1, 3, 1));
}

static void dw64_init(struct dw64 *b, const struct pn_qdw_args *a, int c0)
{
	const int c = a->c, left = c - c0;
	const __m512i zero = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1);
	b->mk = pn_qmask64(left);
	__m512i sum[4] = {zero, zero, zero, zero};
	for (int kx = 0; kx < 3; kx++) {
		const int8_t *w = a->weights + (size_t)kx * c + c0;
		const struct quads wq = quads(_mm512_maskz_loadu_epi8(b->mk, w),
					      _mm512_maskz_loadu_epi8(b->mk, w + 3 * c),
					      _mm512_maskz_loadu_epi8(b->mk, w + 6 * c), zero);
		for (int j = 0; j < 4; j++) {
			b->w[kx][j] = wq.v[j];
			sum[j] = _mm512_dpbusd_epi32(sum[j], ones, wq.v[j]);
		}
	}
	__m512i bias[4], mult[4], exp[4];
	for (int i = 0; i < 4; i++) {
		const int in = left > 16 * i, ci = in ? c0 + 16 * i : c0;
		const __mmask16 m = in ? pn_qmask16(left - 16 * i) : 0;
		bias[i] = _mm512_maskz_loadu_epi32(m, a->q.bias + ci);
		mult[i] = _mm512_maskz_loadu_epi32(m, a->q.mult + ci);
		exp[i] = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, a->q.exp + ci));
	}
	__m512i qb[4], qm[4], qe[4];
	to_quad_order(bias, qb);
	to_quad_order(mult, qm);
	to_quad_order(exp, qe);
	const __m512i off = _mm512_set1_epi32(128 + a->in_zp);
	for (int j = 0; j < 4; j++) {
		b->base[j] = _mm512_sub_epi32(qb[j], _mm512_mullo_epi32(off, sum[j]));
		b->q[j] = pn_qrq512_init(qm[j], qe[j], a->q.lo >= a->q.zp);
	}
}

/* The quads of input column ix of the three rows (made unsigned), or
 * those of the padding column. */
PN_QX86_INLINE struct quads column(const int8_t *const rows[3], const size_t step[3], int ix,
				   int in_w, __mmask64 mk, int full, struct quads pad)
{
	if (ix < 0 || ix >= in_w)
		return pad;
	const __m512i flip = _mm512_set1_epi8((char)0x80);
	__m512i r[3];
#pragma GCC unroll 3
	for (int ky = 0; ky < 3; ky++) {
		const int8_t *p = rows[ky] + (size_t)ix * step[ky];
		r[ky] = _mm512_xor_si512(
			full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(mk, p), flip);
	}
	return quads(r[0], r[1], r[2], _mm512_setzero_si512());
}

/* One output pixel from its three columns' quads. */
PN_QX86_INLINE void pixel(const struct dw64 *b, struct quads c0, struct quads c1, struct quads c2,
			  int8_t *out, __m512i zp16, __m512i lo8, __m512i hi8, int full, int mode)
{
	__m512i y[4];
#pragma GCC unroll 4
	for (int j = 0; j < 4; j++) {
		__m512i acc = _mm512_dpbusd_epi32(b->base[j], c0.v[j], b->w[0][j]);
		acc = _mm512_dpbusd_epi32(acc, c1.v[j], b->w[1][j]);
		acc = _mm512_dpbusd_epi32(acc, c2.v[j], b->w[2][j]);
		y[j] = pn_qrq512_mode(&b->q[j], acc, mode);
	}
	/* the quads' lane order is the packs' own: no permute */
	const __m512i v = pn_qpack64_lanes_avx512(y[0], y[1], y[2], y[3], zp16, lo8, hi8);
	if (full)
		_mm512_storeu_si512(out, v);
	else
		_mm512_mask_storeu_epi8(out, b->mk, v);
}

/* Output rows of one block of 64 channels (`full`) or fewer; `stride`
 * and `mode` are constants where called. */
PN_QX86_INLINE void rows64(const struct pn_qdw_args *a, const struct dw64 *b, int c0,
			   const int8_t *pad, int full, int stride, int mode)
{
	const int c = a->c, in_w = a->in_w, out_w = a->out_w;
	const __m512i zp16 = _mm512_set1_epi16((short)a->q.zp),
		      lo8 = _mm512_set1_epi8((char)a->q.lo), hi8 = _mm512_set1_epi8((char)a->q.hi);
	const __m512i padu = _mm512_set1_epi8((char)(a->in_zp ^ 0x80));
	const struct quads padq = quads(padu, padu, padu, _mm512_setzero_si512());
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * out_w * c + c0;
		const int8_t *rows[3];
		size_t step[3];
		pn_qdw_rows(a, oy, c0, pad, rows, step);
		struct quads v0 = padq;
		if (stride == 1) {
			struct quads v1 = column(rows, step, 0, in_w, b->mk, full, padq);
			for (int ox = 0; ox < out_w; ox++) {
				struct quads v2 =
					column(rows, step, ox + 1, in_w, b->mk, full, padq);
				pixel(b, v0, v1, v2, orow + (size_t)ox * c, zp16, lo8, hi8, full,
				      mode);
				v0 = v1;
				v1 = v2;
			}
		} else {
			for (int ox = 0; ox < out_w; ox++) {
				struct quads v1 =
					column(rows, step, 2 * ox, in_w, b->mk, full, padq);
				struct quads v2 =
					column(rows, step, 2 * ox + 1, in_w, b->mk, full, padq);
				pixel(b, v0, v1, v2, orow + (size_t)ox * c, zp16, lo8, hi8, full,
				      mode);
				v0 = v2;
			}
		}
	}
}

void pn_qdw3x3_vnni(const struct pn_qdw_args *a)
{
	int8_t pad[64];
	memset(pad, (int)(int8_t)a->in_zp, sizeof pad);
	int c0 = 0;
	for (; a->c - c0 > 32; c0 += 64) {
		struct dw64 b;
		dw64_init(&b, a, c0);
		const int mode = pn_qrq512_cols_mode(b.q, 4);
		const int full = a->c - c0 >= 64;
		/* full block, stride and the common modes as constants */
		if (full && a->stride == 1 && mode == PN_QRQ_RELU)
			rows64(a, &b, c0, pad, 1, 1, PN_QRQ_RELU);
		else if (full && a->stride == 2 && mode == PN_QRQ_RELU)
			rows64(a, &b, c0, pad, 1, 2, PN_QRQ_RELU);
		else if (a->stride == 1)
			rows64(a, &b, c0, pad, full, 1, mode);
		else
			rows64(a, &b, c0, pad, full, 2, mode);
	}
	pn_qdw3x3_avx512_body(a, c0);
}
