/* Preprocessing: the planned, separable resize (kernels/preprocess.c) with
 * every kernel table must give exactly the floats of the direct formula
 * it replaced (below, as it was: taps and four normalisations per output
 * element), bit for bit, for random, flat and real CIFAR-10 images, at the
 * models' sizes and at odd up- and downscales. The `lerp` kernel of every
 * table is also compared with the reference directly, tails included. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "preprocess.h"
#include "ref.h"
#include "tap.h"

#define SRC 32
#define RECORD (1 + 3 * SRC * SRC)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

struct tap {
	int i0, i1;
	float l0, l1;
};

static struct tap source_tap(int dst, int src_size, int dst_size)
{
	float scale = (float)src_size / (float)dst_size;
	float s = scale * ((float)dst + 0.5f) - 0.5f;
	if (s < 0.0f)
		s = 0.0f;
	struct tap t;
	t.i0 = (int)s;
	if (t.i0 > src_size - 1)
		t.i0 = src_size - 1;
	t.i1 = t.i0 < src_size - 1 ? t.i0 + 1 : t.i0;
	t.l1 = s - (float)t.i0;
	t.l0 = 1.0f - t.l1;
	return t;
}

static float norm(const uint8_t *pl, int src, int y, int x, float mean, float std)
{
	return ((float)pl[y * src + x] / 255.0f - mean) / std;
}

/* The direct formula pipenet used before the plan. */
static void direct(const uint8_t *rgb, int src, int dst, const float mean[3], const float std[3],
		   float *out)
{
	const int plane = src * src;
	if (dst == src) {
		for (int p = 0; p < plane; p++)
			for (int c = 0; c < 3; c++)
				out[p * 3 + c] =
					((float)rgb[c * plane + p] / 255.0f - mean[c]) / std[c];
		return;
	}
	for (int y = 0; y < dst; y++) {
		struct tap ty = source_tap(y, src, dst);
		for (int x = 0; x < dst; x++) {
			struct tap tx = source_tap(x, src, dst);
			for (int c = 0; c < 3; c++) {
				const uint8_t *pl = rgb + c * plane;
				float m = mean[c], s = std[c];
				float v = ty.l0 * (tx.l0 * norm(pl, src, ty.i0, tx.i0, m, s) +
						   tx.l1 * norm(pl, src, ty.i0, tx.i1, m, s)) +
					  ty.l1 * (tx.l0 * norm(pl, src, ty.i1, tx.i0, m, s) +
						   tx.l1 * norm(pl, src, ty.i1, tx.i1, m, s));
				out[((size_t)y * dst + x) * 3 + c] = v;
			}
		}
	}
}

static int ntables;
static const struct pn_ops *tables[8];
static long compared[8], differed[8];
static char first_diff[8][160];

static void compare(int t, const float *got, const float *want, size_t n, const char *what)
{
	compared[t] += (long)n;
	for (size_t i = 0; i < n; i++)
		if (memcmp(&got[i], &want[i], sizeof got[i]) != 0) {
			if (!differed[t])
				snprintf(first_diff[t], sizeof first_diff[t],
					 "%s, element %zu: %.9g, want %.9g", what, i, got[i],
					 want[i]);
			differed[t]++;
		}
}

/* `images` planar images through every table's plan at size dst. */
static void run_case(const uint8_t *images, size_t stride, int count, int dst, const float mean[3],
		     const float std[3], const char *what)
{
	size_t n = (size_t)dst * dst * 3;
	float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
	struct pn_prep *p = pn_prep_new(SRC, dst, mean, std);
	if (!want || !got || !p) {
		tap_ok(0, "memory for %s at %d", what, dst);
		exit(1);
	}
	for (int i = 0; i < count; i++) {
		const uint8_t *rgb = images + (size_t)i * stride;
		direct(rgb, SRC, dst, mean, std, want);
		for (int t = 0; t < ntables; t++) {
			char ctx[96];
			snprintf(ctx, sizeof ctx, "%s image %d at %dx%d", what, i, dst, dst);
			memset(got, 0xff, n * sizeof *got);
			pn_prep_run(p, tables[t], rgb, got);
			compare(t, got, want, n, ctx);
		}
	}
	pn_prep_free(p);
	free(want);
	free(got);
}

static void test_lerp(void)
{
	enum { N = 1000 };
	float a[N], b[N], want[N], got[N + 1];
	for (int i = 0; i < N; i++) {
		a[i] = (float)((int)(rnd32() % 20001) - 10000) / 3777.0f;
		b[i] = (float)((int)(rnd32() % 20001) - 10000) / 4999.0f;
	}
	for (int t = 0; t < ntables; t++) {
		long bad = 0;
		for (size_t n = 0; n <= 67; n++) {
			float wb = (float)(rnd32() % 1000) / 999.0f, wa = 1.0f - wb;
			pn_lerp_ref(a, b, wa, wb, want, n);
			got[n] = 12345.0f;
			tables[t]->lerp(a, b, wa, wb, got, n);
			bad += memcmp(got, want, n * sizeof *got) != 0 || got[n] != 12345.0f;
		}
		tap_ok(bad == 0,
		       "%s: lerp equals the reference bit for bit for 0..67 floats, "
		       "writing none past the end (%ld lengths differ)",
		       tables[t]->name, bad);
	}
}

static uint8_t *read_records(int *count)
{
	char path[4096];
	const char *shared = getenv("PIPENET_SHARED");
	const char *top = getenv("top_srcdir");
	if (shared && *shared)
		snprintf(path, sizeof path, "%s/data/cifar10/test_batch.bin", shared);
	else
		snprintf(path, sizeof path, "%s/../shared/data/cifar10/test_batch.bin",
			 top && *top ? top : ".");
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = malloc((size_t)*count * RECORD);
	size_t got = buf ? fread(buf, RECORD, (size_t)*count, f) : 0;
	fclose(f);
	*count = (int)got;
	return buf;
}

int main(void)
{
	for (int i = 0; pn_ops_all[i] && ntables < 8; i++) {
		if (!pn_ops_all[i]->available()) {
			char why[96];
			snprintf(why, sizeof why, "kernel table %s: this CPU cannot run it",
				 pn_ops_all[i]->name);
			tap_skip(why);
			continue;
		}
		tables[ntables++] = pn_ops_all[i];
	}
	const char *quick_env = getenv("PIPENET_TEST_QUICK");
	int quick = quick_env && *quick_env && strcmp(quick_env, "0") != 0;

	test_lerp();

	/* The model card's normalisation, and an arbitrary one. */
	const float card_mean[3] = {0.4914f, 0.4822f, 0.4465f};
	const float card_std[3] = {0.2470f, 0.2435f, 0.2616f};
	const float odd_mean[3] = {0.1f, 0.73f, 0.5f};
	const float odd_std[3] = {0.9f, 0.051f, 0.3333f};
	const size_t plane3 = 3 * SRC * SRC;

	enum { RANDOM = 6 };
	uint8_t *rnd = malloc(RANDOM * plane3);
	if (!rnd)
		return 1;
	for (size_t i = 0; i < RANDOM * plane3; i++)
		rnd[i] = (uint8_t)rnd32();
	memset(rnd, 0, plane3); /* black */
	memset(rnd + plane3, 255, plane3); /* white */
	for (size_t i = 0; i < plane3; i++) /* a gradient with every byte */
		rnd[2 * plane3 + i] = (uint8_t)i;

	static const int sizes[] = {224, 32, 8, 16, 33, 97, 100, 255, 1024};
	for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
		if (quick && sizes[s] == 1024)
			continue;
		run_case(rnd, plane3, RANDOM, sizes[s], card_mean, card_std, "random");
		run_case(rnd, plane3, 2, sizes[s], odd_mean, odd_std, "random, other mean/std");
	}

	int count = quick ? 8 : 100;
	uint8_t *rec = read_records(&count);
	if (rec && count > 0) {
		run_case(rec + 1, RECORD, count, 224, card_mean, card_std, "CIFAR-10 test record");
		run_case(rec + 1, RECORD, count, 32, card_mean, card_std, "CIFAR-10 test record");
		tap_diag("%d CIFAR-10 test records at 224 and 32", count);
	} else {
		tap_skip("no ../shared/data/cifar10/test_batch.bin: real images not compared");
	}
	free(rec);
	free(rnd);

	for (int t = 0; t < ntables; t++) {
		tap_ok(compared[t] > 0 && differed[t] == 0,
		       "%s: preprocessing equals the direct formula bit for bit "
		       "(%ld floats, %ld differ)",
		       tables[t]->name, compared[t], differed[t]);
		if (differed[t])
			tap_diag("first: %s", first_diff[t]);
	}
	return tap_done();
}
