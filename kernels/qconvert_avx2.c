/* Floats into and out of the int8 domain with AVX2, equal to
 * pn_quantize_ref and pn_dequantize_ref: the arithmetic of
 * qconvert_avx512.c on 8 lanes (maxps returns its second operand for a
 * NaN), the tail by the scalar functions. */
#include "qx86.h"

void pn_quantize_avx2(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp)
{
	const __m256 inv = _mm256_set1_ps(inv_scale), half = _mm256_set1_ps(0.5f),
		     one = _mm256_set1_ps(1.0f), lo = _mm256_set1_ps(-512.0f),
		     hi = _mm256_set1_ps(512.0f), sign = _mm256_set1_ps(-0.0f);
	const __m256i z = _mm256_set1_epi32(zp), qlo = _mm256_set1_epi32(-128),
		      qhi = _mm256_set1_epi32(127);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_mul_ps(_mm256_loadu_ps(in + i), inv);
		__m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
		__m256 f = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
		__m256 away = _mm256_or_ps(_mm256_and_ps(v, sign), one);
		t = _mm256_add_ps(t, _mm256_and_ps(away, _mm256_cmp_ps(f, half, _CMP_GE_OQ)));
		t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
		__m256i q = _mm256_add_epi32(_mm256_cvttps_epi32(t), z);
		pn_qstore8_avx2(out + i, _mm256_min_epi32(_mm256_max_epi32(q, qlo), qhi));
	}
	pn_quantize_ref(in + i, out + i, n - i, inv_scale, zp);
}

void pn_dequantize_avx2(const int8_t *in, float *out, size_t n, float scale, int32_t zp)
{
	const __m256 s = _mm256_set1_ps(scale);
	const __m256i z = _mm256_set1_epi32(zp);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256i q = _mm256_cvtepi8_epi32(
			_mm_loadl_epi64((const __m128i *)(const void *)(in + i)));
		_mm256_storeu_ps(out + i,
				 _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, z)), s));
	}
	pn_dequantize_ref(in + i, out + i, n - i, scale, zp);
}
