/* The scalar int8 kernels: plain C, the reference every int8 variant must
 * equal integer for integer (qops.h, quant.h). Accumulators are int32
 * tiles of QTILE output channels, so the inner loops are over contiguous
 * channels; sums are exact, so their order does not matter. */
#include <string.h>

#include "qops.h"
#include "quant.h"

#define QTILE 64

static int always(void)
{
	return 1;
}

/* acc[j] += v * w[j] and acc[j] += (x[j] - zp) * w[j]: in chunks of a
 * constant 16, which compilers vectorise at -O2, then the rest. */
#define QCHUNK 16
static inline void mac(int32_t *acc, int32_t v, const int8_t *w, int nc)
{
	int j0 = 0;
	for (; j0 + QCHUNK <= nc; j0 += QCHUNK)
		for (int j = 0; j < QCHUNK; j++)
			acc[j0 + j] += v * w[j0 + j];
	for (; j0 < nc; j0++)
		acc[j0] += v * w[j0];
}

static inline void mac_dw(int32_t *acc, const int8_t *x, int32_t zp, const int8_t *w, int nc)
{
	int j0 = 0;
	for (; j0 + QCHUNK <= nc; j0 += QCHUNK)
		for (int j = 0; j < QCHUNK; j++)
			acc[j0 + j] += (x[j0 + j] - zp) * w[j0 + j];
	for (; j0 < nc; j0++)
		acc[j0] += (x[j0] - zp) * w[j0];
}

static void store(const int32_t *acc, int8_t *out, int c0, int nc, const struct pn_qout *q)
{
	for (int j = 0; j < nc; j++) {
		int32_t v = q->zp + pn_q_requant(acc[j], q->mult[c0 + j], q->exp[c0 + j]);
		out[c0 + j] = (int8_t)pn_q_clamp(v, q->lo, q->hi);
	}
}

void pn_qconv3x3_ref(const struct pn_qconv_args *a)
{
	int32_t acc[QTILE];
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * a->cout;
		for (int ox = 0; ox < a->out_w; ox++) {
			for (int c0 = 0; c0 < a->cout; c0 += QTILE) {
				int nc = a->cout - c0 < QTILE ? a->cout - c0 : QTILE;
				memcpy(acc, a->q.bias + c0, (size_t)nc * sizeof *acc);
				for (int ky = 0; ky < 3; ky++) {
					int iy = oy * a->stride - 1 + ky;
					if (iy < 0 || iy >= a->in_h)
						continue;
					for (int kx = 0; kx < 3; kx++) {
						int ix = ox * a->stride - 1 + kx;
						if (ix < 0 || ix >= a->in_w)
							continue;
						const int8_t *px = a->in + ((size_t)iy * a->in_w +
									    ix) * a->cin;
						const int8_t *w =
							a->weights +
							(size_t)(ky * 3 + kx) * a->cin * a->cout +
							c0;
						for (int ci = 0; ci < a->cin; ci++) {
							int32_t v = px[ci] - a->in_zp;
							mac(acc, v, w + (size_t)ci * a->cout, nc);
						}
					}
				}
				store(acc, orow + (size_t)ox * a->cout, c0, nc, &a->q);
			}
		}
	}
}

void pn_qdw3x3_ref(const struct pn_qdw_args *a)
{
	int32_t acc[QTILE];
	const int c = a->c;
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * c;
		for (int ox = 0; ox < a->out_w; ox++) {
			for (int c0 = 0; c0 < c; c0 += QTILE) {
				int nc = c - c0 < QTILE ? c - c0 : QTILE;
				memcpy(acc, a->q.bias + c0, (size_t)nc * sizeof *acc);
				for (int ky = 0; ky < 3; ky++) {
					int iy = oy * a->stride - 1 + ky;
					if (iy < 0 || iy >= a->in_h)
						continue;
					const int8_t *irow =
						a->in + (size_t)(iy - a->in_y0) * a->in_w * c + c0;
					for (int kx = 0; kx < 3; kx++) {
						int ix = ox * a->stride - 1 + kx;
						if (ix < 0 || ix >= a->in_w)
							continue;
						const int8_t *px = irow + (size_t)ix * c;
						const int8_t *w =
							a->weights + (size_t)(ky * 3 + kx) * c + c0;
						mac_dw(acc, px, a->in_zp, w, nc);
					}
				}
				store(acc, orow + (size_t)ox * c, c0, nc, &a->q);
			}
		}
	}
}

size_t pn_qpw_packed_bytes_ref(int k, int n)
{
	return (size_t)k * n;
}

void pn_qpw_pack_ref(const int8_t *w, int k, int n, int8_t *packed)
{
	for (int j = 0; j < n; j++)
		for (int i = 0; i < k; i++)
			packed[(size_t)i * n + j] = w[(size_t)j * k + i];
}

void pn_qpw_ref(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		int32_t in_zp, const struct pn_qout *q)
{
	int32_t acc[QTILE];
	for (int r = 0; r < m; r++) {
		const int8_t *a = in + (size_t)r * k;
		for (int c0 = 0; c0 < n; c0 += QTILE) {
			int nc = n - c0 < QTILE ? n - c0 : QTILE;
			memcpy(acc, q->bias + c0, (size_t)nc * sizeof *acc);
			for (int i = 0; i < k; i++) {
				int32_t v = a[i] - in_zp;
				mac(acc, v, packed + (size_t)i * n + c0, nc);
			}
			store(acc, out + (size_t)r * n, c0, nc, q);
		}
	}
}

void pn_qadd_ref(const struct pn_qadd_args *a)
{
	for (size_t i = 0; i < a->n; i++) {
		int32_t x = (a->a[i] - a->a_zp) * (1 << PN_QADD_SHIFT);
		int32_t y = (a->b[i] - a->b_zp) * (1 << PN_QADD_SHIFT);
		int32_t s =
			pn_q_requant(x, a->a_mult, a->a_exp) + pn_q_requant(y, a->b_mult, a->b_exp);
		int32_t v = a->out_zp + pn_q_round_shift(s, PN_QADD_SHIFT);
		a->out[i] = (int8_t)pn_q_clamp(v, -128, 127);
	}
}

void pn_qavgpool_ref(const int8_t *in, int8_t *out, int hw, int c, int32_t in_zp, int32_t mult,
		     int exp, int32_t out_zp)
{
	/* Pixel by pixel over a block of channels, so that memory is read in
	 * order (the compiler vectorises it); integer sums, so any order is
	 * the same. */
	enum { BLOCK = 256 };
	int32_t sum[BLOCK];
	for (int c0 = 0; c0 < c; c0 += BLOCK) {
		const int n = c - c0 < BLOCK ? c - c0 : BLOCK;
		for (int ch = 0; ch < n; ch++)
			sum[ch] = -hw * in_zp;
		for (int p = 0; p < hw; p++) {
			const int8_t *px = in + (size_t)p * c + c0;
			for (int ch = 0; ch < n; ch++)
				sum[ch] += px[ch];
		}
		for (int ch = 0; ch < n; ch++)
			out[c0 + ch] = (int8_t)pn_q_clamp(out_zp + pn_q_requant(sum[ch], mult, exp),
							  -128, 127);
	}
}

void pn_qlinear_ref(const int8_t *in, float *out, const int8_t *w, const int32_t *bias,
		    const float *deq, int k, int classes, int32_t in_zp)
{
	for (int j = 0; j < classes; j++) {
		int32_t acc = bias[j];
		const int8_t *wr = w + (size_t)j * k;
		for (int i = 0; i < k; i++)
			acc += (in[i] - in_zp) * wr[i];
		out[j] = (float)acc * deq[j];
	}
}

void pn_quantize_ref(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp)
{
	for (size_t i = 0; i < n; i++)
		out[i] = pn_q_from_float(in[i], inv_scale, zp);
}

void pn_dequantize_ref(const int8_t *in, float *out, size_t n, float scale, int32_t zp)
{
	for (size_t i = 0; i < n; i++)
		out[i] = pn_q_to_float(in[i], scale, zp);
}

const struct pn_qops pn_qops_scalar = {
	.name = "scalar",
	.isa = "scalar",
	.available = always,
	.conv3x3 = pn_qconv3x3_ref,
	.dw3x3 = pn_qdw3x3_ref,
	.pw_packed_bytes = pn_qpw_packed_bytes_ref,
	.pw_pack = pn_qpw_pack_ref,
	.pw = pn_qpw_ref,
	.add = pn_qadd_ref,
	.avgpool = pn_qavgpool_ref,
	.linear = pn_qlinear_ref,
	.quantize = pn_quantize_ref,
	.dequantize = pn_dequantize_ref,
};
