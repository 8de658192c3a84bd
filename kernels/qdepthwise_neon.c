/* The int8 depthwise 3x3, stem 3x3 and residual add with NEON, equal to
 * pn_qdw3x3_ref, pn_qconv3x3_ref and pn_qadd_ref, eight channels at a
 * time; a channel tail goes through zero-padded buffers. The depthwise
 * multiplies raw q by the weights two taps at a time, SMULL + SMLAL into
 * int16 (|q w| <= 128 * 127, two at most 32512 < 2^15: exact because
 * weights stay in [-127, 127], which qmodel.c checks), and widens each
 * pair into int32 by SADDW; -in_zp * (sum of the nine weights) is folded
 * into the bias. The stem goes through the pointwise kernel when its
 * shape allows. */
#include <string.h>

#include "qdw_rows.h"
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

/* One block of 8 channels: its weights, bias (with -in_zp times the
 * weight sum) and requantisation. */
struct dwblock {
	int8x8_t w[9];
	int32x4_t b0, b1;
	struct pn_qrq8 r;
	int left;
};

/* `full` (a constant): all 8 channels are there, no tail path. */
PN_QNEON_INLINE int8x8_t tap8(const int8_t *p, int left, int full)
{
	return full ? vld1_s8(p) : load8_s8(p, left);
}

/* One output pixel of the block from its nine taps' bytes. */
PN_QNEON_INLINE void dw_pixel_x(const struct dwblock *b, const int8x8_t x[9], int8_t *out, int full,
				int mode)
{
	int32x4_t a0 = b->b0, a1 = b->b1;
#pragma GCC unroll 5
	for (int t = 0; t < 9; t += 2) {
		int16x8_t p = vmull_s8(x[t], b->w[t]);
		if (t < 8)
			p = vmlal_s8(p, x[t + 1], b->w[t + 1]);
		a0 = vaddw_s16(a0, vget_low_s16(p));
#ifdef __aarch64__ /* SADDW2: GCC moves the high half out otherwise */
		a1 = vaddw_high_s16(a1, p);
#else
		a1 = vaddw_s16(a1, vget_high_s16(p));
#endif
	}
	int8x8_t o = pn_qrq8_out(&b->r, a0, a1, mode);
	if (full)
		vst1_s8(out, o);
	else
		store8(out, o, b->left);
}

PN_QNEON_INLINE void dw_pixel(const struct dwblock *b, const int8_t *const px[9], int8_t *out,
			      int full, int mode)
{
	int8x8_t x[9];
#pragma GCC unroll 9
	for (int t = 0; t < 9; t++)
		x[t] = tap8(px[t], b->left, full);
	dw_pixel_x(b, x, out, full, mode);
}

/* All output pixels of one block. Padding reads in_zp from `pad` (its
 * products cancel against the bias's fold: the reference's skipped tap),
 * so the columns that read no padding (qdw_rows.h) take their nine taps
 * without a test. */
PN_QNEON_INLINE void dw_rows(const struct pn_qdw_args *a, const struct dwblock *b, int c0,
			     const int8_t *pad, int full, int mode)
{
	const int c = a->c, s = a->stride, in_w = a->in_w, out_w = a->out_w;
	int x1 = pn_qdw_inner_end(in_w, s);
	if (x1 > out_w)
		x1 = out_w;
	for (int oy = a->out_y0; oy < a->out_y1; oy++) {
		int8_t *orow = a->out + (size_t)(oy - a->out_y0) * out_w * c + c0;
		const int8_t *rows[3], *px[9];
		size_t step[3];
		pn_qdw_rows(a, oy, c0, pad, rows, step);
		int ox = 0;
		if (out_w > 0) { /* column 0 reads the left padding */
			pn_qdw_taps(rows, step, 0, s, in_w, 0, pad, px);
			dw_pixel(b, px, orow, full, mode);
			ox = 1;
		}
#ifdef __aarch64__
		if (s == 1) {
			/* Stride 1: each input column is loaded once for the
			 * three outputs that read it, three outputs a turn so
			 * that the columns change roles instead of registers
			 * (32 registers hold them beside the weights; 32-bit
			 * ARM's 16 would spill, so it keeps the loop below). */
			const int8_t *q[3];
			int8x8_t ca[3], cb[3], cc[3];
#pragma GCC unroll 3
			for (int ky = 0; ky < 3; ky++) {
				q[ky] = rows[ky] + (size_t)(ox - 1) * step[ky];
				ca[ky] = tap8(q[ky], b->left, full);
				cb[ky] = tap8(q[ky] + step[ky], b->left, full);
				q[ky] += 2 * step[ky];
			}
			for (; ox + 3 <= x1; ox += 3) {
				int8_t *o = orow + (size_t)ox * c;
#pragma GCC unroll 3
				for (int ky = 0; ky < 3; ky++)
					cc[ky] = tap8(q[ky], b->left, full);
				const int8x8_t x0[9] = {ca[0], cb[0], cc[0], ca[1], cb[1],
							cc[1], ca[2], cb[2], cc[2]};
				dw_pixel_x(b, x0, o, full, mode);
#pragma GCC unroll 3
				for (int ky = 0; ky < 3; ky++)
					ca[ky] = tap8(q[ky] + step[ky], b->left, full);
				const int8x8_t x1v[9] = {cb[0], cc[0], ca[0], cb[1], cc[1],
							 ca[1], cb[2], cc[2], ca[2]};
				dw_pixel_x(b, x1v, o + c, full, mode);
#pragma GCC unroll 3
				for (int ky = 0; ky < 3; ky++) {
					cb[ky] = tap8(q[ky] + 2 * step[ky], b->left, full);
					q[ky] += 3 * step[ky];
				}
				const int8x8_t x2[9] = {cc[0], ca[0], cb[0], cc[1], ca[1],
							cb[1], cc[2], ca[2], cb[2]};
				dw_pixel_x(b, x2, o + 2 * (size_t)c, full, mode);
			}
		}
#endif
		/* Three row pointers that move by stride columns, not nine
		 * addresses computed per pixel. */
		const int8_t *r0 = rows[0] + (size_t)(ox * s - 1) * step[0],
			     *r1 = rows[1] + (size_t)(ox * s - 1) * step[1],
			     *r2 = rows[2] + (size_t)(ox * s - 1) * step[2];
		for (; ox < x1; ox++) {
			const int8_t *const t[9] = {r0, r0 + step[0], r0 + 2 * step[0],
						    r1, r1 + step[1], r1 + 2 * step[1],
						    r2, r2 + step[2], r2 + 2 * step[2]};
			dw_pixel(b, t, orow + (size_t)ox * c, full, mode);
			r0 += (size_t)s * step[0];
			r1 += (size_t)s * step[1];
			r2 += (size_t)s * step[2];
		}
		for (; ox < out_w; ox++) {
			pn_qdw_taps(rows, step, ox, s, in_w, 0, pad, px);
			dw_pixel(b, px, orow + (size_t)ox * c, full, mode);
		}
	}
}

/* The pad row holds in_zp: zero points are in [-128, 127] (qmodel.c
 * checks). */
void pn_qdw3x3_neon_from(const struct pn_qdw_args *a, int c_from)
{
	int8_t pad[8];
	memset(pad, (int)(int8_t)a->in_zp, sizeof pad);
	const int32x4_t zin = vdupq_n_s32(a->in_zp);
	for (int c0 = c_from; c0 < a->c; c0 += 8) {
		struct dwblock b;
		b.left = a->c - c0;
		int16x8_t wsum = vdupq_n_s16(0); /* |sum| <= 9 * 127 */
		for (int t = 0; t < 9; t++) {
			b.w[t] = load8_s8(a->weights + (size_t)t * a->c + c0, b.left);
			wsum = vaddw_s8(wsum, b.w[t]);
		}
		load8_i32(a->q.bias + c0, b.left, &b.b0, &b.b1);
		b.b0 = vmlsq_s32(b.b0, zin, vmovl_s16(vget_low_s16(wsum)));
		b.b1 = vmlsq_s32(b.b1, zin, vmovl_s16(vget_high_s16(wsum)));
		pn_qrq8_init(&b.r, &a->q, c0, b.left);
		/* full block and requantisation mode as constants */
		switch ((b.left >= 8) * 3 + b.r.mode) {
		case 3 + PN_QNEON_RELU:
			dw_rows(a, &b, c0, pad, 1, PN_QNEON_RELU);
			break;
		case 3 + PN_QNEON_SIGNED:
			dw_rows(a, &b, c0, pad, 1, PN_QNEON_SIGNED);
			break;
		case 3 + PN_QNEON_SLOW:
			dw_rows(a, &b, c0, pad, 1, PN_QNEON_SLOW);
			break;
		default:
			dw_rows(a, &b, c0, pad, 0, b.r.mode);
		}
	}
}

void pn_qdw3x3_neon(const struct pn_qdw_args *a)
{
	pn_qdw3x3_neon_from(a, 0);
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
