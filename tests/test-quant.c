/* The int8 path: the fixed-point arithmetic of quant.h against exact
 * wide-integer oracles, the scalar int8 kernels against naive loops, and
 * (with ../shared) the 32x32 model quantised on calib_batch.bin: the same
 * bytes twice, block ranges that compose bit for bit, top-1 close to the
 * float model's on test records, damaged files refused by name.
 *
 * PIPENET_QUANT_SAMPLES sets the calibration images (default 100, so the
 * test takes about a minute; `pipenet quantize` uses all 1000).
 * PIPENET_TEST_STRIDE=K (sanitised runs) calibrates on 16 images and
 * compares every 20K-th test record; under emulation (PN_TEST_WRAPPER)
 * those model checks are skipped: the scalar int8 pass is too slow there.
 * The shipped int8 models (models/) are run by every variant against the
 * scalar table on random images, under emulation the 32 model only. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model.h"
#include "qops.h"
#include "quant.h"
#include "quantize.h"
#include "tap.h"

#define RECORD 3073

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static int32_t rand_i32(void)
{
	/* Half uniform, half small or near the ends, where the rounding bites. */
	switch (next32() % 4) {
	case 0:
		return (int32_t)(next32() % 2001) - 1000;
	case 1:
		return next32() % 2 ? INT32_MAX - (int32_t)(next32() % 64)
				    : INT32_MIN + (int32_t)(next32() % 64);
	default:
		return (int32_t)next32();
	}
}

/* ---- oracles: exact rounding in int64 (every product here fits), by
 * floor and remainder rather than the kernels' add-half-and-shift ---- */

/* round(num / 2^s), half away from zero, s >= 0. */
static int64_t div_pow2_round(int64_t num, int s)
{
	if (s == 0)
		return num;
	int64_t mag = num < 0 ? -num : num;
	int64_t q = mag >> s, rem = mag - (q << s), half = (int64_t)1 << (s - 1);
	if (rem >= half)
		q++;
	return num < 0 ? -q : q;
}

static int32_t sat32(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static int32_t oracle_high_mul(int32_t a, int32_t b)
{
	return sat32(div_pow2_round((int64_t)a * b, 31));
}

static int32_t oracle_requant(int32_t acc, int32_t mult, int exp)
{
	int64_t x = acc;
	if (exp > 0)
		x = sat32(x * ((int64_t)1 << exp));
	int64_t h = sat32(div_pow2_round(x * mult, 31));
	return sat32(div_pow2_round(h, exp < 0 ? -exp : 0));
}

static void test_math(void)
{
	int bad = 0;
	/* The edges first. */
	static const int32_t edges[] = {
		INT32_MIN, INT32_MIN + 1, -1073741824,	 -3,	   -2, -1, 0, 1, 2,
		3,	   1073741824,	  INT32_MAX - 1, INT32_MAX};
	const int ne = sizeof edges / sizeof edges[0];
	for (int i = 0; i < ne; i++)
		for (int j = 0; j < ne; j++)
			bad += pn_q_high_mul(edges[i], edges[j]) !=
			       oracle_high_mul(edges[i], edges[j]);
	tap_ok(pn_q_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX,
	       "high_mul(INT32_MIN, INT32_MIN) saturates to INT32_MAX");
	tap_ok(pn_q_high_mul(1, 1 << 30) == 1 && pn_q_high_mul(-1, 1 << 30) == -1 &&
		       pn_q_high_mul(3, 1 << 30) == 2 && pn_q_high_mul(-3, 1 << 30) == -2,
	       "high_mul ties (+-0.5, +-1.5) round away from zero");
	tap_ok(pn_q_round_shift(3, 1) == 2 && pn_q_round_shift(-3, 1) == -2 &&
		       pn_q_round_shift(5, 1) == 3 && pn_q_round_shift(-5, 1) == -3 &&
		       pn_q_round_shift(INT32_MIN, 31) == -1 &&
		       pn_q_round_shift(INT32_MAX, 1) == 1073741824 &&
		       pn_q_round_shift(-1073741824, 31) == -1 &&
		       pn_q_round_shift(-1073741823, 31) == 0,
	       "round_shift ties round away from zero, INT32_MIN and INT32_MAX exact");
	for (int i = 0; i < 2000000; i++) {
		int32_t a = rand_i32(), b = rand_i32();
		bad += pn_q_high_mul(a, b) != oracle_high_mul(a, b);
	}
	tap_ok(bad == 0,
	       "high_mul equals round(a * b / 2^31) in int64 on 2 million pairs (%d differ)", bad);

	bad = 0;
	for (int i = 0; i < 2000000; i++) {
		int32_t x = rand_i32();
		int s = (int)(next32() % 32);
		bad += pn_q_round_shift(x, s) != sat32(div_pow2_round(x, s));
		bad += pn_q_sat_shl(x, s) != sat32((int64_t)x * ((int64_t)1 << s));
	}
	tap_ok(bad == 0,
	       "round_shift and sat_shl equal the int64 oracle for every shift 0..31 "
	       "(%d differ)",
	       bad);

	/* Multipliers, and requantisation against the exact product. */
	int badm = 0, badr = 0, badb = 0;
	double worst = 0;
	for (int i = 0; i < 200000; i++) {
		double m = ldexp(1.0 + (next32() / 4294967296.0), (int)(next32() % 38) - 32);
		int32_t mult;
		int exp;
		if (pn_q_multiplier(m, &mult, &exp) < 0) {
			badm++;
			continue;
		}
		double got = ldexp((double)mult, exp - 31);
		if (mult < (1 << 30) || fabs(got - m) > ldexp(1.0, exp - 32))
			badm++;
		for (int k = 0; k < 10; k++) {
			int32_t acc =
				k < 5 ? (int32_t)(next32() % 20000001) - 10000000 : rand_i32();
			int32_t y = pn_q_requant(acc, mult, exp);
			badr += y != oracle_requant(acc, mult, exp);
			/* Two roundings: within 1/2 + 2^(exp-1) of acc * M
			 * unless the left shift saturated. */
			long double exact = (long double)acc * mult * ldexpl(1.0L, exp - 31);
			int64_t shifted = (int64_t)acc * ((int64_t)1 << (exp > 0 ? exp : 0));
			if (shifted >= INT32_MIN && shifted <= INT32_MAX && fabsl(exact) < 2e9L) {
				long double d = fabsl((long double)y - exact);
				if (d > worst)
					worst = (double)d;
				badb += d > 0.5L + ldexpl(1.0L, exp < 0 ? exp - 1 : -32) + 1e-6L;
			}
		}
	}
	tap_ok(badm == 0,
	       "pn_q_multiplier: mult in [2^30, 2^31) and within half an ulp of M on 200000 "
	       "multipliers in 2^-32..2^6 (%d wrong)",
	       badm);
	tap_ok(badr == 0,
	       "requant equals the int64 two-rounding oracle on 2 million values (%d differ)",
	       badr);
	tap_ok(badb == 0, "requant within 1/2 + 2^(exp-1) of acc * M (worst %.6f, %d outside)",
	       worst, badb);
	int32_t mult;
	int exp;
	tap_ok(pn_q_multiplier(1.0, &mult, &exp) == 0 && mult == 1 << 30 && exp == 1 &&
		       pn_q_multiplier(nextafter(1.0, 0.0), &mult, &exp) == 0 && mult == 1 << 30 &&
		       exp == 1,
	       "pn_q_multiplier(1) and (1 - ulp, which rounds up to 2^31) give 2^30, exp 1");
	tap_ok(pn_q_multiplier(0.0, &mult, &exp) < 0 && pn_q_multiplier(-1.0, &mult, &exp) < 0 &&
		       pn_q_multiplier(NAN, &mult, &exp) < 0 &&
		       pn_q_multiplier(ldexp(1.0, 8), &mult, &exp) < 0 &&
		       pn_q_multiplier(ldexp(1.0, -33), &mult, &exp) < 0,
	       "pn_q_multiplier refuses 0, negative, NaN, 2^8 and 2^-33");

	/* Float in and out: ties away from zero, clamps, exact round trips. */
	tap_ok(pn_q_from_float(2.5f, 1.0f, 0) == 3 && pn_q_from_float(-2.5f, 1.0f, 0) == -3 &&
		       pn_q_from_float(1e9f, 1.0f, 0) == 127 &&
		       pn_q_from_float(-1e9f, 1.0f, 0) == -128 &&
		       pn_q_from_float(NAN, 1.0f, 5) == -128 &&
		       pn_q_from_float(0.0f, 1.0f, -7) == -7,
	       "from_float: ties away from zero, saturation, NaN to the lowest code");
	bad = 0;
	for (int i = 0; i < 20000; i++) {
		float s = (float)ldexp(1.0 + next32() / 4294967296.0, (int)(next32() % 40) - 30);
		int32_t zp = (int32_t)(next32() % 256) - 128;
		for (int q = -128; q < 128; q++)
			bad += pn_q_from_float(pn_q_to_float((int8_t)q, s, zp), 1.0f / s, zp) != q;
	}
	tap_ok(bad == 0, "dequantise then quantise gives every code back (20000 scales, %d differ)",
	       bad);
}

/* ---- kernels against naive loops ---- */

static int32_t naive_out(int64_t acc, int32_t mult, int exp, int32_t zp, int32_t lo, int32_t hi)
{
	return pn_q_clamp(zp + oracle_requant((int32_t)acc, mult, exp), lo, hi);
}

static void fill_q(struct pn_qout *q, int32_t *bias, int32_t *mult, int8_t *exp, int n)
{
	for (int i = 0; i < n; i++) {
		bias[i] = (int32_t)(next32() % 200001) - 100000;
		double m = ldexp(1.0 + next32() / 4294967296.0, -(int)(next32() % 12) - 4);
		int e;
		pn_q_multiplier(m, &mult[i], &e);
		exp[i] = (int8_t)e;
	}
	q->bias = bias;
	q->mult = mult;
	q->exp = exp;
	q->zp = (int32_t)(next32() % 256) - 128;
	q->lo = next32() % 2 ? -128 : q->zp;
	q->hi = next32() % 2 ? 127 : (q->zp + 100 < 127 ? q->zp + 100 : 127);
}

static void rand_i8(int8_t *p, size_t n, int weights)
{
	for (size_t i = 0; i < n; i++)
		p[i] = weights ? (int8_t)((int)(next32() % 255) - 127) : (int8_t)next32();
}

static void test_kernels(const struct pn_qops *ops)
{
	int32_t bias[300], mult[300];
	int8_t exp[300];
	struct pn_qout q;
	int bad = 0, cases = 0;
	for (int t = 0; t < 60; t++) {
		int m = 1 + next32() % 9, k = 1 + next32() % 200, n = 1 + next32() % 150;
		int8_t *in = malloc((size_t)m * k), *w = malloc((size_t)k * n);
		int8_t *pk = malloc(ops->pw_packed_bytes(k, n)), *out = malloc((size_t)m * n);
		int32_t zin = (int32_t)(next32() % 256) - 128;
		rand_i8(in, (size_t)m * k, 0);
		rand_i8(w, (size_t)k * n, 1);
		fill_q(&q, bias, mult, exp, n);
		ops->pw_pack(w, k, n, pk);
		ops->pw(in, out, pk, m, k, n, zin, &q);
		for (int r = 0; r < m; r++)
			for (int j = 0; j < n; j++) {
				int64_t acc = bias[j];
				for (int i = 0; i < k; i++)
					acc += (int64_t)(in[(size_t)r * k + i] - zin) *
					       w[(size_t)j * k + i];
				bad += out[(size_t)r * n + j] !=
				       naive_out(acc, mult[j], exp[j], q.zp, q.lo, q.hi);
				cases++;
			}
		free(in);
		free(w);
		free(pk);
		free(out);
	}
	tap_ok(bad == 0,
	       "%s pw: %d outputs of random shapes equal the naive int64 loop (%d differ)",
	       ops->name, cases, bad);

	bad = cases = 0;
	for (int t = 0; t < 40; t++) {
		int h = 1 + next32() % 9, wd = 1 + next32() % 9, c = 1 + next32() % 150;
		int s = 1 + next32() % 2, dwconv = t % 2;
		int cin = dwconv ? c : 1 + (int)(next32() % 4);
		int cout = dwconv ? c : 1 + (int)(next32() % 100);
		int ho = (h - 1) / s + 1, wo = (wd - 1) / s + 1;
		int8_t *in = malloc((size_t)h * wd * cin), *w = malloc((size_t)9 * cin * cout);
		int8_t *out = malloc((size_t)ho * wo * cout);
		int32_t zin = (int32_t)(next32() % 256) - 128;
		rand_i8(in, (size_t)h * wd * cin, 0);
		rand_i8(w, (size_t)9 * cin * cout, 1);
		fill_q(&q, bias, mult, exp, cout);
		if (dwconv) {
			struct pn_qdw_args a = {in, 0, h, wd, zin, out, 0, ho, wo, c, s, w, q};
			ops->dw3x3(&a);
		} else {
			struct pn_qconv_args a = {in, h,  wd,	cin, zin, out, 0,
						  ho, wo, cout, s,   w,	  q};
			ops->conv3x3(&a);
		}
		for (int oy = 0; oy < ho; oy++)
			for (int ox = 0; ox < wo; ox++)
				for (int o = 0; o < cout; o++) {
					int64_t acc = bias[o];
					for (int ky = 0; ky < 3; ky++)
						for (int kx = 0; kx < 3; kx++) {
							int iy = oy * s - 1 + ky,
							    ix = ox * s - 1 + kx;
							if (iy < 0 || iy >= h || ix < 0 || ix >= wd)
								continue;
							const int8_t *px =
								in + ((size_t)iy * wd + ix) * cin;
							const int8_t *wk =
								w + (size_t)(ky * 3 + kx) * cin *
									    (dwconv ? 1 : cout);
							if (dwconv)
								acc += (int64_t)(px[o] - zin) *
								       wk[o];
							else
								for (int ci = 0; ci < cin; ci++)
									acc += (int64_t)(px[ci] -
											 zin) *
									       wk[(size_t)ci *
											  cout +
										  o];
						}
					bad += out[((size_t)oy * wo + ox) * cout + o] !=
					       naive_out(acc, mult[o], exp[o], q.zp, q.lo, q.hi);
					cases++;
				}
		free(in);
		free(w);
		free(out);
	}
	tap_ok(bad == 0,
	       "%s dw3x3 and conv3x3, strides 1 and 2, padding: %d outputs equal the naive loop "
	       "(%d differ)",
	       ops->name, cases, bad);

	/* The residual add, against the formula in int64. */
	bad = 0;
	for (int t = 0; t < 2000; t++) {
		int8_t a[64], b[64], out[64];
		rand_i8(a, 64, 0);
		rand_i8(b, 64, 0);
		struct pn_qadd_args ad = {a,
					  b,
					  out,
					  64,
					  (int32_t)(next32() % 256) - 128,
					  (int32_t)(next32() % 256) - 128,
					  0,
					  0,
					  (int32_t)(next32() % 256) - 128,
					  0,
					  0};
		pn_q_multiplier(ldexp(1.0 + next32() / 4294967296.0, (int)(next32() % 10) - 6),
				&ad.a_mult, &ad.a_exp);
		pn_q_multiplier(ldexp(1.0 + next32() / 4294967296.0, (int)(next32() % 10) - 6),
				&ad.b_mult, &ad.b_exp);
		ops->add(&ad);
		for (int i = 0; i < 64; i++) {
			int32_t x = oracle_requant((a[i] - ad.a_zp) * 65536, ad.a_mult, ad.a_exp);
			int32_t y = oracle_requant((b[i] - ad.b_zp) * 65536, ad.b_mult, ad.b_exp);
			int32_t v = ad.out_zp + (int32_t)div_pow2_round((int64_t)x + y, 16);
			bad += out[i] != pn_q_clamp(v, -128, 127);
		}
	}
	tap_ok(bad == 0,
	       "%s add: 128000 sums with multipliers 2^-6..2^4 equal the oracle (%d differ)",
	       ops->name, bad);

	/* Pool and classifier: more channels than the scalar pool's block of
	 * 256, and not a multiple of it. */
	enum { PC = 300 };
	int8_t feat[49 * PC], pooled[PC], w[3 * PC];
	int32_t hb[3] = {1000, -20000, 7};
	float deq[3] = {0.01f, 0.002f, 0.5f}, logits[3];
	int32_t pm;
	int pe;
	rand_i8(feat, sizeof feat, 0);
	rand_i8(w, sizeof w, 1);
	pn_q_multiplier(0.7 / 49, &pm, &pe);
	ops->avgpool(feat, pooled, 49, PC, -3, pm, pe, 5);
	ops->linear(pooled, logits, w, hb, deq, PC, 3, 5);
	bad = 0;
	for (int c = 0; c < PC; c++) {
		int32_t sum = 0;
		for (int p = 0; p < 49; p++)
			sum += feat[p * PC + c] + 3;
		bad += pooled[c] != pn_q_clamp(5 + oracle_requant(sum, pm, pe), -128, 127);
	}
	for (int j = 0; j < 3; j++) {
		int64_t acc = hb[j];
		for (int i = 0; i < PC; i++)
			acc += (int64_t)(pooled[i] - 5) * w[j * PC + i];
		bad += logits[j] != (float)acc * deq[j];
	}
	tap_ok(bad == 0, "%s avgpool and linear equal the naive loops (%d differ)", ops->name, bad);
}

/* ---- every variant against the scalar reference, bit for bit ---- */

/* Per-channel requantisation over the whole range: every exponent, so
 * both the saturating left shift and right shifts of up to 31, biases up
 * to +-2^30, and clamps narrowed at random. */
static void fill_q_wide(struct pn_qout *q, int32_t *bias, int32_t *mult, int8_t *exp, int n)
{
	for (int i = 0; i < n; i++) {
		switch (next32() % 4) {
		case 0:
			bias[i] = (int32_t)(next32() % 2000001) - 1000000;
			break;
		case 1:
			bias[i] = (int32_t)(next32() % (1u << 31)) - (1 << 30);
			break;
		default:
			bias[i] = (int32_t)(next32() % 200001) - 100000;
		}
		/* 2^30 and 3 * 2^29 make ties of the high multiply. */
		mult[i] = next32() % 4	 ? (int32_t)((1u << 30) + next32() % (1u << 30))
			  : next32() % 2 ? 1 << 30
					 : 3 << 29;
		exp[i] = (int8_t)(next32() % 4 ? -(int)(next32() % 20) - 2
					       : PN_Q_EXP_MIN + (int)(next32() % 39));
	}
	q->bias = bias;
	q->mult = mult;
	q->exp = exp;
	q->zp = (int32_t)(next32() % 256) - 128;
	q->lo = next32() % 2 ? -128 : q->zp;
	q->hi = next32() % 2 ? 127 : (q->zp + 100 < 127 ? q->zp + 100 : 127);
	if (q->lo > q->hi)
		q->lo = q->hi;
}

/* Activations: random, or stuck at an end (the largest |q - zp|). */
static void rand_act(int8_t *p, size_t n)
{
	int mode = next32() % 4;
	for (size_t i = 0; i < n; i++)
		p[i] = mode == 0 ? -128 : mode == 1 ? 127 : (int8_t)next32();
}

static void rand_w(int8_t *p, size_t n)
{
	int mode = next32() % 4;
	for (size_t i = 0; i < n; i++)
		p[i] = mode == 0   ? (int8_t)(next32() % 2 ? 127 : -127)
		       : mode == 1 ? 127
				   : (int8_t)((int)(next32() % 255) - 127);
}

static void test_variant(const struct pn_qops *ops)
{
	const struct pn_qops *ref = &pn_qops_scalar;
	enum { NMAX = 2200 };
	static int32_t bias[NMAX], mult[NMAX];
	static int8_t exp[NMAX];
	struct pn_qout q;
	int bad = 0, cases = 0;
	for (int t = 0; t < 512; t++) {
		int m = 1 + next32() % 13, n = 1 + next32() % 200;
		int k = t % 8 == 0 ? 257 + next32() % 1000 : 1 + next32() % 120;
		/* A few shapes past 2048 in k or n, where a kernel might
		 * switch to another path (stack-sized blocks). */
		if (t % 64 == 1)
			k = 2040 + next32() % 100;
		if (t % 64 == 2)
			n = 2040 + next32() % 150;
		int32_t zin = (t % 256) - 128;
		int8_t *in = malloc((size_t)m * k), *w = malloc((size_t)k * n);
		int8_t *pk = malloc(ops->pw_packed_bytes(k, n)), *pr = malloc((size_t)k * n);
		int8_t *out = malloc((size_t)m * n), *want = malloc((size_t)m * n);
		rand_act(in, (size_t)m * k);
		rand_w(w, (size_t)k * n);
		fill_q_wide(&q, bias, mult, exp, n);
		ops->pw_pack(w, k, n, pk);
		ref->pw_pack(w, k, n, pr);
		ops->pw(in, out, pk, m, k, n, zin, &q);
		ref->pw(in, want, pr, m, k, n, zin, &q);
		for (int i = 0; i < m * n; i++)
			bad += out[i] != want[i];
		cases += m * n;
		free(in);
		free(w);
		free(pk);
		free(pr);
		free(out);
		free(want);
	}
	tap_ok(bad == 0,
	       "%s pw == scalar: %d outputs, 512 shapes, every input zero point, k to 2139, n to "
	       "2189 (%d "
	       "differ)",
	       ops->name, cases, bad);

	/* Accumulators at the ends of int32 (inputs at the zero point: acc is
	 * the bias), every exponent, signed and ReLU clamps. */
	bad = 0;
	for (int t = 0; t < 64; t++) {
		enum { M = 3, K = 5, N = 40 };
		int8_t in[M * K], w[K * N], pk[4096], pr[K * N], out[M * N], want[M * N];
		int32_t zin = (int32_t)(next32() % 256) - 128;
		memset(in, (int8_t)zin, sizeof in);
		rand_w(w, sizeof w);
		fill_q_wide(&q, bias, mult, exp, N);
		for (int j = 0; j < N; j++) {
			bias[j] = j % 4 == 0 ? INT32_MIN : j % 4 == 1 ? INT32_MAX : bias[j];
			exp[j] = (int8_t)(PN_Q_EXP_MIN +
					  (j + t) % (PN_Q_EXP_MAX - PN_Q_EXP_MIN + 1));
		}
		if (t % 2)
			for (int j = 0; j < N; j++)
				exp[j] = (int8_t) - ((j + t) % 22);
		if (ops->pw_packed_bytes(K, N) > sizeof pk)
			break;
		ops->pw_pack(w, K, N, pk);
		ref->pw_pack(w, K, N, pr);
		ops->pw(in, out, pk, M, K, N, zin, &q);
		ref->pw(in, want, pr, M, K, N, zin, &q);
		bad += memcmp(out, want, sizeof out) != 0;
	}
	tap_ok(bad == 0, "%s pw == scalar with accumulators INT32_MIN and INT32_MAX (%d differ)",
	       ops->name, bad);

	bad = cases = 0;
	for (int t = 0; t < 300; t++) {
		int h = 1 + next32() % 12, wd = 1 + next32() % 12, s = 1 + t % 2,
		    dwconv = t % 3 != 0;
		int c = 1 + next32() % (dwconv ? 150 : 100);
		int cin = dwconv ? c : 1 + (int)(next32() % 4);
		int ho = (h - 1) / s + 1, wo = (wd - 1) / s + 1;
		int oy0 = (int)(next32() % ho), oy1 = oy0 + 1 + (int)(next32() % (ho - oy0));
		int32_t zin = (int32_t)(next32() % 256) - 128;
		int8_t *in = malloc((size_t)h * wd * cin), *w = malloc((size_t)9 * cin * c);
		int8_t *out = malloc((size_t)ho * wo * c), *want = malloc((size_t)ho * wo * c);
		rand_act(in, (size_t)h * wd * cin);
		rand_w(w, (size_t)9 * cin * c);
		fill_q_wide(&q, bias, mult, exp, c);
		size_t n = (size_t)(oy1 - oy0) * wo * c;
		if (dwconv) {
			int iy0 = oy0 * s - 1 > 0 ? oy0 * s - 1 : 0;
			struct pn_qdw_args a = {in + (size_t)iy0 * wd * c,
						iy0,
						h,
						wd,
						zin,
						out,
						oy0,
						oy1,
						wo,
						c,
						s,
						w,
						q};
			ops->dw3x3(&a);
			a.out = want;
			ref->dw3x3(&a);
		} else {
			struct pn_qconv_args a = {in,  h,  wd, cin, zin, out, oy0,
						  oy1, wo, c,  s,   w,	 q};
			ops->conv3x3(&a);
			a.out = want;
			ref->conv3x3(&a);
		}
		bad += memcmp(out, want, n) != 0;
		cases++;
		free(in);
		free(w);
		free(out);
		free(want);
	}
	tap_ok(bad == 0,
	       "%s dw3x3 and conv3x3 == scalar: %d row ranges, strides 1 and 2, odd channel counts "
	       "(%d differ)",
	       ops->name, cases, bad);

	bad = cases = 0;
	for (int t = 0; t < 2000; t++) {
		int8_t a[300], b[300], out[300], want[300];
		size_t n = 1 + next32() % 300;
		rand_act(a, n);
		rand_act(b, n);
		struct pn_qadd_args ad = {.a = a,
					  .b = b,
					  .out = out,
					  .n = n,
					  .a_zp = (int32_t)(next32() % 256) - 128,
					  .b_zp = (int32_t)(next32() % 256) - 128,
					  .out_zp = (int32_t)(next32() % 256) - 128};
		/* Mantissas 1 and 1.5 make ties. */
		double ma = t % 4 ? 1.0 + next32() / 4294967296.0 : 1.0 + 0.5 * (next32() % 2);
		double mb = t % 4 ? 1.0 + next32() / 4294967296.0 : 1.0 + 0.5 * (next32() % 2);
		pn_q_multiplier(ldexp(ma, (int)(next32() % 36) - 30), &ad.a_mult, &ad.a_exp);
		pn_q_multiplier(ldexp(mb, (int)(next32() % 36) - 30), &ad.b_mult, &ad.b_exp);
		ops->add(&ad);
		ad.out = want;
		ref->add(&ad);
		bad += memcmp(out, want, n) != 0;
		cases += (int)n;
	}
	tap_ok(bad == 0, "%s add == scalar: %d sums, multipliers 2^-30..2^5 (%d calls differ)",
	       ops->name, cases, bad);

	/* Pool, classifier and the float ends. */
	int8_t feat[49 * 45], p1[45], p2[45], w[7 * 45], qa[1001], qb[1001];
	int32_t hb[7];
	float deq[7], l1[7], l2[7], x[1001], f1[1001], f2[1001];
	int32_t pm;
	int pe;
	rand_act(feat, sizeof feat);
	rand_w(w, sizeof w);
	for (int j = 0; j < 7; j++) {
		hb[j] = (int32_t)(next32() % 200001) - 100000;
		deq[j] = (float)ldexp(1.0 + next32() / 4294967296.0, -(int)(next32() % 20));
	}
	for (int i = 0; i < 1001; i++)
		x[i] = (float)((int32_t)next32() % 100000) / 997.0f;
	pn_q_multiplier(0.9 / 49, &pm, &pe);
	ops->avgpool(feat, p1, 49, 45, 7, pm, pe, -9);
	ref->avgpool(feat, p2, 49, 45, 7, pm, pe, -9);
	ops->linear(p1, l1, w, hb, deq, 45, 7, -9);
	ref->linear(p1, l2, w, hb, deq, 45, 7, -9);
	ops->quantize(x, qa, 1001, 0.37f, 11);
	ref->quantize(x, qb, 1001, 0.37f, 11);
	ops->dequantize(qa, f1, 1001, 2.7f, 11);
	ref->dequantize(qa, f2, 1001, 2.7f, 11);
	int same = !memcmp(qa, qb, sizeof qa);
	/* Ties (odd integers times 0.5), saturation, NaN, infinities and
	 * the remainders next to 0.5, at every length's tail. */
	for (int i = 0; i < 1001; i++)
		x[i] = (float)(i - 500) * 2.5f + (float)(i % 3);
	x[0] = NAN;
	x[1] = INFINITY;
	x[2] = -INFINITY;
	x[3] = -0.0f;
	x[4] = 1e30f;
	x[5] = -1e30f;
	x[6] = nextafterf(1.0f, 0.0f);
	x[7] = -nextafterf(1.0f, 0.0f);
	x[8] = nextafterf(1.0f, 2.0f);
	x[9] = -3.0f;
	/* Subnormals (flushed by ARMv7 NEON), the clamp's ends, remainders
	 * just below 0.5 and integers past 2^23. */
	static const float more[] = {0x1p-149f,	  -0x1p-140f, FLT_MIN,	   -FLT_MIN, 511.5f,
				     512.5f,	  -512.5f,    1023.0f,	   -1025.0f, 0x1p23f + 1.0f,
				     0.5f,	  -0.5f,      0.49999997f, -1.5f,    FLT_MAX,
				     0x1.8p-127f, -0x1p-127f};
	memcpy(x + 10, more, sizeof more);
	static const float invs[] = {0.5f, 1.0f, 3.0f, 1e-3f, 0x1p127f};
	for (size_t v = 0; v < sizeof invs / sizeof invs[0]; v++)
		for (size_t len = 1; len <= 1001; len += len < 40 ? 1 : 97) {
			for (int zq = -128; zq < 128; zq += 85) {
				memset(qa, 0x55, sizeof qa);
				memset(qb, 0x55, sizeof qb);
				ops->quantize(x, qa, len, invs[v], zq);
				ref->quantize(x, qb, len, invs[v], zq);
				same &= !memcmp(qa, qb, sizeof qa);
			}
		}
	/* Every code, zero points at both ends, scales down to subnormal. */
	int same_deq = !memcmp(f1, f2, sizeof f1);
	static const float scales[] = {2.7f, 1.0f, 1e-30f, 0x1p-140f, 1e30f};
	for (int i = 0; i < 1001; i++)
		qa[i] = (int8_t)(i - 500);
	for (size_t v = 0; v < sizeof scales / sizeof scales[0]; v++)
		for (size_t len = 1; len <= 1001; len += len < 40 ? 1 : 97)
			for (int zq = -128; zq < 128; zq += 85) {
				memset(f1, 0, sizeof f1);
				memset(f2, 0, sizeof f2);
				ops->dequantize(qa, f1, len, scales[v], zq);
				ref->dequantize(qa, f2, len, scales[v], zq);
				same_deq &= !memcmp(f1, f2, sizeof f1);
			}
	tap_ok(!memcmp(p1, p2, sizeof p1) && !memcmp(l1, l2, sizeof l1) && same && same_deq,
	       "%s avgpool, linear, quantize (ties, NaN, saturation, subnormals), dequantize "
	       "(every code, subnormal scales) == scalar",
	       ops->name);
	if (ops->peak_run)
		tap_ok(pn_qpeak(ops) > 0 && ops->peak_insn && ops->peak_macs > 0,
		       "%s states a measured peak (%s)", ops->name, ops->peak_insn);
}

/* ---- the model ---- */

static const char *shared_dir(void)
{
	static char buf[1024];
	const char *env = getenv("PIPENET_SHARED");
	if (env && *env)
		return env;
	const char *top = getenv("top_srcdir");
	snprintf(buf, sizeof buf, "%s/../shared", top && *top ? top : ".");
	return buf;
}

static void *read_all(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *buf = n > 0 ? malloc((size_t)n) : NULL;
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*size = buf ? (size_t)n : 0;
	return buf;
}

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

/* Loads a damaged copy (header h, stolen; data from `file`) and expects a
 * refusal naming `needle`. */
static void expect_refused(const uint8_t *file, size_t len, json_t *h, const char *what,
			   const char *needle, const char *needle2)
{
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | file[i];
	char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t tl = strlen(text), data = len - 8 - (size_t)hlen;
	uint8_t *buf = malloc(8 + tl + data);
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)((uint64_t)tl >> (8 * i));
	memcpy(buf + 8, text, tl);
	memcpy(buf + 8 + tl, file + 8 + hlen, data);
	char err[512] = "";
	struct pn_model *m = pn_model_load_buffer("damaged.safetensors", buf, 8 + tl + data,
						  &pn_ops_scalar, err, sizeof err);
	int ok = !m && strstr(err, needle) && (!needle2 || strstr(err, needle2));
	tap_ok(ok, "%s: refused with \"%s\"", what, err);
	pn_model_free(m);
	free(buf);
	free(text);
	json_decref(h);
}

static json_t *header_of(const uint8_t *file)
{
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | file[i];
	return json_loadb((const char *)file + 8, (size_t)hlen, JSON_DECODE_ANY, NULL);
}

static void test_damage(const uint8_t *file, size_t len)
{
	char err[512] = "";
	struct pn_model *m = pn_model_load_buffer("cut.safetensors", file, len / 2, &pn_ops_scalar,
						  err, sizeof err);
	tap_ok(!m && strstr(err, "cut.safetensors: tensor "),
	       "truncated to half: refused with \"%s\"", err);
	pn_model_free(m);

	json_t *h = header_of(file);
	json_object_del(h, "features.5.conv.1.0.weight_scale");
	expect_refused(file, len, h, "scale tensor removed", "features.5.conv.1.0.weight_scale",
		       "missing");
	h = header_of(file);
	json_object_del(h, "features.9.out_zero_point");
	expect_refused(file, len, h, "residual zero point removed", "features.9.out_zero_point",
		       "missing");
	h = header_of(file);
	json_object_set_new(json_object_get(h, "pool.out_scale"), "dtype", json_string("I32"));
	expect_refused(file, len, h, "activation scale stored as I32", "pool.out_scale", "dtype");
	h = header_of(file);
	json_object_set_new(json_object_get(h, "__metadata__"), "rounding",
			    json_string("half-even"));
	expect_refused(file, len, h, "another rounding in the metadata", "rounding", NULL);

	/* A weight of -128 in the data, and a zero scale. */
	h = header_of(file);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | file[i];
	json_t *offs =
		json_object_get(json_object_get(h, "features.3.conv.0.0.weight"), "data_offsets");
	size_t at = 8 + (size_t)hlen + (size_t)json_integer_value(json_array_get(offs, 0)) + 5;
	uint8_t *copy = malloc(len);
	memcpy(copy, file, len);
	copy[at] = 0x80;
	expect_refused(copy, len, h, "a weight of -128", "features.3.conv.0.0.weight", "-128");
	h = header_of(file);
	offs = json_object_get(json_object_get(h, "features.7.conv.2.out_scale"), "data_offsets");
	at = 8 + (size_t)hlen + (size_t)json_integer_value(json_array_get(offs, 0));
	memcpy(copy, file, len);
	memset(copy + at, 0, 4);
	expect_refused(copy, len, h, "an output scale of 0", "features.7.conv.2.out_scale", NULL);
	free(copy);
}

/* The logits of the int8 model file image buf (`name`) for n random CIFAR-10
 * records (3072 bytes each) with the int8 table `qo`; NULL with err. */
static float *shipped_logits(const char *name, const uint8_t *buf, size_t len,
			     const struct pn_qops *qo, const uint8_t *rec, int n, char *err,
			     size_t errlen)
{
	struct pn_model *m =
		pn_model_load_buffer_qops(name, buf, len, &pn_ops_scalar, qo, err, errlen);
	struct pn_plan *p = m ? pn_plan_new(m, 0, pn_model_blocks(m), n, err, errlen) : NULL;
	float *out = NULL;
	if (p && strcmp(pn_model_isa(m), qo->name))
		snprintf(err, errlen, "the model runs on %s, not %s", pn_model_isa(m), qo->name);
	else if (p) {
		const size_t in_floats = pn_shape_floats(pn_plan_in_shape(p));
		const size_t out_floats = (size_t)n * pn_model_num_classes(m);
		for (int i = 0; i < n; i++)
			pn_model_preprocess(m, rec + (size_t)i * 3072,
					    pn_plan_input(p) + (size_t)i * in_floats);
		pn_plan_run(p, n);
		out = malloc(out_floats * sizeof *out);
		if (out)
			memcpy(out, pn_plan_output(p), out_floats * sizeof *out);
	}
	pn_plan_free(p);
	pn_model_free(m);
	return out;
}

/* The shipped int8 models on random images (no ../shared needed): every
 * variant's logits equal the scalar table's bit for bit, at the models'
 * real shapes (the 224 model: the stride-2 stem, the 112x112 layers).
 * Under emulation only the 32 model: the scalar 224 pass is too slow. */
static void test_shipped(const char *top, int emulated)
{
	static const char *const files[] = {"mobilenetv2_cifar10_32-int8.safetensors",
					    "mobilenetv2_cifar10-int8.safetensors"};
	static const int images[] = {4, 2};
	uint8_t rec[4 * 3072];
	for (size_t j = 0; j < sizeof rec; j++)
		rec[j] = (uint8_t)next32();
	for (int f = 0; f < (emulated ? 1 : 2); f++) {
		char path[4096], err[512] = "";
		size_t len = 0;
		snprintf(path, sizeof path, "%s/models/%s", top, files[f]);
		uint8_t *buf = read_all(path, &len);
		float *want = buf ? shipped_logits(files[f], buf, len, &pn_qops_scalar, rec,
						   images[f], err, sizeof err)
				  : NULL;
		if (!tap_ok(want != NULL, "%s: scalar logits of %d random images%s%s", files[f],
			    images[f], want ? "" : ": ",
			    want  ? ""
			    : buf ? err
				  : "cannot read it")) {
			free(buf);
			continue;
		}
		for (int v = 0; pn_qops_all[v]; v++) {
			const struct pn_qops *qo = pn_qops_all[v];
			if (qo == &pn_qops_scalar || !qo->available())
				continue;
			float *got = shipped_logits(files[f], buf, len, qo, rec, images[f], err,
						    sizeof err);
			tap_ok(got && !memcmp(got, want, (size_t)images[f] * 10 * sizeof *got),
			       "%s on %s: logits of %d random images == scalar bit for bit%s%s",
			       files[f], qo->name, images[f], got ? "" : ": ", got ? "" : err);
			free(got);
		}
		free(want);
		free(buf);
	}
}

static void test_model(const char *shared, const char *top)
{
	char path[1200], err[512];
	size_t csize, tsize;
	snprintf(path, sizeof path, "%s/data/cifar10/calib_batch.bin", shared);
	uint8_t *calib = read_all(path, &csize);
	snprintf(path, sizeof path, "%s/data/cifar10/test_batch.bin", shared);
	uint8_t *test = read_all(path, &tsize);
	if (!calib || !test || csize % RECORD || tsize != 10000 * RECORD) {
		tap_skip("no calib_batch.bin and test_batch.bin in ../shared/data/cifar10");
		free(calib);
		free(test);
		return;
	}
	const char *env = getenv("PIPENET_QUANT_SAMPLES");
	const char *stride_env = getenv("PIPENET_TEST_STRIDE");
	int stride = stride_env ? atoi(stride_env) : 1;
	stride = stride < 1 ? 1 : stride;
	int n = env ? atoi(env) : stride > 1 ? 16 : 100;
	if (n < 1 || (size_t)n > csize / RECORD)
		n = (int)(csize / RECORD);
	uint8_t *images = malloc((size_t)n * 3072);
	int *labels = malloc((size_t)n * sizeof *labels);
	for (int i = 0; i < n; i++) {
		labels[i] = calib[(size_t)i * RECORD];
		memcpy(images + (size_t)i * 3072, calib + (size_t)i * RECORD + 1, 3072);
	}
	char model[1200];
	snprintf(model, sizeof model, "%s/models/mobilenetv2_cifar10_32.safetensors", top);
	size_t len1 = 0, len2 = 0;
	uint8_t *f1 = pn_quantize(model, images, labels, n, "calib_batch.bin", NULL, &len1, err,
				  sizeof err);
	if (!tap_ok(f1 != NULL, "quantise the 32 model on %d calib_batch.bin images%s%s", n,
		    f1 ? "" : ": ", f1 ? "" : err))
		goto out;
	uint8_t *f2 = pn_quantize(model, images, labels, n, "calib_batch.bin", NULL, &len2, err,
				  sizeof err);
	tap_ok(f2 && len1 == len2 && memcmp(f1, f2, len1) == 0,
	       "quantising twice gives the same %zu bytes", len1);
	free(f2);

	struct pn_model *q = pn_model_load_buffer("q32", f1, len1, &pn_ops_scalar, err, sizeof err);
	if (!tap_ok(q && !strcmp(pn_model_dtype(q), "int8"),
		    "the int8 file loads as an int8 model%s%s", q ? "" : ": ", q ? "" : err))
		goto out;

	/* Splits: [0, s) then [s, 19) equals [0, 19) bit for bit. */
	const int nb = pn_model_blocks(q), images_n = 3;
	struct pn_plan *full = pn_plan_new(q, 0, nb, images_n, err, sizeof err);
	const size_t in_floats = pn_shape_floats(pn_plan_in_shape(full));
	const size_t out_bytes = (size_t)images_n * pn_model_num_classes(q) * sizeof(float);
	for (int i = 0; i < images_n; i++)
		pn_model_preprocess(q, test + (size_t)(i * 3331) * RECORD + 1,
				    pn_plan_input(full) + (size_t)i * in_floats);
	pn_plan_run(full, images_n);
	int bad = 0, inexact = 0, bad_i8 = 0;
	static const int splits[] = {1, 2, 4, 7, 9, 11, 14, 17, 18};
	for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
		int s = splits[k];
		struct pn_plan *a = pn_plan_new(q, 0, s, images_n, err, sizeof err);
		struct pn_plan *b = pn_plan_new(q, s, nb, images_n, err, sizeof err);
		memcpy(pn_plan_input(a), pn_plan_input(full), (size_t)images_n * in_floats * 4);
		pn_plan_run(a, images_n);
		/* What the i8 wire sends: the output quantised with the
		 * model's parameters at the cut, then dequantised. */
		float scale;
		int32_t zp;
		const float *ao = pn_plan_output(a);
		size_t na = (size_t)images_n * pn_shape_floats(pn_plan_out_shape(a));
		if (pn_model_act_quant(q, s, &scale, &zp) != 0)
			inexact++;
		else
			for (size_t i = 0; i < na; i++)
				inexact += pn_q_to_float(pn_q_from_float(ao[i], 1.0f / scale, zp),
							 scale, zp) != ao[i];
		memcpy(pn_plan_input(b), pn_plan_output(a),
		       (size_t)images_n * pn_shape_floats(pn_plan_out_shape(a)) * sizeof(float));
		pn_plan_run(b, images_n);
		if (memcmp(pn_plan_output(b), pn_plan_output(full), out_bytes) != 0) {
			tap_diag("split at %d differs from the whole model", s);
			bad++;
		}
		/* The same with the integers handed over (pn_plan_set_i8). */
		if (pn_plan_set_i8(a, 0, 1, err, sizeof err) != 0 ||
		    pn_plan_set_i8(b, 1, 0, err, sizeof err) != 0 || pn_plan_output_i8(b) ||
		    !pn_plan_output_i8(a) || !pn_plan_input_i8(b)) {
			bad_i8++;
		} else {
			pn_plan_run(a, images_n);
			memcpy(pn_plan_input_i8(b), pn_plan_output_i8(a), na);
			memset(pn_plan_input(b), 0, na * sizeof(float));
			pn_plan_run(b, images_n);
			for (size_t i = 0; i < na; i++)
				bad_i8 += pn_plan_output_i8(a)[i] !=
					  pn_q_from_float(ao[i], 1.0f / scale, zp);
			bad_i8 += memcmp(pn_plan_output(b), pn_plan_output(full), out_bytes) != 0;
		}
		pn_plan_free(a);
		pn_plan_free(b);
	}
	tap_ok(bad == 0, "int8 [0,s)+[s,%d) == [0,%d) bit for bit for s in 1,2,4,7,9,11,14,17,18",
	       nb, nb);
	float scale;
	int32_t zp;
	tap_ok(inexact == 0 && pn_model_act_quant(q, nb, &scale, &zp) < 0 &&
		       pn_model_act_quant(q, 0, &scale, &zp) == 0 && scale > 0,
	       "each cut's output quantises with pn_model_act_quant to integers that give it "
	       "back exactly (%d values differ); the logits have none",
	       inexact);
	tap_ok(bad_i8 == 0,
	       "with pn_plan_set_i8 the cuts hand over those integers and [0,s)+[s,%d) still "
	       "equals "
	       "[0,%d) (%d differ)",
	       nb, nb, bad_i8);
	pn_plan_free(full);

	/* Top-1 against the float model on test records 0, 20, 40, ... */
	const struct pn_ops *ops = pn_ops_select(err, sizeof err);
	struct pn_model *f = pn_model_load(model, ops ? ops : &pn_ops_scalar, err, sizeof err);
	struct pn_plan *pq = pn_plan_new(q, 0, nb, 8, err, sizeof err);
	struct pn_plan *pf = pn_plan_new(f, 0, nb, 8, err, sizeof err);
	int total = 0, agree = 0, cq = 0, cf = 0;
	const int step = 20 * stride;
	float *logits = malloc((size_t)(10000 / step + 8) * 10 * sizeof *logits);
	for (int r = 0; r < 10000; r += 8 * step) {
		int nbatch = 0, idx[8];
		for (; nbatch < 8 && r + nbatch * step < 10000; nbatch++) {
			idx[nbatch] = r + nbatch * step;
			const uint8_t *img = test + (size_t)idx[nbatch] * RECORD + 1;
			pn_model_preprocess(q, img, pn_plan_input(pq) + (size_t)nbatch * in_floats);
			pn_model_preprocess(f, img, pn_plan_input(pf) + (size_t)nbatch * in_floats);
		}
		pn_plan_run(pq, nbatch);
		pn_plan_run(pf, nbatch);
		memcpy(logits + (size_t)total * 10, pn_plan_output(pq),
		       (size_t)nbatch * 10 * sizeof *logits);
		for (int i = 0; i < nbatch; i++) {
			int tq = argmax(pn_plan_output(pq) + (size_t)i * 10, 10);
			int tf = argmax(pn_plan_output(pf) + (size_t)i * 10, 10);
			int label = test[(size_t)idx[i] * RECORD];
			agree += tq == tf;
			cq += tq == label;
			cf += tf == label;
			total++;
		}
	}
	tap_ok(agree >= total * 97 / 100,
	       "int8 top-1 agrees with float on %d of %d test records (>= 97 %%: %.2f %%)", agree,
	       total, 100.0 * agree / total);
	tap_ok(cq + total / 100 >= cf,
	       "int8 top-1 %.2f %% within 1 point of float %.2f %% on those records",
	       100.0 * cq / total, 100.0 * cf / total);
	tap_ok(pn_model_act_quant(f, 8, &scale, &zp) < 0 &&
		       pn_plan_set_i8(pf, 1, 1, err, sizeof err) < 0,
	       "a float model has no activation quantisation and no int8 plan ends");
	pn_plan_free(pq);
	pn_plan_free(pf);
	pn_model_free(f);
	pn_model_free(q);

	/* Every int8 variant gives the scalar table's logits bit for bit. */
	for (int v = 0; pn_qops_all[v]; v++) {
		const struct pn_qops *qo = pn_qops_all[v];
		if (qo == &pn_qops_scalar)
			continue;
		if (!qo->available()) {
			char why[128];
			snprintf(why, sizeof why, "%s int8 model: this CPU cannot run it",
				 qo->name);
			tap_skip(why);
			continue;
		}
		struct pn_model *qv = pn_model_load_buffer_qops("q32", f1, len1, &pn_ops_scalar, qo,
								err, sizeof err);
		struct pn_plan *pv = qv ? pn_plan_new(qv, 0, nb, 8, err, sizeof err) : NULL;
		int differ = 0, done = 0;
		for (int r = 0; pv && r < 10000; r += 8 * step) {
			int nbatch = 0;
			for (; nbatch < 8 && r + nbatch * step < 10000; nbatch++)
				pn_model_preprocess(qv,
						    test + (size_t)(r + nbatch * step) * RECORD + 1,
						    pn_plan_input(pv) + (size_t)nbatch * in_floats);
			pn_plan_run(pv, nbatch);
			differ += memcmp(pn_plan_output(pv), logits + (size_t)done * 10,
					 (size_t)nbatch * 10 * sizeof *logits) != 0;
			done += nbatch;
		}
		tap_ok(pv && done == total && differ == 0 && !strcmp(pn_model_isa(qv), qo->name),
		       "%s int8 model: logits of %d test records == scalar bit for bit (%d batches "
		       "differ, isa %s)%s%s",
		       qo->name, done, differ, qv ? pn_model_isa(qv) : "-", pv ? "" : ": ",
		       pv ? "" : err);
		pn_plan_free(pv);
		pn_model_free(qv);
	}
	free(logits);

	test_damage(f1, len1);
out:
	free(f1);
	free(images);
	free(labels);
	free(calib);
	free(test);
}

int main(void)
{
	const char *top = getenv("top_srcdir");
	test_math();
	test_kernels(&pn_qops_scalar);
	int listed = 0;
	for (int v = 0; pn_qops_all[v]; v++) {
		const struct pn_qops *ops = pn_qops_all[v];
		listed += ops == &pn_qops_scalar;
		if (ops == &pn_qops_scalar)
			continue;
		if (!ops->available()) {
			char why[128];
			snprintf(why, sizeof why, "%s int8 kernels: this CPU cannot run them",
				 ops->name);
			tap_skip(why);
			continue;
		}
		test_kernels(ops);
		test_variant(ops);
	}
	tap_ok(listed == 1 && pn_qops_select("scalar") == &pn_qops_scalar &&
		       pn_qops_select("no-such-isa") == &pn_qops_scalar,
	       "the scalar int8 table is listed once and chosen for PIPENET_ISA=scalar");
	const char *wrapper = getenv("PN_TEST_WRAPPER");
	const int emulated = wrapper && *wrapper;
	test_shipped(top && *top ? top : ".", emulated);
	if (emulated)
		tap_skip("int8 model checks on calib_batch.bin: skipped under emulation");
	else
		test_model(shared_dir(), top && *top ? top : ".");
	return tap_done();
}
