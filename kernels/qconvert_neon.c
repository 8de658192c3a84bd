/* Floats into and out of the int8 domain, the average pool and the
 * classifier with NEON, equal to pn_quantize_ref, pn_dequantize_ref,
 * pn_qavgpool_ref and pn_qlinear_ref (quant.h).
 *
 * Quantize: x * inv_scale in single precision, NaN to -512 and the rest
 * clamped to [-512, 512] (integers, so clamping before rounding changes
 * nothing), rounded half away from zero (FCVTAS on aarch64; on ARMv7,
 * truncate and add the sign when the exact remainder's magnitude is at
 * least 0.5), plus zp, then saturating narrows: the clamp to int8.
 * ARMv7 NEON flushes subnormals to zero: a subnormal x can only round to
 * a nonzero q when inv_scale is above 2^100, and a subnormal product
 * rounds to 0 either way; dequantize's products are subnormal only for a
 * scale below FLT_MIN. Those calls, and any non-finite scale, go to the
 * reference there. */
#include <float.h>
#include <string.h>

#include "qneon.h"

static inline int32x4_t quantize4(float32x4_t x, float32x4_t inv, int32x4_t zp)
{
	const float32x4_t lo = vdupq_n_f32(-512.0f), hi = vdupq_n_f32(512.0f);
	float32x4_t v = vmulq_f32(x, inv);
	v = vminq_f32(vbslq_f32(vcgtq_f32(v, lo), v, lo), hi);
#ifdef __aarch64__
	int32x4_t t = vcvtaq_s32_f32(v);
#else
	int32x4_t t = vcvtq_s32_f32(v);
	uint32x4_t away = vcageq_f32(vsubq_f32(v, vcvtq_f32_s32(t)), vdupq_n_f32(0.5f));
	int32x4_t sign =
		vorrq_s32(vreinterpretq_s32_u32(vcltq_f32(v, vdupq_n_f32(0.0f))), vdupq_n_s32(1));
	t = vaddq_s32(t, vandq_s32(sign, vreinterpretq_s32_u32(away)));
#endif
	return vaddq_s32(t, zp);
}

static inline int8x8_t narrow8(int32x4_t a, int32x4_t b)
{
	return vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)));
}

void pn_quantize_neon(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp)
{
#ifndef __aarch64__
	if (!(inv_scale > -0x1p100f && inv_scale < 0x1p100f)) {
		pn_quantize_ref(in, out, n, inv_scale, zp);
		return;
	}
#endif
	const float32x4_t inv = vdupq_n_f32(inv_scale);
	const int32x4_t z = vdupq_n_s32(zp);
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		int8x8_t a = narrow8(quantize4(vld1q_f32(in + i), inv, z),
				     quantize4(vld1q_f32(in + i + 4), inv, z));
		int8x8_t b = narrow8(quantize4(vld1q_f32(in + i + 8), inv, z),
				     quantize4(vld1q_f32(in + i + 12), inv, z));
		vst1q_s8(out + i, vcombine_s8(a, b));
	}
	for (; i < n; i += 8) {
		float b[8] = {0};
		int8_t q[8];
		const size_t left = n - i < 8 ? n - i : 8;
		memcpy(b, in + i, left * sizeof *b);
		vst1_s8(q, narrow8(quantize4(vld1q_f32(b), inv, z),
				   quantize4(vld1q_f32(b + 4), inv, z)));
		memcpy(out + i, q, left);
	}
}

static inline void dequantize8(const int8x8_t q, float *out, int32x4_t zp, float32x4_t s)
{
	int16x8_t w = vmovl_s8(q);
	int32x4_t a = vsubq_s32(vmovl_s16(vget_low_s16(w)), zp);
	int32x4_t b = vsubq_s32(vmovl_s16(vget_high_s16(w)), zp);
	vst1q_f32(out, vmulq_f32(vcvtq_f32_s32(a), s));
	vst1q_f32(out + 4, vmulq_f32(vcvtq_f32_s32(b), s));
}

void pn_dequantize_neon(const int8_t *in, float *out, size_t n, float scale, int32_t zp)
{
#ifndef __aarch64__
	if (!(scale >= FLT_MIN && scale <= FLT_MAX)) {
		pn_dequantize_ref(in, out, n, scale, zp);
		return;
	}
#endif
	const float32x4_t s = vdupq_n_f32(scale);
	const int32x4_t z = vdupq_n_s32(zp);
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		int8x16_t q = vld1q_s8(in + i);
		dequantize8(vget_low_s8(q), out + i, z, s);
		dequantize8(vget_high_s8(q), out + i + 8, z, s);
	}
	for (; i < n; i += 8) {
		int8_t q[8] = {0};
		float f[8];
		const size_t left = n - i < 8 ? n - i : 8;
		memcpy(q, in + i, left);
		dequantize8(vld1_s8(q), f, z, s);
		memcpy(out + i, f, left * sizeof *f);
	}
}

/* Per 8 channels: sum in over hw, minus hw * in_zp (modulo 2^32, exact
 * since the true sum fits int32). */
void pn_qavgpool_neon(const int8_t *in, int8_t *out, int hw, int c, int32_t in_zp, int32_t mult,
		      int exp, int32_t out_zp)
{
	const int32x4_t m = vdupq_n_s32(mult), e = vdupq_n_s32(exp);
	const int32x4_t off = vdupq_n_s32((int32_t)((uint32_t)hw * (uint32_t)in_zp));
	const int16x8_t zp = vdupq_n_s16((int16_t)out_zp);
	const int8x8_t lo = vdup_n_s8(-128), hi = vdup_n_s8(127);
	for (int c0 = 0; c0 < c; c0 += 8) {
		const int left = c - c0 < 8 ? c - c0 : 8;
		int32x4_t s0 = vdupq_n_s32(0), s1 = s0;
		for (int p = 0; p < hw; p++) {
			const int8_t *px = in + (size_t)p * c + c0;
			int8_t b[8] = {0};
			if (left < 8)
				memcpy(b, px, (size_t)left);
			int16x8_t x = vmovl_s8(vld1_s8(left < 8 ? b : px));
			s0 = vaddw_s16(s0, vget_low_s16(x));
			s1 = vaddw_s16(s1, vget_high_s16(x));
		}
		int8x8_t v = pn_qpack8_neon(pn_qrequant_neon(vsubq_s32(s0, off), m, e),
					    pn_qrequant_neon(vsubq_s32(s1, off), m, e), zp, lo, hi);
		int8_t b[8];
		vst1_s8(b, v);
		memcpy(out + c0, b, (size_t)left);
	}
}

static inline int32_t hsum(int32x4_t v)
{
#ifdef __aarch64__
	return vaddvq_s32(v);
#else
	int32x2_t s = vadd_s32(vget_low_s32(v), vget_high_s32(v));
	return vget_lane_s32(vpadd_s32(s, s), 0);
#endif
}

/* sum (in - zp) w = sum in w - zp sum w. SMULL + SMLAL add two products
 * in int16 (|in w| <= 128 * 127, as in qpointwise_neon.c), SADALP widens
 * pairs into int32; the weight sums likewise by SADDLP and SADALP. */
void pn_qlinear_neon(const int8_t *in, float *out, const int8_t *w, const int32_t *bias,
		     const float *deq, int k, int classes, int32_t in_zp)
{
	for (int j = 0; j < classes; j++) {
		const int8_t *wr = w + (size_t)j * k;
		int32x4_t dot = vdupq_n_s32(0), ws = dot;
		int i = 0;
		for (; i + 16 <= k; i += 16) {
			int8x16_t x = vld1q_s8(in + i), wv = vld1q_s8(wr + i);
			int16x8_t p = vmull_s8(vget_low_s8(x), vget_low_s8(wv));
			p = vmlal_s8(p, vget_high_s8(x), vget_high_s8(wv));
			dot = vpadalq_s16(dot, p);
			ws = vpadalq_s16(ws, vpaddlq_s8(wv));
		}
		uint32_t acc = (uint32_t)bias[j] + (uint32_t)hsum(dot) -
			       (uint32_t)in_zp * (uint32_t)hsum(ws);
		for (; i < k; i++)
			acc += (uint32_t)((in[i] - in_zp) * wr[i]);
		out[j] = (float)(int32_t)acc * deq[j];
	}
}
