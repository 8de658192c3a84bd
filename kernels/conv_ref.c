/* Dense 3x3 convolution, padding 1, NHWC, optional ReLU6: the stem of
 * MobileNetV2 (PyTorch Conv2d(3, 32, 3, stride, 1) with BN folded). For
 * each output the sum runs bias, then ky, kx, cin in ascending order. */
#include "ref.h"

void pn_conv3x3_ref(const struct pn_conv_args *a)
{
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		float *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * a->cout;
		for (int ox = 0; ox < a->out_w; ox++) {
			float *acc = orow + (size_t)ox * a->cout;
			for (int co = 0; co < a->cout; co++)
				acc[co] = a->bias[co];
			for (int ky = 0; ky < 3; ky++) {
				int iy = oy * a->stride - 1 + ky;
				if (iy < 0 || iy >= a->in_h)
					continue;
				for (int kx = 0; kx < 3; kx++) {
					int ix = ox * a->stride - 1 + kx;
					if (ix < 0 || ix >= a->in_w)
						continue;
					const float *px =
						a->in + ((size_t)iy * a->in_w + ix) * a->cin;
					const float *w = a->weights +
							 (size_t)(ky * 3 + kx) * a->cin * a->cout;
					for (int ci = 0; ci < a->cin; ci++) {
						float v = px[ci];
						const float *wc = w + (size_t)ci * a->cout;
						for (int co = 0; co < a->cout; co++)
							acc[co] += v * wc[co];
					}
				}
			}
			if (a->relu6)
				for (int co = 0; co < a->cout; co++)
					acc[co] = pn_relu6(acc[co]);
		}
	}
}
