/* The head and the binary16 conversions for AVX-512F (F16C semantics);
 * they match misc_ref.c: the average pool adds the rows in order and
 * divides once, so it equals pn_avgpool_ref bit for bit; the linear layer
 * equals pn_linear_ref up to rounding (its sum is split over vector lanes);
 * vcvtps2ph / vcvtph2ps with round to nearest even equal pn_f32_to_f16_ref
 * and pn_f16_to_f32_ref bit for bit, but for NaN payloads (a signalling
 * NaN comes back quiet). */
#include <string.h>

#include <immintrin.h>

#include "x86.h"

#define VL 16

static __mmask16 lanes(ptrdiff_t count)
{
	return count >= VL ? (__mmask16)0xffff : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

/* Multiply, multiply, add: no FMA, so that it equals pn_lerp_ref. */
void pn_lerp_avx512(const float *a, const float *b, float wa, float wb, float *out, size_t n)
{
	const __m512 va = _mm512_set1_ps(wa), vb = _mm512_set1_ps(wb);
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		_mm512_storeu_ps(out + i, _mm512_add_ps(_mm512_mul_ps(va, _mm512_loadu_ps(a + i)),
							_mm512_mul_ps(vb, _mm512_loadu_ps(b + i))));
	if (i < n) {
		const __mmask16 m = lanes((ptrdiff_t)(n - i));
		_mm512_mask_storeu_ps(
			out + i, m,
			_mm512_add_ps(_mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, a + i)),
				      _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, b + i))));
	}
}

void pn_avgpool_avx512(const float *in, float *out, int hw, int c)
{
	const __m512 div = _mm512_set1_ps((float)hw);
	ptrdiff_t ch = 0;
	for (; ch + 4 * VL <= c; ch += 4 * VL) {
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (ptrdiff_t p = 0; p < hw; p++) {
			const float *x = in + p * c + ch;
			s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x));
			s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + VL));
			s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + 2 * VL));
			s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + 3 * VL));
		}
		_mm512_storeu_ps(out + ch, _mm512_div_ps(s0, div));
		_mm512_storeu_ps(out + ch + VL, _mm512_div_ps(s1, div));
		_mm512_storeu_ps(out + ch + 2 * VL, _mm512_div_ps(s2, div));
		_mm512_storeu_ps(out + ch + 3 * VL, _mm512_div_ps(s3, div));
	}
	for (; ch < c; ch += VL) {
		const __mmask16 mask = lanes(c - ch);
		__m512 s = _mm512_setzero_ps();
		for (ptrdiff_t p = 0; p < hw; p++)
			s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mask, in + p * c + ch));
		_mm512_mask_storeu_ps(out + ch, mask, _mm512_div_ps(s, div));
	}
}

void pn_linear_avx512(const float *in, float *out, const float *w, const float *bias, int k,
		      int classes)
{
	for (ptrdiff_t j = 0; j < classes; j++) {
		const float *wj = w + j * k;
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		ptrdiff_t i = 0;
		for (; i + 4 * VL <= k; i += 4 * VL) {
			s0 = _mm512_fmadd_ps(_mm512_loadu_ps(in + i), _mm512_loadu_ps(wj + i), s0);
			s1 = _mm512_fmadd_ps(_mm512_loadu_ps(in + i + VL),
					     _mm512_loadu_ps(wj + i + VL), s1);
			s2 = _mm512_fmadd_ps(_mm512_loadu_ps(in + i + 2 * VL),
					     _mm512_loadu_ps(wj + i + 2 * VL), s2);
			s3 = _mm512_fmadd_ps(_mm512_loadu_ps(in + i + 3 * VL),
					     _mm512_loadu_ps(wj + i + 3 * VL), s3);
		}
		for (; i < k; i += VL) {
			const __mmask16 mask = lanes(k - i);
			s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, in + i),
					     _mm512_maskz_loadu_ps(mask, wj + i), s0);
		}
		const __m512 s = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
		out[j] = bias[j] + _mm512_reduce_add_ps(s);
	}
}

void pn_f32_to_f16_avx512(const float *in, uint16_t *out, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		_mm256_storeu_si256(
			(__m256i *)(out + i),
			_mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
	if (i < n) {
		uint16_t h[VL];
		_mm256_storeu_si256((__m256i *)h,
				    _mm512_cvtps_ph(_mm512_maskz_loadu_ps(lanes(n - i), in + i),
						    _MM_FROUND_TO_NEAREST_INT));
		memcpy(out + i, h, (n - i) * sizeof *h);
	}
}

void pn_f16_to_f32_avx512(const uint16_t *in, float *out, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		_mm512_storeu_ps(out + i,
				 _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(in + i))));
	if (i < n) {
		uint16_t h[VL] = {0};
		memcpy(h, in + i, (n - i) * sizeof *h);
		_mm512_mask_storeu_ps(out + i, lanes(n - i),
				      _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h)));
	}
}
