/* The int8 depthwise 3x3, stem 3x3 and residual add with NEON, equal to
 * pn_qdw3x3_ref, pn_qconv3x3_ref and pn_qadd_ref: q - zp (|.| <= 255) and
 * the weights in int16, products widened into int32 by SMLAL, eight
 * channels at a time; a channel tail goes through zero-padded buffers.
 * The stem goes through the pointwise kernel when its shape allows. */
#include <string.h>

#include "qim2col.h"
#include "qneon.h"

static inline int8x8_t load8_s8(const int8_t *p, int left)
{
	int8_t b[8] = {0};
	if (left >= 8)
		return vld1_s8(p);
	memcpy(b, p, (size_t)left);
	return vld1_s8(b);
}

static inline int16x8_t load8(const int8_t *p, int left)
{
	return vmovl_s8(load8_s8(p, left));
}

static inline void load8_i32(const int32_t *p, int left, int32x4_t *lo, int32x4_t *hi)
{
	int32_t b[8] = {0};
	if (left >= 8) {
		*lo = vld1q_s32(p);
		*hi = vld1q_s32(p + 4);
		return;
	}
	memcpy(b, p, (size_t)left * sizeof *b);
	*lo = vld1q_s32(b);
	*hi = vld1q_s32(b + 4);
}

static inline void store8(int8_t *p, int8x8_t v, int left)
{
	int8_t b[8];
	if (left >= 8) {
		vst1_s8(p, v);
		return;
	}
	vst1_s8(b, v);
	memcpy(p, b, (size_t)left);
}

/* One block of 8 channels over all output pixels; `mode` a constant. */
PN_QNEON_INLINE void dw_block(const struct pn_qdw_args *a, int c0, int mode)
{
	const int c = a->c, s = a->stride, left = c - c0;
	const int8x8_t zin = vdup_n_s8((int8_t)a->in_zp);
	int16x8_t w[9];
	int32x4_t b0, b1;
	struct pn_qrq8 r;
	for (int t = 0; t < 9; t++)
		w[t] = load8(a->weights + (size_t)t * c + c0, left);
	load8_i32(a->q.bias + c0, left, &b0, &b1);
	pn_qrq8_init(&r, &a->q, c0, left);
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * c + c0;
		for (int ox = 0; ox < a->out_w; ox++) {
			int32x4_t a0 = b0, a1 = b1;
			for (int ky = 0; ky < 3; ky++) {
				int iy = oy * s - 1 + ky;
				if (iy < 0 || iy >= a->in_h)
					continue;
				const int8_t *irow =
					a->in + (size_t)(iy - a->in_y0) * a->in_w * c + c0;
				for (int kx = 0; kx < 3; kx++) {
					int ix = ox * s - 1 + kx;
					if (ix < 0 || ix >= a->in_w)
						continue;
					int16x8_t x = vsubl_s8(
						load8_s8(irow + (size_t)ix * c, left), zin);
					int16x8_t wk = w[ky * 3 + kx];
					a0 = vmlal_s16(a0, vget_low_s16(x), vget_low_s16(wk));
					a1 = vmlal_s16(a1, vget_high_s16(x), vget_high_s16(wk));
				}
			}
			store8(orow + (size_t)ox * c, pn_qrq8_out(&r, a0, a1, mode), left);
		}
	}
}

/* x - zp by SSUBL: zero points are in [-128, 127] (qmodel.c checks). */
void pn_qdw3x3_neon(const struct pn_qdw_args *a)
{
	for (int c0 = 0; c0 < a->c; c0 += 8) {
		struct pn_qrq8 r;
		pn_qrq8_init(&r, &a->q, c0, a->c - c0);
		switch (r.mode) {
		case PN_QNEON_RELU:
			dw_block(a, c0, PN_QNEON_RELU);
			break;
		case PN_QNEON_SIGNED:
			dw_block(a, c0, PN_QNEON_SIGNED);
			break;
		default:
			dw_block(a, c0, PN_QNEON_SLOW);
		}
	}
}

/* The stem through the pointwise kernel (qim2col.h), else this loop. */
void pn_qconv3x3_neon(const struct pn_qconv_args *a)
{
	if (pn_qconv3x3_im2col(a, pn_qpw_packed_bytes_neon, pn_qpw_pack_neon, pn_qpw_neon))
		return;
	const int cin = a->cin, cout = a->cout, s = a->stride;
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * a->out_w * cout;
		for (int ox = 0; ox < a->out_w; ox++) {
			for (int c0 = 0; c0 < cout; c0 += 8) {
				const int left = cout - c0;
				int32x4_t a0, a1;
				struct pn_qrq8 r;
				load8_i32(a->q.bias + c0, left, &a0, &a1);
				for (int ky = 0; ky < 3; ky++) {
					int iy = oy * s - 1 + ky;
					if (iy < 0 || iy >= a->in_h)
						continue;
					for (int kx = 0; kx < 3; kx++) {
						int ix = ox * s - 1 + kx;
						if (ix < 0 || ix >= a->in_w)
							continue;
						const int8_t *px =
							a->in + ((size_t)iy * a->in_w + ix) * cin;
						const int8_t *wk =
							a->weights +
							(size_t)(ky * 3 + kx) * cin * cout + c0;
						for (int ci = 0; ci < cin; ci++) {
							int16x8_t w =
								load8(wk + (size_t)ci * cout, left);
							int16_t x = (int16_t)(px[ci] - a->in_zp);
							a0 = vmlal_n_s16(a0, vget_low_s16(w), x);
							a1 = vmlal_n_s16(a1, vget_high_s16(w), x);
						}
					}
				}
				pn_qrq8_init(&r, &a->q, c0, left);
				store8(orow + (size_t)ox * cout + c0,
				       pn_qrq8_out(&r, a0, a1, r.mode), left);
			}
		}
	}
}

/* (q - zp) * 2^16 fits 24 bits: the left shift never saturates. */
void pn_qadd_neon(const struct pn_qadd_args *a)
{
	const int32x4_t ma = vdupq_n_s32(a->a_mult), mb = vdupq_n_s32(a->b_mult);
	const int32x4_t ea = vdupq_n_s32(a->a_exp), eb = vdupq_n_s32(a->b_exp);
	const int16x8_t za = vdupq_n_s16((int16_t)a->a_zp), zb = vdupq_n_s16((int16_t)a->b_zp);
	const int16x8_t zout = vdupq_n_s16((int16_t)a->out_zp);
	const int8x8_t lo = vdup_n_s8(-128), hi = vdup_n_s8(127);
	for (size_t i = 0; i < a->n; i += 8) {
		const int left = a->n - i < 8 ? (int)(a->n - i) : 8;
		int16x8_t x = vsubq_s16(load8(a->a + i, left), za);
		int16x8_t y = vsubq_s16(load8(a->b + i, left), zb);
		int32x4_t s0 = vaddq_s32(
			pn_qrequant_neon(vshll_n_s16(vget_low_s16(x), PN_QADD_SHIFT), ma, ea),
			pn_qrequant_neon(vshll_n_s16(vget_low_s16(y), PN_QADD_SHIFT), mb, eb));
		int32x4_t s1 = vaddq_s32(
			pn_qrequant_neon(vshll_n_s16(vget_high_s16(x), PN_QADD_SHIFT), ma, ea),
			pn_qrequant_neon(vshll_n_s16(vget_high_s16(y), PN_QADD_SHIFT), mb, eb));
		store8(a->out + i,
		       pn_qpack8_neon(pn_qround_shift16_neon(s0), pn_qround_shift16_neon(s1), zout,
				      lo, hi),
		       left);
	}
}
