/* Depthwise 3x3 convolution, padding 1, stride 1 or 2, bias and ReLU6
 * (PyTorch Conv2d(c, c, 3, stride, 1, groups=c) + folded BN + ReLU6).
 * Each output sums bias, then ky, kx in ascending order. */
#include "ref.h"

void pn_dw3x3_ref(const struct pn_dw_args *a)
{
	const int c = a->c;
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		float *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * c;
		for (int ox = 0; ox < a->out_w; ox++) {
			float *acc = orow + (size_t)ox * c;
			for (int ch = 0; ch < c; ch++)
				acc[ch] = a->bias[ch];
			for (int ky = 0; ky < 3; ky++) {
				int iy = oy * a->stride - 1 + ky;
				if (iy < 0 || iy >= a->in_h)
					continue;
				const float *irow = a->in + (size_t)(iy - a->in_y0) * a->in_w * c;
				for (int kx = 0; kx < 3; kx++) {
					int ix = ox * a->stride - 1 + kx;
					if (ix < 0 || ix >= a->in_w)
						continue;
					const float *px = irow + (size_t)ix * c;
					const float *w = a->weights + (size_t)(ky * 3 + kx) * c;
					for (int ch = 0; ch < c; ch++)
						acc[ch] += px[ch] * w[ch];
				}
			}
			for (int ch = 0; ch < c; ch++)
				acc[ch] = pn_relu6(acc[ch]);
		}
	}
}
