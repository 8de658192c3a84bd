/* The int8 1x1 convolution with AVX-512BW and no VNNI, equal to
 * pn_qpw_ref: vpmaddwd on int16, exact (|q - zp| <= 255, |w| <= 127: a
 * pair sums to at most 64770, far inside int32; vpmaddubsw on bytes could
 * saturate its int16 pair sums, so it is not used).
 *
 * Packed: weights widened to int16, [n / 16][k / 2][16][2] (rounded up,
 * zeros). The activations of 4 rows are widened to (q - zp) in int16 on
 * the stack, KC at a time; a tile is 4 rows by up to 64 columns,
 * requantised by pn_qrq512 and stored by pn_qstore_tile512 (qx86.h). */
#include <string.h>

#include "qx86.h"

#define MR 4
#define NB 4
#define KC 256 /* even */

static int pairs(int k)
{
	return (k + 1) / 2;
}

size_t pn_qpw_packed_bytes_avx512(int k, int n)
{
	return (size_t)((n + 15) / 16) * pairs(k) * 64;
}

void pn_qpw_pack_avx512(const int8_t *w, int k, int n, int8_t *packed)
{
	const int kp = pairs(k);
	int16_t *p = (int16_t *)(void *)packed;
	memset(packed, 0, pn_qpw_packed_bytes_avx512(k, n));
	for (int j = 0; j < n; j++)
		for (int i = 0; i < k; i++)
			p[((size_t)(j / 16) * kp + i / 2) * 32 + (j % 16) * 2 + i % 2] =
				w[(size_t)j * k + i];
}

PN_QX86_INLINE void tile(const int8_t *const *a, int8_t *out, int rows, const int8_t *pk, int k,
			 int n, int col, int nb, int32_t in_zp, const struct pn_qout *q,
			 const struct pn_qrq512 *rq)
{
	const int kp = pairs(k);
	int16_t x16[MR][KC];
	__m512i acc[MR][NB];
	const int8_t *wb[NB];
#pragma GCC unroll 4
	for (int b = 0; b < nb; b++) {
		int c = col + 16 * b;
		__m512i init = _mm512_maskz_loadu_epi32(pn_qmask16(n - c), q->bias + c);
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			acc[i][b] = init;
		wb[b] = pk + (size_t)(c / 16) * kp * 64;
	}
	for (int k0 = 0; k0 < k; k0 += KC) {
		const int kn = k - k0 < KC ? k - k0 : KC;
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++) {
			for (int t = 0; t < kn; t++)
				x16[i][t] = (int16_t)(a[i][k0 + t] - in_zp);
			if (kn % 2)
				x16[i][kn] = 0;
		}
		for (int t = 0; t < (kn + 1) / 2; t++) {
			__m512i w[NB];
#pragma GCC unroll 4
			for (int b = 0; b < nb; b++)
				w[b] = _mm512_loadu_si512(wb[b] + ((size_t)k0 / 2 + t) * 64);
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++) {
				int32_t v;
				memcpy(&v, &x16[i][2 * t], 4);
				__m512i x = _mm512_set1_epi32(v);
#pragma GCC unroll 4
				for (int b = 0; b < nb; b++)
					acc[i][b] = _mm512_add_epi32(acc[i][b],
								     _mm512_madd_epi16(x, w[b]));
			}
		}
	}
	pn_qstore_tile512(out, n, col, rows, nb, acc, rq, q, pn_qrq512_cols_mode(rq, nb));
}

void pn_qpw_avx512(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		   int32_t in_zp, const struct pn_qout *q)
{
	const int nb = (n + 15) / 16;
	for (int cb = 0; cb < nb; cb += NB) {
		const int col = cb * 16, left = nb - cb;
		struct pn_qrq512 rq[NB];
		pn_qrq512_cols(rq, q, col, n, left);
		for (int r = 0; r < m; r += MR) {
			const int8_t *a[MR];
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++)
				a[i] = in + (size_t)(r + i < m ? r + i : m - 1) * k;
			int rows = m - r < MR ? m - r : MR;
			int8_t *o = out + (size_t)r * n;
			switch (left) {
			case 1:
				tile(a, o, rows, packed, k, n, col, 1, in_zp, q, rq);
				break;
			case 2:
				tile(a, o, rows, packed, k, n, col, 2, in_zp, q, rq);
				break;
			case 3:
				tile(a, o, rows, packed, k, n, col, 3, in_zp, q, rq);
				break;
			default:
				tile(a, o, rows, packed, k, n, col, 4, in_zp, q, rq);
				break;
			}
		}
	}
}

/* The peak loop: 16 chains of vpmaddwd zmm + vpaddd (32 int16 MACs each). */
void pn_qpeak_avx512(long n)
{
	__m512i acc[16];
	const __m512i w = _mm512_set1_epi32(0x0002fffe);
	for (int i = 0; i < 16; i++)
		acc[i] = _mm512_set1_epi32(i);
	for (long j = 0; j < n; j++) {
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++)
			acc[i] = _mm512_add_epi32(acc[i], _mm512_madd_epi16(acc[i], w));
	}
	volatile int sink = 0;
	for (int i = 0; i < 16; i++) {
		int32_t v[sizeof(__m512i) / 4];
		memcpy(v, &acc[i], sizeof v);
		sink += v[0];
	}
	(void)sink;
}
