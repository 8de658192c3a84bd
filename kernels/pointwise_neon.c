/* Pointwise (1x1) convolution as a packed, register-blocked GEMM with NEON:
 * out[m][n] = act(bias[n] + sum_k in[m][k] * w[n][k]) (+ residual[m][n]),
 * matching pn_pw_ref (pointwise_ref.c): each output sums bias, then k in
 * ascending order, so only the rounding of the multiply-adds differs
 * (fused on aarch64; unfused by-scalar VMLA on ARMv7, which is the
 * reference's own arithmetic up to NEON's flushing of subnormals).
 *
 * Packed layout: panels of PW_NR output channels, each holding the panel's
 * bias, then k rows of PW_NR weights; the last panel is zero-padded. For
 * each block of PW_MR input rows and PW_KC depths the rows are transposed
 * into a stack buffer so one vector load gives four rows' values. The tile
 * is 8x12 on aarch64 (24 of the 32 q registers accumulate) and 6x8 on
 * ARMv7 (12 of 16). Partial sums of a deep k pass through `out`. */
#include <string.h>

#include "neon.h"

#ifdef __aarch64__
#define PW_MR 8
#define PW_NR 12
#else
#define PW_MR 6
#define PW_NR 8
#endif
#define PW_NV (PW_NR / 4)
#define PW_KC 256

size_t pn_pw_packed_floats_neon(int k, int n)
{
	size_t panels = ((size_t)n + PW_NR - 1) / PW_NR;
	return panels * PW_NR * ((size_t)k + 1);
}

void pn_pw_pack_neon(const float *w, const float *bias, int k, int n, float *packed)
{
	for (int j0 = 0; j0 < n; j0 += PW_NR) {
		int nr = n - j0 < PW_NR ? n - j0 : PW_NR;
		float *p = packed + (size_t)(j0 / PW_NR) * PW_NR * ((size_t)k + 1);
		for (int j = 0; j < PW_NR; j++)
			p[j] = j < nr ? bias[j0 + j] : 0.0f;
		for (int i = 0; i < k; i++)
			for (int j = 0; j < PW_NR; j++)
				p[PW_NR + (size_t)i * PW_NR + j] =
					j < nr ? w[(size_t)(j0 + j) * k + i] : 0.0f;
	}
}

/* dst[i][r] = row r's value i, for PW_MR rows (the last valid row repeated
 * past mr) and kc values starting at `a`. */
static void pack_rows(const float *a, size_t lda, int mr, int kc, float *dst)
{
	const float *rows[PW_MR];
	for (int r = 0; r < PW_MR; r++)
		rows[r] = a + (size_t)(r < mr ? r : mr - 1) * lda;

	int i = 0;
	for (; i + 4 <= kc; i += 4) {
		float *d = dst + (size_t)i * PW_MR;
		int g = 0;
		for (; g + 4 <= PW_MR; g += 4) {
			float32x4x2_t t01 =
				vtrnq_f32(vld1q_f32(rows[g] + i), vld1q_f32(rows[g + 1] + i));
			float32x4x2_t t23 =
				vtrnq_f32(vld1q_f32(rows[g + 2] + i), vld1q_f32(rows[g + 3] + i));
			vst1q_f32(d + g,
				  vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0])));
			vst1q_f32(d + PW_MR + g,
				  vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1])));
			vst1q_f32(d + 2 * PW_MR + g, vcombine_f32(vget_high_f32(t01.val[0]),
								  vget_high_f32(t23.val[0])));
			vst1q_f32(d + 3 * PW_MR + g, vcombine_f32(vget_high_f32(t01.val[1]),
								  vget_high_f32(t23.val[1])));
		}
		if (g < PW_MR) { /* two rows left */
			float32x4x2_t z =
				vzipq_f32(vld1q_f32(rows[g] + i), vld1q_f32(rows[g + 1] + i));
			vst1_f32(d + g, vget_low_f32(z.val[0]));
			vst1_f32(d + PW_MR + g, vget_high_f32(z.val[0]));
			vst1_f32(d + 2 * PW_MR + g, vget_low_f32(z.val[1]));
			vst1_f32(d + 3 * PW_MR + g, vget_high_f32(z.val[1]));
		}
	}
	for (; i < kc; i++)
		for (int r = 0; r < PW_MR; r++)
			dst[(size_t)i * PW_MR + r] = rows[r][i];
}

/* One PW_MR x PW_NR tile of c (row stride ldc) over kc depths: starts from
 * `bias` (a panel's bias) or, when bias is NULL, from c itself; then
 * optionally ReLU6 and adds `res` (row stride ldr). */
static void pw_tile(const float *a, const float *b, int kc, float *c, size_t ldc, const float *bias,
		    int relu6, const float *res, size_t ldr)
{
	float32x4_t acc[PW_MR][PW_NV];

#pragma GCC unroll 8
	for (int r = 0; r < PW_MR; r++)
#pragma GCC unroll 4
		for (int v = 0; v < PW_NV; v++)
			acc[r][v] = bias ? vld1q_f32(bias + 4 * v) : vld1q_f32(c + r * ldc + 4 * v);

	for (int i = 0; i < kc; i++) {
		float32x4_t bv[PW_NV];
#pragma GCC unroll 4
		for (int v = 0; v < PW_NV; v++)
			bv[v] = vld1q_f32(b + 4 * v);
		b += PW_NR;
#ifdef __aarch64__
		float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define PW_ROW(r, av, l)                                                                           \
	do {                                                                                       \
		acc[r][0] = vfmaq_laneq_f32(acc[r][0], bv[0], av, l);                              \
		acc[r][1] = vfmaq_laneq_f32(acc[r][1], bv[1], av, l);                              \
		acc[r][2] = vfmaq_laneq_f32(acc[r][2], bv[2], av, l);                              \
	} while (0)
		PW_ROW(0, a0, 0);
		PW_ROW(1, a0, 1);
		PW_ROW(2, a0, 2);
		PW_ROW(3, a0, 3);
		PW_ROW(4, a1, 0);
		PW_ROW(5, a1, 1);
		PW_ROW(6, a1, 2);
		PW_ROW(7, a1, 3);
#else
		float32x4_t a03 = vld1q_f32(a);
		float32x2_t a01 = vget_low_f32(a03), a23 = vget_high_f32(a03),
			    a45 = vld1_f32(a + 4);
#define PW_ROW(r, av, l)                                                                           \
	do {                                                                                       \
		acc[r][0] = vmlaq_lane_f32(acc[r][0], bv[0], av, l);                               \
		acc[r][1] = vmlaq_lane_f32(acc[r][1], bv[1], av, l);                               \
	} while (0)
		PW_ROW(0, a01, 0);
		PW_ROW(1, a01, 1);
		PW_ROW(2, a23, 0);
		PW_ROW(3, a23, 1);
		PW_ROW(4, a45, 0);
		PW_ROW(5, a45, 1);
#endif
#undef PW_ROW
		a += PW_MR;
	}

#pragma GCC unroll 8
	for (int r = 0; r < PW_MR; r++)
#pragma GCC unroll 4
		for (int v = 0; v < PW_NV; v++) {
			float32x4_t x = acc[r][v];
			if (relu6)
				x = pn_neon_relu6(x);
			if (res)
				x = vaddq_f32(x, vld1q_f32(res + r * ldr + 4 * v));
			vst1q_f32(c + r * ldc + 4 * v, x);
		}
}

/* A tile cut by the edge of out (mr rows, nr columns), through a copy. */
static void pw_tile_part(const float *a, const float *b, int kc, float *c, size_t ldc,
			 const float *bias, int relu6, const float *res, size_t ldr, int mr, int nr)
{
	float ct[PW_MR * PW_NR], rt[PW_MR * PW_NR];

	memset(ct, 0, sizeof ct);
	memset(rt, 0, sizeof rt);
	for (int r = 0; r < mr; r++) {
		if (!bias)
			memcpy(ct + r * PW_NR, c + r * ldc, (size_t)nr * sizeof *c);
		if (res)
			memcpy(rt + r * PW_NR, res + r * ldr, (size_t)nr * sizeof *res);
	}
	pw_tile(a, b, kc, ct, PW_NR, bias, relu6, res ? rt : NULL, PW_NR);
	for (int r = 0; r < mr; r++)
		memcpy(c + r * ldc, ct + r * PW_NR, (size_t)nr * sizeof *c);
}

void pn_pw_neon(const float *in, float *out, const float *packed, const float *residual, int m,
		int k, int n, int relu6)
{
	float abuf[PW_KC * PW_MR] __attribute__((aligned(16)));
	const size_t pstride = (size_t)PW_NR * ((size_t)k + 1);

	for (int r0 = 0; r0 < m; r0 += PW_MR) {
		const int mr = m - r0 < PW_MR ? m - r0 : PW_MR;
		float *orows = out + (size_t)r0 * n;
		const float *rrows = residual ? residual + (size_t)r0 * n : NULL;
		for (int k0 = 0; k0 < k; k0 += PW_KC) {
			const int kc = k - k0 < PW_KC ? k - k0 : PW_KC;
			const int last = k0 + kc == k;
			pack_rows(in + (size_t)r0 * k + k0, (size_t)k, mr, kc, abuf);
			for (int j0 = 0; j0 < n; j0 += PW_NR) {
				const int nr = n - j0 < PW_NR ? n - j0 : PW_NR;
				const float *p = packed + (size_t)(j0 / PW_NR) * pstride;
				const float *b = p + PW_NR + (size_t)k0 * PW_NR;
				const float *bias = k0 == 0 ? p : NULL;
				const float *res = last && rrows ? rrows + j0 : NULL;
				if (mr == PW_MR && nr == PW_NR)
					pw_tile(abuf, b, kc, orows + j0, (size_t)n, bias,
						relu6 && last, res, (size_t)n);
				else
					pw_tile_part(abuf, b, kc, orows + j0, (size_t)n, bias,
						     relu6 && last, res, (size_t)n, mr, nr);
			}
		}
	}
}
