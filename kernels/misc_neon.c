/* The head (global average pool, linear) and IEEE binary16 conversion with
 * NEON, matching misc_ref.c. The pool sums rows in order per channel and
 * divides once, as pn_avgpool_ref does. The linear layer keeps four
 * partial sums per class (k in steps of 4) and adds the bias last, so it
 * matches pn_linear_ref up to summation order. The conversions are
 * bit-identical to pn_f32_to_f16_ref / pn_f16_to_f32_ref (round to nearest
 * even, subnormals kept, NaN stays NaN with its payload's top bits):
 * aarch64 converts in hardware, except that a signalling NaN half keeps
 * its quiet bit clear as in the reference; ARMv7 NEON runs with flush to
 * zero and default NaN, so it converts with integer arithmetic instead.
 * Tails shorter than a vector go through the reference. */
#include "neon.h"
#include "ref.h"

/* Multiply, multiply, add (vmulq, vaddq: never the fused vfmaq), so
 * that it equals pn_lerp_ref; the products of the resize are far from
 * subnormal, so ARMv7's flush to zero does not change them. */
void pn_lerp_neon(const float *a, const float *b, float wa, float wb, float *out, size_t n)
{
	const float32x4_t va = vdupq_n_f32(wa), vb = vdupq_n_f32(wb);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		vst1q_f32(out + i, vaddq_f32(vmulq_f32(va, vld1q_f32(a + i)),
					     vmulq_f32(vb, vld1q_f32(b + i))));
		vst1q_f32(out + i + 4, vaddq_f32(vmulq_f32(va, vld1q_f32(a + i + 4)),
						 vmulq_f32(vb, vld1q_f32(b + i + 4))));
	}
	pn_lerp_ref(a + i, b + i, wa, wb, out + i, n - i);
}

void pn_avgpool_neon(const float *in, float *out, int hw, int c)
{
	int ch = 0;

	for (; ch + 16 <= c; ch += 16) {
		float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
		const float *p = in + ch;
		for (int i = 0; i < hw; i++, p += c) {
			s0 = vaddq_f32(s0, vld1q_f32(p));
			s1 = vaddq_f32(s1, vld1q_f32(p + 4));
			s2 = vaddq_f32(s2, vld1q_f32(p + 8));
			s3 = vaddq_f32(s3, vld1q_f32(p + 12));
		}
		vst1q_f32(out + ch, s0);
		vst1q_f32(out + ch + 4, s1);
		vst1q_f32(out + ch + 8, s2);
		vst1q_f32(out + ch + 12, s3);
	}
	for (; ch + 4 <= c; ch += 4) {
		float32x4_t s = vdupq_n_f32(0.0f);
		for (int i = 0; i < hw; i++)
			s = vaddq_f32(s, vld1q_f32(in + (size_t)i * c + ch));
		vst1q_f32(out + ch, s);
	}
	for (; ch < c; ch++) {
		float s = 0.0f;
		for (int i = 0; i < hw; i++)
			s += in[(size_t)i * c + ch];
		out[ch] = s;
	}

	ch = 0;
#ifdef __aarch64__
	const float32x4_t d = vdupq_n_f32((float)hw);
	for (; ch + 4 <= c; ch += 4)
		vst1q_f32(out + ch, vdivq_f32(vld1q_f32(out + ch), d));
#endif
	for (; ch < c; ch++)
		out[ch] /= (float)hw;
}

static inline float hsum(float32x4_t x)
{
#ifdef __aarch64__
	return vaddvq_f32(x);
#else
	float32x2_t s = vadd_f32(vget_low_f32(x), vget_high_f32(x));
	return vget_lane_f32(vpadd_f32(s, s), 0);
#endif
}

void pn_linear_neon(const float *in, float *out, const float *w, const float *bias, int k,
		    int classes)
{
	for (int j = 0; j < classes; j++) {
		const float *wj = w + (size_t)j * k;
		float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
		int i = 0;
		for (; i + 16 <= k; i += 16) {
			s0 = vfmaq_f32(s0, vld1q_f32(in + i), vld1q_f32(wj + i));
			s1 = vfmaq_f32(s1, vld1q_f32(in + i + 4), vld1q_f32(wj + i + 4));
			s2 = vfmaq_f32(s2, vld1q_f32(in + i + 8), vld1q_f32(wj + i + 8));
			s3 = vfmaq_f32(s3, vld1q_f32(in + i + 12), vld1q_f32(wj + i + 12));
		}
		for (; i + 4 <= k; i += 4)
			s0 = vfmaq_f32(s0, vld1q_f32(in + i), vld1q_f32(wj + i));
		float acc = hsum(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
		for (; i < k; i++)
			acc += in[i] * wj[i];
		out[j] = bias[j] + acc;
	}
}

#ifdef __aarch64__

void pn_f32_to_f16_neon(const float *in, uint16_t *out, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		float16x4_t lo = vcvt_f16_f32(vld1q_f32(in + i));
		float16x4_t hi = vcvt_f16_f32(vld1q_f32(in + i + 4));
		vst1q_u16(out + i, vreinterpretq_u16_f16(vcombine_f16(lo, hi)));
	}
	pn_f32_to_f16_ref(in + i, out + i, n - i);
}

/* Four halves to floats; NaNs rebuilt bit by bit since the hardware would
 * quieten a signalling one. */
static inline float32x4_t f16x4_to_f32(uint16x4_t h)
{
	const uint32x4_t x = vmovl_u16(h);
	const uint32x4_t mag = vandq_u32(x, vdupq_n_u32(0x7fffu));
	const uint32x4_t nan =
		vorrq_u32(vorrq_u32(vshlq_n_u32(vandq_u32(x, vdupq_n_u32(0x8000u)), 16),
				    vshlq_n_u32(mag, 13)),
			  vdupq_n_u32(0x70000000u));
	const uint32x4_t hwv = vreinterpretq_u32_f32(vcvt_f32_f16(vreinterpret_f16_u16(h)));
	return vreinterpretq_f32_u32(vbslq_u32(vcgtq_u32(mag, vdupq_n_u32(0x7c00u)), nan, hwv));
}

#else

/* Four floats to halves with integer arithmetic (and one float add, exact
 * under NEON's fixed round-to-nearest-even mode, for subnormal halves). */
static inline uint16x4_t f32x4_to_f16(float32x4_t f)
{
	const uint32x4_t x = vreinterpretq_u32_f32(f);
	const uint32x4_t sign = vshrq_n_u32(vandq_u32(x, vdupq_n_u32(0x80000000u)), 16);
	const uint32x4_t ax = vandq_u32(x, vdupq_n_u32(0x7fffffffu));

	/* normal halves: rebias, round the 13 dropped bits to nearest even */
	uint32x4_t t = vsubq_u32(ax, vdupq_n_u32(0x38000000u));
	t = vaddq_u32(
		t, vaddq_u32(vdupq_n_u32(0xfffu), vandq_u32(vshrq_n_u32(t, 13), vdupq_n_u32(1))));
	uint32x4_t h = vshrq_n_u32(t, 13);
	/* subnormal halves and zero: 0.5 + |f| rounds |f| to a multiple of 2^-24 */
	const uint32x4_t sub = vsubq_u32(
		vreinterpretq_u32_f32(vaddq_f32(vreinterpretq_f32_u32(ax), vdupq_n_f32(0.5f))),
		vdupq_n_u32(0x3f000000u));
	h = vbslq_u32(vcltq_u32(ax, vdupq_n_u32(0x38800000u)), sub, h);
	/* too large for a half: infinity */
	h = vbslq_u32(vcgeq_u32(ax, vdupq_n_u32(0x47800000u)), vdupq_n_u32(0x7c00u), h);
	/* NaN: quiet, top ten bits of the payload */
	const uint32x4_t nan = vorrq_u32(vdupq_n_u32(0x7e00u),
					 vandq_u32(vshrq_n_u32(ax, 13), vdupq_n_u32(0x3ffu)));
	h = vbslq_u32(vcgtq_u32(ax, vdupq_n_u32(0x7f800000u)), nan, h);
	return vmovn_u32(vorrq_u32(h, sign));
}

void pn_f32_to_f16_neon(const float *in, uint16_t *out, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint16x4_t lo = f32x4_to_f16(vld1q_f32(in + i));
		uint16x4_t hi = f32x4_to_f16(vld1q_f32(in + i + 4));
		vst1q_u16(out + i, vcombine_u16(lo, hi));
	}
	pn_f32_to_f16_ref(in + i, out + i, n - i);
}

/* Four halves to floats with integer arithmetic (and one exact multiply
 * for subnormal halves). */
static inline float32x4_t f16x4_to_f32(uint16x4_t h)
{
	const uint32x4_t x = vmovl_u16(h);
	const uint32x4_t sign = vshlq_n_u32(vandq_u32(x, vdupq_n_u32(0x8000u)), 16);
	const uint32x4_t mag = vandq_u32(x, vdupq_n_u32(0x7fffu));

	/* normal: rebias the exponent; infinity and NaN: rebias it twice */
	uint32x4_t r = vaddq_u32(vshlq_n_u32(mag, 13), vdupq_n_u32(0x38000000u));
	r = vbslq_u32(vcgeq_u32(mag, vdupq_n_u32(0x7c00u)), vaddq_u32(r, vdupq_n_u32(0x38000000u)),
		      r);
	/* subnormal and zero: mantissa * 2^-24 */
	const float32x4_t sub = vmulq_f32(vcvtq_f32_u32(mag), vdupq_n_f32(0x1p-24f));
	r = vbslq_u32(vcltq_u32(mag, vdupq_n_u32(0x0400u)), vreinterpretq_u32_f32(sub), r);
	return vreinterpretq_f32_u32(vorrq_u32(r, sign));
}

#endif

void pn_f16_to_f32_neon(const uint16_t *in, float *out, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint16x8_t h = vld1q_u16(in + i);
		vst1q_f32(out + i, f16x4_to_f32(vget_low_u16(h)));
		vst1q_f32(out + i + 4, f16x4_to_f32(vget_high_u16(h)));
	}
	pn_f16_to_f32_ref(in + i, out + i, n - i);
}
