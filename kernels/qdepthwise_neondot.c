/* The int8 depthwise 3x3 with the ARMv8.2 dot product (SDOT; Cortex-A76,
 * Raspberry Pi 5), equal to pn_qdw3x3_ref. Compiled with +dotprod like
 * qpointwise_neondot.c: it runs after pn_qops_neon_dot's available().
 *
 * 8 channels at a time (the weights, columns and requantisation constants
 * then fit the 32 registers). A lane of SDOT adds four int8 products; here
 * they are one channel's taps in rows ky = 0, 1, 2 of one input column and
 * a fourth byte against weight 0, so 4 channels of an output pixel take
 * one SDOT per column kx: 6 for 8 outputs, where qdepthwise_neon.c's
 * widening products take 9 multiplies and 10 widening adds. ZIP1 by bytes,
 * then ZIP1/ZIP2 by 16 bits, turn the three rows' 8 bytes into the quads
 * of channels 0-3 and 4-7, in order; at stride 1 a column's quads serve
 * the three outputs that read it. Raw q enter SDOT (signed by
 * signed) with -in_zp times the weight sum in the bias, and padding reads
 * in_zp, as in qdepthwise_neon.c; the requantisation and narrowing are
 * qneon.h's. A tail of fewer than 8 channels goes through
 * qdepthwise_neon.c. */
#include <string.h>

#include "qdw_rows.h"
#include "qneon.h"

struct dw8 {
	int8x16_t w[3][2]; /* [kx][quad] */
	int32x4_t bias[2]; /* bias - in_zp * the nine weights' sum */
	struct pn_qrq8 r;
};

/* A column's quads: channels 0-3 and 4-7. */
struct quads {
	int8x16_t v[2];
};

/* The quads of three rows' 8 bytes. */
PN_QNEON_INLINE struct quads quads_of(int8x8_t r0, int8x8_t r1, int8x8_t r2)
{
	const int8x8_t z = vdup_n_s8(0);
	const int16x8_t a = vreinterpretq_s16_s8(vzip1q_s8(vcombine_s8(r0, z), vcombine_s8(r1, z))),
			b = vreinterpretq_s16_s8(vzip1q_s8(vcombine_s8(r2, z), vcombine_s8(z, z)));
	struct quads q = {
		{vreinterpretq_s8_s16(vzip1q_s16(a, b)), vreinterpretq_s8_s16(vzip2q_s16(a, b))}};
	return q;
}

PN_QNEON_INLINE struct quads column(const int8_t *p0, const int8_t *p1, const int8_t *p2)
{
	return quads_of(vld1_s8(p0), vld1_s8(p1), vld1_s8(p2));
}

static void dw8_init(struct dw8 *b, const struct pn_qdw_args *a, int c0)
{
	const size_t c = (size_t)a->c;
	const int8x16_t ones = vdupq_n_s8(1);
	int32x4_t sum[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
	for (int kx = 0; kx < 3; kx++) {
		const int8_t *w = a->weights + kx * c + c0;
		const struct quads wq = column(w, w + 3 * c, w + 6 * c);
		for (int j = 0; j < 2; j++) {
			b->w[kx][j] = wq.v[j];
			sum[j] = vdotq_s32(sum[j], wq.v[j], ones);
		}
	}
	const int32x4_t zin = vdupq_n_s32(a->in_zp);
	for (int j = 0; j < 2; j++)
		b->bias[j] = vmlsq_s32(vld1q_s32(a->q.bias + c0 + 4 * j), zin, sum[j]);
	pn_qrq8_init(&b->r, &a->q, c0, 8);
}

PN_QNEON_INLINE void pixel(const struct dw8 *b, struct quads c0, struct quads c1, struct quads c2,
			   int8_t *out, int mode)
{
	int32x4_t acc[2];
#pragma GCC unroll 2
	for (int j = 0; j < 2; j++) {
		acc[j] = vdotq_s32(b->bias[j], c0.v[j], b->w[0][j]);
		acc[j] = vdotq_s32(acc[j], c1.v[j], b->w[1][j]);
		acc[j] = vdotq_s32(acc[j], c2.v[j], b->w[2][j]);
	}
	vst1_s8(out, pn_qrq8_out(&b->r, acc[0], acc[1], mode));
}

/* Output rows of one block; `stride` and `mode` are constants where
 * called. The three row pointers move a column at a time (a row outside
 * the image is the pad row, step 0); columns past the image are the pad
 * quads. At stride 1 three outputs a turn, so that the columns change
 * roles instead of registers. */
PN_QNEON_INLINE void dw8_rows(const struct pn_qdw_args *a, const struct dw8 *b, int c0,
			      const int8_t *pad, int stride, int mode)
{
	const int c = a->c, in_w = a->in_w, out_w = a->out_w;
	const int8x8_t zp = vld1_s8(pad);
	const struct quads padq = quads_of(zp, zp, zp);
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *o = a->out + (size_t)(oy - a->out_y0) * out_w * c + c0;
		const int8_t *rows[3];
		size_t step[3];
		pn_qdw_rows(a, oy, c0, pad, rows, step);
		const int8_t *p0 = rows[0], *p1 = rows[1], *p2 = rows[2];
		const size_t s0 = step[0], s1 = step[1], s2 = step[2];
		int ox = 0;
		if (stride == 1) {
			/* va, vb: columns ox - 1 and ox; p: column ox + 1 */
			struct quads va = padq, vb = column(p0, p1, p2), vc;
			p0 += s0, p1 += s1, p2 += s2;
			for (; ox + 4 <= in_w; ox += 3, o += 3 * (size_t)c) {
				vc = column(p0, p1, p2);
				pixel(b, va, vb, vc, o, mode);
				va = column(p0 + s0, p1 + s1, p2 + s2);
				pixel(b, vb, vc, va, o + c, mode);
				vb = column(p0 + 2 * s0, p1 + 2 * s1, p2 + 2 * s2);
				pixel(b, vc, va, vb, o + 2 * (size_t)c, mode);
				p0 += 3 * s0, p1 += 3 * s1, p2 += 3 * s2;
			}
			for (; ox < out_w; ox++, o += c) {
				vc = ox + 1 < in_w ? column(p0, p1, p2) : padq;
				pixel(b, va, vb, vc, o, mode);
				va = vb;
				vb = vc;
				p0 += s0, p1 += s1, p2 += s2;
			}
		} else {
			/* v0: column 2 ox - 1; p: column 2 ox */
			struct quads v0 = padq;
			for (; 2 * ox + 2 <= in_w; ox++, o += c) {
				const struct quads v1 = column(p0, p1, p2),
						   v2 = column(p0 + s0, p1 + s1, p2 + s2);
				pixel(b, v0, v1, v2, o, mode);
				v0 = v2;
				p0 += 2 * s0, p1 += 2 * s1, p2 += 2 * s2;
			}
			if (ox < out_w) /* the last output of an odd width */
				pixel(b, v0, column(p0, p1, p2), padq, o, mode);
		}
	}
}

void pn_qdw3x3_neondot(const struct pn_qdw_args *a)
{
	int8_t pad[8];
	memset(pad, (int)(int8_t)a->in_zp, sizeof pad);
	int c0 = 0;
	for (; c0 + 8 <= a->c; c0 += 8) {
		struct dw8 b;
		dw8_init(&b, a, c0);
		/* stride and the requantisation mode as constants */
		switch ((a->stride == 1) * 3 + b.r.mode) {
		case 3 + PN_QNEON_RELU:
			dw8_rows(a, &b, c0, pad, 1, PN_QNEON_RELU);
			break;
		case 3 + PN_QNEON_SIGNED:
			dw8_rows(a, &b, c0, pad, 1, PN_QNEON_SIGNED);
			break;
		case 3 + PN_QNEON_SLOW:
			dw8_rows(a, &b, c0, pad, 1, PN_QNEON_SLOW);
			break;
		case PN_QNEON_RELU:
			dw8_rows(a, &b, c0, pad, 2, PN_QNEON_RELU);
			break;
		case PN_QNEON_SIGNED:
			dw8_rows(a, &b, c0, pad, 2, PN_QNEON_SIGNED);
			break;
		default:
			dw8_rows(a, &b, c0, pad, 2, PN_QNEON_SLOW);
			break;
		}
	}
	if (c0 < a->c)
		pn_qdw3x3_neon_from(a, c0);
}
