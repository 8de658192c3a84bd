/* The int8 1x1 convolution with NEON, equal to pn_qpw_ref, for CPUs with
 * no dot product (Cortex-A72). The activations enter as they are, q in
 * [-128, 127], so
 *   acc = bias - zp colsum + sum q w,
 * colsum (a column's weight sum) stored at pack time. SMULL + SMLAL add
 * two products in int16: |q w| <= 128 * 127 = 16256, two make at most
 * 32512 < 2^15, exact because weights stay in [-127, 127] (with q - zp,
 * up to 255, they would not fit); SADALP then widens pairs into int32.
 * Every step wraps modulo 2^32 and the true accumulator fits int32.
 *
 * Packed: per 8 columns and 4 k, 32 bytes: [k0 k1] of columns 0-3,
 * of columns 4-7, then [k2 k3] likewise ([c][2] each); k rounded up to 4
 * and n to 8 with zeros; then int32 colsum[n rounded up to 8]. A tile is
 * 4 rows (rows past m repeat the last, not stored) by 8 columns. */
#include <string.h>

#include "qneon.h"

#define MR 4

static int quads(int k)
{
	return (k + 3) / 4;
}

size_t pn_qpw_packed_bytes_neon(int k, int n)
{
	size_t nb = (size_t)(n + 7) / 8;
	return nb * quads(k) * 32 + nb * 8 * sizeof(int32_t);
}

void pn_qpw_pack_neon(const int8_t *w, int k, int n, int8_t *packed)
{
	const int kq = quads(k), nb = (n + 7) / 8;
	int32_t *colsum = (int32_t *)(void *)(packed + (size_t)nb * kq * 32);
	memset(packed, 0, pn_qpw_packed_bytes_neon(k, n));
	for (int j = 0; j < n; j++) {
		int32_t s = 0;
		for (int i = 0; i < k; i++) {
			int8_t v = w[(size_t)j * k + i];
			size_t at = ((size_t)(j / 8) * kq + i / 4) * 32 + (size_t)(i % 4 / 2) * 16 +
				    (size_t)(j % 8) * 2 + i % 2;
			packed[at] = v;
			s += v;
		}
		colsum[j] = s;
	}
}

static inline int8x8_t pair(const int8_t *p)
{
	int16_t v;
	memcpy(&v, p, 2);
	return vreinterpret_s8_s16(vdup_n_s16(v));
}

PN_QNEON_INLINE void tile(const int8_t *const *a, int8_t *out, int rows, const int8_t *wb,
			  const int32_t *colsum, int k, int n, int col, int32_t in_zp,
			  const struct pn_qout *q, const struct pn_qrq8 *rq, int mode)
{
	const int kfull = k / 4, left = n - col;
	const int32x4_t zin = vdupq_n_s32(in_zp);
	int32x4_t acc[MR][2];
#pragma GCC unroll 4
	for (int g = 0; g < 2; g++) {
		int32x4_t init = vmlsq_s32(pn_qload4_neon(q->bias + col + 4 * g, left - 4 * g), zin,
					   vld1q_s32(colsum + col + 4 * g));
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
			acc[i][g] = init;
	}
	for (int t = 0; t <= kfull; t++) {
		int8_t last[MR][4];
		const int8_t *x[MR];
		if (t == kfull) {
			if (k % 4 == 0)
				break;
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++) {
				memset(last[i], 0, 4);
				memcpy(last[i], a[i] + 4 * t, (size_t)(k % 4));
				x[i] = last[i];
			}
		} else {
#pragma GCC unroll 4
			for (int i = 0; i < MR; i++)
				x[i] = a[i] + 4 * t;
		}
		int8x16_t w01 = vld1q_s8(wb + (size_t)t * 32),
			  w23 = vld1q_s8(wb + (size_t)t * 32 + 16);
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++) {
			int8x8_t x01 = pair(x[i]), x23 = pair(x[i] + 2);
			int16x8_t p0 =
				vmlal_s8(vmull_s8(x01, vget_low_s8(w01)), x23, vget_low_s8(w23));
			int16x8_t p1 =
				vmlal_s8(vmull_s8(x01, vget_high_s8(w01)), x23, vget_high_s8(w23));
			acc[i][0] = vpadalq_s16(acc[i][0], p0);
			acc[i][1] = vpadalq_s16(acc[i][1], p1);
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < rows; i++) {
		int8x8_t v = pn_qrq8_out(rq, acc[i][0], acc[i][1], mode);
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
	const int kq = quads(k), nb = (n + 7) / 8;
	const int32_t *colsum = (const int32_t *)(const void *)(packed + (size_t)nb * kq * 32);
	for (int cb = 0; cb < nb; cb++) {
		const int8_t *wb = packed + (size_t)cb * kq * 32;
		struct pn_qrq8 rq;
		pn_qrq8_init(&rq, q, cb * 8, n - cb * 8);
		for (int r = 0; r < m; r += MR) {
			const int8_t *a[MR];
#pragma GCC unroll 4
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
