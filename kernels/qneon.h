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

#include "qops.h"

void pn_qconv3x3_neon(const struct pn_qconv_args *a);
void pn_qdw3x3_neon(const struct pn_qdw_args *a);
size_t pn_qpw_packed_bytes_neon(int k, int n);
void pn_qpw_pack_neon(const int8_t *w, int k, int n, int8_t *packed);
void pn_qpw_neon(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		 int32_t in_zp, const struct pn_qout *q);
void pn_qadd_neon(const struct pn_qadd_args *a);
void pn_qavgpool_neon(const int8_t *in, int8_t *out, int hw, int c, int32_t in_zp, int32_t mult,
		      int exp, int32_t out_zp);
void pn_qlinear_neon(const int8_t *in, float *out, const int8_t *w, const int32_t *bias,
		     const float *deq, int k, int classes, int32_t in_zp);
void pn_quantize_neon(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp);
void pn_dequantize_neon(const int8_t *in, float *out, size_t n, float scale, int32_t zp);

#define PN_QNEON_INLINE static inline __attribute__((always_inline))

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

/* clamp(zp + y, lo, hi) of eight lanes, as int8 (y first kept to
 * +-2^16 so that the sum cannot wrap; the clamp makes that invisible). */
PN_QNEON_INLINE int8x8_t pn_qnarrow_neon(int32x4_t y0, int32x4_t y1, int32x4_t zp, int32x4_t lo,
					 int32x4_t hi)
{
	const int32x4_t big = vdupq_n_s32(65536), small = vdupq_n_s32(-65536);
	y0 = vaddq_s32(vminq_s32(vmaxq_s32(y0, small), big), zp);
	y1 = vaddq_s32(vminq_s32(vmaxq_s32(y1, small), big), zp);
	y0 = vminq_s32(vmaxq_s32(y0, lo), hi);
	y1 = vminq_s32(vmaxq_s32(y1, lo), hi);
	return vmovn_s16(vcombine_s16(vmovn_s32(y0), vmovn_s32(y1)));
}

#endif
