/* The int8 1x1 convolution with AVX2, equal to pn_qpw_ref: vpmaddwd on
 * int16, exact (a pair of (q - zp) * w sums to at most 2 * 255 * 127;
 * vpmaddubsw on bytes could saturate int16, so it is not used).
 *
 * Packed: weights widened to int16, [n / 8][k / 2][8][2] (rounded up,
 * zeros). The activations of 4 rows are widened to (q - zp) in int16 on
 * the stack, KC at a time; a tile is 4 rows by up to 16 columns; column
 * tails are computed whole and stored through a small buffer. */
#include <string.h>

#include "qx86.h"

#define MR 4
#define NB 2
#define KC 256 /* even */

static int pairs(int k)
{
	return (k + 1) / 2;
}

size_t pn_qpw_packed_bytes_avx2(int k, int n)
{
	return (size_t)((n + 7) / 8) * pairs(k) * 32;
}

void pn_qpw_pack_avx2(const int8_t *w, int k, int n, int8_t *packed)
{
	const int kp = pairs(k);
	int16_t *p = (int16_t *)(void *)packed;
	memset(packed, 0, pn_qpw_packed_bytes_avx2(k, n));
	for (int j = 0; j < n; j++)
		for (int i = 0; i < k; i++)
			p[((size_t)(j / 8) * kp + i / 2) * 16 + (j % 8) * 2 + i % 2] =
				w[(size_t)j * k + i];
}

/* Eight columns from c: requantised and stored, the last block partly. */
static inline void store_cols(int8_t *out, __m256i acc, const struct pn_qout *q, int c, int left)
{
	const __m256i zp = _mm256_set1_epi32(q->zp), lo = _mm256_set1_epi32(q->lo),
		      hi = _mm256_set1_epi32(q->hi);
	if (left >= 8) {
		__m256i mult = _mm256_loadu_si256((const __m256i *)(const void *)(q->mult + c));
		__m256i exp = _mm256_cvtepi8_epi32(
			_mm_loadl_epi64((const __m128i *)(const void *)(q->exp + c)));
		pn_qstore8_avx2(out + c, pn_qout_avx2(acc, mult, exp, zp, lo, hi));
		return;
	}
	int32_t m8[8] = {0}, e8[8] = {0};
	int8_t o8[8];
	for (int j = 0; j < left; j++) {
		m8[j] = q->mult[c + j];
		e8[j] = q->exp[c + j];
	}
	__m256i mult = _mm256_loadu_si256((const __m256i *)(void *)m8);
	__m256i exp = _mm256_loadu_si256((const __m256i *)(void *)e8);
	pn_qstore8_avx2(o8, pn_qout_avx2(acc, mult, exp, zp, lo, hi));
	memcpy(out + c, o8, (size_t)left);
}

PN_QX86_INLINE void tile(const int8_t *const *a, int8_t *out, int rows, const int8_t *pk, int k,
			 int n, int col, int nb, int32_t in_zp, const struct pn_qout *q)
{
	const int kp = pairs(k);
	int16_t x16[MR][KC];
	__m256i acc[MR][NB];
	const int8_t *wb[NB];
#pragma GCC unroll 4
	for (int b = 0; b < nb; b++) {
		int c = col + 8 * b;
		int32_t b8[8] = {0};
		for (int j = 0; j < 8 && c + j < n; j++)
			b8[j] = q->bias[c + j];
		__m256i init = _mm256_loadu_si256((const __m256i *)(void *)b8);
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			acc[i][b] = init;
		wb[b] = pk + (size_t)(c / 8) * kp * 32;
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
			__m256i w[NB];
#pragma GCC unroll 4
			for (int b = 0; b < nb; b++)
				w[b] = _mm256_loadu_si256(
					(const __m256i *)(const void *)(wb[b] +
									((size_t)k0 / 2 + t) * 32));
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++) {
				int32_t v;
				memcpy(&v, &x16[i][2 * t], 4);
				__m256i x = _mm256_set1_epi32(v);
#pragma GCC unroll 4
				for (int b = 0; b < nb; b++)
					acc[i][b] = _mm256_add_epi32(acc[i][b],
								     _mm256_madd_epi16(x, w[b]));
			}
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			store_cols(out + (size_t)i * n, acc[i][b], q, col + 8 * b, n - col - 8 * b);
}

void pn_qpw_avx2(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		 int32_t in_zp, const struct pn_qout *q)
{
	const int nb = (n + 7) / 8;
	for (int cb = 0; cb < nb; cb += NB) {
		const int col = cb * 8;
		for (int r = 0; r < m; r += MR) {
			const int8_t *a[MR];
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++)
				a[i] = in + (size_t)(r + i < m ? r + i : m - 1) * k;
			int rows = m - r < MR ? m - r : MR;
			int8_t *o = out + (size_t)r * n;
			if (nb - cb >= 2)
				tile(a, o, rows, packed, k, n, col, 2, in_zp, q);
			else
				tile(a, o, rows, packed, k, n, col, 1, in_zp, q);
		}
	}
}

/* The peak loop: 16 chains of vpmaddwd ymm + vpaddd (16 int16 MACs each). */
void pn_qpeak_avx2(long n)
{
	__m256i acc[16];
	const __m256i w = _mm256_set1_epi32(0x0002fffe);
	for (int i = 0; i < 16; i++)
		acc[i] = _mm256_set1_epi32(i);
	for (long j = 0; j < n; j++) {
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++)
			acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(acc[i], w));
	}
	volatile int sink = 0;
	for (int i = 0; i < 16; i++) {
		int32_t v[sizeof(__m256i) / 4];
		memcpy(v, &acc[i], sizeof v);
		sink += v[0];
	}
	(void)sink;
}
