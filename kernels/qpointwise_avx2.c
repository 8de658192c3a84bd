/* The int8 1x1 convolution with AVX2, equal to pn_qpw_ref: vpmaddwd on
 * int16, exact (a pair of (q - zp) * w sums to at most 2 * 255 * 127;
 * vpmaddubsw on bytes could saturate int16, so it is not used).
 *
 * Packed: weights widened to int16, [n / 8][k / 2][8][2] (rounded up,
 * zeros). The activations of 4 rows are widened to (q - zp) in int16 on
 * the stack once for a chunk of columns (KC at a time only for a longer
 * k); a tile is 4 rows by up to 16 columns; column tails are computed
 * whole and stored through a small buffer. */
#include <string.h>

#include "qx86.h"

#define MR 4
#define NB 2
#define KC 1024 /* even: every 1x1 of MobileNetV2 (k <= 960) widened whole */
#define NCHUNK 16 /* column blocks of 8 a row block is widened for */

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

/* The requantisation of column block cb (8 columns from 8 cb, zeros past n). */
static inline struct pn_qrq256 block_rq(const struct pn_qout *q, int cb, int n)
{
	return pn_qrq256_init(pn_qload8_i32_avx2(q->mult + 8 * cb, n - 8 * cb),
			      pn_qload8_avx2(q->exp + 8 * cb, n - 8 * cb), q->lo >= q->zp);
}

/* Eight columns from c: requantised and stored, the last block partly. */
PN_QX86_INLINE void store_cols(int8_t *out, __m256i acc, const struct pn_qrq256 *rq, int mode,
			       const struct pn_qout *q, int c, int left)
{
	const __m256i zp = _mm256_set1_epi32(q->zp), lo = _mm256_set1_epi32(q->lo),
		      hi = _mm256_set1_epi32(q->hi);
	pn_qstore8_left_avx2(out + c, pn_qclamp_avx2(pn_qrq256_mode(rq, acc, mode), zp, lo, hi),
			     left);
}

/* Rows a[0..MR) from k0, kn of them, as (q - zp) in int16, zero past kn
 * to an even count. */
static inline void widen(int16_t x16[MR][KC], const int8_t *const *a, int k0, int kn, int32_t in_zp)
{
	const __m256i zp = _mm256_set1_epi16((int16_t)in_zp);
#pragma GCC unroll 4
	for (int i = 0; i < MR; i++) {
		const int8_t *src = a[i] + k0;
		int t = 0;
		for (; t + 16 <= kn; t += 16)
			_mm256_storeu_si256(
				(__m256i *)(void *)&x16[i][t],
				_mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(
							 (const __m128i *)(const void *)(src + t))),
						 zp));
		for (; t < kn; t++)
			x16[i][t] = (int16_t)(src[t] - in_zp);
		if (kn % 2)
			x16[i][kn] = 0;
	}
}

/* acc += the widened rows [k0, k0 + kn) times nb column blocks from col. */
PN_QX86_INLINE void accumulate(__m256i acc[MR][NB], const int16_t x16[MR][KC], const int8_t *pk,
			       int kp, int k0, int kn, int col, int nb)
{
	const int8_t *wb[NB];
#pragma GCC unroll 4
	for (int b = 0; b < nb; b++)
		wb[b] = pk + ((size_t)(col / 8 + b) * kp + (size_t)k0 / 2) * 32;
	for (int t = 0; t < (kn + 1) / 2; t++) {
		__m256i w[NB];
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			w[b] = _mm256_loadu_si256(
				(const __m256i *)(const void *)(wb[b] + (size_t)t * 32));
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++) {
			int32_t v;
			memcpy(&v, &x16[i][2 * t], 4);
			__m256i x = _mm256_set1_epi32(v);
#pragma GCC unroll 4
			for (int b = 0; b < nb; b++)
				acc[i][b] = _mm256_add_epi32(acc[i][b], _mm256_madd_epi16(x, w[b]));
		}
	}
}

PN_QX86_INLINE void init_acc(__m256i acc[MR][NB], const struct pn_qout *q, int n, int col, int nb)
{
#pragma GCC unroll 4
	for (int b = 0; b < NB; b++) { /* past nb zeros, never stored */
		int c = col + 8 * b;
		__m256i init =
			b < nb ? pn_qload8_i32_avx2(q->bias + c, n - c) : _mm256_setzero_si256();
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			acc[i][b] = init;
	}
}

/* rq: the requantisation of the tile's first column block, and on. */
PN_QX86_INLINE void store_tile(int8_t *out, __m256i acc[MR][NB], int rows, int n, int col, int nb,
			       const struct pn_qrq256 *rq, int mode, const struct pn_qout *q)
{
#pragma GCC unroll 4
	for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
		for (int b = 0; b < nb; b++)
			store_cols(out + (size_t)i * n, acc[i][b], &rq[b], mode, q, col + 8 * b,
				   n - col - 8 * b);
}

/* A tile over rows already widened whole (k <= KC). */
PN_QX86_INLINE void tile(const int16_t x16[MR][KC], int8_t *out, int rows, const int8_t *pk, int k,
			 int n, int col, int nb, const struct pn_qrq256 *rq, int mode,
			 const struct pn_qout *q)
{
	__m256i acc[MR][NB];
	init_acc(acc, q, n, col, nb);
	accumulate(acc, x16, pk, pairs(k), 0, k, col, nb);
	store_tile(out, acc, rows, n, col, nb, rq, mode, q);
}

/* A tile for k > KC: the rows widened KC at a time. */
static void tile_long(const int8_t *const *a, int8_t *out, int rows, const int8_t *pk, int k, int n,
		      int col, int nb, int32_t in_zp, const struct pn_qrq256 *rq, int mode,
		      const struct pn_qout *q)
{
	int16_t x16[MR][KC];
	__m256i acc[MR][NB];
	init_acc(acc, q, n, col, nb);
	for (int k0 = 0; k0 < k; k0 += KC) {
		const int kn = k - k0 < KC ? k - k0 : KC;
		widen(x16, a, k0, kn, in_zp);
		accumulate(acc, x16, pk, pairs(k), k0, kn, col, nb);
	}
	store_tile(out, acc, rows, n, col, nb, rq, mode, q);
}

/* Columns in chunks of NCHUNK blocks whose weights stay in cache; in a
 * chunk, each block of MR rows is widened once for all its tiles. */
void pn_qpw_avx2(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		 int32_t in_zp, const struct pn_qout *q)
{
	const int nb = (n + 7) / 8;
	int16_t x16[MR][KC];
	for (int c0 = 0; c0 < nb; c0 += NCHUNK) {
		const int c1 = nb - c0 < NCHUNK ? nb : c0 + NCHUNK;
		struct pn_qrq256 rq[NCHUNK];
		int mode = PN_QRQ_SIGNED;
		for (int cb = c0; cb < c1; cb++) {
			rq[cb - c0] = block_rq(q, cb, n);
			if (mode != PN_QRQ_SLOW)
				mode = pn_qrq256_modeof(&rq[cb - c0]);
		}
		for (int r = 0; r < m; r += MR) {
			const int8_t *a[MR];
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++)
				a[i] = in + (size_t)(r + i < m ? r + i : m - 1) * k;
			int rows = m - r < MR ? m - r : MR;
			int8_t *o = out + (size_t)r * n;
			if (k > KC) {
				for (int cb = c0; cb < c1; cb += NB) {
					if (c1 - cb >= 2)
						tile_long(a, o, rows, packed, k, n, cb * 8, 2,
							  in_zp, &rq[cb - c0], mode, q);
					else
						tile_long(a, o, rows, packed, k, n, cb * 8, 1,
							  in_zp, &rq[cb - c0], mode, q);
				}
				continue;
			}
			widen(x16, a, 0, k, in_zp);
			for (int cb = c0; cb < c1; cb += NB) {
				if (c1 - cb >= 2)
					tile(x16, o, rows, packed, k, n, cb * 8, 2, &rq[cb - c0],
					     mode, q);
				else
					tile(x16, o, rows, packed, k, n, cb * 8, 1, &rq[cb - c0],
					     mode, q);
			}
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
