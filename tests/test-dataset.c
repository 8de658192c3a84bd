/* Dataset readers: CIFAR-10 binary files, JPEG files and class folders.
 *
 * Broken inputs are built in a temporary folder; the shared CIFAR-10 data
 * (PIPENET_SHARED, default $top_srcdir/../shared) is used when present. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jpeglib.h>

#include "dataset.h"
#include "tap.h"

#define SIDE PN_IMAGE_SIDE
#define PLANE (SIDE * SIDE)

static const char *const cifar_classes[] = {"airplane", "automobile", "bird",  "cat",  "deer",
					    "dog",	"frog",	      "horse", "ship", "truck"};

static char tmp[256];
static char warnings[8192];
static int nwarnings;

static void capture_warn(const char *msg)
{
	size_t used = strlen(warnings);
	snprintf(warnings + used, sizeof(warnings) - used, "%s%s", used ? " | " : "", msg);
	nwarnings++;
}

static char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, sizeof(buf[0]), "%s/%s", tmp, name);
	return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		printf("Bail out! cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		printf("Bail out! cannot create %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Encodes w x h interleaved pixels of `comps` components (1 gray, 3 RGB,
 * 4 CMYK) at quality 100 without chroma subsampling; malloc'd. */
static uint8_t *encode_jpeg(const uint8_t *px, int w, int h, int comps, size_t *len)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	unsigned char *out = NULL;
	unsigned long outlen = 0;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &out, &outlen);
	c.image_width = (JDIMENSION)w;
	c.image_height = (JDIMENSION)h;
	c.input_components = comps;
	c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 100, TRUE);
	for (int k = 0; k < c.num_components; k++)
		c.comp_info[k].h_samp_factor = c.comp_info[k].v_samp_factor = 1;
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	*len = outlen;
	return out;
}

/* The test's own full-size decode to interleaved RGB, as the oracle. */
static uint8_t *decode_full(const uint8_t *buf, size_t len, int *w, int *h)
{
	struct jpeg_decompress_struct d;
	struct jpeg_error_mgr e;
	uint8_t *px;
	d.err = jpeg_std_error(&e);
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, buf, (unsigned long)len);
	jpeg_read_header(&d, TRUE);
	d.out_color_space = JCS_RGB;
	jpeg_start_decompress(&d);
	*w = (int)d.output_width;
	*h = (int)d.output_height;
	px = malloc((size_t)*w * *h * 3);
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = px + (size_t)d.output_scanline * *w * 3;
		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return px;
}

/* Area average by brute force: every source pixel against every output
 * pixel, overlaps measured in units of 1/(32 w) and 1/(32 h) of the image. */
static void area_reference(const uint8_t *px, int w, int h, uint8_t *rgb)
{
	for (int i = 0; i < SIDE; i++)
		for (int j = 0; j < SIDE; j++)
			for (int c = 0; c < 3; c++) {
				uint64_t sum = 0, area = (uint64_t)w * h;
				for (int y = 0; y < h; y++)
					for (int x = 0; x < w; x++) {
						long ox = (long)((j + 1) * w < 32 * x + 32
									 ? (j + 1) * w
									 : 32 * x + 32) -
							  (j * w > 32 * x ? j * w : 32 * x);
						long oy = (long)((i + 1) * h < 32 * y + 32
									 ? (i + 1) * h
									 : 32 * y + 32) -
							  (i * h > 32 * y ? i * h : 32 * y);
						if (ox > 0 && oy > 0)
							sum += (uint64_t)(ox * oy) *
							       px[((size_t)y * w + x) * 3 + c];
					}
				rgb[c * PLANE + i * SIDE + j] = (uint8_t)((sum + area / 2) / area);
			}
}

static int contains(const char *s, const char *what)
{
	return strstr(s, what) != NULL;
}

/* Opening `path` fails with a message containing the path and `why`. */
static void expect_open_error(const char *path, int nclasses, const char *why, const char *what)
{
	char err[1024] = "";
	struct pn_dataset *ds = pn_dataset_open(path, cifar_classes, nclasses, err, sizeof(err));
	if (!tap_ok(!ds && contains(err, path) && contains(err, why),
		    "%s: error names the path and '%s'", what, why))
		tap_diag("got: %s", ds ? "(opened)" : err);
	pn_dataset_free(ds);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_cifar_errors(void)
{
	uint8_t rec[3 * PN_CIFAR_RECORD_BYTES];
	char *p;

	p = tmp_path("empty.bin");
	write_file(p, "", 0);
	expect_open_error(p, 10, "empty file", "empty CIFAR file");

	p = tmp_path("odd.bin");
	memset(rec, 0, sizeof(rec));
	write_file(p, rec, PN_CIFAR_RECORD_BYTES + 1);
	expect_open_error(p, 10, "not a whole number of 3073-byte records",
			  "size not a multiple of 3073");
	expect_open_error(p, 10, "not a CIFAR-10 binary file", "size not a multiple of 3073");
	{
		char err[1024] = "";
		struct pn_dataset *ds = pn_dataset_open(p, cifar_classes, 10, err, sizeof(err));
		tap_ok(!ds && !contains(err, "3074"), "the error does not show the file's size");
		pn_dataset_free(ds);
	}

	p = tmp_path("label10.bin");
	rec[2 * PN_CIFAR_RECORD_BYTES] = 10;
	write_file(p, rec, sizeof(rec));
	expect_open_error(p, 10, "record 2 has a label outside 0..9", "label 10");
	expect_open_error(p, 0, "record 2 has a label outside 0..9", "label 10, no class list");

	p = tmp_path("label7.bin");
	rec[2 * PN_CIFAR_RECORD_BYTES] = 0;
	rec[PN_CIFAR_RECORD_BYTES] = 7;
	write_file(p, rec, sizeof(rec));
	expect_open_error(p, 5, "record 1 has a label outside 0..4", "label above nclasses");

	expect_open_error(tmp_path("missing.bin"), 10, "cannot open", "missing file");
	expect_open_error("/dev/null", 10, "not a regular file", "device");
}

static void test_cifar_records(void)
{
	uint8_t recs[3][PN_CIFAR_RECORD_BYTES], rgb[PN_IMAGE_BYTES];
	char err[512] = "", src[512];
	char *p = tmp_path("three.bin");
	struct pn_dataset *ds;
	int label = -5, ok = 1;

	for (int r = 0; r < 3; r++) {
		recs[r][0] = (uint8_t)(9 - r);
		for (int k = 0; k < PN_IMAGE_BYTES; k++)
			recs[r][1 + k] = (uint8_t)(k * 7 + r);
	}
	write_file(p, recs, sizeof(recs));
	ds = pn_dataset_open(p, cifar_classes, 10, err, sizeof(err));
	if (!tap_ok(ds != NULL, "small CIFAR file opens")) {
		tap_diag("%s", err);
		return;
	}
	tap_ok(pn_dataset_count(ds) == 3, "it has 3 records");
	for (size_t r = 0; r < 3; r++) {
		if (pn_dataset_get(ds, r, rgb, &label, err, sizeof(err)) < 0 ||
		    label != (int)(9 - r) || memcmp(rgb, recs[r] + 1, PN_IMAGE_BYTES) != 0)
			ok = 0;
	}
	tap_ok(ok, "records come back with their labels and pixels");
	tap_ok(pn_dataset_get(ds, 3, rgb, &label, err, sizeof(err)) < 0 && contains(err, p) &&
		       contains(err, "no record 3"),
	       "record 3 is out of range with a message (%s)", err);
	snprintf(err, sizeof(err), "%s record 1", p);
	tap_ok(strcmp(pn_dataset_source(ds, 1, src, sizeof(src)), err) == 0,
	       "source of record 1 is '%s'", src);
	tap_ok(pn_dataset_skipped(ds) == 0, "nothing skipped");
	/* The file changes under the reader: a checked error, not garbage. */
	if (truncate(p, PN_CIFAR_RECORD_BYTES) == 0)
		tap_ok(pn_dataset_get(ds, 2, rgb, &label, err, sizeof(err)) < 0 &&
			       contains(err, "record 2"),
		       "a file shortened after open gives an error (%s)", err);
	else
		tap_skip("truncate failed");
	pn_dataset_free(ds);
	pn_dataset_free(NULL);
	tap_ok(pn_dataset_count(NULL) == 0 && pn_dataset_skipped(NULL) == 0,
	       "NULL dataset is harmless");
}

/* A w x h RGB test image: smooth enough for JPEG at quality 100. */
static uint8_t *pattern(int w, int h, int block)
{
	uint8_t *px = malloc((size_t)w * h * 3);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			int by = y / block, bx = x / block;
			uint8_t *p = px + ((size_t)y * w + x) * 3;
			p[0] = (uint8_t)(40 + 5 * bx);
			p[1] = (uint8_t)(60 + 4 * by);
			p[2] = (uint8_t)(200 - 2 * bx - 2 * by);
		}
	return px;
}

/* Writes a JPEG of `px` to tmp/name, checks pn_dataset_open and
 * pn_jpeg_decode against the brute-force area average of libjpeg's own
 * decode; returns the malloc'd 32x32 record for further checks. */
static uint8_t *check_resize(const char *name, const uint8_t *px, int w, int h, int comps)
{
	size_t len;
	uint8_t *jpg = encode_jpeg(px, w, h, comps, &len);
	uint8_t *got = malloc(PN_IMAGE_BYTES), mem[PN_IMAGE_BYTES], want[PN_IMAGE_BYTES];
	int dw, dh, label = 0;
	uint8_t *full = decode_full(jpg, len, &dw, &dh);
	char err[512] = "", *p = tmp_path(name);
	struct pn_dataset *ds;

	area_reference(full, dw, dh, want);
	write_file(p, jpg, len);
	ds = pn_dataset_open(p, NULL, 0, err, sizeof(err));
	if (tap_ok(ds && pn_dataset_count(ds) == 1, "%s (%dx%d) opens as one image", name, w, h)) {
		tap_ok(pn_dataset_get(ds, 0, got, &label, err, sizeof(err)) == 0 && label == -1,
		       "%s: record 0 has no label", name);
		tap_ok(memcmp(got, want, PN_IMAGE_BYTES) == 0,
		       "%s: equals the area average of the full decode", name);
	} else {
		tap_diag("%s", err);
		memset(got, 0, PN_IMAGE_BYTES);
	}
	tap_ok(pn_jpeg_decode(jpg, len, mem, err, sizeof(err)) == 0 &&
		       memcmp(mem, want, PN_IMAGE_BYTES) == 0,
	       "%s: pn_jpeg_decode from memory agrees", name);
	pn_dataset_free(ds);
	free(full);
	free(jpg);
	return got;
}

static int max_diff_to_blocks(const uint8_t *rgb, const uint8_t *px, int w, int block)
{
	int worst = 0;
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < SIDE; i++)
			for (int j = 0; j < SIDE; j++) {
				int src = px[((size_t)(i * block) * w + j * block) * 3 + c];
				int d = abs(rgb[c * PLANE + i * SIDE + j] - src);
				worst = d > worst ? d : worst;
			}
	return worst;
}

static void test_jpeg_sizes(void)
{
	uint8_t *px, *got, *gray;
	int worst, ok;

	px = pattern(32, 32, 1);
	got = check_resize("same.jpg", px, 32, 32, 3);
	worst = max_diff_to_blocks(got, px, 32, 1);
	tap_ok(worst <= 6, "32x32 comes back within 6 of the source (max diff %d)", worst);
	free(got);
	free(px);

	/* 64x64 of constant 2x2 blocks: the 32x32 image is the blocks. */
	px = pattern(64, 64, 2);
	got = check_resize("blocks64.jpg", px, 64, 64, 3);
	worst = max_diff_to_blocks(got, px, 64, 2);
	tap_ok(worst <= 6, "64x64 of 2x2 blocks gives the block values within 6 (max diff %d)",
	       worst);
	free(got);
	free(px);

	/* 16x16 upsampled: each source pixel becomes an exact 2x2 block. */
	px = pattern(16, 16, 1);
	got = check_resize("small16.jpg", px, 16, 16, 3);
	ok = 1;
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < SIDE; i++)
			for (int j = 0; j < SIDE; j++)
				ok &= got[c * PLANE + i * SIDE + j] ==
				      got[c * PLANE + (i & ~1) * SIDE + (j & ~1)];
	tap_ok(ok, "16x16 upsamples to constant 2x2 blocks");
	free(got);
	free(px);

	/* Fractional edge weights both ways. */
	px = pattern(45, 23, 3);
	free(check_resize("odd45x23.jpg", px, 45, 23, 3));
	free(px);
	px = pattern(100, 7, 1);
	free(check_resize("wide100x7.jpg", px, 100, 7, 3));
	free(px);

	/* Gray 8x8 blocks of one value survive quality 100 exactly, so here
	 * the expected 32x32 image is known without any decoder. */
	gray = malloc(64 * 64);
	for (int y = 0; y < 64; y++)
		for (int x = 0; x < 64; x++)
			gray[y * 64 + x] = (uint8_t)(17 + 29 * (y / 8) + 3 * (x / 8));
	got = check_resize("gray-blocks64.jpg", gray, 64, 64, 1);
	ok = 1;
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < SIDE; i++)
			for (int j = 0; j < SIDE; j++)
				ok &= got[c * PLANE + i * SIDE + j] == gray[(2 * i) * 64 + 2 * j];
	tap_ok(ok, "64x64 gray of constant blocks gives exactly the block values");
	free(got);
	free(gray);

	/* Grayscale: R = G = B = the area-averaged gray. */
	gray = malloc(48 * 40);
	for (int k = 0; k < 48 * 40; k++)
		gray[k] = (uint8_t)(k % 48 * 5);
	got = check_resize("gray48x40.jpg", gray, 48, 40, 1);
	ok = memcmp(got, got + PLANE, PLANE) == 0 && memcmp(got, got + 2 * PLANE, PLANE) == 0;
	tap_ok(ok, "grayscale JPEG gives R = G = B");
	free(got);
	free(gray);
}

static void test_jpeg_cmyk(void)
{
	/* Adobe-style inverted CMYK (as Photoshop writes it): pure red. */
	uint8_t px[32 * 32 * 4], rgb[PN_IMAGE_BYTES];
	char err[512] = "";
	size_t len;
	uint8_t *jpg;
	int ok;
	for (int k = 0; k < 32 * 32; k++) {
		px[4 * k] = 255;
		px[4 * k + 1] = 0;
		px[4 * k + 2] = 0;
		px[4 * k + 3] = 255;
	}
	jpg = encode_jpeg(px, 32, 32, 4, &len);
	ok = pn_jpeg_decode(jpg, len, rgb, err, sizeof(err)) == 0;
	if (!tap_ok(ok, "CMYK JPEG decodes"))
		tap_diag("%s", err);
	tap_ok(ok && rgb[0] >= 250 && rgb[PLANE] <= 5 && rgb[2 * PLANE] <= 5,
	       "inverted CMYK red is RGB red (%d,%d,%d)", rgb[0], rgb[PLANE], rgb[2 * PLANE]);
	free(jpg);
}

static void test_jpeg_errors(void)
{
	uint8_t *px = pattern(32, 32, 1), rgb[PN_IMAGE_BYTES], garbage[600];
	char err[512] = "";
	size_t len;
	uint8_t *jpg = encode_jpeg(px, 32, 32, 3, &len);
	char *p;

	p = tmp_path("truncated.jpg");
	write_file(p, jpg, len / 2);
	expect_open_error(p, 10, "Premature end of JPEG file", "truncated JPEG");
	tap_ok(pn_jpeg_decode(jpg, len / 2, rgb, err, sizeof(err)) < 0 &&
		       contains(err, "Premature end"),
	       "truncated JPEG in memory is an error (%s)", err);
	tap_ok(pn_jpeg_decode(jpg, 40, rgb, err, sizeof(err)) < 0,
	       "JPEG cut inside its header is an error (%s)", err);
	tap_ok(pn_jpeg_decode(jpg, 0, rgb, err, sizeof(err)) < 0 && contains(err, "empty"),
	       "empty buffer is an error (%s)", err);

	/* Corrupt entropy-coded data: flip bytes in the middle of the scan. */
	{
		uint8_t *bad = malloc(len);
		memcpy(bad, jpg, len);
		for (size_t k = len * 2 / 3; k < len * 2 / 3 + 16 && k + 2 < len; k++)
			bad[k] = 0xff;
		tap_ok(pn_jpeg_decode(bad, len, rgb, err, sizeof(err)) < 0,
		       "corrupt scan data is an error (%s)", err);
		free(bad);
	}

	for (size_t k = 0; k < sizeof(garbage); k++)
		garbage[k] = (uint8_t)(k * 131 + 7);
	p = tmp_path("garbage.jpg");
	write_file(p, garbage, sizeof(garbage));
	expect_open_error(p, 10, "Not a JPEG file", "garbage JPEG");
	/* SOI, then garbage: opened as a JPEG because of its marker. */
	garbage[0] = 0xff;
	garbage[1] = 0xd8;
	garbage[2] = 0xff;
	p = tmp_path("garbage-soi.bin");
	write_file(p, garbage, sizeof(garbage));
	expect_open_error(p, 10, "bad JPEG", "garbage after a JPEG marker");

	p = tmp_path("empty.jpeg");
	write_file(p, "", 0);
	expect_open_error(p, 10, "empty file", "empty JPEG");
	free(jpg);
	free(px);

	/* Over the size limit: 4097 pixels wide. */
	px = calloc(PN_JPEG_MAX_SIDE + 1, 8);
	jpg = encode_jpeg(px, PN_JPEG_MAX_SIDE + 1, 8, 1, &len);
	p = tmp_path("wide.jpg");
	write_file(p, jpg, len);
	expect_open_error(p, 10, "4097x8 pixels; the limit is 4096", "too large JPEG");
	free(jpg);
	free(px);
}

static void put_jpeg(const char *rel, int shade)
{
	uint8_t px[32 * 32 * 3];
	size_t len;
	uint8_t *jpg;
	memset(px, shade, sizeof(px));
	jpg = encode_jpeg(px, 32, 32, 3, &len);
	write_file(tmp_path(rel), jpg, len);
	free(jpg);
}

static void test_folders(void)
{
	static const char *const want[] = {"classes/airplane/x.jpg", "classes/cat/a.JPG",
					   "classes/cat/b.jpg", "classes/cat/c.jpeg"};
	static const int want_label[] = {0, 3, 3, 3};
	static const int want_shade[] = {10, 200, 100, 150};
	char err[1024] = "", src[512], full[600];
	uint8_t rgb[PN_IMAGE_BYTES];
	struct pn_dataset *ds;
	int ok = 1, label;

	make_dir(tmp_path("classes"));
	make_dir(tmp_path("classes/cat"));
	make_dir(tmp_path("classes/airplane"));
	make_dir(tmp_path("classes/ship"));
	make_dir(tmp_path("classes/truck"));
	put_jpeg("classes/cat/b.jpg", 100);
	put_jpeg("classes/cat/a.JPG", 200);
	put_jpeg("classes/cat/c.jpeg", 150);
	put_jpeg("classes/cat/.hidden.jpg", 1);
	write_file(tmp_path("classes/cat/notes.txt"), "hi", 2);
	put_jpeg("classes/airplane/x.jpg", 10);
	write_file(tmp_path("classes/ship/bad.jpg"), "not a jpeg at all", 17);
	write_file(tmp_path("classes/README"), "x", 1);

	warnings[0] = '\0';
	nwarnings = 0;
	ds = pn_dataset_open(tmp_path("classes/"), cifar_classes, 10, err, sizeof(err));
	if (!tap_ok(ds != NULL, "class folder opens")) {
		tap_diag("%s", err);
		return;
	}
	/* Indexed, not decoded: the corrupt one is found when read. */
	tap_ok(pn_dataset_count(ds) == 5, "5 images indexed (got %zu)", pn_dataset_count(ds));
	tap_ok(pn_dataset_skipped(ds) == 0 && nwarnings == 0, "nothing decoded at open");
	tap_ok(pn_dataset_get(ds, 4, rgb, &label, err, sizeof(err)) == 0 && label == -1 &&
		       rgb[0] == 0 && rgb[PN_IMAGE_BYTES - 1] == 0,
	       "the corrupt JPEG reads as a black image without a label");
	tap_ok(pn_dataset_skipped(ds) == 1 && nwarnings == 1,
	       "it is counted as skipped and warned about");
	tap_ok(contains(warnings, tmp_path("classes/ship/bad.jpg")) &&
		       contains(warnings, "Not a JPEG file"),
	       "the warning names the file and the reason: %s", warnings);
	tap_ok(pn_dataset_get(ds, 4, rgb, &label, err, sizeof(err)) == 0 && label == -1 &&
		       pn_dataset_skipped(ds) == 1 && nwarnings == 1,
	       "read again, it is neither decoded nor warned about again");
	for (size_t i = 0; i < 4 && i < pn_dataset_count(ds); i++) {
		snprintf(full, sizeof(full), "%s/%s", tmp, want[i]);
		if (pn_dataset_get(ds, i, rgb, &label, err, sizeof(err)) < 0 ||
		    label != want_label[i] || abs(rgb[500] - want_shade[i]) > 2 ||
		    strcmp(pn_dataset_source(ds, i, src, sizeof(src)), full) != 0) {
			tap_diag("record %zu: label %d shade %d source %s", i, label, rgb[500],
				 src);
			ok = 0;
		}
	}
	tap_ok(ok, "classes in list order, files sorted by name, labels = class index");
	pn_dataset_free(ds);

	expect_open_error(tmp_path("classes"), 3,
			  "is not one of the classes (airplane, automobile, bird)",
			  "class folder not in a shorter list");
	make_dir(tmp_path("unknown"));
	make_dir(tmp_path("unknown/cats"));
	put_jpeg("unknown/cats/a.jpg", 5);
	expect_open_error(tmp_path("unknown"), 10, "'cats'", "unknown class folder");

	make_dir(tmp_path("empty"));
	expect_open_error(tmp_path("empty"), 10, "no images", "empty folder");
	make_dir(tmp_path("bins"));
	write_file(tmp_path("bins/test_batch.bin"), "", 0);
	expect_open_error(tmp_path("bins"), 10, "give the .bin file", "folder of .bin files");
	make_dir(tmp_path("nojpeg"));
	make_dir(tmp_path("nojpeg/dog"));
	expect_open_error(tmp_path("nojpeg"), 10, "no .jpg or .jpeg files",
			  "class folders without JPEGs");
	make_dir(tmp_path("allbad"));
	make_dir(tmp_path("allbad/frog"));
	write_file(tmp_path("allbad/frog/1.jpg"), "", 0);
	nwarnings = 0;
	ds = pn_dataset_open(tmp_path("allbad"), cifar_classes, 10, err, sizeof(err));
	tap_ok(ds && pn_dataset_get(ds, 0, rgb, &label, err, sizeof(err)) == 0 && label == -1 &&
		       nwarnings == 1,
	       "a folder of one empty JPEG opens; reading it warns");
	pn_dataset_free(ds);
	expect_open_error(tmp_path("allbad"), 0, "needs the list of class names",
			  "folder without class names");
}

static void test_shared(void)
{
	const char *shared = getenv("PIPENET_SHARED");
	const char *top = getenv("top_srcdir");
	char dir[1024], bin[1200], jpegs[1200], err[1024] = "", src[1200];
	uint8_t rgb[PN_IMAGE_BYTES], rec[PN_IMAGE_BYTES];
	struct pn_dataset *ds, *js;
	struct stat st;
	int label, ok, prev = 0, hist[10] = {0};
	double worst = 0;

	if (shared && *shared)
		snprintf(dir, sizeof(dir), "%s", shared);
	else
		snprintf(dir, sizeof(dir), "%s/../shared", top && *top ? top : PN_TOP_SRCDIR);
	snprintf(bin, sizeof(bin), "%s/data/cifar10/test_batch.bin", dir);
	snprintf(jpegs, sizeof(jpegs), "%s/data/cifar10/jpeg-sample", dir);
	if (stat(bin, &st) < 0) {
		tap_skip("no shared CIFAR-10 data (set PIPENET_SHARED)");
		return;
	}
	ds = pn_dataset_open(bin, cifar_classes, 10, err, sizeof(err));
	if (!tap_ok(ds != NULL, "test_batch.bin opens")) {
		tap_diag("%s", err);
		return;
	}
	tap_ok(pn_dataset_count(ds) == 10000, "test_batch.bin has 10000 records");
	ok = 1;
	for (size_t i = 0; i < pn_dataset_count(ds); i++) {
		if (pn_dataset_get(ds, i, rgb, &label, err, sizeof(err)) < 0 || label < 0 ||
		    label > 9) {
			ok = 0;
			break;
		}
		hist[label]++;
	}
	tap_ok(ok, "every record reads with a label in 0..9");
	ok = 1;
	for (int c = 0; c < 10; c++)
		ok &= hist[c] == 1000;
	tap_ok(ok, "1000 records per class");
	tap_ok(pn_dataset_get(ds, 0, rgb, &label, err, sizeof(err)) == 0 && label == 0,
	       "record 0 is an airplane");

	js = pn_dataset_open(jpegs, cifar_classes, 10, err, sizeof(err));
	if (!tap_ok(js != NULL, "jpeg-sample opens")) {
		tap_diag("%s", err);
		pn_dataset_free(ds);
		return;
	}
	tap_ok(pn_dataset_count(js) == 200 && pn_dataset_skipped(js) == 0,
	       "jpeg-sample has 200 images, none skipped");
	ok = 1;
	for (size_t i = 0; i < pn_dataset_count(js); i++) {
		char want[64];
		const char *s;
		unsigned n;
		double mad = 0;
		if (pn_dataset_get(js, i, rgb, &label, err, sizeof(err)) < 0 || label < 0 ||
		    label > 9) {
			ok = 0;
			break;
		}
		s = pn_dataset_source(js, i, src, sizeof(src));
		snprintf(want, sizeof(want), "/%s/", cifar_classes[label]);
		if (!contains(s, want) || label < prev) {
			ok = 0;
			tap_diag("%s has label %d", s, label);
			continue;
		}
		/* Records are sorted by class, 1000 each: CLASS/NNNN.jpg is
		 * record 1000 * class + NNNN. */
		prev = label;
		if (sscanf(strrchr(s, '/') + 1, "%4u.jpg", &n) != 1 ||
		    pn_dataset_get(ds, 1000 * (size_t)label + n, rec, NULL, err, sizeof(err)) < 0) {
			ok = 0;
			continue;
		}
		for (int k = 0; k < PN_IMAGE_BYTES; k++)
			mad += abs(rgb[k] - rec[k]);
		mad /= PN_IMAGE_BYTES;
		worst = mad > worst ? mad : worst;
	}
	tap_ok(ok, "sample labels are their folder's class index, in class order");
	tap_ok(worst < 1.0, "each sample JPEG matches its test_batch record (worst MAD %.3f)",
	       worst);
	pn_dataset_free(js);
	pn_dataset_free(ds);
}

/* Encodes a w x h RGB image as a progressive JPEG of 1 + 3 * nbands scans:
 * the DC of all components, then each component's AC coefficients 1..63
 * in nbands spectral bands (nbands <= 63); malloc'd. */
static uint8_t *encode_progressive(const uint8_t *px, int w, int h, int nbands, size_t *len)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	jpeg_scan_info *scans = calloc((size_t)(1 + 3 * nbands), sizeof(*scans));
	unsigned char *out = NULL;
	unsigned long outlen = 0;
	int n = 0;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &out, &outlen);
	c.image_width = (JDIMENSION)w;
	c.image_height = (JDIMENSION)h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 90, TRUE);
	scans[n].comps_in_scan = 3;
	for (int k = 0; k < 3; k++)
		scans[n].component_index[k] = k;
	n++;
	for (int k = 0; k < 3; k++)
		for (int b = 0; b < nbands; b++) {
			scans[n].comps_in_scan = 1;
			scans[n].component_index[0] = k;
			scans[n].Ss = 1 + b * 63 / nbands;
			scans[n].Se = (b + 1) * 63 / nbands;
			n++;
		}
	c.scan_info = scans;
	c.num_scans = n;
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * 3);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(scans);
	*len = outlen;
	return out;
}

/* Scan and size limits, the decode a slice at a time, downscaled decoding. */
static void test_jpeg_limits(void)
{
	uint8_t *px = pattern(256, 192, 3), rgb[PN_IMAGE_BYTES], ref[PN_IMAGE_BYTES],
		step[PN_IMAGE_BYTES];
	char err[512] = "";
	size_t len;
	int w, h, status, rc, steps = 0, worst = 0;
	uint8_t *full, *jpg;
	struct pn_jpeg *j;

	/* 1 + 3 * 33 = 100 scans: at the limit, decodes. */
	jpg = encode_progressive(px, 256, 192, 33, &len);
	full = decode_full(jpg, len, &w, &h);
	area_reference(full, w, h, ref);
	tap_ok(pn_jpeg_decode(jpg, len, rgb, err, sizeof(err)) == 0,
	       "a progressive JPEG of 100 scans decodes (%s)", err);
	j = pn_jpeg_new(jpg, len, &status, err, sizeof(err));
	rc = j ? 1 : -1;
	while (rc == 1 && steps < 100000) {
		rc = pn_jpeg_step(j, 4, step, &status, err, sizeof(err));
		steps++;
	}
	pn_jpeg_free(j);
	tap_ok(rc == 0 && steps > 100, "a slice at a time it takes %d steps of 4 rows", steps);
	tap_ok(memcmp(step, rgb, sizeof(rgb)) == 0, "and gives the same record");
	for (int k = 0; k < PN_IMAGE_BYTES; k++)
		worst = abs(rgb[k] - ref[k]) > worst ? abs(rgb[k] - ref[k]) : worst;
	tap_ok(worst <= 6, "it matches the full-size area average within 6 (%d)", worst);
	free(full);
	free(jpg);

	/* 1 + 3 * 34 = 103 scans: over. */
	jpg = encode_progressive(px, 256, 192, 34, &len);
	tap_ok(pn_jpeg_decode(jpg, len, rgb, err, sizeof(err)) < 0 &&
		       contains(err, "more than 100 scans"),
	       "103 scans are refused (%s)", err);
	j = pn_jpeg_new(jpg, len, &status, err, sizeof(err));
	rc = j ? 1 : -1;
	while (rc == 1)
		rc = pn_jpeg_step(j, 64, rgb, &status, err, sizeof(err));
	pn_jpeg_free(j);
	tap_ok(rc < 0 && status == 413, "stepping, with status 413 (%d)", status);
	free(jpg);
	free(px);

	/* A large image is decoded downscaled and still averages right. */
	px = pattern(1024, 768, 3);
	jpg = encode_jpeg(px, 1024, 768, 3, &len);
	full = decode_full(jpg, len, &w, &h);
	area_reference(full, w, h, ref);
	worst = 0;
	err[0] = 0;
	tap_ok(pn_jpeg_decode(jpg, len, rgb, err, sizeof(err)) == 0, "1024x768 decodes %s", err);
	for (int k = 0; k < PN_IMAGE_BYTES; k++)
		worst = abs(rgb[k] - ref[k]) > worst ? abs(rgb[k] - ref[k]) : worst;
	tap_ok(worst <= 6, "1024x768 at 1/4 scale within 6 of the full-size area average (%d)",
	       worst);
	free(full);
	free(jpg);
	free(px);

	/* Too large by its header: 413 before any pixel. */
	px = calloc(4097 * 8, 1);
	jpg = encode_jpeg(px, 8, 4097, 1, &len);
	j = pn_jpeg_new(jpg, len, &status, err, sizeof(err));
	tap_ok(!j && status == 413 && contains(err, "limit is 4096"),
	       "8x4097 is refused at its header with 413 (%s)", err);
	pn_jpeg_free(j);
	free(jpg);
	free(px);
}

static void make_link(const char *target, const char *path)
{
	if (symlink(target, path) < 0 && errno != EEXIST) {
		printf("Bail out! cannot link %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* A name in the data directory: the status (0 opened) and the message. */
static int open_in(struct pn_datadir *d, const char *name, char *err, size_t errlen)
{
	int status = 0;
	struct pn_dataset *ds =
		pn_dataset_open_at(d, name, cifar_classes, 10, &status, err, errlen);
	if (ds) {
		pn_dataset_free(ds);
		return 0;
	}
	return status;
}

/* Whether this kernel (or emulator: qemu-user has no openat2) opens
 * files with openat2; without it the resolver walks. */
static int have_openat2(void)
{
#ifdef SYS_openat2
	struct {
		uint64_t flags, mode, resolve;
	} how = {O_RDONLY, 0, 0};
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));
	if (fd >= 0) {
		close(fd);
		return 1;
	}
#endif
	return 0;
}

static void test_datadir(int walk)
{
	static const struct {
		const char *name;
		int status, walk_status; /* the status with openat2, and walking */
		const char *what;
	} cases[] = {
		{"ok.bin", 0, 0, "a CIFAR file"},
		{"./sub//x.bin", 0, 0, "in a sub-folder"},
		{"imgs", 0, 0, "a class folder"},
		{"imgs/", 0, 0, "a class folder with a slash"},
		{"../outside.bin", 403, 403, "'..' out"},
		{"sub/../ok.bin", 403, 403, "'..' even when it comes back"},
		{"out", 403, 403, "a symlink to a file outside"},
		{"outdir/outside.bin", 403, 403, "through a symlink to a folder outside"},
		{"in", 0, 403, "a symlink inside (not followed when walking)"},
		{"/etc/passwd", 403, 403, "an absolute path outside"},
		{"/", 403, 403, "the root folder"},
		{"fifo", 400, 400, "a FIFO"},
		{"missing.bin", 404, 404, "a missing file"},
		{"ok.bin/x", 404, 404, "under a file"},
		{"", 400, 400, "an empty name"},
		{"notes.txt", 400, 400, "not a dataset"},
	};
	char err[1024], name[1200], data[600];
	uint8_t rec[PN_CIFAR_RECORD_BYTES] = {0};
	struct pn_datadir *d;

	snprintf(data, sizeof(data), "%s", tmp_path("data"));
	make_dir(data);
	make_dir(tmp_path("data/sub"));
	make_dir(tmp_path("data/imgs"));
	make_dir(tmp_path("data/imgs/cat"));
	make_dir(tmp_path("data/deep"));
	make_dir(tmp_path("data/deep/er"));
	make_dir(tmp_path("data/deep/er/dog"));
	write_file(tmp_path("data/ok.bin"), rec, sizeof(rec));
	write_file(tmp_path("data/sub/x.bin"), rec, sizeof(rec));
	write_file(tmp_path("data/notes.txt"), "secret words", 12);
	write_file(tmp_path("outside.bin"), rec, sizeof(rec));
	put_jpeg("data/imgs/cat/a.jpg", 50);
	put_jpeg("data/imgs/cat/b.jpg", 60);
	put_jpeg("data/deep/er/dog/c.jpg", 70);
	make_link("../outside.bin", tmp_path("data/out"));
	make_link("..", tmp_path("data/outdir"));
	make_link("ok.bin", tmp_path("data/in"));
	if (mkfifo(tmp_path("data/fifo"), 0600) < 0 && errno != EEXIST)
		printf("Bail out! mkfifo: %s\n", strerror(errno));

	pn_open_beneath_walk_only(walk);
	d = pn_datadir_open(data, err, sizeof(err));
	if (!tap_ok(d != NULL, "%s: the data directory opens", walk ? "walking" : "openat2")) {
		tap_diag("%s", err);
		return;
	}
	if (!walk && !have_openat2())
		tap_diag("openat2 is not available here: the resolver walks in both passes");
	int walking = walk || !have_openat2();
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int want = walking ? cases[k].walk_status : cases[k].status;
		err[0] = '\0';
		int got = open_in(d, cases[k].name, err, sizeof(err));
		if (!tap_ok(got == want, "%s: \"%s\" (%s): %d", walk ? "walking" : "openat2",
			    cases[k].name, cases[k].what, want))
			tap_diag("got %d: %s", got, err);
		if (got)
			tap_ok(!contains(err, "secret") && !contains(err, "bytes"),
			       "  its message shows no content or size: %s", err);
	}
	snprintf(name, sizeof(name), "%s/ok.bin", data);
	tap_ok(open_in(d, name, err, sizeof(err)) == 0, "an absolute path inside opens");
	{
		struct pn_dataset_info info[8];
		size_t n = pn_datadir_list(d, cifar_classes, 10, info, 8);
		char all[1024] = "";
		for (size_t k = 0; k < n; k++)
			snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s:%s:%ld:%ld",
				 k ? " " : "", info[k].name, info[k].kind, info[k].records,
				 info[k].classes);
		tap_ok(strcmp(all, "deep/er:jpeg-folder:1:1 imgs:jpeg-folder:2:1 "
				   "ok.bin:cifar10-bin:1:10 sub/x.bin:cifar10-bin:1:10") == 0,
		       "the listing: %s", all);
		tap_ok(pn_datadir_list(d, cifar_classes, 10, info, 2) == 2,
		       "the listing stops at its maximum");
	}
	pn_datadir_free(d);
	pn_open_beneath_walk_only(0);
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char sub[1024];
	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
				remove_tree(sub);
			}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	int fds;

	snprintf(tmp, sizeof(tmp), "%s/pn-dataset-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmp)) {
		printf("Bail out! mkdtemp %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	fds = count_fds();
	pn_dataset_set_warn(capture_warn);
	test_cifar_errors();
	test_cifar_records();
	test_jpeg_sizes();
	test_jpeg_cmyk();
	test_jpeg_errors();
	test_folders();
	test_jpeg_limits();
	test_datadir(0);
	test_datadir(1);
	pn_dataset_set_warn(NULL);
	test_shared();
	if (fds >= 0)
		tap_ok(count_fds() == fds, "no file descriptor leaked");
	remove_tree(tmp);
	return tap_done();
}
