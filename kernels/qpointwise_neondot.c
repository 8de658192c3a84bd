/* The int8 1x1 convolution with the ARMv8.2 dot product (SDOT; Cortex-A76,
 * Raspberry Pi 5), equal to pn_qpw_ref. Only this file is compiled with
 * +dotprod: its functions run after pn_qops_neon_dot's available().
 *
 * SDOT adds four int8 products to each int32 lane, so the activations
 * enter as they are and, as in qpointwise_neon.c,
 *   acc = bias - zp colsum + sum q w
 * with colsum stored at pack time; every step wraps modulo 2^32 and the
 * true accumulator fits int32.
 *
 * Packed by qpack4.h with 16 columns. A tile is 4 rows (rows past m repeat
 * the last, not stored) by 16 columns; 16 k at a time each row's 16
 * activations are one register and SDOT by element picks their groups
 * of 4. */
#include <string.h>

#include "qpack4.h"
#include "qim2col.h"
#include "qneon.h"

#define MR 4

static int quads(int k)
{
	return (k + 3) / 4;
}

size_t pn_qpw_packed_bytes_neondot(int k, int n)
{
	return pn_qpack4_bytes(k, n, 16);
}

void pn_qpw_pack_neondot(const int8_t *w, int k, int n, int8_t *packed)
{
	pn_qpack4(w, k, n, 16, packed);
}

/* Four k of a row, zero-padded past k, in every lane. */
static inline int8x16_t quad(const int8_t *p, int have)
{
	int8_t b[4] = {0, 0, 0, 0};
	int32_t v;
	memcpy(b, p, (size_t)(have < 4 ? have : 4));
	memcpy(&v, b, 4);
	return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

PN_QNEON_INLINE void tile(const int8_t *const *a, int8_t *out, int rows, const int8_t *wb,
			  const int32_t *colsum, int k, int n, int col, int32_t in_zp,
			  const struct pn_qout *q, const struct pn_qrq8 rq[2], int mode)
{
	const int kq = quads(k), left = n - col;
	const int32x4_t zin = vdupq_n_s32(in_zp);
	int32x4_t acc[MR][4];
#pragma GCC unroll 4
	for (int b = 0; b < 4; b++) {
		int32x4_t init = vmlsq_s32(pn_qload4_neon(q->bias + col + 4 * b, left - 4 * b), zin,
					   vld1q_s32(colsum + col + 4 * b));
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			acc[i][b] = init;
	}
	int t = 0;
	for (; t + 4 <= k / 4; t += 4) {
		int8x16_t x[MR];
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			x[i] = vld1q_s8(a[i] + 4 * t);
#pragma GCC unroll 4
		for (int g = 0; g < 4; g++) {
			int8x16_t w[4];
#pragma GCC unroll 4
			for (int b = 0; b < 4; b++)
				w[b] = vld1q_s8(wb + (size_t)(t + g) * 64 + 16 * b);
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
				for (int b = 0; b < 4; b++)
					acc[i][b] = vdotq_laneq_s32(acc[i][b], w[b], x[i], g);
		}
	}
	for (; t < kq; t++) {
		int8x16_t w[4];
#pragma GCC unroll 4
		for (int b = 0; b < 4; b++)
			w[b] = vld1q_s8(wb + (size_t)t * 64 + 16 * b);
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++) {
			int8x16_t x = quad(a[i] + 4 * t, k - 4 * t);
#pragma GCC unroll 4
			for (int b = 0; b < 4; b++)
				acc[i][b] = vdotq_s32(acc[i][b], w[b], x);
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < rows; i++) {
		int8x16_t v = vcombine_s8(pn_qrq8_out(&rq[0], acc[i][0], acc[i][1], mode),
					  pn_qrq8_out(&rq[1], acc[i][2], acc[i][3], mode));
		int8_t *o = out + (size_t)i * n + col;
		if (left >= 16) {
			vst1q_s8(o, v);
		} else {
			int8_t b[16];
			vst1q_s8(b, v);
			memcpy(o, b, (size_t)left);
		}
	}
}

void pn_qpw_neondot(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		    int32_t in_zp, const struct pn_qout *q)
{
	const int kq = quads(k), nb = (n + 15) / 16;
	const int32_t *colsum = (const int32_t *)(const void *)(packed + (size_t)nb * kq * 64);
	for (int cb = 0; cb < nb; cb++) {
		const int8_t *wb = packed + (size_t)cb * kq * 64;
		const int col = cb * 16;
		struct pn_qrq8 rq[2];
		pn_qrq8_init(&rq[0], q, col, n - col);
		pn_qrq8_init(&rq[1], q, col + 8, n - col - 8);
		/* one mode for 16 columns: SLOW if either half needs it */
		const int mode = rq[0].mode > rq[1].mode ? rq[0].mode : rq[1].mode;
		for (int r = 0; r < m; r += MR) {
			const int8_t *a[MR];
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++)
				a[i] = in + (size_t)(r + i < m ? r + i : m - 1) * k;
			int8_t *o = out + (size_t)r * n;
			const int rows = m - r < MR ? m - r : MR;
			switch (mode) {
			case PN_QNEON_RELU:
				tile(a, o, rows, wb, colsum, k, n, col, in_zp, q, rq,
				     PN_QNEON_RELU);
				break;
			case PN_QNEON_SIGNED:
				tile(a, o, rows, wb, colsum, k, n, col, in_zp, q, rq,
				     PN_QNEON_SIGNED);
				break;
			default:
				tile(a, o, rows, wb, colsum, k, n, col, in_zp, q, rq,
				     PN_QNEON_SLOW);
			}
		}
	}
}

/* The stem through this pointwise kernel (qim2col.h), else the NEON loop. */
void pn_qconv3x3_neondot(const struct pn_qconv_args *a)
{
	if (!pn_qconv3x3_im2col(a, pn_qpw_packed_bytes_neondot, pn_qpw_pack_neondot,
				pn_qpw_neondot))
		pn_qconv3x3_neon(a);
}

/* The peak loop: 16 chains of SDOT (16 int8 MACs each). */
void pn_qpeak_neondot(long n)
{
	int32x4_t acc[16];
	const int8x16_t x = vdupq_n_s8(1), w = vdupq_n_s8(-1);
	for (int i = 0; i < 16; i++)
		acc[i] = vdupq_n_s32(i);
	for (long j = 0; j < n; j++) {
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++)
			acc[i] = vdotq_s32(acc[i], x, w);
	}
	volatile int32_t sink = 0;
	for (int i = 0; i < 16; i++)
		sink += vgetq_lane_s32(acc[i], 0);
	(void)sink;
}
