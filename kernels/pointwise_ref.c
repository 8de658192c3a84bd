/* Pointwise (1x1) convolution as a GEMM: out[m][n] = act(bias[n] +
 * sum_k in[m][k] * w[n][k]) (+ residual[m][n]), the sum in ascending k.
 * Packed layout: bias[n], then w transposed to [k][n]. */
#include <string.h>

#include "ref.h"

size_t pn_pw_packed_floats_ref(int k, int n)
{
	return (size_t)n + (size_t)k * n;
}

void pn_pw_pack_ref(const float *w, const float *bias, int k, int n, float *packed)
{
	memcpy(packed, bias, (size_t)n * sizeof *packed);
	for (int j = 0; j < n; j++)
		for (int i = 0; i < k; i++)
			packed[n + (size_t)i * n + j] = w[(size_t)j * k + i];
}

/* Two rows at a time, in pieces of columns summed in registers through
 * the whole k loop: each piece of a weight row is loaded once for both
 * rows, and no output is stored and loaded back per k. What no whole
 * piece covers (and a last odd row) goes one row at a time. Each output
 * still sums bias, then k ascending: the same operations, in another
 * loop order. */
#if defined(__GNUC__)
/* Eight floats added and multiplied lane by lane (GCC's and clang's vector
 * extension: the same IEEE operation per element, on any target), named
 * so that they stay in registers; moved by macros, since a vector as a
 * function's value is an ABI matter. */
typedef float pw_vec __attribute__((vector_size(8 * sizeof(float))));
#define PW_LOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define PW_STORE(p, v) memcpy((p), &(v), sizeof(v))

/* Returns the first column left. */
static int pw_pair(const float *a0, const float *a1, float *o0, float *o1, const float *packed,
		   int k, int n)
{
	const float *wt = packed + n;
	int j0 = 0;
	for (; j0 + 32 <= n; j0 += 32) {
		pw_vec x0, x1, x2, x3, y0, y1, y2, y3, w0, w1, w2, w3;
		PW_LOAD(x0, packed + j0);
		PW_LOAD(x1, packed + j0 + 8);
		PW_LOAD(x2, packed + j0 + 16);
		PW_LOAD(x3, packed + j0 + 24);
		y0 = x0, y1 = x1, y2 = x2, y3 = x3;
		for (int i = 0; i < k; i++) {
			const float *wr = wt + (size_t)i * n + j0;
			const float u = a0[i], v = a1[i];
			PW_LOAD(w0, wr);
			PW_LOAD(w1, wr + 8);
			PW_LOAD(w2, wr + 16);
			PW_LOAD(w3, wr + 24);
			x0 += u * w0;
			x1 += u * w1;
			x2 += u * w2;
			x3 += u * w3;
			y0 += v * w0;
			y1 += v * w1;
			y2 += v * w2;
			y3 += v * w3;
		}
		PW_STORE(o0 + j0, x0);
		PW_STORE(o0 + j0 + 8, x1);
		PW_STORE(o0 + j0 + 16, x2);
		PW_STORE(o0 + j0 + 24, x3);
		PW_STORE(o1 + j0, y0);
		PW_STORE(o1 + j0 + 8, y1);
		PW_STORE(o1 + j0 + 16, y2);
		PW_STORE(o1 + j0 + 24, y3);
	}
	for (; j0 + 8 <= n; j0 += 8) {
		pw_vec x, y, w;
		PW_LOAD(x, packed + j0);
		y = x;
		for (int i = 0; i < k; i++) {
			PW_LOAD(w, wt + (size_t)i * n + j0);
			x += a0[i] * w;
			y += a1[i] * w;
		}
		PW_STORE(o0 + j0, x);
		PW_STORE(o1 + j0, y);
	}
	return j0;
}
#else
/* Without the vector extension every row goes by pw_row. */
static int pw_pair(const float *a0, const float *a1, float *o0, float *o1, const float *packed,
		   int k, int n)
{
	return 0;
}
#endif

/* Row a into o, columns j0..n-1. */
static void pw_row(const float *a, float *o, const float *packed, int k, int n, int j0)
{
	const float *wt = packed + n;
	memcpy(o + j0, packed + j0, (size_t)(n - j0) * sizeof *o);
	for (int i = 0; i < k; i++) {
		const float v = a[i];
		const float *wr = wt + (size_t)i * n;
		for (int j = j0; j < n; j++)
			o[j] += v * wr[j];
	}
}

void pn_pw_ref(const float *in, float *out, const float *packed, const float *residual, int m,
	       int k, int n, int relu6)
{
	for (int r = 0; r < m; r += 2) {
		const float *a = in + (size_t)r * k;
		float *o = out + (size_t)r * n;
		const int pair = r + 1 < m;
		const int done = pair ? pw_pair(a, a + k, o, o + n, packed, k, n) : 0;
		for (int t = 0; t <= pair; t++)
			if (done < n)
				pw_row(a + (size_t)t * k, o + (size_t)t * n, packed, k, n, done);
		for (int t = 0; t <= pair; t++) {
			float *ot = o + (size_t)t * n;
			if (relu6)
				for (int j = 0; j < n; j++)
					ot[j] = pn_relu6(ot[j]);
			if (residual) {
				const float *res = residual + (size_t)(r + t) * n;
				for (int j = 0; j < n; j++)
					ot[j] += res[j];
			}
		}
	}
}
