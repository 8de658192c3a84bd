/* pipenet: the offline command line. `classify` runs the whole model on
 * this machine over a dataset; `bench` times every block. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "pipenet-config.h"
#include "dataset.h"
#include "model.h"

#define DEFAULT_MODEL "mobilenetv2_cifar10.safetensors"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long peak_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static int parse_count(const char *opt, const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi) {
		fprintf(stderr, "pipenet: %s \"%s\": expected a whole number in %ld..%ld\n", opt, v,
			lo, hi);
		return -1;
	}
	*out = x;
	return 0;
}

/* The model named on the command line, else the installed one, else the
 * one in the source tree (running from a build folder). */
static const char *default_model(void)
{
	static const char *const candidates[] = {
		PN_PKGDATADIR "/models/" DEFAULT_MODEL,
		"models/" DEFAULT_MODEL,
	};
	for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
		FILE *f = fopen(candidates[i], "rb");
		if (f) {
			fclose(f);
			return candidates[i];
		}
	}
	return candidates[0];
}

static struct pn_model *load_model(const char *path)
{
	char err[512];
	const struct pn_ops *ops = pn_ops_select(err, sizeof err);
	if (!ops) {
		fprintf(stderr, "pipenet: %s\n", err);
		return NULL;
	}
	struct pn_model *m = pn_model_load(path, ops, err, sizeof err);
	if (!m)
		fprintf(stderr, "pipenet: %s\n", err);
	return m;
}

/* ---- classify ---- */

static void usage_classify(FILE *f)
{
	fprintf(f, "usage: pipenet classify --data FILE|DIR [--model FILE] [--limit N]\n"
		   "                        [--offset N] [--batch B] [--logits OUT.f32] [--quiet]\n"
		   "Classifies a CIFAR-10 binary file or a JPEG class folder (DIR/CLASS/*.jpg) on\n"
		   "this machine; prints top-1 accuracy, images/s and the kernel variant, and\n"
		   "writes the raw little-endian float32 logits [N][classes] in record order.\n");
}

static int cmd_classify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"data", required_argument, NULL, 'd'},
		{"limit", required_argument, NULL, 'n'},
		{"offset", required_argument, NULL, 'o'},
		{"batch", required_argument, NULL, 'b'},
		{"logits", required_argument, NULL, 'l'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *model_path = NULL, *data = NULL, *logits_path = NULL;
	long limit = -1, offset = 0, batch = 8;
	int quiet = 0, c, rc = 1;

	while ((c = getopt_long(argc, argv, "m:d:n:o:b:l:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			model_path = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		case 'n':
			if (parse_count("--limit", optarg, 0, 1L << 40, &limit) < 0)
				return 2;
			break;
		case 'o':
			if (parse_count("--offset", optarg, 0, 1L << 40, &offset) < 0)
				return 2;
			break;
		case 'b':
			if (parse_count("--batch", optarg, 1, 4096, &batch) < 0)
				return 2;
			break;
		case 'l':
			logits_path = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage_classify(stdout);
			return 0;
		default:
			usage_classify(stderr);
			return 2;
		}
	}
	if (!data || optind != argc) {
		usage_classify(stderr);
		return 2;
	}
	if (!model_path)
		model_path = default_model();

	char err[512];
	struct pn_model *m = load_model(model_path);
	struct pn_dataset *ds = NULL;
	struct pn_plan *plan = NULL;
	FILE *lf = NULL;
	int *labels = NULL;
	uint8_t rgb[PN_IMAGE_BYTES];
	if (!m)
		goto out;
	const int classes = pn_model_num_classes(m);
	ds = pn_dataset_open(data, pn_model_classes(m), classes, err, sizeof err);
	if (!ds) {
		fprintf(stderr, "pipenet: %s\n", err);
		goto out;
	}
	size_t total = pn_dataset_count(ds);
	if ((size_t)offset > total) {
		fprintf(stderr, "pipenet: --offset %ld is past the %zu records of %s\n", offset,
			total, data);
		goto out;
	}
	size_t n = total - (size_t)offset;
	if (limit >= 0 && (size_t)limit < n)
		n = (size_t)limit;
	plan = pn_plan_new(m, 0, pn_model_blocks(m), (int)batch, err, sizeof err);
	labels = malloc((size_t)batch * sizeof *labels);
	if (!plan || !labels) {
		fprintf(stderr, "pipenet: %s\n", plan ? "out of memory" : err);
		goto out;
	}
	if (logits_path && !(lf = fopen(logits_path, "wb"))) {
		fprintf(stderr, "pipenet: %s: cannot write: %s\n", logits_path, strerror(errno));
		goto out;
	}
	if (!quiet)
		fprintf(stderr, "pipenet: %s, kernels %s, %zu images from %s\n", model_path,
			pn_model_ops(m)->name, n, data);

	const size_t in_floats = pn_shape_floats(pn_plan_in_shape(plan));
	size_t done = 0, correct = 0, labelled = 0;
	double t0 = now_s(), compute = 0.0;
	while (done < n) {
		int nb = (int)(n - done < (size_t)batch ? n - done : (size_t)batch);
		for (int i = 0; i < nb; i++) {
			if (pn_dataset_get(ds, (size_t)offset + done + i, rgb, &labels[i], err,
					   sizeof err) < 0) {
				fprintf(stderr, "pipenet: %s\n", err);
				goto out;
			}
			pn_model_preprocess(m, rgb, pn_plan_input(plan) + (size_t)i * in_floats);
		}
		double c0 = now_s();
		pn_plan_run(plan, nb);
		compute += now_s() - c0;
		const float *out = pn_plan_output(plan);
		for (int i = 0; i < nb; i++) {
			const float *lg = out + (size_t)i * classes;
			int best = 0;
			for (int j = 1; j < classes; j++)
				if (lg[j] > lg[best])
					best = j;
			if (labels[i] >= 0) {
				labelled++;
				correct += best == labels[i];
			}
		}
		if (lf && fwrite(out, sizeof(float) * classes, (size_t)nb, lf) != (size_t)nb) {
			fprintf(stderr, "pipenet: %s: write failed: %s\n", logits_path,
				strerror(errno));
			goto out;
		}
		done += (size_t)nb;
	}
	double wall = now_s() - t0;
	if (lf) {
		int bad = fclose(lf) != 0;
		lf = NULL;
		if (bad) {
			fprintf(stderr, "pipenet: %s: write failed\n", logits_path);
			goto out;
		}
	}
	printf("images %zu\n", done);
	if (labelled)
		printf("accuracy %.4f (%zu/%zu)\n", (double)correct / labelled, correct, labelled);
	printf("images_per_second %.2f (compute only %.2f)\n", wall > 0 ? done / wall : 0.0,
	       compute > 0 ? done / compute : 0.0);
	printf("isa %s\n", pn_model_ops(m)->name);
	if (pn_dataset_skipped(ds))
		printf("skipped %zu unreadable JPEG files\n", pn_dataset_skipped(ds));
	rc = 0;
out:
	if (lf)
		fclose(lf);
	free(labels);
	pn_plan_free(plan);
	pn_dataset_free(ds);
	pn_model_free(m);
	return rc;
}

/* ---- bench ---- */

static void usage_bench(FILE *f)
{
	fprintf(f,
		"usage: pipenet bench [--model FILE] [--batch B] [--iters N] [--json]\n"
		"Times every block of the model on this machine (one core) after a warm-up\n"
		"and prints the median per block and in total, images/s, GFLOP/s and peak RSS.\n");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'}, {"batch", required_argument, NULL, 'b'},
		{"iters", required_argument, NULL, 'i'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},	 {NULL, 0, NULL, 0},
	};
	const char *model_path = NULL;
	long batch = 1, iters = 20;
	int json = 0, c, rc = 1;

	while ((c = getopt_long(argc, argv, "m:b:i:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			model_path = optarg;
			break;
		case 'b':
			if (parse_count("--batch", optarg, 1, 4096, &batch) < 0)
				return 2;
			break;
		case 'i':
			if (parse_count("--iters", optarg, 1, 100000, &iters) < 0)
				return 2;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage_bench(stdout);
			return 0;
		default:
			usage_bench(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage_bench(stderr);
		return 2;
	}
	if (!model_path)
		model_path = default_model();

	char err[512];
	struct pn_model *m = load_model(model_path);
	struct pn_plan *plan = NULL;
	double *samples = NULL;
	if (!m)
		goto out;
	const int nb = pn_model_blocks(m);
	plan = pn_plan_new(m, 0, nb, (int)batch, err, sizeof err);
	samples = calloc((size_t)(nb + 1) * iters, sizeof *samples);
	if (!plan || !samples) {
		fprintf(stderr, "pipenet: %s\n", plan ? "out of memory" : err);
		goto out;
	}
	/* A fixed pseudo-random image: the kernels' time does not depend on it. */
	uint8_t rgb[PN_IMAGE_BYTES];
	uint32_t x = 12345;
	for (int i = 0; i < PN_IMAGE_BYTES; i++) {
		x = x * 1103515245u + 12345u;
		rgb[i] = (uint8_t)(x >> 24);
	}
	const size_t in_floats = pn_shape_floats(pn_plan_in_shape(plan));
	for (int i = 0; i < batch; i++)
		pn_model_preprocess(m, rgb, pn_plan_input(plan) + (size_t)i * in_floats);

	pn_plan_run(plan, (int)batch); /* warm-up: caches, page faults */
	for (long it = 0; it < iters; it++) {
		double *row = samples + (size_t)it * (nb + 1);
		double t0 = now_s();
		pn_plan_start(plan, (int)batch);
		for (int more = 1; more;) {
			int blk = pn_plan_next_block(plan);
			double s0 = now_s();
			more = pn_plan_step(plan);
			row[blk] += now_s() - s0;
		}
		row[nb] = now_s() - t0;
	}
	/* Median per block across iterations (column by column). */
	double *col = malloc((size_t)iters * sizeof *col), block_ms[256];
	if (!col)
		goto out;
	uint64_t macs = 0;
	for (int b = 0; b <= nb; b++) {
		for (long it = 0; it < iters; it++)
			col[it] = samples[(size_t)it * (nb + 1) + b];
		block_ms[b] = median(col, (int)iters) * 1e3;
		if (b < nb)
			macs += pn_model_block_macs(m, b);
	}
	free(col);
	double total_ms = block_ms[nb], ms_img = total_ms / batch;
	double gflops = 2.0 * (double)macs / (ms_img * 1e-3) / 1e9;
	long rss = peak_rss_kb();
	const char *isa = pn_model_ops(m)->name;
	if (json) {
		printf("{\"model\": \"%s\", \"isa\": \"%s\", \"batch\": %ld, \"iters\": %ld, "
		       "\"ms_per_batch\": %.4f, \"ms_per_image\": %.4f, \"images_per_second\": "
		       "%.3f, "
		       "\"gflops\": %.2f, \"macs_per_image\": %llu, \"peak_rss_kb\": %ld, "
		       "\"blocks\": [",
		       model_path, isa, batch, iters, total_ms, ms_img, 1e3 / ms_img, gflops,
		       (unsigned long long)macs, rss);
		for (int b = 0; b < nb; b++)
			printf("%s{\"block\": %d, \"ms\": %.4f, \"macs\": %llu}", b ? ", " : "", b,
			       block_ms[b], (unsigned long long)pn_model_block_macs(m, b));
		printf("]}\n");
	} else {
		printf("model %s\nisa %s, batch %ld, %ld iterations (median)\n", model_path, isa,
		       batch, iters);
		printf("%5s %10s %10s %8s\n", "block", "ms/batch", "MMAC/img", "GFLOP/s");
		for (int b = 0; b < nb; b++) {
			double mm = pn_model_block_macs(m, b) / 1e6;
			printf("%5d %10.3f %10.2f %8.1f\n", b, block_ms[b], mm,
			       block_ms[b] > 0 ? 2.0 * mm * batch / block_ms[b] : 0.0);
		}
		printf("total %.3f ms/batch, %.3f ms/image, %.2f images/s, %.1f GFLOP/s\n",
		       total_ms, ms_img, 1e3 / ms_img, gflops);
		printf("peak RSS %ld kB\n", rss);
	}
	rc = 0;
out:
	free(samples);
	pn_plan_free(plan);
	pn_model_free(m);
	return rc;
}

/* ---- main ---- */

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"classify", cmd_classify, "classify a CIFAR-10 file or JPEG folder on this machine"},
	{"bench", cmd_bench, "time every block of the model on this machine"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: pipenet COMMAND [options]   (pipenet COMMAND --help)\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "PIPENET_ISA=scalar|avx2|avx512|neon forces a kernel variant.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("pipenet %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "pipenet: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
