/* Test inputs for cluster-data.sh, written with libjpeg:
 *
 *   make-jpeg scans OUT SIDE MAXSCANS
 *       a SIDE x SIDE progressive JPEG of as many scans as the format
 *       allows up to MAXSCANS (at most 380: DC, each AC coefficient of
 *       each component alone, in two successive-approximation passes)
 *   make-jpeg folder DIR N W H
 *       a class folder dataset: DIR/CLASS/imgNNNN.jpg, N images of W x H
 *       spread over the ten CIFAR-10 classes, each a different pattern
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

static const char *const classes[] = {"airplane", "automobile", "bird",	 "cat",	 "deer",
				      "dog",	  "frog",	"horse", "ship", "truck"};

/* A smooth pattern with some texture, different for each seed. */
static void pattern(unsigned char *row, int w, int y, int seed)
{
	for (int x = 0; x < w; x++) {
		row[3 * x] = (unsigned char)((x * 255 / w + seed * 37) & 255);
		row[3 * x + 1] =
			(unsigned char)((y * 255 / (y + w) + seed * 11 + ((x ^ y) & 15)) & 255);
		row[3 * x + 2] = (unsigned char)(((x + y) / 8 * 13 + seed * 5) & 255);
	}
}

static int write_jpeg(const char *path, int w, int h, int seed, int maxscans)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	jpeg_scan_info scans[380];
	unsigned char *row = malloc((size_t)w * 3);
	FILE *f = fopen(path, "wb");
	int n = 0;
	if (!f || !row) {
		fprintf(stderr, "make-jpeg: %s: %s\n", path, strerror(errno));
		free(row);
		if (f)
			fclose(f);
		return -1;
	}
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, f);
	c.image_width = (JDIMENSION)w;
	c.image_height = (JDIMENSION)h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 85, TRUE);
	if (maxscans > 0) {
		/* DC at Al=1; each AC coefficient of each component at Al=1;
		 * then the refinements of both (Ah=1, Al=0). */
		for (int pass = 0; pass < 2; pass++) {
			memset(&scans[n], 0, sizeof(scans[n]));
			scans[n].comps_in_scan = 3;
			for (int k = 0; k < 3; k++)
				scans[n].component_index[k] = k;
			scans[n].Ah = pass;
			scans[n].Al = 1 - pass;
			n++;
			for (int k = 0; k < 3; k++)
				for (int s = 1; s <= 63; s++) {
					memset(&scans[n], 0, sizeof(scans[n]));
					scans[n].comps_in_scan = 1;
					scans[n].component_index[0] = k;
					scans[n].Ss = scans[n].Se = s;
					scans[n].Ah = pass;
					scans[n].Al = 1 - pass;
					n++;
				}
		}
		if (maxscans < n) {
			/* Fewer: the first pass's AC scans become bands. */
			int bands = (maxscans - 1) / 3;
			n = 0;
			memset(scans, 0, sizeof(scans));
			scans[n].comps_in_scan = 3;
			for (int k = 0; k < 3; k++)
				scans[n].component_index[k] = k;
			n++;
			for (int k = 0; k < 3; k++)
				for (int b = 0; b < bands; b++) {
					scans[n].comps_in_scan = 1;
					scans[n].component_index[0] = k;
					scans[n].Ss = 1 + b * 63 / bands;
					scans[n].Se = (b + 1) * 63 / bands;
					n++;
				}
		}
		c.scan_info = scans;
		c.num_scans = n;
	}
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		pattern(row, w, (int)c.next_scanline, seed);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
	if (fclose(f) != 0) {
		fprintf(stderr, "make-jpeg: %s: write failed\n", path);
		return -1;
	}
	if (maxscans > 0)
		printf("%d scans\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "scans") == 0) {
		int side = atoi(argv[3]), maxscans = atoi(argv[4]);
		if (side < 8 || maxscans < 4)
			return 2;
		return write_jpeg(argv[2], side, side, 1, maxscans) ? 1 : 0;
	}
	if (argc == 6 && strcmp(argv[1], "folder") == 0) {
		int n = atoi(argv[3]), w = atoi(argv[4]), h = atoi(argv[5]);
		char path[4096];
		if (n < 1 || w < 1 || h < 1)
			return 2;
		mkdir(argv[2], 0755);
		for (int k = 0; k < 10; k++) {
			snprintf(path, sizeof(path), "%s/%s", argv[2], classes[k]);
			mkdir(path, 0755);
		}
		for (int i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%s/img%04d.jpg", argv[2], classes[i % 10],
				 i);
			if (write_jpeg(path, w, h, i, 0) != 0)
				return 1;
		}
		return 0;
	}
	fprintf(stderr, "usage: make-jpeg scans OUT SIDE MAXSCANS | folder DIR N W H\n");
	return 2;
}
