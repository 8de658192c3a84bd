/* The int8 kernel table: one `struct pn_qops` per instruction set, like
 * ops.h for float. `pn_qops_scalar` is the reference; a faster variant
 * must give the same integers (the arithmetic is in quant.h).
 *
 * Conventions (activations NHWC int8, per-tensor scale and zero point;
 * weights int8 in [-127, 127], zero point 0, per output channel):
 *   acc[c]  = bias[c] + sum (in - in_zp) * w[c], int32; padding adds
 *             nothing (it is the real value 0, q = in_zp);
 *   out[c]  = clamp(out_zp + pn_q_requant(acc[c], mult[c], exp[c]), lo, hi)
 *             where [lo, hi] is [-128, 127] narrowed by a folded ReLU6.
 * Kernels do no checks and no allocation.
 */
#ifndef PN_QOPS_H
#define PN_QOPS_H

#include <stddef.h>
#include <stdint.h>

/* Per-output-channel requantisation, and the clamp. */
struct pn_qout {
	const int32_t *bias, *mult;
	const int8_t *exp;
	int32_t zp, lo, hi;
};

/* Dense 3x3 convolution, padding 1 (the stem), over output rows
 * [out_y0, out_y1): weights [3][3][cin][cout], `in` row 0, `out` row
 * out_y0. */
struct pn_qconv_args {
	const int8_t *in;
	int in_h, in_w, cin;
	int32_t in_zp;
	int8_t *out;
	int out_y0, out_y1, out_w, cout, stride;
	const int8_t *weights;
	struct pn_qout q;
};

/* Depthwise 3x3, padding 1, stride 1 or 2, rows as in ops.h's
 * pn_dw_args: weights [3][3][c]. */
struct pn_qdw_args {
	const int8_t *in;
	int in_y0, in_h, in_w;
	int32_t in_zp;
	int8_t *out;
	int out_y0, out_y1, out_w, c, stride;
	const int8_t *weights;
	struct pn_qout q;
};

/* out = clamp(zp + round((a - a_zp) * Ma + (b - b_zp) * Mb)): the residual
 * add. Each input is scaled by 2^PN_QADD_SHIFT, requantised to the output
 * unit with its multiplier, the two summed and rounded (half away from
 * zero) by 2^PN_QADD_SHIFT. Ma, Mb < 2^(30 - 8 - PN_QADD_SHIFT) = 64 keeps
 * the sum in int32 (PN_QADD_MAX_MULT). */
#define PN_QADD_SHIFT 16
#define PN_QADD_MAX_MULT 64.0
struct pn_qadd_args {
	const int8_t *a, *b;
	int8_t *out;
	size_t n;
	int32_t a_zp, b_zp, a_mult, b_mult, out_zp;
	int a_exp, b_exp;
};

struct pn_qops {
	/* The variant, and the float table's name (the PIPENET_ISA value)
	 * of the instruction set it belongs to: "avx512-vnni" is "avx512". */
	const char *name, *isa;
	int (*available)(void);

	void (*conv3x3)(const struct pn_qconv_args *a);
	void (*dw3x3)(const struct pn_qdw_args *a);
	/* out[m][n] = requant(bias[n] + sum_k (in[m][k] - in_zp) * w[k][n]):
	 * weights packed by pw_pack from PyTorch's [n][k] into
	 * pw_packed_bytes(k, n) bytes of a variant's own layout (the
	 * reference's is [k][n]). */
	size_t (*pw_packed_bytes)(int k, int n);
	void (*pw_pack)(const int8_t *w, int k, int n, int8_t *packed);
	void (*pw)(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		   int32_t in_zp, const struct pn_qout *q);
	void (*add)(const struct pn_qadd_args *a);
	/* out[c] = clamp(out_zp + requant(sum over hw of (in - in_zp), mult,
	 * exp)), one image: the average pool with 1 / hw in the multiplier. */
	void (*avgpool)(const int8_t *in, int8_t *out, int hw, int c, int32_t in_zp, int32_t mult,
			int exp, int32_t out_zp);
	/* out[j] = (float)(bias[j] + sum_i (in[i] - in_zp) * w[j][i]) * deq[j]:
	 * the classifier, dequantised. */
	void (*linear)(const int8_t *in, float *out, const int8_t *w, const int32_t *bias,
		       const float *deq, int k, int classes, int32_t in_zp);
	/* Whole tensors in and out of the integer domain (quant.h). */
	void (*quantize)(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp);
	void (*dequantize)(const int8_t *in, float *out, size_t n, float scale, int32_t zp);
	/* The peak the pointwise kernel's multiply-accumulate could reach on
	 * one core: `peak_run(n)` issues n x 16 of its instructions (`peak_insn`)
	 * into 16 independent accumulators, each doing `peak_macs` int8
	 * multiply-accumulates; pn_qpeak times it. NULL when not stated. */
	void (*peak_run)(long n);
	const char *peak_insn;
	int peak_macs;
};

/* int8 multiply-accumulates per second that ops->peak_run reaches on this
 * core right now (the best of a few timed runs of about a millisecond),
 * or 0 when the table states no peak. */
double pn_qpeak(const struct pn_qops *ops);

extern const struct pn_qops pn_qops_scalar;
#ifdef PN_HAVE_X86
extern const struct pn_qops pn_qops_avx512vnni, pn_qops_avx512, pn_qops_avx2;
#endif
#ifdef PN_HAVE_NEON
extern const struct pn_qops pn_qops_neon;
#endif
#ifdef PN_HAVE_NEON_DOT
extern const struct pn_qops pn_qops_neon_dot;
#endif

/* All int8 tables built in, best first, NULL-terminated: the tests
 * iterate it. */
extern const struct pn_qops *const pn_qops_all[];

/* The best available int8 table of instruction set `isa` (a float
 * table's name, which PIPENET_ISA chose), else the scalar one. */
const struct pn_qops *pn_qops_select(const char *isa);

/* The scalar functions, for variants that fall back on them. */
void pn_qconv3x3_ref(const struct pn_qconv_args *a);
void pn_qdw3x3_ref(const struct pn_qdw_args *a);
size_t pn_qpw_packed_bytes_ref(int k, int n);
void pn_qpw_pack_ref(const int8_t *w, int k, int n, int8_t *packed);
void pn_qpw_ref(const int8_t *in, int8_t *out, const int8_t *packed, int m, int k, int n,
		int32_t in_zp, const struct pn_qout *q);
void pn_qadd_ref(const struct pn_qadd_args *a);
void pn_qavgpool_ref(const int8_t *in, int8_t *out, int hw, int c, int32_t in_zp, int32_t mult,
		     int exp, int32_t out_zp);
void pn_qlinear_ref(const int8_t *in, float *out, const int8_t *w, const int32_t *bias,
		    const float *deq, int k, int classes, int32_t in_zp);
void pn_quantize_ref(const float *in, int8_t *out, size_t n, float inv_scale, int32_t zp);
void pn_dequantize_ref(const int8_t *in, float *out, size_t n, float scale, int32_t zp);

#endif
