/* The x86-64 int8 kernels behind pn_qops_avx2, pn_qops_avx512 and
 * pn_qops_avx512vnni, and the requantisation of quant.h on vectors. Each
 * file is compiled with its variant's flags only, so its functions may be
 * called only after the table's available() said yes.
 *
 * Requantisation, lane by lane, equals pn_q_requant: the saturating left
 * shift by max(exp, 0) (shift, shift back, compare); the high multiply on
 * magnitudes, |a| * mult in 64 bits (mult is in [2^30, 2^31), so the
 * product's sign is a's and INT32_MIN * INT32_MIN cannot occur), plus
 * 2^30, shifted by 31, the sign put back: half away from zero; the right
 * shift by max(-exp, 0) likewise on magnitudes (|h| <= 2^31 and the
 * rounding term <= 2^30 fit 32 unsigned bits). */
#ifndef PN_QX86_H
#define PN_QX86_H

#include <immintrin.h>
#include <string.h>

#include "qim2col.h"
#include "qops.h"

void pn_qconv3x3_avx2(const struct pn_qconv_args *a);
void pn_qdw3x3_avx2(const struct pn_qdw_args *a);
size_t pn_qpw_packed_bytes_avx2(int k, int n);
void pn_qpw_pack_avx2(const int8_t *w, int k, int n, int8_t *packed);
void pn_qpw_avx2(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		 int32_t in_zp, const struct pn_qout *q);
void pn_qadd_avx2(const struct pn_qadd_args *a);

void pn_qconv3x3_avx512(const struct pn_qconv_args *a);
void pn_qdw3x3_avx512(const struct pn_qdw_args *a);
size_t pn_qpw_packed_bytes_avx512(int k, int n);
void pn_qpw_pack_avx512(const int8_t *w, int k, int n, int8_t *packed);
void pn_qpw_avx512(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		   int32_t in_zp, const struct pn_qout *q);
void pn_qadd_avx512(const struct pn_qadd_args *a);

size_t pn_qpw_packed_bytes_vnni(int k, int n);
void pn_qpw_pack_vnni(const int8_t *w, int k, int n, int8_t *packed);
void pn_qpw_vnni(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		 int32_t in_zp, const struct pn_qout *q);

void pn_qconv3x3_vnni(const struct pn_qconv_args *a);
void pn_qdw3x3_vnni(const struct pn_qdw_args *a);
void pn_qpeak_vnni(long n);
void pn_qpeak_avx512(long n);
void pn_qpeak_avx2(long n);
void pn_quantize_avx2(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp);
void pn_dequantize_avx2(const int8_t *in, float *out, size_t n, float scale, int32_t zp);
void pn_quantize_avx512(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp);
void pn_dequantize_avx512(const int8_t *in, float *out, size_t n, float scale, int32_t zp);
void pn_qavgpool_avx512(const int8_t *in, int8_t *out, int hw, int c, int32_t in_zp, int32_t mult,
			int exp, int32_t out_zp);
void pn_qlinear_avx512(const int8_t *in, float *out, const int8_t *w, const int32_t *bias,
		       const float *deq, int k, int classes, int32_t in_zp);

#define PN_QX86_INLINE static inline __attribute__((always_inline))

/* The modes of pn_qrq512_mode and pn_qrq256_mode: a constant there lets
 * a kernel compiled once per mode lose the tests. */
#define PN_QRQ_SIGNED 0
#define PN_QRQ_RELU 1
#define PN_QRQ_SLOW 2

#ifdef __AVX512F__
/* 16 lanes of pn_q_requant(acc, mult, exp). */
PN_QX86_INLINE __m512i pn_qrequant_avx512(__m512i acc, __m512i mult, __m512i exp)
{
	const __m512i zero = _mm512_setzero_si512();
	const __m512i half = _mm512_set1_epi64(INT64_C(1) << 30);
	__m512i lsh = _mm512_max_epi32(exp, zero);
	__m512i rsh = _mm512_max_epi32(_mm512_sub_epi32(zero, exp), zero);
	__m512i x = acc;
	if (_mm512_cmpgt_epi32_mask(exp, zero)) { /* rare: M >= 1 */
		x = _mm512_sllv_epi32(acc, lsh);
		__mmask16 over = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(x, lsh), acc);
		__mmask16 neg = _mm512_cmplt_epi32_mask(acc, zero);
		x = _mm512_mask_mov_epi32(x, over,
					  _mm512_mask_blend_epi32(neg, _mm512_set1_epi32(INT32_MAX),
								  _mm512_set1_epi32(INT32_MIN)));
	}
	__mmask16 neg = _mm512_cmplt_epi32_mask(x, zero);
	__m512i mag = _mm512_abs_epi32(x);
	__m512i pe = _mm512_add_epi64(_mm512_mul_epu32(mag, mult), half);
	__m512i po = _mm512_add_epi64(
		_mm512_mul_epu32(_mm512_srli_epi64(mag, 32), _mm512_srli_epi64(mult, 32)), half);
	__m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 31),
					    _mm512_slli_epi64(po, 1));
	__m512i nudge = _mm512_srli_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), rsh), 1);
	__m512i y = _mm512_srlv_epi32(_mm512_add_epi32(h, nudge), rsh);
	return _mm512_mask_sub_epi32(y, neg, zero, y);
}

/* pn_q_requant with its constants made once per 16 channels. For exp <= 0
 * (r = -exp) the two roundings are one: with a = |acc| and
 * h = floor((a mult + 2^30) / 2^31), floor((h + 2^(r-1)) / 2^r) equals
 * floor((a mult + R) / 2^(31+r)), R = 2^30 + (r ? 2^(30+r) : 0), since
 * floor(floor(x / p) / q) = floor(x / (p q)); the sign is put back after.
 * Even lanes: (a mult + R) >> (31+r), the result in the low half of the
 * 64-bit lane. Odd lanes: (2 a mult + 2R) >> r, the result in the high
 * half (2 mult < 2^32 and the sum < 2^64). A block with any exp > 0
 * (M >= 1, rare) takes pn_qrequant_avx512.
 * `relu` (the output clamp has lo >= zp, as after a folded ReLU6) lets
 * acc <= 0 stand for 0: its true y <= 0 makes zp + y <= lo, and so does 0,
 * so the clamped byte is lo either way and no sign is needed. */
struct pn_qrq512 {
	__m512i mult, exp, m2odd, re, ro, se, so;
	int slow, relu;
};

PN_QX86_INLINE struct pn_qrq512 pn_qrq512_init(__m512i mult, __m512i exp, int relu)
{
	const __m512i zero = _mm512_setzero_si512(), lo32 = _mm512_set1_epi64(0xFFFFFFFF);
	struct pn_qrq512 q;
	q.mult = mult;
	q.exp = exp;
	q.slow = _mm512_cmpgt_epi32_mask(exp, zero) != 0;
	q.relu = relu;
	__m512i r = _mm512_max_epi32(_mm512_sub_epi32(zero, exp), zero);
	__m512i re = _mm512_and_si512(r, lo32), ro = _mm512_srli_epi64(r, 32);
	const __m512i h30 = _mm512_set1_epi64(INT64_C(1) << 30);
	q.re = _mm512_add_epi64(h30,
				_mm512_maskz_sllv_epi64(_mm512_test_epi64_mask(re, re), h30, re));
	q.ro = _mm512_slli_epi64(
		_mm512_add_epi64(h30,
				 _mm512_maskz_sllv_epi64(_mm512_test_epi64_mask(ro, ro), h30, ro)),
		1);
	q.se = _mm512_add_epi64(re, _mm512_set1_epi64(31));
	q.so = ro;
	q.m2odd = _mm512_slli_epi64(_mm512_srli_epi64(mult, 32), 1);
	return q;
}

PN_QX86_INLINE int pn_qrq512_modeof(const struct pn_qrq512 *q)
{
	return q->slow ? PN_QRQ_SLOW : q->relu ? PN_QRQ_RELU : PN_QRQ_SIGNED;
}

PN_QX86_INLINE __m512i pn_qrq512_mode(const struct pn_qrq512 *q, __m512i acc, int mode)
{
	const __m512i zero = _mm512_setzero_si512();
	if (mode == PN_QRQ_SLOW)
		return pn_qrequant_avx512(acc, q->mult, q->exp);
	__m512i mag = mode == PN_QRQ_RELU ? _mm512_max_epi32(acc, zero) : _mm512_abs_epi32(acc);
	__m512i pe =
		_mm512_srlv_epi64(_mm512_add_epi64(_mm512_mul_epu32(mag, q->mult), q->re), q->se);
	__m512i po = _mm512_srlv_epi64(
		_mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(mag, 32), q->m2odd), q->ro),
		q->so);
	__m512i y = _mm512_mask_blend_epi32(0xAAAA, pe, po);
	if (mode == PN_QRQ_RELU)
		return y;
	return _mm512_mask_sub_epi32(y, _mm512_cmplt_epi32_mask(acc, zero), zero, y);
}

PN_QX86_INLINE __m512i pn_qrq512(const struct pn_qrq512 *q, __m512i acc)
{
	return pn_qrq512_mode(q, acc, pn_qrq512_modeof(q));
}

/* clamp(zp + y, lo, hi) of four vectors of 16 as 64 bytes, in the packs'
 * order: 128-bit lane L holds y0's lanes 4 L .. 4 L + 3, then y1's, y2's
 * and y3's (pn_qpack64_avx512 below puts y0 in bytes 0..15, y1 in
 * 16..31 and so on). Saturating packs to int16, a
 * saturating add of zp, a saturating pack to int8 and the clamp in int8:
 * each step keeps order and |zp| <= 128, so a value saturated on the way
 * lands on the same side of [lo, hi] as the exact sum (lo, hi, zp are
 * broadcast: zp16 as int16, lo8 and hi8 as int8). */
PN_QX86_INLINE __m512i pn_qpack64_lanes_avx512(__m512i y0, __m512i y1, __m512i y2, __m512i y3,
					       __m512i zp16, __m512i lo8, __m512i hi8)
{
	__m512i a = _mm512_adds_epi16(_mm512_packs_epi32(y0, y1), zp16);
	__m512i b = _mm512_adds_epi16(_mm512_packs_epi32(y2, y3), zp16);
	return _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(a, b), lo8), hi8);
}

/* The same with the bytes in order (y_j's lanes 4 L .. 4 L + 3 are
 * dword 4 L + j of the packs' result). */
PN_QX86_INLINE __m512i pn_qpack64_avx512(__m512i y0, __m512i y1, __m512i y2, __m512i y3,
					 __m512i zp16, __m512i lo8, __m512i hi8)
{
	return _mm512_permutexvar_epi32(
		_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
		pn_qpack64_lanes_avx512(y0, y1, y2, y3, zp16, lo8, hi8));
}

/* 16 lanes of pn_q_round_shift(x, shift), 1 <= shift <= 31. */
PN_QX86_INLINE __m512i pn_qround_shift_avx512(__m512i x, int shift)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512i y = _mm512_add_epi32(_mm512_abs_epi32(x), _mm512_set1_epi32(1 << (shift - 1)));
	y = _mm512_srl_epi32(y, _mm_cvtsi32_si128(shift));
	return _mm512_mask_sub_epi32(y, _mm512_cmplt_epi32_mask(x, zero), zero, y);
}

/* clamp(zp + y, lo, hi) as 16 int8, computed as zp + clamp(y, lo - zp,
 * hi - zp) so that the sum cannot wrap. */
PN_QX86_INLINE __m128i pn_qnarrow_avx512(__m512i y, __m512i zp, __m512i lo, __m512i hi)
{
	y = _mm512_min_epi32(_mm512_max_epi32(y, _mm512_sub_epi32(lo, zp)),
			     _mm512_sub_epi32(hi, zp));
	return _mm512_cvtepi32_epi8(_mm512_add_epi32(y, zp));
}

/* 16 lanes: clamp(zp + requant(acc, mult, exp), lo, hi) as int8. */
PN_QX86_INLINE __m128i pn_qout_avx512(__m512i acc, __m512i mult, __m512i exp, __m512i zp,
				      __m512i lo, __m512i hi)
{
	return pn_qnarrow_avx512(pn_qrequant_avx512(acc, mult, exp), zp, lo, hi);
}

/* The bytes of a block of 64 that lie below `left`. */
PN_QX86_INLINE __mmask64 pn_qmask64(int left)
{
	return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
}

/* The lanes of a block of 16 that lie below `left`. */
PN_QX86_INLINE __mmask16 pn_qmask16(int left)
{
	return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

/* The requantisation constants of output columns [col, col + 64) (nb
 * blocks of 16, the last masked at n), for the pointwise tiles. */
PN_QX86_INLINE void pn_qrq512_cols(struct pn_qrq512 rq[4], const struct pn_qout *q, int col, int n,
				   int nb)
{
	for (int b = 0; b < nb && b < 4; b++) {
		const int c = col + 16 * b;
		const __mmask16 mk = pn_qmask16(n - c);
		rq[b] = pn_qrq512_init(_mm512_maskz_loadu_epi32(mk, q->mult + c),
				       _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, q->exp + c)),
				       q->lo >= q->zp);
	}
}

/* One mode for a pointwise column block: SLOW if any block needs it. */
PN_QX86_INLINE int pn_qrq512_cols_mode(const struct pn_qrq512 rq[4], int nb)
{
	int mode = pn_qrq512_modeof(&rq[0]);
	for (int b = 1; b < nb && b < 4; b++)
		if (rq[b].slow)
			mode = PN_QRQ_SLOW;
	return mode;
}

/* pn_qpack64_avx512 of y0 and y1 alone, as 32 bytes. */
PN_QX86_INLINE __m256i pn_qpack32_avx512(__m512i y0, __m512i y1, __m512i zp16, __m512i lo8,
					 __m512i hi8)
{
	__m512i a = _mm512_adds_epi16(_mm512_packs_epi32(y0, y1), zp16);
	__m512i v = _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(a, a), lo8), hi8);
	/* dword 4 L + j of v holds y_j's lanes 4 L .. 4 L + 3, j = 0, 1 */
	return _mm512_castsi512_si256(_mm512_permutexvar_epi32(
		_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), v));
}

/* Rows [0, rows) of a pointwise tile's accumulators acc[row][block],
 * requantised and stored as up to 64 bytes at out + row * n + col. */
PN_QX86_INLINE void pn_qstore_tile512(int8_t *out, int n, int col, int rows, int nb,
				      __m512i acc[][4], const struct pn_qrq512 rq[4],
				      const struct pn_qout *q, int mode)
{
	const __m512i zp16 = _mm512_set1_epi16((short)q->zp), lo8 = _mm512_set1_epi8((char)q->lo),
		      hi8 = _mm512_set1_epi8((char)q->hi);
	const __mmask64 mk = pn_qmask64(n - col);
#pragma GCC unroll 4
	for (int i = 0; i < rows; i++) {
		__m512i y[4];
#pragma GCC unroll 4
		for (int b = 0; b < 4; b++)
			y[b] = b < nb ? pn_qrq512_mode(&rq[b], acc[i][b], mode)
				      : _mm512_setzero_si512();
		if (nb <= 2)
			_mm256_mask_storeu_epi8(out + (size_t)i * n + col, (__mmask32)mk,
						pn_qpack32_avx512(y[0], y[1], zp16, lo8, hi8));
		else
			_mm512_mask_storeu_epi8(
				out + (size_t)i * n + col, mk,
				pn_qpack64_avx512(y[0], y[1], y[2], y[3], zp16, lo8, hi8));
	}
}
#endif

#ifdef __AVX2__
/* 8 lanes of pn_q_requant(acc, mult, exp). */
PN_QX86_INLINE __m256i pn_qrequant_avx2(__m256i acc, __m256i mult, __m256i exp)
{
	const __m256i zero = _mm256_setzero_si256();
	const __m256i half = _mm256_set1_epi64x(INT64_C(1) << 30);
	__m256i lsh = _mm256_max_epi32(exp, zero);
	__m256i rsh = _mm256_max_epi32(_mm256_sub_epi32(zero, exp), zero);
	__m256i x = _mm256_sllv_epi32(acc, lsh);
	__m256i over = _mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_srav_epi32(x, lsh), acc),
					_mm256_set1_epi32(-1));
	__m256i sat = _mm256_blendv_epi8(_mm256_set1_epi32(INT32_MAX), _mm256_set1_epi32(INT32_MIN),
					 _mm256_cmpgt_epi32(zero, acc));
	x = _mm256_blendv_epi8(x, sat, over);
	__m256i mag = _mm256_abs_epi32(x);
	__m256i pe = _mm256_add_epi64(_mm256_mul_epu32(mag, mult), half);
	__m256i po = _mm256_add_epi64(
		_mm256_mul_epu32(_mm256_srli_epi64(mag, 32), _mm256_srli_epi64(mult, 32)), half);
	__m256i h = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
	__m256i nudge = _mm256_srli_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), rsh), 1);
	__m256i y = _mm256_srlv_epi32(_mm256_add_epi32(h, nudge), rsh);
	return _mm256_sign_epi32(y, x);
}

/* pn_q_requant with its constants made once per 8 channels: the single
 * rounding of pn_qrq512 (above, where it is argued) on 256-bit vectors;
 * the modes are the same. */
struct pn_qrq256 {
	__m256i mult, exp, m2odd, re, ro, se, so;
	int slow, relu;
};

PN_QX86_INLINE struct pn_qrq256 pn_qrq256_init(__m256i mult, __m256i exp, int relu)
{
	const __m256i zero = _mm256_setzero_si256(), lo32 = _mm256_set1_epi64x(0xFFFFFFFF);
	const __m256i h30 = _mm256_set1_epi64x(INT64_C(1) << 30);
	struct pn_qrq256 q;
	q.mult = mult;
	q.exp = exp;
	q.slow = _mm256_movemask_epi8(_mm256_cmpgt_epi32(exp, zero)) != 0;
	q.relu = relu;
	__m256i r = _mm256_max_epi32(_mm256_sub_epi32(zero, exp), zero);
	__m256i re = _mm256_and_si256(r, lo32), ro = _mm256_srli_epi64(r, 32);
	/* 2^30 + (r ? 2^(30+r) : 0) */
	q.re = _mm256_add_epi64(
		h30, _mm256_and_si256(_mm256_sllv_epi64(h30, re), _mm256_cmpgt_epi64(re, zero)));
	q.ro = _mm256_slli_epi64(
		_mm256_add_epi64(h30, _mm256_and_si256(_mm256_sllv_epi64(h30, ro),
						       _mm256_cmpgt_epi64(ro, zero))),
		1);
	q.se = _mm256_add_epi64(re, _mm256_set1_epi64x(31));
	q.so = ro;
	q.m2odd = _mm256_slli_epi64(_mm256_srli_epi64(mult, 32), 1);
	return q;
}

PN_QX86_INLINE int pn_qrq256_modeof(const struct pn_qrq256 *q)
{
	return q->slow ? PN_QRQ_SLOW : q->relu ? PN_QRQ_RELU : PN_QRQ_SIGNED;
}

PN_QX86_INLINE __m256i pn_qrq256_mode(const struct pn_qrq256 *q, __m256i acc, int mode)
{
	const __m256i zero = _mm256_setzero_si256();
	if (mode == PN_QRQ_SLOW)
		return pn_qrequant_avx2(acc, q->mult, q->exp);
	__m256i mag = mode == PN_QRQ_RELU ? _mm256_max_epi32(acc, zero) : _mm256_abs_epi32(acc);
	__m256i pe =
		_mm256_srlv_epi64(_mm256_add_epi64(_mm256_mul_epu32(mag, q->mult), q->re), q->se);
	__m256i po = _mm256_srlv_epi64(
		_mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(mag, 32), q->m2odd), q->ro),
		q->so);
	__m256i y = _mm256_blend_epi32(pe, po, 0xAA);
	return mode == PN_QRQ_RELU ? y : _mm256_sign_epi32(y, acc);
}

/* 8 lanes of pn_q_round_shift(x, shift), 1 <= shift <= 31. */
PN_QX86_INLINE __m256i pn_qround_shift_avx2(__m256i x, int shift)
{
	__m256i y = _mm256_add_epi32(_mm256_abs_epi32(x), _mm256_set1_epi32(1 << (shift - 1)));
	return _mm256_sign_epi32(_mm256_srl_epi32(y, _mm_cvtsi32_si128(shift)), x);
}

/* clamp(zp + y, lo, hi), as int32; y first kept to +-2^16 so that the
 * sum cannot wrap (the clamp makes that invisible). */
PN_QX86_INLINE __m256i pn_qclamp_avx2(__m256i y, __m256i zp, __m256i lo, __m256i hi)
{
	y = _mm256_min_epi32(_mm256_max_epi32(y, _mm256_set1_epi32(-65536)),
			     _mm256_set1_epi32(65536));
	return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(y, zp), lo), hi);
}

/* 8 lanes: clamp(zp + requant(acc, mult, exp), lo, hi), as int32. */
PN_QX86_INLINE __m256i pn_qout_avx2(__m256i acc, __m256i mult, __m256i exp, __m256i zp, __m256i lo,
				    __m256i hi)
{
	return pn_qclamp_avx2(pn_qrequant_avx2(acc, mult, exp), zp, lo, hi);
}

/* Eight int32 lanes (already in int8 range) stored as 8 bytes. */
PN_QX86_INLINE void pn_qstore8_avx2(int8_t *out, __m256i v)
{
	__m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	_mm_storel_epi64((__m128i *)(void *)out, _mm_packs_epi16(w, w));
}

/* Eight int8 from p (the first `left` when left < 8, zeros after; left
 * >= 1) widened to int32. */
PN_QX86_INLINE __m256i pn_qload8_avx2(const int8_t *p, int left)
{
	int8_t b[8] = {0};
	if (left >= 8)
		return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
	memcpy(b, p, (size_t)left);
	return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(void *)b));
}

/* Eight int32 from p, as pn_qload8_avx2. */
PN_QX86_INLINE __m256i pn_qload8_i32_avx2(const int32_t *p, int left)
{
	int32_t b[8] = {0};
	if (left >= 8)
		return _mm256_loadu_si256((const __m256i *)(const void *)p);
	memcpy(b, p, (size_t)left * sizeof *b);
	return _mm256_loadu_si256((const __m256i *)(void *)b);
}

/* pn_qstore8_avx2 of the first `left` bytes only (all 8 when left >= 8). */
PN_QX86_INLINE void pn_qstore8_left_avx2(int8_t *p, __m256i v, int left)
{
	int8_t b[8];
	if (left >= 8) {
		pn_qstore8_avx2(p, v);
		return;
	}
	pn_qstore8_avx2(b, v);
	memcpy(p, b, (size_t)left);
}
#endif

#endif
