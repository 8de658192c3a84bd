/* The head (global average pool, linear) and IEEE binary16 conversion,
 * plain C. The pool sums rows in order and divides once (PyTorch's
 * adaptive_avg_pool2d to 1x1 up to rounding); the linear layer sums bias,
 * then k ascending. */
#include <string.h>

#include "ref.h"

void pn_avgpool_ref(const float *in, float *out, int hw, int c)
{
	for (int ch = 0; ch < c; ch++)
		out[ch] = 0.0f;
	for (int p = 0; p < hw; p++)
		for (int ch = 0; ch < c; ch++)
			out[ch] += in[(size_t)p * c + ch];
	for (int ch = 0; ch < c; ch++)
		out[ch] /= (float)hw;
}

void pn_linear_ref(const float *in, float *out, const float *w, const float *bias, int k,
		   int classes)
{
	for (int j = 0; j < classes; j++) {
		float acc = bias[j];
		for (int i = 0; i < k; i++)
			acc += in[i] * w[(size_t)j * k + i];
		out[j] = acc;
	}
}

void pn_lerp_ref(const float *a, const float *b, float wa, float wb, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = wa * a[i] + wb * b[i];
}

static uint16_t f32_to_f16_one(float f)
{
	uint32_t x;
	memcpy(&x, &f, sizeof x);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t exp = (x >> 23) & 0xffu;
	uint32_t man = x & 0x7fffffu;

	if (exp == 0xffu) /* inf or NaN; keep NaN a quiet NaN */
		return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
	int e = (int)exp - 127 + 15;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00u);
	if (e <= 0) {
		if (e < -10)
			return (uint16_t)sign;
		man |= 0x800000u;
		int shift = 14 - e;
		uint32_t half = man >> shift;
		uint32_t rest = man & ((1u << shift) - 1);
		uint32_t mid = 1u << (shift - 1);
		if (rest > mid || (rest == mid && (half & 1u)))
			half++;
		return (uint16_t)(sign | half);
	}
	uint32_t half = ((uint32_t)e << 10) | (man >> 13);
	uint32_t rest = man & 0x1fffu;
	if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
		half++; /* may carry into the exponent, up to infinity: right */
	return (uint16_t)(sign | half);
}

static float f16_to_f32_one(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;
	uint32_t x;

	if (exp == 0x1fu) {
		x = sign | 0x7f800000u | (man << 13);
	} else if (exp != 0) {
		x = sign | ((exp + 112u) << 23) | (man << 13);
	} else if (man == 0) {
		x = sign;
	} else {
		int e = 113;
		while (!(man & 0x400u)) {
			man <<= 1;
			e--;
		}
		x = sign | ((uint32_t)e << 23) | ((man & 0x3ffu) << 13);
	}
	float f;
	memcpy(&f, &x, sizeof f);
	return f;
}

void pn_f32_to_f16_ref(const float *in, uint16_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = f32_to_f16_one(in[i]);
}

void pn_f16_to_f32_ref(const uint16_t *in, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = f16_to_f32_one(in[i]);
}
