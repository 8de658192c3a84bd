/* pipenet: the offline command line. `classify` runs the whole model on
 * this machine over a dataset; `bench` times every block; `quantize`
 * writes an int8 model. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "pipenet-config.h"
#include "dataset.h"
#include "frame.h"
#include "hop.h"
#include "model.h"
#include "planner.h"
#include "qops.h"
#include "quantize.h"
#include <jansson.h>

#define DEFAULT_MODEL "mobilenetv2_cifar10.safetensors"
#define PN_MAX_BLOCKS_CLI 64

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
			if (parse_count("--limit", optarg, 0, LONG_MAX, &limit) < 0)
				return 2;
			break;
		case 'o':
			if (parse_count("--offset", optarg, 0, LONG_MAX, &offset) < 0)
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
		fprintf(stderr, "pipenet: %s, kernels %s (%s), %zu images from %s\n", model_path,
			pn_model_isa(m), pn_model_dtype(m), n, data);

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
	printf("isa %s\n", pn_model_isa(m));
	printf("dtype %s\n", pn_model_dtype(m));
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
	fprintf(f, "usage: pipenet bench [--model FILE] [--batch B] [--iters N] [--json]\n"
		   "Times every block of the model on this machine (one core) after a warm-up\n"
		   "and prints the median per block and in total, images/s, GFLOP/s and peak RSS;\n"
		   "for an int8 model also the measured integer peak of its pointwise kernel's\n"
		   "instruction on this core and the share of it reached (GFLOP/s counts 2 per "
		   "MAC).\n");
}

/* The first "cpu MHz" of /proc/cpuinfo (what the kernel reports, not
 * necessarily the clock under load), or 0. */
static double cpu_mhz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	double mhz = 0;
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "cpu MHz", 7) == 0) {
			const char *colon = strchr(line, ':');
			mhz = colon ? strtod(colon + 1, NULL) : 0;
			break;
		}
	if (f)
		fclose(f);
	return mhz > 0 ? mhz : 0;
}

/* The int8 table an int8 model runs on, else NULL. */
static const struct pn_qops *bench_qops(const struct pn_model *m)
{
	if (strcmp(pn_model_dtype(m), "int8") != 0)
		return NULL;
	for (int i = 0; pn_qops_all[i]; i++)
		if (strcmp(pn_qops_all[i]->name, pn_model_isa(m)) == 0)
			return pn_qops_all[i];
	return NULL;
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
	double block_ms[PN_MAX_BLOCKS_CLI + 1];
	struct pn_model *m = load_model(model_path);
	if (!m)
		goto out;
	const int nb = pn_model_blocks(m);
	if (nb > PN_MAX_BLOCKS_CLI ||
	    pn_model_profile(m, (int)batch, (int)iters, block_ms, err, sizeof err) < 0) {
		fprintf(stderr, "pipenet: %s\n", nb > PN_MAX_BLOCKS_CLI ? "too many blocks" : err);
		goto out;
	}
	uint64_t macs = 0;
	for (int b = 0; b < nb; b++)
		macs += pn_model_block_macs(m, b);
	double total_ms = block_ms[nb], ms_img = total_ms / batch;
	double gflops = 2.0 * (double)macs / (ms_img * 1e-3) / 1e9;
	long rss = peak_rss_kb();
	const char *isa = pn_model_isa(m);
	/* int8: the integer peak of the pointwise kernel's instruction,
	 * measured on this core after the run, as GOP/s (2 per MAC). */
	const struct pn_qops *qo = bench_qops(m);
	const double peak_gops = qo ? 2.0 * pn_qpeak(qo) / 1e9 : 0, mhz = cpu_mhz();
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
		printf("]");
		if (peak_gops > 0)
			printf(", \"int8_peak_insn\": \"%s\", \"int8_peak_gops\": %.2f, "
			       "\"int8_peak_percent\": %.2f, \"cpu_mhz\": %.1f",
			       qo->peak_insn, peak_gops, 100.0 * gflops / peak_gops, mhz);
		printf("}\n");
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
		if (peak_gops > 0) {
			printf("int8 peak %.1f GOP/s (%s, %d MACs each, measured on this core",
			       peak_gops, qo->peak_insn, qo->peak_macs);
			if (mhz > 0)
				printf("; %.1f MACs/cycle at the %.0f MHz of /proc/cpuinfo",
				       peak_gops / 2 * 1e3 / mhz, mhz);
			printf("): the model runs at %.1f %% of it\n", 100.0 * gflops / peak_gops);
		}
		printf("peak RSS %ld kB\n", rss);
	}
	rc = 0;
out:
	pn_model_free(m);
	return rc;
}

/* ---- plan ---- */

static void usage_plan(FILE *f)
{
	fprintf(f, "usage: pipenet plan [--model FILE] [--stages N] [--profile FILE] [--batch B]\n"
		   "                    [--wire f32|f16|i8] [--link-mbit M] [--link-latency-ms L]\n"
		   "                    [--iters N] [--json]\n"
		   "Predicts the throughput and latency of every split of the model over N stages\n"
		   "and names the best, from a profile (JSON with \"stages\": [{\"block_ms\": "
		   "[...]}],\n"
		   "e.g. the coordinator's /api/v1/cluster, and optionally \"links\": "
		   "[{\"latency_ms\",\n"
		   "\"mbit_s\"}] for the N+1 hops) or from this machine's block times for N "
		   "identical\n"
		   "stages. Also compares replicated pipelines (groups of stages each running the\n"
		   "whole model).\n");
}

struct plan_print {
	int json, count;
	const struct pn_split *best;
};

static void print_split(const struct pn_split *p, int json, int first)
{
	if (json) {
		printf("%s{\"split\": [", first ? "" : ", ");
		for (int s = 1; s < p->stages; s++)
			printf("%s%d", s > 1 ? ", " : "", p->cuts[s]);
		printf("], \"predicted_img_s\": %.3f, \"predicted_latency_ms\": %.3f, "
		       "\"bottleneck_ms\": %.3f, \"bottleneck\": \"%s %d\"}",
		       p->img_s, p->latency_ms, p->bottleneck_ms,
		       p->bottleneck >= 0 ? "stage" : "hop",
		       p->bottleneck >= 0 ? p->bottleneck : -p->bottleneck - 1);
		return;
	}
	char cuts[128] = "";
	size_t used = 0;
	for (int s = 1; s < p->stages && used < sizeof cuts; s++)
		used += (size_t)snprintf(cuts + used, sizeof cuts - used, "%s%d", s > 1 ? "," : "",
					 p->cuts[s]);
	printf("split %-12s %9.2f img/s %9.2f ms latency, bottleneck %s %d (%.2f ms)\n", cuts,
	       p->img_s, p->latency_ms, p->bottleneck >= 0 ? "stage" : "hop",
	       p->bottleneck >= 0 ? p->bottleneck : -p->bottleneck - 1, p->bottleneck_ms);
}

static int print_each(const struct pn_split *p, void *arg)
{
	struct plan_print *pp = arg;
	print_split(p, pp->json, pp->count == 0);
	return ++pp->count >= 10000; /* the listing is bounded; the best is exact */
}

/* Reads the per-stage block times (and links, when given) of a profile. */
static int read_profile(const char *path, int nb, int *stages, double *block_ms, double *lat,
			double *bw)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	json_t *st = json_object_get(root, "stages");
	int rc = -1;
	if (!root) {
		fprintf(stderr, "pipenet: %s: line %d: %s\n", path, jerr.line, jerr.text);
		return -1;
	}
	if (!json_is_array(st) || json_array_size(st) < 1 ||
	    json_array_size(st) > PN_PLANNER_MAX_STAGES) {
		fprintf(stderr, "pipenet: %s: \"stages\" must be an array of 1..%d stages\n", path,
			PN_PLANNER_MAX_STAGES);
		goto out;
	}
	*stages = (int)json_array_size(st);
	for (int s = 0; s < *stages; s++) {
		json_t *ms = json_object_get(json_array_get(st, (size_t)s), "block_ms");
		if (!json_is_array(ms) || (int)json_array_size(ms) != nb) {
			fprintf(stderr, "pipenet: %s: stages[%d].block_ms must list %d numbers\n",
				path, s, nb);
			goto out;
		}
		for (int b = 0; b < nb; b++) {
			json_t *v = json_array_get(ms, (size_t)b);
			if (!json_is_number(v) || json_number_value(v) < 0) {
				fprintf(stderr,
					"pipenet: %s: stages[%d].block_ms[%d] is not a "
					"number >= 0\n",
					path, s, b);
				goto out;
			}
			block_ms[s * nb + b] = json_number_value(v);
		}
	}
	json_t *links = json_object_get(root, "links");
	if (links) {
		if (!json_is_array(links) || (int)json_array_size(links) != *stages + 1) {
			fprintf(stderr, "pipenet: %s: \"links\" must list %d hops\n", path,
				*stages + 1);
			goto out;
		}
		for (int h = 0; h <= *stages; h++) {
			json_t *l = json_array_get(links, (size_t)h);
			json_t *la = json_object_get(l, "latency_ms"),
			       *mb = json_object_get(l, "mbit_s");
			if (!json_is_number(la) || !json_is_number(mb) ||
			    json_number_value(la) < 0 || json_number_value(mb) < 0) {
				fprintf(stderr,
					"pipenet: %s: links[%d] needs latency_ms and mbit_s "
					">= 0\n",
					path, h);
				goto out;
			}
			lat[h] = json_number_value(la);
			bw[h] = json_number_value(mb) * 1e6 / 8 / 1e3; /* bytes per ms */
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

static int cmd_plan(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"stages", required_argument, NULL, 's'},
		{"profile", required_argument, NULL, 'p'},
		{"batch", required_argument, NULL, 'b'},
		{"wire", required_argument, NULL, 'w'},
		{"link-mbit", required_argument, NULL, 'l'},
		{"link-latency-ms", required_argument, NULL, 'L'},
		{"iters", required_argument, NULL, 'i'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *model_path = NULL, *profile = NULL;
	long stages = 2, batch = 8, iters = 5, mbit = 1000;
	double link_lat = 0.2;
	int json = 0, wire = PN_DTYPE_F32, c, rc = 1;

	while ((c = getopt_long(argc, argv, "m:s:p:b:w:l:L:i:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			model_path = optarg;
			break;
		case 's':
			if (parse_count("--stages", optarg, 1, PN_PLANNER_MAX_STAGES, &stages) < 0)
				return 2;
			break;
		case 'p':
			profile = optarg;
			break;
		case 'b':
			if (parse_count("--batch", optarg, 1, 4096, &batch) < 0)
				return 2;
			break;
		case 'w':
			wire = pn_dtype_parse(optarg);
			if (!pn_wire_dtype(wire)) {
				fprintf(stderr, "pipenet: --wire is f32, f16 or i8\n");
				return 2;
			}
			break;
		case 'l':
			if (parse_count("--link-mbit", optarg, 1, 1000000, &mbit) < 0)
				return 2;
			break;
		case 'L': {
			char *end;
			link_lat = strtod(optarg, &end);
			if (*end || end == optarg || !(link_lat >= 0 && link_lat < 1e6)) {
				fprintf(stderr,
					"pipenet: --link-latency-ms \"%s\": expected ms >= 0\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'i':
			if (parse_count("--iters", optarg, 1, 1000, &iters) < 0)
				return 2;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage_plan(stdout);
			return 0;
		default:
			usage_plan(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage_plan(stderr);
		return 2;
	}
	if (!model_path)
		model_path = default_model();

	char err[512];
	struct pn_model *m = load_model(model_path);
	if (!m)
		return 1;
	const int nb = pn_model_blocks(m);
	static double block_ms[PN_PLANNER_MAX_STAGES * PN_PLANNER_MAX_BLOCKS];
	double cut_bytes[PN_PLANNER_MAX_BLOCKS + 1];
	double lat[PN_PLANNER_MAX_STAGES + 1], bw[PN_PLANNER_MAX_STAGES + 1];
	int ns = (int)stages;
	for (int h = 0; h <= PN_PLANNER_MAX_STAGES; h++) {
		lat[h] = link_lat;
		bw[h] = (double)mbit * 1e6 / 8 / 1e3;
	}
	if (nb > PN_PLANNER_MAX_BLOCKS)
		goto out;
	if (profile) {
		if (read_profile(profile, nb, &ns, block_ms, lat, bw) < 0)
			goto out;
	} else {
		double own[PN_PLANNER_MAX_BLOCKS + 1];
		if (!json)
			fprintf(stderr,
				"pipenet: timing every block on this machine (batch %ld)...\n",
				batch);
		if (pn_model_profile(m, (int)batch, (int)iters, own, err, sizeof err) < 0) {
			fprintf(stderr, "pipenet: %s\n", err);
			goto out;
		}
		for (int s = 0; s < ns; s++)
			memcpy(block_ms + (size_t)s * nb, own, (size_t)nb * sizeof *own);
	}
	for (int cut = 0; cut <= nb; cut++) /* as a run's coordinator charges them */
		cut_bytes[cut] = (double)pn_cut_frame_bytes(m, cut, (size_t)batch, wire);
	struct pn_split_costs costs = {ns, nb, (int)batch, block_ms, cut_bytes, lat, bw, NULL};
	if (pn_split_check(&costs, err, sizeof err) < 0) {
		fprintf(stderr, "pipenet: %s\n", err);
		goto out;
	}
	struct pn_split best;
	pn_split_best(&costs, &best);
	int groups[PN_PLANNER_MAX_STAGES];
	static struct pn_split gplans[PN_PLANNER_MAX_STAGES];
	double gtotal;
	int ng = pn_split_best_groups(&costs, groups, gplans, &gtotal);

	struct plan_print pp = {json, 0, &best};
	if (json) {
		printf("{\"batch_size\": %ld, \"wire\": \"%s\", \"stages\": %d, \"candidates\": [",
		       batch, pn_dtype_name(wire), ns);
		pn_split_each(&costs, print_each, &pp);
		printf("], \"best\": ");
		print_split(&best, 1, 1);
		printf(", \"replication\": {\"groups\": [");
		for (int g = 0; g < ng; g++)
			printf("%s%d", g ? ", " : "", groups[g]);
		printf("], \"predicted_img_s\": %.3f}}\n", gtotal);
	} else {
		printf("%d stages, batch %ld, %s wire, %s\n", ns, batch, pn_dtype_name(wire),
		       profile ? profile : "identical stages timed on this machine");
		pn_split_each(&costs, print_each, &pp);
		printf("best: ");
		print_split(&best, 0, 1);
		printf("replication: %d group%s (", ng, ng > 1 ? "s" : "");
		for (int g = 0; g < ng; g++)
			printf("%s%d", g ? " + " : "", groups[g]);
		printf(" stages) %.2f img/s, %.2fx the best single pipeline\n", gtotal,
		       best.img_s > 0 ? gtotal / best.img_s : 0.0);
	}
	rc = 0;
out:
	pn_model_free(m);
	return rc;
}

/* ---- quantize ---- */

static void usage_quantize(FILE *f)
{
	fprintf(f,
		"usage: pipenet quantize --calibrate FILE|DIR --out M-int8.safetensors\n"
		"                        [--model M.safetensors] [--samples N] [--quiet]\n"
		"Post-training int8 quantisation: per-channel symmetric int8 weights (BN\n"
		"folded), per-tensor int8 activations with zero points, ranges calibrated on the\n"
		"first N images (default all) of a CIFAR-10 binary file or a JPEG class folder:\n"
		"training images, never the test set. Min/max and 99.99 %% percentile ranges are\n"
		"both tried and the more accurate on those images is written.\n");
}

static int cmd_quantize(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"calibrate", required_argument, NULL, 'c'},
		{"samples", required_argument, NULL, 'n'},
		{"out", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *model_path = NULL, *calib = NULL, *out_path = NULL;
	long samples = -1;
	int quiet = 0, c, rc = 1;

	while ((c = getopt_long(argc, argv, "m:c:n:o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			model_path = optarg;
			break;
		case 'c':
			calib = optarg;
			break;
		case 'n':
			if (parse_count("--samples", optarg, 1, PN_DATASET_MAX_IMAGES, &samples) <
			    0)
				return 2;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage_quantize(stdout);
			return 0;
		default:
			usage_quantize(stderr);
			return 2;
		}
	}
	if (!calib || !out_path || optind != argc) {
		usage_quantize(stderr);
		return 2;
	}
	if (!model_path)
		model_path = default_model();

	char err[512], tmp[4096];
	struct pn_model *m = pn_model_load(model_path, &pn_ops_scalar, err, sizeof err);
	struct pn_dataset *ds = NULL;
	uint8_t *images = NULL, *file = NULL;
	int *labels = NULL;
	FILE *f = NULL;
	size_t len = 0;
	tmp[0] = '\0';
	if (!m) {
		fprintf(stderr, "pipenet: %s\n", err);
		goto out;
	}
	ds = pn_dataset_open(calib, pn_model_classes(m), pn_model_num_classes(m), err, sizeof err);
	if (!ds) {
		fprintf(stderr, "pipenet: %s\n", err);
		goto out;
	}
	size_t n = pn_dataset_count(ds);
	if (samples >= 0 && (size_t)samples < n)
		n = (size_t)samples;
	if (n == 0) {
		fprintf(stderr, "pipenet: %s has no images\n", calib);
		goto out;
	}
	images = malloc(n * PN_IMAGE_BYTES);
	labels = malloc(n * sizeof *labels);
	if (!images || !labels) {
		fprintf(stderr, "pipenet: out of memory for %zu images\n", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (pn_dataset_get(ds, i, images + i * PN_IMAGE_BYTES, &labels[i], err,
				   sizeof err) < 0) {
			fprintf(stderr, "pipenet: %s\n", err);
			goto out;
		}
	const char *base = strrchr(calib, '/');
	file = pn_quantize(model_path, images, labels, (int)n, base && base[1] ? base + 1 : calib,
			   quiet ? NULL : stderr, &len, err, sizeof err);
	if (!file) {
		fprintf(stderr, "pipenet: %s\n", err);
		goto out;
	}
	/* Written aside, then renamed: never a half-written model. */
	snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
	f = fopen(tmp, "wb");
	int bad = !f || fwrite(file, 1, len, f) != len;
	if (f && fclose(f) != 0)
		bad = 1;
	if (bad || rename(tmp, out_path) != 0) {
		fprintf(stderr, "pipenet: %s: cannot write: %s\n", out_path, strerror(errno));
		if (f)
			remove(tmp);
		goto out;
	}
	if (!quiet)
		fprintf(stderr, "pipenet: wrote %s (%zu bytes)\n", out_path, len);
	rc = 0;
out:
	free(file);
	free(images);
	free(labels);
	pn_dataset_free(ds);
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
	{"plan", cmd_plan, "predict every split over N stages and choose the best"},
	{"quantize", cmd_quantize, "write an int8 model calibrated on training images"},
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
