/* Dense 3x3 convolution, padding 1, NHWC, optional ReLU6 (the MobileNetV2
 * stem), vectorised over output channels with NEON; matches pn_conv3x3_ref
 * (conv_ref.c): each output sums bias, then ky, kx, cin ascending over the
 * taps inside the image, with fused multiply-adds. Output channels go 16
 * at a time, then 4, then one by one for the last cout % 4. */
#include "neon.h"
#include "ref.h"

/* Output channels [co, co + 4 * nv) of the pixel (oy, ox). */
static inline __attribute__((always_inline)) void conv_px_vec(const struct pn_conv_args *a, int oy,
							      int ox, float *o, int co, int nv)
{
	const int cin = a->cin, cout = a->cout;
	float32x4_t acc[4];

#pragma GCC unroll 4
	for (int v = 0; v < nv; v++)
		acc[v] = vld1q_f32(a->bias + co + 4 * v);
	for (int ky = 0; ky < 3; ky++) {
		const int iy = oy * a->stride - 1 + ky;
		if (iy < 0 || iy >= a->in_h)
			continue;
		for (int kx = 0; kx < 3; kx++) {
			const int ix = ox * a->stride - 1 + kx;
			if (ix < 0 || ix >= a->in_w)
				continue;
			const float *px = a->in + ((size_t)iy * a->in_w + ix) * cin;
			const float *w = a->weights + (size_t)(ky * 3 + kx) * cin * cout + co;
			for (int ci = 0; ci < cin; ci++, w += cout) {
				const float32x4_t x = vdupq_n_f32(px[ci]);
#pragma GCC unroll 4
				for (int v = 0; v < nv; v++)
					acc[v] = vfmaq_f32(acc[v], x, vld1q_f32(w + 4 * v));
			}
		}
	}
#pragma GCC unroll 4
	for (int v = 0; v < nv; v++)
		vst1q_f32(o + co + 4 * v, a->relu6 ? pn_neon_relu6(acc[v]) : acc[v]);
}

/* Output channel co of the pixel (oy, ox). */
static void conv_px_scalar(const struct pn_conv_args *a, int oy, int ox, float *o, int co)
{
	const int cin = a->cin, cout = a->cout;
	float acc = a->bias[co];

	for (int ky = 0; ky < 3; ky++) {
		const int iy = oy * a->stride - 1 + ky;
		if (iy < 0 || iy >= a->in_h)
			continue;
		for (int kx = 0; kx < 3; kx++) {
			const int ix = ox * a->stride - 1 + kx;
			if (ix < 0 || ix >= a->in_w)
				continue;
			const float *px = a->in + ((size_t)iy * a->in_w + ix) * cin;
			const float *w = a->weights + (size_t)(ky * 3 + kx) * cin * cout + co;
			for (int ci = 0; ci < cin; ci++)
				acc += px[ci] * w[(size_t)ci * cout];
		}
	}
	if (a->relu6)
		acc = pn_relu6(acc);
	o[co] = acc;
}

void pn_conv3x3_neon(const struct pn_conv_args *a)
{
	const int cout = a->cout;

	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		float *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * cout;
		for (int ox = 0; ox < a->out_w; ox++) {
			float *o = orow + (size_t)ox * cout;
			int co = 0;
			for (; co + 16 <= cout; co += 16)
				conv_px_vec(a, oy, ox, o, co, 4);
			for (; co + 4 <= cout; co += 4)
				conv_px_vec(a, oy, ox, o, co, 1);
			for (; co < cout; co++)
				conv_px_scalar(a, oy, ox, o, co);
		}
	}
}
