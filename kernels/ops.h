/* The kernel table: one `struct pn_ops` per instruction set.
 *
 * Every table computes the same functions; `pn_ops_scalar` is the plain C
 * reference that the others are tested against. Kernels do no checks and
 * no allocation: shapes are validated when a plan is built.
 *
 * Layout conventions (all float32):
 *   activations  NHWC, channels contiguous.
 *   conv3x3      weights [3][3][cin][cout] (ky, kx, input channel, output
 *                channel), bias [cout]; padding 1.
 *   depthwise    weights [3][3][c], bias [c]; padding 1; ReLU6 always.
 *   pointwise    weights as given to pw_pack: [n][k] (PyTorch's
 *                [out][in]), bias [n]; packed into a variant-specific
 *                layout of pw_packed_floats(k, n) floats.
 *   linear       weights [classes][k], bias [classes].
 */
#ifndef PN_OPS_H
#define PN_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Depthwise 3x3 over output rows [out_y0, out_y1) of one image.
 * `in` points at input row `in_y0`: row y of the image is at
 * in + (y - in_y0) * in_w * c. Rows outside [0, in_h) and columns outside
 * [0, in_w) are zero padding and are never read. `out` points at output
 * row `out_y0`. out_w = (in_w - 1) / stride + 1. */
struct pn_dw_args {
	const float *in;
	int in_y0, in_h, in_w;
	float *out;
	int out_y0, out_y1, out_w;
	int c, stride;
	const float *weights, *bias;
};

/* Full 3x3 convolution (the stem) over output rows [out_y0, out_y1) of one
 * image, whole image in memory: `in` is row 0, `out` is row out_y0. */
struct pn_conv_args {
	const float *in;
	int in_h, in_w, cin;
	float *out;
	int out_y0, out_y1, out_w, cout;
	int stride, relu6;
	const float *weights, *bias;
};

struct pn_ops {
	const char *name;
	/* Nonzero when this CPU can run the table. */
	int (*available)(void);

	void (*conv3x3)(const struct pn_conv_args *a);
	void (*dw3x3)(const struct pn_dw_args *a);

	/* out[m][n] = act(in[m][k] . w[n][k] + bias[n]) (+ residual[m][n]).
	 * With `residual` non-NULL the sum is taken after the activation
	 * (MobileNetV2 adds it to the linear projection, which has none).
	 * Rows of `in`, `out` and `residual` are packed (stride k and n). */
	size_t (*pw_packed_floats)(int k, int n);
	void (*pw_pack)(const float *w, const float *bias, int k, int n, float *packed);
	void (*pw)(const float *in, float *out, const float *packed, const float *residual, int m,
		   int k, int n, int relu6);

	/* out[c] = mean over hw rows of in[hw][c], for one image. */
	void (*avgpool)(const float *in, float *out, int hw, int c);
	/* out[j] = in . w[j] + bias[j] for j < classes, one image. */
	void (*linear)(const float *in, float *out, const float *w, const float *bias, int k,
		       int classes);

	/* out[i] = wa * a[i] + wb * b[i]: two products, then their sum, never
	 * fused, so every variant equals the reference bit for bit (the
	 * vertical pass of the bilinear resize in preprocess.c). */
	void (*lerp)(const float *a, const float *b, float wa, float wb, float *out, size_t n);

	/* IEEE binary16 conversion, round to nearest even; NaN stays NaN. */
	void (*f32_to_f16)(const float *in, uint16_t *out, size_t n);
	void (*f16_to_f32)(const uint16_t *in, float *out, size_t n);
};

extern const struct pn_ops pn_ops_scalar;
#ifdef PN_HAVE_X86
extern const struct pn_ops pn_ops_avx2;
extern const struct pn_ops pn_ops_avx512;
#endif
#ifdef PN_HAVE_NEON
extern const struct pn_ops pn_ops_neon;
#endif

/* All tables built into this binary, best first, NULL-terminated; the
 * tests iterate it so that a listed variant is a tested variant. */
extern const struct pn_ops *const pn_ops_all[];

/* The table to use: PIPENET_ISA names one (an error if unknown or not
 * available on this CPU), otherwise the best available. Returns NULL and
 * fills err when PIPENET_ISA cannot be honoured. */
const struct pn_ops *pn_ops_select(char *err, size_t errlen);

/* The table called `name`, or NULL. */
const struct pn_ops *pn_ops_find(const char *name);

#endif
