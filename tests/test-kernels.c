/* Every kernel table in pn_ops_all against the scalar reference, and the
 * scalar reference against a naive computation in double.
 *
 * Sums are compared with a tolerance relative to the sum of the absolute
 * values of their terms (the summation order and fused multiply-adds
 * differ between tables):
 *   |got - want| <= REL_TOL * (|bias| + sum |x * w| (+ |residual|)) + ABS_TOL
 * (the average pool's scale is the mean of |x|). The binary16 conversions
 * must match bit for bit (a NaN only has to stay a NaN). A table the CPU
 * cannot run is a TAP skip. PIPENET_TEST_QUICK=1 runs fewer shapes (for
 * emulators). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "ref.h"
#include "tap.h"

#define REL_TOL 1e-5
#define ABS_TOL 1e-6
#define GUARD 16 /* floats after each output, which must stay untouched */
#define CANARY (-12345.0f)
#define MAX_TABLES 8

static int quick;
static int ntables;
static const struct pn_ops *tables[MAX_TABLES];
static int scalar_index = -1;

static uint64_t rng = 0x853c49e6748fea9bull;

static uint32_t rnd32(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}

static float rndf(float lo, float hi)
{
	return lo + (hi - lo) * (float)(rnd32() >> 8) * (1.0f / 16777216.0f);
}

/* Uniform in [lo, hi]. */
static int rndi(int lo, int hi)
{
	return lo + (int)(rnd32() % (uint32_t)(hi - lo + 1));
}

static void *xmalloc(size_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);
	if (!p) {
		fprintf(stderr, "test-kernels: out of memory\n");
		exit(99);
	}
	return p;
}

/* n floats in [lo, hi], allocated exactly so ASan sees any overrun. */
static float *rnd_floats(size_t n, float lo, float hi)
{
	float *p = xmalloc(n * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = rndf(lo, hi);
	return p;
}

/* An output buffer of n floats plus GUARD canaries after it. */
static float *out_floats(size_t n)
{
	float *p = xmalloc((n + GUARD) * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = NAN;
	for (size_t i = n; i < n + GUARD; i++)
		p[i] = CANARY;
	return p;
}

/* One test family for one table: counts, the worst error / tolerance
 * and the first failure. */
struct check {
	long n, bad;
	double worst;
	char first[320];
};

enum family {
	F_PW_ODD,
	F_PW_RANDOM,
	F_PW_MODEL,
	F_PW_NAN,
	F_DW_SMALL,
	F_DW_MODEL,
	F_CONV,
	F_AVGPOOL,
	F_LINEAR,
	F_F16_TO_F32,
	F_F32_TO_F16,
	F_F16_TAILS,
	NFAMILIES
};

static const char *const family_names[NFAMILIES] = {
	[F_PW_ODD] = "pw, m 1..37 x odd k x n 1..67, relu6 and residual in turn",
	[F_PW_RANDOM] = "pw, random shapes and flags",
	[F_PW_MODEL] = "pw, MobileNetV2 shapes (m 53, with and without relu6/residual)",
	[F_PW_NAN] = "pw, NaN input stays NaN through ReLU6",
	[F_DW_SMALL] = "dw3x3, H and W 1..9, strides 1 and 2, odd c, whole and banded",
	[F_DW_MODEL] = "dw3x3, larger images, banded, two images in turn",
	[F_CONV] = "conv3x3, strides 1 and 2, cin 1..5, odd cout, banded rows",
	[F_AVGPOOL] = "avgpool",
	[F_LINEAR] = "linear",
	[F_F16_TO_F32] = "f16_to_f32, all 65536 halves, bit for bit",
	[F_F32_TO_F16] = "f32_to_f16, exact halves, ties, neighbours, specials, random bits",
	[F_F16_TAILS] = "f16 conversions, lengths 0..40 at offsets 0..3",
};

static struct check results[MAX_TABLES][NFAMILIES];
static char context[160]; /* the case being run, for failure messages */

static void set_context(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(context, sizeof context, fmt, ap);
	va_end(ap);
}

static void fail(struct check *ck, const char *fmt, ...)
{
	if (ck->bad++ == 0) {
		char what[128];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof what, fmt, ap);
		va_end(ap);
		snprintf(ck->first, sizeof ck->first, "%s: %s", context, what);
	}
}

/* A sum: got within tolerance of want, scale = sum of |terms|. */
static void check_sum(struct check *ck, double got, double want, double scale, long index)
{
	const double tol = REL_TOL * scale + ABS_TOL;
	const double err = fabs(got - want);
	ck->n++;
	if (!(err <= tol))
		fail(ck, "[%ld] got %.9g want %.9g (tolerance %.3g)", index, got, want, tol);
	else if (err / tol > ck->worst)
		ck->worst = err / tol;
}

static void check_guard(struct check *ck, const float *out, size_t n)
{
	for (size_t i = n; i < n + GUARD; i++)
		if (out[i] != CANARY) {
			fail(ck, "wrote past the end of the output, at %zu", i);
			return;
		}
}

static double relu6d(double x)
{
	return x < 0 ? 0 : x > 6 ? 6 : x;
}

/* ---- pointwise ---------------------------------------------------- */

struct pw_case {
	int m, k, n, relu6, residual;
	float *in, *w, *bias, *res;
	double *want, *scale; /* naive, in double */
	float *ref; /* the scalar table's result */
};

static void pw_naive(struct pw_case *c)
{
	for (int r = 0; r < c->m; r++)
		for (int j = 0; j < c->n; j++) {
			double s = c->bias[j], a = fabs(c->bias[j]);
			for (int i = 0; i < c->k; i++) {
				double t = (double)c->in[(size_t)r * c->k + i] *
					   c->w[(size_t)j * c->k + i];
				s += t;
				a += fabs(t);
			}
			if (c->relu6)
				s = relu6d(s);
			if (c->res) {
				s += c->res[(size_t)r * c->n + j];
				a += fabs(c->res[(size_t)r * c->n + j]);
			}
			c->want[(size_t)r * c->n + j] = s;
			c->scale[(size_t)r * c->n + j] = a;
		}
}

/* Runs table t on the case and checks it: the scalar table against the
 * naive sums, the others against the scalar table's output. */
static void pw_run(int t, struct pw_case *c, enum family fam)
{
	const struct pn_ops *ops = tables[t];
	const size_t mn = (size_t)c->m * c->n;
	float *packed = xmalloc(ops->pw_packed_floats(c->k, c->n) * sizeof *packed);
	float *out = out_floats(mn);
	ops->pw_pack(c->w, c->bias, c->k, c->n, packed);
	ops->pw(c->in, out, packed, c->res, c->m, c->k, c->n, c->relu6);
	struct check *ck = &results[t][fam];
	for (size_t i = 0; i < mn; i++)
		check_sum(ck, out[i], t == scalar_index ? c->want[i] : c->ref[i], c->scale[i],
			  (long)i);
	check_guard(ck, out, mn);
	if (t == scalar_index)
		memcpy(c->ref, out, mn * sizeof *out);
	free(packed);
	free(out);
}

static void pw_case(int m, int k, int n, int relu6, int residual, enum family fam)
{
	struct pw_case c = {.m = m, .k = k, .n = n, .relu6 = relu6, .residual = residual};
	const size_t mn = (size_t)m * n;
	c.in = rnd_floats((size_t)m * k, -1, 1);
	c.w = rnd_floats((size_t)n * k, -1, 1);
	c.bias = rnd_floats((size_t)n, -1, 1);
	c.res = residual ? rnd_floats(mn, -2, 2) : NULL;
	c.want = xmalloc(mn * sizeof *c.want);
	c.scale = xmalloc(mn * sizeof *c.scale);
	c.ref = xmalloc(mn * sizeof *c.ref);
	pw_naive(&c);
	set_context("m %d k %d n %d relu6 %d residual %d", m, k, n, relu6, residual);
	pw_run(scalar_index, &c, fam);
	for (int t = 0; t < ntables; t++)
		if (t != scalar_index)
			pw_run(t, &c, fam);
	free(c.in);
	free(c.w);
	free(c.bias);
	free(c.res);
	free(c.want);
	free(c.scale);
	free(c.ref);
}

static void test_pw(void)
{
	static const int ns[] = {1,  2,	 3,  5,	 7,  8,	 9,  15, 16, 17, 23, 24,
				 25, 31, 32, 33, 40, 47, 48, 49, 63, 64, 65, 67};
	static const int ks[] = {1, 3, 17, 33};
	int flags = 0;
	for (int m = 1; m <= 37; m++) {
		if (quick && m > 16 && m != 28 && m != 29 && m != 37)
			continue;
		for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
			for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++, flags++)
				pw_case(m, ks[ki], ns[ni], flags & 1, (flags >> 1) & 1, F_PW_ODD);
	}

	for (int i = 0; i < (quick ? 60 : 300); i++)
		pw_case(rndi(1, 60), rndi(1, 80), rndi(1, 140), rndi(0, 1), rndi(0, 1),
			F_PW_RANDOM);
	/* more rows than one micro-tile, remainders of 14 and 6 */
	pw_case(200, 16, 96, 1, 0, F_PW_RANDOM);
	pw_case(173, 24, 144, 0, 1, F_PW_RANDOM);
	pw_case(129, 7, 33, 1, 1, F_PW_RANDOM);

	static const struct {
		int k, n;
	} model[] = {
		{16, 96},  {24, 144},  {32, 192},  {64, 384},  {96, 576},   {160, 960}, {32, 16},
		{96, 24},  {144, 24},  {144, 32},  {192, 32},  {192, 64},   {384, 64},	{384, 96},
		{576, 96}, {576, 160}, {960, 160}, {960, 320}, {320, 1280}, {1280, 10},
	};
	for (size_t i = 0; i < sizeof model / sizeof model[0]; i++) {
		pw_case(quick ? 9 : 53, model[i].k, model[i].n, 1, 0, F_PW_MODEL);
		if (!quick)
			pw_case(53, model[i].k, model[i].n, 0, 1, F_PW_MODEL);
	}

	/* pn_relu6 keeps a NaN; so must every table */
	const int m = 3, k = 5, n = 37;
	float *in = rnd_floats((size_t)m * k, -1, 1), *w = rnd_floats((size_t)n * k, -1, 1);
	float *bias = rnd_floats(n, -1, 1);
	in[k + 2] = NAN; /* row 1 */
	set_context("NaN in row 1 of m %d k %d n %d", m, k, n);
	for (int t = 0; t < ntables; t++) {
		const struct pn_ops *ops = tables[t];
		float *packed = xmalloc(ops->pw_packed_floats(k, n) * sizeof *packed);
		float *out = out_floats((size_t)m * n);
		ops->pw_pack(w, bias, k, n, packed);
		ops->pw(in, out, packed, NULL, m, k, n, 1);
		for (int r = 0; r < m; r++)
			for (int j = 0; j < n; j++) {
				const float v = out[r * n + j];
				results[t][F_PW_NAN].n++;
				if ((r == 1) != isnan(v) || (r != 1 && (v < 0 || v > 6)))
					fail(&results[t][F_PW_NAN], "[%d][%d] = %g", r, j, v);
			}
		check_guard(&results[t][F_PW_NAN], out, (size_t)m * n);
		free(packed);
		free(out);
	}
	free(in);
	free(w);
	free(bias);
}

/* ---- depthwise ---------------------------------------------------- */

static void dw_naive(const float *in, int h, int w, int c, int s, const float *wt,
		     const float *bias, double *want, double *scale)
{
	const int oh = (h - 1) / s + 1, ow = (w - 1) / s + 1;
	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++)
			for (int ch = 0; ch < c; ch++) {
				double sum = bias[ch], a = fabs(bias[ch]);
				for (int ky = 0; ky < 3; ky++)
					for (int kx = 0; kx < 3; kx++) {
						const int iy = oy * s - 1 + ky,
							  ix = ox * s - 1 + kx;
						if (iy < 0 || iy >= h || ix < 0 || ix >= w)
							continue;
						const double t =
							(double)in[((size_t)iy * w + ix) * c + ch] *
							wt[(ky * 3 + kx) * c + ch];
						sum += t;
						a += fabs(t);
					}
				const size_t o = ((size_t)oy * ow + ox) * c + ch;
				want[o] = relu6d(sum);
				scale[o] = a;
			}
}

/* Output rows [y0, y1) by table t, from a buffer holding only the input
 * rows they need; compared with rows y0.. of ref (or of want for the
 * scalar table). */
static void dw_band(int t, const float *img, int h, int w, int c, int s, const float *wt,
		    const float *bias, int y0, int y1, const double *want, const double *scale,
		    const float *ref, enum family fam)
{
	const int ow = (w - 1) / s + 1;
	const int lo = y0 * s - 1 < 0 ? 0 : y0 * s - 1;
	const int hi = (y1 - 1) * s + 2 > h ? h : (y1 - 1) * s + 2;
	const size_t row = (size_t)w * c, orow = (size_t)ow * c;
	float *band = xmalloc((size_t)(hi - lo) * row * sizeof *band);
	memcpy(band, img + (size_t)lo * row, (size_t)(hi - lo) * row * sizeof *band);
	const size_t nout = (size_t)(y1 - y0) * orow;
	float *out = out_floats(nout);
	const struct pn_dw_args a = {band, lo, h, w, out, y0, y1, ow, c, s, wt, bias};
	tables[t]->dw3x3(&a);
	struct check *ck = &results[t][fam];
	const size_t off = (size_t)y0 * orow;
	for (size_t i = 0; i < nout; i++)
		check_sum(ck, out[i], t == scalar_index ? want[off + i] : ref[off + i],
			  scale[off + i], (long)(off + i));
	check_guard(ck, out, nout);
	free(band);
	free(out);
}

static void dw_case(int h, int w, int c, int s, int images, enum family fam)
{
	const int oh = (h - 1) / s + 1, ow = (w - 1) / s + 1;
	const size_t nout = (size_t)oh * ow * c;
	float *wt = rnd_floats((size_t)9 * c, -1, 1), *bias = rnd_floats(c, -1, 1);
	double *want = xmalloc(nout * sizeof *want), *scale = xmalloc(nout * sizeof *scale);
	float *ref = out_floats(nout);
	for (int img = 0; img < images; img++) {
		float *in = rnd_floats((size_t)h * w * c, -2, 2);
		dw_naive(in, h, w, c, s, wt, bias, want, scale);
		set_context("h %d w %d c %d stride %d image %d, whole", h, w, c, s, img);
		dw_band(scalar_index, in, h, w, c, s, wt, bias, 0, oh, want, scale, NULL, fam);
		const struct pn_dw_args a = {in, 0, h, w, ref, 0, oh, ow, c, s, wt, bias};
		pn_ops_scalar.dw3x3(&a);
		/* the whole image, then bands of random heights */
		for (int t = 0; t < ntables; t++)
			if (t != scalar_index)
				dw_band(t, in, h, w, c, s, wt, bias, 0, oh, want, scale, ref, fam);
		for (int y0 = 0; y0 < oh;) {
			const int y1 = y0 + rndi(1, oh - y0 < 3 ? oh - y0 : 3);
			set_context("h %d w %d c %d stride %d image %d, rows %d..%d", h, w, c, s,
				    img, y0, y1);
			for (int t = 0; t < ntables; t++)
				dw_band(t, in, h, w, c, s, wt, bias, y0, y1, want, scale, ref, fam);
			y0 = y1;
		}
		free(in);
	}
	free(wt);
	free(bias);
	free(want);
	free(scale);
	free(ref);
}

static void test_dw(void)
{
	static const int cs[] = {1, 3, 5, 8, 15, 16, 17, 24, 33};
	int i = 0;
	for (int h = 1; h <= 9; h++)
		for (int w = 1; w <= 9; w++)
			for (int s = 1; s <= 2; s++, i++)
				if (!quick || i % 3 == 0)
					dw_case(h, w, cs[i % 9], s, 1, F_DW_SMALL);
	static const int big[][4] = {
		{28, 28, 33, 1}, {29, 31, 17, 2}, {14, 14, 96, 1}, {15, 15, 144, 2},
		{7, 7, 160, 1},	 {8, 7, 40, 2},	  {56, 56, 24, 1}, {112, 112, 16, 2},
	};
	for (size_t b = 0; b < sizeof big / sizeof big[0]; b++)
		if (!quick || big[b][0] * big[b][1] * big[b][2] < 20000)
			dw_case(big[b][0], big[b][1], big[b][2], big[b][3], 2, F_DW_MODEL);
}

/* ---- conv3x3 ------------------------------------------------------ */

static void test_conv_case(int h, int w, int cin, int cout, int s, int relu6)
{
	const int oh = (h - 1) / s + 1, ow = (w - 1) / s + 1;
	const size_t nout = (size_t)oh * ow * cout;
	float *in = rnd_floats((size_t)h * w * cin, -1, 1);
	float *wt = rnd_floats((size_t)9 * cin * cout, -1, 1), *bias = rnd_floats(cout, -1, 1);
	double *want = xmalloc(nout * sizeof *want), *scale = xmalloc(nout * sizeof *scale);
	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++)
			for (int co = 0; co < cout; co++) {
				double sum = bias[co], a = fabs(bias[co]);
				for (int ky = 0; ky < 3; ky++)
					for (int kx = 0; kx < 3; kx++) {
						const int iy = oy * s - 1 + ky,
							  ix = ox * s - 1 + kx;
						if (iy < 0 || iy >= h || ix < 0 || ix >= w)
							continue;
						for (int ci = 0; ci < cin; ci++) {
							const double t =
								(double)in[((size_t)iy * w + ix) *
										   cin +
									   ci] *
								wt[((size_t)(ky * 3 + kx) * cin +
								    ci) * cout +
								   co];
							sum += t;
							a += fabs(t);
						}
					}
				const size_t o = ((size_t)oy * ow + ox) * cout + co;
				want[o] = relu6 ? relu6d(sum) : sum;
				scale[o] = a;
			}
	float *ref = out_floats(nout);
	const struct pn_conv_args whole = {in, h, w, cin, ref, 0, oh, ow, cout, s, relu6, wt, bias};
	pn_ops_scalar.conv3x3(&whole);
	/* the whole image, then bands of random heights */
	for (int pass = 0, y0 = 0, y1 = oh; pass < 2; y0 = y1) {
		if (y0 == oh) {
			pass++, y0 = 0; /* then bands */
			if (pass == 2)
				break;
		}
		if (pass == 1)
			y1 = y0 + rndi(1, oh - y0 < 3 ? oh - y0 : 3);
		set_context("h %d w %d cin %d cout %d stride %d relu6 %d, rows %d..%d", h, w, cin,
			    cout, s, relu6, y0, y1);
		const size_t off = (size_t)y0 * ow * cout, n = (size_t)(y1 - y0) * ow * cout;
		for (int t = 0; t < ntables; t++) {
			float *out = out_floats(n);
			const struct pn_conv_args a = {in, h,	 w, cin,   out, y0,  y1,
						       ow, cout, s, relu6, wt,	bias};
			tables[t]->conv3x3(&a);
			struct check *ck = &results[t][F_CONV];
			for (size_t i = 0; i < n; i++)
				check_sum(ck, out[i],
					  t == scalar_index ? want[off + i] : ref[off + i],
					  scale[off + i], (long)(off + i));
			check_guard(ck, out, n);
			free(out);
		}
	}
	free(in);
	free(wt);
	free(bias);
	free(want);
	free(scale);
	free(ref);
}

static void test_conv(void)
{
	static const int couts[] = {1, 3, 8, 16, 17, 31, 32, 33, 40, 64};
	int i = 0;
	for (int h = 1; h <= 9; h += 2)
		for (int w = 1; w <= 9; w++, i++)
			for (int s = 1; s <= 2; s++)
				if (!quick || i % 3 == 0)
					test_conv_case(h, w, 1 + i % 5, couts[i % 10], s,
						       (i + s) & 1);
	test_conv_case(32, 32, 3, 32, 1, 1);
	test_conv_case(33, 31, 3, 32, 2, 1);
	if (!quick)
		test_conv_case(224, 224, 3, 32, 2, 1);
}

/* ---- head --------------------------------------------------------- */

static void test_head(void)
{
	static const int pools[][2] = {{1, 1},	{1, 17},    {4, 7},    {9, 16},
				       {3, 33}, {49, 1280}, {50, 1283}};
	for (size_t p = 0; p < sizeof pools / sizeof pools[0]; p++) {
		const int hw = pools[p][0], c = pools[p][1];
		float *in = rnd_floats((size_t)hw * c, -1, 6);
		float *ref = out_floats(c);
		set_context("avgpool hw %d c %d", hw, c);
		pn_ops_scalar.avgpool(in, ref, hw, c);
		double *want = xmalloc(c * sizeof *want), *scale = xmalloc(c * sizeof *scale);
		for (int ch = 0; ch < c; ch++) {
			double sum = 0, a = 0;
			for (int i = 0; i < hw; i++) {
				sum += in[(size_t)i * c + ch];
				a += fabs(in[(size_t)i * c + ch]);
			}
			want[ch] = sum / hw;
			scale[ch] = a / hw;
		}
		for (int t = 0; t < ntables; t++) {
			float *out = out_floats(c);
			tables[t]->avgpool(in, out, hw, c);
			struct check *ck = &results[t][F_AVGPOOL];
			for (int ch = 0; ch < c; ch++)
				check_sum(ck, out[ch], t == scalar_index ? want[ch] : ref[ch],
					  scale[ch], ch);
			check_guard(ck, out, c);
			free(out);
		}
		free(want);
		free(scale);
		free(in);
		free(ref);
	}

	static const int lins[][2] = {{1, 1},	{7, 3},	    {16, 10},  {17, 10},
				      {100, 5}, {1280, 10}, {1283, 17}};
	for (size_t l = 0; l < sizeof lins / sizeof lins[0]; l++) {
		const int k = lins[l][0], classes = lins[l][1];
		float *in = rnd_floats(k, 0, 6), *w = rnd_floats((size_t)k * classes, -1, 1);
		float *bias = rnd_floats(classes, -1, 1);
		double *want = xmalloc(classes * sizeof *want),
		       *scale = xmalloc(classes * sizeof *scale);
		for (int j = 0; j < classes; j++) {
			double s = bias[j], a = fabs(bias[j]);
			for (int i = 0; i < k; i++) {
				const double t = (double)in[i] * w[(size_t)j * k + i];
				s += t;
				a += fabs(t);
			}
			want[j] = s;
			scale[j] = a;
		}
		float *ref = out_floats(classes);
		pn_ops_scalar.linear(in, ref, w, bias, k, classes);
		set_context("linear k %d classes %d", k, classes);
		for (int t = 0; t < ntables; t++) {
			float *out = out_floats(classes);
			tables[t]->linear(in, out, w, bias, k, classes);
			for (int j = 0; j < classes; j++)
				check_sum(&results[t][F_LINEAR], out[j],
					  t == scalar_index ? want[j] : ref[j], scale[j], j);
			check_guard(&results[t][F_LINEAR], out, classes);
			free(out);
		}
		free(in);
		free(w);
		free(bias);
		free(want);
		free(scale);
		free(ref);
	}
}

/* ---- binary16 ----------------------------------------------------- */

static float bits_float(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static uint32_t float_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

/* The value of a half, decoded independently of the kernels. */
static double half_value(uint16_t h)
{
	const int e = (h >> 10) & 31, m = h & 1023;
	double v = e == 0    ? ldexp(m, -24)
		   : e == 31 ? (m ? NAN : INFINITY)
			     : ldexp(1024 + m, e - 25);
	return h & 0x8000 ? -v : v;
}

/* The half nearest to x, ties to even, as a value (infinite past 65520). */
static double nearest_half(float x)
{
	const double ax = fabs((double)x);
	double v;
	if (ax >= 65520.0) {
		v = INFINITY;
	} else {
		const double q = ax < 0x1p-14 ? 0x1p-24 : ldexp(1.0, ilogb(ax) - 10);
		v = nearbyint(ax / q) * q; /* ax / q is exact; nearbyint ties to even */
	}
	return signbit(x) ? -v : v;
}

static int same_float(float a, float b)
{
	return (isnan(a) && isnan(b)) || float_bits(a) == float_bits(b);
}

static int half_is_nan(uint16_t h)
{
	return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

static int same_half(uint16_t a, uint16_t b)
{
	return (half_is_nan(a) && half_is_nan(b)) || a == b;
}

static void test_f16(void)
{
	/* halves -> floats, all of them */
	uint16_t *halves = xmalloc(65536 * sizeof *halves);
	float *ref = xmalloc(65536 * sizeof *ref);
	for (uint32_t i = 0; i < 65536; i++)
		halves[i] = (uint16_t)i;
	pn_ops_scalar.f16_to_f32(halves, ref, 65536);
	set_context("f16_to_f32");
	for (uint32_t i = 0; i < 65536; i++) {
		if (scalar_index < 0)
			break;
		struct check *ck = &results[scalar_index][F_F16_TO_F32];
		const double v = half_value((uint16_t)i);
		ck->n++;
		if (isnan(v) ? !isnan(ref[i])
			     : (double)ref[i] != v || !signbit(ref[i]) != !signbit(v))
			fail(ck, "0x%04x -> %.9g, want %.9g", i, ref[i], v);
	}
	for (int t = 0; t < ntables; t++) {
		if (t == scalar_index)
			continue;
		float *out = out_floats(65536);
		tables[t]->f16_to_f32(halves, out, 65536);
		struct check *ck = &results[t][F_F16_TO_F32];
		for (uint32_t i = 0; i < 65536; i++) {
			ck->n++;
			if (!same_float(out[i], ref[i]))
				fail(ck, "0x%04x -> 0x%08x, want 0x%08x", i, float_bits(out[i]),
				     float_bits(ref[i]));
		}
		check_guard(ck, out, 65536);
		free(out);
	}

	/* floats -> halves */
	const size_t nrand = quick ? (size_t)1 << 14 : (size_t)1 << 20;
	float *in = xmalloc((65536 * 5 + 64 + nrand) * sizeof *in);
	size_t n = 0;
	for (uint32_t i = 0; i < 65536; i++) {
		const double v = half_value((uint16_t)i);
		if (isnan(v))
			continue;
		in[n++] = (float)v;
		/* the tie with the next half up in magnitude, and its neighbours */
		if ((i & 0x7fff) < 0x7bff) {
			const float mid = (float)((v + half_value((uint16_t)(i + 1))) / 2);
			in[n++] = mid;
			in[n++] = nextafterf(mid, 0.0f);
			in[n++] = nextafterf(mid, signbit(v) ? -INFINITY : INFINITY);
		}
	}
	static const uint32_t specials[] = {
		0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0x7f802000, 0x7fa00000,
		0x7f800000, 0xff800000, 0x00000001, 0x80000001, 0x007fffff, 0x00800000, 0x7f7fffff,
		0xff7fffff, 0x33000000, 0x33000001, 0x32ffffff, 0x33400000, 0xb3400000, 0x33800000,
		0x387fc000, 0x387fe000, 0x38800000, 0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001,
		0x47800000, 0xc77ff000, 0x00000000, 0x80000000, 0x3f800000, 0x3f801000, 0x3f803000,
	};
	for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
		in[n++] = bits_float(specials[i]);
	for (size_t i = 0; i < nrand; i++)
		in[n++] = bits_float(rnd32());

	uint16_t *href = xmalloc(n * sizeof *href);
	pn_ops_scalar.f32_to_f16(in, href, n);
	set_context("f32_to_f16");
	for (size_t i = 0; i < n && scalar_index >= 0; i++) {
		struct check *ck = &results[scalar_index][F_F32_TO_F16];
		ck->n++;
		if (isnan(in[i])) {
			if (!half_is_nan(href[i]))
				fail(ck, "0x%08x -> 0x%04x, want a NaN", float_bits(in[i]),
				     href[i]);
			continue;
		}
		const double want = nearest_half(in[i]), got = half_value(href[i]);
		if (got != want || !signbit(got) != !signbit(want))
			fail(ck, "0x%08x -> 0x%04x (%.9g), want %.9g", float_bits(in[i]), href[i],
			     got, want);
	}
	for (int t = 0; t < ntables; t++) {
		if (t == scalar_index)
			continue;
		uint16_t *out = xmalloc((n + GUARD) * sizeof *out);
		for (size_t i = n; i < n + GUARD; i++)
			out[i] = 0xdead;
		tables[t]->f32_to_f16(in, out, n);
		struct check *ck = &results[t][F_F32_TO_F16];
		for (size_t i = 0; i < n; i++) {
			ck->n++;
			if (!same_half(out[i], href[i]))
				fail(ck, "0x%08x -> 0x%04x, want 0x%04x", float_bits(in[i]), out[i],
				     href[i]);
		}
		for (size_t i = n; i < n + GUARD; i++)
			if (out[i] != 0xdead)
				fail(ck, "wrote past the end, at %zu", i);
		free(out);
	}

	/* short lengths at unaligned starts: the tails */
	for (int t = 0; t < ntables; t++) {
		struct check *ck = &results[t][F_F16_TAILS];
		for (size_t len = 0; len <= 40; len++)
			for (size_t off = 0; off < 4; off++) {
				uint16_t h[48], hwant[48];
				float f[48];
				set_context("length %zu offset %zu", len, off);
				for (size_t i = 0; i < 48; i++) {
					h[i] = hwant[i] = 0xdead;
					f[i] = CANARY;
				}
				tables[t]->f32_to_f16(in + 1000 + off, h + off, len);
				pn_ops_scalar.f32_to_f16(in + 1000 + off, hwant + off, len);
				tables[t]->f16_to_f32(halves + 0x3c00 + off, f + off, len);
				ck->n++;
				for (size_t i = 0; i < 48; i++) {
					const int inside = i >= off && i < off + len;
					if (!same_half(h[i], hwant[i]))
						fail(ck, "f32_to_f16 [%zu] = 0x%04x", i, h[i]);
					if (!same_float(f[i], inside ? ref[0x3c00 + i] : CANARY))
						fail(ck, "f16_to_f32 [%zu] = %g", i, f[i]);
				}
			}
	}
	free(halves);
	free(ref);
	free(in);
	free(href);
}

/* ---- the reference, vectorised: the same bits -------------------- */

/* Random floats with the awkward ones mixed in: subnormals, zeros of both
 * signs, large values whose products overflow, NaN. */
static float *awkward_floats(size_t n)
{
	static const float odd[] = {1e-40f, -1e-41f, 0.0f, -0.0f, 3e38f, -3e38f, NAN, 1e-30f};
	float *v = rnd_floats(n, -2, 2);
	for (size_t i = 0; i < n; i++)
		if (rndi(0, 15) == 0)
			v[i] = odd[rndi(0, 7)];
	return v;
}

/* Bit for bit, except that any NaN equals any NaN: which NaN an x86 sum of
 * two NaNs gives depends on the operands' order, which the vectoriser may
 * swap; a NaN is a NaN to every later step (and calibration, which relies
 * on the rest to write the same int8 file on every machine, never sees one
 * from a sound model). */
static int same_bits(const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(&a[i], &b[i], sizeof *a) != 0 && !(isnan(a[i]) && isnan(b[i])))
			return 0;
	return 1;
}

/* pn_ref_vec_select()'s pointwise, depthwise and stem equal the reference. */
static void test_ref_vec(void)
{
	const struct pn_ref_vec *v = pn_ref_vec_select();
	long pw_cases = 0, pw_bad = 0, dw_cases = 0, dw_bad = 0;
	char first[160] = "";
	for (int i = 0; i < (quick ? 60 : 300); i++, pw_cases++) {
		int m = rndi(1, 60), k = rndi(1, 80), n = rndi(1, 140), relu6 = rndi(0, 1);
		const size_t mn = (size_t)m * n;
		float *in = awkward_floats((size_t)m * k), *w = awkward_floats((size_t)n * k);
		float *bias = awkward_floats((size_t)n),
		      *res = rndi(0, 1) ? awkward_floats(mn) : NULL;
		float *packed = xmalloc(pn_pw_packed_floats_ref(k, n) * sizeof *packed);
		float *want = out_floats(mn), *got = out_floats(mn);
		pn_pw_pack_ref(w, bias, k, n, packed);
		pn_pw_ref(in, want, packed, res, m, k, n, relu6);
		v->pw(in, got, packed, res, m, k, n, relu6);
		if (!same_bits(want, got, mn + GUARD) && pw_bad++ == 0)
			snprintf(first, sizeof first, "pw m %d k %d n %d relu6 %d residual %d", m,
				 k, n, relu6, res != NULL);
		free(in), free(w), free(bias), free(res), free(packed), free(want), free(got);
	}
	tap_ok(pw_bad == 0,
	       "the reference's pointwise as %s: bit for bit (NaN as NaN) in %ld random cases%s%s",
	       v->name, pw_cases, pw_bad ? "; first failure " : "", pw_bad ? first : "");
	for (int i = 0; i < (quick ? 30 : 120); i++, dw_cases++) {
		int h = rndi(1, 30), w = rndi(1, 30), c = rndi(1, 70), st = rndi(1, 2);
		int oh = (h - 1) / st + 1, ow = (w - 1) / st + 1, y0 = rndi(0, oh - 1);
		int y1 = rndi(y0 + 1, oh);
		const size_t nout = (size_t)(y1 - y0) * ow * c;
		float *in = awkward_floats((size_t)h * w * c), *wt = awkward_floats((size_t)9 * c);
		float *bias = awkward_floats((size_t)c);
		float *want = out_floats(nout), *got = out_floats(nout);
		struct pn_dw_args a = {in, 0, h, w, want, y0, y1, ow, c, st, wt, bias};
		pn_dw3x3_ref(&a);
		a.out = got;
		v->dw3x3(&a);
		if (!same_bits(want, got, nout + GUARD) && dw_bad++ == 0)
			snprintf(first, sizeof first, "dw h %d w %d c %d stride %d rows %d..%d", h,
				 w, c, st, y0, y1);
		free(in), free(wt), free(bias), free(want), free(got);
	}
	tap_ok(dw_bad == 0,
	       "the reference's depthwise as %s: bit for bit (NaN as NaN) in %ld random cases%s%s",
	       v->name, dw_cases, dw_bad ? "; first failure " : "", dw_bad ? first : "");
	long cv_cases = 0, cv_bad = 0;
	for (int i = 0; i < (quick ? 20 : 80); i++, cv_cases++) {
		int h = rndi(1, 24), w = rndi(1, 24), cin = rndi(1, 4), cout = rndi(1, 40);
		int st = rndi(1, 2), relu6 = rndi(0, 1);
		int oh = (h - 1) / st + 1, ow = (w - 1) / st + 1, y0 = rndi(0, oh - 1);
		int y1 = rndi(y0 + 1, oh);
		const size_t nout = (size_t)(y1 - y0) * ow * cout;
		float *in = awkward_floats((size_t)h * w * cin);
		float *wt = awkward_floats((size_t)9 * cin * cout), *bias = awkward_floats(cout);
		float *want = out_floats(nout), *got = out_floats(nout);
		struct pn_conv_args a = {in, h,	   w,  cin,   want, y0,	 y1,
					 ow, cout, st, relu6, wt,   bias};
		pn_conv3x3_ref(&a);
		a.out = got;
		v->conv3x3(&a);
		if (!same_bits(want, got, nout + GUARD) && cv_bad++ == 0)
			snprintf(first, sizeof first,
				 "conv h %d w %d cin %d cout %d stride %d relu6 %d rows %d..%d", h,
				 w, cin, cout, st, relu6, y0, y1);
		free(in), free(wt), free(bias), free(want), free(got);
	}
	tap_ok(cv_bad == 0,
	       "the reference's stem convolution as %s: bit for bit (NaN as NaN) in %ld random "
	       "cases%s%s",
	       v->name, cv_cases, cv_bad ? "; first failure " : "", cv_bad ? first : "");
}

int main(void)
{
	const char *q = getenv("PIPENET_TEST_QUICK");
	quick = q && *q && strcmp(q, "0") != 0;
	for (int i = 0; pn_ops_all[i]; i++) {
		if (!pn_ops_all[i]->available()) {
			char why[96];
			snprintf(why, sizeof why, "kernel table %s: this CPU cannot run it",
				 pn_ops_all[i]->name);
			tap_skip(why);
			continue;
		}
		if (ntables == MAX_TABLES)
			break;
		if (pn_ops_all[i] == &pn_ops_scalar)
			scalar_index = ntables;
		tables[ntables++] = pn_ops_all[i];
	}
	if (!tap_ok(scalar_index >= 0, "the scalar table is listed in pn_ops_all and available"))
		return tap_done();
	tap_diag("tolerance for sums: |got - want| <= %g * sum|terms| + %g%s", REL_TOL, ABS_TOL,
		 quick ? " (quick run)" : "");

	test_pw();
	test_dw();
	test_conv();
	test_head();
	test_f16();
	test_ref_vec();

	for (int t = 0; t < ntables; t++)
		for (int f = 0; f < NFAMILIES; f++) {
			const struct check *ck = &results[t][f];
			const char *against = t == scalar_index ? "a naive computation in double"
								: "the scalar table";
			tap_ok(ck->n > 0 && ck->bad == 0,
			       "%s against %s: %s (%ld values, worst error %.2g of tolerance)",
			       tables[t]->name, against, family_names[f], ck->n, ck->worst);
			if (ck->bad)
				tap_diag("%ld failed; first: %s", ck->bad, ck->first);
		}
	return tap_done();
}
