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

void pn_pw_ref(const float *in, float *out, const float *packed, const float *residual, int m,
	       int k, int n, int relu6)
{
	const float *wt = packed + n;
	for (int r = 0; r < m; r++) {
		const float *a = in + (size_t)r * k;
		float *o = out + (size_t)r * n;
		memcpy(o, packed, (size_t)n * sizeof *o);
		for (int i = 0; i < k; i++) {
			float v = a[i];
			const float *wr = wt + (size_t)i * n;
			for (int j = 0; j < n; j++)
				o[j] += v * wr[j];
		}
		if (relu6)
			for (int j = 0; j < n; j++)
				o[j] = pn_relu6(o[j]);
		if (residual) {
			const float *res = residual + (size_t)r * n;
			for (int j = 0; j < n; j++)
				o[j] += res[j];
		}
	}
}
