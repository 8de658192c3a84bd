/* The int8 1x1 convolution with NEON, equal to pn_qpw_ref, for CPUs with
 * no dot product (Cortex-A72). The activations enter as they are, q in
 * [-128, 127], so
 *   acc = bias - zp colsum + sum q w,
 * colsum (a column's weight sum) stored at pack time.
 *
 * k runs along the lanes: a row's 16 activations and a column's 16
 * weights meet in SMULL (low 8 k) + SMLAL2 (high 8 k), two products in
 * each int16 lane, and SADALP adds the lane pairs into int32. |q w| <=
 * 128 * 127 = 16256, two make at most 32512 < 2^15: exact because
 * weights stay in [-127, 127] (with q - zp, up to 255, they would not
 * fit). Each output's four int32 lanes are summed once, after the last k.
 * Every step wraps modulo 2^32 and the true accumulator fits int32. Per
 * 16 k a row and a column cost 3 instructions, with no broadcast of the
 * activations (the old layout, activations by pair across 8 columns,
 * needed a DUP and a load per pair).
 *
 * Packed: per 8 columns and 16 k, 128 bytes: column 0's 16 k, column 1's
 * and so on; k rounded up to 16 and n to 8 with zeros; then int32
 * colsum[n rounded up to 8]. A tile is MR rows (rows past m repeat the
 * last, not stored) by 8 columns, computed 4 columns at a time: MR is 4
 * on aarch64 (16 accumulators of 32 registers), 2 on 32-bit ARM (8 of
 * 16). */
#include <string.h>

#include "qneon.h"

#ifdef __aarch64__
#define MR 4
#else
#define MR 2
#endif

static int chunks(int k)
{
	return (k + 15) / 16;
}

size_t pn_qpw_packed_bytes_neon(int k, int n)
{
	size_t nb = (size_t)(n + 7) / 8;
	return nb * chunks(k) * 128 + nb * 8 * sizeof(int32_t);
}

void pn_qpw_pack_neon(const int8_t *w, int k, int n, int8_t *packed)
{
	const int kc = chunks(k), nb = (n + 7) / 8;
	int32_t *colsum = (int32_t *)(void *)(packed + (size_t)nb * kc * 128);
	memset(packed, 0, pn_qpw_packed_bytes_neon(k, n));
	for (int j = 0; j < n; j++) {
		int32_t s = 0;
		for (int i = 0; i < k; i++) {
			int8_t v = w[(size_t)j * k + i];
			size_t at = (((size_t)(j / 8) * kc + i / 16) * 8 + (size_t)(j % 8)) * 16 +
				    (size_t)(i % 16);
			packed[at] = v;
			s += v;
		}
		colsum[j] = s;
	}
}

/* The lane sums of four accumulators, in order. */
PN_QNEON_INLINE int32x4_t sum4(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3)
{
#ifdef __aarch64__
	return vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
#else
	int32x2_t s0 = vpadd_s32(vget_low_s32(a0), vget_high_s32(a0)),
		  s1 = vpadd_s32(vget_low_s32(a1), vget_high_s32(a1)),
		  s2 = vpadd_s32(vget_low_s32(a2), vget_high_s32(a2)),
		  s3 = vpadd_s32(vget_low_s32(a3), vget_high_s32(a3));
	return vcombine_s32(vpadd_s32(s0, s1), vpadd_s32(s2, s3));
#endif
}

/* Sixteen products of x and w, summed by pairs into acc's lanes. */
PN_QNEON_INLINE int32x4_t mac16(int32x4_t acc, int8x16_t x, int8x16_t w)
{
	int16x8_t p = vmull_s8(vget_low_s8(x), vget_low_s8(w));
#ifdef __aarch64__
	p = vmlal_high_s8(p, x, w);
#else
	p = vmlal_s8(p, vget_high_s8(x), vget_high_s8(w));
#endif
	return vpadalq_s16(acc, p);
}

/* The sums over all k of rows a[0..MR) against 4 columns of the block
 * (their packed 16 k at wb + 16 j0, 128 bytes a chunk). */
PN_QNEON_INLINE void sums4(const int8_t *const *a, const int8_t *wb, int k, int j0,
			   int32x4_t out[MR])
{
	const int kfull = k / 16;
	int32x4_t acc[MR][4];
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++)
			acc[i][j] = vdupq_n_s32(0);
	const int8_t *wt = wb + 16 * j0;
	for (int t = 0; t < kfull; t++, wt += 128) {
		int8x16_t x[MR];
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++)
			x[i] = vld1q_s8(a[i] + 16 * t);
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) {
			int8x16_t w = vld1q_s8(wt + 16 * j);
#pragma GCC unroll 8
			for (int i = 0; i < MR; i++)
				acc[i][j] = mac16(acc[i][j], x[i], w);
		}
	}
	if (k % 16) {
		/* The last k, zero-padded: no read past a row's end. */
		int8x16_t x[MR];
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++) {
			int8_t last[16] = {0};
			memcpy(last, a[i] + 16 * kfull, (size_t)(k % 16));
			x[i] = vld1q_s8(last);
		}
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) {
			int8x16_t w = vld1q_s8(wt + 16 * j);
#pragma GCC unroll 8
			for (int i = 0; i < MR; i++)
				acc[i][j] = mac16(acc[i][j], x[i], w);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
		out[i] = sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
}

PN_QNEON_INLINE void tile(const int8_t *const *a, int8_t *out, int rows, const int8_t *wb,
			  const int32_t *colsum, int k, int n, int col, int32_t in_zp,
			  const struct pn_qout *q, const struct pn_qrq8 *rq, int mode)
{
	const int left = n - col;
	int32x4_t s0[MR], s1[MR];
	sums4(a, wb, k, 0, s0);
	sums4(a, wb, k, 4, s1);
	const int32x4_t zin = vdupq_n_s32(in_zp);
	const int32x4_t init0 = vmlsq_s32(pn_qload4_neon(q->bias + col, left), zin,
					  vld1q_s32(colsum + col)),
			init1 = vmlsq_s32(pn_qload4_neon(q->bias + col + 4, left - 4), zin,
					  vld1q_s32(colsum + col + 4));
#pragma GCC unroll 8
	for (int i = 0; i < rows; i++) {
		int8x8_t v =
			pn_qrq8_out(rq, vaddq_s32(init0, s0[i]), vaddq_s32(init1, s1[i]), mode);
		int8_t *o = out + (size_t)i * n + col;
		if (left >= 8) {
			vst1_s8(o, v);
		} else {
			int8_t b[8];
			vst1_s8(b, v);
			memcpy(o, b, (size_t)left);
		}
	}
}

void pn_qpw_neon(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		 int32_t in_zp, const struct pn_qout *q)
{
	const int kc = chunks(k), nb = (n + 7) / 8;
	const int32_t *colsum = (const int32_t *)(const void *)(packed + (size_t)nb * kc * 128);
	for (int cb = 0; cb < nb; cb++) {
		const int8_t *wb = packed + (size_t)cb * kc * 128;
		struct pn_qrq8 rq;
		pn_qrq8_init(&rq, q, cb * 8, n - cb * 8);
		for (int r = 0; r < m; r += MR) {
			const int8_t *a[MR];
#pragma GCC unroll 8
			for (int i = 0; i < MR; i++)
				a[i] = in + (size_t)(r + i < m ? r + i : m - 1) * k;
			int8_t *o = out + (size_t)r * n;
			const int rows = m - r < MR ? m - r : MR;
			/* the requantisation mode as a constant */
			switch (rq.mode) {
			case PN_QNEON_RELU:
				tile(a, o, rows, wb, colsum, k, n, cb * 8, in_zp, q, &rq,
				     PN_QNEON_RELU);
				break;
			case PN_QNEON_SIGNED:
				tile(a, o, rows, wb, colsum, k, n, cb * 8, in_zp, q, &rq,
				     PN_QNEON_SIGNED);
				break;
			default:
				tile(a, o, rows, wb, colsum, k, n, cb * 8, in_zp, q, &rq,
				     PN_QNEON_SLOW);
			}
		}
	}
}
