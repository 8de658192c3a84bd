/* The int8 1x1 convolution with AVX-512 VNNI, equal to pn_qpw_ref.
 *
 * vpdpbusd multiplies unsigned by signed bytes and adds four products to
 * each int32 lane. The activations are made unsigned, u = q + 128, so
 *   acc = bias + sum (q - zp) w = bias - (128 + zp) colsum + sum u w
 * with colsum, the sum of a column's weights, stored at pack time. Every
 * step wraps modulo 2^32 and the true accumulator fits int32 (qmodel.c
 * bounds k and bias), so the result is exact.
 *
 * Packed by qpack4.h with 16 columns. A tile is 4 rows by up to 64 columns,
 * rows past m repeating the last (computed, not stored). */
#include <string.h>

#include "qpack4.h"
#include "qx86.h"

#define MR 4
#define NB 4

static int quads(int k)
{
	return (k + 3) / 4;
}

size_t pn_qpw_packed_bytes_vnni(int k, int n)
{
	return pn_qpack4_bytes(k, n, 16);
}

void pn_qpw_pack_vnni(const int8_t *w, int k, int n, int8_t *packed)
{
	pn_qpack4(w, k, n, 16, packed);
}

static inline __m512i bcast_u8(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm512_xor_si512(_mm512_set1_epi32(v), _mm512_set1_epi32((int32_t)0x80808080));
}

/* The accumulators' start of columns [col, col + 16 nb): bias - (128 +
 * in_zp) colsum, made once per column block. */
PN_QX86_INLINE void acc_init(__m512i init[NB], const struct pn_qout *q, const int32_t *colsum,
			     int n, int col, int nb, int32_t in_zp)
{
	const __m512i off = _mm512_set1_epi32(128 + in_zp);
	for (int b = 0; b < nb && b < NB; b++) {
		const int c = col + 16 * b;
		init[b] = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(pn_qmask16(n - c), q->bias + c),
					   _mm512_mullo_epi32(off, _mm512_loadu_si512(colsum + c)));
	}
}

PN_QX86_INLINE void tile(const int8_t *const *a, int8_t *out, int rows, const int8_t *pk,
			 const __m512i *init, int k, int n, int col, int nb,
			 const struct pn_qout *q, const struct pn_qrq512 *rq, int mode)
{
	const int kq = quads(k), kfull = k / 4;
	__m512i acc[MR][NB];
	const int8_t *wb[NB];
#pragma GCC unroll 4
	for (int b = 0; b < nb; b++) {
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			acc[i][b] = init[b];
		wb[b] = pk + (size_t)(col / 16 + b) * kq * 64;
	}
	for (int t = 0; t < kfull; t++) {
		__m512i w[NB];
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			w[b] = _mm512_loadu_si512(wb[b] + (size_t)t * 64);
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++) {
			__m512i x = bcast_u8(a[i] + 4 * t);
#pragma GCC unroll 4
			for (int b = 0; b < nb; b++)
				acc[i][b] = _mm512_dpbusd_epi32(acc[i][b], x, w[b]);
		}
	}
	if (kfull < kq) {
		__m512i w[NB];
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			w[b] = _mm512_loadu_si512(wb[b] + (size_t)kfull * 64);
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++) {
			int8_t last[4] = {0, 0, 0, 0};
			memcpy(last, a[i] + 4 * kfull, (size_t)(k - 4 * kfull));
			__m512i x = bcast_u8(last);
#pragma GCC unroll 4
			for (int b = 0; b < nb; b++)
				acc[i][b] = _mm512_dpbusd_epi32(acc[i][b], x, w[b]);
		}
	}
	pn_qstore_tile512(out, n, col, rows, nb, acc, rq, q, mode);
}

void pn_qpw_vnni(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		 int32_t in_zp, const struct pn_qout *q)
{
	const int nb = (n + 15) / 16;
	const int32_t *colsum =
		(const int32_t *)(const void *)(packed + (size_t)nb * quads(k) * 64);
	for (int cb = 0; cb < nb; cb += NB) {
		const int col = cb * 16, left = nb - cb;
		struct pn_qrq512 rq[NB];
		pn_qrq512_cols(rq, q, col, n, left);
		const int mode = pn_qrq512_cols_mode(rq, left);
		__m512i init[NB];
		acc_init(init, q, colsum, n, col, left, in_zp);
		for (int r = 0; r < m; r += MR) {
			const int8_t *a[MR];
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++)
				a[i] = in + (size_t)(r + i < m ? r + i : m - 1) * k;
			int rows = m - r < MR ? m - r : MR;
			int8_t *o = out + (size_t)r * n;
			/* nb and the requantisation mode as constants */
#define PN_TILE(nbv, md)                                                                           \
	case (nbv)*3 + (md):                                                                       \
		tile(a, o, rows, packed, init, k, n, col, nbv, q, rq, md);                         \
		break
			switch ((left < NB ? left : NB) * 3 + mode) {
				PN_TILE(1, PN_QRQ_SIGNED);
				PN_TILE(1, PN_QRQ_RELU);
				PN_TILE(1, PN_QRQ_SLOW);
				PN_TILE(2, PN_QRQ_SIGNED);
				PN_TILE(2, PN_QRQ_RELU);
				PN_TILE(2, PN_QRQ_SLOW);
				PN_TILE(3, PN_QRQ_SIGNED);
				PN_TILE(3, PN_QRQ_RELU);
				PN_TILE(3, PN_QRQ_SLOW);
				PN_TILE(4, PN_QRQ_SIGNED);
				PN_TILE(4, PN_QRQ_RELU);
			default:
				tile(a, o, rows, packed, init, k, n, col, 4, q, rq, PN_QRQ_SLOW);
				break;
			}
#undef PN_TILE
		}
	}
}

/* The RGB stem's tile: as tile() with k = 36, quad t of a pixel read
 * from its three input rows, `rs` bytes apart, at 4 (t % 3) bytes: each
 * row's 9 bytes (3 pixels by 3 channels) and 3 more against weight 0.
 * The rows are unsigned already. */
PN_QX86_INLINE void stem_tile(const uint8_t *const *a, int8_t *out, int rows, const int8_t *pk,
			      const __m512i *init, size_t rs, int n, int nb,
			      const struct pn_qout *q, const struct pn_qrq512 *rq, int mode)
{
	__m512i acc[MR][NB];
#pragma GCC unroll 4
	for (int b = 0; b < nb; b++)
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			acc[i][b] = init[b];
#pragma GCC unroll 9
	for (int t = 0; t < 9; t++) {
		__m512i w[NB];
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			w[b] = _mm512_loadu_si512(pk + ((size_t)b * 9 + t) * 64);
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++) {
			int32_t v;
			memcpy(&v, a[i] + (size_t)(t / 3) * rs + 4 * (t % 3), 4);
			const __m512i x = _mm512_set1_epi32(v);
#pragma GCC unroll 4
			for (int b = 0; b < nb; b++)
				acc[i][b] = _mm512_dpbusd_epi32(acc[i][b], x, w[b]);
		}
	}
	pn_qstore_tile512(out, n, 0, rows, nb, acc, rq, q, mode);
}

/* Input row iy of the stem as unsigned bytes (q ^ 0x80) with a padding
 * pixel before and after it and padding to `rs` bytes; a row outside the
 * image is all padding. */
static void stem_row(const struct pn_qconv_args *a, int iy, uint8_t *row, size_t rs)
{
	const uint8_t pad = (uint8_t)(a->in_zp ^ 0x80);
	const size_t len = (size_t)a->in_w * 3;
	memset(row, pad, rs);
	if (iy < 0 || iy >= a->in_h)
		return;
	const int8_t *src = a->in + (size_t)iy * len;
	const __m512i flip = _mm512_set1_epi8((char)0x80);
	for (size_t i = 0; i < len; i += 64) {
		const __mmask64 mk = pn_qmask64(len - i < 64 ? (int)(len - i) : 64);
		_mm512_mask_storeu_epi8(
			row + 3 + i, mk,
			_mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, src + i), flip));
	}
}

/* The RGB stem without im2col: each output row's three input rows are
 * made unsigned and padded once, and its pixels read their 3x3x3 patch
 * from them in place. */
#define STEM_WMAX 2048
static int stem_vnni(const struct pn_qconv_args *a)
{
	const int cout = a->cout, s = a->stride, in_w = a->in_w;
	if (a->cin != 3 || cout < 1 || cout > 64 || in_w > STEM_WMAX)
		return 0;
	int8_t wt[64 * 36];
	int8_t packed[4 * 9 * 64 + 64 * sizeof(int32_t)] __attribute__((aligned(64)));
	for (int j = 0; j < cout; j++)
		for (int ky = 0; ky < 3; ky++)
			for (int b = 0; b < 12; b++)
				wt[j * 36 + ky * 12 + b] =
					b < 9 ? a->weights[(size_t)(ky * 9 + b) * cout + j] : 0;
	pn_qpw_pack_vnni(wt, 36, cout, packed);
	const int nb = (cout + 15) / 16;
	const int32_t *colsum = (const int32_t *)(const void *)(packed + (size_t)nb * 9 * 64);
	struct pn_qrq512 rq[NB];
	pn_qrq512_cols(rq, &a->q, 0, cout, nb);
	const int mode = pn_qrq512_cols_mode(rq, nb);
	__m512i init[NB];
	acc_init(init, &a->q, colsum, cout, 0, nb, a->in_zp);
	/* a pixel reads 12 bytes from its first padding-row byte */
	const size_t rs = ((size_t)(in_w + 2) * 3 + 3 + 63) & ~(size_t)63;
	uint8_t buf[3 * (((size_t)(STEM_WMAX + 2) * 3 + 3 + 63) & ~(size_t)63)]
		__attribute__((aligned(64)));
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		for (int ky = 0; ky < 3; ky++)
			stem_row(a, oy * s - 1 + ky, buf + ky * rs, rs);
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * cout;
		for (int ox = 0; ox < a->out_w; ox += MR) {
			const uint8_t *px[MR];
			const int rows = a->out_w - ox < MR ? a->out_w - ox : MR;
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++)
				px[i] = buf + (size_t)(ox + (i < rows ? i : rows - 1)) * s * 3;
			int8_t *o = orow + (size_t)ox * cout;
			/* nb as a constant, and the requantisation mode where common */
#define PN_STEM(nbv)                                                                               \
	case nbv:                                                                                  \
		if (mode == PN_QRQ_RELU)                                                           \
			stem_tile(px, o, rows, packed, init, rs, cout, nbv, &a->q, rq,             \
				  PN_QRQ_RELU);                                                    \
		else                                                                               \
			stem_tile(px, o, rows, packed, init, rs, cout, nbv, &a->q, rq, mode);      \
		break
			switch (nb) {
				PN_STEM(1);
				PN_STEM(2);
				PN_STEM(3);
			default:
				stem_tile(px, o, rows, packed, init, rs, cout, 4, &a->q, rq, mode);
				break;
			}
#undef PN_STEM
		}
	}
	return 1;
}

/* The RGB stem by stem_vnni, other stems through this pointwise kernel
 * (qx86.h), else the AVX-512 loop. */
void pn_qconv3x3_vnni(const struct pn_qconv_args *a)
{
	if (stem_vnni(a))
		return;
	if (!pn_qconv3x3_im2col(a, pn_qpw_packed_bytes_vnni, pn_qpw_pack_vnni, pn_qpw_vnni))
		pn_qconv3x3_avx512(a);
}

/* The peak loop: 16 chains of vpdpbusd zmm (64 int8 MACs each). */
void pn_qpeak_vnni(long n)
{
	__m512i acc[16];
	const __m512i x = _mm512_set1_epi32(0x01010101), w = _mm512_set1_epi32(0x01ff01ff);
	for (int i = 0; i < 16; i++)
		acc[i] = _mm512_set1_epi32(i);
	for (long j = 0; j < n; j++) {
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++)
			acc[i] = _mm512_dpbusd_epi32(acc[i], x, w);
	}
	volatile int sink = 0;
	for (int i = 0; i < 16; i++)
		sink += _mm512_reduce_add_epi32(acc[i]);
	(void)sink;
}
