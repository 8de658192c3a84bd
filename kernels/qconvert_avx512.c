/* The int8 domain's ends with AVX-512: the pool and the classifier,
 * equal to pn_qavgpool_ref and pn_qlinear_ref (integer sums, exact in any
 * order), and floats into and out of it, equal to pn_quantize_ref and
 * pn_dequantize_ref (quant.h): x * inv_scale in single
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

/* 16 channels at a time: their int32 sums over the pixels (a stride of c
 * bytes), requantised by pn_qrq512 and narrowed as every kernel does. */
void pn_qavgpool_avx512(const int8_t *in, int8_t *out, int hw, int c, int32_t in_zp, int32_t mult,
			int exp, int32_t out_zp)
{
	const struct pn_qrq512 rq =
		pn_qrq512_init(_mm512_set1_epi32(mult), _mm512_set1_epi32(exp), 0);
	const __m512i start = _mm512_set1_epi32(-hw * in_zp), zp = _mm512_set1_epi32(out_zp),
		      lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
	for (int c0 = 0; c0 < c; c0 += 16) {
		const __mmask16 mk = pn_qmask16(c - c0);
		__m512i sum = start;
		for (int p = 0; p < hw; p++)
			sum = _mm512_add_epi32(sum, _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(
							    mk, in + (size_t)p * c + c0)));
		_mm_mask_storeu_epi8(out + c0, mk,
				     pn_qnarrow_avx512(pn_qrq512(&rq, sum), zp, lo, hi));
	}
}

/* Each class: 32 products (q - in_zp) w at a time on int16 (|.| <= 255
 * x 128), pairs summed into int32 by vpmaddwd; past k both are 0. */
void pn_qlinear_avx512(const int8_t *in, float *out, const int8_t *w, const int32_t *bias,
		       const float *deq, int k, int classes, int32_t in_zp)
{
	const __m512i zp = _mm512_set1_epi16((short)in_zp);
	for (int j = 0; j < classes; j++) {
		const int8_t *wr = w + (size_t)j * k;
		__m512i acc = _mm512_setzero_si512();
		for (int i = 0; i < k; i += 32) {
			const __mmask32 mk =
				k - i >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << (k - i)) - 1);
			__m512i x = _mm512_maskz_sub_epi16(
				mk, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mk, in + i)), zp);
			__m512i v = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mk, wr + i));
			acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, v));
		}
		/* int32 arithmetic wraps, as the reference's sum would */
		int32_t sum = (int32_t)((uint32_t)bias[j] + (uint32_t)_mm512_reduce_add_epi32(acc));
		out[j] = (float)sum * deq[j];
	}
}
