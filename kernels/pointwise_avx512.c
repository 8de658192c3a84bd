/* Pointwise (1x1) convolution as a packed GEMM for AVX-512F; matches
 * pn_pw_ref (pointwise_ref.c) up to rounding: out[m][n] = act(bias[n] +
 * sum_k in[m][k] * w[n][k]) (+ residual[m][n]), fused multiply-adds taken
 * in ascending k.
 *
 * Packed layout: the output channels in panels of 32 (the last one 16 wide
 * when at most 16 remain), each panel bias[w] then w[k][w], zero-padded.
 * A micro-tile of up to 14 rows x 32 columns lives in 28 zmm accumulators;
 * the input is broadcast straight from its rows (stride k). Bias, ReLU6 and
 * the residual are fused in the masked store. */
#include <immintrin.h>

#include "x86.h"

#define MR 14

static int panel_width(int n, int j0)
{
	return n - j0 > 16 ? 32 : 16;
}

size_t pn_pw_packed_floats_avx512(int k, int n)
{
	size_t cols = (size_t)(n / 32) * 32;
	if (n % 32)
		cols += (size_t)panel_width(n, n / 32 * 32);
	return cols * ((size_t)k + 1);
}

void pn_pw_pack_avx512(const float *w, const float *bias, int k, int n, float *packed)
{
	for (int j0 = 0; j0 < n; j0 += 32) {
		int pw = panel_width(n, j0);
		int nj = n - j0 < pw ? n - j0 : pw;
		for (int j = 0; j < pw; j++)
			packed[j] = j < nj ? bias[j0 + j] : 0.0f;
		packed += pw;
		for (int i = 0; i < k; i++) {
			for (int j = 0; j < pw; j++)
				packed[j] = j < nj ? w[(size_t)(j0 + j) * k + i] : 0.0f;
			packed += pw;
		}
	}
}

typedef void tile_fn(const float *a, ptrdiff_t k, const float *p, float *out, ptrdiff_t n,
		     const float *res, __mmask16 m0, __mmask16 m1, int relu6);

/* Rows [0, mr) of `a` times one panel `p` (nv vectors wide) into `out`. */
static inline __attribute__((always_inline)) void tile(const float *a, ptrdiff_t k, const float *p,
						       float *out, ptrdiff_t n, const float *res,
						       __mmask16 m0, __mmask16 m1, int relu6,
						       const int mr, const int nv)
{
	__m512 acc[MR][2];
	const __m512 bias0 = _mm512_loadu_ps(p);
	const __m512 bias1 = nv == 2 ? _mm512_loadu_ps(p + 16) : bias0;
	const float *b = p + 16 * nv;
	/* bases of rows 0, 3, 6, 9, 12 (only those of rows in the tile) */
	const float *a0 = a, *a1 = mr > 3 ? a + 3 * k : a, *a2 = mr > 6 ? a + 6 * k : a;
	const float *a3 = mr > 9 ? a + 9 * k : a, *a4 = mr > 12 ? a + 12 * k : a;
	/* row i of the tile is base(i)[(i % 3) * k]; k >= 1, and the first
	 * step starts from the bias */
#define BASE(i) ((i) < 3 ? a0 : (i) < 6 ? a1 : (i) < 9 ? a2 : (i) < 12 ? a3 : a4)
	{
		const __m512 b0 = _mm512_loadu_ps(b);
		const __m512 b1 = nv == 2 ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 14
		for (int i = 0; i < mr; i++) {
			const __m512 x = _mm512_set1_ps(BASE(i)[(i % 3) * k]);
			acc[i][0] = _mm512_fmadd_ps(x, b0, bias0);
			acc[i][1] = nv == 2 ? _mm512_fmadd_ps(x, b1, bias1) : bias1;
		}
	}
	for (ptrdiff_t kk = 1; kk < k; kk++) {
		b += 16 * nv;
		a0++;
		a1++;
		a2++;
		a3++;
		a4++;
		const __m512 b0 = _mm512_loadu_ps(b);
		const __m512 b1 = nv == 2 ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 14
		for (int i = 0; i < mr; i++) {
			const __m512 x = _mm512_set1_ps(BASE(i)[(i % 3) * k]);
			acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
			if (nv == 2)
				acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
		}
	}
#undef BASE
	const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
#pragma GCC unroll 14
	for (int i = 0; i < mr; i++) {
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++) {
			__m512 x = acc[i][v];
			const __mmask16 mask = v ? m1 : m0;
			/* max(0, x) then min(6, x) keep NaN and -0 as pn_relu6 does */
			if (relu6)
				x = _mm512_min_ps(six, _mm512_max_ps(zero, x));
			if (res)
				x = _mm512_add_ps(
					x, _mm512_maskz_loadu_ps(mask, res + i * n + 16 * v));
			_mm512_mask_storeu_ps(out + i * n + 16 * v, mask, x);
		}
	}
}

#define TILE(MRV, NV)                                                                              \
	static void tile_##MRV##x##NV(const float *a, ptrdiff_t k, const float *p, float *out,     \
				      ptrdiff_t n, const float *res, __mmask16 m0, __mmask16 m1,   \
				      int relu6)                                                   \
	{                                                                                          \
		tile(a, k, p, out, n, res, m0, m1, relu6, MRV, NV);                                \
	}
#define TILES(MRV) TILE(MRV, 1) TILE(MRV, 2)
TILES(1)
TILES(2)
TILES(3)
TILES(4)
TILES(5)
TILES(6)
TILES(7)
TILES(8)
TILES(9)
TILES(10)
TILES(11)
TILES(12)
TILES(13)
TILES(14)

static tile_fn *const tiles[2][MR + 1] = {
	{NULL, tile_1x1, tile_2x1, tile_3x1, tile_4x1, tile_5x1, tile_6x1, tile_7x1, tile_8x1,
	 tile_9x1, tile_10x1, tile_11x1, tile_12x1, tile_13x1, tile_14x1},
	{NULL, tile_1x2, tile_2x2, tile_3x2, tile_4x2, tile_5x2, tile_6x2, tile_7x2, tile_8x2,
	 tile_9x2, tile_10x2, tile_11x2, tile_12x2, tile_13x2, tile_14x2},
};

static __mmask16 lanes(int count)
{
	return count >= 16 ? (__mmask16)0xffff : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

void pn_pw_avx512(const float *in, float *out, const float *packed, const float *residual, int m,
		  int k, int n, int relu6)
{
	for (int r0 = 0; r0 < m; r0 += MR) {
		const int mr = m - r0 < MR ? m - r0 : MR;
		const float *a = in + (size_t)r0 * k;
		float *o = out + (size_t)r0 * n;
		const float *res = residual ? residual + (size_t)r0 * n : NULL;
		const float *p = packed;
		for (int j0 = 0; j0 < n; j0 += 32) {
			const int pw = panel_width(n, j0);
			tiles[pw / 16 - 1][mr](a, k, p, o + j0, n, res ? res + j0 : NULL,
					       lanes(n - j0), lanes(n - j0 - 16), relu6);
			p += (size_t)pw * ((size_t)k + 1);
		}
	}
}
