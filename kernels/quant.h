/* Fixed-point arithmetic of the int8 models.
 *
 * A real value r of a quantised tensor is S * (q - Z): S a positive float
 * scale, Z an integer zero point, q the stored int8. Weights are symmetric
 * (Z = 0) per output channel and lie in [-127, 127]; activations are per
 * tensor, asymmetric, in [-128, 127].
 *
 * Requantisation turns an int32 accumulator whose unit is S_acc into the
 * unit S_out: acc * M with M = S_acc / S_out, M given as a Q31 multiplier
 * `mult` in [2^30, 2^31) and an exponent: M = mult * 2^(exp - 31). It is
 * computed in two roundings, each ROUND HALF AWAY FROM ZERO:
 *   h = pn_q_high_mul(acc << max(exp, 0), mult)     round(a * b / 2^31)
 *   y = pn_q_round_shift(h, max(-exp, 0))           round(h / 2^shift)
 * The left shift saturates to int32; the high multiply saturates only for
 * INT32_MIN * INT32_MIN. Every kernel variant must compute exactly this
 * (the same operations as gemmlowp's SaturatingRoundingDoublingHighMul and
 * RoundingDivideByPOT, with the rounding stated above for both).
 *
 * Floats enter and leave the integer domain at the ends of a block range:
 * q = clamp(Z + roundf(x * (1 / S)))  (half away from zero), and
 * x = (float)(q - Z) * S. A dequantised activation quantised again with
 * the same S and Z gives back q exactly, so block ranges compose.
 */
#ifndef PN_QUANT_H
#define PN_QUANT_H

#include <math.h>
#include <stdint.h>

/* Exponents a multiplier may have: M in [2^-32, 2^8). */
#define PN_Q_EXP_MIN (-31)
#define PN_Q_EXP_MAX 7

/* round(a * b / 2^31), half away from zero, saturated to int32. */
static inline int32_t pn_q_high_mul(int32_t a, int32_t b)
{
	if (a == INT32_MIN && b == INT32_MIN)
		return INT32_MAX;
	int64_t p = (int64_t)a * b;
	uint64_t mag = p < 0 ? (uint64_t)0 - (uint64_t)p : (uint64_t)p;
	int64_t r = (int64_t)((mag + (UINT64_C(1) << 30)) >> 31);
	return (int32_t)(p < 0 ? -r : r);
}

/* round(x / 2^shift), half away from zero; 0 <= shift <= 31. */
static inline int32_t pn_q_round_shift(int32_t x, int shift)
{
	if (shift == 0)
		return x;
	uint64_t mag = x < 0 ? (uint64_t)0 - (uint64_t)(int64_t)x : (uint64_t)x;
	int64_t r = (int64_t)((mag + (UINT64_C(1) << (shift - 1))) >> shift);
	return (int32_t)(x < 0 ? -r : r);
}

/* x * 2^shift saturated to int32; 0 <= shift <= 31. */
static inline int32_t pn_q_sat_shl(int32_t x, int shift)
{
	int64_t v = (int64_t)x * ((int64_t)1 << shift);
	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* acc * mult * 2^(exp - 31), rounded as stated at the top. */
static inline int32_t pn_q_requant(int32_t acc, int32_t mult, int exp)
{
	if (exp > 0)
		return pn_q_high_mul(pn_q_sat_shl(acc, exp), mult);
	return pn_q_round_shift(pn_q_high_mul(acc, mult), -exp);
}

static inline int32_t pn_q_clamp(int32_t v, int32_t lo, int32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* q = clamp(zp + roundf(x * inv_scale), -128, 127). */
static inline int8_t pn_q_from_float(float x, float inv_scale, int32_t zp)
{
	float v = roundf(x * inv_scale);
	if (!(v > -512.0f)) /* also NaN */
		v = -512.0f;
	if (v > 512.0f)
		v = 512.0f;
	return (int8_t)pn_q_clamp((int32_t)v + zp, -128, 127);
}

static inline float pn_q_to_float(int8_t q, float scale, int32_t zp)
{
	return (float)((int32_t)q - zp) * scale;
}

/* The Q31 multiplier and exponent of a real M > 0 (as above). Returns 0,
 * or -1 when M is not finite and positive or its exponent is outside
 * [PN_Q_EXP_MIN, PN_Q_EXP_MAX]. */
int pn_q_multiplier(double m, int32_t *mult, int *exp);

#endif
