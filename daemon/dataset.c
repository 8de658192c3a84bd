/* Dataset readers: CIFAR-10 binary records read on demand with pread, and
 * JPEG files decoded with libjpeg and area-averaged to 32x32.
 *
 * A CIFAR file keeps only its descriptor open (its labels are checked in
 * one pass at open). A JPEG file or class folder is decoded whole at open
 * into 3072 bytes per image.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>

#include "dataset.h"

#define PLANE (PN_IMAGE_SIDE * PN_IMAGE_SIDE)
/* Labels are checked this many records at a time. */
#define CIFAR_CHUNK_RECORDS 256
/* Bounds for hostile JPEGs: memory libjpeg may use for whole-image buffers
 * (progressive and multi-scan files), and the number of scans. */
#define JPEG_MAX_MEMORY (256L * 1024 * 1024)
#define JPEG_MAX_SCANS 500

enum ds_kind { DS_CIFAR, DS_IMAGES };

struct pn_dataset {
	enum ds_kind kind;
	char *path;
	size_t count;
	size_t skipped;
	/* DS_CIFAR: the open file and the label bound. */
	int fd;
	int nlabels;
	/* DS_IMAGES: count decoded records, their labels and files. */
	uint8_t *pixels;
	int *labels;
	char **paths;
	size_t cap;
};

static void warn_stderr(const char *msg)
{
	fprintf(stderr, "warning: %s\n", msg);
}

static void (*ds_warn)(const char *msg) = warn_stderr;

void pn_dataset_set_warn(void (*warn)(const char *msg))
{
	ds_warn = warn ? warn : warn_stderr;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int has_jpeg_suffix(const char *name)
{
	size_t n = strlen(name);
	return (n > 4 && strcasecmp(name + n - 4, ".jpg") == 0) ||
	       (n > 5 && strcasecmp(name + n - 5, ".jpeg") == 0);
}

static int has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), m = strlen(suffix);
	return n > m && strcmp(name + n - m, suffix) == 0;
}

/* Reads exactly len bytes at off; 0, or -1 with errno (0 at end of file). */
static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static const char *read_error(void)
{
	return errno ? strerror(errno) : "unexpected end of file (did the file change?)";
}

/* ---- JPEG decoding ---- */

struct jpeg_fail {
	struct jpeg_error_mgr pub;
	struct jpeg_progress_mgr progress;
	jmp_buf jump;
	char msg[JMSG_LENGTH_MAX + 128];
};

static void jpeg_fail_now(struct jpeg_fail *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void jpeg_fail_now(struct jpeg_fail *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	longjmp(f->jump, 1);
}

/* libjpeg's fatal errors come back to the setjmp in jpeg_to_record. */
static void jpeg_fail_exit(j_common_ptr cinfo)
{
	struct jpeg_fail *f = (struct jpeg_fail *)cinfo->err;
	if (cinfo->err->msg_code == JERR_NO_BACKING_STORE)
		jpeg_fail_now(f, "decoding it needs more than the %ld MB memory limit",
			      JPEG_MAX_MEMORY >> 20);
	cinfo->err->format_message(cinfo, f->msg);
	longjmp(f->jump, 1);
}

/* Warnings mean corrupt or truncated data, which libjpeg would paper
 * over with grey: they are errors here, except the two harmless ones. */
static void jpeg_fail_emit(j_common_ptr cinfo, int level)
{
	int code = cinfo->err->msg_code;
	if (level >= 0 || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM)
		return;
	jpeg_fail_exit(cinfo);
}

/* A progressive file can hold thousands of tiny scans: bound the work. */
static void jpeg_scan_limit(j_common_ptr cinfo)
{
	j_decompress_ptr d = (j_decompress_ptr)cinfo;
	if (cinfo->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS)
		jpeg_fail_now((struct jpeg_fail *)cinfo->err, "more than %d scans", JPEG_MAX_SCANS);
}

/* Output pixel j along an axis of n source pixels covers [j*n, (j+1)*n)
 * and source pixel x covers [32x, 32x + 32), in units of 1/32 source
 * pixel; the overlap is x's weight in j. The weights of one j sum to n. */
static unsigned overlap(unsigned x, unsigned j, unsigned n)
{
	unsigned lo = 32 * x > j * n ? 32 * x : j * n;
	unsigned hi = 32 * x + 32 < (j + 1) * n ? 32 * x + 32 : (j + 1) * n;
	return hi > lo ? hi - lo : 0;
}

/* CMYK as Adobe writes it (inverted, saw_Adobe_marker) or plain, to RGB,
 * in place: pixel x moves from 4x to 3x. */
static void cmyk_to_rgb(uint8_t *row, unsigned width, int inverted)
{
	for (unsigned x = 0; x < width; x++) {
		unsigned c = row[4 * x], m = row[4 * x + 1], y = row[4 * x + 2], k = row[4 * x + 3];
		if (!inverted) {
			c = 255 - c;
			m = 255 - m;
			y = 255 - y;
			k = 255 - k;
		}
		row[3 * x] = (uint8_t)((c * k + 127) / 255);
		row[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
		row[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
	}
}

/* Decodes from f when it is not NULL, else from buf/len, to a planar
 * 32x32 record. 0, or -1 with the reason in why. */
static int jpeg_to_record(FILE *f, const uint8_t *buf, size_t len, uint8_t *rgb, char *why,
			  size_t whylen)
{
	struct jpeg_decompress_struct cinfo;
	struct jpeg_fail fail;
	uint64_t acc[PN_IMAGE_SIDE][PN_IMAGE_SIDE][3];
	uint64_t rowsum[PN_IMAGE_SIDE][3];
	unsigned xfirst[PN_IMAGE_SIDE], xend[PN_IMAGE_SIDE];
	JSAMPARRAY row;
	unsigned w, h;
	int cmyk;

	memset(&cinfo, 0, sizeof(cinfo));
	cinfo.err = jpeg_std_error(&fail.pub);
	fail.pub.error_exit = jpeg_fail_exit;
	fail.pub.emit_message = jpeg_fail_emit;
	fail.progress.progress_monitor = jpeg_scan_limit;
	fail.msg[0] = '\0';
	if (setjmp(fail.jump)) {
		jpeg_destroy_decompress(&cinfo);
		snprintf(why, whylen, "%s", fail.msg[0] ? fail.msg : "unknown libjpeg error");
		return -1;
	}
	jpeg_create_decompress(&cinfo);
	cinfo.mem->max_memory_to_use = JPEG_MAX_MEMORY;
	cinfo.progress = &fail.progress;
	if (f)
		jpeg_stdio_src(&cinfo, f);
	else
		jpeg_mem_src(&cinfo, buf, (unsigned long)len);
	jpeg_read_header(&cinfo, TRUE);
	w = cinfo.image_width;
	h = cinfo.image_height;
	if (w == 0 || h == 0 || w > PN_JPEG_MAX_SIDE || h > PN_JPEG_MAX_SIDE)
		jpeg_fail_now(&fail, "image is %ux%u pixels; the limit is %d on each side", w, h,
			      PN_JPEG_MAX_SIDE);
	switch (cinfo.jpeg_color_space) {
	case JCS_GRAYSCALE:
	case JCS_YCbCr:
	case JCS_RGB:
		cinfo.out_color_space = JCS_RGB;
		cmyk = 0;
		break;
	case JCS_CMYK:
	case JCS_YCCK:
		cinfo.out_color_space = JCS_CMYK;
		cmyk = 1;
		break;
	default:
		jpeg_fail_now(&fail, "unsupported colour space (%d components)",
			      cinfo.num_components);
	}
	jpeg_start_decompress(&cinfo);
	if (cinfo.output_width != w || cinfo.output_height != h ||
	    cinfo.output_components != (cmyk ? 4 : 3))
		jpeg_fail_now(&fail, "unexpected output layout from libjpeg");
	row = cinfo.mem->alloc_sarray((j_common_ptr)&cinfo, JPOOL_IMAGE,
				      w * (JDIMENSION)cinfo.output_components, 1);

	for (unsigned j = 0; j < PN_IMAGE_SIDE; j++) {
		xfirst[j] = j * w / PN_IMAGE_SIDE;
		xend[j] = ((j + 1) * w + PN_IMAGE_SIDE - 1) / PN_IMAGE_SIDE;
	}
	memset(acc, 0, sizeof(acc));
	while (cinfo.output_scanline < h) {
		unsigned y = cinfo.output_scanline;
		const uint8_t *px = row[0];
		if (jpeg_read_scanlines(&cinfo, row, 1) != 1)
			jpeg_fail_now(&fail, "libjpeg returned no scanline");
		if (cmyk)
			cmyk_to_rgb(row[0], w, cinfo.saw_Adobe_marker);
		for (unsigned j = 0; j < PN_IMAGE_SIDE; j++) {
			uint64_t s0 = 0, s1 = 0, s2 = 0;
			for (unsigned x = xfirst[j]; x < xend[j]; x++) {
				unsigned wx = overlap(x, j, w);
				s0 += wx * px[3 * x];
				s1 += wx * px[3 * x + 1];
				s2 += wx * px[3 * x + 2];
			}
			rowsum[j][0] = s0;
			rowsum[j][1] = s1;
			rowsum[j][2] = s2;
		}
		for (unsigned i = y * PN_IMAGE_SIDE / h;
		     i < PN_IMAGE_SIDE && i * h < (y + 1) * PN_IMAGE_SIDE; i++) {
			unsigned wy = overlap(y, i, h);
			for (unsigned j = 0; j < PN_IMAGE_SIDE; j++)
				for (int c = 0; c < 3; c++)
					acc[i][j][c] += wy * rowsum[j][c];
		}
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);

	/* Every output pixel's weights sum to w * h: round to nearest. */
	uint64_t area = (uint64_t)w * h;
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < PN_IMAGE_SIDE; i++)
			for (int j = 0; j < PN_IMAGE_SIDE; j++)
				rgb[c * PLANE + i * PN_IMAGE_SIDE + j] =
					(uint8_t)((acc[i][j][c] + area / 2) / area);
	return 0;
}

int pn_jpeg_decode(const uint8_t *buf, size_t len, uint8_t *rgb, char *err, size_t errlen)
{
	char why[JMSG_LENGTH_MAX + 128];
	if (!buf || len == 0) {
		seterr(err, errlen, "bad JPEG: empty input");
		return -1;
	}
#if SIZE_MAX > ULONG_MAX
	if (len > ULONG_MAX) {
		seterr(err, errlen, "bad JPEG: %zu bytes is too large", len);
		return -1;
	}
#endif
	if (jpeg_to_record(NULL, buf, len, rgb, why, sizeof(why)) < 0) {
		seterr(err, errlen, "bad JPEG: %s", why);
		return -1;
	}
	return 0;
}

/* Decodes the JPEG open at fd (taking it), calling it `shown` in messages. */
static int jpeg_fd_to_record(int fd, const char *shown, uint8_t *rgb, char *err, size_t errlen)
{
	char why[JMSG_LENGTH_MAX + 128];
	struct stat st;
	FILE *f;
	int rc;
	if (fstat(fd, &st) < 0) {
		seterr(err, errlen, "%s: cannot stat: %s", shown, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		seterr(err, errlen, "%s: bad JPEG: %s", shown,
		       S_ISREG(st.st_mode) ? "empty file" : "not a regular file");
		close(fd);
		return -1;
	}
	f = fdopen(fd, "rb");
	if (!f) {
		seterr(err, errlen, "%s: cannot open: %s", shown, strerror(errno));
		close(fd);
		return -1;
	}
	rc = jpeg_to_record(f, NULL, 0, rgb, why, sizeof(why));
	if (rc == 0 && ferror(f)) {
		snprintf(why, sizeof(why), "read error");
		rc = -1;
	}
	fclose(f);
	if (rc < 0)
		seterr(err, errlen, "%s: bad JPEG: %s", shown, why);
	return rc;
}

/* Decodes the JPEG file `name` in the folder dirfd. */
static int jpeg_file_to_record(int dirfd, const char *name, const char *shown, uint8_t *rgb,
			       char *err, size_t errlen)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		seterr(err, errlen, "%s: cannot open: %s", shown, strerror(errno));
		return -1;
	}
	return jpeg_fd_to_record(fd, shown, rgb, err, errlen);
}

/* ---- datasets ---- */

static struct pn_dataset *ds_new(enum ds_kind kind, const char *path)
{
	struct pn_dataset *ds = calloc(1, sizeof(*ds));
	if (!ds)
		return NULL;
	ds->kind = kind;
	ds->fd = -1;
	ds->path = strdup(path);
	if (!ds->path) {
		free(ds);
		return NULL;
	}
	return ds;
}

void pn_dataset_free(struct pn_dataset *ds)
{
	if (!ds)
		return;
	if (ds->fd >= 0)
		close(ds->fd);
	if (ds->paths)
		for (size_t i = 0; i < ds->count; i++)
			free(ds->paths[i]);
	free(ds->paths);
	free(ds->labels);
	free(ds->pixels);
	free(ds->path);
	free(ds);
}

/* Room for one more image; 0 or -1 (out of memory). */
static int ds_reserve(struct pn_dataset *ds)
{
	size_t cap;
	void *p;
	if (ds->count < ds->cap)
		return 0;
	cap = ds->cap ? 2 * ds->cap : 64;
	if (cap > SIZE_MAX / PN_IMAGE_BYTES || cap > SIZE_MAX / sizeof(char *))
		return -1;
	if (!(p = realloc(ds->pixels, cap * PN_IMAGE_BYTES)))
		return -1;
	ds->pixels = p;
	if (!(p = realloc(ds->labels, cap * sizeof(int))))
		return -1;
	ds->labels = p;
	if (!(p = realloc(ds->paths, cap * sizeof(char *))))
		return -1;
	ds->paths = p;
	ds->cap = cap;
	return 0;
}

/* A CIFAR-10 binary file open at fd (taken: kept by the dataset or closed). */
static struct pn_dataset *open_cifar(const char *path, int fd, off_t size, int nclasses, char *err,
				     size_t errlen)
{
	struct pn_dataset *ds = NULL;
	uint8_t *chunk = NULL;
	int nlabels = nclasses > 0 ? nclasses : 10;
	size_t count;

	if (size == 0) {
		seterr(err, errlen,
		       "%s: empty file (a CIFAR-10 binary file holds records of %d bytes)", path,
		       PN_CIFAR_RECORD_BYTES);
		goto fail;
	}
	if (size % PN_CIFAR_RECORD_BYTES != 0) {
		seterr(err, errlen,
		       "%s: size %lld bytes is not a multiple of the %d-byte CIFAR-10 record "
		       "(remainder %lld)",
		       path, (long long)size, PN_CIFAR_RECORD_BYTES,
		       (long long)(size % PN_CIFAR_RECORD_BYTES));
		goto fail;
	}
	if ((uint64_t)(size / PN_CIFAR_RECORD_BYTES) > SIZE_MAX) {
		seterr(err, errlen, "%s: too many records for this machine", path);
		goto fail;
	}
	count = (size_t)(size / PN_CIFAR_RECORD_BYTES);
	chunk = malloc((size_t)CIFAR_CHUNK_RECORDS * PN_CIFAR_RECORD_BYTES);
	if (!chunk) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	for (size_t first = 0; first < count; first += CIFAR_CHUNK_RECORDS) {
		size_t n =
			count - first < CIFAR_CHUNK_RECORDS ? count - first : CIFAR_CHUNK_RECORDS;
		if (pread_full(fd, chunk, n * PN_CIFAR_RECORD_BYTES,
			       (off_t)first * PN_CIFAR_RECORD_BYTES) < 0) {
			seterr(err, errlen, "%s: cannot read: %s", path, read_error());
			goto fail;
		}
		for (size_t k = 0; k < n; k++) {
			unsigned label = chunk[k * PN_CIFAR_RECORD_BYTES];
			if ((int)label >= nlabels) {
				seterr(err, errlen,
				       "%s: record %zu has label %u, outside 0..%d (is it a "
				       "CIFAR-10 binary file?)",
				       path, first + k, label, nlabels - 1);
				goto fail;
			}
		}
	}
	if (!(ds = ds_new(DS_CIFAR, path))) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	ds->fd = fd;
	ds->count = count;
	ds->nlabels = nlabels;
	free(chunk);
	return ds;
fail:
	free(chunk);
	close(fd);
	return NULL;
}

/* A single JPEG file, open at fd (taken). */
static struct pn_dataset *open_jpeg(const char *path, int fd, char *err, size_t errlen)
{
	struct pn_dataset *ds = ds_new(DS_IMAGES, path);
	if (!ds || ds_reserve(ds) < 0 || !(ds->paths[0] = strdup(path))) {
		seterr(err, errlen, "%s: out of memory", path);
		pn_dataset_free(ds);
		close(fd);
		return NULL;
	}
	ds->count = 1;
	ds->labels[0] = -1;
	if (jpeg_fd_to_record(fd, path, ds->pixels, err, errlen) < 0) {
		pn_dataset_free(ds);
		return NULL;
	}
	return ds;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The JPEG names in one class folder, sorted; *n of them. 0 or -1. */
static int list_jpegs(int dirfd, const char *shown, char ***names, size_t *n, char *err,
		      size_t errlen)
{
	char **v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *e;
	DIR *d;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		seterr(err, errlen, "%s: cannot open folder: %s", shown, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	errno = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !has_jpeg_suffix(e->d_name))
			continue;
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			char **nv = ncap < SIZE_MAX / sizeof(char *)
					    ? realloc(v, ncap * sizeof(char *))
					    : NULL;
			if (!nv)
				goto nomem;
			v = nv;
			cap = ncap;
		}
		if (!(v[len] = strdup(e->d_name)))
			goto nomem;
		len++;
		errno = 0;
	}
	if (errno) {
		seterr(err, errlen, "%s: cannot read folder: %s", shown, strerror(errno));
		goto fail;
	}
	closedir(d);
	if (len > 1)
		qsort(v, len, sizeof(char *), cmp_names);
	*names = v;
	*n = len;
	return 0;
nomem:
	seterr(err, errlen, "%s: out of memory", shown);
fail:
	for (size_t i = 0; i < len; i++)
		free(v[i]);
	free(v);
	closedir(d);
	return -1;
}

static char *join_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 2);
	if (!s)
		return NULL;
	memcpy(s, a, la);
	s[la] = '/';
	memcpy(s + la + 1, b, lb + 1);
	return s;
}

/* Decodes every JPEG of class `label` (folder name `cls` under dirfd). */
static int add_class(struct pn_dataset *ds, const char *shown_dir, int dirfd, const char *cls,
		     int label, char *err, size_t errlen)
{
	char **names = NULL;
	size_t n = 0;
	int rc = -1;
	char *shown_cls = join_path(shown_dir, cls);
	int fd = -1;
	if (!shown_cls) {
		seterr(err, errlen, "%s: out of memory", shown_dir);
		return -1;
	}
	fd = openat(dirfd, cls, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		seterr(err, errlen, "%s: cannot open folder: %s", shown_cls, strerror(errno));
		goto out;
	}
	if (list_jpegs(fd, shown_cls, &names, &n, err, errlen) < 0)
		goto out;
	for (size_t k = 0; k < n; k++) {
		char msg[PATH_MAX + JMSG_LENGTH_MAX + 256];
		char *shown = join_path(shown_cls, names[k]);
		if (!shown || ds_reserve(ds) < 0) {
			free(shown);
			seterr(err, errlen, "%s: out of memory", shown_cls);
			goto out;
		}
		if (jpeg_file_to_record(fd, names[k], shown,
					ds->pixels + ds->count * PN_IMAGE_BYTES, msg,
					sizeof(msg)) < 0) {
			size_t l = strlen(msg);
			snprintf(msg + l, sizeof(msg) - l, "; skipped");
			ds_warn(msg);
			ds->skipped++;
			free(shown);
			continue;
		}
		ds->labels[ds->count] = label;
		ds->paths[ds->count] = shown;
		ds->count++;
	}
	rc = 0;
out:
	for (size_t k = 0; k < n; k++)
		free(names[k]);
	free(names);
	if (fd >= 0)
		close(fd);
	free(shown_cls);
	return rc;
}

static void format_classes(char *buf, size_t buflen, const char *const *classes, int nclasses)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int k = 0; k < nclasses && used < buflen; k++) {
		int n = snprintf(buf + used, buflen - used, "%s%s", k ? ", " : "", classes[k]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* A folder of class folders open at fd (taken). */
static struct pn_dataset *open_folder(const char *path, int fd, const char *const *classes,
				      int nclasses, char *err, size_t errlen)
{
	struct pn_dataset *ds = NULL;
	char *present = NULL;
	char shown_classes[512];
	struct dirent *e;
	int nfolders = 0, saw_bin = 0;
	char *shown = strdup(path);
	DIR *d = fdopendir(fd);

	if (!d) {
		seterr(err, errlen, "%s: cannot open folder: %s", path, strerror(errno));
		close(fd);
		free(shown);
		return NULL;
	}
	if (!shown) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	/* Messages name DIR/CLASS/FILE without doubled slashes. */
	for (size_t l = strlen(shown); l > 1 && shown[l - 1] == '/'; l--)
		shown[l - 1] = '\0';
	if (!classes || nclasses <= 0) {
		seterr(err, errlen, "%s: a folder of images needs the list of class names", path);
		goto fail;
	}
	format_classes(shown_classes, sizeof(shown_classes), classes, nclasses);
	if (!(present = calloc((size_t)nclasses, 1))) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	errno = 0;
	while ((e = readdir(d))) {
		struct stat st;
		int k;
		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) < 0) {
			errno = 0;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			saw_bin |= S_ISREG(st.st_mode) && has_suffix(e->d_name, ".bin");
			errno = 0;
			continue;
		}
		for (k = 0; k < nclasses; k++)
			if (classes[k] && strcmp(classes[k], e->d_name) == 0)
				break;
		if (k == nclasses) {
			seterr(err, errlen, "%s: folder '%s' is not one of the classes (%s)", path,
			       e->d_name, shown_classes);
			goto fail;
		}
		present[k] = 1;
		nfolders++;
		errno = 0;
	}
	if (errno) {
		seterr(err, errlen, "%s: cannot read folder: %s", path, strerror(errno));
		goto fail;
	}
	if (!(ds = ds_new(DS_IMAGES, path))) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	for (int k = 0; k < nclasses; k++)
		if (present[k] && add_class(ds, shown, dirfd(d), classes[k], k, err, errlen) < 0)
			goto fail;
	if (ds->count == 0) {
		if (ds->skipped)
			seterr(err, errlen, "%s: no usable images (%zu corrupt JPEG%s skipped)",
			       path, ds->skipped, ds->skipped == 1 ? "" : "s");
		else if (nfolders)
			seterr(err, errlen, "%s: no .jpg or .jpeg files in its class folders",
			       path);
		else
			seterr(err, errlen,
			       "%s: no images: expected class folders DIR/CLASS/*.jpg with CLASS "
			       "one of (%s)%s",
			       path, shown_classes,
			       saw_bin ? "; for CIFAR-10 binary records give the .bin file "
					 "itself"
				       : "");
		goto fail;
	}
	closedir(d);
	free(present);
	free(shown);
	return ds;
fail:
	pn_dataset_free(ds);
	closedir(d);
	free(present);
	free(shown);
	return NULL;
}

struct pn_dataset *pn_dataset_open(const char *path, const char *const *classes, int nclasses,
				   char *err, size_t errlen)
{
	struct stat st;
	uint8_t magic[3];
	int fd;

	if (!path || !*path) {
		seterr(err, errlen, "no dataset path given");
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		seterr(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode))
		return open_folder(path, fd, classes, nclasses, err, errlen);
	if (!S_ISREG(st.st_mode)) {
		seterr(err, errlen, "%s: not a regular file or a folder", path);
		close(fd);
		return NULL;
	}
	/* A JPEG by name or by its SOI marker (0xff is never a CIFAR label). */
	if (has_jpeg_suffix(path) || (st.st_size >= 3 && pread_full(fd, magic, 3, 0) == 0 &&
				      magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff))
		return open_jpeg(path, fd, err, errlen);
	return open_cifar(path, fd, st.st_size, nclasses, err, errlen);
}

size_t pn_dataset_count(const struct pn_dataset *ds)
{
	return ds ? ds->count : 0;
}

size_t pn_dataset_skipped(const struct pn_dataset *ds)
{
	return ds ? ds->skipped : 0;
}

int pn_dataset_get(struct pn_dataset *ds, size_t i, uint8_t *rgb, int *label, char *err,
		   size_t errlen)
{
	uint8_t rec[PN_CIFAR_RECORD_BYTES];
	if (!ds || !rgb) {
		seterr(err, errlen, "no dataset or no image buffer");
		return -1;
	}
	if (i >= ds->count) {
		seterr(err, errlen, "%s: no record %zu (it has %zu)", ds->path, i, ds->count);
		return -1;
	}
	if (ds->kind == DS_IMAGES) {
		memcpy(rgb, ds->pixels + i * PN_IMAGE_BYTES, PN_IMAGE_BYTES);
		if (label)
			*label = ds->labels[i];
		return 0;
	}
	if (pread_full(ds->fd, rec, sizeof(rec), (off_t)i * PN_CIFAR_RECORD_BYTES) < 0) {
		seterr(err, errlen, "%s record %zu: cannot read: %s", ds->path, i, read_error());
		return -1;
	}
	/* Checked at open, but the file may have changed since. */
	if (rec[0] >= ds->nlabels) {
		seterr(err, errlen, "%s record %zu: label %u, outside 0..%d", ds->path, i, rec[0],
		       ds->nlabels - 1);
		return -1;
	}
	memcpy(rgb, rec + 1, PN_IMAGE_BYTES);
	if (label)
		*label = rec[0];
	return 0;
}

const char *pn_dataset_source(const struct pn_dataset *ds, size_t i, char *buf, size_t buflen)
{
	if (!buf || buflen == 0)
		return "";
	if (!ds)
		snprintf(buf, buflen, "(no dataset)");
	else if (i >= ds->count)
		snprintf(buf, buflen, "%s record %zu (out of range)", ds->path, i);
	else if (ds->kind == DS_IMAGES)
		snprintf(buf, buflen, "%s", ds->paths[i]);
	else
		snprintf(buf, buflen, "%s record %zu", ds->path, i);
	return buf;
}
