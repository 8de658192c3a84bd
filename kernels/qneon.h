/* The NEON int8 kernels behind pn_qops_neon (aarch64, and 32-bit ARMv7
 * with NEON, compiled with NEON flags alone), and the requantisation of
 * quant.h on int32x4 lanes, equal to pn_q_requant: the saturating left
 * shift by max(exp, 0) is vqshl; the high multiply is on magnitudes,
 * |a| * mult in 64 bits (mult is in [2^30, 2^31), so the sign is a's)
 * rounded by vrshrn #31, which adds 2^30 first: half away from zero once
 * the sign is put back; the right shift by max(-exp, 0) is vrshl by a
 * negative count on the magnitude, likewise. (vqrdmulh rounds ties
 * upwards, not away from zero, so it is not used.) */
#ifndef PN_QNEON_H
#define PN_QNEON_H

#include <arm_neon.h>
#include <string.h>

#include "qops.h"

void pn_qconv3x3_neon(const struct pn_qconv_args *a);
void pn_qdw3x3_neon(const struct pn_qdw_args *a);
/* pn_qdw3x3_neon of channels [c_from, c) only. */
void pn_qdw3x3_neon_from(const struct pn_qdw_args *a, int c_from);
size_t pn_qpw_packed_bytes_neon(int k, int n);
void pn_qpw_pack_neon(const int8_t *w, int k, int n, int8_t *packed);
void pn_qpw_neon(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		 int32_t in_zp, const struct pn_qout *q);
void pn_qadd_neon(const struct pn_qadd_args *a);
/* qpointwise_neondot.c, compiled with +dotprod (aarch64 only). */
size_t pn_qpw_packed_bytes_neondot(int k, int n);
void pn_qpw_pack_neondot(const int8_t *w, int k, int n, int8_t *packed);
void pn_qpw_neondot(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		    int32_t in_zp, const struct pn_qout *q);
void pn_qconv3x3_neondot(const struct pn_qconv_args *a);
/* qdepthwise_neondot.c, likewise. */
void pn_qdw3x3_neondot(const struct pn_qdw_args *a);
void pn_qpeak_neondot(long n);
void pn_qavgpool_neon(const int8_t *in, int8_t *out, int hw, int c, int32_t in_zp, int32_t mult,
		      int exp, int32_t out_zp);
void pn_qlinear_neon(const int8_t *in, float *out, const int8_t *w, const int32_t *bias,
		     const float *deq, int k, int classes, int32_t in_zp);
void pn_quantize_neon(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp);
void pn_dequantize_neon(const int8_t *in, float *out, size_t n, float scale, int32_t zp);

#define PN_QNEON_INLINE static inline __attribute__((always_inline))

/* Four int32 from p, those from `left` on zero. */
PN_QNEON_INLINE int32x4_t pn_qload4_neon(const int32_t *p, int left)
{
	int32_t b[4] = {0, 0, 0, 0};
	if (left >= 4)
		return vld1q_s32(p);
	memcpy(b, p, (size_t)(left > 0 ? left : 0) * sizeof *b);
	return vld1q_s32(b);
}

/* Four lanes of pn_q_requant(acc, mult, exp). */
PN_QNEON_INLINE int32x4_t pn_qrequant_neon(int32x4_t acc, int32x4_t mult, int32x4_t exp)
{
	const int32x4_t zero = vdupq_n_s32(0);
	int32x4_t x = vqshlq_s32(acc, vmaxq_s32(exp, zero));
	uint32x4_t neg = vcltq_s32(x, zero);
	uint32x4_t mag = vreinterpretq_u32_s32(vabsq_s32(x));
	uint32x4_t um = vreinterpretq_u32_s32(mult);
	uint32x4_t h =
		vcombine_u32(vrshrn_n_u64(vmull_u32(vget_low_u32(mag), vget_low_u32(um)), 31),
			     vrshrn_n_u64(vmull_u32(vget_high_u32(mag), vget_high_u32(um)), 31));
	int32x4_t y = vreinterpretq_s32_u32(vrshlq_u32(h, vminq_s32(exp, zero)));
	return vbslq_s32(neg, vnegq_s32(y), y);
}

/* Four lanes of pn_q_round_shift(x, PN_QADD_SHIFT). */
PN_QNEON_INLINE int32x4_t pn_qround_shift16_neon(int32x4_t x)
{
	uint32x4_t neg = vcltq_s32(x, vdupq_n_s32(0));
	int32x4_t y = vreinterpretq_s32_u32(
		vrshrq_n_u32(vreinterpretq_u32_s32(vabsq_s32(x)), PN_QADD_SHIFT));
	return vbslq_s32(neg, vnegq_s32(y), y);
}

/* clamp(zp + y, lo, hi) of eight lanes as int8: saturating narrows to
 * int16, a saturating add of zp, a saturating narrow to int8, the clamp
 * in int8. Each step keeps order and |zp| <= 128, so a value saturated on
 * the way lands on the same side of [lo, hi] as the exact sum. */
PN_QNEON_INLINE int8x8_t pn_qpack8_neon(int32x4_t y0, int32x4_t y1, int16x8_t zp, int8x8_t lo,
					int8x8_t hi)
{
	int16x8_t s = vqaddq_s16(vcombine_s16(vqmovn_s32(y0), vqmovn_s32(y1)), zp);
	return vmin_s8(vmax_s8(vqmovn_s16(s), lo), hi);
}

/* The requantisation of a block of 8 output channels, its mode chosen
 * once per block. For exp <= 0 the high multiply of a magnitude a is
 * SQRDMULH: floor((2 a mult + 2^31) / 2^32) = round(a mult / 2^31) with
 * ties up, which for a >= 0 is away from zero; the right shift of that
 * (< 2^31) is SRSHL, likewise. RELU (lo >= zp, as after a folded ReLU6):
 * a = max(acc, 0), since acc <= 0 gives y <= 0, zp + y <= lo, clamped to
 * lo as 0 is. SIGNED: a = |acc| by SQABS and the sign put back; only
 * INT32_MIN changes (to 2^31 - 1: the high product by at most 1), and
 * with exp >= -21 its |y| >= 511 is clamped the same. Anything else
 * (exp > 0: M >= 1, rare) is SLOW, pn_qrequant_neon. */
#define PN_QNEON_SIGNED 0
#define PN_QNEON_RELU 1
#define PN_QNEON_SLOW 2

struct pn_qrq8 {
	int32x4_t mult[2], exp[2];
	int16x8_t zp;
	int8x8_t lo, hi;
	int mode;
};

/* Channels [c0, c0 + 8) of q, those past c0 + left zero. */
PN_QNEON_INLINE void pn_qrq8_init(struct pn_qrq8 *r, const struct pn_qout *q, int c0, int left)
{
	int32_t m[8] = {0}, e[8] = {0};
	int slow = 0, deep = 0;
	for (int j = 0; j < 8 && j < left; j++) {
		m[j] = q->mult[c0 + j];
		e[j] = q->exp[c0 + j];
		slow |= e[j] > 0;
		deep |= e[j] < -21;
	}
	for (int h = 0; h < 2; h++) {
		r->mult[h] = vld1q_s32(m + 4 * h);
		r->exp[h] = vld1q_s32(e + 4 * h);
	}
	r->zp = vdupq_n_s16((int16_t)q->zp);
	r->lo = vdup_n_s8((int8_t)q->lo);
	r->hi = vdup_n_s8((int8_t)q->hi);
	r->mode = slow		   ? PN_QNEON_SLOW
		  : q->lo >= q->zp ? PN_QNEON_RELU
		  : deep	   ? PN_QNEON_SLOW
				   : PN_QNEON_SIGNED;
}

PN_QNEON_INLINE int32x4_t pn_qrq4_neon(int32x4_t acc, int32x4_t mult, int32x4_t exp, int mode)
{
	const int32x4_t zero = vdupq_n_s32(0);
	if (mode == PN_QNEON_SLOW)
		return pn_qrequant_neon(acc, mult, exp);
	if (mode == PN_QNEON_RELU)
		return vrshlq_s32(vqrdmulhq_s32(vmaxq_s32(acc, zero), mult), exp);
	int32x4_t y = vrshlq_s32(vqrdmulhq_s32(vqabsq_s32(acc), mult), exp);
	return vbslq_s32(vcltq_s32(acc, zero), vnegq_s32(y), y);
}

/* Eight accumulators to eight int8 outputs. */
PN_QNEON_INLINE int8x8_t pn_qrq8_out(const struct pn_qrq8 *r, int32x4_t a0, int32x4_t a1, int mode)
{
	return pn_qpack8_neon(pn_qrq4_neon(a0, r->mult[0], r->exp[0], mode),
			      pn_qrq4_neon(a1, r->mult[1], r->exp[1], mode), r->zp, r->lo, r->hi);
}

#endif
