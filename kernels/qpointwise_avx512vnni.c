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

PN_QX86_INLINE void tile(const int8_t *const *a, int8_t *out, int rows, const int8_t *pk,
			 const int32_t *colsum, int k, int n, int col, int nb, int32_t in_zp,
			 const struct pn_qout *q, const struct pn_qrq512 *rq, int mode)
{
	const int kq = quads(k), kfull = k / 4;
	const __m512i off = _mm512_set1_epi32(128 + in_zp);
	__m512i acc[MR][NB];
	const int8_t *wb[NB];
#pragma GCC unroll 4
	for (int b = 0; b < nb; b++) {
		int c = col + 16 * b;
		__m512i init =
			_mm512_sub_epi32(_mm512_maskz_loadu_epi32(pn_qmask16(n - c), q->bias + c),
					 _mm512_mullo_epi32(off, _mm512_loadu_si512(colsum + c)));
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			acc[i][b] = init;
		wb[b] = pk + (size_t)(c / 16) * kq * 64;
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
		tile(a, o, rows, packed, colsum, k, n, col, nbv, in_zp, q, rq, md);                \
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
				tile(a, o, rows, packed, colsum, k, n, col, 4, in_zp, q, rq,
				     PN_QRQ_SLOW);
				break;
			}
#undef PN_TILE
		}
	}
}

/* The stem through this pointwise kernel (qx86.h), else the AVX-512 loop. */
void pn_qconv3x3_vnni(const struct pn_qconv_args *a)
{
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
