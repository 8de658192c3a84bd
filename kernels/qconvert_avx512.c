/* Floats into and out of the int8 domain with AVX-512, equal to
 * pn_quantize_ref and pn_dequantize_ref (quant.h): x * inv_scale in single
 * precision, rounded half away from zero (truncate, then add the sign when
 * the exact remainder's magnitude is at least 0.5), NaN to -512 and the
 * rest clamped to [-512, 512] (max_ps returns its second operand for a
 * NaN), then zp added and clamped to int8. */
#include "qx86.h"

void pn_quantize_avx512(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp)
{
	const __m512 inv = _mm512_set1_ps(inv_scale), half = _mm512_set1_ps(0.5f),
		     one = _mm512_set1_ps(1.0f), lo = _mm512_set1_ps(-512.0f),
		     hi = _mm512_set1_ps(512.0f);
	const __m512i z = _mm512_set1_epi32(zp), qlo = _mm512_set1_epi32(-128),
		      qhi = _mm512_set1_epi32(127);
	const __m512i sign = _mm512_set1_epi32(INT32_MIN);
	for (size_t i = 0; i < n; i += 16) {
		const __mmask16 mk = pn_qmask16(n - i < 16 ? (int)(n - i) : 16);
		__m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, in + i), inv);
		__m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
		__m512 f = _mm512_abs_ps(_mm512_sub_ps(v, t));
		__m512 away = _mm512_castsi512_ps(_mm512_or_si512(
			_mm512_and_si512(_mm512_castps_si512(v), sign), _mm512_castps_si512(one)));
		t = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(f, half, _CMP_GE_OQ), t, away);
		t = _mm512_min_ps(_mm512_max_ps(t, lo), hi);
		__m512i q = _mm512_add_epi32(_mm512_cvttps_epi32(t), z);
		q = _mm512_min_epi32(_mm512_max_epi32(q, qlo), qhi);
		_mm_mask_storeu_epi8(out + i, mk, _mm512_cvtepi32_epi8(q));
	}
}

void pn_dequantize_avx512(const int8_t *in, float *out, size_t n, float scale, int32_t zp)
{
	const __m512 s = _mm512_set1_ps(scale);
	const __m512i z = _mm512_set1_epi32(zp);
	for (size_t i = 0; i < n; i += 16) {
		const __mmask16 mk = pn_qmask16(n - i < 16 ? (int)(n - i) : 16);
		__m512i q = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, in + i));
		_mm512_mask_storeu_ps(out + i, mk,
				      _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, z)), s));
	}
}
