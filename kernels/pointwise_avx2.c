/* Pointwise (1x1) convolution as a packed GEMM for AVX2 and FMA; matches
 * pn_pw_ref (pointwise_ref.c) up to rounding: out[m][n] = act(bias[n] +
 * sum_k in[m][k] * w[n][k]) (+ residual[m][n]), fused multiply-adds taken
 * in ascending k.
 *
 * Packed layout: the output channels in panels of 16 (the last one 8 wide
 * when at most 8 remain), each panel bias[w] then w[k][w], zero-padded.
 * A micro-tile of up to 6 rows x 16 columns lives in 12 ymm accumulators;
 * the input is broadcast straight from its rows (stride k). Bias, ReLU6 and
 * the residual are fused in the store, masked for the last columns. */
#include <immintrin.h>

#include "x86.h"

#define MR 6

static int panel_width(int n, int j0)
{
	return n - j0 > 8 ? 16 : 8;
}

size_t pn_pw_packed_floats_avx2(int k, int n)
{
	size_t cols = (size_t)(n / 16) * 16;
	if (n % 16)
		cols += (size_t)panel_width(n, n / 16 * 16);
	return cols * ((size_t)k + 1);
}

void pn_pw_pack_avx2(const float *w, const float *bias, int k, int n, float *packed)
{
	for (int j0 = 0; j0 < n; j0 += 16) {
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

static const int32_t lane_ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1};

/* Lanes [0, count) of a ymm store, 0 <= count <= 8. */
static inline __m256i lanes(int count)
{
	return _mm256_loadu_si256((const __m256i *)(lane_ones + 8 - count));
}

typedef void tile_fn(const float *a, ptrdiff_t k, const float *p, float *out, ptrdiff_t n,
		     const float *res, int cols, int relu6);

/* Rows [0, mr) of `a` times one panel `p` (nv vectors wide) into columns
 * [0, cols) of `out`. */
static inline __attribute__((always_inline)) void tile(const float *a, ptrdiff_t k, const float *p,
						       float *out, ptrdiff_t n, const float *res,
						       int cols, int relu6, const int mr,
						       const int nv)
{
	__m256 acc[MR][2];
	const __m256 bias0 = _mm256_loadu_ps(p);
	const __m256 bias1 = nv == 2 ? _mm256_loadu_ps(p + 8) : bias0;
	const float *b = p + 8 * nv;
	const float *a0 = a, *a1 = mr > 3 ? a + 3 * k : a; /* bases of rows 0 and 3 */
	/* row i of the tile is (i < 3 ? a0 : a1)[(i % 3) * k]; k >= 1, and the
	 * first step starts from the bias */
	{
		const __m256 b0 = _mm256_loadu_ps(b);
		const __m256 b1 = nv == 2 ? _mm256_loadu_ps(b + 8) : b0;
#pragma GCC unroll 6
		for (int i = 0; i < mr; i++) {
			const __m256 x = _mm256_broadcast_ss((i < 3 ? a0 : a1) + (i % 3) * k);
			acc[i][0] = _mm256_fmadd_ps(x, b0, bias0);
			acc[i][1] = nv == 2 ? _mm256_fmadd_ps(x, b1, bias1) : bias1;
		}
	}
	for (ptrdiff_t kk = 1; kk < k; kk++) {
		b += 8 * nv;
		a0++;
		a1++;
		const __m256 b0 = _mm256_loadu_ps(b);
		const __m256 b1 = nv == 2 ? _mm256_loadu_ps(b + 8) : b0;
#pragma GCC unroll 6
		for (int i = 0; i < mr; i++) {
			const __m256 x = _mm256_broadcast_ss((i < 3 ? a0 : a1) + (i % 3) * k);
			acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
			if (nv == 2)
				acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
		}
	}
	const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
#pragma GCC unroll 6
	for (int i = 0; i < mr; i++) {
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++) {
			__m256 x = acc[i][v];
			float *o = out + i * n + 8 * v;
			const int left = cols - 8 * v;
			/* max(0, x) then min(6, x) keep NaN and -0 as pn_relu6 does */
			if (relu6)
				x = _mm256_min_ps(six, _mm256_max_ps(zero, x));
			if (left >= 8) {
				if (res)
					x = _mm256_add_ps(x, _mm256_loadu_ps(res + i * n + 8 * v));
				_mm256_storeu_ps(o, x);
			} else if (left > 0) {
				const __m256i mask = lanes(left);
				if (res)
					x = _mm256_add_ps(
						x, _mm256_maskload_ps(res + i * n + 8 * v, mask));
				_mm256_maskstore_ps(o, mask, x);
			}
		}
	}
}

#define TILE(MRV, NV)                                                                              \
	static void tile_##MRV##x##NV(const float *a, ptrdiff_t k, const float *p, float *out,     \
				      ptrdiff_t n, const float *res, int cols, int relu6)          \
	{                                                                                          \
		tile(a, k, p, out, n, res, cols, relu6, MRV, NV);                                  \
	}
#define TILES(MRV) TILE(MRV, 1) TILE(MRV, 2)
TILES(1)
TILES(2)
TILES(3)
TILES(4)
TILES(5)
TILES(6)

static tile_fn *const tiles[2][MR + 1] = {
	{NULL, tile_1x1, tile_2x1, tile_3x1, tile_4x1, tile_5x1, tile_6x1},
	{NULL, tile_1x2, tile_2x2, tile_3x2, tile_4x2, tile_5x2, tile_6x2},
};

void pn_pw_avx2(const float *in, float *out, const float *packed, const float *residual, int m,
		int k, int n, int relu6)
{
	for (int r0 = 0; r0 < m; r0 += MR) {
		const int mr = m - r0 < MR ? m - r0 : MR;
		const float *a = in + (size_t)r0 * k;
		float *o = out + (size_t)r0 * n;
		const float *res = residual ? residual + (size_t)r0 * n : NULL;
		const float *p = packed;
		for (int j0 = 0; j0 < n; j0 += 16) {
			const int pw = panel_width(n, j0);
			const int cols = n - j0 < pw ? n - j0 : pw;
			tiles[pw / 8 - 1][mr](a, k, p, o + j0, n, res ? res + j0 : NULL, cols,
					      relu6);
			p += (size_t)pw * ((size_t)k + 1);
		}
	}
}
