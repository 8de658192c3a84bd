/* logits-cmp A B CLASSES: compares two raw float32 logits files
 * [N][CLASSES] and prints "records N identical 0|1 top1_agree K
 * max_abs_diff D". Exit 1 when the sizes differ. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float *load(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	rewind(f);
	float *v = malloc(size > 0 ? (size_t)size : 1);
	*n = (size_t)size / sizeof(float);
	if (!v || fread(v, sizeof(float), *n, f) != *n) {
		fclose(f);
		free(v);
		return NULL;
	}
	fclose(f);
	return v;
}

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: logits-cmp A.f32 B.f32 CLASSES\n");
		return 2;
	}
	int classes = atoi(argv[3]);
	size_t na, nb;
	float *a = load(argv[1], &na), *b = load(argv[2], &nb);
	if (!a || !b || na != nb || classes < 1 || na % (size_t)classes) {
		fprintf(stderr, "logits-cmp: sizes differ or are not [N][%d]\n", classes);
		return 1;
	}
	size_t records = na / (size_t)classes, agree = 0;
	int identical = 1;
	double maxdiff = 0;
	for (size_t i = 0; i < na; i++) {
		double d = fabs((double)a[i] - (double)b[i]);
		identical &= a[i] == b[i];
		if (d > maxdiff)
			maxdiff = d;
	}
	for (size_t r = 0; r < records; r++)
		agree += argmax(a + r * (size_t)classes, classes) ==
			 argmax(b + r * (size_t)classes, classes);
	printf("records %zu identical %d top1_agree %zu max_abs_diff %g\n", records, identical,
	       agree, maxdiff);
	free(a);
	free(b);
	return 0;
}
