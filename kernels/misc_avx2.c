/* The head and the binary16 conversions for AVX2 and F16C; they match
 * misc_ref.c: the average pool adds the rows in order and divides once, so
 * it equals pn_avgpool_ref bit for bit; the linear layer equals
 * pn_linear_ref up to rounding (its sum is split over vector lanes);
 * vcvtps2ph / vcvtph2ps with round to nearest even equal pn_f32_to_f16_ref
 * and pn_f16_to_f32_ref bit for bit, but for NaN payloads (a signalling
 * NaN comes back quiet). */
#include <string.h>

#include <immintrin.h>

#include "x86.h"

#define VL 8

static const int32_t lane_ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1};

/* Lanes [0, count) of a ymm, 0 <= count <= 8. */
static inline __m256i lanes(ptrdiff_t count)
{
	return _mm256_loadu_si256((const __m256i *)(lane_ones + 8 - count));
}

/* Multiply, multiply, add: no FMA, so that it equals pn_lerp_ref. */
void pn_lerp_avx2(const float *a, const float *b, float wa, float wb, float *out, size_t n)
{
	const __m256 va = _mm256_set1_ps(wa), vb = _mm256_set1_ps(wb);
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		_mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_mul_ps(va, _mm256_loadu_ps(a + i)),
							_mm256_mul_ps(vb, _mm256_loadu_ps(b + i))));
	for (; i < n; i++)
		out[i] = wa * a[i] + wb * b[i];
}

void pn_avgpool_avx2(const float *in, float *out, int hw, int c)
{
	const __m256 div = _mm256_set1_ps((float)hw);
	ptrdiff_t ch = 0;
	for (; ch + 4 * VL <= c; ch += 4 * VL) {
		__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (ptrdiff_t p = 0; p < hw; p++) {
			const float *x = in + p * c + ch;
			s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x));
			s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + VL));
			s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + 2 * VL));
			s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + 3 * VL));
		}
		_mm256_storeu_ps(out + ch, _mm256_div_ps(s0, div));
		_mm256_storeu_ps(out + ch + VL, _mm256_div_ps(s1, div));
		_mm256_storeu_ps(out + ch + 2 * VL, _mm256_div_ps(s2, div));
		_mm256_storeu_ps(out + ch + 3 * VL, _mm256_div_ps(s3, div));
	}
	for (; ch < c; ch += VL) {
		const __m256i mask = lanes(c - ch < VL ? c - ch : VL);
		__m256 s = _mm256_setzero_ps();
		for (ptrdiff_t p = 0; p < hw; p++)
			s = _mm256_add_ps(s, _mm256_maskload_ps(in + p * c + ch, mask));
		_mm256_maskstore_ps(out + ch, mask, _mm256_div_ps(s, div));
	}
}

void pn_linear_avx2(const float *in, float *out, const float *w, const float *bias, int k,
		    int classes)
{
	for (ptrdiff_t j = 0; j < classes; j++) {
		const float *wj = w + j * k;
		__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		ptrdiff_t i = 0;
		for (; i + 4 * VL <= k; i += 4 * VL) {
			s0 = _mm256_fmadd_ps(_mm256_loadu_ps(in + i), _mm256_loadu_ps(wj + i), s0);
			s1 = _mm256_fmadd_ps(_mm256_loadu_ps(in + i + VL),
					     _mm256_loadu_ps(wj + i + VL), s1);
			s2 = _mm256_fmadd_ps(_mm256_loadu_ps(in + i + 2 * VL),
					     _mm256_loadu_ps(wj + i + 2 * VL), s2);
			s3 = _mm256_fmadd_ps(_mm256_loadu_ps(in + i + 3 * VL),
					     _mm256_loadu_ps(wj + i + 3 * VL), s3);
		}
		for (; i < k; i += VL) {
			const __m256i mask = lanes(k - i < VL ? k - i : VL);
			s0 = _mm256_fmadd_ps(_mm256_maskload_ps(in + i, mask),
					     _mm256_maskload_ps(wj + i, mask), s0);
		}
		const __m256 s8 = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
		__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
		s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
		s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
		out[j] = bias[j] + _mm_cvtss_f32(s4);
	}
}

void pn_f32_to_f16_avx2(const float *in, uint16_t *out, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		_mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i),
								       _MM_FROUND_TO_NEAREST_INT));
	if (i < n) {
		uint16_t h[VL];
		_mm_storeu_si128((__m128i *)h,
				 _mm256_cvtps_ph(_mm256_maskload_ps(in + i, lanes(n - i)),
						 _MM_FROUND_TO_NEAREST_INT));
		memcpy(out + i, h, (n - i) * sizeof *h);
	}
}

void pn_f16_to_f32_avx2(const uint16_t *in, float *out, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		_mm256_storeu_ps(out + i,
				 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
	if (i < n) {
		uint16_t h[VL] = {0};
		memcpy(h, in + i, (n - i) * sizeof *h);
		_mm256_maskstore_ps(out + i, lanes(n - i),
				    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h)));
	}
}
