/* A micro-benchmark of the kernel tables: GFLOP/s of the pointwise GEMM
 * on MobileNetV2's shapes, and time of the depthwise, stem and head
 * kernels, for the float tables and then the int8 ones (GOP/s, 2 per MAC,
 * requantisation included). Not a test: it checks nothing and is built on
 * request.
 *
 *   tests/bench-kernels [TABLE...]   (default: every available table but
 *                                     scalar; "all" adds scalar; int8
 *                                     tables by their names too)
 * PIPENET_BENCH_SECONDS sets the time spent per case (default 0.15). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __x86_64__
#include <immintrin.h>
#endif

#include "ops.h"
#include "qops.h"

static double bench_seconds = 0.15;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *random_floats(size_t n, float lo, float hi)
{
	float *p = malloc(n * sizeof *p);
	if (!p) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		p[i] = lo + (hi - lo) * (float)rand() / (float)RAND_MAX;
	return p;
}

/* Seconds per call of fn(ctx): the best batch of calls (each batch
 * lasting about 50 us or one call) over about bench_seconds, so that time
 * slices lost to other processes on a shared machine count little. */
static double time_per_call(void (*fn)(void *), void *ctx)
{
	fn(ctx);
	double t0 = now();
	fn(ctx);
	double one = now() - t0;
	int reps = one > 50e-6 ? 1 : (int)(50e-6 / (one + 1e-9)) + 1;
	double best = 1e30, start = now();
	do {
		double t = now();
		for (int r = 0; r < reps; r++)
			fn(ctx);
		t = (now() - t) / reps;
		if (t < best)
			best = t;
	} while (now() - start < bench_seconds);
	return best;
}

#ifdef __x86_64__
/* Peak FMA throughput: 16 independent accumulator chains. */
__attribute__((target("avx512f,fma"))) static void peak512(void *ctx)
{
	__m512 acc[16];
	const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
	for (int i = 0; i < 16; i++)
		acc[i] = _mm512_set1_ps((float)i);
	for (int it = 0; it < 1000000; it++)
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++)
			acc[i] = _mm512_fmadd_ps(acc[i], x, y);
	__m512 s = acc[0];
	for (int i = 1; i < 16; i++)
		s = _mm512_add_ps(s, acc[i]);
	*(float *)ctx = _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static void peak256(void *ctx)
{
	__m256 acc[12];
	const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
	for (int i = 0; i < 12; i++)
		acc[i] = _mm256_set1_ps((float)i);
	for (int it = 0; it < 1000000; it++)
#pragma GCC unroll 12
		for (int i = 0; i < 12; i++)
			acc[i] = _mm256_fmadd_ps(acc[i], x, y);
	__m256 s = acc[0];
	for (int i = 1; i < 12; i++)
		s = _mm256_add_ps(s, acc[i]);
	float f[8];
	_mm256_storeu_ps(f, s);
	*(float *)ctx = f[0];
}
#endif

struct pw_case {
	const struct pn_ops *ops;
	const float *in, *packed, *res;
	float *out;
	int m, k, n, relu6;
};

static void pw_call(void *ctx)
{
	struct pw_case *c = ctx;
	c->ops->pw(c->in, c->out, c->packed, c->res, c->m, c->k, c->n, c->relu6);
}

struct conv_case {
	const struct pn_ops *ops;
	struct pn_conv_args a;
};

static void conv_call(void *ctx)
{
	struct conv_case *c = ctx;
	c->ops->conv3x3(&c->a);
}

struct dw_case {
	const struct pn_ops *ops;
	struct pn_dw_args a;
};

static void dw_case_call(void *ctx)
{
	struct dw_case *c = ctx;
	c->ops->dw3x3(&c->a);
}

static const struct {
	int m, k, n, relu6, residual;
	const char *what;
} pw_shapes[] = {
	{12544, 16, 96, 1, 0, "expand b1"},  {896, 16, 96, 1, 0, "expand b1, 8-row band"},
	{3136, 24, 144, 1, 0, "expand b3"},  {784, 32, 192, 1, 0, "expand b4"},
	{196, 64, 384, 1, 0, "expand b7"},   {196, 96, 576, 1, 0, "expand b11"},
	{49, 160, 960, 1, 0, "expand b14"},  {12544, 32, 16, 0, 0, "project b1"},
	{3136, 96, 24, 0, 0, "project b2"},  {3136, 144, 24, 0, 1, "project b3 +res"},
	{784, 144, 32, 0, 0, "project b4"},  {784, 192, 32, 0, 1, "project b5 +res"},
	{196, 192, 64, 0, 0, "project b7"},  {196, 384, 64, 0, 1, "project b8 +res"},
	{196, 384, 96, 0, 0, "project b11"}, {196, 576, 96, 0, 1, "project b12 +res"},
	{49, 576, 160, 0, 0, "project b14"}, {49, 960, 160, 0, 1, "project b15 +res"},
	{49, 960, 320, 0, 0, "project b17"}, {49, 320, 1280, 1, 0, "last conv"},
};

static const struct {
	int h, w, c, stride;
} dw_shapes[] = {
	{112, 112, 32, 1}, {112, 112, 96, 2}, {56, 56, 144, 1}, {56, 56, 144, 2}, {28, 28, 192, 1},
	{28, 28, 192, 2},  {14, 14, 384, 1},  {14, 14, 576, 1}, {14, 14, 576, 2}, {7, 7, 960, 1},
};

static void bench_table(const struct pn_ops *ops)
{
	printf("\n== %s\n", ops->name);
	printf("%-24s %6s %5s %5s %9s %9s\n", "pointwise", "m", "k", "n", "GFLOP/s", "us/call");
	double flops_all = 0, time_all = 0;
	for (size_t s = 0; s < sizeof pw_shapes / sizeof pw_shapes[0]; s++) {
		const int m = pw_shapes[s].m, k = pw_shapes[s].k, n = pw_shapes[s].n;
		float *in = random_floats((size_t)m * k, -1, 1);
		float *w = random_floats((size_t)n * k, -0.2f, 0.2f);
		float *bias = random_floats((size_t)n, -1, 1);
		float *res = pw_shapes[s].residual ? random_floats((size_t)m * n, -1, 1) : NULL;
		float *out = random_floats((size_t)m * n, 0, 0);
		float *packed = random_floats(ops->pw_packed_floats(k, n), 0, 0);
		ops->pw_pack(w, bias, k, n, packed);
		struct pw_case c = {ops, in, packed, res, out, m, k, n, pw_shapes[s].relu6};
		double t = time_per_call(pw_call, &c);
		double flops = 2.0 * m * k * n;
		if (m != 896) {
			flops_all += flops;
			time_all += t;
		}
		printf("%-24s %6d %5d %5d %9.1f %9.1f\n", pw_shapes[s].what, m, k, n,
		       flops / t * 1e-9, t * 1e6);
		free(in);
		free(w);
		free(bias);
		free(res);
		free(out);
		free(packed);
	}
	printf("%-24s %30.1f (one of each shape but the band)\n", "aggregate",
	       flops_all / time_all * 1e-9);

	printf("%-24s %4s %4s %4s %2s %9s %9s\n", "depthwise", "h", "w", "c", "s", "us/call",
	       "GB/s");
	for (size_t s = 0; s < sizeof dw_shapes / sizeof dw_shapes[0]; s++) {
		const int h = dw_shapes[s].h, wd = dw_shapes[s].w, c = dw_shapes[s].c;
		const int st = dw_shapes[s].stride;
		const int oh = (h - 1) / st + 1, ow = (wd - 1) / st + 1;
		float *in = random_floats((size_t)h * wd * c, -1, 1);
		float *out = random_floats((size_t)oh * ow * c, 0, 0);
		float *w = random_floats((size_t)9 * c, -1, 1);
		float *bias = random_floats((size_t)c, -1, 1);
		struct dw_case dc = {ops, {in, 0, h, wd, out, 0, oh, ow, c, st, w, bias}};
		double t = time_per_call(dw_case_call, &dc);
		double bytes = ((double)h * wd + (double)oh * ow) * c * 4;
		printf("%-24s %4d %4d %4d %2d %9.1f %9.1f\n", "", h, wd, c, st, t * 1e6,
		       bytes / t * 1e-9);
		free(in);
		free(out);
		free(w);
		free(bias);
	}

	for (int big = 1; big >= 0; big--) {
		const int h = big ? 224 : 32, st = big ? 2 : 1;
		const int oh = (h - 1) / st + 1;
		float *in = random_floats((size_t)h * h * 3, -1, 1);
		float *out = random_floats((size_t)oh * oh * 32, 0, 0);
		float *w = random_floats(27 * 32, -1, 1);
		float *bias = random_floats(32, -1, 1);
		struct conv_case cc = {ops, {in, h, h, 3, out, 0, oh, oh, 32, st, 1, w, bias}};
		double t = time_per_call(conv_call, &cc);
		printf("%-24s %4d %4d %4d %2d %9.1f %9.1f GFLOP/s\n", "conv3x3 stem", h, h, 3, st,
		       t * 1e6, 2.0 * oh * oh * 27 * 32 / t * 1e-9);
		free(in);
		free(out);
		free(w);
		free(bias);
	}
}

/* ---- int8 ---- */

static int8_t *random_i8(size_t n, int lo, int hi)
{
	int8_t *p = malloc(n ? n : 1);
	if (!p) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (int8_t)(lo + rand() % (hi - lo + 1));
	return p;
}

/* Requantisation as a calibrated model has it: M about 2^-8..2^-10. */
struct qparams {
	int32_t bias[1280], mult[1280];
	int8_t exp[1280];
};

static struct pn_qout qout(struct qparams *p, int n, int relu6)
{
	for (int i = 0; i < n; i++) {
		p->bias[i] = rand() % 20001 - 10000;
		p->mult[i] = (int32_t)((1u << 30) + (unsigned)rand() % (1u << 30));
		p->exp[i] = (int8_t)(-8 - rand() % 3);
	}
	struct pn_qout q = {p->bias, p->mult, p->exp, -5, relu6 ? -5 : -128, relu6 ? 100 : 127};
	return q;
}

struct qpw_case {
	const struct pn_qops *ops;
	const int8_t *in, *packed;
	int8_t *out;
	int m, k, n;
	struct pn_qout q;
};

static void qpw_call(void *ctx)
{
	struct qpw_case *c = ctx;
	c->ops->pw(c->in, c->out, c->packed, c->m, c->k, c->n, 3, &c->q);
}

struct qdw_case {
	const struct pn_qops *ops;
	struct pn_qdw_args a;
};

static void qdw_call(void *ctx)
{
	struct qdw_case *c = ctx;
	c->ops->dw3x3(&c->a);
}

struct qconv_case {
	const struct pn_qops *ops;
	struct pn_qconv_args a;
};

static void qconv_call(void *ctx)
{
	struct qconv_case *c = ctx;
	c->ops->conv3x3(&c->a);
}

static void bench_qtable(const struct pn_qops *ops)
{
	static struct qparams qp;
	printf("\n== int8 %s\n", ops->name);
	printf("%-24s %6s %5s %5s %9s %9s\n", "pointwise", "m", "k", "n", "GOP/s", "us/call");
	double ops_all = 0, time_all = 0;
	for (size_t s = 0; s < sizeof pw_shapes / sizeof pw_shapes[0]; s++) {
		const int m = pw_shapes[s].m, k = pw_shapes[s].k, n = pw_shapes[s].n;
		int8_t *in = random_i8((size_t)m * k, -128, 127);
		int8_t *w = random_i8((size_t)n * k, -127, 127);
		int8_t *out = random_i8((size_t)m * n, 0, 0);
		int8_t *packed = random_i8(ops->pw_packed_bytes(k, n), 0, 0);
		ops->pw_pack(w, k, n, packed);
		struct qpw_case c = {ops, in, packed, out,
				     m,	  k,  n,      qout(&qp, n, pw_shapes[s].relu6)};
		double t = time_per_call(qpw_call, &c);
		double flops = 2.0 * m * k * n;
		if (m != 896) {
			ops_all += flops;
			time_all += t;
		}
		printf("%-24s %6d %5d %5d %9.1f %9.1f\n", pw_shapes[s].what, m, k, n,
		       flops / t * 1e-9, t * 1e6);
		free(in);
		free(w);
		free(out);
		free(packed);
	}
	printf("%-24s %30.1f (one of each shape but the band)\n", "aggregate",
	       ops_all / time_all * 1e-9);

	printf("%-24s %4s %4s %4s %2s %9s %9s\n", "depthwise", "h", "w", "c", "s", "us/call",
	       "GB/s");
	for (size_t s = 0; s < sizeof dw_shapes / sizeof dw_shapes[0]; s++) {
		const int h = dw_shapes[s].h, wd = dw_shapes[s].w, c = dw_shapes[s].c;
		const int st = dw_shapes[s].stride;
		const int oh = (h - 1) / st + 1, ow = (wd - 1) / st + 1;
		int8_t *in = random_i8((size_t)h * wd * c, -128, 127);
		int8_t *out = random_i8((size_t)oh * ow * c, 0, 0);
		int8_t *w = random_i8((size_t)9 * c, -127, 127);
		struct qdw_case dc = {ops,
				      {in, 0, h, wd, 3, out, 0, oh, ow, c, st, w, qout(&qp, c, 1)}};
		double t = time_per_call(qdw_call, &dc);
		double bytes = ((double)h * wd + (double)oh * ow) * c;
		printf("%-24s %4d %4d %4d %2d %9.1f %9.1f\n", "", h, wd, c, st, t * 1e6,
		       bytes / t * 1e-9);
		free(in);
		free(out);
		free(w);
	}

	for (int big = 1; big >= 0; big--) {
		const int h = big ? 224 : 32, st = big ? 2 : 1;
		const int oh = (h - 1) / st + 1;
		int8_t *in = random_i8((size_t)h * h * 3, -128, 127);
		int8_t *out = random_i8((size_t)oh * oh * 32, 0, 0);
		int8_t *w = random_i8(27 * 32, -127, 127);
		struct qconv_case cc = {
			ops, {in, h, h, 3, 3, out, 0, oh, oh, 32, st, w, qout(&qp, 32, 1)}};
		double t = time_per_call(qconv_call, &cc);
		printf("%-24s %4d %4d %4d %2d %9.1f %9.1f GOP/s\n", "conv3x3 stem", h, h, 3, st,
		       t * 1e6, 2.0 * oh * oh * 27 * 32 / t * 1e-9);
		free(in);
		free(out);
		free(w);
	}
}

/* Whether the command line asks for table `name` (none: all but the
 * scalar ones; "all": every one); says so when the CPU cannot run it. */
static int wanted(const char *name, int scalar, int available, const char *kind, int argc,
		  char **argv)
{
	int want = argc == 1 ? !scalar : strcmp(argv[1], "all") == 0;
	for (int a = 1; a < argc; a++)
		if (strcmp(argv[a], name) == 0)
			want = 1;
	if (want && !available)
		printf("\n== %s%s: not available on this CPU\n", kind, name);
	return want && available;
}

int main(int argc, char **argv)
{
	const char *secs = getenv("PIPENET_BENCH_SECONDS");
	if (secs && atof(secs) > 0)
		bench_seconds = atof(secs);
	srand(1);
#ifdef __x86_64__
	float sink;
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f")) {
		double t = time_per_call(peak512, &sink);
		printf("FMA peak, zmm: %.1f GFLOP/s\n", 1e6 * 16 * 32 / t * 1e-9);
	}
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		double t = time_per_call(peak256, &sink);
		printf("FMA peak, ymm: %.1f GFLOP/s\n", 1e6 * 12 * 16 / t * 1e-9);
	}
#endif
	for (int i = 0; pn_ops_all[i]; i++)
		if (wanted(pn_ops_all[i]->name, pn_ops_all[i] == &pn_ops_scalar,
			   pn_ops_all[i]->available(), "", argc, argv))
			bench_table(pn_ops_all[i]);
	for (int i = 0; pn_qops_all[i]; i++)
		if (wanted(pn_qops_all[i]->name, pn_qops_all[i] == &pn_qops_scalar,
			   pn_qops_all[i]->available(), "int8 ", argc, argv))
			bench_qtable(pn_qops_all[i]);
	return 0;
}
